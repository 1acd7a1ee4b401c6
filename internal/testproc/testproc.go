// Package testproc ends the daemons that tests start (rsyslogd,
// journald, systemd-journal-remote): one way to signal one and wait.
package testproc

import (
	"os/exec"
	"syscall"
	"time"
)

// Signal sends sig to the process started as cmd, whose end closes
// done, and waits for it to end, killing it if it has not 30 s later.
// A process that has ended already, or was never started (cmd nil), is
// left alone.
func Signal(cmd *exec.Cmd, done <-chan struct{}, sig syscall.Signal) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
