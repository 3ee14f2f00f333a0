// SPDX-License-Identifier: GPL-2.0

//! VMX operation: VMXON regions and the window in which VMX is on.
//!
//! # Invariants
//!
//! - A [`VmxonRegion`] owns one zeroed page whose first four bytes hold the
//!   VMCS revision identifier, and belongs to exactly one CPU (`cpu`).
//! - A [`VmxWindow`] exists only while the CPU it was opened on is in VMX
//!   root operation that this module entered, with CR4.VMXE set by us and
//!   interrupts disabled (it borrows the [`LocalCpu`], which borrows the
//!   interrupts-off guard). Dropping it executes VMXOFF and restores CR4
//!   before interrupts can come back on.

use core::marker::PhantomData;
use kernel::{
    page::Page,
    prelude::*,
    sync::atomic::{Acquire, Relaxed},
};

use super::{cpu::LocalCpu, ffi, WindowError, OPEN_WINDOWS, SHUTTING_DOWN};
use crate::vmx::caps::VmxCaps;
use crate::x86::{CpuInfo, CR4_VMXE};

/// The 4 KiB VMXON region of one CPU.
pub(crate) struct VmxonRegion {
    _page: Page,
    pa: u64,
    cpu: u32,
}

impl VmxonRegion {
    /// Allocates CPU `cpu`'s region, stamped with `revision`.
    pub(crate) fn new(cpu: u32, revision: u32) -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let rev = revision.to_le_bytes();
        // SAFETY: `rev` is four readable bytes, and bytes 0..4 lie inside
        // the page.
        unsafe { page.write_raw(rev.as_ptr(), 0, rev.len())? };
        // SAFETY: `page.as_ptr()` is a valid `struct page` that `page` owns.
        let pa = unsafe { ffi::vmm_page_to_phys(page.as_ptr().cast()) };
        // INVARIANT: the page is zeroed but for the revision identifier, and
        // is dedicated to `cpu`.
        Ok(Self { _page: page, pa, cpu })
    }
}

/// This CPU is in VMX root operation for as long as the value lives.
pub(crate) struct VmxWindow<'a> {
    cr4: u64,
    _cpu: PhantomData<&'a LocalCpu<'a>>,
}

impl<'a> VmxWindow<'a> {
    /// Sets CR4.VMXE and executes VMXON with `region`.
    pub(crate) fn enter(
        cpu: &'a LocalCpu<'_>,
        this_cpu: u32,
        region: &'a VmxonRegion,
        caps: &VmxCaps,
    ) -> Result<Self, WindowError> {
        if SHUTTING_DOWN.load(Acquire) {
            return Err(WindowError::ShuttingDown);
        }
        if region.cpu != this_cpu {
            return Err(WindowError::WrongCpu);
        }
        let cr4 = cpu.cr4();
        if cr4 & CR4_VMXE != 0 {
            return Err(WindowError::InUse);
        }
        if !caps.cr_fixed_ok(cpu.cr0(), cr4 | CR4_VMXE) {
            return Err(WindowError::FixedBits);
        }
        OPEN_WINDOWS.add(1, Relaxed);
        // Interrupts are off (the `LocalCpu` invariant), so no kernel code on
        // this CPU writes CR4 from its shadow before the window closes.
        // SAFETY: only VMXE differs from the live value, as the helper needs.
        unsafe { ffi::vmm_write_cr4_raw(cr4 | CR4_VMXE) };
        // `region` is this CPU's own (checked above) and outlives the window;
        // faults and VMfail come back as error codes.
        // SAFETY: `region.pa` is a page-aligned VMXON region with the revision.
        match unsafe { ffi::vmm_vmxon(region.pa) } {
            0 => Ok(Self { cr4, _cpu: PhantomData }),
            r => {
                // SAFETY: restores the value the kernel's shadow holds.
                unsafe { ffi::vmm_write_cr4_raw(cr4) };
                OPEN_WINDOWS.fetch_sub(1, Relaxed);
                Err(WindowError::Failed(if r == -14 { "VMXON faulted" } else { "VMXON failed" }))
            }
        }
    }
}

impl Drop for VmxWindow<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this CPU is in VMX root operation
        // that we entered; a fault or VMfail comes back as an error code.
        let r = unsafe { ffi::vmm_vmxoff() };
        // SAFETY: restores the CR4 value the kernel's shadow holds, with
        // interrupts still off.
        unsafe { ffi::vmm_write_cr4_raw(self.cr4) };
        OPEN_WINDOWS.fetch_sub(1, Relaxed);
        if r != 0 {
            pr_err!("VMXOFF failed ({r}); VMX state on this CPU is suspect\n");
        }
    }
}
