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
//! # Invariants
//!
//! A [`VmxVcpu`]'s VMCS points (MSR bitmap, I/O bitmaps, virtual-APIC
//! page) only at pages the same `VmxVcpu` owns and never edits after
//! creation, and at the VM's EPT root, which the VM keeps alive for as
//! long as any vCPU exists. The VMCS is current only inside
//! [`VmxVcpu::run_once`], on the thread that holds the vCPU's lock, so
//! nothing a current VMCS points at is ever edited while the vCPU can be
//! in VMX non-root operation (illumos 13861).

use kernel::{
    interrupt::local_interrupt_disable,
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, SpinLock,
    },
};

use crate::backend::{
    check_desc, cr0_valid, direct_slot, direct_value, Entry, Event, HwExit, IoExit, VcpuHw, CR4_VALID, DIRECT_MSRS,
    EFER_VALID, RFLAGS_VALID,
};
use crate::hw::{
    self,
    cpu::LocalCpu,
    mem::HwPages,
    vmx::{CurrentVmcs, Extent, L1dFlush, VmFail, VmcsRegion, VmxHost, VmxWindow, VmxonRegion},
};
use crate::uapi::{self, access, reg, ExitData, VmmSegDesc, VMM_ACCESS_EXEC, VMM_ACCESS_READ, VMM_ACCESS_WRITE};
use crate::vm::Shared;
use crate::vmspace::gen::Flushed;
use crate::vmx::{
    bitmaps::{self, MSR_BITMAP_BYTES},
    caps::{EntryCtls, EptVpidCap, ProcBased2, VmxCaps},
    controls::{self, Controls},
    exit::{self as vexit, Access, CrAccess, EptViolation, EventType, ExitInfo, ExitReason, Interruption},
    tlb::{self, Flush, VpidPool},
    vmcs::{self as f, Vmcs},
};
use crate::x86::{insn::Seg, paging::canonical, CpuInfo};

mod exits;
mod state;

use state::{seg, ExitFields, Guest, Pending};

/// The missing-unrestricted-guest refusal was logged.
static NO_UG_LOGGED: Atomic<bool> = Atomic::new(false);

/// VMX state shared by every CPU and vCPU.
pub(crate) struct VmxCpus {
    /// One VMXON region per possible CPU id.
    regions: KVec<VmxonRegion>,
    caps: VmxCaps,
    ctl: Controls,
    vpids: Arc<SpinLock<VpidPool>>,
    l1d: L1dFlush,
    /// Linear addresses are 57 bits wide (else 48).
    la57: bool,
}

impl VmxCpus {
    /// The run loop's view of the probe's result.
    /// `l1d_flush`: flush the L1D before every entry.
    pub(crate) fn new(caps: VmxCaps, regions: KVec<VmxonRegion>, la57: bool, l1d_flush: bool) -> Result<Self> {
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
            vpids: Arc::pin_init(new_spinlock!(VpidPool::new()), GFP_KERNEL)?,
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
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

// Of the direct MSRs (`backend::DIRECT_MSRS`), FS/GS bases and the
// SYSENTER MSRs are VMCS fields; the SYSCALL MSRs and KERNEL_GS_BASE are
// switched around each entry by `Inner::run_once`.

/// The switched SYSCALL MSRs, in [`Guest::syscall`] order.
const SYSCALL_MSRS: [u32; 4] = [0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084];
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

const CR0_PE: u64 = 1;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// One vCPU's VMCS, bitmaps and software state.
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
    msr_bitmap: HwPages,
    /// I/O bitmaps A and B, contiguous.
    io_bitmaps: HwPages,
    /// The TPR shadow's virtual-APIC page.
    vapic: HwPages,
    vpid: Option<u16>,
    vpids: Arc<SpinLock<VpidPool>>,
    ctl: Controls,
    g: Guest,
    event: Option<Pending>,
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
    la57: bool,
    /// IA32_VMX_BASIC[54]: INS/OUTS exits report address size and segment.
    ins_outs_info: bool,
    /// The preemption-timer value of one time slice.
    time_slice: u32,
}

impl VmxVcpu {
    /// A vCPU in the architectural reset state.
    pub(crate) fn new(cpus: &VmxCpus) -> Result<Self> {
        let mut msr_bitmap = HwPages::new(0)?;
        msr_bitmap.fill(0xff);
        let map: &mut [u8; MSR_BITMAP_BYTES] = msr_bitmap.as_mut();
        for msr in DIRECT_MSRS {
            bitmaps::allow_msr(map, msr);
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
            cr0_fixed[0] &= !(CR0_PE | CR0_PG);
        }
        let mut g = Guest {
            rip: 0xfff0,
            rflags: 2,
            cr0: 0x6000_0010,
            pat: 0x0007_0406_0007_0406,
            dr6: 0xffff_0ff0,
            dr7: 0x400,
            ..Guest::default()
        };
        g.segs = [seg(0, 0, 0xffff, 0x93); 10];
        g.segs[1] = seg(0xf000, 0xffff_0000, 0xffff, 0x9b);
        g.segs[6] = seg(0, 0, 0xffff, 0x82);
        g.segs[7] = seg(0, 0, 0xffff, 0x8b);
        g.segs[8] = seg(0, 0, 0xffff, 0);
        g.segs[9] = seg(0, 0, 0xffff, 0);
        let vmcs = VmcsRegion::new(cpus.caps.revision())?;
        Ok(Self { vmcs, st: Inner {
            msr_bitmap,
            io_bitmaps,
            vapic,
            vpid,
            vpids: cpus.vpids.clone(),
            ctl,
            g,
            event: None,
            exit: ExitFields::default(),
            last_cpu: None,
            regs_changed: false,
            nmi: false,
            cr0_fixed,
            cr4_fixed: cpus.caps.cr4_fixed,
            la57: cpus.la57,
            ins_outs_info: cpus.caps.basic & (1 << 54) != 0,
            time_slice: Controls::time_slice(cpus.caps.misc),
        } })
    }

    /// Enters the guest once, on this CPU, inside a window.
    fn run_once(&mut self, cpus: &VmxCpus, e: Entry<'_>) -> Result<HwExit> {
        let Self { vmcs, st } = self;
        st.run_once(vmcs, cpus, e)
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
        self.g.efer & EFER_LMA != 0
    }

    fn cs_l(&self) -> bool {
        self.g.segs[1].ar & access::L != 0
    }

    fn cr4_ok(&self, v: u64) -> bool {
        v & !CR4_VALID == 0 && (v | self.cr4_fixed[0]) & !self.cr4_fixed[1] == 0
    }

    /// Enters the guest once, on this CPU, inside a window, with VMCS
    /// region `region`.
    fn run_once(&mut self, region: &mut VmcsRegion, cpus: &VmxCpus, e: Entry<'_>) -> Result<HwExit> {
        if !self.ctl.unrestricted_guest() && self.g.cr0 & (CR0_PE | CR0_PG) != CR0_PE | CR0_PG {
            if !NO_UG_LOGGED.xchg(true, Relaxed) {
                pr_warn!("VM_RUN refused: real mode and unpaged protected mode need VT-x unrestricted guest, which this CPU lacks\n");
            }
            return Err(EOPNOTSUPP);
        }
        let Entry { root, generation, cpu_flushed, xcr0, arrive, depart } = e;
        // EPTP: write-back paging structures, 4-level walk.
        let eptp = root | (3 << 3) | 6;
        let irq = local_interrupt_disable();
        let cpu = LocalCpu::new(&irq);
        let id = hw::this_cpu(&irq);
        let vmxon = cpus.regions.get(id as usize).ok_or(EIO)?;
        let win = VmxWindow::enter(&cpu, id, vmxon, &cpus.caps).map_err(|e| e.to_errno())?;
        if !arrive(id) {
            depart();
            return Ok(HwExit::Continue);
        }
        // The CPU's record for this VM's EPT: INVEPT once per generation
        // per CPU, whichever vCPUs run there.
        let record = cpu_flushed.get(id as usize).ok_or(EIO)?;
        let mut seen = Flushed::from_raw(record.load(Relaxed));
        let ept_stale = seen.must_flush(generation);
        let flush = tlb::on_entry(ept_stale, self.last_cpu != Some(id), self.regs_changed, self.vpid.is_some());
        let flushed = match (flush, self.vpid) {
            (Flush::Ept, _) => win.invept(cpus.invept_extent(), eptp),
            (Flush::Vpid, Some(vpid)) if cpus.caps.ept_vpid.contains(EptVpidCap::INVVPID_SINGLE) => {
                win.invvpid(Extent::Single, vpid)
            }
            (Flush::Vpid, _) => win.invept(cpus.invept_extent(), eptp),
            (Flush::None, _) => Ok(()),
        };
        if let Err(e) = flushed {
            depart();
            pr_err!("TLB flush before VM entry failed: {e:?}\n");
            return Err(EIO);
        }
        record.store(seen.raw(), Relaxed);
        self.last_cpu = Some(id);
        self.regs_changed = false;

        let host = win.cpu().vmx_host();
        let mut vmcs = match win.load(region) {
            Ok(v) => v,
            Err(e) => {
                depart();
                pr_err!("VMPTRLD failed: {e:?}\n");
                return Err(EIO);
            }
        };
        self.write_controls(&mut vmcs, eptp);
        Self::write_host(&mut vmcs, &host);
        self.write_guest(&mut vmcs);
        if let Some((field, why)) = vmcs.failure() {
            drop(vmcs);
            depart();
            pr_err!("VMWRITE of field {field:#x} failed: {why:?}\n");
            return Err(EIO);
        }

        let c = win.cpu();
        let host_dr = c.debug_regs();
        c.disable_breakpoints();
        c.set_breakpoint_addrs(&self.g.dr);
        c.set_dr6(self.g.dr6);
        let host_xcr0 = xcr0.map(|g| {
            let h = c.xcr0();
            c.set_xcr0(g);
            h
        });
        // The SYSCALL MSRs and KERNEL_GS_BASE: written only where the
        // guest's value differs from the host's (a WRMSR is costly).
        let mut host_syscall = [0u64; 4];
        for (i, msr) in SYSCALL_MSRS.into_iter().enumerate() {
            host_syscall[i] = c.rdmsr(msr).unwrap_or(0);
            if host_syscall[i] != self.g.syscall[i] {
                c.wrmsr(msr, self.g.syscall[i]);
            }
        }
        if host.kernel_gs_base != self.g.kernel_gs_base {
            c.wrmsr(MSR_KERNEL_GS_BASE, self.g.kernel_gs_base);
        }
        cpus.l1d.flush(c);

        let ran = vmcs.run(&mut self.g.gprs, &mut self.g.cr2, false);

        for (i, msr) in SYSCALL_MSRS.into_iter().enumerate() {
            // The guest writes them without exiting: read them back.
            self.g.syscall[i] = c.rdmsr(msr).unwrap_or(0);
            if self.g.syscall[i] != host_syscall[i] {
                c.wrmsr(msr, host_syscall[i]);
            }
        }
        self.g.kernel_gs_base = c.rdmsr(MSR_KERNEL_GS_BASE).unwrap_or(0);
        c.vmx_host_restore(&host);
        if let Some(h) = host_xcr0 {
            c.set_xcr0(h);
        }
        let d = c.debug_regs();
        self.g.dr = [d[0], d[1], d[2], d[3]];
        self.g.dr6 = d[4];
        c.restore_debug_regs(&host_dr);
        depart();

        let out = match ran {
            Ok(()) => {
                self.event = None;
                self.read_back(&vmcs);
                Ok(None)
            }
            Err(VmFail::Valid(n)) => {
                self.exit = ExitFields { instruction_error: n, ..ExitFields::default() };
                Ok(Some(self.exit.raw()))
            }
            Err(e) => {
                pr_err!("VMLAUNCH failed: {e:?}\n");
                Err(EIO)
            }
        };
        drop(vmcs);
        drop(win);
        if core::mem::take(&mut self.nmi) {
            cpu.self_nmi();
        }
        drop(irq);
        match out? {
            Some(failed) => Ok(failed),
            None => Ok(self.decode_exit()),
        }
    }

}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        if let Some(v) = self.vpid {
            self.vpids.lock().free(v);
        }
    }
}

impl VcpuHw for VmxVcpu {
    fn get(&self, id: u32) -> Option<u64> {
        let g = &self.g;
        Some(match id {
            reg::RSP => g.rsp,
            0..=15 => g.gprs[id as usize],
            reg::RIP => g.rip,
            reg::RFLAGS => g.rflags,
            reg::CR0 => g.cr0,
            reg::CR2 => g.cr2,
            reg::CR3 => g.cr3,
            reg::CR4 => g.cr4,
            reg::EFER => g.efer,
            reg::DR6 => g.dr6,
            reg::DR7 => g.dr7,
            reg::ES..=reg::TR => u64::from(g.segs[(id - reg::ES) as usize].sel),
            _ => return None,
        })
    }

    fn set(&mut self, id: u32, v: u64) -> Result {
        let la57 = self.la57;
        let cr4_ok = self.cr4_ok(v);
        let g = &mut self.g;
        match id {
            reg::RSP => g.rsp = v,
            0..=15 => g.gprs[id as usize] = v,
            reg::RIP if canonical(v, la57) => {
                g.rip = v;
                g.interruptibility &= !(f::interruptibility::STI | f::interruptibility::MOV_SS);
            }
            reg::RFLAGS if v & !RFLAGS_VALID == 0 => g.rflags = v | 2,
            reg::CR0 if cr0_valid(v) => {
                g.cr0 = v;
                self.regs_changed = true;
            }
            reg::CR2 => g.cr2 = v,
            reg::CR3 if v >> 52 == 0 => {
                g.cr3 = v;
                self.regs_changed = true;
            }
            reg::CR4 if cr4_ok => {
                g.cr4 = v;
                self.regs_changed = true;
            }
            reg::EFER if v & !EFER_VALID == 0 => {
                g.efer = v;
                self.regs_changed = true;
            }
            reg::DR6 if v >> 32 == 0 => g.dr6 = v,
            reg::DR7 if v >> 32 == 0 => g.dr7 = v,
            reg::ES..=reg::TR if v <= 0xffff => g.segs[(id - reg::ES) as usize].sel = v as u16,
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn get_desc(&self, id: u32) -> Option<VmmSegDesc> {
        if !(reg::ES..=reg::IDTR).contains(&id) {
            return None;
        }
        let s = &self.g.segs[(id - reg::ES) as usize];
        let table = id == reg::GDTR || id == reg::IDTR;
        let access = if table { 0 } else { f::access_from_ar(s.ar) };
        Some(VmmSegDesc { base: s.base, limit: s.limit, access })
    }

    fn set_desc(&mut self, id: u32, d: &VmmSegDesc) -> Result {
        let table = check_desc(id, d, self.la57)?;
        let s = &mut self.g.segs[(id - reg::ES) as usize];
        s.base = d.base;
        s.limit = d.limit;
        s.ar = if table { 0 } else { f::ar_from_access(d.access) };
        Ok(())
    }

    fn cpl(&self) -> u8 {
        ((self.g.segs[2].ar >> access::DPL_SHIFT) & 3) as u8
    }

    fn inject(&mut self, e: Event) {
        self.queue(e);
    }

    fn next_rip(&self) -> Option<u64> {
        Some(self.next())
    }

    fn set_cr2(&mut self, cr2: u64) {
        self.g.cr2 = cr2;
    }

    fn efer(&self) -> u64 {
        self.g.efer
    }

    fn set_efer(&mut self, efer: u64) {
        self.g.efer = efer;
    }

    fn pat(&self) -> u64 {
        self.g.pat
    }

    fn set_pat(&mut self, pat: u64) {
        self.g.pat = pat;
    }

    fn tsc_offset(&self) -> u64 {
        self.g.tsc_offset
    }

    fn set_tsc_offset(&mut self, off: u64) {
        self.g.tsc_offset = off;
    }

    fn direct_msr(&self, msr: u32) -> Option<u64> {
        let slot = direct_slot(msr)?;
        let g = &self.g;
        Some(match slot {
            0 => g.segs[4].base,
            1 => g.segs[5].base,
            2 => g.kernel_gs_base,
            3..=6 => g.syscall[slot - 3],
            _ => g.sysenter[slot - 7],
        })
    }

    fn set_direct_msr(&mut self, msr: u32, v: u64) -> Option<()> {
        let slot = direct_slot(msr)?;
        let v = direct_value(slot, v, self.la57)?;
        let g = &mut self.g;
        *match slot {
            0 => &mut g.segs[4].base,
            1 => &mut g.segs[5].base,
            2 => &mut g.kernel_gs_base,
            3..=6 => &mut g.syscall[slot - 3],
            _ => &mut g.sysenter[slot - 7],
        } = v;
        Some(())
    }

    fn enter(&mut self, shared: &Shared, e: Entry<'_>) -> Result<HwExit> {
        self.run_once(shared.vmx.as_ref().ok_or(EIO)?, e)
    }
}
