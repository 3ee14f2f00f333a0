// SPDX-License-Identifier: GPL-2.0

//! Property tests of the I/O APIC. Random sequences of guest accesses
//! (any offset, any size, any value, and well-formed register writes),
//! line changes and EOIs must never panic, must keep the model's
//! invariants, must give exactly what a plain reference model written
//! here from the 82093AA datasheet (and the module's documented choices)
//! gives, and must behave identically after a snapshot is restored into a
//! fresh device at a random point.

use proptest::prelude::*;
use vmm_vdev::ioapic::{Effects, Ioapic, Snapshot, PINS, SNAPSHOT_VERSION};
use vmm_vdev::{ImportError, LineOp, Msi};

/// Longest op sequence per case.
const MAX_OPS: usize = 80;

// Datasheet encodings, written out again for the reference model.
const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const REMOTE_IRR: u64 = 1 << 14;
/// Vector, delivery mode, destination mode, polarity, trigger, mask,
/// extended destination, destination.
const WRITABLE: u64 = 0xffff_0000_0001_afff;

#[derive(Clone, Copy, Debug)]
enum Op {
    Pin(u8, LineOp),
    Eoi(u8),
    /// Any MMIO write.
    Write(u64, u8, u64),
    /// Any MMIO read.
    Read(u64, u8),
    /// A 32-bit IOREGSEL write, then a 32-bit IOWIN write.
    Reg(u8, u32),
    Reset,
}

/// What an op returned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Sent(Vec<(u8, Msi)>),
    Value(u64),
}

/// The reference: registers as plain integers, behaviour spelled out.
#[derive(Clone, Debug, Default)]
struct Model {
    id: u8,
    sel: u8,
    rte: [u64; PINS],
    lines: u32,
}

impl Model {
    fn new() -> Model {
        Model { rte: [MASKED; PINS], ..Model::default() }
    }

    fn msi(rte: u64) -> Msi {
        let addr = 0xfee0_0000 | (rte >> 56) << 12 | (rte >> 48 & 0xff) << 4 | (rte >> 11 & 1) << 2;
        let data = (rte & 0x7ff) as u32 | 1 << 14 | ((rte & LEVEL) as u32);
        Msi { addr, data }
    }

    fn line(&self, pin: usize) -> bool {
        self.lines >> pin & 1 == 1
    }

    /// The level rule: asserted, unmasked, level, remote IRR clear: send.
    fn level_check(&mut self, pin: usize, out: &mut Vec<(u8, Msi)>) {
        let e = self.rte[pin];
        if e & LEVEL != 0 && e & MASKED == 0 && e & REMOTE_IRR == 0 && self.line(pin) {
            self.rte[pin] |= REMOTE_IRR;
            out.push((pin as u8, Model::msi(e)));
        }
    }

    fn set_pin(&mut self, pin: u8, op: LineOp) -> Vec<(u8, Msi)> {
        let mut out = Vec::new();
        let p = usize::from(pin);
        if p >= PINS {
            return out;
        }
        if matches!(op, LineOp::Assert | LineOp::Pulse) {
            let rising = !self.line(p);
            self.lines |= 1 << p;
            let e = self.rte[p];
            if e & LEVEL != 0 {
                self.level_check(p, &mut out);
            } else if rising && e & MASKED == 0 {
                out.push((pin, Model::msi(e)));
            }
        }
        if matches!(op, LineOp::Deassert | LineOp::Pulse) {
            self.lines &= !(1 << p);
        }
        out
    }

    fn eoi(&mut self, vector: u8) -> Vec<(u8, Msi)> {
        let mut out = Vec::new();
        for p in 0..PINS {
            let e = self.rte[p];
            if e & LEVEL != 0 && e & REMOTE_IRR != 0 && e as u8 == vector {
                self.rte[p] &= !REMOTE_IRR;
                self.level_check(p, &mut out);
            }
        }
        out
    }

    fn read_reg(&self, index: u8) -> u32 {
        match index {
            0x00 | 0x02 => u32::from(self.id) << 24,
            0x01 => 0x0017_0011,
            0x10..=0x3f => {
                let e = self.rte[usize::from((index - 0x10) / 2)];
                if index % 2 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_reg(&mut self, index: u8, value: u32) -> Vec<(u8, Msi)> {
        let mut out = Vec::new();
        match index {
            0x00 => self.id = (value >> 24 & 0xf) as u8,
            0x10..=0x3f => {
                let p = usize::from((index - 0x10) / 2);
                let old = self.rte[p];
                let new = if index % 2 == 0 {
                    old & !0xffff_ffff | u64::from(value)
                } else {
                    old & 0xffff_ffff | u64::from(value) << 32
                };
                let mut new = new & WRITABLE | old & REMOTE_IRR;
                if new & LEVEL == 0 {
                    new &= !REMOTE_IRR;
                }
                self.rte[p] = new;
                self.level_check(p, &mut out);
            }
            _ => {}
        }
        out
    }

    /// The byte at page offset `at`.
    fn byte(&self, at: u64) -> u8 {
        match at {
            0x00 => self.sel,
            0x10..=0x13 => (self.read_reg(self.sel) >> (8 * (at - 0x10))) as u8,
            _ => 0,
        }
    }

    fn read(&self, offset: u64, size: u8) -> u64 {
        if ![1, 2, 4, 8].contains(&size) {
            return 0;
        }
        (0..u64::from(size))
            .filter_map(|i| offset.checked_add(i).map(|at| u64::from(self.byte(at)) << (8 * i)))
            .fold(0, |v, b| v | b)
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) -> Vec<(u8, Msi)> {
        if ![1, 2, 4, 8].contains(&size) {
            return Vec::new();
        }
        let mut win = self.read_reg(self.sel).to_le_bytes();
        let mut win_hit = false;
        for i in 0..u64::from(size) {
            let byte = (value >> (8 * i)) as u8;
            match offset.checked_add(i) {
                Some(0x00) => self.sel = byte,
                Some(at @ 0x10..=0x13) => {
                    win[(at - 0x10) as usize] = byte;
                    win_hit = true;
                }
                _ => {}
            }
        }
        if win_hit {
            self.write_reg(self.sel, u32::from_le_bytes(win))
        } else {
            Vec::new()
        }
    }

    fn apply(&mut self, op: Op) -> Out {
        match op {
            Op::Pin(pin, line) => Out::Sent(self.set_pin(pin, line)),
            Op::Eoi(v) => Out::Sent(self.eoi(v)),
            Op::Write(o, s, v) => Out::Sent(self.write(o, s, v)),
            Op::Read(o, s) => Out::Value(self.read(o, s)),
            Op::Reg(i, v) => {
                self.sel = i;
                Out::Sent(self.write_reg(i, v))
            }
            Op::Reset => {
                *self = Model { lines: self.lines, ..Model::new() };
                Out::Sent(Vec::new())
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            id: self.id,
            ioregsel: self.sel,
            rte: self.rte,
            lines: self.lines,
        }
    }
}

fn sent(fx: Effects) -> Out {
    let list: Vec<(u8, Msi)> = fx.iter().collect();
    assert_eq!(list.len(), fx.len());
    assert_eq!(fx.pins() >> PINS, 0);
    Out::Sent(list)
}

/// Applies `op` to the device, checking what holds after any op.
fn apply(io: &mut Ioapic, op: Op) -> Out {
    let out = match op {
        Op::Pin(pin, line) => sent(io.set_pin(pin, line)),
        Op::Eoi(v) => sent(io.eoi(v)),
        Op::Write(o, s, v) => sent(io.write(o, s, v)),
        Op::Read(o, s) => {
            let v = io.read(o, s);
            // A wide read is its bytes read one at a time.
            if [1, 2, 4, 8].contains(&s) {
                let bytes = (0..u64::from(s))
                    .filter_map(|i| o.checked_add(i).map(|at| io.read(at, 1) << (8 * i)))
                    .fold(0, |a, b| a | b);
                assert_eq!(v, bytes, "read {s} at {o:#x}");
            }
            Out::Value(v)
        }
        Op::Reg(i, v) => {
            assert!(io.write(0x00, 4, u64::from(i)).is_empty());
            sent(io.write(0x10, 4, u64::from(v)))
        }
        Op::Reset => {
            io.reset();
            Out::Sent(Vec::new())
        }
    };
    assert!(io.invariants_hold(), "after {op:?}");
    out
}

/// Without disturbing IOREGSEL, the version register reads 0x0017_0011.
fn check_version(io: &Ioapic) {
    assert_eq!(io.read_reg(0x01), 0x0017_0011);
}

mod strategy {
    use super::*;

    /// Vectors that collide often, and any.
    pub fn vector() -> impl Strategy<Value = u8> {
        prop_oneof![4 => 0x30u8..0x34, 1 => any::<u8>()]
    }

    pub fn pin() -> impl Strategy<Value = u8> {
        prop_oneof![6 => 0u8..4, 3 => 0u8..24, 1 => any::<u8>()]
    }

    fn line_op() -> impl Strategy<Value = LineOp> {
        prop_oneof![Just(LineOp::Assert), Just(LineOp::Deassert), Just(LineOp::Pulse)]
    }

    fn offset() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => Just(0x10u64),
            2 => Just(0x00u64),
            3 => 0u64..0x18,
            1 => 0u64..0x1010,
            1 => any::<u64>(),
        ]
    }

    fn size() -> impl Strategy<Value = u8> {
        prop_oneof![6 => Just(4u8), 2 => Just(1u8), 2 => Just(2u8), 2 => Just(8u8), 1 => any::<u8>()]
    }

    /// Register indices, mostly those of pins 0-3, mostly low halves.
    fn index() -> impl Strategy<Value = u8> {
        prop_oneof![
            8 => (0u8..4).prop_map(|pin| 0x10 + 2 * pin),
            4 => 0x10u8..0x18,
            2 => 0u8..3,
            1 => 0x10u8..0x40,
            1 => any::<u8>(),
        ]
    }

    /// Register values whose vector collides often, mostly unmasked.
    fn value() -> impl Strategy<Value = u32> {
        let vec = prop_oneof![4 => 0x30u8..0x32, 1 => any::<u8>()];
        (any::<u32>(), vec, 0..4).prop_map(|(v, vec, m)| {
            let v = v & !0xff | u32::from(vec);
            if m == 0 {
                v
            } else {
                v & !(MASKED as u32)
            }
        })
    }

    pub fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (pin(), line_op()).prop_map(|(p, l)| Op::Pin(p, l)),
            3 => vector().prop_map(Op::Eoi),
            5 => (index(), value()).prop_map(|(i, v)| Op::Reg(i, v)),
            3 => (offset(), size(), any::<u64>()).prop_map(|(o, s, v)| Op::Write(o, s, v)),
            2 => (offset(), size()).prop_map(|(o, s)| Op::Read(o, s)),
            1 => Just(Op::Reset),
        ]
    }

    pub fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(op(), 0..=MAX_OPS)
    }

    /// One change to a valid snapshot.
    #[derive(Clone, Copy, Debug)]
    enum Corrupt {
        None,
        Version(u32),
        Id(u8),
        Lines(u32),
        Rte(usize, u64),
        RteBit(usize, u32),
    }

    /// Valid snapshots, most with one change that may make them invalid.
    pub fn snapshot() -> impl Strategy<Value = Snapshot> {
        let valid =
            (0u8..16, any::<u8>(), prop::array::uniform24(any::<(u64, bool)>()), 0u32..1 << 24)
                .prop_map(|(id, ioregsel, raw, lines)| {
                    let mut rte = [0; PINS];
                    for (pin, (e, (v, irr))) in rte.iter_mut().zip(raw).enumerate() {
                        *e = v & WRITABLE;
                        let pending = *e & MASKED == 0 && lines >> pin & 1 == 1;
                        if *e & LEVEL != 0 && (irr || pending) {
                            *e |= REMOTE_IRR;
                        }
                    }
                    Snapshot { version: SNAPSHOT_VERSION, id, ioregsel, rte, lines }
                });
        let pin = 0..PINS;
        let corrupt = prop_oneof![
            4 => Just(Corrupt::None),
            1 => any::<u32>().prop_map(Corrupt::Version),
            1 => any::<u8>().prop_map(Corrupt::Id),
            1 => any::<u32>().prop_map(Corrupt::Lines),
            1 => (pin.clone(), any::<u64>()).prop_map(|(p, v)| Corrupt::Rte(p, v)),
            2 => (pin, 0u32..64).prop_map(|(p, b)| Corrupt::RteBit(p, b)),
        ];
        (valid, corrupt).prop_map(|(mut s, c)| {
            match c {
                Corrupt::None => {}
                Corrupt::Version(v) => s.version = v,
                Corrupt::Id(id) => s.id = id,
                Corrupt::Lines(l) => s.lines = l,
                Corrupt::Rte(p, v) => s.rte[p] = v,
                Corrupt::RteBit(p, b) => s.rte[p] ^= 1 << b,
            }
            s
        })
    }
}

/// Whether a guest can reach `s`, per the datasheet and the model's rules.
fn reachable(s: &Snapshot) -> Result<(), ImportError> {
    if s.version != SNAPSHOT_VERSION {
        return Err(ImportError::Version { found: s.version });
    }
    if s.id > 15 {
        return Err(ImportError::Invalid { field: "id" });
    }
    if s.lines >> 24 != 0 {
        return Err(ImportError::Invalid { field: "lines" });
    }
    for (pin, &e) in s.rte.iter().enumerate() {
        if e & !(WRITABLE | REMOTE_IRR) != 0 {
            return Err(ImportError::Invalid { field: "rte" });
        }
        let level = e & LEVEL != 0;
        let pending = level && e & MASKED == 0 && s.lines >> pin & 1 == 1;
        if (e & REMOTE_IRR != 0 && !level) || (pending && e & REMOTE_IRR == 0) {
            return Err(ImportError::Invalid { field: "rte.remote_irr" });
        }
    }
    Ok(())
}

fn run_both(ops: &[Op]) -> (Ioapic, Model) {
    let (mut io, mut model) = (Ioapic::new(), Model::new());
    for (i, &op) in ops.iter().enumerate() {
        let want = model.apply(op);
        let got = apply(&mut io, op);
        assert_eq!(got, want, "op {i}: {op:?}");
        check_version(&io);
        assert_eq!(io.snapshot(), model.snapshot(), "state after op {i}: {op:?}");
    }
    (io, model)
}

proptest! {
    // 256 cases each (PROPTEST_CASES overrides). A failure prints the
    // shrunk op list; save it below as a plain test rather than have
    // proptest write seed files into the tree.
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// No panic, invariants after every op, and the reference model's
    /// results and state after every op.
    #[test]
    fn matches_reference_model(ops in strategy::ops()) {
        run_both(&ops);
    }

    /// Snapshot at a random point, restore into a fresh device, run the
    /// rest on both: same results, same final state.
    #[test]
    fn snapshot_restore_is_invisible(ops in strategy::ops(), split in 0..=MAX_OPS) {
        let split = split.min(ops.len());
        let (mut a, _) = run_both(&ops[..split]);
        let mut b = Ioapic::new();
        prop_assert_eq!(b.restore(&a.snapshot()), Ok(()));
        prop_assert_eq!(&b, &a);
        for &op in &ops[split..] {
            let (x, y) = (apply(&mut a, op), apply(&mut b, op));
            prop_assert_eq!(x, y, "{:?}", op);
        }
        prop_assert_eq!(a.snapshot(), b.snapshot());
        prop_assert_eq!(a, b);
    }

    /// Restore of any snapshot: accepted exactly when reachable (then the
    /// device holds it), refused with the reason otherwise (then nothing
    /// changed).
    #[test]
    fn restore_checks_every_field(ops in strategy::ops(), snap in strategy::snapshot()) {
        let (mut io, _) = run_both(&ops);
        let before = io.clone();
        let got = io.restore(&snap);
        prop_assert_eq!(got, reachable(&snap));
        if got.is_ok() {
            prop_assert_eq!(io.snapshot(), snap);
            prop_assert!(io.invariants_hold());
        } else {
            prop_assert_eq!(&io, &before);
        }
    }
}

/// The generators are not degenerate: over fixed random cases, edge and
/// level interrupts are sent, EOIs resend, several pins send on one EOI,
/// remote IRR is cleared by an edge switch, and restores both succeed and
/// fail.
#[test]
fn random_runs_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut edge, mut level, mut resent, mut multi, mut edge_cleared) = (0, 0, 0, 0, 0);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..500 {
        let ops = strategy::ops().new_tree(&mut runner).unwrap().current();
        let mut io = Ioapic::new();
        for op in ops {
            let before = io.clone();
            if let Out::Sent(list) = apply(&mut io, op) {
                for &(_, msi) in &list {
                    if msi.data & (1 << 15) != 0 {
                        level += 1;
                    } else {
                        edge += 1;
                    }
                }
                if matches!(op, Op::Eoi(_)) {
                    resent += list.len();
                    multi += usize::from(list.len() > 1);
                }
            }
            if let Op::Reg(i @ 0x10..=0x3f, _) = op {
                let pin = (i - 0x10) / 2;
                let (was, now) = (before.rte(pin).unwrap(), io.rte(pin).unwrap());
                edge_cleared += usize::from(was.remote_irr() && !now.is_level());
            }
        }
        let snap = strategy::snapshot().new_tree(&mut runner).unwrap().current();
        match io.restore(&snap) {
            Ok(()) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    let counts = [edge, level, resent, multi, edge_cleared, accepted, refused];
    assert!(
        counts.iter().all(|&n| n > 0),
        "edge, level, resent, multi, cleared, ok, refused: {counts:?}"
    );
}

/// A level line that stays asserted is sent again after each EOI (no
/// storm guard), forever.
#[test]
fn stuck_level_line_resends_after_every_eoi() {
    let mut io = Ioapic::new();
    assert_eq!(apply(&mut io, Op::Reg(0x10, 0x8031)), Out::Sent(vec![]));
    let msi = Msi { addr: 0xfee0_0000, data: 0xc031 };
    assert_eq!(apply(&mut io, Op::Pin(0, LineOp::Assert)), Out::Sent(vec![(0, msi)]));
    for _ in 0..20_000 {
        assert_eq!(io.eoi(0x31).iter().collect::<Vec<_>>(), vec![(0, msi)]);
    }
}
