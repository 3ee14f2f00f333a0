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
#include <linux/delay.h>
#include <linux/math64.h>
#include <linux/timekeeping.h>
#include <linux/sched/signal.h>
#include <trace/events/ipi.h>
#include <asm/apic.h>
#include <asm/asm.h>
#include <asm/cpu_entry_area.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#include <asm/special_insns.h>
#include <asm/fpu/api.h>
#include <asm/gsseg.h>
#include <asm/fpu/xcr.h>
#include <asm/msr.h>
#include <asm/tsc.h>
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

/*
 * VMX instructions on a VMCS. Each returns 0, VMM_VMFAIL_INVALID (CF),
 * VMM_VMFAIL_VALID (ZF; the VM-instruction error field says why), or
 * -EFAULT when the instruction faulted (not in VMX operation, say).
 */
#define VMX_OP(name, insn, ...)						\
	asm goto("1: " insn "\n\t"					\
		 "jc %l[invalid]\n\t"					\
		 "jz %l[valid]\n\t"					\
		 _ASM_EXTABLE(1b, %l[fault])				\
		 : : __VA_ARGS__ : "cc", "memory" : invalid, valid, fault); \
	return 0;							\
invalid:								\
	return VMM_VMFAIL_INVALID;					\
valid:									\
	return VMM_VMFAIL_VALID;					\
fault:									\
	return -EFAULT

int vmm_vmclear(u64 pa)
{
	VMX_OP(vmclear, "vmclear %[pa]", [pa] "m" (pa));
}

int vmm_vmptrld(u64 pa)
{
	VMX_OP(vmptrld, "vmptrld %[pa]", [pa] "m" (pa));
}

int vmm_vmwrite(u64 field, u64 value)
{
	VMX_OP(vmwrite, "vmwrite %[v], %[f]", [f] "r" (field), [v] "rm" (value));
}

int vmm_vmread(u64 field, u64 *value)
{
	u64 v = 0;

	asm goto("1: vmread %[f], %[v]\n\t"
		 "jc %l[invalid]\n\t"
		 "jz %l[valid]\n\t"
		 "mov %[v], %[out]\n\t"
		 _ASM_EXTABLE(1b, %l[fault])
		 : : [f] "r" (field), [v] "r" (v), [out] "m" (*value)
		 : "cc", "memory" : invalid, valid, fault);
	return 0;
invalid:
	return VMM_VMFAIL_INVALID;
valid:
	return VMM_VMFAIL_VALID;
fault:
	return -EFAULT;
}

/* INVEPT and INVVPID take a 128-bit descriptor in memory. */
int vmm_invept(u64 type, u64 eptp)
{
	struct { u64 eptp, zero; } desc = { eptp, 0 };

	VMX_OP(invept, "invept %[d], %[t]", [t] "r" (type), [d] "m" (desc));
}

int vmm_invvpid(u64 type, u16 vpid, u64 gla)
{
	struct { u64 vpid, gla; } desc = { vpid, gla };

	VMX_OP(invvpid, "invvpid %[d], %[t]", [t] "r" (type), [d] "m" (desc));
}

/* hw/ffi.rs mirrors struct vmm_vmx_host and checks the same layout. */
static_assert(sizeof(struct vmm_vmx_host) == 136);
static_assert(offsetof(struct vmm_vmx_host, cr0) == 0);
static_assert(offsetof(struct vmm_vmx_host, cr3) == 8);
static_assert(offsetof(struct vmm_vmx_host, cr4) == 16);
static_assert(offsetof(struct vmm_vmx_host, fs_base) == 24);
static_assert(offsetof(struct vmm_vmx_host, gs_base) == 32);
static_assert(offsetof(struct vmm_vmx_host, kernel_gs_base) == 40);
static_assert(offsetof(struct vmm_vmx_host, tr_base) == 48);
static_assert(offsetof(struct vmm_vmx_host, gdt_base) == 56);
static_assert(offsetof(struct vmm_vmx_host, idt_base) == 64);
static_assert(offsetof(struct vmm_vmx_host, sysenter_cs) == 72);
static_assert(offsetof(struct vmm_vmx_host, sysenter_esp) == 80);
static_assert(offsetof(struct vmm_vmx_host, sysenter_eip) == 88);
static_assert(offsetof(struct vmm_vmx_host, pat) == 96);
static_assert(offsetof(struct vmm_vmx_host, efer) == 104);
static_assert(offsetof(struct vmm_vmx_host, debugctl) == 112);
static_assert(offsetof(struct vmm_vmx_host, cs) == 120);
static_assert(offsetof(struct vmm_vmx_host, ss) == 122);
static_assert(offsetof(struct vmm_vmx_host, ds) == 124);
static_assert(offsetof(struct vmm_vmx_host, es) == 126);
static_assert(offsetof(struct vmm_vmx_host, fs) == 128);
static_assert(offsetof(struct vmm_vmx_host, gs) == 130);
static_assert(offsetof(struct vmm_vmx_host, tr) == 132);
static_assert(offsetof(struct vmm_vmx_host, ldt) == 134);

/*
 * The host state a VM exit loads or leaves behind, read with interrupts off
 * on the CPU that is about to enter: the values KVM's
 * vmx_set_constant_host_state() and vmx_prepare_switch_to_guest() use.
 */
void vmm_vmx_host_save(struct vmm_vmx_host *h)
{
	struct desc_ptr idt;
	int cpu = raw_smp_processor_id();

	lockdep_assert_irqs_disabled();
	h->cr0 = read_cr0();
	h->cr3 = __read_cr3();
	h->cr4 = __read_cr4();
	savesegment(ds, h->ds);
	savesegment(es, h->es);
	savesegment(fs, h->fs);
	savesegment(gs, h->gs);
	store_ldt(h->ldt);
	h->cs = __KERNEL_CS;
	h->ss = __KERNEL_DS;
	h->tr = GDT_ENTRY_TSS * 8;
	rdmsrq(MSR_FS_BASE, h->fs_base);
	rdmsrq(MSR_GS_BASE, h->gs_base);
	rdmsrq(MSR_KERNEL_GS_BASE, h->kernel_gs_base);
	h->tr_base = (unsigned long)&get_cpu_entry_area(cpu)->tss.x86_tss;
	h->gdt_base = (unsigned long)get_current_gdt_ro();
	store_idt(&idt);
	h->idt_base = idt.address;
	rdmsrq(MSR_IA32_SYSENTER_CS, h->sysenter_cs);
	rdmsrq(MSR_IA32_SYSENTER_ESP, h->sysenter_esp);
	rdmsrq(MSR_IA32_SYSENTER_EIP, h->sysenter_eip);
	rdmsrq(MSR_IA32_CR_PAT, h->pat);
	rdmsrq(MSR_EFER, h->efer);
	rdmsrq(MSR_IA32_DEBUGCTLMSR, h->debugctl);
}

/*
 * Undoes what a VM exit changed and the VMCS cannot restore: LDTR (exit
 * leaves it null), DS/ES/FS/GS selectors with RPL or TI set (exit loads
 * null ones), the TSS limit (exit sets 0x67, cutting off the I/O bitmap),
 * the GDT limit (exit sets 0xffff; the kernel's read-only fixmap GDT is
 * reloaded), KERNEL_GS_BASE after a GS selector load, and IA32_DEBUGCTL
 * (exit clears it).
 */
void vmm_vmx_host_restore(const struct vmm_vmx_host *h)
{
	lockdep_assert_irqs_disabled();
	if (h->ldt)
		load_ldt(h->ldt);
	if (h->ds)
		loadsegment(ds, h->ds);
	if (h->es)
		loadsegment(es, h->es);
	if (h->fs & 7)
		loadsegment(fs, h->fs);
	/*
	 * Loading a GS selector clobbers the inactive GS base, which holds the
	 * host's KERNEL_GS_BASE here; otherwise the caller switched that MSR
	 * back itself.
	 */
	if (h->gs & 7) {
		load_gs_index(h->gs);
		wrmsrq(MSR_KERNEL_GS_BASE, h->kernel_gs_base);
	}
	if (h->debugctl)
		update_debugctlmsr(h->debugctl);
	/*
	 * Not invalidate_tss_limit(): its eager path needs load_direct_gdt(),
	 * which only KVM may use. The lazy path suffices: a task with an I/O
	 * bitmap has TR reloaded on its way back to user mode
	 * (tss_update_io_bitmap() -> refresh_tss_limit()), and so has every
	 * task switched to with one.
	 */
	this_cpu_write(__tss_limit_invalid, true);
	load_fixmap_gdt(raw_smp_processor_id());
}

/*
 * An NMI that made the guest exit was consumed by the exit; raise it again
 * on this CPU so the host's handler runs once interrupts (and NMIs after
 * the window) allow.
 */
void vmm_self_nmi(void)
{
	__apic_send_IPI_self(NMI_VECTOR);
}

/*
 * The l1d_flush parameter: flush the L1 data cache before every VMX entry.
 * "auto" flushes when the kernel found the CPU affected by L1TF, "on" always,
 * "off" never. Read once, at load.
 */
static char l1d_flush[16] = "auto";
module_param_string(l1d_flush, l1d_flush, sizeof(l1d_flush), 0444);
MODULE_PARM_DESC(l1d_flush, "Flush L1D on VMX entry: auto (if the CPU has L1TF), on, off");

/* 0 off, 1 on, or -EINVAL for a value that is none of the three. */
int vmm_l1d_flush_mode(void)
{
	if (sysfs_streq(l1d_flush, "on"))
		return 1;
	if (sysfs_streq(l1d_flush, "off"))
		return 0;
	if (sysfs_streq(l1d_flush, "auto"))
		return boot_cpu_has_bug(X86_BUG_L1TF) ? 1 : 0;
	return -EINVAL;
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

int vmm_vma_insert_page(void *vma, unsigned long addr, u64 phys)
{
	return vm_insert_page(vma, addr, pfn_to_page(PHYS_PFN(phys)));
}

/* --- the running task --------------------------------------------------- */

void vmm_cond_resched(void)
{
	cond_resched();
}

/*
 * Interrupts cpu without waiting: a vCPU in the guest there takes an
 * INTR exit. A reschedule IPI, as KVM's kick sends: callable from any
 * context, hard interrupts (the APIC timer's hrtimer) included.
 */
void vmm_kick_cpu(int cpu)
{
	smp_send_reschedule(cpu);
}

static unsigned int vmm_measured_tsc_khz;

/*
 * Measures the TSC against the monotonic clock when the host kernel did
 * not calibrate it (tsc_khz is 0 on a machine without PIT, HPET or ACPI PM
 * timer, such as the test machines). Both ends are taken right after a
 * clock tick, so a coarse clock (jiffies) costs no precision. Sleeps.
 */
unsigned int vmm_tsc_calibrate(void)
{
	u64 start, n0, n1, t0, t1;

	if (tsc_khz)
		return tsc_khz;
	start = ktime_get_ns();
	while ((n0 = ktime_get_ns()) == start)
		cpu_relax();
	t0 = rdtsc_ordered();
	msleep(100);
	start = ktime_get_ns();
	while ((n1 = ktime_get_ns()) == start)
		cpu_relax();
	t1 = rdtsc_ordered();
	if (n1 > n0 && t1 > t0)
		vmm_measured_tsc_khz = div64_u64((t1 - t0) * 1000000ULL, n1 - n0);
	return vmm_measured_tsc_khz;
}

/* Nanoseconds on the monotonic clock. */
u64 vmm_ktime_ns(void)
{
	return ktime_get_ns();
}

/* Seconds since 1970 on the wall clock. */
u64 vmm_wall_secs(void)
{
	return (u64)ktime_get_real_seconds();
}

/* The host TSC frequency in kHz (the guest TSC runs at the same rate). */
unsigned int vmm_tsc_khz(void)
{
	return tsc_khz ? tsc_khz : vmm_measured_tsc_khz;
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
