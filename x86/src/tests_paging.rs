// SPDX-License-Identifier: GPL-2.0

//! Host tests for the guest page-table walker: every paging mode on a
//! `Vec`-backed guest memory, each page size, the fault table, A/D
//! updates, lost cmpxchg races and unbacked tables.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;

const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
/// Guest RAM in the tests: [0, MEM_SIZE).
const MEM_SIZE: u64 = 1 << 20;
/// Where tables are allocated from.
const TABLES: u64 = 0x1_0000;

const PRW: u64 = PTE_P | PTE_RW;
const PRWU: u64 = PTE_P | PTE_RW | PTE_US;

/// Guest RAM, plus writes a "guest CPU" makes just before each cmpxchg.
struct Mem {
    bytes: Vec<u8>,
    /// Applied one per cmpxchg call, front first: (gpa, value, width).
    interference: Vec<(u64, u64)>,
    cmpxchgs: usize,
    next_table: u64,
}

impl Mem {
    fn new() -> Self {
        Self {
            bytes: vec![0; MEM_SIZE as usize],
            interference: Vec::new(),
            cmpxchgs: 0,
            next_table: TABLES,
        }
    }

    fn range(&self, gpa: u64, len: u64) -> Option<core::ops::Range<usize>> {
        assert_eq!(gpa % len, 0, "unaligned entry access at {gpa:#x}");
        (gpa.checked_add(len)? <= MEM_SIZE).then(|| gpa as usize..(gpa + len) as usize)
    }

    fn get(&self, gpa: u64) -> u64 {
        self.read(gpa, 8).unwrap()
    }

    fn get32(&self, gpa: u64) -> u32 {
        self.read(gpa, 4).unwrap() as u32
    }

    fn read(&self, gpa: u64, len: u64) -> Option<u64> {
        let r = self.range(gpa, len)?;
        let mut v = 0u64;
        for (i, b) in self.bytes[r].iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        Some(v)
    }

    fn set(&mut self, gpa: u64, v: u64) {
        self.write(gpa, 8, v)
    }

    fn set32(&mut self, gpa: u64, v: u32) {
        self.write(gpa, 4, v.into())
    }

    fn write(&mut self, gpa: u64, len: u64, v: u64) {
        let r = self.range(gpa, len).expect("write outside RAM");
        for (i, b) in self.bytes[r].iter_mut().enumerate() {
            *b = (v >> (8 * i)) as u8;
        }
    }

    fn cmpxchg(&mut self, gpa: u64, len: u64, old: u64, new: u64) -> Option<bool> {
        self.cmpxchgs += 1;
        if !self.interference.is_empty() {
            let (at, v) = self.interference.remove(0);
            self.write(at, 8, v);
        }
        if self.read(gpa, len)? != old {
            return Some(false);
        }
        self.write(gpa, len, new);
        Some(true)
    }

    fn alloc(&mut self) -> u64 {
        let t = self.next_table;
        self.next_table += K4;
        assert!(self.next_table <= MEM_SIZE);
        t
    }

    /// Maps `la` to `pa` in the 4- or 5-level tables at `root` with a leaf
    /// at `leaf_level` (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB). Missing tables
    /// are created with `upper` flags.
    fn map(
        &mut self,
        (root, levels): (u64, u32),
        la: u64,
        leaf_level: u32,
        pa: u64,
        leaf: u64,
        upper: u64,
    ) {
        let mut table = root;
        for level in (leaf_level + 1..=levels).rev() {
            let slot = table + ((la >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
            let mut e = self.get(slot);
            if e == 0 {
                e = self.alloc() | upper;
                self.set(slot, e);
            }
            table = e & ADDR_MASK;
        }
        let slot = table + ((la >> (12 + 9 * (leaf_level - 1))) & 0x1ff) * 8;
        let ps = if leaf_level > 1 { PTE_PS } else { 0 };
        self.set(slot, pa | leaf | ps);
    }

    /// The address of the entry for `la` at `level` in 4-/5-level tables.
    fn slot(&self, root: u64, levels: u32, la: u64, level: u32) -> u64 {
        let mut table = root;
        for l in (level + 1..=levels).rev() {
            table = self.get(table + ((la >> (12 + 9 * (l - 1))) & 0x1ff) * 8) & ADDR_MASK;
        }
        table + ((la >> (12 + 9 * (level - 1))) & 0x1ff) * 8
    }
}

impl GuestPhys for Mem {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        self.read(gpa, 8)
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        self.read(gpa, 4).map(|v| v as u32)
    }
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        self.cmpxchg(gpa, 8, old, new)
    }
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool> {
        self.cmpxchg(gpa, 4, old.into(), new.into())
    }
}

fn regs(cr0: u64, cr3: u64, cr4: u64, efer: u64) -> PagingRegs {
    PagingRegs { cr0: cr0 | CR0_PE, cr3, cr4, efer, phys_bits: 40 }
}

fn long4(cr3: u64) -> PagingRegs {
    regs(CR0_PG, cr3, CR4_PAE, EFER_LME | EFER_LMA | EFER_NXE)
}

fn long5(cr3: u64) -> PagingRegs {
    regs(CR0_PG, cr3, CR4_PAE | CR4_LA57, EFER_LME | EFER_LMA | EFER_NXE)
}

fn pf(error_code: u32) -> Result<u64, WalkError> {
    Err(WalkError::PageFault { error_code })
}

// --- modes and page sizes ---------------------------------------------------

#[test]
fn paging_off_is_identity_truncated_to_32_bits() {
    let mut mem = Mem::new();
    let r = regs(0, 0xdead_0000, CR4_PAE, EFER_LME);
    assert_eq!(Mode::of(&r), Mode::Off);
    for access in [Access::Read, Access::Write, Access::Fetch] {
        assert_eq!(translate(&mut mem, &r, 0x1_2345_6789, access, true), Ok(0x2345_6789));
    }
    assert_eq!(mem.cmpxchgs, 0);
}

#[test]
fn bits32_4k_and_4m_pages() {
    let mut mem = Mem::new();
    let pd = 0x2000;
    let pt = 0x3000;
    let r = regs(CR0_PG, pd, CR4_PSE, 0);
    assert_eq!(Mode::of(&r), Mode::Bits32);
    // la 0x0040_3abc: PDE 1, PTE 3.
    mem.set32(pd + 4, (pt | PRWU) as u32);
    mem.set32(pt + 3 * 4, 0x0055_5000 | PRWU as u32);
    assert_eq!(translate(&mut mem, &r, 0x0040_3abc, Access::Read, true), Ok(0x0055_5abc));
    // Upper bits of a 64-bit la are dropped outside long mode.
    assert_eq!(translate(&mut mem, &r, 0xffff_0000_0040_3abc, Access::Read, true), Ok(0x0055_5abc));
    // la 0x0080_1234: a 4 MiB PDE 2 with PSE-36 bits 20:13 = 0x12.
    mem.set32(pd + 2 * 4, 0x0c00_0000 | (0x12 << 13) | (PRWU | PTE_PS) as u32);
    assert_eq!(translate(&mut mem, &r, 0x00bf_1234, Access::Write, false), Ok(0x12_0c3f_1234));
    assert_eq!(mem.get32(pd + 2 * 4) & (PTE_A | PTE_D) as u32, (PTE_A | PTE_D) as u32);
}

#[test]
fn bits32_pse36_limited_by_maxphyaddr() {
    let mut mem = Mem::new();
    let pd = 0x2000;
    let mut r = regs(CR0_PG, pd, CR4_PSE, 0);
    // PDE bits 20:13 = 0x10: PA bit 36.
    mem.set32(pd, 0x0040_0000 | (0x10 << 13) | (PRW | PTE_PS) as u32);
    r.phys_bits = 40;
    assert_eq!(translate(&mut mem, &r, 0x10, Access::Read, false), Ok(0x10_0040_0010));
    r.phys_bits = 36;
    assert_eq!(translate(&mut mem, &r, 0x10, Access::Read, false), pf(PF_P | PF_RSVD));
    // MAXPHYADDR above 40 still leaves bit 21 reserved.
    r.phys_bits = 52;
    mem.set32(pd, 0x0040_0000 | (1 << 21) | (PRW | PTE_PS) as u32);
    assert_eq!(translate(&mut mem, &r, 0x10, Access::Read, false), pf(PF_P | PF_RSVD));
}

#[test]
fn bits32_ps_is_ignored_without_cr4_pse() {
    let mut mem = Mem::new();
    let pd = 0x2000;
    let pt = 0x0000_5000;
    // With CR4.PSE clear, PS is ignored: the PDE points to a page table.
    mem.set32(pd, (pt | PRW | PTE_PS) as u32);
    mem.set32(pt + 4, 0x0007_7000 | PRW as u32);
    let r = regs(CR0_PG, pd, 0, 0);
    assert_eq!(translate(&mut mem, &r, 0x1008, Access::Read, false), Ok(0x7_7008));
}

#[test]
fn bits32_fetch_sets_id_only_with_smep() {
    let mut mem = Mem::new();
    let pd = 0x2000;
    let r = regs(CR0_PG, pd, 0, EFER_NXE);
    assert_eq!(translate(&mut mem, &r, 0x1000, Access::Fetch, false), pf(0));
    let r = regs(CR0_PG, pd, CR4_SMEP, 0);
    assert_eq!(translate(&mut mem, &r, 0x1000, Access::Fetch, false), pf(PF_I));
}

#[test]
fn pae_4k_and_2m_pages() {
    let mut mem = Mem::new();
    // The PDPT need only be 32-byte aligned.
    let pdpt = 0x4fe0;
    let pd = 0x6000;
    let pt = 0x7000;
    let r = regs(CR0_PG, pdpt, CR4_PAE, EFER_NXE);
    assert_eq!(Mode::of(&r), Mode::Pae);
    // la 0xc060_2345: PDPTE 3, PDE 3, PTE 2.
    mem.set(pdpt + 3 * 8, pd | PTE_P);
    mem.set(pd + 3 * 8, pt | PRWU);
    mem.set(pt + 2 * 8, 0xab_cdef_0000 | PRWU | PTE_XD);
    assert_eq!(translate(&mut mem, &r, 0xc060_2345, Access::Read, true), Ok(0xab_cdef_0345));
    assert_eq!(translate(&mut mem, &r, 0xc060_2345, Access::Fetch, true), pf(PF_P | PF_U | PF_I));
    // la 0x4020_0010: PDPTE 1, 2 MiB PDE 1.
    mem.set(pdpt + 8, pd | PTE_P);
    mem.set(pd + 8, 0x12_3420_0000 | PRW | PTE_PS);
    assert_eq!(translate(&mut mem, &r, 0x4030_0010, Access::Write, false), Ok(0x12_3430_0010));
    assert_eq!(mem.get(pd + 8) & (PTE_A | PTE_D), PTE_A | PTE_D);
    // PDPTEs have no accessed bit; it is reserved there.
    assert_eq!(mem.get(pdpt + 8), pd | PTE_P);
}

#[test]
fn pae_reserved_bits() {
    let mut mem = Mem::new();
    let pdpt = 0x5000;
    let pd = 0x6000;
    let r = regs(CR0_PG, pdpt, CR4_PAE, 0);
    let rsvd = pf(PF_P | PF_RSVD);
    mem.set(pd, 0x20_0000 | PRW | PTE_PS);
    for bad in [1 << 1, 1 << 2, 1 << 5, 1 << 8, 1 << 40, PTE_XD] {
        mem.set(pdpt, pd | PTE_P | bad);
        assert_eq!(translate(&mut mem, &r, 0x10, Access::Read, false), rsvd, "PDPTE bit {bad:#x}");
    }
    mem.set(pdpt, pd | PTE_P);
    assert_eq!(translate(&mut mem, &r, 0x10, Access::Read, false), Ok(0x20_0010));
    // PAE reserves bits 62:M (not just 51:M), bits 20:13 of a 2 MiB PDE,
    // and XD while EFER.NXE is clear.
    for bad in [1 << 55, 1 << 62, 1 << 13, 1 << 20, PTE_XD] {
        mem.set(pd, 0x20_0000 | PRW | PTE_PS | bad);
        assert_eq!(translate(&mut mem, &r, 0x10, Access::Read, false), rsvd, "PDE bit {bad:#x}");
    }
    mem.set(pdpt, pd);
    assert_eq!(translate(&mut mem, &r, 0x10, Access::Write, true), pf(PF_W | PF_U));
}

#[test]
fn long4_each_page_size() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    let r = long4(root);
    assert_eq!(Mode::of(&r), Mode::Level4);
    let cases = [
        (0xffff_8000_0000_1000u64, 1, 0x0003_4000u64, K4),
        (0x0000_7fff_ffe0_0000, 2, 0x40_0000, M2),
        (0x0000_0040_0000_0000, 3, 0xc0_0000_0000, G1),
    ];
    for (la, level, pa, size) in cases {
        mem.map((root, 4), la, level, pa, PRWU, PRWU);
        let off = size - 8;
        assert_eq!(translate(&mut mem, &r, la + off, Access::Read, true), Ok(pa + off));
        assert_eq!(translate(&mut mem, &r, la, Access::Write, false), Ok(pa));
    }
}

#[test]
fn long5_each_page_size() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    let r = long5(root);
    assert_eq!(Mode::of(&r), Mode::Level5);
    // Addresses that need bits 56:48.
    let cases = [
        (0x00ab_cdef_1234_5000u64, 1, 0x0003_4000u64, K4),
        (0xff12_3456_7860_0000, 2, 0x40_0000, M2),
        (0x0080_0000_0000_0000, 3, 0xc0_0000_0000, G1),
    ];
    for (la, level, pa, size) in cases {
        mem.map((root, 5), la, level, pa, PRWU, PRWU);
        let off = size / 2 + 0x18;
        assert_eq!(translate(&mut mem, &r, la + off, Access::Read, true), Ok(pa + off));
    }
    // The same address with 4-level paging is not canonical.
    assert_eq!(
        translate(&mut mem, &long4(root), 0x00ab_cdef_1234_5000, Access::Read, true),
        Err(WalkError::NonCanonical)
    );
}

#[test]
fn non_canonical() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    let cases4 = [
        0x0000_8000_0000_0000u64,
        0xffff_7fff_ffff_ffff,
        0x8000_0000_0000_0000,
        0x0001_0000_0000_0000,
    ];
    let cases5 = [0x0100_0000_0000_0000u64, 0xfeff_ffff_ffff_ffff, 0x7fff_ffff_ffff_ffff];
    for la in cases4 {
        for access in [Access::Read, Access::Write, Access::Fetch] {
            assert_eq!(
                translate(&mut mem, &long4(root), la, access, false),
                Err(WalkError::NonCanonical)
            );
        }
    }
    for la in cases5 {
        assert_eq!(
            translate(&mut mem, &long5(root), la, Access::Read, true),
            Err(WalkError::NonCanonical)
        );
    }
    // Canonical but unmapped: an ordinary not-present fault.
    assert_eq!(
        translate(&mut mem, &long4(root), 0xffff_8000_0000_0000, Access::Read, false),
        pf(0)
    );
    assert_eq!(
        translate(&mut mem, &long5(root), 0xff00_0000_0000_0000, Access::Read, false),
        pf(0)
    );
    assert!(canonical(0xffff_8000_0000_0000, false));
    assert!(canonical(0x0000_7fff_ffff_ffff, false));
    assert!(canonical(0xff00_0000_0000_0000, true));
    assert!(canonical(0x00ff_ffff_ffff_ffff, true));
    assert!(!canonical(0x0100_0000_0000_0000, true));
}

// --- access rights and error codes ------------------------------------------

const SMEP: u64 = CR4_SMEP;
const SMAP: u64 = CR4_SMAP;
const NXE: u64 = EFER_NXE;
const WP: u64 = CR0_WP;

/// One row: flags of the upper levels and of the leaf, CR0.WP, CR4.SMEP/SMAP,
/// EFER.NXE, the access, user mode, and the #PF error code (None = translated).
type Case = (u64, u64, u64, u64, u64, Access, bool, Option<u32>);

use Access::{Fetch as F, Read as R, Write as W};
const USER: bool = true;
const SUP: bool = false;

#[rustfmt::skip]
const FAULTS: &[Case] = &[
    // User mode.
    (PRWU, PRWU,          0,  0,    0,   R, USER, None),
    (PRWU, PRW,           0,  0,    0,   R, USER, Some(PF_P | PF_U)),
    (PRW,  PRWU,          0,  0,    0,   R, USER, Some(PF_P | PF_U)),
    (PRWU, PTE_P|PTE_US,  0,  0,    0,   W, USER, Some(PF_P | PF_W | PF_U)),
    (PTE_P|PTE_US, PRWU,  0,  0,    0,   W, USER, Some(PF_P | PF_W | PF_U)),
    (PRWU, PTE_P|PTE_US,  WP, 0,    0,   R, USER, None),
    (PRWU, PRWU,          0,  SMEP|SMAP, 0, F, USER, None),
    (PRWU, PRW,           0,  0,    NXE, F, USER, Some(PF_P | PF_U | PF_I)),
    // Supervisor writes to read-only pages: only with CR0.WP.
    (PRW,  PTE_P,         0,  0,    0,   W, SUP,  None),
    (PRW,  PTE_P,         WP, 0,    0,   W, SUP,  Some(PF_P | PF_W)),
    (PTE_P, PRW,          WP, 0,    0,   W, SUP,  Some(PF_P | PF_W)),
    (PRWU, PTE_P|PTE_US,  0,  0,    0,   W, SUP,  None),
    (PRWU, PTE_P|PTE_US,  WP, 0,    0,   W, SUP,  Some(PF_P | PF_W)),
    // SMAP: supervisor data accesses to user pages.
    (PRWU, PRWU,          0,  0,    0,   R, SUP,  None),
    (PRWU, PRWU,          0,  SMAP, 0,   R, SUP,  Some(PF_P)),
    (PRWU, PRWU,          0,  SMAP, 0,   W, SUP,  Some(PF_P | PF_W)),
    (PRWU, PRW,           0,  SMAP, 0,   R, SUP,  None),
    (PRW,  PRWU,          0,  SMAP, 0,   R, SUP,  None),
    (PRWU, PRWU,          0,  SMAP, 0,   F, SUP,  None),
    // SMEP: supervisor fetches from user pages; I/D is reported.
    (PRWU, PRWU,          0,  SMEP, 0,   F, SUP,  Some(PF_P | PF_I)),
    (PRWU, PRWU,          0,  SMEP, 0,   R, SUP,  None),
    (PRWU, PRW,           0,  SMEP, 0,   F, SUP,  None),
    // XD with EFER.NXE.
    (PRW,  PRW|PTE_XD,    0,  0,    NXE, F, SUP,  Some(PF_P | PF_I)),
    (PRW,  PRW|PTE_XD,    0,  0,    NXE, R, SUP,  None),
    (PRW|PTE_XD, PRW,     0,  0,    NXE, F, SUP,  Some(PF_P | PF_I)),
    (PRWU, PRWU|PTE_XD,   0,  0,    NXE, W, USER, None),
    // XD without EFER.NXE is reserved; I/D only when SMEP or NXE is on.
    (PRW,  PRW|PTE_XD,    0,  0,    0,   R, SUP,  Some(PF_P | PF_RSVD)),
    (PRWU, PRWU|PTE_XD,   0,  0,    0,   F, USER, Some(PF_P | PF_RSVD | PF_U)),
    (PRWU, PRWU|PTE_XD,   0,  SMEP, 0,   F, USER, Some(PF_P | PF_RSVD | PF_U | PF_I)),
    (PRW|PTE_XD, PRW,     0,  0,    0,   W, SUP,  Some(PF_P | PF_RSVD | PF_W)),
    // Not present, at the leaf or above.
    (PRWU, PRWU & !PTE_P, 0,  0,    0,   R, USER, Some(PF_U)),
    (PRWU, 0,             0,  0,    0,   W, SUP,  Some(PF_W)),
    (PRWU, 0,             0,  0,    NXE, F, SUP,  Some(PF_I)),
    (PRWU, 0,             0,  0,    0,   F, SUP,  Some(0)),
    (PRWU & !PTE_P, PRWU, 0,  0,    0,   W, USER, Some(PF_W | PF_U)),
    // A reserved bit wins over a rights violation.
    (PRW,  PRW | 1 << 45, WP, SMAP, 0,   W, USER, Some(PF_P | PF_RSVD | PF_W | PF_U)),
];

#[test]
fn fault_table_long4() {
    for (i, &(upper, leaf, cr0, cr4, efer, access, user, fault)) in FAULTS.iter().enumerate() {
        let mut mem = Mem::new();
        let root = mem.alloc();
        let la = 0x7f00_1234_5000;
        mem.map((root, 4), la, 1, 0x9000, leaf, upper);
        let r = regs(CR0_PG | cr0, root, CR4_PAE | cr4, EFER_LME | EFER_LMA | efer);
        let want = match fault {
            None => Ok(0x9008),
            Some(code) => pf(code),
        };
        let before = mem.bytes.clone();
        assert_eq!(translate(&mut mem, &r, la + 8, access, user), want, "case {i}");
        if fault.is_some() {
            assert!(mem.bytes == before, "case {i}: a failed walk changed memory");
        }
    }
}

#[test]
fn reserved_bits_long_mode() {
    let rsvd = pf(PF_P | PF_RSVD);
    // (level of the bad entry, leaf level, bad bit)
    let cases = [
        (4, 1, PTE_PS),  // PML4E.PS
        (4, 1, 1 << 40), // bit M of a PML4E (M = 40)
        (4, 1, 1 << 51),
        (3, 3, 1 << 13), // 1 GiB PDPTE bits 29:13
        (3, 3, 1 << 29),
        (2, 2, 1 << 13), // 2 MiB PDE bits 20:13
        (2, 2, 1 << 20),
        (1, 1, 1 << 47),
    ];
    for (bad_level, leaf_level, bit) in cases {
        let mut mem = Mem::new();
        let root = mem.alloc();
        let la = 0x40_0000_0000;
        mem.map((root, 4), la, leaf_level, 0, PRW, PRW);
        let slot = mem.slot(root, 4, la, bad_level);
        mem.set(slot, mem.get(slot) | bit);
        assert_eq!(
            translate(&mut mem, &long4(root), la, Access::Read, false),
            rsvd,
            "level {bad_level} bit {bit:#x}"
        );
    }
    // Bits 62:52 are ignored in 4-level paging (they are PK and software bits).
    let mut mem = Mem::new();
    let root = mem.alloc();
    mem.map((root, 4), 0, 1, 0x5000, PRW | bits(52, 62), PRW | bits(52, 62));
    assert_eq!(translate(&mut mem, &long4(root), 0x10, Access::Read, false), Ok(0x5010));
    // With MAXPHYADDR 52 no address bit is reserved.
    mem.map((root, 4), 0x1000, 1, 0xf_0000_0000_0000, PRW, PRW);
    let mut r = long4(root);
    assert_eq!(translate(&mut mem, &r, 0x1000, Access::Read, false), rsvd);
    r.phys_bits = 200;
    assert_eq!(translate(&mut mem, &r, 0x1000, Access::Read, false), Ok(0xf_0000_0000_0000));
}

// --- accessed and dirty -------------------------------------------------------

#[test]
fn accessed_and_dirty_bits() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    let la = 0x1234_5678_9000;
    mem.map((root, 4), la, 1, 0x7000, PRW, PRW);
    let slots: Vec<u64> = (1..=4).rev().map(|l| mem.slot(root, 4, la, l)).collect();
    assert_eq!(translate(&mut mem, &long4(root), la, Access::Read, false), Ok(0x7000));
    for s in &slots {
        assert_eq!(mem.get(*s) & (PTE_A | PTE_D), PTE_A, "slot {s:#x}");
    }
    assert_eq!(mem.cmpxchgs, 4);
    // Already accessed: a second read changes nothing.
    assert_eq!(translate(&mut mem, &long4(root), la, Access::Fetch, false), Ok(0x7000));
    assert_eq!(mem.cmpxchgs, 4);
    // A write dirties the leaf only.
    assert_eq!(translate(&mut mem, &long4(root), la, Access::Write, false), Ok(0x7000));
    assert_eq!(mem.cmpxchgs, 5);
    for s in &slots[..3] {
        assert_eq!(mem.get(*s) & PTE_D, 0);
    }
    assert_eq!(mem.get(slots[3]) & PTE_D, PTE_D);
}

#[test]
fn dirty_bit_on_large_leaf() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    mem.map((root, 4), G1, 3, 2 * G1, PRW, PRW);
    mem.map((root, 4), 4 * M2, 2, 8 * M2, PRW, PRW);
    assert_eq!(translate(&mut mem, &long4(root), G1 + 5, Access::Write, false), Ok(2 * G1 + 5));
    assert_eq!(translate(&mut mem, &long4(root), 4 * M2 + 5, Access::Write, false), Ok(8 * M2 + 5));
    let pdpte = mem.get(mem.slot(root, 4, G1, 3));
    let pde = mem.get(mem.slot(root, 4, 4 * M2, 2));
    assert_eq!(pdpte & (PTE_A | PTE_D), PTE_A | PTE_D);
    assert_eq!(pde & (PTE_A | PTE_D), PTE_A | PTE_D);
}

#[test]
fn bits32_accessed_dirty_are_4_byte_updates() {
    let mut mem = Mem::new();
    let pd = 0x2000;
    let pt = 0x3000;
    mem.set32(pd + 4, (pt | PRW) as u32);
    mem.set32(pt + 4, 0x0008_8000 | PRW as u32);
    // The neighbour of each entry must survive a 4-byte update.
    mem.set32(pd + 8, 0xffff_ffff);
    mem.set32(pt + 8, 0xffff_ffff);
    let r = regs(CR0_PG, pd, 0, 0);
    assert_eq!(translate(&mut mem, &r, 0x0040_1000, Access::Write, false), Ok(0x8_8000));
    assert_eq!(mem.get32(pd + 4), (pt | PRW | PTE_A) as u32);
    assert_eq!(mem.get32(pt + 4), 0x0008_8000 | (PRW | PTE_A | PTE_D) as u32);
    assert_eq!(mem.get32(pd + 8), 0xffff_ffff);
    assert_eq!(mem.get32(pt + 8), 0xffff_ffff);
}

#[test]
fn lost_race_restarts_the_walk() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    let la = 0x5000;
    mem.map((root, 4), la, 1, 0x7000, PRW, PRW);
    let pte = mem.slot(root, 4, la, 1);
    // Just before the first cmpxchg (on the PML4E) another vCPU remaps the
    // page. The updates of the upper levels succeed, the one of the PTE
    // fails, and the second walk must see the new frame.
    mem.interference.push((pte, 0x9000 | PRW));
    assert_eq!(translate(&mut mem, &long4(root), la + 4, Access::Write, false), Ok(0x9004));
    assert_eq!(mem.get(pte), 0x9000 | PRW | PTE_A | PTE_D);
    // Four cmpxchgs in the first walk (the last one lost), one in the second.
    assert_eq!(mem.cmpxchgs, 5);
}

#[test]
fn lost_race_to_a_not_present_entry() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    mem.map((root, 4), 0, 1, 0x7000, PRW, PRW);
    let pde = mem.slot(root, 4, 0, 2);
    // Another vCPU clears the PDE while we update the PML4E.
    mem.interference.push((pde, 0));
    assert_eq!(translate(&mut mem, &long4(root), 0, Access::Read, false), pf(0));
}

#[test]
fn endless_contention_gives_up() {
    let mut mem = Mem::new();
    let root = mem.alloc();
    mem.map((root, 4), 0, 1, 0x7000, PRW, PRW);
    let pml4e = mem.slot(root, 4, 0, 4);
    let v = mem.get(pml4e);
    // Each cmpxchg sees the PML4E change (an ignored bit toggles).
    for i in 0..MAX_WALKS {
        mem.interference.push((pml4e, v ^ ((i as u64 % 2) << 9) ^ (1 << 9)));
    }
    assert_eq!(
        translate(&mut mem, &long4(root), 0, Access::Read, false),
        Err(WalkError::Contended)
    );
    assert_eq!(mem.cmpxchgs, MAX_WALKS);
}

// --- unbacked tables -------------------------------------------------------------

#[test]
fn unbacked_tables() {
    let mut mem = Mem::new();
    // The root table itself.
    let r = long4(0x10_0000_0000);
    assert_eq!(
        translate(&mut mem, &r, 0x1000, Access::Read, false),
        Err(WalkError::Unbacked { gpa: 0x10_0000_0000 })
    );
    // A page table behind a present PDE.
    let root = mem.alloc();
    mem.map((root, 4), 0, 2, 0, PRW, PRW);
    let pde = mem.slot(root, 4, 0, 2);
    mem.set(pde, 0x8000_0000 | PRW);
    assert_eq!(
        translate(&mut mem, &long4(root), 3 * K4, Access::Read, false),
        Err(WalkError::Unbacked { gpa: 0x8000_0000 + 3 * 8 })
    );
    // A PAE PDPT and a 32-bit page table.
    let r = regs(CR0_PG, 0xfff0_0000, CR4_PAE, 0);
    assert_eq!(
        translate(&mut mem, &r, 0xc000_0000, Access::Read, false),
        Err(WalkError::Unbacked { gpa: 0xfff0_0018 })
    );
    let pd = 0x2000;
    mem.set32(pd, 0xfee0_0000 | PRW as u32);
    let r = regs(CR0_PG, pd, 0, 0);
    assert_eq!(
        translate(&mut mem, &r, 0x1000, Access::Read, false),
        Err(WalkError::Unbacked { gpa: 0xfee0_0004 })
    );
}

#[test]
fn no_panic_on_arbitrary_registers() {
    let mut mem = Mem::new();
    // Pseudo-random tables: entries point all over, mostly outside RAM.
    let mut x = 0x1234_5678_9abc_def1u64;
    for b in mem.bytes.iter_mut() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *b = (x >> 56) as u8;
    }
    for i in 0..(MEM_SIZE / 8) {
        if i % 3 == 0 {
            let v = mem.get(i * 8) & !(bits(20, 63));
            mem.set(i * 8, v);
        }
    }
    for i in 0..64u64 {
        for phys_bits in [0u8, 12, 32, 36, 52, 53, 255] {
            let r = PagingRegs {
                cr0: CR0_PG | WP,
                cr3: u64::MAX << (i % 13),
                cr4: u64::MAX >> i,
                efer: EFER_LMA | EFER_NXE,
                phys_bits,
            };
            let _ = translate(&mut mem, &r, u64::MAX.rotate_left(i as u32), Access::Write, false);
            let r = PagingRegs { efer: 0, ..r };
            let _ = translate(&mut mem, &r, i << 58, Access::Fetch, true);
            let r = PagingRegs { cr4: 0, ..r };
            let _ = translate(&mut mem, &r, i << 26, Access::Read, true);
        }
    }
}
