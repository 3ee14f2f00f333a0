// SPDX-License-Identifier: GPL-2.0

//! An SVM vCPU's registers: the VMCB's save area, plus the general
//! registers and DR0-DR3 that the VMCB lacks.

use kernel::prelude::*;

use super::SvmVcpu;
use crate::backend::{check_desc, Entry, Event, HwExit, Interruptibility, VcpuHw};
use crate::svm::{
    exit::EventInj,
    maps,
    vmcb::{Intercept1, Segment, INT_SHADOW, V_TPR},
};
use crate::uapi::{access, reg, VmmSegDesc};
use crate::vmspace::gen::Flushed;
use crate::x86::{
    msr::{DirectMsr, Gp},
    paging::canonical,
    regs::{cr0_valid, efer, rflags, CR4_VALID, EFER_VALID, RFLAGS_VALID},
};

impl SvmVcpu {
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

    fn segment_ref(&self, id: u32) -> Option<&Segment> {
        let s = &self.v().save;
        Some(match id {
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
        })
    }

    fn direct(&mut self, msr: DirectMsr) -> &mut u64 {
        let s = &mut self.vm().save;
        match msr {
            DirectMsr::FsBase => &mut s.fs.base,
            DirectMsr::GsBase => &mut s.gs.base,
            DirectMsr::KernelGsBase => &mut s.kernel_gs_base,
            DirectMsr::Star => &mut s.star,
            DirectMsr::Lstar => &mut s.lstar,
            DirectMsr::Cstar => &mut s.cstar,
            DirectMsr::Sfmask => &mut s.sfmask,
            DirectMsr::SysenterCs => &mut s.sysenter_cs,
            DirectMsr::SysenterEsp => &mut s.sysenter_esp,
            DirectMsr::SysenterEip => &mut s.sysenter_eip,
        }
    }
}

impl VcpuHw for SvmVcpu {
    fn get(&self, id: u32) -> Option<u64> {
        let s = &self.v().save;
        Some(match id {
            0..=15 => match id {
                reg::RAX => s.rax,
                reg::RSP => s.rsp,
                _ => self.gprs[id as usize],
            },
            reg::RIP => s.rip,
            reg::RFLAGS => s.rflags,
            reg::CR0 => s.cr0,
            reg::CR2 => s.cr2,
            reg::CR3 => s.cr3,
            reg::CR4 => s.cr4,
            reg::EFER => self.efer(),
            reg::DR6 => s.dr6,
            reg::DR7 => s.dr7,
            reg::ES..=reg::TR => u64::from(self.segment_ref(id)?.selector),
            _ => return None,
        })
    }

    fn set(&mut self, id: u32, v: u64) -> Result {
        let la57 = self.cpus.la57;
        let s = &mut self.vm().save;
        match id {
            0..=15 => match id {
                reg::RAX => s.rax = v,
                reg::RSP => s.rsp = v,
                _ => self.gprs[id as usize] = v,
            },
            // Canonical in every mode: outside 64-bit mode bits 63:32 are
            // zero, which is canonical too.
            reg::RIP if canonical(v, la57) => s.rip = v,
            reg::RFLAGS if v & !RFLAGS_VALID == 0 => s.rflags = v | 2,
            reg::CR0 if cr0_valid(v) => s.cr0 = v,
            reg::CR2 => s.cr2 = v,
            reg::CR3 if v >> 52 == 0 => s.cr3 = v,
            reg::CR4 if v & !CR4_VALID == 0 => s.cr4 = v,
            reg::EFER if v & !EFER_VALID == 0 => s.efer = v | efer::SVME,
            reg::DR6 if v >> 32 == 0 => s.dr6 = v,
            reg::DR7 if v >> 32 == 0 => s.dr7 = v,
            reg::ES..=reg::TR if v <= 0xffff => self.segment(id).ok_or(EINVAL)?.selector = v as u16,
            _ => return Err(EINVAL),
        }
        if matches!(id, reg::CR0 | reg::CR3 | reg::CR4 | reg::EFER) {
            // The guest's translations may have changed without the guest
            // doing it (SET_REGS, INIT): its ASID's TLB entries go at the
            // next entry, as VT-x flushes the VPID (KVM flushes on
            // SET_SREGS too).
            self.flushed = Flushed::NEVER;
        }
        Ok(())
    }

    fn get_desc(&self, id: u32) -> Option<VmmSegDesc> {
        let seg = self.segment_ref(id)?;
        let table = id == reg::GDTR || id == reg::IDTR;
        let access = if table { 0 } else { maps::access_from_attrib(seg.attrib) };
        Some(VmmSegDesc { base: seg.base, limit: seg.limit, access })
    }

    fn set_desc(&mut self, id: u32, d: &VmmSegDesc) -> Result {
        let table = check_desc(id, d, self.cpus.la57)?;
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

    fn set_rip(&mut self, rip: u64) {
        let v = self.vm();
        v.save.rip = rip;
        // INTERRUPT_SHADOW: the completed instruction ends an STI or MOV SS
        // shadow.
        v.control.int_state &= !1;
    }

    fn cpl(&self) -> u8 {
        self.v().save.cpl
    }

    fn inject(&mut self, e: Event) {
        let c = &mut self.vm().control;
        c.event_inj = EventInj::exception(e.vector, e.error.is_some()).encode();
        c.event_inj_err = e.error.unwrap_or(0);
    }

    fn interruptibility(&self) -> Interruptibility {
        let v = self.v();
        Interruptibility {
            event_queued: v.control.event_inj & EventInj::VALID != 0,
            if_set: v.save.rflags & rflags::IF != 0,
            shadow: v.control.int_state & INT_SHADOW != 0,
            nmi_blocked: self.nmi_blocked,
        }
    }

    fn inject_interrupt(&mut self, vector: u8) {
        self.vm().control.event_inj = EventInj::intr(vector).encode();
    }

    fn inject_nmi(&mut self) {
        self.vm().control.event_inj = EventInj::nmi().encode();
        self.nmi_blocked = true;
        self.iret_rip = None;
        let v = self.vm();
        let i = v.intercept1() | Intercept1::IRET;
        v.set_intercept1(i);
    }

    fn set_windows(&mut self, irq: bool, nmi: bool, tpr_class: u8) {
        // SVM has no NMI window: once the handler's IRET was seen, the
        // interrupt window after it (IF is back) ends the blocking. A
        // virtual interrupt of class `tpr_class` that heeds V_TPR exits
        // once the guest's CR8 drops below it.
        let window = irq || (nmi && self.iret_rip.is_some());
        let prio = if window { None } else { Some(tpr_class).filter(|c| *c != 0) };
        self.set_windows_raw(window, prio);
    }

    fn tpr(&self) -> u8 {
        ((self.v().control.int_ctl & V_TPR) << 4) as u8
    }

    fn set_tpr(&mut self, tpr: u8) {
        let c = &mut self.vm().control;
        c.int_ctl = (c.int_ctl & !V_TPR) | u32::from(tpr >> 4);
    }

    fn next_rip(&self) -> Option<u64> {
        self.has(crate::svm::caps::SvmFeatures::NRIPS).then(|| self.v().control.next_rip)
    }

    fn efer(&self) -> u64 {
        self.v().save.efer & !efer::SVME
    }

    fn set_efer(&mut self, v: u64) {
        self.vm().save.efer = v | efer::SVME;
        self.flushed = Flushed::NEVER;
    }

    fn set_cr2(&mut self, cr2: u64) {
        self.vm().save.cr2 = cr2;
    }

    fn pat(&self) -> u64 {
        self.v().save.g_pat
    }

    fn set_pat(&mut self, pat: u64) {
        self.vm().save.g_pat = pat;
    }

    fn tsc_offset(&self) -> u64 {
        self.v().control.tsc_offset
    }

    fn set_tsc_offset(&mut self, off: u64) {
        self.vm().control.tsc_offset = off;
    }

    fn direct_msr(&self, msr: DirectMsr) -> u64 {
        let s = &self.v().save;
        match msr {
            DirectMsr::FsBase => s.fs.base,
            DirectMsr::GsBase => s.gs.base,
            DirectMsr::KernelGsBase => s.kernel_gs_base,
            DirectMsr::Star => s.star,
            DirectMsr::Lstar => s.lstar,
            DirectMsr::Cstar => s.cstar,
            DirectMsr::Sfmask => s.sfmask,
            DirectMsr::SysenterCs => s.sysenter_cs,
            DirectMsr::SysenterEsp => s.sysenter_esp,
            DirectMsr::SysenterEip => s.sysenter_eip,
        }
    }

    fn set_direct_msr(&mut self, msr: DirectMsr, v: u64) -> Result<(), Gp> {
        let v = msr.accept(v, self.cpus.la57).ok_or(Gp)?;
        *self.direct(msr) = v;
        Ok(())
    }

    fn enter(&mut self, e: Entry<'_>) -> Result<HwExit> {
        SvmVcpu::enter(self, e)
    }
}
