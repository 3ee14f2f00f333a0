// SPDX-License-Identifier: GPL-2.0

//! The VT-x backend's software copy of a vCPU, and how it goes into the
//! VMCS before an entry and comes back out after the exit.
//!
//! Every entry writes the whole VMCS (controls, host state, guest state)
//! and every exit reads the guest state and exit information back, so
//! between entries this copy is the only state and the VMCS region holds
//! nothing that must be kept.

use kernel::prelude::*;

use super::VmxVcpu;
use crate::backend::{check_desc, Entry, Event, HwExit, Interruptibility, VcpuHw};
use crate::uapi::{self, access, reg, ExitData, VmmSegDesc};
use crate::vmx::vmcs as f;
use crate::vmx::{caps::ProcBased, exit::EventType};
use crate::x86::{
    msr::{DirectMsr, Gp},
    paging::canonical,
    regs::{cr0_valid, rflags, EFER_VALID, RFLAGS_VALID},
};

/// One segment register's guest fields.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SegState {
    pub(super) sel: u16,
    pub(super) base: u64,
    pub(super) limit: u32,
    pub(super) ar: u32,
}

/// The guest's state between entries.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Guest {
    /// General registers by number; RSP (4) lives in `rsp`.
    pub(super) gprs: [u64; 16],
    pub(super) rsp: u64,
    pub(super) rip: u64,
    pub(super) rflags: u64,
    /// CR0 and CR4 as the guest sees them (the read shadows).
    pub(super) cr0: u64,
    pub(super) cr4: u64,
    pub(super) cr2: u64,
    pub(super) cr3: u64,
    pub(super) efer: u64,
    pub(super) pat: u64,
    pub(super) debugctl: u64,
    pub(super) dr: [u64; 4],
    pub(super) dr6: u64,
    pub(super) dr7: u64,
    /// ES, CS, SS, DS, FS, GS, LDTR, TR, GDTR, IDTR.
    pub(super) segs: [SegState; 10],
    pub(super) sysenter: [u64; 3],
    /// STAR, LSTAR, CSTAR, SFMASK.
    pub(super) syscall: [u64; 4],
    pub(super) kernel_gs_base: u64,
    pub(super) interruptibility: u32,
    pub(super) activity: u32,
    pub(super) pending_dbg: u64,
    pub(super) pdptes: [u64; 4],
    pub(super) tsc_offset: u64,
}

/// The exit-information fields of the last exit.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ExitFields {
    pub(super) reason: u32,
    pub(super) qualification: u64,
    pub(super) gpa: u64,
    pub(super) gla: u64,
    pub(super) intr_info: u32,
    pub(super) intr_error: u32,
    pub(super) idt_info: u32,
    pub(super) idt_error: u32,
    pub(super) len: u32,
    pub(super) info: u32,
    /// VM-instruction error of a failed VMLAUNCH.
    pub(super) instruction_error: u32,
}

impl ExitFields {
    pub(super) fn raw(&self) -> HwExit {
        let v = uapi::VmmExitVmx {
            exit_reason: self.reason,
            instruction_error: self.instruction_error,
            qualification: self.qualification,
            guest_physical: self.gpa,
            guest_linear: self.gla,
            intr_info: self.intr_info,
            intr_error: self.intr_error,
            idt_info: self.idt_info,
            idt_error: self.idt_error,
            instruction_len: self.len,
            instruction_info: self.info,
            reserved: 0,
        };
        HwExit::Unhandled { reason: uapi::exit::VMX, data: v.to_data() }
    }
}

/// An event for the VM-entry interruption-information fields.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub(super) info: u32,
    pub(super) error: u32,
    pub(super) len: u32,
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
        let la57 = self.cpus.la57;
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
        let table = check_desc(id, d, self.cpus.la57)?;
        let s = &mut self.g.segs[(id - reg::ES) as usize];
        s.base = d.base;
        s.limit = d.limit;
        s.ar = if table { 0 } else { f::ar_from_access(d.access) };
        Ok(())
    }

    fn set_rip(&mut self, rip: u64) {
        self.g.rip = rip;
        self.g.interruptibility &= !(f::interruptibility::STI | f::interruptibility::MOV_SS);
    }

    fn cpl(&self) -> u8 {
        ((self.g.segs[2].ar >> access::DPL_SHIFT) & 3) as u8
    }

    fn inject(&mut self, e: Event) {
        self.queue(e);
    }

    fn interruptibility(&self) -> Interruptibility {
        use f::interruptibility::{MOV_SS, NMI, STI};
        let i = self.g.interruptibility;
        Interruptibility {
            event_queued: self.event.is_some(),
            if_set: self.g.rflags & rflags::IF != 0,
            shadow: i & (STI | MOV_SS) != 0,
            nmi_blocked: i & NMI != 0,
        }
    }

    fn inject_interrupt(&mut self, vector: u8) {
        self.queue_interrupt(EventType::External, vector);
    }

    fn inject_nmi(&mut self) {
        self.queue_interrupt(EventType::Nmi, 2);
        // Without virtual NMIs the CPU does not track the blocking; the
        // guest's IRET cannot be seen, so NMIs are not blocked at all.
        if self.ctl.virtual_nmis() {
            self.g.interruptibility |= f::interruptibility::NMI;
        }
    }

    fn set_windows(&mut self, irq: bool, nmi: bool, tpr_class: u8) {
        let mut w = ProcBased::empty();
        w.set(ProcBased::INTR_WINDOW, irq);
        w.set(ProcBased::NMI_WINDOW, nmi && self.ctl.virtual_nmis());
        self.windows = w;
        // VM entry requires the threshold not above the TPR's class.
        self.tpr_threshold = tpr_class.min(self.tpr() >> 4);
    }

    fn tpr(&self) -> u8 {
        self.vapic.as_ref::<[u8; 4096]>()[0x80]
    }

    fn set_tpr(&mut self, tpr: u8) {
        self.vapic.as_mut::<[u8; 4096]>()[0x80] = tpr;
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

    fn direct_msr(&self, msr: DirectMsr) -> u64 {
        let g = &self.g;
        match msr {
            DirectMsr::FsBase => g.segs[4].base,
            DirectMsr::GsBase => g.segs[5].base,
            DirectMsr::KernelGsBase => g.kernel_gs_base,
            DirectMsr::Star => g.syscall[0],
            DirectMsr::Lstar => g.syscall[1],
            DirectMsr::Cstar => g.syscall[2],
            DirectMsr::Sfmask => g.syscall[3],
            DirectMsr::SysenterCs => g.sysenter[0],
            DirectMsr::SysenterEsp => g.sysenter[1],
            DirectMsr::SysenterEip => g.sysenter[2],
        }
    }

    fn set_direct_msr(&mut self, msr: DirectMsr, v: u64) -> Result<(), Gp> {
        let v = msr.accept(v, self.cpus.la57).ok_or(Gp)?;
        let g = &mut self.g;
        *match msr {
            DirectMsr::FsBase => &mut g.segs[4].base,
            DirectMsr::GsBase => &mut g.segs[5].base,
            DirectMsr::KernelGsBase => &mut g.kernel_gs_base,
            DirectMsr::Star => &mut g.syscall[0],
            DirectMsr::Lstar => &mut g.syscall[1],
            DirectMsr::Cstar => &mut g.syscall[2],
            DirectMsr::Sfmask => &mut g.syscall[3],
            DirectMsr::SysenterCs => &mut g.sysenter[0],
            DirectMsr::SysenterEsp => &mut g.sysenter[1],
            DirectMsr::SysenterEip => &mut g.sysenter[2],
        } = v;
        Ok(())
    }

    fn enter(&mut self, e: Entry<'_>) -> Result<HwExit> {
        VmxVcpu::enter(self, e)
    }
}
