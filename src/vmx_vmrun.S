/* SPDX-License-Identifier: GPL-2.0 */
/*
 * int vmm_vmx_run(u64 *gprs, u64 *cr2, int launched): one trip into a VMX
 * guest.
 *
 * Called inside a VMX window (VMX root operation, interrupts off) with the
 * vCPU's VMCS current and every control, host and guest field written
 * except HOST_RSP and HOST_RIP, which only this routine knows. In order:
 * load the guest's CR2; write HOST_RSP (this frame) and HOST_RIP (the exit
 * label); load the guest's general registers from gprs[16] (indexed by
 * register number; RSP lives in the VMCS); VMLAUNCH, or VMRESUME when
 * `launched`. A VM exit lands at vmm_vmx_exit with the host's RSP, interrupts
 * still masked (RFLAGS is 0x2), and the guest's registers live: they are
 * stored back, CR2 too, and every scratch register is cleared.
 *
 * Returns 0 after a VM exit, 1 for VMfailInvalid and 2 for VMfailValid
 * (the caller reads the VM-instruction error).
 */
#include <linux/linkage.h>
#include <linux/objtool.h>
#include <asm/asm.h>
#include <asm/unwind_hints.h>

#define GPR(n)		(8 * (n))(%rax)
#define HOST_RSP	0x6c14
#define HOST_RIP	0x6c16

SYM_FUNC_START(vmm_vmx_run)
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
	push %rdi		/* 8(%rsp): gprs */
	push %rsi		/* 0(%rsp): cr2 */

	mov (%rsi), %rax
	mov %rax, %cr2

	mov $HOST_RSP, %eax
	vmwrite %rsp, %rax
	jbe .Lfail
	lea vmm_vmx_exit(%rip), %rbx
	mov $HOST_RIP, %eax
	vmwrite %rbx, %rax
	jbe .Lfail

	/* Flags from here to VMLAUNCH/VMRESUME come from this test: MOVs
	 * leave them alone. */
	test %edx, %edx
	mov %rdi, %rax
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
	mov GPR(0), %rax

	/* The exit arrives with this frame: tell objtool so. */
	UNWIND_HINT_SAVE
	jnz .Lresume
	vmlaunch
	jmp .Lfail
.Lresume:
	vmresume
	/* Falling through: the entry failed and the guest never ran. */
.Lfail:
	mov $2, %eax
	jnc .Lout
	mov $1, %eax
	jmp .Lout

	/* Reached by a VM exit only (HOST_RIP), never by a jump. */
SYM_INNER_LABEL(vmm_vmx_exit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ANNOTATE_NOENDBR
	/* RSP is HOST_RSP again: 0(%rsp) cr2, 8(%rsp) gprs. */
	push %rax
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
	pop %rcx
	mov %rcx, GPR(0)
	mov %cr2, %rcx
	mov 0(%rsp), %rdx
	mov %rcx, (%rdx)
	xor %eax, %eax

.Lout:
	/* No guest value survives in a register the host may speculate on. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d

	add $16, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(vmm_vmx_run)
