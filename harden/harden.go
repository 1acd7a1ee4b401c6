// Package harden locks a running sstar process down before it reads any
// script: after DenyXattrWrites, neither sstar nor any process it starts
// can write or remove an extended attribute, so nothing a script does can
// restamp code (see package opencode); nor can it reshape the world the
// kernel shows sstar (new namespaces, mounts, a new root), reach into
// another process (ptrace), or change the kernel (modules, kexec, bpf).
//
// It makes the process non-dumpable (PR_SET_DUMPABLE 0): the kernel then
// lets only a process with CAP_SYS_PTRACE read sstar's /proc/PID/environ,
// mem, maps and fds or attach to it, so the programs a script starts,
// the same user's as sstar, cannot read what sstar was started with (a
// CI runner's credentials, say). Each program sstar starts is dumpable
// again once it executes; what it can read of its own is its own.
//
// It sets no_new_privs and installs a seccomp filter on every thread of
// the process (SECCOMP_FILTER_FLAG_TSYNC: Go runs goroutines on many
// threads, and a filter on one thread alone would be a filter on some
// goroutines only). The filter is inherited by every thread and process
// created afterwards and cannot be removed. It makes these system calls
// fail with EPERM (clone3 with ENOSYS), an error the program that made
// them reports, never a kill:
//
//   - setxattr, lsetxattr, fsetxattr, removexattr, lremovexattr,
//     fremovexattr, and setxattrat and removexattrat (Linux 6.13+);
//   - io_uring_setup, io_uring_enter and io_uring_register, because an
//     io_uring can set and remove xattrs (IORING_OP_SETXATTR,
//     IORING_OP_FSETXATTR) without making those system calls;
//   - unshare, setns, and clone with any CLONE_NEW* flag: a new user
//     namespace is where an unprivileged process gets the capabilities
//     to mount, and a mount namespace of one's own holds a file system or
//     a system policy of one's own; clone3, whose flags are in memory the
//     filter cannot read, fails with ENOSYS, and libc and Go then use
//     clone;
//   - mount, umount2 (and i386's umount), open_tree, open_tree_attr,
//     move_mount, fsopen, fsconfig, fsmount, fspick, mount_setattr,
//     pivot_root and chroot: which file system (a FUSE server, an
//     overlay, an image whose stamps someone wrote offline) and which
//     root a path leads to;
//   - ptrace, process_vm_readv, process_vm_writev and pidfd_getfd: the
//     filter binds sstar and its children, not sstar's parent, which a
//     child could otherwise make write a stamp (/proc/PID/mem, the same
//     reach without a system call to deny, is closed by Isolate's
//     Landlock domain);
//   - init_module, finit_module, delete_module, kexec_load,
//     kexec_file_load and bpf: code in the kernel, or another kernel;
//     userfaultfd, the usual tool for stalling the kernel mid-copy to win
//     a race; and open_by_handle_at, which opens files past directory
//     permissions and a chroot.
//
// What the filter cannot reach is a process it does not bind: sstar's
// parent, or any other process of the same user that is compromised
// already, can still do all of the above.
//
// The filter is written for x86-64. A 32-bit program started from sstar
// (the i386 system call table) gets the same denials by its own numbers;
// x32 system calls are refused altogether, and a system call of any other
// architecture kills the process. On any other GOARCH DenyXattrWrites
// fails, and sstar refuses to run scripts (fail closed).
//
// The system calls the filter denies are one table in this package
// (denied: per ABI, each with the errno it fails with, and why); the
// program is assembled from it with golang.org/x/net/bpf (Filter), and
// what DenyXattrWrites installs is that program generated as static data
// (go generate ./harden after a change to the table).
package harden

import (
	"errors"
	"fmt"

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
	// anyFlag, if not 0, denies the call only when its first argument
	// (its low 32 bits) has one of these bits set, as clone's flags do
	// for a new namespace; otherwise it gets otherwise.
	anyFlag uint32
}

// cloneNewFlags are clone's flags that make a new namespace:
// CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
// CLONE_NEWPID and CLONE_NEWNET. (CLONE_NEWTIME is 0x80, which clone
// reads as part of the exit signal; only unshare and clone3 take it.)
const cloneNewFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// denied lists, per ABI, the system calls the filter makes fail, and
// with what. To deny one more, add its line to each ABI's list. EPERM,
// never a kill: a program that tries fails with an error it reports, and
// the script sees that error.
//
// Besides xattr writes, the filter denies what would let a process
// change the world the kernel shows sstar, which sstar's checks rely on:
// which file system a path leads to (mounts and namespaces: a FUSE or
// overlay mount serves stamps its owner chose, a mount namespace of one's
// own with a chroot holds a system policy of one's own), the memory or
// the calls of another process (ptrace: a child could make sstar's parent
// write a stamp), and the kernel itself (modules, kexec, bpf).
var denied = [numABIs][]denial{
	x8664: {
		// clone first: it is the only call the filter must evaluate
		// every time (its answer depends on an argument, so the kernel
		// cannot cache it, see calls).
		//
		// A new namespace (user, mount, ...) is where an unprivileged
		// process gets the capabilities to mount.
		{56, "clone", unix.EPERM, cloneNewFlags},
		{272, "unshare", unix.EPERM, 0},
		{308, "setns", unix.EPERM, 0},
		// clone3's flags are in memory a filter cannot read. ENOSYS
		// makes libc (and Go) fall back to clone, whose flags it can.
		{435, "clone3", unix.ENOSYS, 0},
		// Mounting changes which file system, and so which server of
		// content and xattrs, a path leads to; chroot and pivot_root
		// which root it is resolved from.
		{165, "mount", unix.EPERM, 0},
		{166, "umount2", unix.EPERM, 0},
		{428, "open_tree", unix.EPERM, 0},
		{429, "move_mount", unix.EPERM, 0},
		{430, "fsopen", unix.EPERM, 0},
		{431, "fsconfig", unix.EPERM, 0},
		{432, "fsmount", unix.EPERM, 0},
		{433, "fspick", unix.EPERM, 0},
		{442, "mount_setattr", unix.EPERM, 0},
		{467, "open_tree_attr", unix.EPERM, 0},
		{155, "pivot_root", unix.EPERM, 0},
		{161, "chroot", unix.EPERM, 0},
		// Another process's registers, memory or descriptors: a child
		// could make sstar's parent (outside the filter) do what the
		// filter denies, or read sstar's memory.
		{101, "ptrace", unix.EPERM, 0},
		{310, "process_vm_readv", unix.EPERM, 0},
		{311, "process_vm_writev", unix.EPERM, 0},
		{438, "pidfd_getfd", unix.EPERM, 0},
		// Code in the kernel, or another kernel: modules, kexec, and
		// bpf programs (which can change LSM decisions and what system
		// calls return).
		{175, "init_module", unix.EPERM, 0},
		{313, "finit_module", unix.EPERM, 0},
		{176, "delete_module", unix.EPERM, 0},
		{246, "kexec_load", unix.EPERM, 0},
		{320, "kexec_file_load", unix.EPERM, 0},
		{321, "bpf", unix.EPERM, 0},
		// A page-fault server for one's own memory: the usual tool for
		// stalling the kernel in the middle of a copy, to win a race.
		{323, "userfaultfd", unix.EPERM, 0},
		// Opens any file of a file system by handle, past the
		// directories' permissions and a chroot (CAP_DAC_READ_SEARCH).
		{304, "open_by_handle_at", unix.EPERM, 0},
		// Writing or removing an xattr could restamp code.
		{188, "setxattr", unix.EPERM, 0},
		{189, "lsetxattr", unix.EPERM, 0},
		{190, "fsetxattr", unix.EPERM, 0},
		{197, "removexattr", unix.EPERM, 0},
		{198, "lremovexattr", unix.EPERM, 0},
		{199, "fremovexattr", unix.EPERM, 0},
		{463, "setxattrat", unix.EPERM, 0},
		{466, "removexattrat", unix.EPERM, 0},
		// An io_uring sets and removes xattrs (IORING_OP_SETXATTR,
		// IORING_OP_FSETXATTR) without the system calls above.
		{425, "io_uring_setup", unix.EPERM, 0},
		{426, "io_uring_enter", unix.EPERM, 0},
		{427, "io_uring_register", unix.EPERM, 0},
	},
	// Nothing to list: every x32 call is refused (see otherwise).
	x32: nil,
	i386: {
		// As for x86-64, by the i386 numbers: a 32-bit child could do
		// all of it too. (i386 has no kexec_file_load; umount is the
		// old umount without flags.)
		{120, "clone", unix.EPERM, cloneNewFlags},
		{310, "unshare", unix.EPERM, 0},
		{346, "setns", unix.EPERM, 0},
		{435, "clone3", unix.ENOSYS, 0},
		{21, "mount", unix.EPERM, 0},
		{22, "umount", unix.EPERM, 0},
		{52, "umount2", unix.EPERM, 0},
		{428, "open_tree", unix.EPERM, 0},
		{429, "move_mount", unix.EPERM, 0},
		{430, "fsopen", unix.EPERM, 0},
		{431, "fsconfig", unix.EPERM, 0},
		{432, "fsmount", unix.EPERM, 0},
		{433, "fspick", unix.EPERM, 0},
		{442, "mount_setattr", unix.EPERM, 0},
		{467, "open_tree_attr", unix.EPERM, 0},
		{217, "pivot_root", unix.EPERM, 0},
		{61, "chroot", unix.EPERM, 0},
		{26, "ptrace", unix.EPERM, 0},
		{347, "process_vm_readv", unix.EPERM, 0},
		{348, "process_vm_writev", unix.EPERM, 0},
		{438, "pidfd_getfd", unix.EPERM, 0},
		{128, "init_module", unix.EPERM, 0},
		{350, "finit_module", unix.EPERM, 0},
		{129, "delete_module", unix.EPERM, 0},
		{283, "kexec_load", unix.EPERM, 0},
		{357, "bpf", unix.EPERM, 0},
		{374, "userfaultfd", unix.EPERM, 0},
		{342, "open_by_handle_at", unix.EPERM, 0},
		{226, "setxattr", unix.EPERM, 0},
		{227, "lsetxattr", unix.EPERM, 0},
		{228, "fsetxattr", unix.EPERM, 0},
		{235, "removexattr", unix.EPERM, 0},
		{236, "lremovexattr", unix.EPERM, 0},
		{237, "fremovexattr", unix.EPERM, 0},
		{463, "setxattrat", unix.EPERM, 0},
		{466, "removexattrat", unix.EPERM, 0},
		{425, "io_uring_setup", unix.EPERM, 0},
		{426, "io_uring_enter", unix.EPERM, 0},
		{427, "io_uring_register", unix.EPERM, 0},
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
	offArg0 = 16 // args[0]; its low 32 bits on a little-endian machine

	x32SyscallBit = 0x40000000 // __X32_SYSCALL_BIT

	bpfMaxInsns = 4096 // BPF_MAXINSNS, the longest program the kernel takes
)

// DenyXattrWrites sets no_new_privs and installs the filter on every
// thread of the process: xattr writes and everything else in denied.
// (The name is from when xattr writes were all it denied.) It is irreversible: call it only in a process
// that will run scripts, never in one that stamps files.
func DenyXattrWrites() error {
	return install()
}

// Filter returns the classic BPF program DenyXattrWrites installs,
// assembled from the table. DenyXattrWrites installs a copy generated
// from it (go generate ./harden), so that no process pays for building
// it; TestGeneratedFilter fails when the two differ.
func Filter() ([]unix.SockFilter, error) {
	raw, err := program()
	if err != nil {
		return nil, err
	}
	if len(raw) > bpfMaxInsns {
		return nil, fmt.Errorf("harden: the seccomp filter has %d instructions, more than the kernel takes (%d)", len(raw), bpfMaxInsns)
	}
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return f, nil
}

// An assembly is a program being assembled: each instruction is
// assembled by golang.org/x/net/bpf as it is added, never kept as a
// bpf.Instruction, whose every value would be one more allocation (263
// of them made building the filter cost 35-75 µs in the fresh process
// sstar builds it in, against 5 µs for the assembly itself).
type assembly struct {
	raw []bpf.RawInstruction
	err error // the first instruction that did not assemble
}

// add appends in, assembled, to p.
func add[I bpf.Instruction](p *assembly, in I) {
	r, err := in.Assemble()
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("harden: assembling the seccomp filter: %v: %w", in, err)
	}
	p.raw = append(p.raw, r)
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
func program() ([]bpf.RawInstruction, error) {
	// Room for the whole program from the start: one allocation.
	n := 10 // the instructions outside calls
	for a := range numABIs {
		n += callsLen(a)
	}
	p := &assembly{raw: make([]bpf.RawInstruction, 0, n)}
	// placeholder and jumpHere are labels: jumpHere makes the placeholder
	// at p.raw[at] jump to the next instruction added.
	placeholder := func() int { p.raw = append(p.raw, bpf.RawInstruction{}); return len(p.raw) - 1 }
	jumpHere := func(at int) {
		p.raw[at], _ = bpf.Jump{Skip: uint32(len(p.raw) - at - 1)}.Assemble()
	}

	add(p, bpf.LoadAbsolute{Off: offArch, Size: 4})
	add(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipFalse: 1})
	toX8664 := placeholder()
	add(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_I386, SkipFalse: 1})
	toI386 := placeholder()
	add(p, bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS})

	jumpHere(toX8664)
	add(p, bpf.LoadAbsolute{Off: offNr, Size: 4})
	add(p, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit, SkipFalse: 1})
	toX32 := placeholder()
	calls(p, x8664)

	jumpHere(toX32)
	calls(p, x32)

	jumpHere(toI386)
	add(p, bpf.LoadAbsolute{Off: offNr, Size: 4})
	calls(p, i386)
	return p.raw, p.err
}

// calls adds what the filter does with a system call of ABI a whose
// number is in the accumulator: a decision tree over the ABI's denials,
// sorted by number, so that every call is answered after a few
// comparisons rather than one per denial:
//
//	below the lowest number listed? return otherwise[a]
//	tree(all denials)
//
// where tree(list) is, for a short list, one test per denial and then
// the return of otherwise[a]:
//
//	the number listed? no: skip this denial's block
//	  return its errno                           (a plain denial), or
//	  load the first argument; any of anyFlag?
//	  return its errno, else return otherwise[a] (a denial on flags)
//
// and for a longer one, split at its middle number:
//
//	at or above the middle number? no: skip the next jump
//	  jump to tree(upper half)
//	tree(lower half)
//	tree(upper half)
//
// Both halves end in returns, so no block falls into the next. What the
// kernel does on every allowed call, since Linux 5.11, is look the number
// up in a bitmap it filled when the filter was installed, by evaluating
// the program for every number of each ABI; only clone, whose answer
// depends on its flags, runs the program each time. The tree keeps both
// that install-time evaluation and each clone short (BenchmarkInstall,
// BenchmarkWorkload).
func calls(p *assembly, a abi) {
	// Sorted by an insertion sort, not package sort or slices: in the
	// fresh process sstar builds the filter in, their code is not yet
	// paged in, and that costs more than sorting 40 numbers.
	var buf [64]denial
	list := append(buf[:0], denied[a]...)
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].nr < list[j-1].nr; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
	var bit uint32
	if a == x32 {
		bit = x32SyscallBit
	}
	if len(list) == 0 {
		add(p, bpf.RetConstant{Val: otherwise[a]})
		return
	}
	// The calls numbered below every denied one (on x86-64 read, write,
	// mmap, getpid and most others a Go program or a libc makes often)
	// leave at once.
	add(p, bpf.JumpIf{Cond: bpf.JumpLessThan, Val: list[0].nr | bit, SkipFalse: 1})
	add(p, bpf.RetConstant{Val: otherwise[a]})
	tree(p, list, bit, otherwise[a])
}

// leafMax is the most denials tree tests one after another.
const leafMax = 4

// tree adds the decision tree of list (sorted by number) to p.
func tree(p *assembly, list []denial, bit, otherwise uint32) {
	if len(list) <= leafMax {
		for _, d := range list {
			add(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: d.nr | bit, SkipFalse: uint8(blockLen(d))})
			if d.anyFlag == 0 {
				add(p, bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(d.errno)})
				continue
			}
			add(p, bpf.LoadAbsolute{Off: offArg0, Size: 4})
			add(p, bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: d.anyFlag, SkipTrue: 1})
			add(p, bpf.RetConstant{Val: otherwise})
			add(p, bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(d.errno)})
		}
		add(p, bpf.RetConstant{Val: otherwise})
		return
	}
	mid := len(list) / 2
	add(p, bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: list[mid].nr | bit, SkipFalse: 1})
	// An unconditional jump: its offset has 32 bits, a conditional one's 8.
	add(p, bpf.Jump{Skip: uint32(treeLen(list[:mid]))})
	tree(p, list[:mid], bit, otherwise)
	tree(p, list[mid:], bit, otherwise)
}

// blockLen is the length of a denial's block in a leaf of the tree,
// after its test.
func blockLen(d denial) int {
	if d.anyFlag != 0 {
		return 4
	}
	return 1
}

// treeLen is the number of instructions tree appends for list.
func treeLen(list []denial) int {
	if len(list) <= leafMax {
		n := 1
		for _, d := range list {
			n += 1 + blockLen(d)
		}
		return n
	}
	mid := len(list) / 2
	return 2 + treeLen(list[:mid]) + treeLen(list[mid:])
}

// callsLen is the number of instructions calls appends for a.
func callsLen(a abi) int {
	if len(denied[a]) == 0 {
		return 1
	}
	return 2 + treeLen(denied[a]) // the same length whatever the order
}
