package fusetest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The kernel reads the files, their xattrs and the directory as served.
func TestMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (to mount FUSE)")
	}
	dir := t.TempDir()
	s, err := Mount(dir, []File{{Name: "a.star", Data: []byte("print('served')\n"), Xattrs: map[string]string{"user.sstar.sha256": "made up"}}})
	if err != nil {
		t.Skipf("needs FUSE: %v", err)
	}
	defer s.Unmount()
	p := filepath.Join(dir, "a.star")
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "print('served')\n" {
		t.Errorf("read: %q, %v", data, err)
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "user.sstar.sha256", buf)
	if err != nil || string(buf[:n]) != "made up" {
		t.Errorf("getxattr: %q, %v", buf[:max(n, 0)], err)
	}
	n, err = unix.Listxattr(p, buf)
	if err != nil || string(buf[:n]) != "user.sstar.sha256\x00" {
		t.Errorf("listxattr: %q, %v", buf[:max(n, 0)], err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "a.star" {
		t.Errorf("readdir: %v, %v", ents, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil || sfs.Type != unix.FUSE_SUPER_MAGIC {
		t.Errorf("statfs: type %#x, %v; want FUSE's", sfs.Type, err)
	}
	if err := s.Unmount(); err != nil {
		t.Errorf("unmount: %v", err)
	}
}
