// SPDX-License-Identifier: GPL-2.0
//! The comparison: our [`Insn`] and iced's `Instruction`, both brought to
//! one normalised form, and the predicate that says which of iced's
//! instructions this decoder claims to support.
//!
//! Deliberate normalisations (each one is also commented where it is
//! applied):
//!
//! - 64-bit mode ignores the ES, CS, SS and DS overrides (SDM 3.3.7.1), so
//!   the decoder keeps `Insn.seg`/`Mem.seg` at their defaults for them.
//!   iced records such a prefix (unless FS/GS came first) and reports it
//!   as the memory segment; we map it back to the default (DS, or SS for
//!   an rSP/rBP base).
//! - Without an index register the SIB scale means nothing; iced keeps
//!   the encoded scale, our decoder reports 1.
//! - RIP/EIP-relative displacements: iced reports the target (we decode at
//!   IP 0, so next-IP + disp); the decoder keeps the raw displacement and
//!   a flag. We compare `len + disp` modulo the address size.
//! - Displacements and immediates are compared modulo the address size
//!   and the operand size (imm8 of `bt`/8-bit forms: modulo 256).
//! - `lmsw r32/r64` (66 or REX.W with a register operand): LMSW reads only
//!   the low 16 bits, and the decoder always reports a 16-bit source.
//! - VEX in real mode: iced (16-bit) decodes C4/C5 followed by a byte of
//!   C0 or above as VEX, but VEX is #UD in real and virtual-8086 mode, and
//!   so is the LES/LDS register form the bytes would otherwise be; the
//!   decoder reports Invalid. Not a claim.
//! - iced decodes with `DecoderOptions::NONE`, the Intel view: LOCK MOV
//!   CR0 (AMD's alias for CR8 outside 64-bit mode) is invalid for both.
//! - iced stops at the first field that makes an instruction invalid
//!   (VEX.L, vvvv); our decoder reads the whole instruction first, so on a
//!   short input it may say Truncated where iced says invalid. The harness
//!   then pads the input and requires ours to say Invalid (or TooLong).

use iced_x86::{Code, EncodingKind, Instruction, Mnemonic, OpKind, Register};
use vmm_emul::insn::{Alu, BitOp, Mem, Rep, VecMove};
use vmm_emul::{CpuMode, Insn, Op, Operand, Reg, Seg};

pub fn bitness(mode: CpuMode) -> u32 {
    match mode {
        CpuMode::Real | CpuMode::Protected16 | CpuMode::Compat16 => 16,
        CpuMode::Protected32 | CpuMode::Compat32 => 32,
        CpuMode::Long64 => 64,
    }
}

/// The operation iced's instruction is, if it is one this decoder claims
/// to decode (in exactly that form).
pub fn claim(ins: &Instruction, mode: CpuMode) -> Option<Op> {
    // VEX is #UD in real mode (see the module comment).
    if mode == CpuMode::Real && ins.encoding() == EncodingKind::VEX {
        return None;
    }
    use Mnemonic as M;
    let alu = |a| Some(Op::Alu(a));
    let bit = |b| Some(Op::Bit(b));
    match ins.mnemonic() {
        M::Add => return alu(Alu::Add),
        M::Or => return alu(Alu::Or),
        M::Adc => return alu(Alu::Adc),
        M::Sbb => return alu(Alu::Sbb),
        M::And => return alu(Alu::And),
        M::Sub => return alu(Alu::Sub),
        M::Xor => return alu(Alu::Xor),
        M::Cmp => return alu(Alu::Cmp),
        M::Test => return Some(Op::Test),
        M::Not => return Some(Op::Not),
        M::Neg => return Some(Op::Neg),
        M::Inc => return Some(Op::Inc),
        M::Dec => return Some(Op::Dec),
        M::Bt => return bit(BitOp::Bt),
        M::Bts => return bit(BitOp::Bts),
        M::Btr => return bit(BitOp::Btr),
        M::Btc => return bit(BitOp::Btc),
        M::Cmpxchg => return Some(Op::Cmpxchg),
        M::Xadd => return Some(Op::Xadd),
        M::Movzx => return Some(Op::Movzx),
        M::Movsx => return Some(Op::Movsx),
        M::Movsxd => return Some(Op::Movsxd),
        M::Movbe => return Some(Op::Movbe),
        M::Movnti => return Some(Op::Movnti),
        M::Movsb | M::Movsw | M::Movsq => return Some(Op::Movs),
        M::Stosb | M::Stosw | M::Stosd | M::Stosq => return Some(Op::Stos),
        M::Lodsb | M::Lodsw | M::Lodsd | M::Lodsq => return Some(Op::Lods),
        M::Cmpsb | M::Cmpsw | M::Cmpsq => return Some(Op::Cmps),
        M::Scasb | M::Scasw | M::Scasd | M::Scasq => return Some(Op::Scas),
        M::Insb | M::Insw | M::Insd => return Some(Op::Ins),
        M::Outsb | M::Outsw | M::Outsd => return Some(Op::Outs),
        M::Clts => return Some(Op::Clts),
        M::Lmsw => return Some(Op::Lmsw),
        M::Smsw => return Some(Op::Smsw),
        // Not the one-operand F6/F7 /5 (the widening multiply).
        M::Imul if ins.op_count() >= 2 => return Some(Op::Imul),
        // Not AMD TBM's XOP `bextr r, r/m, imm32`.
        M::Bextr if ins.encoding() == EncodingKind::VEX => return Some(Op::Bextr),
        M::Clflush | M::Clflushopt | M::Clwb => return Some(Op::Flush),
        M::Cpuid => return Some(Op::Cpuid),
        M::Rdmsr => return Some(Op::Rdmsr),
        M::Wrmsr => return Some(Op::Wrmsr),
        M::Hlt => return Some(Op::Hlt),
        M::Xsetbv => return Some(Op::Xsetbv),
        M::In => return Some(Op::In),
        M::Out => return Some(Op::Out),
        _ => {}
    }
    use Code as C;
    use VecMove::{Aligned, Movd, Movq, Unaligned};
    let v = |k| Some(Op::VecMove(k));
    match ins.code() {
        // Movsd/Cmpsd share their mnemonics with SSE2 instructions.
        C::Movsd_m32_m32 => Some(Op::Movs),
        C::Cmpsd_m32_m32 => Some(Op::Cmps),
        C::Mov_rm8_r8
        | C::Mov_rm16_r16
        | C::Mov_rm32_r32
        | C::Mov_rm64_r64
        | C::Mov_r8_rm8
        | C::Mov_r16_rm16
        | C::Mov_r32_rm32
        | C::Mov_r64_rm64
        | C::Mov_rm16_Sreg
        | C::Mov_r32m16_Sreg
        | C::Mov_r64m16_Sreg
        | C::Mov_AL_moffs8
        | C::Mov_AX_moffs16
        | C::Mov_EAX_moffs32
        | C::Mov_RAX_moffs64
        | C::Mov_moffs8_AL
        | C::Mov_moffs16_AX
        | C::Mov_moffs32_EAX
        | C::Mov_moffs64_RAX
        | C::Mov_r8_imm8
        | C::Mov_r16_imm16
        | C::Mov_r32_imm32
        | C::Mov_r64_imm64
        | C::Mov_rm8_imm8
        | C::Mov_rm16_imm16
        | C::Mov_rm32_imm32
        | C::Mov_rm64_imm32 => Some(Op::Mov),
        C::Mov_r32_cr | C::Mov_r64_cr => Some(Op::MovFromCr),
        C::Mov_cr_r32 | C::Mov_cr_r64 => Some(Op::MovToCr),
        C::Xchg_rm8_r8 | C::Xchg_rm16_r16 | C::Xchg_rm32_r32 | C::Xchg_rm64_r64 => Some(Op::Xchg),
        C::Push_rm16 | C::Push_rm32 | C::Push_rm64 => Some(Op::Push),
        C::Pop_rm16 | C::Pop_rm32 | C::Pop_rm64 => Some(Op::Pop),
        C::Movups_xmm_xmmm128
        | C::Movups_xmmm128_xmm
        | C::Movupd_xmm_xmmm128
        | C::Movupd_xmmm128_xmm
        | C::Movdqu_xmm_xmmm128
        | C::Movdqu_xmmm128_xmm
        | C::VEX_Vmovups_xmm_xmmm128
        | C::VEX_Vmovups_ymm_ymmm256
        | C::VEX_Vmovups_xmmm128_xmm
        | C::VEX_Vmovups_ymmm256_ymm
        | C::VEX_Vmovupd_xmm_xmmm128
        | C::VEX_Vmovupd_ymm_ymmm256
        | C::VEX_Vmovupd_xmmm128_xmm
        | C::VEX_Vmovupd_ymmm256_ymm
        | C::VEX_Vmovdqu_xmm_xmmm128
        | C::VEX_Vmovdqu_ymm_ymmm256
        | C::VEX_Vmovdqu_xmmm128_xmm
        | C::VEX_Vmovdqu_ymmm256_ymm => v(Unaligned),
        C::Movaps_xmm_xmmm128
        | C::Movaps_xmmm128_xmm
        | C::Movapd_xmm_xmmm128
        | C::Movapd_xmmm128_xmm
        | C::Movdqa_xmm_xmmm128
        | C::Movdqa_xmmm128_xmm
        | C::Movntps_m128_xmm
        | C::Movntpd_m128_xmm
        | C::Movntdq_m128_xmm
        | C::VEX_Vmovaps_xmm_xmmm128
        | C::VEX_Vmovaps_ymm_ymmm256
        | C::VEX_Vmovaps_xmmm128_xmm
        | C::VEX_Vmovaps_ymmm256_ymm
        | C::VEX_Vmovapd_xmm_xmmm128
        | C::VEX_Vmovapd_ymm_ymmm256
        | C::VEX_Vmovapd_xmmm128_xmm
        | C::VEX_Vmovapd_ymmm256_ymm
        | C::VEX_Vmovdqa_xmm_xmmm128
        | C::VEX_Vmovdqa_ymm_ymmm256
        | C::VEX_Vmovdqa_xmmm128_xmm
        | C::VEX_Vmovdqa_ymmm256_ymm
        | C::VEX_Vmovntps_m128_xmm
        | C::VEX_Vmovntps_m256_ymm
        | C::VEX_Vmovntpd_m128_xmm
        | C::VEX_Vmovntpd_m256_ymm
        | C::VEX_Vmovntdq_m128_xmm
        | C::VEX_Vmovntdq_m256_ymm => v(Aligned),
        C::Movd_xmm_rm32
        | C::Movq_xmm_rm64
        | C::Movd_rm32_xmm
        | C::Movq_rm64_xmm
        | C::VEX_Vmovd_xmm_rm32
        | C::VEX_Vmovq_xmm_rm64
        | C::VEX_Vmovd_rm32_xmm
        | C::VEX_Vmovq_rm64_xmm => v(Movd),
        C::Movq_xmm_xmmm64
        | C::Movq_xmmm64_xmm
        | C::VEX_Vmovq_xmm_xmmm64
        | C::VEX_Vmovq_xmmm64_xmm => v(Movq),
        _ => None,
    }
}

/// An operand in the normalised form both sides are brought to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum N {
    Gpr { num: u8, size: u8 },
    High(u8),
    Cr(u8),
    Seg(Seg),
    Vec { num: u8, size: u8 },
    Mem { seg: Seg, base: Option<u8>, index: Option<u8>, scale: u8, disp: u64, rip: bool, size: u8 },
    Imm(u64),
}

impl N {
    fn size(&self) -> Option<u8> {
        match *self {
            N::Gpr { size, .. } | N::Vec { size, .. } | N::Mem { size, .. } => Some(size),
            N::High(_) => Some(1),
            _ => None,
        }
    }
}

fn mask(bytes: u8) -> u64 {
    if bytes >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(bytes))) - 1
    }
}

/// A general register as (number, size in bytes), or a segment/vector/
/// control register.
fn iced_reg(r: Register) -> Option<N> {
    let v = r as u32;
    let off = |base: Register| v.wrapping_sub(base as u32);
    if (Register::AL..=Register::R15L).contains(&r) {
        let i = off(Register::AL) as u8;
        // AL..BL, then AH..BH, then SPL..DIL and R8L..R15L.
        return Some(match i {
            0..=3 => N::Gpr { num: i, size: 1 },
            4..=7 => N::High(i - 4),
            _ => N::Gpr { num: i - 4, size: 1 },
        });
    }
    let gpr = |base, size| N::Gpr { num: off(base) as u8, size };
    Some(if (Register::AX..=Register::R15W).contains(&r) {
        gpr(Register::AX, 2)
    } else if (Register::EAX..=Register::R15D).contains(&r) {
        gpr(Register::EAX, 4)
    } else if (Register::RAX..=Register::R15).contains(&r) {
        gpr(Register::RAX, 8)
    } else if (Register::XMM0..=Register::XMM15).contains(&r) {
        N::Vec { num: off(Register::XMM0) as u8, size: 16 }
    } else if (Register::YMM0..=Register::YMM15).contains(&r) {
        N::Vec { num: off(Register::YMM0) as u8, size: 32 }
    } else if (Register::CR0..=Register::CR15).contains(&r) {
        N::Cr(off(Register::CR0) as u8)
    } else {
        N::Seg(match r {
            Register::ES => Seg::Es,
            Register::CS => Seg::Cs,
            Register::SS => Seg::Ss,
            Register::DS => Seg::Ds,
            Register::FS => Seg::Fs,
            Register::GS => Seg::Gs,
            _ => return None,
        })
    })
}

/// iced's segment override, as the decoder should report it: 64-bit mode
/// ignores ES/CS/SS/DS overrides (iced records them).
pub fn iced_seg_prefix(ins: &Instruction, mode: CpuMode) -> Option<Seg> {
    match ins.segment_prefix() {
        Register::FS => Some(Seg::Fs),
        Register::GS => Some(Seg::Gs),
        _ if mode == CpuMode::Long64 => None,
        Register::ES => Some(Seg::Es),
        Register::CS => Some(Seg::Cs),
        Register::SS => Some(Seg::Ss),
        Register::DS => Some(Seg::Ds),
        _ => None,
    }
}

/// The effective segment of iced's memory operand, normalised like
/// [`iced_seg_prefix`].
fn iced_mem_seg(ins: &Instruction, mode: CpuMode) -> Seg {
    iced_seg_prefix(ins, mode).unwrap_or(match ins.memory_base() {
        Register::BP | Register::EBP | Register::ESP | Register::RBP | Register::RSP => Seg::Ss,
        _ => Seg::Ds,
    })
}

/// (number, address size) of a base or index register; RIP/EIP as 16.
fn addr_reg(r: Register) -> Result<Option<(u8, u8)>, String> {
    Ok(match r {
        Register::None => None,
        Register::RIP => Some((16, 8)),
        Register::EIP => Some((16, 4)),
        _ => match iced_reg(r) {
            Some(N::Gpr { num, size }) if size >= 2 => Some((num, size)),
            _ => return Err(format!("odd address register {r:?}")),
        },
    })
}

/// What iced says, normalised: the explicit operands, the operand size
/// and the address size (when there is a memory operand).
pub struct Iced {
    pub ops: Vec<N>,
    pub op_size: u8,
    pub addr_size: Option<u8>,
    /// For string instructions with a DS:rSI operand: its segment.
    pub str_seg: Option<Seg>,
}

fn string_addr(k: OpKind) -> Option<(u8, bool)> {
    Some(match k {
        OpKind::MemorySegSI => (2, true),
        OpKind::MemorySegESI => (4, true),
        OpKind::MemorySegRSI => (8, true),
        OpKind::MemoryESDI => (2, false),
        OpKind::MemoryESEDI => (4, false),
        OpKind::MemoryESRDI => (8, false),
        _ => return None,
    })
}

/// Brings iced's instruction to the normalised form; `op` is what
/// [`claim`] said, `op_size` ours (for masking immediates).
pub fn iced_form(
    ins: &Instruction,
    op: Op,
    mode: CpuMode,
    our_op_size: u8,
) -> Result<Iced, String> {
    let mut out = Iced { ops: Vec::new(), op_size: 0, addr_size: None, str_seg: None };
    let string =
        matches!(op, Op::Movs | Op::Stos | Op::Lods | Op::Cmps | Op::Scas | Op::Ins | Op::Outs);
    for i in 0..ins.op_count() {
        let k = ins.op_kind(i);
        if string {
            // String instructions: no explicit operands on our side; take
            // the address size and the DS:rSI segment.
            if let Some((a, si)) = string_addr(k) {
                out.addr_size = Some(a);
                if si {
                    out.str_seg = Some(iced_mem_seg(ins, mode));
                }
            }
            continue;
        }
        let n = match k {
            OpKind::Register => {
                let r = ins.op_register(i);
                let mut n = iced_reg(r).ok_or_else(|| format!("odd register {r:?}"))?;
                // LMSW reads only 16 bits; see the module comment.
                if op == Op::Lmsw {
                    if let N::Gpr { num, .. } = n {
                        n = N::Gpr { num, size: 2 };
                    }
                }
                n
            }
            OpKind::Memory => {
                let base = addr_reg(ins.memory_base())?;
                let index = addr_reg(ins.memory_index())?;
                let a = match (base, index) {
                    (Some((_, a)), _) | (None, Some((_, a))) => a,
                    (None, None) => ins.memory_displ_size() as u8,
                };
                if let (Some((_, x)), Some((_, y))) = (base, index) {
                    if x != y {
                        return Err(format!("base/index sizes differ: {x} {y}"));
                    }
                }
                out.addr_size = Some(a);
                let rip = base.is_some_and(|b| b.0 == 16);
                N::Mem {
                    seg: iced_mem_seg(ins, mode),
                    base: base.filter(|_| !rip).map(|b| b.0),
                    index: index.map(|x| x.0),
                    // The scale of an absent index is meaningless.
                    scale: if index.is_some() { ins.memory_index_scale() as u8 } else { 1 },
                    disp: ins.memory_displacement64() & mask(a),
                    rip,
                    size: ins.memory_size().size() as u8,
                }
            }
            OpKind::Immediate8 | OpKind::Immediate8_2nd => N::Imm(ins.immediate(i) & 0xff),
            OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => N::Imm(ins.immediate(i) & mask(our_op_size)),
            _ => return Err(format!("odd operand kind {k:?}")),
        };
        out.ops.push(n);
    }
    let size_of = |i: usize| out.ops.get(i).and_then(N::size).unwrap_or(0);
    out.op_size = match op {
        Op::Clts => 0,
        Op::Lmsw => 2,
        _ if string => ins.memory_size().size() as u8,
        Op::VecMove(VecMove::Movq) => 8,
        Op::VecMove(VecMove::Movd) => {
            out.ops.iter().find(|n| !matches!(n, N::Vec { .. })).and_then(N::size).unwrap_or(0)
        }
        // `out port, acc`: the accumulator is the second operand.
        Op::MovToCr | Op::Out => size_of(1),
        // Also imul (the destination's size; iced's imm8to16/32/64 are
        // masked to it above), bextr (three registers of one size) and
        // clflush/clflushopt/clwb (iced's m8: the byte the decoder
        // reports and the emulator checks like a one-byte read).
        _ => size_of(0),
    };
    Ok(out)
}

/// Our operand, normalised; `len` for RIP-relative targets.
fn our_operand(o: &Operand, insn: &Insn, imm_kind: Option<OpKind>) -> Option<N> {
    Some(match *o {
        Operand::None => return None,
        Operand::Reg(Reg::Gpr { num, size }) => N::Gpr { num, size },
        Operand::Reg(Reg::High(n)) => N::High(n),
        Operand::Reg(Reg::Cr(n)) => N::Cr(n),
        Operand::Reg(Reg::Seg(s)) => N::Seg(s),
        Operand::Reg(Reg::Vec { num, size }) => N::Vec { num, size },
        Operand::Mem(Mem { seg, base, index, scale, disp, rip_relative, size }) => {
            let a = insn.addr_size;
            let disp = if rip_relative {
                (disp as u64).wrapping_add(u64::from(insn.len))
            } else {
                disp as u64
            };
            N::Mem {
                seg,
                base,
                index,
                scale: if index.is_some() { scale } else { 1 },
                disp: disp & mask(a),
                rip: rip_relative,
                size,
            }
        }
        Operand::Imm(v) => match imm_kind {
            Some(OpKind::Immediate8 | OpKind::Immediate8_2nd) => N::Imm(v & 0xff),
            _ => N::Imm(v & mask(insn.op_size)),
        },
    })
}

/// What the legacy prefixes of `bytes` say, independently of both
/// decoders: whether 67 is present, and the REX byte right before the
/// opcode (64-bit mode; a later legacy prefix cancels it).
fn prefix_scan(bytes: &[u8], mode: CpuMode) -> (bool, u8) {
    let long = mode == CpuMode::Long64;
    let (mut has67, mut rex) = (false, 0);
    for &b in bytes {
        match b {
            0x40..=0x4f if long => rex = b,
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 => {
                has67 |= b == 0x67;
                rex = 0;
            }
            _ => break,
        }
    }
    (has67, rex)
}

/// Compares a successful decode of `bytes` with iced's (valid)
/// instruction.
pub fn compare(
    insn: &Insn,
    ins: &Instruction,
    mode: CpuMode,
    bytes: &[u8],
) -> Result<(), (String, String)> {
    let fail = |cat: &str, why: String| Err((cat.to_string(), why));
    if usize::from(insn.len) != ins.len() {
        return fail("length", format!("len {} vs iced {}", insn.len, ins.len()));
    }
    if insn.mode != mode || insn.bytes() != &bytes[..ins.len()] {
        return fail("bytes", format!("mode {:?}, bytes {:02x?}", insn.mode, insn.bytes()));
    }
    let (has67, rex) = prefix_scan(bytes, mode);
    // VEX carries its own R/X/B/W, which the decoder reports as REX bits.
    if !insn.vex && insn.rex != rex {
        return fail("rex", format!("rex {:#x}, prefixes say {rex:#x}", insn.rex));
    }
    let addr_size = match (bitness(mode), has67) {
        (16, false) | (32, true) => 2,
        (32, false) | (16, true) | (64, true) => 4,
        _ => 8,
    };
    if insn.addr_size != addr_size {
        return fail(
            "addr-size",
            format!("addr_size {}, prefixes say {addr_size}", insn.addr_size),
        );
    }
    let Some(op) = claim(ins, mode) else {
        return fail(
            "op-not-claimed",
            format!("ours {:?}, iced {:?} is not claimed", insn.op, ins.code()),
        );
    };
    if op != insn.op {
        return fail("op", format!("ours {:?}, iced {:?} ({:?})", insn.op, op, ins.code()));
    }
    let ice = match iced_form(ins, op, mode, insn.op_size) {
        Ok(x) => x,
        Err(e) => return fail("iced-form", e),
    };
    if insn.lock != ins.has_lock_prefix() {
        return fail("lock", format!("lock {} vs iced {}", insn.lock, ins.has_lock_prefix()));
    }
    if insn.vex != (ins.encoding() == EncodingKind::VEX) {
        return fail("vex", format!("vex {} vs iced {:?}", insn.vex, ins.encoding()));
    }
    let want_rep = match (op, ins.has_repe_prefix(), ins.has_repne_prefix()) {
        _ if !insn.is_string() => Rep::None,
        (Op::Cmps | Op::Scas, true, _) => Rep::Rep,
        (Op::Cmps | Op::Scas, _, true) => Rep::Repne,
        // F2 on the unconditional string instructions repeats like F3.
        (_, true, _) | (_, _, true) => Rep::Rep,
        _ => Rep::None,
    };
    if insn.rep != want_rep {
        return fail("rep", format!("rep {:?} vs iced-derived {:?}", insn.rep, want_rep));
    }
    if insn.seg != iced_seg_prefix(ins, mode) {
        return fail(
            "seg-prefix",
            format!("seg {:?} vs iced {:?}", insn.seg, iced_seg_prefix(ins, mode)),
        );
    }
    if let Some(s) = ice.str_seg {
        if insn.seg.unwrap_or(Seg::Ds) != s {
            return fail("string-seg", format!("string seg {:?} vs iced {s:?}", insn.seg));
        }
    }
    if insn.op_size != ice.op_size {
        return fail("op-size", format!("op_size {} vs iced {}", insn.op_size, ice.op_size));
    }
    if let Some(a) = ice.addr_size {
        if insn.addr_size != a {
            return fail("addr-size", format!("addr_size {} vs iced {a}", insn.addr_size));
        }
    }
    // moffs (A0-A3) is documented as zero-extended, not just equal modulo
    // the address size.
    if matches!(
        ins.code(),
        Code::Mov_AL_moffs8
            | Code::Mov_AX_moffs16
            | Code::Mov_EAX_moffs32
            | Code::Mov_RAX_moffs64
            | Code::Mov_moffs8_AL
            | Code::Mov_moffs16_AX
            | Code::Mov_moffs32_EAX
            | Code::Mov_moffs64_RAX
    ) {
        if let Some(m) = insn.mem() {
            if m.disp as u64 != ins.memory_displacement64() {
                return fail(
                    "moffs",
                    format!("moffs {:#x} vs iced {:#x}", m.disp, ins.memory_displacement64()),
                );
            }
        }
    }
    let mut ours = Vec::new();
    for o in insn.operands.iter() {
        let kind = ours.len() as u32;
        let imm_kind = (kind < ins.op_count()).then(|| ins.op_kind(kind));
        if let Some(n) = our_operand(o, insn, imm_kind) {
            ours.push(n);
        }
    }
    if ours != ice.ops {
        return fail("operands", format!("operands {ours:?}\n  vs iced {:?}", ice.ops));
    }
    Ok(())
}
