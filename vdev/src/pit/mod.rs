// SPDX-License-Identifier: GPL-2.0

//! The 8254 programmable interval timer and port 0x61.
//!
//! Three counters on one input clock of 105/88 MHz (1.193181818 MHz, a
//! third of the 3.579545 MHz NTSC colour burst; "1193182 Hz" rounded):
//!
//! - counter 0 at port 0x40, gate tied high, OUT wired to ISA IRQ 0;
//! - counter 1 at port 0x41, gate tied high, OUT not wired (it once
//!   requested DRAM refresh);
//! - counter 2 at port 0x42, gate from port 0x61 bit 0, OUT read back in
//!   port 0x61 bit 5 (and, with bit 1, driving the speaker);
//! - the control word register at port 0x43 (programming, counter latch
//!   and read-back commands).
//!
//! Every mode 0-5 (6 and 7 are 2 and 3), binary and BCD counting, the
//! three access modes with their read and write flip-flops, the counter
//! latch command, read-back of counts and statuses, and null count are
//! modelled as the Intel 8254 datasheet describes them, including the
//! clock edge that loads a count before counting starts (mode 0's OUT
//! rises `N + 1` clocks after the count is written). Counts and OUT are
//! computed from `now`; nothing ticks.
//!
//! # How the integration layer uses it
//!
//! One [`Pit`] per VM, behind one lock. Time is the VM clock in ns.
//!
//! - **Guest accesses.** Byte `IN`/`OUT` of ports 0x40-0x43 and 0x61 go
//!   to [`Pit::read`] / [`Pit::write`]. A wider access is split into bytes
//!   by port; ports the device does not decode read 0xFF and ignore
//!   writes.
//! - **Effects.** [`Pit::write`] and [`Pit::timer_expired`] return
//!   [`Effects`]:
//!   - `irq0`: a [`LineOp::Pulse`] on ISA IRQ 0, that is on the master
//!     PIC's input 0 and the IOAPIC pin the MADT's interrupt source
//!     override names (pin 2 on a usual PC);
//!   - `timer`: arm or cancel the PIT's one host timer, and call
//!     [`Pit::timer_expired`] when it fires. `None` leaves it as it is
//!     (a write returns it only when the deadline changes; a callback
//!     always does, since the host timer has just fired).
//! - **Save and restore.** [`Pit::snapshot`] and [`Pit::restore`] carry a
//!   versioned [`Snapshot`]; the VM clock must continue across them.
//!
//! # Interrupts and the host timer
//!
//! IRQ 0 is edge-triggered, so the device reports the rising edges of
//! counter 0's OUT as pulses: once per period in modes 2 and 3, once at
//! terminal count in mode 0, once at the end of the strobe (one clock
//! after terminal count, when OUT rises again) in mode 4. Modes 1 and 5
//! need a gate rising edge, which counter 0 never gets. A control word
//! for a mode other than 0 sets OUT high at once; if OUT was low (mode 0
//! before terminal count, a mode 3 low half, the low clock of modes 2 and
//! 4) that is an edge too, reported with that write.
//!
//! Late callbacks: all edges due by `now` become **one** pulse (the PIC
//! would merge them anyway), and the next deadline is the next edge of the
//! programmed sequence, computed from the count's load, so lateness never
//! shifts the phase. Missed ticks are *not* replayed later: this is KVM's
//! "discard" policy, not its default "reinject" (which counts missed ticks
//! and feeds them one per EOI), and unlike bhyve's vatpit, which restarts
//! the period from the late callback. A guest that keeps time by counting
//! IRQ 0 loses the ticks the host missed; Linux and Windows read a
//! clocksource instead. Edges due by the time of a guest write are
//! delivered with that write's effects.
//!
//! After a pulse the host timer is never asked to fire sooner than
//! [`MIN_IRQ_INTERVAL`] later: a guest programming a period shorter than
//! that gets its edges merged, not a host interrupt storm. The counts and
//! OUT it reads keep the programmed rate.
//!
//! # Counts written while counting
//!
//! As the datasheet says: mode 0 restarts (OUT low, the new count loaded
//! at the next clock; between the two bytes of a two-byte count it stops);
//! mode 4 reloads at the next clock; mode 2 finishes its current period
//! and mode 3 its current half-cycle before the new count takes effect;
//! modes 1 and 5 take it at the next trigger. A trigger (a rising edge of
//! counter 2's gate, in modes 1, 2, 3 and 5) loads the count at the next
//! clock, including one written after the trigger but before that clock.
//!
//! A count of 1 in modes 2 and 3, below the datasheet's minimum of 2, runs
//! as 2. BCD digits above 9 weigh what they say (the datasheet leaves them
//! undefined).
//!
//! Glossary: CR = count register (what the guest writes); CE = counting
//! element (what counts); OL = output latch (a latched count); OUT, GATE,
//! CLK = a counter's pins; TC = terminal count (the CE reaching zero);
//! RW = the access field of the control word; SC = its select field;
//! BCD = binary-coded decimal counting, four decades.

mod counter;
pub mod regs;
mod snapshot;

#[cfg(test)]
mod tests;

pub use snapshot::{CounterSnapshot, Snapshot, SNAPSHOT_VERSION};

use super::common::{LineOp, Nanos, TimerAction};
use counter::Counter;
use regs::{
    clock_at, time_of, Channel, Command, OPEN_BUS, PORT_CONTROL, PORT_SYSTEM_B, REFRESH_CLOCKS,
    SYSB_GATE2, SYSB_OUT2, SYSB_REFRESH, SYSB_SPEAKER,
};

/// The shortest time between a pulse on IRQ 0 and the host timer that
/// brings the next: 100 µs, 10 kHz. Linux programs at most 1 kHz.
pub const MIN_IRQ_INTERVAL: Nanos = 100_000;

/// What the caller must do after a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct Effects {
    /// An operation on ISA IRQ 0 (always a [`LineOp::Pulse`]).
    pub irq0: Option<LineOp>,
    /// The host timer's new state; `None`: unchanged.
    pub timer: Option<TimerAction>,
}

impl Effects {
    /// Nothing to do.
    pub const NONE: Effects = Effects { irq0: None, timer: None };
}

/// The 8254 and port 0x61.
///
/// State: the three counters (programming, count register, latches and
/// flip-flops, the counting element as a run from a clock edge, a count on
/// its way in; counter 2's gate), port 0x61's speaker bit, and the next
/// rising edge of counter 0's OUT that has not been delivered as an IRQ 0
/// pulse, with the host-timer deadline last asked for it. Counter times
/// are clock edges on one grid from VM time 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pit {
    /// Counters 0, 1 and 2.
    counters: [Counter; 3],
    /// Port 0x61 bit 1.
    speaker: bool,
    /// The edge of counter 0's next OUT rise not yet pulsed on IRQ 0.
    irq_next: Option<u64>,
    /// The host timer as last requested: `Some` exactly when `irq_next`
    /// is (its edge's time, or later after a pulse).
    deadline: Option<Nanos>,
}

impl Default for Pit {
    fn default() -> Self {
        Pit::new()
    }
}

impl Pit {
    /// The device at power-up: every counter in mode 0 with no count
    /// (OUT low), counter 2's gate and the speaker off, no interrupt
    /// pending. The firmware or the OS programs it.
    pub const fn new() -> Pit {
        Pit {
            counters: [Counter::new(true), Counter::new(true), Counter::new(false)],
            speaker: false,
            irq_next: None,
            deadline: None,
        }
    }

    /// Back to the power-up state; the host timer is cancelled.
    pub fn reset(&mut self) -> Effects {
        *self = Pit::new();
        Effects { irq0: None, timer: Some(TimerAction::Disarm) }
    }

    fn counter_mut(&mut self, channel: Channel) -> &mut Counter {
        match channel {
            Channel::C0 => &mut self.counters[0],
            Channel::C1 => &mut self.counters[1],
            Channel::C2 => &mut self.counters[2],
        }
    }

    /// A byte read of `port` at `now`.
    pub fn read(&mut self, port: u16, now: Nanos) -> u8 {
        let k = clock_at(now);
        match port {
            PORT_CONTROL => 0,
            PORT_SYSTEM_B => {
                let speaker = self.speaker;
                let c2 = &mut self.counters[2];
                c2.normalize(k);
                let mut v = if speaker { SYSB_SPEAKER } else { 0 };
                if c2.gate {
                    v |= SYSB_GATE2;
                }
                if c2.sample(k).1 {
                    v |= SYSB_OUT2;
                }
                if (k / REFRESH_CLOCKS) % 2 == 1 {
                    v |= SYSB_REFRESH;
                }
                v
            }
            _ => match Channel::from_port(port) {
                Some(channel) => self.counter_mut(channel).read(k),
                None => OPEN_BUS,
            },
        }
    }

    /// A byte write of `value` to `port` at `now`.
    pub fn write(&mut self, port: u16, value: u8, now: Nanos) -> Effects {
        let k = clock_at(now);
        let before = self.irq_next;
        let pulsed = self.service(k);
        let mut touched = false;
        let mut rose = false;
        match port {
            PORT_CONTROL => match Command::decode(value) {
                Command::Program { channel, control } => {
                    let c = self.counter_mut(channel);
                    c.normalize(k);
                    let was = c.sample(k).1;
                    c.program(control, k);
                    touched = channel == Channel::C0;
                    rose = touched && !was && c.sample(k).1;
                }
                Command::Latch { channel } => self.counter_mut(channel).latch(k),
                Command::ReadBack { count, status, select } => {
                    for channel in Channel::ALL {
                        if select & channel.readback_bit() != 0 {
                            let c = self.counter_mut(channel);
                            if count {
                                c.latch(k);
                            }
                            if status {
                                c.latch_status(k);
                            }
                        }
                    }
                }
            },
            PORT_SYSTEM_B => {
                self.speaker = value & SYSB_SPEAKER != 0;
                self.counters[2].set_gate(value & SYSB_GATE2 != 0, k);
            }
            _ => {
                if let Some(channel) = Channel::from_port(port) {
                    self.counter_mut(channel).write(value, k);
                    touched = channel == Channel::C0;
                }
            }
        }
        if touched {
            self.counters[0].normalize(k);
            self.irq_next = self.counters[0].next_rise(k);
        }
        let changed = pulsed || self.irq_next != before;
        let timer = changed.then(|| self.rearm(now, pulsed));
        Effects { irq0: (pulsed || rose).then_some(LineOp::Pulse), timer }
    }

    /// The host timer fired (early, on time or late): pulses IRQ 0 once if
    /// an edge is due, and says when to fire next.
    pub fn timer_expired(&mut self, now: Nanos) -> Effects {
        if self.service(clock_at(now)) {
            let timer = Some(self.rearm(now, true));
            Effects { irq0: Some(LineOp::Pulse), timer }
        } else {
            // Early or repeated: the deadline stands.
            Effects { irq0: None, timer: Some(self.armed()) }
        }
    }

    /// If counter 0's next edge is due by edge `k`, consumes it (and any
    /// others up to `k`) and returns `true`.
    fn service(&mut self, k: u64) -> bool {
        match self.irq_next {
            Some(t) if t <= k => {
                self.counters[0].normalize(k);
                self.irq_next = self.counters[0].next_rise(k);
                true
            }
            _ => false,
        }
    }

    /// A new deadline for the next undelivered edge, no sooner than
    /// [`MIN_IRQ_INTERVAL`] after a pulse delivered at `now`.
    fn rearm(&mut self, now: Nanos, pulsed: bool) -> TimerAction {
        self.deadline = self.irq_next.map(|t| {
            let at = time_of(t);
            if pulsed {
                at.max(now.saturating_add(MIN_IRQ_INTERVAL))
            } else {
                at
            }
        });
        self.armed()
    }

    /// The host timer as last requested.
    fn armed(&self) -> TimerAction {
        match self.deadline {
            Some(t) => TimerAction::Arm(t),
            None => TimerAction::Disarm,
        }
    }
}
