// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for vmm.ko.
 *
 * Two kinds of code live here, and nothing else:
 *  - kernel facilities that Rust-for-Linux 7.3 does not wrap and whose C API
 *    is a static inline or a variable (anon inodes, module references,
 *    reboot and panic notifiers, on_each_cpu, page_to_phys);
 *  - the instructions that can fault and need an exception-table fixup
 *    (VMXON, VMXOFF, STGI, RDMSR, WRMSR), which Rust inline assembly cannot
 *    emit in 7.3. Each returns an error code instead of oopsing.
 *
 * Every function takes and returns only primitive types or opaque pointers,
 * so the hand-written declarations in src/hw/ffi.rs mirror them exactly.
 */

#include <linux/anon_inodes.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/reboot.h>
#include <linux/smp.h>
#include <linux/sched/signal.h>
#include <asm/asm.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>
#include <asm/msr.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

#include "helpers.h"

int vmm_anon_inode_getfd(const char *name, const void *fops, void *priv)
{
	return anon_inode_getfd(name, fops, priv, O_RDWR | O_CLOEXEC);
}

/* A reference on this module, held by every VM that has a name. */
void vmm_module_get(void)
{
	__module_get(THIS_MODULE);
}

void vmm_module_put(void)
{
	module_put(THIS_MODULE);
}

u64 vmm_page_to_phys(void *page)
{
	return page_to_phys((struct page *)page);
}

/* Runs fn(info) on every online CPU with interrupts off, and waits. */
void vmm_on_each_cpu(void (*fn)(void *info), void *info)
{
	on_each_cpu(fn, info, 1);
}

int vmm_rdmsr_safe(u32 msr, u64 *val)
{
	return rdmsrq_safe(msr, val);
}

int vmm_wrmsr_safe(u32 msr, u64 val)
{
	return wrmsrq_safe(msr, val);
}

u64 vmm_read_cr0(void)
{
	return read_cr0();
}

/* The live CR4 register, not the kernel's per-CPU shadow of it. */
u64 vmm_read_cr4(void)
{
	return __read_cr4();
}

/*
 * Writes CR4 without updating the kernel's shadow. Only CR4.VMXE may differ
 * from the live value, and only inside a window with interrupts disabled;
 * see Documentation/ownership.rst. native_write_cr4() is not exported to
 * modules in 7.3 (only for LKDTM); its CR4-pinning check guards bits this
 * function refuses to change anyway.
 */
void vmm_write_cr4_raw(u64 val)
{
	lockdep_assert_irqs_disabled();
	if (WARN_ON_ONCE((val ^ __read_cr4()) & ~(u64)X86_CR4_VMXE))
		return;
	asm volatile("mov %0, %%cr4" : : "r" (val) : "memory");
}

/* VMXON: 0, or -EIO on VMfail (CF or ZF set), or -EFAULT on a fault. */
int vmm_vmxon(u64 pa)
{
	asm goto("1: vmxon %[pa]\n\t"
		 "jna %l[fail]\n\t"
		 _ASM_EXTABLE(1b, %l[fault])
		 : : [pa] "m" (pa) : "cc", "memory" : fail, fault);
	return 0;
fail:
	return -EIO;
fault:
	return -EFAULT;
}

/* VMXOFF: 0, or -EIO on VMfail, or -EFAULT on a fault. */
int vmm_vmxoff(void)
{
	asm goto("1: vmxoff\n\t"
		 "jna %l[fail]\n\t"
		 _ASM_EXTABLE(1b, %l[fault])
		 : : : "cc", "memory" : fail, fault);
	return 0;
fail:
	return -EIO;
fault:
	return -EFAULT;
}

/* STGI, so INIT and NMI are not left blocked: 0, or -EFAULT. */
int vmm_stgi(void)
{
	asm goto("1: stgi\n\t"
		 _ASM_EXTABLE(1b, %l[fault])
		 : : : "memory" : fault);
	return 0;
fault:
	return -EFAULT;
}

static void (*vmm_on_reboot)(void);
static void (*vmm_on_panic)(void);

static int vmm_reboot_notify(struct notifier_block *nb, unsigned long code,
			     void *unused)
{
	vmm_on_reboot();
	return NOTIFY_DONE;
}

static int vmm_panic_notify(struct notifier_block *nb, unsigned long code,
			    void *unused)
{
	vmm_on_panic();
	return NOTIFY_DONE;
}

static struct notifier_block vmm_reboot_nb = {
	.notifier_call = vmm_reboot_notify,
};

static struct notifier_block vmm_panic_nb = {
	.notifier_call = vmm_panic_notify,
	/* Run early: the panicking CPU may be inside a window. */
	.priority = INT_MAX,
};

int vmm_hooks_register(void (*on_reboot)(void), void (*on_panic)(void))
{
	int r;

	vmm_on_reboot = on_reboot;
	vmm_on_panic = on_panic;
	r = register_reboot_notifier(&vmm_reboot_nb);
	if (r)
		return r;
	atomic_notifier_chain_register(&panic_notifier_list, &vmm_panic_nb);
	return 0;
}

void vmm_hooks_unregister(void)
{
	atomic_notifier_chain_unregister(&panic_notifier_list, &vmm_panic_nb);
	unregister_reboot_notifier(&vmm_reboot_nb);
}

/* --- guest memory ------------------------------------------------------- */

/*
 * A zeroed, physically contiguous block of 2^order pages, split into
 * independent pages (each with its own reference, as vm_insert_page needs),
 * or 0 when memory is short. Large blocks do not retry hard or warn: the
 * caller falls back to single pages.
 */
u64 vmm_alloc_chunk(unsigned int order)
{
	gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_ZERO;
	struct page *page;

	if (order)
		gfp |= __GFP_NORETRY | __GFP_NOWARN;
	page = alloc_pages(gfp, order);
	if (!page)
		return 0;
	if (order)
		split_page(page, order);
	return page_to_phys(page);
}

/* Drops this module's reference on nr pages from phys on. */
void vmm_free_pages_phys(u64 phys, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		__free_page(pfn_to_page(PHYS_PFN(phys) + i));
}

void *vmm_phys_to_virt(u64 phys)
{
	return __va(phys);
}

/* --- mmap of a VM fd ---------------------------------------------------- */

void vmm_vma_info(void *vma, unsigned long *start, unsigned long *end,
		  unsigned long *pgoff, unsigned long *flags)
{
	struct vm_area_struct *v = vma;

	*start = v->vm_start;
	*end = v->vm_end;
	*pgoff = v->vm_pgoff;
	*flags = v->vm_flags;
}

int vmm_vma_shared(void *vma)
{
	return !!(((struct vm_area_struct *)vma)->vm_flags & VM_MAYSHARE);
}

/* Segments never grow, and guest RAM has no place in a core dump. */
void vmm_vma_prepare(void *vma)
{
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
}

int vmm_vma_insert_page(void *vma, unsigned long addr, u64 phys)
{
	return vm_insert_page(vma, addr, pfn_to_page(PHYS_PFN(phys)));
}

/* --- the running task --------------------------------------------------- */

int vmm_signal_pending(void)
{
	return signal_pending(current);
}

void vmm_cond_resched(void)
{
	cond_resched();
}

static void vmm_kick_noop(void *info)
{
}

/*
 * Interrupts cpu without waiting: a vCPU in the guest there takes an
 * INTR exit. Must not be called with interrupts off.
 */
void vmm_kick_cpu(int cpu)
{
	smp_call_function_single(cpu, vmm_kick_noop, NULL, 0);
}

/* --- FPU ---------------------------------------------------------------- */

/* Saves the task's FPU state and lets vmm use the registers. */
void vmm_fpu_begin(void)
{
	kernel_fpu_begin();
}

void vmm_fpu_end(void)
{
	kernel_fpu_end();
}

u64 vmm_xgetbv0(void)
{
	return xgetbv(XCR_XFEATURE_ENABLED_MASK);
}

void vmm_xsetbv0(u64 value)
{
	xsetbv(XCR_XFEATURE_ENABLED_MASK, value);
}

/* Loads the guest's FPU state: XRSTOR with mask, or FXRSTOR. */
void vmm_fpu_restore(void *area, u64 mask, int xsave)
{
	u32 lo = mask, hi = mask >> 32;

	if (xsave)
		asm volatile("xrstor64 %0" : : "m"(*(u8 *)area), "a"(lo), "d"(hi) : "memory");
	else
		asm volatile("fxrstor64 %0" : : "m"(*(u8 *)area) : "memory");
}

void vmm_fpu_save(void *area, u64 mask, int xsave)
{
	u32 lo = mask, hi = mask >> 32;

	if (xsave)
		asm volatile("xsave64 %0" : "+m"(*(u8 *)area) : "a"(lo), "d"(hi) : "memory");
	else
		asm volatile("fxsave64 %0" : "+m"(*(u8 *)area) : : "memory");
}
