// SPDX-License-Identifier: GPL-2.0

//! String instructions: one iteration at a time, committed per iteration, with
//! REP bounded by [`super::Config::rep_budget`].

use super::{
    super::x86::regs::rflags::{DF, ZF},
    alu, le, mask, to_le, Alu, Cpu, Exec, Memory, Op, Reg, Rep, Seg, Step, Use, R, RAX, RCX, RDI,
    RDX, RSI,
};

impl<C: Cpu, M: Memory> Exec<'_, C, M> {
    // ----- string instructions -----

    /// rCX, rSI or rDI as the address size sees it.
    fn areg(&self, num: u8) -> u64 {
        self.regs.get(num) & mask(self.insn.addr_size)
    }

    /// Sets `num` to `v` at the address size: 32-bit writes zero-extend,
    /// 16-bit writes keep bits 63:16.
    fn set_areg(&mut self, num: u8, v: u64) {
        self.regs.put_sized(num, self.insn.addr_size, v);
    }

    pub(super) fn string(&mut self) -> R<Step, M::Stop> {
        let insn = self.insn;
        if insn.rep == Rep::None {
            self.string_once()?;
            self.advance();
            return Ok(Step::Done);
        }
        let budget = self.cfg.rep_budget.max(1);
        for _ in 0..budget {
            if self.areg(RCX) == 0 {
                // Only a count that was zero from the start gets here.
                self.zero_count();
                self.advance();
                return Ok(Step::Done);
            }
            let before = self.regs;
            if let Err(e) = self.string_once() {
                self.regs = before;
                return Err(e);
            }
            let count = self.areg(RCX).wrapping_sub(1);
            self.set_areg(RCX, count);
            let zf = self.regs.rflags & ZF != 0;
            let stop = match (insn.op, insn.rep) {
                (Op::Cmps | Op::Scas, Rep::Rep) => !zf,
                (Op::Cmps | Op::Scas, Rep::Repne) => zf,
                _ => false,
            };
            if stop || self.areg(RCX) == 0 {
                self.advance();
                return Ok(Step::Done);
            }
        }
        Ok(Step::Partial)
    }

    /// What a REP string instruction with a zero count still writes: the
    /// count register, and for `movs` and `stos` the index registers, at
    /// the address size, unchanged. Only a 32-bit address size makes this
    /// visible (bits 63:32 are cleared), which the Intel host of
    /// `emul/native` does; `cmps`, `scas` and `lods` leave rSI and rDI
    /// alone. `ins` and `outs` (not testable from user mode) are taken to
    /// behave like `stos` and `lods`.
    fn zero_count(&mut self) {
        self.set_areg(RCX, 0);
        if matches!(self.insn.op, Op::Movs) {
            self.set_areg(RSI, self.areg(RSI));
        }
        if matches!(self.insn.op, Op::Movs | Op::Stos | Op::Ins) {
            self.set_areg(RDI, self.areg(RDI));
        }
    }

    /// One iteration, without the count.
    fn string_once(&mut self) -> R<(), M::Stop> {
        let insn = self.insn;
        let size = insn.op_size;
        let n = usize::from(size);
        let step = if self.regs.rflags & DF != 0 { -i64::from(size) } else { i64::from(size) };
        let src_seg = insn.seg.unwrap_or(Seg::Ds);
        let si = self.areg(RSI);
        let di = self.areg(RDI);
        let port = (self.regs.get(RDX) & 0xffff) as u16;
        let acc = Reg::Gpr { num: RAX, size };
        let mut buf = [0u8; 8];
        let (mut adv_si, mut adv_di) = (false, false);
        match insn.op {
            Op::Movs => {
                let src = self.la(src_seg, si, size, Use::Read)?;
                let dst = self.la(Seg::Es, di, size, Use::Write)?;
                self.mem.read(src, &mut buf[..n], false)?;
                self.mem.write(dst, &buf[..n])?;
                (adv_si, adv_di) = (true, true);
            }
            Op::Stos => {
                let dst = self.la(Seg::Es, di, size, Use::Write)?;
                let v = self.reg_read(acc);
                self.mem.write(dst, &to_le(v, size)[..n])?;
                adv_di = true;
            }
            Op::Lods => {
                let src = self.la(src_seg, si, size, Use::Read)?;
                self.mem.read(src, &mut buf[..n], false)?;
                self.reg_write(acc, le(&buf[..n]));
                adv_si = true;
            }
            Op::Cmps | Op::Scas => {
                let a = if insn.op == Op::Cmps {
                    let src = self.la(src_seg, si, size, Use::Read)?;
                    self.mem.read(src, &mut buf[..n], false)?;
                    adv_si = true;
                    le(&buf[..n])
                } else {
                    self.reg_read(acc)
                };
                let dst = self.la(Seg::Es, di, size, Use::Read)?;
                let mut b = [0u8; 8];
                self.mem.read(dst, &mut b[..n], false)?;
                adv_di = true;
                let (_, f) = alu::alu(Alu::Cmp, a, le(&b[..n]), size, self.regs.rflags);
                self.regs.rflags = f;
            }
            Op::Ins => {
                let dst = self.la(Seg::Es, di, size, Use::Write)?;
                self.mem.check(dst, n, true)?;
                self.mem.port_in(port, &mut buf[..n])?;
                self.mem.write(dst, &buf[..n])?;
                adv_di = true;
            }
            Op::Outs => {
                let src = self.la(src_seg, si, size, Use::Read)?;
                self.mem.read(src, &mut buf[..n], false)?;
                self.mem.port_out(port, &buf[..n])?;
                adv_si = true;
            }
            _ => {}
        }
        if adv_si {
            self.set_areg(RSI, si.wrapping_add(step as u64));
        }
        if adv_di {
            self.set_areg(RDI, di.wrapping_add(step as u64));
        }
        Ok(())
    }
}
