// SPDX-License-Identifier: GPL-2.0

//! IRQ 0 and the host timer: the rising edges of counter 0's OUT as
//! pulses, the deadlines that bring them, late, early and repeated
//! callbacks, reprogramming, and the floor on the host timer's rate.
//!
//! Linux's periodic PIT (`drivers/clocksource/i8253.c`
//! `init_pit_timer`, `CLOCK_EVT_STATE_PERIODIC`) writes 0x34 to port 0x43
//! and `LATCH = (1193182 + HZ/2) / HZ` to port 0x40, LSB then MSB.

use super::super::super::common::{LineOp, TimerAction};
use super::*;

const PULSE: Option<LineOp> = Some(LineOp::Pulse);

fn arm(k: u64) -> Option<TimerAction> {
    Some(TimerAction::Arm(time_of(k)))
}

fn fx(irq0: Option<LineOp>, timer: Option<TimerAction>) -> Effects {
    Effects { irq0, timer }
}

#[test]
fn linux_periodic_mode2_at_100_and_1000_hz() {
    for (hz, latch) in [(100u64, 11_932u16), (1000, 1193)] {
        assert_eq!(u64::from(latch), (1_193_182 + hz / 2) / hz);
        let mut p = Pit::new();
        let n = u64::from(latch);
        // Loaded at W+1; OUT rises at the end of each period.
        assert_eq!(start(&mut p, 0, 2, false, latch, W), fx(None, arm(W + 1 + n)), "{hz} Hz");
        let mut pulses = 0;
        for i in 1..=2 * hz {
            let due = time_of(W + 1 + i * n);
            let got = p.timer_expired(due);
            assert_eq!(got, fx(PULSE, arm(W + 1 + (i + 1) * n)), "{hz} Hz, period {i}");
            pulses += 1;
            // The clocksource read (latch, LSB, MSB) sees the reload.
            let _ = p.write(PORT_CONTROL, 0x00, due);
            let lo = p.read(PORT_COUNTER0, due);
            let hi = p.read(PORT_COUNTER0, due);
            assert_eq!(u16::from_le_bytes([lo, hi]), latch, "{hz} Hz, period {i}");
        }
        assert_eq!(pulses, 2 * hz);
        // No drift: 2 s of periods end where the clock says they do.
        let last = time_of(W + 1 + 2 * hz * n);
        let expect = time_of(W + 1) + mul_div_up(2 * hz * n);
        assert!(last.abs_diff(expect) <= 1, "{hz} Hz: {last} vs {expect}");
    }
}

/// `clocks * 88_000 / 105` rounded up.
fn mul_div_up(clocks: u64) -> u64 {
    (clocks * 88_000).div_ceil(105)
}

#[test]
fn late_early_and_repeated_callbacks() {
    let mut p = Pit::new();
    let n = 1193;
    let _ = start(&mut p, 0, 2, false, n as u16, W);
    let edge = |i: u64| W + 1 + i * n;
    // 3.5 periods late: one pulse for the four edges, and the next
    // deadline is the next edge of the original sequence.
    let late = time_of(edge(1)) + 3 * time_of(n) + time_of(n) / 2;
    assert_eq!(p.timer_expired(late), fx(PULSE, arm(edge(5))));
    // Early: nothing, and the same deadline again.
    assert_eq!(p.timer_expired(time_of(edge(5)) - 1), fx(None, arm(edge(5))));
    // On time, then the same callback again: one pulse.
    assert_eq!(p.timer_expired(time_of(edge(5))), fx(PULSE, arm(edge(6))));
    assert_eq!(p.timer_expired(time_of(edge(5))), fx(None, arm(edge(6))));
    // Reads do not consume edges.
    let _ = p.read(PORT_COUNTER0, time_of(edge(6)));
    assert_eq!(p.timer_expired(time_of(edge(6)) + 5), fx(PULSE, arm(edge(7))));
}

#[test]
fn one_shot_modes_pulse_once() {
    // Mode 0: at terminal count, N + 1 clocks after the write.
    let mut p = Pit::new();
    assert_eq!(start(&mut p, 0, 0, false, 100, W), fx(None, arm(W + 101)));
    assert_eq!(p.timer_expired(time_of(W + 101)), fx(PULSE, Some(TimerAction::Disarm)));
    assert_eq!(p.timer_expired(time_of(W + 70_000)), fx(None, Some(TimerAction::Disarm)));
    // Mode 4 (Linux's one-shot clockevent, 0x38): OUT rises when the
    // one-clock strobe ends, N + 2 clocks after the write.
    let mut p = Pit::new();
    assert_eq!(start(&mut p, 0, 4, false, 100, W), fx(None, arm(W + 102)));
    assert_eq!(p.timer_expired(time_of(W + 101)), fx(None, arm(W + 102)), "strobe low");
    assert_eq!(p.timer_expired(time_of(W + 102)), fx(PULSE, Some(TimerAction::Disarm)));
    // Rewriting mode 4 restarts it; the old deadline is dropped.
    assert_eq!(load(&mut p, 0, 50, W + 200), fx(None, arm(W + 252)));
    assert_eq!(p.timer_expired(time_of(W + 252)), fx(PULSE, Some(TimerAction::Disarm)));
    // Modes 1 and 5 wait for a gate edge counter 0 never sees.
    for mode in [1, 5] {
        let mut p = Pit::new();
        assert_eq!(start(&mut p, 0, mode, false, 100, W), Effects::NONE, "never armed");
        assert_eq!(p.timer_expired(time_of(W + 1_000_000)).irq0, None, "mode {mode}");
    }
}

#[test]
fn mode3_pulses_at_each_period_start() {
    // The BIOS's 18.2 Hz: mode 3, count 0 (65536); OUT rises from low to
    // high once per period.
    let mut p = Pit::new();
    assert_eq!(start(&mut p, 0, 3, false, 0, W), fx(None, arm(W + 1 + 65_536)));
    assert_eq!(p.timer_expired(time_of(W + 1 + 32_768)), fx(None, arm(W + 1 + 65_536)));
    let got = p.timer_expired(time_of(W + 1 + 65_536));
    assert_eq!(got, fx(PULSE, arm(W + 1 + 2 * 65_536)));
}

#[test]
fn a_new_count_takes_effect_after_the_current_period() {
    let mut p = Pit::new();
    let _ = start(&mut p, 0, 2, false, 1193, W);
    // Half-way through the first period the guest asks for 2386: the
    // period's end, and so the deadline, stand.
    assert_eq!(load(&mut p, 0, 2386, W + 600), Effects::NONE);
    assert_eq!(p.timer_expired(time_of(W + 1194)), fx(PULSE, arm(W + 1194 + 2386)));
    assert_eq!(p.timer_expired(time_of(W + 1194 + 2386)), fx(PULSE, arm(W + 1194 + 4772)));
    // A control word stops it.
    let got = p.write(PORT_CONTROL, 0x34, time_of(W + 5000));
    assert_eq!(got, fx(None, Some(TimerAction::Disarm)));
}

#[test]
fn fast_rates_are_merged_not_stormed() {
    // Count 10: an edge every 8.4 µs; the host timer comes no sooner than
    // MIN_IRQ_INTERVAL after a pulse, on a time of its own.
    let mut p = Pit::new();
    assert_eq!(start(&mut p, 0, 2, false, 10, W), fx(None, arm(W + 11)));
    let t = time_of(W + 11);
    let next = Some(TimerAction::Arm(t + MIN_IRQ_INTERVAL));
    assert_eq!(p.timer_expired(t), fx(PULSE, next));
    let t2 = t + MIN_IRQ_INTERVAL;
    let next = Some(TimerAction::Arm(t2 + MIN_IRQ_INTERVAL));
    assert_eq!(p.timer_expired(t2), fx(PULSE, next));
    // The guest still sees the programmed rate.
    let k = clock_at(t2) + 3;
    let (count, _) = readback(&mut p, 0, k);
    assert_eq!(u64::from(count), 10 - (k - (W + 1)) % 10);
}

#[test]
fn a_write_delivers_a_due_edge() {
    let mut p = Pit::new();
    let _ = start(&mut p, 0, 2, false, 1193, W);
    let due = time_of(W + 1194);
    // The callback is late; the guest writes port 0x61 first.
    let got = p.write(PORT_SYSTEM_B, 0, due + 10_000);
    let floor = due + 10_000 + MIN_IRQ_INTERVAL;
    assert_eq!(got, fx(PULSE, Some(TimerAction::Arm(floor.max(time_of(W + 2387))))));
    // The late callback then finds nothing due.
    assert_eq!(p.timer_expired(due + 20_000), fx(None, arm(W + 2387)));
    // Writes that do not touch counter 0 and find nothing due leave the
    // host timer alone.
    assert_eq!(p.write(PORT_SYSTEM_B, 1, due + 30_000), Effects::NONE);
    assert_eq!(p.write(PORT_COUNTER2, 1, due + 30_000), Effects::NONE);
}

#[test]
fn a_control_word_that_raises_out_is_an_edge() {
    // "OUT goes to a known initial state": high in modes 1-5. From mode
    // 0 before terminal count (OUT low), that is a rising edge on IRQ 0.
    let mut p = Pit::new();
    let _ = start(&mut p, 0, 0, false, 1000, W);
    let got = p.write(PORT_CONTROL, 0x34, mid(W + 10));
    assert_eq!(got, fx(PULSE, Some(TimerAction::Disarm)));
    // Already high: no edge.
    assert_eq!(p.write(PORT_CONTROL, 0x36, mid(W + 11)), Effects::NONE);
    // To mode 0 (OUT low) and back.
    assert_eq!(p.write(PORT_CONTROL, 0x30, mid(W + 12)), Effects::NONE);
    assert_eq!(p.write(PORT_CONTROL, 0x38, mid(W + 13)), fx(PULSE, None));
}

#[test]
fn counters_1_and_2_never_interrupt() {
    let mut p = Pit::new();
    let _ = p.write(PORT_SYSTEM_B, 1, mid(W));
    for ch in [1, 2] {
        assert_eq!(start(&mut p, ch, 2, false, 2, W), Effects::NONE, "counter {ch}");
    }
    for k in [W + 3, W + 100, W + 10_000] {
        assert_eq!(p.timer_expired(time_of(k)), fx(None, Some(TimerAction::Disarm)));
    }
}

#[test]
fn reset_disarms() {
    let mut p = Pit::new();
    let _ = start(&mut p, 0, 2, false, 1193, W);
    assert_eq!(p.reset(), fx(None, Some(TimerAction::Disarm)));
    assert_eq!(p, Pit::new());
}
