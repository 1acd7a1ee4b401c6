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
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit/kaudit"
	"github.com/sstar-project/sstar/internal/testproc"
)

// Lock holds, until the test ends, the machine-wide lock of tests that
// use the kernel's audit settings: go test runs packages' test binaries
// at the same time, and one restoring "off" while another relies on "on"
// would lose the other's records.
func Lock(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "sstar-kernel-audit-tests.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// Enable turns the kernel's auditing on until the test ends, holding
// Lock. It skips the test if the process may not (it needs
// CAP_AUDIT_CONTROL in the initial namespaces) or the setting is locked
// (enabled=2).
func Enable(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_AUDIT_CONTROL) to switch the kernel's auditing on")
	}
	Lock(t)
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

// AuditdConfig is the auditd.conf the tests run, for a log file in dir:
// every record flushed to disk before the next, nothing sent anywhere.
func AuditdConfig(dir string) string {
	return fmt.Sprintf(`local_events = yes
write_logs = yes
log_file = %s/audit.log
log_format = RAW
flush = SYNC
max_log_file = 64
max_log_file_action = IGNORE
num_logs = 1
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = HALT
disk_error_action = HALT
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = SYSLOG
plugin_dir = %s/plugins.d
end_of_event_timeout = 2
`, dir, dir)
}

// An Auditd is a running audit daemon of the test's own.
type Auditd struct {
	Log string // its audit.log
	Dir string // its configuration, log and /run
	d   *testproc.Daemon
}

// StartAuditd runs auditd for the test, registered as the kernel's audit
// daemon until the test ends (it is stopped then, or killed with the
// test binary, and the kernel forgets it when its socket closes), with
// a configuration, log file and pid file of its own: it runs in a mount
// namespace whose /run is the test's. It does not change whether
// auditing is on (-s nochange; see Enable), and loads no rules. It skips
// the test if auditd is missing or another audit daemon is registered.
func StartAuditd(t testing.TB) *Auditd {
	t.Helper()
	bin := needAuditd(t)
	a := newAuditd(t, AuditdConfig)
	a.start(t, bin, nil, `mount --bind "$1/run" /run && exec "$2" -n -s nochange -c "$1"`, registered)
	return a
}

// needAuditd skips the test unless auditd and the tools are there and no
// audit daemon is registered with the kernel, and returns auditd's path.
func needAuditd(t testing.TB, tools ...string) string {
	t.Helper()
	bin, err := exec.LookPath("auditd")
	if err != nil {
		t.Skip("needs auditd (Debian package auditd; .ci/deps installs it)")
	}
	for _, tool := range append([]string{"unshare", "ausearch"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages util-linux, auditd, iproute2; .ci/deps installs them)", tool)
		}
	}
	st := Status(t)
	if st.PID != 0 {
		t.Skipf("an audit daemon (pid %d) is registered: the test does not take its place", st.PID)
	}
	return bin
}

// newAuditd makes the daemon's directory, with conf(dir) as its
// auditd.conf.
func newAuditd(t testing.TB, conf func(dir string) string) *Auditd {
	t.Helper()
	dir, err := os.MkdirTemp("", "auditdtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"run", "plugins.d"} {
		if err := os.MkdirAll(dir+"/"+d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dir+"/auditd.conf", []byte(conf(dir)), 0o640); err != nil {
		t.Fatal(err)
	}
	return &Auditd{Log: dir + "/audit.log", Dir: dir}
}

// registered says whether an audit daemon is registered with the kernel.
func registered(*Auditd) bool {
	fd, err := kaudit.Open()
	if err != nil {
		return false
	}
	st, err := kaudit.GetStatus(fd)
	unix.Close(fd)
	return err == nil && st.PID != 0
}

// start runs prefix, then unshare --mount and script with the daemon's
// directory and bin as $1 and $2, and waits until ready says it is.
func (a *Auditd) start(t testing.TB, bin string, prefix []string, script string, ready func(*Auditd) bool) {
	t.Helper()
	args := append(prefix, "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", a.Dir, bin)
	d, err := testproc.Start("auditd", exec.Command(args[0], args[1:]...), a.Dir+"/auditd.out")
	if err != nil {
		t.Fatal(err)
	}
	a.d = d
	t.Cleanup(a.Stop)
	if err := d.WaitReady("get ready", func() bool { return ready(a) }); err != nil {
		t.Fatal(err)
	}
}

// Output returns what auditd (and its plugins) printed.
func (a *Auditd) Output() string { return a.d.Output() }

// Stop stops auditd (SIGTERM) and waits; the kernel then has no audit
// daemon again.
func (a *Auditd) Stop() { a.d.Signal(syscall.SIGTERM) }

// Search runs ausearch on the daemon's log with args (such as -m
// TRUSTED_APP) and returns its output. ausearch fails when nothing
// matches (yet).
func (a *Auditd) Search(args ...string) (string, error) {
	out, err := exec.Command("ausearch", append([]string{"--input", a.Log}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ausearch %v: %v\n%s", args, err, out)
	}
	return string(out), nil
}

// Status returns the kernel's audit status, skipping the test if the
// kernel has no audit subsystem or its status cannot be read (that needs
// root).
func Status(t testing.TB) kaudit.Status {
	t.Helper()
	fd, err := kaudit.Open()
	if err != nil {
		t.Skipf("needs the kernel's audit subsystem: %v", err)
	}
	st, err := kaudit.GetStatus(fd)
	unix.Close(fd)
	if err != nil {
		t.Skipf("needs to read the kernel's audit status (root): %v", err)
	}
	return st
}
