// SPDX-License-Identifier: GPL-2.0

//! Reaching guest memory the way the guest does: linear addresses through
//! the guest's page tables, and the instruction at RIP, which the kernel
//! decodes itself when the CPU did not (no NRIP-save or decode assists).

use kernel::prelude::*;

use super::exits::{Outcome, Step};
use super::VcpuState;
use crate::backend::{Event, VcpuHw};
use crate::emul::{self, CpuMode, Op};
use crate::uapi::{self, exit, reg, ExitData, VmmExit};
use crate::vm::Vm;
use crate::x86::{
    paging::{self, Access, GuestPhys, WalkError},
    regs::{cr4, next_ip_faults},
};

/// The instruction bytes at RIP.
pub(super) struct Fetched {
    /// The bytes; the first `len` were read.
    pub(super) bytes: [u8; 16],
    /// How many were read (at most 15).
    pub(super) len: usize,
    /// What the CPU would do about the byte that could not be fetched: a
    /// #PF or #GP, or run again (page tables changed meanwhile). `None`
    /// when all 15 were read, or the rest is not RAM.
    pub(super) fault: Option<Outcome>,
}

/// Where a linear address led.
pub(super) enum Walked {
    /// To this guest-physical address.
    Gpa(u64),
    /// To guest-physical memory no segment backs.
    Unbacked,
    /// Nowhere: the guest gets a fault, or runs the instruction again.
    Stop(Outcome),
}

/// Guest-physical memory as the guest page walker sees it.
pub(super) struct Phys<'a>(pub(super) &'a crate::mem::VmMem);

impl GuestPhys for Phys<'_> {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.0.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.0.read(gpa, &mut b).then(|| u32::from_le_bytes(b))
    }
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        self.0.cmpxchg_u64(gpa, old, new)
    }
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool> {
        // A 4-byte entry is half of an aligned 8-byte word.
        let base = gpa & !7;
        let word = self.read_u64(base)?;
        let shift = (gpa & 4) * 8;
        if (word >> shift) as u32 != old {
            return Some(false);
        }
        let new_word = (word & !(0xffff_ffffu64 << shift)) | (u64::from(new) << shift);
        self.0.cmpxchg_u64(base, word, new_word)
    }
}

impl VcpuState {
    /// Translates a linear address for `access`, as the guest's own
    /// page tables do.
    pub(super) fn translate(&self, vm: &Vm, la: u64, access: Access) -> Walked {
        let regs = self.paging();
        let user = self.hw.cpl() == 3;
        let r = vm.with_mem(|m| paging::translate(&mut Phys(m), &regs, la, access, user));
        match r {
            Ok(gpa) => Walked::Gpa(gpa),
            Err(WalkError::PageFault { error_code }) => {
                Walked::Stop(Outcome::PageFault { cr2: la, error: error_code })
            }
            Err(WalkError::NonCanonical) => Walked::Stop(Outcome::Fault(Event::GP0)),
            // Another vCPU kept changing the entries: run the instruction
            // again, which exits again.
            Err(WalkError::Contended) => Walked::Stop(Outcome::Reenter),
            Err(WalkError::Unbacked { .. }) => Walked::Unbacked,
        }
    }

    /// The bytes at RIP as the guest fetches them: up to 15, through the
    /// guest's page tables, and why the fetch stopped short if it did.
    pub(super) fn fetch_bytes(&self, vm: &Vm) -> Fetched {
        let mode = self.mode();
        let base = if mode == CpuMode::Long64 {
            0
        } else {
            self.hw.get_desc(reg::CS).map_or(0, |d| d.base)
        };
        let la = base.wrapping_add(self.rip());
        let mut f = Fetched { bytes: [0u8; 16], len: 0, fault: None };
        let regs = self.paging();
        let user = self.hw.cpl() == 3;
        while f.len < 15 {
            let cur = la.wrapping_add(f.len as u64);
            let n = ((0x1000 - (cur & 0xfff)) as usize).min(15 - f.len);
            let walk = vm.with_mem(|m| {
                paging::translate(&mut Phys(m), &regs, cur, Access::Fetch, user)
                    .map(|gpa| m.read(gpa, &mut f.bytes[f.len..f.len + n]))
            });
            match walk {
                Ok(true) => f.len += n,
                Ok(false) => break,
                Err(WalkError::PageFault { error_code }) => {
                    f.fault = Some(Outcome::PageFault { cr2: cur, error: error_code });
                    break;
                }
                Err(WalkError::NonCanonical) => {
                    f.fault = Some(Outcome::Fault(Event::GP0));
                    break;
                }
                Err(WalkError::Contended) => {
                    f.fault = Some(Outcome::Reenter);
                    break;
                }
                Err(WalkError::Unbacked { .. }) => break,
            }
        }
        f
    }

    /// Fetches and decodes the instruction at RIP with the emulator's
    /// decoder. `Err(exit)`: it could not (truncated, unknown, invalid),
    /// and the sequencer gets an `INST_EMUL` exit with the bytes.
    pub(super) fn fetch(&mut self, vm: &Vm) -> Result<emul::Insn, VmmExit> {
        let f = self.fetch_bytes(vm);
        emul::decode(&f.bytes[..f.len], self.mode()).map_err(|_| {
            let d = uapi::VmmExitInstEmul {
                bytes: f.bytes,
                len: f.len as u32,
                ..uapi::VmmExitInstEmul::ZERO
            };
            VmmExit { reason: exit::INST_EMUL, rip: self.rip(), data: d.to_data(), ..VmmExit::ZERO }
        })
    }

    /// The RIP after the instruction that exited, which must be `op`.
    /// When it would be non-canonical in the guest's mode, the instruction
    /// does not complete: the guest gets #GP(0) at the instruction, as for
    /// a branch to a non-canonical target, and nothing it did is kept.
    pub(super) fn next_rip(&mut self, vm: &Vm, op: Op) -> Step<u64> {
        let mode = self.mode();
        let long64 = mode == CpuMode::Long64;
        let next = match self.hw.next_rip() {
            Some(n) => n,
            None => {
                let rip = self.rip();
                match self.fetch(vm) {
                    Ok(i) if i.op == op => {
                        let next = rip.wrapping_add(u64::from(i.len));
                        if long64 {
                            next
                        } else {
                            next & 0xffff_ffff
                        }
                    }
                    // The bytes changed under the exit (another vCPU
                    // rewrote them).
                    Ok(_) => {
                        let e = VmmExit { reason: exit::INST_EMUL, rip, ..VmmExit::ZERO };
                        return Step::Stop(Outcome::ToUser(e));
                    }
                    Err(e) => return Step::Stop(Outcome::ToUser(e)),
                }
            }
        };
        self.check_next(next, long64)
    }

    /// `next` as the RIP to continue at, or #GP(0) when it is
    /// non-canonical in the guest's current paging mode.
    pub(super) fn check_next(&self, next: u64, long64: bool) -> Step<u64> {
        let la57 = self.gpr(reg::CR4) & cr4::LA57 != 0;
        if next_ip_faults(next, long64, la57) {
            Step::Stop(Outcome::Fault(Event::GP0))
        } else {
            Step::Go(next)
        }
    }

    /// Moves RIP past the instruction that exited.
    pub(super) fn skip(&mut self, vm: &Vm, op: Op) -> Step<()> {
        match self.next_rip(vm, op) {
            Step::Go(n) => {
                self.hw.set_rip(n);
                Step::Go(())
            }
            Step::Stop(o) => Step::Stop(o),
        }
    }
}
