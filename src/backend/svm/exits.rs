// SPDX-License-Identifier: GPL-2.0

//! What an SVM exit means: the VMCB's exit fields, decoded by the pure
//! `svm::exit`, become an [`HwExit`]; an event whose delivery the exit
//! interrupted is queued again.

use super::SvmVcpu;
use crate::backend::{Event, HwExit, IoExit};
use crate::svm::{
    caps::SvmFeatures,
    exit::{EventInj, ExitCode, IoInfo, NpfInfo},
    vmcb::Intercept1,
};
use crate::uapi::{self, ExitData, VMM_ACCESS_EXEC, VMM_ACCESS_READ, VMM_ACCESS_WRITE};
use crate::x86::{insn::Seg, paging::Access};

impl SvmVcpu {
    /// Turns the VMCB's exit fields into an [`HwExit`], re-queueing an
    /// event whose delivery the exit interrupted.
    pub(super) fn decode_exit(&mut self) -> HwExit {
        // The NMI handler's IRET completed: NMIs are unblocked.
        if self.iret_rip.is_some_and(|r| r != self.v().save.rip) {
            self.unblock_nmi();
        }
        let c = &mut self.vm().control;
        c.event_inj = 0;
        // A software interrupt (INT n), or #BP/#OF raised by INT3/INTO, is
        // not re-injected (`EventInj::reinject`): RIP still points at the
        // instruction, which runs again and raises it with the right
        // return address.
        if let Ok(Some(i)) = EventInj::decode(c.exit_int_info) {
            if i.reinject() {
                c.event_inj = c.exit_int_info;
                c.event_inj_err = c.exit_int_info_err;
            }
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
        let Ok(code) = ExitCode::try_from(code) else {
            return raw;
        };
        match code {
            ExitCode::Intr | ExitCode::Nmi | ExitCode::Smi | ExitCode::Init => HwExit::Continue,
            ExitCode::Vintr => {
                // Withdrawn until the run loop asks again.
                self.set_windows_raw(false, None);
                HwExit::Continue
            }
            ExitCode::Iret => {
                // The IRET has not run yet: it unblocks NMIs once it has.
                self.iret_rip = Some(self.v().save.rip);
                let v = self.vm();
                let i = v.intercept1() - Intercept1::IRET;
                v.set_intercept1(i);
                HwExit::Continue
            }
            // Intercepted only so that their delivery cannot loop without
            // exits: deliver them as they came.
            ExitCode::Exception(v @ (1 | 17)) => {
                let error = (v == 17).then_some(info1 as u32);
                crate::backend::VcpuHw::inject(self, Event { vector: v, error });
                HwExit::Continue
            }
            ExitCode::Cpuid => HwExit::Cpuid,
            ExitCode::Hlt => HwExit::Hlt,
            ExitCode::Msr => HwExit::Msr { write: info1 & 1 != 0 },
            ExitCode::Shutdown => HwExit::Shutdown,
            ExitCode::Ioio => match IoInfo::try_from(info1) {
                Ok(io) => HwExit::Io(self.io_exit(&io, info2)),
                Err(_) => raw,
            },
            ExitCode::Npf => {
                let access = match NpfInfo::from(info1).access() {
                    Access::Write => VMM_ACCESS_WRITE,
                    Access::Fetch => VMM_ACCESS_EXEC,
                    Access::Read => VMM_ACCESS_READ,
                };
                HwExit::NestedFault { gpa: info2, access }
            }
            ExitCode::Vmrun
            | ExitCode::Vmmcall
            | ExitCode::Vmload
            | ExitCode::Vmsave
            | ExitCode::Stgi
            | ExitCode::Clgi
            | ExitCode::Skinit
            | ExitCode::Invlpga
            | ExitCode::Monitor
            | ExitCode::Mwait
            | ExitCode::MwaitConditional => HwExit::Fault(Event::UD),
            ExitCode::Rdpmc => HwExit::Fault(Event::GP0),
            ExitCode::Xsetbv => HwExit::Xsetbv,
            _ => raw,
        }
    }

    /// An IOIO exit in common terms; EXITINFO2 is the next RIP. The
    /// segment field is filled only with decode assists; without them
    /// common code decodes the instruction's prefixes.
    fn io_exit(&self, io: &IoInfo, next_rip: u64) -> IoExit {
        let seg = if self.has(SvmFeatures::DECODE_ASSISTS) {
            io.segment.and_then(|s| {
                [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs].get(usize::from(s)).copied()
            })
        } else {
            None
        };
        IoExit {
            port: io.port,
            size: io.size,
            input: io.input,
            string: io.string,
            rep: io.rep,
            addr_size: io.addr_size,
            seg,
            next_rip,
        }
    }
}
