// SPDX-License-Identifier: GPL-2.0

//! The AMD-V backend: per-CPU SVM state and one vCPU's VMCB.
//!
//! - [`state`]: registers as the VMCB holds them.
//! - [`entry`]: one trip into the guest (VMRUN inside an SVM window).
//! - [`exits`]: what an exit means, in [`HwExit`] terms.
//!
//! # Invariants
//!
//! An [`SvmVcpu`]'s VMCB points (I/O and MSR permission maps) only at
//! pages the same `SvmVcpu` owns, and its nested CR3 is set, just before
//! each entry, to the root of the VM's nested table, which the VM keeps
//! alive for as long as any vCPU exists. These structures belong to this
//! vCPU alone; they are changed only by the thread holding the vCPU's
//! lock, which is also the only thread that runs it, so nothing edits a
//! VMCB or map while a CPU uses it.

use kernel::{
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

use super::{Entry, HwExit};
use kernel::sync::atomic::{Atomic, Relaxed};

/// The lost-VMCB error was logged.
static CLOBBER_LOGGED: Atomic<bool> = Atomic::new(false);
use crate::hw::mem::HwPages;
use crate::svm::{
    asid::{AsidPool, VcpuAsid},
    caps::{SvmCaps, SvmFeatures},
    exit::INTERCEPTED_EXCEPTIONS,
    maps::{self, IOPM_BYTES, MSRPM_BYTES},
    vmcb::{
        Intercept1, Intercept2, Vmcb, NP_ENABLE, V_IGN_TPR, V_INTR_MASKING, V_INTR_PRIO, V_IRQ,
    },
};
use crate::vmspace::gen::Flushed;
use crate::x86::{msr::DirectMsr, regs::efer};

mod entry;
mod exits;
mod state;

/// One CPU's SVM pages and ASIDs.
struct PerCpu {
    /// VM_HSAVE_PA target.
    hsave: HwPages,
    /// VMSAVE/VMLOAD area for the host's hidden state.
    host_save: HwPages,
    asids: AsidPool,
}

/// SVM state of every possible CPU. Each CPU's entry is locked by the
/// vCPU entering on that CPU, with interrupts off.
pub(crate) struct SvmCpus {
    cpus: KVec<Pin<KBox<SpinLock<PerCpu>>>>,
    features: SvmFeatures,
    /// Linear addresses are 57 bits wide (else 48).
    la57: bool,
}

impl SvmCpus {
    /// Allocates the per-CPU pages for `nr_cpus` CPU ids.
    pub(crate) fn new(nr_cpus: u32, caps: &SvmCaps, la57: bool) -> Result<Self> {
        let mut cpus = KVec::with_capacity(nr_cpus as usize, GFP_KERNEL)?;
        for _ in 0..nr_cpus {
            let per = PerCpu {
                hsave: HwPages::new(0)?,
                host_save: HwPages::new(0)?,
                asids: AsidPool::new(caps.nr_asids),
            };
            cpus.push(KBox::pin_init(new_spinlock!(per), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Self { cpus, features: caps.features, la57 })
    }
}

/// One vCPU's VMCB, permission maps and the registers the VMCB lacks.
/// Owned by the vCPU's thread (under the vCPU's lock).
pub(crate) struct SvmVcpu {
    cpus: Arc<SvmCpus>,
    vmcb: HwPages,
    _msrpm: HwPages,
    _iopm: HwPages,
    gprs: [u64; 16],
    guest_dr: [u64; 4],
    asid: VcpuAsid,
    flushed: Flushed,
    /// An NMI was injected and its handler has not returned: IRET is
    /// intercepted meanwhile.
    nmi_blocked: bool,
    /// The RIP of an intercepted IRET that ends the NMI handler: NMIs are
    /// unblocked at the first exit with another RIP (the IRET completed).
    iret_rip: Option<u64>,
    /// A #VMEXIT left a VMCB without this vCPU's state: every run fails.
    lost: bool,
}

impl SvmVcpu {
    /// A vCPU with its intercepts set; `Backend::create_vcpu` puts the
    /// reset state in.
    pub(crate) fn new(cpus: &Arc<SvmCpus>) -> Result<Self> {
        let mut msrpm = HwPages::new(1)?;
        msrpm.fill(0xff);
        let map: &mut [u8; MSRPM_BYTES] = msrpm.as_mut();
        for msr in DirectMsr::ALL {
            maps::allow_msr(map, msr.index());
        }
        let mut iopm = HwPages::new(2)?;
        iopm.fill(0xff);
        let _: &[u8; IOPM_BYTES] = iopm.as_ref();
        let mut vmcb = HwPages::new(0)?;
        let v: &mut Vmcb = vmcb.as_mut();
        v.set_intercept1(
            Intercept1::INTR
                | Intercept1::NMI
                | Intercept1::SMI
                | Intercept1::CPUID
                | Intercept1::HLT
                | Intercept1::INVLPGA
                | Intercept1::IOIO_PROT
                | Intercept1::MSR_PROT
                | Intercept1::SHUTDOWN
                | Intercept1::RDPMC,
        );
        v.set_intercept2(
            Intercept2::VMRUN
                | Intercept2::VMMCALL
                | Intercept2::VMLOAD
                | Intercept2::VMSAVE
                | Intercept2::STGI
                | Intercept2::CLGI
                | Intercept2::SKINIT
                | Intercept2::MONITOR
                | Intercept2::MWAIT
                | Intercept2::MWAIT_COND
                | Intercept2::XSETBV,
        );
        v.control.intercepts[2] = INTERCEPTED_EXCEPTIONS;
        v.control.iopm_base_pa = iopm.phys();
        v.control.msrpm_base_pa = msrpm.phys();
        v.control.nested_ctl = NP_ENABLE;
        v.control.int_ctl = V_INTR_MASKING;
        // VMRUN needs SVME in the guest's EFER; the guest never sees it.
        v.save.efer = efer::SVME;
        Ok(Self {
            cpus: cpus.clone(),
            vmcb,
            _msrpm: msrpm,
            _iopm: iopm,
            gprs: [0; 16],
            guest_dr: [0; 4],
            asid: VcpuAsid::default(),
            flushed: Flushed::NEVER,
            nmi_blocked: false,
            iret_rip: None,
            lost: false,
        })
    }

    /// Drops a queued event, the interrupt shadow, NMI blocking and the
    /// windows (INIT).
    pub(super) fn clear_event(&mut self) {
        self.set_windows_raw(false, None);
        self.unblock_nmi();
        let c = &mut self.vm().control;
        c.event_inj = 0;
        c.int_state = 0;
    }

    /// Asks for (or withdraws) a VINTR exit when the guest can take an
    /// interrupt (`irq`: a virtual interrupt of the highest priority,
    /// ignoring V_TPR), or when it can take one of priority class `prio`
    /// (which heeds V_TPR). The guest never receives the virtual interrupt:
    /// the VINTR exit comes first.
    pub(super) fn set_windows_raw(&mut self, irq: bool, prio: Option<u8>) {
        let v = self.vm();
        let mut i = v.intercept1();
        i.set(Intercept1::VINTR, irq || prio.is_some());
        v.set_intercept1(i);
        let c = &mut v.control;
        c.int_ctl &= !(V_IRQ | V_INTR_PRIO | V_IGN_TPR);
        if irq {
            c.int_ctl |= V_IRQ | V_INTR_PRIO | V_IGN_TPR;
        } else if let Some(p) = prio {
            c.int_ctl |= V_IRQ | (u32::from(p & 0xf) << 16);
        }
    }

    /// Ends NMI blocking and stops intercepting IRET.
    pub(super) fn unblock_nmi(&mut self) {
        self.nmi_blocked = false;
        self.iret_rip = None;
        let v = self.vm();
        let i = v.intercept1() - Intercept1::IRET;
        v.set_intercept1(i);
    }

    fn v(&self) -> &Vmcb {
        self.vmcb.as_ref()
    }

    fn vm(&mut self) -> &mut Vmcb {
        self.vmcb.as_mut()
    }

    fn has(&self, f: SvmFeatures) -> bool {
        self.cpus.features.contains(f)
    }

    /// Enters the guest once, on this CPU, and decodes the exit.
    pub(super) fn enter(&mut self, e: Entry<'_>) -> Result<HwExit> {
        if self.lost {
            return Err(EIO);
        }
        if !self.run_once(e)? {
            return Ok(HwExit::Continue);
        }
        // V_INTR_MASKING is set at creation and never cleared: a VMCB
        // without it after #VMEXIT holds no guest state of ours. QEMU
        // 10.0.2's TCG does this now and then under multi-vCPU load (it
        // writes the host's state into the VMCB, Documentation/testing.rst).
        // Running on would execute the host's state as the guest's.
        let int_ctl = self.v().control.int_ctl;
        if int_ctl & V_INTR_MASKING == 0 {
            if !CLOBBER_LOGGED.xchg(true, Relaxed) {
                pr_err!(
                    "VMRUN came back with a VMCB that is not this vCPU's (int_ctl {:#x}, rip {:#x}): \
                     the vCPU is stopped (EIO)\n",
                    int_ctl,
                    self.v().save.rip
                );
            }
            self.lost = true;
            return Err(EIO);
        }
        Ok(self.decode_exit())
    }
}
