// SPDX-License-Identifier: GPL-2.0

//! SVM operation: the window in which EFER.SVME is set.
//!
//! # Invariants
//!
//! A [`SvmWindow`] exists only while EFER.SVME, set by this module, is on
//! for the CPU it was opened on, with interrupts disabled (it borrows the
//! [`LocalCpu`], which borrows the interrupts-off guard). Dropping it sets
//! GIF and restores EFER before interrupts can come back on.

use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Relaxed},
};

use super::{cpu::LocalCpu, ffi, WindowError, OPEN_WINDOWS, SHUTTING_DOWN};
use crate::x86::{
    msr::{EFER, VM_HSAVE_PA},
    regs::efer::SVME,
    CpuInfo,
};

/// This CPU has SVM enabled for as long as the value lives.
pub(crate) struct SvmWindow<'a> {
    cpu: &'a LocalCpu<'a>,
    efer: u64,
}

impl<'a> SvmWindow<'a> {
    /// Sets EFER.SVME.
    pub(crate) fn enter(cpu: &'a LocalCpu<'a>) -> Result<Self, WindowError> {
        if SHUTTING_DOWN.load(Acquire) {
            return Err(WindowError::ShuttingDown);
        }
        let efer = cpu.rdmsr(EFER).ok_or(WindowError::Failed("reading EFER faulted"))?;
        if efer & SVME != 0 {
            return Err(WindowError::InUse);
        }
        OPEN_WINDOWS.add(1, Relaxed);
        // SAFETY: the kernel does not use EFER.SVME; `Drop` puts the value
        // back before interrupts come on (the `LocalCpu` borrow).
        if !unsafe { cpu.wrmsr(EFER, efer | SVME) } {
            OPEN_WINDOWS.fetch_sub(1, Relaxed);
            return Err(WindowError::Failed("setting EFER.SVME faulted"));
        }
        Ok(Self { cpu, efer })
    }
}

impl Drop for SvmWindow<'_> {
    fn drop(&mut self) {
        // GIF must be 1 before SVM goes off, or INIT and NMI stay blocked.
        // SAFETY: SVME is on (type invariant), so STGI is defined; a fault
        // comes back as an error code.
        let stgi = unsafe { ffi::vmm_stgi() };
        // SAFETY: puts back the EFER the kernel set.
        let cleared = unsafe { self.cpu.wrmsr(EFER, self.efer) };
        OPEN_WINDOWS.fetch_sub(1, Relaxed);
        if stgi != 0 || !cleared {
            pr_err!("leaving SVM failed (stgi {stgi}, efer cleared {cleared})\n");
        }
    }
}

impl SvmWindow<'_> {
    /// The CPU the window is open on.
    pub(crate) fn cpu(&self) -> &LocalCpu<'_> {
        self.cpu
    }

    /// Points VM_HSAVE_PA at `hsave`, a page reserved for this CPU.
    pub(crate) fn set_hsave(&self, hsave: &super::mem::HwPages) -> bool {
        // SAFETY: only SVM uses VM_HSAVE_PA, and SVM is on for this window,
        // which owns it; `hsave` is a page reserved for this CPU.
        unsafe { self.cpu.wrmsr(VM_HSAVE_PA, hsave.phys()) }
    }

    /// Enters the guest of `vmcb` once; returns at its #VMEXIT with the
    /// guest's general registers in `gprs` (indexed by register number; RAX
    /// and RSP live in the VMCB).
    ///
    /// `vmcb` must hold a VMCB whose physical pointers (nested CR3, I/O and
    /// MSR permission maps) point at pages its owner keeps alive, which is
    /// `backend::svm::SvmVcpu`'s invariant; `host_save` is this CPU's host
    /// save area and VM_HSAVE_PA was set by [`Self::set_hsave`].
    pub(crate) fn vmrun(
        &self,
        vmcb: &mut super::mem::HwPages,
        host_save: &mut super::mem::HwPages,
        gprs: &mut [u64; 16],
    ) {
        // SAFETY: SVME is on (type invariant) with interrupts off; the VMCB
        // and save area are exclusively borrowed pages; the VMCB's pointers
        // are valid by the caller's contract; `gprs` is a valid array of 16.
        // The routine restores every callee-saved register and the host's
        // hidden state before it returns, and leaves GIF clear, which the
        // window's drop sets again.
        unsafe { ffi::vmm_svm_vmrun(vmcb.phys(), host_save.phys(), gprs.as_mut_ptr()) };
    }
}

// SAFETY: a VMCB is `#[repr(C)]` of integers and integer arrays only, so
// any bytes form a valid value.
unsafe impl kernel::transmute::FromBytes for crate::svm::vmcb::Vmcb {}
