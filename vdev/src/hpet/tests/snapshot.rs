// SPDX-License-Identifier: GPL-2.0

//! Snapshots: a round trip gives the same device, every field is checked,
//! and a refused snapshot changes nothing.

use super::super::super::common::ImportError;
use super::super::super::hpet::{Snapshot, SNAPSHOT_VERSION};
use super::*;

/// A device in a busy state at 20,000 ns (count 2,000): legacy routing, a
/// raised level line on IRQ 8, a periodic 32-bit timer (matches at 150 +
/// 300 k), an FSB timer due at 5,000.
fn busy() -> Hpet {
    let mut h = running();
    let _ = w4(&mut h, GEN_CONF, CNF_ENABLE | CNF_LEG_RT, 0);
    let _ = w4(&mut h, timer_conf(1), TN_INT_ENB | TN_INT_TYPE_LEVEL, 0);
    let _ = w8(&mut h, timer_comparator(1), 100, 0);
    let conf = TN_INT_ENB | TN_TYPE_PERIODIC | TN_VAL_SET | TN_32MODE | route(22);
    let _ = w4(&mut h, timer_conf(2), conf, 0);
    let _ = w4(&mut h, timer_comparator(2), 150, 0);
    let _ = w4(&mut h, timer_comparator(2), 300, 0);
    let _ = w8(&mut h, timer_fsb(3), 0xfee0_0000_0000_0041, 0);
    let _ = w4(&mut h, timer_conf(3), TN_INT_ENB | TN_FSB_EN, 0);
    let _ = w8(&mut h, timer_comparator(3), 5_000, 0);
    let _ = h.timer_expired(20_000);
    h
}

#[test]
fn round_trip_gives_the_same_device() {
    let h = busy();
    let snap = h.snapshot();
    assert_eq!(snap.version, SNAPSHOT_VERSION);
    let mut copy = Hpet::new();
    let fx = copy.restore(&snap, 20_000).expect("valid snapshot");
    assert_eq!(copy, h);
    assert_eq!(copy.snapshot(), snap);
    assert_eq!(
        fx,
        Effects { irqs: irq(1, isa(8, LineOp::Assert)), timer: arm(22_500), legacy: Some(true) },
        "absolute state: the raised line, the host timer, legacy routing"
    );
    // The same future: the periodic timer at 2,250 (150 + 7 * 300), then
    // every 300 ticks, and the FSB one at 5,000.
    let (mut a, mut b) = (h, copy);
    for now in [21_000, 22_500, 24_000, 40_000, 50_000, 50_001] {
        assert_eq!(a.timer_expired(now), b.timer_expired(now), "at {now}");
        assert_eq!(r8(&a, timer_comparator(2), now), r8(&b, timer_comparator(2), now));
    }
    assert_eq!(a, b);
}

#[test]
fn restore_later_keeps_the_counter_on_the_vm_clock() {
    let h = busy();
    let mut copy = Hpet::new();
    let _ = copy.restore(&h.snapshot(), 1_000_000).expect("valid snapshot");
    assert_eq!(copy.counter(1_000_000), 100_000);
    assert_eq!(copy.timer_action(), TimerAction::Arm(22_500), "overdue: fire at once");
    let fx = copy.timer_expired(1_000_000);
    let mut want = NO_IRQ;
    want[2] = Some(pin(22, LineOp::Pulse));
    want[3] = Some(Irq::Msi(Msi { addr: 0xfee0_0000, data: 0x41 }));
    assert_eq!(fx.irqs, want, "one interrupt each for everything missed");
}

type Corrupt = fn(&mut Snapshot);

/// (corruption, the field named in the refusal, at restore time 20,000).
const BAD: &[(Corrupt, &str)] = &[
    (|s| s.config = 1 << 2, "config"),
    (|s| s.config |= 1 << 63, "config"),
    (|s| s.status |= 1 << TIMERS, "status"),
    (|s| s.status |= 1 << 2, "status"),
    (|s| s.status |= 1 << 3, "status"),
    (|s| s.timer_conf[0] |= 1, "timer_conf"),
    (|s| s.timer_conf[0] |= TN_PER_INT_CAP, "timer_conf"),
    (|s| s.timer_conf[4] |= 1 << 32, "timer_conf"),
    (|s| s.timer_conf[4] |= route(19), "timer_conf"),
    (|s| s.timer_comparator[2] |= 1 << 32, "timer_comparator"),
    (|s| s.timer_period[2] = 1 << 40, "timer_period"),
    (|s| s.base_ns = 20_001, "base_ns"),
    (|s| s.checked = 2_001, "checked"),
    (|s| s.checked = u64::MAX, "checked"),
    (
        |s| {
            s.config = 0;
            s.base_ns = 5;
        },
        "base_ns",
    ),
    (
        |s| {
            s.config = 0;
            s.base_ns = 0;
            s.checked = s.counter + 1;
        },
        "checked",
    ),
];

#[test]
fn invalid_fields_are_refused_and_change_nothing() {
    let good = busy().snapshot();
    for &(corrupt, field) in BAD {
        let mut snap = good;
        corrupt(&mut snap);
        let mut target = running();
        let before = target;
        assert_eq!(target.restore(&snap, 20_000), Err(ImportError::Invalid { field }), "{snap:?}");
        assert_eq!(target, before, "{field}: refused, unchanged");
    }
    let mut snap = good;
    snap.version = 2;
    let mut target = Hpet::new();
    assert_eq!(target.restore(&snap, 20_000), Err(ImportError::Version { found: 2 }));
    assert_eq!(target, Hpet::new());
}

#[test]
fn edge_cases_that_are_valid() {
    let good = busy().snapshot();
    // (change, what it shows)
    let ok: &[(Corrupt, &str)] = &[
        (|s| s.checked = 2_000, "worked out up to the restore time"),
        (|s| s.timer_fsb[7] = u64::MAX, "any FSB route"),
        (
            |s| {
                s.timer_conf[5] = (TN_WRITABLE & !TN_INT_ROUTE) | route(23);
                s.timer_comparator[5] = 0xffff_ffff;
            },
            "every writable bit",
        ),
        (|s| s.timer_comparator[6] = u64::MAX, "a 64-bit comparator"),
        (
            |s| {
                s.config = CNF_LEG_RT;
                s.base_ns = 0;
                s.checked = s.counter;
            },
            "halted, status kept",
        ),
    ];
    for &(change, what) in ok {
        let mut snap = good;
        change(&mut snap);
        let mut h = Hpet::new();
        assert!(h.restore(&snap, 20_000).is_ok(), "{what}");
        assert_eq!(h.snapshot(), snap, "{what}");
    }
}
