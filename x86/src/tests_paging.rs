// SPDX-License-Identifier: GPL-2.0

//! Host tests for the guest page-table walker: every paging mode on a
//! `Vec`-backed guest memory, each page size, the fault table, A/D
//! updates, lost cmpxchg races and unbacked tables.

extern crate std;
use std::format;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::regs::{cr0, cr4, efer};

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
    /// Applied one per cmpxchg call, front first: (gpa, value), written
    /// `interference_width` bytes wide.
    interference: Vec<(u64, u64)>,
    interference_width: u64,
    cmpxchgs: usize,
    /// Every cmpxchg call: (gpa, width).
    cmpxchg_log: Vec<(u64, u64)>,
    next_table: u64,
}

impl Mem {
    fn new() -> Self {
        Self {
            bytes: vec![0; MEM_SIZE as usize],
            interference: Vec::new(),
            interference_width: 8,
            cmpxchgs: 0,
            cmpxchg_log: Vec::new(),
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
        self.cmpxchg_log.push((gpa, len));
        if !self.interference.is_empty() {
            let (at, v) = self.interference.remove(0);
            self.write(at, self.interference_width, v);
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
    PagingRegs { cr0: cr0 | cr0::PE, cr3, cr4, efer, phys_bits: 40 }
}

fn long4(cr3: u64) -> PagingRegs {
    regs(cr0::PG, cr3, cr4::PAE, efer::LME | efer::LMA | efer::NXE)
}

fn long5(cr3: u64) -> PagingRegs {
    regs(cr0::PG, cr3, cr4::PAE | cr4::LA57, efer::LME | efer::LMA | efer::NXE)
}

fn pf(error_code: u32) -> Result<u64, WalkError> {
    Err(WalkError::PageFault { error_code })
}

// --- modes and page sizes ---------------------------------------------------

#[test]
fn paging_off_is_identity_truncated_to_32_bits() {
    let mut mem = Mem::new();
    let r = regs(0, 0xdead_0000, cr4::PAE, efer::LME);
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
    let r = regs(cr0::PG, pd, cr4::PSE, 0);
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
    let mut r = regs(cr0::PG, pd, cr4::PSE, 0);
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
    let r = regs(cr0::PG, pd, 0, 0);
    assert_eq!(translate(&mut mem, &r, 0x1008, Access::Read, false), Ok(0x7_7008));
}

#[test]
fn bits32_fetch_sets_id_only_with_smep() {
    let mut mem = Mem::new();
    let pd = 0x2000;
    let r = regs(cr0::PG, pd, 0, efer::NXE);
    assert_eq!(translate(&mut mem, &r, 0x1000, Access::Fetch, false), pf(0));
    let r = regs(cr0::PG, pd, cr4::SMEP, 0);
    assert_eq!(translate(&mut mem, &r, 0x1000, Access::Fetch, false), pf(PF_I));
}

#[test]
fn pae_4k_and_2m_pages() {
    let mut mem = Mem::new();
    // The PDPT need only be 32-byte aligned.
    let pdpt = 0x4fe0;
    let pd = 0x6000;
    let pt = 0x7000;
    let r = regs(cr0::PG, pdpt, cr4::PAE, efer::NXE);
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
    let r = regs(cr0::PG, pdpt, cr4::PAE, 0);
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

const SMEP: u64 = cr4::SMEP;
const SMAP: u64 = cr4::SMAP;
const NXE: u64 = efer::NXE;
const WP: u64 = cr0::WP;

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
        let r = regs(cr0::PG | cr0, root, cr4::PAE | cr4, efer::LME | efer::LMA | efer);
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
    let r = regs(cr0::PG, pd, 0, 0);
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
    let r = regs(cr0::PG, 0xfff0_0000, cr4::PAE, 0);
    assert_eq!(
        translate(&mut mem, &r, 0xc000_0000, Access::Read, false),
        Err(WalkError::Unbacked { gpa: 0xfff0_0018 })
    );
    let pd = 0x2000;
    mem.set32(pd, 0xfee0_0000 | PRW as u32);
    let r = regs(cr0::PG, pd, 0, 0);
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
                cr0: cr0::PG | WP,
                cr3: u64::MAX << (i % 13),
                cr4: u64::MAX >> i,
                efer: efer::LMA | efer::NXE,
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

// --- the mode matrix ----------------------------------------------------------
//
// One mapping, built in every paging mode with every page size, so that
// each check below runs in all of them. Expected addresses and error codes
// are worked out by hand from the SDM (vol. 3A 4.3-4.8), not taken from
// the walker.

/// A paging mode and the size of the page that maps the test address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// CR0.PG = 0.
    Off,
    /// 32-bit paging, CR4.PSE = 0, a 4 KiB page.
    B32,
    /// 32-bit paging, CR4.PSE = 1, a 4 KiB page.
    B32Pse4K,
    /// 32-bit paging, CR4.PSE = 1, a 4 MiB page.
    B32Pse4M,
    Pae4K,
    Pae2M,
    Four4K,
    Four2M,
    Four1G,
    Five4K,
    Five2M,
    Five1G,
}

use Shape as S;

/// Every shape with paging on.
const PAGED: [Shape; 11] = [
    S::B32,
    S::B32Pse4K,
    S::B32Pse4M,
    S::Pae4K,
    S::Pae2M,
    S::Four4K,
    S::Four2M,
    S::Four1G,
    S::Five4K,
    S::Five2M,
    S::Five1G,
];

impl Shape {
    /// 8-byte entries: PAE, 4- and 5-level paging.
    fn wide(self) -> bool {
        !matches!(self, S::Off | S::B32 | S::B32Pse4K | S::B32Pse4M)
    }

    /// 4- or 5-level paging (where protection keys exist).
    fn long(self) -> bool {
        matches!(self, S::Four4K | S::Four2M | S::Four1G | S::Five4K | S::Five2M | S::Five1G)
    }

    /// CR0, CR4 and EFER bits that select the mode.
    fn mode_regs(self) -> (u64, u64, u64) {
        match self {
            S::Off => (0, 0, 0),
            S::B32 => (cr0::PG, 0, 0),
            S::B32Pse4K | S::B32Pse4M => (cr0::PG, cr4::PSE, 0),
            S::Pae4K | S::Pae2M => (cr0::PG, cr4::PAE, 0),
            S::Four4K | S::Four2M | S::Four1G => (cr0::PG, cr4::PAE, efer::LME | efer::LMA),
            S::Five4K | S::Five2M | S::Five1G => {
                (cr0::PG, cr4::PAE | cr4::LA57, efer::LME | efer::LMA)
            }
        }
    }

    /// The linear address the tables map.
    fn la(self) -> u64 {
        match self {
            S::Four4K | S::Four2M | S::Four1G => 0xffff_9abc_de7a_3456,
            S::Five4K | S::Five2M | S::Five1G => 0xff5a_bcde_f07a_3456,
            _ => 0xc07a_3456,
        }
    }

    /// The frame the leaf holds.
    fn frame(self) -> u64 {
        match self {
            S::Off => 0,
            S::B32 | S::B32Pse4K | S::Pae4K | S::Four4K | S::Five4K => 0x7654_3000,
            S::B32Pse4M | S::Pae2M | S::Four2M | S::Five2M => 0x7640_0000,
            S::Four1G | S::Five1G => 0x1_4000_0000,
        }
    }

    /// What `la()` translates to: the frame plus the low 12, 21, 22 or 30
    /// bits of the address, worked out by hand.
    fn gpa(self) -> u64 {
        match self {
            S::Off => 0xc07a_3456,
            S::B32 | S::B32Pse4K | S::Pae4K | S::Four4K | S::Five4K => 0x7654_3456,
            S::B32Pse4M => 0x767a_3456,
            S::Pae2M | S::Four2M | S::Five2M => 0x765a_3456,
            S::Four1G => 0x1_5e7a_3456,
            S::Five1G => 0x1_707a_3456,
        }
    }
}

/// What an entry of the walk is (SDM tables 4-4 to 4-20).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// 32-bit PDE that references a page table.
    Pde32,
    /// 32-bit PTE.
    Pte32,
    /// 32-bit PDE that maps a 4 MiB page.
    Pde4M,
    /// PAE PDPTE.
    Pdpte,
    /// PAE PDE that references a page table.
    PaePde,
    /// PAE PTE.
    PaePte,
    /// PAE PDE that maps a 2 MiB page.
    Pae2M,
    /// PML5E or PML4E.
    Top,
    /// 4-/5-level PDPTE or PDE that references a table.
    Table,
    /// 4-/5-level PTE.
    Pte,
    /// 4-/5-level PDE that maps a 2 MiB page.
    Page2M,
    /// 4-/5-level PDPTE that maps a 1 GiB page.
    Page1G,
}

impl Kind {
    fn wide(self) -> bool {
        !matches!(self, Kind::Pde32 | Kind::Pte32 | Kind::Pde4M)
    }
}

#[derive(Clone, Copy, Debug)]
struct Ent {
    gpa: u64,
    kind: Kind,
}

/// One mapping of `shape.la()` to `shape.gpa()` in guest memory.
struct World {
    shape: Shape,
    mem: Mem,
    regs: PagingRegs,
    /// The entries the walk uses, top first.
    ents: Vec<Ent>,
}

impl World {
    /// Builds the tables with `upper` flags in every entry that references
    /// a table (a PAE PDPTE gets P only) and `leaf` flags in the leaf.
    fn new(shape: Shape, upper: u64, leaf: u64) -> Self {
        let mut mem = Mem::new();
        let mut ents = Vec::new();
        let la = shape.la();
        let frame = shape.frame();
        let narrow = |v: u64| -> u32 {
            assert_eq!(v >> 32, 0, "{v:#x} in a 4-byte entry");
            v as u32
        };
        let cr3 = match shape {
            S::Off => 0,
            S::B32 | S::B32Pse4K | S::B32Pse4M => {
                let pd = mem.alloc();
                let pde = pd + (la >> 22) * 4;
                if shape == S::B32Pse4M {
                    mem.set32(pde, narrow(frame | leaf | PTE_PS));
                    ents.push(Ent { gpa: pde, kind: Kind::Pde4M });
                } else {
                    let pt = mem.alloc();
                    mem.set32(pde, narrow(pt | upper));
                    let pte = pt + ((la >> 12) & 0x3ff) * 4;
                    mem.set32(pte, narrow(frame | leaf));
                    ents.push(Ent { gpa: pde, kind: Kind::Pde32 });
                    ents.push(Ent { gpa: pte, kind: Kind::Pte32 });
                }
                pd
            }
            S::Pae4K | S::Pae2M => {
                // The PDPT need only be 32-byte aligned: use CR3 bits 11:5.
                let pdpt = mem.alloc() + 0xfe0;
                let pd = mem.alloc();
                let pdpte = pdpt + (la >> 30) * 8;
                mem.set(pdpte, pd | PTE_P);
                ents.push(Ent { gpa: pdpte, kind: Kind::Pdpte });
                let pde = pd + ((la >> 21) & 0x1ff) * 8;
                if shape == S::Pae2M {
                    mem.set(pde, frame | leaf | PTE_PS);
                    ents.push(Ent { gpa: pde, kind: Kind::Pae2M });
                } else {
                    let pt = mem.alloc();
                    mem.set(pde, pt | upper);
                    let pte = pt + ((la >> 12) & 0x1ff) * 8;
                    mem.set(pte, frame | leaf);
                    ents.push(Ent { gpa: pde, kind: Kind::PaePde });
                    ents.push(Ent { gpa: pte, kind: Kind::PaePte });
                }
                pdpt
            }
            _ => {
                let (levels, leaf_level, leaf_kind) = match shape {
                    S::Four4K => (4, 1, Kind::Pte),
                    S::Four2M => (4, 2, Kind::Page2M),
                    S::Four1G => (4, 3, Kind::Page1G),
                    S::Five4K => (5, 1, Kind::Pte),
                    S::Five2M => (5, 2, Kind::Page2M),
                    _ => (5, 3, Kind::Page1G),
                };
                let index = |level: u32| ((la >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
                let root = mem.alloc();
                let mut table = root;
                for level in (leaf_level + 1..=levels).rev() {
                    let next = mem.alloc();
                    mem.set(table + index(level), next | upper);
                    let kind = if level >= 4 { Kind::Top } else { Kind::Table };
                    ents.push(Ent { gpa: table + index(level), kind });
                    table = next;
                }
                let ps = if leaf_level > 1 { PTE_PS } else { 0 };
                mem.set(table + index(leaf_level), frame | leaf | ps);
                ents.push(Ent { gpa: table + index(leaf_level), kind: leaf_kind });
                root
            }
        };
        let (cr0, cr4, efer) = shape.mode_regs();
        Self { shape, mem, regs: regs(cr0, cr3, cr4, efer), ents }
    }

    /// Sets the mode's CR0, CR4 and EFER plus these bits.
    fn flags(&mut self, cr0: u64, cr4: u64, efer: u64) {
        let (c0, c4, e) = self.shape.mode_regs();
        self.regs.cr0 = cr0::PE | c0 | cr0;
        self.regs.cr4 = c4 | cr4;
        self.regs.efer = e | efer;
    }

    fn get(&self, i: usize) -> u64 {
        let e = self.ents[i];
        if e.kind.wide() {
            self.mem.get(e.gpa)
        } else {
            self.mem.get32(e.gpa).into()
        }
    }

    fn put(&mut self, i: usize, v: u64) {
        let e = self.ents[i];
        if e.kind.wide() {
            self.mem.set(e.gpa, v);
        } else {
            assert_eq!(v >> 32, 0, "{v:#x} in a 4-byte entry");
            self.mem.set32(e.gpa, v as u32);
        }
    }

    fn or(&mut self, i: usize, bits: u64) {
        self.put(i, self.get(i) | bits);
    }

    fn clear(&mut self, i: usize, bits: u64) {
        self.put(i, self.get(i) & !bits);
    }

    fn leaf(&self) -> usize {
        self.ents.len() - 1
    }

    /// The entries that carry U/S, R/W, XD and A: all but a PAE PDPTE.
    fn with_rights(&self) -> Vec<usize> {
        (0..self.ents.len()).filter(|&i| self.ents[i].kind != Kind::Pdpte).collect()
    }

    fn go(&mut self, access: Access, user: bool) -> Result<u64, WalkError> {
        translate(&mut self.mem, &self.regs, self.shape.la(), access, user)
    }

    fn req(&mut self, req: Request) -> Result<u64, WalkError> {
        translate_request(&mut self.mem, &self.regs, self.shape.la(), &req)
    }
}

/// Every access, in user and in supervisor mode.
const ACCESSES: [(Access, bool); 6] =
    [(R, USER), (W, USER), (F, USER), (R, SUP), (W, SUP), (F, SUP)];

/// The error code's W and U bits: the access was a write; it was made in
/// user mode (SDM 4.7).
fn wu(access: Access, user: bool) -> u32 {
    (if access == W { PF_W } else { 0 }) | (if user { PF_U } else { 0 })
}

/// The error code's I bit (SDM 4.7): a fetch, with CR4.SMEP, or with
/// EFER.NXE while 8-byte entries are in use.
fn id(shape: Shape, access: Access, smep: bool, nxe: bool) -> u32 {
    if access == F && (smep || (shape.wide() && nxe)) {
        PF_I
    } else {
        0
    }
}

fn bit_if(cond: bool, bit: u64) -> u64 {
    if cond {
        bit
    } else {
        0
    }
}

#[test]
fn matrix_every_access_translates() {
    for shape in PAGED {
        let mut w = World::new(shape, PRWU, PRWU);
        assert_eq!(Mode::of(&w.regs) == Mode::Bits32, !shape.wide(), "{shape:?}");
        for (access, user) in ACCESSES {
            assert_eq!(w.go(access, user), Ok(shape.gpa()), "{shape:?} {access:?} user={user}");
        }
        // Every protection on, and a supervisor page: supervisor accesses
        // still go through (nothing is XD).
        let mut w = World::new(shape, PRWU, PRW);
        w.flags(WP, SMEP | SMAP | cr4::PKE | cr4::PKS, NXE);
        for access in [R, W, F] {
            assert_eq!(w.go(access, SUP), Ok(shape.gpa()), "{shape:?} {access:?}");
        }
        // Outside long mode the address is 32 bits: higher bits are dropped.
        if !shape.long() {
            let la = 0xabcd_0000_0000_0000 | shape.la();
            assert_eq!(translate(&mut w.mem, &w.regs, la, R, SUP), Ok(shape.gpa()), "{shape:?}");
        }
    }
}

#[test]
fn matrix_no_paging_ignores_tables_and_rights() {
    let mut w = World::new(S::Off, PRWU, PRWU);
    assert_eq!(Mode::of(&w.regs), Mode::Off);
    assert_eq!(w.go(W, USER), Ok(S::Off.gpa()));
    // Junk everywhere, including where CR3 points.
    w.regs.cr3 = TABLES;
    for (i, b) in w.mem.bytes.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let before = w.mem.bytes.clone();
    let cr4s = [0, cr4::PSE, cr4::PAE, cr4::PAE | cr4::LA57, SMEP | SMAP | cr4::PKE | cr4::PKS];
    for cr4 in cr4s {
        for efer in [0, NXE, efer::LME | NXE] {
            w.flags(WP, cr4, efer);
            assert_eq!(Mode::of(&w.regs), Mode::Off);
            for (access, user) in ACCESSES {
                let req = Request { access, user, ac: false, pkru: !0, pkrs: !0 };
                for la in [0, 0xffff_ffff, 0x1_0000_0000, 0xffff_ffff_c07a_3456] {
                    let got = translate_request(&mut w.mem, &w.regs, la, &req);
                    assert_eq!(got, Ok(la & 0xffff_ffff), "la {la:#x} cr4 {cr4:#x}");
                }
            }
        }
    }
    assert!(w.mem.bytes == before);
    assert_eq!(w.mem.cmpxchgs, 0);
}

#[test]
fn matrix_not_present_at_each_level() {
    for shape in PAGED {
        let n = World::new(shape, PRWU, PRWU).ents.len();
        for i in 0..n {
            let mut w = World::new(shape, PRWU, PRWU);
            // Every other bit of a not-present entry is ignored, even
            // reserved ones and XD with EFER.NXE clear.
            let junk = if shape.wide() { !PTE_P } else { 0xffff_fffe };
            w.put(i, junk);
            let before = w.mem.bytes.clone();
            for (smep, nxe) in [(false, false), (false, true), (true, false), (true, true)] {
                w.flags(WP, bit_if(smep, SMEP) | SMAP, bit_if(nxe, NXE));
                for (access, user) in ACCESSES {
                    let want = wu(access, user) | id(shape, access, smep, nxe);
                    assert_eq!(
                        w.go(access, user),
                        pf(want),
                        "{shape:?} entry {i} {access:?} user={user} smep={smep} nxe={nxe}"
                    );
                }
            }
            assert!(w.mem.bytes == before, "{shape:?}: a failed walk changed memory");
            assert_eq!(w.mem.cmpxchgs, 0);
        }
        // Not present below an entry that denies the access: still a
        // not-present fault (P = 0), as there is no translation.
        if n > 1 {
            let mut w = World::new(shape, PTE_P, PRWU);
            w.flags(WP, 0, 0);
            w.clear(n - 1, PTE_P);
            assert_eq!(w.go(W, USER), pf(PF_W | PF_U), "{shape:?}");
        }
    }
}

#[test]
fn matrix_user_supervisor_at_each_level() {
    for shape in PAGED {
        for i in World::new(shape, PRWU, PRWU).with_rights() {
            let mut w = World::new(shape, PRWU, PRWU);
            w.clear(i, PTE_US);
            for (smep, nxe) in [(false, false), (true, false), (false, true)] {
                w.flags(WP, bit_if(smep, SMEP) | SMAP, bit_if(nxe, NXE));
                for access in [R, W, F] {
                    let want = PF_P | wu(access, USER) | id(shape, access, smep, nxe);
                    let what = format!("{shape:?} entry {i} {access:?} smep={smep} nxe={nxe}");
                    assert_eq!(w.go(access, USER), pf(want), "{what}");
                    // A supervisor page: SMAP and SMEP do not apply.
                    assert_eq!(w.go(access, SUP), Ok(shape.gpa()), "{what}");
                }
            }
        }
    }
}

#[test]
fn matrix_read_only_at_each_level_and_cr0_wp() {
    for shape in PAGED {
        for i in World::new(shape, PRWU, PRWU).with_rights() {
            for user_page in [true, false] {
                let mut w = World::new(shape, PRWU, PRWU);
                w.clear(i, PTE_RW);
                if !user_page {
                    let leaf = w.leaf();
                    w.clear(leaf, PTE_US);
                }
                for wp in [0, WP] {
                    w.flags(wp, 0, 0);
                    let what = format!("{shape:?} entry {i} user_page={user_page} wp={wp:#x}");
                    // Supervisor writes honour R/W only with CR0.WP.
                    let want = if wp != 0 { pf(PF_P | PF_W) } else { Ok(shape.gpa()) };
                    assert_eq!(w.go(W, SUP), want, "{what}");
                    for access in [R, F] {
                        assert_eq!(w.go(access, SUP), Ok(shape.gpa()), "{what}");
                    }
                    if user_page {
                        // User writes always honour it.
                        assert_eq!(w.go(W, USER), pf(PF_P | PF_W | PF_U), "{what}");
                        assert_eq!(w.go(R, USER), Ok(shape.gpa()), "{what}");
                        assert_eq!(w.go(F, USER), Ok(shape.gpa()), "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn matrix_smap_and_rflags_ac() {
    for shape in PAGED {
        let mut w = World::new(shape, PRWU, PRWU);
        let sup = |access, ac| Request { access, user: false, ac, pkru: 0, pkrs: 0 };
        w.flags(WP, SMAP, 0);
        // Without AC (and through `translate`, which never has it).
        assert_eq!(w.req(sup(R, false)), pf(PF_P), "{shape:?}");
        assert_eq!(w.req(sup(W, false)), pf(PF_P | PF_W), "{shape:?}");
        assert_eq!(w.go(R, SUP), pf(PF_P), "{shape:?}");
        assert_eq!(w.go(W, SUP), pf(PF_P | PF_W), "{shape:?}");
        // SMAP is for data accesses only.
        assert_eq!(w.req(sup(F, false)), Ok(shape.gpa()), "{shape:?}");
        // With AC, explicit accesses go through.
        assert_eq!(w.req(sup(R, true)), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.req(sup(W, true)), Ok(shape.gpa()), "{shape:?}");
        // User mode is not affected.
        for access in [R, W, F] {
            assert_eq!(w.go(access, USER), Ok(shape.gpa()), "{shape:?} {access:?}");
        }
        // Without CR4.SMAP, AC does not matter.
        w.flags(WP, 0, 0);
        assert_eq!(w.req(sup(R, false)), Ok(shape.gpa()), "{shape:?}");
        // A read-only user page with AC set: CR0.WP decides, as for
        // supervisor pages. Without AC, SMAP faults whatever CR0.WP is.
        let leaf = w.leaf();
        w.clear(leaf, PTE_RW);
        w.flags(WP, SMAP, 0);
        assert_eq!(w.req(sup(W, true)), pf(PF_P | PF_W), "{shape:?}");
        assert_eq!(w.req(sup(R, true)), Ok(shape.gpa()), "{shape:?}");
        w.flags(0, SMAP, 0);
        assert_eq!(w.req(sup(W, true)), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.req(sup(W, false)), pf(PF_P | PF_W), "{shape:?}");
        // A supervisor page at any level: SMAP does not apply.
        for i in w.with_rights() {
            let mut w = World::new(shape, PRWU, PRWU);
            w.clear(i, PTE_US);
            w.flags(WP, SMAP, 0);
            assert_eq!(w.req(sup(R, false)), Ok(shape.gpa()), "{shape:?} entry {i}");
            assert_eq!(w.req(sup(W, false)), Ok(shape.gpa()), "{shape:?} entry {i}");
        }
    }
}

#[test]
fn matrix_smep() {
    for shape in PAGED {
        let mut w = World::new(shape, PRWU, PRWU);
        for nxe in [false, true] {
            w.flags(WP, 0, bit_if(nxe, NXE));
            assert_eq!(w.go(F, SUP), Ok(shape.gpa()), "{shape:?}");
            w.flags(WP, SMEP, bit_if(nxe, NXE));
            // I/D is set even in 32-bit paging and with EFER.NXE clear.
            assert_eq!(w.go(F, SUP), pf(PF_P | PF_I), "{shape:?} nxe={nxe}");
            assert_eq!(w.go(R, SUP), Ok(shape.gpa()), "{shape:?}");
            assert_eq!(w.go(W, SUP), Ok(shape.gpa()), "{shape:?}");
            assert_eq!(w.go(F, USER), Ok(shape.gpa()), "{shape:?}");
        }
        for i in w.with_rights() {
            let mut w = World::new(shape, PRWU, PRWU);
            w.clear(i, PTE_US);
            w.flags(WP, SMEP, 0);
            assert_eq!(w.go(F, SUP), Ok(shape.gpa()), "{shape:?} entry {i}");
        }
    }
}

#[test]
fn matrix_execute_disable() {
    for shape in PAGED {
        if !shape.wide() {
            // 4-byte entries have no XD bit, and EFER.NXE changes nothing.
            let mut w = World::new(shape, PRWU, PRWU);
            w.flags(WP, 0, NXE);
            assert_eq!(w.go(F, USER), Ok(shape.gpa()), "{shape:?}");
            assert_eq!(w.go(F, SUP), Ok(shape.gpa()), "{shape:?}");
            continue;
        }
        for i in World::new(shape, PRWU, PRWU).with_rights() {
            let mut w = World::new(shape, PRWU, PRWU);
            w.or(i, PTE_XD);
            let what = format!("{shape:?} entry {i}");
            // EFER.NXE: fetches fault, data accesses do not.
            w.flags(WP, 0, NXE);
            assert_eq!(w.go(F, SUP), pf(PF_P | PF_I), "{what}");
            assert_eq!(w.go(F, USER), pf(PF_P | PF_U | PF_I), "{what}");
            for (access, user) in [(R, USER), (W, USER), (R, SUP), (W, SUP)] {
                assert_eq!(w.go(access, user), Ok(shape.gpa()), "{what} {access:?}");
            }
            // No EFER.NXE: XD is a reserved bit; I/D only with SMEP.
            for smep in [false, true] {
                w.flags(WP, bit_if(smep, SMEP), 0);
                for (access, user) in ACCESSES {
                    let want = PF_P | PF_RSVD | wu(access, user) | id(shape, access, smep, false);
                    assert_eq!(w.go(access, user), pf(want), "{what} {access:?} user={user}");
                }
            }
        }
        // Bit 63 of a PAE PDPTE is reserved even with EFER.NXE.
        if matches!(shape, S::Pae4K | S::Pae2M) {
            let mut w = World::new(shape, PRWU, PRWU);
            w.or(0, PTE_XD);
            w.flags(WP, 0, NXE);
            for (access, user) in ACCESSES {
                let want = PF_P | PF_RSVD | wu(access, user) | id(shape, access, false, true);
                assert_eq!(w.go(access, user), pf(want), "{shape:?} {access:?} user={user}");
            }
        }
    }
}

/// What setting one bit of an entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// The bit is reserved: #PF with RSVD.
    Rsvd,
    /// The bit is ignored (or a flag that does not change the result).
    Same,
    /// A leaf address bit: the translation gains this physical-address bit.
    Addr(u32),
    /// A table address bit: the walk reads the next entry this much higher.
    Redirect,
}

/// What setting each of a few bits of a `kind` entry does at MAXPHYADDR
/// `m` (36..=52), copied by hand from SDM tables 4-4 to 4-20.
fn bit_effects(kind: Kind, m: u32, nxe: bool) -> Vec<(u32, Effect)> {
    use Effect::*;
    let mut v = Vec::new();
    // Reserved address bits M..=hi, sampled.
    let high = |v: &mut Vec<(u32, Effect)>, hi: u32| {
        for b in [m, (m + hi) / 2, hi] {
            if b >= m && b <= hi {
                v.push((b, Rsvd));
            }
        }
    };
    let xd = if nxe { Same } else { Rsvd };
    match kind {
        Kind::Pde32 => {
            v.extend([(6, Same), (8, Same), (9, Same), (11, Same), (31, Redirect)]);
        }
        Kind::Pte32 => {
            v.extend([(7, Same), (8, Same), (9, Same), (11, Same), (14, Addr(14)), (31, Addr(31))]);
        }
        Kind::Pde4M => {
            v.extend([(8, Same), (9, Same), (11, Same), (12, Same), (21, Rsvd), (31, Addr(31))]);
            // PSE-36: PDE bits 20:13 hold PA bits 39:32; those at or
            // above MAXPHYADDR (which is at most 40 here) are reserved.
            let usable = match m {
                36 => 16,
                _ => 20,
            };
            for b in 13..=20 {
                v.push((b, if b <= usable { Addr(b + 19) } else { Rsvd }));
            }
        }
        Kind::Pdpte => {
            v.extend([(1, Rsvd), (2, Rsvd), (5, Rsvd), (6, Rsvd), (7, Rsvd), (8, Rsvd)]);
            v.extend([(3, Same), (4, Same), (9, Same), (11, Same)]);
            v.extend([(m - 1, Redirect), (62, Rsvd), (63, Rsvd)]);
            high(&mut v, 62);
        }
        Kind::PaePde => {
            v.extend([(6, Same), (8, Same), (9, Same), (11, Same), (m - 1, Redirect)]);
            v.extend([(52, Rsvd), (59, Rsvd), (62, Rsvd), (63, xd)]);
            high(&mut v, 62);
        }
        Kind::PaePte => {
            v.extend([(7, Same), (8, Same), (9, Same), (11, Same), (m - 1, Addr(m - 1))]);
            v.extend([(52, Rsvd), (59, Rsvd), (62, Rsvd), (63, xd)]);
            high(&mut v, 62);
        }
        Kind::Pae2M => {
            v.extend([(8, Same), (12, Same), (13, Rsvd), (16, Rsvd), (20, Rsvd), (21, Addr(21))]);
            v.extend([(m - 1, Addr(m - 1)), (52, Rsvd), (62, Rsvd), (63, xd)]);
            high(&mut v, 62);
        }
        Kind::Top => {
            v.extend([(7, Rsvd), (6, Same), (8, Same), (9, Same), (11, Same), (m - 1, Redirect)]);
            v.extend([(52, Same), (58, Same), (59, Same), (62, Same), (63, xd)]);
            high(&mut v, 51);
        }
        Kind::Table => {
            v.extend([(6, Same), (8, Same), (9, Same), (11, Same), (m - 1, Redirect)]);
            v.extend([(52, Same), (58, Same), (59, Same), (62, Same), (63, xd)]);
            high(&mut v, 51);
        }
        Kind::Pte => {
            v.extend([(7, Same), (8, Same), (9, Same), (11, Same), (m - 1, Addr(m - 1))]);
            v.extend([(52, Same), (58, Same), (59, Same), (62, Same), (63, xd)]);
            high(&mut v, 51);
        }
        Kind::Page2M => {
            v.extend([(8, Same), (12, Same), (13, Rsvd), (16, Rsvd), (20, Rsvd), (21, Addr(21))]);
            v.extend([(m - 1, Addr(m - 1)), (52, Same), (62, Same), (63, xd)]);
            high(&mut v, 51);
        }
        Kind::Page1G => {
            v.extend([(8, Same), (12, Same), (13, Rsvd), (20, Rsvd), (29, Rsvd), (31, Addr(31))]);
            v.extend([(m - 1, Addr(m - 1)), (52, Same), (62, Same), (63, xd)]);
            high(&mut v, 51);
        }
    }
    v
}

#[test]
fn matrix_reserved_bits_by_maxphyaddr() {
    let mut checked = 0;
    for shape in PAGED {
        for m in [36u32, 40, 46, 52] {
            for nxe in [false, true] {
                let mut w = World::new(shape, PRWU, PRWU);
                w.regs.phys_bits = m as u8;
                w.flags(WP, 0, bit_if(nxe, NXE));
                assert_eq!(w.go(R, SUP), Ok(shape.gpa()), "{shape:?} M={m}");
                for i in 0..w.ents.len() {
                    let kind = w.ents[i].kind;
                    for (bit, effect) in bit_effects(kind, m, nxe) {
                        let saved = w.get(i);
                        w.or(i, 1 << bit);
                        let what = format!("{shape:?} {kind:?} bit {bit} M={m} nxe={nxe}");
                        for (access, user) in ACCESSES {
                            let got = w.go(access, user);
                            let want = match effect {
                                Effect::Rsvd => pf(PF_P
                                    | PF_RSVD
                                    | wu(access, user)
                                    | id(shape, access, false, nxe)),
                                // An XD bit that is not reserved makes fetches fault.
                                _ if bit == 63 && access == F => pf(PF_P | wu(access, user) | PF_I),
                                Effect::Same => Ok(shape.gpa()),
                                Effect::Addr(pa) => Ok(shape.gpa() | 1 << pa),
                                Effect::Redirect => {
                                    Err(WalkError::Unbacked { gpa: w.ents[i + 1].gpa | 1 << bit })
                                }
                            };
                            assert_eq!(got, want, "{what} {access:?} user={user}");
                            checked += 1;
                        }
                        w.put(i, saved);
                    }
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}

/// A bit that is reserved in an entry of `kind` at MAXPHYADDR 40 with
/// EFER.NXE set (none in 4-byte entries that reference 4 KiB pages).
fn a_reserved_bit(kind: Kind) -> Option<u64> {
    match kind {
        Kind::Pde32 | Kind::Pte32 => None,
        Kind::Pde4M => Some(1 << 21),
        Kind::Pdpte => Some(1 << 5),
        Kind::PaePde | Kind::PaePte => Some(1 << 62),
        Kind::Pae2M | Kind::Page2M => Some(1 << 13),
        Kind::Top => Some(PTE_PS),
        Kind::Table | Kind::Pte => Some(1 << 51),
        Kind::Page1G => Some(1 << 29),
    }
}

#[test]
fn matrix_reserved_bit_combinations() {
    let mut checked = 0;
    for shape in PAGED {
        let n = World::new(shape, PRWU, PRWU).ents.len();
        for i in 0..n {
            let Some(bad) = a_reserved_bit(World::new(shape, PRWU, PRWU).ents[i].kind) else {
                continue;
            };
            let what = format!("{shape:?} entry {i}");
            // Reserved bit above a not-present entry: the walk stops at
            // the reserved bit.
            let mut w = World::new(shape, PRWU, PRWU);
            w.flags(WP, 0, NXE);
            w.or(i, bad);
            if i + 1 < n {
                w.clear(n - 1, PTE_P);
            }
            for (access, user) in ACCESSES {
                let want = PF_P | PF_RSVD | wu(access, user) | id(shape, access, false, true);
                assert_eq!(w.go(access, user), pf(want), "{what} {access:?} user={user}");
                checked += 1;
            }
            // Not present above the reserved bit: reserved bits below are
            // never looked at.
            if i > 0 {
                let mut w = World::new(shape, PRWU, PRWU);
                w.or(i, bad);
                w.clear(0, PTE_P);
                assert_eq!(w.go(W, USER), pf(PF_W | PF_U), "{what}");
                checked += 1;
            }
            // A reserved bit wins over every rights violation: user access
            // to a supervisor page, write to a read-only page, SMAP, SMEP,
            // XD and protection keys.
            let mut w = World::new(shape, PRW, PTE_P);
            w.or(i, bad);
            let xd = if shape.wide() { PTE_XD } else { 0 };
            let leaf = w.leaf();
            w.or(leaf, xd);
            w.flags(WP, SMEP | SMAP | cr4::PKE | cr4::PKS, NXE);
            for (access, user) in ACCESSES {
                let req = Request { access, user, ac: false, pkru: !0, pkrs: !0 };
                let want = PF_P | PF_RSVD | wu(access, user) | id(shape, access, true, true);
                assert_eq!(w.req(req), pf(want), "{what} {access:?} user={user}");
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
}

/// Protection key `k` in bits 62:59.
fn key(k: u64) -> u64 {
    k << 59
}

/// PKRU/PKRS access-disable and write-disable bits of key `k`.
const fn ad(k: u32) -> u32 {
    1 << (2 * k)
}

const fn wd(k: u32) -> u32 {
    1 << (2 * k + 1)
}

const PKE: u64 = cr4::PKE;
const PKS: u64 = cr4::PKS;

/// One protection-key row: whether the leaf is a user page and writable,
/// CR0.WP, CR4 bits, PKRU, PKRS, the access, user mode, RFLAGS.AC, and
/// the #PF error code (None = translated).
type PkCase = (bool, bool, u64, u64, u32, u32, Access, bool, bool, Option<u32>);

#[rustfmt::skip]
const PK_CASES: &[PkCase] = &[
    // User page, PKRU under CR4.PKE. The leaf's key is 5.
    (true, true, WP, PKE, 0,             0, R, USER, false, None),
    (true, true, WP, PKE, ad(5),         0, R, USER, false, Some(PF_P | PF_U | PF_PK)),
    (true, true, WP, PKE, ad(5),         0, W, USER, false, Some(PF_P | PF_W | PF_U | PF_PK)),
    (true, true, WP, PKE, ad(5),         0, F, USER, false, None),
    (true, true, WP, PKE, ad(5),         0, R, SUP,  false, Some(PF_P | PF_PK)),
    (true, true, WP, PKE, ad(5),         0, W, SUP,  false, Some(PF_P | PF_W | PF_PK)),
    (true, true, WP, PKE, ad(5),         0, F, SUP,  false, None),
    (true, true, 0,  PKE, ad(5),         0, W, SUP,  false, Some(PF_P | PF_W | PF_PK)),
    (true, true, WP, PKE, wd(5),         0, R, USER, false, None),
    (true, true, WP, PKE, wd(5),         0, W, USER, false, Some(PF_P | PF_W | PF_U | PF_PK)),
    (true, true, 0,  PKE, wd(5),         0, W, USER, false, Some(PF_P | PF_W | PF_U | PF_PK)),
    (true, true, WP, PKE, wd(5),         0, R, SUP,  false, None),
    (true, true, WP, PKE, wd(5),         0, W, SUP,  false, Some(PF_P | PF_W | PF_PK)),
    (true, true, 0,  PKE, wd(5),         0, W, SUP,  false, None),
    // Only the leaf's key counts (the upper entries carry key 10).
    (true, true, WP, PKE, !(ad(5) | wd(5)), 0, W, USER, false, None),
    (true, true, WP, PKE, !(ad(5) | wd(5)), 0, W, SUP,  false, None),
    // No CR4.PKE; CR4.PKS is for supervisor pages only.
    (true, true, WP, 0,   !0,            !0, W, USER, false, None),
    (true, true, WP, PKS, !0,            !0, W, USER, false, None),
    (true, true, WP, PKS, !0,            !0, W, SUP,  false, None),
    // Supervisor page, IA32_PKRS under CR4.PKS.
    (false, true, WP, PKS, 0,  ad(5),        R, SUP,  false, Some(PF_P | PF_PK)),
    (false, true, WP, PKS, 0,  ad(5),        W, SUP,  false, Some(PF_P | PF_W | PF_PK)),
    (false, true, WP, PKS, 0,  ad(5),        F, SUP,  false, None),
    (false, true, WP, PKS, 0,  wd(5),        R, SUP,  false, None),
    (false, true, WP, PKS, 0,  wd(5),        W, SUP,  false, Some(PF_P | PF_W | PF_PK)),
    (false, true, 0,  PKS, 0,  wd(5),        W, SUP,  false, None),
    (false, true, WP, PKS, 0,  !(ad(5) | wd(5)), W, SUP, false, None),
    (false, true, WP, PKE, !0, 0,            W, SUP,  false, None),
    (false, true, WP, PKE | PKS, !0, 0,      W, SUP,  false, None),
    // Combinations: PK is set whenever the key forbids a data access,
    // also when another rule forbids it too (SDM 4.7).
    (false, true, WP, PKS, 0,  ad(5),        R, USER, false, Some(PF_P | PF_U | PF_PK)),
    (false, true, WP, PKS, 0,  0,            R, USER, false, Some(PF_P | PF_U)),
    (true, false, WP, PKE, wd(5),        0, R, USER, false, None),
    (true, false, WP, PKE, wd(5),        0, W, USER, false, Some(PF_P | PF_W | PF_U | PF_PK)),
    (true, false, WP, PKE, ad(5),        0, W, USER, false, Some(PF_P | PF_W | PF_U | PF_PK)),
    (true, false, WP, PKE, 0,            0, W, USER, false, Some(PF_P | PF_W | PF_U)),
    (true, false, 0,  PKE, wd(5),        0, W, SUP,  false, None),
    (true, true, WP, PKE | SMAP, ad(5),  0, R, SUP,  false, Some(PF_P | PF_PK)),
    (true, true, WP, PKE | SMAP, ad(5),  0, R, SUP,  true,  Some(PF_P | PF_PK)),
    (true, true, WP, PKE | SMAP, 0,      0, R, SUP,  true,  None),
    (true, true, WP, PKE | SMAP, wd(5),  0, W, SUP,  true,  Some(PF_P | PF_W | PF_PK)),
    (true, true, WP, PKE | SMAP, wd(5),  0, W, SUP,  false, Some(PF_P | PF_W | PF_PK)),
    (true, true, WP, PKE | SMAP, wd(5),  0, R, SUP,  false, Some(PF_P)),
    // Fetches never consult keys, not even when XD or SMEP faults them.
    (true, true, WP, PKE | SMEP, ad(5),  0, F, SUP,  false, Some(PF_P | PF_I)),
];

#[test]
fn matrix_protection_keys() {
    for shape in PAGED.into_iter().filter(|s| s.long()) {
        for (n, &(user_page, writable, cr0, cr4, pkru, pkrs, access, user, ac, fault)) in
            PK_CASES.iter().enumerate()
        {
            let leaf = PTE_P | bit_if(writable, PTE_RW) | bit_if(user_page, PTE_US) | key(5);
            let mut w = World::new(shape, PRWU | key(10), leaf);
            w.flags(cr0, cr4, NXE);
            let before = w.mem.bytes.clone();
            let want = match fault {
                None => Ok(shape.gpa()),
                Some(code) => pf(code),
            };
            let got = w.req(Request { access, user, ac, pkru, pkrs });
            assert_eq!(got, want, "{shape:?} case {n}");
            if fault.is_some() {
                assert!(w.mem.bytes == before, "{shape:?} case {n}: memory changed");
            }
        }
        // Key bits in the upper entries only: the page has key 0.
        let mut w = World::new(shape, PRWU | key(5), PRWU);
        w.flags(WP, PKE, 0);
        let req = Request { access: W, user: USER, ac: false, pkru: ad(5) | wd(5), pkrs: 0 };
        assert_eq!(w.req(req), Ok(shape.gpa()), "{shape:?}");
        let req = Request { pkru: ad(0), ..req };
        assert_eq!(w.req(req), pf(PF_P | PF_W | PF_U | PF_PK), "{shape:?}");
        // XD fetch with the key denied: no PK (keys are for data).
        let mut w = World::new(shape, PRWU, PRWU | PTE_XD | key(5));
        w.flags(WP, PKE, NXE);
        let req = Request { access: F, user: USER, ac: false, pkru: !0, pkrs: 0 };
        assert_eq!(w.req(req), pf(PF_P | PF_U | PF_I), "{shape:?}");
        // Not present or reserved: no PK either.
        let mut w = World::new(shape, PRWU, (PRWU | key(5)) & !PTE_P);
        w.flags(WP, PKE, NXE);
        let req = Request { access: R, user: USER, ac: false, pkru: !0, pkrs: 0 };
        assert_eq!(w.req(req), pf(PF_U), "{shape:?}");
        let mut w = World::new(shape, PRWU, PRWU | key(5) | 1 << 45);
        w.flags(WP, PKE, NXE);
        assert_eq!(w.req(req), pf(PF_P | PF_RSVD | PF_U), "{shape:?}");
    }
}

#[test]
fn protection_keys_only_in_long_mode() {
    // 32-bit and PAE paging have no keys: with every key denied, every
    // access still goes through (PAE bits 62:59 are reserved, so the page
    // cannot carry a key there anyway).
    for shape in PAGED.into_iter().filter(|s| !s.long()) {
        for leaf in [PRWU, PRW] {
            let mut w = World::new(shape, PRWU, leaf);
            w.flags(WP, PKE | PKS, 0);
            for (access, user) in ACCESSES {
                if user && leaf == PRW {
                    continue;
                }
                let req = Request { access, user, ac: false, pkru: !0, pkrs: !0 };
                assert_eq!(w.req(req), Ok(shape.gpa()), "{shape:?} {access:?} user={user}");
            }
        }
    }
}

#[test]
fn matrix_accessed_and_dirty() {
    for shape in PAGED {
        let width = if shape.wide() { 8 } else { 4 };
        let mut w = World::new(shape, PRWU, PRWU);
        // Neighbours of each entry must survive the updates.
        for e in w.ents.clone() {
            for at in [e.gpa.wrapping_sub(width), e.gpa + width] {
                if e.kind != Kind::Pdpte && w.ents.iter().all(|x| x.gpa != at) {
                    w.mem.write(at, width, !0);
                }
            }
        }
        let orig: Vec<u64> = (0..w.ents.len()).map(|i| w.get(i)).collect();
        let with_a = w.with_rights();
        let leaf = w.leaf();
        // A read: A in every entry used (not in a PAE PDPTE, which has
        // none), top first, each by a cmpxchg of the entry's width; no D.
        assert_eq!(w.go(R, USER), Ok(shape.gpa()), "{shape:?}");
        let log: Vec<(u64, u64)> = with_a.iter().map(|&i| (w.ents[i].gpa, width)).collect();
        assert_eq!(w.mem.cmpxchg_log, log, "{shape:?}");
        for (i, &o) in orig.iter().enumerate() {
            let a = bit_if(with_a.contains(&i), PTE_A);
            assert_eq!(w.get(i), o | a, "{shape:?} entry {i} after a read");
        }
        // Everything accessed: a read or a fetch changes nothing.
        w.mem.cmpxchg_log.clear();
        assert_eq!(w.go(R, SUP), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.go(F, USER), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.mem.cmpxchg_log, [], "{shape:?}");
        // A write: D in the leaf only, one cmpxchg.
        assert_eq!(w.go(W, USER), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.mem.cmpxchg_log, [(w.ents[leaf].gpa, width)], "{shape:?}");
        for (i, &o) in orig.iter().enumerate() {
            let a = bit_if(with_a.contains(&i), PTE_A);
            let d = bit_if(i == leaf, PTE_D);
            assert_eq!(w.get(i), o | a | d, "{shape:?} entry {i} after a write");
        }
        assert_eq!(w.go(W, SUP), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.mem.cmpxchg_log.len(), 1, "{shape:?}");
        // Neighbours untouched.
        for e in w.ents.clone() {
            for at in [e.gpa.wrapping_sub(width), e.gpa + width] {
                if e.kind != Kind::Pdpte && w.ents.iter().all(|x| x.gpa != at) {
                    assert_eq!(w.mem.read(at, width), Some(!0 >> (64 - 8 * width)), "{shape:?}");
                }
            }
        }

        // A first access that writes: A and D of the leaf in one cmpxchg.
        let mut w = World::new(shape, PRWU, PRWU);
        assert_eq!(w.go(W, SUP), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.mem.cmpxchg_log.len(), with_a.len(), "{shape:?}");
        for (i, &o) in orig.iter().enumerate() {
            let a = bit_if(with_a.contains(&i), PTE_A);
            let d = bit_if(i == leaf, PTE_D);
            assert_eq!(w.get(i), o | a | d, "{shape:?} entry {i} after a first write");
        }

        // A and D already set in the leaf, A above it: nothing to do.
        let mut w = World::new(shape, PRWU | PTE_A, PRWU | PTE_A | PTE_D);
        assert_eq!(w.go(W, USER), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.mem.cmpxchg_log, [], "{shape:?}");
        // Only the leaf lacks A: one update, of the leaf.
        let mut w = World::new(shape, PRWU | PTE_A, PRWU);
        assert_eq!(w.go(F, SUP), Ok(shape.gpa()), "{shape:?}");
        assert_eq!(w.mem.cmpxchg_log, [(w.ents[leaf].gpa, width)], "{shape:?}");
        assert_eq!(w.get(leaf) & (PTE_A | PTE_D), PTE_A, "{shape:?}");
    }
}

/// (upper, leaf, a reserved bit for the top entry, CR0, CR4, EFER, access,
/// user mode, PKRU).
type FailCase = (u64, u64, u64, u64, u64, u64, Access, bool, u32);

#[test]
fn matrix_failed_walks_change_nothing() {
    for shape in PAGED {
        let xd = bit_if(shape.wide(), PTE_XD);
        let top_bad = a_reserved_bit(World::new(shape, PRWU, PRWU).ents[0].kind);
        // Each of these faults.
        let mut cases: Vec<FailCase> = vec![
            (PRWU, PRWU & !PTE_P, 0, WP, 0, 0, W, SUP, 0),
            (PRWU, PTE_P | PTE_US, 0, WP, 0, 0, W, USER, 0),
            (PRWU, PTE_P, 0, 0, 0, 0, W, USER, 0),
            (PRWU, PRWU, 0, WP, SMAP, 0, W, SUP, 0),
            (PRWU, PRWU, 0, WP, SMEP, 0, F, SUP, 0),
        ];
        // A read-only entry above the leaf (a PAE PDPTE has no R/W).
        if World::new(shape, PRWU, PRWU).with_rights().len() > 1 {
            cases.push((PTE_P, PRWU, 0, WP, 0, 0, W, SUP, 0));
        }
        if shape.wide() {
            cases.push((PRWU, PRWU | xd, 0, WP, 0, NXE, F, USER, 0));
            cases.push((PRWU, PRWU | xd, 0, WP, 0, 0, W, USER, 0));
        }
        if shape.long() {
            cases.push((PRWU, PRWU | key(3), 0, WP, PKE, NXE, W, USER, wd(3)));
        }
        if let Some(bad) = top_bad {
            cases.push((PRWU, PRWU, bad, WP, 0, NXE, W, SUP, 0));
        }
        for (n, &(upper, leaf, bad, cr0, cr4, efer, access, user, pkru)) in cases.iter().enumerate()
        {
            let mut w = World::new(shape, upper, leaf);
            w.or(0, bad);
            w.flags(cr0, cr4, efer);
            let before = w.mem.bytes.clone();
            let req = Request { access, user, ac: false, pkru, pkrs: 0 };
            assert!(
                matches!(w.req(req), Err(WalkError::PageFault { .. })),
                "{shape:?} case {n} did not fault"
            );
            assert!(w.mem.bytes == before, "{shape:?} case {n}: memory changed");
            assert_eq!(w.mem.cmpxchgs, 0, "{shape:?} case {n}");
        }
    }
}

#[test]
fn matrix_lost_race_restarts_in_every_width() {
    for shape in PAGED {
        let mut w = World::new(shape, PRW, PRW);
        let leaf = w.leaf();
        let with_a = w.with_rights();
        if with_a.len() < 2 {
            continue; // A single entry with an A bit: no race to lose after the first.
        }
        // Just before the first cmpxchg another vCPU moves the page to
        // frame + 2 MiB (or + 4 MiB or 1 GiB): the leaf's update fails
        // and the second walk finds the new frame.
        let step = match w.ents[leaf].kind {
            Kind::Pde4M => 1 << 22,
            Kind::Page1G => G1,
            _ => M2,
        };
        w.mem.interference_width = if shape.wide() { 8 } else { 4 };
        w.mem.interference.push((w.ents[leaf].gpa, w.get(leaf) + step));
        assert_eq!(w.go(W, SUP), Ok(shape.gpa() + step), "{shape:?}");
        assert_eq!(
            w.get(leaf),
            (shape.frame() + step) | PRW | PTE_A | PTE_D | (w.get(leaf) & PTE_PS)
        );
        // All entries once in the first walk, then the leaf again.
        assert_eq!(w.mem.cmpxchgs, with_a.len() + 1, "{shape:?}");
    }
}

#[test]
fn bits32_4m_pages_pse36_by_maxphyaddr() {
    // PDE bits 20:13 = 0b1000_1001: PA bits 39, 35 and 32.
    let high = 0b1000_1001u64 << 13;
    for (m, want) in [
        (32u8, None),
        (35, None),
        (36, None),
        (39, None),
        (40, Some(0x89_7640_0000u64)),
        (46, Some(0x89_7640_0000)),
        (52, Some(0x89_7640_0000)),
    ] {
        let mut w = World::new(S::B32Pse4M, PRW, PRW | high);
        w.regs.phys_bits = m;
        let want = match want {
            Some(frame) => Ok(frame + 0x3a_3456),
            None => pf(PF_P | PF_RSVD),
        };
        assert_eq!(w.go(R, SUP), want, "M={m}");
    }
    // PA bits 35 and 32 only: fine from MAXPHYADDR 36 up.
    let high = 0b1001u64 << 13;
    for (m, ok) in [(32u8, false), (35, false), (36, true), (40, true)] {
        let mut w = World::new(S::B32Pse4M, PRW, PRW | high);
        w.regs.phys_bits = m;
        let want = if ok { Ok(0x9_767a_3456) } else { pf(PF_P | PF_RSVD) };
        assert_eq!(w.go(R, SUP), want, "M={m}");
    }
}
