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
package harden

import (
	"errors"

	"golang.org/x/sys/unix"
)

// ErrUnsupported is returned where the filter cannot be installed: an
// architecture it was not written for, or a kernel without seccomp.
var ErrUnsupported = errors.New("harden: cannot deny xattr writes here")

// System calls the filter denies, by architecture. Numbers are from the
// kernel's syscall tables (arch/x86/entry/syscalls/syscall_{64,32}.tbl).
var (
	deniedX8664 = []uint32{
		188, // setxattr
		189, // lsetxattr
		190, // fsetxattr
		197, // removexattr
		198, // lremovexattr
		199, // fremovexattr
		463, // setxattrat
		466, // removexattrat
		425, // io_uring_setup
		426, // io_uring_enter
		427, // io_uring_register
	}
	deniedI386 = []uint32{
		226, // setxattr
		227, // lsetxattr
		228, // fsetxattr
		235, // removexattr
		236, // lremovexattr
		237, // fremovexattr
		463, // setxattrat
		466, // removexattrat
		425, // io_uring_setup
		426, // io_uring_enter
		427, // io_uring_register
	}
)

const x32SyscallBit = 0x40000000

// DenyXattrWrites sets no_new_privs and installs the filter on every
// thread of the process. It is irreversible: call it only in a process
// that will run scripts, never in one that stamps files.
func DenyXattrWrites() error {
	return install()
}

// Filter returns the classic BPF program DenyXattrWrites installs.
func Filter() []unix.SockFilter {
	const (
		offNr   = 0 // struct seccomp_data.nr
		offArch = 4 // struct seccomp_data.arch
	)
	// Room for the whole program (the instructions below): Filter runs
	// at every start of sstar, and growing these was half its cost.
	n := len(deniedX8664) + len(deniedI386) + 10
	p := program{
		insns:  make([]unix.SockFilter, 0, n),
		labels: make(map[string]int, 3),
		fixups: make([]fixup, 0, n),
	}
	p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch)
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.AUDIT_ARCH_X86_64, "x86_64", "")
	p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.AUDIT_ARCH_I386, "i386", "")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS)

	p.label("x86_64")
	p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)
	p.jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, x32SyscallBit, "deny", "")
	for _, nr := range deniedX8664 {
		p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, "deny", "")
	}
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)

	p.label("i386")
	p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)
	for _, nr := range deniedI386 {
		p.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, "deny", "")
	}
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)

	p.label("deny")
	p.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	return p.resolve()
}

// program assembles classic BPF with forward jumps to labels.
type program struct {
	insns  []unix.SockFilter
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at     int
	jt, jf string
}

func (p *program) stmt(code uint16, k uint32) {
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

// jump appends a conditional jump; an empty label means the next
// instruction.
func (p *program) jump(code uint16, k uint32, jt, jf string) {
	p.fixups = append(p.fixups, fixup{at: len(p.insns), jt: jt, jf: jf})
	p.insns = append(p.insns, unix.SockFilter{Code: code, K: k})
}

func (p *program) label(name string) {
	if p.labels == nil {
		p.labels = make(map[string]int)
	}
	p.labels[name] = len(p.insns)
}

func (p *program) resolve() []unix.SockFilter {
	off := func(from int, label string) uint8 {
		if label == "" {
			return 0
		}
		to, ok := p.labels[label]
		d := to - from - 1
		if !ok || d < 0 || d > 255 {
			panic("harden: bad jump to " + label) // a bug in Filter, caught by its tests
		}
		return uint8(d)
	}
	for _, f := range p.fixups {
		p.insns[f.at].Jt = off(f.at, f.jt)
		p.insns[f.at].Jf = off(f.at, f.jf)
	}
	return p.insns
}
