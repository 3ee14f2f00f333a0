// SPDX-License-Identifier: GPL-2.0

//! SplitMix64: the seeded generator of the emulator's randomized tests
//! (the differential decoder test and the host-CPU test). Small, fast, and
//! good enough to drive them; its sequence is part of what a seed means, so
//! do not change `next_u64`.
//!
//! Every includer declares it `pub mod`, so that what one test binary
//! does not use is not dead code there; `doc(hidden)` says that it is a
//! test helper, not an API to document.

#![doc(hidden)]

/// A SplitMix64 generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0; the modulo bias is irrelevant
    /// here).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// [`Rng::below`] for indices.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn pick<T: Copy>(&mut self, s: &[T]) -> T {
        s[self.index(s.len())]
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo.wrapping_add(self.below(hi.wrapping_sub(lo) as u64 + 1) as i64)
    }

    /// A value that often sits on an edge: small, near a sign boundary of
    /// some width, all ones, sparse or dense, else uniform.
    pub fn value(&mut self) -> u64 {
        match self.below(10) {
            0..=2 => self.next_u64(),
            3 => self.range(-3, 3) as u64,
            4 => {
                let bits = self.pick(&[8u32, 16, 32, 64]);
                let edge = 1u64 << (bits - 1);
                let v = edge.wrapping_add(self.range(-2, 1) as u64);
                let keep = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                (v & keep) | (self.next_u64() & !keep & self.pick(&[0, u64::MAX]))
            }
            5 => self.pick(&[0, u64::MAX, 0xff, 0xffff, 0xffff_ffff, 0x8000_0000_0000_0000]),
            6 => self.next_u64() & self.next_u64() & self.next_u64(),
            7 => self.next_u64() | self.next_u64() | self.next_u64(),
            8 => self.below(0x100),
            _ => self.next_u64() & 0xf0f0_f0f0_f0f0_f0f0 | 0x0f,
        }
    }
}
