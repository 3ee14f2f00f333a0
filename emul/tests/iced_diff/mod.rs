// SPDX-License-Identifier: GPL-2.0
//! Helpers of the differential decoder test (`tests/decode_iced.rs`).

pub mod gen;
#[path = "../common/rng.rs"]
pub mod rng;
pub mod model;
