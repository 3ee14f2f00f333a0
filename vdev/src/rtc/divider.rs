// SPDX-License-Identifier: GPL-2.0

//! The divider chain's timing: when updates and periodic flags happen.
//!
//! The 32.768 kHz time base feeds a 15-stage divider. Time is measured as
//! the *age* of the chain: nanoseconds since it last left reset (DV went to
//! 010). Facts (MC146818A data sheet, "Divider Stages", "Update Cycle",
//! table 5):
//!
//! - the first update comes 500 ms after the chain leaves reset, then one
//!   every second: at ages 0.5 s, 1.5 s, 2.5 s, ...;
//! - the periodic flag comes from tap RS of the chain, every 2^(RS-1)
//!   cycles for RS = 3..15 (122.070 µs to 500 ms); RS = 1 and 2 give the
//!   same 256 and 128 Hz as RS = 8 and 9 with this time base; RS = 0 is
//!   off. Every period divides 0.5 s, so the ticks line up with updates;
//! - UIP is 1 from 244 µs (8 cycles) before each update; the update itself
//!   is modelled as instantaneous, so UIP falls when it happens.
//!
//! No 128-bit arithmetic: a cycle lasts 1e9 / 32768 = 1953125 / 64 ns, and
//! conversions split off whole groups of 64 cycles first, so nothing
//! overflows (ages are below 2^63 ns).

use super::super::Nanos;

/// Nanoseconds in 64 cycles of the 32.768 kHz time base (exact).
const NANOS_PER_64_CYCLES: u64 = 1_953_125;
/// Nanoseconds in a second.
pub(crate) const SEC: Nanos = 1_000_000_000;
/// Age of the chain at its first update.
pub(crate) const FIRST_UPDATE: Nanos = 500_000_000;
/// How long before an update UIP reads 1: 8 cycles, 244.140625 µs; an
/// instant `t` ns before the update is in that window when t <= 244140.
pub(crate) const UIP_LEAD: Nanos = 244_140;

/// Whole cycles of the time base in `ns` nanoseconds (rounded down).
pub(crate) fn cycles_in(ns: Nanos) -> u64 {
    ns / NANOS_PER_64_CYCLES * 64 + ns % NANOS_PER_64_CYCLES * 64 / NANOS_PER_64_CYCLES
}

/// The first whole nanosecond at or after `cycles` cycles (saturating).
pub(crate) fn nanos_for(cycles: u64) -> Nanos {
    (cycles / 64)
        .saturating_mul(NANOS_PER_64_CYCLES)
        .saturating_add((cycles % 64 * NANOS_PER_64_CYCLES).div_ceil(64))
}

/// The periodic interval in cycles that rate select `rs` (0-15) gives, or
/// `None` for RS = 0.
pub(crate) const fn period_cycles(rs: u8) -> Option<u64> {
    let tap = match rs & 0xf {
        0 => return None,
        r @ 1..=2 => r + 7,
        r => r,
    };
    Some(1 << (tap - 1))
}

/// Updates that have happened by age `age`.
pub(crate) fn updates_by(age: Nanos) -> u64 {
    match age.checked_sub(FIRST_UPDATE) {
        None => 0,
        Some(after) => after / SEC + 1,
    }
}

/// The age of the first update after age `age`.
pub(crate) fn next_update_after(age: Nanos) -> Nanos {
    match age.checked_sub(FIRST_UPDATE) {
        None => FIRST_UPDATE,
        Some(after) => (after / SEC + 1).saturating_mul(SEC).saturating_add(FIRST_UPDATE),
    }
}

/// The age of the first periodic tick after age `age`, for a period of
/// `period` cycles.
pub(crate) fn next_tick_after(age: Nanos, period: u64) -> Nanos {
    let period = period.max(1);
    nanos_for((cycles_in(age) / period + 1).saturating_mul(period))
}

/// Whether UIP reads 1 at age `age` (with updates enabled).
pub(crate) fn update_in_progress(age: Nanos) -> bool {
    next_update_after(age).saturating_sub(age) <= UIP_LEAD
}
