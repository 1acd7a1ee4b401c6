package journaldtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sstar-project/sstar/internal/testcert"
	"github.com/sstar-project/sstar/internal/testproc"
)

// A Remote is a running systemd-journal-remote, the central server of a
// fleet, on loopback: it listens for HTTPS on a port of 127.0.0.1, takes
// only clients with a certificate from the test's CA, and writes what it
// receives to journal files in its own directory. Its configuration is
// the test's, mounted on /etc/systemd/journal-remote.conf in a mount
// namespace of its own; systemd-journal-upload runs the same way (Upload).
type Remote struct {
	Dir  string // the certificates (package testcert's files) and configurations
	Port int
	t    testing.TB
	d    *testproc.Daemon
}

// RemoteTool returns the path of systemd-journal-remote or
// systemd-journal-upload (name), or "" if it is missing.
func RemoteTool(name string) string {
	for _, p := range []string{"/lib/systemd/" + name, "/usr/lib/systemd/" + name} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// NewRemote makes the central server's directory and certificates; it
// skips the test, saying why, where the tools are missing or the test is
// not root.
func NewRemote(t testing.TB) *Remote {
	t.Helper()
	for _, name := range []string{"systemd-journal-remote", "systemd-journal-upload"} {
		if RemoteTool(name) == "" {
			t.Skipf("needs %s (Debian package systemd-journal-remote; .ci/deps installs it)", name)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: systemd-journal-remote and -upload run in a mount namespace of their own")
	}
	for _, f := range []string{"/etc/systemd/journal-remote.conf", "/etc/systemd/journal-upload.conf"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s to mount the test's configuration on (Debian package systemd-journal-remote)", f)
		}
	}
	dir, err := os.MkdirTemp("", "journalremote-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "remote"), 0o755); err != nil {
		t.Fatal(err)
	}
	testcert.Write(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return &Remote{Dir: dir, Port: port, t: t}
}

// File returns the path of one of the test's files in its directory,
// such as testcert.CA.
func (r *Remote) File(name string) string { return filepath.Join(r.Dir, name) }

// JournalDir is where the central server writes what it received.
func (r *Remote) JournalDir() string { return filepath.Join(r.Dir, "remote") }

// withConfig returns a command running bin with args in a mount
// namespace where conf's text is /etc/systemd/NAME.
func (r *Remote) withConfig(ctx context.Context, name, conf, bin string, args ...string) *exec.Cmd {
	r.t.Helper()
	path := filepath.Join(r.Dir, name)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		r.t.Fatal(err)
	}
	script := `mount --bind "$1" "$2" && shift 2 && exec "$@"`
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", path, "/etc/systemd/" + name, bin}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_LOG_TARGET=console", "SYSTEMD_LOG_LEVEL=info"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Start starts systemd-journal-remote with conf as its
// journal-remote.conf, as Debian's systemd-journal-remote.service runs
// it (--listen-https, --output=DIR/), on 127.0.0.1:Port, and waits until
// it listens. It is stopped when the test ends.
func (r *Remote) Start(conf string) {
	t := r.t
	t.Helper()
	cmd := r.withConfig(context.Background(), "journal-remote.conf", conf, RemoteTool("systemd-journal-remote"),
		fmt.Sprintf("--listen-https=127.0.0.1:%d", r.Port), "--output="+r.JournalDir()+"/")
	d, err := testproc.Start("systemd-journal-remote", cmd, filepath.Join(r.Dir, "remote.out"))
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	t.Cleanup(r.Stop)
	if err := d.WaitReady("listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Output returns what systemd-journal-remote printed.
func (r *Remote) Output() string { return r.d.Output() }

// Stop stops systemd-journal-remote (SIGTERM, which closes its journal
// files) and waits.
func (r *Remote) Stop() { r.d.Signal(syscall.SIGTERM) }

// Upload runs systemd-journal-upload once, with conf as its
// journal-upload.conf, on the journal files in journalDir, until it has
// sent every entry (--follow=no), keeping its position in a state file
// of the test's (--save-state). It returns what the tool printed, and
// an error if it failed or took more than a minute.
func (r *Remote) Upload(conf, journalDir string) (string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.withConfig(ctx, "journal-upload.conf", conf, RemoteTool("systemd-journal-upload"),
		"--directory="+journalDir, "--save-state="+filepath.Join(r.Dir, "upload-state"), "--follow=no")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Entries returns the entries journalctl finds in what the central
// server received, with the given matches (FIELD=value), oldest first.
func (r *Remote) Entries(matches ...string) []map[string]any {
	r.t.Helper()
	return entries(r.t, r.JournalDir(), matches)
}
