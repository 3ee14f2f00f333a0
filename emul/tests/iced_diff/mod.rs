// SPDX-License-Identifier: GPL-2.0
//! Helpers of the differential decoder test (`tests/decode_iced.rs`).
//! It is `pub mod` there, so that what the test does not use of the shared
//! `rng.rs` is not dead code; `doc(hidden)`: test helpers, not an API.

#![doc(hidden)]

pub mod gen;
pub mod model;
#[path = "../common/rng.rs"]
pub mod rng;
