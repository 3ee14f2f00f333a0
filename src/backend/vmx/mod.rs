// SPDX-License-Identifier: GPL-2.0

//! The VT-x backend: per-CPU VMX state and one vCPU's VMCS.
//!
//! Each entry opens a VMX window on the current CPU (VMXON), makes the
//! vCPU's VMCS current (VMCLEAR, VMPTRLD), writes every control, host and
//! guest field from this vCPU's software copy, enters with VMLAUNCH, reads
//! the guest state and exit information back, and closes the window again
//! (VMCLEAR, VMXOFF). The software copy is the only guest state between
//! entries, so register ioctls never need VMX operation, and a vCPU may
//! run on any CPU next time.
//!
//! - [`state`]: the software copy and register access.
//! - [`entry`]: the VMCS image and one trip into the guest.
//! - [`exits`]: what an exit means, and the instructions the backend
//!   completes itself.
//!
//! # Invariants
//!
//! A [`VmxVcpu`]'s VMCS points (MSR bitmap, I/O bitmaps, virtual-APIC
//! page) only at pages the same `VmxVcpu` owns and never edits after
//! creation, and at the VM's EPT root, which the VM keeps alive for as
//! long as any vCPU exists. The VMCS is current only inside
//! [`Inner::run_once`], on the thread that holds the vCPU's lock, so
//! nothing a current VMCS points at is ever edited while the vCPU can be
//! in VMX non-root operation (illumos 13861).

use kernel::{
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

use super::{Entry, HwExit};
use crate::hw::{
    mem::HwPages,
    vmx::{Extent, L1dFlush, VmcsRegion, VmxonRegion},
};
use crate::vmx::{
    bitmaps::{self, MSR_BITMAP_BYTES},
    caps::{EptVpidCap, ProcBased, ProcBased2, VmxCaps},
    controls::{self, Controls},
    tlb::VpidPool,
};
use crate::x86::{
    msr::DirectMsr,
    regs::{cr0, cr4, efer, CR4_VALID},
};

mod entry;
mod exits;
mod state;

use state::{ExitFields, Guest, Pending};

/// VMX state shared by every CPU and vCPU. Immutable but for `vpids`.
pub(crate) struct VmxCpus {
    /// One VMXON region per possible CPU id.
    regions: KVec<VmxonRegion>,
    caps: VmxCaps,
    ctl: Controls,
    /// VPIDs in use, by any vCPU of any VM.
    vpids: Pin<KBox<SpinLock<VpidPool>>>,
    l1d: L1dFlush,
    /// Linear addresses are 57 bits wide (else 48).
    la57: bool,
}

impl VmxCpus {
    /// The run loop's view of the probe's result.
    /// `l1d_flush`: flush the L1D before every entry.
    pub(crate) fn new(
        caps: VmxCaps,
        regions: KVec<VmxonRegion>,
        la57: bool,
        l1d_flush: bool,
    ) -> Result<Self> {
        let ctl = controls::negotiate(&caps).map_err(|e| {
            pr_err!("not loading: {}\n", e.describe(&crate::vmx::caps::WORDING));
            EOPNOTSUPP
        })?;
        let l1d = L1dFlush::new(l1d_flush, caps.flush_l1d)?;
        pr_info!(
            "VT-x: unrestricted guest {}, VPID {}, L1D flush on entry {}\n",
            yes(ctl.unrestricted_guest()),
            yes(ctl.vpid()),
            match &l1d {
                L1dFlush::Off => "off",
                L1dFlush::Msr => "on (IA32_FLUSH_CMD)",
                L1dFlush::Software(_) => "on (software)",
            }
        );
        Ok(Self {
            regions,
            caps,
            ctl,
            vpids: KBox::pin_init(new_spinlock!(VpidPool::new()), GFP_KERNEL)?,
            l1d,
            la57,
        })
    }

    fn invept_extent(&self) -> Extent {
        if self.caps.ept_vpid.contains(EptVpidCap::INVEPT_SINGLE) {
            Extent::Single
        } else {
            Extent::All
        }
    }

    /// IA32_VMX_BASIC[54]: INS/OUTS exits report address size and segment.
    fn ins_outs_info(&self) -> bool {
        self.caps.basic & (1 << 54) != 0
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One vCPU's VMCS, bitmaps and software state. Owned by the vCPU's
/// thread (under the vCPU's lock).
pub(crate) struct VmxVcpu {
    vmcs: VmcsRegion,
    st: Inner,
}

impl core::ops::Deref for VmxVcpu {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.st
    }
}

impl core::ops::DerefMut for VmxVcpu {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.st
    }
}

/// Everything of a [`VmxVcpu`] but its VMCS region.
pub(crate) struct Inner {
    cpus: Arc<VmxCpus>,
    msr_bitmap: HwPages,
    /// I/O bitmaps A and B, contiguous.
    io_bitmaps: HwPages,
    /// The TPR shadow's virtual-APIC page.
    vapic: HwPages,
    vpid: Option<u16>,
    ctl: Controls,
    g: Guest,
    event: Option<Pending>,
    /// Interrupt-window and NMI-window exiting, as the run loop asked for
    /// them before this entry.
    windows: ProcBased,
    /// The TPR threshold: a CR8 write below this class exits.
    tpr_threshold: u8,
    exit: ExitFields,
    /// The CPU of the last entry.
    last_cpu: Option<u32>,
    /// Paging registers were rewritten outside the guest (by userspace, or
    /// by emulating a MOV to CR0/CR4) since the last entry.
    regs_changed: bool,
    /// An NMI exit consumed a host NMI; raise it again after the window.
    nmi: bool,
    /// CR0/CR4 bits that must be 1 and bits that may be 1 (CR0.PE and PG
    /// are free with unrestricted guest).
    cr0_fixed: [u64; 2],
    cr4_fixed: [u64; 2],
    /// The preemption-timer value of one time slice.
    time_slice: u32,
}

impl Inner {
    /// Drops a queued event, the interrupt shadow, NMI blocking and the
    /// windows (INIT).
    pub(super) fn clear_event(&mut self) {
        self.event = None;
        self.g.interruptibility = 0;
        self.windows = ProcBased::empty();
        self.tpr_threshold = 0;
    }
}

impl VmxVcpu {
    /// A vCPU with its bitmaps and controls; `Backend::create_vcpu` puts
    /// the reset state in.
    pub(crate) fn new(cpus: &Arc<VmxCpus>) -> Result<Self> {
        let mut msr_bitmap = HwPages::new(0)?;
        msr_bitmap.fill(0xff);
        let map: &mut [u8; MSR_BITMAP_BYTES] = msr_bitmap.as_mut();
        for msr in DirectMsr::ALL {
            bitmaps::allow_msr(map, msr.index());
        }
        let mut io_bitmaps = HwPages::new(1)?;
        io_bitmaps.fill(0xff);
        let vapic = HwPages::new(0)?;
        let vpid = if cpus.ctl.vpid() { cpus.vpids.lock().alloc() } else { None };
        let mut ctl = cpus.ctl;
        if vpid.is_none() {
            ctl.proc2.remove(ProcBased2::VPID);
        }
        let mut cr0_fixed = cpus.caps.cr0_fixed;
        if ctl.unrestricted_guest() {
            cr0_fixed[0] &= !(cr0::PE | cr0::PG);
        }
        let vmcs = VmcsRegion::new(cpus.caps.revision())?;
        Ok(Self {
            vmcs,
            st: Inner {
                cpus: cpus.clone(),
                msr_bitmap,
                io_bitmaps,
                vapic,
                vpid,
                ctl,
                g: Guest::default(),
                event: None,
                windows: ProcBased::empty(),
                tpr_threshold: 0,
                exit: ExitFields::default(),
                last_cpu: None,
                regs_changed: false,
                nmi: false,
                cr0_fixed,
                cr4_fixed: cpus.caps.cr4_fixed,
                time_slice: Controls::time_slice(cpus.caps.misc),
            },
        })
    }

    /// Enters the guest once, on this CPU, and decodes the exit.
    fn enter(&mut self, e: Entry<'_>) -> Result<HwExit> {
        let Self { vmcs, st } = self;
        match st.run_once(vmcs, e)? {
            entry::Ran::NotEntered => Ok(HwExit::Continue),
            entry::Ran::Failed(raw) => Ok(raw),
            entry::Ran::Exited => Ok(st.decode_exit()),
        }
    }
}

impl Inner {
    /// CR0 and CR4 bits the host owns: those the fixed bits force either
    /// way. A guest write that would change one exits (a CR-access exit).
    fn cr_masks(&self) -> (u64, u64) {
        let own = |f: [u64; 2]| f[0] | (!f[1] & 0xffff_ffff);
        (own(self.cr0_fixed), own(self.cr4_fixed))
    }

    /// The CR0 and CR4 the hardware runs the guest with.
    fn real_crs(&self) -> (u64, u64) {
        let fix = |v: u64, f: [u64; 2]| (v | f[0]) & f[1];
        (fix(self.g.cr0, self.cr0_fixed), fix(self.g.cr4, self.cr4_fixed))
    }

    fn long_mode(&self) -> bool {
        self.g.efer & efer::LMA != 0
    }

    fn cs_l(&self) -> bool {
        self.g.segs[1].ar & crate::uapi::access::L != 0
    }

    /// Whether the guest runs 64-bit code.
    fn long64(&self) -> bool {
        self.long_mode() && self.cs_l()
    }

    fn cr4_ok(&self, v: u64) -> bool {
        v & !CR4_VALID == 0 && (v | self.cr4_fixed[0]) & !self.cr4_fixed[1] == 0
    }

    /// Whether the guest uses 5-level paging.
    fn guest_la57(&self) -> bool {
        self.g.cr4 & cr4::LA57 != 0
    }
}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        if let Some(v) = self.vpid {
            self.cpus.vpids.lock().free(v);
        }
    }
}
