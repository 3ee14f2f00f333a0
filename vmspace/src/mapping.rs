// SPDX-License-Identifier: GPL-2.0

//! Which memory segment backs which guest-physical range.
//!
//! A [`MappingSet`] holds up to [`MAX_MAPPINGS`] mappings, sorted by
//! guest-physical address and never overlapping. It checks every request
//! before the page table is touched, so that the table only ever sees valid
//! ranges.

use super::pte::{Prot, PAGE_SIZE};

/// Most mappings one address space holds; one more is [`MapError::Full`].
pub const MAX_MAPPINGS: usize = 64;

/// A segment mapped at a guest-physical range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First guest-physical address.
    pub gpa: u64,
    /// Length in bytes.
    pub len: u64,
    /// The segment's identifier.
    pub segment: u32,
    /// Offset of `gpa` within the segment.
    pub offset: u64,
    /// Access the guest gets.
    pub prot: Prot,
}

impl Mapping {
    /// One past the last guest-physical address.
    pub const fn end(&self) -> u64 {
        self.gpa + self.len
    }

    /// Whether `gpa` falls inside.
    pub const fn contains(&self, gpa: u64) -> bool {
        gpa >= self.gpa && gpa < self.end()
    }
}

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address, length or offset not 4 KiB-aligned, or a zero length.
    Unaligned,
    /// The range ends beyond the guest-physical width.
    OutOfRange,
    /// The range runs past the end of its segment.
    BeyondSegment,
    /// The range overlaps an existing mapping.
    Overlap,
    /// Already [`MAX_MAPPINGS`] mappings.
    Full,
    /// No mapping has exactly this address and length.
    NotFound,
}

/// The mappings of one guest-physical address space.
#[derive(Clone, Debug)]
pub struct MappingSet {
    maps: [Option<Mapping>; MAX_MAPPINGS],
    len: usize,
    gpa_bits: u32,
}

impl MappingSet {
    /// An empty set for an address space of `gpa_bits` bits.
    pub const fn new(gpa_bits: u32) -> Self {
        Self { maps: [None; MAX_MAPPINGS], len: 0, gpa_bits }
    }

    /// Width of the address space in bits.
    pub const fn gpa_bits(&self) -> u32 {
        self.gpa_bits
    }

    /// The mappings, in guest-physical order.
    pub fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.maps[..self.len].iter().flatten()
    }

    /// How many mappings there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapping that covers `gpa`.
    pub fn find(&self, gpa: u64) -> Option<&Mapping> {
        self.iter().find(|m| m.contains(gpa))
    }

    /// Checks `m` against its segment's length and the other mappings,
    /// then adds it.
    pub fn insert(&mut self, m: Mapping, segment_len: u64) -> Result<(), MapError> {
        let aligned = |v: u64| v % PAGE_SIZE == 0;
        if m.len == 0 || !aligned(m.gpa) || !aligned(m.len) || !aligned(m.offset) {
            return Err(MapError::Unaligned);
        }
        let end = m.gpa.checked_add(m.len).ok_or(MapError::OutOfRange)?;
        if self.gpa_bits < 64 && end > 1u64 << self.gpa_bits {
            return Err(MapError::OutOfRange);
        }
        if m.offset.checked_add(m.len).is_none_or(|e| e > segment_len) {
            return Err(MapError::BeyondSegment);
        }
        if self.iter().any(|o| m.gpa < o.end() && o.gpa < end) {
            return Err(MapError::Overlap);
        }
        if self.len == MAX_MAPPINGS {
            return Err(MapError::Full);
        }
        let at = self.iter().position(|o| o.gpa > m.gpa).unwrap_or(self.len);
        self.maps.copy_within(at..self.len, at + 1);
        self.maps[at] = Some(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the mapping at exactly `gpa` with exactly `len` bytes.
    pub fn remove(&mut self, gpa: u64, len: u64) -> Result<Mapping, MapError> {
        let at =
            self.iter().position(|m| m.gpa == gpa && m.len == len).ok_or(MapError::NotFound)?;
        let m = self.maps[at].take().ok_or(MapError::NotFound)?;
        self.maps.copy_within(at + 1..self.len, at);
        self.len -= 1;
        self.maps[self.len] = None;
        Ok(m)
    }
}
