// SPDX-License-Identifier: GPL-2.0

//! What instruction decoding needs to know about the CPU: the execution
//! mode ([`CpuMode`]) and the segment registers ([`Seg`]). The decoder
//! itself is `emul::decode` (the `emul/` crate), which re-exports both.
//!
//! Glossary: D = the code-segment default-size bit; L = the code-segment
//! 64-bit bit; VM = RFLAGS.VM (virtual-8086 mode).

use super::regs;

/// The execution mode, as far as decoding cares: it sets the default
/// address and operand sizes and whether REX exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuMode {
    /// Real or virtual-8086 mode: 16-bit defaults.
    Real,
    /// Protected mode, 16-bit code segment.
    Protected16,
    /// Protected mode, 32-bit code segment.
    Protected32,
    /// Compatibility mode (long mode, CS.L = 0), 16-bit code segment.
    Compat16,
    /// Compatibility mode, 32-bit code segment.
    Compat32,
    /// 64-bit mode (long mode, CS.L = 1).
    Long64,
}

impl CpuMode {
    /// The mode from CR0.PE, EFER.LMA, CS.D, CS.L and RFLAGS.VM.
    /// Virtual-8086 mode decodes like real mode; CS.L counts only when
    /// EFER.LMA is set.
    pub fn from_regs(cr0: u64, efer: u64, cs_db: bool, cs_l: bool, rflags_vm: bool) -> Self {
        let long = efer & regs::efer::LMA != 0;
        match (cr0 & regs::cr0::PE != 0 && !rflags_vm, long, cs_l, cs_db) {
            (false, ..) => Self::Real,
            (true, true, true, _) => Self::Long64,
            (true, true, false, true) => Self::Compat32,
            (true, true, false, false) => Self::Compat16,
            (true, false, _, true) => Self::Protected32,
            (true, false, _, false) => Self::Protected16,
        }
    }
}

/// A segment register, as named by a segment-override prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    /// ES (26).
    Es,
    /// CS (2E).
    Cs,
    /// SS (36).
    Ss,
    /// DS (3E).
    Ds,
    /// FS (64).
    Fs,
    /// GS (65).
    Gs,
}

#[cfg(test)]
#[path = "tests_insn.rs"]
mod tests;
