// SPDX-License-Identifier: GPL-2.0

//! One counter of the 8254, computed from the clock instead of ticked.
//!
//! A counter has the registers the datasheet names: the count register
//! (CR) that the guest writes, the counting element (CE) that counts, the
//! output latch (OL) that a latch command fills, a status latch, and the
//! read and write flip-flops of two-byte access. The CE is not stored as a
//! number: it is a [`Run`] from which its value and OUT follow at any
//! clock edge `k`:
//!
//! - after a load of `n` at edge `t0`, each later edge counts, so at edge
//!   `k` the CE has counted `e = k - t0` edges ([`eval`] gives the value
//!   and OUT for each mode);
//! - a gate low in modes 0, 2, 3 and 4 freezes `e` ([`Run::Paused`]); a
//!   gate back high in modes 0 and 4 goes on from it;
//! - a count the guest writes reaches the CE at a later edge ([`Load`]):
//!   the next one (modes 0 and 4, the first count of modes 2 and 3, and
//!   every gate trigger), or the end of the current period (mode 2) or
//!   half-cycle (mode 3) when the counter is already running. Until then
//!   the status byte says "null count".
//!
//! Every operation first applies a load whose edge has passed
//! ([`Counter::normalize`]). Nothing here looks at a wall clock; a clock
//! that went backwards gets saturated arithmetic and some answer, never a
//! panic.
//!
//! Sources: Intel 8254 datasheet, "Mode Definitions" (modes 0-5, gate
//! behaviour, when counts are loaded), "Operation Common to All Modes",
//! "Read Operations" (latch, read-back, null count).

use super::regs::{
    bcd_to_number, number_to_bcd, Access, Mode, BCD_MODULUS, BINARY_MODULUS, CW_BCD, CW_POWER_UP,
    CW_PROGRAM_MASK, PERIODIC_MIN_COUNT, STATUS_NULL_COUNT, STATUS_OUT,
};

/// What the counting element is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Run {
    /// Not counting: no count loaded since the control word (in modes 1
    /// and 5: no trigger yet; in mode 0: between the two bytes of a
    /// count). The CE keeps `value` (raw, as it would be read). OUT is low
    /// in mode 0 and high in the others.
    Idle {
        /// The frozen CE.
        value: u16,
    },
    /// Loaded with [`Counter::n`] at clock edge `t0`; every later edge
    /// counts.
    Counting {
        /// The edge of the load (or, after a pause, the edge the count
        /// would have been loaded at to reach the same point).
        t0: u64,
    },
    /// Gate low in mode 0, 2, 3 or 4 (counter 2 only): `elapsed` edges
    /// were counted since the load. OUT is forced high in modes 2 and 3.
    Paused {
        /// Edges counted before the gate fell.
        elapsed: u64,
        /// The last edge before the gate fell (a mode 4 strobe under way
        /// then still ends at the next edge).
        since: u64,
    },
}

/// The CR is moved into the CE at clock edge `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Load {
    /// The edge of the load.
    pub at: u64,
    /// Mode 3 only: the load ends a high half-cycle, so the new count
    /// starts with its low half.
    pub low_half: bool,
    /// Modes 2 and 3: a new count waiting for the end of the period or
    /// half-cycle (rather than for the next edge), so a gate low, which
    /// stops the count, cancels it.
    pub cycle_end: bool,
}

/// One counter's whole state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Counter {
    /// Bits 5:0 of the last control word that programmed it (RW, M, BCD).
    pub control: u8,
    /// The count register: the last complete count written, raw.
    pub cr: u16,
    /// A count was written since the last control word.
    pub has_count: bool,
    /// Write flip-flop: the LSB of a two-byte count, waiting for its MSB.
    pub write_lsb: Option<u8>,
    /// Read flip-flop: the next byte of a two-byte read is the MSB.
    pub read_msb: bool,
    /// The output latch, holding a latched count until it is read.
    pub latched_count: Option<u16>,
    /// A latched status byte, read before the latched count.
    pub latched_status: Option<u8>,
    /// The last count written has not reached the CE yet.
    pub null_count: bool,
    /// The gate input (tied high for counters 0 and 1).
    pub gate: bool,
    /// The count of the current cycle (0 when idle): 1 to 2^16 (binary)
    /// or 10^4 (BCD), at least 2 in modes 2 and 3.
    pub n: u32,
    /// Mode 3: where in the period the cycle started, 0 or the length of
    /// the high half. 0 in the other modes.
    pub off: u32,
    /// Modes 4 and 5: the strobe of the current count is over although
    /// the count stands at zero (the gate fell during it).
    pub strobed: bool,
    /// What the CE is doing.
    pub run: Run,
    /// A count on its way from the CR to the CE.
    pub pending: Option<Load>,
}

/// Clocks OUT stays high per period in mode 3 (the datasheet's
/// `(n + 1) / 2` for odd counts, `n / 2` for even ones).
pub(crate) const fn high_len(n: u32) -> u32 {
    n / 2 + n % 2
}

/// Position in a period of `n` after `e` edges from phase `off`.
fn phase(off: u32, n: u32, e: u64) -> u32 {
    let n = u64::from(n.max(1));
    let p = (u64::from(off) % n + e % n) % n;
    u32::try_from(p).unwrap_or(0)
}

/// `(n - e) mod m`: a one-shot count after `e` edges, wrapping at zero to
/// the top of the range as the datasheet says ("the counter wraps around
/// to the highest count, FFFF or 9999, and continues counting").
fn down(n: u32, e: u64, m: u32) -> u32 {
    let m = u64::from(m.max(1));
    let v = (u64::from(n) % m + m - e % m) % m;
    u32::try_from(v).unwrap_or(0)
}

/// The smallest `e >= e_min` with `(off + e) mod n == target`.
fn next_phase(off: u32, n: u32, e_min: u64, target: u32) -> u64 {
    let n64 = u64::from(n.max(1));
    let cur = u64::from(phase(off, n, e_min));
    let delta = (u64::from(target) % n64 + n64 - cur) % n64;
    e_min.saturating_add(delta)
}

/// The CE's value (as a number, `m` standing for 0) and OUT, `e` edges
/// after it was loaded with `n` at phase `off`, the gate allowing.
///
/// - Modes 0 and 1: counts down; OUT goes high at zero (`e == n`) and
///   stays high while the count wraps on.
/// - Modes 4 and 5: counts down; OUT is low for the one clock at zero.
/// - Mode 2: `n, n-1, ..., 1`, OUT low during the clock at 1, then
///   reload.
/// - Mode 3: by twos; even `n`: `n, n-2, ..., 2` high, then the same low;
///   odd `n`: `n-1, ..., 2, 0` high (`(n+1)/2` clocks), then `n-1, ...,
///   2` low (`(n-1)/2` clocks).
pub(crate) fn eval(mode: Mode, m: u32, n: u32, off: u32, e: u64) -> (u32, bool) {
    match mode {
        Mode::TerminalCount | Mode::OneShot => (down(n, e, m), e >= u64::from(n)),
        Mode::SoftwareStrobe | Mode::HardwareStrobe => (down(n, e, m), e != u64::from(n)),
        Mode::RateGenerator => {
            let p = phase(off, n, e);
            (n.saturating_sub(p), p.saturating_add(1) != n)
        }
        Mode::SquareWave => {
            let p = phase(off, n, e);
            let h = high_len(n);
            let top = n & !1;
            if p < h {
                (top.saturating_sub(p.saturating_mul(2)), true)
            } else {
                (top.saturating_sub((p - h).saturating_mul(2)), false)
            }
        }
    }
}

/// The first edge after `x` at which OUT rises, in a cycle of `n` loaded
/// at `t0` with phase `off` (the load edge itself excluded).
fn segment_rise(mode: Mode, n: u32, off: u32, t0: u64, x: u64) -> Option<u64> {
    let e_min = x.saturating_add(1).saturating_sub(t0).max(1);
    let e = match mode {
        Mode::TerminalCount | Mode::OneShot => u64::from(n),
        Mode::SoftwareStrobe | Mode::HardwareStrobe => u64::from(n) + 1,
        Mode::RateGenerator | Mode::SquareWave => next_phase(off, n, e_min, 0),
    };
    (e >= e_min && n != 0).then(|| t0.saturating_add(e))
}

impl Counter {
    /// A counter at power-up: mode 0, two-byte access, binary, no count,
    /// CE 0, OUT low; the datasheet leaves this undefined.
    pub(crate) const fn new(gate: bool) -> Counter {
        Counter {
            control: CW_POWER_UP,
            cr: 0,
            has_count: false,
            write_lsb: None,
            read_msb: false,
            latched_count: None,
            latched_status: None,
            null_count: true,
            gate,
            n: 0,
            off: 0,
            strobed: false,
            run: Run::Idle { value: 0 },
            pending: None,
        }
    }

    /// The mode programmed.
    pub(crate) const fn mode(&self) -> Mode {
        Mode::from_control(self.control)
    }

    /// The access programmed.
    pub(crate) const fn access(&self) -> Access {
        Access::from_control(self.control)
    }

    /// Counts run modulo this: 2^16 binary, 10^4 BCD.
    pub(crate) const fn modulus(&self) -> u32 {
        if self.control & CW_BCD != 0 {
            BCD_MODULUS
        } else {
            BINARY_MODULUS
        }
    }

    /// The count a raw CR value stands for: 0 is the whole range, and
    /// modes 2 and 3 take no less than 2.
    pub(crate) fn count_of(&self, raw: u16) -> u32 {
        let v = if self.control & CW_BCD != 0 { bcd_to_number(raw) } else { u32::from(raw) };
        let n = if v == 0 { self.modulus() } else { v };
        if self.mode().periodic() {
            n.max(PERIODIC_MIN_COUNT)
        } else {
            n
        }
    }

    /// A CE value as the data port reads it.
    fn encode(&self, v: u32) -> u16 {
        if self.control & CW_BCD != 0 {
            number_to_bcd(v)
        } else {
            (v % BINARY_MODULUS) as u16
        }
    }

    /// Applies a load whose edge is at or before `k`.
    pub(crate) fn normalize(&mut self, k: u64) {
        if let Some(load) = self.pending {
            if load.at <= k {
                self.start(load);
            }
        }
    }

    /// The CR reaches the CE (if a count was written: a trigger before
    /// any count loads nothing).
    fn start(&mut self, load: Load) {
        self.pending = None;
        if !self.has_count {
            return;
        }
        self.n = self.count_of(self.cr);
        self.off = if load.low_half { high_len(self.n) } else { 0 };
        self.strobed = false;
        self.run = if self.gate || !self.mode().gate_level() {
            Run::Counting { t0: load.at }
        } else {
            Run::Paused { elapsed: 0, since: load.at }
        };
        self.null_count = false;
        self.pending = None;
    }

    /// The CE (raw) and OUT at edge `k`, from the current run (a pending
    /// load not applied).
    pub(crate) fn sample(&self, k: u64) -> (u16, bool) {
        let mode = self.mode();
        let m = self.modulus();
        match self.run {
            Run::Idle { value } => (value, mode != Mode::TerminalCount),
            Run::Counting { t0 } => {
                let (v, out) = eval(mode, m, self.n, self.off, k.saturating_sub(t0));
                (self.encode(v), out || self.strobed)
            }
            Run::Paused { elapsed, since } => {
                let (v, out) = eval(mode, m, self.n, self.off, elapsed);
                let out = match mode {
                    Mode::RateGenerator | Mode::SquareWave => true,
                    // A strobe lasts its one clock whatever the gate does.
                    Mode::SoftwareStrobe | Mode::HardwareStrobe => out || self.strobed || k > since,
                    Mode::TerminalCount | Mode::OneShot => out,
                };
                (self.encode(v), out)
            }
        }
    }

    /// Stops counting with the CE as it is at `k` (mode 0 while a count is
    /// being written; a control word).
    fn halt(&mut self, k: u64) {
        let (value, _) = self.sample(k);
        self.run = Run::Idle { value };
        self.pending = None;
        self.n = 0;
        self.off = 0;
        self.strobed = false;
    }

    /// A control word for this counter (not a latch command). All control
    /// logic is reset: latches, flip-flops, the count in progress; OUT
    /// goes low in mode 0 and high otherwise. The CR is kept.
    pub(crate) fn program(&mut self, control: u8, k: u64) {
        self.normalize(k);
        self.halt(k);
        self.control = control & CW_PROGRAM_MASK;
        self.has_count = false;
        self.write_lsb = None;
        self.read_msb = false;
        self.latched_count = None;
        self.latched_status = None;
        self.null_count = true;
    }

    /// Counter latch command (or read-back of the count): ignored while a
    /// latched count is unread.
    pub(crate) fn latch(&mut self, k: u64) {
        if self.latched_count.is_none() {
            self.normalize(k);
            self.latched_count = Some(self.sample(k).0);
        }
    }

    /// The status byte at `k`: OUT, null count and the control bits.
    pub(crate) fn status(&mut self, k: u64) -> u8 {
        self.normalize(k);
        let out = if self.sample(k).1 { STATUS_OUT } else { 0 };
        let null = if self.null_count { STATUS_NULL_COUNT } else { 0 };
        out | null | self.control
    }

    /// Read-back of the status: ignored while a latched status is unread.
    pub(crate) fn latch_status(&mut self, k: u64) {
        if self.latched_status.is_none() {
            self.latched_status = Some(self.status(k));
        }
    }

    /// A read of the data port: a latched status first, then the latched
    /// count, else the live count; two-byte access alternates LSB and MSB
    /// and releases the latch after its MSB.
    pub(crate) fn read(&mut self, k: u64) -> u8 {
        if let Some(status) = self.latched_status.take() {
            return status;
        }
        self.normalize(k);
        let value = match self.latched_count {
            Some(v) => v,
            None => self.sample(k).0,
        };
        let [lsb, msb] = value.to_le_bytes();
        let (byte, last) = match self.access() {
            Access::Lsb => (lsb, true),
            Access::Msb => (msb, true),
            Access::Word if self.read_msb => (msb, true),
            Access::Word => (lsb, false),
        };
        if self.access() == Access::Word {
            self.read_msb = !self.read_msb;
        }
        if last {
            self.latched_count = None;
        }
        byte
    }

    /// A write of the data port.
    pub(crate) fn write(&mut self, value: u8, k: u64) {
        self.normalize(k);
        let raw = match self.access() {
            Access::Lsb => u16::from(value),
            Access::Msb => u16::from(value) << 8,
            Access::Word => match self.write_lsb.take() {
                Some(lsb) => u16::from_le_bytes([lsb, value]),
                None => {
                    self.write_lsb = Some(value);
                    // Mode 0: "writing the first byte disables counting;
                    // OUT is set low immediately".
                    if self.mode() == Mode::TerminalCount {
                        self.halt(k);
                    }
                    return;
                }
            },
        };
        self.cr = raw;
        self.has_count = true;
        self.null_count = true;
        let next = Load { at: k.saturating_add(1), low_half: false, cycle_end: false };
        match self.mode() {
            Mode::TerminalCount => {
                self.halt(k);
                self.pending = Some(next);
            }
            Mode::SoftwareStrobe => self.pending = Some(next),
            // Loaded by the next trigger.
            Mode::OneShot | Mode::HardwareStrobe => {}
            Mode::RateGenerator | Mode::SquareWave => match self.run {
                Run::Idle { .. } => self.pending = Some(next),
                // Loaded by the gate's rising edge.
                Run::Paused { .. } => {}
                // At the end of the current period or half-cycle, or by a
                // trigger already on its way; either loads the newest CR.
                Run::Counting { t0 } => {
                    if self.pending.is_none() {
                        self.pending = Some(self.end_of_cycle(t0, k));
                    }
                }
            },
        }
    }

    /// Modes 2 and 3, counting since `t0`: the first reload edge after
    /// `k` (mode 2: the end of the period; mode 3: the end of the
    /// half-cycle).
    fn end_of_cycle(&self, t0: u64, k: u64) -> Load {
        let e_min = k.saturating_add(1).saturating_sub(t0).max(1);
        let e0 = next_phase(self.off, self.n, e_min, 0);
        if self.mode() == Mode::SquareWave {
            let eh = next_phase(self.off, self.n, e_min, high_len(self.n));
            if eh < e0 {
                return Load { at: t0.saturating_add(eh), low_half: true, cycle_end: true };
            }
        }
        Load { at: t0.saturating_add(e0), low_half: false, cycle_end: true }
    }

    /// The gate input changes to `level` at `k`.
    pub(crate) fn set_gate(&mut self, level: bool, k: u64) {
        self.normalize(k);
        if self.gate == level {
            return;
        }
        self.gate = level;
        let mode = self.mode();
        if level {
            match (mode, self.run) {
                // Counting resumes from where it stopped; a strobe that was
                // under way when the gate fell has ended since.
                (Mode::TerminalCount | Mode::SoftwareStrobe, Run::Paused { elapsed, since }) => {
                    if mode == Mode::SoftwareStrobe && elapsed == u64::from(self.n) && k > since {
                        self.strobed = true;
                    }
                    self.run = Run::Counting { t0: k.saturating_sub(elapsed) };
                }
                (Mode::TerminalCount | Mode::SoftwareStrobe, _) => {}
                // A trigger: the CR is loaded at the next edge (if a count
                // has been written by then).
                _ => {
                    let at = k.saturating_add(1);
                    self.pending = Some(Load { at, low_half: false, cycle_end: false });
                }
            }
        } else if mode.gate_level() {
            if let Run::Counting { t0 } = self.run {
                self.run = Run::Paused { elapsed: k.saturating_sub(t0), since: k };
            }
            // Modes 2 and 3 stop: the end of the cycle that would have
            // taken a new count does not come, and the gate's rising edge
            // will load it. A load at the next edge still happens.
            if self.pending.is_some_and(|l| l.cycle_end) {
                self.pending = None;
            }
        }
    }

    /// The first edge after `x` at which OUT rises, counting the pending
    /// load; `None` if OUT will not rise unless the guest acts.
    pub(crate) fn next_rise(&self, x: u64) -> Option<u64> {
        let mode = self.mode();
        let pending = self.pending.filter(|_| self.has_count);
        let limit = pending.map_or(u64::MAX, |l| l.at);
        if let Run::Counting { t0 } = self.run {
            let rise =
                if self.strobed { None } else { segment_rise(mode, self.n, self.off, t0, x) };
            if let Some(t) = rise {
                if t < limit {
                    return Some(t);
                }
            }
        }
        let load = pending?;
        if !self.gate && mode.gate_level() {
            return None;
        }
        let n = self.count_of(self.cr);
        let off = if load.low_half { high_len(n) } else { 0 };
        if load.at > x {
            let before = self.sample(load.at.saturating_sub(1)).1;
            let after = eval(mode, self.modulus(), n, off, 0).1;
            if !before && after {
                return Some(load.at);
            }
        }
        segment_rise(mode, n, off, load.at, x)
    }
}
