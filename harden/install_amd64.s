#include "textflag.h"

// System call numbers and arguments (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/linux/prctl.h, include/uapi/linux/seccomp.h).
#define SYS_prctl 157
#define SYS_seccomp 317
#define PR_SET_NO_NEW_PRIVS 38
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_FILTER_FLAG_TSYNC 1

// func setNoNewPrivsAndFilter(fprog *unix.SockFprog) (nnpErrno, r, errno uintptr)
//
// Both system calls are made here, with no call in between, so they are
// made on one thread (see install in install_amd64.go).
TEXT ·setNoNewPrivsAndFilter(SB), NOSPLIT, $0-32
	MOVQ	$0, r+16(FP)
	MOVQ	$0, errno+24(FP)

	MOVQ	$SYS_prctl, AX
	MOVQ	$PR_SET_NO_NEW_PRIVS, DI
	MOVQ	$1, SI
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	XORQ	R9, R9
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	nnpok
	NEGQ	AX
	MOVQ	AX, nnpErrno+8(FP)
	RET

nnpok:
	MOVQ	$0, nnpErrno+8(FP)
	MOVQ	$SYS_seccomp, AX
	MOVQ	$SECCOMP_SET_MODE_FILTER, DI
	MOVQ	$SECCOMP_FILTER_FLAG_TSYNC, SI
	MOVQ	fprog+0(FP), DX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	AX, errno+24(FP)
	RET

ok:
	MOVQ	AX, r+16(FP)
	RET
