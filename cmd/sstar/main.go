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
//	sstar trust [-v] PATH...
//	sstar verify PATH...
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
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/harden"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

// Exit statuses. README.md and `sstar --help` describe them.
const (
	exitOK         = 0   // the script ran to the end
	exitFailed     = 1   // the script failed: error, fail(), aborted event, limit
	exitUsage      = 2   // usage error, or a refused launch mode (-c, stdin, no script)
	exitRefused    = 126 // code refused by verification (main script or any module)
	exitUnrecorded = 255 // an audit event could not be recorded (fail-closed)
)

func main() {
	cleanRuntimeEnvironment(os.Stderr)
	os.Exit(sstar(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: sstar [flags] SCRIPT [ARG...]
       sstar events [--markdown]
       sstar log verify PATH
       sstar trust [-v] PATH...
       sstar verify PATH...
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
  --max-steps N       stop the script after N Starlark computation steps,
                      counted over all its modules and hooks (at most the
                      system policy's maximum)
  --timeout DURATION  stop the script after DURATION (e.g. 30s, 5m; at most
                      the system policy's maximum)
  --policy FILE       run the verified policy FILE before the script: it may
                      add audit hooks and lower limits (repeatable)
  -E                  ignore the environment (always in force)
  --version           print the version and exit
  -h, --help          print this help and exit

Subcommands:
  events [--markdown]  list every audit event sstar raises: name,
                       arguments, when it fires
  log verify PATH      check the hash chains of an --audit-log file; exit
                       0 intact, 1 tampered, 3 cut off by a crash
  trust [-v] PATH...   stamp each file (each *.star file under a
                       directory) with the SHA-256 of its content, so sstar
                       will run it; -v prints what was added or updated
  verify PATH...       check each file as a run would: one line per file
                       (ok, missing stamp, mismatch, refused); exit 0 only
                       if all verify. See docs/opencode.md
  help                 print this help

To run a script whose name is one of these words, give its path:
sstar ./events.

Policy: the system policy, fixed at build time as
  SYSTEM_POLICY_PATH
runs before everything else when it exists. It must be owned by root, not
writable by group or others, and stamped like code; otherwise sstar refuses
to start (exit 126). See docs/policy.md.

Exit status:
  0    the script ran to the end
  1    the script failed: an error, fail(), an aborted audit event, a limit
  2    usage error, or a refused launch mode (-c, standard input, no script)
  126  code refused by verification (the script, any module it loads, a
       policy file), or an unsafe system policy
  255  an audit event could not be recorded; nothing after it ran (or, at
       the end, a sink could not confirm it recorded the last events)
`

// watchdogGrace is how long a run past its timeout may take to stop
// before the watchdog ends the process.
const watchdogGrace = 2 * time.Second

// usageText is the help, with the system policy path of this build.
func usageText() string {
	return strings.Replace(usage, "SYSTEM_POLICY_PATH", policy.SystemPath, 1)
}

// sstar is the whole command, minus the process exit.
func sstar(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "events":
			return cmdEvents(args[1:], stdout, stderr)
		case "log":
			return cmdLog(args[1:], stdout, stderr)
		case "trust":
			return cmdTrust(args[1:], stdout, stderr)
		case "verify":
			return cmdVerify(args[1:], stdout, stderr)
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
	policies              []string
	maxSteps              uint64
	timeout               time.Duration
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

	d := new(audit.Dispatcher)
	// The sinks are closed at the end whatever happens: syslog confirms
	// the server got everything, the log is flushed; a failure is 255.
	runSinks := new(sinks)
	defer func() { status = runSinks.close(stderr, status) }()
	if err := runSinks.add(d, f.sinkSpecs()); err != nil {
		return sinkFailed(stderr, err)
	}
	// Before any code file (policy, script, module) is read: from here
	// on neither sstar nor any process it starts can write an xattr, so
	// nothing a script does can restamp code.
	if err := harden.DenyXattrWrites(); err != nil {
		fmt.Fprintf(stderr, "sstar: cannot lock code stamps before running code: %v; refusing to run anything\n", err)
		return exitRefused
	}

	h := interp.New(interp.Options{Audit: d, Stdout: stdout, Predeclared: builtins.Modules()})
	settings, code := systemPolicy(h, runSinks, stderr)
	if code != exitOK {
		return code
	}

	// Launch modes that would run code nobody vouched for: raise their
	// event (so hooks and sinks see the attempt), then refuse.
	switch {
	case f.command.set:
		if err := d.Raise(nil, audit.RunCommand, starlark.String(f.command.value)); err != nil && d.Failed() != nil {
			return fatal(stderr, d, err)
		}
		fmt.Fprintln(stderr, "sstar: refused: -c runs code that is not in a verified file; put the code in a file, stamp it, and run the file"+interactiveNote())
		return exitUsage
	case len(f.remaining) == 0 || f.remaining[0] == "-":
		if err := d.Raise(nil, audit.RunStdin); err != nil && d.Failed() != nil {
			return fatal(stderr, d, err)
		}
		if len(f.remaining) == 0 {
			fmt.Fprintln(stderr, "sstar: refused: no script given, and sstar has no REPL; usage: sstar [flags] SCRIPT [ARG...] (see sstar --help)"+interactiveNote())
		} else {
			fmt.Fprintln(stderr, "sstar: refused: reading code from standard input; put the code in a file, stamp it, and run the file"+interactiveNote())
		}
		return exitUsage
	}

	for _, p := range f.policies {
		if err := policy.Run(context.Background(), h, settings.Opener(), p, false, settings); err != nil {
			return policyFailed(stderr, d, err)
		}
	}
	steps, timeout, err := settings.Limits(f.maxSteps, f.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "sstar: %v\n", err)
		return exitUsage
	}

	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
		// Cancellation reaches Starlark code between steps, and proc.run's
		// child; a builtin blocked in a system call (a FIFO's open) never
		// sees it. The watchdog makes the timeout a hard limit.
		dog := time.AfterFunc(timeout+watchdogGrace, func() {
			reason := fmt.Sprintf("timeout of %s passed %s ago and the script is still blocked in a builtin", timeout, watchdogGrace)
			d.RaiseGo(audit.Watchdog, starlark.String(reason))
			fmt.Fprintf(stderr, "sstar: %s; stopping sstar\n", reason)
			os.Exit(runSinks.close(stderr, exitFailed))
		})
		defer dog.Stop()
	}
	script, scriptArgs := f.remaining[0], f.remaining[1:]
	_, err = h.Exec(ctx, interp.Exec{
		Path:     script,
		Args:     scriptArgs,
		Event:    audit.RunFile,
		Opener:   settings.Opener(),
		MaxSteps: steps,
	})
	return exitStatus(stderr, d, err)
}

// exitStatus reports err (if any) on stderr and returns the exit status.
func exitStatus(stderr io.Writer, d *audit.Dispatcher, err error) int {
	if d.Failed() != nil {
		return fatal(stderr, d, err)
	}
	if err == nil {
		return exitOK
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		fmt.Fprintln(stderr, ee.Backtrace())
	} else {
		fmt.Fprintf(stderr, "sstar: %v\n", err)
	}
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
