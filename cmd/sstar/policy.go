package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/policy"
)

// systemPolicy runs the system policy, if there is one, and opens the
// mandatory sinks it names, replaying to them what happened while it ran.
// It returns the settings for the run, or an exit status other than
// exitOK. Without a system policy it adds no hook: a run with no sinks
// keeps the dispatcher's no-hook fast path.
func systemPolicy(h *interp.Host, runSinks *sinks, stderr io.Writer) (*policy.Settings, int) {
	d := h.Audit()
	settings := policy.Defaults()
	if err := policy.CheckDirs(policy.SystemPath); err != nil {
		fmt.Fprintf(stderr, "sstar: system policy %s: %v\nsstar: no script code ran\n", policy.SystemPath, err)
		return nil, exitRefused
	}
	_, err := os.Lstat(policy.SystemPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && policy.Required == "true":
		fmt.Fprintf(stderr, "sstar: system policy %s is missing, and this sstar was built to require one; restore it\n", policy.SystemPath)
		return nil, exitRefused
	case errors.Is(err, fs.ErrNotExist):
		return &settings, exitOK // the built-in defaults apply
	case err != nil:
		fmt.Fprintf(stderr, "sstar: system policy %s: %v; fix or remove it\n", policy.SystemPath, err)
		return nil, exitRefused
	}
	// Mandatory sinks are known only once the policy has run; keep what
	// happens until then so they record it too.
	early := &earlyEvents{}
	if err := d.AddHook(early.hook); err != nil {
		return nil, fatal(stderr, d, err)
	}
	opener := settings.Opener()
	opener.RequireRootOwned = true
	if err := policy.Run(context.Background(), h, opener, policy.SystemPath, true, &settings); err != nil {
		early.stop()
		return nil, policyFailed(stderr, d, err)
	}
	events := early.stop()
	for _, s := range settings.Sinks {
		hook, err := runSinks.open(sinkSpec{AuditLog: s.AuditLog, Syslog: s.Syslog, SyslogCA: s.SyslogCA})
		if err != nil {
			fmt.Fprintf(stderr, "sstar: CRITICAL: cannot open the audit sink the system policy requires: %v; nothing ran\n", err)
			return nil, exitUnrecorded
		}
		for _, ev := range events {
			if err := hook(ev); err != nil {
				fmt.Fprintf(stderr, "sstar: CRITICAL: %v; nothing ran\n", err)
				return nil, exitUnrecorded
			}
		}
		if err := d.AddHook(hook); err != nil {
			return nil, fatal(stderr, d, err)
		}
	}
	return &settings, exitOK
}

// subcommandPolicy runs the system policy for `sstar trust` and `sstar
// verify`, as a run would, so that they stamp and check with the run's
// settings (xattr name, size cap, kernel-check enforcement) and their
// events reach the policy's hooks and mandatory sinks. openerFor gives the
// opener for a path: the system policy file itself is always checked with
// the built-in defaults and the root-owner rule, as runs check it.
func subcommandPolicy(stderr io.Writer) (openerFor func(string) *opencode.Opener, d *audit.Dispatcher, s *sinks, status int) {
	d, s = new(audit.Dispatcher), new(sinks)
	h := interp.New(interp.Options{Audit: d, Stdout: stderr, Predeclared: builtins.Modules()})
	settings, status := systemPolicy(h, s, stderr)
	if status != exitOK {
		return nil, d, s, status
	}
	defaults := policy.Defaults()
	forSystem := defaults.Opener()
	forSystem.RequireRootOwned = true
	forCode := settings.Opener()
	return func(p string) *opencode.Opener {
		if isSystemPolicy(p) {
			return forSystem
		}
		return forCode
	}, d, s, exitOK
}

// isSystemPolicy reports whether p names the system policy file.
func isSystemPolicy(p string) bool {
	abs, err := opencode.Abs(p)
	return err == nil && abs == policy.SystemPath
}

// policyFailed reports a policy file that failed and returns the status:
// 255 if an event could not be recorded, 126 if the file was refused, 1
// otherwise.
func policyFailed(stderr io.Writer, d *audit.Dispatcher, err error) int {
	if d.Failed() != nil {
		return fatal(stderr, d, err)
	}
	var pe *policy.Error
	msg := err.Error()
	if errors.As(err, &pe) {
		var re *interp.RunError
		if errors.As(pe.Err, &re) {
			msg = "policy " + pe.Path + ": " + re.Backtrace()
		}
	}
	fmt.Fprintf(stderr, "sstar: %s\nsstar: no script code ran\n", msg)
	if errors.Is(err, interp.ErrRefused) {
		return exitRefused
	}
	return exitFailed
}

// earlyEvents keeps the events raised before the mandatory sinks exist.
type earlyEvents struct {
	mu      sync.Mutex
	events  []audit.Event
	stopped bool
}

func (e *earlyEvents) hook(ev audit.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.stopped {
		e.events = append(e.events, ev) // kept past the call
	}
	return nil
}

// stop ends the recording and returns what was recorded.
func (e *earlyEvents) stop() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	events := e.events
	e.events = nil
	return events
}
