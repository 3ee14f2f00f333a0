// SPDX-License-Identifier: GPL-2.0

//! Property tests of the PIC pair: random sequences of port accesses,
//! line operations, acknowledges and resets never panic, keep the
//! device's invariants, report every INTR change exactly once, and a
//! snapshot restored into a fresh device behaves identically from then on.

use proptest::prelude::*;
use vmm_vdev::pic::regs::{
    ELCR_MASTER, ELCR_MASTER_MASK, ELCR_SLAVE, ELCR_SLAVE_MASK, MASTER_CMD, MASTER_DATA, PORTS,
    SLAVE_CMD, SLAVE_DATA, UNCLAIMED_READ,
};
use vmm_vdev::pic::{ChipSnapshot, Effects, Pic, Snapshot};
use vmm_vdev::LineOp;

#[derive(Clone, Debug)]
enum Op {
    Write(u16, u8),
    Read(u16),
    Irq(u8, LineOp),
    Intack,
    Reset,
    /// A whole ICW sequence on one chip (so that chips spend most of their
    /// time initialised), then its IMR.
    Init {
        slave: bool,
        icw1: u8,
        icw2: u8,
        icw4: u8,
        imr: u8,
    },
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        8 => proptest::sample::select(PORTS.to_vec()),
        1 => any::<u16>(),
    ]
}

/// Mostly OCW2/OCW3 on command ports: an ICW1 half the time would keep
/// the chips uninitialised.
fn value(port: u16) -> BoxedStrategy<u8> {
    if port == MASTER_CMD || port == SLAVE_CMD {
        prop_oneof![9 => any::<u8>().prop_map(|v| v & !0x10), 1 => any::<u8>()].boxed()
    } else {
        any::<u8>().boxed()
    }
}

fn op() -> impl Strategy<Value = Op> {
    let line = prop_oneof![Just(LineOp::Assert), Just(LineOp::Deassert), Just(LineOp::Pulse)];
    prop_oneof![
        6 => port().prop_flat_map(|p| value(p).prop_map(move |v| Op::Write(p, v))),
        3 => port().prop_map(Op::Read),
        6 => (0u8..20, line).prop_map(|(irq, op)| Op::Irq(irq, op)),
        3 => Just(Op::Intack),
        1 => Just(Op::Reset),
        2 => (
            any::<bool>(),
            prop_oneof![Just(0x11u8), Just(0x13), Just(0x10), Just(0x12), any::<u8>()],
            any::<u8>(),
            prop_oneof![Just(0x01u8), Just(0x03), Just(0x11), any::<u8>()],
            any::<u8>(),
        )
            .prop_map(|(slave, icw1, icw2, icw4, imr)| Op::Init {
                slave,
                icw1: icw1 | 0x10,
                icw2,
                icw4,
                imr
            }),
    ]
}

/// What one operation returned, for comparing two devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Value(u8, Effects),
    Fx(Effects),
}

fn apply(pic: &mut Pic, op: &Op) -> Out {
    match *op {
        Op::Write(port, v) => Out::Fx(pic.write(port, v)),
        Op::Read(port) => {
            let (v, fx) = pic.read(port);
            Out::Value(v, fx)
        }
        Op::Irq(irq, line) => Out::Fx(pic.set_irq(irq, line)),
        Op::Intack => {
            let (v, fx) = pic.intack();
            Out::Value(v, fx)
        }
        Op::Reset => Out::Fx(pic.reset()),
        Op::Init { slave, icw1, icw2, icw4, imr } => {
            let (cmd, data) =
                if slave { (SLAVE_CMD, SLAVE_DATA) } else { (MASTER_CMD, MASTER_DATA) };
            // Each write's effect is checked here; the op reports the net change.
            let start = pic.intr();
            let mut level = start;
            let writes = [(cmd, icw1), (data, icw2), (data, if slave { 2 } else { 4 })];
            for (port, v) in writes.into_iter().chain([(data, icw4), (data, imr)]) {
                if let Some(l) = pic.write(port, v).intr {
                    assert_ne!(l, level, "an effect without a change");
                    level = l;
                }
                assert_eq!(pic.intr(), level, "an INTR change not reported");
            }
            Out::Fx(Effects { intr: (level != start).then_some(level) })
        }
    }
}

fn chip_ok(c: &ChipSnapshot, mask: u8) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.elcr & !mask, 0, "ELCR outside its mask");
    prop_assert_eq!((c.irr ^ c.lines) & c.elcr, 0, "level request is not its line");
    prop_assert!(c.lowest_priority <= 7);
    prop_assert_eq!(c.vector_base & 7, 0);
    prop_assert!(c.init <= 4);
    prop_assert_eq!(c.icw1 & !3, 0);
    for f in [c.read_isr, c.poll, c.special_mask, c.auto_eoi, c.rotate_on_aeoi, c.sfnm] {
        prop_assert!(f <= 1);
    }
    if c.init == 0 {
        prop_assert_eq!((c.isr, c.vector_base, c.icw1), (0, 0, 0), "reset state");
    }
    if c.icw1 & 1 == 0 {
        prop_assert_eq!((c.auto_eoi, c.sfnm), (0, 0), "ICW4 functions without IC4");
    }
    Ok(())
}

fn invariants(pic: &Pic) -> Result<Snapshot, TestCaseError> {
    let s = pic.snapshot();
    chip_ok(&s.master, ELCR_MASTER_MASK)?;
    chip_ok(&s.slave, ELCR_SLAVE_MASK)?;
    // A fresh device accepts the snapshot and reads it back unchanged.
    let mut copy = Pic::new();
    let fx = copy.restore(&s);
    prop_assert_eq!(fx, Ok(Effects { intr: Some(pic.intr()) }));
    prop_assert_eq!(copy.snapshot(), s);
    Ok(s)
}

/// Runs `ops`, checking after each one; returns the outputs.
fn run_checked(pic: &mut Pic, ops: &[Op]) -> Result<Vec<Out>, TestCaseError> {
    let mut level = pic.intr();
    let mut outs = Vec::with_capacity(ops.len());
    for op in ops {
        let before = pic.snapshot();
        let was_intr = pic.intr();
        let out = apply(pic, op);
        let fx = match out {
            Out::Value(_, fx) | Out::Fx(fx) => fx,
        };
        if let Some(l) = fx.intr {
            prop_assert_ne!(l, level, "an effect without a change: {:?}", op);
            level = l;
        }
        prop_assert_eq!(pic.intr(), level, "an INTR change not reported: {:?}", op);
        let after = invariants(pic)?;
        match (op, out) {
            (Op::Intack, Out::Value(v, _)) if !was_intr => {
                prop_assert_eq!(v, before.master.vector_base | 7, "spurious IR7");
                prop_assert_eq!(after, before, "a spurious acknowledge changes nothing");
            }
            (Op::Read(p), Out::Value(v, _)) => {
                let (m, s) = (&before.master, &before.slave);
                let plain = |c: &ChipSnapshot, cmd: bool| match (cmd, c.read_isr) {
                    (false, _) => c.imr,
                    (true, 1) => c.isr,
                    (true, _) => c.irr,
                };
                let want = match *p {
                    MASTER_CMD | MASTER_DATA if m.poll == 1 => None,
                    SLAVE_CMD | SLAVE_DATA if s.poll == 1 => None,
                    MASTER_CMD => Some(plain(m, true)),
                    MASTER_DATA => Some(plain(m, false)),
                    SLAVE_CMD => Some(plain(s, true)),
                    SLAVE_DATA => Some(plain(s, false)),
                    ELCR_MASTER => Some(m.elcr),
                    ELCR_SLAVE => Some(s.elcr),
                    _ => Some(UNCLAIMED_READ),
                };
                match want {
                    Some(w) => {
                        prop_assert_eq!(v, w, "read {:#x}", p);
                        prop_assert_eq!(after, before, "a plain read changes nothing");
                    }
                    None => prop_assert!(v == 0 || v & 0xf8 == 0x80, "poll word {:#x}", v),
                }
            }
            _ => {}
        }
        outs.push(out);
    }
    Ok(outs)
}

/// Overwrites field `which` (0-29) of `s` with `v`.
fn set_field(s: &mut Snapshot, which: u8, v: u8) {
    let c = if which < 15 { &mut s.master } else { &mut s.slave };
    let f = match which % 15 {
        0 => &mut c.irr,
        1 => &mut c.isr,
        2 => &mut c.imr,
        3 => &mut c.lines,
        4 => &mut c.elcr,
        5 => &mut c.lowest_priority,
        6 => &mut c.vector_base,
        7 => &mut c.init,
        8 => &mut c.icw1,
        9 => &mut c.read_isr,
        10 => &mut c.poll,
        11 => &mut c.special_mask,
        12 => &mut c.auto_eoi,
        13 => &mut c.rotate_on_aeoi,
        _ => &mut c.sfnm,
    };
    *f = v;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_keep_invariants(ops in proptest::collection::vec(op(), 0..200)) {
        let mut pic = Pic::new();
        run_checked(&mut pic, &ops)?;
    }

    #[test]
    fn restored_device_behaves_identically(
        prefix in proptest::collection::vec(op(), 0..120),
        suffix in proptest::collection::vec(op(), 0..120),
    ) {
        let mut a = Pic::new();
        run_checked(&mut a, &prefix)?;
        let mut b = Pic::new();
        let _ = b.set_irq(5, LineOp::Assert);
        prop_assert_eq!(b.restore(&a.snapshot()), Ok(Effects { intr: Some(a.intr()) }));
        let out_a = run_checked(&mut a, &suffix)?;
        let out_b = run_checked(&mut b, &suffix)?;
        prop_assert_eq!(out_a, out_b);
        prop_assert_eq!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn edited_snapshots_are_checked(
        prefix in proptest::collection::vec(op(), 0..80),
        edits in proptest::collection::vec((0u8..30, any::<u8>()), 1..4),
        suffix in proptest::collection::vec(op(), 0..40),
    ) {
        let mut a = Pic::new();
        run_checked(&mut a, &prefix)?;
        let mut snap = a.snapshot();
        for (which, v) in edits {
            set_field(&mut snap, which, v);
        }
        let mut b = Pic::new();
        let _ = b.write(MASTER_CMD, 0x11);
        let before = b.snapshot();
        match b.restore(&snap) {
            Err(_) => prop_assert_eq!(b.snapshot(), before, "refused, unchanged"),
            Ok(fx) => {
                prop_assert_eq!(fx, Effects { intr: Some(b.intr()) });
                prop_assert_eq!(invariants(&b)?, snap);
                run_checked(&mut b, &suffix)?;
            }
        }
    }
}
