// SPDX-License-Identifier: GPL-2.0

//! Host tests of the RTC, against the MC146818A data sheet.
//!
//! Every test builds the clock at VM time [`T0`] (so that times "before
//! zero" in the divider's phase are exercised) and talks to it through
//! ports 0x70 and 0x71 as a guest would.

extern crate std;

use super::super::{LineOp, Nanos, TimerAction};
use super::regs::*;
use super::*;

mod calendar;
mod registers;
mod snapshot;
mod timing;

/// VM time at which every test clock is built.
const T0: Nanos = 300 * MS;
/// A millisecond.
const MS: Nanos = 1_000_000;
/// 2024-02-29 13:45:30 UTC, a Thursday.
const LEAP_DAY: u64 = 1_709_214_330;

/// Selects `index` and reads it at `now`.
fn rd(rtc: &mut Rtc, index: u8, now: Nanos) -> u8 {
    rd_fx(rtc, index, now).0
}

/// Selects `index` and reads it at `now`, with the effects.
fn rd_fx(rtc: &mut Rtc, index: u8, now: Nanos) -> (u8, Effects) {
    assert_eq!(rtc.write(PORT_INDEX, index, now), Effects::NONE);
    rtc.read(PORT_DATA, now)
}

/// Selects `index` and writes `value` to it at `now`.
fn wr(rtc: &mut Rtc, index: u8, value: u8, now: Nanos) -> Effects {
    assert_eq!(rtc.write(PORT_INDEX, index, now), Effects::NONE);
    rtc.write(PORT_DATA, value, now)
}

/// The date and time registers at `now`: seconds, minutes, hours, day of
/// week, day of month, month, year, century.
fn time_regs(rtc: &mut Rtc, now: Nanos) -> [u8; 8] {
    [SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY]
        .map(|i| rd(rtc, i, now))
}

/// Writes the date and time registers in the same order.
fn set_time_regs(rtc: &mut Rtc, regs: [u8; 8], now: Nanos) {
    for (i, v) in [SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY]
        .into_iter()
        .zip(regs)
    {
        let _ = wr(rtc, i, v, now);
    }
}

fn irq(op: LineOp) -> Effects {
    Effects { irq8: Some(op), timer: None }
}

fn timer(t: TimerAction) -> Effects {
    Effects { irq8: None, timer: Some(t) }
}

fn arm(at: Nanos) -> Effects {
    timer(TimerAction::Arm(at))
}

#[test]
fn power_up_state() {
    // PC BIOS values: A = 0x26 (DV = 010, RS = 0110), B = 0x02 (24-hour
    // BCD), C clear, D = VRT; NMI enabled, index on register D.
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    assert!(!rtc.nmi_disabled());
    assert!(!rtc.irq8());
    assert_eq!(rtc.read(PORT_DATA, T0), (D_VRT, Effects::NONE), "index starts at D");
    assert_eq!(rd(&mut rtc, REG_A, T0), 0x26);
    assert_eq!(rd(&mut rtc, REG_B, T0), 0x02);
    assert_eq!(rd(&mut rtc, REG_C, T0), 0x00);
    assert_eq!(rd(&mut rtc, REG_D, T0), 0x80);
    assert_eq!(time_regs(&mut rtc, T0), [0x30, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20]);
    assert_eq!(rtc.wall_clock(T0), Some(LEAP_DAY));
    for i in (0x0e..0x80).filter(|&i| i != CENTURY) {
        assert_eq!(rtc.cmos(i), Some(0), "NVRAM {i:#x} starts zeroed");
    }
}

#[test]
fn host_time_beyond_9999_shows_the_last_second() {
    let mut rtc = Rtc::new(T0, u64::MAX);
    assert_eq!(rtc.wall_clock(T0), Some(MAX_SECS));
    assert_eq!(time_regs(&mut rtc, T0), [0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x99]);
    // And the next second is 1970-01-01 00:00:00, a Thursday.
    assert_eq!(time_regs(&mut rtc, T0 + SEC), [0x00, 0x00, 0x00, 0x05, 0x01, 0x01, 0x70, 0x19]);
    assert_eq!(rtc.wall_clock(T0 + SEC), Some(0));
}
