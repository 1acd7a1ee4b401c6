package harden

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reshapeCalls makes each call the filter denies besides the xattr
// writes, by x86-64's numbers, with arguments that make it fail without
// the filter with another errno than EPERM (or, for unshare(0) and
// chroot("/"), succeed) and change nothing: a multi-threaded process
// cannot enter a new user namespace, there is no file system type
// "sstar-none", no descriptor -1, and so on. It returns what each gave:
// "ok" or the errno's name. TestDenyXattrWrites makes them without the
// filter, in the test process, and under it, in the child.
func reshapeCalls() map[string]string {
	res := func(_, _ uintptr, e unix.Errno) string {
		if e != 0 {
			return unix.ErrnoName(e)
		}
		return "ok"
	}
	str := func(s string) uintptr {
		p, _ := unix.BytePtrFromString(s)
		return uintptr(unsafe.Pointer(p))
	}
	none, root, missing := str("sstar-none"), str("/"), str("/nonexistent-sstar-test")
	const bad = ^uintptr(0) // -1: no such descriptor, no such flags
	sys := func(nr uintptr, a ...uintptr) string {
		var x [6]uintptr
		copy(x[:], a)
		return res(unix.Syscall6(nr, x[0], x[1], x[2], x[3], x[4], x[5]))
	}
	return map[string]string{
		// CLONE_NEWUSER with CLONE_FS is EINVAL before the filter.
		"clone":             sys(unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_FS),
		"clone3":            sys(unix.SYS_CLONE3, 0, 0),
		"unshare":           sys(unix.SYS_UNSHARE, unix.CLONE_NEWUSER),
		"setns":             sys(unix.SYS_SETNS, bad, 0),
		"mount":             sys(unix.SYS_MOUNT, none, missing, none, 0, 0),
		"umount2":           sys(unix.SYS_UMOUNT2, missing, 0),
		"open_tree":         sys(unix.SYS_OPEN_TREE, bad, missing, 0),
		"move_mount":        sys(unix.SYS_MOVE_MOUNT, bad, missing, bad, missing, 0),
		"fsopen":            sys(unix.SYS_FSOPEN, none, 0),
		"fsconfig":          sys(unix.SYS_FSCONFIG, bad, 0, 0, 0, 0),
		"fsmount":           sys(unix.SYS_FSMOUNT, bad, 0, 0),
		"fspick":            sys(unix.SYS_FSPICK, bad, missing, 0),
		"mount_setattr":     sys(unix.SYS_MOUNT_SETATTR, bad, missing, 0, 0, 0),
		"open_tree_attr":    sys(unix.SYS_OPEN_TREE_ATTR, bad, missing, 0, 0, 0),
		"pivot_root":        sys(unix.SYS_PIVOT_ROOT, missing, missing),
		"chroot":            sys(unix.SYS_CHROOT, root),
		"ptrace":            sys(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, uintptr(os.Getppid()), 0, 0),
		"process_vm_readv":  sys(unix.SYS_PROCESS_VM_READV, uintptr(os.Getpid()), 0, 0, 0, 0, 0),
		"process_vm_writev": sys(unix.SYS_PROCESS_VM_WRITEV, uintptr(os.Getpid()), 0, 0, 0, 0, 0),
		"pidfd_getfd":       sys(unix.SYS_PIDFD_GETFD, bad, 0, 0),
		"init_module":       sys(unix.SYS_INIT_MODULE, 0, 0, 0),
		"finit_module":      sys(unix.SYS_FINIT_MODULE, bad, 0, 0),
		"delete_module":     sys(unix.SYS_DELETE_MODULE, none, 0),
		"kexec_load":        sys(unix.SYS_KEXEC_LOAD, 0, bad, 0, 0),
		"kexec_file_load":   sys(unix.SYS_KEXEC_FILE_LOAD, bad, bad, 0, 0, bad),
		"bpf":               sys(unix.SYS_BPF, bad, 0, 0),
		"userfaultfd":       sys(unix.SYS_USERFAULTFD, bad),
		"open_by_handle_at": sys(unix.SYS_OPEN_BY_HANDLE_AT, bad, 0, 0),
	}
}

// capabilityGated are the calls that fail with EPERM without the filter
// too where the process lacks a capability (or the kernel disabled
// them): there the filter's denial is not exercised.
var capabilityGated = map[string]bool{
	"init_module": true, "finit_module": true, "delete_module": true,
	"kexec_load": true, "kexec_file_load": true, "bpf": true,
	"open_by_handle_at": true, "userfaultfd": true, "chroot": true,
	"pivot_root": true, "mount": true, "umount2": true, "fsopen": true,
	"open_tree": true, "move_mount": true, "fspick": true,
}
