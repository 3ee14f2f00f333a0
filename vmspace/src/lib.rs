// SPDX-License-Identifier: GPL-2.0

//! The guest-physical address space: a page-table walker generic over the
//! entry format (EPT, NPT), frame-allocator and physical-memory traits, and
//! the mapping set (issue 3).
//!
//! Nothing is implemented yet. This crate exists so that the layout, the
//! workspace and the module build are in place; the walker lands with the
//! AMD-V issue.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]
