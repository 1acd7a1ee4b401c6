package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
	"github.com/sstar-project/sstar/audit/syslog"
)

// A sinkSpec names one audit sink: a JSON Lines log or a syslog server.
// Flags and the system policy's policy.sink both give them.
type sinkSpec struct {
	AuditLog string // --audit-log PATH
	Syslog   string // --syslog ADDR: unix:///path, udp://, tcp://, tls://host:port
	// For tls:// only: the CA file for the server's certificate, and an
	// optional client certificate and key.
	SyslogCA, SyslogCert, SyslogKey string
}

func (s sinkSpec) String() string {
	if s.AuditLog != "" {
		return "audit log " + s.AuditLog
	}
	return "syslog " + s.Syslog
}

// sinkSpecs are the sinks the flags ask for, in the order they are added:
// the JSON Lines log first, then syslog.
func (f *runFlags) sinkSpecs() []sinkSpec {
	var specs []sinkSpec
	if f.auditLog != "" {
		specs = append(specs, sinkSpec{AuditLog: f.auditLog})
	}
	if f.syslog != "" {
		specs = append(specs, sinkSpec{Syslog: f.syslog, SyslogCA: f.syslogCA, SyslogCert: f.syslogCert, SyslogKey: f.syslogKey})
	}
	return specs
}

// sinks are the open audit sinks of a run. Each is closed at the end of
// the run, which for syslog confirms that the server received everything
// and for the log flushes it to disk.
type sinks struct {
	closers []func() error
	runID   string // see id
}

// id returns the run's id, the same in every sink of the run. It is made
// when the first sink opens: a run without sinks needs none, and making
// one reads the kernel's random source, for which crypto/rand also arms
// a timer that starts the runtime's network poller (about 50 µs of a
// start-up measured at 2–3 ms).
func (s *sinks) id() string {
	if s.runID == "" {
		s.runID = jsonl.NewRunID()
	}
	return s.runID
}

// open opens the sink spec for the run and returns its hook, which the
// caller adds to the dispatcher (after replaying to it what happened
// before, as the system policy's mandatory sinks do). s.close closes it.
func (s *sinks) open(spec sinkSpec) (audit.Hook, error) {
	switch {
	case spec.AuditLog != "" && spec.Syslog != "":
		return nil, fmt.Errorf("a sink is an audit log or a syslog server, not both (%s, %s)", spec.AuditLog, spec.Syslog)
	case spec.AuditLog != "":
		log, err := jsonl.Open(spec.AuditLog, jsonl.Options{RunID: s.id()})
		if err != nil {
			return nil, fmt.Errorf("cannot open the %v; check the path and its directory's permissions", err)
		}
		s.closers = append(s.closers, log.Close)
		return log.Hook, nil
	case spec.Syslog != "":
		sl, err := syslog.Dial(syslog.Options{
			Addr:     spec.Syslog,
			CAFile:   spec.SyslogCA,
			CertFile: spec.SyslogCert,
			KeyFile:  spec.SyslogKey,
			RunID:    s.id(),
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, sl.Close)
		return sl.Hook, nil
	}
	return nil, errors.New("an empty sink: give an audit log path or a syslog address")
}

// add opens every spec and adds them to d as one hook, which calls each
// sink in order: every sink then sees the same events from the same
// first one, so their seq numbers name the same events (adding sinks one
// by one would show the later ones' sys.addaudithook to the earlier).
func (s *sinks) add(d *audit.Dispatcher, specs []sinkSpec) error {
	var hooks []audit.Hook
	for _, spec := range specs {
		hook, err := s.open(spec)
		if err != nil {
			return err
		}
		hooks = append(hooks, hook)
	}
	switch len(hooks) {
	case 0:
		return nil
	case 1:
		return d.AddHook(hooks[0])
	}
	return d.AddHook(func(ev audit.Event) error {
		for _, h := range hooks {
			if err := h(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// close closes every sink, last opened first, and returns the run's exit
// status: status, or exitUnrecorded if a sink could not confirm that it
// recorded the run's last events (said on stderr).
func (s *sinks) close(stderr io.Writer, status int) int {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			fmt.Fprintf(stderr, "sstar: CRITICAL: %v\n", err)
			status = exitUnrecorded
		}
	}
	s.closers = nil
	return status
}

// sinkFailed reports a sink that could not be set up: nothing ran.
func sinkFailed(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "sstar: CRITICAL: %v; nothing ran\n", err)
	return exitUnrecorded
}
