// SPDX-License-Identifier: GPL-2.0

//! Memory this module owns page by page: guest segments and nested
//! page-table frames. The only code that turns a physical address into a
//! pointer.
//!
//! # Invariants
//!
//! - Every physical address held in a [`Segment`] or [`TableFrames`] is a
//!   page allocated by `vmm_alloc_chunk`, on which this module holds one
//!   reference until the owner is dropped. Pages are reached through the
//!   kernel's direct map, which covers all of them for as long as that
//!   reference is held.
//! - Accessors take offsets and check them against the owner's length, or
//!   (for table frames) check the address against the owner's sorted frame
//!   list, so no safe call can reach memory the owner does not hold.
//! - Guest memory is shared with running guests and sequencer mappings, so
//!   it is only accessed with volatile or atomic operations.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{error::to_result, mm::virt::VmaNew, prelude::*};

use super::ffi;

/// Bytes in a page.
pub(crate) const PAGE: u64 = 4096;
/// Bytes in one block of a segment: 2 MiB, so nested paging can use large
/// pages where a block is contiguous.
pub(crate) const BLOCK: u64 = 2 << 20;
const BLOCK_ORDER: u32 = 9;

/// Allocates a zeroed, contiguous run of `2^order` pages.
fn alloc(order: u32) -> Option<u64> {
    // SAFETY: the helper only allocates; a zero return means failure.
    let phys = unsafe { ffi::vmm_alloc_chunk(order) };
    (phys != 0).then_some(phys)
}

/// Drops this module's reference on `nr` pages from `phys` on.
///
/// # Safety
///
/// The caller owns one reference on each of the pages (they came from
/// [`alloc`]) and gives it up: nothing may reach the pages through it
/// afterwards.
unsafe fn free(phys: u64, nr: u64) {
    // SAFETY: by the function's contract.
    unsafe { ffi::vmm_free_pages_phys(phys, nr as kernel::ffi::c_ulong) };
}

/// Direct-map pointer to owned physical address `phys`.
fn ptr(phys: u64) -> *mut u8 {
    // SAFETY: translation only; callers hold a reference on the page.
    unsafe { ffi::vmm_phys_to_virt(phys) }.cast()
}

/// The physical pages behind 2 MiB of a segment.
enum Block {
    /// One contiguous run of pages.
    Contig(u64),
    /// Separate pages, when no contiguous 2 MiB was to be had.
    Pages(KVec<u64>),
}

/// A segment's memory: zero-filled pages, freed on drop.
pub(crate) struct Segment {
    blocks: KVec<Block>,
    len: u64,
}

impl Segment {
    /// Allocates `len` bytes (a non-zero multiple of [`PAGE`]).
    pub(crate) fn new(len: u64) -> Result<Self> {
        let mut seg = Segment { blocks: KVec::new(), len: 0 };
        let nr_blocks = len.div_ceil(BLOCK) as usize;
        seg.blocks.reserve(nr_blocks, GFP_KERNEL)?;
        while seg.len < len {
            let want = (len - seg.len).min(BLOCK);
            let block = match (want == BLOCK).then(|| alloc(BLOCK_ORDER)).flatten() {
                Some(phys) => Block::Contig(phys),
                None => {
                    let mut pages = KVec::with_capacity((want / PAGE) as usize, GFP_KERNEL)?;
                    for _ in 0..want / PAGE {
                        let phys = alloc(0).ok_or(ENOMEM);
                        // Push before `?`, so a failure frees what was got.
                        match phys {
                            Ok(p) => pages.push(p, GFP_KERNEL)?,
                            Err(e) => {
                                // SAFETY: the pages were allocated above
                                // and are not yet part of the segment.
                                pages.iter().for_each(|p| unsafe { free(*p, 1) });
                                return Err(e);
                            }
                        }
                    }
                    Block::Pages(pages)
                }
            };
            // Capacity was reserved, so this cannot fail.
            seg.blocks.push(block, GFP_KERNEL)?;
            seg.len += want;
        }
        Ok(seg)
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Physical address of the page at `off`, and how many bytes from
    /// `off` on are physically contiguous (at least to the page's end).
    pub(crate) fn phys(&self, off: u64) -> Option<(u64, u64)> {
        if off >= self.len {
            return None;
        }
        let block = self.blocks.get((off / BLOCK) as usize)?;
        let in_block = off % BLOCK;
        let block_len = (self.len - (off - in_block)).min(BLOCK);
        match block {
            Block::Contig(base) => Some((base + in_block, block_len - in_block)),
            Block::Pages(pages) => {
                let page = *pages.get((in_block / PAGE) as usize)?;
                Some((page + in_block % PAGE, PAGE - in_block % PAGE))
            }
        }
    }

    /// Copies guest memory at `off` into `buf`; `false` if out of range.
    pub(crate) fn read(&self, off: u64, buf: &mut [u8]) -> bool {
        self.each_byte(off, buf.len(), |p, i| {
            // SAFETY: `p` points into an owned page (checked by `each_byte`).
            buf[i] = unsafe { p.read_volatile() };
        })
    }

    /// Copies `data` into guest memory at `off`; `false` if out of range.
    pub(crate) fn write(&self, off: u64, data: &[u8]) -> bool {
        self.each_byte(off, data.len(), |p, i| {
            // SAFETY: `p` points into an owned page (checked by `each_byte`).
            unsafe { p.write_volatile(data[i]) };
        })
    }

    /// Atomically replaces the aligned `u64` at `off` if it equals `old`.
    /// `None` if out of range or misaligned.
    pub(crate) fn cmpxchg_u64(&self, off: u64, old: u64, new: u64) -> Option<bool> {
        if off % 8 != 0 {
            return None;
        }
        let (phys, _) = self.phys(off)?;
        // SAFETY: `phys` is an 8-byte-aligned address in an owned page; the
        // page is only ever accessed with volatile or atomic operations.
        let cell = unsafe { AtomicU64::from_ptr(ptr(phys).cast()) };
        Some(cell.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst).is_ok())
    }

    /// Calls `f(pointer, index)` for `n` bytes from `off`, page by page.
    fn each_byte(&self, off: u64, n: usize, mut f: impl FnMut(*mut u8, usize)) -> bool {
        if off.checked_add(n as u64).is_none_or(|end| end > self.len) {
            return false;
        }
        let mut i = 0;
        while i < n {
            let Some((phys, run)) = self.phys(off + i as u64) else {
                return false;
            };
            let p = ptr(phys);
            let chunk = (run as usize).min(n - i);
            for j in 0..chunk {
                // INVARIANT: `j < run`, so `p + j` stays in owned pages.
                f(p.wrapping_add(j), i + j);
            }
            i += chunk;
        }
        true
    }

    /// Inserts the pages of `[off, off + len)` into `vma`, from its start
    /// on; the VMA takes its own reference on each page. `EINVAL` when the
    /// range is not page-aligned or not inside the segment.
    pub(crate) fn map_into(&self, vma: &VmaNew, off: u64, len: u64) -> Result {
        let end = off.checked_add(len).ok_or(EINVAL)?;
        if off % PAGE != 0 || end > self.len {
            return Err(EINVAL);
        }
        let mut o = off;
        while o < end {
            let (phys, _) = self.phys(o).ok_or(EINVAL)?;
            let addr = vma.start() + (o - off) as usize;
            // SAFETY: `vma` is in its initial setup with the mm's lock held
            // (what `VmaNew` stands for); `phys` is a page of this segment,
            // which holds a reference on it throughout the call. The helper
            // refuses an address outside the VMA.
            to_result(unsafe { ffi::vmm_vma_insert_page(vma.as_ptr().cast(), addr, phys) })?;
            o += PAGE;
        }
        Ok(())
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        for block in self.blocks.iter() {
            match block {
                // SAFETY: the segment owns one reference on each of its
                // pages (type invariant) and is going away.
                Block::Contig(phys) => unsafe { free(*phys, BLOCK / PAGE) },
                Block::Pages(pages) => {
                    for p in pages.iter() {
                        // SAFETY: as above.
                        unsafe { free(*p, 1) };
                    }
                }
            }
        }
    }
}

/// Frames for nested page tables. A frame the walker frees goes back on a
/// free list, never to the kernel, until the VM is dropped: a CPU may still
/// be walking it through a stale paging-structure cache until every vCPU
/// has flushed, and keeping it costs at most the table's peak size.
pub(crate) struct TableFrames {
    /// Every frame held, sorted.
    all: KVec<u64>,
    /// Frames not in use.
    spare: KVec<u64>,
}

impl TableFrames {
    /// No frames yet.
    pub(crate) fn new() -> Self {
        Self { all: KVec::new(), spare: KVec::new() }
    }

    /// Pages held.
    pub(crate) fn nr_pages(&self) -> u64 {
        self.all.len() as u64
    }

    fn owned(&self, pa: u64) -> bool {
        self.all.binary_search(&(pa & !(PAGE - 1))).is_ok()
    }

    fn word(&self, pa: u64) -> Option<*mut u64> {
        (pa % 8 == 0 && self.owned(pa)).then(|| ptr(pa).cast())
    }
}

impl crate::vmspace::table::FrameAlloc for TableFrames {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        if let Some(pa) = self.spare.pop() {
            let p: *mut u64 = ptr(pa).cast();
            for i in 0..(PAGE / 8) as usize {
                // SAFETY: `pa` is an owned frame (it came from `all`).
                unsafe { p.add(i).write_volatile(0) };
            }
            return Some(pa);
        }
        self.all.reserve(1, GFP_KERNEL).ok()?;
        self.spare.reserve(self.all.len() + 1, GFP_KERNEL).ok()?;
        let pa = alloc(0)?;
        let at = self.all.binary_search(&pa).unwrap_or_else(|i| i);
        // Capacity was reserved above, so insertion cannot fail.
        self.all.insert_within_capacity(at, pa).ok()?;
        Some(pa)
    }

    fn free(&mut self, pa: u64) {
        if self.owned(pa) {
            // `spare` has room for every frame in `all`.
            let _ = self.spare.push_within_capacity(pa);
        }
    }
}

impl crate::vmspace::table::PhysMem for TableFrames {
    fn read(&self, pa: u64) -> u64 {
        match self.word(pa) {
            // SAFETY: `word` checked that `pa` is an aligned word of an
            // owned frame.
            Some(p) => unsafe { p.read_volatile() },
            None => 0,
        }
    }

    fn write(&mut self, pa: u64, value: u64) {
        if let Some(p) = self.word(pa) {
            // SAFETY: as in `read`.
            unsafe { p.write_volatile(value) };
        }
    }
}

impl Drop for TableFrames {
    fn drop(&mut self) {
        // SAFETY: `all` holds every frame, each with one reference this
        // owner took; the table that pointed at them is gone (the VM keeps
        // them until no CPU can walk them).
        self.all.iter().for_each(|p| unsafe { free(*p, 1) });
    }
}

/// A page run a VMCB, permission map or save area lives in: `2^order`
/// zeroed, contiguous pages, freed on drop.
pub(crate) struct HwPages {
    phys: u64,
    nr: u64,
}

impl HwPages {
    /// Allocates `2^order` zeroed contiguous pages.
    pub(crate) fn new(order: u32) -> Result<Self> {
        Ok(Self { phys: alloc(order).ok_or(ENOMEM)?, nr: 1 << order })
    }

    /// Physical address of the first page.
    pub(crate) fn phys(&self) -> u64 {
        self.phys
    }

    /// The pages as a mutable value of `T`.
    ///
    /// `T` must be plain data for which all-zero bytes are valid and fit in
    /// the pages (checked at compile time by the caller's size assertion;
    /// checked here at run time).
    pub(crate) fn as_mut<T: kernel::transmute::FromBytes>(&mut self) -> &mut T {
        assert!(core::mem::size_of::<T>() as u64 <= self.nr * PAGE);
        // SAFETY: the pages are owned, contiguous, page-aligned (so aligned
        // for any `T` with alignment up to 4096), large enough (asserted),
        // exclusively borrowed through `&mut self`, and `T: FromBytes` is
        // valid for any bytes.
        unsafe { &mut *ptr(self.phys).cast::<T>() }
    }

    /// The pages as a shared value of `T` (see [`Self::as_mut`]).
    pub(crate) fn as_ref<T: kernel::transmute::FromBytes>(&self) -> &T {
        assert!(core::mem::size_of::<T>() as u64 <= self.nr * PAGE);
        // SAFETY: as in `as_mut`, with shared access through `&self`.
        unsafe { &*ptr(self.phys).cast::<T>() }
    }

    /// Fills the pages with `byte`.
    pub(crate) fn fill(&mut self, byte: u8) {
        let p = ptr(self.phys);
        for i in 0..(self.nr * PAGE) as usize {
            // SAFETY: in bounds of the owned run.
            unsafe { p.add(i).write_volatile(byte) };
        }
    }
}

impl Drop for HwPages {
    fn drop(&mut self) {
        // SAFETY: the run is owned (allocated in `new`); the owner's
        // invariants (a VMCB, VMCS or map) say no CPU uses it any more.
        unsafe { free(self.phys, self.nr) };
    }
}
