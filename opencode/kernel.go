package opencode

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel interfaces for script interpreters (Linux 6.14+), not yet in
// golang.org/x/sys. The names are the kernel's, so they can be grepped.
const (
	// AT_EXECVE_CHECK asks execveat only to check whether the file would
	// be executed, not to execute it (include/uapi/linux/fcntl.h).
	AT_EXECVE_CHECK = 0x10000

	// SECBIT_EXEC_RESTRICT_FILE tells interpreters to refuse code files
	// that AT_EXECVE_CHECK refuses (include/uapi/linux/securebits.h).
	SECBIT_EXEC_RESTRICT_FILE = 1 << 8
	// SECBIT_EXEC_RESTRICT_FILE_LOCKED makes SECBIT_EXEC_RESTRICT_FILE immutable.
	SECBIT_EXEC_RESTRICT_FILE_LOCKED = 1 << 9
	// SECBIT_EXEC_DENY_INTERACTIVE tells interpreters to refuse code that
	// does not come from a file (-c, standard input, a REPL).
	SECBIT_EXEC_DENY_INTERACTIVE = 1 << 10
	// SECBIT_EXEC_DENY_INTERACTIVE_LOCKED makes SECBIT_EXEC_DENY_INTERACTIVE immutable.
	SECBIT_EXEC_DENY_INTERACTIVE_LOCKED = 1 << 11
)

var emptyPath = [1]byte{0}

// execCheckArgv and execCheckEnvp are the argument and environment
// vectors the check passes: one argument, no environment. With a NULL
// argv the kernel would log "launched '/dev/fd/N' with NULL argv: empty
// string added" at the first check after boot.
var (
	execCheckArg0 = [...]byte{'s', 's', 't', 'a', 'r', 0}
	execCheckArgv = [2]*byte{&execCheckArg0[0], nil}
	execCheckEnvp = [1]*byte{nil}
)

// KernelExecCheck asks the kernel whether it would execute the file open
// on fd: execveat(fd, "", {"sstar", NULL}, {NULL},
// AT_EMPTY_PATH|AT_EXECVE_CHECK). It returns nil
// if it would, and the kernel's errno otherwise: EACCES for a file
// without exec permission or on a noexec mount, an LSM's veto, or EINVAL
// on a kernel older than 6.14.
//
// On such an older kernel the call cannot execute anything: execveat has
// rejected unknown flags with EINVAL since it was introduced (3.19).
func KernelExecCheck(fd int) error {
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(&emptyPath[0])),
		uintptr(unsafe.Pointer(&execCheckArgv[0])), uintptr(unsafe.Pointer(&execCheckEnvp[0])),
		unix.AT_EMPTY_PATH|AT_EXECVE_CHECK, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Securebits returns the calling thread's securebits (prctl
// PR_GET_SECUREBITS). They are per thread in the kernel but sstar never
// changes them, so every thread of the process has those it started with.
// An Opener reads them once (see Opener).
func Securebits() (uint, error) {
	bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("prctl(PR_GET_SECUREBITS): %w", err)
	}
	return uint(bits), nil
}

// InteractiveDenied reports whether the process has
// SECBIT_EXEC_DENY_INTERACTIVE set: the kernel's word that code not read
// from a file must not run here.
func InteractiveDenied() bool {
	bits, err := Securebits()
	return err == nil && bits&SECBIT_EXEC_DENY_INTERACTIVE != 0
}

// describeExecCheck words the kernel's answer for logs and refusals:
// the errno's name, then what it means.
func describeExecCheck(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	switch errno {
	case unix.EINVAL:
		return "EINVAL: this kernel has no AT_EXECVE_CHECK (Linux 6.14+)"
	case unix.EACCES:
		return "EACCES: no exec permission"
	}
	return fmt.Sprintf("%s: %v", unix.ErrnoName(errno), errno)
}
