// Package journaldtest runs a real systemd-journald for tests, with a
// socket, journal directory and configuration of the test's own, never
// touching the system's journal.
//
// journald's paths are fixed (/run/systemd/journal/socket, /run/log/journal,
// /etc/systemd/journald.conf), so it runs in a mount namespace of its
// own in which the test's directory is mounted on /run and the test's
// configuration on /etc/systemd/journald.conf; the socket it creates is
// the test directory's run/systemd/journal/socket, which the test's
// sinks connect to from outside. It runs without the audit capabilities:
// a journald started with no sockets would otherwise switch the kernel's
// audit on (AUDIT_SET) for the whole machine and leave it on.
//
// Start skips the test, saying why, where journald or the tools to run
// it (unshare, setpriv) are missing, or the test is not root.
package journaldtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sstar-project/sstar/internal/testproc"
)

// Config is the journald.conf the tests run: volatile storage under
// /run, nothing forwarded, the kernel's log not read.
const Config = `[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
`

// A Journald is a running systemd-journald.
type Journald struct {
	Dir    string // the test's directory: run/ is its /run
	Socket string // its native socket
	t      testing.TB
	d      *testproc.Daemon
}

// Binary returns the path of systemd-journald, or "" if it is missing.
func Binary() string {
	for _, p := range []string{"/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts journald and waits for its socket. It is stopped when
// the test ends.
func Start(t testing.TB) *Journald {
	t.Helper()
	bin := Binary()
	switch {
	case bin == "":
		t.Skip("needs systemd-journald (Debian package systemd; .ci/deps installs it)")
	case os.Geteuid() != 0:
		t.Skip("needs root: journald runs in a mount namespace of its own")
	}
	for _, tool := range []string{"unshare", "setpriv", "journalctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages util-linux and systemd)", tool)
		}
	}
	if _, err := os.Stat("/etc/systemd/journald.conf"); err != nil {
		t.Skip("needs /etc/systemd/journald.conf to mount the test's configuration on (Debian package systemd)")
	}
	dir, err := os.MkdirTemp("", "journaldtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"run/systemd/journal", "run/log/journal"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "journald.conf")
	if err := os.WriteFile(conf, []byte(Config), 0o644); err != nil {
		t.Fatal(err)
	}
	j := &Journald{Dir: dir, Socket: filepath.Join(dir, "run/systemd/journal/socket"), t: t}
	// A network namespace of its own, too, so that its socket's queue can
	// be what systemd sets on every host it boots (sysctl.d's
	// 50-default.conf: net.unix.max_dgram_qlen = 512) without changing
	// this machine's: a datagram socket takes the limit of the namespace
	// it was made in, and a socket bound to a path is reached from any.
	script := `echo 512 > /proc/sys/net/unix/max_dgram_qlen && mount --bind "$1/run" /run && mount --bind "$1/journald.conf" /etc/systemd/journald.conf && exec setpriv --bounding-set -audit_control,-audit_read,-audit_write -- "$2"`
	cmd := exec.Command("unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-c", script, "sh", dir, bin)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_LOG_TARGET=console", "SYSTEMD_LOG_LEVEL=info"}
	d, err := testproc.Start("journald", cmd, filepath.Join(dir, "journald.out"))
	if err != nil {
		t.Fatal(err)
	}
	j.d = d
	t.Cleanup(j.Stop)
	if err := d.WaitReady("create its socket", func() bool {
		_, err := os.Stat(j.Socket)
		return err == nil
	}); err != nil {
		t.Fatal(err)
	}
	return j
}

// Output returns what journald itself printed.
func (j *Journald) Output() string { return j.d.Output() }

// Stop stops journald (SIGTERM, which syncs the journal) and waits.
func (j *Journald) Stop() { j.d.Signal(syscall.SIGTERM) }

// Kill kills journald (SIGKILL) and waits.
func (j *Journald) Kill() { j.d.Signal(syscall.SIGKILL) }

// Pid returns journald's process id.
func (j *Journald) Pid() int { return j.d.Pid() }

// JournalDir is the directory the journal files are in.
func (j *Journald) JournalDir() string { return filepath.Join(j.Dir, "run/log/journal") }

// Entries returns the entries journalctl -o json --directory finds with
// the given matches (FIELD=value), oldest first.
func (j *Journald) Entries(matches ...string) []map[string]any {
	j.t.Helper()
	return entries(j.t, j.JournalDir(), matches)
}

// entries runs journalctl -o json on the journal files in dir.
func entries(t testing.TB, dir string, matches []string) []map[string]any {
	t.Helper()
	args := append([]string{"--directory=" + dir, "-o", "json", "--no-pager", "--all"}, matches...)
	out, err := exec.Command("journalctl", args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && bytes.Contains(ee.Stderr, []byte("No entries")) {
			return nil
		}
		t.Fatalf("journalctl %v: %v\n%s", args, err, out)
	}
	var entries []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journalctl printed a line that is not JSON: %v: %.200s", err, sc.Bytes())
		}
		entries = append(entries, e)
	}
	return entries
}

// WaitEntries waits until at least n entries match, or timeout.
func (j *Journald) WaitEntries(n int, timeout time.Duration, matches ...string) []map[string]any {
	j.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		es := j.Entries(matches...)
		if len(es) >= n || time.Now().After(deadline) {
			return es
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Field returns an entry's field as a string: journalctl prints a value
// that is not valid UTF-8, or holds control characters, as an array of
// bytes.
func Field(e map[string]any, name string) (string, error) {
	switch v := e[name].(type) {
	case string:
		return v, nil
	case []any:
		b := make([]byte, len(v))
		for i, x := range v {
			f, ok := x.(float64)
			if !ok {
				return "", fmt.Errorf("field %s: byte %v is not a number", name, x)
			}
			b[i] = byte(f)
		}
		return string(b), nil
	case nil:
		return "", fmt.Errorf("no field %s", name)
	}
	return "", fmt.Errorf("field %s: %T", name, e[name])
}
