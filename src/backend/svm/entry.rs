// SPDX-License-Identifier: GPL-2.0

//! One trip into an SVM guest: a window on this CPU (EFER.SVME), the
//! CPU's host save area and ASID, the guest's debug registers and XCR0,
//! and VMRUN. Everything here runs with interrupts off.

use kernel::{interrupt::local_interrupt_disable, prelude::*};

use super::{PerCpu, SvmVcpu};
use crate::backend::Entry;
use crate::hw::{self, cpu::LocalCpu, svm::SvmWindow};
use crate::svm::caps::SvmFeatures;

impl SvmVcpu {
    /// Enters the guest once inside a window; `false` when `arrive` said
    /// not to enter after all.
    pub(super) fn run_once(&mut self, e: Entry<'_>) -> Result<bool> {
        let Entry { root, generation, xcr0, arrive, depart, .. } = e;
        let cpus = self.cpus.clone();
        let irq = local_interrupt_disable();
        let cpu = LocalCpu::new(&irq);
        let id = hw::this_cpu(&irq);
        let mut per = cpus.cpus.get(id as usize).ok_or(EIO)?.lock();
        let win = SvmWindow::enter(&cpu).map_err(|e| e.to_errno())?;
        if !win.set_hsave(&per.hsave) {
            return Err(EIO);
        }
        if !arrive(id) {
            depart();
            return Ok(false);
        }
        let stale = self.flushed.must_flush(generation);
        let by_asid = self.has(SvmFeatures::FLUSH_BY_ASID);
        let (asid, tlb) = per.asids.enter(id, &mut self.asid, stale, by_asid);
        let c = &mut self.vm().control;
        c.asid = asid;
        c.tlb_ctl = tlb as u8;
        c.nested_cr3 = root;
        c.clean = 0;

        let guest = win.cpu().load_guest(&self.guest_dr, None, xcr0);
        let PerCpu { host_save, .. } = &mut *per;
        win.vmrun(&mut self.vmcb, host_save, &mut self.gprs);
        let d = guest.restore_host();
        self.guest_dr = d.addrs;
        depart();
        drop(win);
        drop(per);
        drop(irq);
        Ok(true)
    }
}
