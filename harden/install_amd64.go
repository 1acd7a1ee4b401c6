package harden

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// install makes the process non-dumpable, then sets no_new_privs and
// installs the filter (Filter's program, generated) with TSYNC.
//
// no_new_privs is per thread, and TSYNC copies it to the other threads
// along with the filter only if the calling thread has it, so both system
// calls must be made on one thread. They are made by one assembly routine
// (install_amd64.s) that makes no calls: the Go scheduler cannot move a
// goroutine to another thread there, since assembly is never preempted
// asynchronously and the routine never enters the scheduler. This is the
// guarantee runtime.LockOSThread would give, without the thread the
// runtime starts the first time LockOSThread is called. It is kept
// because a benchmark shows the difference: BenchmarkInstall, which
// installs in a fresh process each time as sstar does, measured
// 81-86 µs for this routine and 125-138 µs for LockOSThread and the
// same two calls from Go, with a fifth thread (medians of 400 processes,
// three runs, on the project's 2-core VM). A script that runs proc.run
// starts the template thread later anyway (builtins/proc.go locks the
// thread for Pdeathsig); a script that does not, never does.
func install() error {
	// The program generated from the table (filter_amd64.go; a test
	// checks it is what Filter builds): building it here would cost a
	// fresh process more than installing it.
	prog := generatedFilter[:]
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("harden: prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	nnpErrno, r, errno := setNoNewPrivsAndFilter(&fprog)
	runtime.KeepAlive(prog)
	switch {
	case nnpErrno != 0:
		return fmt.Errorf("harden: prctl(PR_SET_NO_NEW_PRIVS): %w", unix.Errno(nnpErrno))
	case errno == uintptr(unix.EINVAL) || errno == uintptr(unix.ENOSYS):
		return fmt.Errorf("%w: seccomp(SECCOMP_SET_MODE_FILTER): %v", ErrUnsupported, unix.Errno(errno))
	case errno != 0:
		return fmt.Errorf("harden: seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", unix.Errno(errno))
	case r != 0:
		// TSYNC names the thread it could not synchronise.
		return fmt.Errorf("harden: seccomp: thread %d could not take the filter", r)
	}
	return nil
}

// setNoNewPrivsAndFilter makes, on the calling thread,
// prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) and, if that succeeded,
// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, fprog).
// It returns prctl's errno, then seccomp's return value and errno (both
// 0 if seccomp was not called).
//
//go:noescape
func setNoNewPrivsAndFilter(fprog *unix.SockFprog) (nnpErrno, r, errno uintptr)
