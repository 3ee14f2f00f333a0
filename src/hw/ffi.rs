// SPDX-License-Identifier: GPL-2.0

//! Declarations of the C helpers in `src/helpers.c`.
//!
//! These mirror `src/helpers.h` by hand. Both sides are primitive-typed
//! (integers, `void *`, plain function pointers) so a mismatch is visible at
//! a glance; every function here is called only from the safe wrappers in
//! `src/hw/` and `src/vm.rs`.

use kernel::ffi::{c_char, c_int, c_void};

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
    pub(crate) fn vmm_hooks_register(
        on_reboot: unsafe extern "C" fn(),
        on_panic: unsafe extern "C" fn(),
    ) -> c_int;
    pub(crate) fn vmm_hooks_unregister();
}
