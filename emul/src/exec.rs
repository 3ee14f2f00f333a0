// SPDX-License-Identifier: GPL-2.0

//! Execution of a decoded [`Insn`] against a [`Cpu`] and a [`Memory`].
//!
//! The general registers, RFLAGS and RIP are copied into a [`Regs`] at the
//! start, changed there, and written back only when the instruction (or a
//! string iteration) completes; see the crate documentation for the
//! ordering rules this gives.

use super::{
    alu::{self, mask, sext},
    insn::{
        Alu, BitOp, CpuMode, Insn, Mem, Op, Operand, Reg, Rep, Seg, VecMove, RAX, RCX, RDI, RDX,
        RSI, RSP,
    },
    seg::{self, Ctx, Use},
    x86::regs::{
        cr0, cr4,
        rflags::{AC, VM, ZF},
    },
    Cpu, Error, Exception, Memory,
};

/// How the emulator is set up for a VM.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The most iterations of a REP string instruction one [`emulate`]
    /// call runs before returning [`Step::Partial`] (at least 1 is run).
    pub rep_budget: u32,
    /// The guest's MAXPHYADDR: CR3 bits at and above it are reserved.
    pub phys_bits: u8,
    /// The CR4 bits the guest may set (from its CPUID); others #GP.
    pub cr4_allowed: u64,
}

impl Default for Config {
    fn default() -> Self {
        // CR4 bits 0-12 (VME to LA57), 16 FSGSBASE, 17 PCIDE, 18 OSXSAVE,
        // 20 SMEP, 21 SMAP and 22 PKE; not 13 VMXE, 14 SMXE, 19 KL, nor
        // the reserved 15. The glue replaces this with what the guest's
        // CPUID offers.
        Self { rep_budget: 64, phys_bits: 46, cr4_allowed: 0x1fff | (0x7 << 16) | (0x7 << 20) }
    }
}

/// How an instruction ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It completed; RIP points past it.
    Done,
    /// A REP string instruction ran [`Config::rep_budget`] iterations and
    /// has more to do: its registers are updated and RIP is unchanged, so
    /// the guest executes it again (and can take interrupts in between).
    Partial,
}

/// The general registers, RFLAGS and RIP, copied in and written back.
#[derive(Clone, Copy)]
struct Regs {
    gpr: [u64; 16],
    dirty: u16,
    rflags: u64,
    rip: u64,
}

impl Regs {
    fn load(cpu: &impl Cpu) -> Self {
        let mut gpr = [0; 16];
        for (i, r) in (0u8..).zip(gpr.iter_mut()) {
            *r = cpu.gpr(i);
        }
        Self { gpr, dirty: 0, rflags: cpu.rflags(), rip: cpu.rip() }
    }

    fn get(&self, num: u8) -> u64 {
        self.gpr[usize::from(num & 15)]
    }

    fn put(&mut self, num: u8, val: u64) {
        self.gpr[usize::from(num & 15)] = val;
        self.dirty |= 1 << (num & 15);
    }

    /// Writes the low `size` bytes of `num` with the architectural rule: a
    /// 4-byte write zero-extends, 1- and 2-byte writes keep the rest.
    fn put_sized(&mut self, num: u8, size: u8, val: u64) {
        let v = match size {
            4 => val & 0xffff_ffff,
            8 => val,
            _ => (self.get(num) & !mask(size)) | (val & mask(size)),
        };
        self.put(num, v);
    }

    fn store(&self, cpu: &mut impl Cpu, from: &Regs) {
        for i in 0u8..16 {
            if self.dirty & (1 << i) != 0 {
                cpu.set_gpr(i, self.get(i));
            }
        }
        if self.rflags != from.rflags {
            cpu.set_rflags(self.rflags);
        }
        if self.rip != from.rip {
            cpu.set_rip(self.rip);
        }
    }
}

/// Executes `insn`, which the caller decoded from the bytes at RIP.
pub fn emulate<C: Cpu, M: Memory>(
    insn: &Insn,
    cpu: &mut C,
    mem: &mut M,
    cfg: &Config,
) -> Result<Step, Error<M::Stop>> {
    let start = Regs::load(cpu);
    let ctx = Ctx {
        long: insn.mode == CpuMode::Long64,
        protected: cpu.cr(0) & cr0::PE != 0 && start.rflags & VM == 0,
        la57: cpu.cr(4) & cr4::LA57 != 0,
    };
    let mut ex = Exec { insn, cpu, mem, cfg, regs: start, ctx, cr: None, vec: None };
    let r = ex.run();
    if r.is_err() {
        // A string instruction keeps the iterations that completed
        // (`ex.regs` was reset to the last one); anything else changed
        // nothing.
        if insn.is_string() {
            ex.regs.store(ex.cpu, &start);
        }
        return r;
    }
    if let Some((n, v)) = ex.cr {
        ex.cpu.set_cr(n, v)?;
    }
    if let Some((n, v)) = ex.vec {
        ex.cpu.set_vec(n, v);
    }
    ex.regs.store(ex.cpu, &start);
    r
}

struct Exec<'a, C, M> {
    insn: &'a Insn,
    cpu: &'a mut C,
    mem: &'a mut M,
    cfg: &'a Config,
    regs: Regs,
    ctx: Ctx,
    /// A control-register write to make at the end.
    cr: Option<(u8, u64)>,
    /// A vector-register write to make at the end.
    vec: Option<(u8, [u8; 32])>,
}

type R<T, S> = Result<T, Error<S>>;

mod control;
mod string;
mod vector;

fn le(buf: &[u8]) -> u64 {
    buf.iter().rev().fold(0, |v, b| (v << 8) | u64::from(*b))
}

fn to_le(v: u64, size: u8) -> [u8; 8] {
    let b = v.to_le_bytes();
    let mut out = [0; 8];
    for (o, i) in out.iter_mut().zip(b).take(usize::from(size.min(8))) {
        *o = i;
    }
    out
}

impl<C: Cpu, M: Memory> Exec<'_, C, M> {
    fn run(&mut self) -> R<Step, M::Stop> {
        let insn = self.insn;
        if insn.is_string() {
            return self.string();
        }
        match insn.op {
            Op::Mov | Op::Movnti => {
                let v = self.read(insn.operands[1], false)?;
                self.write(insn.operands[0], v)?;
            }
            Op::Movzx => {
                let v = self.read(insn.operands[1], false)?;
                self.write(insn.operands[0], v)?;
            }
            Op::Movsx | Op::Movsxd => {
                let src = insn.operands[1];
                let v = self.read(src, false)?;
                self.write(insn.operands[0], sext(v, operand_size(src, insn.op_size)))?;
            }
            Op::Movbe => {
                let size = insn.op_size;
                let v = self.read(insn.operands[1], false)?;
                let swapped = v.swap_bytes() >> (64 - 8 * u32::from(size));
                self.write(insn.operands[0], swapped)?;
            }
            Op::Xchg => {
                let (a, b) = (insn.operands[0], insn.operands[1]);
                let va = self.read(a, true)?;
                let vb = self.read(b, false)?;
                self.write_rmw(a, va, vb, true)?;
                self.write(b, va)?;
            }
            Op::Alu(op) => {
                let size = insn.op_size;
                let writes = op != Alu::Cmp;
                let a = self.read(insn.operands[0], writes)?;
                let b = self.read(insn.operands[1], false)?;
                let (r, f) = alu::alu(op, a, b, size, self.regs.rflags);
                if writes {
                    self.write_rmw(insn.operands[0], a, r, insn.lock)?;
                }
                self.regs.rflags = f;
            }
            Op::Test => {
                let a = self.read(insn.operands[0], false)?;
                let b = self.read(insn.operands[1], false)?;
                self.regs.rflags = alu::test(a, b, insn.op_size, self.regs.rflags);
            }
            Op::Not => {
                let a = self.read(insn.operands[0], true)?;
                self.write_rmw(insn.operands[0], a, !a, insn.lock)?;
            }
            Op::Neg => {
                let a = self.read(insn.operands[0], true)?;
                let (r, f) = alu::neg(a, insn.op_size, self.regs.rflags);
                self.write_rmw(insn.operands[0], a, r, insn.lock)?;
                self.regs.rflags = f;
            }
            Op::Inc | Op::Dec => {
                let a = self.read(insn.operands[0], true)?;
                let (r, f) = alu::inc_dec(a, insn.op == Op::Dec, insn.op_size, self.regs.rflags);
                self.write_rmw(insn.operands[0], a, r, insn.lock)?;
                self.regs.rflags = f;
            }
            Op::Bit(op) => self.bit(op)?,
            Op::Cmpxchg => self.cmpxchg()?,
            Op::Xadd => {
                let (d, s) = (insn.operands[0], insn.operands[1]);
                let a = self.read(d, true)?;
                let b = self.read(s, false)?;
                let (r, f) = alu::alu(Alu::Add, a, b, insn.op_size, self.regs.rflags);
                // The source gets the old destination first, so that
                // `xadd r, r` with one register ends with the sum.
                if !matches!(d, Operand::Mem(_)) {
                    self.write(s, a)?;
                    self.write(d, r)?;
                } else {
                    self.write_rmw(d, a, r, insn.lock)?;
                    self.write(s, a)?;
                }
                self.regs.rflags = f;
            }
            Op::Imul => {
                // Two-operand forms multiply into the destination; the
                // three-operand forms take the immediate as the second factor.
                let (a, b) = match insn.operands[2] {
                    Operand::None => {
                        (self.read(insn.operands[0], false)?, self.read(insn.operands[1], false)?)
                    }
                    imm => (self.read(insn.operands[1], false)?, self.read(imm, false)?),
                };
                let (r, f) = alu::imul(a, b, insn.op_size, self.regs.rflags);
                self.write(insn.operands[0], r)?;
                self.regs.rflags = f;
            }
            Op::Bextr => {
                let src = self.read(insn.operands[1], false)?;
                let ctl = self.read(insn.operands[2], false)?;
                let (r, f) = alu::bextr(src, ctl, insn.op_size, self.regs.rflags);
                self.write(insn.operands[0], r)?;
                self.regs.rflags = f;
            }
            Op::Flush => {
                if let Operand::Mem(m) = insn.operands[0] {
                    let la = self.mem_la(&m, 1, Use::Any)?;
                    self.mem.check(la, 1, false)?;
                }
            }
            Op::Push => self.push()?,
            Op::Pop => self.pop()?,
            Op::MovToCr | Op::MovFromCr | Op::Clts | Op::Lmsw | Op::Smsw => self.control()?,
            Op::VecMove(kind) => self.vec_move(kind)?,
            // Decoded for the intercept glue, never executed here.
            Op::Cpuid | Op::Rdmsr | Op::Wrmsr | Op::Hlt | Op::Xsetbv | Op::In | Op::Out => {
                return Err(Error::NotEmulated);
            }
            Op::Movs | Op::Stos | Op::Lods | Op::Cmps | Op::Scas | Op::Ins | Op::Outs => {
                return self.string();
            }
        }
        self.advance();
        Ok(Step::Done)
    }

    fn advance(&mut self) {
        let rip = self.regs.rip.wrapping_add(u64::from(self.insn.len));
        // The IP width of the mode the instruction was decoded for (which
        // the caller took from CS), not CS.D again: real mode decodes as
        // 16-bit code whatever CS.D says, and so must wrap IP at 64 KiB.
        self.regs.rip = match self.insn.mode {
            CpuMode::Long64 => rip,
            CpuMode::Protected32 | CpuMode::Compat32 => rip & 0xffff_ffff,
            CpuMode::Real | CpuMode::Protected16 | CpuMode::Compat16 => rip & 0xffff,
        };
    }

    // ----- addresses -----

    /// The effective address of `m`, wrapped to the address size.
    fn ea(&self, m: &Mem) -> u64 {
        let mut ea = m.disp as u64;
        if let Some(b) = m.base {
            ea = ea.wrapping_add(self.regs.get(b));
        }
        if let Some(i) = m.index {
            ea = ea.wrapping_add(self.regs.get(i).wrapping_mul(u64::from(m.scale)));
        }
        if m.rip_relative {
            let next = self.regs.rip.wrapping_add(u64::from(self.insn.len));
            ea = ea.wrapping_add(next);
        }
        ea & mask(self.insn.addr_size)
    }

    /// The linear address of `size` bytes at `ea` through `sg`, checked
    /// for the segment, and for alignment when alignment checking is on.
    fn la(&self, sg: Seg, ea: u64, size: u8, usage: Use) -> Result<u64, Exception> {
        let s = self.cpu.segment(sg);
        let la = seg::linear(&self.ctx, sg, &s, ea, size, usage)?;
        let size = u64::from(size);
        if size > 1
            && size <= 8
            && la & (size - 1) != 0
            && self.cpu.cpl() == 3
            && self.cpu.cr(0) & cr0::AM != 0
            && self.regs.rflags & AC != 0
        {
            return Err(Exception::Ac);
        }
        Ok(la)
    }

    fn mem_la(&self, m: &Mem, size: u8, usage: Use) -> Result<u64, Exception> {
        self.la(m.seg, self.ea(m), size, usage)
    }

    // ----- operands -----

    fn reg_read(&self, r: Reg) -> u64 {
        match r {
            Reg::Gpr { num, size } => self.regs.get(num) & mask(size),
            Reg::High(n) => (self.regs.get(n) >> 8) & 0xff,
            Reg::Seg(s) => u64::from(self.cpu.segment(s).selector),
            Reg::Cr(n) => self.cpu.cr(n),
            Reg::Vec { num, .. } => le(self.cpu.vec(num).get(..8).unwrap_or(&[])),
        }
    }

    fn reg_write(&mut self, r: Reg, v: u64) {
        match r {
            Reg::Gpr { num, size } => self.regs.put_sized(num, size, v),
            Reg::High(n) => {
                let old = self.regs.get(n);
                self.regs.put(n, (old & !0xff00) | ((v & 0xff) << 8));
            }
            // Not destinations of any decoded form that reaches here.
            Reg::Seg(_) | Reg::Cr(_) | Reg::Vec { .. } => {}
        }
    }

    /// Reads operand `o` (for a read-modify-write when `rmw`).
    fn read(&mut self, o: Operand, rmw: bool) -> R<u64, M::Stop> {
        match o {
            Operand::None => Ok(0),
            Operand::Imm(v) => Ok(v),
            Operand::Reg(r) => Ok(self.reg_read(r)),
            Operand::Mem(m) => {
                let usage = if rmw { Use::Write } else { Use::Read };
                let la = self.mem_la(&m, m.size, usage)?;
                let mut buf = [0u8; 8];
                let n = usize::from(m.size.min(8));
                self.mem.read(la, &mut buf[..n], rmw)?;
                Ok(le(&buf[..n]))
            }
        }
    }

    /// Writes `v` to operand `o`.
    fn write(&mut self, o: Operand, v: u64) -> R<(), M::Stop> {
        match o {
            Operand::Reg(r) => {
                self.reg_write(r, v);
                Ok(())
            }
            Operand::Mem(m) => {
                let la = self.mem_la(&m, m.size, Use::Write)?;
                let size = m.size.min(8);
                self.mem.write(la, &to_le(v, size)[..usize::from(size)])
            }
            Operand::None | Operand::Imm(_) => Ok(()),
        }
    }

    /// Writes the result `new` of a read-modify-write of `o`, which held
    /// `old`: atomically for memory when `locked`. A lost race is retried
    /// by the caller running the whole instruction again; here it is
    /// [`Error::Contended`], with nothing written.
    fn write_rmw(&mut self, o: Operand, old: u64, new: u64, locked: bool) -> R<(), M::Stop> {
        match o {
            Operand::Mem(m) if locked => {
                let la = self.mem_la(&m, m.size, Use::Write)?;
                let n = usize::from(m.size.min(8));
                let ok =
                    self.mem.cmpxchg(la, &to_le(old, m.size)[..n], &to_le(new, m.size)[..n])?;
                if ok {
                    Ok(())
                } else {
                    Err(Error::Contended)
                }
            }
            _ => self.write(o, new),
        }
    }

    // ----- instruction groups -----

    fn bit(&mut self, op: BitOp) -> R<(), M::Stop> {
        let insn = self.insn;
        let size = insn.op_size;
        let bits = u64::from(size) * 8;
        let (dst, src) = (insn.operands[0], insn.operands[1]);
        let offset = self.read(src, false)?;
        let writes = op != BitOp::Bt;
        let (target, bit) = match (dst, src) {
            // A register bit offset reaches beyond the operand in memory:
            // the operand-sized unit that holds the bit (SDM "BT").
            (Operand::Mem(mut m), Operand::Reg(_)) => {
                let signed = sext(offset, size) as i64;
                let unit = signed.div_euclid(bits as i64);
                m.disp = m.disp.wrapping_add(unit.wrapping_mul(i64::from(size)));
                (Operand::Mem(m), (signed.rem_euclid(bits as i64)) as u32)
            }
            _ => (dst, (offset % bits) as u32),
        };
        let v = self.read(target, writes)?;
        let (r, f) = alu::bit(op, v, bit, self.regs.rflags);
        if writes {
            self.write_rmw(target, v, r, insn.lock)?;
        }
        self.regs.rflags = f;
        Ok(())
    }

    fn cmpxchg(&mut self) -> R<(), M::Stop> {
        let insn = self.insn;
        let size = insn.op_size;
        let (d, s) = (insn.operands[0], insn.operands[1]);
        let acc = Operand::Reg(Reg::Gpr { num: RAX, size });
        let dest = self.read(d, true)?;
        let src = self.read(s, false)?;
        let a = self.reg_read(Reg::Gpr { num: RAX, size });
        let (_, f) = alu::alu(Alu::Cmp, a, dest, size, self.regs.rflags);
        let equal = f & ZF != 0;
        // Memory is always written (the locked cycle writes the old value
        // back on a mismatch). A register destination is written only when
        // equal: on a mismatch a 32-bit one keeps bits 63:32, while the
        // accumulator, loaded with the old value, is zero-extended (as the
        // Intel host of `emul/native` does).
        let new = if equal { src } else { dest };
        if let Operand::Mem(_) = d {
            if insn.lock || equal {
                self.write_rmw(d, dest, new, insn.lock)?;
            } else {
                self.write(d, new)?;
            }
        } else if equal {
            self.write(d, new)?;
        }
        if !equal {
            self.write(acc, dest)?;
        }
        self.regs.rflags = f;
        Ok(())
    }

    /// The stack address size: 8 in 64-bit mode, else SS.B.
    fn stack_size(&self) -> u8 {
        if self.ctx.long {
            8
        } else if self.cpu.segment(Seg::Ss).db() {
            4
        } else {
            2
        }
    }

    /// rSP moved by `delta`, wrapped to the stack address size (the rest of
    /// the register is kept for 16-bit stacks).
    fn sp_add(&self, delta: i64) -> u64 {
        let size = self.stack_size();
        let sp = self.regs.get(RSP);
        let new = sp.wrapping_add(delta as u64);
        match size {
            8 => new,
            4 => new & 0xffff_ffff,
            _ => (sp & !0xffff) | (new & 0xffff),
        }
    }

    fn push(&mut self) -> R<(), M::Stop> {
        let size = self.insn.op_size;
        let v = self.read(self.insn.operands[0], false)?;
        let sp = self.sp_add(-i64::from(size));
        let la = self.la(Seg::Ss, sp & mask(self.stack_size()), size, Use::Write)?;
        self.mem.write(la, &to_le(v, size)[..usize::from(size)])?;
        self.regs.put(RSP, sp);
        Ok(())
    }

    fn pop(&mut self) -> R<(), M::Stop> {
        let size = self.insn.op_size;
        let sp = self.regs.get(RSP) & mask(self.stack_size());
        let la = self.la(Seg::Ss, sp, size, Use::Read)?;
        let mut buf = [0u8; 8];
        self.mem.read(la, &mut buf[..usize::from(size)], false)?;
        let v = le(&buf[..usize::from(size)]);
        // The destination's address is computed with the incremented rSP
        // (SDM "POP"); a fault leaves rSP as it was, because registers are
        // written back only on success.
        let old = self.regs;
        self.regs.put(RSP, self.sp_add(i64::from(size)));
        let dst = self.insn.operands[0];
        if let Err(e) = self.write(dst, v) {
            self.regs = old;
            return Err(e);
        }
        Ok(())
    }
}

/// The size of source operand `o` of a sign/zero extension (the
/// destination size `dflt` for immediates, which do not occur).
fn operand_size(o: Operand, dflt: u8) -> u8 {
    match o {
        Operand::Mem(m) => m.size,
        Operand::Reg(Reg::Gpr { size, .. }) => size,
        Operand::Reg(Reg::High(_)) => 1,
        _ => dflt,
    }
}
