// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C helpers in `src/helpers.c`.
//!
//! These mirror `src/helpers.h` by hand. Both sides are primitive-typed
//! (integers, `void *`, plain function pointers) so a mismatch is visible at
//! a glance; every function here is called only from the safe wrappers in
//! `src/hw/` and `src/vm.rs`.

use kernel::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

extern "C" {
    pub(crate) fn vmm_anon_inode_getfd(
        name: *const c_char,
        fops: *const c_void,
        private: *mut c_void,
    ) -> c_int;
    pub(crate) fn vmm_module_get();
    pub(crate) fn vmm_module_put();
    pub(crate) fn vmm_page_to_phys(page: *mut c_void) -> u64;
    pub(crate) fn vmm_on_each_cpu(func: unsafe extern "C" fn(*mut c_void), info: *mut c_void);
    pub(crate) fn vmm_rdmsr_safe(msr: u32, val: *mut u64) -> c_int;
    pub(crate) fn vmm_wrmsr_safe(msr: u32, val: u64) -> c_int;
    pub(crate) fn vmm_read_cr0() -> u64;
    pub(crate) fn vmm_read_cr4() -> u64;
    pub(crate) fn vmm_write_cr4_raw(val: u64);
    pub(crate) fn vmm_vmxon(pa: u64) -> c_int;
    pub(crate) fn vmm_vmxoff() -> c_int;
    pub(crate) fn vmm_stgi() -> c_int;
    pub(crate) fn vmm_vmclear(pa: u64) -> c_int;
    pub(crate) fn vmm_vmptrld(pa: u64) -> c_int;
    pub(crate) fn vmm_vmwrite(field: u64, value: u64) -> c_int;
    pub(crate) fn vmm_vmread(field: u64, value: *mut u64) -> c_int;
    pub(crate) fn vmm_invept(kind: u64, eptp: u64) -> c_int;
    pub(crate) fn vmm_invvpid(kind: u64, vpid: u16, gla: u64) -> c_int;
    pub(crate) fn vmm_vmx_host_save(h: *mut VmxHost);
    pub(crate) fn vmm_vmx_host_restore(h: *const VmxHost);
    pub(crate) fn vmm_self_nmi();
    pub(crate) fn vmm_l1d_flush_mode() -> c_int;
    pub(crate) fn vmm_vmx_run(gprs: *mut u64, cr2: *mut u64, launched: c_int) -> c_int;
    pub(crate) fn vmm_hooks_register(
        on_reboot: unsafe extern "C" fn(),
        on_panic: unsafe extern "C" fn(),
    ) -> c_int;
    pub(crate) fn vmm_hooks_unregister();
    pub(crate) fn vmm_alloc_chunk(order: c_uint) -> u64;
    pub(crate) fn vmm_free_pages_phys(phys: u64, nr: c_ulong);
    pub(crate) fn vmm_phys_to_virt(phys: u64) -> *mut c_void;
    pub(crate) fn vmm_vma_insert_page(vma: *mut c_void, addr: c_ulong, phys: u64) -> c_int;
    pub(crate) fn vmm_cond_resched();
    pub(crate) fn vmm_kick_cpu(cpu: c_int);
    pub(crate) fn vmm_tsc_khz() -> c_uint;
    pub(crate) fn vmm_ktime_ns() -> u64;
    pub(crate) fn vmm_wall_secs() -> u64;
    pub(crate) fn vmm_tsc_calibrate() -> c_uint;
    pub(crate) fn vmm_fpu_begin();
    pub(crate) fn vmm_fpu_end();
    pub(crate) fn vmm_xgetbv0() -> u64;
    pub(crate) fn vmm_xsetbv0(value: u64);
    pub(crate) fn vmm_fpu_restore(area: *mut c_void, mask: u64, xsave: c_int);
    pub(crate) fn vmm_fpu_save(area: *mut c_void, mask: u64, xsave: c_int);
    pub(crate) fn vmm_svm_vmrun(vmcb_pa: u64, host_save_pa: u64, gprs: *mut u64);
}

/// `VMM_VMFAIL_INVALID` in helpers.h.
pub(crate) const VMFAIL_INVALID: c_int = 1;
/// `VMM_VMFAIL_VALID` in helpers.h.
pub(crate) const VMFAIL_VALID: c_int = 2;

/// `struct vmm_vmx_host` in helpers.h: the host state of a VMX entry.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VmxHost {
    pub(crate) cr0: u64,
    pub(crate) cr3: u64,
    pub(crate) cr4: u64,
    pub(crate) fs_base: u64,
    pub(crate) gs_base: u64,
    pub(crate) kernel_gs_base: u64,
    pub(crate) tr_base: u64,
    pub(crate) gdt_base: u64,
    pub(crate) idt_base: u64,
    pub(crate) sysenter_cs: u64,
    pub(crate) sysenter_esp: u64,
    pub(crate) sysenter_eip: u64,
    pub(crate) pat: u64,
    pub(crate) efer: u64,
    pub(crate) debugctl: u64,
    pub(crate) cs: u16,
    pub(crate) ss: u16,
    pub(crate) ds: u16,
    pub(crate) es: u16,
    pub(crate) fs: u16,
    pub(crate) gs: u16,
    pub(crate) tr: u16,
    pub(crate) ldt: u16,
}

// `struct vmm_vmx_host` is mirrored by hand: both sides check the same
// size and offsets (helpers.c has the C half).
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<VmxHost>() == 136);
    assert!(offset_of!(VmxHost, cr0) == 0);
    assert!(offset_of!(VmxHost, cr3) == 8);
    assert!(offset_of!(VmxHost, cr4) == 16);
    assert!(offset_of!(VmxHost, fs_base) == 24);
    assert!(offset_of!(VmxHost, gs_base) == 32);
    assert!(offset_of!(VmxHost, kernel_gs_base) == 40);
    assert!(offset_of!(VmxHost, tr_base) == 48);
    assert!(offset_of!(VmxHost, gdt_base) == 56);
    assert!(offset_of!(VmxHost, idt_base) == 64);
    assert!(offset_of!(VmxHost, sysenter_cs) == 72);
    assert!(offset_of!(VmxHost, sysenter_esp) == 80);
    assert!(offset_of!(VmxHost, sysenter_eip) == 88);
    assert!(offset_of!(VmxHost, pat) == 96);
    assert!(offset_of!(VmxHost, efer) == 104);
    assert!(offset_of!(VmxHost, debugctl) == 112);
    assert!(offset_of!(VmxHost, cs) == 120);
    assert!(offset_of!(VmxHost, ss) == 122);
    assert!(offset_of!(VmxHost, ds) == 124);
    assert!(offset_of!(VmxHost, es) == 126);
    assert!(offset_of!(VmxHost, fs) == 128);
    assert!(offset_of!(VmxHost, gs) == 130);
    assert!(offset_of!(VmxHost, tr) == 132);
    assert!(offset_of!(VmxHost, ldt) == 134);
};
