// SPDX-License-Identifier: GPL-2.0

//! AMD-V encodings and decisions, free of hardware access.
//!
//! The kernel module compiles this file in as its `svm` module; `cargo test`
//! runs it on the host.
//!
//! Glossary: SVM = Secure Virtual Machine (AMD-V); VMCB = virtual machine
//! control block; NPT = nested page tables; ASID = address-space identifier;
//! NRIPS = next-RIP save; AVIC = AMD virtual interrupt controller; VGIF =
//! virtual global interrupt flag; APM = AMD64 Architecture Programmer's Manual.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

pub mod asid;
pub mod caps;
pub mod exit;
pub mod maps;
pub mod vmcb;

#[cfg(test)]
mod exit_tests;
#[cfg(test)]
mod tests;
