// SPDX-License-Identifier: GPL-2.0

//! Arithmetic with exact RFLAGS results (SDM vol. 1 3.4.3 and appendix A,
//! vol. 2 per instruction). Values are `u64`, of which the low `size`
//! bytes count; results come back truncated to `size`.
//!
//! Where the SDM calls a flag undefined, this module does what the Intel
//! host of the native differential test (`emul/native`) does; guests cannot
//! rely on these, and an AMD CPU may differ (see `Documentation/emul.rst`):
//! - AND, OR, XOR and TEST clear AF;
//! - BT, BTS, BTR and BTC leave OF, SF, AF, PF and ZF unchanged;
//! - IMUL (two and three operands) sets SF and PF from the truncated
//!   result and clears ZF and AF, even for a zero result;
//! - BEXTR clears AF, SF and PF.

use super::{
    insn::Alu,
    x86::regs::rflags::{AF, CF, OF, PF, SF, ZF},
};

/// The six status flags.
pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;

/// All ones in the low `size` bytes.
pub const fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size as u32)) - 1
    }
}

/// The sign bit of a `size`-byte value.
const fn sign(size: u8) -> u64 {
    1u64 << (8 * (if size >= 8 { 8 } else { size }) as u32 - 1)
}

/// `v` (`size` bytes) sign-extended to 64 bits.
pub const fn sext(v: u64, size: u8) -> u64 {
    let shift = 64 - 8 * (if size >= 8 { 8 } else { size }) as u32;
    (((v << shift) as i64) >> shift) as u64
}

/// ZF, SF and PF of the `size`-byte result `r`.
fn zsp(r: u64, size: u8) -> u64 {
    let r = r & mask(size);
    let mut f = 0;
    if r == 0 {
        f |= ZF;
    }
    if r & sign(size) != 0 {
        f |= SF;
    }
    if (r as u8).count_ones() % 2 == 0 {
        f |= PF;
    }
    f
}

/// `a + b + carry` on `size` bytes: (result, CF PF AF ZF SF OF).
fn add(a: u64, b: u64, carry: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let wide = u128::from(a) + u128::from(b) + u128::from(carry);
    let r = (wide as u64) & m;
    let mut f = zsp(r, size);
    if wide > u128::from(m) {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (a ^ r) & (b ^ r) & sign(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// `a - b - borrow` on `size` bytes: (result, CF PF AF ZF SF OF).
fn sub(a: u64, b: u64, borrow: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let r = a.wrapping_sub(b).wrapping_sub(u64::from(borrow)) & m;
    let mut f = zsp(r, size);
    if u128::from(a) < u128::from(b) + u128::from(borrow) {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (a ^ b) & (a ^ r) & sign(size) != 0 {
        f |= OF;
    }
    (r, f)
}

/// `a op b` on `size` bytes with the incoming `flags`: (result, new
/// flags). The result of `cmp` is `a - b` (not written back by callers).
pub fn alu(op: Alu, a: u64, b: u64, size: u8, flags: u64) -> (u64, u64) {
    let cf = flags & CF != 0;
    let (r, f) = match op {
        Alu::Add => add(a, b, false, size),
        Alu::Adc => add(a, b, cf, size),
        Alu::Sub | Alu::Cmp => sub(a, b, false, size),
        Alu::Sbb => sub(a, b, cf, size),
        Alu::And => logic(a & b, size),
        Alu::Or => logic(a | b, size),
        Alu::Xor => logic(a ^ b, size),
    };
    (r, (flags & !STATUS) | f)
}

/// The flags of a logical result: CF = OF = AF = 0.
fn logic(r: u64, size: u8) -> (u64, u64) {
    let r = r & mask(size);
    (r, zsp(r, size))
}

/// `test a, b`: the flags of `a & b`.
pub fn test(a: u64, b: u64, size: u8, flags: u64) -> u64 {
    (flags & !STATUS) | logic(a & b, size).1
}

/// `inc` (`dec` when `down`): like `add`/`sub` 1, but CF is kept.
pub fn inc_dec(a: u64, down: bool, size: u8, flags: u64) -> (u64, u64) {
    let (r, f) = if down { sub(a, 1, false, size) } else { add(a, 1, false, size) };
    (r, (flags & !(STATUS & !CF)) | (f & !CF))
}

/// `neg`: `0 - a`; CF is set unless `a` is 0.
pub fn neg(a: u64, size: u8, flags: u64) -> (u64, u64) {
    let (r, f) = sub(0, a, false, size);
    (r, (flags & !STATUS) | f)
}

/// The bit-test group on a `size`-byte value, bit `bit` (already reduced
/// modulo the width): (new value, new flags). CF takes the old bit.
pub fn bit(op: super::insn::BitOp, v: u64, bit: u32, flags: u64) -> (u64, u64) {
    use super::insn::BitOp;
    let b = 1u64 << (bit & 63);
    let cf = if v & b != 0 { CF } else { 0 };
    let r = match op {
        BitOp::Bt => v,
        BitOp::Bts => v | b,
        BitOp::Btr => v & !b,
        BitOp::Btc => v ^ b,
    };
    (r, (flags & !CF) | cf)
}

/// `imul` of two `size`-byte operands (2, 4 or 8), signed, truncated to
/// `size`: (result, new flags). CF and OF are set when the truncated
/// result, sign-extended, differs from the full product. SF, ZF, AF and PF
/// are undefined: SF and PF follow the result, ZF and AF are cleared (as
/// the host CPU of the native differential test does; see the module
/// comment).
pub fn imul(a: u64, b: u64, size: u8, flags: u64) -> (u64, u64) {
    let full = i128::from(sext(a, size) as i64) * i128::from(sext(b, size) as i64);
    let r = (full as u64) & mask(size);
    let mut f = zsp(r, size) & !ZF;
    if i128::from(sext(r, size) as i64) != full {
        f |= CF | OF;
    }
    (r, (flags & !STATUS) | f)
}

/// `bextr`: bits `start` to `start + len - 1` of the `size`-byte `src`
/// (4 or 8), where `start` and `len` are bits 7:0 and 15:8 of `ctl`:
/// (result, new flags). ZF from the result, CF = OF = 0; AF, SF and PF
/// are undefined and cleared (as the host CPU of the native differential
/// test does; see the module comment).
pub fn bextr(src: u64, ctl: u64, size: u8, flags: u64) -> (u64, u64) {
    let width = 8 * u32::from(size);
    let start = (ctl & 0xff) as u32;
    let len = ((ctl >> 8) & 0xff) as u32;
    let src = src & mask(size);
    let shifted = if start >= width { 0 } else { src >> start };
    let r = if len >= 64 { shifted } else { shifted & ((1u64 << len) - 1) };
    let f = if r == 0 { ZF } else { 0 };
    (r, (flags & !STATUS) | f)
}
