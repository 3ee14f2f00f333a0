// SPDX-License-Identifier: GPL-2.0

//! The MSR and I/O permission maps (APM 15.10, 15.11), and segment
//! attribute conversion between the VMCB's packed form and the
//! VMX-style access rights of the ABI.

/// Bytes in the MSR permission map.
pub const MSRPM_BYTES: usize = 8192;
/// Bytes in the I/O permission map.
pub const IOPM_BYTES: usize = 12288;

/// Where the read-intercept bit of `msr` lies in the MSR permission map:
/// `(byte, bit)`; the write bit is the next one. `None` for MSRs outside
/// the three ranges the map covers (those always intercept).
pub const fn msrpm_bit(msr: u32) -> Option<(usize, u8)> {
    let (base, first) = match msr {
        0x0000_0000..=0x0000_1fff => (0, 0),
        0xc000_0000..=0xc000_1fff => (2048, 0xc000_0000),
        0xc001_0000..=0xc001_1fff => (4096, 0xc001_0000),
        _ => return None,
    };
    let bit = (msr - first) as usize * 2;
    Some((base + bit / 8, (bit % 8) as u8))
}

/// Clears both intercept bits of `msr` in `map`, letting the guest access
/// it directly. Returns `false` for an MSR the map cannot express.
pub fn allow_msr(map: &mut [u8; MSRPM_BYTES], msr: u32) -> bool {
    match msrpm_bit(msr) {
        Some((byte, bit)) => {
            map[byte] &= !(3 << bit);
            true
        }
        None => false,
    }
}

/// The VMCB's 12-bit attribute for VMX-style access rights (`uapi::access`):
/// an unusable segment becomes not-present.
pub const fn attrib_from_access(ar: u32) -> u16 {
    if ar & (1 << 16) != 0 {
        return 0;
    }
    ((ar & 0xff) | ((ar >> 4) & 0xf00)) as u16
}

/// VMX-style access rights for a VMCB attribute; not-present reads back as
/// unusable.
pub const fn access_from_attrib(a: u16) -> u32 {
    let a = a as u32;
    let ar = (a & 0xff) | ((a & 0xf00) << 4);
    if a & 0x80 == 0 {
        ar | (1 << 16)
    } else {
        ar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msr_ranges() {
        assert_eq!(msrpm_bit(0), Some((0, 0)));
        assert_eq!(msrpm_bit(0x1fff), Some((2047, 6)));
        assert_eq!(msrpm_bit(0xc000_0080), Some((2048 + 0x20, 0)));
        assert_eq!(msrpm_bit(0xc001_0000), Some((4096, 0)));
        assert_eq!(msrpm_bit(0x2000), None);
        assert_eq!(msrpm_bit(0xc002_0000), None);
        let mut map = [0xffu8; MSRPM_BYTES];
        assert!(allow_msr(&mut map, 0xc000_0100));
        assert_eq!(map[2048 + 0x40], 0xfc);
        assert!(!allow_msr(&mut map, 0x4000_0000));
    }

    #[test]
    fn attribs_round_trip() {
        // 64-bit code: P, S, type 0xb, L, G.
        assert_eq!(attrib_from_access(0xa09b), 0xa9b);
        assert_eq!(access_from_attrib(0xa9b), 0xa09b);
        assert_eq!(attrib_from_access(0x1_0000), 0);
        assert_eq!(access_from_attrib(0), 0x1_0000);
        for ar in [0x93u32, 0xc093, 0x8b, 0x82, 0xf0ff] {
            assert_eq!(access_from_attrib(attrib_from_access(ar)), ar);
        }
    }
}
