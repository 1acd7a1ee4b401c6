package harden

import (
	"os"

	"github.com/sstar-project/sstar/harden/internal/int80"
	"golang.org/x/sys/unix"
)

func init() { abiCalls = callOtherABIs }

// i386Args are the arguments callOtherABIs passes where zeros would do
// something without the filter (clone(0) forks, ptrace(0) is
// PTRACE_TRACEME, kexec_load with no segments unloads the kexec image)
// or pass an open descriptor (0); each makes the call fail before it
// acts. (32 bits: -1 is 0xffffffff.)
var i386Args = map[string][3]uintptr{
	"clone":             {unix.CLONE_NEWUSER | unix.CLONE_FS}, // EINVAL
	"ptrace":            {unix.PTRACE_PEEKDATA, uintptr(os.Getppid())},
	"kexec_load":        {0, 0xffffffff},
	"setns":             {0xffffffff},
	"finit_module":      {0xffffffff},
	"pidfd_getfd":       {0xffffffff},
	"fsconfig":          {0xffffffff},
	"fsmount":           {0xffffffff},
	"fspick":            {0xffffffff},
	"move_mount":        {0xffffffff},
	"open_tree":         {0xffffffff},
	"mount_setattr":     {0xffffffff},
	"userfaultfd":       {0xffffffff},
	"bpf":               {0xffffffff},
	"open_by_handle_at": {0xffffffff},
	"open_tree_attr":    {0xffffffff},
}

// callOtherABIs makes, with the i386 numbers and int $0x80, every call
// the filter denies to i386 (with i386Args) and getpid (allowed), and getpid and
// setxattr with the x32 bit set; it returns what each gave: "ok", or the
// errno's name. No pointer is passed: under the filter the kernel never
// reads one, and without it a 0 gives EFAULT, which shows the call got
// past seccomp.
func callOtherABIs() map[string]string {
	res := func(r int32) string {
		if r < 0 {
			return unix.ErrnoName(unix.Errno(-r))
		}
		return "ok"
	}
	m := map[string]string{}
	for _, d := range denied[i386] {
		a := i386Args[d.name]
		m["i386 "+d.name] = res(int80.Syscall(uintptr(d.nr), a[0], a[1], a[2]))
	}
	if pid := int80.Syscall(20, 0, 0, 0); int(pid) == os.Getpid() { // getpid
		m["i386 getpid"] = "ok"
	} else {
		m["i386 getpid"] = res(pid)
	}
	x32 := func(nr uintptr) string {
		if _, _, e := unix.RawSyscall(x32SyscallBit|nr, 0, 0, 0); e != 0 {
			return unix.ErrnoName(e)
		}
		return "ok"
	}
	m["x32 getpid"] = x32(39)
	m["x32 setxattr"] = x32(188)
	return m
}
