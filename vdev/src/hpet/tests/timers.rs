// SPDX-License-Identifier: GPL-2.0

//! Comparators (2.3.9.2): one-shot and periodic, 64- and 32-bit, with the
//! host timer armed for the exact match time, and callbacks that come
//! early or late.

use super::*;

const EDGE20: u64 = TN_INT_ENB | route(20);

#[test]
fn one_shot_64_bit_fires_once_at_the_match() {
    let mut h = running();
    let _ = w4(&mut h, timer_conf(2), EDGE20, 0);
    let fx = w8(&mut h, timer_comparator(2), 1_000, 0);
    assert_eq!(fx, Effects { timer: arm(10_000), ..Effects::NONE });
    // Early callback: nothing, armed again for the same time.
    let fx = h.timer_expired(9_999);
    assert_eq!(fx, Effects { timer: arm(10_000), ..Effects::NONE });
    let fx = h.timer_expired(10_000);
    assert_eq!(fx.irqs, irq(2, pin(20, LineOp::Pulse)));
    assert_eq!(fx.timer, DISARM, "the next match is 2^64 ticks away");
    assert_eq!(r8(&h, timer_comparator(2), 10_000), 1_000, "one-shot comparator stays");
    assert_eq!(h.timer_expired(1_000_000_000).irqs, NO_IRQ);
}

#[test]
fn one_shot_64_bit_after_the_counter_wraps() {
    let mut h = Hpet::new();
    let _ = w8(&mut h, MAIN_CNT, u64::MAX - 99, 0);
    let _ = w4(&mut h, timer_conf(0), EDGE20, 0);
    let _ = w8(&mut h, timer_comparator(0), 50, 0);
    // 100 ticks to reach 0, 50 more to reach 50.
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 0);
    assert_eq!(fx.timer, arm(150 * TICK));
    assert_eq!(h.timer_expired(150 * TICK).irqs, irq(0, pin(20, LineOp::Pulse)));
}

#[test]
fn one_shot_32_bit_fires_each_time_the_counter_passes() {
    let mut h = Hpet::new();
    let _ = w8(&mut h, MAIN_CNT, 0x1_ffff_ff00, 0);
    let _ = w4(&mut h, timer_conf(3), EDGE20 | TN_32MODE, 0);
    let _ = w4(&mut h, timer_comparator(3), 0x100, 0);
    // The low 32 bits wrap after 0x100 ticks and reach 0x100 0x100 later.
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 0);
    assert_eq!(fx.timer, arm(0x200 * TICK));
    let fx = h.timer_expired(0x200 * TICK);
    assert_eq!(fx.irqs, irq(3, pin(20, LineOp::Pulse)));
    assert_eq!(r8(&h, MAIN_CNT, 0x200 * TICK), 0x2_0000_0100);
    // And again one 32-bit wrap later (2^32 ticks, 42.95 s).
    let again = (0x200 + (1 << 32)) * TICK;
    assert_eq!(fx.timer, arm(again));
    assert_eq!(h.timer_expired(again).irqs, irq(3, pin(20, LineOp::Pulse)));
}

#[test]
fn comparator_behind_the_count_waits_for_the_wrap() {
    let mut h = running();
    let _ = w4(&mut h, timer_conf(1), EDGE20 | TN_32MODE, 0);
    // At 10,000 ns the count is 1,000: a comparator of 1,000 or less has
    // been passed already.
    for cmp in [1_000u64, 999, 0] {
        let fx = w4(&mut h, timer_comparator(1), cmp, 10_000);
        assert_eq!(fx.irqs, NO_IRQ, "no interrupt for a passed comparator {cmp}");
        let wrap = 10_000 + ((cmp + (1 << 32)) - 1_000) * TICK;
        assert_eq!(h.timer_action(), TimerAction::Arm(wrap), "comparator {cmp}");
    }
}

#[test]
fn periodic_64_bit_keeps_phase_across_late_callbacks() {
    let mut h = running();
    let conf = TN_INT_ENB | TN_TYPE_PERIODIC | TN_VAL_SET | route(21);
    let _ = w4(&mut h, timer_conf(4), conf, 0);
    let _ = w8(&mut h, timer_comparator(4), 1_000, 0);
    let fx = w8(&mut h, timer_comparator(4), 250, 0);
    assert_eq!(fx.timer, None, "the period does not move the first match");
    assert_eq!(h.timer_action(), TimerAction::Arm(10_000));
    // (callback time, pulse expected, comparator after, next arm)
    for (now, pulse, cmp_after, next) in [
        (10_000, true, 1_250, 12_500),
        (12_499, false, 1_250, 12_500),
        (12_500, true, 1_500, 15_000),
        // 35 us late: the 15 matches from 1,500 to 5,000 make one
        // interrupt, and the phase is kept (5,250 = 1,000 + 17 * 250).
        (50_007, true, 5_250, 52_500),
        (52_500, true, 5_500, 55_000),
    ] {
        let fx = h.timer_expired(now);
        let want = if pulse { irq(4, pin(21, LineOp::Pulse)) } else { NO_IRQ };
        assert_eq!(fx.irqs, want, "callback at {now}");
        assert_eq!(r8(&h, timer_comparator(4), now), cmp_after, "comparator at {now}");
        assert_eq!(fx.timer, arm(next), "next at {now}");
    }
    // A new period (no VAL_SET) applies from the next match on.
    let _ = w8(&mut h, timer_comparator(4), 1_000, 53_000);
    assert_eq!(h.timer_expired(55_000).timer, arm(65_000));
    assert_eq!(r8(&h, timer_comparator(4), 55_000), 6_500);
}

#[test]
fn periodic_32_bit_wraps_the_comparator() {
    let mut h = Hpet::new();
    let _ = w8(&mut h, MAIN_CNT, 0xffff_f000, 0);
    let conf = TN_INT_ENB | TN_TYPE_PERIODIC | TN_VAL_SET | TN_32MODE | route(22);
    let _ = w4(&mut h, timer_conf(5), conf, 0);
    let _ = w4(&mut h, timer_comparator(5), 0xffff_f800, 0);
    let _ = w4(&mut h, timer_comparator(5), 0x1000, 0);
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 0);
    assert_eq!(fx.timer, arm(0x800 * TICK));
    let fx = h.timer_expired(0x800 * TICK);
    assert_eq!(fx.irqs, irq(5, pin(22, LineOp::Pulse)));
    assert_eq!(r8(&h, timer_comparator(5), 0x800 * TICK), 0x800, "0xffff_f800 + 0x1000 wraps");
    assert_eq!(fx.timer, arm(0x1800 * TICK));
    let fx = h.timer_expired(0x1800 * TICK);
    assert_eq!(fx.irqs, irq(5, pin(22, LineOp::Pulse)));
    assert_eq!(r8(&h, MAIN_CNT, 0x1800 * TICK), 0x1_0000_0800);
}

#[test]
fn periodic_with_zero_increment_is_one_shot() {
    let mut h = running();
    let conf = TN_INT_ENB | TN_TYPE_PERIODIC | TN_VAL_SET | TN_32MODE | route(20);
    let _ = w4(&mut h, timer_conf(6), conf, 0);
    let _ = w4(&mut h, timer_comparator(6), 100, 0);
    let _ = w4(&mut h, timer_comparator(6), 0, 0);
    assert_eq!(h.timer_expired(1_000).irqs, irq(6, pin(20, LineOp::Pulse)));
    assert_eq!(h.timer_action(), TimerAction::Arm(1_000 + (1 << 32) * TICK));
}

#[test]
fn reads_show_matches_before_the_callback() {
    let mut h = running();
    let conf = TN_TYPE_PERIODIC | TN_VAL_SET | TN_INT_TYPE_LEVEL | route(20);
    let _ = w4(&mut h, timer_conf(0), conf, 0);
    let _ = w8(&mut h, timer_comparator(0), 100, 0);
    // Interrupt disabled: no host timer, yet the comparator moves on and
    // the level status bit is set (Tn_INT_ENB_CNF note, 2.3.8).
    assert_eq!(h.timer_action(), TimerAction::Disarm);
    assert_eq!(r8(&h, timer_comparator(0), 999), 100);
    assert_eq!(r8(&h, GINTR_STA, 999), 0);
    assert_eq!(r8(&h, timer_comparator(0), 1_000), 200);
    assert_eq!(r8(&h, GINTR_STA, 1_000), 1);
    assert_eq!(r8(&h, timer_comparator(0), 3_500), 400);
}

#[test]
fn disabled_or_unrouted_timers_do_not_arm() {
    let mut h = running();
    let _ = w8(&mut h, timer_comparator(2), 100, 0);
    assert_eq!(h.timer_action(), TimerAction::Disarm, "INT_ENB 0");
    let fx = w4(&mut h, timer_conf(2), TN_INT_ENB, 0);
    assert_eq!(fx.timer, None, "route 0 is no pin: nothing to deliver");
    let fx = w4(&mut h, timer_conf(2), TN_INT_ENB | route(23), 0);
    assert_eq!(fx.timer, arm(1_000));
    let fx = w4(&mut h, GEN_CONF, 0, 500);
    assert_eq!(fx.timer, DISARM, "halted");
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 700);
    assert_eq!(fx.timer, arm(700 + 50 * TICK), "50 ticks were left at the halt");
}

#[test]
fn earliest_timer_wins_the_host_timer() {
    let mut h = running();
    for (n, cmp) in [(0, 500), (1, 300), (2, 900)] {
        let _ = w4(&mut h, timer_conf(n), EDGE20, 0);
        let _ = w8(&mut h, timer_comparator(n), cmp, 0);
    }
    assert_eq!(h.timer_action(), TimerAction::Arm(3_000));
    let fx = h.timer_expired(5_000);
    let mut want = NO_IRQ;
    want[0] = Some(pin(20, LineOp::Pulse));
    want[1] = Some(pin(20, LineOp::Pulse));
    assert_eq!(fx.irqs, want, "both due timers, one operation each");
    assert_eq!(fx.timer, arm(9_000));
}

#[test]
fn halting_stops_matches() {
    let mut h = running();
    let _ = w4(&mut h, timer_conf(0), EDGE20, 0);
    let _ = w8(&mut h, timer_comparator(0), 100, 0);
    let _ = w4(&mut h, GEN_CONF, 0, 500);
    assert_eq!(h.timer_expired(5_000).irqs, NO_IRQ, "halted at 50");
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 10_000);
    assert_eq!(fx.timer, arm(10_500));
    assert_eq!(h.timer_expired(10_500).irqs, irq(0, pin(20, LineOp::Pulse)));
}

#[test]
fn a_due_match_is_delivered_by_the_next_write() {
    // The host timer has not fired yet, but a write at a later time works
    // out the match first.
    let mut h = running();
    let _ = w4(&mut h, timer_conf(0), EDGE20, 0);
    let _ = w8(&mut h, timer_comparator(0), 100, 0);
    let fx = w8(&mut h, timer_fsb(0), 0, 2_000);
    assert_eq!(fx.irqs, irq(0, pin(20, LineOp::Pulse)));
    assert_eq!(fx.timer, DISARM);
}
