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
use crate::x86::{CpuInfo, EFER_SVME, MSR_EFER};

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
        let efer = cpu.rdmsr(MSR_EFER).ok_or(WindowError::Failed("reading EFER faulted"))?;
        if efer & EFER_SVME != 0 {
            return Err(WindowError::InUse);
        }
        OPEN_WINDOWS.add(1, Relaxed);
        if !cpu.wrmsr(MSR_EFER, efer | EFER_SVME) {
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
        let cleared = self.cpu.wrmsr(MSR_EFER, self.efer);
        OPEN_WINDOWS.fetch_sub(1, Relaxed);
        if stgi != 0 || !cleared {
            pr_err!("leaving SVM failed (stgi {stgi}, efer cleared {cleared})\n");
        }
    }
}
