// SPDX-License-Identifier: GPL-2.0

//! The VT-x backend's software copy of a vCPU, and how it goes into the
//! VMCS before an entry and comes back out after the exit.
//!
//! Every entry writes the whole VMCS (controls, host state, guest state)
//! and every exit reads the guest state and exit information back, so
//! between entries this copy is the only state and the VMCS region holds
//! nothing that must be kept.

use super::*;

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

/// The reset value of a segment (`ar` in the VMX layout).
pub(super) const fn seg(sel: u16, base: u64, limit: u32, ar: u32) -> SegState {
    SegState { sel, base, limit, ar }
}

impl Inner {
    pub(super) fn write_controls(&self, v: &mut CurrentVmcs<'_>, eptp: u64) {
        let c = &self.ctl;
        v.write(f::PIN_CONTROLS, c.pin.bits());
        v.write(f::PROC_CONTROLS, c.proc.bits());
        v.write(f::PROC_CONTROLS2, c.proc2.bits());
        v.write(f::EXIT_CONTROLS, c.exit.bits());
        let mut entry = c.entry;
        entry.set(EntryCtls::IA32E_GUEST, self.long_mode());
        v.write(f::ENTRY_CONTROLS, entry.bits());
        // #DB and #AC: a guest can otherwise loop delivering them forever
        // without an exit (CVE-2015-8104, CVE-2015-5307).
        v.write(f::EXCEPTION_BITMAP, (1 << 1) | (1 << 17));
        v.write(f::PF_ERROR_MASK, 0);
        v.write(f::PF_ERROR_MATCH, 0);
        v.write(f::CR3_TARGET_COUNT, 0);
        v.write(f::EXIT_MSR_STORE_COUNT, 0);
        v.write(f::EXIT_MSR_LOAD_COUNT, 0);
        v.write(f::ENTRY_MSR_LOAD_COUNT, 0);
        let e = self.event.unwrap_or(Pending { info: 0, error: 0, len: 0 });
        v.write(f::ENTRY_INTR_INFO, e.info);
        v.write(f::ENTRY_EXCEPTION_ERROR, e.error);
        v.write(f::ENTRY_INSTRUCTION_LEN, e.len);
        v.write(f::TPR_THRESHOLD, 0);
        if c.preemption_timer() {
            v.write(f::PREEMPTION_TIMER, self.time_slice);
        }
        v.write(f::IO_BITMAP_A, self.io_bitmaps.phys());
        v.write(f::IO_BITMAP_B, self.io_bitmaps.phys() + 4096);
        v.write(f::MSR_BITMAP, self.msr_bitmap.phys());
        v.write(f::VIRTUAL_APIC_ADDR, self.vapic.phys());
        v.write(f::TSC_OFFSET, self.g.tsc_offset);
        v.write(f::EPT_POINTER, eptp);
        v.write(f::VMCS_LINK_POINTER, u64::MAX);
        if let Some(vpid) = self.vpid {
            v.write(f::VPID, vpid);
        }
        let (m0, m4) = self.cr_masks();
        v.write(f::CR0_MASK, m0);
        v.write(f::CR4_MASK, m4);
        v.write(f::CR0_SHADOW, self.g.cr0);
        v.write(f::CR4_SHADOW, self.g.cr4);
    }

    pub(super) fn write_host(v: &mut CurrentVmcs<'_>, h: &VmxHost) {
        v.write(f::HOST_CR0, h.cr0);
        v.write(f::HOST_CR3, h.cr3);
        v.write(f::HOST_CR4, h.cr4);
        v.write(f::HOST_CS_SELECTOR, h.cs);
        v.write(f::HOST_SS_SELECTOR, h.ss);
        // The exit loads null DS/ES (restored afterwards when they were
        // not), and FS/GS selectors only when RPL and TI are clear.
        v.write(f::HOST_DS_SELECTOR, 0);
        v.write(f::HOST_ES_SELECTOR, 0);
        v.write(f::HOST_FS_SELECTOR, if h.fs & 7 == 0 { h.fs } else { 0 });
        v.write(f::HOST_GS_SELECTOR, if h.gs & 7 == 0 { h.gs } else { 0 });
        v.write(f::HOST_TR_SELECTOR, h.tr);
        v.write(f::HOST_FS_BASE, h.fs_base);
        v.write(f::HOST_GS_BASE, h.gs_base);
        v.write(f::HOST_TR_BASE, h.tr_base);
        v.write(f::HOST_GDTR_BASE, h.gdt_base);
        v.write(f::HOST_IDTR_BASE, h.idt_base);
        v.write(f::HOST_SYSENTER_CS, h.sysenter_cs as u32);
        v.write(f::HOST_SYSENTER_ESP, h.sysenter_esp);
        v.write(f::HOST_SYSENTER_EIP, h.sysenter_eip);
        v.write(f::HOST_IA32_PAT, h.pat);
        v.write(f::HOST_IA32_EFER, h.efer);
    }

    pub(super) fn write_guest(&self, v: &mut CurrentVmcs<'_>) {
        let g = &self.g;
        let (cr0, cr4) = self.real_crs();
        v.write(f::GUEST_CR0, cr0);
        v.write(f::GUEST_CR3, g.cr3);
        v.write(f::GUEST_CR4, cr4);
        v.write(f::GUEST_DR7, g.dr7);
        v.write(f::GUEST_RSP, g.rsp);
        v.write(f::GUEST_RIP, g.rip);
        v.write(f::GUEST_RFLAGS, g.rflags);
        for (s, fl) in g.segs.iter().zip(f::GUEST_SEGMENTS.iter()) {
            if let Some(ar) = fl.ar {
                v.write(fl.selector, s.sel);
                v.write(ar, s.ar);
            }
            v.write(fl.base, s.base);
            v.write(fl.limit, s.limit);
        }
        v.write(f::GUEST_SYSENTER_CS, g.sysenter[0] as u32);
        v.write(f::GUEST_SYSENTER_ESP, g.sysenter[1]);
        v.write(f::GUEST_SYSENTER_EIP, g.sysenter[2]);
        v.write(f::GUEST_IA32_PAT, g.pat);
        v.write(f::GUEST_IA32_EFER, g.efer);
        v.write(f::GUEST_IA32_DEBUGCTL, g.debugctl);
        v.write(f::GUEST_INTERRUPTIBILITY, g.interruptibility);
        v.write(f::GUEST_ACTIVITY_STATE, g.activity);
        v.write(f::GUEST_PENDING_DBG, g.pending_dbg);
        for (i, fl) in [f::GUEST_PDPTE0, f::GUEST_PDPTE1, f::GUEST_PDPTE2, f::GUEST_PDPTE3].into_iter().enumerate() {
            v.write(fl, g.pdptes[i]);
        }
    }

    pub(super) fn read_back(&mut self, v: &CurrentVmcs<'_>) {
        let (m0, m4) = self.cr_masks();
        let g = &mut self.g;
        g.cr0 = (v.read(f::GUEST_CR0) & !m0) | (g.cr0 & m0);
        g.cr4 = (v.read(f::GUEST_CR4) & !m4) | (g.cr4 & m4);
        g.cr3 = v.read(f::GUEST_CR3);
        g.dr7 = v.read(f::GUEST_DR7);
        g.rsp = v.read(f::GUEST_RSP);
        g.rip = v.read(f::GUEST_RIP);
        g.rflags = v.read(f::GUEST_RFLAGS);
        for (s, fl) in g.segs.iter_mut().zip(f::GUEST_SEGMENTS.iter()) {
            if let Some(ar) = fl.ar {
                s.sel = v.read(fl.selector);
                s.ar = v.read(ar);
            }
            s.base = v.read(fl.base);
            s.limit = v.read(fl.limit);
        }
        g.sysenter = [
            u64::from(v.read(f::GUEST_SYSENTER_CS)),
            v.read(f::GUEST_SYSENTER_ESP),
            v.read(f::GUEST_SYSENTER_EIP),
        ];
        g.pat = v.read(f::GUEST_IA32_PAT);
        g.efer = v.read(f::GUEST_IA32_EFER);
        g.debugctl = v.read(f::GUEST_IA32_DEBUGCTL);
        g.interruptibility = v.read(f::GUEST_INTERRUPTIBILITY);
        g.activity = v.read(f::GUEST_ACTIVITY_STATE);
        g.pending_dbg = v.read(f::GUEST_PENDING_DBG);
        for (i, fl) in [f::GUEST_PDPTE0, f::GUEST_PDPTE1, f::GUEST_PDPTE2, f::GUEST_PDPTE3].into_iter().enumerate() {
            g.pdptes[i] = v.read(fl);
        }
        self.exit = ExitFields {
            reason: v.read(f::EXIT_REASON),
            qualification: v.read(f::EXIT_QUALIFICATION),
            gpa: v.read(f::GUEST_PHYSICAL_ADDR),
            gla: v.read(f::GUEST_LINEAR_ADDR),
            intr_info: v.read(f::EXIT_INTR_INFO),
            intr_error: v.read(f::EXIT_INTR_ERROR),
            idt_info: v.read(f::IDT_VECTORING_INFO),
            idt_error: v.read(f::IDT_VECTORING_ERROR),
            len: v.read(f::EXIT_INSTRUCTION_LEN),
            info: v.read(f::EXIT_INSTRUCTION_INFO),
            instruction_error: 0,
        };
    }
}
