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
#include <asm/asm.h>
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
