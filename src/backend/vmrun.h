/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest general-register moves shared by svm_vmrun.S and vmx_vmrun.S.
 * `gprs` is a u64[16] indexed by register number (RSP, and on SVM also RAX,
 * live in the VMCB/VMCS); the macros take the register holding its address.
 */
#ifndef VMM_VMRUN_H
#define VMM_VMRUN_H

/* A frame, and the callee-saved registers the guest will overwrite. */
.macro PUSH_CALLEE_SAVED
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
.endm

/* Undoes PUSH_CALLEE_SAVED (RSP must point at the saved RBX). */
.macro POP_CALLEE_SAVED
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
.endm

/* Loads RCX..R15 (not RAX, not RSP) from gprs at \base (which is RAX). */
.macro LOAD_GUEST_GPRS
	mov 8*1(%rax), %rcx
	mov 8*2(%rax), %rdx
	mov 8*3(%rax), %rbx
	mov 8*5(%rax), %rbp
	mov 8*6(%rax), %rsi
	mov 8*7(%rax), %rdi
	mov 8*8(%rax), %r8
	mov 8*9(%rax), %r9
	mov 8*10(%rax), %r10
	mov 8*11(%rax), %r11
	mov 8*12(%rax), %r12
	mov 8*13(%rax), %r13
	mov 8*14(%rax), %r14
	mov 8*15(%rax), %r15
.endm

/* Stores RCX..R15 (not RAX, not RSP) to gprs at RAX. */
.macro SAVE_GUEST_GPRS
	mov %rcx, 8*1(%rax)
	mov %rdx, 8*2(%rax)
	mov %rbx, 8*3(%rax)
	mov %rbp, 8*5(%rax)
	mov %rsi, 8*6(%rax)
	mov %rdi, 8*7(%rax)
	mov %r8, 8*8(%rax)
	mov %r9, 8*9(%rax)
	mov %r10, 8*10(%rax)
	mov %r11, 8*11(%rax)
	mov %r12, 8*12(%rax)
	mov %r13, 8*13(%rax)
	mov %r14, 8*14(%rax)
	mov %r15, 8*15(%rax)
.endm

/* No guest value survives in a caller-saved register the host may
 * speculate on (callee-saved ones are restored from the stack). */
.macro CLEAR_GUEST_SCRATCH
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
.endm

#endif /* VMM_VMRUN_H */
