// Package harden locks a running sstar process down before it reads any
// script: after DenyXattrWrites, neither sstar nor any process it starts
// can write or remove an extended attribute, so nothing a script does can
// restamp code (see package opencode).
//
// It sets no_new_privs and installs a seccomp filter on every thread of
// the process (SECCOMP_FILTER_FLAG_TSYNC: Go runs goroutines on many
// threads, and a filter on one thread alone would be a filter on some
// goroutines only). The filter is inherited by every thread and process
// created afterwards and cannot be removed. It makes these system calls
// fail with EPERM:
//
//   - setxattr, lsetxattr, fsetxattr, removexattr, lremovexattr,
//     fremovexattr, and setxattrat and removexattrat (Linux 6.13+);
//   - io_uring_setup, io_uring_enter and io_uring_register, because an
//     io_uring can set and remove xattrs (IORING_OP_SETXATTR,
//     IORING_OP_FSETXATTR) without making those system calls.
//
// The filter is written for x86-64. A 32-bit program started from sstar
// (the i386 system call table) gets the same denials by its own numbers;
// x32 system calls are refused altogether, and a system call of any other
// architecture kills the process. On any other GOARCH DenyXattrWrites
// fails, and sstar refuses to run scripts (fail closed).
//
// The system calls the filter denies are one table in this package
// (denied: per ABI, each with the errno it fails with, and why); the
// program is assembled from it with golang.org/x/net/bpf.
package harden

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrUnsupported is returned where the filter cannot be installed: an
// architecture it was not written for, or a kernel without seccomp.
var ErrUnsupported = errors.New("harden: cannot deny xattr writes here")

// An abi is one of the system call conventions a program on x86-64 Linux
// can use. The kernel tells the filter which one a call came in by
// (struct seccomp_data: arch, and the x32 bit of nr), and each has its own
// system call numbers.
type abi int

const (
	// x8664: the syscall instruction of a 64-bit program;
	// arch/x86/entry/syscalls/syscall_64.tbl, "common" and "64".
	x8664 abi = iota
	// x32: the syscall instruction with __X32_SYSCALL_BIT set in the
	// number; syscall_64.tbl, "common" and "x32".
	x32
	// i386: int 0x80 (or sysenter, syscall) from a 32-bit program, or
	// int 0x80 from a 64-bit one; arch/x86/entry/syscalls/syscall_32.tbl.
	i386
	numABIs
)

var abiNames = [numABIs]string{x8664: "x86-64", x32: "x32", i386: "i386"}

func (a abi) String() string { return abiNames[a] }

// A denial is one system call the filter makes fail.
type denial struct {
	nr    uint32     // in its ABI's table; for x32 without __X32_SYSCALL_BIT
	name  string     // as in the kernel's table
	errno unix.Errno // what the call fails with
}

// denied lists, per ABI, the system calls the filter makes fail, and
// with what. To deny one more, add its line to each ABI's list.
var denied = [numABIs][]denial{
	x8664: {
		// Writing or removing an xattr could restamp code.
		{188, "setxattr", unix.EPERM},
		{189, "lsetxattr", unix.EPERM},
		{190, "fsetxattr", unix.EPERM},
		{197, "removexattr", unix.EPERM},
		{198, "lremovexattr", unix.EPERM},
		{199, "fremovexattr", unix.EPERM},
		{463, "setxattrat", unix.EPERM},
		{466, "removexattrat", unix.EPERM},
		// An io_uring sets and removes xattrs (IORING_OP_SETXATTR,
		// IORING_OP_FSETXATTR) without the system calls above.
		{425, "io_uring_setup", unix.EPERM},
		{426, "io_uring_enter", unix.EPERM},
		{427, "io_uring_register", unix.EPERM},
	},
	// Nothing to list: every x32 call is refused (see otherwise).
	x32: nil,
	i386: {
		// As for x86-64: a 32-bit child could restamp code too.
		{226, "setxattr", unix.EPERM},
		{227, "lsetxattr", unix.EPERM},
		{228, "fsetxattr", unix.EPERM},
		{235, "removexattr", unix.EPERM},
		{236, "lremovexattr", unix.EPERM},
		{237, "fremovexattr", unix.EPERM},
		{463, "setxattrat", unix.EPERM},
		{466, "removexattrat", unix.EPERM},
		{425, "io_uring_setup", unix.EPERM},
		{426, "io_uring_enter", unix.EPERM},
		{427, "io_uring_register", unix.EPERM},
	},
}

// otherwise is what the filter does with a system call its ABI's list
// does not name.
var otherwise = [numABIs]uint32{
	x8664: unix.SECCOMP_RET_ALLOW,
	// No program sstar starts is expected to be x32, and refusing the
	// whole ABI spares keeping a third table in step with the other two.
	x32:  unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM),
	i386: unix.SECCOMP_RET_ALLOW,
}

const (
	// Offsets in struct seccomp_data (include/uapi/linux/seccomp.h).
	offNr   = 0
	offArch = 4

	x32SyscallBit = 0x40000000 // __X32_SYSCALL_BIT
)

// DenyXattrWrites sets no_new_privs and installs the filter on every
// thread of the process. It is irreversible: call it only in a process
// that will run scripts, never in one that stamps files.
func DenyXattrWrites() error {
	return install()
}

// Filter returns the classic BPF program DenyXattrWrites installs.
func Filter() ([]unix.SockFilter, error) {
	prog, err := program()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("harden: assembling the seccomp filter: %w", err)
	}
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return f, nil
}

// program is the filter, instruction by instruction:
//
//	load arch
//	x86-64?  jump to x86-64
//	i386?    jump to i386
//	kill the process
//	x86-64:  load nr; at or above the x32 bit? jump to x32; the x86-64 calls
//	x32:     the x32 calls
//	i386:    load nr; the i386 calls
//
// where "the calls" of an ABI are calls(a).
func program() ([]bpf.Instruction, error) {
	// Room for the whole program from the start. sstar builds it once, in
	// a process that has allocated little, where each growth of the slice
	// is the first allocation of its size class. In a fresh process
	// (BenchmarkInstall, asm against asm-prebuilt) building took 17-20 µs
	// with the slice grown by append and 8-10 µs sized (the hand assembler
	// it replaced: 8-12 µs); warm, as BenchmarkFilter measures, the
	// difference is 0.4 µs and would not show it.
	n := 10 // the instructions outside calls
	for a := range numABIs {
		n += callsLen(a)
	}
	p := make([]bpf.Instruction, 0, n)
	// placeholder and jumpHere are labels: jumpHere makes the placeholder
	// at p[at] jump to the next instruction appended.
	placeholder := func() int { p = append(p, nil); return len(p) - 1 }
	jumpHere := func(at int) { p[at] = bpf.Jump{Skip: uint32(len(p) - at - 1)} }
	var err error

	p = append(p, bpf.LoadAbsolute{Off: offArch, Size: 4})
	p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipFalse: 1})
	toX8664 := placeholder()
	p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_I386, SkipFalse: 1})
	toI386 := placeholder()
	p = append(p, bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS})

	jumpHere(toX8664)
	p = append(p, bpf.LoadAbsolute{Off: offNr, Size: 4})
	p = append(p, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit, SkipFalse: 1})
	toX32 := placeholder()
	if p, err = calls(p, x8664); err != nil {
		return nil, err
	}

	jumpHere(toX32)
	if p, err = calls(p, x32); err != nil {
		return nil, err
	}

	jumpHere(toI386)
	p = append(p, bpf.LoadAbsolute{Off: offNr, Size: 4})
	return calls(p, i386)
}

// calls appends what the filter does with a system call of ABI a whose
// number is in the accumulator:
//
//	below the lowest number listed? jump to otherwise
//	the first number listed? jump to the return of its errno
//	...
//	the last number listed? jump to the return of its errno
//	otherwise: return otherwise[a]
//	return the first errno the list uses
//	...
//
// One instruction per denial: what installing costs grows with the
// program's length (see BenchmarkInstall).
func calls(p []bpf.Instruction, a abi) ([]bpf.Instruction, error) {
	list := denied[a]
	var bit uint32
	if a == x32 {
		bit = x32SyscallBit
	}
	var buf [4]unix.Errno
	errnos := errnosOf(list, buf[:0])
	// A conditional jump reaches at most 255 instructions ahead.
	if len(list)+len(errnos) > 256 {
		return nil, fmt.Errorf("harden: %d denials and %d errnos for %v: more than a seccomp filter's conditional jumps reach", len(list), len(errnos), a)
	}
	if len(list) > 0 {
		// The calls numbered below every denied one (on x86-64 read,
		// write, mmap, clone, execve and most others, though not futex)
		// leave here, without going through the list. Since Linux 5.11
		// the kernel does not run the filter at all for a call it found
		// always allowed when the filter was installed (it evaluates the
		// filter for every number then), so this shortens that
		// evaluation, and every allowed call on older kernels.
		lowest := list[0].nr
		for _, d := range list {
			lowest = min(lowest, d.nr)
		}
		p = append(p, bpf.JumpIf{Cond: bpf.JumpLessThan, Val: lowest | bit, SkipTrue: uint8(len(list))})
	}
	for i, d := range list {
		// Over the rest of the list and otherwise's return.
		skip := len(list) - i + slices.Index(errnos, d.errno)
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: d.nr | bit, SkipTrue: uint8(skip)})
	}
	p = append(p, bpf.RetConstant{Val: otherwise[a]})
	for _, e := range errnos {
		p = append(p, bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(e)})
	}
	return p, nil
}

// callsLen is the number of instructions calls appends for a.
func callsLen(a abi) int {
	list := denied[a]
	var buf [4]unix.Errno
	n := len(list) + 1 + len(errnosOf(list, buf[:0]))
	if len(list) > 0 {
		n++
	}
	return n
}

// errnosOf appends to errnos the errnos list uses, each once, in the
// order of their first use.
func errnosOf(list []denial, errnos []unix.Errno) []unix.Errno {
	for _, d := range list {
		if !slices.Contains(errnos, d.errno) {
			errnos = append(errnos, d.errno)
		}
	}
	return errnos
}
