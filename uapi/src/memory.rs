// SPDX-License-Identifier: MIT OR Apache-2.0

//! Guest memory: segments and their guest-physical mappings.
//!
//! A *segment* is a block of kernel-owned, zero-filled memory that belongs
//! to one VM. System memory segments are guest RAM; ROM segments are device
//! memory that the guest may only read and execute (a boot ROM, say), while
//! the sequencer fills them through `mmap`. Segments live until the VM is
//! destroyed; there is no free operation, as in bhyve.
//!
//! A segment (or a page-aligned slice of it) is *mapped* at a guest-physical
//! range with [`Prot`] bits. Any range may be mapped at most once at a time;
//! the same segment may be mapped at several ranges.
//!
//! The sequencer reaches a segment by `mmap`ing the VM fd at the segment's
//! [`VmmSegment::mmap_offset`]. The pages stay valid in the sequencer after
//! the VM is destroyed, until it unmaps them: each mapping holds its own
//! reference on every page, so a page is freed exactly once, by whichever
//! lets go last.

use super::{AbiField, FieldLayout, StructLayout};
use core::mem::{offset_of, size_of};

/// Most segments one VM may have; one more fails with `ENOSPC`.
pub const VMM_MAX_SEGMENTS: u32 = 32;
/// Most guest-physical mappings one VM may have; one more fails with `ENOSPC`.
pub const VMM_MAX_MAPPINGS: u32 = 64;
/// Most bytes of segment memory one VM may hold. A segment larger than this
/// fails with `EINVAL`; one that would take the VM's total past it fails
/// with `ENOSPC`.
pub const VMM_MAX_VM_MEMORY: u64 = 16 << 30;
/// Segment `id` is mmapped at file offset `id << VMM_SEG_MMAP_SHIFT`.
pub const VMM_SEG_MMAP_SHIFT: u32 = 36;

/// Kinds of segment, for [`VmmSegment::kind`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegKind {
    /// Guest RAM: may be mapped with any protection.
    SysMem = 1,
    /// Device memory used as ROM: may not be mapped writable.
    Rom = 2,
}

impl TryFrom<u32> for SegKind {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        match v {
            1 => Ok(Self::SysMem),
            2 => Ok(Self::Rom),
            other => Err(other),
        }
    }
}

bitflags::bitflags! {
    /// Guest access to a mapping, for [`VmmMap::prot`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Prot: u32 {
        /// The guest may read.
        const READ = 1 << 0;
        /// The guest may write. Requires `READ`.
        const WRITE = 1 << 1;
        /// The guest may execute. Requires `READ`.
        const EXEC = 1 << 2;
    }
}

abi_struct! {
    /// `VMM_VM_ALLOC_SEG` argument: allocates a zero-filled segment.
    pub struct VmmSegment as "vmm_segment" {
        /// In: a [`SegKind`] value.
        pub kind: u32,
        /// Out: the segment's id, used by `VMM_VM_MAP`.
        pub id: u32,
        /// In: length in bytes, a non-zero multiple of 4096.
        pub len: u64,
        /// Out: where to `mmap` the VM fd to reach the segment.
        pub mmap_offset: u64,
        /// Zero.
        pub flags: u32,
        /// Zero.
        pub reserved: u32,
        /// Zero.
        pub reserved2: [u64; 2],
    }
}

abi_struct! {
    /// `VMM_VM_MAP` and `VMM_VM_UNMAP` argument.
    ///
    /// Map: every address, length and offset is 4 KiB-aligned; the range
    /// lies below 2^`guest_phys_bits` (`VmmVmInfo`) and inside the segment;
    /// it overlaps no existing mapping (`EEXIST` otherwise).
    ///
    /// Unmap: `gpa` and `len` name exactly one existing mapping (`ENOENT`
    /// otherwise); the other fields are zero.
    pub struct VmmMap as "vmm_map" {
        /// First guest-physical address.
        pub gpa: u64,
        /// Length in bytes.
        pub len: u64,
        /// Offset into the segment of the first byte mapped.
        pub seg_offset: u64,
        /// The segment, from `VMM_VM_ALLOC_SEG`.
        pub seg_id: u32,
        /// [`Prot`] bits.
        pub prot: u32,
        /// Zero.
        pub flags: u32,
        /// Zero.
        pub reserved: u32,
    }
}
