// SPDX-License-Identifier: GPL-2.0

//! The instructions an intercept stops on, which the glue decodes for
//! their length and prefixes when the CPU did not report them (SVM
//! without NRIP save or decode assists): `cpuid`, `rdmsr`, `wrmsr`,
//! `hlt`, `xsetbv`, and port I/O `in`/`out` (`ins`/`outs` are string
//! instructions, decoded with the others), plus the rest of group 7
//! (0F 01) that the emulator does execute (`smsw`, `lmsw`). `emulate`
//! does not execute the intercept instructions.
//!
//! Prefixes (SDM vol. 2, 2.1 and each instruction's page; APM vol. 3):
//! LOCK is #UD on all of them (checked with the other operations, after
//! the whole instruction is read); 66, 67, F2, F3, the segment overrides
//! and REX are ignored by the operation but count in the length, and are
//! reported as for any instruction. The exception is `xsetbv`, 0F 01
//! with the fixed ModRM byte D1 (mod 3, reg 2, rm 1): the SDM marks it NP,
//! and 66, F2 or F3 makes it #UD (as iced-x86 decodes it too).

use super::{Decoder, Insn, Invalid, Op, Operand, Reg, Result, Unsupported, RAX, RDX};

impl Decoder<'_> {
    /// An operation without explicit operands: its operand size is 0.
    pub(super) fn no_operands(&self, op: Op) -> Insn {
        self.new_insn(op, 0)
    }

    /// Group 7 (0F 01), the ModRM at the cursor: `smsw` (/4), `lmsw` (/6)
    /// and `xsetbv` (the fixed byte D1; REX.B does not make it another
    /// instruction). The rest is Unsupported.
    pub(super) fn group7(&mut self) -> Result<Insn> {
        let m = self.modrm()?;
        match m.ext {
            4 => {
                // smsw: memory is 16 bits, a register the operand size.
                let size = if m.md == 3 { self.sizes(false).1 } else { 2 };
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(Op::Smsw, size);
                insn.operands[0] = rm;
                Ok(insn)
            }
            6 => {
                let rm = self.rm(m, 2)?;
                let mut insn = self.new_insn(Op::Lmsw, 2);
                insn.operands[0] = rm;
                Ok(insn)
            }
            2 if m.md == 3 && m.rm & 7 == 1 => {
                self.cur.next()?;
                // NP (SDM): 66, F2 or F3 is #UD.
                if self.p.simd != 0 {
                    return Err(Invalid);
                }
                Ok(self.no_operands(Op::Xsetbv))
            }
            _ => Err(Unsupported),
        }
    }

    /// `in`/`out` (E4-E7 with an imm8 port, EC-EF with the port in DX).
    /// The low opcode bit selects AL or eAX; bit 1 selects OUT. There is
    /// no 64-bit form: REX.W leaves the operand at 32 bits.
    pub(super) fn port_io(&mut self, b: u8) -> Result<Insn> {
        let size = self.wsize(b).min(4);
        let port = if b & 0x08 == 0 {
            Operand::Imm(self.cur.uint(1)?)
        } else {
            Operand::Reg(Reg::Gpr { num: RDX, size: 2 })
        };
        let acc = Operand::Reg(Reg::Gpr { num: RAX, size });
        let out = b & 0x02 != 0;
        let mut insn = self.new_insn(if out { Op::Out } else { Op::In }, size);
        insn.operands = if out { [port, acc, Operand::None] } else { [acc, port, Operand::None] };
        Ok(insn)
    }
}
