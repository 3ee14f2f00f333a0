// SPDX-License-Identifier: MIT OR Apache-2.0

//! The tests, by subject.

pub mod ctl;
pub mod module;
pub mod stress;
pub mod vm;
