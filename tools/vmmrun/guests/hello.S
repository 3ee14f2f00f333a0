/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * hello: the smallest guest that shows vmm at work.
 *
 * A multiboot (v1) image loaded at 1 MiB. It starts in flat 32-bit
 * protected mode with paging off, as multiboot promises, greets on the
 * 16550 at 0x3f8, then enters 64-bit long mode on its own (its own GDT,
 * page tables identity-mapping 1 GiB with 2 MiB pages, PAE, EFER.LME,
 * paging), greets again, writes 0 to the exit port 0x501 and halts.
 *
 * Build: clang-19 -m32 -c hello.S && ld.lld-19 -m elf_i386 -T hello.ld
 */

#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00000002		/* bit 1: memory information */

#define COM1		0x3f8
#define COM1_LSR	(COM1 + 5)
#define LSR_THRE	0x20
#define EXIT_PORT	0x501

#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)
#define CR0_PG		(1 << 31)
#define CR4_PAE		(1 << 5)
#define PTE_P_RW	0x003
#define PDE_P_RW_PS	0x083

#define SEL_CODE64	0x08
#define SEL_DATA	0x10

	.section .multiboot, "a"
	.balign 4
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)

/*
 * putc/puts for either mode: \si is the string pointer (%esi or %rsi).
 * Each byte waits for LSR.THRE, then goes to THR. Clobbers %al, %bl, %dx.
 */
.macro PUTS si
1:	movb	(\si), %bl
	testb	%bl, %bl
	jz	4f
2:	movw	$COM1_LSR, %dx
	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	2b
	movw	$COM1, %dx
	movb	%bl, %al
	outb	%al, %dx
	inc	\si
	jmp	1b
4:	ret
.endm

	.text
	.code32
	.globl	_start
_start:
	cli
	movl	$stack_top, %esp
	movl	$msg32, %esi
	call	puts32

	/* PD: 512 x 2 MiB identity pages; PDPT[0] -> PD; PML4[0] -> PDPT. */
	movl	$pd, %edi
	movl	$PDE_P_RW_PS, %eax
	movl	$512, %ecx
1:	movl	%eax, (%edi)
	movl	$0, 4(%edi)
	addl	$0x200000, %eax
	addl	$8, %edi
	loop	1b
	movl	$pd + PTE_P_RW, pdpt
	movl	$pdpt + PTE_P_RW, pml4

	lgdt	gdt_ptr
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	/* EFER is 0 at a multiboot entry, so write LME alone. */
	movl	$MSR_EFER, %ecx
	movl	$EFER_LME, %eax
	xorl	%edx, %edx
	wrmsr
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0
	/* Now in compatibility mode: a far jump loads a 64-bit CS. */
	ljmp	$SEL_CODE64, $long_mode

puts32:
	PUTS	%esi

	.code64
long_mode:
	movw	$SEL_DATA, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movq	$stack_top, %rsp
	movl	$msg64, %esi
	call	puts64
	movw	$EXIT_PORT, %dx
	xorl	%eax, %eax
	outb	%al, %dx
2:	hlt
	jmp	2b

puts64:
	PUTS	%rsi

	.section .rodata
msg32:	.asciz	"Hello from a vmm guest!\n"
msg64:	.asciz	"Now in 64-bit long mode.\n"

	.balign 8
gdt:
	.quad	0			/* null */
	.quad	0x00af9b000000ffff	/* 0x08: 64-bit code */
	.quad	0x00cf93000000ffff	/* 0x10: flat data */
gdt_end:
gdt_ptr:
	.word	gdt_end - gdt - 1
	.long	gdt

	.bss
	.balign 4096
pml4:	.skip	4096
pdpt:	.skip	4096
pd:	.skip	4096
stack:	.skip	4096
stack_top:
