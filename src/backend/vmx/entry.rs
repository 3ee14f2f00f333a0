// SPDX-License-Identifier: GPL-2.0

//! One trip into a VT-x guest: a window on this CPU (VMXON), TLB flushes
//! the EPT generation or a migration call for, the VMCS written whole from
//! the software copy, the guest's debug registers, XCR0 and SYSCALL MSRs
//! switched around VMLAUNCH, and the guest state read back. Everything
//! here runs with interrupts off.

use kernel::{
    interrupt::local_interrupt_disable,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

use super::{state::ExitFields, Inner, Pending};
use crate::backend::{Entry, HwExit};
use crate::hw::{
    self,
    cpu::LocalCpu,
    vmx::{CurrentVmcs, Extent, VmFail, VmcsRegion, VmxHost, VmxWindow},
};
use crate::vmspace::{gen::Flushed, pte::eptp};
use crate::vmx::{
    caps::{EntryCtls, EptVpidCap},
    controls,
    tlb::{self, Flush},
    vmcs::{self as f, Vmcs},
};
use crate::x86::{msr, regs::cr0, CpuInfo};

/// The missing-unrestricted-guest refusal was logged.
static NO_UG_LOGGED: Atomic<bool> = Atomic::new(false);

/// The MSRs switched around each entry, in `Guest::syscall` order, then
/// KERNEL_GS_BASE: the guest reads and writes them without exiting, and
/// the VMCS has no fields for them.
const SWITCHED: [u32; 5] = [msr::STAR, msr::LSTAR, msr::CSTAR, msr::SFMASK, msr::KERNEL_GS_BASE];

/// How one attempt to enter ended.
pub(super) enum Ran {
    /// A kick or a VM change came first: nothing ran.
    NotEntered,
    /// The guest ran and exited; the exit fields are read back.
    Exited,
    /// VMLAUNCH failed with VMfailValid: this exit goes to userspace.
    Failed(HwExit),
}

impl Inner {
    /// Enters the guest once, on this CPU, inside a window, with VMCS
    /// region `region`.
    pub(super) fn run_once(&mut self, region: &mut VmcsRegion, e: Entry<'_>) -> Result<Ran> {
        let both = cr0::PE | cr0::PG;
        if !self.ctl.unrestricted_guest() && self.g.cr0 & both != both {
            if !NO_UG_LOGGED.xchg(true, Relaxed) {
                pr_warn!(
                    "VM_RUN refused: real mode and unpaged protected mode need VT-x \
                     unrestricted guest, which this CPU lacks\n"
                );
            }
            return Err(EOPNOTSUPP);
        }
        let Entry { root, generation, cpu_flushed, xcr0, arrive, depart } = e;
        let eptp = eptp(root, 4);
        let cpus = self.cpus.clone();
        let irq = local_interrupt_disable();
        let cpu = LocalCpu::new(&irq);
        let id = hw::this_cpu(&irq);
        let vmxon = cpus.regions.get(id as usize).ok_or(EIO)?;
        let win = VmxWindow::enter(&cpu, id, vmxon, &cpus.caps).map_err(|e| e.to_errno())?;
        if !arrive(id) {
            depart();
            return Ok(Ran::NotEntered);
        }
        // The CPU's record for this VM's EPT: INVEPT once per generation
        // per CPU, whichever vCPUs run there.
        let record = cpu_flushed.get(id as usize).ok_or(EIO)?;
        let mut seen = Flushed::from_raw(record.load(Relaxed));
        let ept_stale = seen.must_flush(generation);
        let migrated = self.last_cpu != Some(id);
        let flush = tlb::on_entry(ept_stale, migrated, self.regs_changed, self.vpid.is_some());
        let single_vpid = cpus.caps.ept_vpid.contains(EptVpidCap::INVVPID_SINGLE);
        let flushed = match (flush, self.vpid) {
            (Flush::Ept, _) => win.invept(cpus.invept_extent(), eptp),
            (Flush::Vpid, Some(vpid)) if single_vpid => win.invvpid(Extent::Single, vpid),
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
        let guest = c.load_guest(&self.g.dr, Some(self.g.dr6), xcr0);
        let g = &self.g;
        let want = [g.syscall[0], g.syscall[1], g.syscall[2], g.syscall[3], g.kernel_gs_base];
        let host_msrs = [
            c.rdmsr(msr::STAR).unwrap_or(0),
            c.rdmsr(msr::LSTAR).unwrap_or(0),
            c.rdmsr(msr::CSTAR).unwrap_or(0),
            c.rdmsr(msr::SFMASK).unwrap_or(0),
            host.kernel_gs_base,
        ];
        let switched = c.switch_msrs(&SWITCHED, host_msrs, &want);
        cpus.l1d.flush(c);

        let ran = vmcs.run(&mut self.g.gprs, &mut self.g.cr2, false);

        let now = switched.restore();
        self.g.syscall = [now[0], now[1], now[2], now[3]];
        self.g.kernel_gs_base = now[4];
        c.vmx_host_restore(&host);
        let d = guest.restore_host();
        self.g.dr = d.addrs;
        self.g.dr6 = d.dr6;
        depart();

        let out = match ran {
            Ok(()) => {
                self.event = None;
                self.read_back(&vmcs);
                Ok(Ran::Exited)
            }
            Err(VmFail::Valid(n)) => {
                self.exit = ExitFields { instruction_error: n, ..ExitFields::default() };
                Ok(Ran::Failed(self.exit.raw()))
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
        out
    }

    fn write_controls(&self, v: &mut CurrentVmcs<'_>, eptp: u64) {
        let c = &self.ctl;
        v.write(f::PIN_CONTROLS, c.pin.bits());
        v.write(f::PROC_CONTROLS, (c.proc | self.windows).bits());
        v.write(f::PROC_CONTROLS2, c.proc2.bits());
        v.write(f::EXIT_CONTROLS, c.exit.bits());
        let mut entry = c.entry;
        entry.set(EntryCtls::IA32E_GUEST, self.long_mode());
        v.write(f::ENTRY_CONTROLS, entry.bits());
        v.write(f::EXCEPTION_BITMAP, controls::EXCEPTION_BITMAP);
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
        v.write(f::TPR_THRESHOLD, u32::from(self.tpr_threshold));
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

    fn write_host(v: &mut CurrentVmcs<'_>, h: &VmxHost) {
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

    fn write_guest(&self, v: &mut CurrentVmcs<'_>) {
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
        for (i, fl) in [f::GUEST_PDPTE0, f::GUEST_PDPTE1, f::GUEST_PDPTE2, f::GUEST_PDPTE3]
            .into_iter()
            .enumerate()
        {
            v.write(fl, g.pdptes[i]);
        }
    }

    fn read_back(&mut self, v: &CurrentVmcs<'_>) {
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
        for (i, fl) in [f::GUEST_PDPTE0, f::GUEST_PDPTE1, f::GUEST_PDPTE2, f::GUEST_PDPTE3]
            .into_iter()
            .enumerate()
        {
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
