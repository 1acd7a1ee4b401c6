// Command sstar is the secure Starlark interpreter: it runs a Starlark
// file only after verifying it, raises an audit event before every
// security-relevant action, and has no way to run code nobody vouched for
// (no -c, no standard input, no REPL). No environment variable changes
// what it does.
//
// Usage:
//
//	sstar [flags] SCRIPT [ARG...]
//	sstar events [--markdown]
//	sstar log verify PATH
//	sstar log show PATH [--run ID] [--event NAME]
//	sstar sinks
//	sstar trust [-v] PATH...
//	sstar verify PATH...
//	sstar key generate NAME
//	sstar catalog sign --key NAME.key [--version N] [--expires DURATION] DIR
//	sstar catalog verify [--key NAME.pub] DIR/sstar.catalog
//	sstar policy suggest LOG...
//	sstar help
//
// Run `sstar --help` for the flags and exit statuses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/harden"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

func main() {
	cleanRuntimeEnvironment(os.Stderr)
	var stdout io.Writer = os.Stdout
	if stdoutClosed() {
		stdout = closedWriter{}
	}
	os.Exit(sstar(os.Args[1:], stdout, os.Stderr))
}

const usage = `usage: sstar [flags] SCRIPT [ARG...]
       sstar events [--markdown]
       sstar log verify PATH
       sstar log show PATH [--run ID] [--event NAME]
       sstar sinks
       sstar trust [-v] PATH...
       sstar verify PATH...
       sstar key generate NAME
       sstar catalog sign --key NAME.key [--version N] [--expires DURATION] DIR
       sstar catalog verify [--key NAME.pub] DIR/sstar.catalog
       sstar policy suggest LOG...
       sstar help

sstar runs the Starlark file SCRIPT. Everything after SCRIPT is the
script's: sys.argv is [SCRIPT, ARG...]. A script may start with a line
"#!/usr/bin/env sstar" and be run directly.

There is no way to run code that is not in a file: -c CODE, "-" (standard
input) and running without a script are refused with exit status 2, after
their audit event is raised. There is no REPL.

No environment variable changes what sstar does: Python's -E is always in
force (and accepted, as a no-op). If a variable the Go runtime reads
before sstar starts is set (GODEBUG, GOGC, GOMEMLIMIT, GOMAXPROCS,
GOTRACEBACK, GORACE), sstar first runs itself again without it. Only TZ
and ZONEINFO still reach a script, through the time module's local time
and zone names. Flags can only add transparency or restrictions, never
remove them.

Flags:
  --audit-log PATH    append every audit event to PATH as JSON Lines,
                      hash-chained (created 0600 if missing); check it with
                      sstar log verify PATH
  --syslog ADDR       send every audit event to syslog (RFC 5424) at ADDR:
                      unix:///dev/log, udp://HOST:PORT, tcp://HOST:PORT or
                      tls://HOST:PORT
  --syslog-ca FILE    for tls://: PEM CA certificates for the server's
                      certificate (default: the system bundle at a fixed
                      path such as /etc/ssl/certs/ca-certificates.crt;
                      SSL_CERT_FILE and SSL_CERT_DIR are ignored)
  --syslog-cert FILE, --syslog-key FILE
                      for tls://: a client certificate and its key
  --relp ADDR         send every audit event to a RELP server (rsyslog's
                      imrelp) at tcp://HOST:PORT or tls://HOST:PORT; each
                      event's action waits for the server's acknowledgement
                      (--syslog-ca, --syslog-cert and --syslog-key apply)
  --journald          send every audit event to systemd-journald
  --kernel-audit      write every audit event to the kernel's audit log,
                      each acknowledged by the kernel (needs CAP_AUDIT_WRITE
                      and auditing on); see sstar sinks
  --max-steps N       stop the script after N Starlark computation steps,
                      counted over all its modules and hooks (at most the
                      system policy's maximum)
  --timeout DURATION  stop the script after DURATION (e.g. 30s, 5m; at most
                      the system policy's maximum); policy files run
                      within it too
  --max-memory SIZE   bound the memory of sstar and of each process it
                      starts to SIZE (bytes, or 256MiB, 2GiB; at most the
                      system policy's maximum): a run past it stops with
                      exit status 71, recorded
  --result FILE       write the run's result to the existing FILE as JSON:
                      status, reason, and the script's exported globals
                      (for programs that run sstar; see package sandbox)
  --policy FILE       run the verified policy FILE before the script: it may
                      add audit hooks and lower limits (repeatable)
  -E                  ignore the environment (always in force)
  --version           print the version and exit
  -h, --help          print this help and exit

Subcommands:
  events [--markdown]  list every audit event sstar raises: name,
                       arguments, when it fires
  sinks                what each audit sink guarantees, and how to set up
                       its receiver
  log verify PATH      check the hash chains of an --audit-log file; exit
                       0 intact, 1 tampered, 3 cut off by a crash,
                       4 a run unfinished (no sstar.run_end)
  log show PATH        print an --audit-log file for people: runs, events,
                       how each run ended (--run ID, --event NAME)
  trust [-v] PATH...   stamp each file (each *.star file under a
                       directory) with the SHA-256 of its content, so sstar
                       will run it; -v prints what was added or updated
  verify PATH...       check each file as a run would: one line per file
                       (ok and what vouches for it, missing stamp,
                       mismatch, refused); exit 0 only if all verify. See
                       docs/opencode.md
  key generate NAME    write a signing key pair, NAME.key (secret, 0600)
                       and NAME.pub, and print the verifier key for
                       policy.trust(keys=). See docs/trust.md
  catalog sign --key NAME.key [--version N] [--expires DURATION] DIR
                       write DIR/sstar.catalog: the SHA-256 of every
                       *.star file under DIR, signed; signing the same
                       catalog with another key adds a signature
  catalog verify [--key NAME.pub] DIR/sstar.catalog
                       check a catalog's signatures (with the system
                       policy's keys, or NAME.pub) and every file: one
                       line per file; exit 0 only if all hold
  policy suggest LOG...
                       print a policy.allow(...) that would have allowed
                       exactly what the runs in the JSON Lines audit logs
                       did (see docs/policy.md, "Permissions")
  help                 print this help

To run a script whose name is one of these words, give its path:
sstar ./events.

Policy: the system policy, fixed at build time as
  SYSTEM_POLICY_PATH
runs before everything else when it exists. It must be owned by root, not
writable by group or others, and stamped like code; otherwise sstar refuses
to start (exit 126). See docs/policy.md.

EXIT_STATUS`

// watchdogGrace is how long a run past its timeout may take to stop
// before the watchdog ends the process.
const watchdogGrace = 2 * time.Second

// usageText is the help, with the system policy path of this build.
func usageText() string {
	return strings.NewReplacer("SYSTEM_POLICY_PATH", policy.SystemPath, "EXIT_STATUS", exitStatusHelp()).Replace(usage)
}

// sstar is the whole command, minus the process exit.
func sstar(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "events":
			return cmdEvents(args[1:], stdout, stderr)
		case "log":
			return cmdLog(args[1:], stdout, stderr)
		case "sinks":
			return cmdSinks(args[1:], stdout, stderr)
		case "trust":
			return cmdTrust(args[1:], stdout, stderr)
		case "verify":
			return cmdVerify(args[1:], stdout, stderr)
		case "key":
			return cmdKey(args[1:], stdout, stderr)
		case "catalog":
			return cmdCatalog(args[1:], stdout, stderr)
		case "policy":
			return cmdPolicy(args[1:], stdout, stderr)
		case "help":
			fmt.Fprint(stdout, usageText())
			return exitOK
		}
	}
	return runScript(args, stdout, stderr)
}

// runFlags are the flags of the run mode.
type runFlags struct {
	command  optString // -c CODE: refused
	auditLog string
	syslog   string
	syslogCA string
	// syslogCert and syslogKey are a TLS client certificate.
	syslogCert, syslogKey string
	relp                  string
	journald, kernelAudit bool
	policies              []string
	maxSteps              uint64
	timeout               time.Duration
	maxMemory             int64
	result                string
	noEnv                 bool
	version               bool
	help                  bool
	remaining             []string
}

// optString is a string flag that remembers whether it was given.
type optString struct {
	set   bool
	value string
}

func (o *optString) String() string     { return o.value }
func (o *optString) Set(s string) error { o.set, o.value = true, s; return nil }

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	var f runFlags
	fs := flag.NewFlagSet("sstar", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&f.command, "c", "refused: run CODE")
	fs.StringVar(&f.auditLog, "audit-log", "", "")
	fs.StringVar(&f.syslog, "syslog", "", "")
	fs.StringVar(&f.syslogCA, "syslog-ca", "", "")
	fs.StringVar(&f.syslogCert, "syslog-cert", "", "")
	fs.StringVar(&f.syslogKey, "syslog-key", "", "")
	fs.StringVar(&f.relp, "relp", "", "")
	fs.BoolVar(&f.journald, "journald", false, "")
	fs.BoolVar(&f.kernelAudit, "kernel-audit", false, "")
	fs.StringVar(&f.result, "result", "", "")
	fs.Func("policy", "", func(p string) error {
		if p == "" {
			return errors.New("want a policy file")
		}
		f.policies = append(f.policies, p)
		return nil
	})
	fs.Func("max-steps", "", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("want a positive whole number of steps, got %q", s)
		}
		f.maxSteps = n
		return nil
	})
	fs.Func("timeout", "", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 30s or 5m, got %q", s)
		}
		f.timeout = d
		return nil
	})
	fs.Func("max-memory", "", func(s string) error {
		n, err := policy.ParseSize(s)
		f.maxMemory = n
		return err
	})
	fs.BoolVar(&f.noEnv, "E", false, "")
	fs.BoolVar(&f.version, "version", false, "")
	fs.BoolVar(&f.help, "help", false, "")
	fs.BoolVar(&f.help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.remaining = fs.Args()
	return &f, nil
}

// sinks are the sinks the flags ask for, in the order they are added:
// the JSON Lines log first, then syslog, RELP, journald, kernel audit.
func (f *runFlags) sinks() []policy.Sink {
	var specs []policy.Sink
	if f.auditLog != "" {
		specs = append(specs, policy.Sink{AuditLog: f.auditLog})
	}
	if f.syslog != "" {
		specs = append(specs, policy.Sink{Syslog: f.syslog, SyslogCA: f.syslogCA, SyslogCert: f.syslogCert, SyslogKey: f.syslogKey})
	}
	if f.relp != "" {
		specs = append(specs, policy.Sink{Relp: f.relp, SyslogCA: f.syslogCA, SyslogCert: f.syslogCert, SyslogKey: f.syslogKey})
	}
	if f.journald {
		specs = append(specs, policy.Sink{Journald: true})
	}
	if f.kernelAudit {
		specs = append(specs, policy.Sink{KernelAudit: true})
	}
	return specs
}

// runScript is the run mode: flags, then the session (sinks, the system
// policy), the refused launch modes, additive policies and limits, then
// the script, and the exit status.
func runScript(args []string, stdout, stderr io.Writer) (status int) {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sstar: %v\nRun 'sstar --help' for usage.\n", err)
		return exitUsage
	}
	if f.help {
		fmt.Fprint(stdout, usageText())
		return exitOK
	}
	if f.version {
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	if attached, err := attachMonitor(); err != nil {
		fmt.Fprintf(stderr, "sstar: CRITICAL: %v; nothing ran\n", err)
		return exitUnrecorded
	} else if !attached && mayRecord(f) {
		return supervise(stderr)
	}
	// The flag's memory limit holds from the start: the system policy
	// may only lower it (or refuse it, below).
	if err := harden.LimitMemory(f.maxMemory); err != nil {
		fmt.Fprintf(stderr, "sstar: %v; refusing to run without the memory limit asked for\n", err)
		return exitRefused
	}

	s, status := boot(f.sinks(), true, stdout, stderr)
	s.result = f.result
	// Whatever ends the run, its end is recorded, then the sinks close.
	var runErr error
	var globals starlark.StringDict
	why := ""
	defer func() {
		if why == "" {
			why = reason(s.d, status, runErr)
		}
		status = s.close(stderr, s.end(stderr, status, why))
		status = writeResult(stderr, f.result, status, why, globals, runErr)
	}()
	if status != exitOK {
		return status
	}
	if s.settings.AuditOnly {
		fmt.Fprintln(stderr, auditModeWarning)
	}

	// Launch modes that would run code nobody vouched for.
	switch {
	case f.command.set:
		return s.refuse(stderr, audit.RunCommand, "-c runs code that is not in a verified file; put the code in a file, stamp it, and run the file", starlark.String(f.command.value))
	case len(f.remaining) == 0:
		return s.refuse(stderr, audit.RunStdin, "no script given, and sstar has no REPL; usage: sstar [flags] SCRIPT [ARG...] (see sstar --help)")
	case f.remaining[0] == "-":
		return s.refuse(stderr, audit.RunStdin, "reading code from standard input; put the code in a file, stamp it, and run the file")
	}

	// The system policy's memory limit holds while --policy files run
	// (they may lower it, below).
	memory, err := s.settings.MemoryLimit(f.maxMemory)
	if err == nil {
		err = harden.LimitMemory(memory)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sstar: %v\n", err)
		return exitUsage
	}
	// The restriction goes in now: before the signal trap and the
	// limits' timers, whose goroutines make the Go runtime start more
	// threads, each of which Landlock before ABI 8 must restrict in turn
	// (harden.Confine). --policy files run under it, and what they
	// narrowed is restricted once they ran.
	if status := s.confine(stderr, f.remaining[0], f.policies); status != exitOK {
		return status
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Signals are caught only when there is a record to end: without
	// sinks, a signal ends sstar as it ends any process, and nothing is
	// lost. Catching them costs a start-up a quarter more (os/signal
	// starts a thread of its own), measured with internal/bench's
	// sidebyside.
	stopTrap := func() syscall.Signal { return 0 }
	if s.recording {
		stopTrap = s.trap(stderr, cancel)
	}
	defer func() {
		if sig := stopTrap(); sig != 0 {
			status, why = signalEnd(sig)
		}
	}()
	// Policy files run under the run's limits: those the flags and the
	// system policy give before them, from now on.
	start := time.Now()
	steps, timeout, err := s.settings.Limits(f.maxSteps, f.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "sstar: %v\n", err)
		return exitUsage
	}
	s.setLimits(steps, timeout, memory)
	limited, stop := s.limit(ctx, stderr, start, timeout)
	for _, p := range f.policies {
		if runErr = s.settings.ApplyLimited(limited, s.host, p, steps); runErr != nil {
			stop()
			return policyFailed(stderr, s.d, runErr)
		}
	}
	before := timeout
	steps, timeout, err = s.settings.Limits(f.maxSteps, f.timeout)
	if err != nil {
		stop()
		fmt.Fprintf(stderr, "sstar: %v\n", err)
		return exitUsage
	}
	memory, err = s.settings.MemoryLimit(f.maxMemory)
	if err == nil {
		err = harden.LimitMemory(memory)
	}
	if err != nil {
		stop()
		fmt.Fprintf(stderr, "sstar: %v\n", err)
		return exitUsage
	}
	s.setLimits(steps, timeout, memory)
	if timeout != before { // a policy file lowered it
		stop()
		limited, stop = s.limit(ctx, stderr, start, timeout)
	}
	defer stop()
	ctx = limited
	if len(f.policies) > 0 {
		if status := s.confine(stderr, f.remaining[0], nil); status != exitOK {
			return status
		}
	}
	globals, runErr = s.host.Exec(ctx, interp.Exec{
		Path:     f.remaining[0],
		Args:     f.remaining[1:],
		Event:    audit.RunFile,
		Opener:   s.settings.Opener(),
		MaxSteps: steps,
	})
	return exitStatus(stderr, s.d, runErr)
}

// limit bounds what runs under ctx by timeout from start (0: no bound):
// the context's deadline, and the watchdog after it. stop releases both.
func (s *session) limit(ctx context.Context, stderr io.Writer, start time.Time, timeout time.Duration) (limited context.Context, stop func()) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	limited, cancel := context.WithDeadline(ctx, start.Add(timeout))
	dog := s.watchdog(stderr, start, timeout)
	return limited, func() { dog.Stop(); cancel() }
}

// setLimits is what run_end says the limits were.
func (s *session) setLimits(steps uint64, timeout time.Duration, memory int64) {
	s.life.mu.Lock()
	s.life.steps, s.life.limit, s.life.memory = steps, timeout, memory
	s.life.mu.Unlock()
	monitored.setLimits(steps, timeout, memory, s.settings.MaxRecord)
}

// watchdogRecordWait bounds how long the watchdog waits for its record
// and the run's end to be written: what holds the script may be a sink.
const watchdogRecordWait = 2 * time.Second

// watchdog makes the timeout a hard limit. Cancellation reaches Starlark
// code between steps, and proc.run's child; a builtin blocked in a system
// call (a FIFO's open) never sees it. So once the timeout has passed by
// watchdogGrace, the watchdog records why and ends the process. If the
// record is not written within watchdogRecordWait (a sink, or something
// holding the fan-out's lock, is stuck), it ends the process anyway, with
// status 255, and leaves the reason to the crash monitor, which records
// the end from a fresh process.
func (s *session) watchdog(stderr io.Writer, start time.Time, timeout time.Duration) *time.Timer {
	return time.AfterFunc(time.Until(start.Add(timeout+watchdogGrace)), func() {
		reason := fmt.Sprintf("timeout of %s passed %s ago and the script is still blocked in a builtin", timeout, watchdogGrace)
		done := make(chan int, 1)
		go func() {
			status := exitFailed
			if err := s.d.RaiseGo(audit.Watchdog, starlark.String(reason)); err != nil {
				fmt.Fprintf(stderr, "sstar: CRITICAL: the watchdog's record could not be written: %v\n", err)
				status = exitUnrecorded
			}
			fmt.Fprintf(stderr, "sstar: %s; stopping sstar\n", reason)
			status = s.close(stderr, s.end(stderr, status, "watchdog"))
			done <- writeResult(stderr, s.result, status, "watchdog", nil, errors.New(reason))
		}()
		select {
		case status := <-done:
			os.Exit(status)
		case <-time.After(watchdogRecordWait):
			fmt.Fprintf(stderr, "sstar: CRITICAL: %s, and its record could not be written within %s; stopping sstar\n", reason, watchdogRecordWait)
			monitored.note(exitUnrecorded, "watchdog: the record of the watchdog could not be written within "+watchdogRecordWait.String())
			os.Exit(exitUnrecorded)
		}
	})
}

func cmdEvents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sstar events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	markdown := fs.Bool("markdown", false, "print the table as Markdown (docs/events.md)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sstar events: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *markdown {
		fmt.Fprint(stdout, audit.Markdown())
		return exitOK
	}
	if err := audit.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "sstar events: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func version() string {
	v, star := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, m := range bi.Deps {
			if m.Path == "go.starlark.net" {
				star = m.Version
			}
		}
	}
	return fmt.Sprintf("sstar %s (go.starlark.net %s)", v, star)
}
