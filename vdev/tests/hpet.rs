// SPDX-License-Identifier: GPL-2.0

//! Property tests of the HPET model. Random sequences of guest accesses,
//! clock steps and host-timer callbacks (on time, early, late) must never
//! panic and must keep, after every operation, the invariants
//! `Harness::check` states; a snapshot restored into a fresh device at a
//! random point must behave exactly like the original from then on; and a
//! periodic timer must deliver one interrupt per callback that passed a
//! match, on its phase, however late the callbacks come.

use proptest::prelude::*;
use vmm_vdev::hpet::regs::*;
use vmm_vdev::hpet::{Effects, Hpet, Irq, Snapshot, TIMERS};
use vmm_vdev::{ImportError, LineOp, Nanos, TimerAction};

/// Longest op sequence per case.
const MAX_OPS: usize = 96;

/// One step of a run.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A guest write.
    Write { off: u64, size: u8, value: u64 },
    /// A guest read.
    Read { off: u64, size: u8 },
    /// Timer `n`'s comparator gets the count plus `delta` (as an OS
    /// programs it), in one 8-byte or one low 4-byte write.
    Program { n: usize, delta: u64, size: u8 },
    /// The VM clock moves on.
    Wait(Nanos),
    /// The host timer fires now, whatever it was armed for.
    Expire,
    /// The host timer fires when it was armed for (the clock jumps there).
    Due,
}

/// What an op returned, to compare two runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Outcome {
    /// A read's value.
    read: Option<u64>,
    /// A write's or a callback's effects.
    fx: Option<Effects>,
}

fn offset() -> impl Strategy<Value = u64> {
    let timer_reg = (0..=TIMERS, prop::sample::select(vec![0u64, 4, 8, 0xc, 0x10, 0x14, 0x18]))
        .prop_map(|(n, r)| TIMER_BASE + TIMER_STRIDE * n as u64 + r);
    prop_oneof![
        4 => timer_reg,
        3 => prop::sample::select(vec![GEN_CONF, GINTR_STA, MAIN_CNT, MAIN_CNT + 4]),
        1 => prop::sample::select(vec![GCAP_ID, GCAP_ID + 4, GEN_CONF + 4, GINTR_STA + 4, 0x8]),
        1 => 0..0x410u64,
    ]
}

fn size() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(4u8), 3 => Just(8u8), 1 => 0..=9u8]
}

/// Tn_CONF values that mean something: mostly enabled, mostly edge and
/// I/O APIC, mostly allowed pins; now and then any bits at all.
fn conf() -> impl Strategy<Value = u64> {
    use prop::bool::weighted;
    let bit = |p: f64, b: u64| weighted(p).prop_map(move |on| if on { b } else { 0 });
    let bits = [
        bit(0.8, TN_INT_ENB),
        bit(0.3, TN_INT_TYPE_LEVEL),
        bit(0.5, TN_TYPE_PERIODIC),
        bit(0.5, TN_VAL_SET),
        bit(0.4, TN_32MODE),
        bit(0.2, TN_FSB_EN),
    ];
    prop_oneof![
        4 => (bits, 18..=24u64).prop_map(|(b, pin)| b.iter().fold(pin << 9, |a, b| a | b)),
        1 => any::<u64>(),
    ]
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => conf(),
        2 => 0..4u64,
        2 => (0..TIMERS).prop_map(|n| 1u64 << n),
        1 => 0..256u64,
        3 => 0..5_000u64,
        1 => 0xffff_f000..=0xffff_ffffu64,
        1 => any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (offset(), size(), value()).prop_map(|(off, size, value)| Op::Write { off, size, value }),
        3 => (offset(), size()).prop_map(|(off, size)| Op::Read { off, size }),
        4 => (0..TIMERS, 0..20_000u64, prop::sample::select(vec![4u8, 8]))
            .prop_map(|(n, delta, size)| Op::Program { n, delta, size }),
        3 => (0..TIMERS, conf())
            .prop_map(|(n, value)| Op::Write { off: timer_conf(n), size: 4, value }),
        2 => prop::sample::select(vec![CNF_ENABLE, CNF_ENABLE | CNF_LEG_RT, 0, CNF_LEG_RT])
            .prop_map(|value| Op::Write { off: GEN_CONF, size: 4, value }),
        4 => prop_oneof![
            4 => 0..200u64,
            4 => 0..40_000u64,
            1 => Just((1u64 << 32) * 10),
            1 => 0..(1u64 << 36),
        ]
        .prop_map(Op::Wait),
        2 => Just(Op::Expire),
        4 => Just(Op::Due),
    ]
}

/// A device and what the glue would know of it from its effects.
#[derive(Clone, Debug)]
struct Harness {
    h: Hpet,
    now: Nanos,
    /// The host timer, as the effects left it.
    armed: TimerAction,
    /// The lines each timer holds up, as the effects left them.
    lines: [Option<Irq>; TIMERS],
    /// Legacy replacement, as the effects left it.
    legacy: bool,
}

impl Harness {
    fn new() -> Self {
        Harness {
            h: Hpet::new(),
            now: 0,
            armed: TimerAction::Disarm,
            lines: [None; TIMERS],
            legacy: false,
        }
    }

    fn step(&mut self, op: Op) -> Result<Outcome, TestCaseError> {
        // Whether the call looked at the clock: then the host timer must be
        // armed for the future.
        let mut saw_now = matches!(op, Op::Expire | Op::Due | Op::Program { .. });
        let out = match op {
            Op::Write { off, size, value } => {
                let before = self.h;
                let fx = self.h.write(off, size, value, self.now);
                saw_now = self.h != before;
                self.apply(&fx)?;
                Outcome { fx: Some(fx), ..Outcome::default() }
            }
            Op::Program { n, delta, size } => {
                let value = self.h.counter(self.now).wrapping_add(delta);
                let fx = self.h.write(timer_comparator(n), size, value, self.now);
                self.apply(&fx)?;
                Outcome { fx: Some(fx), ..Outcome::default() }
            }
            Op::Read { off, size } => {
                let v = self.h.read(off, size, self.now);
                // A read shows the state the next callback will make.
                let mut later = self.h;
                let _ = later.timer_expired(self.now);
                prop_assert_eq!(later.read(off, size, self.now), v, "read {:#x}/{}", off, size);
                Outcome { read: Some(v), ..Outcome::default() }
            }
            Op::Wait(d) => {
                self.now = self.now.saturating_add(d);
                Outcome::default()
            }
            Op::Expire | Op::Due => {
                if let (Op::Due, TimerAction::Arm(t)) = (op, self.armed) {
                    self.now = self.now.max(t);
                }
                let fx = self.h.timer_expired(self.now);
                prop_assert!(fx.timer.is_some(), "a callback always says what to arm");
                self.apply(&fx)?;
                Outcome { fx: Some(fx), ..Outcome::default() }
            }
        };
        self.check(saw_now)?;
        Ok(out)
    }

    /// Follows `fx` as the glue would, checking that every line operation
    /// makes sense for the line's state.
    fn apply(&mut self, fx: &Effects) -> Result<(), TestCaseError> {
        for (n, op) in fx.irqs.iter().enumerate() {
            let Some(op) = *op else { continue };
            let (line, lop) = match op {
                Irq::Isa { irq, op } => (Irq::Isa { irq, op: LineOp::Assert }, op),
                Irq::Ioapic { pin, op } => (Irq::Ioapic { pin, op: LineOp::Assert }, op),
                Irq::Msi(_) => {
                    prop_assert!(self.lines[n].is_none(), "timer {} MSI while holding a line", n);
                    continue;
                }
            };
            match lop {
                LineOp::Assert => {
                    prop_assert!(self.lines[n].is_none(), "timer {} asserts twice", n);
                    self.lines[n] = Some(line);
                }
                LineOp::Deassert => {
                    prop_assert_eq!(
                        self.lines[n],
                        Some(line),
                        "timer {} lowers a line it lacks",
                        n
                    );
                    self.lines[n] = None;
                }
                LineOp::Pulse => {
                    prop_assert!(self.lines[n].is_none(), "timer {} pulses a held line", n);
                }
            }
            if let Irq::Isa { irq, .. } = line {
                prop_assert!(
                    (n, irq) == (0, LEGACY_IRQ_TIMER0) || (n, irq) == (1, LEGACY_IRQ_TIMER1),
                    "ISA IRQ {} from timer {}",
                    irq,
                    n
                );
            }
            if let Irq::Ioapic { pin, .. } = line {
                prop_assert!((20..=23).contains(&pin), "pin {} not in INT_ROUTE_CAP", pin);
            }
        }
        if let Some(t) = fx.timer {
            self.armed = t;
        }
        if let Some(l) = fx.legacy {
            prop_assert_ne!(l, self.legacy, "legacy reported without a change");
            self.legacy = l;
        }
        Ok(())
    }

    /// What the effects said agrees with the device, and the device's
    /// registers hold only what they can. `saw_now`: the last call worked
    /// out the matches up to now.
    fn check(&self, saw_now: bool) -> Result<(), TestCaseError> {
        let h = &self.h;
        prop_assert_eq!(self.armed, h.timer_action());
        if let (true, TimerAction::Arm(t)) = (saw_now, self.armed) {
            prop_assert!(t > self.now, "armed for {} at {}", t, self.now);
        }
        prop_assert_eq!(self.lines, h.asserted());
        prop_assert_eq!(self.legacy, h.legacy_replacement());
        let now = self.now;
        let config = h.read(GEN_CONF, 8, now);
        prop_assert_eq!(config & !CNF_WRITABLE, 0);
        prop_assert_eq!(config & CNF_LEG_RT != 0, self.legacy);
        prop_assert_eq!(h.read(GCAP_ID, 8, now), GCAP_ID_VALUE);
        let status = h.read(GINTR_STA, 8, now);
        prop_assert_eq!(status >> TIMERS, 0);
        for n in 0..TIMERS {
            let conf = h.read(timer_conf(n), 8, now);
            prop_assert_eq!(conf & !TN_WRITABLE, TN_CAPS, "timer {} capabilities", n);
            let route = (conf & TN_INT_ROUTE) >> 9;
            prop_assert!(route == 0 || pin_allowed(route), "route {}", route);
            if conf & TN_32MODE != 0 {
                prop_assert_eq!(h.read(timer_comparator(n) + 4, 4, now), 0);
            }
            // A raised line needs its status bit.
            if self.lines[n].is_some() {
                prop_assert!(status & (1 << n) != 0, "timer {} line up, status clear", n);
            }
        }
        // The counter: 64 bits in two halves, 100 MHz while enabled.
        let count = h.read(MAIN_CNT, 8, now);
        prop_assert_eq!(count, h.counter(now));
        prop_assert_eq!(h.read(MAIN_CNT, 4, now) | h.read(MAIN_CNT + 4, 4, now) << 32, count);
        let later = h.counter(now + 12_345 * 10);
        let ticks = if config & CNF_ENABLE != 0 { 12_345 } else { 0 };
        prop_assert_eq!(later, count.wrapping_add(ticks));
        Ok(())
    }
}

/// Runs `ops`; if `split` is given, snapshots there, restores into a fresh
/// device and runs the rest on both, comparing every outcome.
fn run(ops: &[Op], split: Option<usize>) -> Result<(), TestCaseError> {
    let mut a = Harness::new();
    let split = split.map(|s| s.min(ops.len()));
    let (head, tail) = ops.split_at(split.unwrap_or(ops.len()));
    for &op in head {
        a.step(op)?;
    }
    if split.is_none() {
        return Ok(());
    }
    let snap = a.h.snapshot();
    let mut b = Harness::new();
    b.now = a.now;
    let fx = b.h.restore(&snap, a.now).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(b.h, a.h);
    prop_assert_eq!(b.h.snapshot(), snap);
    prop_assert_eq!(fx.irqs, a.h.asserted(), "restore reports the raised lines");
    prop_assert_eq!(fx.timer, Some(a.h.timer_action()));
    prop_assert_eq!(fx.legacy, Some(a.h.legacy_replacement()));
    b.armed = a.armed;
    b.lines = fx.irqs;
    b.legacy = a.legacy;
    for &op in tail {
        let (x, y) = (a.step(op)?, b.step(op)?);
        prop_assert_eq!(x, y, "{:?}", op);
    }
    prop_assert_eq!(a.h, b.h);
    Ok(())
}

/// A snapshot field changed at random.
fn corrupt(mut s: Snapshot, field: usize, n: usize, v: u64) -> Snapshot {
    match field {
        0 => s.version = v as u32,
        1 => s.config = v,
        2 => s.status = v,
        3 => s.counter = v,
        4 => s.base_ns = v,
        5 => s.checked = v,
        6 => s.timer_conf[n] = v,
        7 => s.timer_comparator[n] = v,
        8 => s.timer_period[n] = v,
        _ => s.timer_fsb[n] = v,
    }
    s
}

proptest! {
    // 256 cases each (PROPTEST_CASES overrides). A failure prints the
    // shrunk op list; keep it as a plain test rather than let proptest
    // write seed files into the tree.
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// No panic, and every invariant after every op.
    #[test]
    fn ops_keep_invariants(ops in prop::collection::vec(op(), 0..MAX_OPS)) {
        run(&ops, None)?;
    }

    /// Snapshot at a random point, restore into a fresh device, run the
    /// rest on both: same outcomes, same final state.
    #[test]
    fn snapshot_restore_is_invisible(
        ops in prop::collection::vec(op(), 0..MAX_OPS),
        split in 0..=MAX_OPS,
    ) {
        run(&ops, Some(split))?;
    }

    /// A snapshot with one field changed is either refused, changing
    /// nothing, or taken as it is.
    #[test]
    fn restore_refuses_or_takes_exactly(
        ops in prop::collection::vec(op(), 0..32),
        field in 0..10usize,
        n in 0..TIMERS,
        v in prop_oneof![any::<u64>(), 0..64u64, Just(1u64)],
    ) {
        let mut a = Harness::new();
        for &op in &ops {
            a.step(op)?;
        }
        let snap = corrupt(a.h.snapshot(), field, n, v);
        let mut target = Harness::new();
        let _ = target.h.write(GEN_CONF, 4, CNF_ENABLE, 0);
        let before = target.h;
        match target.h.restore(&snap, a.now) {
            Ok(_) => prop_assert_eq!(target.h.snapshot(), snap),
            Err(e) => {
                prop_assert_eq!(target.h, before, "refused ({}) yet changed", e);
                if let ImportError::Version { found } = e {
                    prop_assert_eq!(found, snap.version);
                }
            }
        }
    }

    /// A periodic timer driven by callbacks that come early or late by
    /// random amounts: one interrupt per callback that passed a match, none
    /// for the others, and the comparator always on `first + k * period`,
    /// just ahead of the count.
    #[test]
    fn periodic_interrupts_keep_phase(
        period in 1..200_000u64,
        first in 1..200_000u64,
        mode32 in any::<bool>(),
        offsets in prop::collection::vec(-300_000..600_000i64, 1..40),
    ) {
        let mut h = Hpet::new();
        let mut conf = TN_INT_ENB | TN_TYPE_PERIODIC | TN_VAL_SET | 21 << 9;
        if mode32 {
            conf |= TN_32MODE;
        }
        let cmp = timer_comparator(2);
        let _ = h.write(timer_conf(2), 4, conf, 0);
        let _ = h.write(cmp, 8, first, 0);
        let _ = h.write(cmp, 8, period, 0);
        let fx = h.write(GEN_CONF, 4, CNF_ENABLE, 0);
        prop_assert_eq!(fx.timer, Some(TimerAction::Arm(first * 10)));
        let mut armed = first * 10;
        let mut now = 0;
        let mut seen = 0; // matches up to the last callback
        let pulse = Irq::Ioapic { pin: 21, op: LineOp::Pulse };
        for off in offsets {
            now = armed.saturating_add_signed(off).max(now);
            let fx = h.timer_expired(now);
            let count = now / 10;
            let matches = if count >= first { (count - first) / period + 1 } else { 0 };
            prop_assert_eq!(fx.irqs[2], (matches > seen).then_some(pulse), "at {}", now);
            seen = matches;
            let next = first + matches * period;
            let width = if mode32 { 0xffff_ffff } else { u64::MAX };
            prop_assert_eq!(h.read(cmp, 8, now), next & width);
            prop_assert_eq!(fx.timer, Some(TimerAction::Arm(next * 10)));
            armed = next * 10;
        }
    }
}

/// The generator reaches the states that matter: interrupts of every kind,
/// raised level lines, legacy routing, and snapshots that restore.
#[test]
fn random_runs_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), MAX_OPS);
    let (mut pulses, mut asserts, mut deasserts, mut msis, mut isa, mut legacy) =
        (0, 0, 0, 0, 0, 0);
    for _ in 0..300 {
        let ops = strategy.new_tree(&mut runner).expect("strategy").current();
        let mut a = Harness::new();
        for op in ops {
            if let Ok(Outcome { fx: Some(fx), .. }) = a.step(op) {
                for irq in fx.irqs.iter().flatten() {
                    match irq {
                        Irq::Msi(_) => msis += 1,
                        Irq::Isa { op, .. } | Irq::Ioapic { op, .. } => {
                            isa += usize::from(matches!(irq, Irq::Isa { .. }));
                            match op {
                                LineOp::Pulse => pulses += 1,
                                LineOp::Assert => asserts += 1,
                                LineOp::Deassert => deasserts += 1,
                            }
                        }
                    }
                }
                legacy += usize::from(fx.legacy == Some(true));
            }
        }
    }
    let counts = [pulses, asserts, deasserts, msis, isa, legacy];
    assert!(counts.iter().all(|&c| c >= 50), "pulse/assert/deassert/msi/isa/legacy: {counts:?}");
}
