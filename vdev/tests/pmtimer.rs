// SPDX-License-Identifier: GPL-2.0

//! Property tests of the ACPI PM timer: over random waits, reads, resets
//! and save/restore round trips (into a fresh timer), every read equals
//! `floor(elapsed * 3_579_545 / 10^9) mod 2^width` since the last reset,
//! exactly; and refused snapshots leave the timer as it was.

use proptest::prelude::*;
use vmm_vdev::pmtimer::{PmTimer, Snapshot, Width, PM_TIMER_HZ};
use vmm_vdev::{ImportError, Nanos, NANOS_PER_SEC};

#[derive(Clone, Debug)]
enum Op {
    Wait(u64),
    Read,
    Reset,
    SaveRestore,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop_oneof![0u64..1000, 0u64..NANOS_PER_SEC, 0u64..2_000 * NANOS_PER_SEC]
            .prop_map(Op::Wait),
        4 => Just(Op::Read),
        1 => Just(Op::Reset),
        2 => Just(Op::SaveRestore),
    ]
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::Bits24), Just(Width::Bits32)]
}

/// The value the ACPI rate gives `elapsed` ns after a reset.
fn expected(width: Width, elapsed: Nanos) -> u32 {
    let counts = u128::from(elapsed) * u128::from(PM_TIMER_HZ) / u128::from(NANOS_PER_SEC);
    (counts as u32) & width.mask()
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn reads_follow_the_acpi_rate_across_resets_and_restores(
        width in width(),
        start in 0u64..1 << 62,
        ops in prop::collection::vec(op(), 1..100),
    ) {
        let mut pm = PmTimer::new(width, start);
        let mut now = start;
        let mut zero = start;
        for op in ops {
            match op {
                Op::Wait(dt) => now = now.saturating_add(dt),
                Op::Read => prop_assert_eq!(pm.read(now), expected(width, now - zero)),
                Op::Reset => {
                    pm.reset(now);
                    zero = now;
                }
                Op::SaveRestore => {
                    let snap = pm.snapshot(now);
                    prop_assert!(snap.origin <= now && now - snap.origin < NANOS_PER_SEC / 5);
                    let mut fresh = PmTimer::new(width, 0);
                    prop_assert_eq!(fresh.restore(&snap, now), Ok(()));
                    prop_assert_eq!(fresh.snapshot(now), snap);
                    pm = fresh;
                }
            }
        }
        prop_assert_eq!(pm.read(now), expected(width, now - zero));
    }

    #[test]
    fn refused_snapshots_change_nothing(
        width in width(),
        snap in (any::<u32>(), any::<u8>(), any::<u64>(), any::<u32>())
            .prop_map(|(version, width, origin, count)| Snapshot { version, width, origin, count }),
        now in any::<u64>(),
    ) {
        let mut pm = PmTimer::new(width, 12_345);
        let before = pm;
        match pm.restore(&snap, now) {
            Ok(()) => {
                prop_assert_eq!(snap.width, width.bits());
                prop_assert!(snap.origin <= now && snap.count & !width.mask() == 0);
            }
            Err(e) => {
                if let ImportError::Version { found } = e {
                    prop_assert_eq!(found, snap.version);
                }
                prop_assert_eq!(pm, before);
            }
        }
    }
}
