package opencode

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/internal/fusetest"
)

func newDispatcher(t testing.TB) (*audit.Dispatcher, *audittest.Recorder) {
	d, r := new(audit.Dispatcher), new(audittest.Recorder)
	if err := d.AddHook(r.Hook); err != nil {
		t.Fatal(err)
	}
	return d, r
}

// needXattrs skips a test when dir's file system cannot hold user xattrs.
func needXattrs(t testing.TB, dir string) {
	t.Helper()
	p := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	if err := unix.Setxattr(p, "user.probe", []byte("1"), 0); err != nil {
		t.Skipf("needs user xattrs in the temporary directory %s: %v", dir, err)
	}
}

// writeStamped writes content to dir/name and stamps it.
func writeStamped(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := new(Opener).Stamp(new(audit.Dispatcher), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func setStamp(t testing.TB, path, value string) {
	t.Helper()
	if err := unix.Setxattr(path, DefaultXattrName, []byte(value), 0); err != nil {
		t.Fatal(err)
	}
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestStampedFileOpens(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	const src = "print('hello')\n"
	p := writeStamped(t, dir, "ok.star", src)

	d, rec := newDispatcher(t)
	code, err := new(Opener).Verify(d, p)
	if err != nil {
		t.Fatal(err)
	}
	if string(code.Data) != src || code.Path != p || hex.EncodeToString(code.SHA256[:]) != hashOf(src) {
		t.Errorf("Verify = %+v, want the content, path and hash of %s", code, p)
	}
	if got := strings.Join(rec.Names(), " "); got != "sstar.open_code sstar.exec_check" {
		t.Errorf("events %q, want sstar.open_code then sstar.exec_check", got)
	}
	ev, _ := rec.Find("sstar.exec_check")
	// A 0644 file: the kernel says no, and (without the securebit) that is
	// logged, not enforced.
	want := fmt.Sprintf("(%q, False, False, %q)", p, describeExecCheck(unix.EACCES))
	if ev.Args().String() != want {
		t.Errorf("sstar.exec_check args %s, want %s", ev.Args(), want)
	}
}

func TestOpenCodeUsesThreadDispatcher(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "ok.star", "x = 1\n")

	// A thread nobody audits must not open code.
	if _, err := new(Opener).OpenCode(&starlark.Thread{}, p); !errors.Is(err, audit.ErrNoDispatcher) {
		t.Errorf("OpenCode on a thread without a dispatcher: %v, want ErrNoDispatcher", err)
	}
	d, rec := newDispatcher(t)
	th := &starlark.Thread{}
	audit.Attach(th, d)
	if _, err := new(Opener).OpenCode(th, p); err != nil {
		t.Fatal(err)
	}
	if ev, ok := rec.Find("sstar.open_code"); !ok || ev.Args().String() != fmt.Sprintf("(%q,)", p) {
		t.Errorf("sstar.open_code = %v, %v", ev, ok)
	}
}

func TestRelativePathIsMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "rel.star", "x = 1\n")
	t.Chdir(dir)
	d, rec := newDispatcher(t)
	code, err := new(Opener).Verify(d, "rel.star")
	if err != nil {
		t.Fatal(err)
	}
	if code.Path != p {
		t.Errorf("Path = %q, want %q", code.Path, p)
	}
	if ev, _ := rec.Find("sstar.open_code"); ev.Args().String() != fmt.Sprintf("(%q,)", p) {
		t.Errorf("sstar.open_code args %s, want the absolute path", ev.Args())
	}
}

func TestSymlinkToStampedFileOpens(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	target := writeStamped(t, dir, "target.star", "x = 1\n")
	link := filepath.Join(dir, "link.star")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	d, _ := newDispatcher(t)
	code, err := new(Opener).Verify(d, link)
	if err != nil {
		t.Fatal(err)
	}
	if code.Path != link || string(code.Data) != "x = 1\n" {
		t.Errorf("Verify(link) = %+v", code)
	}
}

// refusal checks that err is a *RefusedError for path wrapping want, and
// that sstar.code_integrity_failure was raised with the same reason.
func refusal(t *testing.T, rec *audittest.Recorder, err error, path string, want error) *RefusedError {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *RefusedError", err, err)
	}
	if !errors.Is(err, want) {
		t.Errorf("error %q does not match %q", err, want)
	}
	if re.Path != path || !strings.Contains(err.Error(), path) {
		t.Errorf("refusal %q does not name %s", err, path)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("refusal %q is not one line", err)
	}
	ev, ok := rec.Find("sstar.code_integrity_failure")
	if !ok {
		t.Fatalf("no sstar.code_integrity_failure among %v", rec.Names())
	}
	wantArgs := starlark.Tuple{starlark.String(path), starlark.String(re.Reason.Error()), starlark.True}
	if ev.Args().String() != wantArgs.String() {
		t.Errorf("sstar.code_integrity_failure%s, want %s", ev.Args(), wantArgs)
	}
	return re
}

func TestStampRefusals(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	const src = "print('trusted')\n"
	for _, tc := range []struct {
		name    string
		prepare func(p string) // the file already holds src
		want    error
		text    []string // the message must contain each
	}{
		{"unstamped", func(p string) {}, ErrNoStamp, []string{"no " + DefaultXattrName + " attribute", "sstar trust"}},
		{"edited after stamping", func(p string) {
			setStamp(t, p, hashOf(src))
			os.WriteFile(p, []byte(src+"print('planted')\n"), 0o644)
		}, ErrMismatch, []string{"stamp is sha256 " + hashOf(src), "content is sha256 " + hashOf(src+"print('planted')\n")}},
		{"stamp copied from another file", func(p string) {
			other := writeStamped(t, dir, "other.star", "print('other')\n")
			v := make([]byte, 64)
			n, err := unix.Getxattr(other, DefaultXattrName, v)
			if err != nil {
				t.Fatal(err)
			}
			setStamp(t, p, string(v[:n]))
		}, ErrMismatch, []string{"stamp is sha256 " + hashOf("print('other')\n")}},
		{"uppercase hex", func(p string) { setStamp(t, p, strings.ToUpper(hashOf(src))) }, ErrMalformedStamp, []string{"uppercase"}},
		{"non-hex", func(p string) { setStamp(t, p, "z"+hashOf(src)[1:]) }, ErrMalformedStamp, []string{"non-hex"}},
		{"too short", func(p string) { setStamp(t, p, hashOf(src)[:63]) }, ErrMalformedStamp, []string{"63 bytes"}},
		{"trailing newline", func(p string) { setStamp(t, p, hashOf(src)+"\n") }, ErrMalformedStamp, []string{"65 bytes"}},
		{"empty stamp", func(p string) { setStamp(t, p, "") }, ErrMalformedStamp, []string{"empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".star")
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.prepare(p)
			d, rec := newDispatcher(t)
			_, err := new(Opener).Verify(d, p)
			refusal(t, rec, err, p, tc.want)
			for _, s := range tc.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestMismatchErrorCarriesBothHashes(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "m.star", "a = 1\n")
	os.WriteFile(p, []byte("a = 2\n"), 0o644)
	_, err := new(Opener).Verify(new(audit.Dispatcher), p)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("%v: want a *MismatchError", err)
	}
	if me.Stamp != hashOf("a = 1\n") || me.Content != hashOf("a = 2\n") {
		t.Errorf("MismatchError{Stamp: %s, Content: %s}", me.Stamp, me.Content)
	}
}

func TestNotRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.star")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// A socket file: open(2) fails on it with ENXIO.
	sock := filepath.Join(dir, "sock.star")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sub := filepath.Join(dir, "dir.star")
	os.Mkdir(sub, 0o755)

	for _, tc := range []struct {
		path, kind string
	}{
		{sub, "a directory"},
		{fifo, "a FIFO"},                    // no writer: opening or reading it would hang
		{"/dev/zero", "a character device"}, // reading it would never end
		{sock, "a socket"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			d, rec := newDispatcher(t)
			_, err := new(Opener).Verify(d, tc.path)
			refusal(t, rec, err, tc.path, ErrNotRegular)
			if !strings.Contains(err.Error(), "it is "+tc.kind) {
				t.Errorf("message %q does not say it is %s", err, tc.kind)
			}
			if _, ok := rec.Find("sstar.exec_check"); ok {
				t.Errorf("the kernel was asked about %s, which was refused before", tc.kind)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "big.star", strings.Repeat("#", 101)+"\n")
	d, rec := newDispatcher(t)
	_, err := (&Opener{MaxSize: 101}).Verify(d, p)
	refusal(t, rec, err, p, ErrTooLarge)
	if !strings.Contains(err.Error(), "102 bytes, the limit is 101") {
		t.Errorf("message %q does not give the size and the limit", err)
	}
	if _, err := (&Opener{MaxSize: 102}).Verify(d, p); err != nil {
		t.Errorf("a file exactly at the limit: %v", err)
	}

	// The default limit, with a sparse file: refused from fstat, unread.
	huge := filepath.Join(dir, "huge.star")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(DefaultMaxSize + 1)
	f.Close()
	d, rec = newDispatcher(t)
	_, err = new(Opener).Verify(d, huge)
	refusal(t, rec, err, huge, ErrTooLarge)
}

func TestMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.star")
	d, rec := newDispatcher(t)
	_, err := new(Opener).Verify(d, p)
	refusal(t, rec, err, p, ErrUnreadable)
	if !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("message %q does not say why", err)
	}
}

func TestNoexecMount(t *testing.T) {
	mnt := mountTmpfs(t, unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV)
	p := filepath.Join(mnt, "x.star")
	os.WriteFile(p, []byte("x = 1\n"), 0o755)
	if _, _, err := new(Opener).Stamp(new(audit.Dispatcher), p); err != nil {
		t.Fatalf("stamping on tmpfs (user xattrs need Linux 6.6): %v", err)
	}
	d, rec := newDispatcher(t)
	_, err := new(Opener).Verify(d, p)
	refusal(t, rec, err, p, ErrNoexec)
}

// mountTmpfs mounts a small tmpfs with flags on a temporary directory
// for the test, and unmounts it afterwards. It needs CAP_SYS_ADMIN.
func mountTmpfs(t *testing.T, flags uintptr) string {
	t.Helper()
	return mountFS(t, "tmpfs", flags)
}

func mountFS(t *testing.T, fstype string, flags uintptr) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount("sstar-test", mnt, fstype, flags, "size=1m,mode=0755"); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("needs root (CAP_SYS_ADMIN) to mount %s: %v", fstype, err)
		}
		t.Fatalf("mount %s on %s: %v", fstype, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func TestExecCheckEnforcedByOpener(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	plain := writeStamped(t, dir, "plain.star", "x = 1\n")
	exe := writeStamped(t, dir, "exe.star", "x = 2\n")
	os.Chmod(exe, 0o755)
	if err := KernelExecCheck(openFd(t, exe)); errors.Is(err, unix.EINVAL) {
		t.Skip("needs AT_EXECVE_CHECK (Linux 6.14)")
	}

	o := &Opener{EnforceExecCheck: true}
	d, rec := newDispatcher(t)
	_, err := o.Verify(d, plain)
	refusal(t, rec, err, plain, ErrExecCheck)
	if !strings.Contains(err.Error(), "the system policy enforces") || !strings.Contains(err.Error(), "chmod +x") {
		t.Errorf("message %q does not say why and what to do", err)
	}
	ev, _ := rec.Find("sstar.exec_check")
	if ev.Args().Index(1) != starlark.False || ev.Args().Index(2) != starlark.True {
		t.Errorf("sstar.exec_check%s: want allowed=False enforced=True", ev.Args())
	}

	d, rec = newDispatcher(t)
	if _, err := o.Verify(d, exe); err != nil {
		t.Errorf("an executable stamped file under enforcement: %v", err)
	}
	ev, _ = rec.Find("sstar.exec_check")
	if want := fmt.Sprintf("(%q, True, True, \"allowed\")", exe); ev.Args().String() != want {
		t.Errorf("sstar.exec_check%s, want %s", ev.Args(), want)
	}
}

func openFd(t testing.TB, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func TestHookAbortIsNotARefusal(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "x.star", "x = 1\n")
	for _, event := range []string{"sstar.open_code", "sstar.exec_check"} {
		t.Run(event, func(t *testing.T) {
			d, rec := newDispatcher(t)
			d.AddHook(func(ev audit.Event) error {
				if ev.Name == event {
					return errors.New("not today")
				}
				return nil
			})
			_, err := new(Opener).Verify(d, p)
			var ab *audit.AbortError
			if !errors.As(err, &ab) || ab.Event != event {
				t.Fatalf("error %v, want the abort of %s", err, event)
			}
			var re *RefusedError
			if errors.As(err, &re) {
				t.Errorf("an aborted event became a refusal: %v", err)
			}
			if _, ok := rec.Find("sstar.code_integrity_failure"); ok {
				t.Errorf("an aborted event was reported as an integrity failure")
			}
		})
	}
}

func TestXattrName(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "x.star", "x = 1\n") // stamped under user.sstar.sha256

	t.Run("invalid namespace", func(t *testing.T) {
		for _, name := range []string{"security.sstar", "system.x", "user.", "sstar.sha256"} {
			d, rec := newDispatcher(t)
			_, err := (&Opener{XattrName: name}).Verify(d, p)
			refusal(t, rec, err, p, ErrConfig)
			if _, _, err := (&Opener{XattrName: name}).Stamp(d, p); !errors.Is(err, ErrConfig) {
				t.Errorf("Stamp with xattr %q: %v, want ErrConfig", name, err)
			}
		}
	})
	t.Run("another user name", func(t *testing.T) {
		o := &Opener{XattrName: "user.example.code"}
		d, rec := newDispatcher(t)
		_, err := o.Verify(d, p)
		refusal(t, rec, err, p, ErrNoStamp)
		if _, _, err := o.Stamp(d, p); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Verify(d, p); err != nil {
			t.Errorf("after stamping under %s: %v", o.XattrName, err)
		}
	})
	t.Run("trusted namespace", func(t *testing.T) {
		o := &Opener{XattrName: "trusted.sstar.sha256"}
		if _, _, err := o.Stamp(new(audit.Dispatcher), p); err != nil {
			if errors.Is(err, ErrNotPermitted) {
				t.Skipf("needs CAP_SYS_ADMIN to write trusted.* xattrs: %v", err)
			}
			t.Fatal(err)
		}
		if _, err := o.Verify(new(audit.Dispatcher), p); err != nil {
			t.Errorf("stamped under trusted.*: %v", err)
		}
		// A user.* stamp does not count at the trusted level.
		q := writeStamped(t, dir, "user-only.star", "y = 1\n")
		d, rec := newDispatcher(t)
		_, err := o.Verify(d, q)
		refusal(t, rec, err, q, ErrNoStamp)
	})
}

func TestFileSystemWithoutXattrs(t *testing.T) {
	// ramfs has no xattr support at all.
	mnt := mountFS(t, "ramfs", 0)
	p := filepath.Join(mnt, "x.star")
	os.WriteFile(p, []byte("x = 1\n"), 0o644)
	d, rec := newDispatcher(t)
	_, err := new(Opener).Verify(d, p)
	refusal(t, rec, err, p, ErrNoStamp)
	if !strings.Contains(err.Error(), "does not support extended attributes") {
		t.Errorf("message %q does not say why", err)
	}
	_, _, err = new(Opener).Stamp(d, p)
	if !errors.Is(err, ErrNoXattrSupport) || !strings.Contains(err.Error(), "cannot stamp "+p) {
		t.Errorf("Stamp on ramfs: %v, want ErrNoXattrSupport naming the file", err)
	}
}

// TestHashedBytesAreReturnedBytes edits the file in place between the
// kernel check and the read (from the sstar.exec_check hook): the edit is
// what is read, so it is what is hashed, and the stamp no longer matches.
func TestHashedBytesAreReturnedBytes(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "x.star", "print('stamped')\n")
	d, rec := newDispatcher(t)
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == "sstar.exec_check" {
			return os.WriteFile(p, []byte("print('swapped')\n"), 0o644)
		}
		return nil
	})
	_, err := new(Opener).Verify(d, p)
	re := refusal(t, rec, err, p, ErrMismatch)
	var me *MismatchError
	errors.As(re, &me)
	if me.Content != hashOf("print('swapped')\n") {
		t.Errorf("hashed %s, want the hash of the bytes on disk when read", me.Content)
	}
}

func TestRequireRootOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files owned by root and by another user")
	}
	dir := t.TempDir()
	needXattrs(t, dir)
	p := writeStamped(t, dir, "policy.star", "x = 1\n")
	o := &Opener{RequireRootOwned: true}
	if _, err := o.Verify(new(audit.Dispatcher), p); err != nil {
		t.Fatalf("root-owned 0644: %v", err)
	}
	os.Chmod(p, 0o664)
	d, rec := newDispatcher(t)
	_, err := o.Verify(d, p)
	refusal(t, rec, err, p, ErrUnsafeOwner)
	os.Chmod(p, 0o644)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	d, rec = newDispatcher(t)
	_, err = o.Verify(d, p)
	refusal(t, rec, err, p, ErrUnsafeOwner)
	if _, err := new(Opener).Verify(new(audit.Dispatcher), p); err != nil {
		t.Errorf("without RequireRootOwned, a file of another owner: %v", err)
	}
}

// A FUSE server answers getxattr itself: here it serves a module with
// the stamp of its content, a stamp nobody ever wrote. Code from it is
// refused, with the file system named, until the policy allows FUSE.
func TestFileSystemWhoseServerChoosesStamps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (to mount FUSE)")
	}
	data := []byte("print('unvouched')\n")
	sum := sha256.Sum256(data)
	dir := t.TempDir()
	srv, err := fusetest.Mount(dir, []fusetest.File{{Name: "evil.star", Data: data,
		Xattrs: map[string]string{DefaultXattrName: string(FormatStamp(sum))}}})
	if err != nil {
		t.Skipf("needs FUSE (/dev/fuse): %v", err)
	}
	t.Cleanup(func() { srv.Unmount() })
	p := filepath.Join(dir, "evil.star")

	d, rec := newDispatcher(t)
	_, err = new(Opener).Verify(d, p)
	r := refusal(t, rec, err, p, ErrFileSystem)
	if !strings.Contains(r.Error(), "on fuse") {
		t.Errorf("refusal %q does not name the file system (fuse)", r)
	}

	// The stamp is what the kernel read: with FUSE allowed it verifies.
	code, err := (&Opener{FileSystems: []string{"fuse"}}).Verify(d, p)
	if err != nil || string(code.Data) != string(data) {
		t.Errorf("with FileSystems fuse: %q, %v; want the served code", code.Data, err)
	}
	// Naming another type does not allow this one.
	_, err = (&Opener{FileSystems: []string{"nfs"}}).Verify(d, p)
	if !errors.Is(err, ErrFileSystem) {
		t.Errorf("with FileSystems nfs: %v, want ErrFileSystem", err)
	}
}

// The types code comes from by default are the ones whose xattrs the
// kernel keeps; the ones a server answers for can only be added.
func TestFileSystemTable(t *testing.T) {
	for _, c := range []struct {
		magic uint32
		ok    bool
	}{
		{unix.EXT4_SUPER_MAGIC, true}, {unix.XFS_SUPER_MAGIC, true}, {unix.BTRFS_SUPER_MAGIC, true},
		{unix.TMPFS_MAGIC, true}, {unix.OVERLAYFS_SUPER_MAGIC, true}, {unix.SQUASHFS_MAGIC, true},
		{unix.EROFS_SUPER_MAGIC_V1, true}, {unix.F2FS_SUPER_MAGIC, true},
		{unix.FUSE_SUPER_MAGIC, false}, {unix.V9FS_MAGIC, false}, {unix.NFS_SUPER_MAGIC, false},
		{unix.CIFS_SUPER_MAGIC, false}, {unix.SMB2_SUPER_MAGIC, false}, {0x00c36400, false}, // ceph
		{unix.PROC_SUPER_MAGIC, false}, {unix.SYSFS_MAGIC, false}, {0x12345678, false},
	} {
		if got := allowedFileSystem(c.magic, nil); got != c.ok {
			t.Errorf("file system %#x (%s): allowed %v, want %v", c.magic, fileSystemName(c.magic), got, c.ok)
		}
	}
	for _, name := range []string{"fuse", "nfs", "9p", "cifs", "ceph"} {
		if !KnownFileSystem(name) {
			t.Errorf("KnownFileSystem(%q) = false", name)
		}
	}
	if KnownFileSystem("proc") || KnownFileSystem("") {
		t.Errorf("KnownFileSystem of a type not in the table: true")
	}
}
