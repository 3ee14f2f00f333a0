// SPDX-License-Identifier: GPL-2.0

//! A radix page-table walker, generic over the entry format.
//!
//! Levels count up from the leaves: level 1 entries map 4 KiB pages, level
//! 2 entries map 2 MiB pages or point to level-1 tables, level 3 maps 1 GiB
//! pages or points to level-2 tables, and levels 4 and 5 only point. A
//! table is one 4 KiB frame of 512 entries, reached through [`PhysMem`] and
//! obtained from [`FrameAlloc`]; the walker never holds a pointer.
//!
//! Operations keep the tree tidy: a large page that an operation covers
//! only in part is split into 512 smaller entries first; tables left empty
//! are freed; [`PageTable::coalesce`] folds a table of 512 uniform,
//! contiguous leaves back into one large leaf.

use core::marker::PhantomData;

use super::pte::{PageSize, Prot, PteFormat, PAGE_SIZE};

/// Gives out and takes back zeroed 4 KiB frames for tables.
pub trait FrameAlloc {
    /// A zeroed, 4 KiB-aligned frame's physical address, or `None` when out
    /// of memory.
    fn alloc_zeroed(&mut self) -> Option<u64>;
    /// Returns a frame that [`Self::alloc_zeroed`] gave out.
    fn free(&mut self, pa: u64);
}

/// Reads and writes table entries by physical address.
pub trait PhysMem {
    /// The 8-byte entry at physical `pa` (8-byte aligned, in a table frame).
    fn read(&self, pa: u64) -> u64;
    /// Stores the 8-byte entry at physical `pa`.
    fn write(&mut self, pa: u64, value: u64);
}

/// Paging depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Levels {
    /// Four levels: 48-bit guest-physical addresses.
    Four = 4,
    /// Five levels: 57-bit guest-physical addresses.
    Five = 5,
}

impl Levels {
    /// Guest-physical address bits the depth can translate.
    pub const fn gpa_bits(self) -> u32 {
        12 + 9 * self as u32
    }
}

/// Why an operation was refused. Nothing was changed when it is returned,
/// except as [`Error::NoMemory`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An address or length is not 4 KiB-aligned, or the length is zero.
    Unaligned,
    /// The range reaches beyond the guest-physical width, or the host
    /// address beyond 52 bits.
    OutOfRange,
    /// The format cannot express these protections.
    BadProt,
    /// Part of the range to map is mapped already.
    AlreadyMapped,
    /// Out of frames for tables. A `map` that fails this way has undone
    /// itself; an `unmap` or `protect` may have split large pages first
    /// (translations are unchanged).
    NoMemory,
}

/// One translation, as [`PageTable::translate`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Host-physical address of the byte asked about.
    pub hpa: u64,
    /// Access the leaf grants.
    pub prot: Prot,
    /// Size of the leaf that maps it.
    pub size: PageSize,
}

const ENTRIES: u64 = 512;

const fn level_bytes(level: u8) -> u64 {
    1 << (12 + 9 * (level as u32 - 1))
}

const fn index(gpa: u64, level: u8) -> u64 {
    (gpa >> (12 + 9 * (level as u32 - 1))) & (ENTRIES - 1)
}

/// A nested page table in format `F`.
///
/// The caller keeps it consistent with its memory: every operation gets the
/// same `mem`, which reads and writes table frames ([`PhysMem`]) and hands
/// them out and takes them back ([`FrameAlloc`]); [`PageTable::destroy`]
/// gives all of them back.
#[derive(Debug)]
pub struct PageTable<F: PteFormat> {
    root: u64,
    levels: Levels,
    gpa_bits: u32,
    large: [bool; 2],
    _format: PhantomData<F>,
}

impl<F: PteFormat> PageTable<F> {
    /// An empty table of `levels` that translates the low `gpa_bits` of
    /// guest-physical space (at most what `levels` allows). `sizes` lists
    /// the large pages the hardware supports; 4 KiB is always allowed.
    pub fn new(
        alloc: &mut impl FrameAlloc,
        levels: Levels,
        gpa_bits: u32,
        sizes: &[PageSize],
    ) -> Result<Self, Error> {
        if gpa_bits < 12 || gpa_bits > levels.gpa_bits() {
            return Err(Error::OutOfRange);
        }
        let root = alloc.alloc_zeroed().ok_or(Error::NoMemory)?;
        Ok(Self {
            root,
            levels,
            gpa_bits,
            large: [sizes.contains(&PageSize::Size2M), sizes.contains(&PageSize::Size1G)],
            _format: PhantomData,
        })
    }

    /// Physical address of the top-level table (for the VMCB's nCR3 or the
    /// EPTP).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Paging depth.
    pub fn levels(&self) -> Levels {
        self.levels
    }

    /// Guest-physical address bits this table translates.
    pub fn gpa_bits(&self) -> u32 {
        self.gpa_bits
    }

    fn top(&self) -> u8 {
        self.levels as u8
    }

    fn allows(&self, size: PageSize) -> bool {
        match size {
            PageSize::Size4K => true,
            PageSize::Size2M => self.large[0],
            PageSize::Size1G => self.large[1],
        }
    }

    fn check_range(&self, gpa: u64, len: u64) -> Result<u64, Error> {
        if len == 0 || gpa % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 {
            return Err(Error::Unaligned);
        }
        let end = gpa.checked_add(len).ok_or(Error::OutOfRange)?;
        if end > 1u64 << self.gpa_bits {
            return Err(Error::OutOfRange);
        }
        Ok(end)
    }

    /// Finds the leaf mapping `gpa`.
    pub fn translate(&self, mem: &impl PhysMem, gpa: u64) -> Option<Translation> {
        if gpa >> self.gpa_bits != 0 {
            return None;
        }
        let mut table = self.root;
        for level in (1..=self.top()).rev() {
            let e = mem.read(table + index(gpa, level) * 8);
            if !F::present(e) {
                return None;
            }
            if is_leaf::<F>(e, level) {
                let size = PageSize::at_level(level)?;
                let offset = gpa & (size.bytes() - 1);
                return Some(Translation { hpa: F::addr(e) + offset, prot: F::prot(e), size });
            }
            table = F::addr(e);
        }
        None
    }

    /// Maps `len` bytes at `gpa` to host-physical `hpa` with `prot`, using
    /// the largest pages that alignment and the hardware allow. Fails,
    /// changing nothing, if any page of the range is mapped.
    pub fn map(
        &mut self,
        mem: &mut (impl PhysMem + FrameAlloc),
        gpa: u64,
        hpa: u64,
        len: u64,
        prot: Prot,
    ) -> Result<(), Error> {
        let end = self.check_range(gpa, len)?;
        if hpa % PAGE_SIZE != 0 {
            return Err(Error::Unaligned);
        }
        if hpa.checked_add(len).is_none_or(|e| e > 1u64 << 52) {
            return Err(Error::OutOfRange);
        }
        if !F::supports(prot) {
            return Err(Error::BadProt);
        }
        if self.any_mapped(mem, gpa, end) {
            return Err(Error::AlreadyMapped);
        }
        let mut cur = gpa;
        while cur < end {
            let off = cur - gpa;
            let size = [PageSize::Size1G, PageSize::Size2M, PageSize::Size4K]
                .into_iter()
                .find(|s| {
                    let b = s.bytes();
                    self.allows(*s) && cur % b == 0 && (hpa + off) % b == 0 && end - cur >= b
                })
                .unwrap_or(PageSize::Size4K);
            match self.slot(mem, cur, size.level()) {
                Some(slot) => {
                    let large = size != PageSize::Size4K;
                    mem.write(slot, F::leaf(hpa + off, prot, large));
                }
                None => {
                    // Undo: nothing else was mapped in the range before, and
                    // only whole pages were written, so nothing splits.
                    let _ = self.modify(mem, gpa, cur, |_, _| 0);
                    self.prune(mem, gpa, end);
                    return Err(Error::NoMemory);
                }
            }
            cur += size.bytes();
        }
        Ok(())
    }

    /// Removes every mapping in the range (holes are fine), splitting large
    /// pages it covers only in part and freeing tables left empty. Returns
    /// whether anything was unmapped, i.e. whether TLBs must be invalidated.
    pub fn unmap(
        &mut self,
        mem: &mut (impl PhysMem + FrameAlloc),
        gpa: u64,
        len: u64,
    ) -> Result<bool, Error> {
        let end = self.check_range(gpa, len)?;
        let changed = self.modify(mem, gpa, end, |_, _| 0)?;
        self.prune(mem, gpa, end);
        Ok(changed)
    }

    /// Sets `prot` on every mapping in the range (holes are fine), splitting
    /// large pages it covers only in part. Returns whether any leaf changed.
    pub fn protect(
        &mut self,
        mem: &mut (impl PhysMem + FrameAlloc),
        gpa: u64,
        len: u64,
        prot: Prot,
    ) -> Result<bool, Error> {
        let end = self.check_range(gpa, len)?;
        if !F::supports(prot) {
            return Err(Error::BadProt);
        }
        self.modify(mem, gpa, end, |e, level| F::leaf(F::addr(e), prot, level > 1))
    }

    /// Folds every table under the range whose 512 leaves are present, grant
    /// the same access and map one aligned, contiguous block back into a
    /// single large leaf, where the hardware allows that size. Returns the
    /// number of tables freed.
    pub fn coalesce(
        &mut self,
        mem: &mut (impl PhysMem + FrameAlloc),
        gpa: u64,
        len: u64,
    ) -> Result<usize, Error> {
        let end = self.check_range(gpa, len)?;
        Ok(self.coalesce_table(mem, self.root, self.top(), 0, gpa, end))
    }

    /// Frees every table, the root included.
    pub fn destroy(self, mem: &mut (impl PhysMem + FrameAlloc)) {
        self.free_table(mem, self.root, self.top());
    }

    // --- internals -------------------------------------------------------

    /// Whether any page in `[gpa, end)` is mapped.
    fn any_mapped(&self, mem: &impl PhysMem, gpa: u64, end: u64) -> bool {
        self.next_leaf(mem, gpa, end).is_some()
    }

    /// The first leaf that maps an address in `[cur, end)`, skipping holes
    /// a whole entry at a time.
    fn next_leaf(&self, mem: &impl PhysMem, mut cur: u64, end: u64) -> Option<Leaf> {
        'walk: while cur < end {
            let mut table = self.root;
            let mut level = self.top();
            loop {
                let at = table + index(cur, level) * 8;
                let e = mem.read(at);
                if !F::present(e) {
                    cur = next_boundary(cur, level);
                    continue 'walk;
                }
                if is_leaf::<F>(e, level) {
                    return Some(Leaf { at, entry: e, level, gpa: cur });
                }
                table = F::addr(e);
                level -= 1;
            }
        }
        None
    }

    /// The physical address of the entry for `gpa` at `level`, creating
    /// tables on the way. Only for ranges known to be unmapped.
    fn slot(&self, mem: &mut (impl PhysMem + FrameAlloc), gpa: u64, level: u8) -> Option<u64> {
        let mut table = self.root;
        for l in ((level + 1)..=self.top()).rev() {
            let at = table + index(gpa, l) * 8;
            let e = mem.read(at);
            table = if F::present(e) {
                F::addr(e)
            } else {
                let t = mem.alloc_zeroed()?;
                mem.write(at, F::table(t));
                t
            };
        }
        Some(table + index(gpa, level) * 8)
    }

    /// Rewrites every leaf in `[gpa, end)` with `f(old entry, level)`,
    /// splitting partly covered large leaves first.
    fn modify(
        &self,
        mem: &mut (impl PhysMem + FrameAlloc),
        gpa: u64,
        end: u64,
        mut f: impl FnMut(u64, u8) -> u64,
    ) -> Result<bool, Error> {
        let mut changed = false;
        let mut cur = gpa;
        while let Some(leaf) = self.next_leaf(mem, cur, end) {
            let size = level_bytes(leaf.level);
            let base = leaf.gpa & !(size - 1);
            if base >= gpa && base + size <= end {
                let new = f(leaf.entry, leaf.level);
                changed |= new != leaf.entry;
                mem.write(leaf.at, new);
                cur = base + size;
            } else {
                // Covered in part: split, then walk to the same address again.
                self.split(mem, leaf.at, leaf.entry, leaf.level)?;
                cur = leaf.gpa;
            }
        }
        Ok(changed)
    }

    /// Replaces the large leaf `e` at `at` (level 2 or 3) with a table of
    /// 512 leaves one level down that map the same memory the same way.
    fn split(
        &self,
        mem: &mut (impl PhysMem + FrameAlloc),
        at: u64,
        e: u64,
        level: u8,
    ) -> Result<(), Error> {
        let t = mem.alloc_zeroed().ok_or(Error::NoMemory)?;
        let step = level_bytes(level - 1);
        let (base, prot) = (F::addr(e), F::prot(e));
        for i in 0..ENTRIES {
            mem.write(t + i * 8, F::leaf(base + i * step, prot, level - 1 > 1));
        }
        mem.write(at, F::table(t));
        Ok(())
    }

    /// Frees the tables under `[gpa, end)` that hold no entry any more.
    fn prune(&self, mem: &mut (impl PhysMem + FrameAlloc), gpa: u64, end: u64) {
        self.prune_table(mem, self.root, self.top(), 0, gpa, end);
    }

    /// Prunes below `table` (at `level`, covering from `base`); returns
    /// whether `table` itself is now empty.
    fn prune_table(
        &self,
        mem: &mut (impl PhysMem + FrameAlloc),
        table: u64,
        level: u8,
        base: u64,
        gpa: u64,
        end: u64,
    ) -> bool {
        let span = level_bytes(level);
        for i in 0..ENTRIES {
            let lo = base + i * span;
            let at = table + i * 8;
            let e = mem.read(at);
            if overlaps(lo, span, gpa, end) && is_table::<F>(e, level) {
                let child = F::addr(e);
                if self.prune_table(mem, child, level - 1, lo, gpa, end) {
                    mem.write(at, 0);
                    mem.free(child);
                }
            }
        }
        (0..ENTRIES).all(|i| !F::present(mem.read(table + i * 8)))
    }

    fn coalesce_table(
        &self,
        mem: &mut (impl PhysMem + FrameAlloc),
        table: u64,
        level: u8,
        base: u64,
        gpa: u64,
        end: u64,
    ) -> usize {
        let span = level_bytes(level);
        let mut freed = 0;
        for i in 0..ENTRIES {
            let lo = base + i * span;
            let at = table + i * 8;
            let e = mem.read(at);
            if !overlaps(lo, span, gpa, end) || !is_table::<F>(e, level) {
                continue;
            }
            let child = F::addr(e);
            freed += self.coalesce_table(mem, child, level - 1, lo, gpa, end);
            let Some(size) = PageSize::at_level(level) else { continue };
            if self.allows(size) {
                if let Some(leaf) = self.uniform(mem, child, level - 1) {
                    mem.write(at, F::leaf(F::addr(leaf), F::prot(leaf), true));
                    mem.free(child);
                    freed += 1;
                }
            }
        }
        freed
    }

    /// If the table at `level` holds 512 leaves that grant the same access
    /// and map one contiguous block aligned to the size of the whole table,
    /// returns its first entry.
    fn uniform(&self, mem: &impl PhysMem, table: u64, level: u8) -> Option<u64> {
        let first = mem.read(table);
        let leaf_here = |e: u64| F::present(e) && is_leaf::<F>(e, level);
        if !leaf_here(first) || F::addr(first) % level_bytes(level + 1) != 0 {
            return None;
        }
        let step = level_bytes(level);
        (0..ENTRIES)
            .all(|i| {
                let e = mem.read(table + i * 8);
                leaf_here(e)
                    && F::addr(e) == F::addr(first) + i * step
                    && F::prot(e) == F::prot(first)
            })
            .then_some(first)
    }

    fn free_table(&self, mem: &mut (impl PhysMem + FrameAlloc), table: u64, level: u8) {
        if level > 1 {
            for i in 0..ENTRIES {
                let e = mem.read(table + i * 8);
                if is_table::<F>(e, level) {
                    self.free_table(mem, F::addr(e), level - 1);
                }
            }
        }
        mem.free(table);
    }
}

/// A leaf entry found by a walk.
struct Leaf {
    /// Physical address of the entry.
    at: u64,
    /// Its value.
    entry: u64,
    /// Its level (1 for 4 KiB).
    level: u8,
    /// The address the walk was looking for, inside the leaf.
    gpa: u64,
}

/// Whether present entry `e` at `level` maps memory (rather than pointing
/// to a table): always at level 1, with the large bit at levels 2 and 3.
fn is_leaf<F: PteFormat>(e: u64, level: u8) -> bool {
    level == 1 || (level <= 3 && F::large(e))
}

/// Whether `e` at `level` points to a next-level table.
fn is_table<F: PteFormat>(e: u64, level: u8) -> bool {
    F::present(e) && !is_leaf::<F>(e, level)
}

/// Whether `[lo, lo + span)` overlaps `[gpa, end)`.
fn overlaps(lo: u64, span: u64, gpa: u64, end: u64) -> bool {
    lo < end && lo.saturating_add(span) > gpa
}

/// The first address after `cur` that starts a new entry at `level`
/// (saturating at the top of the address space).
fn next_boundary(cur: u64, level: u8) -> u64 {
    let size = level_bytes(level);
    (cur | (size - 1)).saturating_add(1)
}
