// SPDX-License-Identifier: GPL-2.0

//! Snapshots: a restored PIT behaves like the saved one; a snapshot no
//! guest could have produced is refused field by field, and a refused
//! restore changes nothing.

use super::super::super::common::{ImportError, TimerAction};
use super::*;

extern crate std;

/// A PIT with something in every corner: counter 0 periodic with a new
/// count on its way, counter 1 in mode 3 with a latched status and count
/// and half a count written, counter 2 in mode 0 paused by its gate.
fn busy() -> Pit {
    let mut p = Pit::new();
    let _ = p.write(PORT_SYSTEM_B, 3, mid(W));
    let _ = start(&mut p, 0, 2, false, 1193, W);
    let _ = start(&mut p, 1, 3, true, 0x0999, W);
    let _ = start(&mut p, 2, 0, false, 1000, W);
    let _ = p.write(PORT_SYSTEM_B, 2, mid(W + 50));
    let _ = load(&mut p, 0, 500, W + 100);
    let _ = p.write(PORT_CONTROL, 0xe4, mid(W + 120));
    let _ = p.write(PORT_CONTROL, 0x40, mid(W + 120));
    let _ = p.write(port(1), 0x42, mid(W + 121));
    p
}

/// Every kind of access, at `mid(k)` for each `k`, as one log.
fn drive(p: &mut Pit, ks: &[u64]) -> std::vec::Vec<(u8, Effects)> {
    let mut log = std::vec::Vec::new();
    for &k in ks {
        let t = mid(k);
        for port in [0x40, 0x41, 0x42, 0x61] {
            log.push((p.read(port, t), Effects::NONE));
        }
        log.push((0, p.timer_expired(t)));
        log.push((0, p.write(0x41, 0x07, t)));
        log.push((0, p.write(0x61, (k % 4) as u8, t)));
        log.push((0, p.write(PORT_CONTROL, 0xce, t)));
    }
    log
}

#[test]
fn a_restored_pit_carries_on_identically() {
    let now = mid(W + 130);
    let mut a = busy();
    let snap = a.snapshot(now);
    let mut b = Pit::new();
    let got = b.restore(&snap, now).expect("a snapshot of a real device");
    assert_eq!(got, Effects { irq0: None, timer: Some(TimerAction::Arm(time_of(W + 1194))) });
    assert_eq!(b.snapshot(now), snap);
    let ks = [W + 130, W + 131, W + 1193, W + 1194, W + 1700, W + 5000, W + 90_000];
    assert_eq!(drive(&mut a, &ks), drive(&mut b, &ks));
    assert_eq!(a.snapshot(mid(W + 90_000)), b.snapshot(mid(W + 90_000)));
}

#[test]
fn snapshot_fields_say_what_they_hold() {
    let snap = busy().snapshot(mid(W + 130));
    let [c0, c1, c2] = snap.counters;
    assert_eq!((c0.control, c0.count_register, c0.count, c0.run), (0x34, 500, 1193, 1));
    assert_eq!((c0.run_value, c0.load_at, c0.null_count), (W + 1, W + 1194, 1));
    assert_eq!(snap.irq_next, W + 1194);
    assert_eq!((c1.control, c1.latched_status, c1.write_lsb), (0x37, 0x37 | 0x80, 0x42));
    // Mode 3, odd 999: 998 - 2 * 119 = 760, in BCD.
    assert_eq!(c1.latched_count, 0x0760);
    assert_eq!((c2.gate, c2.run, c2.run_value, c2.count), (0, 2, 49, 1000));
    assert_eq!((c2.paused_since, c0.load_cycle_end), (W + 50, 1));
    assert_eq!(snap.deadline, time_of(W + 1194));
    assert_eq!(snap.speaker, 1);
}

#[test]
fn invalid_snapshots_are_refused_and_change_nothing() {
    let now = mid(W + 130);
    let good = busy().snapshot(now);
    type Edit = fn(&mut Snapshot);
    let rows: &[(Edit, &str)] = &[
        (|s| s.counters[0].control = 0x40, "counter.control"),
        (|s| s.counters[0].control = 0x04, "counter.control"),
        (|s| s.counters[0].gate = 0, "counter.gate"),
        (|s| s.counters[2].gate = 2, "counter.gate"),
        (|s| s.counters[0].has_count = 2, "counter.has_count"),
        (|s| s.counters[1].write_lsb = 0x101, "counter.write_lsb"),
        (|s| s.counters[1].latched_count = 0x1_0001, "counter.latched_count"),
        (|s| s.counters[1].latched_status = 0x80, "counter.latched_status"),
        (|s| s.counters[0].run = 3, "counter.run"),
        (|s| s.counters[0].run = 2, "counter.run"),
        (|s| s.counters[0].run_value = W + 1000, "counter.run_value"),
        (|s| s.counters[0].count = 1, "counter.count"),
        (|s| s.counters[0].count = 0x1_0001, "counter.count"),
        (|s| s.counters[1].count = 10_001, "counter.count"),
        (|s| s.counters[1].phase = 7, "counter.phase"),
        (|s| s.counters[0].phase = 1, "counter.phase"),
        (|s| s.counters[0].load_at = W + 10, "counter.load_at"),
        (|s| s.counters[0].load_at = W + 5000, "counter.load_at"),
        (|s| s.counters[0].load_low_half = 1, "counter.load_low_half"),
        (|s| s.counters[2].gate = 1, "counter.gate"),
        (|s| s.counters[0].paused_since = 5, "counter.paused_since"),
        (|s| s.counters[2].paused_since = W + 1000, "counter.paused_since"),
        (|s| s.counters[2].run_value = W + 60, "counter.run_value"),
        (|s| s.counters[0].strobed = 1, "counter.strobed"),
        (|s| s.counters[0].load_cycle_end = 0, "counter.load_at"),
        (|s| s.counters[2].load_cycle_end = 1, "counter.load_cycle_end"),
        (|s| s.deadline = 0, "deadline"),
        (|s| s.deadline = time_of(W + 1193), "deadline"),
        (|s| s.speaker = 2, "speaker"),
        (|s| s.irq_next = W + 2000, "irq_next"),
    ];
    let mut p = Pit::new();
    let _ = start(&mut p, 0, 3, false, 77, W);
    let before = p;
    for &(edit, field) in rows {
        let mut bad = good;
        edit(&mut bad);
        assert_eq!(p.restore(&bad, now), Err(ImportError::Invalid { field }), "{field}");
        assert_eq!(p, before, "{field}: nothing changed");
    }
    let mut bad = good;
    bad.version = 2;
    assert_eq!(p.restore(&bad, now), Err(ImportError::Version { found: 2 }));
    assert_eq!(p.restore(&good, now - 1), Err(ImportError::Invalid { field: "taken_at" }));
    assert_eq!(p, before);
    // The untouched snapshot is fine, and so is restoring it later.
    assert!(p.restore(&good, now + 1_000_000).is_ok());
}
