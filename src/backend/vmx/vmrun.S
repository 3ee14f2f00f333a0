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
#include "../vmrun.h"
#include <asm/unwind_hints.h>

#define GPR(n)		(8 * (n))(%rax)
#define HOST_RSP	0x6c14
#define HOST_RIP	0x6c16

SYM_FUNC_START(vmm_vmx_run)
	PUSH_CALLEE_SAVED
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
	LOAD_GUEST_GPRS
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
	SAVE_GUEST_GPRS
	pop %rcx
	mov %rcx, GPR(0)
	mov %cr2, %rcx
	mov 0(%rsp), %rdx
	mov %rcx, (%rdx)
	xor %eax, %eax

.Lout:
	CLEAR_GUEST_SCRATCH

	add $16, %rsp
	POP_CALLEE_SAVED
	RET
SYM_FUNC_END(vmm_vmx_run)
