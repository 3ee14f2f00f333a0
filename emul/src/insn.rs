// SPDX-License-Identifier: GPL-2.0

//! What the decoder produces: one instruction, its operation, its explicit
//! operands in Intel order (destination first), and the prefixes and sizes
//! that govern it.

pub use super::x86::insn::{CpuMode, Seg};

/// The architectural limit on instruction length (SDM 2.3.11).
pub const MAX_LEN: usize = 15;

/// The two-operand arithmetic and logic group (opcodes 00-3F, 80-83).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alu {
    /// `add`
    Add,
    /// `or`
    Or,
    /// `adc`
    Adc,
    /// `sbb`
    Sbb,
    /// `and`
    And,
    /// `sub`
    Sub,
    /// `xor`
    Xor,
    /// `cmp`: `sub` without writing the destination.
    Cmp,
}

impl Alu {
    /// The operation numbered `n & 7` in opcode and ModRM.reg order.
    pub const fn from_index(n: u8) -> Self {
        match n & 7 {
            0 => Self::Add,
            1 => Self::Or,
            2 => Self::Adc,
            3 => Self::Sbb,
            4 => Self::And,
            5 => Self::Sub,
            6 => Self::Xor,
            _ => Self::Cmp,
        }
    }
}

/// The bit-test group (0F A3/AB/B3/BB, 0F BA /4-/7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitOp {
    /// `bt`: test only.
    Bt,
    /// `bts`: test and set.
    Bts,
    /// `btr`: test and reset.
    Btr,
    /// `btc`: test and complement.
    Btc,
}

/// The operation, independent of operand forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `mov` in every r/m, moffs, immediate and store-Sreg form.
    Mov,
    /// `movzx`: the source size is the source operand's.
    Movzx,
    /// `movsx`.
    Movsx,
    /// `movsxd` (63 /r, 64-bit mode).
    Movsxd,
    /// `movbe`: a byte-swapping load or store.
    Movbe,
    /// `movnti`: a non-temporal store; emulated as a plain store.
    Movnti,
    /// `xchg`: locked whenever an operand is memory.
    Xchg,
    /// `add`, `or`, `adc`, `sbb`, `and`, `sub`, `xor`, `cmp`.
    Alu(Alu),
    /// `test`.
    Test,
    /// `not`.
    Not,
    /// `neg`.
    Neg,
    /// `inc`.
    Inc,
    /// `dec`.
    Dec,
    /// `bt`, `bts`, `btr`, `btc`.
    Bit(BitOp),
    /// `cmpxchg`.
    Cmpxchg,
    /// `xadd`.
    Xadd,
    /// `push r/m` (FF /6).
    Push,
    /// `pop r/m` (8F /0).
    Pop,
    /// `movs`.
    Movs,
    /// `stos`.
    Stos,
    /// `lods`.
    Lods,
    /// `cmps`.
    Cmps,
    /// `scas`.
    Scas,
    /// `ins`: port DX to ES:rDI.
    Ins,
    /// `outs`: DS:rSI (or an override) to port DX.
    Outs,
    /// `mov crN, r` (0F 22).
    MovToCr,
    /// `mov r, crN` (0F 20).
    MovFromCr,
    /// `clts`.
    Clts,
    /// `lmsw r/m16`.
    Lmsw,
    /// `smsw r/m`.
    Smsw,
    /// `imul r, r/m` (0F AF) and `imul r, r/m, imm` (69, 6B): a signed
    /// multiply truncated to the operand size.
    Imul,
    /// `bextr r, r/m, r` (VEX.0F38 F7, BMI1): extract the bit field whose
    /// start and length are bits 7:0 and 15:8 of the third operand.
    Bextr,
    /// `clflush`, `clflushopt`, `clwb` (0F AE /7, 66 0F AE /7, 66 0F AE
    /// /6): write back a cache line. Checked like a one-byte read, then
    /// nothing to do: MMIO is not cached, and the host keeps RAM coherent.
    Flush,
    /// `movd`/`movq`/`movdqa`/`movdqu`/`movaps`/`movups`/`movapd`/
    /// `movupd`/`movntdq`/`movntps`/`movntpd` and their VEX forms: a
    /// vector load or store, see [`VecMove`].
    VecMove(VecMove),
    /// `cpuid` (0F A2). Decoded for its length only, like the other
    /// intercept instructions below: [`crate::emulate`] does not execute
    /// them. They have no explicit operands and an `op_size` of 0.
    Cpuid,
    /// `rdmsr` (0F 32).
    Rdmsr,
    /// `wrmsr` (0F 30).
    Wrmsr,
    /// `hlt` (F4).
    Hlt,
    /// `xsetbv` (0F 01 D1).
    Xsetbv,
    /// `in al/ax/eax, imm8/dx` (E4, E5, EC, ED): operands `[rAX, port]`,
    /// the port an 8-bit [`Operand::Imm`] or DX. Not executed.
    In,
    /// `out imm8/dx, al/ax/eax` (E6, E7, EE, EF): operands `[port, rAX]`.
    /// Not executed.
    Out,
}

/// Which vector move, for [`Op::VecMove`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VecMove {
    /// `movd`/`movq` between a general register or memory and an XMM
    /// register; loads zero the rest of the XMM register.
    Movd,
    /// `movq xmm, xmm/m64` (F3 0F 7E) and `movq xmm/m64, xmm` (66 0F D6):
    /// 64 bits, loads zero-extend.
    Movq,
    /// A full-width move that needs natural alignment (`movdqa`,
    /// `movaps`, `movapd`, `movntdq`, `movntps`, `movntpd`): #GP on an
    /// unaligned memory operand.
    Aligned,
    /// A full-width move with no alignment rule (`movdqu`, `movups`,
    /// `movupd`).
    Unaligned,
}

/// A general-purpose register by its number, 0 (rAX) to 15 (r15), as the
/// REX and ModRM fields encode it.
pub type Gpr = u8;

/// rAX.
pub const RAX: Gpr = 0;
/// rCX.
pub const RCX: Gpr = 1;
/// rDX.
pub const RDX: Gpr = 2;
/// rBX.
pub const RBX: Gpr = 3;
/// rSP.
pub const RSP: Gpr = 4;
/// rBP.
pub const RBP: Gpr = 5;
/// rSI.
pub const RSI: Gpr = 6;
/// rDI.
pub const RDI: Gpr = 7;

/// A register operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    /// The low `size` bytes (1, 2, 4 or 8) of general register `num`.
    /// Writing 4 bytes zeroes bits 63:32 (in every mode, which only 64-bit
    /// code can observe); writing 1 or 2 bytes keeps the rest.
    Gpr {
        /// 0-15.
        num: Gpr,
        /// 1, 2, 4 or 8.
        size: u8,
    },
    /// AH, CH, DH or BH: bits 15:8 of register `0..=3`. Only without REX.
    High(Gpr),
    /// Control register CR`n` (0, 2, 3, 4 or 8).
    Cr(u8),
    /// A segment register.
    Seg(Seg),
    /// The low `size` bytes (16 for XMM, 32 for YMM) of vector register
    /// `num` (0-15).
    Vec {
        /// 0-15.
        num: u8,
        /// 16 or 32.
        size: u8,
    },
}

/// A memory operand, before segmentation: `seg:[base + index*scale +
/// disp]`, wrapped to the address size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mem {
    /// The segment: the override, else DS, or SS for rBP/rSP bases.
    pub seg: Seg,
    /// The base register, if any.
    pub base: Option<Gpr>,
    /// The index register, if any.
    pub index: Option<Gpr>,
    /// 1, 2, 4 or 8.
    pub scale: u8,
    /// The displacement, sign-extended (moffs: zero-extended).
    pub disp: i64,
    /// The base is the address of the next instruction (RIP- or
    /// EIP-relative, 64-bit mode only).
    pub rip_relative: bool,
    /// The access size in bytes.
    pub size: u8,
}

/// An explicit operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// Absent.
    None,
    /// A register.
    Reg(Reg),
    /// Memory.
    Mem(Mem),
    /// An immediate, sign-extended to 64 bits from its encoded size (the
    /// operation truncates it to the operand size). `mov r64, imm64`
    /// carries all 64 bits.
    Imm(u64),
}

/// A repeat prefix, as the instruction interprets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rep {
    /// No repeat prefix, or one the instruction ignores.
    None,
    /// `rep` (F3 or F2 on a string instruction without a condition), or
    /// `repe` (F3 on `cmps`/`scas`).
    Rep,
    /// `repne` (F2 on `cmps`/`scas`).
    Repne,
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    /// The operation.
    pub op: Op,
    /// The explicit operands, destination first; unused slots are
    /// [`Operand::None`]. String instructions have none: their operands
    /// follow from `op`, `op_size`, `addr_size` and `seg`.
    pub operands: [Operand; 3],
    /// The operand size in bytes (1, 2, 4, 8; 16 or 32 for vector moves).
    /// For `movzx`/`movsx`/`movsxd` it is the destination's size; for
    /// `in`/`out`/`ins`/`outs` at most 4 (REX.W is ignored); 0 for
    /// operations without explicit operands (`clts`, `cpuid`, `rdmsr`,
    /// `wrmsr`, `hlt`, `xsetbv`).
    pub op_size: u8,
    /// The address size in bytes (2, 4 or 8).
    pub addr_size: u8,
    /// The segment override prefix, if any that counts in this mode (64-bit
    /// mode ignores ES, CS, SS and DS overrides).
    pub seg: Option<Seg>,
    /// A LOCK prefix was present (and is valid here: on anything else the
    /// decoder says Invalid, #UD).
    pub lock: bool,
    /// The repeat prefix.
    pub rep: Rep,
    /// The REX prefix byte that applies, or 0.
    pub rex: u8,
    /// The instruction was VEX-encoded.
    pub vex: bool,
    /// The length in bytes.
    pub len: u8,
    /// The mode it was decoded for.
    pub mode: CpuMode,
    /// The instruction's bytes; the first `len` are meaningful.
    pub bytes: [u8; MAX_LEN],
}

impl Insn {
    /// The instruction's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&self.bytes)
    }

    /// The first memory operand, if any.
    pub fn mem(&self) -> Option<Mem> {
        self.operands.iter().find_map(|o| match o {
            Operand::Mem(m) => Some(*m),
            _ => None,
        })
    }

    /// Whether this is a string instruction (implicit rSI/rDI operands).
    pub fn is_string(&self) -> bool {
        matches!(self.op, Op::Movs | Op::Stos | Op::Lods | Op::Cmps | Op::Scas | Op::Ins | Op::Outs)
    }
}
