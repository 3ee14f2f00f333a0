/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmm_svm_vmrun(vmcb_pa, host_save_pa, gprs): one trip into an SVM guest.
 *
 * Called inside an SVM window (EFER.SVME set, interrupts off). In order:
 *   CLGI; VMSAVE the host's hidden state (FS/GS/TR/LDTR bases, KERNEL_GS_BASE,
 *   the SYSCALL and SYSENTER MSRs) to host_save_pa; VMLOAD the guest's from
 *   the VMCB; load the guest's general registers from gprs[16] (indexed by
 *   register number; RAX and RSP live in the VMCB); STI; VMRUN; CLI; store
 *   the guest's registers back; VMSAVE the guest's hidden state; VMLOAD the
 *   host's.
 *
 * GIF stays 0 from the CLGI to the window's STGI, so no interrupt, NMI or
 * SMI can run host code while GS or any other register holds a guest value.
 * STI before VMRUN makes physical interrupts exit the guest (host IF is what
 * gates them); the CLI after it restores the window's interrupts-off state
 * before GIF returns.
 */
#include <linux/linkage.h>
#include <asm/asm.h>

#define GPR(n)	(8 * (n))(%rax)

SYM_FUNC_START(vmm_svm_vmrun)
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
	push %rdx		/* 16(%rsp): gprs */
	push %rdi		/*  8(%rsp): VMCB */
	push %rsi		/*  0(%rsp): host save area */

	clgi
	mov %rsi, %rax
	vmsave %rax
	mov %rdi, %rax
	vmload %rax

	mov %rdx, %rax
	mov GPR(1), %rcx
	mov GPR(2), %rdx
	mov GPR(3), %rbx
	mov GPR(5), %rbp
	mov GPR(6), %rsi
	mov GPR(7), %rdi
	mov GPR(8), %r8
	mov GPR(9), %r9
	mov GPR(10), %r10
	mov GPR(11), %r11
	mov GPR(12), %r12
	mov GPR(13), %r13
	mov GPR(14), %r14
	mov GPR(15), %r15
	mov 8(%rsp), %rax

	sti
	vmrun %rax
	cli

	mov 16(%rsp), %rax
	mov %rcx, GPR(1)
	mov %rdx, GPR(2)
	mov %rbx, GPR(3)
	mov %rbp, GPR(5)
	mov %rsi, GPR(6)
	mov %rdi, GPR(7)
	mov %r8, GPR(8)
	mov %r9, GPR(9)
	mov %r10, GPR(10)
	mov %r11, GPR(11)
	mov %r12, GPR(12)
	mov %r13, GPR(13)
	mov %r14, GPR(14)
	mov %r15, GPR(15)

	/* No guest value survives in a register the host may speculate on. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d

	mov 8(%rsp), %rax
	vmsave %rax
	mov 0(%rsp), %rax
	vmload %rax

	add $24, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(vmm_svm_vmrun)
