// Package testproc starts and ends the daemons that tests run (rsyslogd,
// journald, systemd-journal-remote, auditd): one way to start one with
// its output in a file, wait until it is ready, signal it and wait for
// its end.
package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// A Daemon is a process a test started.
type Daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	out  string
}

// Start starts cmd as the daemon called name (in messages), its output
// and errors appended to the file out. It dies with the thread that
// started it (Pdeathsig), so a test that dies leaves nothing running.
// The caller stops it, usually in a t.Cleanup.
func Start(name string, cmd *exec.Cmd, out string) (*Daemon, error) {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	d := &Daemon{name: name, cmd: cmd, done: make(chan struct{}), out: out}
	go func() { cmd.Wait(); close(d.done) }()
	return d, nil
}

// Output returns what the daemon printed so far ("" for a nil one).
func (d *Daemon) Output() string {
	if d == nil {
		return ""
	}
	b, _ := os.ReadFile(d.out)
	return string(b)
}

// Pid returns the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the daemon has ended.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// WaitReady waits up to 20 s for ready to say the daemon is, and says
// why not, with what the daemon printed: it ended first, or it did not
// get there (what it did not do, as in "did not listen").
func (d *Daemon) WaitReady(what string, ready func() bool) error {
	deadline := time.Now().Add(20 * time.Second)
	for !ready() {
		select {
		case <-d.done:
			return fmt.Errorf("%s exited at start:\n%s", d.name, d.Output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not %s within 20s:\n%s", d.name, what, d.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Signal sends sig to the daemon and waits for it to end, killing it if
// it has not 30 s later. A daemon that has ended already, or a nil one
// (never started), is left alone.
func (d *Daemon) Signal(sig syscall.Signal) {
	if d == nil {
		return
	}
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}
