// SPDX-License-Identifier: GPL-2.0

//! The guest-physical address space.
//!
//! - [`pte`]: entry formats, [`pte::Npt`] and [`pte::Ept`], behind the
//!   [`pte::PteFormat`] trait, and the EPT pointer ([`pte::eptp`]).
//! - [`table`]: a page-table walker generic over the format: 4- and 5-level,
//!   4 KiB/2 MiB/1 GiB pages, map/unmap/protect with splits and merges. It
//!   reaches memory only through [`table::FrameAlloc`] and
//!   [`table::PhysMem`], so host tests run it on a `Vec`-backed arena.
//! - [`gen`]: when cached translations must be invalidated.
//! - [`mapping`]: segments placed at guest-physical ranges, validated.
//!
//! The kernel module compiles this file in as its `vmspace` module.
//!
//! Glossary: GPA = guest-physical address; HPA = host-physical address;
//! NPT = AMD nested page tables; EPT = Intel extended page tables; PTE =
//! page-table entry; INVEPT = invalidate EPT-derived translations; ASID =
//! address-space identifier.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

pub mod gen;
pub mod mapping;
pub mod pte;
pub mod table;

#[cfg(test)]
mod tests;
