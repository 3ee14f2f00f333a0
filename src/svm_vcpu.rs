// SPDX-License-Identifier: GPL-2.0

//! The AMD-V backend: per-CPU SVM state and one vCPU's VMCB.
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

use kernel::{interrupt::local_interrupt_disable, new_spinlock, prelude::*, sync::SpinLock};

use crate::backend::{
    check_desc, cr0_valid, direct_slot, direct_value, Entry, Event, HwExit, IoExit, VcpuHw, CR4_VALID, DIRECT_MSRS,
    EFER_VALID, RFLAGS_VALID,
};
use crate::hw::{self, cpu::LocalCpu, mem::HwPages, svm::SvmWindow};
use crate::svm::{
    asid::{AsidPool, VcpuAsid},
    caps::SvmFeatures,
    maps::{self, IOPM_BYTES, MSRPM_BYTES},
    vmcb::{ExitCode, Intercept1, Intercept2, Segment, Vmcb},
};
use crate::uapi::{self, access, reg, ExitData, VmmSegDesc, VMM_ACCESS_EXEC, VMM_ACCESS_READ, VMM_ACCESS_WRITE};
use crate::vm::Shared;
use crate::vmspace::gen::Flushed;
use crate::x86::{insn::Seg, paging::canonical, EFER_SVME};

/// One CPU's SVM pages and ASIDs.
struct PerCpu {
    /// VM_HSAVE_PA target.
    hsave: HwPages,
    /// VMSAVE/VMLOAD area for the host's hidden state.
    host_save: HwPages,
    asids: AsidPool,
}

/// SVM state of every possible CPU.
pub(crate) struct SvmCpus {
    cpus: KVec<Pin<KBox<SpinLock<PerCpu>>>>,
    features: SvmFeatures,
    /// Linear addresses are 57 bits wide (else 48).
    la57: bool,
}

impl SvmCpus {
    /// Allocates the per-CPU pages for `nr_cpus` CPU ids.
    pub(crate) fn new(nr_cpus: u32, nr_asids: u32, features: SvmFeatures, la57: bool) -> Result<Self> {
        let mut cpus = KVec::with_capacity(nr_cpus as usize, GFP_KERNEL)?;
        for _ in 0..nr_cpus {
            let per = PerCpu { hsave: HwPages::new(0)?, host_save: HwPages::new(0)?, asids: AsidPool::new(nr_asids) };
            cpus.push(KBox::pin_init(new_spinlock!(per), GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(Self { cpus, features, la57 })
    }
}

/// One vCPU's VMCB, permission maps and registers the VMCB lacks.
pub(crate) struct SvmVcpu {
    vmcb: HwPages,
    _msrpm: HwPages,
    _iopm: HwPages,
    gprs: [u64; 16],
    guest_dr: [u64; 4],
    asid: VcpuAsid,
    flushed: Flushed,
    nrips: bool,
    decode_assists: bool,
    la57: bool,
}

fn seg(selector: u16, base: u64, limit: u32, attrib: u16) -> Segment {
    Segment { selector, attrib, limit, base }
}

impl SvmVcpu {
    /// A vCPU in the architectural reset state.
    pub(crate) fn new(cpus: &SvmCpus) -> Result<Self> {
        let mut msrpm = HwPages::new(1)?;
        msrpm.fill(0xff);
        let map: &mut [u8; MSRPM_BYTES] = msrpm.as_mut();
        for msr in DIRECT_MSRS {
            maps::allow_msr(map, msr);
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
        // #DB and #AC: a guest can otherwise loop delivering them forever
        // without an exit (CVE-2015-8104, CVE-2015-5307).
        v.control.intercepts[2] = (1 << 1) | (1 << 17);
        v.control.iopm_base_pa = iopm.phys();
        v.control.msrpm_base_pa = msrpm.phys();
        v.control.nested_ctl = 1;
        // V_INTR_MASKING: guest IF and CR8 affect only virtual interrupts.
        v.control.int_ctl = 1 << 24;
        let s = &mut v.save;
        s.cs = seg(0xf000, 0xffff_0000, 0xffff, 0x9b);
        for d in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
            *d = seg(0, 0, 0xffff, 0x93);
        }
        s.gdtr = seg(0, 0, 0xffff, 0);
        s.idtr = seg(0, 0, 0xffff, 0);
        s.ldtr = seg(0, 0, 0xffff, 0x82);
        s.tr = seg(0, 0, 0xffff, 0x8b);
        s.cr0 = 0x6000_0010;
        s.efer = EFER_SVME;
        s.rflags = 2;
        s.rip = 0xfff0;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.g_pat = 0x0007_0406_0007_0406;
        Ok(Self {
            vmcb,
            _msrpm: msrpm,
            _iopm: iopm,
            gprs: [0; 16],
            guest_dr: [0; 4],
            asid: VcpuAsid::default(),
            flushed: Flushed::NEVER,
            nrips: cpus.features.contains(SvmFeatures::NRIPS),
            decode_assists: cpus.features.contains(SvmFeatures::DECODE_ASSISTS),
            la57: cpus.la57,
        })
    }

    fn v(&self) -> &Vmcb {
        self.vmcb.as_ref()
    }

    fn vm(&mut self) -> &mut Vmcb {
        self.vmcb.as_mut()
    }

    fn segment(&mut self, id: u32) -> Option<&mut Segment> {
        let s = &mut self.vm().save;
        Some(match id {
            reg::ES => &mut s.es,
            reg::CS => &mut s.cs,
            reg::SS => &mut s.ss,
            reg::DS => &mut s.ds,
            reg::FS => &mut s.fs,
            reg::GS => &mut s.gs,
            reg::LDTR => &mut s.ldtr,
            reg::TR => &mut s.tr,
            reg::GDTR => &mut s.gdtr,
            reg::IDTR => &mut s.idtr,
            _ => return None,
        })
    }

    /// Enters the guest once, on this CPU, inside a window (see
    /// [`VcpuHw::enter`]).
    fn run_once(&mut self, cpus: &SvmCpus, e: Entry<'_>) -> Result<HwExit> {
        let Entry { root, generation, xcr0, arrive, depart, .. } = e;
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
            return Ok(HwExit::Continue);
        }
        let stale = self.flushed.must_flush(generation);
        let by_asid = cpus.features.contains(SvmFeatures::FLUSH_BY_ASID);
        let (asid, tlb) = per.asids.enter(id, &mut self.asid, stale, by_asid);
        let c = &mut self.vm().control;
        c.asid = asid;
        c.tlb_ctl = tlb as u8;
        c.nested_cr3 = root;
        c.clean = 0;

        let host_dr = win.cpu().debug_regs();
        win.cpu().disable_breakpoints();
        win.cpu().set_breakpoint_addrs(&self.guest_dr);
        let host_xcr0 = xcr0.map(|g| {
            let h = win.cpu().xcr0();
            win.cpu().set_xcr0(g);
            h
        });
        let PerCpu { host_save, .. } = &mut *per;
        win.vmrun(&mut self.vmcb, host_save, &mut self.gprs);
        if let Some(h) = host_xcr0 {
            win.cpu().set_xcr0(h);
        }
        let d = win.cpu().debug_regs();
        self.guest_dr = [d[0], d[1], d[2], d[3]];
        win.cpu().restore_debug_regs(&host_dr);
        depart();
        drop(win);
        drop(per);
        drop(irq);
        Ok(self.decode_exit())
    }

    /// Turns the VMCB's exit fields into an [`HwExit`], re-queueing an
    /// event whose delivery the exit interrupted.
    fn decode_exit(&mut self) -> HwExit {
        let c = &mut self.vm().control;
        c.event_inj = 0;
        let info = c.exit_int_info;
        // A software interrupt (INT n), or #BP/#OF raised by INT3/INTO, is
        // not re-injected: RIP still points at the instruction, which runs
        // again and raises it with the right return address. Injecting it
        // would push the instruction's own address (no NRIP here).
        let (kind, vector) = ((info >> 8) & 7, info & 0xff);
        let soft = kind == 4 || (kind == 3 && (vector == 3 || vector == 4));
        if info & (1 << 31) != 0 && !soft {
            c.event_inj = info;
            c.event_inj_err = c.exit_int_info_err;
        }
        let (code, info1, info2) = (c.exit_code, c.exit_info_1, c.exit_info_2);
        let raw = uapi::VmmExitSvm {
            exit_code: code,
            exit_info1: info1,
            exit_info2: info2,
            exit_int_info: u64::from(c.exit_int_info),
            ..uapi::VmmExitSvm::ZERO
        };
        let raw = HwExit::Unhandled { reason: uapi::exit::SVM, data: raw.to_data() };
        match ExitCode::from(code) {
            ExitCode::Intr | ExitCode::Nmi | ExitCode::Smi | ExitCode::Init => HwExit::Continue,
            ExitCode::Exception(v @ (1 | 17)) => {
                let error = (v == 17).then_some(info1 as u32);
                self.inject(Event { vector: v, error });
                HwExit::Continue
            }
            ExitCode::Cpuid => HwExit::Cpuid,
            ExitCode::Hlt => HwExit::Hlt,
            ExitCode::Msr => HwExit::Msr { write: info1 & 1 != 0 },
            ExitCode::Shutdown => HwExit::Shutdown,
            ExitCode::Ioio => HwExit::Io(decode_io(info1, info2, self.decode_assists)),
            ExitCode::Npf => {
                let access = if info1 & 2 != 0 {
                    VMM_ACCESS_WRITE
                } else if info1 & 0x10 != 0 {
                    VMM_ACCESS_EXEC
                } else {
                    VMM_ACCESS_READ
                };
                HwExit::NestedFault { gpa: info2, access }
            }
            ExitCode::Vmrun | ExitCode::Vmmcall => HwExit::Fault(Event::UD),
            // VMLOAD..SKINIT, INVLPGA, MONITOR, MWAIT, MWAIT (armed).
            ExitCode::Other(0x82..=0x86 | 0x7a | 0x8a..=0x8c) => HwExit::Fault(Event::UD),
            ExitCode::Other(0x6f) => HwExit::Fault(Event::GP0), // RDPMC
            ExitCode::Other(0x8d) => HwExit::Xsetbv,
            _ => raw,
        }
    }
}

/// Decodes an IOIO exit (APM 15.10.2): EXITINFO1 describes the access,
/// EXITINFO2 is the next RIP.
fn decode_io(info1: u64, info2: u64, decode_assists: bool) -> IoExit {
    let size = match (info1 >> 4) & 7 {
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let addr_size = match (info1 >> 7) & 7 {
        1 => 2,
        2 => 4,
        _ => 8,
    };
    IoExit {
        port: (info1 >> 16) as u16,
        size,
        input: info1 & 1 != 0,
        string: info1 & 4 != 0,
        rep: info1 & 8 != 0,
        addr_size,
        // The segment field is filled only with decode assists; without
        // them common code decodes the instruction's prefixes.
        seg: match (decode_assists, (info1 >> 10) & 7) {
            (false, _) => None,
            (true, 0) => Some(Seg::Es),
            (true, 1) => Some(Seg::Cs),
            (true, 2) => Some(Seg::Ss),
            (true, 3) => Some(Seg::Ds),
            (true, 4) => Some(Seg::Fs),
            (true, 5) => Some(Seg::Gs),
            (true, _) => None,
        },
        next_rip: info2,
    }
}

impl VcpuHw for SvmVcpu {
    fn get(&self, id: u32) -> Option<u64> {
        let s = &self.v().save;
        Some(match id {
            reg::RAX => s.rax,
            reg::RSP => s.rsp,
            0..=15 => self.gprs[id as usize],
            reg::RIP => s.rip,
            reg::RFLAGS => s.rflags,
            reg::CR0 => s.cr0,
            reg::CR2 => s.cr2,
            reg::CR3 => s.cr3,
            reg::CR4 => s.cr4,
            reg::EFER => self.efer(),
            reg::DR6 => s.dr6,
            reg::DR7 => s.dr7,
            reg::ES..=reg::TR => {
                let sel = match id {
                    reg::ES => s.es.selector,
                    reg::CS => s.cs.selector,
                    reg::SS => s.ss.selector,
                    reg::DS => s.ds.selector,
                    reg::FS => s.fs.selector,
                    reg::GS => s.gs.selector,
                    reg::LDTR => s.ldtr.selector,
                    _ => s.tr.selector,
                };
                u64::from(sel)
            }
            _ => return None,
        })
    }

    fn set(&mut self, id: u32, v: u64) -> Result {
        let la57 = self.la57;
        let s = &mut self.vm().save;
        match id {
            reg::RAX => s.rax = v,
            reg::RSP => s.rsp = v,
            0..=15 => self.gprs[id as usize] = v,
            // Canonical in every mode: outside 64-bit mode bits 63:32 are
            // zero, which is canonical too.
            reg::RIP if canonical(v, la57) => s.rip = v,
            reg::RFLAGS if v & !RFLAGS_VALID == 0 => s.rflags = v | 2,
            reg::CR0 if cr0_valid(v) => s.cr0 = v,
            reg::CR2 => s.cr2 = v,
            reg::CR3 if v >> 52 == 0 => s.cr3 = v,
            reg::CR4 if v & !CR4_VALID == 0 => s.cr4 = v,
            reg::EFER if v & !EFER_VALID == 0 => s.efer = v | EFER_SVME,
            reg::DR6 if v >> 32 == 0 => s.dr6 = v,
            reg::DR7 if v >> 32 == 0 => s.dr7 = v,
            reg::ES..=reg::TR if v <= 0xffff => self.segment(id).ok_or(EINVAL)?.selector = v as u16,
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn get_desc(&self, id: u32) -> Option<VmmSegDesc> {
        let s = &self.v().save;
        let seg = match id {
            reg::ES => &s.es,
            reg::CS => &s.cs,
            reg::SS => &s.ss,
            reg::DS => &s.ds,
            reg::FS => &s.fs,
            reg::GS => &s.gs,
            reg::LDTR => &s.ldtr,
            reg::TR => &s.tr,
            reg::GDTR => &s.gdtr,
            reg::IDTR => &s.idtr,
            _ => return None,
        };
        let table = id == reg::GDTR || id == reg::IDTR;
        let access = if table { 0 } else { maps::access_from_attrib(seg.attrib) };
        Some(VmmSegDesc { base: seg.base, limit: seg.limit, access })
    }

    fn set_desc(&mut self, id: u32, d: &VmmSegDesc) -> Result {
        let table = check_desc(id, d, self.la57)?;
        let seg = self.segment(id).ok_or(EINVAL)?;
        seg.base = d.base;
        seg.limit = d.limit;
        seg.attrib = if table { 0 } else { maps::attrib_from_access(d.access) };
        if id == reg::SS {
            // The VMCB keeps CPL apart; SS.DPL is its architectural source.
            let dpl = ((d.access >> access::DPL_SHIFT) & 3) as u8;
            self.vm().save.cpl = dpl;
        }
        Ok(())
    }

    fn cpl(&self) -> u8 {
        self.v().save.cpl
    }

    fn inject(&mut self, e: Event) {
        let c = &mut self.vm().control;
        // Type 3: exception; bit 11: error code valid; bit 31: valid.
        c.event_inj = u32::from(e.vector) | (3 << 8) | (1 << 31) | (u32::from(e.error.is_some()) << 11);
        c.event_inj_err = e.error.unwrap_or(0);
    }

    fn next_rip(&self) -> Option<u64> {
        self.nrips.then(|| self.v().control.next_rip)
    }

    /// Guest EFER as the guest sees it.
    fn efer(&self) -> u64 {
        self.v().save.efer & !EFER_SVME
    }

    /// Sets the guest's EFER (already validated) keeping SVME for VMRUN.
    fn set_efer(&mut self, efer: u64) {
        self.vm().save.efer = efer | EFER_SVME;
    }

    fn set_cr2(&mut self, cr2: u64) {
        self.vm().save.cr2 = cr2;
    }

    /// The guest's PAT.
    fn pat(&self) -> u64 {
        self.v().save.g_pat
    }

    /// Sets the guest's PAT (already validated).
    fn set_pat(&mut self, pat: u64) {
        self.vm().save.g_pat = pat;
    }

    /// The TSC offset.
    fn tsc_offset(&self) -> u64 {
        self.v().control.tsc_offset
    }

    /// Sets the TSC offset.
    fn set_tsc_offset(&mut self, off: u64) {
        self.vm().control.tsc_offset = off;
    }

    fn direct_msr(&self, msr: u32) -> Option<u64> {
        let s = &self.v().save;
        let slot = direct_slot(msr)?;
        Some(
            [
                s.fs.base,
                s.gs.base,
                s.kernel_gs_base,
                s.star,
                s.lstar,
                s.cstar,
                s.sfmask,
                s.sysenter_cs,
                s.sysenter_esp,
                s.sysenter_eip,
            ][slot],
        )
    }

    fn set_direct_msr(&mut self, msr: u32, v: u64) -> Option<()> {
        let slot = direct_slot(msr)?;
        let v = direct_value(slot, v, self.la57)?;
        let s = &mut self.vm().save;
        let field = match slot {
            0 => &mut s.fs.base,
            1 => &mut s.gs.base,
            2 => &mut s.kernel_gs_base,
            3 => &mut s.star,
            4 => &mut s.lstar,
            5 => &mut s.cstar,
            6 => &mut s.sfmask,
            7 => &mut s.sysenter_cs,
            8 => &mut s.sysenter_esp,
            _ => &mut s.sysenter_eip,
        };
        *field = v;
        Some(())
    }

    fn enter(&mut self, shared: &Shared, e: Entry<'_>) -> Result<HwExit> {
        self.run_once(shared.svm.as_ref().ok_or(EIO)?, e)
    }
}
