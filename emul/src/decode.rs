// SPDX-License-Identifier: GPL-2.0

//! The decoder: bytes and a CPU mode in, an [`Insn`] or a [`DecodeError`]
//! out.
//!
//! It reads prefixes (legacy, REX, VEX), the opcode, ModRM, SIB,
//! displacement and immediate, in that order, and never looks past the
//! end of its input or past the 15th byte. It knows only the operations
//! of [`Op`]; anything else is [`DecodeErrorKind::Unsupported`], so the
//! caller can hand the bytes to userspace. An encoding the CPU itself
//! would reject (LOCK where it is not allowed, a register where only
//! memory is allowed, a reserved ModRM.reg value) is
//! [`DecodeErrorKind::Invalid`], which the caller injects as #UD.
//!
//! Glossary: ModRM = the byte after the opcode that selects a register
//! (`reg`) and a register or memory operand (`mod`, `rm`); SIB = the
//! scale-index-base byte that follows ModRM for some memory forms; disp =
//! displacement; moffs = a memory offset encoded in place of ModRM (A0-A3);
//! REX = the 64-bit-mode prefix 40-4F (W: 64-bit operand; R, X, B: the
//! fourth bit of ModRM.reg, SIB.index and ModRM.rm or SIB.base); VEX = the
//! C4/C5 prefix of AVX encodings (it replaces REX, 66, F2, F3 and the 0F
//! escape bytes); pp = VEX's implied 66/F3/F2 prefix.

use super::insn::{
    Alu, BitOp, CpuMode, Insn, Mem, Op, Operand, Reg, Rep, Seg, VecMove, MAX_LEN, RAX, RBP, RDX,
    RSP,
};

/// Why decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The input ended before the instruction did: fetch more bytes (the
    /// fetch may have stopped at a page that is not mapped).
    Truncated,
    /// The instruction would be longer than 15 bytes: #GP(0).
    TooLong,
    /// The CPU rejects this encoding: #UD.
    Invalid,
    /// A valid instruction that this emulator does not emulate.
    Unsupported,
}

/// A failed decode, with the bytes it was given (up to 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The input bytes; the first `len` are meaningful.
    pub bytes: [u8; MAX_LEN],
    /// How many input bytes there were (at most 15).
    pub len: u8,
}

impl DecodeError {
    /// The bytes the decoder was given.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&self.bytes)
    }
}

/// Decodes the instruction at the start of `bytes` (at most the first 15
/// are looked at) for `mode`.
pub fn decode(bytes: &[u8], mode: CpuMode) -> Result<Insn, DecodeError> {
    let input = bytes.get(..MAX_LEN).unwrap_or(bytes);
    let mut raw = [0u8; MAX_LEN];
    for (d, s) in raw.iter_mut().zip(input) {
        *d = *s;
    }
    // At most 15, so this cannot truncate.
    let n = input.len() as u8;
    let mut d = Decoder { cur: Cursor { bytes: input, pos: 0 }, mode, p: Prefixes::default() };
    match d.insn() {
        Ok(mut insn) => {
            // Only the instruction's own bytes: what follows it in the
            // input is not part of it (and would make equal instructions
            // compare unequal).
            for (d, s) in insn.bytes.iter_mut().zip(raw).take(usize::from(insn.len)) {
                *d = s;
            }
            Ok(insn)
        }
        Err(kind) => Err(DecodeError { kind, bytes: raw, len: n }),
    }
}

use DecodeErrorKind::{Invalid, Truncated, Unsupported};

type Result<T, E = DecodeErrorKind> = core::result::Result<T, E>;

mod simd;
mod system;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8> {
        if self.pos >= MAX_LEN {
            return Err(DecodeErrorKind::TooLong);
        }
        self.bytes.get(self.pos).copied().ok_or(Truncated)
    }

    fn next(&mut self) -> Result<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// A little-endian value of `size` bytes (1, 2, 4 or 8), zero-extended.
    fn uint(&mut self, size: u8) -> Result<u64> {
        let mut v = 0u64;
        for i in 0..u32::from(size) {
            v |= u64::from(self.next()?) << (8 * i);
        }
        Ok(v)
    }

    /// A little-endian value of `size` bytes, sign-extended to 64 bits.
    fn int(&mut self, size: u8) -> Result<u64> {
        let v = self.uint(size)?;
        let shift = 64 - 8 * u32::from(size);
        Ok((((v << shift) as i64) >> shift) as u64)
    }
}

/// The VEX fields that matter once the prefix is read.
#[derive(Clone, Copy, Default)]
struct Vex {
    /// 1: 0F, 2: 0F 38, 3: 0F 3A.
    map: u8,
    /// VEX.vvvv, un-inverted, all four bits: outside 64-bit mode bit 3
    /// does not select a register, but an unused vvvv must still be
    /// 1111b (as iced, XED and binutils check it).
    vvvv: u8,
    /// VEX.L: 256-bit.
    l: bool,
    /// VEX.W.
    w: bool,
}

#[derive(Default)]
struct Prefixes {
    /// 66 was present.
    op_size: bool,
    /// 67 was present.
    addr_size: bool,
    /// F0 was present.
    lock: bool,
    /// The last of F2/F3, if any.
    rep: Option<u8>,
    /// The last segment override that counts in this mode.
    seg: Option<Seg>,
    /// The REX prefix that immediately precedes the opcode, or 0.
    rex: u8,
    /// The VEX prefix, if any.
    vex: Option<Vex>,
    /// The instruction's mandatory-prefix class for SSE opcodes: the last
    /// of F2/F3, else 66 (VEX: pp).
    simd: u8,
}

const REX_W: u8 = 1 << 3;
const REX_R: u8 = 1 << 2;
const REX_X: u8 = 1 << 1;
const REX_B: u8 = 1 << 0;

/// A decoded ModRM byte (plus REX/VEX extension bits).
#[derive(Clone, Copy)]
struct ModRm {
    md: u8,
    /// ModRM.reg with REX.R.
    reg: u8,
    /// ModRM.reg without REX.R: the opcode extension in group opcodes.
    ext: u8,
    /// ModRM.rm with REX.B (register forms only).
    rm: u8,
}

struct Decoder<'a> {
    cur: Cursor<'a>,
    mode: CpuMode,
    p: Prefixes,
}

impl Decoder<'_> {
    fn long(&self) -> bool {
        self.mode == CpuMode::Long64
    }

    fn insn(&mut self) -> Result<Insn> {
        self.prefixes()?;
        let b = self.cur.next()?;
        let mut insn = if let Some(vex) = self.p.vex {
            self.vex_opcode(vex, b)?
        } else if b == 0x0f {
            let b2 = self.cur.next()?;
            if b2 == 0x38 {
                let b3 = self.cur.next()?;
                self.map_0f38(b3)?
            } else {
                self.map_0f(b2)?
            }
        } else {
            self.map_1(b)?
        };
        if self.p.lock && !lockable(&insn) {
            return Err(Invalid);
        }
        // pos <= 15 here, so this cannot truncate.
        insn.len = self.cur.pos as u8;
        Ok(insn)
    }

    fn prefixes(&mut self) -> Result<()> {
        loop {
            let b = self.cur.peek()?;
            match b {
                0x40..=0x4f if self.long() => {
                    self.cur.pos += 1;
                    self.p.rex = b;
                    continue;
                }
                0x66 => self.p.op_size = true,
                0x67 => self.p.addr_size = true,
                0xf0 => self.p.lock = true,
                0xf2 | 0xf3 => self.p.rep = Some(b),
                // 64-bit mode ignores these overrides.
                0x26 | 0x2e | 0x36 | 0x3e if self.long() => {}
                0x26 => self.p.seg = Some(Seg::Es),
                0x2e => self.p.seg = Some(Seg::Cs),
                0x36 => self.p.seg = Some(Seg::Ss),
                0x3e => self.p.seg = Some(Seg::Ds),
                0x64 => self.p.seg = Some(Seg::Fs),
                0x65 => self.p.seg = Some(Seg::Gs),
                0xc4 | 0xc5 => return self.vex_prefix(b),
                _ => break,
            }
            self.cur.pos += 1;
            // A REX prefix counts only right before the opcode.
            self.p.rex = 0;
        }
        self.p.simd = match (self.p.rep, self.p.op_size) {
            (Some(r), _) => r,
            (None, true) => 0x66,
            (None, false) => 0,
        };
        Ok(())
    }

    /// (address size, operand size) in bytes. `default64`: the operation
    /// defaults to 64 bits in 64-bit mode (66 makes it 16 bits, unless
    /// REX.W overrides 66 as it always does).
    fn sizes(&self, default64: bool) -> (u8, u8) {
        let (addr, op) = match self.mode {
            CpuMode::Real | CpuMode::Protected16 | CpuMode::Compat16 => (2, 2),
            CpuMode::Protected32 | CpuMode::Compat32 => (4, 4),
            CpuMode::Long64 => (8, 4),
        };
        let addr = match (self.p.addr_size, addr) {
            (false, a) => a,
            (true, 2) => 4,
            (true, 4) => 2,
            (true, _) => 4,
        };
        let op = if self.long() {
            if self.p.rex & REX_W != 0 {
                8
            } else if self.p.op_size {
                2
            } else if default64 {
                8
            } else {
                4
            }
        } else if self.p.op_size {
            6 - op
        } else {
            op
        };
        (addr, op)
    }

    fn new_insn(&self, op: Op, op_size: u8) -> Insn {
        let (addr_size, _) = self.sizes(false);
        Insn {
            op,
            operands: [Operand::None; 3],
            op_size,
            addr_size,
            seg: self.p.seg,
            lock: self.p.lock,
            rep: Rep::None,
            rex: self.p.rex,
            vex: self.p.vex.is_some(),
            len: 0,
            mode: self.mode,
            bytes: [0; MAX_LEN],
        }
    }

    fn modrm(&mut self) -> Result<ModRm> {
        let b = self.cur.peek()?;
        let rex = self.p.rex;
        let ext = (b >> 3) & 7;
        Ok(ModRm {
            md: b >> 6,
            reg: ext | if rex & REX_R != 0 { 8 } else { 0 },
            ext,
            rm: (b & 7) | if rex & REX_B != 0 { 8 } else { 0 },
        })
    }

    /// A general register of `size` bytes numbered `num` (REX applied).
    fn gpr(&self, num: u8, size: u8) -> Operand {
        if size == 1 && self.p.rex == 0 && self.p.vex.is_none() && (4..8).contains(&num) {
            Operand::Reg(Reg::High(num - 4))
        } else {
            Operand::Reg(Reg::Gpr { num, size })
        }
    }

    /// The r/m operand of `m` (ModRM at the cursor, not yet consumed):
    /// a register of `size` bytes, or memory of `size` bytes. Consumes
    /// ModRM, SIB and displacement.
    fn rm(&mut self, m: ModRm, size: u8) -> Result<Operand> {
        self.cur.next()?;
        if m.md == 3 {
            return Ok(self.gpr(m.rm, size));
        }
        Ok(Operand::Mem(self.mem(m, size)?))
    }

    /// Like [`Decoder::rm`], but the operand must be memory (#UD if not).
    fn mem_only(&mut self, m: ModRm, size: u8) -> Result<Operand> {
        if m.md == 3 {
            self.cur.next()?;
            return Err(Invalid);
        }
        self.rm(m, size)
    }

    /// The memory operand of a ModRM whose byte was just consumed.
    fn mem(&mut self, m: ModRm, size: u8) -> Result<Mem> {
        let (addr, _) = self.sizes(false);
        let mut mem = Mem {
            seg: Seg::Ds,
            base: None,
            index: None,
            scale: 1,
            disp: 0,
            rip_relative: false,
            size,
        };
        let rm = m.rm & 7;
        if addr == 2 {
            // SDM table 2-1.
            let (base, index) = match rm {
                0 => (Some(3), Some(6)),
                1 => (Some(3), Some(7)),
                2 => (Some(5), Some(6)),
                3 => (Some(5), Some(7)),
                4 => (None, Some(6)),
                5 => (None, Some(7)),
                6 => (Some(5), None),
                _ => (Some(3), None),
            };
            // Index-only forms name SI/DI as the base, as iced and the SDM
            // table do: [si] and [di].
            let (base, index) = if base.is_none() { (index, None) } else { (base, index) };
            mem.base = base;
            mem.index = index;
            match m.md {
                0 if rm == 6 => {
                    mem.base = None;
                    mem.disp = self.cur.int(2)? as i64;
                }
                0 => {}
                1 => mem.disp = self.cur.int(1)? as i64,
                _ => mem.disp = self.cur.int(2)? as i64,
            }
            if mem.base == Some(RBP) {
                mem.seg = Seg::Ss;
            }
        } else {
            let mut base_bits = rm;
            if rm == 4 {
                let sib = self.cur.next()?;
                let scale = 1u8 << (sib >> 6);
                let index = ((sib >> 3) & 7) | if self.p.rex & REX_X != 0 { 8 } else { 0 };
                if index != RSP {
                    mem.index = Some(index);
                    mem.scale = scale;
                }
                base_bits = sib & 7;
                let base = base_bits | if self.p.rex & REX_B != 0 { 8 } else { 0 };
                if !(base_bits == 5 && m.md == 0) {
                    mem.base = Some(base);
                }
            } else if !(rm == 5 && m.md == 0) {
                mem.base = Some(m.rm);
            } else if self.long() {
                mem.rip_relative = true;
            }
            match m.md {
                0 if base_bits == 5 => mem.disp = self.cur.int(4)? as i64,
                0 => {}
                1 => mem.disp = self.cur.int(1)? as i64,
                _ => mem.disp = self.cur.int(4)? as i64,
            }
            if matches!(mem.base, Some(RSP | RBP)) {
                mem.seg = Seg::Ss;
            }
        }
        if let Some(s) = self.p.seg {
            mem.seg = s;
        }
        Ok(mem)
    }

    /// An immediate of the operand size `size`: imm8, imm16 or imm32, the
    /// last sign-extended for 64-bit operands.
    fn imm(&mut self, size: u8) -> Result<Operand> {
        Ok(Operand::Imm(self.cur.int(size.min(4))?))
    }

    fn imm8(&mut self) -> Result<Operand> {
        Ok(Operand::Imm(self.cur.int(1)?))
    }

    /// A two-operand instruction with ModRM: `r/m, reg` (`to_rm`) or
    /// `reg, r/m`.
    fn rm_reg(&mut self, op: Op, size: u8, to_rm: bool) -> Result<Insn> {
        let m = self.modrm()?;
        let rm = self.rm(m, size)?;
        let reg = self.gpr(m.reg, size);
        let mut insn = self.new_insn(op, size);
        insn.operands = if to_rm { [rm, reg, Operand::None] } else { [reg, rm, Operand::None] };
        Ok(insn)
    }

    /// Operand size for an opcode pair whose low bit selects byte (0) or
    /// full (1) size.
    fn wsize(&self, b: u8) -> u8 {
        if b & 1 == 0 {
            1
        } else {
            self.sizes(false).1
        }
    }

    fn map_1(&mut self, b: u8) -> Result<Insn> {
        let long = self.long();
        match b {
            // ALU r/m,r / r,r/m / acc,imm.
            0x00..=0x3f if b & 7 < 6 => {
                let op = Op::Alu(Alu::from_index(b >> 3));
                let size = self.wsize(b);
                match b & 7 {
                    0 | 1 => self.rm_reg(op, size, true),
                    2 | 3 => self.rm_reg(op, size, false),
                    _ => {
                        let mut insn = self.new_insn(op, size);
                        insn.operands = [self.gpr(RAX, size), self.imm(size)?, Operand::None];
                        Ok(insn)
                    }
                }
            }
            // inc/dec r (REX in 64-bit mode, handled as a prefix).
            0x40..=0x4f => {
                let size = self.sizes(false).1;
                let op = if b < 0x48 { Op::Inc } else { Op::Dec };
                let mut insn = self.new_insn(op, size);
                insn.operands[0] = self.gpr(b & 7, size);
                Ok(insn)
            }
            0x63 if long => {
                let size = self.sizes(false).1;
                let m = self.modrm()?;
                let rm = self.rm(m, size.min(4))?;
                let mut insn = self.new_insn(Op::Movsxd, size);
                insn.operands = [self.gpr(m.reg, size), rm, Operand::None];
                Ok(insn)
            }
            0x69 | 0x6b => {
                let size = self.sizes(false).1;
                let m = self.modrm()?;
                let rm = self.rm(m, size)?;
                let imm = if b == 0x69 { self.imm(size)? } else { self.imm8()? };
                let mut insn = self.new_insn(Op::Imul, size);
                insn.operands = [self.gpr(m.reg, size), rm, imm];
                Ok(insn)
            }
            0x6c..=0x6f => {
                let op = if b < 0x6e { Op::Ins } else { Op::Outs };
                self.string(op, b)
            }
            0x80..=0x83 => {
                if b == 0x82 && long {
                    return Err(Invalid);
                }
                let size = self.wsize(b);
                let m = self.modrm()?;
                let rm = self.rm(m, size)?;
                let imm = if b == 0x81 { self.imm(size)? } else { self.imm8()? };
                let mut insn = self.new_insn(Op::Alu(Alu::from_index(m.ext)), size);
                insn.operands = [rm, imm, Operand::None];
                Ok(insn)
            }
            0x84 | 0x85 => self.rm_reg(Op::Test, self.wsize(b), true),
            0x86 | 0x87 => self.rm_reg(Op::Xchg, self.wsize(b), true),
            0x88..=0x8b => self.rm_reg(Op::Mov, self.wsize(b), b < 0x8a),
            0x8c => {
                let m = self.modrm()?;
                let seg = match m.ext {
                    0 => Seg::Es,
                    1 => Seg::Cs,
                    2 => Seg::Ss,
                    3 => Seg::Ds,
                    4 => Seg::Fs,
                    5 => Seg::Gs,
                    _ => {
                        self.cur.next()?;
                        return Err(Invalid);
                    }
                };
                // A register destination takes the operand size (the
                // selector zero-extended); memory is always 16 bits.
                let size = if m.md == 3 { self.sizes(false).1 } else { 2 };
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(Op::Mov, size);
                insn.operands = [rm, Operand::Reg(Reg::Seg(seg)), Operand::None];
                Ok(insn)
            }
            0x8f => {
                let m = self.modrm()?;
                if m.ext != 0 {
                    // XOP on AMD, #UD elsewhere.
                    return Err(Unsupported);
                }
                let size = self.sizes(true).1;
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(Op::Pop, size);
                insn.operands[0] = rm;
                Ok(insn)
            }
            0xa0..=0xa3 => {
                let size = self.wsize(b);
                let (addr, _) = self.sizes(false);
                let off = self.cur.uint(addr)?;
                let mem = Mem {
                    seg: self.p.seg.unwrap_or(Seg::Ds),
                    base: None,
                    index: None,
                    scale: 1,
                    disp: off as i64,
                    rip_relative: false,
                    size,
                };
                let mut insn = self.new_insn(Op::Mov, size);
                let acc = self.gpr(RAX, size);
                insn.operands = if b < 0xa2 {
                    [acc, Operand::Mem(mem), Operand::None]
                } else {
                    [Operand::Mem(mem), acc, Operand::None]
                };
                Ok(insn)
            }
            0xa4 | 0xa5 => self.string(Op::Movs, b),
            0xa6 | 0xa7 => self.string(Op::Cmps, b),
            0xa8 | 0xa9 => {
                let size = self.wsize(b);
                let mut insn = self.new_insn(Op::Test, size);
                insn.operands = [self.gpr(RAX, size), self.imm(size)?, Operand::None];
                Ok(insn)
            }
            0xaa | 0xab => self.string(Op::Stos, b),
            0xac | 0xad => self.string(Op::Lods, b),
            0xae | 0xaf => self.string(Op::Scas, b),
            0xb0..=0xbf => {
                let size = if b < 0xb8 { 1 } else { self.sizes(false).1 };
                let reg = (b & 7) | if self.p.rex & REX_B != 0 { 8 } else { 0 };
                let imm = if size == 8 { self.cur.uint(8)? } else { self.cur.int(size)? };
                let mut insn = self.new_insn(Op::Mov, size);
                insn.operands = [self.gpr(reg, size), Operand::Imm(imm), Operand::None];
                Ok(insn)
            }
            0xc6 | 0xc7 => {
                let m = self.modrm()?;
                if m.ext != 0 {
                    // xabort/xbegin, or reserved.
                    return Err(if m.ext == 7 && m.md == 3 { Unsupported } else { Invalid });
                }
                let size = self.wsize(b);
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(Op::Mov, size);
                insn.operands = [rm, self.imm(size)?, Operand::None];
                Ok(insn)
            }
            0xe4..=0xe7 | 0xec..=0xef => self.port_io(b),
            0xf4 => Ok(self.no_operands(Op::Hlt)),
            0xf6 | 0xf7 => {
                let size = self.wsize(b);
                let m = self.modrm()?;
                let op = match m.ext {
                    0 | 1 => Op::Test,
                    2 => Op::Not,
                    3 => Op::Neg,
                    _ => return Err(Unsupported),
                };
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(op, size);
                insn.operands[0] = rm;
                if op == Op::Test {
                    insn.operands[1] = self.imm(size)?;
                }
                Ok(insn)
            }
            0xfe | 0xff => {
                let m = self.modrm()?;
                let (op, size) = match (b, m.ext) {
                    (_, 0) => (Op::Inc, self.wsize(b)),
                    (_, 1) => (Op::Dec, self.wsize(b)),
                    (0xff, 6) => (Op::Push, self.sizes(true).1),
                    (0xff, 2..=5) => return Err(Unsupported),
                    _ => {
                        self.cur.next()?;
                        return Err(Invalid);
                    }
                };
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(op, size);
                insn.operands[0] = rm;
                Ok(insn)
            }
            _ => Err(Unsupported),
        }
    }

    /// A string instruction: `b`'s low bit selects byte or full size.
    fn string(&mut self, op: Op, b: u8) -> Result<Insn> {
        let size = self.wsize(b);
        // ins/outs move at most 32 bits.
        let size = if matches!(op, Op::Ins | Op::Outs) { size.min(4) } else { size };
        let mut insn = self.new_insn(op, size);
        insn.rep = match (self.p.rep, op) {
            (None, _) => Rep::None,
            (Some(0xf2), Op::Cmps | Op::Scas) => Rep::Repne,
            (Some(_), _) => Rep::Rep,
        };
        Ok(insn)
    }

    fn map_0f(&mut self, b: u8) -> Result<Insn> {
        let long = self.long();
        match b {
            0x01 => self.group7(),
            0x06 => Ok(self.no_operands(Op::Clts)),
            0x30 => Ok(self.no_operands(Op::Wrmsr)),
            0x32 => Ok(self.no_operands(Op::Rdmsr)),
            0xa2 => Ok(self.no_operands(Op::Cpuid)),
            0x10 | 0x11 | 0x28 | 0x29 | 0x2b | 0x6e | 0x6f | 0x7e | 0x7f | 0xd6 | 0xe7 => {
                self.sse(b)
            }
            0x20 | 0x22 => {
                let m = self.modrm()?;
                self.cur.next()?;
                let cr = m.reg;
                // AMD: LOCK turns CR0 into CR8 outside 64-bit mode
                // (CPUID CR8Legacy); this emulator takes the Intel view,
                // #UD. CR8 exists only in 64-bit mode (REX.R).
                if self.p.lock || !matches!(cr, 0 | 2 | 3 | 4 | 8) || (cr == 8 && !long) {
                    return Err(Invalid);
                }
                let size = if long { 8 } else { 4 };
                let gpr = Operand::Reg(Reg::Gpr { num: m.rm, size });
                let crr = Operand::Reg(Reg::Cr(cr));
                let (op, ops) =
                    if b == 0x20 { (Op::MovFromCr, [gpr, crr]) } else { (Op::MovToCr, [crr, gpr]) };
                let mut insn = self.new_insn(op, size);
                insn.operands = [ops[0], ops[1], Operand::None];
                Ok(insn)
            }
            0xa3 | 0xab | 0xb3 | 0xbb => {
                let op = match b {
                    0xa3 => BitOp::Bt,
                    0xab => BitOp::Bts,
                    0xb3 => BitOp::Btr,
                    _ => BitOp::Btc,
                };
                self.rm_reg(Op::Bit(op), self.sizes(false).1, true)
            }
            0xb0 | 0xb1 => self.rm_reg(Op::Cmpxchg, self.wsize(b), true),
            0xb6 | 0xb7 | 0xbe | 0xbf => {
                let size = self.sizes(false).1;
                let m = self.modrm()?;
                let rm = self.rm(m, if b & 1 == 0 { 1 } else { 2 })?;
                let op = if b < 0xb8 { Op::Movzx } else { Op::Movsx };
                let mut insn = self.new_insn(op, size);
                insn.operands = [self.gpr(m.reg, size), rm, Operand::None];
                Ok(insn)
            }
            0xba => {
                let size = self.sizes(false).1;
                let m = self.modrm()?;
                let op = match m.ext {
                    4 => BitOp::Bt,
                    5 => BitOp::Bts,
                    6 => BitOp::Btr,
                    7 => BitOp::Btc,
                    _ => {
                        self.cur.next()?;
                        return Err(Invalid);
                    }
                };
                let rm = self.rm(m, size)?;
                let mut insn = self.new_insn(Op::Bit(op), size);
                insn.operands = [rm, self.imm8()?, Operand::None];
                Ok(insn)
            }
            0xc0 | 0xc1 => self.rm_reg(Op::Xadd, self.wsize(b), true),
            0xaf => self.rm_reg(Op::Imul, self.sizes(false).1, false),
            0xae => {
                let m = self.modrm()?;
                // Register forms are the fences; /0-/5 are FXSAVE and
                // friends. Only the cache-line write-backs are ours.
                let flush =
                    m.md != 3 && matches!((m.ext, self.p.simd), (7, 0) | (7, 0x66) | (6, 0x66));
                if !flush {
                    return Err(Unsupported);
                }
                let rm = self.rm(m, 1)?;
                let mut insn = self.new_insn(Op::Flush, 1);
                insn.operands[0] = rm;
                Ok(insn)
            }
            0xc3 => {
                // 32 bits, or 64 with REX.W: there is no 16-bit form, and
                // a 16-bit default operand size does not make one.
                let size = if self.p.rex & REX_W != 0 { 8 } else { 4 };
                let m = self.modrm()?;
                // 66, F2 and F3 forms are undefined.
                if self.p.simd != 0 {
                    self.cur.next()?;
                    return Err(Invalid);
                }
                let rm = self.mem_only(m, size)?;
                let mut insn = self.new_insn(Op::Movnti, size);
                insn.operands = [rm, self.gpr(m.reg, size), Operand::None];
                Ok(insn)
            }
            _ => Err(Unsupported),
        }
    }

    fn map_0f38(&mut self, b: u8) -> Result<Insn> {
        match (b, self.p.simd) {
            (0xf0 | 0xf1, 0 | 0x66) => {
                let size = self.sizes(false).1;
                let m = self.modrm()?;
                let rm = self.mem_only(m, size)?;
                let reg = self.gpr(m.reg, size);
                let mut insn = self.new_insn(Op::Movbe, size);
                insn.operands =
                    if b == 0xf0 { [reg, rm, Operand::None] } else { [rm, reg, Operand::None] };
                Ok(insn)
            }
            _ => Err(Unsupported),
        }
    }
}

/// Whether LOCK is allowed: the read-modify-write operations, with a
/// memory destination (SDM vol. 2, LOCK).
fn lockable(insn: &Insn) -> bool {
    let rmw = match insn.op {
        Op::Alu(a) => a != Alu::Cmp,
        Op::Bit(b) => b != BitOp::Bt,
        Op::Not | Op::Neg | Op::Inc | Op::Dec | Op::Xchg | Op::Cmpxchg | Op::Xadd => true,
        _ => false,
    };
    rmw && matches!(insn.operands[0], Operand::Mem(_))
}
