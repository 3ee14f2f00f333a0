// SPDX-License-Identifier: GPL-2.0

//! The local CPU's identification and control registers.
//!
//! # Invariants
//!
//! A [`LocalCpu`] borrows a [`LocalInterruptDisabled`] guard, so it cannot
//! outlive a section with interrupts off, and it is not `Send`: every value
//! it reads describes the CPU the caller is running on.

use crate::x86::CpuInfo;
use core::arch::asm;
use core::marker::PhantomData;
use kernel::interrupt::LocalInterruptDisabled;

use super::ffi;

/// The CPU this code runs on, while interrupts are disabled.
pub(crate) struct LocalCpu<'a> {
    _irq: PhantomData<&'a LocalInterruptDisabled>,
}

impl<'a> LocalCpu<'a> {
    /// Borrows the local CPU for as long as interrupts stay off.
    pub(crate) fn new(_irq: &'a LocalInterruptDisabled) -> Self {
        // INVARIANT: the borrow of `_irq` ties `Self` to the section with
        // interrupts disabled.
        Self { _irq: PhantomData }
    }

    /// Live CR0.
    pub(crate) fn cr0(&self) -> u64 {
        // SAFETY: reading CR0 has no side effects.
        unsafe { ffi::vmm_read_cr0() }
    }

    /// Writes `index` = `value`; `false` when the write faulted.
    pub(crate) fn wrmsr(&self, index: u32, value: u64) -> bool {
        // Callers write only virtualization state (EFER.SVME, VM_HSAVE_PA),
        // which the kernel does not cache.
        // SAFETY: a faulting WRMSR is caught by the helper's fixup.
        unsafe { ffi::vmm_wrmsr_safe(index, value) == 0 }
    }
}

impl CpuInfo for LocalCpu<'_> {
    fn cpuid(&self, leaf: u32, sub: u32) -> [u32; 4] {
        let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
        // SAFETY: CPUID only writes the four registers named here; RBX is
        // reserved by LLVM, so it is saved in a scratch register around it.
        unsafe {
            asm!(
                "mov {tmp:r}, rbx",
                "cpuid",
                "xchg {tmp:r}, rbx",
                tmp = out(reg) ebx,
                inout("eax") leaf => eax,
                inout("ecx") sub => ecx,
                out("edx") edx,
                options(nostack, preserves_flags),
            );
        }
        [eax, ebx, ecx, edx]
    }

    fn rdmsr(&self, index: u32) -> Option<u64> {
        let mut value = 0u64;
        // SAFETY: `value` is a valid place to write; a faulting RDMSR is
        // caught by the helper's exception-table fixup.
        let r = unsafe { ffi::vmm_rdmsr_safe(index, &mut value) };
        (r == 0).then_some(value)
    }

    fn cr4(&self) -> u64 {
        // SAFETY: reading CR4 has no side effects.
        unsafe { ffi::vmm_read_cr4() }
    }
}
