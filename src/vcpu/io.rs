// SPDX-License-Identifier: GPL-2.0

//! Port I/O exits and the completion of pending instructions. String I/O
//! moves one element per exit: the guest re-executes a REP instruction for
//! the next one, so a guest-controlled count never loops in the kernel.

use kernel::prelude::*;

use super::exits::{Outcome, Step};
use super::guest::Walked;
use super::intr::ApicPage;
use super::{Pending, StringElem, VcpuState};
use crate::backend::{Event, IoExit, VcpuHw};
use crate::platform::Platform;
use crate::uapi::{self, exit, reg, ExitData, VmmExit};
use crate::vm::Vm;
use crate::x86::{
    insn::{CpuMode, Seg},
    paging::Access,
    regs::rflags,
};

impl VcpuState {
    pub(super) fn io(&mut self, vm: &Vm, io: IoExit) -> Result<Outcome> {
        let rip = self.rip();
        // A non-canonical next RIP faults before the port is touched.
        if let Step::Stop(o) = self.check_next(io.next_rip, self.mode() == CpuMode::Long64) {
            return Ok(o);
        }
        let mut data = uapi::VmmExitInout {
            flags: if io.input { uapi::VMM_INOUT_IN } else { 0 },
            port: u32::from(io.port),
            size: u32::from(io.size),
            ..uapi::VmmExitInout::ZERO
        };
        let mask = size_mask(io.size);
        let mut elem = None;
        if !io.string {
            if !io.input {
                data.value = self.gpr(reg::RAX) & mask;
            }
        } else {
            // What the hardware did not decode (the address size, the
            // source segment) comes from the instruction's prefixes, as
            // `emul::decode` reads them.
            let fetched = if io.addr_size.is_none() || (!io.input && io.seg.is_none()) {
                match self.fetch(vm) {
                    Ok(i) => Some(i),
                    Err(e) => return Ok(Outcome::ToUser(e)),
                }
            } else {
                None
            };
            let addr_size = io.addr_size.or(fetched.map(|i| i.addr_size)).unwrap_or(8);
            let seg = if io.input {
                Seg::Es
            } else {
                io.seg.or(fetched.and_then(|i| i.seg)).unwrap_or(Seg::Ds)
            };
            let amask = size_mask(addr_size);
            let count = if io.rep { self.gpr(reg::RCX) & amask } else { 1 };
            if count == 0 {
                self.hw.set_rip(io.next_rip);
                return Ok(Outcome::Reenter);
            }
            let index = self.gpr(if io.input { reg::RDI } else { reg::RSI }) & amask;
            let base = self.seg_base(seg);
            let la = base.wrapping_add(index);
            let access = if io.input { Access::Write } else { Access::Read };
            // An element crossing a page is split: translate its last byte too.
            let last = la.wrapping_add(u64::from(io.size) - 1);
            let first = match self.translate(vm, la, access) {
                Walked::Gpa(a) => a,
                Walked::Stop(o) => return Ok(o),
                Walked::Unbacked => return Ok(self.inst_emul(vm)),
            };
            let second = match self.translate(vm, last, access) {
                Walked::Gpa(b) => b,
                Walked::Stop(o) => return Ok(o),
                Walked::Unbacked => return Ok(self.inst_emul(vm)),
            };
            if (la & !0xfff) != (last & !0xfff) && second & 0xfff != last & 0xfff {
                return Ok(self.inst_emul(vm));
            }
            let split = (0x1000 - (la & 0xfff)) as usize;
            if !io.input {
                let mut b = [0u8; 8];
                let n = io.size as usize;
                let ok = vm.with_mem(|m| {
                    if split >= n {
                        m.read(first, &mut b[..n])
                    } else {
                        m.read(first, &mut b[..split]) && m.read(second & !0xfff, &mut b[split..n])
                    }
                });
                if !ok {
                    return Ok(self.inst_emul(vm));
                }
                data.value = u64::from_le_bytes(b);
            }
            data.flags |= uapi::VMM_INOUT_STRING | if io.rep { uapi::VMM_INOUT_REP } else { 0 };
            data.gpa = first;
            data.count = count;
            elem = Some(StringElem { gpa: first, addr_size });
        }
        let platform = vm.platform();
        if let Some(v) = Platform::port(platform, io.port, io.size, io.input, data.value) {
            // An in-kernel device took it: complete it as the sequencer
            // would have.
            self.complete_io(vm, io, elem, v)?;
            return Ok(Outcome::Reenter);
        }
        self.pending = Pending::Io { io, elem };
        let data = data.to_data();
        Ok(Outcome::ToUser(VmmExit { reason: exit::INOUT, rip, data, ..VmmExit::ZERO }))
    }

    pub(super) fn seg_base(&self, seg: Seg) -> u64 {
        let id = match seg {
            Seg::Es => reg::ES,
            Seg::Cs => reg::CS,
            Seg::Ss => reg::SS,
            Seg::Ds => reg::DS,
            Seg::Fs => reg::FS,
            Seg::Gs => reg::GS,
        };
        if self.mode() == CpuMode::Long64 && !matches!(seg, Seg::Fs | Seg::Gs) {
            return 0;
        }
        self.hw.get_desc(id).map_or(0, |d| d.base)
    }

    /// An `INST_EMUL` exit for the instruction at RIP.
    pub(super) fn inst_emul(&mut self, vm: &Vm) -> Outcome {
        Outcome::ToUser(match self.fetch(vm) {
            Err(e) => e,
            // Decodable but not completable (MMIO behind a string
            // operand): the sequencer gets the exit all the same.
            Ok(_) => VmmExit { reason: exit::INST_EMUL, rip: self.rip(), ..VmmExit::ZERO },
        })
    }

    /// Applies the sequencer's completion of the pending exit, and says
    /// what follows (a completed MMIO read may need another exit).
    pub(super) fn complete(
        &mut self,
        vm: &Vm,
        entry: &uapi::VmmEntry,
        apic: &mut ApicPage<'_>,
    ) -> Result<Outcome> {
        if entry.cmd == uapi::VMM_ENTRY_RUN && entry.value != 0 {
            return Err(EINVAL);
        }
        match (entry.cmd, self.pending) {
            (uapi::VMM_ENTRY_RUN | uapi::VMM_ENTRY_COMPLETE, Pending::Mmio) => {
                let complete = entry.cmd == uapi::VMM_ENTRY_COMPLETE;
                return self.complete_mmio(vm, complete, entry.value, apic);
            }
            (uapi::VMM_ENTRY_RUN, _) => {}
            (uapi::VMM_ENTRY_COMPLETE, Pending::Io { io, elem }) => {
                self.complete_io(vm, io, elem, entry.value)?
            }
            (uapi::VMM_ENTRY_COMPLETE, Pending::Rdmsr { next_rip, .. }) => {
                self.set_edx_eax(entry.value);
                self.hw.set_rip(next_rip);
            }
            (uapi::VMM_ENTRY_COMPLETE, Pending::Wrmsr { next_rip }) => self.hw.set_rip(next_rip),
            (uapi::VMM_ENTRY_INJECT_GP, Pending::Rdmsr { .. } | Pending::Wrmsr { .. }) => {
                self.hw.inject(Event::GP0)
            }
            _ => return Err(EINVAL),
        }
        self.pending = Pending::None;
        Ok(Outcome::Reenter)
    }

    pub(super) fn complete_io(
        &mut self,
        vm: &Vm,
        io: IoExit,
        elem: Option<StringElem>,
        value: u64,
    ) -> Result {
        let mask = size_mask(io.size);
        let Some(StringElem { gpa, addr_size }) = elem else {
            if io.input {
                let rax = self.gpr(reg::RAX);
                let v = if io.size == 4 { value & mask } else { (rax & !mask) | (value & mask) };
                self.hw.set(reg::RAX, v)?;
            }
            self.hw.set_rip(io.next_rip);
            return Ok(());
        };
        if io.input {
            let bytes = value.to_le_bytes();
            let n = io.size as usize;
            let split = (0x1000 - (gpa & 0xfff)) as usize;
            // The element was translated at the exit; a write to its page
            // (or two) completes it. The second page, if any, was checked
            // then; translate its start again now.
            vm.with_mem(|m| {
                if split >= n {
                    m.write(gpa, &bytes[..n]);
                } else {
                    m.write(gpa, &bytes[..split]);
                }
            });
            if split < n {
                let la =
                    self.seg_base(Seg::Es).wrapping_add(self.gpr(reg::RDI) & size_mask(addr_size));
                let rest = la.wrapping_add(split as u64);
                if let Walked::Gpa(g2) = self.translate(vm, rest, Access::Write) {
                    vm.with_mem(|m| m.write(g2, &bytes[split..n]));
                }
            }
        }
        let df = self.gpr(reg::RFLAGS) & rflags::DF != 0;
        let step = u64::from(io.size);
        let idx = if io.input { reg::RDI } else { reg::RSI };
        let moved =
            if df { self.gpr(idx).wrapping_sub(step) } else { self.gpr(idx).wrapping_add(step) };
        self.hw.set(idx, with_addr_size(self.gpr(idx), moved, addr_size))?;
        let mut done = true;
        if io.rep {
            let rcx = self.gpr(reg::RCX);
            let left = with_addr_size(rcx, rcx.wrapping_sub(1), addr_size);
            self.hw.set(reg::RCX, left)?;
            done = left & size_mask(addr_size) == 0;
        }
        if done {
            self.hw.set_rip(io.next_rip);
        }
        Ok(())
    }
}

/// All-ones of `size` bytes.
fn size_mask(size: u8) -> u64 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// The register value after writing `new` with address size `size`: 16-bit
/// writes keep the upper bits, 32-bit writes zero-extend.
fn with_addr_size(old: u64, new: u64, size: u8) -> u64 {
    match size {
        2 => (old & !0xffff) | (new & 0xffff),
        4 => new & 0xffff_ffff,
        _ => new,
    }
}
