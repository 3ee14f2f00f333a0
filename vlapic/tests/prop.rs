// SPDX-License-Identifier: GPL-2.0

//! Property tests of the vlapic model. Random sequences of guest, device
//! and host operations (`common/ops.rs`) on 2-5 vCPUs in mixed modes must
//! never panic, must keep the invariants `Machine::step` and
//! `Machine::check` assert after every op, and must behave identically
//! after every vCPU is snapshotted and restored into a second machine at a
//! random point. The cargo-fuzz target in `fuzz/` runs the same
//! interpreter.

#[path = "common/ops/mod.rs"]
pub mod ops;

use ops::strategy;
use proptest::prelude::*;
use vmm_vlapic::{Config, Mode, Origin, TimerAction, Vlapic};

/// Longest op sequence per case.
const MAX_OPS: usize = 64;

proptest! {
    // 256 cases each (PROPTEST_CASES overrides). A failure prints the
    // shrunk setup and op list; save it below as a plain test rather than
    // have proptest write seed files into the tree.
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (a) and (b): no panic, and every invariant after every op.
    #[test]
    fn ops_keep_invariants(setup in strategy::setup(), ops in strategy::ops(MAX_OPS)) {
        ops::run(&setup, &ops, None);
    }

    /// (c): snapshot every vCPU at a random point, restore into a second
    /// machine, and run the rest on both: same results, same effects, same
    /// final snapshots.
    #[test]
    fn snapshot_restore_is_invisible(
        setup in strategy::setup(),
        ops in strategy::ops(MAX_OPS),
        split in 0..=MAX_OPS,
    ) {
        ops::run(&setup, &ops, Some(split));
    }
}

/// The generator is not degenerate: over a fixed set of random cases,
/// interrupts are accepted and ended, IPIs and MSIs delivered, timers fire,
/// modes change, INIT/SIPI apply, and some vCPUs run in x2APIC mode.
#[test]
fn random_runs_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let input = (strategy::setup(), strategy::ops(MAX_OPS));
    let mut total = ops::Stats::default();
    for _ in 0..128 {
        let (setup, ops) = input.new_tree(&mut runner).expect("a case").current();
        let s = ops::run(&setup, &ops, None);
        total.accepted += s.accepted;
        total.eois += s.eois;
        total.eoi_broadcasts += s.eoi_broadcasts;
        total.delivered += s.delivered;
        total.timer_fires += s.timer_fires;
        total.mode_changes += s.mode_changes;
        total.resets += s.resets;
        total.x2apic += s.x2apic;
    }
    eprintln!("{total:?}");
    let ops::Stats {
        accepted,
        eois,
        eoi_broadcasts,
        delivered,
        timer_fires,
        mode_changes,
        resets,
        x2apic,
    } = total;
    for (what, n) in [
        ("accepted", accepted),
        ("eois", eois),
        ("eoi_broadcasts", eoi_broadcasts),
        ("delivered", delivered),
        ("timer_fires", timer_fires),
        ("mode_changes", mode_changes),
        ("resets", resets),
        ("x2apic", x2apic),
    ] {
        assert!(n >= 5, "only {n} {what} in 128 random runs: {total:?}");
    }
}

// Found by proptest (`ops_keep_invariants`): a periodic timer serviced at
// guest TSC `u64::MAX` re-armed at `max(natural, now + min_period)`, which
// saturated to `now` again. It was due for ever (each `timer_expired` fired
// and returned `Arm(now)`), and its snapshot held `timer_next == taken_at`,
// which `restore` refuses. `Timer::expire` now stops a periodic count that
// has no later expiry, as a one-shot's stops.
#[test]
fn periodic_timer_at_tsc_max() {
    let cfg = Config::DEFAULT;
    let now = u64::MAX;
    let mut apic = Vlapic::new(cfg, 0, 0, true).expect("valid config");
    let base = apic.mmio_base().expect("xAPIC");
    let _ = apic.mmio_write(base + 0xf0, 4, 0x1ff, now).expect("SVR");
    let _ = apic.mmio_write(base + 0x320, 4, 0x2_00ec, now).expect("LVT timer");
    let fx = apic.mmio_write(base + 0x380, 4, 1, now).expect("initial count");
    assert_eq!(fx.timer, Some(TimerAction::Arm(now)));
    let fx = apic.timer_expired(now);
    assert!(fx.wake, "the expiry fires");
    assert_ne!(fx.timer, Some(TimerAction::Arm(now)), "still due after being serviced");
    let (snap, _) = apic.snapshot(now);
    let (_restored, _) = Vlapic::restore(cfg, &snap).expect("a snapshot restores");
}

// Found by proptest (`ops_keep_invariants`, the check that the host timer
// the effects armed is the one the model holds): a host `set_apic_base`
// from x2APIC back to xAPIC reset the registers, the timer included, but
// did not report `TimerAction::Disarm`, so the integration layer would have
// kept a stale host timer. Every reset in `set_apic_base` now reports it.
#[test]
fn host_x2apic_to_xapic_disarms_timer() {
    let now = 0;
    let mut apic = Vlapic::new(Config::DEFAULT, 0, 0, true).expect("valid config");
    let base = apic.mmio_base().expect("xAPIC");
    let _ = apic.mmio_write(base + 0xf0, 4, 0x1ff, now).expect("SVR");
    let _ = apic.mmio_write(base + 0x320, 4, 0xec, now).expect("LVT timer");
    let fx = apic.set_apic_base(0xfee0_0d00, Origin::Host).expect("to x2APIC");
    assert_eq!(fx.mode.map(|m| m.to), Some(Mode::X2Apic));
    let fx = apic.wrmsr(0x838, 1, now).expect("initial count");
    assert_eq!(fx.timer, Some(TimerAction::Arm(4)));
    let fx = apic.set_apic_base(0xfee0_0900, Origin::Host).expect("back to xAPIC");
    assert_eq!(fx.mode.map(|m| m.to), Some(Mode::XApic));
    let (snap, _) = apic.snapshot(now);
    assert_eq!(snap.timer_next, 0, "the reset stopped the timer");
    assert_eq!(fx.timer, Some(TimerAction::Disarm), "so the effects must disarm the host timer");
}
