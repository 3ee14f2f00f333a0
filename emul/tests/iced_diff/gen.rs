// SPDX-License-Identifier: GPL-2.0
//! Inputs for the differential decoder test: a small seeded PRNG and three
//! generators (random bytes, structured encodings of the opcodes the
//! decoder supports, and mutations of those).

use vmm_emul::CpuMode;

/// The longest input the decoder looks at.
pub const MAX: usize = 15;

pub use super::rng::Rng;

/// Up to 15 input bytes.
#[derive(Clone, Copy)]
pub struct Input {
    pub buf: [u8; MAX],
    pub len: usize,
}

impl Input {
    fn new() -> Self {
        Self { buf: [0; MAX], len: 0 }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        if self.len < MAX {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Pads with random bytes to 15: whatever follows the instruction.
    fn fill(&mut self, rng: &mut Rng) {
        while self.len < MAX {
            self.push(rng.byte());
        }
    }
}

/// Which generator made an input (for the statistics).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Random,
    Structured,
    Mutated,
}

pub const KINDS: [Kind; 3] = [Kind::Random, Kind::Structured, Kind::Mutated];

/// The legacy prefixes, 66 and F0 weighted up.
const PREFIXES: &[u8] =
    &[0x66, 0x66, 0x67, 0xf0, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];

/// One-byte opcodes: everything the decoder supports, plus neighbours it
/// does not (8E, 90-97, 9x, C4/C5 as LES/LDS, C0/D0 shifts, ...), so the
/// Unsupported and Invalid paths get exercised next to the real ones.
const MAP1: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x28, 0x29,
    0x2a, 0x2b, 0x2c, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d,
    0x40, 0x43, 0x47, 0x48, 0x4c, 0x4f, 0x63, 0x6c, 0x6d, 0x6e, 0x6f, 0x80, 0x80, 0x81, 0x81, 0x82,
    0x83, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8c, 0x8f, 0x8f, 0xa0, 0xa1,
    0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb4,
    0xb7, 0xb8, 0xbb, 0xbf, 0xc6, 0xc6, 0xc7, 0xc7, 0xf6, 0xf6, 0xf7, 0xf7, 0xfe, 0xfe, 0xff, 0xff,
    0xff, 0x69, 0x69, 0x6b, 0x6b, 0xf4, 0xe4, 0xe5, 0xe6, 0xe7, 0xec, 0xed, 0xee, 0xef,
    // Neighbours.
    0x8e, 0x90, 0x91, 0x8d, 0xc4, 0xc5, 0xc0, 0xd1, 0x62, 0x68, 0x6a, 0x9c, 0xcc, 0xf1, 0xf5, 0xe3,
    0xe8,
];

/// Two-byte (0F xx) opcodes, supported and neighbours.
const MAP0F: &[u8] = &[
    0x01, 0x01, 0x06, 0x10, 0x11, 0x28, 0x29, 0x2b, 0x6e, 0x6f, 0x7e, 0x7f, 0xd6, 0xe7, 0x20, 0x20,
    0x22, 0x22, 0xa3, 0xab, 0xb3, 0xbb, 0xb0, 0xb1, 0xb6, 0xb7, 0xbe, 0xbf, 0xba, 0xba, 0xc0, 0xc1,
    0xc3, 0xaf, 0xaf, 0xae, 0xae, 0xae, 0xa2, 0x30, 0x32, 0x01, // Neighbours.
    0x00, 0x21, 0x23, 0x12, 0x13, 0x16, 0x2a, 0x2c, 0x6c, 0xd7, 0xe6, 0xb8, 0xbc, 0xc7, 0xac, 0xad,
    0x18, 0x1f, 0x05, 0x0d, 0xff, 0x0b, 0x31, 0x33, 0x09, 0xa0,
];

/// VEX map-1 opcodes (the vector moves, and a few neighbours).
const VEXOPS: &[u8] = &[
    0x10, 0x11, 0x28, 0x29, 0x2b, 0x6e, 0x6f, 0x7e, 0x7f, 0xd6, 0xe7, 0x10, 0x11, 0x28, 0x29, 0x6f,
    0x7f, 0x12, 0x2e, 0x58, 0xc6, 0x77,
];

/// VEX map-2 (0F 38) opcodes: BEXTR (F7 with pp = 0; with 66/F3/F2 it is
/// SHLX/SARX/SHRX), and its BMI neighbours ANDN, BZHI/PDEP/PEXT, the
/// BLSR group and MULX.
const VEX38OPS: &[u8] = &[0xf7, 0xf7, 0xf7, 0xf7, 0xf2, 0xf3, 0xf5, 0xf6];

fn modrm(rng: &mut Rng) -> u8 {
    let md = match rng.index(8) {
        0 | 1 => 3,
        2 | 3 => 0,
        4 | 5 => 1,
        _ => 2,
    };
    let rm = match rng.index(8) {
        0 | 1 => 4,
        2 => 5,
        _ => rng.index(8) as u8,
    };
    (md << 6) | ((rng.index(8) as u8) << 3) | rm
}

fn legacy_prefixes(rng: &mut Rng, out: &mut Input, vex: bool) {
    let n = match rng.index(100) {
        0..=39 => 0,
        40..=69 => 1,
        70..=84 => 2,
        85..=97 => 3 + rng.index(3),
        // Enough to run past 15 bytes now and then.
        _ => 6 + rng.index(9),
    };
    for _ in 0..n {
        let p = rng.pick(PREFIXES);
        // 66/F0/F2/F3 before VEX are #UD: keep them rare there.
        if vex && matches!(p, 0x66 | 0xf0 | 0xf2 | 0xf3) && !rng.chance(1, 8) {
            continue;
        }
        out.push(p);
    }
}

/// A structured encoding: prefixes, a supported (or neighbouring) opcode,
/// a ModRM biased toward SIB, disp32 and register forms, and random bytes
/// for whatever follows (SIB, displacement, immediate, the next
/// instruction).
pub fn structured(rng: &mut Rng, mode: CpuMode) -> Input {
    let long = mode == CpuMode::Long64;
    let mut out = Input::new();
    let vex = rng.chance(1, 6);
    legacy_prefixes(rng, &mut out, vex);
    if vex {
        if long && rng.chance(1, 16) {
            out.push(0x40 | rng.byte() & 0xf);
        }
        let three = rng.chance(1, 2);
        // The BMI opcodes of map 0F 38 (three-byte VEX only).
        let bmi = three && rng.chance(1, 4);
        // Outside 64-bit mode R (and X) must be 1 or it is LES/LDS; in
        // 64-bit mode they pick the high registers.
        let r = if long || rng.chance(1, 8) { rng.byte() & 0x80 } else { 0x80 };
        let x = if long || rng.chance(1, 8) { rng.byte() & 0x40 } else { 0x40 };
        let b = rng.byte() & 0x20;
        // vvvv = 1111b (unused) most of the time; BMI names a register
        // with it (all four bits random, bit 3 too outside 64-bit mode).
        let vvvv = if !bmi && rng.chance(7, 8) { 0x78 } else { rng.byte() & 0x78 };
        // BMI: VEX.L = 0 and no pp most of the time (L = 1 is #UD).
        let l = if bmi && rng.chance(7, 8) { 0 } else { rng.byte() & 4 };
        let pp = if bmi && rng.chance(3, 4) { 0 } else { rng.byte() & 3 };
        if three {
            let map = if bmi {
                2
            } else if rng.chance(7, 8) {
                1
            } else {
                rng.byte() & 0x1f
            };
            out.push(0xc4);
            out.push(r | x | b | map);
            out.push((rng.byte() & 0x80) | vvvv | l | pp);
        } else {
            let vvvv = if long { vvvv } else { vvvv | 0x40 };
            out.push(0xc5);
            out.push(r | vvvv | l | pp);
        }
        out.push(if bmi { rng.pick(VEX38OPS) } else { rng.pick(VEXOPS) });
        out.push(modrm(rng));
    } else {
        let map = rng.index(10);
        // The mandatory prefix for SSE opcodes (or just noise).
        if map >= 6 && rng.chance(1, 2) {
            out.push(rng.pick(&[0x66, 0x66, 0xf3, 0xf3, 0xf2]));
        }
        if long && rng.chance(1, 2) {
            out.push(0x40 | rng.byte() & 0xf);
            // Sometimes a prefix after REX, which cancels it.
            if rng.chance(1, 16) {
                out.push(rng.pick(PREFIXES));
            }
        }
        match map {
            0..=5 => out.push(rng.pick(MAP1)),
            6..=8 => {
                out.push(0x0f);
                let op = rng.pick(MAP0F);
                out.push(op);
                // Group 7's register forms are whole opcodes: xsetbv
                // (D1) and its neighbours xgetbv, vmcall, vmmcall, ...
                if op == 0x01 && rng.chance(1, 3) {
                    out.push(rng.pick(&[0xd1, 0xd1, 0xd1, 0xd0, 0xc1, 0xd9, 0xf9, 0xd5]));
                }
            }
            _ => {
                out.push(0x0f);
                out.push(0x38);
                out.push(rng.pick(&[0xf0, 0xf1, 0xf0, 0xf1, 0xf6, 0x00]));
            }
        }
        out.push(modrm(rng));
    }
    out.fill(rng);
    if rng.chance(1, 20) {
        out.len = 1 + rng.index(MAX);
    }
    out
}

/// Fully random bytes, usually 15 of them.
pub fn random(rng: &mut Rng) -> Input {
    let mut out = Input::new();
    out.fill(rng);
    if rng.chance(1, 10) {
        out.len = 1 + rng.index(MAX);
    }
    out
}

/// A structured encoding with one to three byte flips, replacements,
/// insertions, deletions or truncations.
pub fn mutated(rng: &mut Rng, mode: CpuMode) -> Input {
    let mut x = structured(rng, mode);
    for _ in 0..1 + rng.index(3) {
        if x.len == 0 {
            break;
        }
        let at = rng.index(x.len);
        match rng.index(6) {
            0 | 1 => x.buf[at] ^= 1 << rng.index(8),
            2 => x.buf[at] = rng.byte(),
            3 => {
                // Insert, dropping the last byte if full.
                let end = (x.len + 1).min(MAX);
                for i in (at + 1..end).rev() {
                    x.buf[i] = x.buf[i - 1];
                }
                x.buf[at] = if rng.chance(1, 2) { rng.pick(PREFIXES) } else { rng.byte() };
                x.len = end;
            }
            4 => {
                // Delete, keeping the length with a random byte at the end.
                for i in at..x.len - 1 {
                    x.buf[i] = x.buf[i + 1];
                }
                x.buf[x.len - 1] = rng.byte();
            }
            _ => x.len = 1 + at,
        }
    }
    x
}

/// Pads `bytes` to 15 with random bytes.
pub fn extend(rng: &mut Rng, bytes: &[u8]) -> Input {
    let mut out = Input::new();
    for &b in bytes {
        out.push(b);
    }
    out.fill(rng);
    out
}
