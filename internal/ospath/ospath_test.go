package ospath

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A relative path is joined to the directory the kernel says, even when
// $PWD names it through a symbolic link, as a shell leaves it.
func TestAbsIgnoresPWD(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(real)
	t.Setenv("PWD", link)
	wd, err := syscall.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"lib.star":         filepath.Join(wd, "lib.star"),
		"a/../b//c.star":   filepath.Join(wd, "b/c.star"),
		"/etc/./x/../p":    "/etc/p",
		".":                wd,
		link + "/lib.star": link + "/lib.star",
	} {
		if got, err := Abs(in); err != nil || got != want {
			t.Errorf("Abs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := WorkingDir(); err != nil || got != wd {
		t.Errorf("WorkingDir() = %q, %v; want %q", got, err, wd)
	}
}

func TestReason(t *testing.T) {
	_, err := os.Open(filepath.Join(t.TempDir(), "missing"))
	if r := Reason(err); r != syscall.ENOENT || !errors.Is(r, fs.ErrNotExist) {
		t.Errorf("Reason(%v) = %#v", err, r)
	}
	err = os.Rename(filepath.Join(t.TempDir(), "missing"), filepath.Join(t.TempDir(), "x"))
	if r := Reason(err); r != syscall.ENOENT {
		t.Errorf("Reason(%v) = %#v", err, r)
	}
	if r := Reason(os.NewSyscallError("flock", syscall.EAGAIN)); r != syscall.EAGAIN {
		t.Errorf("Reason(SyscallError) = %#v", r)
	}
	plain := errors.New("not from the OS")
	if r := Reason(plain); r != plain {
		t.Errorf("Reason(%v) = %v", plain, r)
	}
}
