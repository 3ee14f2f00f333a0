// SPDX-License-Identifier: GPL-2.0

//! The APIC timer: one-shot, periodic and TSC-deadline.
//!
//! There is no clock in here. Every operation takes `now`, the guest's TSC,
//! and the timer answers with the instant it next expires. The count runs
//! at `bus_hz / divisor`; one count lasts `divisor * tsc_hz / bus_hz` TSC
//! ticks, computed in 128-bit arithmetic so that no value overflows.
//!
//! The counting state is `(start, count_at_start)`: at TSC `start` the
//! current count was `count_at_start`. A one-shot timer counts down to
//! zero and stops; a periodic timer then reloads the initial count.
//! A write that changes the rate (divide configuration) rebases the pair
//! at `now`, so the count continues from where it was; a change of mode
//! stops the timer.
//!
//! Source: Intel SDM vol. 3A, "APIC Timer".

use super::Tsc;

/// What the integration layer should do with this vCPU's host timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerAction {
    /// Call [`Vlapic::timer_expired`](super::Vlapic::timer_expired) when the
    /// guest TSC reaches this value (at once if it already has).
    Arm(Tsc),
    /// No expiry is pending.
    Disarm,
}

/// The timer mode, LVT timer bits 18:17.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerMode {
    /// Counts down once.
    OneShot,
    /// Counts down and reloads.
    Periodic,
    /// Fires when the TSC reaches `IA32_TSC_DEADLINE`.
    TscDeadline,
}

impl TimerMode {
    /// Decodes LVT timer bits 18:17. The reserved encoding 0b11 counts as
    /// one-shot.
    pub const fn from_lvt(lvt: u32) -> TimerMode {
        match (lvt >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }
}

/// Divisor selected by a divide-configuration value (bits 0, 1 and 3).
pub const fn divisor(dcr: u32) -> u64 {
    let code = (dcr & 3) | ((dcr >> 1) & 4);
    if code == 7 {
        1
    } else {
        2 << code
    }
}

/// Rates of the timer's clock, from the model's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Clock {
    /// APIC timer input clock, before the divider.
    pub bus_hz: u64,
    /// Guest TSC frequency.
    pub tsc_hz: u64,
    /// Shortest interval at which a periodic timer is delivered, in TSC
    /// ticks (a guest cannot make the host fire faster than this).
    pub min_period: u64,
}

impl Clock {
    /// TSC ticks that `counts` counts take with divisor `div`, rounded up.
    pub fn ticks(&self, counts: u64, div: u64) -> u64 {
        let tsc = self.tsc_hz.saturating_mul(div);
        mul_div(counts, tsc, self.bus_hz.max(1), true)
    }

    /// Whole counts that pass in `ticks` TSC ticks with divisor `div`.
    pub fn counts(&self, ticks: u64, div: u64) -> u64 {
        mul_div(ticks, self.bus_hz, self.tsc_hz.saturating_mul(div).max(1), false)
    }
}

/// `a * b / c`, rounded down or up, saturating at `u64::MAX`; `c` is not
/// zero. The product is 128 bits wide; the kernel has no 128-bit divide,
/// so a product that does not fit 64 bits is divided bit by bit.
pub fn mul_div(a: u64, b: u64, c: u64, round_up: bool) -> u64 {
    let c = c.max(1);
    let n = u128::from(a) * u128::from(b);
    let (q, rem) = if n >> 64 == 0 {
        let n = n as u64;
        (n / c, n % c != 0)
    } else {
        if (n >> 64) as u64 >= c {
            return u64::MAX;
        }
        // Long division: the quotient fits 64 bits, and the remainder stays
        // below `c`, so below 2^64, before each shift.
        let (mut q, mut r) = (0u64, (n >> 64) as u64);
        for bit in (0..64).rev() {
            let carry = r >> 63;
            r = (r << 1) | ((n >> bit) as u64 & 1);
            q <<= 1;
            if carry != 0 || r >= c {
                r = r.wrapping_sub(c);
                q |= 1;
            }
        }
        (q, r != 0)
    };
    if round_up && rem {
        q.saturating_add(1)
    } else {
        q
    }
}

/// The timer's state. Fields are public to the crate so that snapshots
/// can copy them; [`Timer::check`] says whether a set of values is
/// consistent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timer {
    /// Initial-count register.
    pub initial: u32,
    /// Divide-configuration register.
    pub dcr: u32,
    /// When the count was `count_at_start`.
    pub start: Tsc,
    /// The count at `start`; 0 when the timer is not counting. Outside
    /// TSC-deadline mode, `next` is `Some` exactly when this is non-zero.
    pub count_at_start: u32,
    /// `IA32_TSC_DEADLINE` (TSC-deadline mode only).
    pub deadline: u64,
    /// The next expiry the host timer is armed for.
    pub next: Option<Tsc>,
}

impl Timer {
    /// The current-count register at `now`.
    pub fn current(&self, mode: TimerMode, clock: &Clock, now: Tsc) -> u32 {
        if mode == TimerMode::TscDeadline || self.count_at_start == 0 {
            return 0;
        }
        let div = divisor(self.dcr);
        let elapsed = clock.counts(now.saturating_sub(self.start), div);
        let first = u64::from(self.count_at_start);
        if elapsed < first {
            return (first - elapsed) as u32;
        }
        match mode {
            TimerMode::Periodic if self.initial != 0 => {
                let initial = u64::from(self.initial);
                (initial - (elapsed - first) % initial) as u32
            }
            _ => 0,
        }
    }

    /// Starts counting `count` from `now`, and arms for its expiry.
    fn count_from(&mut self, count: u32, clock: &Clock, now: Tsc) -> TimerAction {
        self.start = now;
        self.count_at_start = count;
        self.next = (count != 0)
            .then(|| now.saturating_add(clock.ticks(u64::from(count), divisor(self.dcr))));
        self.action()
    }

    /// What the host timer should be doing now.
    pub fn action(&self) -> TimerAction {
        match self.next {
            Some(t) => TimerAction::Arm(t),
            None => TimerAction::Disarm,
        }
    }

    /// A write of the initial-count register. Ignored in TSC-deadline mode.
    pub fn write_initial(
        &mut self,
        mode: TimerMode,
        value: u32,
        clock: &Clock,
        now: Tsc,
    ) -> Option<TimerAction> {
        if mode == TimerMode::TscDeadline {
            return None;
        }
        self.initial = value;
        Some(self.count_from(value, clock, now))
    }

    /// A write of the divide configuration: the count goes on from its
    /// current value at the new rate.
    pub fn write_dcr(
        &mut self,
        mode: TimerMode,
        value: u32,
        clock: &Clock,
        now: Tsc,
    ) -> Option<TimerAction> {
        let before = self.current(mode, clock, now);
        let counting = mode != TimerMode::TscDeadline && self.next.is_some();
        self.dcr = value;
        counting.then(|| self.count_from(before, clock, now))
    }

    /// The LVT timer's mode changed from `old` to `new`: as the SDM says
    /// ("A write to the LVT Timer Register that changes the timer mode
    /// disarms the local APIC timer"), the timer stops. To or from
    /// TSC-deadline mode the initial count and the deadline are cleared
    /// too, since neither means anything in the other mode.
    pub fn change_mode(&mut self, old: TimerMode, new: TimerMode) -> Option<TimerAction> {
        if old == new {
            return None;
        }
        self.next = None;
        self.count_at_start = 0;
        if old == TimerMode::TscDeadline || new == TimerMode::TscDeadline {
            self.initial = 0;
            self.deadline = 0;
        }
        Some(TimerAction::Disarm)
    }

    /// A write of `IA32_TSC_DEADLINE`; ignored outside TSC-deadline mode.
    pub fn write_deadline(&mut self, mode: TimerMode, value: u64) -> Option<TimerAction> {
        if mode != TimerMode::TscDeadline {
            return None;
        }
        self.deadline = value;
        self.next = (value != 0).then_some(value);
        Some(self.action())
    }

    /// `IA32_TSC_DEADLINE` as the guest reads it.
    pub fn read_deadline(&self, mode: TimerMode) -> u64 {
        if mode == TimerMode::TscDeadline {
            self.deadline
        } else {
            0
        }
    }

    /// If the timer is due at `now`, consumes the expiry and returns
    /// `true`: the caller fires the LVT. In every case the timer is left
    /// armed for its next expiry (periodic: the first one after `now`, and
    /// no sooner than `min_period` after it; several missed periods
    /// coalesce into one interrupt).
    pub fn expire(&mut self, mode: TimerMode, clock: &Clock, now: Tsc) -> bool {
        match self.next {
            Some(t) if t <= now => {}
            _ => return false,
        }
        match mode {
            TimerMode::TscDeadline => {
                self.deadline = 0;
                self.next = None;
            }
            TimerMode::OneShot => {
                self.next = None;
                self.count_at_start = 0;
            }
            TimerMode::Periodic => {
                let div = divisor(self.dcr);
                let first =
                    self.start.saturating_add(clock.ticks(u64::from(self.count_at_start), div));
                let period = clock.ticks(u64::from(self.initial), div).max(1);
                // The first natural expiry strictly after `now`.
                let missed = now.saturating_sub(first) / period + 1;
                let natural = first.saturating_add(missed.saturating_mul(period));
                let next = natural.max(now.saturating_add(clock.min_period));
                if next <= now {
                    // The guest TSC is at its end: there is no later
                    // expiry, so the count stops as a one-shot's would.
                    self.next = None;
                    self.count_at_start = 0;
                } else {
                    self.next = Some(next);
                }
            }
        }
        true
    }
}
