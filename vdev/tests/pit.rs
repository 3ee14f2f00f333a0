// SPDX-License-Identifier: GPL-2.0

//! Property tests of the PIT: random sequences of port accesses, clock
//! advances and host-timer callbacks (early, on time, late) never panic
//! and keep the device's invariants; every reachable state snapshots and
//! restores; a snapshot restored into a fresh device behaves identically
//! from then on (once, at a random point, and at every step); and a
//! periodic counter 0 pulses IRQ 0 exactly when an edge has passed, with
//! deadlines that keep the programmed phase.

use proptest::prelude::*;
use vmm_vdev::pit::regs::{
    clock_at, time_of, PORT_CONTROL, PORT_COUNTER0, PORT_SYSTEM_B, STATUS_NULL_COUNT, STATUS_OUT,
    SYSB_OUT2,
};
use vmm_vdev::pit::{Effects, Pit, MIN_IRQ_INTERVAL};
use vmm_vdev::{LineOp, Nanos, TimerAction};

#[path = "pit/reference.rs"]
mod reference;
use reference::{compare_with_reference, ref_op};

#[derive(Clone, Debug)]
enum Op {
    /// The VM clock moves on.
    Wait(u64),
    Write(u16, u8),
    Read(u16),
    /// A host-timer callback now, whatever was armed (spurious or early).
    Timer,
    /// The armed host timer fires this late.
    Fire(u64),
    /// A control word and a count, as drivers write them.
    Program {
        ch: u8,
        mode: u8,
        access: u8,
        bcd: bool,
        count: u16,
    },
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        8 => 0x40u16..=0x43,
        3 => Just(PORT_SYSTEM_B),
        1 => any::<u16>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![0u64..2_000, 0u64..3_000_000, 0u64..300_000_000].prop_map(Op::Wait),
        5 => (port(), prop_oneof![any::<u8>(), 0u8..4]).prop_map(|(p, v)| Op::Write(p, v)),
        3 => port().prop_map(Op::Read),
        1 => Just(Op::Timer),
        3 => (0u64..2_000_000).prop_map(Op::Fire),
        3 => (0u8..3, 0u8..8, 1u8..4, any::<bool>(), prop_oneof![any::<u16>(), 0u16..40])
            .prop_map(|(ch, mode, access, bcd, count)| Op::Program { ch, mode, access, bcd, count }),
    ]
}

/// What a step showed the guest and the host.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Byte(u8),
    Fx(Effects),
}

/// Counts of interesting things, to show the generator reaches them.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    pulses: u32,
    arms: u32,
    out2_high: u32,
    null_count: u32,
}

/// One device and what the test knows about it.
#[derive(Clone, Copy, Debug)]
struct Rig {
    pit: Pit,
    now: Nanos,
    /// The host timer as the device last asked for it.
    armed: Option<Nanos>,
    /// Bits 5:0 of the last control word that programmed each counter.
    control: [u8; 3],
    /// Port 0x61 bits 1:0 as last written.
    port61: u8,
}

impl Rig {
    fn new() -> Rig {
        Rig { pit: Pit::new(), now: 1, armed: None, control: [0x30; 3], port61: 0 }
    }

    fn effects(&mut self, fx: Effects, stats: &mut Stats) -> Seen {
        if let Some(op) = fx.irq0 {
            assert_eq!(op, LineOp::Pulse, "IRQ 0 is only ever pulsed");
            stats.pulses += 1;
        }
        match fx.timer {
            Some(TimerAction::Arm(t)) => {
                self.armed = Some(t);
                stats.arms += 1;
            }
            Some(TimerAction::Disarm) => self.armed = None,
            None => {}
        }
        Seen::Fx(fx)
    }

    fn write(&mut self, port: u16, v: u8, stats: &mut Stats) -> Seen {
        if port == PORT_CONTROL && v >> 6 != 3 && (v >> 4) & 3 != 0 {
            if let Some(c) = self.control.get_mut(usize::from(v >> 6)) {
                *c = v & 0x3f;
            }
        }
        if port == PORT_SYSTEM_B {
            self.port61 = v & 3;
        }
        let fx = self.pit.write(port, v, self.now);
        self.effects(fx, stats)
    }

    fn step(&mut self, op: &Op, stats: &mut Stats) -> Vec<Seen> {
        match *op {
            Op::Wait(dt) => {
                self.now = self.now.saturating_add(dt);
                vec![]
            }
            Op::Write(port, v) => vec![self.write(port, v, stats)],
            Op::Read(port) => {
                let v = self.pit.read(port, self.now);
                if port == PORT_CONTROL {
                    assert_eq!(v, 0);
                }
                if port == PORT_SYSTEM_B {
                    assert_eq!(v & 0xcf, self.port61, "bits 0-1 as written, 2-3 and 6-7 zero");
                    if v & SYSB_OUT2 != 0 {
                        stats.out2_high += 1;
                    }
                }
                vec![Seen::Byte(v)]
            }
            Op::Timer => self.expire(stats),
            Op::Fire(late) => {
                if let Some(t) = self.armed {
                    self.now = self.now.max(t.saturating_add(late));
                }
                self.expire(stats)
            }
            Op::Program { ch, mode, access, bcd, count } => {
                let cw = ch << 6 | access << 4 | mode << 1 | u8::from(bcd);
                let port = PORT_COUNTER0 + u16::from(ch);
                let [lo, hi] = count.to_le_bytes();
                let mut seen = vec![self.write(PORT_CONTROL, cw, stats)];
                match access {
                    1 => seen.push(self.write(port, lo, stats)),
                    2 => seen.push(self.write(port, hi, stats)),
                    _ => {
                        seen.push(self.write(port, lo, stats));
                        seen.push(self.write(port, hi, stats));
                    }
                }
                seen
            }
        }
    }

    /// A callback; a second one at the same instant finds nothing due and
    /// changes nothing.
    fn expire(&mut self, stats: &mut Stats) -> Vec<Seen> {
        let fx = self.pit.timer_expired(self.now);
        match fx.timer {
            Some(TimerAction::Arm(t)) => assert!(t > self.now, "armed in the past: {fx:?}"),
            Some(TimerAction::Disarm) => {}
            None => panic!("a callback always says what to arm"),
        }
        let seen = self.effects(fx, stats);
        let before = self.pit;
        let again = self.pit.timer_expired(self.now);
        assert_eq!(again.irq0, None, "the same edge twice");
        assert_eq!(self.pit, before, "a callback with nothing due changed the device");
        vec![seen, self.effects(again, stats)]
    }

    /// Invariants visible from outside, checked on a copy.
    fn check(&self, stats: &mut Stats) {
        let mut probe = self.pit;
        let _ = probe.write(PORT_CONTROL, 0xee, self.now); // statuses of all three
        for ch in 0..3u8 {
            let status = probe.read(PORT_COUNTER0 + u16::from(ch), self.now);
            assert_eq!(status & 0x3f, self.control[usize::from(ch)], "counter {ch}: {status:#x}");
            if status & STATUS_NULL_COUNT != 0 {
                stats.null_count += 1;
            }
            let _ = status & STATUS_OUT;
        }
        // Every reachable state is a valid snapshot, and restores to itself.
        let snap = self.pit.snapshot(self.now);
        let mut fresh = Pit::new();
        let fx = fresh.restore(&snap, self.now).expect("a reachable state is importable");
        assert_eq!(fresh.snapshot(self.now), snap);
        assert!(fx.timer.is_some());
    }
}

/// How the run is checked beside the invariants.
#[derive(Clone, Copy, Debug)]
enum Twin {
    None,
    /// Snapshot before op `n` and restore into a fresh device; both run the rest.
    SplitAt(usize),
    /// A second device that is snapshotted and restored into itself
    /// before every op.
    EveryStep,
}

fn run(ops: &[Op], twin: Twin) -> Stats {
    let mut stats = Stats::default();
    let mut a = Rig::new();
    let mut b: Option<Rig> = match twin {
        Twin::EveryStep => Some(a),
        _ => None,
    };
    for (i, op) in ops.iter().enumerate() {
        if let Twin::SplitAt(n) = twin {
            if n == i {
                let snap = a.pit.snapshot(a.now);
                let mut fresh = Rig { pit: Pit::new(), ..a };
                let fx = fresh.pit.restore(&snap, a.now).expect("restore");
                fresh.armed = match fx.timer {
                    Some(TimerAction::Arm(t)) => Some(t),
                    _ => None,
                };
                b = Some(fresh);
            }
        }
        if let (Twin::EveryStep, Some(b)) = (twin, b.as_mut()) {
            let snap = b.pit.snapshot(b.now);
            let _ = b.pit.restore(&snap, b.now).expect("restore");
        }
        let seen = a.step(op, &mut stats);
        a.check(&mut stats);
        if let Some(b) = b.as_mut() {
            let mut ignored = Stats::default();
            assert_eq!(b.step(op, &mut ignored), seen, "op {i} {op:?}: the twin differs");
            assert_eq!(b.armed, a.armed);
        }
    }
    if let Some(b) = b {
        assert_eq!(b.pit.snapshot(b.now), a.pit.snapshot(a.now));
    }
    stats
}

/// Longest op sequence per case.
const MAX_OPS: usize = 80;

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// No panic, and the invariants after every op.
    #[test]
    fn ops_keep_invariants(ops in prop::collection::vec(op(), 1..MAX_OPS)) {
        run(&ops, Twin::None);
    }

    /// Snapshot at a random point, restore into a fresh device: the same
    /// bytes, effects and final state.
    #[test]
    fn snapshot_restore_is_invisible(
        ops in prop::collection::vec(op(), 1..MAX_OPS),
        split in 0..MAX_OPS,
    ) {
        run(&ops, Twin::SplitAt(split));
    }

    /// Restoring at every step (which also applies every count that has
    /// reached its counting element) changes nothing the guest or host
    /// sees.
    #[test]
    fn restoring_every_step_is_invisible(ops in prop::collection::vec(op(), 1..MAX_OPS)) {
        run(&ops, Twin::EveryStep);
    }

    /// Counts, statuses, OUT and port 0x61 match a clock-by-clock model of
    /// the datasheet at every step.
    #[test]
    fn matches_a_clock_by_clock_reference(ops in prop::collection::vec(ref_op(), 1..120)) {
        compare_with_reference(&ops);
    }

    /// Counter 0 in mode 2 or 3 with any count: a callback pulses exactly
    /// when an edge `W + 1 + j * n` (j >= 1) passed since the last one, and
    /// then asks for the next edge of that sequence (no sooner than
    /// MIN_IRQ_INTERVAL); a callback with nothing due keeps the deadline.
    #[test]
    fn periodic_deadlines_keep_their_phase(
        n in prop_oneof![2u64..40, 2u64..=65_535],
        mode in prop_oneof![Just(2u8), Just(3u8)],
        calls in prop::collection::vec((any::<bool>(), 0u64..4_000_000), 1..80),
    ) {
        const W: u64 = 1_000_000;
        let mut p = Pit::new();
        let t = time_of(W) + 400;
        let _ = p.write(PORT_CONTROL, 0x30 | mode << 1, t);
        let _ = p.write(PORT_COUNTER0, (n & 0xff) as u8, t);
        let fx = p.write(PORT_COUNTER0, (n >> 8) as u8, t);
        let load = W + 1;
        prop_assert_eq!(fx.timer, Some(TimerAction::Arm(time_of(load + n))));
        // Edges passed by clock k.
        let edges = |k: u64| k.saturating_sub(load) / n;
        let mut last = clock_at(t);
        let mut armed = time_of(load + n);
        let mut now = t;
        for (early, d) in calls {
            // The clock never goes back; an early callback comes up to
            // 3 µs before the deadline.
            now = now.max(if early { armed.saturating_sub(d % 3000) } else { armed + d });
            let k = clock_at(now);
            let fx = p.timer_expired(now);
            let pulsed = edges(k) > edges(last);
            prop_assert_eq!(fx.irq0.is_some(), pulsed, "at clock {}", k);
            let next = time_of(load + (edges(k) + 1) * n);
            // Early or repeated callbacks keep the deadline, which is
            // never before the next edge.
            let want = if pulsed { next.max(now + MIN_IRQ_INTERVAL) } else { armed };
            prop_assert!(want >= next);
            prop_assert_eq!(fx.timer, Some(TimerAction::Arm(want)));
            last = last.max(k);
            armed = want;
        }
    }
}

/// The generator is not degenerate: over fixed random cases, IRQ 0
/// pulses, the host timer is armed, counter 2's OUT is seen high, and
/// counts are seen in flight (null count).
#[test]
fn random_runs_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let input = prop::collection::vec(op(), 1..MAX_OPS);
    let mut total = Stats::default();
    for _ in 0..256 {
        let ops = input.new_tree(&mut runner).expect("a case").current();
        let s = run(&ops, Twin::None);
        total.pulses += s.pulses;
        total.arms += s.arms;
        total.out2_high += s.out2_high;
        total.null_count += s.null_count;
    }
    eprintln!("{total:?}");
    assert!(total.pulses > 50, "{total:?}");
    assert!(total.arms > 50, "{total:?}");
    assert!(total.out2_high > 20, "{total:?}");
    assert!(total.null_count > 50, "{total:?}");
}
