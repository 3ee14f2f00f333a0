// SPDX-License-Identifier: GPL-2.0

//! Saving and restoring an RTC: a versioned, plain-integer snapshot of all
//! of its state, checked field by field on restore. A snapshot that no
//! sequence of guest operations could produce is refused, and nothing is
//! changed.
//!
//! Times are on the VM clock the snapshot was taken with; the integration
//! layer carries that clock over, as for every device, and a snapshot
//! whose time is later than the `now` it is restored at is refused. A
//! clock restored after the VM was stopped shows the time it had then,
//! running on, until the host calls [`Rtc::set_time`].

use super::super::{ImportError, LineOp, Nanos};
use super::calendar::{self, MAX_SECS};
use super::divider::{FIRST_UPDATE, SEC};
use super::regs::*;
use super::{Clock, Effects, Reg, Rtc};

/// The layout version [`Snapshot::version`] carries.
pub const SNAPSHOT_VERSION: u32 = 1;

/// [`Snapshot::clock`]: the clock counts [`Snapshot::secs`].
pub const CLOCK_COUNTING: u8 = 0;
/// [`Snapshot::clock`]: the registers hold [`Snapshot::held`] (SET = 1, or
/// not a valid time).
pub const CLOCK_HELD: u8 = 1;

/// The whole state of one RTC, as of [`Snapshot::synced`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// VM time up to which updates and periodic ticks have been applied.
    pub synced: Nanos,
    /// Age of the divider chain at `synced`, in ns: below 1.5 s while DV =
    /// 010, 0 otherwise.
    pub divider_age: u64,
    /// Port 0x70 bits 6:0.
    pub index: u8,
    /// Port 0x70 bit 7 (0 or 1).
    pub nmi_disabled: u8,
    /// Register A without UIP.
    pub reg_a: u8,
    /// Register B.
    pub reg_b: u8,
    /// Register C's PF, AF, UF (bits 6:4); IRQF is derived.
    pub flags: u8,
    /// Seconds, minutes and hours alarm bytes.
    pub alarm: [u8; 3],
    /// [`CLOCK_COUNTING`] or [`CLOCK_HELD`].
    pub clock: u8,
    /// Seconds since 1970-01-01 00:00:00 when counting, else 0.
    pub secs: u64,
    /// Seconds, minutes, hours, day of week, day of month, month, year and
    /// century bytes when held, else 0.
    pub held: [u8; 8],
    /// The 128 CMOS bytes; the clock registers' slots (0x00-0x0D, 0x32)
    /// are 0.
    pub cmos: [u8; CMOS_SIZE],
}

impl Rtc {
    /// The whole state. It changes nothing: updates since the last call
    /// are applied by whoever restores it, when it is next used.
    pub fn snapshot(&self) -> Snapshot {
        let (clock, secs, held) = match self.clock {
            Clock::Counting(secs) => (CLOCK_COUNTING, secs, [0; 8]),
            Clock::Held(bytes) => (CLOCK_HELD, 0, bytes),
        };
        Snapshot {
            version: SNAPSHOT_VERSION,
            synced: self.synced,
            divider_age: self.age(),
            index: self.index,
            nmi_disabled: u8::from(self.nmi_disabled),
            reg_a: self.reg_a,
            reg_b: self.reg_b,
            flags: self.flags,
            alarm: self.alarm,
            clock,
            secs,
            held,
            cmos: self.ram,
        }
    }

    /// Replaces the whole state with `snap`, at VM time `now`. The effects
    /// give IRQ 8's level and the host timer in full (both `Some`): apply
    /// them as to a fresh device. On error nothing has changed.
    pub fn restore(&mut self, snap: &Snapshot, now: Nanos) -> Result<Effects, ImportError> {
        check(snap, now)?;
        let clock = if snap.clock == CLOCK_COUNTING {
            Clock::Counting(snap.secs)
        } else {
            Clock::Held(snap.held)
        };
        *self = Rtc {
            index: snap.index,
            nmi_disabled: snap.nmi_disabled != 0,
            reg_a: snap.reg_a,
            reg_b: snap.reg_b,
            flags: snap.flags,
            alarm: snap.alarm,
            clock,
            epoch: snap.synced.wrapping_sub(snap.divider_age),
            synced: snap.synced,
            ram: snap.cmos,
            irq: false,
            armed: super::super::TimerAction::Disarm,
        };
        self.irq = self.irqf();
        self.armed = self.next_event();
        Ok(Effects {
            irq8: Some(if self.irq { LineOp::Assert } else { LineOp::Deassert }),
            timer: Some(self.armed),
        })
    }
}

/// Whether `snap` is a state the model can reach, restored at `now`.
fn check(snap: &Snapshot, now: Nanos) -> Result<(), ImportError> {
    let invalid = |field: &'static str, bad: bool| {
        if bad {
            Err(ImportError::Invalid { field })
        } else {
            Ok(())
        }
    };
    if snap.version != SNAPSHOT_VERSION {
        return Err(ImportError::Version { found: snap.version });
    }
    invalid("synced", snap.synced > now)?;
    let running = Divider::from_reg_a(snap.reg_a) == Divider::Running;
    let age_limit = if running { FIRST_UPDATE + SEC } else { 1 };
    invalid("divider_age", snap.divider_age >= age_limit)?;
    invalid("index", snap.index & !INDEX_MASK != 0)?;
    invalid("nmi_disabled", snap.nmi_disabled > 1)?;
    invalid("reg_a", snap.reg_a & !A_WRITABLE != 0)?;
    invalid("flags", snap.flags & !C_FLAGS != 0)?;
    let set = snap.reg_b & B_SET != 0;
    match snap.clock {
        CLOCK_COUNTING => {
            invalid("clock", set)?;
            invalid("secs", snap.secs > MAX_SECS)?;
            invalid("held", snap.held != [0; 8])?;
        }
        CLOCK_HELD => {
            invalid("secs", snap.secs != 0)?;
            invalid("held", snap.held[0] & !SECONDS_WRITABLE != 0)?;
            // Without SET, valid bytes would have started counting.
            let fmt = Format::from_reg_b(snap.reg_b);
            invalid("held", !set && calendar::parse(&snap.held, fmt).is_some())?;
        }
        _ => return Err(ImportError::Invalid { field: "clock" }),
    }
    let clock_slot = (0..=u8::MAX)
        .map(Reg::decode)
        .zip(snap.cmos.iter())
        .any(|(reg, &b)| b != 0 && !matches!(reg, Reg::Ram(_)));
    invalid("cmos", clock_slot)
}
