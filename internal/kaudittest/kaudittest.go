// Package kaudittest switches the kernel's auditing on for a test and
// reads the records back, restoring what it found when the test ends.
//
// Many machines run with auditing off (AUDIT_GET says enabled=0): the
// kernel then acknowledges user records and drops them. Enable turns it
// on (AUDIT_SET enabled=1, what auditctl -e 1 does) for the test's
// duration and sets it back when the test ends, passed or failed; in
// case the test binary dies first (a panic, a timeout, a kill), a
// watchdog process it starts restores the setting once the test binary
// is gone. It never registers as the audit daemon, so the machine's
// auditd, if any, keeps receiving everything.
//
// A Reader reads records as the kernel multicasts them to log readers
// (the AUDIT_NLGRP_READLOG group journald also reads), which needs
// CAP_AUDIT_READ and leaves the audit daemon's unicast stream alone.
package kaudittest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit/kaudit"
)

// Enable turns the kernel's auditing on until the test ends. It skips
// the test if the process may not (it needs CAP_AUDIT_CONTROL in the
// initial namespaces) or the setting is locked (enabled=2).
func Enable(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_AUDIT_CONTROL) to switch the kernel's auditing on")
	}
	fd, err := kaudit.Open()
	if err != nil {
		t.Skipf("needs the kernel's audit subsystem: %v", err)
	}
	defer unix.Close(fd)
	st, err := kaudit.GetStatus(fd)
	if err != nil {
		t.Skipf("needs to read the kernel's audit status (CAP_AUDIT_CONTROL, initial namespaces): %v", err)
	}
	switch st.Enabled {
	case 1:
		return // on already: nothing to change or restore
	case 2:
		t.Skip("the kernel's audit setting is locked (enabled=2): it cannot be switched for the test")
	}
	prev := st.Enabled
	// The watchdog restores the setting if this process dies before its
	// cleanup runs; on a normal end the cleanup restores it and stops
	// the watchdog.
	var watchdog *exec.Cmd
	if auditctl, err := exec.LookPath("auditctl"); err == nil {
		watchdog = exec.Command("sh", "-c", fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 0.2; done; exec %s -e %d >/dev/null", os.Getpid(), auditctl, prev))
		if err := watchdog.Start(); err != nil {
			watchdog = nil
		}
	}
	t.Cleanup(func() {
		fd, err := kaudit.Open()
		if err == nil {
			err = kaudit.SetEnabled(fd, prev)
			unix.Close(fd)
		}
		if err != nil {
			t.Errorf("restoring the kernel's auditing to enabled=%d: %v (the watchdog will try again)", prev, err)
			return
		}
		if watchdog != nil {
			watchdog.Process.Kill()
			watchdog.Wait()
		}
	})
	if err := kaudit.SetEnabled(fd, 1); err != nil {
		t.Fatalf("switching the kernel's auditing on: %v", err)
	}
}

// A Record is one record the kernel multicast to log readers.
type Record struct {
	Type int
	Text string // audit(SECONDS.MILLIS:SERIAL): fields
}

// A Reader collects the records of one type the kernel sends to log
// readers.
type Reader struct {
	t    testing.TB
	fd   int
	mu   sync.Mutex
	recs []Record
	err  error
	done chan struct{}
	stop chan struct{}
}

// Read starts a Reader of the records of type typ. It stops when the
// test ends.
func Read(t testing.TB, typ int) *Reader {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		t.Skipf("needs the kernel's audit subsystem: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.AUDIT_NLGRP_READLOG - 1)}); err != nil {
		unix.Close(fd)
		t.Skipf("needs CAP_AUDIT_READ to read the kernel's audit records: %v", err)
	}
	// A large buffer, so that the kernel does not drop records for a
	// reader that falls behind.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	r := &Reader{t: t, fd: fd, done: make(chan struct{}), stop: make(chan struct{})}
	go r.loop(typ)
	t.Cleanup(func() {
		close(r.stop)
		<-r.done
		unix.Close(fd)
	})
	return r
}

func (r *Reader) loop(typ int) {
	defer close(r.done)
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return
		}
		if n == 0 {
			return
		}
		r.mu.Lock()
		for _, m := range kaudit.Messages(buf[:n]) {
			if int(m.Header.Type) == typ {
				r.recs = append(r.recs, Record{Type: typ, Text: strings.TrimRight(string(m.Data), "\x00")})
			}
		}
		r.mu.Unlock()
	}
}

// Records returns the records received so far that contain substr.
func (r *Reader) Records(substr string) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.recs {
		if strings.Contains(rec.Text, substr) {
			out = append(out, rec)
		}
	}
	return out
}

// Wait waits until n records containing substr arrived, or timeout.
func (r *Reader) Wait(n int, substr string, timeout time.Duration) []Record {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := r.Records(substr)
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		if err != nil {
			r.t.Fatalf("reading audit records: %v (records were lost: the reader fell behind)", err)
		}
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}
