// SPDX-License-Identifier: GPL-2.0

//! Where interrupts go (2.3.8, 2.3.9): legacy replacement routing to ISA
//! IRQ 0 and 8, I/O APIC pins, FSB messages; and level triggering with
//! GINTR_STA (2.3.6).

use super::*;

const LEVEL: u64 = TN_INT_ENB | TN_INT_TYPE_LEVEL;

/// Timer `n` one-shot at count 100 (1,000 ns) with configuration `conf`.
fn one_shot(h: &mut Hpet, n: usize, conf: u64) {
    let _ = w4(h, timer_conf(n), conf, 0);
    let _ = w8(h, timer_comparator(n), 100, 0);
}

#[test]
fn legacy_replacement_routes_timers_0_and_1_to_irq_0_and_8() {
    let mut h = running();
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE | CNF_LEG_RT, 0);
    assert_eq!(fx.legacy, Some(true), "the PIT and the RTC lose IRQ 0 and 8");
    assert!(h.legacy_replacement());
    // Timer 0 asks for FSB and timer 1 for pin 21: legacy routing wins
    // ("the individual routing bits for timers 0 and 1 have no impact").
    one_shot(&mut h, 0, TN_INT_ENB | TN_FSB_EN);
    one_shot(&mut h, 1, TN_INT_ENB | route(21));
    one_shot(&mut h, 2, TN_INT_ENB | route(22));
    let fx = h.timer_expired(1_000);
    let mut want = NO_IRQ;
    want[0] = Some(isa(LEGACY_IRQ_TIMER0, LineOp::Pulse));
    want[1] = Some(isa(LEGACY_IRQ_TIMER1, LineOp::Pulse));
    want[2] = Some(pin(22, LineOp::Pulse));
    assert_eq!(fx.irqs, want);
    assert_eq!((LEGACY_IRQ_TIMER0, LEGACY_IRQ_TIMER1), (0, 8));
    // Off again: the timers' own routes apply.
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 1_000);
    assert_eq!(fx.legacy, Some(false));
    let _ = w8(&mut h, timer_fsb(0), 0xfee0_0000_0000_0030, 1_000);
    let _ = w8(&mut h, timer_comparator(0), 200, 1_000);
    let _ = w8(&mut h, timer_comparator(1), 200, 1_000);
    let fx = h.timer_expired(2_000);
    let mut want = NO_IRQ;
    want[0] = Some(Irq::Msi(Msi { addr: 0xfee0_0000, data: 0x30 }));
    want[1] = Some(pin(21, LineOp::Pulse));
    assert_eq!(fx.irqs, want);
}

#[test]
fn legacy_bit_alone_routes_even_while_halted() {
    let mut h = Hpet::new();
    let fx = w4(&mut h, GEN_CONF, CNF_LEG_RT, 0);
    assert_eq!(fx, Effects { legacy: Some(true), ..Effects::NONE });
    let fx = w4(&mut h, GEN_CONF, CNF_LEG_RT, 0);
    assert_eq!(fx.legacy, None, "no change, no report");
}

#[test]
fn ioapic_routes_to_each_allowed_pin() {
    for pin_no in 20..=23u8 {
        let mut h = running();
        one_shot(&mut h, 3, TN_INT_ENB | route(u64::from(pin_no)));
        assert_eq!(h.timer_expired(1_000).irqs, irq(3, pin(pin_no, LineOp::Pulse)));
    }
}

#[test]
fn fsb_delivers_the_programmed_message() {
    let mut h = running();
    // Tn_FSB_INT_VAL at +0x10, Tn_FSB_INT_ADDR at +0x14.
    let _ = w4(&mut h, timer_fsb(4), 0x4041, 0);
    let _ = w4(&mut h, timer_fsb(4) + 4, 0xfee0_1000, 0);
    // Level type does not apply to FSB messages: no status bit.
    one_shot(&mut h, 4, TN_INT_ENB | TN_FSB_EN | TN_INT_TYPE_LEVEL | route(20));
    let fx = h.timer_expired(1_000);
    assert_eq!(fx.irqs, irq(4, Irq::Msi(Msi { addr: 0xfee0_1000, data: 0x4041 })));
    assert_eq!(r8(&h, GINTR_STA, 1_000), 0);
    // Without INT_ENB, no message.
    let _ = w4(&mut h, timer_conf(4), TN_FSB_EN, 1_000);
    let _ = w8(&mut h, timer_comparator(4), 200, 1_000);
    assert_eq!(h.timer_expired(2_000).irqs, NO_IRQ);
}

#[test]
fn level_interrupt_stays_until_status_is_cleared() {
    let mut h = running();
    let conf = LEVEL | TN_TYPE_PERIODIC | TN_VAL_SET | route(23);
    let _ = w4(&mut h, timer_conf(3), conf, 0);
    let _ = w8(&mut h, timer_comparator(3), 100, 0);
    let fx = h.timer_expired(1_000);
    assert_eq!(fx.irqs, irq(3, pin(23, LineOp::Assert)));
    assert_eq!(fx.timer, DISARM, "nothing more to deliver while the line is up");
    assert_eq!(r8(&h, GINTR_STA, 1_000), 1 << 3);
    assert_eq!(h.asserted(), irq(3, pin(23, LineOp::Assert)));
    // Later matches while it is up change nothing.
    assert_eq!(h.timer_expired(2_500).irqs, NO_IRQ);
    // Writing 0s or other timers' bits does not clear it.
    assert_eq!(w4(&mut h, GINTR_STA, !(1 << 3), 2_600).irqs, NO_IRQ);
    assert_eq!(r4(&h, GINTR_STA, 2_600), 1 << 3);
    // Writing 1 clears it and lowers the line; the period's phase holds.
    let fx = w4(&mut h, GINTR_STA, 1 << 3, 2_600);
    assert_eq!(fx.irqs, irq(3, pin(23, LineOp::Deassert)));
    assert_eq!(fx.timer, arm(3_000));
    assert_eq!(r4(&h, GINTR_STA, 2_600), 0);
    assert_eq!(h.timer_expired(3_000).irqs, irq(3, pin(23, LineOp::Assert)));
}

#[test]
fn level_status_without_int_enb_raises_the_line_when_enabled() {
    let mut h = running();
    one_shot(&mut h, 2, TN_INT_TYPE_LEVEL | route(20));
    assert_eq!(h.timer_expired(1_000).irqs, NO_IRQ);
    assert_eq!(r4(&h, GINTR_STA, 1_000), 1 << 2, "status set without INT_ENB");
    let fx = w4(&mut h, timer_conf(2), LEVEL | route(20), 1_100);
    assert_eq!(fx.irqs, irq(2, pin(20, LineOp::Assert)));
    let fx = w4(&mut h, timer_conf(2), TN_INT_TYPE_LEVEL | route(20), 1_200);
    assert_eq!(fx.irqs, irq(2, pin(20, LineOp::Deassert)), "INT_ENB off lowers the line");
    assert_eq!(r4(&h, GINTR_STA, 1_200), 1 << 2, "status stays");
}

#[test]
fn halting_lowers_level_lines_and_enabling_raises_them() {
    let mut h = running();
    one_shot(&mut h, 0, LEVEL | route(22));
    assert_eq!(h.timer_expired(1_000).irqs, irq(0, pin(22, LineOp::Assert)));
    let fx = w4(&mut h, GEN_CONF, 0, 2_000);
    assert_eq!(fx.irqs, irq(0, pin(22, LineOp::Deassert)));
    assert_eq!(r4(&h, GINTR_STA, 2_000), 1);
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 3_000);
    assert_eq!(fx.irqs, irq(0, pin(22, LineOp::Assert)));
}

#[test]
fn moving_or_retyping_a_raised_line_clears_its_status() {
    // (new Tn_CONF, effect on pin 20, what)
    for (conf, what) in [
        (LEVEL | route(21), "route moved"),
        (TN_INT_ENB | route(20), "now edge-triggered"),
        (LEVEL | TN_FSB_EN | route(20), "now FSB"),
    ] {
        let mut h = running();
        one_shot(&mut h, 1, LEVEL | route(20));
        assert_eq!(h.timer_expired(1_000).irqs, irq(1, pin(20, LineOp::Assert)));
        let fx = w4(&mut h, timer_conf(1), conf, 1_000);
        assert_eq!(fx.irqs, irq(1, pin(20, LineOp::Deassert)), "{what}");
        assert_eq!(r4(&h, GINTR_STA, 1_000), 0, "{what}");
        assert_eq!(h.asserted(), NO_IRQ, "{what}");
    }
    // Legacy replacement moves timer 1 from its pin to IRQ 8.
    let mut h = running();
    one_shot(&mut h, 1, LEVEL | route(20));
    let _ = h.timer_expired(1_000);
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE | CNF_LEG_RT, 1_000);
    assert_eq!(fx.irqs, irq(1, pin(20, LineOp::Deassert)));
    assert_eq!(fx.legacy, Some(true));
    assert_eq!(r4(&h, GINTR_STA, 1_000), 0);
}

#[test]
fn a_level_interrupt_due_before_a_masking_write_is_a_pulse() {
    // The match at 1,000 ns fell due before the write at 1,500 that masks
    // it: the line went up and down.
    let mut h = running();
    one_shot(&mut h, 0, LEVEL | route(21));
    let fx = w4(&mut h, timer_conf(0), TN_INT_TYPE_LEVEL | route(21), 1_500);
    assert_eq!(fx.irqs, irq(0, pin(21, LineOp::Pulse)));
    assert_eq!(r4(&h, GINTR_STA, 1_500), 1);
}

#[test]
fn legacy_level_timer_drives_the_isa_line() {
    let mut h = running();
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE | CNF_LEG_RT, 0);
    one_shot(&mut h, 1, LEVEL);
    assert_eq!(h.timer_expired(1_000).irqs, irq(1, isa(8, LineOp::Assert)));
    let fx = w4(&mut h, GINTR_STA, 2, 1_100);
    assert_eq!(fx.irqs, irq(1, isa(8, LineOp::Deassert)));
}

#[test]
fn unrouted_timers_interrupt_nothing() {
    let mut h = running();
    one_shot(&mut h, 6, TN_INT_ENB);
    one_shot(&mut h, 7, LEVEL);
    assert_eq!(h.timer_expired(5_000).irqs, NO_IRQ);
    assert_eq!(r4(&h, GINTR_STA, 5_000), 1 << 7, "level status still set");
    assert_eq!(h.asserted(), NO_IRQ);
}
