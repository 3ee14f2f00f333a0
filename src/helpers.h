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
int vmm_hooks_register(void (*on_reboot)(void), void (*on_panic)(void));
void vmm_hooks_unregister(void);

#endif /* VMM_HELPERS_H */
