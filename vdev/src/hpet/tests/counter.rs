// SPDX-License-Identifier: GPL-2.0

//! The main counter (2.3.7): its rate from `now`, halting with
//! ENABLE_CNF, and writes while halted and while running.

use super::*;

#[test]
fn counts_at_100_mhz_from_now() {
    let mut h = Hpet::new();
    let t0 = 1_000_003;
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE, t0);
    // (ns after enabling, count): one tick per 10 ns, whole ticks only.
    for (dt, want) in [
        (0, 0),
        (9, 0),
        (10, 1),
        (19, 1),
        (1_000, 100),
        (1_000_000_000, 100_000_000),
        (42_949_672_960, 1 << 32),
        (42_949_672_969, 1 << 32),
    ] {
        assert_eq!(r8(&h, MAIN_CNT, t0 + dt), want, "{dt} ns after enabling");
        assert_eq!(r4(&h, MAIN_CNT, t0 + dt), want & LOW_HALF, "low half at {dt}");
        assert_eq!(r4(&h, MAIN_CNT + 4, t0 + dt), want >> 32, "high half at {dt}");
        assert_eq!(h.counter(t0 + dt), want);
    }
}

#[test]
fn halting_keeps_the_value_and_resumes_from_it() {
    let mut h = running();
    assert_eq!(r8(&h, MAIN_CNT, 5_000), 500);
    let fx = w4(&mut h, GEN_CONF, 0, 5_004);
    assert_eq!(fx, Effects::NONE);
    assert_eq!(r8(&h, MAIN_CNT, 5_004), 500, "halted at the count it had");
    assert_eq!(r8(&h, MAIN_CNT, 9_000_000), 500, "and stays there");
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE, 10_000);
    assert_eq!(r8(&h, MAIN_CNT, 10_000), 500, "resumes from the held value");
    assert_eq!(r8(&h, MAIN_CNT, 10_095), 509);
}

#[test]
fn writable_only_while_halted() {
    let mut h = running();
    let _ = w8(&mut h, MAIN_CNT, 0x7777, 1_000);
    assert_eq!(r8(&h, MAIN_CNT, 1_000), 100, "write while running dropped");
    let _ = w4(&mut h, GEN_CONF, 0, 2_000);
    let _ = w4(&mut h, MAIN_CNT, 0x1234, 3_000);
    assert_eq!(r8(&h, MAIN_CNT, 3_000), 0x1234, "low half written, high half kept (0)");
    let _ = w4(&mut h, MAIN_CNT + 4, 0x5, 3_000);
    assert_eq!(r8(&h, MAIN_CNT, 3_000), 0x5_0000_1234);
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE, 4_000);
    assert_eq!(r8(&h, MAIN_CNT, 4_100), 0x5_0000_1234 + 10);
}

#[test]
fn counter_wraps_at_64_bits() {
    let mut h = Hpet::new();
    let _ = w8(&mut h, MAIN_CNT, u64::MAX - 1, 0);
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE, 0);
    assert_eq!(r8(&h, MAIN_CNT, 10), u64::MAX);
    assert_eq!(r8(&h, MAIN_CNT, 20), 0);
    assert_eq!(r8(&h, MAIN_CNT, 35), 1);
}

#[test]
fn legacy_bit_does_not_disturb_the_counter() {
    let mut h = running();
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE | CNF_LEG_RT, 1_000);
    assert_eq!(fx, Effects { legacy: Some(true), ..Effects::NONE });
    assert_eq!(r8(&h, MAIN_CNT, 2_000), 200);
}

#[test]
fn a_clock_that_steps_back_does_not_move_the_counter_back() {
    // The caller promises a monotonic clock; if it broke that promise the
    // count would stand still rather than run backwards or wrap.
    let mut h = running();
    let _ = h.timer_expired(10_000);
    assert_eq!(h.counter(5_000), 1_000);
    assert_eq!(h.counter(10_010), 1_001);
}
