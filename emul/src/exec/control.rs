// SPDX-License-Identifier: GPL-2.0

//! Control registers: `mov` to and from CR0/2/3/4/8, `clts`, `lmsw`, `smsw`,
//! with the SDM's #GP checks before the glue sees a value.

use super::{
    super::x86::regs::{cr0, cr0_valid, cr4, efer, rflags::VM},
    Cpu, Exception, Exec, Memory, Op, Operand, Reg, R,
};

impl<C: Cpu, M: Memory> Exec<'_, C, M> {
    // ----- control registers -----

    fn long_mode_active(&self) -> bool {
        self.cpu.efer() & efer::LMA != 0
    }

    pub(super) fn control(&mut self) -> R<(), M::Stop> {
        let insn = self.insn;
        let cpl = self.cpu.cpl();
        let cr0 = self.cpu.cr(0);
        if insn.op == Op::Smsw {
            if cpl > 0 && self.cpu.cr(4) & cr4::UMIP != 0 {
                return Err(Exception::Gp(0).into());
            }
            return self.write(insn.operands[0], cr0);
        }
        // Everything else is privileged; virtual-8086 mode runs at CPL 3.
        if cpl > 0 || (cr0 & cr0::PE != 0 && self.regs.rflags & VM != 0) {
            return Err(Exception::Gp(0).into());
        }
        match insn.op {
            Op::MovFromCr => {
                let Operand::Reg(Reg::Cr(n)) = insn.operands[1] else {
                    return Err(Exception::Ud.into());
                };
                let v = self.cpu.cr(n);
                let v = if self.ctx.long { v } else { v & 0xffff_ffff };
                self.write(insn.operands[0], v)?;
            }
            Op::MovToCr => {
                let Operand::Reg(Reg::Cr(n)) = insn.operands[0] else {
                    return Err(Exception::Ud.into());
                };
                let v = self.read(insn.operands[1], false)?;
                let v = if self.ctx.long { v } else { v & 0xffff_ffff };
                let v = self.check_cr(n, v)?;
                self.cr = Some((n, v));
            }
            Op::Clts => self.cr = Some((0, cr0 & !cr0::TS)),
            Op::Lmsw => {
                let src = self.read(insn.operands[0], false)?;
                // PE can be set but not cleared; MP, EM and TS are loaded.
                let low = cr0::MP | cr0::EM | cr0::TS;
                let v = (cr0 & !low) | (src & low) | (src & cr0::PE);
                self.cr = Some((0, v));
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks a write of `v` to CR`n` (SDM "MOV—Move to/from Control
    /// Registers", vol. 3A 2.5, 9.8.5): the value to load, or #GP(0).
    fn check_cr(&self, n: u8, v: u64) -> Result<u64, Exception> {
        let gp = Err(Exception::Gp(0));
        let cr0 = self.cpu.cr(0);
        let cr4 = self.cpu.cr(4);
        let efer = self.cpu.efer();
        match n {
            0 => {
                if !cr0_valid(v) {
                    return gp;
                }
                let enabling = v & cr0::PG != 0 && cr0 & cr0::PG == 0;
                if enabling && efer & efer::LME != 0 && (cr4 & cr4::PAE == 0 || self.ctx.long) {
                    return gp;
                }
                let disabling = v & cr0::PG == 0 && cr0 & cr0::PG != 0;
                if disabling && (self.ctx.long || cr4 & cr4::PCIDE != 0) {
                    return gp;
                }
                Ok(v)
            }
            2 => Ok(v),
            3 => {
                // Bit 63 with CR4.PCIDE is a "no flush" hint, not part of
                // CR3; the emulator drops it (a flush is always correct).
                let v = if cr4 & cr4::PCIDE != 0 { v & !(1 << 63) } else { v };
                let m = u32::from(self.cfg.phys_bits.clamp(32, 52));
                if self.long_mode_active() && v >> m != 0 {
                    return gp;
                }
                Ok(v)
            }
            4 => {
                if v & !self.cfg.cr4_allowed != 0 {
                    return gp;
                }
                let lma = self.long_mode_active();
                if lma && (v & cr4::PAE == 0 || (v ^ cr4) & cr4::LA57 != 0) {
                    return gp;
                }
                let enabling_pcid = v & cr4::PCIDE != 0 && cr4 & cr4::PCIDE == 0;
                if enabling_pcid && (!lma || self.cpu.cr(3) & 0xfff != 0) {
                    return gp;
                }
                Ok(v)
            }
            8 => {
                if v >> 4 != 0 {
                    return gp;
                }
                Ok(v)
            }
            _ => Err(Exception::Ud),
        }
    }
}
