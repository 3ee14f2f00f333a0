// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: a machine of 2-5 vCPUs (`Setup`) runs a random op list
//! through the interpreter the property tests use, with every invariant
//! checked after every op, and forks into a snapshot-and-restored copy
//! before op `split` that must then behave identically. Any panic is a
//! finding.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/ops/mod.rs"]
pub mod ops;

fuzz_target!(|input: ops::Input| {
    let split = input.split as usize % (input.ops.len() + 1);
    ops::run(&input.setup, &input.ops, Some(split));
});
