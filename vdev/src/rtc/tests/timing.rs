// SPDX-License-Identifier: GPL-2.0

//! Updates, UIP, the divider, periodic, alarm and update-ended interrupts,
//! register C and the host timer.
//!
//! Data sheet: "Update Cycle" and table 6 (UIP 244 µs before the update),
//! "Divider Stages" (first update 500 ms after the divider leaves reset),
//! table 5 (periodic rates for the 32.768 kHz time base), "Interrupts" and
//! "Register C" (flags set whatever the enables; IRQF; read clears).
//!
//! A clock built at [`T0`] updates at `T0 + k s`.

use super::*;

const DISARM: Effects = Effects { irq8: None, timer: Some(TimerAction::Disarm) };
/// 2 s into the clock: away from any update.
const QUIET: Nanos = T0 + 2 * SEC + 300 * MS;

/// A clock at [`LEAP_DAY`] with register B = `b`.
fn clock(b: u8) -> Rtc {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let _ = wr(&mut rtc, REG_B, b, T0);
    rtc
}

/// Releases the divider from reset at `at` with rate select `rs`.
fn release(rtc: &mut Rtc, rs: u8, at: Nanos) -> Effects {
    let _ = wr(rtc, REG_A, 0x70 | rs, at);
    wr(rtc, REG_A, A_DV_RUN | rs, at)
}

#[test]
fn uip_reads_1_in_the_244_us_before_each_update() {
    let mut rtc = clock(B_24H);
    for k in 1..=3u64 {
        let update = T0 + k * SEC;
        // (offset from the update, UIP).
        for (before, uip) in [(300_000, false), (244_141, false), (244_140, true), (1, true)] {
            let a = rd(&mut rtc, REG_A, update - before);
            assert_eq!(a & A_UIP != 0, uip, "update {k}, {before} ns before");
            assert_eq!(a & !A_UIP, 0x26);
            assert_eq!(rtc.wall_clock(update - before), Some(LEAP_DAY + k - 1));
        }
        assert_eq!(rd(&mut rtc, REG_A, update), 0x26, "the update has happened");
        assert_eq!(rtc.wall_clock(update), Some(LEAP_DAY + k));
    }
    // No UIP while SET = 1 or while the divider is in reset.
    let just_before = T0 + 5 * SEC - 1000;
    let _ = wr(&mut rtc, REG_B, B_SET | B_24H, T0 + 4 * SEC);
    assert_eq!(rd(&mut rtc, REG_A, just_before), 0x26);
    let _ = wr(&mut rtc, REG_B, B_24H, just_before);
    assert_eq!(rd(&mut rtc, REG_A, just_before), 0x26 | A_UIP);
    let _ = wr(&mut rtc, REG_A, 0x66, just_before);
    assert_eq!(rd(&mut rtc, REG_A, just_before), 0x66);
}

#[test]
fn divider_reset_stops_time_and_the_first_update_comes_500_ms_after_release() {
    // 11x (reset) and 000 (another crystal: stopped) behave alike here.
    for dv in [0x70, 0x60, 0x00] {
        let mut rtc = clock(B_24H);
        let _ = wr(&mut rtc, REG_A, dv, T0 + 300 * MS);
        assert_eq!(rd(&mut rtc, REG_C, T0 + 300 * MS), C_PF, "1024 Hz ran until then");
        assert_eq!(rtc.wall_clock(T0 + 100 * SEC), Some(LEAP_DAY), "DV {dv:#x}: frozen");
        assert_eq!(rd(&mut rtc, REG_C, T0 + 100 * SEC), 0, "no update, no periodic flag");
        let t1 = T0 + 100 * SEC + 123_456;
        let _ = wr(&mut rtc, REG_A, 0x26, t1);
        let first = t1 + 500 * MS;
        assert_eq!(rd(&mut rtc, REG_A, first - 244_141), 0x26);
        assert_eq!(rd(&mut rtc, REG_A, first - 244_140), 0x26 | A_UIP);
        assert_eq!(rtc.wall_clock(first - 1), Some(LEAP_DAY));
        assert_eq!(rtc.wall_clock(first), Some(LEAP_DAY + 1));
        assert_eq!(rtc.wall_clock(first + SEC), Some(LEAP_DAY + 2));
        assert_eq!(time_regs(&mut rtc, first + SEC)[0], 0x32);
    }
}

/// RS -> period in 1/16 ns (data sheet table 5, 32.768 kHz time base).
const PERIODS_X16: [(u8, u64); 15] = [
    (1, 3_906_250 * 16),
    (2, 7_812_500 * 16),
    (3, 1_953_125),      // 122.0703125 µs
    (4, 1_953_125 * 2),  // 244.140625 µs
    (5, 1_953_125 * 4),  // 488.28125 µs
    (6, 1_953_125 * 8),  // 976.5625 µs
    (7, 1_953_125 * 16), // 1.953125 ms
    (8, 3_906_250 * 16),
    (9, 7_812_500 * 16),
    (10, 15_625_000 * 16),
    (11, 31_250_000 * 16),
    (12, 62_500_000 * 16),
    (13, 125_000_000 * 16),
    (14, 250_000_000 * 16),
    (15, 500_000_000 * 16),
];

#[test]
fn periodic_interrupt_at_every_rate() {
    for (rs, p16) in PERIODS_X16 {
        let mut rtc = clock(B_24H | B_PIE);
        let t1 = QUIET;
        assert_eq!(rd(&mut rtc, REG_C, t1), C_IRQF | C_PF | C_UF, "RS = 0110 before");
        let tick = |k: u64| t1 + (k * p16).div_ceil(16);
        assert_eq!(release(&mut rtc, rs, t1), arm(tick(1)), "RS {rs}");
        // Early: nothing, the same expiry again.
        assert_eq!(rtc.timer_expired(tick(1) - 1), arm(tick(1)), "RS {rs} early");
        assert_eq!(
            rtc.timer_expired(tick(1)),
            Effects { irq8: Some(LineOp::Assert), timer: Some(TimerAction::Disarm) },
            "RS {rs}: IRQF up, nothing more to time"
        );
        assert!(rtc.irq8());
        let (c, fx) = rd_fx(&mut rtc, REG_C, tick(1) + 1);
        // At 2 Hz the first tick is also the first update after release.
        let uf = if rs == 15 { C_UF } else { 0 };
        assert_eq!(c, C_IRQF | C_PF | uf, "RS {rs}");
        assert_eq!(
            fx,
            Effects { irq8: Some(LineOp::Deassert), timer: Some(TimerAction::Arm(tick(2))) }
        );
        assert_eq!(rd(&mut rtc, REG_C, tick(2) - 1), 0, "RS {rs}: not yet");
    }
}

/// Runs a guest that services every RTC interrupt (reads register C) from
/// `from` to `to` and returns how many it took.
fn serviced(rtc: &mut Rtc, mut armed: Option<Nanos>, to: Nanos) -> u64 {
    let mut n = 0;
    while let Some(at) = armed.filter(|&at| at <= to) {
        let fx = rtc.timer_expired(at);
        assert_eq!(fx.irq8, Some(LineOp::Assert), "interrupt {n} at {at}");
        let (c, fx) = rd_fx(rtc, REG_C, at + 1000);
        assert_ne!(c & C_IRQF, 0);
        assert_eq!(fx.irq8, Some(LineOp::Deassert));
        armed = match fx.timer {
            Some(TimerAction::Arm(t)) => Some(t),
            other => panic!("re-arm expected, got {other:?}"),
        };
        n += 1;
    }
    n
}

#[test]
fn periodic_1024_hz_gives_1024_interrupts_a_second() {
    let mut rtc = clock(B_24H);
    let _ = release(&mut rtc, 6, QUIET);
    assert_eq!(rd(&mut rtc, REG_C, QUIET), C_PF | C_UF, "flags from before");
    let fx = wr(&mut rtc, REG_B, B_24H | B_PIE, QUIET);
    assert_eq!(fx, arm(QUIET + 976_563), "976.5625 µs, rounded up to a whole ns");
    assert_eq!(serviced(&mut rtc, Some(QUIET + 976_563), QUIET + SEC), 1024);
}

#[test]
fn periodic_2_hz_gives_2_interrupts_a_second_in_step_with_updates() {
    let mut rtc = clock(B_24H);
    // Without a divider reset the ticks keep the chain's phase: the
    // updates at T0 + k s and the half-seconds between them.
    let _ = wr(&mut rtc, REG_A, A_DV_RUN | 15, QUIET);
    assert_eq!(rd(&mut rtc, REG_C, QUIET), C_PF | C_UF, "flags from before");
    let fx = wr(&mut rtc, REG_B, B_24H | B_PIE, QUIET);
    assert_eq!(fx, arm(T0 + 2 * SEC + 500 * MS));
    assert_eq!(serviced(&mut rtc, Some(T0 + 2 * SEC + 500 * MS), QUIET + SEC), 2);
}

#[test]
fn flags_are_set_without_their_enables_and_only_raise_irq8_with_them() {
    let mut rtc = clock(B_24H);
    // RS = 0110 and updates run; nothing enabled: no IRQ, no timer.
    assert_eq!(rd_fx(&mut rtc, REG_C, T0 + 2 * MS), (C_PF, Effects::NONE));
    assert_eq!(rd_fx(&mut rtc, REG_C, T0 + SEC), (C_PF | C_UF, Effects::NONE));
    // Enabling an interrupt whose flag is set raises IRQ 8 at once...
    assert_eq!(rd(&mut rtc, HOURS, T0 + 2 * SEC), 0x13);
    assert_eq!(wr(&mut rtc, REG_B, B_24H | B_UIE, T0 + 2 * SEC), irq(LineOp::Assert));
    // ... disabling it lowers it again, and the flag stays for C.
    assert_eq!(
        wr(&mut rtc, REG_B, B_24H, T0 + 2 * SEC),
        Effects { irq8: Some(LineOp::Deassert), timer: None }
    );
    assert_eq!(rd_fx(&mut rtc, REG_C, T0 + 2 * SEC), (C_PF | C_UF, Effects::NONE));
    assert_eq!(rd(&mut rtc, REG_C, T0 + 2 * SEC), 0, "read clears");
    // RS = 0: no periodic flag at all.
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0 + 2 * SEC);
    assert_eq!(rd(&mut rtc, REG_C, T0 + 2 * SEC + 900 * MS), 0);
}

#[test]
fn update_ended_interrupt_every_second() {
    let mut rtc = clock(B_24H);
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
    assert_eq!(wr(&mut rtc, REG_B, B_24H | B_UIE, T0 + 300 * MS), arm(T0 + SEC));
    // Early, then on time.
    assert_eq!(rtc.timer_expired(T0 + SEC - 1), arm(T0 + SEC));
    assert_eq!(rtc.timer_expired(T0 + SEC), Effects { irq8: Some(LineOp::Assert), ..DISARM });
    assert_eq!(rd(&mut rtc, SECONDS, T0 + SEC), 0x31, "the update ended");
    let (c, fx) = rd_fx(&mut rtc, REG_C, T0 + SEC + MS);
    assert_eq!(
        (c, fx),
        (C_IRQF | C_UF, Effects { irq8: Some(LineOp::Deassert), ..arm(T0 + 2 * SEC) })
    );
    // Late by 2.5 s: one interrupt, and the time is right.
    assert_eq!(rtc.timer_expired(T0 + 4 * SEC + 500 * MS).irq8, Some(LineOp::Assert));
    assert_eq!(rtc.wall_clock(T0 + 4 * SEC + 500 * MS), Some(LEAP_DAY + 4));
    let (c, fx) = rd_fx(&mut rtc, REG_C, T0 + 4 * SEC + 600 * MS);
    assert_eq!((c, fx.timer), (C_IRQF | C_UF, Some(TimerAction::Arm(T0 + 5 * SEC))));
}

#[test]
fn alarm_interrupt_at_the_matching_second() {
    // LEAP_DAY is 13:45:30 at T0. (register B, [sec, min, hour] alarm,
    // first alarm, the one after).
    let cases: &[(u8, [u8; 3], Nanos, Nanos)] = &[
        // 13:45:35 exactly: in 5 s, then tomorrow.
        (B_24H, [0x35, 0x45, 0x13], T0 + 5 * SEC, T0 + 86_405 * SEC),
        // Binary, 13:46:00.
        (B_24H | B_DM_BINARY, [0, 46, 13], T0 + 30 * SEC, T0 + 86_430 * SEC),
        // 12-hour: 1:46:00 PM.
        (0, [0x00, 0x46, 0x81], T0 + 30 * SEC, T0 + 86_430 * SEC),
        // 12-hour: 1:46:00 AM is tomorrow.
        (0, [0x00, 0x46, 0x01], T0 + (12 * 3600 + 30) * SEC, T0 + (36 * 3600 + 30) * SEC),
        // Seconds 00 of every minute.
        (B_24H, [0x00, 0xc0, 0xff], T0 + 30 * SEC, T0 + 90 * SEC),
        // Every second.
        (B_24H, [0xc0, 0xd5, 0xff], T0 + SEC, T0 + 2 * SEC),
        // 14:xx:10 -> 14:00:10, then 14:01:10.
        (B_24H, [0x10, 0xc0, 0x14], T0 + (14 * 60 + 40) * SEC, T0 + (15 * 60 + 40) * SEC),
        // Minute 45, any hour, second 29: next hour.
        (B_24H, [0x29, 0x45, 0xc0], T0 + 3599 * SEC, T0 + 7199 * SEC),
    ];
    for &(b, [s, m, h], first, second) in cases {
        let mut rtc = clock(b);
        let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
        let _ = wr(&mut rtc, SECONDS_ALARM, s, T0);
        let _ = wr(&mut rtc, MINUTES_ALARM, m, T0);
        let _ = wr(&mut rtc, HOURS_ALARM, h, T0);
        let what = std::format!("B {b:#x} alarm {h:02x}:{m:02x}:{s:02x}");
        assert_eq!(wr(&mut rtc, REG_B, b | B_AIE, T0), arm(first), "{what}");
        assert_eq!(rtc.timer_expired(first - 1), arm(first), "{what}");
        assert_eq!(rtc.timer_expired(first).irq8, Some(LineOp::Assert), "{what}");
        let (c, fx) = rd_fx(&mut rtc, REG_C, first);
        assert_eq!(c, C_IRQF | C_AF | C_UF, "{what}");
        assert_eq!(fx, Effects { irq8: Some(LineOp::Deassert), ..arm(second) }, "{what}");
    }
}

#[test]
fn alarm_flag_is_computed_lazily_across_long_gaps() {
    let mut rtc = clock(B_24H);
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
    let _ = wr(&mut rtc, SECONDS_ALARM, 0x00, T0);
    let _ = wr(&mut rtc, MINUTES_ALARM, 0x00, T0);
    let _ = wr(&mut rtc, HOURS_ALARM, 0x03, T0);
    // 03:00:00 is 13 h 14 min 30 s away; AIE is off, so no timer.
    let at = T0 + (13 * 3600 + 14 * 60 + 30) * SEC;
    assert_eq!(rd(&mut rtc, REG_C, at - 1), C_UF);
    assert_eq!(rd(&mut rtc, REG_C, at), C_AF | C_UF);
    // Two days without a look: one alarm (or two), one flag.
    assert_eq!(rd(&mut rtc, REG_C, at + 2 * 86_400 * SEC), C_AF | C_UF);
    // An alarm byte that matches nothing (seconds 0x60) never fires.
    let _ = wr(&mut rtc, SECONDS_ALARM, 0x60, at);
    assert_eq!(wr(&mut rtc, REG_B, B_24H | B_AIE, at), Effects::NONE, "still disarmed");
    assert_eq!(rd(&mut rtc, REG_C, at + 3 * 86_400 * SEC), C_UF);
}

#[test]
fn set_freezes_the_clock_and_writes_apply_when_it_clears() {
    let mut rtc = clock(B_24H | B_UIE);
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
    let t = T0 + 2 * SEC + 200 * MS;
    // SET clears UIE: the update timer goes. (The updates at T0 + 1 s and
    // + 2 s were never serviced: their edge shows as a pulse.)
    let fx = wr(&mut rtc, REG_B, B_24H | B_SET | B_UIE, t);
    assert_eq!(fx, Effects { irq8: Some(LineOp::Pulse), ..DISARM });
    let frozen = time_regs(&mut rtc, t);
    assert_eq!(frozen, [0x32, 0x45, 0x13, 5, 0x29, 0x02, 0x24, 0x20]);
    assert_eq!(rd(&mut rtc, REG_C, t), C_UF, "the updates before SET");
    assert_eq!(time_regs(&mut rtc, t + 10 * SEC), frozen, "no updates while SET");
    assert_eq!(rd(&mut rtc, REG_C, t + 10 * SEC), 0, "no UF while SET (RS = 0)");
    // The guest writes 2000-01-01 00:00:00 (weekday 1, wrong on purpose).
    set_time_regs(&mut rtc, [0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x20], t + 10 * SEC);
    assert_eq!(time_regs(&mut rtc, t + 11 * SEC)[3], 0x01, "held as written");
    assert_eq!(rtc.wall_clock(t + 11 * SEC), None);
    // Clearing SET starts the clock; the divider kept its phase, so the next
    // update is at T0 + 14 s.
    let _ = wr(&mut rtc, REG_B, B_24H | B_UIE, t + 11 * SEC);
    assert_eq!(rtc.wall_clock(T0 + 14 * SEC - 1), Some(946_684_800));
    assert_eq!(time_regs(&mut rtc, T0 + 14 * SEC), [0x01, 0x00, 0x00, 7, 0x01, 0x01, 0x00, 0x20]);
}

#[test]
fn set_with_invalid_bytes_leaves_the_clock_stopped() {
    let mut rtc = clock(B_24H);
    let _ = wr(&mut rtc, REG_B, B_24H | B_SET, T0);
    let _ = wr(&mut rtc, MONTH, 0x00, T0);
    let _ = wr(&mut rtc, REG_B, B_24H, T0);
    assert_eq!(rtc.wall_clock(T0), None);
    assert_eq!(time_regs(&mut rtc, T0 + 3 * SEC), [0x30, 0x45, 0x13, 5, 0x29, 0x00, 0x24, 0x20]);
}

#[test]
fn host_set_time_rephases_the_divider() {
    let mut rtc = clock(B_24H);
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
    let t = T0 + 5 * SEC + 700 * MS;
    assert_eq!(rd(&mut rtc, REG_C, t), C_UF);
    assert_eq!(wr(&mut rtc, REG_B, B_24H | B_UIE, t), arm(T0 + 6 * SEC));
    assert_eq!(rtc.set_time(t, 0), arm(t + SEC));
    assert_eq!(rtc.wall_clock(t + SEC - 1), Some(0));
    assert_eq!(rtc.wall_clock(t + SEC), Some(1));
    // Under SET the host time is what the registers hold.
    let _ = wr(&mut rtc, REG_B, B_24H | B_SET, t);
    let _ = rtc.set_time(t, LEAP_DAY);
    assert_eq!(rtc.wall_clock(t), None);
    let _ = wr(&mut rtc, REG_B, B_24H, t + 10 * SEC);
    assert_eq!(rtc.wall_clock(t + 10 * SEC), Some(LEAP_DAY));
}

#[test]
fn the_clock_keeps_time_over_years_of_vm_time() {
    let mut rtc = clock(B_24H);
    let years = 3 * 365 * 86_400 * SEC;
    assert_eq!(rtc.wall_clock(T0 + years), Some(LEAP_DAY + 3 * 365 * 86_400));
    // 2027-02-28 13:45:30 (Sunday): 2024-02-29 plus 3 * 365 days.
    assert_eq!(time_regs(&mut rtc, T0 + years), [0x30, 0x45, 0x13, 1, 0x28, 0x02, 0x27, 0x20]);
}

#[test]
fn time_going_backwards_is_harmless() {
    let mut rtc = clock(B_24H | B_UIE);
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
    let _ = rd(&mut rtc, REG_C, T0 + 5 * SEC);
    // An earlier `now` counts as the latest one seen.
    assert_eq!(rtc.wall_clock(T0), Some(LEAP_DAY + 5));
    assert_eq!(rd(&mut rtc, SECONDS, T0), 0x35);
    assert_eq!(rtc.timer_expired(0), arm(T0 + 6 * SEC));
}

#[test]
fn a_flag_raised_and_cleared_in_one_call_pulses_irq8() {
    // The guest polls register C after an update whose host timer has not
    // been handled yet: the line had its edge at the update.
    let mut rtc = clock(B_24H);
    let _ = wr(&mut rtc, REG_A, A_DV_RUN, T0);
    assert_eq!(wr(&mut rtc, REG_B, B_24H | B_UIE, T0), arm(T0 + SEC));
    let (c, fx) = rd_fx(&mut rtc, REG_C, T0 + SEC + 10);
    let pulse = Some(LineOp::Pulse);
    assert_eq!((c, fx), (C_IRQF | C_UF, Effects { irq8: pulse, ..arm(T0 + 2 * SEC) }));
    // Likewise a write that disables the interrupt after its event.
    assert_eq!(wr(&mut rtc, REG_B, B_24H, T0 + 2 * SEC), Effects { irq8: pulse, ..DISARM });
    assert_eq!(rd(&mut rtc, REG_C, T0 + 2 * SEC), C_UF);
    assert!(!rtc.irq8());
}
