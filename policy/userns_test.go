package policy

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The pidfd and the /proc path name the same namespace: the initial one,
// by its fixed inode number, on nsfs.
func TestUserNamespaceBothWays(t *testing.T) {
	if err := checkUserNamespace(); err != nil {
		t.Fatalf("in the initial user namespace: %v", err)
	}
	for name, open := range map[string]func() (int, error){"pidfd": userNamespace, "/proc": procUserNamespace} {
		fd, err := open()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var st unix.Stat_t
		var sfs unix.Statfs_t
		if err := unix.Fstat(fd, &st); err != nil || unix.Fstatfs(fd, &sfs) != nil || st.Ino != procUserInitIno || sfs.Type != unix.NSFS_MAGIC {
			t.Errorf("%s: inode %#x on %#x (%v), want %#x on nsfs", name, st.Ino, sfs.Type, err, procUserInitIno)
		}
		unix.Close(fd)
	}
}

// On Linux 6.11+ the pidfd way is the one taken, not the fallback.
func TestUserNamespaceByPidfd(t *testing.T) {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skipf("needs pidfd_open (Linux 5.3): %v", err)
	}
	defer unix.Close(pidfd)
	ns, err := unix.IoctlRetInt(pidfd, pidfdGetUserNamespace)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		t.Skipf("needs PIDFD_GET_USER_NAMESPACE (Linux 6.11): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(ns, &st); err != nil || st.Ino != procUserInitIno {
		t.Errorf("PIDFD_GET_USER_NAMESPACE: inode %#x, %v; want %#x", st.Ino, err, procUserInitIno)
	}
	unix.Close(ns)
}
