// SPDX-License-Identifier: GPL-2.0

//! MMIO: a nested page fault on guest-physical memory that no mapping
//! covers is completed by the instruction emulator (`emul`), and each
//! access that is not RAM goes to the sequencer as an `MMIO` exit.
//!
//! The instruction is fetched and decoded once, at the fault. A read the
//! sequencer must answer stops the emulator before the instruction has
//! changed anything (the emulator reads every operand before it writes);
//! the vCPU exits with `MMIO`, and `VMM_ENTRY_COMPLETE` hands the value
//! back and runs the *same* decoded instruction again, now with the answer
//! at hand, never bytes fetched anew. A write is an instruction's last
//! access: the instruction completes, and the write reaches the sequencer
//! afterwards (as 8-byte pieces in address order when it is wider). A
//! string instruction stops at its second MMIO write, so one exit carries
//! one element. Nothing here ever asks to leave the emulator half-way
//! (illumos 13253): every stop is a value the emulator returns, before or
//! between accesses.

use kernel::{prelude::*, sync::Arc};

use super::exits::Outcome;
use super::guest::Phys;
use super::intr::ApicPage;
use super::{Pending, VcpuState};
use crate::backend::{Event, VcpuHw};
use crate::emul::{self, Bus, DecodeErrorKind, Exception, Insn, Paged, Segment};
use crate::hw::timer::Ticker;
use crate::mem::VmMem;
use crate::platform::Platform;
use crate::uapi::{self, exit, reg, ExitData, VmmExit};
use crate::vm::Vm;
use crate::x86::{insn::Seg, paging::GuestPhys, regs::CR4_VALID};

/// The widest MMIO piece: wider accesses are split into 8-byte pieces.
const PIECE: usize = 8;
/// Pieces one instruction may read or write: a 32-byte vector access that
/// a page boundary splits needs six (8, 8, 8, 4, 2, 1).
const MAX_PIECES: usize = 8;
/// String iterations run before the guest gets the CPU back.
const REP_BUDGET: u32 = 16;

/// One MMIO piece: an answered read, or a write for the sequencer.
#[derive(Clone, Copy, Debug, Default)]
struct Piece {
    gpa: u64,
    size: u8,
    value: u64,
}

/// Up to [`MAX_PIECES`] pieces.
#[derive(Clone, Copy, Debug, Default)]
struct Pieces {
    items: [Piece; MAX_PIECES],
    len: usize,
}

impl Pieces {
    fn push(&mut self, p: Piece) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = p;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    fn find(&self, gpa: u64, size: u8) -> Option<u64> {
        self.items[..self.len].iter().find(|p| p.gpa == gpa && p.size == size).map(|p| p.value)
    }
}

/// An MMIO instruction between exits. Lives in `VcpuState::mmio`.
#[derive(Clone, Copy, Debug)]
pub(super) struct MmioInsn {
    /// The instruction, decoded once at the fault.
    insn: Insn,
    /// The faulting guest-physical address (for an `INST_EMUL` exit).
    gpa: u64,
    /// Reads the sequencer answered, for this run of the instruction.
    answers: Pieces,
    /// The read the sequencer must answer next, if any.
    want: Option<(u64, u8)>,
    /// Writes for the sequencer, and how many went out already.
    writes: Pieces,
    sent: usize,
}

/// Why a guest-physical access stopped the emulator.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// A read only the sequencer can answer.
    Read { gpa: u64, size: u8 },
    /// A second MMIO write (the next string element): exit with the first.
    WriteBusy,
    /// Mapped memory that does not allow the access (a write to ROM).
    Protection { gpa: u64 },
    /// Something the sequencer must emulate: port I/O, an access wider
    /// than [`MAX_PIECES`] pieces, a locked access across an 8-byte word.
    Unsupported,
}

/// Guest-physical memory for the emulator: RAM, else an in-kernel device
/// (this vCPU's APIC page), else the sequencer.
struct MmioBus<'a, 'b> {
    mem: &'a VmMem,
    platform: &'a Arc<Ticker<Platform>>,
    apic: &'a mut ApicPage<'b>,
    answers: &'a Pieces,
    writes: &'a mut Pieces,
}

impl MmioBus<'_, '_> {
    /// Whether `gpa` is MMIO: no mapping covers it.
    fn is_mmio(&self, gpa: u64) -> bool {
        self.mem.mapping(gpa).is_none()
    }

    /// The pieces of an MMIO access of `len` bytes at `gpa`, in address
    /// order, each of 1, 2, 4 or 8 bytes: 8-byte pieces, then what is left
    /// (an operand that a page boundary split may leave 3, 5, 6 or 7).
    fn pieces(gpa: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
        let mut at = 0;
        core::iter::from_fn(move || {
            let left = len.checked_sub(at).filter(|l| *l != 0)?;
            let n = [8, 4, 2, 1].into_iter().find(|n| *n <= left.min(PIECE))?;
            let piece = (gpa + at as u64, at, n);
            at += n;
            Some(piece)
        })
    }
}

impl GuestPhys for MmioBus<'_, '_> {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        Phys(self.mem).read_u64(gpa)
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        Phys(self.mem).read_u32(gpa)
    }
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        Phys(self.mem).cmpxchg_u64(gpa, old, new)
    }
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool> {
        Phys(self.mem).cmpxchg_u32(gpa, old, new)
    }
}

impl Bus for MmioBus<'_, '_> {
    type Stop = Stop;

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), Stop> {
        if !self.is_mmio(gpa) {
            return if self.mem.read(gpa, buf) { Ok(()) } else { Err(Stop::Protection { gpa }) };
        }
        if self.apic.read(gpa, buf) || self.platform.mmio_read(gpa, buf) {
            return Ok(());
        }
        for (g, at, n) in Self::pieces(gpa, buf.len()) {
            let v = self.answers.find(g, n as u8).ok_or(Stop::Read { gpa: g, size: n as u8 })?;
            for (i, b) in buf[at..at + n].iter_mut().enumerate() {
                *b = (v >> (8 * i)) as u8;
            }
        }
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Stop> {
        if !self.is_mmio(gpa) {
            return if self.mem.write(gpa, data) { Ok(()) } else { Err(Stop::Protection { gpa }) };
        }
        if self.apic.write(gpa, data) || Platform::mmio_write(self.platform, gpa, data) {
            return Ok(());
        }
        if self.writes.len != 0 {
            return Err(Stop::WriteBusy);
        }
        for (g, at, n) in Self::pieces(gpa, data.len()) {
            let value = data[at..at + n].iter().rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
            if !self.writes.push(Piece { gpa: g, size: n as u8, value }) {
                *self.writes = Pieces::default();
                return Err(Stop::Unsupported);
            }
        }
        Ok(())
    }

    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, Stop> {
        let mut cur = [0u8; PIECE];
        let cur = cur.get_mut(..old.len()).ok_or(Stop::Unsupported)?;
        if self.is_mmio(gpa) {
            // The sequencer sees a read, then (if it matched) a write.
            self.read(gpa, cur)?;
            if cur != old {
                return Ok(false);
            }
            self.write(gpa, new)?;
            return Ok(true);
        }
        // RAM: atomically, through the aligned word that holds it.
        let base = gpa & !7;
        let shift = (gpa & 7) * 8;
        if (gpa & 7) as usize + old.len() > 8 {
            return Err(Stop::Unsupported);
        }
        let word = Phys(self.mem).read_u64(base).ok_or(Stop::Protection { gpa })?;
        let mask = if old.len() == 8 { u64::MAX } else { ((1u64 << (8 * old.len())) - 1) << shift };
        let le = |b: &[u8]| b.iter().rev().fold(0u64, |v, x| v << 8 | u64::from(*x)) << shift;
        if word & mask != le(old) {
            return Ok(false);
        }
        let swapped = self.mem.cmpxchg_u64(base, word, (word & !mask) | le(new));
        swapped.ok_or(Stop::Protection { gpa })
    }

    fn port_in(&mut self, _port: u16, _buf: &mut [u8]) -> Result<(), Stop> {
        Err(Stop::Unsupported)
    }

    fn port_out(&mut self, _port: u16, _data: &[u8]) -> Result<(), Stop> {
        Err(Stop::Unsupported)
    }
}

/// The vCPU as the emulator sees it: the backend's cached register file
/// (the VMCB, or VT-x's software copy) and the saved FPU area.
struct EmulCpu<'a>(&'a mut VcpuState);

const SEGS: [(Seg, u32); 6] = [
    (Seg::Es, reg::ES),
    (Seg::Cs, reg::CS),
    (Seg::Ss, reg::SS),
    (Seg::Ds, reg::DS),
    (Seg::Fs, reg::FS),
    (Seg::Gs, reg::GS),
];

impl emul::Cpu for EmulCpu<'_> {
    fn gpr(&self, num: u8) -> u64 {
        self.0.gpr(u32::from(num & 15))
    }
    fn set_gpr(&mut self, num: u8, val: u64) {
        // General registers take any value.
        let _ = self.0.hw.set(u32::from(num & 15), val);
    }
    fn rip(&self) -> u64 {
        self.0.rip()
    }
    fn set_rip(&mut self, val: u64) {
        self.0.hw.set_rip(val);
    }
    fn rflags(&self) -> u64 {
        self.0.gpr(reg::RFLAGS)
    }
    fn set_rflags(&mut self, val: u64) {
        // The emulator keeps the reserved bits as they were.
        let _ = self.0.hw.set(reg::RFLAGS, val);
    }
    fn cpl(&self) -> u8 {
        self.0.hw.cpl()
    }
    fn segment(&self, seg: Seg) -> Segment {
        let id = SEGS.iter().find(|(s, _)| *s == seg).map_or(reg::DS, |(_, id)| *id);
        let d = self.0.hw.get_desc(id).unwrap_or_default();
        Segment { selector: self.0.gpr(id) as u16, base: d.base, limit: d.limit, attr: d.access }
    }
    fn cr(&self, n: u8) -> u64 {
        match n {
            0 => self.0.gpr(reg::CR0),
            2 => self.0.gpr(reg::CR2),
            3 => self.0.gpr(reg::CR3),
            4 => self.0.gpr(reg::CR4),
            _ => 0,
        }
    }
    fn efer(&self) -> u64 {
        self.0.hw.efer()
    }
    fn xcr0(&self) -> u64 {
        self.0.xcr0
    }
    fn set_cr(&mut self, n: u8, val: u64) -> Result<(), Exception> {
        let id = match n {
            0 => reg::CR0,
            2 => reg::CR2,
            3 => reg::CR3,
            4 => reg::CR4,
            _ => return Err(Exception::Gp(0)),
        };
        self.0.hw.set(id, val).map_err(|_| Exception::Gp(0))
    }
    fn vec(&self, num: u8) -> [u8; 32] {
        self.0.fpu.vec(num)
    }
    fn set_vec(&mut self, num: u8, val: [u8; 32]) {
        self.0.fpu.set_vec(num, val, true);
    }
}

impl VcpuState {
    /// A nested page fault at `gpa`, which no mapping covers, by an access
    /// that is not an instruction fetch: emulate the instruction at RIP.
    pub(super) fn mmio(&mut self, vm: &Vm, gpa: u64, apic: &mut ApicPage<'_>) -> Outcome {
        let f = self.fetch_bytes(vm);
        let insn = match emul::decode(&f.bytes[..f.len], self.mode()) {
            Ok(i) => i,
            Err(e) => {
                return match (e.kind, f.fault) {
                    // The rest of the instruction is on a page the guest
                    // cannot fetch: the fault the CPU would raise.
                    (DecodeErrorKind::Truncated, Some(o)) => o,
                    (DecodeErrorKind::TooLong, _) => Outcome::Fault(Event::GP0),
                    (DecodeErrorKind::Invalid, _) => Outcome::Fault(Event::UD),
                    _ => self.inst_emul_at(&f.bytes, f.len, gpa),
                };
            }
        };
        let mut m = MmioInsn {
            insn,
            gpa,
            answers: Pieces::default(),
            want: None,
            writes: Pieces::default(),
            sent: 0,
        };
        self.run_mmio(vm, &mut m, apic)
    }

    /// Runs (or runs again) the saved instruction of `m` and decides what
    /// follows; keeps `m` in `VcpuState::mmio` when an exit must come back
    /// to it.
    fn run_mmio(&mut self, vm: &Vm, m: &mut MmioInsn, apic: &mut ApicPage<'_>) -> Outcome {
        // One string iteration per call, so that the answers belong to the
        // iteration being run: after a call that completed one, they are
        // forgotten (the next iteration's reads go to the sequencer again,
        // even of an address it already read).
        let cfg = emul::Config { rep_budget: 1, phys_bits: 52, cr4_allowed: CR4_VALID };
        let insn = m.insn;
        let mut r = Ok(emul::Step::Partial);
        for _ in 0..REP_BUDGET {
            r = vm.with_mem(|mem| {
                let mut bus = MmioBus {
                    mem,
                    platform: vm.platform(),
                    apic: &mut *apic,
                    answers: &m.answers,
                    writes: &mut m.writes,
                };
                let mut cpu = EmulCpu(self);
                let mut paged = Paged::new(&mut bus, &cpu, 52, 0, 0);
                emul::emulate(&insn, &mut cpu, &mut paged, &cfg)
            });
            if m.writes.len != 0 || !matches!(r, Ok(emul::Step::Partial)) {
                break;
            }
            m.answers = Pieces::default();
        }
        if m.writes.len != 0 {
            // Whatever came after the write (a later string element's read,
            // fault or stop) happens again when the guest re-executes the
            // instruction, which has not completed.
            m.answers = Pieces::default();
            return self.next_write(m).unwrap_or(Outcome::Reenter);
        }
        match r {
            // Done, or the budget of iterations is spent: the guest runs on
            // (and executes the rest of a string instruction again).
            Ok(_) => Outcome::Reenter,
            Err(emul::Error::Exception(Exception::Pf { addr, code })) => {
                Outcome::PageFault { cr2: addr, error: code }
            }
            Err(emul::Error::Exception(e)) => {
                Outcome::Fault(Event { vector: e.vector(), error: e.error_code() })
            }
            Err(emul::Error::Contended) => Outcome::Reenter,
            Err(emul::Error::Stop(Stop::Read { gpa, size })) => {
                m.want = Some((gpa, size));
                self.set_pending_mmio(*m);
                let d = uapi::VmmExitMmio { gpa, size: u32::from(size), ..uapi::VmmExitMmio::ZERO };
                self.to_user(exit::MMIO, d.to_data())
            }
            Err(emul::Error::Stop(Stop::Protection { gpa })) => {
                let p = uapi::VmmExitPaging {
                    gpa,
                    access: uapi::VMM_ACCESS_WRITE,
                    flags: uapi::VMM_PAGING_PROTECTION,
                    ..uapi::VmmExitPaging::ZERO
                };
                self.to_user(exit::PAGING, p.to_data())
            }
            Err(emul::Error::Stop(Stop::WriteBusy | Stop::Unsupported))
            | Err(emul::Error::Unbacked { .. } | emul::Error::NotEmulated) => {
                self.inst_emul_at(&insn.bytes, usize::from(insn.len), m.gpa)
            }
        }
    }

    /// The next write of `m` for the sequencer, or `None` when all went.
    fn next_write(&mut self, m: &mut MmioInsn) -> Option<Outcome> {
        let p = *m.writes.items[..m.writes.len].get(m.sent)?;
        m.sent += 1;
        self.set_pending_mmio(*m);
        let d = uapi::VmmExitMmio {
            gpa: p.gpa,
            size: u32::from(p.size),
            flags: uapi::VMM_MMIO_WRITE,
            data: p.value,
            ..uapi::VmmExitMmio::ZERO
        };
        Some(self.to_user(exit::MMIO, d.to_data()))
    }

    /// Applies the sequencer's answer to a pending MMIO exit: the value of
    /// a read (`complete`), or nothing for a write. `Err(EINVAL)` for a
    /// completion of the wrong kind or a value wider than the read.
    pub(super) fn complete_mmio(
        &mut self,
        vm: &Vm,
        complete: bool,
        value: u64,
        apic: &mut ApicPage<'_>,
    ) -> Result<Outcome> {
        let mut m = self.mmio.take().ok_or(EINVAL)?;
        self.pending = Pending::None;
        match (m.want, complete) {
            (Some((gpa, size)), true) => {
                if size < 8 && value >> (8 * size) != 0 {
                    self.set_pending_mmio(m);
                    return Err(EINVAL);
                }
                m.want = None;
                if !m.answers.push(Piece { gpa, size, value }) {
                    return Ok(self.inst_emul_at(&m.insn.bytes, usize::from(m.insn.len), m.gpa));
                }
                Ok(self.run_mmio(vm, &mut m, apic))
            }
            // A read left unanswered: the guest executes the instruction
            // again from its state.
            (Some(_), false) => Ok(Outcome::Reenter),
            (None, false) => Ok(self.next_write(&mut m).unwrap_or(Outcome::Reenter)),
            (None, true) => {
                self.set_pending_mmio(m);
                Err(EINVAL)
            }
        }
    }

    fn set_pending_mmio(&mut self, m: MmioInsn) {
        self.pending = Pending::Mmio;
        self.mmio = Some(m);
    }

    /// An `INST_EMUL` exit for MMIO at `gpa` with these bytes.
    fn inst_emul_at(&self, bytes: &[u8], len: usize, gpa: u64) -> Outcome {
        let mut d = uapi::VmmExitInstEmul {
            len: len.min(15) as u32,
            flags: uapi::VMM_INST_EMUL_GPA,
            gpa,
            ..uapi::VmmExitInstEmul::ZERO
        };
        for (o, b) in d.bytes.iter_mut().zip(bytes.iter().take(len)) {
            *o = *b;
        }
        self.to_user(exit::INST_EMUL, d.to_data())
    }

    fn to_user(&self, reason: u32, data: [u64; 8]) -> Outcome {
        Outcome::ToUser(VmmExit { reason, rip: self.rip(), data, ..VmmExit::ZERO })
    }
}
