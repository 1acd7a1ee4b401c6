package harden

import (
	"os"

	"github.com/sstar-project/sstar/harden/internal/int80"
	"golang.org/x/sys/unix"
)

func init() { abiCalls = callOtherABIs }

// callOtherABIs makes, with the i386 numbers and int $0x80, every call
// the filter denies to i386 and getpid (allowed), and getpid and
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
		m["i386 "+d.name] = res(int80.Syscall(uintptr(d.nr), 0, 0, 0))
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
