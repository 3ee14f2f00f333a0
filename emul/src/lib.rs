// SPDX-License-Identifier: GPL-2.0

//! The instruction emulator: decode the instruction that touched MMIO (or
//! that an intercept stopped on) and complete it on the guest's behalf.
//!
//! It is pure: no `unsafe`, no allocation, no hardware. It never panics
//! and never loops without bound, whatever the bytes and register values.
//! Everything it needs from the vCPU and from memory comes through three
//! traits, and every guest-visible outcome is a value:
//!
//! - [`decode()`] turns up to 15 bytes and a [`CpuMode`] into an [`Insn`]
//!   or a [`DecodeError`] that carries the bytes (for an `INST_EMUL` exit,
//!   or #UD/#GP when the CPU itself would refuse them).
//! - [`emulate`] executes an [`Insn`] against a [`Cpu`] (registers, flags,
//!   segments, control registers) and a [`Memory`] (linear-address reads,
//!   writes, compare-and-exchange and port I/O). It returns [`Step`], or an
//!   [`Error`]: an [`Exception`] to inject, or the memory callback's own
//!   `Stop` value (for example "this read needs userspace").
//! - [`Paged`] implements [`Memory`] for a guest with paging: it applies
//!   the guest's page tables ([`x86::paging`]) to each access, splits
//!   accesses at page boundaries, and hands guest-physical accesses to a
//!   [`Bus`], which the glue implements over guest RAM and MMIO handlers.
//!
//! # Ordering and restart
//!
//! An instruction reads all its memory operands before it writes any, and
//! writes memory before it changes registers, which happen together at the
//! end. So an error from a read leaves the vCPU exactly as it was: the
//! glue exits to userspace, and on return runs the same instruction
//! again, now with the read's answer at hand (as illumos `vie` does). A
//! write is the last access of an instruction; a [`Bus`] should accept it
//! (forwarding MMIO writes to userspace afterwards) rather than stop.
//! String instructions commit after each iteration, so a fault or stop in
//! iteration *n* leaves the registers as iteration *n - 1* left them, as
//! the CPU does.
//!
//! # Where it lives
//!
//! This is its own crate, next to `vlapic/` and `vmspace/`, rather than a
//! module of `src/`, because it is pure logic with its own host tests: a
//! differential decoder test against `iced-x86`, a differential execution
//! test against the host CPU (`emul/native`), and a fuzz target
//! (`emul/fuzz`), none of which belong in the kernel build. The module
//! compiles it in as `crate::emul`, like the other pure crates. It uses
//! the paging walker and the mode definitions of `x86/` instead of copies.
//!
//! Glossary: GPR = general-purpose register; EA = effective address (the
//! offset within a segment); LA = linear address; GPA = guest-physical
//! address; CPL = current privilege level; MMIO = memory-mapped I/O; REP =
//! the repeat prefixes; DF = RFLAGS.DF, the string direction; AC =
//! RFLAGS.AC; SMAP = supervisor-mode access prevention.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

#[cfg(kernel)]
use crate::x86;
#[cfg(not(kernel))]
use vmm_x86 as x86;

pub mod alu;
pub mod decode;
mod exec;
pub mod insn;
mod paged;
pub mod seg;

pub use decode::{decode, DecodeError, DecodeErrorKind};
pub use exec::{emulate, Config, Step};
pub use insn::{CpuMode, Insn, Op, Operand, Reg, Seg};
pub use paged::{Bus, Paged};
pub use seg::Segment;

/// An exception for the caller to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exception {
    /// #UD: invalid opcode.
    Ud,
    /// #NM: device not available (CR0.TS with an SSE/AVX operation).
    Nm,
    /// #SS with this error code.
    Ss(u16),
    /// #GP with this error code.
    Gp(u16),
    /// #PF at `addr` (CR2) with the error code `code`.
    Pf {
        /// The faulting linear address, for CR2.
        addr: u64,
        /// The #PF error code (`x86::paging::PF_*`).
        code: u32,
    },
    /// #AC(0): a misaligned access with alignment checking on.
    Ac,
}

impl Exception {
    /// The vector number.
    pub fn vector(&self) -> u8 {
        match self {
            Self::Ud => 6,
            Self::Nm => 7,
            Self::Ss(_) => 12,
            Self::Gp(_) => 13,
            Self::Pf { .. } => 14,
            Self::Ac => 17,
        }
    }

    /// The error code pushed with the exception, if it has one.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            Self::Ud | Self::Nm => None,
            Self::Ss(c) | Self::Gp(c) => Some(u32::from(*c)),
            Self::Pf { code, .. } => Some(*code),
            Self::Ac => Some(0),
        }
    }
}

/// Why an instruction did not complete. `S` is the memory callback's own
/// reason to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error<S> {
    /// Inject this exception; RIP stays at the instruction.
    Exception(Exception),
    /// A memory or port access stopped (for example, MMIO that userspace
    /// must complete). See the crate documentation for what was done.
    Stop(S),
    /// A page-table entry of the guest's lies in guest-physical memory that
    /// is not RAM. Nothing sensible can be emulated: treat it as an
    /// emulation failure.
    Unbacked {
        /// The entry's guest-physical address.
        gpa: u64,
    },
    /// An operation [`decode()`] knows but [`emulate`] does not execute
    /// (the intercept instructions: `cpuid`, `rdmsr`, `wrmsr`, `hlt`,
    /// `xsetbv`, `in`, `out`, which the glue completes itself); nothing
    /// was done.
    NotEmulated,
    /// The guest changed its page tables (or the memory of a locked
    /// operation) under the emulator. The instruction did nothing (page
    /// walks that lost a race may have set accessed bits, which the CPU
    /// may also do); resume the guest, which executes it again.
    Contended,
}

impl<S> From<Exception> for Error<S> {
    fn from(e: Exception) -> Self {
        Self::Exception(e)
    }
}

/// The vCPU state the emulator reads and changes. Writes take effect at
/// once; [`emulate`] makes them only when an instruction (or a string
/// iteration) completes.
pub trait Cpu {
    /// General register `num` (0-15), all 64 bits.
    fn gpr(&self, num: u8) -> u64;
    /// Sets general register `num` (0-15), all 64 bits.
    fn set_gpr(&mut self, num: u8, val: u64);
    /// RIP.
    fn rip(&self) -> u64;
    /// Sets RIP.
    fn set_rip(&mut self, val: u64);
    /// RFLAGS.
    fn rflags(&self) -> u64;
    /// Sets RFLAGS.
    fn set_rflags(&mut self, val: u64);
    /// The current privilege level, 0-3.
    fn cpl(&self) -> u8;
    /// A segment register, with its hidden part.
    fn segment(&self, seg: Seg) -> Segment;
    /// Control register CR`n` (0, 2, 3, 4 or 8).
    fn cr(&self, n: u8) -> u64;
    /// IA32_EFER.
    fn efer(&self) -> u64;
    /// XCR0.
    fn xcr0(&self) -> u64;
    /// Loads CR`n` with `val`, which [`emulate`] has already checked
    /// against the architectural rules (reserved bits, mode transitions).
    /// The glue does what the CPU does on the write (TLB flush, PDPTE
    /// load, mode switch) and may still refuse with an exception.
    fn set_cr(&mut self, n: u8, val: u64) -> Result<(), Exception>;
    /// Vector register `num` (0-15): bits 255:0 (YMM) as bytes.
    fn vec(&self, num: u8) -> [u8; 32];
    /// Sets bits 255:0 of vector register `num`. A VEX-encoded write also
    /// zeroes any bits above 255 the CPU has.
    fn set_vec(&mut self, num: u8, val: [u8; 32]);
}

/// Guest memory at linear addresses, and I/O ports. Implemented by
/// [`Paged`] for guests with page tables, and by tests directly.
pub trait Memory {
    /// The reason an access may stop.
    type Stop;
    /// Reads `buf.len()` bytes (1-32) at `la`. `write`: the instruction
    /// will write the same bytes (a read-modify-write), so the access is
    /// checked as a write.
    fn read(&mut self, la: u64, buf: &mut [u8], write: bool) -> Result<(), Error<Self::Stop>>;
    /// Writes `data` (1-32 bytes) at `la`. Either all of it is written or
    /// none (both pages are translated before either is written).
    fn write(&mut self, la: u64, data: &[u8]) -> Result<(), Error<Self::Stop>>;
    /// Checks that `len` bytes at `la` could be read (or written, when
    /// `write`), without accessing them: `ins` checks its destination
    /// before it reads the port, so that a fault does not lose the port's
    /// data, and `clflush` checks its line. The default accepts.
    fn check(&mut self, la: u64, len: usize, write: bool) -> Result<(), Error<Self::Stop>> {
        let _ = (la, len, write);
        Ok(())
    }
    /// Atomically replaces `old` with `new` (1-8 bytes) at `la`: `Ok(true)`
    /// on success, `Ok(false)` if the memory no longer held `old`.
    fn cmpxchg(&mut self, la: u64, old: &[u8], new: &[u8]) -> Result<bool, Error<Self::Stop>>;
    /// Reads `buf.len()` bytes (1, 2 or 4) from I/O port `port`.
    fn port_in(&mut self, port: u16, buf: &mut [u8]) -> Result<(), Error<Self::Stop>>;
    /// Writes `data` (1, 2 or 4 bytes) to I/O port `port`.
    fn port_out(&mut self, port: u16, data: &[u8]) -> Result<(), Error<Self::Stop>>;
}
