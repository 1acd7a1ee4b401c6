package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

// Exit statuses of a run, and of trust and verify.
const (
	exitOK         = 0   // the script ran to the end
	exitFailed     = 1   // the script failed: error, fail(), aborted event, limit
	exitUsage      = 2   // usage error, or a refused launch mode (-c, stdin, no script)
	exitCrash      = 70  // the run crashed (a Go fatal error); recorded by the monitor
	exitMemory     = 71  // the run went past its memory limit; recorded by the monitor
	exitRefused    = 126 // code refused by verification, or an unsafe system policy
	exitUnrecorded = 255 // an audit event could not be recorded (fail-closed)
)

// exitCodes is the one table of what each status means. `sstar --help`
// prints it; TestExitStatusDocumented checks that README.md says the same.
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "the script ran to the end"},
	{exitFailed, "the script failed: an error, `fail()`, an aborted audit event, a limit"},
	{exitUsage, "usage error, or a refused launch mode (`-c`, standard input, no script); also a Go fatal error in a run without a crash monitor (see 70)"},
	{exitCrash, "sstar crashed while running the script (a Go fatal error, such as a stack overflow inside go.starlark.net): its crash monitor recorded `sstar.run_end` reason `crash` with the first lines of the runtime's report. Only a run with something to record or a limit to tell has a monitor (a sink, a system policy, `--policy` files, `--max-memory` or `--result`); a crash of a run without one exits 2, the Go runtime's status"},
	{exitMemory, "the run went past its memory limit (`--max-memory`, or `policy.limits(memory=)` of the system policy or a `--policy` file): its crash monitor recorded `sstar.run_end` reason `memory`"},
	{exitRefused, "code refused by verification (the script, any module it loads, a policy file), or an unsafe or missing required system policy"},
	{signalStatus(syscall.SIGHUP), "stopped by SIGHUP (caught and recorded: `sstar.run_end` reason `signal SIGHUP`)"},
	{signalStatus(syscall.SIGINT), "stopped by SIGINT (Ctrl-C), caught and recorded"},
	{signalStatus(syscall.SIGKILL), "killed by SIGKILL (the kernel's OOM killer, or anyone): its crash monitor, if the run has one, recorded `sstar.run_end` reason `killed SIGKILL`; also the run's status when the monitor itself was killed (reason `killed: …`). Any other signal that kills the run outright gives 128 + its number, recorded the same way"},
	{signalStatus(syscall.SIGTERM), "stopped by SIGTERM, caught and recorded"},
	{exitUnrecorded, "an audit event could not be recorded; nothing after it ran (or, at the end, a sink could not confirm it recorded the last events)"},
}

// exitStatusHelp is the "Exit status" section of --help.
func exitStatusHelp() string {
	var b strings.Builder
	b.WriteString("Exit status:\n")
	for _, e := range exitCodes {
		fmt.Fprintf(&b, "  %-4d %s\n", e.code, wrap(strings.ReplaceAll(e.meaning, "`", ""), 66, "       "))
	}
	return b.String()
}

// wrap breaks s into lines of at most width bytes, indenting all but the
// first with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n" + indent)
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// exitStatus reports the error that ended a run (if any) on stderr and
// returns the status that says what ended it: 255 once an event could
// not be recorded, whatever else went wrong; 126 for a refusal; 1 for any
// other error.
func exitStatus(stderr io.Writer, d *audit.Dispatcher, err error) int {
	if d.Failed() != nil {
		return fatal(stderr, d, err)
	}
	if err == nil {
		return exitOK
	}
	var ee *starlark.EvalError
	var re *interp.RunError
	if errors.As(err, &re) && re.Output != nil {
		fmt.Fprintf(stderr, "sstar: %v\n", re) // not the cancellation it caused
	} else if errors.As(err, &ee) {
		fmt.Fprintln(stderr, ee.Backtrace())
	} else {
		fmt.Fprintf(stderr, "sstar: %v\n", err)
	}
	return failure(err)
}

// policyFailed is exitStatus for an error before the script: booting the
// system policy, or running a policy file.
func policyFailed(stderr io.Writer, d *audit.Dispatcher, err error) int {
	if d.Failed() != nil {
		return fatal(stderr, d, err)
	}
	msg := err.Error()
	var pe *policy.Error
	var re *interp.RunError
	if errors.As(err, &pe) && errors.As(pe.Err, &re) {
		msg = "policy " + pe.Path + ": " + re.Backtrace()
	}
	fmt.Fprintf(stderr, "sstar: %s\nsstar: no script code ran\n", msg)
	return failure(err)
}

// failure is the status of an error that is not a failure to record.
func failure(err error) int {
	if errors.Is(err, interp.ErrRefused) {
		return exitRefused
	}
	return exitFailed
}

// fatal reports that an audit event could not be recorded and returns
// exitUnrecorded.
func fatal(stderr io.Writer, d *audit.Dispatcher, err error) int {
	cause := d.Failed()
	if cause == nil {
		cause = err
	}
	fmt.Fprintf(stderr, "sstar: CRITICAL: %v; stopped, nothing after it ran\n", cause)
	return exitUnrecorded
}
