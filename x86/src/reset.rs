// SPDX-License-Identifier: GPL-2.0

//! The architectural state of a processor after RESET (power-up), for a
//! new vCPU: SDM Vol. 3A 10.1.1 "Processor State After Reset", Table 10-1
//! (the power-up column; APM Vol. 2 14.1.3 agrees). Registers not listed
//! here (general registers, CR2, CR3, CR4, EFER, DR0-DR3) are zero.
//!
//! Both backends start a vCPU from these; each encodes them in its own
//! format (VMCS fields or VMCB save area).

/// CR0: CD, NW and ET set (cache disabled, real mode).
pub const CR0: u64 = 0x6000_0010;
/// RIP: with CS.base 0xffff_0000, the first fetch is at 0xffff_fff0.
pub const RIP: u64 = 0xfff0;
/// RFLAGS: only the always-one bit 1.
pub const RFLAGS: u64 = 2;
/// DR6: all reserved-one bits set, no debug condition.
pub const DR6: u64 = 0xffff_0ff0;
/// DR7: only the reserved-one bit 10; no breakpoints enabled.
pub const DR7: u64 = 0x400;
/// IA32_PAT: WB, WT, UC-, UC in entries 0-3 and again in 4-7 (SDM
/// 11.12.4).
pub const PAT: u64 = 0x0007_0406_0007_0406;

/// A segment or descriptor-table register after reset. `access` is in the
/// `uapi`/VMX access-rights layout: type in bits 3:0, S bit 4, DPL bits
/// 6:5, P bit 7, AVL bit 12, L bit 13, D/B bit 14, G bit 15. GDTR and IDTR
/// have base and limit only (access 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegReset {
    /// The selector (0 for GDTR and IDTR).
    pub selector: u16,
    /// The base address.
    pub base: u64,
    /// The limit, in bytes.
    pub limit: u32,
    /// The access rights (see [`SegReset`]).
    pub access: u32,
}

/// A present, accessed, read/write data segment (type 3, S, P).
const DATA: SegReset = SegReset { selector: 0, base: 0, limit: 0xffff, access: 0x93 };

/// The ten registers in the order ES, CS, SS, DS, FS, GS, LDTR, TR, GDTR,
/// IDTR (the order of `uapi::reg::ES..=uapi::reg::IDTR`):
/// - CS: selector 0xf000, base 0xffff_0000, limit 0xffff, a present,
///   accessed, execute/read code segment (0x9b);
/// - ES, SS, DS, FS, GS: selector 0, base 0, limit 0xffff, present,
///   accessed, read/write data (0x93);
/// - LDTR: selector 0, base 0, limit 0xffff, present, type LDT (0x82);
/// - TR: selector 0, base 0, limit 0xffff, present, type busy 32-bit TSS
///   (0x8b, the type VM entry accepts in every guest mode);
/// - GDTR, IDTR: base 0, limit 0xffff.
pub const SEGMENTS: [SegReset; 10] = [
    DATA,
    SegReset { selector: 0xf000, base: 0xffff_0000, limit: 0xffff, access: 0x9b },
    DATA,
    DATA,
    DATA,
    DATA,
    SegReset { access: 0x82, ..DATA },
    SegReset { access: 0x8b, ..DATA },
    SegReset { access: 0, ..DATA },
    SegReset { access: 0, ..DATA },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!((CR0, RIP, RFLAGS), (0x6000_0010, 0xfff0, 2));
        assert_eq!((DR6, DR7, PAT), (0xffff_0ff0, 0x400, 0x0007_0406_0007_0406));
        let seg = |selector, base, limit, access| SegReset { selector, base, limit, access };
        let data = seg(0, 0, 0xffff, 0x93);
        let want = [
            data,
            seg(0xf000, 0xffff_0000, 0xffff, 0x9b),
            data,
            data,
            data,
            data,
            seg(0, 0, 0xffff, 0x82),
            seg(0, 0, 0xffff, 0x8b),
            seg(0, 0, 0xffff, 0),
            seg(0, 0, 0xffff, 0),
        ];
        assert_eq!(SEGMENTS, want);
    }
}
