// SPDX-License-Identifier: GPL-2.0

//! Save and restore: a versioned snapshot of plain integers, checked
//! field by field before anything is changed.
//!
//! Times in a snapshot are on the VM clock the device was given; the
//! restoring side must continue that clock (a VM clock that carries on
//! where the saved one stopped), as it does for every device here.

use super::super::common::{ImportError, Nanos};
use super::regs::*;
use super::{Effects, Hpet, Timer};

/// The layout version [`Hpet::snapshot`] writes and [`Hpet::restore`]
/// accepts.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The whole state of an [`Hpet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// GEN_CONF (ENABLE_CNF, LEG_RT_CNF).
    pub config: u64,
    /// GINTR_STA.
    pub status: u64,
    /// The main counter at `base_ns` if it runs, its value if halted.
    pub counter: u64,
    /// VM time at which a running counter was `counter`; 0 if halted.
    pub base_ns: u64,
    /// The count up to which comparator matches were worked out.
    pub checked: u64,
    /// Each timer's Tn_CONF, without the capability bits.
    pub timer_conf: [u64; TIMERS],
    /// Each timer's Tn_COMPARATOR.
    pub timer_comparator: [u64; TIMERS],
    /// Each timer's periodic increment (the last comparator value
    /// written).
    pub timer_period: [u64; TIMERS],
    /// Each timer's Tn_FSB_ROUTE.
    pub timer_fsb: [u64; TIMERS],
}

impl Hpet {
    /// The state, as it stands (matches not yet worked out stay so; the
    /// restored device works them out the same way).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            config: self.config,
            status: self.status,
            counter: self.count,
            base_ns: self.base_ns,
            checked: self.checked,
            timer_conf: self.timers.map(|t| t.conf),
            timer_comparator: self.timers.map(|t| t.cmp),
            timer_period: self.timers.map(|t| t.period),
            timer_fsb: self.timers.map(|t| t.fsb),
        }
    }

    /// Replaces the state with `snap` at VM time `now`, or refuses it and
    /// changes nothing. The effects give the state absolutely rather than
    /// as a change: the lines it holds up, the host timer, and legacy
    /// routing. Restore into a new or [`Hpet::reset`] device, whose lines
    /// are all down.
    pub fn restore(&mut self, snap: &Snapshot, now: Nanos) -> Result<Effects, ImportError> {
        let hpet = check(snap, now)?;
        *self = hpet;
        let mut fx = Effects::NONE;
        fx.irqs = self.asserted();
        fx.timer = Some(self.timer_action());
        fx.legacy = Some(self.legacy_replacement());
        Ok(fx)
    }
}

/// The device `snap` describes, if every field holds a value that guest
/// operations can reach.
fn check(snap: &Snapshot, now: Nanos) -> Result<Hpet, ImportError> {
    let invalid = |field: &'static str| Err(ImportError::Invalid { field });
    if snap.version != SNAPSHOT_VERSION {
        return Err(ImportError::Version { found: snap.version });
    }
    if snap.config & !CNF_WRITABLE != 0 {
        return invalid("config");
    }
    let mut timers = [Timer::RESET; TIMERS];
    for (n, t) in timers.iter_mut().enumerate() {
        let (Some(&conf), Some(&cmp), Some(&period), Some(&fsb)) = (
            snap.timer_conf.get(n),
            snap.timer_comparator.get(n),
            snap.timer_period.get(n),
            snap.timer_fsb.get(n),
        ) else {
            return invalid("timer_conf");
        };
        let route = (conf & TN_INT_ROUTE) >> TN_INT_ROUTE_SHIFT;
        if conf & !TN_WRITABLE != 0 || (route != 0 && !pin_allowed(route)) {
            return invalid("timer_conf");
        }
        *t = Timer { conf, cmp, period, fsb };
        if cmp & !t.width() != 0 {
            return invalid("timer_comparator");
        }
        if period & !t.width() != 0 {
            return invalid("timer_period");
        }
    }
    let hpet = Hpet {
        config: snap.config,
        status: snap.status,
        count: snap.counter,
        base_ns: snap.base_ns,
        checked: snap.checked,
        timers,
    };
    let all_timers = (1u64 << TIMERS) - 1;
    if snap.status & !all_timers != 0
        || (0..TIMERS).any(|n| snap.status & (1 << n) != 0 && !hpet.level(n))
    {
        return invalid("status");
    }
    if hpet.running() {
        if snap.base_ns > now {
            return invalid("base_ns");
        }
        let elapsed = (now - snap.base_ns) / NANOS_PER_TICK;
        if snap.checked.wrapping_sub(snap.counter) > elapsed {
            return invalid("checked");
        }
    } else {
        if snap.base_ns != 0 {
            return invalid("base_ns");
        }
        if snap.checked != snap.counter {
            return invalid("checked");
        }
    }
    Ok(hpet)
}
