// SPDX-License-Identifier: GPL-2.0

//! The virtual local APIC: a pure, total state machine (issue 5).
//!
//! Nothing is implemented yet. This crate exists so that the layout, the
//! workspace and the module build are in place; the model lands with the
//! vlapic issue. It will know nothing of VMX or SVM: APIC virtualization
//! plugs in through hooks, in the spirit of illumos `vlapic_ops`.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]
