// SPDX-License-Identifier: GPL-2.0

//! Seeded random cases: one instruction's bytes and the register, flag,
//! vector and memory state to start it from.
//!
//! Every memory operand is solved backwards: a target address inside the
//! data area is chosen first, then the base (or index, or displacement)
//! that reaches it from the other, random, register values. So registers
//! keep random values (including their upper halves under a 0x67 prefix)
//! while every access stays inside the data area, which is what
//! [`vmm_emul_native::Host::run`] requires.

use vmm_emul_native::{
    host::{FLAGS_FIXED, FLAGS_IN_MASK},
    Regs, DATA_LEN,
};

pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const DF: u64 = 1 << 10;
pub const OF: u64 = 1 << 11;
/// The flags a case may compare.
pub const ALL: u64 = CF | PF | AF | ZF | SF | DF | OF;

const RAX: u8 = 0;
const RCX: u8 = 1;
const RSP: u8 = 4;
const RSI: u8 = 6;
const RDI: u8 = 7;

/// Where plain memory operands and string data go (offsets in the data
/// area); the stack for push/pop lives above.
const GEN_LO: u64 = 256;
const GEN_HI: u64 = 4096 - 256;
const STACK_LO: u64 = 4096 + 640;
const STACK_HI: u64 = DATA_LEN as u64 - 640;

pub use crate::rng::Rng;

/// Where the host puts things.
#[derive(Clone, Copy)]
pub struct Env {
    /// The address of the instruction under test (its RIP).
    pub insn: u64,
    /// The address of the data area.
    pub data: u64,
}

/// One test case.
#[derive(Clone)]
pub struct Case {
    /// The per-opcode key the counts are kept under.
    pub name: String,
    pub bytes: Vec<u8>,
    pub regs: Regs,
    /// The data area's initial contents ([`DATA_LEN`] bytes).
    pub data: Vec<u8>,
    /// The flags the SDM defines after this instruction (compared).
    pub defined: u64,
    /// The flags it leaves undefined (counted).
    pub undefined: u64,
    /// The emulator's REP budget per call.
    pub budget: u32,
    pub mem: bool,
    pub a32: bool,
    pub lock: bool,
    /// The memory operand's address (or the string destination).
    pub target: Option<u64>,
    /// The instruction only checks its memory operand (`clflush` and
    /// friends): nothing may change, and the emulator must check exactly
    /// the one byte at `target`, as a read.
    pub check_only: bool,
}

/// A memory operand's form; `disp` is filled in by [`Draft::place`].
#[derive(Clone, Copy, Debug)]
pub struct MemOp {
    pub base: Option<u8>,
    pub index: Option<u8>,
    pub scale: u8,
    pub disp: i64,
    /// 0, 1 or 4 bytes (ignored, always 4, without a base).
    pub disp_len: u8,
    pub rip: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Rm {
    None,
    Reg(u8),
    Mem(MemOp),
}

#[derive(Clone, Copy, Debug)]
pub struct Vex {
    pub l: bool,
    /// 0: none, 1: 66, 2: F3, 3: F2.
    pub pp: u8,
    pub w: bool,
    /// Use the three-byte form even when two bytes would do.
    pub three: bool,
    /// The opcode map: 1 (0F) or 2 (0F 38, three-byte form only).
    pub map: u8,
    /// The register VEX.vvvv names (0-15, encoded inverted); 0 is also
    /// the 1111b of an instruction that names none.
    pub vvvv: u8,
}

/// An instruction being put together.
#[derive(Clone, Debug)]
pub struct Ins {
    /// Legacy prefixes, in order.
    pub pre: Vec<u8>,
    pub w: bool,
    /// Emit a REX prefix even when no bit of it is needed.
    pub force_rex: bool,
    pub vex: Option<Vex>,
    /// The opcode bytes (for VEX, without the 0F map escape).
    pub opcode: Vec<u8>,
    /// ModRM.reg, 0-15 (an opcode extension is 0-7).
    pub reg: u8,
    pub rm: Rm,
    /// A register in the opcode's low three bits (B0-BF), for REX.B.
    pub opreg: Option<u8>,
    pub imm: Vec<u8>,
    /// Keep the legacy prefixes in the order given.
    pub ordered: bool,
}

impl Ins {
    fn new(opcode: &[u8]) -> Self {
        Self {
            pre: Vec::new(),
            w: false,
            force_rex: false,
            vex: None,
            opcode: opcode.to_vec(),
            reg: 0,
            rm: Rm::None,
            opreg: None,
            imm: Vec::new(),
            ordered: false,
        }
    }

    fn rex_bits(&self) -> u8 {
        let mut r = 0;
        if self.w {
            r |= 8;
        }
        if self.reg >= 8 {
            r |= 4;
        }
        if self.opreg.is_some_and(|n| n >= 8) {
            r |= 1;
        }
        match self.rm {
            Rm::Reg(n) if n >= 8 => r |= 1,
            Rm::Mem(m) if !m.rip => {
                if m.index.is_some_and(|i| i >= 8) {
                    r |= 2;
                }
                if m.base.is_some_and(|b| b >= 8) {
                    r |= 1;
                }
            }
            _ => {}
        }
        r
    }

    /// Whether a legacy REX prefix is emitted.
    pub fn has_rex(&self) -> bool {
        self.vex.is_none() && (self.force_rex || self.rex_bits() != 0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.pre.clone();
        let bits = self.rex_bits();
        if let Some(v) = self.vex {
            let (r, x, b) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
            let l = if v.l { 4 } else { 0 };
            let vvvv = (!v.vvvv & 0xf) << 3;
            if v.map == 1 && !v.three && !x && !b && !v.w {
                out.push(0xc5);
                out.push(if r { 0 } else { 0x80 } | vvvv | l | v.pp);
            } else {
                out.push(0xc4);
                out.push(
                    if r { 0 } else { 0x80 }
                        | if x { 0 } else { 0x40 }
                        | if b { 0 } else { 0x20 }
                        | v.map,
                );
                out.push(if v.w { 0x80 } else { 0 } | vvvv | l | v.pp);
            }
        } else if self.has_rex() {
            out.push(0x40 | bits);
        }
        out.extend_from_slice(&self.opcode);
        match self.rm {
            Rm::None => {}
            Rm::Reg(n) => out.push(0xc0 | ((self.reg & 7) << 3) | (n & 7)),
            Rm::Mem(m) => encode_mem(&mut out, self.reg, &m),
        }
        out.extend_from_slice(&self.imm);
        out
    }
}

fn encode_mem(out: &mut Vec<u8>, reg: u8, m: &MemOp) {
    let r = (reg & 7) << 3;
    let disp32 = (m.disp as i32).to_le_bytes();
    if m.rip {
        out.push(r | 5);
        out.extend_from_slice(&disp32);
        return;
    }
    let ss = (m.scale.trailing_zeros() as u8) << 6;
    match m.base {
        None => {
            out.push(r | 4);
            out.push(ss | (m.index.map_or(4, |i| i & 7) << 3) | 5);
            out.extend_from_slice(&disp32);
        }
        Some(b) => {
            let md = match m.disp_len {
                0 => 0,
                1 => 0x40,
                _ => 0x80,
            };
            if m.index.is_some() || b & 7 == 4 {
                out.push(md | r | 4);
                out.push(ss | (m.index.map_or(4, |i| i & 7) << 3) | (b & 7));
            } else {
                out.push(md | r | (b & 7));
            }
            match m.disp_len {
                0 => {}
                1 => out.push(m.disp as i8 as u8),
                _ => out.extend_from_slice(&disp32),
            }
        }
    }
}

/// A general register operand as the instruction sees it.
#[derive(Clone, Copy, Debug)]
pub struct GOp {
    pub num: u8,
    pub size: u8,
    /// AH, CH, DH or BH: bits 15:8 of `num`.
    pub high: bool,
}

pub fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(size))) - 1
    }
}

impl GOp {
    /// Register `num` as encoded, at `size` bytes, with or without REX.
    pub fn new(num: u8, size: u8, rex: bool) -> Self {
        if size == 1 && !rex && (4..8).contains(&num) {
            Self { num: num - 4, size, high: true }
        } else {
            Self { num, size, high: false }
        }
    }

    pub fn get(self, g: &[u64; 16]) -> u64 {
        let v = g[usize::from(self.num)];
        if self.high {
            (v >> 8) & 0xff
        } else {
            v & mask(self.size)
        }
    }

    pub fn set(self, g: &mut [u64; 16], val: u64) {
        let r = &mut g[usize::from(self.num)];
        if self.high {
            *r = (*r & !0xff00) | ((val & 0xff) << 8);
        } else {
            *r = (*r & !mask(self.size)) | (val & mask(self.size));
        }
    }
}

/// A case under construction.
pub struct Draft<'r> {
    pub rng: &'r mut Rng,
    pub env: Env,
    pub ins: Ins,
    pub gpr: [u64; 16],
    pub rflags: u64,
    pub vec: [[u8; 32]; 16],
    pub data: Vec<u8>,
    pub a32: bool,
    pub lock: bool,
    /// The memory operand's address, once placed.
    pub target: Option<u64>,
}

/// Something that adds to the effective address besides base, index and
/// displacement: the bit offset of `bt m, r` or the increment of `pop
/// [rsp]`.
#[derive(Clone, Copy)]
pub enum Extra {
    None,
    Bytes(i64),
}

impl<'r> Draft<'r> {
    pub fn new(rng: &'r mut Rng, env: Env) -> Self {
        let mut gpr = [0u64; 16];
        for g in gpr.iter_mut() {
            *g = rng.value();
        }
        gpr[usize::from(RSP)] = (env.data + STACK_LO + rng.below(STACK_HI - STACK_LO)) & !7;
        if rng.one_in(8) {
            gpr[usize::from(RSP)] |= rng.below(8);
        }
        let rflags = (rng.next_u64() & FLAGS_IN_MASK) | FLAGS_FIXED;
        let mut vec = [[0u8; 32]; 16];
        for v in vec.iter_mut() {
            for c in v.chunks_mut(8) {
                c.copy_from_slice(&rng.value().to_le_bytes());
            }
        }
        let mut data = vec![0u8; DATA_LEN];
        for c in data.chunks_mut(8) {
            c.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        Self {
            rng,
            env,
            ins: Ins::new(&[]),
            gpr,
            rflags,
            vec,
            data,
            a32: false,
            lock: false,
            target: None,
        }
    }

    /// Adds the operand-size prefixes for a `size`-byte operation.
    pub fn op_size(&mut self, size: u8) {
        match size {
            2 => self.ins.pre.push(0x66),
            8 => {
                self.ins.w = true;
                // REX.W wins over 66.
                if self.rng.one_in(16) {
                    self.ins.pre.push(0x66);
                }
            }
            _ => {}
        }
    }

    /// Sometimes a 0x67 prefix.
    pub fn maybe_a32(&mut self, odds: u64) {
        if self.rng.one_in(odds) {
            self.a32 = true;
            self.ins.pre.push(0x67);
        }
    }

    /// Sometimes a segment override that 64-bit mode ignores.
    pub fn maybe_seg_noise(&mut self) {
        if self.rng.one_in(12) {
            let s = self.rng.pick(&[0x26, 0x2e, 0x36, 0x3e]);
            self.ins.pre.push(s);
        }
    }

    /// Shuffles the legacy prefixes (their order does not matter).
    pub fn shuffle_prefixes(&mut self) {
        if self.ins.ordered {
            return;
        }
        let n = self.ins.pre.len();
        for i in (1..n).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            self.ins.pre.swap(i, j);
        }
    }

    /// An 8-bit operation without other REX bits: sometimes a bare REX (so
    /// that 4-7 name SPL..DIL rather than AH..BH).
    pub fn maybe_rex(&mut self) {
        if self.rng.one_in(3) {
            self.ins.force_rex = true;
        }
    }

    /// A random memory operand form. `need_base`: a real base register
    /// (no RIP-relative, absolute or index-only form); `avoid`: registers
    /// that must not be the base.
    pub fn mem_form(&mut self, need_base: bool, avoid: &[u8]) -> MemOp {
        loop {
            let mut m =
                MemOp { base: None, index: None, scale: 1, disp: 0, disp_len: 4, rip: false };
            let kind = if need_base { 3 + self.rng.below(13) } else { self.rng.below(16) };
            match kind {
                0 => m.rip = true,
                1 => {}
                2 => {
                    m.index =
                        Some(self.rng.pick(&[0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]));
                    m.scale = self.rng.pick(&[1, 2, 4, 8]);
                }
                _ => {
                    let b = self.rng.below(16) as u8;
                    if avoid.contains(&b) {
                        continue;
                    }
                    m.base = Some(b);
                    if self.rng.one_in(2) {
                        m.index = Some(
                            self.rng.pick(&[0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
                        );
                        m.scale = self.rng.pick(&[1, 2, 4, 8]);
                    }
                    m.disp_len = self.rng.pick(&[0, 1, 4]);
                    let rsp_needs_disp = b == RSP && m.index.is_some();
                    if m.disp_len == 0 && (b & 7 == 5 || rsp_needs_disp) {
                        m.disp_len = 1;
                    }
                }
            }
            return m;
        }
    }

    /// A random operand size among `sizes`.
    pub fn size(&mut self, sizes: &[u8]) -> u8 {
        self.rng.pick(sizes)
    }

    /// The address mask of the address size.
    fn amask(&self) -> u64 {
        if self.a32 {
            0xffff_ffff
        } else {
            u64::MAX
        }
    }

    /// Random upper bits for a register used at a 32-bit address size.
    fn upper(&mut self) -> u64 {
        if self.a32 {
            self.rng.next_u64() & !0xffff_ffff
        } else {
            0
        }
    }

    /// Places the memory operand of `self.ins` (its form already chosen,
    /// and everything else about the instruction too, so its length is
    /// final): the `size`-byte access at base + index * scale + disp +
    /// `extra` lands at a random address `align`-aligned in the general
    /// area, not crossing a cache line when `locked`. Sets the base (or
    /// index, or displacement) to reach it, writes a random value there,
    /// and returns the address.
    pub fn place(&mut self, size: u64, align: u64, locked: bool, extra: Extra) -> u64 {
        let Rm::Mem(mut m) = self.ins.rm else { panic!("no memory operand") };
        let extra = match extra {
            Extra::None => 0u64,
            Extra::Bytes(b) => b as u64,
        };
        let data = self.env.data;
        let mut t = loop {
            let n = (GEN_HI - GEN_LO - size) / align;
            let t = data + ((GEN_LO + self.rng.below(n) * align) & !(align - 1));
            if !locked || (t % 64) + size <= 64 {
                break t;
            }
        };
        let amask = self.amask();
        let sc = u64::from(m.scale);
        let small_disp = |rng: &mut Rng, len: u8| -> i64 {
            match len {
                0 => 0,
                1 => rng.range(-120, 120),
                _ => rng.range(-2048, 2048),
            }
        };
        if m.rip {
            let len = self.ins.encode().len() as u64;
            m.disp = t.wrapping_sub(self.env.insn + len).wrapping_sub(extra) as i64;
        } else {
            match (m.base, m.index) {
                (None, None) => m.disp = t.wrapping_sub(extra) as i64,
                (base @ (None | Some(RSP)), Some(i)) => {
                    // Solve the index.
                    let bv = base.map_or(0, |b| self.gpr[usize::from(b)]);
                    let len = if base.is_none() { 4 } else { m.disp_len };
                    m.disp = small_disp(self.rng, len);
                    let mut x =
                        t.wrapping_sub(extra).wrapping_sub(m.disp as u64).wrapping_sub(bv) & amask;
                    let r = x % sc;
                    m.disp += r as i64;
                    x -= r;
                    let up = self.upper();
                    self.gpr[usize::from(i)] = up | (x / sc);
                }
                (Some(RSP), None) => {
                    // Only the displacement and RSP itself are free: aim
                    // near the stack, then move RSP for alignment and to
                    // keep a locked access within a cache line.
                    m.disp = match m.disp_len {
                        0 => 0,
                        _ => self.rng.range(-90, 90),
                    };
                    let at = |g: &[u64; 16], disp: i64| {
                        g[usize::from(RSP)].wrapping_add(extra).wrapping_add(disp as u64)
                    };
                    t = at(&self.gpr, m.disp);
                    let mut delta = t % align;
                    if locked && ((t - delta) % 64) + size > 64 {
                        delta += ((t - delta) % 64) + size - 64;
                    }
                    self.gpr[usize::from(RSP)] -= delta;
                    t = at(&self.gpr, m.disp);
                    let off = t.wrapping_sub(data);
                    assert!(
                        off + size <= DATA_LEN as u64 && t % align == 0,
                        "rsp-relative placement"
                    );
                }
                (Some(b), Some(i)) if i == b => {
                    m.disp = self.disp_any(m.disp_len);
                    let k = 1 + sc;
                    let mut x = t.wrapping_sub(extra).wrapping_sub(m.disp as u64) & amask;
                    if k == 2 && x % 2 == 1 {
                        if m.disp_len > 0 {
                            m.disp ^= 1;
                        } else {
                            t += 1;
                        }
                        x = t.wrapping_sub(extra).wrapping_sub(m.disp as u64) & amask;
                    }
                    let v = if k == 2 {
                        (x / 2) | (self.rng.below(2) << if self.a32 { 31 } else { 63 })
                    } else {
                        x.wrapping_mul(inverse(k))
                    };
                    let up = self.upper();
                    self.gpr[usize::from(b)] = up | (v & amask);
                }
                (Some(b), idx) => {
                    m.disp = self.disp_any(m.disp_len);
                    let iv = idx.map_or(0, |i| self.gpr[usize::from(i)].wrapping_mul(sc));
                    let v =
                        t.wrapping_sub(extra).wrapping_sub(m.disp as u64).wrapping_sub(iv) & amask;
                    let up = self.upper();
                    self.gpr[usize::from(b)] = up | v;
                }
            }
        }
        self.ins.rm = Rm::Mem(m);
        let v = self.rng.value().to_le_bytes();
        let off = (t - data) as usize;
        let n = size.min(8) as usize;
        self.data[off..off + n].copy_from_slice(&v[..n]);
        self.target = Some(t);
        t
    }

    /// A displacement of `len` bytes: any value the field holds.
    fn disp_any(&mut self, len: u8) -> i64 {
        match len {
            0 => 0,
            1 => self.rng.range(-128, 127),
            _ => {
                if self.rng.one_in(2) {
                    self.rng.range(-4096, 4096)
                } else {
                    i64::from(self.rng.next_u64() as i32)
                }
            }
        }
    }

    /// Adds LOCK.
    pub fn set_lock(&mut self) {
        self.ins.pre.push(0xf0);
        self.lock = true;
    }

    /// Writes `bytes` at data address `at`.
    pub fn poke(&mut self, at: u64, bytes: &[u8]) {
        let off = (at - self.env.data) as usize;
        self.data[off..off + bytes.len()].copy_from_slice(bytes);
    }

    pub fn finish(mut self, name: String, defined: u64, undefined: u64, check_only: bool) -> Case {
        self.shuffle_prefixes();
        // A REX prefix followed by a legacy prefix is ignored (not before
        // VEX, where it is #UD).
        let room = self.ins.encode().len() < 15;
        if room && self.ins.vex.is_none() && !self.ins.pre.is_empty() && self.rng.one_in(24) {
            let at = self.rng.below(self.ins.pre.len() as u64) as usize;
            let rex = 0x40 | self.rng.below(16) as u8;
            self.ins.pre.insert(at, rex);
            // One byte longer: a RIP-relative operand must reach as far.
            if let Rm::Mem(m) = &mut self.ins.rm {
                if m.rip {
                    m.disp -= 1;
                }
            }
        }
        let budget = self.rng.pick(&[1, 2, 3, 64]);
        Case {
            name,
            bytes: self.ins.encode(),
            regs: Regs { gpr: self.gpr, rflags: self.rflags, vec: self.vec },
            data: self.data,
            defined,
            undefined,
            budget,
            mem: matches!(self.ins.rm, Rm::Mem(_)) || self.target.is_some(),
            a32: self.a32,
            lock: self.lock,
            target: self.target,
            check_only,
        }
    }
}

/// The inverse of odd `k` modulo 2^64.
fn inverse(k: u64) -> u64 {
    let mut inv = k;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(k.wrapping_mul(inv)));
    }
    inv
}

const ALU_NAMES: [&str; 8] = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"];

/// The families of cases; [`generate`] makes one of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Alu,
    Test,
    Unary,
    IncDec,
    Bit,
    Cmpxchg,
    Xadd,
    Xchg,
    Mov,
    Extend,
    Movbe,
    Movnti,
    PushPop,
    String,
    Vector,
    Imul,
    Bextr,
    Clflush,
    Clflushopt,
    Clwb,
}

pub fn generate(rng: &mut Rng, env: Env, family: Family) -> Case {
    let mut d = Draft::new(rng, env);
    match family {
        Family::Alu => alu(&mut d),
        Family::Test => test(&mut d),
        Family::Unary => unary(&mut d),
        Family::IncDec => inc_dec(&mut d),
        Family::Bit => bit(&mut d),
        Family::Cmpxchg => cmpxchg(&mut d),
        Family::Xadd => xadd(&mut d),
        Family::Xchg => xchg(&mut d),
        Family::Mov => mov(&mut d),
        Family::Extend => extend(&mut d),
        Family::Movbe => movbe(&mut d),
        Family::Movnti => movnti(&mut d),
        Family::PushPop => push_pop(&mut d),
        Family::String => string(&mut d),
        Family::Vector => vector(&mut d),
        Family::Imul => imul(&mut d),
        Family::Bextr => bextr(&mut d),
        Family::Clflush => flush(&mut d, false, 7, "0f ae/7 clflush"),
        Family::Clflushopt => flush(&mut d, true, 7, "66 0f ae/7 clflushopt"),
        Family::Clwb => flush(&mut d, true, 6, "66 0f ae/6 clwb"),
    }
    .build(d)
}

/// What a family's generator settles besides the draft.
struct Spec {
    name: String,
    defined: u64,
    undefined: u64,
    /// See [`Case::check_only`].
    check_only: bool,
}

impl Spec {
    fn build(self, d: Draft<'_>) -> Case {
        d.finish(self.name, self.defined, self.undefined, self.check_only)
    }
}

/// The flags of a logical operation: AF undefined.
const LOGIC: (u64, u64) = (ALL & !AF, AF);
/// Flags of BT/BTS/BTR/BTC: CF defined, ZF unaffected, the rest undefined.
const BITF: (u64, u64) = (CF | ZF | DF, OF | SF | AF | PF);
/// Flags of IMUL (two and three operands): CF and OF defined, SF, ZF, AF
/// and PF undefined.
const IMULF: (u64, u64) = (CF | OF | DF, SF | ZF | AF | PF);
/// Flags of BEXTR: ZF defined, CF = OF = 0, AF, SF and PF undefined.
const BEXTRF: (u64, u64) = (ZF | CF | OF | DF, AF | SF | PF);

fn spec(name: String, (defined, undefined): (u64, u64)) -> Spec {
    Spec { name, defined, undefined, check_only: false }
}

/// The immediate bytes of a `size`-byte random value.
fn imm(d: &mut Draft<'_>, size: u8) -> Vec<u8> {
    d.rng.value().to_le_bytes()[..usize::from(size)].to_vec()
}

/// Chooses the r/m operand: a register (0-15), or a memory form (with a
/// 0x67 prefix one time in six) that still needs [`Draft::place`] once
/// the instruction is complete.
fn rm(d: &mut Draft<'_>, mem: bool, need_base: bool, avoid: &[u8]) {
    if mem && !d.a32 {
        d.maybe_a32(6);
    }
    d.ins.rm =
        if mem { Rm::Mem(d.mem_form(need_base, avoid)) } else { Rm::Reg(d.rng.below(16) as u8) };
}

/// 00-3D, 80, 81, 83.
fn alu(d: &mut Draft<'_>) -> Spec {
    let op = d.rng.below(8) as u8;
    let form = d.rng.below(6);
    let size = match form {
        3 => 1,
        4 | 5 => d.size(&[2, 4, 8]),
        _ => d.size(&[1, 2, 4, 8]),
    };
    d.op_size(size);
    let w = u8::from(size > 1);
    let mem = d.rng.one_in(2) && form != 2;
    let name;
    match form {
        0 | 1 => {
            let opc = op * 8 + (form as u8) * 2 + w;
            d.ins.opcode = vec![opc];
            d.ins.reg = d.rng.below(16) as u8;
            rm(d, mem, false, &[]);
            name = format!(
                "{opc:02x} {} {}",
                ALU_NAMES[usize::from(op)],
                if form == 0 { "r/m,r" } else { "r,r/m" }
            );
        }
        2 => {
            let opc = op * 8 + 4 + w;
            d.ins.opcode = vec![opc];
            d.ins.imm = imm(d, size.min(4));
            name = format!("{opc:02x} {} acc,imm", ALU_NAMES[usize::from(op)]);
        }
        _ => {
            let opc = [0x80, 0x81, 0x83][form as usize - 3];
            d.ins.opcode = vec![opc];
            d.ins.reg = op;
            rm(d, mem, false, &[]);
            let n = if opc == 0x81 { size.min(4) } else { 1 };
            d.ins.imm = imm(d, n);
            name = format!("{opc:02x}/{op} {} r/m,imm", ALU_NAMES[usize::from(op)]);
        }
    }
    if size == 1 {
        d.maybe_rex();
    }
    let writes_rm = op != 7 && form != 1 && form != 2;
    if mem && writes_rm && d.rng.one_in(4) {
        d.set_lock();
    }
    if mem {
        let locked = d.lock;
        d.place(u64::from(size), 1, locked, Extra::None);
    }
    let flags = if matches!(op, 1 | 4 | 6) { LOGIC } else { (ALL, 0) };
    spec(name, flags)
}

/// 84/85, A8/A9, F6/F7 /0 (and the /1 alias).
fn test(d: &mut Draft<'_>) -> Spec {
    let form = d.rng.below(3);
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let w = u8::from(size > 1);
    let mem = d.rng.one_in(2) && form != 1;
    let name = match form {
        0 => {
            d.ins.opcode = vec![0x84 + w];
            d.ins.reg = d.rng.below(16) as u8;
            rm(d, mem, false, &[]);
            format!("{:02x} test r/m,r", 0x84 + w)
        }
        1 => {
            d.ins.opcode = vec![0xa8 + w];
            d.ins.imm = imm(d, size.min(4));
            format!("{:02x} test acc,imm", 0xa8 + w)
        }
        _ => {
            d.ins.opcode = vec![0xf6 + w];
            d.ins.reg = if d.rng.one_in(8) { 1 } else { 0 };
            rm(d, mem, false, &[]);
            d.ins.imm = imm(d, size.min(4));
            format!("{:02x}/{} test r/m,imm", 0xf6 + w, d.ins.reg)
        }
    };
    if size == 1 {
        d.maybe_rex();
    }
    if mem {
        d.place(u64::from(size), 1, false, Extra::None);
    }
    spec(name, LOGIC)
}

/// F6/F7 /2 (not) and /3 (neg).
fn unary(d: &mut Draft<'_>) -> Spec {
    let neg = d.rng.one_in(2);
    rmw_group(d, 0xf6, if neg { 3 } else { 2 }, if neg { "neg" } else { "not" })
}

/// FE/FF /0 and /1.
fn inc_dec(d: &mut Draft<'_>) -> Spec {
    let dec = d.rng.one_in(2);
    rmw_group(d, 0xfe, u8::from(dec), if dec { "dec" } else { "inc" })
}

/// A one-operand read-modify-write group member: opcode `base` (8-bit)
/// or `base + 1`, ModRM.reg `reg`, on a register or on memory (then
/// sometimes with LOCK).
fn rmw_group(d: &mut Draft<'_>, base: u8, reg: u8, name: &str) -> Spec {
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let w = u8::from(size > 1);
    d.ins.opcode = vec![base + w];
    d.ins.reg = reg;
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    if size == 1 {
        d.maybe_rex();
    }
    if mem && d.rng.one_in(4) {
        d.set_lock();
    }
    if mem {
        let locked = d.lock;
        d.place(u64::from(size), 1, locked, Extra::None);
    }
    spec(format!("{:02x}/{} {}", base + w, reg, name), (ALL, 0))
}

/// 0F A3/AB/B3/BB (register offset) and 0F BA /4-/7 (imm8).
fn bit(d: &mut Draft<'_>) -> Spec {
    const NAMES: [&str; 4] = ["bt", "bts", "btr", "btc"];
    let op = d.rng.below(4) as u8;
    let size = d.size(&[2, 4, 8]);
    d.op_size(size);
    let mem = !d.rng.one_in(4);
    let reg_form = d.rng.one_in(2);
    if mem {
        d.maybe_a32(5);
    }
    let name;
    if reg_form {
        let opc = [0xa3, 0xab, 0xb3, 0xbb][usize::from(op)];
        d.ins.opcode = vec![0x0f, opc];
        let r = d.rng.below(16) as u8;
        d.ins.reg = r;
        // The offset register is not the base, so that solving the base
        // leaves the offset alone; RSP cannot be solved.
        rm(d, mem, true, &[r, RSP]);
        name = format!("0f {opc:02x} {} r/m,r", NAMES[usize::from(op)]);
    } else {
        d.ins.opcode = vec![0x0f, 0xba];
        d.ins.reg = 4 + op;
        rm(d, mem, false, &[]);
        let b = if d.rng.one_in(2) { d.rng.below(u64::from(size) * 8) } else { d.rng.below(256) };
        d.ins.imm = vec![b as u8];
        name = format!("0f ba/{} {} r/m,imm8", 4 + op, NAMES[usize::from(op)]);
    }
    if mem && op != 0 && d.rng.one_in(4) {
        d.set_lock();
    }
    if mem {
        let mut extra = Extra::None;
        if reg_form {
            let bits = i64::from(size) * 8;
            let r = usize::from(d.ins.reg);
            // The offset: near the operand, anywhere, or on an edge. Under
            // 0x67 the CPU wraps the sum of the effective address and the
            // offset's displacement to 32 bits, as `place` expects.
            let off = match d.rng.below(4) {
                0 => d.rng.range(-4 * bits, 4 * bits) as u64,
                1 => d.rng.next_u64(),
                _ => d.rng.value(),
            };
            let keep = d.gpr[r] & !mask(size);
            d.gpr[r] = if d.rng.one_in(2) { keep | (off & mask(size)) } else { off };
            let signed = match size {
                2 => i64::from(d.gpr[r] as i16),
                4 => i64::from(d.gpr[r] as i32),
                _ => d.gpr[r] as i64,
            };
            extra = Extra::Bytes(signed.div_euclid(bits).wrapping_mul(i64::from(size)));
        }
        let locked = d.lock;
        d.place(u64::from(size), 1, locked, extra);
    }
    spec(name, BITF)
}

/// 0F B0/B1.
fn cmpxchg(d: &mut Draft<'_>) -> Spec {
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let w = u8::from(size > 1);
    d.ins.opcode = vec![0x0f, 0xb0 + w];
    d.ins.reg = d.rng.below(16) as u8;
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    if size == 1 {
        d.maybe_rex();
    }
    if mem && d.rng.one_in(3) {
        d.set_lock();
    }
    let rex = d.ins.has_rex();
    let acc = GOp::new(RAX, size, rex);
    let equal = d.rng.one_in(2);
    if mem {
        let locked = d.lock;
        let t = d.place(u64::from(size), 1, locked, Extra::None);
        if equal {
            let v = acc.get(&d.gpr).to_le_bytes();
            d.poke(t, &v[..usize::from(size)]);
        }
    } else if equal {
        let Rm::Reg(n) = d.ins.rm else { unreachable!() };
        let dst = GOp::new(n, size, rex);
        let v = dst.get(&d.gpr);
        acc.set(&mut d.gpr, v);
    }
    spec(format!("0f {:02x} cmpxchg", 0xb0 + w), (ALL, 0))
}

/// 0F C0/C1.
fn xadd(d: &mut Draft<'_>) -> Spec {
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let w = u8::from(size > 1);
    d.ins.opcode = vec![0x0f, 0xc0 + w];
    d.ins.reg = d.rng.below(16) as u8;
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    if size == 1 {
        d.maybe_rex();
    }
    if mem && d.rng.one_in(3) {
        d.set_lock();
    }
    if mem {
        let locked = d.lock;
        d.place(u64::from(size), 1, locked, Extra::None);
    }
    spec(format!("0f {:02x} xadd", 0xc0 + w), (ALL, 0))
}

/// 86/87.
fn xchg(d: &mut Draft<'_>) -> Spec {
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let w = u8::from(size > 1);
    d.ins.opcode = vec![0x86 + w];
    d.ins.reg = d.rng.below(16) as u8;
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    if size == 1 {
        d.maybe_rex();
    }
    if mem && d.rng.one_in(4) {
        d.set_lock();
    }
    if mem {
        // Locked whether or not the prefix is there.
        d.place(u64::from(size), 1, true, Extra::None);
    }
    spec(format!("{:02x} xchg", 0x86 + w), (ALL, 0))
}

/// 88-8B, C6/C7, A0-A3, B0-BF.
fn mov(d: &mut Draft<'_>) -> Spec {
    let form = d.rng.below(5);
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let w = u8::from(size > 1);
    let name = match form {
        0 | 1 => {
            let opc = 0x88 + 2 * (form as u8) + w;
            d.ins.opcode = vec![opc];
            d.ins.reg = d.rng.below(16) as u8;
            let mem = d.rng.one_in(2);
            rm(d, mem, false, &[]);
            if size == 1 {
                d.maybe_rex();
            }
            if mem {
                d.place(u64::from(size), 1, false, Extra::None);
            }
            format!("{opc:02x} mov")
        }
        2 => {
            let opc = 0xc6 + w;
            d.ins.opcode = vec![opc];
            let mem = d.rng.one_in(2);
            rm(d, mem, false, &[]);
            d.ins.imm = imm(d, size.min(4));
            if size == 1 {
                d.maybe_rex();
            }
            if mem {
                d.place(u64::from(size), 1, false, Extra::None);
            }
            format!("{opc:02x} mov r/m,imm")
        }
        3 => {
            let opc = 0xa0 + 2 * (d.rng.below(2) as u8) + w;
            d.maybe_a32(3);
            if size == 1 && d.rng.one_in(3) {
                d.ins.force_rex = true;
            }
            d.ins.opcode = vec![opc];
            let t = d.env.data + GEN_LO + d.rng.below(GEN_HI - GEN_LO - 8);
            d.ins.imm =
                if d.a32 { (t as u32).to_le_bytes().to_vec() } else { t.to_le_bytes().to_vec() };
            let v = d.rng.value().to_le_bytes();
            d.poke(t, &v[..usize::from(size)]);
            d.target = Some(t);
            format!("{opc:02x} mov moffs")
        }
        _ => {
            let r = d.rng.below(16) as u8;
            let opc = if size == 1 { 0xb0 } else { 0xb8 } + (r & 7);
            d.ins.opcode = vec![opc];
            d.ins.opreg = Some(r);
            d.ins.imm = imm(d, size);
            if size == 1 {
                d.maybe_rex();
            }
            format!("{:02x} mov r,imm", opc & 0xf8)
        }
    };
    spec(name, (ALL, 0))
}

/// 0F B6/B7/BE/BF and 63.
fn extend(d: &mut Draft<'_>) -> Spec {
    let sxd = d.rng.one_in(3);
    let size = d.size(&[2, 4, 8]);
    d.op_size(size);
    let (opc, src): (Vec<u8>, u8) = if sxd {
        (vec![0x63], size.min(4))
    } else {
        let o = d.rng.pick(&[0xb6u8, 0xb7, 0xbe, 0xbf]);
        (vec![0x0f, o], if o & 1 == 0 { 1 } else { 2 })
    };
    d.ins.opcode = opc.clone();
    d.ins.reg = d.rng.below(16) as u8;
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    if src == 1 {
        d.maybe_rex();
    }
    if mem {
        d.place(u64::from(src), 1, false, Extra::None);
    }
    let name = match opc.as_slice() {
        [0x63] => "63 movsxd".to_string(),
        [_, o] => format!("0f {o:02x} {}", if o & 8 == 0 { "movzx" } else { "movsx" }),
        _ => unreachable!(),
    };
    spec(name, (ALL, 0))
}

/// 0F 38 F0/F1.
fn movbe(d: &mut Draft<'_>) -> Spec {
    let size = d.size(&[2, 4, 8]);
    d.op_size(size);
    let store = d.rng.one_in(2);
    let opc = if store { 0xf1 } else { 0xf0 };
    d.ins.opcode = vec![0x0f, 0x38, opc];
    d.ins.reg = d.rng.below(16) as u8;
    rm(d, true, false, &[]);
    d.place(u64::from(size), 1, false, Extra::None);
    spec(format!("0f 38 {opc:02x} movbe"), (ALL, 0))
}

/// 0F C3.
fn movnti(d: &mut Draft<'_>) -> Spec {
    let size = d.size(&[4, 8]);
    // No 66 beside REX.W here: 66 0F C3 is #UD.
    d.ins.w = size == 8;
    d.ins.opcode = vec![0x0f, 0xc3];
    d.ins.reg = d.rng.below(16) as u8;
    rm(d, true, false, &[]);
    d.place(u64::from(size), 1, false, Extra::None);
    spec("0f c3 movnti".to_string(), (ALL, 0))
}

/// FF /6 and 8F /0.
fn push_pop(d: &mut Draft<'_>) -> Spec {
    let pop = d.rng.one_in(2);
    let size: u8 = if d.rng.one_in(4) { 2 } else { 8 };
    if size == 2 {
        d.ins.pre.push(0x66);
    } else if d.rng.one_in(4) {
        d.ins.w = true;
    }
    d.ins.opcode = vec![if pop { 0x8f } else { 0xff }];
    d.ins.reg = if pop { 0 } else { 6 };
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    if mem {
        let base_rsp = matches!(d.ins.rm, Rm::Mem(MemOp { base: Some(RSP), .. }));
        let extra = if pop && base_rsp { Extra::Bytes(i64::from(size)) } else { Extra::None };
        d.place(u64::from(size), 1, false, extra);
    }
    spec(if pop { "8f/0 pop r/m" } else { "ff/6 push r/m" }.to_string(), (ALL, 0))
}

/// MOVS, CMPS, STOS, LODS, SCAS with and without REP/REPE/REPNE.
fn string(d: &mut Draft<'_>) -> Spec {
    const OPS: [(u8, &str); 5] =
        [(0xa4, "movs"), (0xa6, "cmps"), (0xaa, "stos"), (0xac, "lods"), (0xae, "scas")];
    let (base, mn) = d.rng.pick(&OPS);
    let size = d.size(&[1, 2, 4, 8]);
    d.op_size(size);
    let opc = base + u8::from(size > 1);
    d.ins.opcode = vec![opc];
    let rep = d.rng.pick(&[0u8, 0xf3, 0xf3, 0xf2]);
    if rep != 0 {
        d.ins.pre.push(rep);
    }
    d.maybe_a32(3);
    d.maybe_seg_noise();
    if d.rng.one_in(8) {
        d.ins.force_rex = true;
    }
    let count = if d.rng.one_in(8) { 0 } else { 1 + d.rng.below(12) };
    let span = 16 * 8;
    let pos =
        |d: &mut Draft<'_>| d.env.data + GEN_LO + span + d.rng.below(GEN_HI - GEN_LO - 2 * span);
    let si = pos(d);
    let mut di = pos(d);
    if base == 0xa4 && d.rng.one_in(3) {
        di = (si as i64 + d.rng.range(-16, 16)) as u64;
    }
    let (up_si, up_di, up_cx) = (d.upper(), d.upper(), d.upper());
    d.gpr[usize::from(RSI)] = up_si | si;
    d.gpr[usize::from(RDI)] = up_di | di;
    if rep != 0 {
        d.gpr[usize::from(RCX)] = up_cx | count;
    }
    let step = if d.rflags & DF != 0 { -i64::from(size) } else { i64::from(size) };
    // Equal runs, so that REPE/REPNE go on for a while.
    if matches!(base, 0xa6 | 0xae) && d.rng.one_in(2) {
        let run = d.rng.below(count + 1) as i64;
        let acc = d.gpr[0].to_le_bytes();
        for k in 0..run {
            let s = (si as i64 + k * step) as u64;
            let t = (di as i64 + k * step) as u64;
            let v: Vec<u8> = if base == 0xa6 {
                let o = (s - d.env.data) as usize;
                d.data[o..o + usize::from(size)].to_vec()
            } else {
                acc[..usize::from(size)].to_vec()
            };
            d.poke(t, &v);
        }
    }
    let pfx = match (rep, base) {
        (0, _) => "",
        (0xf3, 0xa6 | 0xae) => "repe ",
        (0xf2, 0xa6 | 0xae) => "repne ",
        (0xf3, _) => "rep ",
        _ => "f2 ",
    };
    d.target = Some(di);
    spec(format!("{pfx}{opc:02x} {mn}"), (ALL, 0))
}

/// The SSE and AVX moves the emulator knows.
fn vector(d: &mut Draft<'_>) -> Spec {
    #[derive(Clone, Copy, PartialEq)]
    enum K {
        Unaligned,
        Aligned,
        Nt,
        Movd,
        Movq,
    }
    use K::*;
    // (mnemonic, mandatory prefix 0/66/F3, opcode, kind, store)
    const T: [(&str, u8, u8, K, bool); 21] = [
        ("movups", 0, 0x10, Unaligned, false),
        ("movups", 0, 0x11, Unaligned, true),
        ("movupd", 0x66, 0x10, Unaligned, false),
        ("movupd", 0x66, 0x11, Unaligned, true),
        ("movaps", 0, 0x28, Aligned, false),
        ("movaps", 0, 0x29, Aligned, true),
        ("movapd", 0x66, 0x28, Aligned, false),
        ("movapd", 0x66, 0x29, Aligned, true),
        ("movntps", 0, 0x2b, Nt, true),
        ("movntpd", 0x66, 0x2b, Nt, true),
        ("movd/q", 0x66, 0x6e, Movd, false),
        ("movd/q", 0x66, 0x7e, Movd, true),
        ("movdqa", 0x66, 0x6f, Aligned, false),
        ("movdqa", 0x66, 0x7f, Aligned, true),
        ("movdqu", 0xf3, 0x6f, Unaligned, false),
        ("movdqu", 0xf3, 0x7f, Unaligned, true),
        ("movq", 0xf3, 0x7e, Movq, false),
        ("movq", 0x66, 0xd6, Movq, true),
        ("movntdq", 0x66, 0xe7, Nt, true),
        ("movdqu", 0xf3, 0x6f, Unaligned, false),
        ("movdqa", 0x66, 0x6f, Aligned, false),
    ];
    let (mn, pfx, opc, kind, _store) = d.rng.pick(&T);
    let vex = d.rng.one_in(2);
    let l = vex && !matches!(kind, Movd | Movq) && d.rng.one_in(2);
    let wide = d.rng.one_in(2);
    let width: u64 = match kind {
        Movd => {
            if wide {
                8
            } else {
                4
            }
        }
        Movq => 8,
        _ => {
            if l {
                32
            } else {
                16
            }
        }
    };
    let w = if kind == Movd { wide } else { d.rng.one_in(4) };
    if vex {
        let pp = match pfx {
            0x66 => 1,
            0xf3 => 2,
            _ => 0,
        };
        d.ins.vex = Some(Vex { l, pp, w, three: d.rng.one_in(3), map: 1, vvvv: 0 });
        d.ins.opcode = vec![opc];
    } else {
        if pfx != 0 {
            d.ins.pre.push(pfx);
        }
        d.ins.w = w;
        d.ins.opcode = vec![0x0f, opc];
        if d.rng.one_in(8) {
            d.ins.force_rex = true;
        }
    }
    d.maybe_seg_noise();
    d.ins.reg = d.rng.below(16) as u8;
    let mem = kind == Nt || d.rng.one_in(2);
    let align = if matches!(kind, Aligned | Nt) { width } else { 1 };
    if mem {
        d.maybe_a32(6);
    }
    rm(d, mem, false, &[]);
    if mem {
        d.place(width, align, false, Extra::None);
        // A whole random vector there, not just 8 bytes.
        let t = d.target.unwrap_or(0);
        let v: Vec<u8> = (0..width).map(|_| d.rng.next_u64() as u8).collect();
        d.poke(t, &v);
    }
    // Keep the mandatory prefix last, next to the opcode. F3 wins over an
    // extra 66.
    if !vex && pfx != 0 {
        d.ins.pre.retain(|&p| p != pfx);
        if pfx == 0xf3 && d.rng.one_in(8) {
            d.ins.pre.push(0x66);
        }
        d.shuffle_prefixes();
        d.ins.pre.push(pfx);
        d.ins.ordered = true;
    }
    let name = format!(
        "{}{mn} {:02x}{}{}",
        if vex { "v" } else { "" },
        opc,
        if vex && l { " 256" } else { "" },
        if kind == Movd && w { " w" } else { "" }
    );
    spec(name, (ALL, 0))
}

/// A factor of a `size`-byte `imul` (the low `size` bytes count): often
/// one whose product with another such lands right at the edge of the
/// signed range (just overflowing, or just not).
fn factor(rng: &mut Rng, size: u8) -> u64 {
    let bits = 8 * i64::from(size);
    let v = match rng.below(6) {
        0 | 1 => rng.value(),
        2 => {
            // Powers of two around the square root of the range, nudged.
            let k = bits / 2 - 1 + rng.range(-1, 1);
            let v = (1i64 << k).wrapping_add(rng.range(-2, 2));
            (if rng.one_in(2) { v.wrapping_neg() } else { v }) as u64
        }
        3 => {
            // The integer square roots of 2^15, 2^31 and 2^63, and one
            // more: their squares overflow, or just do not.
            let r: i64 = match size {
                2 => 181,
                4 => 46_340,
                _ => 3_037_000_499,
            };
            let v = r + rng.range(0, 1);
            (if rng.one_in(2) { v.wrapping_neg() } else { v }) as u64
        }
        4 => {
            let min = 1u64 << (bits - 1);
            rng.pick(&[0, 1, u64::MAX, min, min - 1, min + 1, 2, u64::MAX - 1])
        }
        _ => rng.range(-300, 300) as u64,
    };
    v & mask(size)
}

/// 0F AF (`imul r, r/m`), 69 (`imul r, r/m, imm16/32`) and 6B (`imul r,
/// r/m, imm8`).
fn imul(d: &mut Draft<'_>) -> Spec {
    let form = d.rng.below(3);
    let size = d.size(&[2, 4, 8]);
    d.op_size(size);
    d.ins.opcode = match form {
        0 => vec![0x0f, 0xaf],
        1 => vec![0x69],
        _ => vec![0x6b],
    };
    let reg = d.rng.below(16) as u8;
    d.ins.reg = reg;
    let mem = d.rng.one_in(2);
    rm(d, mem, false, &[]);
    let name = match form {
        0 => "0f af imul r,r/m",
        1 => {
            let n = usize::from(size.min(4));
            d.ins.imm = factor(d.rng, size.min(4)).to_le_bytes()[..n].to_vec();
            "69 imul r,r/m,imm"
        }
        _ => {
            let b = if d.rng.one_in(2) {
                d.rng.pick(&[0x80u8, 0x81, 0xff, 0xfe, 0, 1, 2, 0x7f])
            } else {
                d.rng.next_u64() as u8
            };
            d.ins.imm = vec![b];
            "6b imul r,r/m,imm8"
        }
    };
    // The factors in registers (random bits above the operand size, which
    // a 16-bit destination keeps), before `place` solves the address. RSP
    // keeps its value in the stack area, which `place` may build on.
    let set = |d: &mut Draft<'_>, r: u8| {
        if r == RSP {
            return;
        }
        let up = d.rng.next_u64() & !mask(size);
        d.gpr[usize::from(r)] = up | factor(d.rng, size);
    };
    if form == 0 {
        set(d, reg);
    }
    if let Rm::Reg(n) = d.ins.rm {
        set(d, n);
    }
    if mem {
        let t = d.place(u64::from(size), 1, false, Extra::None);
        let v = factor(d.rng, size).to_le_bytes();
        d.poke(t, &v[..usize::from(size)]);
    }
    spec(name.to_string(), IMULF)
}

/// VEX.LZ.0F38.W0/W1 F7 (`bextr r, r/m, r`), with start and length
/// (bits 7:0 and 15:8 of the control register) inside the operand, on
/// its edges and beyond.
fn bextr(d: &mut Draft<'_>) -> Spec {
    let size = d.size(&[4, 8]);
    let ctl = d.rng.below(16) as u8;
    d.ins.vex = Some(Vex { l: false, pp: 0, w: size == 8, three: true, map: 2, vvvv: ctl });
    d.ins.opcode = vec![0xf7];
    d.ins.reg = d.rng.below(16) as u8;
    d.maybe_seg_noise();
    let mem = d.rng.one_in(2);
    // The control register is not the base, so that solving the base
    // leaves it alone.
    rm(d, mem, false, &[ctl]);
    let width = 8 * u64::from(size);
    let start = match d.rng.below(4) {
        0 | 1 => d.rng.below(width),
        2 => d.rng.pick(&[width - 1, width, width + 1, 63, 64, 65, 127, 128, 255]),
        _ => d.rng.below(256),
    };
    let len = match d.rng.below(4) {
        0 | 1 => d.rng.below(width + 1),
        2 => d.rng.pick(&[0, 1, width - 1, width, width + 1, 63, 64, 65, 128, 255]),
        _ => d.rng.below(256),
    };
    // Bits above 15 do not count.
    let up = if d.rng.one_in(2) { d.rng.next_u64() & !0xffff } else { 0 };
    d.gpr[usize::from(ctl)] = up | (len << 8) | start;
    if mem {
        d.place(u64::from(size), 1, false, Extra::None);
    }
    spec(format!("vex 0f38 f7 bextr r{width}"), BEXTRF)
}

/// 0F AE /7 (`clflush m8`), 66 0F AE /7 (`clflushopt m8`) and 66 0F AE /6
/// (`clwb m8`) on the data area: they change nothing visible.
fn flush(d: &mut Draft<'_>, p66: bool, ext: u8, name: &str) -> Spec {
    if p66 {
        d.ins.pre.push(0x66);
    }
    d.ins.opcode = vec![0x0f, 0xae];
    d.ins.reg = ext;
    // REX.W changes nothing here.
    if d.rng.one_in(8) {
        d.ins.w = true;
    } else if d.rng.one_in(8) {
        d.ins.force_rex = true;
    }
    d.maybe_seg_noise();
    rm(d, true, false, &[]);
    d.place(1, 1, false, Extra::None);
    Spec { name: name.to_string(), defined: ALL, undefined: 0, check_only: true }
}
