// SPDX-License-Identifier: GPL-2.0

//! Reaching guest memory the way the guest does: linear addresses through
//! the guest's page tables, and the instruction at RIP, which the kernel
//! decodes itself when the CPU did not (no NRIP-save or decode assists).

use kernel::prelude::*;

use super::VcpuState;
use crate::backend::{Event, VcpuHw};
use crate::uapi::{self, exit, reg, ExitData, VmmExit};
use crate::vm::Vm;
use crate::x86::{
    insn::{self, CpuMode, Op},
    paging::{self, Access, GuestPhys, WalkError},
};

/// Guest-physical memory as the guest page walker sees it.
struct Phys<'a>(&'a crate::mem::VmMem);

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
    /// Translates a linear address for `access`, injecting the fault if it
    /// fails. `Ok(None)`: a fault was injected.
    pub(super) fn translate(&mut self, vm: &Vm, la: u64, access: Access) -> Result<Option<u64>, ()> {
        let regs = self.paging();
        let user = self.hw.cpl() == 3;
        let r = vm.with_mem(|m| paging::translate(&mut Phys(m), &regs, la, access, user));
        match r {
            Ok(gpa) => Ok(Some(gpa)),
            Err(WalkError::PageFault { error_code }) => {
                self.hw.set_cr2(la);
                self.hw.inject(Event { vector: 14, error: Some(error_code) });
                Ok(None)
            }
            Err(WalkError::NonCanonical) => {
                self.hw.inject(Event::GP0);
                Ok(None)
            }
            // Another vCPU kept changing the entries: run the instruction
            // again, which exits again.
            Err(WalkError::Contended) => Ok(None),
            Err(WalkError::Unbacked { .. }) => Err(()),
        }
    }

    /// Fetches and decodes the instruction at RIP. `Err(exit)`: it could
    /// not, and the sequencer gets an `INST_EMUL` exit with the bytes.
    pub(super) fn fetch(&mut self, vm: &Vm) -> Result<insn::Insn, VmmExit> {
        let mode = self.mode();
        let base = if mode == CpuMode::Long64 { 0 } else { self.hw.get_desc(reg::CS).map_or(0, |d| d.base) };
        let la = base.wrapping_add(self.rip());
        let mut bytes = [0u8; 16];
        let mut len = 0usize;
        let regs = self.paging();
        let user = self.hw.cpl() == 3;
        while len < 15 {
            let cur = la.wrapping_add(len as u64);
            let n = ((0x1000 - (cur & 0xfff)) as usize).min(15 - len);
            let ok = vm.with_mem(|m| {
                paging::translate(&mut Phys(m), &regs, cur, Access::Fetch, user)
                    .ok()
                    .is_some_and(|gpa| m.read(gpa, &mut bytes[len..len + n]))
            });
            if !ok {
                break;
            }
            len += n;
        }
        insn::decode(&bytes[..len], mode).map_err(|_| {
            let d = uapi::VmmExitInstEmul { bytes, len: len as u32, ..uapi::VmmExitInstEmul::ZERO };
            VmmExit { reason: exit::INST_EMUL, rip: self.rip(), data: d.to_data(), ..VmmExit::ZERO }
        })
    }

    /// The RIP after the instruction that exited, which must be `op`.
    pub(super) fn next_rip(&mut self, vm: &Vm, op: Op) -> Result<Result<u64, VmmExit>> {
        if let Some(n) = self.hw.next_rip() {
            return Ok(Ok(n));
        }
        let rip = self.rip();
        Ok(match self.fetch(vm) {
            Ok(i) if i.op == op => {
                let next = rip.wrapping_add(u64::from(i.len));
                Ok(if self.mode() == CpuMode::Long64 { next } else { next & 0xffff_ffff })
            }
            // The bytes changed under the exit (another vCPU rewrote them).
            Ok(_) => Err(VmmExit { reason: exit::INST_EMUL, rip, ..VmmExit::ZERO }),
            Err(e) => Err(e),
        })
    }

    /// Moves RIP past the instruction that exited.
    pub(super) fn skip(&mut self, vm: &Vm, op: Op) -> Result<Result<(), VmmExit>> {
        Ok(match self.next_rip(vm, op)? {
            Ok(n) => {
                self.hw.set(reg::RIP, n)?;
                Ok(())
            }
            Err(e) => Err(e),
        })
    }

}
