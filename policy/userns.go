package policy

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrUserNamespace is wrapped by FindSystem's refusal to run in a user
// namespace other than the machine's initial one.
var ErrUserNamespace = errors.New("not in the initial user namespace")

// Kernel constants golang.org/x/sys does not carry yet.
const (
	// pidfdGetUserNamespace is PIDFD_GET_USER_NAMESPACE, _IO(0xFF, 9)
	// (include/uapi/linux/pidfd.h, Linux 6.11): a descriptor of the
	// pidfd's process's user namespace.
	pidfdGetUserNamespace = 0xff09
	// procUserInitIno is PROC_USER_INIT_INO (include/linux/proc_ns.h):
	// the inode number of the initial user namespace, fixed; every other
	// user namespace gets a dynamic one.
	procUserInitIno = 0xeffffffd
)

// checkUserNamespace refuses a process that is not in the initial user
// namespace. In a user namespace of their own any user is root: they can
// own files (all of theirs appear root's), mount a tmpfs over /etc or
// chroot into a tree of their making, and so put a root-owned system
// policy of their own at SystemPath, or none, where the machine's would
// be. Nothing at SystemPath can be told from the machine's there, so
// sstar does not look.
//
// The namespace is asked of the kernel through a pidfd, not a path a
// mount could cover; before Linux 6.11 it is read from
// /proc/thread-self/ns/user, checked to be a namespace file (nsfs).
func checkUserNamespace() error {
	ns, err := userNamespace()
	if err != nil {
		return fmt.Errorf("%w: cannot tell which user namespace this is (%v), so no system policy found here can be trusted to be the machine's", ErrUserNamespace, err)
	}
	defer unix.Close(ns)
	var sfs unix.Statfs_t
	var st unix.Stat_t
	if err := unix.Fstatfs(ns, &sfs); err != nil {
		return fmt.Errorf("%w: fstatfs of the user namespace: %v", ErrUserNamespace, err)
	}
	if err := unix.Fstat(ns, &st); err != nil {
		return fmt.Errorf("%w: fstat of the user namespace: %v", ErrUserNamespace, err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("%w: the user namespace file is on file system type %#x, not nsfs (something is mounted over /proc)", ErrUserNamespace, sfs.Type)
	}
	if st.Ino != procUserInitIno {
		return fmt.Errorf("%w: sstar runs in a user namespace of its own (user:[%d]), where whoever made it could have put a system policy of their own at %s; run sstar outside it (see docs/policy.md: containers)", ErrUserNamespace, st.Ino, SystemPath)
	}
	return nil
}

// userNamespace returns a descriptor of the process's user namespace.
func userNamespace() (int, error) {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err == nil {
		ns, err := unix.IoctlRetInt(pidfd, pidfdGetUserNamespace)
		unix.Close(pidfd)
		if err == nil {
			return ns, nil
		}
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
			return -1, fmt.Errorf("ioctl(PIDFD_GET_USER_NAMESPACE): %w", err)
		}
	} else if !errors.Is(err, unix.ENOSYS) {
		return -1, fmt.Errorf("pidfd_open: %w", err)
	}
	return procUserNamespace()
}

// procUserNamespace is userNamespace before Linux 6.11: a path, so
// checkUserNamespace checks that it is a namespace file.
func procUserNamespace() (int, error) {
	return unix.Open("/proc/thread-self/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
}
