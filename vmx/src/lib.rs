// SPDX-License-Identifier: GPL-2.0

//! Intel VT-x encodings and decisions, free of hardware access.
//!
//! The kernel module compiles this file in as its `vmx` module; `cargo test`
//! runs it on the host. Hardware is reached only through traits that the
//! glue in `src/` implements.
//!
//! Glossary: VMX = Virtual-Machine Extensions; VMCS = VM control structure;
//! EPT = extended page tables; VPID = virtual-processor identifier; SMX =
//! safer-mode extensions; SDM = Intel Software Developer's Manual.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

pub mod bitmaps;
pub mod caps;
pub mod controls;
pub mod exit;
pub mod tlb;
pub mod vmcs;

#[cfg(test)]
mod exit_tests;
#[cfg(test)]
mod tests;
