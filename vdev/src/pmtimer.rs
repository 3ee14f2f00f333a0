// SPDX-License-Identifier: GPL-2.0

//! The ACPI power-management timer: a free-running up-counter at
//! 3.579545 MHz (ACPI spec, "Power Management Timer"; FADT `PM_TMR_BLK`).
//!
//! It is 24 bits wide unless the FADT sets `TMR_VAL_EXT` (flags bit 8),
//! in which case it is 32 bits; the width is fixed when the device is made
//! and must match what the FADT tells the guest. It counts from 0 at
//! creation (or [`PmTimer::reset`]) and wraps. The value is computed from
//! the VM clock, so nothing ticks and no timer is needed.
//!
//! The integration layer maps the 4-byte `PM_TMR_BLK` port to
//! [`PmTimer::read`] (narrower reads take the low bytes of it, writes are
//! ignored: the register is read-only). The overflow status (`TMR_STS`,
//! bit 0 of `PM1_STS`) and its SCI are not modelled.
//!
//! Snapshots carry the count at an instant; the VM clock must continue
//! across save and restore.

use super::common::{mul_div, ImportError, Nanos, NANOS_PER_SEC};

/// The timer's frequency: 3.579545 MHz, the NTSC colour burst.
pub const PM_TIMER_HZ: u64 = 3_579_545;

/// The layout version [`Snapshot::version`] carries.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Every 200 ms holds exactly this many counts (3.579545 MHz * 0.2 s), so
/// the snapshot's instant can move in such steps without rounding.
const EXACT_NS: u64 = 200_000_000;
/// Counts in [`EXACT_NS`].
const EXACT_COUNTS: u64 = 715_909;

/// The counter's width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// 24 bits (FADT `TMR_VAL_EXT` clear): wraps every 4.69 s.
    Bits24,
    /// 32 bits (`TMR_VAL_EXT` set): wraps every 1199.86 s.
    Bits32,
}

impl Width {
    /// The bits the counter has.
    pub const fn mask(self) -> u32 {
        match self {
            Width::Bits24 => 0x00ff_ffff,
            Width::Bits32 => u32::MAX,
        }
    }

    /// The width in bits.
    pub const fn bits(self) -> u8 {
        match self {
            Width::Bits24 => 24,
            Width::Bits32 => 32,
        }
    }
}

/// The PM timer. State: its width, and the count it had at an instant of
/// the VM clock, from which it counts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PmTimer {
    /// 24 or 32 bits.
    width: Width,
    /// The instant `count` refers to.
    origin: Nanos,
    /// The count at `origin`, within the width.
    count: u32,
}

/// The timer's state: the count at an instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// 24 or 32: the width.
    pub width: u8,
    /// An instant on the VM clock, at most 200 ms before the snapshot.
    pub origin: Nanos,
    /// The count at `origin`.
    pub count: u32,
}

impl PmTimer {
    /// A timer of `width` that reads 0 at `now`.
    pub const fn new(width: Width, now: Nanos) -> PmTimer {
        PmTimer { width, origin: now, count: 0 }
    }

    /// Starts again from 0 at `now` (platform reset).
    pub fn reset(&mut self, now: Nanos) {
        *self = PmTimer::new(self.width, now);
    }

    /// The width.
    pub const fn width(&self) -> Width {
        self.width
    }

    /// The `PM_TMR` register at `now`. A `now` before the timer's origin
    /// reads as the origin.
    pub fn read(&self, now: Nanos) -> u32 {
        let ticks = mul_div(now.saturating_sub(self.origin), PM_TIMER_HZ, NANOS_PER_SEC);
        // Truncation is the wrap.
        (u64::from(self.count).wrapping_add(ticks) as u32) & self.width.mask()
    }

    /// The state at `now`. The instant it names is moved forward by whole
    /// 200 ms steps (exact in counts), so a restore reads the same values
    /// as this timer at every later time.
    pub fn snapshot(&self, now: Nanos) -> Snapshot {
        let steps = now.saturating_sub(self.origin) / EXACT_NS;
        let counts = steps.wrapping_mul(EXACT_COUNTS);
        Snapshot {
            version: SNAPSHOT_VERSION,
            width: self.width.bits(),
            origin: self.origin + steps * EXACT_NS,
            count: (u64::from(self.count).wrapping_add(counts) as u32) & self.width.mask(),
        }
    }

    /// Takes the state in `snap`; `now` is the VM clock, which must not be
    /// before its instant. The width must be this timer's (the FADT's).
    /// On error nothing changed.
    pub fn restore(&mut self, snap: &Snapshot, now: Nanos) -> Result<(), ImportError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(ImportError::Version { found: snap.version });
        }
        if snap.width != self.width.bits() {
            return Err(ImportError::Invalid { field: "width" });
        }
        if snap.origin > now {
            return Err(ImportError::Invalid { field: "origin" });
        }
        if snap.count & !self.width.mask() != 0 {
            return Err(ImportError::Invalid { field: "count" });
        }
        self.origin = snap.origin;
        self.count = snap.count;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts at `ns` after the origin, per the ACPI rate.
    fn counts(ns: u64) -> u64 {
        ns * PM_TIMER_HZ / NANOS_PER_SEC
    }

    #[test]
    fn counts_at_3_579545_mhz_and_wraps_at_its_width() {
        let t0 = 5 * NANOS_PER_SEC;
        let pm = PmTimer::new(Width::Bits24, t0);
        let pm32 = PmTimer::new(Width::Bits32, t0);
        // (ns after creation, 24-bit value, 32-bit value)
        let rows = [
            (0, 0, 0),
            (279, 0, 0),
            (280, 1, 1), // one count is 279.37 ns
            (1_000_000, 3579, 3579),
            (NANOS_PER_SEC, 3_579_545, 3_579_545),
            // 2^24 counts take 4.687 s: the 24-bit timer has wrapped.
            (5 * NANOS_PER_SEC, 17_897_725 - (1 << 24), 17_897_725),
            // 2^32 counts take 1199.86 s.
            (1200 * NANOS_PER_SEC, (counts(1200 * NANOS_PER_SEC) & 0xff_ffff) as u32, 486_704),
        ];
        for (dt, v24, v32) in rows {
            assert_eq!(pm.read(t0 + dt), v24, "24-bit at +{dt} ns");
            assert_eq!(pm32.read(t0 + dt), v32, "32-bit at +{dt} ns");
        }
        assert_eq!(counts(1200 * NANOS_PER_SEC), (1 << 32) + 486_704);
        assert_eq!(pm.read(0), 0, "a time before creation reads 0");
        assert_eq!(pm.read(u64::MAX) & !0xff_ffff, 0);
        assert_eq!(EXACT_COUNTS, counts(EXACT_NS));
        assert_eq!(EXACT_COUNTS * NANOS_PER_SEC, PM_TIMER_HZ * EXACT_NS, "exact");
    }

    #[test]
    fn reset_starts_again_from_zero() {
        let mut pm = PmTimer::new(Width::Bits32, 0);
        assert_eq!(pm.read(NANOS_PER_SEC), 3_579_545);
        pm.reset(NANOS_PER_SEC);
        assert_eq!(pm.read(NANOS_PER_SEC), 0);
        assert_eq!(pm.read(2 * NANOS_PER_SEC), 3_579_545);
        assert_eq!(pm.width(), Width::Bits32);
    }

    #[test]
    fn a_restored_timer_reads_the_same_forever() {
        for width in [Width::Bits24, Width::Bits32] {
            let pm = PmTimer::new(width, 123_456_789);
            let now = 987_654_321_987;
            let snap = pm.snapshot(now);
            assert!(now - snap.origin < EXACT_NS, "the instant is recent");
            assert_eq!(snap.count, pm.read(snap.origin), "the count at that instant");
            let mut copy = PmTimer::new(width, 0);
            copy.restore(&snap, now).expect("valid");
            for dt in [0u64, 1, 279, 280, 999_999_999, 7_777_777_777_777, 1 << 50] {
                assert_eq!(copy.read(now + dt), pm.read(now + dt), "{width:?} at +{dt}");
            }
        }
    }

    #[test]
    fn invalid_snapshots_are_refused_and_change_nothing() {
        let pm = PmTimer::new(Width::Bits24, 1000);
        let good = pm.snapshot(5000);
        let mut target = PmTimer::new(Width::Bits24, 77);
        let before = target;
        let rows = [
            (Snapshot { version: 0, ..good }, ImportError::Version { found: 0 }),
            (Snapshot { width: 32, ..good }, ImportError::Invalid { field: "width" }),
            (Snapshot { width: 16, ..good }, ImportError::Invalid { field: "width" }),
            (Snapshot { origin: 5001, ..good }, ImportError::Invalid { field: "origin" }),
            (Snapshot { count: 1 << 24, ..good }, ImportError::Invalid { field: "count" }),
        ];
        for (snap, err) in rows {
            assert_eq!(target.restore(&snap, 5000), Err(err));
            assert_eq!(target, before);
        }
        assert_eq!(target.restore(&good, 5000), Ok(()));
        assert_eq!(target.read(5000), pm.read(5000));
    }
}
