// SPDX-License-Identifier: GPL-2.0

//! Date and time registers in every format, and the calendar behind them.
//!
//! Data sheet "Time, Calendar and Alarm Data Modes" (table 3): BCD or
//! binary per DM, 12-hour hours 1-12 with PM in bit 7; day of week 1-7
//! with 1 = Sunday. Expected weekdays and Unix times were computed
//! independently (Python's `calendar.timegm`).

use super::super::calendar::{self as cal, days_in_month, is_leap, parse, DateTime, SECS_IN_RANGE};
use super::*;

/// Register B format bits for each of the four formats.
const BCD24: u8 = B_24H;
const BIN24: u8 = B_24H | B_DM_BINARY;
const BCD12: u8 = 0;
const BIN12: u8 = B_DM_BINARY;

/// (Unix seconds, register B, expected [sec, min, hour, dow, day, month,
/// year, century]).
const SHOWN: &[(u64, u8, [u8; 8])] = &[
    // 1970-01-01 00:00:00, Thursday: midnight is 12 AM in 12-hour mode.
    (0, BCD24, [0x00, 0x00, 0x00, 5, 0x01, 0x01, 0x70, 0x19]),
    (0, BCD12, [0x00, 0x00, 0x12, 5, 0x01, 0x01, 0x70, 0x19]),
    (0, BIN12, [0, 0, 12, 5, 1, 1, 70, 19]),
    // 1999-12-31 23:59:59, Friday: 11 PM.
    (946_684_799, BCD24, [0x59, 0x59, 0x23, 6, 0x31, 0x12, 0x99, 0x19]),
    (946_684_799, BIN24, [59, 59, 23, 6, 31, 12, 99, 19]),
    (946_684_799, BCD12, [0x59, 0x59, 0x91, 6, 0x31, 0x12, 0x99, 0x19]),
    (946_684_799, BIN12, [59, 59, 0x80 | 11, 6, 31, 12, 99, 19]),
    // 2000-02-29 12:00:00, Tuesday (2000 is a leap year): noon is 12 PM.
    (951_825_600, BCD24, [0x00, 0x00, 0x12, 3, 0x29, 0x02, 0x00, 0x20]),
    (951_825_600, BCD12, [0x00, 0x00, 0x92, 3, 0x29, 0x02, 0x00, 0x20]),
    (951_825_600, BIN12, [0, 0, 0x80 | 12, 3, 29, 2, 0, 20]),
    // 2024-02-29 13:45:30, Thursday: 1 PM.
    (LEAP_DAY, BCD24, [0x30, 0x45, 0x13, 5, 0x29, 0x02, 0x24, 0x20]),
    (LEAP_DAY, BIN24, [30, 45, 13, 5, 29, 2, 24, 20]),
    (LEAP_DAY, BCD12, [0x30, 0x45, 0x81, 5, 0x29, 0x02, 0x24, 0x20]),
    (LEAP_DAY, BIN12, [30, 45, 0x81, 5, 29, 2, 24, 20]),
    // 2024-07-04 00:30:00, Thursday: 12:30 AM.
    (1_720_053_000, BCD12, [0x00, 0x30, 0x12, 5, 0x04, 0x07, 0x24, 0x20]),
    // 2038-01-19 03:14:07, Tuesday (past 32-bit time_t).
    (2_147_483_647, BCD24, [0x07, 0x14, 0x03, 3, 0x19, 0x01, 0x38, 0x20]),
    // 2100-02-28 23:59:59, Sunday (2100 is not a leap year).
    (4_107_542_399, BCD24, [0x59, 0x59, 0x23, 1, 0x28, 0x02, 0x00, 0x21]),
    // 2199-12-31 23:59:59, Tuesday.
    (7_258_118_399, BIN24, [59, 59, 23, 3, 31, 12, 99, 21]),
    (MAX_SECS, BCD24, [0x59, 0x59, 0x23, 6, 0x31, 0x12, 0x99, 0x99]),
];

#[test]
fn registers_show_the_host_time_in_every_format() {
    for &(secs, b, want) in SHOWN {
        let mut rtc = Rtc::new(T0, secs);
        let _ = wr(&mut rtc, REG_B, b, T0);
        assert_eq!(time_regs(&mut rtc, T0), want, "{secs} with B = {b:#04x}");
    }
}

#[test]
fn registers_written_under_set_read_back_as_the_time() {
    // The same table the other way: the guest sets the clock with SET = 1
    // in each format, and the clock counts from there.
    for &(secs, b, regs) in SHOWN {
        let mut rtc = Rtc::new(T0, 12_345);
        let _ = wr(&mut rtc, REG_B, b | B_SET, T0);
        set_time_regs(&mut rtc, regs, T0);
        assert_eq!(rtc.wall_clock(T0), None, "SET = 1 holds no counting time");
        let _ = wr(&mut rtc, REG_B, b, T0);
        assert_eq!(rtc.wall_clock(T0), Some(secs), "B = {b:#04x} regs {regs:02x?}");
        assert_eq!(time_regs(&mut rtc, T0), regs);
    }
}

#[test]
fn the_clock_rolls_over_minutes_hours_days_months_years_and_centuries() {
    // (start, register B, after one second).
    let cases: &[(u64, u8, [u8; 8])] = &[
        // 1999 -> 2000: year 99 -> 00 and century 19 -> 20, Saturday.
        (946_684_799, BCD24, [0x00, 0x00, 0x00, 7, 0x01, 0x01, 0x00, 0x20]),
        // 2000-02-28 23:59:59 -> 29 February (leap century).
        (951_782_399, BCD24, [0x00, 0x00, 0x00, 3, 0x29, 0x02, 0x00, 0x20]),
        // 2100-02-28 23:59:59 -> 1 March (no leap day).
        (4_107_542_399, BCD24, [0x00, 0x00, 0x00, 2, 0x01, 0x03, 0x00, 0x21]),
        // 11:59:59 AM -> 12:00:00 PM in 12-hour mode (2024-07-04).
        (1_720_094_399, BCD12, [0x00, 0x00, 0x92, 5, 0x04, 0x07, 0x24, 0x20]),
        // 12:59:59 AM -> 1:00:00 AM.
        (1_720_054_799, BIN12, [0, 0, 1, 5, 4, 7, 24, 20]),
        // Saturday -> Sunday (2024-07-06 23:59:59): day of week 7 -> 1.
        (1_720_310_399, BCD24, [0x00, 0x00, 0x00, 1, 0x07, 0x07, 0x24, 0x20]),
    ];
    for &(secs, b, want) in cases {
        let mut rtc = Rtc::new(T0, secs);
        let _ = wr(&mut rtc, REG_B, b, T0);
        assert_eq!(time_regs(&mut rtc, T0 + SEC - 1), regs_of(secs, b), "{secs}: not yet");
        assert_eq!(time_regs(&mut rtc, T0 + SEC), want, "{secs} + 1 s");
    }
}

/// What the model formats `secs` as, for the table above.
fn regs_of(secs: u64, b: u8) -> [u8; 8] {
    let mut rtc = Rtc::new(T0, secs);
    let _ = wr(&mut rtc, REG_B, b, T0);
    time_regs(&mut rtc, T0)
}

#[test]
fn changing_the_format_converts_a_counting_clock() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    assert_eq!(rd(&mut rtc, HOURS, T0), 0x13);
    let _ = wr(&mut rtc, REG_B, BIN12, T0);
    assert_eq!(time_regs(&mut rtc, T0), [30, 45, 0x81, 5, 29, 2, 24, 20]);
    let _ = wr(&mut rtc, REG_B, BCD24, T0);
    assert_eq!(time_regs(&mut rtc, T0), [0x30, 0x45, 0x13, 5, 0x29, 0x02, 0x24, 0x20]);
    assert_eq!(rtc.wall_clock(T0), Some(LEAP_DAY));
}

#[test]
fn writes_without_set_take_effect_at_once() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    // Minutes 45 -> 10, then the year 24 -> 25 (2025-02-29 does not
    // exist: the clock stops), then the day 29 -> 28: valid again.
    let _ = wr(&mut rtc, MINUTES, 0x10, T0);
    assert_eq!(rtc.wall_clock(T0), Some(LEAP_DAY - 35 * 60));
    let _ = wr(&mut rtc, YEAR, 0x25, T0);
    assert_eq!(rtc.wall_clock(T0), None);
    assert_eq!(time_regs(&mut rtc, T0 + 3 * SEC), [0x30, 0x10, 0x13, 5, 0x29, 0x02, 0x25, 0x20]);
    let _ = wr(&mut rtc, DAY_OF_MONTH, 0x28, T0 + 3 * SEC);
    // 2025-02-28 13:10:30 is a Friday; the guest's weekday is replaced.
    assert_eq!(rtc.wall_clock(T0 + 3 * SEC), Some(1_740_748_230));
    assert_eq!(rd(&mut rtc, DAY_OF_WEEK, T0 + 3 * SEC), 6);
    // Seconds bit 7 is read-only.
    let _ = wr(&mut rtc, SECONDS, 0x80 | 0x05, T0 + 3 * SEC);
    assert_eq!(rd(&mut rtc, SECONDS, T0 + 3 * SEC), 0x05);
}

#[test]
fn invalid_values_stop_the_clock_until_fixed() {
    // Each write leaves the registers not a valid time in 24-hour BCD;
    // they read back as written, do not count, and restoring the old value
    // restarts the clock. (index, bad value, good value).
    let cases: &[(u8, u8, u8)] = &[
        (SECONDS, 0x60, 0x30),
        (SECONDS, 0x1a, 0x30),
        (MINUTES, 0x99, 0x45),
        (HOURS, 0x24, 0x13),
        (HOURS, 0x81, 0x13), // a PM flag in 24-hour mode
        (DAY_OF_MONTH, 0x00, 0x29),
        (DAY_OF_MONTH, 0x30, 0x29), // 30 February
        (MONTH, 0x00, 0x02),
        (MONTH, 0x13, 0x02),
        (YEAR, 0xa0, 0x24),
        (CENTURY, 0x19, 0x20), // 1924: before 1970
        (CENTURY, 0xff, 0x20),
    ];
    for &(index, bad, good) in cases {
        let mut rtc = Rtc::new(T0, LEAP_DAY);
        let _ = wr(&mut rtc, index, bad, T0);
        assert_eq!(rtc.wall_clock(T0), None, "{index:#x} = {bad:#x}");
        let frozen = time_regs(&mut rtc, T0);
        assert_eq!(rd(&mut rtc, index, T0), bad & if index == SECONDS { 0x7f } else { 0xff });
        // Updates still happen (UF) but change nothing.
        assert_eq!(time_regs(&mut rtc, T0 + 5 * SEC), frozen, "{index:#x}");
        assert_eq!(rd(&mut rtc, REG_C, T0 + 5 * SEC), C_PF | C_UF, "RS = 0110 runs too");
        let _ = wr(&mut rtc, index, good, T0 + 5 * SEC);
        assert_eq!(rtc.wall_clock(T0 + 5 * SEC), Some(LEAP_DAY), "{index:#x} fixed");
        assert_eq!(rtc.wall_clock(T0 + 6 * SEC), Some(LEAP_DAY + 1));
    }
}

#[test]
fn twelve_hour_values_are_checked_in_twelve_hour_mode() {
    // 0x00, 0x13 and 0x80 are no hours in 12-hour BCD; 0x12 is 12 AM.
    for (hour, valid) in [(0x00, false), (0x13, false), (0x80, false), (0x12, true), (0x92, true)] {
        let mut rtc = Rtc::new(T0, LEAP_DAY);
        let _ = wr(&mut rtc, REG_B, BCD12, T0);
        let _ = wr(&mut rtc, HOURS, hour, T0);
        assert_eq!(rtc.wall_clock(T0).is_some(), valid, "hour {hour:#x}");
    }
}

#[test]
fn a_format_change_can_make_held_bytes_valid() {
    // 0x3b seconds is not BCD, but is 59 in binary.
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let _ = wr(&mut rtc, REG_B, BIN24, T0);
    let _ = wr(&mut rtc, REG_B, BCD24, T0);
    let _ = wr(&mut rtc, SECONDS, 0x3b, T0);
    assert_eq!(rtc.wall_clock(T0), None);
    let _ = wr(&mut rtc, REG_B, BIN24, T0);
    // The other bytes were BCD: 0x45 minutes is 69 in binary, invalid.
    assert_eq!(rtc.wall_clock(T0), None);
    set_time_regs(&mut rtc, [59, 45, 13, 5, 29, 2, 24, 20], T0);
    assert_eq!(rtc.wall_clock(T0), Some(LEAP_DAY + 29));
}

#[test]
fn calendar_round_trips_over_the_whole_range() {
    // Every 1000003rd second plus the edges: formatting then parsing gives
    // the same time, the weekday advances by one a day, and dates are real.
    let mut secs = 0u64;
    while secs < SECS_IN_RANGE {
        let t = DateTime::from_secs(secs);
        assert!(t.day >= 1 && t.day <= days_in_month(t.year, t.month), "{secs}: {t:?}");
        assert_eq!(t.to_secs(), Some(secs), "{t:?}");
        assert_eq!(u64::from(t.weekday - 1), (secs / 86_400 + 4) % 7);
        for b in [BCD24, BIN24, BCD12, BIN12] {
            let fmt = Format::from_reg_b(b);
            assert_eq!(parse(&cal::format(secs, fmt), fmt), Some(secs));
        }
        secs += 1_000_003 * 97;
    }
    assert!(is_leap(2000) && is_leap(2024) && !is_leap(2100) && !is_leap(1900));
    assert_eq!(days_in_month(2023, 2), 28);
    assert_eq!(days_in_month(2024, 0), 0);
    assert_eq!(days_in_month(2024, 13), 0);
    assert_eq!(DateTime::from_secs(MAX_SECS).year, 9999);
}
