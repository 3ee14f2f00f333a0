// SPDX-License-Identifier: GPL-2.0

//! The high precision event timer: a pure, total model of one IA-PC HPET
//! 1.0a timer block.
//!
//! The block has [`TIMERS`] timers (comparators) beside a 64-bit main
//! counter that runs at 100 MHz ([`regs::FREQUENCY_HZ`]; COUNTER_CLK_PERIOD
//! is exactly 10,000,000 fs). It reports revision 1, vendor 0x8086 and
//! legacy replacement capability. Every timer can run periodic, in 64-bit
//! or 32-bit mode, and deliver to an I/O APIC pin (20 to 23,
//! [`regs::ROUTE_PINS`]) or by FSB message.
//!
//! # How the integration layer uses it
//!
//! One [`Hpet`] per VM, behind whatever lock guards the VM's platform
//! devices. Time is the VM clock in nanoseconds ([`Nanos`]).
//!
//! - **Guest accesses.** The 1 KiB block is mapped at 0xFED0_0000 (the
//!   address the ACPI HPET table names). A read goes to [`Hpet::read`], a
//!   write to [`Hpet::write`], with the offset into the block.
//! - **Effects.** [`Hpet::write`], [`Hpet::timer_expired`],
//!   [`Hpet::reset`] and [`Hpet::restore`] return [`Effects`]:
//!   - `irqs[n]`: what timer n's interrupt does. [`Irq::Isa`] goes to the
//!     8259 input and, through the interrupt source overrides, to the I/O
//!     APIC pin of that ISA IRQ (IRQ 0 is pin 2); [`Irq::Ioapic`] goes to
//!     that I/O APIC pin; [`Irq::Msi`] goes to the local APICs' MSI router.
//!     Each timer is a line source of its own: if two timers drive the same
//!     pin, the pin is the OR of the two.
//!   - `timer`: arm or cancel the one host timer, and call
//!     [`Hpet::timer_expired`] when it fires.
//!   - `legacy`: legacy replacement routing was switched on or off; while
//!     it is on, the PIT's IRQ 0 and the RTC's IRQ 8 outputs reach
//!     nothing (the HPET's timers 0 and 1 own those lines).
//! - **Save and restore.** [`Hpet::snapshot`] and [`Hpet::restore`] carry
//!   a versioned [`Snapshot`]; a refused one changes nothing.
//!
//! # Time
//!
//! The counter is a function of `now`: while it runs, it is `count +
//! (now - base) / 10`. Comparator matches are worked out when the device
//! is next touched: every mutating call first brings the timers up to
//! `now` ("catches up"), delivering the interrupts that fell due, and a
//! read shows the state as if that had happened. The host timer only
//! makes the delivery punctual; a callback that comes early does nothing
//! but re-arm, and one that comes late delivers one interrupt per timer
//! however many matches it missed, a periodic comparator keeping its phase
//! (it advances by whole periods past the count).
//!
//! # Behaviour the specification leaves open, as this model defines it
//!
//! - **Access sizes.** Reads of 1, 2, 4 or 8 bytes at an offset aligned to
//!   their size return those bytes of the register; a write takes effect
//!   only as 4 bytes at a 4-aligned offset (one half of a register) or 8
//!   bytes at an 8-aligned one. Anything else reads 0 and is dropped.
//!   Reserved offsets, timers beyond [`TIMERS`] and offsets past the block
//!   read 0 and ignore writes; reserved bits read 0.
//! - **Main counter.** Writable only while halted (ENABLE_CNF = 0); a
//!   write while it runs is dropped.
//! - **Halting.** ENABLE_CNF = 0 stops the counter where it is and stops
//!   every timer; a level line that was up goes down (its status bit
//!   stays) and comes back up when the counter is enabled again if the bit
//!   is still set.
//! - **Routes.** A Tn_INT_ROUTE_CNF value whose pin is not in
//!   Tn_INT_ROUTE_CAP leaves the field as it was (the specification: the
//!   value read back will not match). At reset the field is 0, a pin no
//!   timer may use: such a timer interrupts nothing until it is routed.
//!   Under legacy replacement, timers 0 and 1 go to ISA IRQ 0 and 8
//!   whatever their route and FSB bits say.
//! - **Comparator writes.** The periodic increment is the last value
//!   written. In one-shot mode a write sets the comparator; in periodic
//!   mode it sets the comparator (the accumulator) too only while
//!   Tn_VAL_SET_CNF is 1, and every comparator write clears that bit (so
//!   Linux's "set value, then write the period" works, as do Intel's
//!   two-half sequences). A comparator at or behind the current count
//!   matches only when the counter comes round to it again.
//! - **Matches.** A one-shot timer matches every time the counter passes
//!   its comparator: once per 2^32 ticks (about 42.9 s) in 32-bit mode,
//!   once per 2^64 in 64-bit mode. A periodic timer with increment 0
//!   behaves as a one-shot one.
//! - **32-bit mode.** Setting Tn_32MODE_CNF cuts the comparator and the
//!   increment to 32 bits; the comparator's high half then reads 0 and
//!   ignores writes, and the comparator wraps at 2^32.
//! - **Level triggering.** A match of a level-triggered timer sets its
//!   GINTR_STA bit even with Tn_INT_ENB_CNF = 0 (the specification); its
//!   line is up while the bit, Tn_INT_ENB_CNF and ENABLE_CNF are all set.
//!   Writing 1 to the bit clears it and lowers the line. A change that
//!   takes the timer out of level mode or moves its line (route, FSB,
//!   legacy replacement) clears the bit, lowering the old line. FSB
//!   messages are always edge-like; their status bit is never set.
//!
//! Glossary: HPET = high precision event timer; GCAP_ID = general
//! capabilities and ID register; GEN_CONF = general configuration;
//! GINTR_STA = general interrupt status; MAIN_CNT = main counter; Tn =
//! timer n; FSB = front-side bus (the HPET's name for MSI delivery); MSI =
//! message-signalled interrupt; LEG_RT = legacy replacement routing; ISA
//! IRQ = one of the 16 legacy interrupt lines; PIT = 8254 programmable
//! interval timer; RTC = real-time clock.

pub mod regs;
pub mod snapshot;

#[cfg(test)]
mod tests;

use super::common::{LineOp, Msi, Nanos, TimerAction};
use regs::*;

pub use regs::TIMERS;
pub use snapshot::{Snapshot, SNAPSHOT_VERSION};

/// One operation on a timer's interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Irq {
    /// An ISA IRQ (legacy replacement routing: timer 0 drives IRQ 0, timer
    /// 1 IRQ 8).
    Isa {
        /// The IRQ.
        irq: u8,
        /// What the line does.
        op: LineOp,
    },
    /// An I/O APIC pin (Tn_INT_ROUTE_CNF).
    Ioapic {
        /// The pin.
        pin: u8,
        /// What the line does.
        op: LineOp,
    },
    /// An FSB message: Tn_FSB_INT_ADDR and Tn_FSB_INT_VAL.
    Msi(Msi),
}

/// What the caller must do after a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct Effects {
    /// Per timer, its interrupt operation, if any.
    pub irqs: [Option<Irq>; TIMERS],
    /// The host timer's new state, if it changed.
    pub timer: Option<TimerAction>,
    /// Legacy replacement routing was switched on (`true`: mute the PIT's
    /// IRQ 0 and the RTC's IRQ 8) or off (`false`: give them back).
    pub legacy: Option<bool>,
}

impl Effects {
    /// No effect.
    pub const NONE: Effects = Effects { irqs: [None; TIMERS], timer: None, legacy: None };

    /// Records `irq` for timer `n`. Within one call a line may be raised
    /// and lowered again (an interrupt that fell due just before a write
    /// that masks it): that is a pulse.
    fn push(&mut self, n: usize, irq: Irq) {
        use LineOp::{Assert, Deassert, Pulse};
        let Some(slot) = self.irqs.get_mut(n) else {
            return;
        };
        let merged = match (*slot, irq) {
            (Some(Irq::Isa { irq: a, op: Assert | Pulse }), Irq::Isa { irq: b, op: Deassert })
                if a == b =>
            {
                Irq::Isa { irq: a, op: Pulse }
            }
            (
                Some(Irq::Ioapic { pin: a, op: Assert | Pulse }),
                Irq::Ioapic { pin: b, op: Deassert },
            ) if a == b => Irq::Ioapic { pin: a, op: Pulse },
            _ => irq,
        };
        *slot = Some(merged);
    }
}

/// Where a timer's interrupt goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Dest {
    /// An ISA IRQ (legacy replacement).
    Isa(u8),
    /// An I/O APIC pin.
    Ioapic(u8),
    /// An FSB message.
    Fsb,
    /// Nowhere: the route field names a pin no timer may use.
    Unrouted,
}

impl Dest {
    /// `op` on this line; `None` for an FSB or unrouted timer.
    const fn line(self, op: LineOp) -> Option<Irq> {
        match self {
            Dest::Isa(irq) => Some(Irq::Isa { irq, op }),
            Dest::Ioapic(pin) => Some(Irq::Ioapic { pin, op }),
            Dest::Fsb | Dest::Unrouted => None,
        }
    }
}

/// One timer's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Timer {
    /// Tn_CONF's writable bits ([`TN_WRITABLE`]); the capabilities are
    /// added when it is read. The route field is 0 or an allowed pin.
    conf: u64,
    /// Tn_COMPARATOR: the count of the next match (in periodic mode, the
    /// accumulator). Below 2^32 in 32-bit mode.
    cmp: u64,
    /// The last value written to the comparator: the periodic increment.
    /// Below 2^32 in 32-bit mode.
    period: u64,
    /// Tn_FSB_ROUTE: the MSI address in the high half, the data in the
    /// low half.
    fsb: u64,
}

impl Timer {
    /// After reset: everything off, the comparator all ones.
    const RESET: Timer = Timer { conf: 0, cmp: COMPARATOR_RESET, period: 0, fsb: 0 };

    const fn has(&self, bit: u64) -> bool {
        self.conf & bit != 0
    }

    /// The comparator's width, as a mask.
    const fn width(&self) -> u64 {
        if self.has(TN_32MODE) {
            LOW_HALF
        } else {
            u64::MAX
        }
    }

    /// Ticks from count `from` to the next count after it that matches;
    /// `None` when that is 2^64 ticks away (a 64-bit comparator equal to
    /// `from`), which no clock reaches.
    const fn next_offset(&self, from: u64) -> Option<u64> {
        if self.has(TN_32MODE) {
            let off = (self.cmp as u32).wrapping_sub(from as u32);
            Some(if off == 0 { 1 << 32 } else { off as u64 })
        } else {
            let off = self.cmp.wrapping_sub(from);
            if off == 0 {
                None
            } else {
                Some(off)
            }
        }
    }

    /// The counter moved from `from` on by `ticks`: whether it matched on
    /// the way. A periodic comparator moves on by as many whole periods as
    /// put it ahead of the new count.
    fn advance(&mut self, from: u64, ticks: u64) -> bool {
        let Some(off) = self.next_offset(from) else {
            return false;
        };
        if off > ticks {
            return false;
        }
        if self.has(TN_TYPE_PERIODIC) && self.period != 0 {
            let matches = (ticks - off) / self.period + 1;
            self.cmp = self.cmp.wrapping_add(matches.wrapping_mul(self.period)) & self.width();
        }
        true
    }
}

/// The HPET.
///
/// State held: GEN_CONF (`config`), GINTR_STA (`status`), the main counter
/// as a base value and the VM time it had it (`count`, `base_ns`), how far
/// comparator matches have been worked out (`checked`), and each timer's
/// configuration, comparator, periodic increment and FSB route. Nothing
/// else: the host timer's state and the line levels follow from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hpet {
    /// GEN_CONF: [`CNF_ENABLE`] and [`CNF_LEG_RT`] only.
    config: u64,
    /// GINTR_STA: bit n set = level-triggered timer n matched and was not
    /// cleared. Only bits of timers in level mode.
    status: u64,
    /// While the counter runs, its value at `base_ns`; while halted, its
    /// value.
    count: u64,
    /// While the counter runs, when it was `count`; 0 while halted.
    base_ns: Nanos,
    /// The count up to which matches have been worked out. While halted,
    /// equal to `count`; while running, `checked - count` is at most the
    /// ticks elapsed since `base_ns`.
    checked: u64,
    /// The timers.
    timers: [Timer; TIMERS],
}

impl Default for Hpet {
    fn default() -> Self {
        Hpet::new()
    }
}

/// What the outputs were before a change: each timer's destination and
/// the line it held up.
type Outputs = [(Dest, Option<Dest>); TIMERS];

impl Hpet {
    /// An HPET after reset: counter halted at 0, every timer one-shot,
    /// disabled, edge, unrouted, comparator all ones.
    pub const fn new() -> Hpet {
        Hpet {
            config: 0,
            status: 0,
            count: 0,
            base_ns: 0,
            checked: 0,
            timers: [Timer::RESET; TIMERS],
        }
    }

    /// Resets the block (platform reset): lowers any line it held, cancels
    /// the host timer and ends legacy replacement routing.
    pub fn reset(&mut self) -> Effects {
        let mut fx = Effects::NONE;
        let action = self.timer_action();
        let legacy = self.legacy_replacement();
        let before = self.outputs();
        *self = Hpet::new();
        self.settle(&before, &mut fx);
        if action != TimerAction::Disarm {
            fx.timer = Some(TimerAction::Disarm);
        }
        if legacy {
            fx.legacy = Some(false);
        }
        fx
    }

    /// A guest read of `size` bytes at `offset` in the block (see the
    /// module documentation for the sizes that read something).
    pub fn read(&self, offset: u64, size: u8, now: Nanos) -> u64 {
        let width = u64::from(size);
        if !matches!(size, 1 | 2 | 4 | 8) || offset % width != 0 {
            return 0;
        }
        let reg = Reg::decode(offset);
        let value = match reg {
            // Show the matches that fell due as if they had been handled.
            Reg::Status | Reg::TimerComparator(_) => {
                let mut view = *self;
                view.catch_up(now, &mut Effects::default());
                view.value(reg, now)
            }
            _ => self.value(reg, now),
        };
        let shifted = value >> ((offset & 7) * 8);
        if size == 8 {
            shifted
        } else {
            shifted & ((1 << (width * 8)) - 1)
        }
    }

    /// A guest write of the low `size` bytes of `value` at `offset`.
    pub fn write(&mut self, offset: u64, size: u8, value: u64, now: Nanos) -> Effects {
        let mut fx = Effects::NONE;
        let (data, mask) = match size {
            8 if offset % 8 == 0 => (value, u64::MAX),
            4 if offset % 4 == 0 => {
                let shift = (offset & 4) * 8;
                ((value & LOW_HALF) << shift, LOW_HALF << shift)
            }
            _ => return fx,
        };
        let reg = Reg::decode(offset);
        if matches!(reg, Reg::Capabilities | Reg::Reserved) {
            return fx;
        }
        self.step(now, &mut fx, |hpet| hpet.write_reg(reg, data, mask, now));
        fx
    }

    /// The host timer fired (early, on time or late): delivers what fell
    /// due and says when to fire next.
    pub fn timer_expired(&mut self, now: Nanos) -> Effects {
        let mut fx = Effects::NONE;
        self.step(now, &mut fx, |_| {});
        fx.timer = Some(self.timer_action());
        fx
    }

    /// What the host timer should be doing: armed for the earliest match
    /// that interrupts, or cancelled.
    pub fn timer_action(&self) -> TimerAction {
        let mut earliest: Option<Nanos> = None;
        for n in 0..TIMERS {
            if let Some(t) = self.next_event(n) {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
        earliest.map_or(TimerAction::Disarm, TimerAction::Arm)
    }

    /// Whether legacy replacement routing is on (LEG_RT_CNF): the PIT's
    /// IRQ 0 and the RTC's IRQ 8 must then reach nothing.
    pub const fn legacy_replacement(&self) -> bool {
        self.config & CNF_LEG_RT != 0
    }

    /// The lines the HPET holds up, per timer, as `Assert` operations.
    pub fn asserted(&self) -> [Option<Irq>; TIMERS] {
        core::array::from_fn(|n| self.line(n).and_then(|d| d.line(LineOp::Assert)))
    }

    /// The main counter at `now`.
    pub fn counter(&self, now: Nanos) -> u64 {
        if self.running() {
            self.count.wrapping_add(self.elapsed(now))
        } else {
            self.count
        }
    }

    const fn running(&self) -> bool {
        self.config & CNF_ENABLE != 0
    }

    /// Ticks since `base_ns` at `now` (running only). A `now` earlier than
    /// one already seen counts as that one.
    fn elapsed(&self, now: Nanos) -> u64 {
        let ticks = now.saturating_sub(self.base_ns) / NANOS_PER_TICK;
        ticks.max(self.checked.wrapping_sub(self.count))
    }

    /// The value of `reg` (all 64 bits).
    fn value(&self, reg: Reg, now: Nanos) -> u64 {
        match reg {
            Reg::Capabilities => GCAP_ID_VALUE,
            Reg::Config => self.config,
            Reg::Status => self.status,
            Reg::Counter => self.counter(now),
            Reg::TimerConf(n) => self.timers.get(n).map_or(0, |t| t.conf | TN_CAPS),
            Reg::TimerComparator(n) => self.timers.get(n).map_or(0, |t| t.cmp),
            Reg::TimerFsb(n) => self.timers.get(n).map_or(0, |t| t.fsb),
            Reg::Reserved => 0,
        }
    }

    /// Applies a write of the bits `mask` of `data` (already in place in
    /// the 64-bit register) to `reg`.
    fn write_reg(&mut self, reg: Reg, data: u64, mask: u64, now: Nanos) {
        let merge = |old: u64| (old & !mask) | (data & mask);
        match reg {
            Reg::Config => {
                let was_running = self.running();
                self.config = merge(self.config) & CNF_WRITABLE;
                match (was_running, self.running()) {
                    // Caught up to `now` already: `checked` is the count.
                    (true, false) => {
                        self.count = self.checked;
                        self.base_ns = 0;
                    }
                    (false, true) => {
                        self.base_ns = now;
                        self.checked = self.count;
                    }
                    _ => {}
                }
            }
            Reg::Status => self.status &= !(data & mask),
            Reg::Counter => {
                if !self.running() {
                    self.count = merge(self.count);
                    self.checked = self.count;
                }
            }
            Reg::TimerConf(n) => {
                let Some(t) = self.timers.get_mut(n) else {
                    return;
                };
                let mut conf = merge(t.conf) & TN_WRITABLE;
                let route = (conf & TN_INT_ROUTE) >> TN_INT_ROUTE_SHIFT;
                if conf & TN_INT_ROUTE != t.conf & TN_INT_ROUTE && !pin_allowed(route) {
                    conf = (conf & !TN_INT_ROUTE) | (t.conf & TN_INT_ROUTE);
                }
                t.conf = conf;
                t.cmp &= t.width();
                t.period &= t.width();
            }
            Reg::TimerComparator(n) => {
                let Some(t) = self.timers.get_mut(n) else {
                    return;
                };
                let mask = mask & t.width();
                if mask == 0 {
                    return;
                }
                let merge = |old: u64| (old & !mask) | (data & mask);
                if !t.has(TN_TYPE_PERIODIC) || t.has(TN_VAL_SET) {
                    t.cmp = merge(t.cmp);
                }
                t.period = merge(t.period);
                t.conf &= !TN_VAL_SET;
            }
            Reg::TimerFsb(n) => {
                if let Some(t) = self.timers.get_mut(n) {
                    t.fsb = merge(t.fsb);
                }
            }
            Reg::Capabilities | Reg::Reserved => {}
        }
    }

    /// Runs `change` at `now`: first the matches due by `now`, then the
    /// change, each followed by the line changes it makes; then the host
    /// timer and legacy routing, if they changed.
    fn step(&mut self, now: Nanos, fx: &mut Effects, change: impl FnOnce(&mut Self)) {
        let action = self.timer_action();
        let legacy = self.legacy_replacement();
        let before = self.outputs();
        self.catch_up(now, fx);
        self.settle(&before, fx);
        let before = self.outputs();
        change(self);
        self.settle(&before, fx);
        let after = self.timer_action();
        if after != action {
            fx.timer = Some(after);
        }
        if self.legacy_replacement() != legacy {
            fx.legacy = Some(self.legacy_replacement());
        }
    }

    /// Works out the matches between `checked` and the count at `now`.
    /// Edge and FSB interrupts go into `fx`; level matches set status bits
    /// (their lines are [`Hpet::settle`]'s business).
    fn catch_up(&mut self, now: Nanos, fx: &mut Effects) {
        if !self.running() {
            return;
        }
        let done = self.checked.wrapping_sub(self.count);
        let target = self.elapsed(now);
        let ticks = target.saturating_sub(done);
        if ticks == 0 {
            return;
        }
        let from = self.checked;
        for n in 0..TIMERS {
            let matched = self.timers.get_mut(n).is_some_and(|t| t.advance(from, ticks));
            if matched {
                self.fire(n, fx);
            }
        }
        self.checked = self.count.wrapping_add(target);
    }

    /// Timer `n` matched.
    fn fire(&mut self, n: usize, fx: &mut Effects) {
        let Some(t) = self.timers.get(n) else {
            return;
        };
        if self.level(n) {
            self.status |= 1 << n;
            return;
        }
        if !t.has(TN_INT_ENB) || !self.running() {
            return;
        }
        let irq = match self.dest(n) {
            Dest::Fsb => Some(Irq::Msi(Msi { addr: t.fsb >> 32, data: t.fsb as u32 })),
            d => d.line(LineOp::Pulse),
        };
        if let Some(irq) = irq {
            fx.push(n, irq);
        }
    }

    /// Where timer `n` delivers.
    fn dest(&self, n: usize) -> Dest {
        if self.legacy_replacement() {
            match n {
                0 => return Dest::Isa(LEGACY_IRQ_TIMER0),
                1 => return Dest::Isa(LEGACY_IRQ_TIMER1),
                _ => {}
            }
        }
        let Some(t) = self.timers.get(n) else {
            return Dest::Unrouted;
        };
        if t.has(TN_FSB_EN) {
            return Dest::Fsb;
        }
        let route = (t.conf & TN_INT_ROUTE) >> TN_INT_ROUTE_SHIFT;
        if pin_allowed(route) {
            Dest::Ioapic(route as u8)
        } else {
            Dest::Unrouted
        }
    }

    /// Whether timer `n` is level-triggered: Tn_INT_TYPE_CNF, and not an
    /// FSB timer.
    fn level(&self, n: usize) -> bool {
        self.timers.get(n).is_some_and(|t| t.has(TN_INT_TYPE_LEVEL)) && self.dest(n) != Dest::Fsb
    }

    /// The line timer `n` holds up, if any.
    fn line(&self, n: usize) -> Option<Dest> {
        let up = self.status & (1 << n) != 0
            && self.running()
            && self.level(n)
            && self.timers.get(n).is_some_and(|t| t.has(TN_INT_ENB));
        let dest = self.dest(n);
        (up && dest.line(LineOp::Assert).is_some()).then_some(dest)
    }

    fn outputs(&self) -> Outputs {
        core::array::from_fn(|n| (self.dest(n), self.line(n)))
    }

    /// After a change: clears the status bits of timers that left level
    /// mode or whose line moved, then reports every line that went up or
    /// down since `before`. A line never moves while it is up (its status
    /// bit is cleared first), so one operation per timer says it all.
    fn settle(&mut self, before: &Outputs, fx: &mut Effects) {
        for (n, &(dest, line)) in before.iter().enumerate() {
            if self.status & (1 << n) != 0 && (!self.level(n) || self.dest(n) != dest) {
                self.status &= !(1 << n);
            }
            let now_up = self.line(n);
            if now_up == line {
                continue;
            }
            if let Some(irq) = line.and_then(|d| d.line(LineOp::Deassert)) {
                fx.push(n, irq);
            }
            if let Some(irq) = now_up.and_then(|d| d.line(LineOp::Assert)) {
                fx.push(n, irq);
            }
        }
    }

    /// When timer `n` next interrupts, if it does: it must be running,
    /// enabled, routed, and not already holding its level line up.
    fn next_event(&self, n: usize) -> Option<Nanos> {
        let t = self.timers.get(n)?;
        if !self.running()
            || !t.has(TN_INT_ENB)
            || self.dest(n) == Dest::Unrouted
            || (self.level(n) && self.status & (1 << n) != 0)
        {
            return None;
        }
        let off = t.next_offset(self.checked)?;
        let ticks = self.checked.wrapping_sub(self.count).checked_add(off)?;
        self.base_ns.checked_add(ticks.checked_mul(NANOS_PER_TICK)?)
    }
}
