// SPDX-License-Identifier: GPL-2.0

//! Snapshots: a restored clock is the same clock, and every field is
//! checked.

use super::super::super::ImportError;
use super::super::snapshot::{CLOCK_COUNTING, CLOCK_HELD};
use super::*;

/// A clock in a busy state: 12-hour binary, alarm and periodic enabled,
/// IRQ 8 up, NVRAM written, NMI masked.
fn busy() -> (Rtc, Nanos) {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let now = T0 + 3 * SEC + 250 * MS;
    let _ = wr(&mut rtc, REG_B, B_DM_BINARY | B_PIE | B_AIE, T0);
    let _ = wr(&mut rtc, SECONDS_ALARM, 0xc0, T0);
    let _ = wr(&mut rtc, 0x0f, 0x0a, now);
    let _ = rtc.write(PORT_INDEX, 0x80 | 0x20, now);
    assert!(rtc.irq8());
    (rtc, now)
}

#[test]
fn restore_rebuilds_the_same_clock() {
    let (rtc, now) = busy();
    let snap = rtc.snapshot();
    let mut copy = Rtc::new(0, 0);
    let fx = copy.restore(&snap, now).expect("a snapshot the model took");
    assert_eq!(copy, rtc);
    assert_eq!(fx, Effects { irq8: Some(LineOp::Assert), timer: Some(TimerAction::Disarm) });
    // Both go on alike.
    let mut orig = rtc;
    for t in [now, now + 7 * MS, now + 5 * SEC] {
        assert_eq!(rd_fx(&mut copy, REG_C, t), rd_fx(&mut orig, REG_C, t));
        assert_eq!(time_regs(&mut copy, t), time_regs(&mut orig, t));
        assert_eq!(copy.timer_expired(t + 1), orig.timer_expired(t + 1));
    }
    assert_eq!(copy.snapshot(), orig.snapshot());
}

#[test]
fn restore_reports_a_quiet_clock_as_such() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let _ = wr(&mut rtc, REG_B, B_24H | B_UIE, T0);
    let mut copy = Rtc::new(5, 5);
    let fx = copy.restore(&rtc.snapshot(), T0);
    assert_eq!(
        fx,
        Ok(Effects { irq8: Some(LineOp::Deassert), timer: Some(TimerAction::Arm(T0 + SEC)) })
    );
    assert_eq!(copy, rtc);
}

#[test]
fn a_held_clock_round_trips() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let _ = wr(&mut rtc, REG_B, B_24H | B_SET, T0);
    let _ = wr(&mut rtc, MONTH, 0x13, T0);
    let snap = rtc.snapshot();
    assert_eq!(snap.clock, CLOCK_HELD);
    assert_eq!(snap.held, [0x30, 0x45, 0x13, 5, 0x29, 0x13, 0x24, 0x20]);
    let mut copy = Rtc::new(0, 0);
    assert!(copy.restore(&snap, T0).is_ok());
    assert_eq!(copy, rtc);
}

#[test]
fn every_field_is_checked_and_a_refusal_changes_nothing() {
    let (rtc, now) = busy();
    let good = rtc.snapshot();
    assert_eq!(good.clock, CLOCK_COUNTING);
    type Edit = fn(&mut Snapshot);
    let cases: &[(Edit, &str)] = &[
        (|s| s.synced += 1, "synced"),
        (|s| s.divider_age = 1_500_000_000, "divider_age"),
        (|s| s.index = 0x80, "index"),
        (|s| s.nmi_disabled = 2, "nmi_disabled"),
        (|s| s.reg_a = 0xa6, "reg_a"),
        (|s| s.flags = 0x80, "flags"),
        (|s| s.flags = 0x01, "flags"),
        (|s| s.reg_b |= B_SET, "clock"),
        (|s| s.secs = MAX_SECS + 1, "secs"),
        (|s| s.held = [1, 0, 0, 0, 0, 0, 0, 0], "held"),
        (|s| s.clock = 2, "clock"),
        (|s| s.cmos[0x0a] = 0x26, "cmos"),
        (|s| s.cmos[usize::from(CENTURY)] = 0x20, "cmos"),
        (
            |s| {
                // A stopped divider has no age.
                s.reg_a = 0x70;
                s.divider_age = 1;
            },
            "divider_age",
        ),
        (
            |s| {
                // Held bytes: secs must be 0 and seconds bit 7 clear.
                s.clock = CLOCK_HELD;
                s.held = [0x30, 0x45, 0x13, 5, 0x29, 0x13, 0x24, 0x20];
            },
            "secs",
        ),
        (
            |s| {
                s.clock = CLOCK_HELD;
                s.secs = 0;
                s.held = [0x80, 0x45, 0x13, 5, 0x29, 0x13, 0x24, 0x20];
            },
            "held",
        ),
        (
            |s| {
                // Valid held bytes without SET would be counting.
                s.clock = CLOCK_HELD;
                s.secs = 0;
                s.held = [30, 45, 0x81, 5, 29, 2, 24, 20];
            },
            "held",
        ),
    ];
    for (i, (edit, field)) in cases.iter().enumerate() {
        let mut bad = good;
        edit(&mut bad);
        let mut target = Rtc::new(1, 2);
        let before = target.clone();
        assert_eq!(target.restore(&bad, now), Err(ImportError::Invalid { field }), "case {i}");
        assert_eq!(target, before, "case {i}: refused, nothing changed");
    }
    let mut bad = good;
    bad.version = 2;
    let mut target = Rtc::new(1, 2);
    assert_eq!(target.restore(&bad, now), Err(ImportError::Version { found: 2 }));
    // And the good one is accepted by the same target.
    assert!(target.restore(&good, now).is_ok());
    // Held, with SET: any bytes go (the guest is mid-write).
    let mut held = good;
    held.reg_b |= B_SET;
    held.clock = CLOCK_HELD;
    held.secs = 0;
    held.held = [0x7f, 0xff, 0xff, 0, 0, 0, 0xff, 0xff];
    assert!(target.restore(&held, now).is_ok());
}
