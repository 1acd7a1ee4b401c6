#include "textflag.h"

// func Syscall(trap, a1, a2, a3 uintptr) int32
//
// The i386 convention: number in eax, arguments in ebx, ecx, edx, esi,
// edi (and ebp, left alone here: the frame pointer), result in eax.
TEXT ·Syscall(SB), NOSPLIT, $0-36
	MOVQ	trap+0(FP), AX
	MOVQ	a1+8(FP), BX
	MOVQ	a2+16(FP), CX
	MOVQ	a3+24(FP), DX
	XORQ	SI, SI
	XORQ	DI, DI
	INT	$0x80
	MOVL	AX, ret+32(FP)
	RET
