// SPDX-License-Identifier: GPL-2.0

//! Host tests: the walker on a `Vec`-backed arena, for both formats and
//! both depths, plus the generation and the mapping set.

extern crate std;
use std::boxed::Box;
use std::vec::Vec;

use crate::gen::{Flushed, Generation};
use crate::mapping::{MapError, Mapping, MappingSet, MAX_MAPPINGS};
use crate::pte::{eptp, Ept, Npt, PageSize, Prot, PteFormat};
use crate::table::{Error, FrameAlloc, Levels, PageTable, PhysMem, Translation};

const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::READ.union(Prot::WRITE);
const ALL: [PageSize; 2] = [PageSize::Size2M, PageSize::Size1G];

/// Table frames in a `Vec`, at made-up physical addresses. Catches double
/// frees and use after free by panicking, and can run out on purpose.
struct Arena {
    frames: Vec<Option<Box<[u64; 512]>>>,
    live: usize,
    limit: usize,
}

const ARENA_BASE: u64 = 0x10_0000_0000;

impl Arena {
    fn new() -> Self {
        Self { frames: Vec::new(), live: 0, limit: usize::MAX }
    }
    fn slot(pa: u64) -> (usize, usize) {
        assert_eq!(pa % 8, 0, "unaligned entry {pa:#x}");
        (((pa - ARENA_BASE) / K4) as usize, ((pa % K4) / 8) as usize)
    }
}

impl FrameAlloc for Arena {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        if self.live == self.limit {
            return None;
        }
        self.live += 1;
        let frame = Some(Box::new([0u64; 512]));
        let i = match self.frames.iter().position(Option::is_none) {
            Some(i) => {
                self.frames[i] = frame;
                i
            }
            None => {
                self.frames.push(frame);
                self.frames.len() - 1
            }
        };
        Some(ARENA_BASE + i as u64 * K4)
    }
    fn free(&mut self, pa: u64) {
        let (f, _) = Self::slot(pa);
        assert!(self.frames[f].take().is_some(), "double free of {pa:#x}");
        self.live -= 1;
    }
}

impl PhysMem for Arena {
    fn read(&self, pa: u64) -> u64 {
        let (f, i) = Self::slot(pa);
        self.frames[f].as_ref().expect("read of a freed frame")[i]
    }
    fn write(&mut self, pa: u64, value: u64) {
        let (f, i) = Self::slot(pa);
        self.frames[f].as_mut().expect("write to a freed frame")[i] = value;
    }
}

fn new<F: PteFormat>(a: &mut Arena, levels: Levels, sizes: &[PageSize]) -> PageTable<F> {
    PageTable::new(a, levels, levels.gpa_bits(), sizes).unwrap()
}

fn at<F: PteFormat>(t: &PageTable<F>, a: &Arena, gpa: u64) -> Option<(u64, Prot, PageSize)> {
    t.translate(a, gpa).map(|Translation { hpa, prot, size }| (hpa, prot, size))
}

/// Defines a test that runs its body for both formats at both depths.
macro_rules! for_all {
    ($name:ident, |$f:ident, $levels:ident| $body:block) => {
        #[test]
        fn $name() {
            fn run<$f: PteFormat>($levels: Levels) $body
            for levels in [Levels::Four, Levels::Five] {
                run::<Npt>(levels);
                run::<Ept>(levels);
            }
        }
    };
}

for_all!(map_4k_and_translate, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    t.map(&mut a, 0x5000, 0x7_0000, K4, RW).unwrap();
    assert_eq!(at(&t, &a, 0x5123), Some((0x7_0123, RW, PageSize::Size4K)));
    assert_eq!(at(&t, &a, 0x4fff), None);
    assert_eq!(at(&t, &a, 0x6000), None);
    // The root plus one table per lower level.
    assert_eq!(a.live, levels as usize);
    t.destroy(&mut a);
    assert_eq!(a.live, 0);
});

for_all!(largest_pages_are_used, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    // 1 GiB + 2 MiB + 4 KiB, all aligned: one leaf of each size.
    t.map(&mut a, G1, 4 * G1, G1 + M2 + K4, RW).unwrap();
    assert_eq!(at(&t, &a, G1 + 5), Some((4 * G1 + 5, RW, PageSize::Size1G)));
    assert_eq!(at(&t, &a, 2 * G1 + 7), Some((5 * G1 + 7, RW, PageSize::Size2M)));
    assert_eq!(at(&t, &a, 2 * G1 + M2), Some((5 * G1 + M2, RW, PageSize::Size4K)));
    // The root and one table per level below it: the 1G leaf sits in the
    // level-3 table, the 2M leaf in a level-2 table, the 4K leaf in a
    // level-1 table.
    assert_eq!(a.live, levels as usize);
    t.destroy(&mut a);
    assert_eq!(a.live, 0);
});

for_all!(large_pages_follow_hardware_and_alignment, |F, levels| {
    let mut a = Arena::new();
    // Only 2 MiB pages: a 1 GiB range becomes 512 of them.
    let mut t = new::<F>(&mut a, levels, &[PageSize::Size2M]);
    t.map(&mut a, 0, 0, G1, RW).unwrap();
    assert_eq!(at(&t, &a, G1 - 1).map(|x| x.2), Some(PageSize::Size2M));
    // A host address aligned only to 4 KiB forces 4 KiB pages.
    t.map(&mut a, G1, 8 * G1 + K4, M2, RW).unwrap();
    assert_eq!(at(&t, &a, G1).map(|x| x.2), Some(PageSize::Size4K));
    // No large pages at all.
    let mut s = new::<F>(&mut a, levels, &[]);
    s.map(&mut a, 0, 0, M2, RW).unwrap();
    assert_eq!(at(&s, &a, M2 - 1), Some((M2 - 1, RW, PageSize::Size4K)));
    t.destroy(&mut a);
    s.destroy(&mut a);
    assert_eq!(a.live, 0);
});

for_all!(overlap_and_bad_requests_change_nothing, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    t.map(&mut a, M2, 0, M2, RW).unwrap();
    let before = a.live;
    assert_eq!(t.map(&mut a, M2 + 4 * K4, G1, K4, RW), Err(Error::AlreadyMapped));
    assert_eq!(t.map(&mut a, 0, G1, 2 * M2, RW), Err(Error::AlreadyMapped));
    assert_eq!(t.map(&mut a, 0x800, 0, K4, RW), Err(Error::Unaligned));
    assert_eq!(t.map(&mut a, 0, 0x800, K4, RW), Err(Error::Unaligned));
    assert_eq!(t.map(&mut a, 0, 0, 0, RW), Err(Error::Unaligned));
    assert_eq!(t.map(&mut a, 0, 0, K4, Prot::WRITE), Err(Error::BadProt));
    assert_eq!(t.map(&mut a, 0, 0, K4, Prot::empty()), Err(Error::BadProt));
    assert_eq!(t.map(&mut a, 0, (1 << 52) - K4, 2 * K4, RW), Err(Error::OutOfRange));
    assert_eq!(t.map(&mut a, u64::MAX - K4 + 1, 0, K4, RW), Err(Error::OutOfRange));
    assert_eq!(a.live, before);
    assert_eq!(at(&t, &a, M2), Some((0, RW, PageSize::Size2M)));
    t.destroy(&mut a);
});

for_all!(guest_physical_width, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    let top = 1u64 << levels.gpa_bits();
    // The very last page of the space maps; one page further does not.
    t.map(&mut a, top - K4, 0, K4, RW).unwrap();
    assert_eq!(at(&t, &a, top - 1), Some((K4 - 1, RW, PageSize::Size4K)));
    assert_eq!(t.map(&mut a, top, 0, K4, RW), Err(Error::OutOfRange));
    assert_eq!(at(&t, &a, top), None);
    assert!(t.unmap(&mut a, top - K4, K4).unwrap());
    t.destroy(&mut a);
    // A narrower width than the depth allows (the host's MAXPHYADDR).
    let mut n = PageTable::<F>::new(&mut a, levels, 40, &ALL).unwrap();
    assert_eq!(n.map(&mut a, 1 << 40, 0, K4, RW), Err(Error::OutOfRange));
    n.map(&mut a, (1 << 40) - M2, 0, M2, RW).unwrap();
    n.destroy(&mut a);
    assert_eq!(
        PageTable::<F>::new(&mut a, levels, levels.gpa_bits() + 1, &ALL).err(),
        Some(Error::OutOfRange)
    );
    assert_eq!(a.live, 0);
});

#[test]
fn five_levels_reach_beyond_48_bits() {
    let mut a = Arena::new();
    let mut four = new::<Npt>(&mut a, Levels::Four, &ALL);
    let mut five = new::<Npt>(&mut a, Levels::Five, &ALL);
    assert_eq!(four.map(&mut a, 1 << 48, 0, K4, RW), Err(Error::OutOfRange));
    five.map(&mut a, 1 << 48, 0, K4, RW).unwrap();
    assert_eq!(at(&five, &a, (1 << 48) + 1), Some((1, RW, PageSize::Size4K)));
    // A 57-bit address uses the fifth level's index.
    five.map(&mut a, 1 << 56, G1, G1, RW).unwrap();
    assert_eq!(at(&five, &a, (1 << 56) + 3).map(|x| x.0), Some(G1 + 3));
    four.destroy(&mut a);
    five.destroy(&mut a);
    assert_eq!(a.live, 0);
}

for_all!(unmap_splits_and_frees, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    let empty = a.live;
    t.map(&mut a, 0, G1, M2, RW).unwrap();
    // Unmapping one 4 KiB page in the middle splits the 2 MiB leaf.
    assert!(t.unmap(&mut a, 16 * K4, K4).unwrap());
    assert_eq!(at(&t, &a, 16 * K4), None);
    assert_eq!(at(&t, &a, 15 * K4 + 9), Some((G1 + 15 * K4 + 9, RW, PageSize::Size4K)));
    assert_eq!(at(&t, &a, 17 * K4), Some((G1 + 17 * K4, RW, PageSize::Size4K)));
    // Holes are fine; nothing there means nothing changed.
    assert!(!t.unmap(&mut a, 16 * K4, K4).unwrap());
    assert!(!t.unmap(&mut a, 4 * G1, G1).unwrap());
    // Unmapping the rest frees every table but the root.
    assert!(t.unmap(&mut a, 0, M2).unwrap());
    assert_eq!(at(&t, &a, 0), None);
    assert_eq!(a.live, empty);
    t.destroy(&mut a);
    assert_eq!(a.live, 0);
});

for_all!(protect_splits_and_coalesce_merges, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    t.map(&mut a, G1, 2 * G1, G1, RW).unwrap();
    let one_leaf = a.live;
    // Write-protect one 4 KiB page: 1G -> 512 x 2M, one of them -> 512 x 4K.
    assert!(t.protect(&mut a, G1 + M2 + K4, K4, Prot::READ).unwrap());
    assert_eq!(a.live, one_leaf + 2);
    assert_eq!(at(&t, &a, G1 + M2 + K4), Some((2 * G1 + M2 + K4, Prot::READ, PageSize::Size4K)));
    assert_eq!(at(&t, &a, G1 + M2), Some((2 * G1 + M2, RW, PageSize::Size4K)));
    assert_eq!(at(&t, &a, G1 + 3 * M2), Some((2 * G1 + 3 * M2, RW, PageSize::Size2M)));
    // Nothing to merge while the access differs.
    assert_eq!(t.coalesce(&mut a, G1, G1).unwrap(), 0);
    // Same access again: both tables fold back into the 1 GiB leaf.
    assert!(t.protect(&mut a, G1 + M2 + K4, K4, RW).unwrap());
    assert!(!t.protect(&mut a, G1 + M2 + K4, K4, RW).unwrap());
    assert_eq!(t.coalesce(&mut a, G1, G1).unwrap(), 2);
    assert_eq!(a.live, one_leaf);
    assert_eq!(at(&t, &a, G1 + M2 + K4), Some((2 * G1 + M2 + K4, RW, PageSize::Size1G)));
    t.destroy(&mut a);
    assert_eq!(a.live, 0);
});

for_all!(protections_round_trip, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &ALL);
    t.map(&mut a, 0, 0, 4 * K4, Prot::READ).unwrap();
    for (i, p) in [Prot::READ, RW, Prot::READ | Prot::EXEC, Prot::all()].into_iter().enumerate() {
        t.protect(&mut a, i as u64 * K4, K4, p).unwrap();
        assert_eq!(at(&t, &a, i as u64 * K4).unwrap().1, p);
    }
    assert_eq!(t.protect(&mut a, 0, K4, Prot::EXEC), Err(Error::BadProt));
    t.destroy(&mut a);
});

for_all!(coalesce_needs_contiguity, |F, levels| {
    let mut a = Arena::new();
    // 512 pages mapped one by one, contiguous: they fold into 2 MiB.
    let mut t = new::<F>(&mut a, levels, &ALL);
    for i in 0..512 {
        t.map(&mut a, i * K4, G1 + i * K4, K4, RW).unwrap();
    }
    assert_eq!(at(&t, &a, 0).unwrap().2, PageSize::Size4K);
    assert_eq!(t.coalesce(&mut a, 0, M2).unwrap(), 1);
    assert_eq!(at(&t, &a, M2 - 1), Some((G1 + M2 - 1, RW, PageSize::Size2M)));
    // Swapped frames do not fold.
    let mut s = new::<F>(&mut a, levels, &ALL);
    for i in 0..512 {
        let j = if i < 2 { 1 - i } else { i };
        s.map(&mut a, i * K4, G1 + j * K4, K4, RW).unwrap();
    }
    assert_eq!(s.coalesce(&mut a, 0, M2).unwrap(), 0);
    // Without 2 MiB support nothing folds either.
    let mut n = new::<F>(&mut a, levels, &[]);
    for i in 0..512 {
        n.map(&mut a, i * K4, G1 + i * K4, K4, RW).unwrap();
    }
    assert_eq!(n.coalesce(&mut a, 0, M2).unwrap(), 0);
    for x in [t, s, n] {
        x.destroy(&mut a);
    }
    assert_eq!(a.live, 0);
});

for_all!(out_of_frames_undoes_the_map, |F, levels| {
    let mut a = Arena::new();
    let mut t = new::<F>(&mut a, levels, &[]);
    t.map(&mut a, 0, 0, K4, RW).unwrap();
    let before = a.live;
    // Mapping 4 MiB of 4 KiB pages needs a second level-1 table.
    a.limit = before + 1;
    assert_eq!(t.map(&mut a, 2 * M2, 0, 2 * M2, RW), Err(Error::NoMemory));
    assert_eq!(a.live, before);
    assert_eq!(at(&t, &a, 2 * M2), None);
    assert_eq!(at(&t, &a, 0), Some((0, RW, PageSize::Size4K)));
    a.limit = usize::MAX;
    t.destroy(&mut a);
    assert_eq!(a.live, 0);
});

#[test]
fn split_without_frames_leaves_the_mapping_whole() {
    let mut a = Arena::new();
    let mut t = new::<Ept>(&mut a, Levels::Four, &ALL);
    t.map(&mut a, 0, G1, M2, RW).unwrap();
    a.limit = a.live;
    assert_eq!(t.unmap(&mut a, K4, K4), Err(Error::NoMemory));
    assert_eq!(at(&t, &a, K4), Some((G1 + K4, RW, PageSize::Size2M)));
    a.limit = usize::MAX;
    t.destroy(&mut a);
    assert_eq!(a.live, 0);
}

#[test]
fn entry_encodings() {
    // NPT: P|US always; RW for write; NX unless exec; PS for large.
    assert_eq!(Npt::leaf(0x1234_5000, RW, false), 0x8000_0000_1234_5007);
    assert_eq!(Npt::leaf(0x4000_0000, Prot::READ | Prot::EXEC, true), 0x4000_0085);
    assert_eq!(Npt::table(0x7000), 0x7007);
    assert!(!Npt::present(0) && Npt::present(1));
    // EPT: R/W/X bits 0-2, write-back type 6 in bits 5:3, bit 7 for large.
    assert_eq!(Ept::leaf(0x1234_5000, RW, false), 0x1234_5033);
    assert_eq!(Ept::leaf(0x4000_0000, Prot::all(), true), 0x4000_00b7);
    assert_eq!(Ept::table(0x7000), 0x7007);
    assert!(!Ept::present(0x30) && Ept::present(0x4));
    for p in [Prot::READ, RW, Prot::READ | Prot::EXEC, Prot::all()] {
        assert_eq!(Npt::prot(Npt::leaf(0, p, false)), p);
        assert_eq!(Ept::prot(Ept::leaf(0, p, true)), p);
    }
    // Addresses keep bits 51:12 only.
    assert_eq!(Npt::addr(Npt::leaf(0xffff_0000_0000_1fff, RW, false)), 0x000f_0000_0000_1000);
}

#[test]
fn eptp_encoding() {
    let root = 0x0000_0012_3456_7000;
    // Write-back (6) in bits 2:0, walk length - 1 in bits 5:3, no A/D.
    assert_eq!(eptp(root, 4), root | (3 << 3) | 6);
    assert_eq!(eptp(root, 5), root | (4 << 3) | 6);
    assert_eq!(eptp(0x1000, 4), 0x101e);
    assert_eq!(eptp(0x1000, 5), 0x1026);
    assert_eq!(eptp(root, 4) & (1 << 6), 0);
    // Only bits 51:12 of the root count.
    assert_eq!(eptp(0xffff_0000_0000_1fff, 4), 0x000f_0000_0000_101e);
}

#[test]
fn one_flush_per_domain_per_generation() {
    // EPT: 8 vCPUs moving over 2 host CPUs. INVEPT is per host CPU, so the
    // flush domain is the host CPU: each generation costs at most 2 flushes.
    let mut gen = Generation::default();
    let mut host = [Flushed::NEVER; 2];
    let mut flushes = 0;
    for round in 0..3 {
        for vcpu in 0..8 {
            let cpu = (vcpu + round) % 2;
            flushes += host[cpu].must_flush(gen) as u32;
        }
        if round != 2 {
            gen.bump();
        }
    }
    assert_eq!(flushes, 6, "2 host CPUs x 3 generations");
    // Nothing changed: no flush.
    assert!(!host[0].must_flush(gen));
    gen.bump();
    assert!(host[0].must_flush(gen) && !host[0].must_flush(gen));
}

#[test]
fn mapping_set_validates() {
    let mut s = MappingSet::new(40);
    let m = |gpa, len, offset| Mapping { gpa, len, segment: 1, offset, prot: RW };
    s.insert(m(M2, M2, 0), G1).unwrap();
    s.insert(m(0, M2, M2), G1).unwrap();
    assert_eq!(s.iter().map(|x| x.gpa).collect::<Vec<_>>(), [0, M2], "kept sorted");
    assert_eq!(s.insert(m(M2 + K4, K4, 0), G1), Err(MapError::Overlap));
    assert_eq!(s.insert(m(M2 - K4, 2 * K4, 0), G1), Err(MapError::Overlap));
    assert_eq!(s.insert(m(2 * M2, 0, 0), G1), Err(MapError::Unaligned));
    assert_eq!(s.insert(m(2 * M2 + 1, K4, 0), G1), Err(MapError::Unaligned));
    assert_eq!(s.insert(m(2 * M2, K4, 3), G1), Err(MapError::Unaligned));
    assert_eq!(s.insert(m(2 * M2, M2, G1 - K4), G1), Err(MapError::BeyondSegment));
    assert_eq!(s.insert(m((1 << 40) - K4, 2 * K4, 0), G1), Err(MapError::OutOfRange));
    assert_eq!(s.insert(m(u64::MAX - K4 + 1, K4, 0), G1), Err(MapError::OutOfRange));
    s.insert(m((1 << 40) - K4, K4, 0), G1).unwrap();
    assert_eq!(s.find(M2 + 5).map(|x| x.gpa), Some(M2));
    assert_eq!(s.find(2 * M2), None);
    assert_eq!(s.remove(M2, K4), Err(MapError::NotFound), "exact ranges only");
    assert_eq!(s.remove(M2, M2).unwrap().gpa, M2);
    assert_eq!(s.len(), 2);
    while s.len() < MAX_MAPPINGS {
        let gpa = G1 + s.len() as u64 * K4;
        s.insert(m(gpa, K4, 0), G1).unwrap();
    }
    assert_eq!(s.insert(m(2 * G1, K4, 0), G1), Err(MapError::Full));
    assert_eq!(s.iter().count(), MAX_MAPPINGS);
    assert!(s.iter().zip(s.iter().skip(1)).all(|(a, b)| a.end() <= b.gpa));
}

#[test]
fn mapping_set_refuses_a_range_around_another() {
    use crate::mapping::{MapError, Mapping, MappingSet};
    use crate::pte::Prot;
    let mut set = MappingSet::new(40);
    let m = |gpa, len| Mapping { gpa, len, segment: 0, offset: 0, prot: Prot::READ };
    set.insert(m(0x10_0000, 0x4000), 0x1_0000).unwrap();
    for (gpa, len) in [
        (0x10_0000, 0x4000),
        (0x10_2000, 0x4000),
        (0xf_f000, 0x2000),
        (0x10_1000, 0x1000),
        (0xf_e000, 0x8000),
    ] {
        assert_eq!(set.insert(m(gpa, len), 0x1_0000), Err(MapError::Overlap), "{gpa:#x}+{len:#x}");
    }
    set.insert(m(0x10_4000, 0x4000), 0x1_0000).unwrap();
    set.insert(m(0xf_c000, 0x4000), 0x1_0000).unwrap();
    assert_eq!(set.insert(m(0xf_e000, 0x8000), 0x1_0000), Err(MapError::Overlap));
}

#[test]
fn flushed_round_trips_through_a_word() {
    use crate::gen::{Flushed, Generation};
    assert_eq!(Flushed::from_raw(Flushed::NEVER.raw()), Flushed::NEVER);
    let mut f = Flushed::NEVER;
    assert!(f.must_flush(Generation::at(0)));
    let g = Flushed::from_raw(f.raw());
    assert_eq!(g, f);
    let mut g = g;
    assert!(!g.must_flush(Generation::at(0)));
    assert!(g.must_flush(Generation::at(7)));
}
