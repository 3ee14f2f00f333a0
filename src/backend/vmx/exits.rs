// SPDX-License-Identifier: GPL-2.0

//! VT-x exits: decoding them into [`HwExit`]s, re-queueing interrupted
//! events, and the few instructions the backend completes itself (MOV to
//! CR0/CR4 on host-owned bits, INVD).

use super::{Inner, Pending};
use crate::backend::{Event, HwExit, IoExit};
use crate::uapi::{VMM_ACCESS_EXEC, VMM_ACCESS_READ, VMM_ACCESS_WRITE};
use crate::vmx::caps::ProcBased;
use crate::vmx::{
    exit::{
        self as vexit, Access, CrAccess, EptViolation, EventType, ExitInfo, ExitReason,
        Interruption,
    },
    vmcs as f,
};
use crate::x86::{
    insn::Seg,
    regs::{cr0, cr0_valid, cr4, efer, next_ip_faults},
};

impl Inner {
    /// Turns the exit fields into an [`HwExit`], re-queueing an event
    /// whose delivery the exit interrupted.
    pub(super) fn decode_exit(&mut self) -> HwExit {
        let x = self.exit;
        // Host interrupts and NMIs exit rather than go through the guest's
        // IDT, so an interrupted external interrupt or NMI is one this
        // backend injected: it goes in again, exactly once.
        if let Ok(Some(i)) = Interruption::decode(x.idt_info) {
            let soft = matches!(
                i.kind,
                EventType::SoftwareInterrupt
                    | EventType::PrivilegedSoftwareException
                    | EventType::SoftwareException
            );
            if i.kind == EventType::Nmi {
                // The NMI was not delivered: it does not block yet (SDM
                // 27.7.1.2, "Clear bit 'blocking by NMI'").
                self.g.interruptibility &= !f::interruptibility::NMI;
            }
            self.event = Some(Pending {
                info: i.encode(),
                error: if i.has_error { x.idt_error } else { 0 },
                len: if soft { x.len } else { 0 },
            });
        }
        let Ok(info) = ExitInfo::try_from(x.reason) else {
            return x.raw();
        };
        if info.entry_failure {
            return x.raw();
        }
        match info.reason {
            ExitReason::ExceptionNmi => match Interruption::decode(x.intr_info) {
                Ok(Some(i)) if i.kind == EventType::Nmi => {
                    self.nmi = true;
                    HwExit::Continue
                }
                // #DB and #AC are intercepted only so that their delivery
                // cannot loop without exits: deliver them as they came,
                // ICEBP's #DB (a privileged software exception) with its
                // instruction length.
                Ok(Some(i))
                    if matches!(i.vector, 1 | 17)
                        && matches!(
                            i.kind,
                            EventType::HardwareException | EventType::PrivilegedSoftwareException
                        ) =>
                {
                    let soft = i.kind == EventType::PrivilegedSoftwareException;
                    self.event = Some(Pending {
                        info: i.encode(),
                        error: if i.has_error { x.intr_error } else { 0 },
                        len: if soft { x.len } else { 0 },
                    });
                    HwExit::Continue
                }
                _ => x.raw(),
            },
            ExitReason::InterruptWindow | ExitReason::NmiWindow => {
                // Withdrawn until the run loop asks again.
                self.windows = ProcBased::empty();
                HwExit::Continue
            }
            ExitReason::ExternalInterrupt
            | ExitReason::TprBelowThreshold
            | ExitReason::PreemptionTimer
            | ExitReason::InitSignal
            | ExitReason::Sipi
            | ExitReason::IoSmi
            | ExitReason::OtherSmi => HwExit::Continue,
            ExitReason::TripleFault => HwExit::Shutdown,
            ExitReason::Cpuid => HwExit::Cpuid,
            ExitReason::Hlt => HwExit::Hlt,
            ExitReason::Rdmsr => HwExit::Msr { write: false },
            ExitReason::Wrmsr => HwExit::Msr { write: true },
            ExitReason::Xsetbv => HwExit::Xsetbv,
            ExitReason::IoInstruction => self.decode_io().unwrap_or_else(|| x.raw()),
            ExitReason::EptViolation => match EptViolation::try_from(x.qualification) {
                Ok(v) => {
                    let access = match v.access() {
                        Access::Write => VMM_ACCESS_WRITE,
                        Access::Fetch => VMM_ACCESS_EXEC,
                        Access::Read => VMM_ACCESS_READ,
                    };
                    HwExit::NestedFault { gpa: x.gpa, access }
                }
                Err(_) => x.raw(),
            },
            ExitReason::CrAccess => self.cr_access().unwrap_or_else(|| x.raw()),
            ExitReason::Vmcall
            | ExitReason::Vmclear
            | ExitReason::Vmlaunch
            | ExitReason::Vmptrld
            | ExitReason::Vmptrst
            | ExitReason::Vmread
            | ExitReason::Vmresume
            | ExitReason::Vmwrite
            | ExitReason::Vmxoff
            | ExitReason::Vmxon
            | ExitReason::Invept
            | ExitReason::Invvpid
            | ExitReason::Vmfunc
            | ExitReason::Getsec
            | ExitReason::Mwait
            | ExitReason::Monitor => HwExit::Fault(Event::UD),
            ExitReason::Rdpmc => HwExit::Fault(Event::GP0),
            // INVD would drop the host's dirty lines: run it as a no-op.
            ExitReason::Invd => self.skip(),
            _ => x.raw(),
        }
    }

    /// Delivers `e` at the next entry.
    pub(super) fn queue(&mut self, e: Event) {
        let i = Interruption::exception(e.vector, e.error.is_some());
        self.event = Some(Pending { info: i.encode(), error: e.error.unwrap_or(0), len: 0 });
    }

    /// Queues external interrupt `vector`, or an NMI.
    pub(super) fn queue_interrupt(&mut self, kind: EventType, vector: u8) {
        let i = Interruption { vector, kind, has_error: false, nmi_unblocking: false };
        self.event = Some(Pending { info: i.encode(), error: 0, len: 0 });
    }

    /// The RIP after the instruction that exited.
    pub(super) fn next(&self) -> u64 {
        let n = self.g.rip.wrapping_add(u64::from(self.exit.len));
        if self.long64() {
            n
        } else {
            n & 0xffff_ffff
        }
    }

    /// Moves RIP past the instruction that exited, or, when the next RIP
    /// would be non-canonical, leaves it and raises #GP(0) instead (the
    /// instruction then has no effect, as the caller guarantees).
    pub(super) fn skip(&mut self) -> HwExit {
        let next = self.next();
        if next_ip_faults(next, self.long64(), self.guest_la57()) {
            return HwExit::Fault(Event::GP0);
        }
        self.g.rip = next;
        self.g.interruptibility &= !(f::interruptibility::STI | f::interruptibility::MOV_SS);
        HwExit::Continue
    }

    pub(super) fn decode_io(&self) -> Option<HwExit> {
        let q = vexit::IoQual::try_from(self.exit.qualification).ok()?;
        let (addr_size, seg) = if q.string && self.cpus.ins_outs_info() {
            let i = if q.input {
                vexit::StringIoInfo::for_ins(self.exit.info).ok()?
            } else {
                vexit::StringIoInfo::try_from(self.exit.info).ok()?
            };
            let seg = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs]
                .get(usize::from(i.segment))
                .copied();
            (Some(i.addr_size), seg)
        } else {
            // Without the information field common code decodes the
            // address-size and segment prefixes.
            (None, None)
        };
        Some(HwExit::Io(IoExit {
            port: q.port,
            size: q.size,
            input: q.input,
            string: q.string,
            rep: q.rep,
            addr_size,
            seg,
            next_rip: self.next(),
        }))
    }

    /// Emulates a MOV to CR0 or CR4 that changed a bit the host owns.
    pub(super) fn cr_access(&mut self) -> Option<HwExit> {
        let CrAccess::MovTo { cr, gpr } = CrAccess::try_from(self.exit.qualification).ok()? else {
            return None;
        };
        let v = if gpr == 4 { self.g.rsp } else { self.g.gprs[usize::from(gpr & 15)] };
        let gp = Some(HwExit::Fault(Event::GP0));
        // Checked before anything changes, so a faulting move has no effect.
        if next_ip_faults(self.next(), self.long64(), self.guest_la57()) {
            return gp;
        }
        match cr {
            0 => {
                if !cr0_valid(v) {
                    return gp;
                }
                let pg = v & cr0::PG != 0;
                let was_pg = self.g.cr0 & cr0::PG != 0;
                if pg && !was_pg && self.g.efer & efer::LME != 0 {
                    if self.g.cr4 & cr4::PAE == 0 {
                        return gp;
                    }
                    self.g.efer |= efer::LMA;
                } else if !pg && was_pg && self.long_mode() {
                    if self.cs_l() {
                        return gp;
                    }
                    self.g.efer &= !efer::LMA;
                }
                self.g.cr0 = v;
            }
            4 => {
                if !self.cr4_ok(v) || (self.long_mode() && v & cr4::PAE == 0) {
                    return gp;
                }
                self.g.cr4 = v;
            }
            _ => return None,
        }
        self.regs_changed = true;
        Some(self.skip())
    }
}
