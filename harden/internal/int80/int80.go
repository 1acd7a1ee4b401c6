// Package int80 makes system calls the way a 32-bit x86 program does,
// with int $0x80 and the numbers of the i386 table, from a 64-bit
// program, so that harden's tests can check what the kernel and the
// seccomp filter do with a 32-bit child's calls without building one.
package int80
