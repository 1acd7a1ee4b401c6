package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/journald"
	"github.com/sstar-project/sstar/audit/jsonl"
	"github.com/sstar-project/sstar/audit/kaudit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/audit/relp"
	"github.com/sstar-project/sstar/audit/syslog"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/harden"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

// openSink opens the sink s names, for the run's record fan-out.
func openSink(s policy.Sink) (record.Sink, error) {
	switch {
	case s.Kinds() > 1:
		return nil, fmt.Errorf("a sink names one destination, not several (%+v)", s)
	case s.AuditLog != "":
		log, err := jsonl.Open(s.AuditLog)
		if err != nil {
			return nil, fmt.Errorf("cannot open the %v; check the path and its directory's permissions", err)
		}
		return log, nil
	case s.Syslog != "":
		return syslog.Dial(syslog.Options{Addr: s.Syslog, CAFile: s.SyslogCA, CertFile: s.SyslogCert, KeyFile: s.SyslogKey})
	case s.Relp != "":
		return relp.Dial(relp.Options{Addr: s.Relp, CAFile: s.SyslogCA, CertFile: s.SyslogCert, KeyFile: s.SyslogKey})
	case s.Journald:
		return journald.Dial(journald.Options{})
	case s.KernelAudit:
		return kaudit.Dial(kaudit.Options{})
	}
	return nil, errors.New("an empty sink: give an audit log path, a syslog or RELP address, journald or the kernel audit log")
}

// addSink opens s and adds it to fan (which first gives it every record
// kept so far).
func addSink(fan *record.Fanout, s policy.Sink) error {
	sink, err := openSink(s)
	if err != nil {
		return err
	}
	if err := fan.Add(sink); err != nil {
		sink.Close()
		return err
	}
	return nil
}

// A session is what a run and the trust and verify subcommands share: the
// dispatcher, the run's one record fan-out that every sink hangs off, the
// host, and the settings the system policy decided.
type session struct {
	d        *audit.Dispatcher
	fan      *record.Fanout
	host     *interp.Host
	settings *policy.Settings
}

// boot starts a session: it opens the sinks the flags name, finds the
// system policy, denies xattr writes (if lock: a run, not `sstar trust`),
// runs the system policy and opens the sinks it makes mandatory, which
// first receive every record made so far. Without sinks or a system
// policy no hook is added, so that raising an event stays a no-op. A
// status other than exitOK means nothing may run; s.close must be called
// either way.
func boot(flagSinks []policy.Sink, lock bool, stdout, stderr io.Writer) (s *session, status int) {
	s = &session{d: new(audit.Dispatcher), fan: new(record.Fanout)}
	for _, spec := range flagSinks {
		if err := addSink(s.fan, spec); err != nil {
			fmt.Fprintf(stderr, "sstar: CRITICAL: %v; nothing ran\n", err)
			return s, exitUnrecorded
		}
	}
	sys, err := policy.FindSystem()
	if err != nil {
		return s, policyFailed(stderr, s.d, err)
	}
	// Mandatory sinks are known only once the system policy has run; the
	// fan-out keeps what happens until then, so they record it too.
	s.fan.Keep(sys.Exists())
	defer s.fan.Keep(false)
	if len(flagSinks) > 0 || sys.Exists() {
		if err := s.d.AddHook(s.fan.Hook); err != nil {
			return s, fatal(stderr, s.d, err)
		}
	}
	if lock {
		// Before any code file (policy, script, module) is read: from
		// here on neither sstar nor any process it starts can write an
		// xattr, so nothing a script does can restamp code.
		if err := harden.DenyXattrWrites(); err != nil {
			fmt.Fprintf(stderr, "sstar: cannot lock code stamps before running code: %v; refusing to run anything\n", err)
			return s, exitRefused
		}
	}
	s.host = interp.New(interp.Options{Audit: s.d, Stdout: stdout, Predeclared: builtins.Modules()})
	if s.settings, err = sys.Run(context.Background(), s.host); err != nil {
		return s, policyFailed(stderr, s.d, err)
	}
	for _, spec := range s.settings.Sinks {
		if err := addSink(s.fan, spec); err != nil {
			fmt.Fprintf(stderr, "sstar: CRITICAL: cannot open the audit sink the system policy requires: %v; nothing ran\n", err)
			return s, exitUnrecorded
		}
	}
	return s, exitOK
}

// refuse raises the event of a refused launch mode (so that hooks and
// sinks see the attempt), then refuses with exitUsage and why.
func (s *session) refuse(stderr io.Writer, k audit.Kind, why string, args ...starlark.Value) int {
	if err := s.d.Raise(nil, k, args...); err != nil && s.d.Failed() != nil {
		return fatal(stderr, s.d, err)
	}
	fmt.Fprintln(stderr, "sstar: refused: "+why+interactiveNote())
	return exitUsage
}

// close closes every sink, last opened first (syslog confirms that the
// server received everything, the log is flushed to disk), and returns
// the run's exit status: status, or exitUnrecorded if a sink could not
// confirm that it recorded the run's last events (said on stderr).
func (s *session) close(stderr io.Writer, status int) int {
	if err := s.fan.Close(); err != nil {
		fmt.Fprintf(stderr, "sstar: CRITICAL: %s\n", strings.ReplaceAll(err.Error(), "\n", "\nsstar: CRITICAL: "))
		status = exitUnrecorded
	}
	return status
}
