// SPDX-License-Identifier: GPL-2.0

//! Saving and restoring the PIT: a versioned, plain-integer snapshot,
//! checked field by field on import. A snapshot that no sequence of guest
//! operations can produce is refused with the field at fault, and the
//! device is left as it was.
//!
//! Times are clock edges on the grid every [`Pit`] shares (edge `k` at
//! `k * 88_000 / 105` ns of the VM clock), so the VM clock must continue
//! across save and restore; a restored device then behaves exactly like
//! the saved one.

use super::super::common::{ImportError, Nanos};
use super::counter::{high_len, Counter, Load, Run};
use super::regs::{
    clock_at, time_of, Access, Channel, Mode, CW_ACCESS_MASK, CW_ACCESS_SHIFT, CW_PROGRAM_MASK,
};
use super::{Effects, Pit, MIN_IRQ_INTERVAL};

/// The layout version [`Snapshot::version`] carries.
pub const SNAPSHOT_VERSION: u32 = 1;

/// "None" in [`CounterSnapshot::write_lsb`] and
/// [`CounterSnapshot::latched_status`].
const NO_BYTE: u16 = 0x100;
/// "None" in [`CounterSnapshot::latched_count`].
const NO_WORD: u32 = 0x1_0000;

/// One counter. Flags are 0 or 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterSnapshot {
    /// Bits 5:0 of the control word that programmed it.
    pub control: u8,
    /// The count register, raw.
    pub count_register: u16,
    /// A count was written since that control word.
    pub has_count: u8,
    /// The LSB of a two-byte count awaiting its MSB, or 0x100.
    pub write_lsb: u16,
    /// The read flip-flop: the next byte read is the MSB.
    pub read_msb: u8,
    /// The latched count, or 0x1_0000.
    pub latched_count: u32,
    /// The latched status, or 0x100.
    pub latched_status: u16,
    /// Null count.
    pub null_count: u8,
    /// The gate input.
    pub gate: u8,
    /// The count of the current cycle; 0 when idle.
    pub count: u32,
    /// Mode 3: the phase the cycle started at (0 or its high half's
    /// length); otherwise 0.
    pub phase: u32,
    /// 0: idle; 1: counting; 2: paused by the gate.
    pub run: u8,
    /// Idle: the CE, raw; counting: the edge it counts from; paused: the
    /// edges counted.
    pub run_value: u64,
    /// Paused: the last edge before the gate fell; otherwise 0.
    pub paused_since: u64,
    /// Mode 4: the strobe of the current count is over (the gate fell
    /// during it).
    pub strobed: u8,
    /// The edge at which the count register reaches the CE, or 0.
    pub load_at: u64,
    /// That load starts mode 3's low half.
    pub load_low_half: u8,
    /// That load waits for the end of a period or half-cycle (modes 2
    /// and 3) rather than for the next edge.
    pub load_cycle_end: u8,
}

/// The whole device at VM time `taken_at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// When it was taken, on the VM clock.
    pub taken_at: Nanos,
    /// Counters 0, 1 and 2.
    pub counters: [CounterSnapshot; 3],
    /// Port 0x61 bit 1.
    pub speaker: u8,
    /// The edge of counter 0's next OUT rise not yet pulsed, or 0.
    pub irq_next: u64,
    /// When the host timer was asked to fire for it, or 0.
    pub deadline: Nanos,
}

const RUN_IDLE: u8 = 0;
const RUN_COUNTING: u8 = 1;
const RUN_PAUSED: u8 = 2;

fn export(c: &Counter) -> CounterSnapshot {
    let (run, run_value, paused_since) = match c.run {
        Run::Idle { value } => (RUN_IDLE, u64::from(value), 0),
        Run::Counting { t0 } => (RUN_COUNTING, t0, 0),
        Run::Paused { elapsed, since } => (RUN_PAUSED, elapsed, since),
    };
    CounterSnapshot {
        control: c.control,
        count_register: c.cr,
        has_count: u8::from(c.has_count),
        write_lsb: c.write_lsb.map_or(NO_BYTE, u16::from),
        read_msb: u8::from(c.read_msb),
        latched_count: c.latched_count.map_or(NO_WORD, u32::from),
        latched_status: c.latched_status.map_or(NO_BYTE, u16::from),
        null_count: u8::from(c.null_count),
        gate: u8::from(c.gate),
        count: c.n,
        phase: c.off,
        run,
        run_value,
        paused_since,
        strobed: u8::from(c.strobed),
        load_at: c.pending.map_or(0, |l| l.at),
        load_low_half: c.pending.map_or(0, |l| u8::from(l.low_half)),
        load_cycle_end: c.pending.map_or(0, |l| u8::from(l.cycle_end)),
    }
}

fn flag(v: u8, field: &'static str) -> Result<bool, ImportError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ImportError::Invalid { field }),
    }
}

fn ensure(ok: bool, field: &'static str) -> Result<(), ImportError> {
    if ok {
        Ok(())
    } else {
        Err(ImportError::Invalid { field })
    }
}

/// Builds a counter from `s` and checks that its guest could have made it
/// by clock edge `k`.
fn import(s: &CounterSnapshot, channel: Channel, k: u64) -> Result<Counter, ImportError> {
    ensure(s.control & !CW_PROGRAM_MASK == 0, "counter.control")?;
    ensure((s.control >> CW_ACCESS_SHIFT) & CW_ACCESS_MASK != 0, "counter.control")?;
    let mut c = Counter::new(flag(s.gate, "counter.gate")?);
    c.control = s.control;
    c.cr = s.count_register;
    c.has_count = flag(s.has_count, "counter.has_count")?;
    c.read_msb = flag(s.read_msb, "counter.read_msb")?;
    c.null_count = flag(s.null_count, "counter.null_count")?;
    let low_half = flag(s.load_low_half, "counter.load_low_half")?;
    let cycle_end = flag(s.load_cycle_end, "counter.load_cycle_end")?;
    c.strobed = flag(s.strobed, "counter.strobed")?;
    let mode = c.mode();
    let word = c.access() == Access::Word;
    ensure(channel == Channel::C2 || c.gate, "counter.gate")?;

    ensure(s.write_lsb <= NO_BYTE, "counter.write_lsb")?;
    c.write_lsb = u8::try_from(s.write_lsb).ok();
    ensure(word || (c.write_lsb.is_none() && !c.read_msb), "counter.write_lsb")?;
    ensure(s.latched_count <= NO_WORD, "counter.latched_count")?;
    c.latched_count = u16::try_from(s.latched_count).ok();
    ensure(s.latched_status <= NO_BYTE, "counter.latched_status")?;
    c.latched_status = u8::try_from(s.latched_status).ok();
    if let Some(status) = c.latched_status {
        ensure(status & CW_PROGRAM_MASK == c.control, "counter.latched_status")?;
    }

    let periodic = mode.periodic();
    let modulus = c.modulus();
    let count_ok = |n: u32| n >= 1 && n <= modulus && (!periodic || n >= 2);
    c.n = s.count;
    c.off = s.phase;
    ensure(s.run == RUN_PAUSED || s.paused_since == 0, "counter.paused_since")?;
    c.run = match s.run {
        RUN_IDLE => {
            ensure(s.count == 0 && s.phase == 0, "counter.count")?;
            Run::Idle { value: u16::try_from(s.run_value).map_err(|_| bad("counter.run_value"))? }
        }
        RUN_COUNTING => {
            ensure(s.run_value <= k, "counter.run_value")?;
            ensure(c.gate || !mode.gate_level(), "counter.gate")?;
            Run::Counting { t0: s.run_value }
        }
        RUN_PAUSED => {
            ensure(channel == Channel::C2 && mode.gate_level(), "counter.run")?;
            ensure(s.run_value <= s.paused_since, "counter.run_value")?;
            ensure(s.paused_since <= k, "counter.paused_since")?;
            // A gate back high leaves modes 2 and 3 paused only until the
            // reload its rising edge asked for, at the next edge.
            ensure(!c.gate || (periodic && s.load_at != 0 && !cycle_end), "counter.gate")?;
            Run::Paused { elapsed: s.run_value, since: s.paused_since }
        }
        _ => return Err(bad("counter.run")),
    };
    ensure(!c.strobed || (mode == Mode::SoftwareStrobe && s.run != RUN_IDLE), "counter.strobed")?;
    if !matches!(c.run, Run::Idle { .. }) {
        ensure(count_ok(c.n), "counter.count")?;
        let phase_ok = if mode == Mode::SquareWave {
            c.off == 0 || c.off == high_len(c.n)
        } else {
            c.off == 0
        };
        ensure(phase_ok, "counter.phase")?;
    }

    if s.load_at == 0 {
        ensure(!low_half, "counter.load_low_half")?;
        ensure(!cycle_end, "counter.load_cycle_end")?;
    } else {
        let counting = matches!(c.run, Run::Counting { .. });
        // Only a running mode 2 or 3 waits past the next edge (for the end
        // of its period or half-cycle, at most a period away).
        ensure(!cycle_end || (periodic && counting), "counter.load_cycle_end")?;
        let latest = if cycle_end { k.saturating_add(u64::from(c.n)) } else { k.saturating_add(1) };
        ensure(s.load_at > k && s.load_at <= latest, "counter.load_at")?;
        // A trigger may come before the count it loads.
        let trigger = matches!(mode, Mode::OneShot | Mode::HardwareStrobe) || periodic;
        ensure(c.has_count || (trigger && !cycle_end), "counter.has_count")?;
        ensure(!low_half || (mode == Mode::SquareWave && cycle_end), "counter.load_low_half")?;
        ensure(mode != Mode::TerminalCount || s.run == RUN_IDLE, "counter.run")?;
        c.pending = Some(Load { at: s.load_at, low_half, cycle_end });
    }
    ensure(c.has_count || s.run == RUN_IDLE, "counter.has_count")?;
    // Mode 0 stops between the two bytes of a count.
    ensure(
        !(mode == Mode::TerminalCount && c.write_lsb.is_some()) || s.run == RUN_IDLE,
        "counter.write_lsb",
    )?;
    Ok(c)
}

fn bad(field: &'static str) -> ImportError {
    ImportError::Invalid { field }
}

impl Pit {
    /// The state at `now` (a count whose loading edge has passed is moved
    /// into its counting element first; nothing else changes).
    pub fn snapshot(&self, now: Nanos) -> Snapshot {
        let k = clock_at(now);
        let mut pit = *self;
        for c in &mut pit.counters {
            c.normalize(k);
        }
        let [c0, c1, c2] = &pit.counters;
        Snapshot {
            version: SNAPSHOT_VERSION,
            taken_at: now,
            counters: [export(c0), export(c1), export(c2)],
            speaker: u8::from(pit.speaker),
            irq_next: pit.irq_next.unwrap_or(0),
            deadline: pit.deadline.unwrap_or(0),
        }
    }

    /// Replaces this device with the one `snap` describes; `now` is the VM
    /// clock, which must not be before `snap.taken_at`. On success the
    /// effects set the host timer as the saved device had it (a deadline
    /// already past fires at once). On error nothing changed.
    pub fn restore(&mut self, snap: &Snapshot, now: Nanos) -> Result<Effects, ImportError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(ImportError::Version { found: snap.version });
        }
        ensure(snap.taken_at <= now, "taken_at")?;
        let k = clock_at(snap.taken_at);
        let [s0, s1, s2] = &snap.counters;
        let pit = Pit {
            counters: [
                import(s0, Channel::C0, k)?,
                import(s1, Channel::C1, k)?,
                import(s2, Channel::C2, k)?,
            ],
            speaker: flag(snap.speaker, "speaker")?,
            irq_next: (snap.irq_next != 0).then_some(snap.irq_next),
            deadline: (snap.deadline != 0).then_some(snap.deadline),
        };
        // An edge not yet due must be the next one the counter makes; an
        // edge already due is delivered by the next call.
        let due = matches!(pit.irq_next, Some(t) if t <= k);
        ensure(due || pit.irq_next == pit.counters[0].next_rise(k), "irq_next")?;
        // The deadline is the edge's time, or later by the floor after a
        // pulse at or before `taken_at`.
        let deadline_ok = match (pit.irq_next, pit.deadline) {
            (None, None) => true,
            (Some(t), Some(d)) => {
                let at = time_of(t);
                d >= at && d <= at.max(snap.taken_at.saturating_add(MIN_IRQ_INTERVAL))
            }
            _ => false,
        };
        ensure(deadline_ok, "deadline")?;
        *self = pit;
        Ok(Effects { irq0: None, timer: Some(self.armed()) })
    }
}
