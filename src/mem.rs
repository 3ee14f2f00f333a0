// SPDX-License-Identifier: GPL-2.0

//! A VM's memory: segments, their guest-physical mappings, the nested page
//! table that realises the mappings, and guest-physical access for the
//! instructions the kernel completes itself.
//!
//! Backing policy: segments are kernel-owned, zero-filled pages, allocated
//! in 2 MiB contiguous blocks where the allocator has them (so nested
//! paging can use 2 MiB pages) and single pages otherwise. They are never
//! freed while the VM exists, so a stale translation in any TLB can only
//! ever reach the VM's own memory. The sequencer's `mmap` inserts the same
//! pages with their own references; whoever lets go last frees a page.
//!
//! Locking: [`VmMem`] sits in a mutex of the VM. `mmap` takes it with the
//! mm's mmap lock held, so nothing may touch user memory while holding it.

use kernel::{mm::virt::VmaNew, prelude::*};

use crate::backend::NestedFormat;
use crate::hw::mem::{Segment, TableFrames, PAGE};
use crate::uapi::{self, Prot, SegKind};
use crate::vmspace::{
    gen::Generation,
    mapping::{MapError, Mapping, MappingSet},
    pte::{Ept, Npt, PageSize, Prot as PteProt},
    table::{self, Levels, PageTable},
};

/// A nested page table in the backend's format.
pub(crate) enum Nested {
    /// AMD nested page table.
    Npt(PageTable<Npt>),
    /// Intel EPT.
    Ept(PageTable<Ept>),
}

macro_rules! with_table {
    ($n:expr, $t:ident => $e:expr) => {
        match $n {
            Nested::Npt($t) => $e,
            Nested::Ept($t) => $e,
        }
    };
}

/// One segment and what it is for.
struct Seg {
    kind: SegKind,
    mem: Segment,
}

/// The memory of one VM.
pub(crate) struct VmMem {
    segs: KVec<Seg>,
    maps: MappingSet,
    table: Option<Nested>,
    frames: TableFrames,
    /// Bytes of segment memory.
    total: u64,
    /// Bumped whenever a translation is removed or narrowed.
    pub(crate) generation: Generation,
}

fn map_err(e: MapError) -> Error {
    match e {
        MapError::Unaligned | MapError::OutOfRange | MapError::BeyondSegment => EINVAL,
        MapError::Overlap => EEXIST,
        MapError::Full => ENOSPC,
        MapError::NotFound => ENOENT,
    }
}

fn table_err(e: table::Error) -> Error {
    match e {
        table::Error::NoMemory => ENOMEM,
        table::Error::AlreadyMapped => EEXIST,
        _ => EINVAL,
    }
}

fn pte_prot(p: Prot) -> PteProt {
    PteProt::from_bits_truncate(p.bits() as u8)
}

impl VmMem {
    /// An empty address space for a host with `levels` paging levels and
    /// `phys_bits` physical-address bits: in the SVM (NPT) format, whose
    /// depth follows the host's paging mode, or in the EPT format
    /// (4 levels, 48-bit guest-physical addresses).
    pub(crate) fn new(
        levels: u32,
        phys_bits: u32,
        large: &[PageSize],
        format: NestedFormat,
    ) -> Result<Self> {
        let ept = format == NestedFormat::Ept;
        let levels = if levels == 5 && !ept { Levels::Five } else { Levels::Four };
        let gpa_bits = phys_bits.min(levels.gpa_bits());
        let mut frames = TableFrames::new();
        let table = if ept {
            Nested::Ept(
                PageTable::<Ept>::new(&mut frames, levels, gpa_bits, large).map_err(table_err)?,
            )
        } else {
            Nested::Npt(
                PageTable::<Npt>::new(&mut frames, levels, gpa_bits, large).map_err(table_err)?,
            )
        };
        Ok(Self {
            segs: KVec::new(),
            maps: MappingSet::new(gpa_bits),
            table: Some(table),
            frames,
            total: 0,
            generation: Generation::default(),
        })
    }

    /// Width of the guest-physical address space.
    pub(crate) fn gpa_bits(&self) -> u32 {
        self.maps.gpa_bits()
    }

    /// The nested table's root, for nCR3 or the EPTP.
    pub(crate) fn root(&self) -> u64 {
        self.table.as_ref().map_or(0, |t| with_table!(t, t => t.root()))
    }

    /// Pages held (segments and table frames), for `VMM_GET_STATS`.
    pub(crate) fn nr_pages(&self) -> u64 {
        self.total / PAGE + self.frames.nr_pages()
    }

    /// Counts for `VMM_VM_GET_INFO`.
    pub(crate) fn counts(&self) -> (u32, u32) {
        (self.segs.len() as u32, self.maps.len() as u32)
    }

    /// `VMM_VM_ALLOC_SEG`.
    pub(crate) fn alloc_segment(&mut self, req: &mut uapi::VmmSegment) -> Result {
        let kind = SegKind::try_from(req.kind).map_err(|_| EINVAL)?;
        if req.flags != 0 || req.reserved != 0 || req.reserved2 != [0; 2] || req.id != 0 {
            return Err(EINVAL);
        }
        if req.len == 0 || req.len % PAGE != 0 || req.len > uapi::VMM_MAX_VM_MEMORY {
            return Err(EINVAL);
        }
        if self.segs.len() >= uapi::VMM_MAX_SEGMENTS as usize
            || self.total + req.len > uapi::VMM_MAX_VM_MEMORY
        {
            return Err(ENOSPC);
        }
        self.segs.reserve(1, GFP_KERNEL)?;
        let mem = Segment::new(req.len)?;
        let id = self.segs.len() as u32;
        self.segs.push(Seg { kind, mem }, GFP_KERNEL)?;
        self.total += req.len;
        req.id = id;
        req.mmap_offset = u64::from(id) << uapi::VMM_SEG_MMAP_SHIFT;
        Ok(())
    }

    /// `VMM_VM_MAP`.
    pub(crate) fn map(&mut self, req: &uapi::VmmMap) -> Result {
        if req.flags != 0 || req.reserved != 0 {
            return Err(EINVAL);
        }
        let prot = Prot::from_bits(req.prot).ok_or(EINVAL)?;
        if !prot.contains(Prot::READ) {
            return Err(EINVAL);
        }
        let seg = self.segs.get(req.seg_id as usize).ok_or(ENOENT)?;
        if seg.kind == SegKind::Rom && prot.contains(Prot::WRITE) {
            return Err(EINVAL);
        }
        let m = Mapping {
            gpa: req.gpa,
            len: req.len,
            segment: req.seg_id,
            offset: req.seg_offset,
            prot: pte_prot(prot),
        };
        // Check everything (alignment, width, overlap, count) first.
        let mut trial = self.maps.clone();
        trial.insert(m, seg.mem.len()).map_err(map_err)?;
        let table = self.table.as_mut().ok_or(EINVAL)?;
        let mut done = 0;
        let mut result = Ok(());
        while done < m.len {
            let Some((hpa, run)) = seg.mem.phys(m.offset + done) else {
                result = Err(EINVAL);
                break;
            };
            let n = run.min(m.len - done);
            let r = with_table!(table, t => t.map(&mut self.frames, m.gpa + done, hpa, n, m.prot));
            if let Err(e) = r {
                result = Err(table_err(e));
                break;
            }
            done += n;
        }
        if let Err(e) = result {
            if done > 0 {
                // Undo what was mapped; nothing else lived in the range.
                let _ = with_table!(table, t => t.unmap(&mut self.frames, m.gpa, done));
            }
            return Err(e);
        }
        self.maps = trial;
        Ok(())
    }

    /// `VMM_VM_UNMAP`. Returns with the generation bumped; the caller kicks
    /// running vCPUs so they flush before their next guest instruction.
    pub(crate) fn unmap(&mut self, req: &uapi::VmmMap) -> Result {
        if req.seg_offset != 0
            || req.seg_id != 0
            || req.prot != 0
            || req.flags != 0
            || req.reserved != 0
        {
            return Err(EINVAL);
        }
        let mut trial = self.maps.clone();
        let m = trial.remove(req.gpa, req.len).map_err(map_err)?;
        let table = self.table.as_mut().ok_or(EINVAL)?;
        with_table!(table, t => t.unmap(&mut self.frames, m.gpa, m.len)).map_err(table_err)?;
        self.maps = trial;
        self.generation.bump();
        Ok(())
    }

    /// Maps `len` bytes of segment memory at mmap offset `offset` (the
    /// segment id in the high bits, see `VMM_SEG_MMAP_SHIFT`) into `vma`.
    pub(crate) fn mmap(&self, vma: &VmaNew, offset: u64, len: u64) -> Result {
        let id = offset >> uapi::VMM_SEG_MMAP_SHIFT;
        let off = offset & ((1u64 << uapi::VMM_SEG_MMAP_SHIFT) - 1);
        let seg = self.segs.get(id as usize).ok_or(EINVAL)?;
        if len == 0 || off.checked_add(len).is_none_or(|e| e > seg.mem.len()) {
            return Err(EINVAL);
        }
        seg.mem.map_into(vma, off, len)
    }

    /// The mapping that covers `gpa`.
    pub(crate) fn mapping(&self, gpa: u64) -> Option<&Mapping> {
        self.maps.find(gpa)
    }

    /// The segment and offset behind `gpa` when the guest may access it
    /// with `need`.
    fn locate(&self, gpa: u64, need: PteProt) -> Option<(&Segment, u64)> {
        let m = self.maps.find(gpa)?;
        if !m.prot.contains(need) {
            return None;
        }
        let seg = self.segs.get(m.segment as usize)?;
        Some((&seg.mem, m.offset + (gpa - m.gpa)))
    }

    /// Reads guest-physical memory, as the guest could; `false` if any byte
    /// is unmapped or not readable (MMIO, for example). May cross pages.
    pub(crate) fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        self.per_page(gpa, buf.len(), PteProt::READ, |seg, off, at, n| {
            seg.read(off, &mut buf[at..at + n])
        })
    }

    /// Writes guest-physical memory, as the guest could.
    pub(crate) fn write(&self, gpa: u64, data: &[u8]) -> bool {
        self.per_page(gpa, data.len(), PteProt::WRITE, |seg, off, at, n| {
            seg.write(off, &data[at..at + n])
        })
    }

    fn per_page(
        &self,
        gpa: u64,
        len: usize,
        need: PteProt,
        mut f: impl FnMut(&Segment, u64, usize, usize) -> bool,
    ) -> bool {
        let mut at = 0;
        while at < len {
            let cur = gpa.wrapping_add(at as u64);
            let n = ((PAGE - cur % PAGE) as usize).min(len - at);
            match self.locate(cur, need) {
                Some((seg, off)) if f(seg, off, at, n) => at += n,
                _ => return false,
            }
        }
        true
    }

    /// Atomic compare-and-exchange of a guest-physical `u64` (for A/D bits
    /// in guest page tables).
    pub(crate) fn cmpxchg_u64(&self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        let (seg, off) = self.locate(gpa, PteProt::WRITE)?;
        seg.cmpxchg_u64(off, old, new)
    }
}

impl VmMem {
    /// Drops every segment, mapping and table of a destroyed VM. No vCPU
    /// may run meanwhile or afterwards (the VM is destroyed, so none
    /// enters); the nested table's root is then 0.
    pub(crate) fn release(&mut self) {
        if let Some(t) = self.table.take() {
            with_table!(t, t => t.destroy(&mut self.frames));
        }
        self.frames = TableFrames::new();
        self.segs = KVec::new();
        self.maps = MappingSet::new(self.maps.gpa_bits());
        self.total = 0;
    }
}

impl Drop for VmMem {
    fn drop(&mut self) {
        if let Some(t) = self.table.take() {
            with_table!(t, t => t.destroy(&mut self.frames));
        }
    }
}
