package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
	"github.com/sstar-project/sstar/audit/kaudit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/harden"
	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/internal/sinkproc"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

// openSink opens the sink spec names, for the run's record fan-out. A
// JSON Lines log and the kernel's audit log are written by sstar itself;
// a sink that needs the network stack (syslog, RELP, journald) runs in
// the run's sink process (see internal/sinkproc), which is started for
// the first one.
func (s *session) openSink(spec policy.Sink) (record.Sink, error) {
	switch {
	case spec.Kinds() > 1:
		return nil, fmt.Errorf("a sink names one destination, not several (%+v)", spec)
	case spec.AuditLog != "":
		log, err := jsonl.Open(spec.AuditLog)
		if err != nil {
			return nil, fmt.Errorf("cannot open the %v; check the path and its directory's permissions", err)
		}
		return log, nil
	case spec.KernelAudit:
		return kaudit.Dial(kaudit.Options{})
	case spec.Syslog != "", spec.Relp != "", spec.Journald:
		if s.sinkproc == nil {
			path, err := sinkProcess()
			if err != nil {
				return nil, err
			}
			if s.sinkproc, err = sinkproc.Start(path, os.Stderr); err != nil {
				return nil, err
			}
		}
		data, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		return s.sinkproc.Open(data)
	}
	return nil, errors.New("an empty sink: give an audit log path, a syslog or RELP address, journald or the kernel audit log")
}

// sinksPath is where the sink process is, if set at build time (go build
// -ldflags "-X main.sinksPath=/usr/libexec/sstar/sstar-sinks"); by
// default, sstar-sinks in the directory of sstar's own executable.
var sinksPath string

// sinkProcess returns the sink process's path, checked as the system
// policy is: a regular file that only its owner can write, and owned by
// root or by the owner of sstar itself, so that whoever cannot replace
// sstar cannot replace the program its records go through either.
func sinkProcess() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find sstar's own executable to find sstar-sinks next to it: %v", err)
	}
	path := sinksPath
	if path == "" {
		path = filepath.Join(filepath.Dir(self), "sstar-sinks")
	}
	var st, me syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", fmt.Errorf("the sink process %s, which sends records to syslog, RELP and journald, is missing: %v; install it next to sstar (make build makes bin/sstar-sinks)", path, ospath.Reason(err))
	}
	syscall.Stat(self, &me)
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return "", fmt.Errorf("the sink process %s is not a regular file", path)
	case st.Mode&0o022 != 0:
		return "", fmt.Errorf("the sink process %s is writable by group or others (mode %04o); chmod go-w %s", path, st.Mode&0o7777, path)
	case st.Uid != 0 && st.Uid != me.Uid:
		return "", fmt.Errorf("the sink process %s is owned by uid %d, neither root nor sstar's owner (uid %d)", path, st.Uid, me.Uid)
	}
	return path, nil
}

// addSink opens spec and adds it to the run's fan-out (which first gives
// it every record kept so far). An audit log on a file the run already
// records to (the system policy's mandatory log named again with
// --audit-log, say) is that sink: the file gets each record once.
func (s *session) addSink(spec policy.Sink) error {
	sink, err := s.openSink(spec)
	if err != nil {
		return err
	}
	if log, ok := sink.(*jsonl.Log); ok {
		for _, other := range s.logs {
			if log.SameFile(other) {
				return log.Close()
			}
		}
		s.logs = append(s.logs, log)
	}
	if err := s.fan.Add(sink); err != nil {
		sink.Close()
		return err
	}
	s.specs = append(s.specs, spec)
	monitored.setSinks(s.specs) // the crash monitor writes the end there too
	return nil
}

// A session is what a run and the trust and verify subcommands share: the
// dispatcher, the run's one record fan-out that every sink hangs off, the
// host, and the settings the system policy decided.
type session struct {
	d         *audit.Dispatcher
	fan       *record.Fanout
	host      *interp.Host
	settings  *policy.Settings
	life      life
	logs      []*jsonl.Log // the audit logs among the sinks
	recording bool         // the run has records, and so an end to record
	sinkproc  *sinkproc.Client
	perm      permissionGate // policy.allow's hook, in place before any policy runs
	specs     []policy.Sink  // the sinks added, for the crash monitor
	result    string         // --result's file, which the watchdog writes too
}

// boot starts a session: it opens the sinks the flags name, finds the
// system policy, denies xattr writes (if lock: a run, not `sstar trust`),
// runs the system policy and opens the sinks it makes mandatory, which
// first receive every record made so far. Without sinks or a system
// policy no hook is added, so that raising an event stays a no-op. A
// status other than exitOK means nothing may run; s.close must be called
// either way.
func boot(flagSinks []policy.Sink, lock bool, stdout, stderr io.Writer) (s *session, status int) {
	s = &session{d: new(audit.Dispatcher), fan: &record.Fanout{Progress: monitored.progress()}, life: life{start: time.Now()}}
	for _, spec := range flagSinks {
		if err := s.addSink(spec); err != nil {
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
		if monitored != nil { // the monitor must know the run id to write its end
			s.fan.RunID = record.NewRunID()
			monitored.setRun(s.fan.RunID)
		}
		// The compile tracker first, so that the sinks see only the
		// fan-out's own sys.addaudithook, and run_start is their first
		// record after it.
		if err := s.d.AddHook(s.life.hook); err != nil {
			return s, fatal(stderr, s.d, err)
		}
		// The fan-out, then the check of declared permissions, which
		// are known once the policies ran (confine.go).
		if err := s.d.AddHook(s.recordThenCheck); err != nil {
			return s, fatal(stderr, s.d, err)
		}
		s.perm.added = true
		s.recording = true
		if err := s.begin(); err != nil {
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
	var mods builtins.Options
	if lock {
		// Before the first process a script (or policy) starts, sstar
		// enters a Landlock domain, so that no such process can ptrace
		// or write the memory of one outside it: the shell that started
		// sstar, the crash monitor (harden.Isolate).
		mods.BeforeStart = isolate
	}
	s.host = interp.New(interp.Options{Audit: s.d, Stdout: stdout, Predeclared: builtins.ModulesWith(mods)})
	if s.settings, err = sys.Run(context.Background(), s.host); err != nil {
		return s, policyFailed(stderr, s.d, err)
	}
	s.fan.SetMaxRecord(s.settings.MaxRecord)
	monitored.setLimits(0, 0, 0, s.settings.MaxRecord)
	for _, spec := range s.settings.Sinks {
		if err := s.addSink(spec); err != nil {
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
	err := s.fan.Close()
	if s.sinkproc != nil {
		err = errors.Join(err, s.sinkproc.Close())
	}
	if err != nil {
		fmt.Fprintf(stderr, "sstar: CRITICAL: %s\n", strings.ReplaceAll(err.Error(), "\n", "\nsstar: CRITICAL: "))
		status = exitUnrecorded
	}
	return status
}
