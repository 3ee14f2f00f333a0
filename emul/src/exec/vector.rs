// SPDX-License-Identifier: GPL-2.0

//! The SSE and AVX moves: feature checks (#UD, #NM), alignment (#GP), and
//! which bits of the destination register survive.

use super::{
    super::x86::regs::{cr0, cr4},
    le, Cpu, Exception, Exec, Memory, Operand, Reg, Use, VecMove, R,
};

impl<C: Cpu, M: Memory> Exec<'_, C, M> {
    // ----- vector moves -----

    pub(super) fn vec_move(&mut self, kind: VecMove) -> R<(), M::Stop> {
        let insn = self.insn;
        let cr0 = self.cpu.cr(0);
        let cr4 = self.cpu.cr(4);
        if insn.vex {
            if cr4 & cr4::OSXSAVE == 0 || self.cpu.xcr0() & 0b110 != 0b110 {
                return Err(Exception::Ud.into());
            }
            let ymm =
                insn.operands.iter().any(|o| matches!(o, Operand::Reg(Reg::Vec { size: 32, .. })));
            if ymm && self.cpu.xcr0() & 0b100 == 0 {
                return Err(Exception::Ud.into());
            }
        } else if cr0 & cr0::EM != 0 || cr4 & cr4::OSFXSR == 0 {
            return Err(Exception::Ud.into());
        }
        if cr0 & cr0::TS != 0 {
            return Err(Exception::Nm.into());
        }
        let (dst, src) = (insn.operands[0], insn.operands[1]);
        // The bytes moved: the memory size, or the narrower register.
        let width = match kind {
            VecMove::Movd => insn.op_size,
            VecMove::Movq => 8,
            VecMove::Aligned | VecMove::Unaligned => insn.op_size,
        };
        let n = usize::from(width);
        let mut data = [0u8; 32];
        match src {
            Operand::Mem(m) => {
                let la = self.mem_la(&m, width, Use::Read)?;
                if kind == VecMove::Aligned && la % u64::from(width.max(1)) != 0 {
                    return Err(Exception::Gp(0).into());
                }
                self.mem.read(la, &mut data[..n], false)?;
            }
            Operand::Reg(Reg::Vec { num, .. }) => data = self.cpu.vec(num),
            Operand::Reg(r) => {
                let v = self.reg_read(r).to_le_bytes();
                for (d, s) in data.iter_mut().zip(v) {
                    *d = s;
                }
            }
            _ => {}
        }
        match dst {
            Operand::Mem(m) => {
                let la = self.mem_la(&m, width, Use::Write)?;
                if kind == VecMove::Aligned && la % u64::from(width.max(1)) != 0 {
                    return Err(Exception::Gp(0).into());
                }
                self.mem.write(la, &data[..n])?;
            }
            Operand::Reg(Reg::Vec { num, size }) => {
                let mut v = self.cpu.vec(num);
                // Bytes past what was moved: zero up to 127 for movd/movq
                // loads, up to 255 for VEX; legacy SSE keeps 255:128.
                let keep_from = if insn.vex { 32 } else { 16 };
                let copy = match kind {
                    VecMove::Movd | VecMove::Movq => n,
                    _ => usize::from(size),
                };
                for (i, b) in v.iter_mut().enumerate() {
                    if i < copy {
                        *b = data.get(i).copied().unwrap_or(0);
                    } else if i < keep_from {
                        *b = 0;
                    }
                }
                self.vec = Some((num, v));
            }
            Operand::Reg(r) => self.reg_write(r, le(&data[..n.min(8)])),
            _ => {}
        }
        Ok(())
    }
}
