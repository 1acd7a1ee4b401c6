package harden

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates the program DenyXattrWrites installs, decoded from the
// very instructions it hands the kernel, in golang.org/x/net/bpf's
// virtual machine, for a system call of the given arch and number, whose
// first argument's low 32 bits are arg0.
type run func(arch, nr, arg0 uint32) uint32

func filterVM(t *testing.T) run {
	t.Helper()
	// Built in a slice of its size, so that building it allocates the
	// slice once (see program).
	if p, err := program(); err == nil && len(p) != cap(p) {
		t.Errorf("program has %d instructions in room for %d: program and callsLen disagree", len(p), cap(p))
	}
	f, err := Filter()
	if err != nil {
		t.Fatal(err)
	}
	if len(f) > 4096 { // BPF_MAXINSNS
		t.Fatalf("the filter has %d instructions; the kernel takes at most 4096", len(f))
	}
	raw := make([]bpf.RawInstruction, len(f))
	for i, in := range f {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the filter has instructions x/net/bpf does not know:\n%v", insts)
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("%v\n%v", err, insts)
	}
	return func(arch, nr, arg0 uint32) uint32 {
		// struct seccomp_data { int nr; __u32 arch; __u64
		// instruction_pointer; __u64 args[6]; }. The VM loads words
		// big-endian, as from a packet, where the kernel loads them in
		// the host's order: written big-endian, the program sees the
		// values the kernel would give it.
		var data [64]byte
		binary.BigEndian.PutUint32(data[offNr:], nr)
		binary.BigEndian.PutUint32(data[offArch:], arch)
		binary.BigEndian.PutUint32(data[offArg0:], arg0)
		r, err := vm.Run(data[:])
		if err != nil {
			t.Fatalf("arch %#x nr %d: %v", arch, nr, err)
		}
		return uint32(r)
	}
}

func action(r uint32) string {
	switch {
	case r == unix.SECCOMP_RET_ALLOW:
		return "allow"
	case r == unix.SECCOMP_RET_KILL_PROCESS:
		return "kill the process"
	case r&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO:
		return "fail with " + unix.ErrnoName(unix.Errno(r&unix.SECCOMP_RET_DATA))
	}
	return fmt.Sprintf("%#x", r)
}

// TestFilter checks every system call number of every ABI, and numbers
// past the tables: each call in denied fails with its errno, every other
// gets otherwise, and other architectures are killed.
func TestFilter(t *testing.T) {
	checkFilter(t)
}

// TestFilterOtherTables checks the program built from tables unlike
// today's: several errnos in one list, a list for x32, an empty list, and
// a list as long as one ABI's block can be.
func TestFilterOtherTables(t *testing.T) {
	saved, savedOtherwise := denied, otherwise
	t.Cleanup(func() { denied, otherwise = saved, savedOtherwise })

	var long []denial
	for nr := range uint32(254) { // more than a conditional jump reaches over
		long = append(long, denial{nr: nr * 3, name: "x", errno: unix.EPERM})
	}
	long[100].errno = unix.ENOSYS
	// 240 denials, 4 of them on flags.
	longFlagged := slices.Clone(long[:240])
	for _, i := range []int{0, 1, 120, 239} {
		longFlagged[i].anyFlag = 1 << i % 32
	}
	for _, c := range []struct {
		name      string
		denied    [numABIs][]denial
		otherwise [numABIs]uint32
	}{
		{"errnos", [numABIs][]denial{
			x8664: {{435, "clone3", unix.ENOSYS, 0}, {188, "setxattr", unix.EPERM, 0}, {101, "ptrace", unix.EPERM, 0}, {272, "unshare", unix.EACCES, 0}},
			x32:   {{101, "ptrace", unix.EPERM, 0}, {435, "clone3", unix.ENOSYS, 0}},
			i386:  {{26, "ptrace", unix.EPERM, 0}},
		}, [numABIs]uint32{unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW}},
		{"flags", [numABIs][]denial{
			// On flags only, the first and last of a list, with an
			// errno no other denial returns directly.
			x8664: {{56, "clone", unix.EACCES, 0x10000000}, {101, "ptrace", unix.EPERM, 0}, {57, "fork", unix.ENOSYS, 0x3}},
			x32:   {{56, "clone", unix.EPERM, 0x20000}},
			i386:  {{120, "clone", unix.EPERM, 0x7e020000}},
		}, [numABIs]uint32{unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW}},
		{"empty", [numABIs][]denial{}, otherwise},
		{"long", [numABIs][]denial{x8664: long, i386: long}, otherwise},
		{"long with flags", [numABIs][]denial{x8664: longFlagged, i386: longFlagged}, otherwise},
	} {
		t.Run(c.name, func(t *testing.T) {
			denied, otherwise = c.denied, c.otherwise
			checkFilter(t)
		})
	}

	var tooLong []denial
	for nr := range uint32(2100) { // two instructions each, and the tree's
		tooLong = append(tooLong, denial{nr: nr, name: "x", errno: unix.EPERM})
	}
	denied = [numABIs][]denial{x8664: tooLong}
	if _, err := Filter(); err == nil {
		t.Errorf("Filter with %d denials for x86-64: no error, want one (more than 4096 instructions)", len(denied[x8664]))
	}
}

func checkFilter(t *testing.T) {
	t.Helper()
	eval := filterVM(t)
	archOf := [numABIs]uint32{x8664: unix.AUDIT_ARCH_X86_64, x32: unix.AUDIT_ARCH_X86_64, i386: unix.AUDIT_ARCH_I386}
	for a := range numABIs {
		want := map[uint32]uint32{}
		flags := map[uint32]uint32{}
		for _, d := range denied[a] {
			if _, dup := want[d.nr]; dup {
				t.Errorf("%v: %s (%d) is listed twice", a, d.name, d.nr)
			}
			if d.errno == 0 {
				t.Errorf("%v: %s has no errno: it would fail with a return value of 0", a, d.name)
			}
			want[d.nr] = unix.SECCOMP_RET_ERRNO | uint32(d.errno)
			flags[d.nr] = d.anyFlag
		}
		var bit uint32
		if a == x32 {
			bit = x32SyscallBit
		}
		// 0x3fffffff: the largest number that is not x32's.
		numbers := []uint32{0x3fffffff &^ bit, 0x7fffffff, 0xffffffff}
		for nr := range uint32(1024) {
			numbers = append(numbers, nr)
		}
		for _, nr := range numbers {
			w, ok := want[nr]
			if !ok {
				w = otherwise[a]
			}
			if a == x8664 && nr >= x32SyscallBit {
				w = otherwise[x32] // the kernel's x32 numbers, on x86-64's arch
			}
			// The first argument: none, every bit, and for a call
			// denied on flags each of its bits alone and every other bit.
			args := []uint32{0, 0xffffffff}
			f := flags[nr]
			if a == x8664 && nr >= x32SyscallBit {
				f = 0
			}
			if f != 0 {
				args = append(args, ^f)
				for b := range 32 {
					if f&(1<<b) != 0 {
						args = append(args, 1<<b)
					}
				}
			}
			for _, arg0 := range args {
				w := w
				if f != 0 && arg0&f == 0 {
					w = otherwise[a]
				}
				if got := eval(archOf[a], nr|bit, arg0); got != w {
					t.Errorf("%v system call %d (%#x) with first argument %#x: the filter says %s, want %s", a, nr, nr|bit, arg0, action(got), action(w))
				}
			}
		}
	}
	for _, arch := range []uint32{0, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64 &^ 0x80000000} {
		for _, nr := range []uint32{0, 188, 226, 0x40000000} {
			if got := eval(arch, nr, 0); got != unix.SECCOMP_RET_KILL_PROCESS {
				t.Errorf("arch %#x system call %d: the filter says %s, want kill the process", arch, nr, action(got))
			}
		}
	}
}

// TestFilterDenies pins what the filter denies today, so that a change to
// the table is a change to this test too.
func TestFilterDenies(t *testing.T) {
	eval := filterVM(t)
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	for _, c := range []struct {
		abi    abi
		arch   uint32
		denied []uint32 // with EPERM, whatever the arguments
		clone  uint32   // with EPERM for a new namespace
		clone3 uint32   // with ENOSYS
	}{
		{x8664, unix.AUDIT_ARCH_X86_64, []uint32{
			// setxattr lsetxattr fsetxattr removexattr lremovexattr
			// fremovexattr setxattrat removexattrat
			188, 189, 190, 197, 198, 199, 463, 466,
			// io_uring_setup io_uring_enter io_uring_register
			425, 426, 427,
			// unshare setns
			272, 308,
			// mount umount2 open_tree move_mount fsopen fsconfig fsmount
			// fspick mount_setattr open_tree_attr pivot_root chroot
			165, 166, 428, 429, 430, 431, 432, 433, 442, 467, 155, 161,
			// ptrace process_vm_readv process_vm_writev pidfd_getfd
			101, 310, 311, 438,
			// init_module finit_module delete_module kexec_load
			// kexec_file_load bpf userfaultfd open_by_handle_at
			175, 313, 176, 246, 320, 321, 323, 304,
		}, 56, 435},
		{i386, unix.AUDIT_ARCH_I386, []uint32{
			226, 227, 228, 235, 236, 237, 463, 466,
			425, 426, 427,
			310, 346,
			// mount umount umount2 open_tree ... chroot
			21, 22, 52, 428, 429, 430, 431, 432, 433, 442, 467, 217, 61,
			26, 347, 348, 438,
			// (no kexec_file_load on i386)
			128, 350, 129, 283, 357, 374, 342,
		}, 120, 435},
	} {
		n := 0
		for nr := range uint32(1024) {
			if eval(c.arch, nr, 0xffffffff) != unix.SECCOMP_RET_ALLOW {
				n++
			}
		}
		if want := len(c.denied) + 2; n != want {
			t.Errorf("%v: %d system calls denied, want %d", c.abi, n, want)
		}
		for _, nr := range c.denied {
			if got := eval(c.arch, nr, 0); got != eperm {
				t.Errorf("%v system call %d: %s, want fail with EPERM", c.abi, nr, action(got))
			}
		}
		if got := eval(c.arch, c.clone3, 0); got != enosys {
			t.Errorf("%v clone3: %s, want fail with ENOSYS", c.abi, action(got))
		}
		// What fork, vfork, threads and os/exec pass, and each new
		// namespace.
		for _, flags := range []uint32{uint32(unix.SIGCHLD), unix.CLONE_VM | unix.CLONE_VFORK | uint32(unix.SIGCHLD) | unix.CLONE_PIDFD,
			unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD} {
			if got := eval(c.arch, c.clone, flags); got != unix.SECCOMP_RET_ALLOW {
				t.Errorf("%v clone(%#x): %s, want allow", c.abi, flags, action(got))
			}
		}
		for _, flags := range []uint32{unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
			unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWUSER | unix.CLONE_NEWNS | uint32(unix.SIGCHLD)} {
			if got := eval(c.arch, c.clone, flags); got != eperm {
				t.Errorf("%v clone(%#x): %s, want fail with EPERM", c.abi, flags, action(got))
			}
		}
	}
	for _, nr := range []uint32{0, 188, 226, 0x3fffffff} {
		if got := eval(unix.AUDIT_ARCH_X86_64, nr|x32SyscallBit, 0); got != eperm {
			t.Errorf("x32 system call %d: %s, want fail with EPERM", nr, action(got))
		}
	}
}

// BenchmarkFilter measures assembling the filter, which sstar does at
// every start.
func BenchmarkFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Filter(); err != nil {
			b.Fatal(err)
		}
	}
}
