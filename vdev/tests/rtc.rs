// SPDX-License-Identifier: GPL-2.0

//! Property tests of the RTC model. Random sequences of guest port
//! accesses, host timer callbacks (on time, late and early), host time
//! changes and NVRAM presets must never panic, must keep the invariants
//! [`Host::check`] asserts after every op, and must behave identically after
//! a snapshot is restored into a fresh device at a random point.

use proptest::prelude::*;
use vmm_vdev::rtc::regs::*;
use vmm_vdev::rtc::{Effects, Rtc, MAX_SECS};
use vmm_vdev::{LineOp, Nanos, TimerAction};

/// Longest op sequence per case.
const MAX_OPS: usize = 96;
const SEC: Nanos = 1_000_000_000;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Time passes; the host timer fires on time within it.
    Wait(Nanos),
    /// Time passes but the host timer callback is held up (it stays due).
    Lag(Nanos),
    /// `OUT 0x70`.
    Index(u8),
    /// `IN 0x71`.
    Read,
    /// `OUT 0x71`.
    Write(u8),
    /// `OUT 0x70` then `IN 0x71`.
    ReadReg(u8),
    /// `OUT 0x70` then `OUT 0x71`.
    WriteReg(u8, u8),
    /// An access to a port that is not the RTC's.
    Stray(u16, u8),
    /// The host timer fires this late (if armed).
    FireLate(Nanos),
    /// A spurious (early) callback now.
    FireEarly,
    /// The host sets the wall clock.
    SetTime(u64),
    /// The sequencer presets a CMOS byte (refused for clock registers).
    SetCmos(u8, u8),
}

mod strategy {
    use super::*;

    pub fn start() -> impl Strategy<Value = (Nanos, u64)> {
        let now = prop_oneof![0..2 * SEC, 0..u64::MAX / 4];
        (now, secs())
    }

    fn secs() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..8_000_000_000u64,
            946_684_700..946_684_800u64, // the end of 1999
            MAX_SECS - 100..=MAX_SECS + 100,
            any::<u64>(),
        ]
    }

    fn wait() -> impl Strategy<Value = Nanos> {
        prop_oneof![0..2_000u64, 0..3_000_000u64, 0..1_500_000_000u64, 0..3 * 86_400 * SEC]
    }

    fn index() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => 0x00..=0x0du8,
            1 => Just(CENTURY),
            1 => any::<u8>(),
        ]
        .prop_flat_map(|i| prop_oneof![Just(i), Just(i | INDEX_NMI_DISABLE)])
    }

    fn value() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            // Register A: running, any rate, or in reset.
            (0..16u8).prop_map(|rs| A_DV_RUN | rs),
            (0..16u8).prop_map(|rs| 0x70 | rs),
            // Register B without SET, and with.
            0..0x80u8,
            0x80..=0xffu8,
            // A valid BCD value for the time registers.
            (0..60u8).prop_map(|v| ((v / 10) << 4) | (v % 10)),
            // An alarm don't-care.
            0xc0..=0xffu8,
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => wait().prop_map(Op::Wait),
            2 => wait().prop_map(Op::Lag),
            2 => index().prop_map(Op::Index),
            2 => Just(Op::Read),
            2 => value().prop_map(Op::Write),
            3 => index().prop_map(Op::ReadReg),
            3 => (index(), value()).prop_map(|(i, v)| Op::WriteReg(i, v)),
            // The guest's interrupt handler, and its enables.
            2 => Just(Op::ReadReg(REG_C)),
            2 => (0..0x80u8).prop_map(|v| Op::WriteReg(REG_B, v)),
            1 => (any::<u16>(), any::<u8>()).prop_map(|(p, v)| Op::Stray(p, v)),
            2 => wait().prop_map(Op::FireLate),
            1 => Just(Op::FireEarly),
            1 => secs().prop_map(Op::SetTime),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(i, v)| Op::SetCmos(i, v)),
        ]
    }

    pub fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(op(), 1..MAX_OPS)
    }
}

/// What one op gave back: every value and every effect, in order.
type Trace = Vec<(u8, Effects)>;

/// The model and what the host knows of it: the line and the timer as the
/// effects left them.
#[derive(Clone, Debug)]
struct Host {
    rtc: Rtc,
    now: Nanos,
    line: bool,
    timer: Option<Nanos>,
    stats: Stats,
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    asserts: u32,
    pulses: u32,
    fires: u32,
    flags_read: u32,
    stopped_clock: u32,
}

impl Host {
    fn new(now: Nanos, secs: u64) -> Host {
        let rtc = Rtc::new(now, secs);
        Host { rtc, now, line: false, timer: None, stats: Stats::default() }
    }

    /// Applies `fx` to the host's view, checking that it makes sense.
    fn apply(&mut self, fx: Effects) {
        match fx.irq8 {
            Some(LineOp::Assert) => {
                assert!(!self.line, "assert of a raised line");
                self.line = true;
                self.stats.asserts += 1;
            }
            Some(LineOp::Deassert) => {
                assert!(self.line, "deassert of a low line");
                self.line = false;
            }
            Some(LineOp::Pulse) => {
                assert!(!self.line, "pulse of a raised line");
                self.stats.pulses += 1;
            }
            None => {}
        }
        match fx.timer {
            Some(TimerAction::Arm(t)) => {
                assert!(t > self.now, "armed at {t}, not after now {}", self.now);
                self.timer = Some(t);
            }
            Some(TimerAction::Disarm) => self.timer = None,
            None => {}
        }
    }

    fn fire(&mut self, at: Nanos, trace: &mut Trace) {
        self.now = self.now.max(at);
        self.timer = None;
        let fx = self.rtc.timer_expired(self.now);
        assert!(fx.timer.is_some(), "an expiry always says what comes next");
        self.stats.fires += 1;
        self.apply(fx);
        trace.push((0, fx));
    }

    fn step(&mut self, op: Op, trace: &mut Trace) {
        match op {
            Op::Wait(dt) => {
                let end = self.now.saturating_add(dt);
                // The host timer fires on time. While the line is up it is
                // idle, so this loop ends.
                while let Some(at) = self.timer.filter(|&at| at <= end) {
                    self.fire(at, trace);
                }
                self.now = end;
            }
            Op::Lag(dt) => self.now = self.now.saturating_add(dt),
            Op::Index(v) => {
                let fx = self.rtc.write(PORT_INDEX, v, self.now);
                assert_eq!(fx, Effects::NONE);
                assert_eq!(self.rtc.nmi_disabled(), v & INDEX_NMI_DISABLE != 0);
                trace.push((v, fx));
            }
            Op::ReadReg(i) => {
                self.step(Op::Index(i), trace);
                self.step(Op::Read, trace);
            }
            Op::WriteReg(i, v) => {
                self.step(Op::Index(i), trace);
                self.step(Op::Write(v), trace);
            }
            Op::Read => {
                let (v, fx) = self.rtc.read(PORT_DATA, self.now);
                self.apply(fx);
                trace.push((v, fx));
            }
            Op::Write(v) => {
                let fx = self.rtc.write(PORT_DATA, v, self.now);
                self.apply(fx);
                trace.push((v, fx));
            }
            Op::Stray(port, v) => {
                let port = if port == PORT_DATA || port == PORT_INDEX { 0x72 } else { port };
                assert_eq!(self.rtc.read(port, self.now), (OPEN_BUS, Effects::NONE));
                assert_eq!(self.rtc.write(port, v, self.now), Effects::NONE);
            }
            Op::FireLate(late) => {
                if let Some(at) = self.timer {
                    self.fire(at.saturating_add(late), trace);
                }
            }
            Op::FireEarly => {
                let armed = self.timer;
                self.fire(self.now, trace);
                if armed.is_some_and(|t| t > self.now) {
                    assert_eq!(self.timer, armed, "an early callback re-arms the same expiry");
                }
            }
            Op::SetTime(secs) => {
                let fx = self.rtc.set_time(self.now, secs);
                self.apply(fx);
                assert_eq!(
                    self.rtc.wall_clock(self.now).unwrap_or(secs.min(MAX_SECS)),
                    secs.min(MAX_SECS)
                );
                trace.push((0, fx));
            }
            Op::SetCmos(i, v) => {
                let nvram = i < 0x80 && i > REG_D && i != CENTURY;
                assert_eq!(self.rtc.set_cmos(i, v).is_ok(), nvram, "index {i:#x}");
                assert_eq!(self.rtc.cmos(i), nvram.then_some(v));
            }
        }
        self.check();
    }

    /// The invariants after every op.
    fn check(&mut self) {
        let rtc = &self.rtc;
        assert_eq!(rtc.irq8(), self.line, "the model's line is the host's");
        if self.line {
            assert_eq!(self.timer, None, "nothing to time while IRQF is up");
        }
        // Every state reached is one a snapshot can carry: a fresh device
        // accepts it and is then the same device.
        let snap = rtc.snapshot();
        let mut copy = Rtc::new(self.now / 3, 42);
        let fx = copy.restore(&snap, self.now).expect("a reachable state restores");
        assert_eq!(&copy, rtc);
        let level = if self.line { LineOp::Assert } else { LineOp::Deassert };
        let timer = self.timer.map_or(TimerAction::Disarm, TimerAction::Arm);
        assert_eq!(fx, Effects { irq8: Some(level), timer: Some(timer) });
        // The registers show the clock's time (read on the copy, so that
        // the model under test sees no extra accesses).
        let b = rd(&mut copy, REG_B, self.now);
        let regs = [SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY]
            .map(|i| rd(&mut copy, i, self.now));
        match rtc.wall_clock(self.now) {
            Some(secs) => assert_eq!(decode(regs, b), Some((secs, weekday(secs))), "{regs:02x?}"),
            None => self.stats.stopped_clock += 1,
        }
        let c = rd(&mut copy, REG_C, self.now);
        assert_eq!(c & 0x0f, 0, "register C bits 3:0 read 0");
        assert_eq!(c & C_IRQF != 0, c & b & C_FLAGS != 0, "IRQF = OR of enabled flags");
        if c & C_FLAGS != 0 {
            self.stats.flags_read += 1;
        }
        assert_eq!(rd(&mut copy, REG_D, self.now), D_VRT);
        assert_eq!(rd(&mut copy, REG_A, self.now) & !A_UIP, snap.reg_a);
    }
}

fn rd(rtc: &mut Rtc, index: u8, now: Nanos) -> u8 {
    let _ = rtc.write(PORT_INDEX, index, now);
    rtc.read(PORT_DATA, now).0
}

/// Days from 1970-01-01 to a date, by an algorithm unlike the model's
/// (shifted March-based years in 400-year eras).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn weekday(secs: u64) -> u8 {
    ((secs / 86_400 + 4) % 7) as u8 + 1
}

/// The Unix time and weekday the registers show in register B's format;
/// `None` if they do not show a real date.
fn decode(regs: [u8; 8], b: u8) -> Option<(u64, u8)> {
    let bin = b & B_DM_BINARY != 0;
    let num = |v: u8| -> Option<i64> {
        if bin {
            return Some(i64::from(v));
        }
        (v >> 4 <= 9 && v & 0xf <= 9).then(|| i64::from((v >> 4) * 10 + (v & 0xf)))
    };
    let [s, mi, h, dow, d, mo, y, c] = regs;
    let hour = if b & B_24H != 0 {
        num(h)?
    } else {
        num(h & 0x7f)? % 12 + if h & 0x80 != 0 { 12 } else { 0 }
    };
    let (year, month, day) = (num(c)? * 100 + num(y)?, num(mo)?, num(d)?);
    // A real date: it survives a trip through day numbers.
    let days = days_from_civil(year, month, day);
    let next = days_from_civil(year, month + 1, 1);
    if !(1..=12).contains(&month) || day < 1 || days >= next.min(days_from_civil(year + 1, 1, 1)) {
        return None;
    }
    let secs = days * 86_400 + hour * 3600 + num(mi)? * 60 + num(s)?;
    Some((u64::try_from(secs).ok()?, u8::try_from(num(dow)?).ok()?))
}

/// Runs `ops` from `start`; with `split`, snapshots before op `split`,
/// restores into a fresh device, runs the rest on both and compares.
fn run(start: (Nanos, u64), ops: &[Op], split: Option<usize>) -> Stats {
    let mut host = Host::new(start.0, start.1);
    host.check();
    let split = split.unwrap_or(usize::MAX).min(ops.len());
    let mut trace = Trace::new();
    for &op in &ops[..split] {
        host.step(op, &mut trace);
    }
    if split == ops.len() {
        return host.stats;
    }
    let mut other = Host::new(start.0 / 2, 7);
    let fx = other.rtc.restore(&host.rtc.snapshot(), host.now).expect("restore");
    other.now = host.now;
    // A restore states the line and the timer in full.
    other.line = fx.irq8 == Some(LineOp::Assert);
    other.timer = match fx.timer {
        Some(TimerAction::Arm(t)) => Some(t),
        _ => None,
    };
    assert_eq!((other.line, other.timer), (host.line, host.timer));
    let mut theirs = Trace::new();
    trace.clear();
    for &op in &ops[split..] {
        host.step(op, &mut trace);
        other.step(op, &mut theirs);
        assert_eq!(trace, theirs, "after {op:?}");
    }
    assert_eq!(host.rtc.snapshot(), other.rtc.snapshot());
    host.stats
}

proptest! {
    // 256 cases each (PROPTEST_CASES overrides). A failure prints the
    // shrunk case; save it as a plain test rather than have proptest write
    // seed files into the tree.
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// No panic, and every invariant after every op.
    #[test]
    fn ops_keep_invariants(start in strategy::start(), ops in strategy::ops()) {
        run(start, &ops, None);
    }

    /// Snapshot at a random point, restore into a fresh device, and run
    /// the rest on both: the same values, effects and final state.
    #[test]
    fn snapshot_restore_is_invisible(
        start in strategy::start(),
        ops in strategy::ops(),
        split in 0..MAX_OPS,
    ) {
        run(start, &ops, Some(split));
    }
}

/// The generator is not degenerate: over a fixed set of random cases,
/// interrupts are raised and pulsed, timers fire, flags are read and the
/// clock is stopped by SET or bad values.
#[test]
fn random_runs_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let input = (strategy::start(), strategy::ops());
    let mut total = Stats::default();
    for _ in 0..256 {
        let (start, ops) = input.new_tree(&mut runner).expect("a case").current();
        let s = run(start, &ops, None);
        total.asserts += s.asserts;
        total.pulses += s.pulses;
        total.fires += s.fires;
        total.flags_read += s.flags_read;
        total.stopped_clock += s.stopped_clock;
    }
    eprintln!("{total:?}");
    assert!(total.asserts >= 200, "{total:?}");
    assert!(total.pulses >= 5, "{total:?}");
    assert!(total.fires >= 300, "{total:?}");
    assert!(total.flags_read >= 1000, "{total:?}");
    assert!(total.stopped_clock >= 500, "{total:?}");
}

/// Regression anchors: the model keeps the host's time across the year
/// 2000 and 9999 boundaries through the ports.
#[test]
fn decode_agrees_with_the_model_at_the_edges() {
    for secs in [0, 946_684_799, 946_684_800, 951_825_600, MAX_SECS] {
        for b in [B_24H, B_24H | B_DM_BINARY, 0, B_DM_BINARY] {
            let mut rtc = Rtc::new(0, secs);
            let _ = rtc.write(PORT_INDEX, REG_B, 0);
            let _ = rtc.write(PORT_DATA, b, 0);
            let regs = [SECONDS, MINUTES, HOURS, DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR, CENTURY]
                .map(|i| rd(&mut rtc, i, 0));
            assert_eq!(decode(regs, b), Some((secs, weekday(secs))), "{secs} B {b:#x}");
        }
    }
}
