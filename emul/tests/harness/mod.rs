// SPDX-License-Identifier: GPL-2.0

//! Helpers for the per-topic opcode-form tests: a [`T`] bundles a
//! [`TestCpu`], a [`FlatMem`] and the decode mode, runs one byte string and
//! checks what changed. RFLAGS bits and register numbers are spelled out
//! here, by hand, so that no expectation comes from the emulator's own
//! helpers.
//!
//! Every includer declares it `pub mod`, so that what one test binary
//! does not use is not dead code there; `doc(hidden)` says that it is a
//! test helper, not an API to document.

#![doc(hidden)]

use super::common::{Access, FlatMem, Stop, TestCpu};
use vmm_emul::{
    decode, emulate, Config, CpuMode, DecodeErrorKind, Error, Exception, Insn, Seg, Step,
};

/// RFLAGS.CF.
pub const CF: u64 = 1 << 0;
/// RFLAGS bit 1, always set.
pub const FIXED: u64 = 1 << 1;
/// RFLAGS.PF.
pub const PF: u64 = 1 << 2;
/// RFLAGS.AF.
pub const AF: u64 = 1 << 4;
/// RFLAGS.ZF.
pub const ZF: u64 = 1 << 6;
/// RFLAGS.SF.
pub const SF: u64 = 1 << 7;
/// RFLAGS.DF.
pub const DF: u64 = 1 << 10;
/// RFLAGS.OF.
pub const OF: u64 = 1 << 11;
/// RFLAGS.VM.
pub const VM: u64 = 1 << 17;
/// RFLAGS.AC.
pub const AC: u64 = 1 << 18;
/// The six status flags.
pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;

pub const RAX: usize = 0;
pub const RCX: usize = 1;
pub const RDX: usize = 2;
pub const RBX: usize = 3;
pub const RSP: usize = 4;
pub const RBP: usize = 5;
pub const RSI: usize = 6;
pub const RDI: usize = 7;
pub const R8: usize = 8;
pub const R9: usize = 9;
pub const R10: usize = 10;
pub const R11: usize = 11;
pub const R12: usize = 12;
pub const R13: usize = 13;
pub const R14: usize = 14;
pub const R15: usize = 15;

/// What `emulate` returns with [`FlatMem`].
pub type Outcome = Result<Step, Error<Stop>>;

/// `Err(Error::Exception(e))`.
pub fn exc(e: Exception) -> Outcome {
    Err(Error::Exception(e))
}

/// Decodes `bytes` for `mode` and checks that all of them are the one
/// instruction.
pub fn dec(bytes: &[u8], mode: CpuMode) -> Insn {
    let insn =
        decode(bytes, mode).unwrap_or_else(|e| panic!("decode {bytes:02x?} ({mode:?}): {e:?}"));
    assert_eq!(usize::from(insn.len), bytes.len(), "length of {bytes:02x?}");
    insn
}

/// The decode error kind for `bytes` in `mode`.
pub fn dec_err(bytes: &[u8], mode: CpuMode) -> DecodeErrorKind {
    match decode(bytes, mode) {
        Ok(i) => panic!("{bytes:02x?} ({mode:?}) decoded as {:?}", i.op),
        Err(e) => {
            assert_eq!(e.bytes(), bytes.get(..15).unwrap_or(bytes), "bytes carried by the error");
            e.kind
        }
    }
}

/// A vCPU, memory and decode mode for one test.
#[derive(Clone, Debug)]
pub struct T {
    pub mode: CpuMode,
    pub cpu: TestCpu,
    pub mem: FlatMem,
    pub cfg: Config,
    /// The vCPU before the last [`T::run`].
    pub before: TestCpu,
    /// How many log entries there were before the last [`T::run`].
    pub log_start: usize,
}

impl T {
    pub fn new(mode: CpuMode, cpu: TestCpu) -> Self {
        Self {
            mode,
            before: cpu.clone(),
            cpu,
            mem: FlatMem::new(),
            cfg: Config::default(),
            log_start: 0,
        }
    }

    /// 64-bit mode, CPL 0.
    pub fn long() -> Self {
        Self::new(CpuMode::Long64, TestCpu::long())
    }

    /// 32-bit protected mode, flat segments.
    pub fn prot32() -> Self {
        Self::new(CpuMode::Protected32, TestCpu::prot32())
    }

    /// 16-bit protected mode, 64 KiB segments at base 0.
    pub fn prot16() -> Self {
        Self::new(CpuMode::Protected16, TestCpu::prot16())
    }

    /// Real mode, all segments at 0.
    pub fn real() -> Self {
        Self::new(CpuMode::Real, TestCpu::real())
    }

    /// Sets general register `n`.
    pub fn reg(mut self, n: usize, v: u64) -> Self {
        self.cpu.gpr[n] = v;
        self
    }

    /// Stores the low `size` bytes of `v` at `la`.
    pub fn mem(mut self, la: u64, v: u64, size: usize) -> Self {
        self.mem.poke_u64(la, v, size);
        self
    }

    /// Sets RFLAGS to `f` (bit 1 is added).
    pub fn flags(mut self, f: u64) -> Self {
        self.cpu.rflags = f | FIXED;
        self
    }

    /// Any other change to the vCPU.
    pub fn with(mut self, f: impl FnOnce(&mut TestCpu)) -> Self {
        f(&mut self.cpu);
        self
    }

    /// Sets the base of segment `s`.
    pub fn seg_base(mut self, s: Seg, base: u64) -> Self {
        self.cpu.seg_mut(s).base = base;
        self
    }

    /// Decodes and runs `bytes`.
    pub fn run(&mut self, bytes: &[u8]) -> Outcome {
        let insn = dec(bytes, self.mode);
        self.exec(&insn)
    }

    /// Runs an already decoded instruction.
    pub fn exec(&mut self, insn: &Insn) -> Outcome {
        self.before = self.cpu.clone();
        self.log_start = self.mem.log.len();
        emulate(insn, &mut self.cpu, &mut self.mem, &self.cfg)
    }

    /// Runs `bytes`, which must complete, and checks RIP moved past them.
    pub fn done(mut self, bytes: &[u8]) -> Self {
        let r = self.run(bytes);
        assert_eq!(r, Ok(Step::Done), "{bytes:02x?}");
        assert_eq!(self.cpu.rip, self.before.rip + bytes.len() as u64, "RIP after {bytes:02x?}");
        self
    }

    /// Runs `bytes`, which must raise `e` and change neither the vCPU nor
    /// memory.
    pub fn fault(mut self, bytes: &[u8], e: Exception) -> Self {
        let mem = self.mem.bytes.clone();
        let r = self.run(bytes);
        assert_eq!(r, exc(e), "{bytes:02x?}");
        assert_eq!(self.cpu, self.before, "vCPU changed by a faulting {bytes:02x?}");
        assert_eq!(self.mem.bytes, mem, "memory changed by a faulting {bytes:02x?}");
        assert!(self.writes().is_empty(), "{bytes:02x?} wrote: {:?}", self.writes());
        self
    }

    /// Checks general registers: those listed have the given values, all
    /// others are as before the last run.
    pub fn regs(&self, want: &[(usize, u64)]) -> &Self {
        for n in 0..16 {
            let expect =
                want.iter().rev().find(|(r, _)| *r == n).map_or(self.before.gpr[n], |(_, v)| *v);
            assert_eq!(
                self.cpu.gpr[n], expect,
                "gpr {n}: got {:#x}, want {expect:#x}",
                self.cpu.gpr[n]
            );
        }
        self
    }

    /// Checks RFLAGS (bit 1 is added to `f`).
    pub fn rflags(&self, f: u64) -> &Self {
        assert_eq!(
            self.cpu.rflags,
            f | FIXED,
            "rflags: got {:#x}, want {:#x}",
            self.cpu.rflags,
            f | FIXED
        );
        self
    }

    /// Checks the `size` bytes at `la`.
    pub fn at(&self, la: u64, size: usize, v: u64) -> &Self {
        let got = self.mem.peek_u64(la, size);
        assert_eq!(got, v, "memory at {la:#x}: got {got:#x}, want {v:#x}");
        self
    }

    /// General register `n`.
    pub fn gpr(&self, n: usize) -> u64 {
        self.cpu.gpr[n]
    }

    /// The accesses of the last run.
    pub fn accesses(&self) -> &[Access] {
        &self.mem.log[self.log_start..]
    }

    /// The writes and compare-exchanges of the last run.
    pub fn writes(&self) -> Vec<Access> {
        self.accesses()
            .iter()
            .filter(|a| matches!(a, Access::Write { .. } | Access::Cmpxchg { .. }))
            .cloned()
            .collect()
    }

    /// The linear addresses the last run read.
    pub fn read_las(&self) -> Vec<u64> {
        self.accesses()
            .iter()
            .filter_map(|a| match a {
                Access::Read { la, .. } => Some(*la),
                _ => None,
            })
            .collect()
    }

    /// The linear addresses the last run wrote (plain writes and
    /// compare-exchanges).
    pub fn write_las(&self) -> Vec<u64> {
        self.writes()
            .iter()
            .filter_map(|a| match a {
                Access::Write { la, .. } | Access::Cmpxchg { la, .. } => Some(*la),
                _ => None,
            })
            .collect()
    }
}
