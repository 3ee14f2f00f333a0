// SPDX-License-Identifier: GPL-2.0

//! When to invalidate cached translations.
//!
//! Every change that removes or narrows a translation (unmap, protect, a
//! split) bumps the address space's [`Generation`]. Whoever holds cached
//! translations keeps a [`Flushed`] per *flush domain* and invalidates when
//! the generation moved since it last did, once per generation:
//!
//! - EPT: INVEPT acts on the executing logical processor, so the domain is
//!   the host CPU: one INVEPT per host CPU per generation, whichever and
//!   however many vCPUs run there.
//! - NPT: the TLB is tagged by ASID, so the domain is the vCPU's ASID; a
//!   flush of that ASID (or of everything, without flush-by-ASID) on its
//!   next entry.
//!
//! bhyve tracked the EPT generation per vCPU *and* host CPU; keying the
//! state to the flush domain is enough and flushes less.

/// A counter of narrowing changes to one address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generation(u64);

impl Generation {
    /// The generation whose value is `v` (as [`Self::get`] returned it,
    /// for callers that publish it in an atomic).
    pub const fn at(v: u64) -> Self {
        Self(v)
    }

    /// The current value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Records a change that cached translations may contradict.
    pub fn bump(&mut self) {
        self.0 = self.0.wrapping_add(1);
    }
}

/// The generation one flush domain last invalidated at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flushed(Option<u64>);

impl Default for Flushed {
    fn default() -> Self {
        Self::NEVER
    }
}

impl Flushed {
    /// A domain that never invalidated: its first entry flushes.
    pub const NEVER: Self = Self(None);

    /// Whether the domain must invalidate before running on `current`;
    /// records that it will.
    pub fn must_flush(&mut self, current: Generation) -> bool {
        let stale = self.0 != Some(current.get());
        self.0 = Some(current.get());
        stale
    }

    /// The record as one word, for keeping it in an atomic: 0 is
    /// [`Self::NEVER`], else the generation plus one.
    pub const fn raw(self) -> u64 {
        match self.0 {
            None => 0,
            Some(g) => g.wrapping_add(1),
        }
    }

    /// The record [`Self::raw`] made.
    pub const fn from_raw(v: u64) -> Self {
        if v == 0 {
            Self::NEVER
        } else {
            Self(Some(v - 1))
        }
    }
}
