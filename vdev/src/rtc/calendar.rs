// SPDX-License-Identifier: GPL-2.0

//! Seconds since 1970 to the clock registers and back, and alarm matching.
//!
//! The clock counts whole seconds since 1970-01-01 00:00:00 UTC ("Unix
//! seconds", no leap seconds) over the years 1970-9999, the span the year
//! and century registers can show in BCD. Gregorian rules: a year is a
//! leap year if divisible by 4, except centuries not divisible by 400.
//! After 9999-12-31 23:59:59 the count wraps to 1970-01-01 00:00:00 (a
//! whole number of days, so the time of day runs on evenly).

use super::regs::{Format, SECONDS_WRITABLE};

/// Seconds in a day.
pub(crate) const SECS_PER_DAY: u64 = 86_400;
/// The first year the clock can show.
pub(crate) const FIRST_YEAR: u32 = 1970;
/// The last year the clock can show (century 99, year 99).
pub(crate) const LAST_YEAR: u32 = 9999;
/// Days from 1970-01-01 to 10000-01-01.
pub(crate) const DAYS_IN_RANGE: u64 = 2_932_897;
/// Seconds in the range; the clock counts modulo this.
pub(crate) const SECS_IN_RANGE: u64 = DAYS_IN_RANGE * SECS_PER_DAY;
/// The latest time the clock can show, 9999-12-31 23:59:59.
pub const MAX_SECS: u64 = SECS_IN_RANGE - 1;

/// Days in each month of a common year.
const MONTH_DAYS: [u8; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// Whether `year` has a 29 February.
pub(crate) const fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`; 0 for a month that does not exist.
pub(crate) fn days_in_month(year: u32, month: u8) -> u8 {
    let Some(&days) = MONTH_DAYS.get(usize::from(month).wrapping_sub(1)) else {
        return 0;
    };
    if month == 2 && is_leap(year) {
        days + 1
    } else {
        days
    }
}

/// Days from 0001-01-01 to 1 January of `year` (proleptic Gregorian).
const fn days_before_year(year: u32) -> u64 {
    let past = year.saturating_sub(1) as u64;
    365 * past + past / 4 - past / 100 + past / 400
}

/// Days from 1970-01-01 to `year`-`month`-`day`. The date must exist and
/// not be before 1970 (the callers check); anything else saturates.
fn days_since_epoch(year: u32, month: u8, day: u8) -> u64 {
    let mut days = days_before_year(year).saturating_sub(days_before_year(FIRST_YEAR));
    for m in 1..month.min(13) {
        days += u64::from(days_in_month(year, m));
    }
    days + u64::from(day).saturating_sub(1)
}

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DateTime {
    /// 1970-9999.
    pub year: u32,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-59.
    pub second: u8,
    /// 1-7, 1 = Sunday (the register's numbering).
    pub weekday: u8,
}

impl DateTime {
    /// The time `secs` seconds after 1970-01-01 00:00:00 (taken modulo
    /// [`SECS_IN_RANGE`]).
    pub(crate) fn from_secs(secs: u64) -> DateTime {
        let secs = secs % SECS_IN_RANGE;
        let days = secs / SECS_PER_DAY;
        let tod = secs % SECS_PER_DAY;
        // A year has at most 366 days, so this is not past the year; the
        // loop then runs a few dozen times at most.
        let mut year = FIRST_YEAR + (days / 366) as u32;
        while year < LAST_YEAR && days_since_epoch(year + 1, 1, 1) <= days {
            year += 1;
        }
        let mut left = days - days_since_epoch(year, 1, 1);
        let mut month = 1;
        while month < 12 && left >= u64::from(days_in_month(year, month)) {
            left -= u64::from(days_in_month(year, month));
            month += 1;
        }
        DateTime {
            year,
            month,
            day: left.min(30) as u8 + 1,
            hour: (tod / 3600) as u8,
            minute: (tod / 60 % 60) as u8,
            second: (tod % 60) as u8,
            // 1970-01-01 was a Thursday (5).
            weekday: ((days + 4) % 7) as u8 + 1,
        }
    }

    /// Seconds since 1970, or `None` if this is not a time the clock can
    /// show (a field out of range, a day the month does not have, a year
    /// outside 1970-9999). The weekday is not checked.
    pub(crate) fn to_secs(self) -> Option<u64> {
        let valid = (FIRST_YEAR..=LAST_YEAR).contains(&self.year)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then(|| {
            days_since_epoch(self.year, self.month, self.day) * SECS_PER_DAY
                + u64::from(self.hour) * 3600
                + u64::from(self.minute) * 60
                + u64::from(self.second)
        })
    }
}

/// The date and time registers as the guest sees them, in
/// [`TimeField`] order.
pub(crate) type TimeBytes = [u8; 8];

/// The clock's registers, in their [`TimeBytes`] slot order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TimeField {
    /// Register 0x00.
    Seconds = 0,
    /// Register 0x02.
    Minutes = 1,
    /// Register 0x04.
    Hours = 2,
    /// Register 0x06.
    DayOfWeek = 3,
    /// Register 0x07.
    DayOfMonth = 4,
    /// Register 0x08.
    Month = 5,
    /// Register 0x09.
    Year = 6,
    /// Register 0x32.
    Century = 7,
}

impl TimeField {
    /// What a guest write of `v` stores (seconds bit 7 is read-only).
    pub(crate) const fn writable(self, v: u8) -> u8 {
        match self {
            TimeField::Seconds => v & SECONDS_WRITABLE,
            _ => v,
        }
    }
}

/// The registers showing `secs` in format `fmt`.
pub(crate) fn format(secs: u64, fmt: Format) -> TimeBytes {
    let t = DateTime::from_secs(secs);
    [
        fmt.encode(t.second),
        fmt.encode(t.minute),
        fmt.encode_hour(t.hour),
        fmt.encode(t.weekday),
        fmt.encode(t.day),
        fmt.encode(t.month),
        fmt.encode((t.year % 100) as u8),
        fmt.encode((t.year / 100) as u8),
    ]
}

/// The time the registers show when read in format `fmt`, or `None` if
/// they do not show a valid one. The day of the week is ignored: the
/// clock derives it from the date.
pub(crate) fn parse(b: &TimeBytes, fmt: Format) -> Option<u64> {
    let [sec, min, hour, _weekday, day, month, year, century] = *b;
    let century = u32::from(fmt.decode(century).filter(|&c| c < 100)?);
    let year = u32::from(fmt.decode(year).filter(|&y| y < 100)?);
    DateTime {
        year: century * 100 + year,
        month: fmt.decode(month)?,
        day: fmt.decode(day)?,
        hour: fmt.decode_hour(hour)?,
        minute: fmt.decode(min)?,
        second: fmt.decode(sec)?,
        weekday: 1,
    }
    .to_secs()
}

/// One alarm register, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Match {
    /// A don't-care code: any value.
    Any,
    /// This value only.
    Only(u8),
}

impl Match {
    /// Decodes an alarm byte for a field of range `0..limit`; `None` if the
    /// byte can never equal the field (not a value of it in this format).
    fn new(b: u8, limit: u8, value: Option<u8>) -> Option<Match> {
        if b >= super::regs::ALARM_DONT_CARE {
            return Some(Match::Any);
        }
        value.filter(|&v| v < limit).map(Match::Only)
    }

    fn hits(self, v: u8) -> bool {
        match self {
            Match::Any => true,
            Match::Only(x) => x == v,
        }
    }
}

/// The alarm registers (seconds, minutes, hours), decoded in one format.
/// An update sets AF when the new time matches all three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Alarm {
    second: Match,
    minute: Match,
    hour: Match,
}

impl Alarm {
    /// Decodes `[seconds, minutes, hours]` alarm bytes, or `None` if one of
    /// them can never match (then the alarm never fires).
    pub(crate) fn new(bytes: [u8; 3], fmt: Format) -> Option<Alarm> {
        let [s, m, h] = bytes;
        Some(Alarm {
            second: Match::new(s, 60, fmt.decode(s))?,
            minute: Match::new(m, 60, fmt.decode(m))?,
            hour: Match::new(h, 24, fmt.decode_hour(h))?,
        })
    }

    /// Seconds from time of day `tod` (0-86399) to the next time of day
    /// that matches: 1 to 86400 (the same time tomorrow).
    pub(crate) fn next_after(&self, tod: u64) -> u64 {
        let tod = tod % SECS_PER_DAY;
        let start = tod + 1;
        // Every field matches some value, so a match comes within a day:
        // whole hours and minutes before `start` are skipped, and the first
        // matching minute at or after it ends the search.
        for hour in 0..48u64 {
            if !self.hour.hits((hour % 24) as u8) || hour * 3600 + 3599 < start {
                continue;
            }
            for minute in 0..60u64 {
                let base = hour * 3600 + minute * 60;
                if !self.minute.hits(minute as u8) || base + 59 < start {
                    continue;
                }
                for second in 0..60u64 {
                    if self.second.hits(second as u8) && base + second >= start {
                        return base + second - tod;
                    }
                }
            }
        }
        SECS_PER_DAY
    }
}
