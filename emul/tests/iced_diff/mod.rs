// SPDX-License-Identifier: GPL-2.0
//! Helpers of the differential decoder test (`tests/decode_iced.rs`).

pub mod gen;
pub mod model;
