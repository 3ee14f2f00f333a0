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
#include "../vmrun.h"

SYM_FUNC_START(vmm_svm_vmrun)
	PUSH_CALLEE_SAVED
	push %rdx		/* 16(%rsp): gprs */
	push %rdi		/*  8(%rsp): VMCB */
	push %rsi		/*  0(%rsp): host save area */

	clgi
	mov %rsi, %rax
	vmsave %rax
	mov %rdi, %rax
	vmload %rax

	mov %rdx, %rax
	LOAD_GUEST_GPRS
	mov 8(%rsp), %rax

	sti
	vmrun %rax
	cli

	mov 16(%rsp), %rax
	SAVE_GUEST_GPRS

	CLEAR_GUEST_SCRATCH

	mov 8(%rsp), %rax
	vmsave %rax
	mov 0(%rsp), %rax
	vmload %rax

	add $24, %rsp
	POP_CALLEE_SAVED
	RET
SYM_FUNC_END(vmm_svm_vmrun)
