// Command waitparent runs a program as its child and waits for it, as
// sstar's crash monitor runs the run: a Go process that starts another
// with syscall.ForkExec and waits with Wait4, then exits with the child's
// status. make bench times the plain starlark command under it, the
// least that a monitored run can cost: two Go process starts in series.
//
//	waitparent PROGRAM [ARG...]
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: waitparent PROGRAM [ARG...]")
		os.Exit(2)
	}
	pid, err := syscall.ForkExec(os.Args[1], os.Args[1:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "waitparent:", err)
		os.Exit(2)
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	if ws.Signaled() {
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(ws.ExitStatus())
}
