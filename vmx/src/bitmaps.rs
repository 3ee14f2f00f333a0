// SPDX-License-Identifier: GPL-2.0

//! The MSR bitmap (SDM Vol. 3C, 25.6.9): four 1 KiB bitmaps, a set bit
//! making the access exit.
//!
//! | offset | covers                                  |
//! |--------|-----------------------------------------|
//! | 0x000  | RDMSR of 0x0000_0000-0x0000_1fff        |
//! | 0x400  | RDMSR of 0xc000_0000-0xc000_1fff        |
//! | 0x800  | WRMSR of 0x0000_0000-0x0000_1fff        |
//! | 0xc00  | WRMSR of 0xc000_0000-0xc000_1fff        |
//!
//! MSRs outside both ranges always exit.

/// Size of the MSR bitmap.
pub const MSR_BITMAP_BYTES: usize = 4096;

/// Byte offset and bit of `msr`'s read bit, or `None` outside the ranges.
pub const fn msr_read_bit(msr: u32) -> Option<(usize, u8)> {
    let (base, low) = match msr {
        0..=0x1fff => (0, msr),
        0xc000_0000..=0xc000_1fff => (0x400, msr - 0xc000_0000),
        _ => return None,
    };
    Some((base + (low / 8) as usize, (low % 8) as u8))
}

/// Lets the guest read and write `msr` without exiting; false when the
/// bitmap cannot describe it (it then always exits).
pub fn allow_msr(map: &mut [u8; MSR_BITMAP_BYTES], msr: u32) -> bool {
    match msr_read_bit(msr) {
        Some((byte, bit)) => {
            map[byte] &= !(1 << bit);
            map[byte + 0x800] &= !(1 << bit);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(msr_read_bit(0), Some((0, 0)));
        assert_eq!(msr_read_bit(0x174), Some((0x2e, 4)));
        assert_eq!(msr_read_bit(0x1fff), Some((0x3ff, 7)));
        assert_eq!(msr_read_bit(0xc000_0100), Some((0x420, 0)));
        assert_eq!(msr_read_bit(0xc000_1fff), Some((0x7ff, 7)));
        assert_eq!(msr_read_bit(0x2000), None);
        assert_eq!(msr_read_bit(0xc000_2000), None);
        assert_eq!(msr_read_bit(0xc001_0000), None);
    }

    #[test]
    fn allowing_clears_read_and_write_only() {
        let mut map = [0xff; MSR_BITMAP_BYTES];
        assert!(allow_msr(&mut map, 0xc000_0082));
        assert_eq!(map[0x410], 0xfb);
        assert_eq!(map[0xc10], 0xfb);
        assert_eq!(map.iter().filter(|b| **b != 0xff).count(), 2);
        assert!(!allow_msr(&mut map, 0x4000_0000));
    }
}
