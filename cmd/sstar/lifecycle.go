package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/interp"
)

// A run's life on the record: sstar.run_start is its first record and
// sstar.run_end its last, for every end the process itself sees, so that
// `sstar log verify` can tell a run that ended from one that was cut
// short. (A process killed outright cannot write its end: that is what
// "unfinished" means in the log.)

// life is what run_start and run_end need: when the run began, and the
// code it compiled, which a Go hook collects from the compile events.
type life struct {
	start  time.Time
	mu     sync.Mutex
	code   map[string]string // absolute path -> SHA-256, from compile events
	steps  uint64
	limit  time.Duration
	memory int64
	ended  bool
}

// hook collects the files the run compiles.
func (l *life) hook(ev audit.Event) error {
	if ev.Kind == audit.Compile && ev.NumArgs() == 2 {
		path, _ := starlark.AsString(ev.Arg(0))
		sum, _ := starlark.AsString(ev.Arg(1))
		l.mu.Lock()
		if l.code == nil {
			l.code = map[string]string{}
		}
		l.code[path] = sum
		l.mu.Unlock()
		monitored.addCode(path, sum)
	}
	return nil
}

// begin raises sstar.run_start: the version, argv, the real uid and gid,
// and the working directory as the kernel names it.
func (s *session) begin() error {
	argv := make([]starlark.Value, len(os.Args))
	for i, a := range os.Args {
		argv[i] = starlark.String(a)
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "(" + err.Error() + ")"
	}
	return s.d.RaiseGo(audit.RunStart, starlark.String(version()), starlark.NewList(argv),
		starlark.MakeInt(os.Getuid()), starlark.MakeInt(os.Getgid()), starlark.String(cwd))
}

// end raises sstar.run_end for a run ending with status for reason, once,
// and returns the status: exitUnrecorded if the end could not be recorded.
func (s *session) end(stderr io.Writer, status int, reason string) int {
	l := &s.life
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return status
	}
	l.ended = true
	paths := make([]string, 0, len(l.code))
	for p := range l.code {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	code := starlark.NewDict(len(paths))
	for _, p := range paths {
		code.SetKey(starlark.String(p), starlark.String(l.code[p]))
	}
	limits := runLimits(l.steps, l.limit, l.memory)
	l.mu.Unlock()
	err := s.d.RaiseGo(audit.RunEnd, starlark.MakeInt(status), starlark.String(reason),
		starlark.Float(time.Since(l.start).Seconds()), starlark.MakeUint64(s.fan.Seq()), code, limits)
	if err != nil {
		// A sink that failed stays failed: the monitor does not try again.
		monitored.ended()
		if status != exitUnrecorded {
			fmt.Fprintf(stderr, "sstar: CRITICAL: the end of the run could not be recorded: %v\n", err)
		}
		return exitUnrecorded
	}
	monitored.ended()
	return status
}

// reason words what ended a run with err and status, for run_end.
func reason(d *audit.Dispatcher, status int, err error) string {
	var ae *audit.AbortError
	switch {
	case d.Failed() != nil || status == exitUnrecorded:
		return "unrecorded"
	case err == nil && status == exitOK:
		return "ok"
	case errors.Is(err, interp.ErrOutput):
		return "output"
	case errors.Is(err, interp.ErrRefused) || status == exitRefused:
		return "refused"
	case errors.Is(err, interp.ErrLimit):
		return "limit"
	case errors.As(err, &ae):
		return "aborted"
	case status == exitUsage:
		return "usage"
	}
	return "error"
}

// The signals a run ends on, with their statuses (128 + the number, as a
// shell reports a process killed by them).
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// signalStatus is the exit status of a run stopped by sig.
func signalStatus(sig syscall.Signal) int { return 128 + int(sig) }

// signalEnd is the status and run_end reason of a run stopped by sig:
// "signal NAME", or, for the SIGTERM a run gets when its monitor dies
// (PR_SET_PDEATHSIG), "killed: …" with SIGKILL's status, since only an
// uncatchable signal ends the monitor.
func signalEnd(sig syscall.Signal) (int, string) {
	if sig == syscall.SIGTERM && monitored.parentDied() {
		return signalStatus(syscall.SIGKILL), "killed: the sstar process that monitors this run was killed, so the run stops"
	}
	return signalStatus(sig), "signal " + unix.SignalName(sig)
}

// trap catches SIGINT, SIGTERM and SIGHUP for the run: the first one
// cancels it (the script stops at its next step, a child of proc.run is
// killed), and the run ends with run_end reason "signal NAME" and status
// 128+N. If the run does not stop within watchdogGrace (a builtin blocked
// in a system call), the end is recorded and the process exits anyway.
// SIGPIPE is caught too, so that a closed pipe on standard output is a
// write error that fails the run (reason "output", status 1), not a
// death without a record. The returned function stops trapping and
// reports the signal that stopped the run, if one did.
func (s *session) trap(stderr io.Writer, cancel context.CancelFunc) (stop func() syscall.Signal) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, append(stopSignals, syscall.SIGPIPE)...)
	var mu sync.Mutex
	var got syscall.Signal
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				n := sig.(syscall.Signal)
				if n == syscall.SIGPIPE {
					continue // the write that met the closed pipe fails the run
				}
				mu.Lock()
				first := got == 0
				if first {
					got = n
				}
				mu.Unlock()
				if !first {
					continue
				}
				fmt.Fprintf(stderr, "sstar: stopping: %s\n", unix.SignalName(n))
				cancel()
				time.AfterFunc(watchdogGrace, func() {
					status, why := signalEnd(n)
					status = s.end(stderr, status, why+", and the script was still blocked in a builtin "+watchdogGrace.String()+" later")
					os.Exit(s.close(stderr, status))
				})
			}
		}
	}()
	return func() syscall.Signal {
		// ch stays registered (later signals fill its buffer, then are
		// dropped): the run is ending and records its end now, and a
		// SIGTERM that came after this with the default action would
		// kill it before it does. The monitor's death sends one SIGTERM
		// for each of its threads that the run is handed to.
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// stdoutClosed reports whether standard output was closed when sstar
// started. The Go runtime, before main, opens /dev/null read-write on each
// of descriptors 0, 1 and 2 that is closed (so that no file sstar opens,
// an audit log, becomes descriptor 1 and receives print's output); so a
// standard output that is /dev/null opened read-write is taken as closed.
// A shell's `>/dev/null` opens it write-only, and is output discarded on
// purpose. Output to a closed standard output would be lost without a
// word, so the run fails at its first print (see closedWriter).
func stdoutClosed() bool {
	fl, err := unix.FcntlInt(1, unix.F_GETFL, 0)
	if err != nil {
		return true
	}
	var st, null unix.Stat_t
	if unix.Fstat(1, &st) != nil || unix.Stat("/dev/null", &null) != nil {
		return false
	}
	return fl&unix.O_ACCMODE == unix.O_RDWR && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null.Rdev
}

// closedWriter is standard output when it was closed at start: every
// write fails, as it would have.
type closedWriter struct{}

func (closedWriter) Write([]byte) (int, error) {
	return 0, errors.New("standard output was closed when sstar started")
}
