// SPDX-License-Identifier: GPL-2.0

//! Host tests of the HPET model, against the IA-PC HPET specification 1.0a
//! and the choices the module documentation states. Expected values are
//! worked out by hand here from the 100 MHz clock: one tick is 10 ns.

extern crate std;

use super::super::common::{LineOp, Msi, Nanos, TimerAction};
use super::regs::*;
use super::{Effects, Hpet, Irq};

mod counter;
mod linux;
mod registers;
mod routing;
mod snapshot;
mod timers;

/// Nanoseconds per tick.
const TICK: Nanos = 10;

fn w4(h: &mut Hpet, off: u64, v: u64, now: Nanos) -> Effects {
    h.write(off, 4, v, now)
}

fn w8(h: &mut Hpet, off: u64, v: u64, now: Nanos) -> Effects {
    h.write(off, 8, v, now)
}

fn r4(h: &Hpet, off: u64, now: Nanos) -> u64 {
    h.read(off, 4, now)
}

fn r8(h: &Hpet, off: u64, now: Nanos) -> u64 {
    h.read(off, 8, now)
}

/// Tn_CONF bits for an I/O APIC route.
const fn route(pin: u64) -> u64 {
    pin << 9
}

/// An HPET whose counter was enabled at time 0 (count = now / 10).
fn running() -> Hpet {
    let mut h = Hpet::new();
    let fx = w4(&mut h, GEN_CONF, CNF_ENABLE, 0);
    assert_eq!(fx, Effects::NONE);
    h
}

/// Effects with one interrupt operation, for timer `n`.
fn irq(n: usize, op: Irq) -> [Option<Irq>; TIMERS] {
    let mut v = [None; TIMERS];
    v[n] = Some(op);
    v
}

const fn pin(pin: u8, op: LineOp) -> Irq {
    Irq::Ioapic { pin, op }
}

const fn isa(irq: u8, op: LineOp) -> Irq {
    Irq::Isa { irq, op }
}

const NO_IRQ: [Option<Irq>; TIMERS] = [None; TIMERS];

const fn arm(t: Nanos) -> Option<TimerAction> {
    Some(TimerAction::Arm(t))
}

const DISARM: Option<TimerAction> = Some(TimerAction::Disarm);

#[test]
fn new_is_reset_state_and_default() {
    let h = Hpet::new();
    assert_eq!(h, Hpet::default());
    assert_eq!(h.timer_action(), TimerAction::Disarm);
    assert!(!h.legacy_replacement());
    assert_eq!(h.asserted(), NO_IRQ);
    assert_eq!(h.counter(123_456), 0);
}

#[test]
fn reset_lowers_lines_cancels_timer_and_ends_legacy() {
    let mut h = running();
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE | CNF_LEG_RT, 0);
    // Timer 1 level-triggered, legacy-routed to IRQ 8, one-shot at 100.
    let _ = w4(&mut h, timer_conf(1), TN_INT_ENB | TN_INT_TYPE_LEVEL, 0);
    let _ = w8(&mut h, timer_comparator(1), 100, 0);
    // Timer 2 armed far away.
    let _ = w4(&mut h, timer_conf(2), TN_INT_ENB | route(20), 0);
    let fx = w8(&mut h, timer_comparator(2), 1_000_000, 0);
    assert_eq!(fx.timer, None, "timer 1's match comes first");
    assert_eq!(h.timer_action(), TimerAction::Arm(100 * TICK));
    let fx = h.timer_expired(100 * TICK);
    assert_eq!(fx.irqs, irq(1, isa(8, LineOp::Assert)));
    assert_eq!(fx.timer, arm(1_000_000 * TICK));
    let fx = h.reset();
    assert_eq!(
        fx,
        Effects { irqs: irq(1, isa(8, LineOp::Deassert)), timer: DISARM, legacy: Some(false) }
    );
    assert_eq!(h, Hpet::new());
    assert_eq!(h.reset(), Effects::NONE, "a second reset has nothing to undo");
}
