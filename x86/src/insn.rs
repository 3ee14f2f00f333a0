// SPDX-License-Identifier: GPL-2.0

//! A decoder for just the instructions an SVM intercept can stop on, for
//! CPUs without NRIP save (the next RIP must be computed) and without
//! decode assists. It finds the instruction's length, its prefixes and
//! which of [`Op`] it is; everything else is [`DecodeError::Unsupported`].
//!
//! The input is what could be fetched at RIP: up to 15 bytes, fewer when
//! the fetch ran into an unbacked page. The decoder never looks past the
//! end of the input nor past the 15th byte.
//!
//! Glossary: ModRM/SIB = the operand-addressing bytes after the opcode;
//! disp = displacement; REX = the 64-bit-mode prefix 40-4F (W = 64-bit
//! operand, B = extends ModRM.rm); imm8 = a one-byte immediate; D = the
//! code-segment default-size bit; L = the code-segment 64-bit bit; VM =
//! RFLAGS.VM (virtual-8086 mode).

use super::regs;

/// The architectural limit on instruction length (SDM 2.3.11).
pub const MAX_LEN: usize = 15;

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

    /// Default (address size, operand size) in bytes (SDM 3.6, 2.2.1.2).
    fn defaults(self) -> (u8, u8) {
        match self {
            Self::Real | Self::Protected16 | Self::Compat16 => (2, 2),
            Self::Protected32 | Self::Compat32 => (4, 4),
            Self::Long64 => (8, 4),
        }
    }
}

/// The instructions this decoder knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `cpuid` (0F A2).
    Cpuid,
    /// `rdmsr` (0F 32).
    Rdmsr,
    /// `wrmsr` (0F 30).
    Wrmsr,
    /// `hlt` (F4).
    Hlt,
    /// `vmmcall` (0F 01 D9).
    Vmmcall,
    /// `vmcall` (0F 01 C1).
    Vmcall,
    /// `xsetbv` (0F 01 D1).
    Xsetbv,
    /// `rdtsc` (0F 31).
    Rdtsc,
    /// `rdtscp` (0F 01 F9).
    Rdtscp,
    /// `rdpmc` (0F 33).
    Rdpmc,
    /// `pause` (F3 90).
    Pause,
    /// `wbinvd` (0F 09).
    Wbinvd,
    /// `invd` (0F 08).
    Invd,
    /// `monitor` (0F 01 C8).
    Monitor,
    /// `mwait` (0F 01 C9).
    Mwait,
    /// `invlpg m` (0F 01 /7, memory operand).
    Invlpg,
    /// `insb`/`insw`/`insd` (6C, 6D).
    Ins,
    /// `outsb`/`outsw`/`outsd` (6E, 6F).
    Outs,
    /// `in` (E4, E5 with imm8; EC, ED with DX).
    In,
    /// `out` (E6, E7 with imm8; EE, EF with DX).
    Out,
    /// `int3` (CC).
    Int3,
    /// `int1`, also called `icebp` (F1).
    Icebp,
    /// `ud2` (0F 0B).
    Ud2,
    /// `nop` (90 without F3), which no intercept stops on but which is
    /// decoded so that `pause` is told apart from it.
    Other,
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

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Which instruction.
    pub op: Op,
    /// Its length in bytes, prefixes included: next RIP = RIP + len.
    pub len: u8,
    /// The segment-override prefix; the last one wins. In 64-bit mode the
    /// ES, CS, SS and DS prefixes are consumed but ignored (an earlier FS
    /// or GS still applies).
    pub seg: Option<Seg>,
    /// An F3 or F2 prefix was present.
    pub rep: bool,
    /// Effective address size in bytes: 2, 4 or 8.
    pub addr_size: u8,
    /// Effective operand size in bytes: 2, 4 or 8, from the mode, 66 and
    /// REX.W. For the port I/O instructions, which have no 64-bit form,
    /// REX.W is ignored and this is at most 4; for their byte forms this
    /// is still the prefix-derived size (see `byte_op`).
    pub op_size: u8,
    /// The opcode is the byte form (INSB, OUTSB, IN AL, OUT AL).
    pub byte_op: bool,
}

/// Why decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the instruction did.
    Truncated,
    /// The instruction would be longer than 15 bytes (#GP on hardware).
    TooLong,
    /// Not one of the instructions in [`Op`].
    Unsupported,
}

/// Decodes the instruction at the start of `bytes` in `mode`.
pub fn decode(bytes: &[u8], mode: CpuMode) -> Result<Insn, DecodeError> {
    let mut cur = Cursor { bytes, pos: 0 };
    let pfx = Prefixes::read(&mut cur, mode)?;
    let (addr_size, op_size) = pfx.sizes(mode);
    let (op, byte_op) = opcode(&mut cur, &pfx, addr_size)?;
    let op_size = match op {
        // IN, OUT, INS, OUTS: 8, 16 or 32 bits only (SDM vol. 2, IN/OUT).
        Op::In | Op::Out | Op::Ins | Op::Outs => op_size.min(4),
        _ => op_size,
    };
    Ok(Insn {
        op,
        // pos <= MAX_LEN, so this cannot truncate.
        len: cur.pos as u8,
        seg: pfx.seg,
        rep: pfx.rep.is_some(),
        addr_size,
        op_size,
        byte_op,
    })
}

/// Reads the input a byte at a time, within its end and the 15-byte limit.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        if self.pos >= MAX_LEN {
            return Err(DecodeError::TooLong);
        }
        self.bytes.get(self.pos).copied().ok_or(DecodeError::Truncated)
    }

    fn next(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.advance();
        Ok(b)
    }

    /// Moves past a byte [`Cursor::peek`] returned (so `pos < MAX_LEN`).
    fn advance(&mut self) {
        self.pos = self.pos.wrapping_add(1);
    }

    fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        for _ in 0..n {
            self.next()?;
        }
        Ok(())
    }
}

/// The prefixes before the opcode (SDM 2.1.1, 2.2.1).
#[derive(Default)]
struct Prefixes {
    /// 66.
    op_size: bool,
    /// 67.
    addr_size: bool,
    /// The last of F2 and F3.
    rep: Option<u8>,
    seg: Option<Seg>,
    /// The REX byte immediately before the opcode, or 0.
    rex: u8,
}

const REX_W: u8 = 1 << 3;
const REX_B: u8 = 1 << 0;

impl Prefixes {
    /// Consumes prefixes; stops at the first byte that is not one. A REX
    /// followed by a legacy prefix is ignored (SDM 2.2.1). The loop runs at
    /// most [`MAX_LEN`] times: each pass consumes a byte, and
    /// [`Cursor::peek`] fails at the limit.
    fn read(cur: &mut Cursor<'_>, mode: CpuMode) -> Result<Self, DecodeError> {
        let long = mode == CpuMode::Long64;
        let mut p = Self::default();
        loop {
            let b = cur.peek()?;
            match b {
                0x40..=0x4f if long => {
                    cur.advance();
                    p.rex = b;
                    continue;
                }
                0x66 => p.op_size = true,
                0x67 => p.addr_size = true,
                0xf0 => {}
                0xf2 | 0xf3 => p.rep = Some(b),
                0x26 | 0x2e | 0x36 | 0x3e if long => {}
                0x26 => p.seg = Some(Seg::Es),
                0x2e => p.seg = Some(Seg::Cs),
                0x36 => p.seg = Some(Seg::Ss),
                0x3e => p.seg = Some(Seg::Ds),
                0x64 => p.seg = Some(Seg::Fs),
                0x65 => p.seg = Some(Seg::Gs),
                _ => return Ok(p),
            }
            cur.advance();
            p.rex = 0;
        }
    }

    /// Effective (address size, operand size): 67 toggles 16/32 bits, or
    /// selects 32 in 64-bit mode; REX.W selects 64-bit operands and wins
    /// over 66, which toggles 16/32 bits.
    fn sizes(&self, mode: CpuMode) -> (u8, u8) {
        let (addr, op) = mode.defaults();
        let addr = match (self.addr_size, addr) {
            (false, a) => a,
            (true, 2) => 4,
            (true, 4) => 2,
            (true, _) => 4,
        };
        let op = match (self.rex & REX_W != 0, self.op_size, op) {
            (true, ..) => 8,
            (false, true, 2) => 4,
            (false, true, _) => 2,
            (false, false, op) => op,
        };
        (addr, op)
    }
}

/// Decodes the opcode and whatever follows it; returns the instruction and
/// whether it is a byte form.
fn opcode(cur: &mut Cursor<'_>, pfx: &Prefixes, addr_size: u8) -> Result<(Op, bool), DecodeError> {
    let b = cur.next()?;
    let (op, byte_op) = match b {
        0x0f => (two_byte(cur, addr_size)?, false),
        0xf4 => (Op::Hlt, false),
        // F3 90 is PAUSE; with REX.B, 90 is XCHG r8, rAX instead.
        0x90 if pfx.rep == Some(0xf3) && pfx.rex & REX_B == 0 => (Op::Pause, false),
        0x90 => (Op::Other, false),
        0x6c | 0x6d => (Op::Ins, b == 0x6c),
        0x6e | 0x6f => (Op::Outs, b == 0x6e),
        // Even opcodes are the AL forms.
        0xe4 | 0xe5 | 0xec | 0xed => (Op::In, b & 1 == 0),
        0xe6 | 0xe7 | 0xee | 0xef => (Op::Out, b & 1 == 0),
        0xcc => (Op::Int3, false),
        0xf1 => (Op::Icebp, false),
        _ => return Err(DecodeError::Unsupported),
    };
    if (0xe4..=0xe7).contains(&b) {
        cur.skip(1)?; // imm8: the port
    }
    Ok((op, byte_op))
}

/// The byte after 0F.
fn two_byte(cur: &mut Cursor<'_>, addr_size: u8) -> Result<Op, DecodeError> {
    Ok(match cur.next()? {
        0xa2 => Op::Cpuid,
        0x32 => Op::Rdmsr,
        0x30 => Op::Wrmsr,
        0x31 => Op::Rdtsc,
        0x33 => Op::Rdpmc,
        0x09 => Op::Wbinvd,
        0x08 => Op::Invd,
        0x0b => Op::Ud2,
        0x01 => return group7(cur, addr_size),
        _ => return Err(DecodeError::Unsupported),
    })
}

/// 0F 01: register forms are whole opcodes; memory forms are selected by
/// ModRM.reg, of which only /7 (INVLPG) is decoded.
fn group7(cur: &mut Cursor<'_>, addr_size: u8) -> Result<Op, DecodeError> {
    let modrm = cur.next()?;
    if modrm >> 6 != 3 {
        if (modrm >> 3) & 7 != 7 {
            return Err(DecodeError::Unsupported);
        }
        skip_memory_operand(cur, modrm, addr_size)?;
        return Ok(Op::Invlpg);
    }
    Ok(match modrm {
        0xd9 => Op::Vmmcall,
        0xc1 => Op::Vmcall,
        0xd1 => Op::Xsetbv,
        0xf9 => Op::Rdtscp,
        0xc8 => Op::Monitor,
        0xc9 => Op::Mwait,
        _ => return Err(DecodeError::Unsupported),
    })
}

/// Skips the SIB byte and displacement of a memory ModRM (mod != 3), per
/// SDM tables 2-1 to 2-3:
/// - 16-bit addressing: mod 00 rm 110 and mod 10 have disp16, mod 01 disp8;
///   there is no SIB;
/// - 32/64-bit: rm 100 adds a SIB; mod 00 with rm 101 (RIP-relative in
///   64-bit mode) or with SIB base 101 has disp32; mod 01 disp8, mod 10
///   disp32. REX.B does not change any of this.
fn skip_memory_operand(cur: &mut Cursor<'_>, modrm: u8, addr_size: u8) -> Result<(), DecodeError> {
    let md = modrm >> 6;
    let rm = modrm & 7;
    let disp = if addr_size == 2 {
        match (md, rm) {
            (0, 6) | (2, _) => 2,
            (1, _) => 1,
            _ => 0,
        }
    } else {
        let base = if rm == 4 { cur.next()? & 7 } else { rm };
        match (md, base) {
            (0, 5) | (2, _) => 4,
            (1, _) => 1,
            _ => 0,
        }
    };
    cur.skip(disp)
}

#[cfg(test)]
#[path = "tests_insn.rs"]
mod tests;
