package builtins_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// nobody is the uid permission tests act as.
const nobody = 65534

// asNobody runs f so that the file system treats it as an unprivileged
// user, after checking that this user cannot open probe. As root, f runs on an OS thread whose file-system uid is nobody
// (setfsuid(2) also drops that thread's CAP_DAC_OVERRIDE); the thread is
// never unlocked, so it dies with f's goroutine instead of returning to
// the pool with that identity.
func asNobody(t *testing.T, probe string, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		f()
		return
	}
	done := make(chan bool)
	go func() {
		runtime.LockOSThread()
		syscall.Setfsuid(nobody)
		// setfsuid reports no errors: check that it took.
		if pf, err := os.Open(probe); err == nil {
			pf.Close()
			done <- false
			return
		}
		f()
		done <- true
	}()
	if !<-done {
		t.Skip("cannot act as an unprivileged user here (setfsuid did not take)")
	}
}

// Permission denied, for each fs function that can meet it.
func TestPermissionDenied(t *testing.T) {
	dir := setupDir(t)
	// The test's directory and its parent must be searchable by nobody.
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.WriteFile("secret", []byte("s"), 0o600))
	must(t, os.Mkdir("private", 0o700))
	must(t, os.WriteFile("private/f", []byte("x"), 0o644))
	must(t, os.Mkdir("readonly", 0o755))
	must(t, os.WriteFile("readonly/f", []byte("x"), 0o644))

	cases := map[string]string{
		`fs.read("secret")`:                       "fs.read: DIR/secret: permission denied",
		`fs.read_bytes("secret")`:                 "fs.read_bytes: DIR/secret: permission denied",
		`fs.write("secret", "x")`:                 "fs.write: DIR/secret: permission denied",
		`fs.append("secret", "x")`:                "fs.append: DIR/secret: permission denied",
		`fs.write("readonly/new", "x")`:           "fs.write: DIR/readonly/new: permission denied",
		`fs.listdir("private")`:                   "fs.listdir: DIR/private: permission denied",
		`fs.exists("private/f")`:                  "fs.exists: DIR/private/f: permission denied",
		`fs.stat("private/f")`:                    "fs.stat: DIR/private/f: permission denied",
		`fs.mkdir("readonly/m")`:                  "fs.mkdir: DIR/readonly/m: permission denied",
		`fs.mkdir("readonly/m/n", parents=True)`:  "fs.mkdir: DIR/readonly/m: permission denied",
		`fs.remove("readonly/f")`:                 "fs.remove: DIR/readonly/f: permission denied",
		`fs.rename("readonly/f", "readonly/g")`:   "fs.rename: DIR/readonly/f -> DIR/readonly/g: permission denied",
		`fs.glob("private/*")`:                    "", // unreadable directories match nothing, as in a shell
		`fs.read("private/../secret")`:            "fs.read: DIR/secret: permission denied",
		`fs.exists("private")`:                    "",
		`fs.stat("private").is_dir or fail("no")`: "",
	}
	before := snapshot(t, dir)
	asNobody(t, filepath.Join(dir, "secret"), func() {
		for src, want := range cases {
			want = strings.ReplaceAll(want, "DIR", dir)
			th, _ := newThread(t)
			_, err := run(th, src)
			switch {
			case want == "" && err != nil:
				t.Errorf("%s: %v", src, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("%s: error = %v, want %q", src, err, want)
			}
		}
	})
	if after := snapshot(t, dir); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("denied calls changed the directory:\nbefore %q\nafter  %q", before, after)
	}
}
