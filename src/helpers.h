/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C helpers of vmm.ko (src/helpers.c). src/hw/ffi.rs declares the same
 * functions for Rust by hand; keep the two in step. Struct pointers are
 * passed as void * so that neither side depends on the other's view of a
 * kernel struct's layout.
 */
#ifndef VMM_HELPERS_H
#define VMM_HELPERS_H

#include <linux/types.h>

int vmm_anon_inode_getfd(const char *name, const void *fops, void *priv);
void vmm_module_get(void);
void vmm_module_put(void);
u64 vmm_page_to_phys(void *page);
void vmm_on_each_cpu(void (*fn)(void *info), void *info);
int vmm_rdmsr_safe(u32 msr, u64 *val);
int vmm_wrmsr_safe(u32 msr, u64 val);
u64 vmm_read_cr0(void);
u64 vmm_read_cr4(void);
void vmm_write_cr4_raw(u64 val);
int vmm_vmxon(u64 pa);
int vmm_vmxoff(void);
int vmm_stgi(void);

#define VMM_VMFAIL_INVALID	1
#define VMM_VMFAIL_VALID	2

/* Host state for a VMX entry; src/hw/ffi.rs has the same layout. */
struct vmm_vmx_host {
	u64 cr0, cr3, cr4;
	u64 fs_base, gs_base, kernel_gs_base;
	u64 tr_base, gdt_base, idt_base;
	u64 sysenter_cs, sysenter_esp, sysenter_eip;
	u64 pat, efer, debugctl;
	u16 cs, ss, ds, es, fs, gs, tr, ldt;
};

int vmm_vmclear(u64 pa);
int vmm_vmptrld(u64 pa);
int vmm_vmwrite(u64 field, u64 value);
int vmm_vmread(u64 field, u64 *value);
int vmm_invept(u64 type, u64 eptp);
int vmm_invvpid(u64 type, u16 vpid, u64 gla);
void vmm_vmx_host_save(struct vmm_vmx_host *h);
void vmm_vmx_host_restore(const struct vmm_vmx_host *h);
void vmm_self_nmi(void);
int vmm_l1d_flush_mode(void);
int vmm_vmx_run(u64 *gprs, u64 *cr2, int launched);
int vmm_hooks_register(void (*on_reboot)(void), void (*on_panic)(void));
void vmm_hooks_unregister(void);

u64 vmm_alloc_chunk(unsigned int order);
void vmm_free_pages_phys(u64 phys, unsigned long nr);
void *vmm_phys_to_virt(u64 phys);
int vmm_vma_insert_page(void *vma, unsigned long addr, u64 phys);
void vmm_cond_resched(void);
void vmm_kick_cpu(int cpu);
unsigned int vmm_tsc_khz(void);
u64 vmm_ktime_ns(void);
u64 vmm_wall_secs(void);
unsigned int vmm_tsc_calibrate(void);
void vmm_fpu_begin(void);
void vmm_fpu_end(void);
u64 vmm_xgetbv0(void);
void vmm_xsetbv0(u64 value);
void vmm_fpu_restore(void *area, u64 mask, int xsave);
void vmm_fpu_save(void *area, u64 mask, int xsave);
void vmm_svm_vmrun(u64 vmcb_pa, u64 host_save_pa, u64 *gprs);

#endif /* VMM_HELPERS_H */
