// SPDX-License-Identifier: GPL-2.0

//! The VEX prefix and the opcodes that use it or the SSE mandatory
//! prefixes: the vector moves and `bextr`.

use super::{
    CpuMode, DecodeErrorKind, Decoder, Insn, Invalid, Op, Operand, Reg, Result, Truncated,
    Unsupported, VecMove, Vex, MAX_LEN, REX_B, REX_R, REX_W, REX_X,
};

impl Decoder<'_> {
    /// C4/C5 at the cursor: a VEX prefix in 64-bit mode, and in other
    /// protected modes when the next byte has both top bits set; otherwise
    /// LES/LDS, which this emulator does not do.
    pub(super) fn vex_prefix(&mut self, first: u8) -> Result<()> {
        let next = *self.cur.bytes.get(self.cur.pos + 1).ok_or(if self.cur.pos + 1 >= MAX_LEN {
            DecodeErrorKind::TooLong
        } else {
            Truncated
        })?;
        let is_vex = match self.mode {
            CpuMode::Long64 => true,
            CpuMode::Real => false,
            _ => next >> 6 == 3,
        };
        if !is_vex {
            // les/lds: read the whole instruction (so a short input is
            // Truncated, not Unsupported), then refuse it. The pointer must
            // be in memory.
            self.cur.pos += 1;
            let m = self.modrm()?;
            if m.md == 3 {
                self.cur.next()?;
                return Err(Invalid);
            }
            self.rm(m, 4)?;
            return Err(Unsupported);
        }
        self.cur.pos += 1;
        // VEX after 66, F2, F3, F0 or REX is #UD.
        if self.p.op_size || self.p.rep.is_some() || self.p.lock || self.p.rex != 0 {
            self.cur.next()?;
            return Err(Invalid);
        }
        let b1 = self.cur.next()?;
        let (r, x, b, map, w, rest) = if first == 0xc5 {
            (b1 & 0x80 == 0, false, false, 1, false, b1)
        } else {
            let b2 = self.cur.next()?;
            (b1 & 0x80 == 0, b1 & 0x40 == 0, b1 & 0x20 == 0, b1 & 0x1f, b2 & 0x80 != 0, b2)
        };
        let long = self.long();
        let mut rex = 0;
        if long {
            rex |=
                if r { REX_R } else { 0 } | if x { REX_X } else { 0 } | if b { REX_B } else { 0 };
            rex |= if w { REX_W } else { 0 };
        }
        self.p.rex = rex;
        let vvvv = (!rest >> 3) & 0xf;
        self.p.vex = Some(Vex { map, vvvv, l: rest & 4 != 0, w });
        self.p.simd = match rest & 3 {
            0 => 0,
            1 => 0x66,
            2 => 0xf3,
            _ => 0xf2,
        };
        Ok(())
    }

    /// The SSE moves (no VEX): opcode `b` of map 0F with the mandatory
    /// prefix class in `self.p.simd`.
    pub(super) fn sse(&mut self, b: u8) -> Result<Insn> {
        self.vector(b, 16)
    }

    pub(super) fn vex_opcode(&mut self, vex: Vex, b: u8) -> Result<Insn> {
        if vex.map == 2 && b == 0xf7 && self.p.simd == 0 {
            return self.bextr(vex);
        }
        if vex.map != 1 {
            return Err(Unsupported);
        }
        // These moves take no second source: vvvv must be 1111b.
        let size = if vex.l { 32 } else { 16 };
        let insn = self.vector(b, size)?;
        if vex.vvvv != 0 {
            return Err(Invalid);
        }
        let Op::VecMove(kind) = insn.op else { return Err(Unsupported) };
        if matches!(kind, VecMove::Movd | VecMove::Movq) && vex.l {
            return Err(Invalid);
        }
        Ok(insn)
    }

    /// `bextr r, r/m, r`: VEX.L must be 0; VEX.W selects 64 bits in
    /// 64-bit mode (and is ignored elsewhere); vvvv names the control
    /// register.
    pub(super) fn bextr(&mut self, vex: Vex) -> Result<Insn> {
        let size = if vex.w && self.long() { 8 } else { 4 };
        let m = self.modrm()?;
        let rm = self.rm(m, size)?;
        if vex.l {
            return Err(Invalid);
        }
        let ctl = if self.long() { vex.vvvv } else { vex.vvvv & 7 };
        let mut insn = self.new_insn(Op::Bextr, size);
        insn.operands = [
            Operand::Reg(Reg::Gpr { num: m.reg, size }),
            rm,
            Operand::Reg(Reg::Gpr { num: ctl, size }),
        ];
        Ok(insn)
    }

    /// A vector move of `size` (16, or 32 for VEX.256) with opcode `b` of
    /// map 0F.
    pub(super) fn vector(&mut self, b: u8, size: u8) -> Result<Insn> {
        use VecMove::{Aligned, Movd, Movq, Unaligned};
        let simd = self.p.simd;
        // (kind, store: the memory/rm operand is the destination, rm must
        // be memory).
        let (kind, store, mem_only) = match (b, simd) {
            (0x10, 0 | 0x66) => (Unaligned, false, false),
            (0x11, 0 | 0x66) => (Unaligned, true, false),
            (0x28, 0 | 0x66) => (Aligned, false, false),
            (0x29, 0 | 0x66) => (Aligned, true, false),
            (0x2b, 0 | 0x66) => (Aligned, true, true),
            (0x6e, 0x66) => (Movd, false, false),
            (0x7e, 0x66) => (Movd, true, false),
            (0x6f, 0x66) => (Aligned, false, false),
            (0x7f, 0x66) => (Aligned, true, false),
            (0x6f, 0xf3) => (Unaligned, false, false),
            (0x7f, 0xf3) => (Unaligned, true, false),
            (0x7e, 0xf3) => (Movq, false, false),
            (0xd6, 0x66) => (Movq, true, false),
            (0xe7, 0x66) => (Aligned, true, true),
            _ => return Err(Unsupported),
        };
        let m = self.modrm()?;
        let xmm = |num: u8, size: u8| Operand::Reg(Reg::Vec { num, size });
        let (rm, reg, op_size) = match kind {
            Movd => {
                let w = self.p.rex & REX_W != 0 || (self.long() && self.p.vex.is_some_and(|v| v.w));
                let size = if w && self.long() { 8 } else { 4 };
                let rm = if m.md == 3 {
                    self.cur.next()?;
                    Operand::Reg(Reg::Gpr { num: m.rm, size })
                } else {
                    self.rm(m, size)?
                };
                (rm, xmm(m.reg, 16), size)
            }
            Movq => {
                let rm = if m.md == 3 {
                    self.cur.next()?;
                    xmm(m.rm, 16)
                } else {
                    self.rm(m, 8)?
                };
                (rm, xmm(m.reg, 16), 8)
            }
            Aligned | Unaligned => {
                let rm = if m.md == 3 {
                    if mem_only {
                        self.cur.next()?;
                        return Err(Invalid);
                    }
                    self.cur.next()?;
                    xmm(m.rm, size)
                } else {
                    self.rm(m, size)?
                };
                (rm, xmm(m.reg, size), size)
            }
        };
        let mut insn = self.new_insn(Op::VecMove(kind), op_size);
        insn.operands = if store { [rm, reg, Operand::None] } else { [reg, rm, Operand::None] };
        Ok(insn)
    }
}
