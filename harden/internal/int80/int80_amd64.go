package int80

// Syscall makes system call trap of the i386 table
// (arch/x86/entry/syscalls/syscall_32.tbl) with int $0x80, with
// arguments a1, a2, a3 and zero for the fourth and fifth, and returns
// what the kernel leaves in eax: the result, or -errno. Pointers must
// fit in 32 bits, which Go's do not; calls whose pointers the kernel
// never reads (refused by seccomp, or given 0) are what it is for.
//
// On a kernel without IA32 emulation (ia32_emulation=0) int $0x80
// raises a fault the process does not survive.
func Syscall(trap, a1, a2, a3 uintptr) int32
