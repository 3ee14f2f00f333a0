// SPDX-License-Identifier: GPL-2.0

//! The register sequences Linux's arch/x86/kernel/hpet.c writes for its
//! legacy clockevent device (timer 0 under legacy replacement routing),
//! periodic and one-shot, with only 32-bit accesses as Linux makes them.

use super::*;
use std::vec::Vec;

/// Linux's bit names for Tn_CONF (include/asm/hpet.h).
const HPET_TN_ENABLE: u64 = TN_INT_ENB;
const HPET_TN_PERIODIC: u64 = TN_TYPE_PERIODIC;
const HPET_TN_SETVAL: u64 = TN_VAL_SET;
const HPET_TN_32BIT: u64 = TN_32MODE;
const HPET_TN_LEVEL: u64 = TN_INT_TYPE_LEVEL;
const HPET_TN_FSB: u64 = TN_FSB_EN;
const HPET_CFG_ENABLE: u64 = CNF_ENABLE;
const HPET_CFG_LEGACY: u64 = CNF_LEG_RT;
/// Linux's HPET_MIN_CYCLES: set_next_event fails below this margin.
const HPET_MIN_CYCLES: i32 = 128;

fn readl(h: &Hpet, off: u64, now: Nanos) -> u64 {
    r4(h, off, now)
}

/// `hpet_writel`, collecting the interrupts it caused.
fn writel(h: &mut Hpet, v: u64, off: u64, now: Nanos, log: &mut Vec<(Nanos, Irq)>) {
    let fx = w4(h, off, v, now);
    log.extend(fx.irqs.iter().flatten().map(|&i| (now, i)));
}

fn stop_counter(h: &mut Hpet, now: Nanos, log: &mut Vec<(Nanos, Irq)>) {
    let cfg = readl(h, GEN_CONF, now) & !HPET_CFG_ENABLE;
    writel(h, cfg, GEN_CONF, now, log);
}

fn start_counter(h: &mut Hpet, now: Nanos, log: &mut Vec<(Nanos, Irq)>) {
    let cfg = readl(h, GEN_CONF, now) | HPET_CFG_ENABLE;
    writel(h, cfg, GEN_CONF, now, log);
}

/// hpet_enable(): stop, clear every timer's ENABLE/LEVEL/FSB bits, reset
/// the counter, start it, then legacy replacement (hpet_enable_legacy_int).
fn hpet_enable(h: &mut Hpet, now: Nanos, log: &mut Vec<(Nanos, Irq)>) {
    let id = readl(h, GCAP_ID, now);
    let period = readl(h, GCAP_ID + 4, now);
    assert!((100_000..=100_000_000).contains(&period), "Linux's HPET_MIN/MAX_PERIOD");
    assert_ne!(id & CAP_LEG_RT, 0, "Linux needs HPET_ID_LEGSUP for the legacy clockevent");
    let last = (id & CAP_NUM_TIM) >> 8;
    stop_counter(h, now, log);
    for n in 0..=last as usize {
        let cfg = readl(h, timer_conf(n), now) & !(HPET_TN_ENABLE | HPET_TN_LEVEL | HPET_TN_FSB);
        writel(h, cfg, timer_conf(n), now, log);
    }
    writel(h, 0, MAIN_CNT, now, log);
    writel(h, 0, MAIN_CNT + 4, now, log);
    start_counter(h, now, log);
    let cfg = readl(h, GEN_CONF, now) | HPET_CFG_LEGACY;
    writel(h, cfg, GEN_CONF, now, log);
}

/// Runs the host timer as the glue would, firing it exactly when armed,
/// until `until`.
fn run_until(h: &mut Hpet, mut armed: TimerAction, until: Nanos, log: &mut Vec<(Nanos, Irq)>) {
    while let TimerAction::Arm(t) = armed {
        if t > until {
            break;
        }
        let fx = h.timer_expired(t);
        log.extend(fx.irqs.iter().flatten().map(|&i| (t, i)));
        armed = fx.timer.unwrap_or(armed);
    }
}

#[test]
fn legacy_periodic_clockevent() {
    let mut h = Hpet::new();
    let mut log = Vec::new();
    hpet_enable(&mut h, 1_000_000, &mut log);
    assert!(h.legacy_replacement());
    // hpet_set_periodic(), HZ = 1000: delta = 1 ms = 100,000 ticks.
    let delta = 100_000u64;
    let t = 5_000_000;
    stop_counter(&mut h, t, &mut log);
    let now = readl(&h, MAIN_CNT, t);
    assert_eq!(now, 400_000, "4 ms at 100 MHz");
    let cmp = now + delta;
    let cfg = readl(&h, timer_conf(0), t)
        | HPET_TN_ENABLE
        | HPET_TN_PERIODIC
        | HPET_TN_SETVAL
        | HPET_TN_32BIT;
    writel(&mut h, cfg, timer_conf(0), t, &mut log);
    writel(&mut h, cmp, timer_comparator(0), t, &mut log);
    writel(&mut h, delta, timer_comparator(0), t + 1_000, &mut log);
    let cfg = readl(&h, GEN_CONF, 6_000_000) | HPET_CFG_ENABLE;
    let fx = w4(&mut h, GEN_CONF, cfg, 6_000_000);
    // Restarted at 6 ms with 100,000 ticks (1 ms) to the first match.
    assert_eq!(fx.timer, arm(7_000_000));
    run_until(&mut h, TimerAction::Arm(7_000_000), 11_000_000, &mut log);
    let tick = isa(0, LineOp::Pulse);
    assert_eq!(
        log,
        [
            (7_000_000, tick),
            (8_000_000, tick),
            (9_000_000, tick),
            (10_000_000, tick),
            (11_000_000, tick)
        ]
    );
    // The comparator reads the next match.
    assert_eq!(readl(&h, timer_comparator(0), 11_000_000), 1_000_000);
}

#[test]
fn legacy_oneshot_clockevent() {
    let mut h = Hpet::new();
    let mut log = Vec::new();
    hpet_enable(&mut h, 0, &mut log);
    // hpet_clkevt_set_state_oneshot().
    let cfg = (readl(&h, timer_conf(0), 100) & !HPET_TN_PERIODIC) | HPET_TN_ENABLE | HPET_TN_32BIT;
    writel(&mut h, cfg, timer_conf(0), 100, &mut log);
    // hpet_clkevt_set_next_event(delta = 12,345 ticks) at 1 ms.
    let t = 1_000_000;
    let cnt = (readl(&h, MAIN_CNT, t) + 12_345) & LOW_HALF;
    let fx = w4(&mut h, timer_comparator(0), cnt, t);
    let res = (cnt as u32).wrapping_sub(readl(&h, MAIN_CNT, t + 50) as u32) as i32;
    assert!(res >= HPET_MIN_CYCLES, "Linux would report -ETIME: {res}");
    assert_eq!(fx.timer, arm(t + 123_450));
    let fx = h.timer_expired(t + 123_450);
    assert_eq!(fx.irqs, irq(0, isa(0, LineOp::Pulse)));
    // Next event, then hpet_clkevt_set_state_shutdown() before it.
    let t = 2_000_000;
    let cnt = (readl(&h, MAIN_CNT, t) + 500) & LOW_HALF;
    let fx = w4(&mut h, timer_comparator(0), cnt, t);
    assert_eq!(fx.timer, arm(t + 5_000));
    let cfg = readl(&h, timer_conf(0), t + 10) & !HPET_TN_ENABLE;
    let fx = w4(&mut h, timer_conf(0), cfg, t + 10);
    assert_eq!(fx.timer, DISARM);
    assert_eq!(h.timer_expired(t + 100_000).irqs, NO_IRQ);
    assert!(log.is_empty(), "no interrupt from the set-up writes: {log:?}");
}

#[test]
fn set_next_event_in_the_past_is_caught_by_linux() {
    // A delta the counter overtakes before the check: Linux sees a
    // negative margin and retries; the model raises nothing for it until
    // the 32-bit wrap.
    let mut h = Hpet::new();
    let mut log = Vec::new();
    hpet_enable(&mut h, 0, &mut log);
    let cfg = readl(&h, timer_conf(0), 0) | HPET_TN_ENABLE | HPET_TN_32BIT;
    writel(&mut h, cfg, timer_conf(0), 0, &mut log);
    let t = 1_000_000;
    let cnt = (readl(&h, MAIN_CNT, t) + 2) & LOW_HALF;
    let fx = w4(&mut h, timer_comparator(0), cnt, t + 100);
    let res = (cnt as u32).wrapping_sub(readl(&h, MAIN_CNT, t + 100) as u32) as i32;
    assert!(res < HPET_MIN_CYCLES);
    assert_eq!(fx.irqs, NO_IRQ);
}
