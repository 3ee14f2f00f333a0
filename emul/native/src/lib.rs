// SPDX-License-Identifier: GPL-2.0

//! Differential execution of the `vmm-emul` instruction emulator against
//! the host CPU (a test-only crate). [`host`] runs one instruction in user
//! mode on registers and memory of the caller's choosing; the test
//! `tests/diff` generates seeded random cases, runs each both on the host
//! and through `vmm_emul::emulate`, and compares registers, flags and
//! memory bit for bit.
//!
//! `EMUL_NATIVE_CASES` sets the number of cases per test (the default
//! keeps a debug run short); `EMUL_NATIVE_SEED` the seed;
//! `EMUL_NATIVE_TRACE=1` prints each case before it runs natively (for a
//! case that crashes the process).
//!
//! x86-64 Linux only: it needs `MAP_32BIT` and the SysV calling convention.

#![deny(unsafe_code)]

#[expect(unsafe_code, reason = "running bytes natively needs mmap, mprotect and a call into them")]
pub mod host;

pub use host::{Host, Regs, DATA_LEN};
