package harden

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates the program DenyXattrWrites installs, decoded from the
// very instructions it hands the kernel, in golang.org/x/net/bpf's
// virtual machine, for a system call of the given arch and number.
type run func(arch, nr uint32) uint32

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
	return func(arch, nr uint32) uint32 {
		// struct seccomp_data { int nr; __u32 arch; __u64
		// instruction_pointer; __u64 args[6]; }. The VM loads words
		// big-endian, as from a packet, where the kernel loads them in
		// the host's order: written big-endian, the program sees the
		// values the kernel would give it.
		var data [64]byte
		binary.BigEndian.PutUint32(data[offNr:], nr)
		binary.BigEndian.PutUint32(data[offArch:], arch)
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
	for nr := range uint32(254) { // and 2 errnos: the most one block can take
		long = append(long, denial{nr * 3, "x", unix.EPERM})
	}
	long[100].errno = unix.ENOSYS
	for _, c := range []struct {
		name      string
		denied    [numABIs][]denial
		otherwise [numABIs]uint32
	}{
		{"errnos", [numABIs][]denial{
			x8664: {{435, "clone3", unix.ENOSYS}, {188, "setxattr", unix.EPERM}, {101, "ptrace", unix.EPERM}, {272, "unshare", unix.EACCES}},
			x32:   {{101, "ptrace", unix.EPERM}, {435, "clone3", unix.ENOSYS}},
			i386:  {{26, "ptrace", unix.EPERM}},
		}, [numABIs]uint32{unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_ALLOW}},
		{"empty", [numABIs][]denial{}, otherwise},
		{"long", [numABIs][]denial{x8664: long, i386: long}, otherwise},
	} {
		t.Run(c.name, func(t *testing.T) {
			denied, otherwise = c.denied, c.otherwise
			checkFilter(t)
		})
	}

	denied[x8664] = append(long, denial{1000, "one too many", unix.EPERM})
	if _, err := Filter(); err == nil {
		t.Errorf("Filter with %d denials and 2 errnos for x86-64: no error, want one", len(denied[x8664]))
	}
}

func checkFilter(t *testing.T) {
	t.Helper()
	eval := filterVM(t)
	archOf := [numABIs]uint32{x8664: unix.AUDIT_ARCH_X86_64, x32: unix.AUDIT_ARCH_X86_64, i386: unix.AUDIT_ARCH_I386}
	for a := range numABIs {
		want := map[uint32]uint32{}
		for _, d := range denied[a] {
			if _, dup := want[d.nr]; dup {
				t.Errorf("%v: %s (%d) is listed twice", a, d.name, d.nr)
			}
			if d.errno == 0 {
				t.Errorf("%v: %s has no errno: it would fail with a return value of 0", a, d.name)
			}
			want[d.nr] = unix.SECCOMP_RET_ERRNO | uint32(d.errno)
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
			if got := eval(archOf[a], nr|bit); got != w {
				t.Errorf("%v system call %d (%#x): the filter says %s, want %s", a, nr, nr|bit, action(got), action(w))
			}
		}
	}
	for _, arch := range []uint32{0, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64 &^ 0x80000000} {
		for _, nr := range []uint32{0, 188, 226, 0x40000000} {
			if got := eval(arch, nr); got != unix.SECCOMP_RET_KILL_PROCESS {
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
	for _, c := range []struct {
		abi    abi
		arch   uint32
		denied []uint32
	}{
		// setxattr lsetxattr fsetxattr removexattr lremovexattr
		// fremovexattr setxattrat removexattrat io_uring_setup
		// io_uring_enter io_uring_register
		{x8664, unix.AUDIT_ARCH_X86_64, []uint32{188, 189, 190, 197, 198, 199, 463, 466, 425, 426, 427}},
		{i386, unix.AUDIT_ARCH_I386, []uint32{226, 227, 228, 235, 236, 237, 463, 466, 425, 426, 427}},
	} {
		n := 0
		for nr := range uint32(1024) {
			if eval(c.arch, nr) != unix.SECCOMP_RET_ALLOW {
				n++
			}
		}
		if n != len(c.denied) {
			t.Errorf("%v: %d system calls denied, want %d", c.abi, n, len(c.denied))
		}
		for _, nr := range c.denied {
			if got := eval(c.arch, nr); got != eperm {
				t.Errorf("%v system call %d: %s, want fail with EPERM", c.abi, nr, action(got))
			}
		}
	}
	for _, nr := range []uint32{0, 188, 226, 0x3fffffff} {
		if got := eval(unix.AUDIT_ARCH_X86_64, nr|x32SyscallBit); got != eperm {
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
