// SPDX-License-Identifier: GPL-2.0

//! The MC146818A real-time clock and its CMOS RAM, behind ports 0x70 and
//! 0x71, as a pure, total state machine.
//!
//! # How the integration layer uses it
//!
//! One [`Rtc`] per VM, built with [`Rtc::new`] from the host's wall clock
//! (UTC) and the VM clock. Before the guest runs, the sequencer presets
//! NVRAM with [`Rtc::set_cmos`] (memory sizes, boot flags, ...).
//!
//! - **Guest accesses.** A byte `IN` or `OUT` on ports 0x70 and 0x71 goes
//!   to [`Rtc::read`] / [`Rtc::write`]. Other ports given to it read 0xFF
//!   and ignore writes; wider accesses are the caller's to split or refuse.
//! - **NMI mask.** [`Rtc::nmi_disabled`] is port 0x70 bit 7 as last
//!   written: while it is true, the platform must not deliver NMIs.
//! - **Effects.** Every call that can change something returns [`Effects`]:
//!   - `irq8`: `Assert` raises ISA IRQ 8 (PIC input 8 and its IOAPIC pin)
//!     and keeps it up, `Deassert` lowers it. It is up exactly while
//!     register C's IRQF is 1, which a read of register C clears. `Pulse`
//!     (raise and lower) comes when IRQF rose and fell within one call:
//!     the guest read register C, or cleared the enable, after an event
//!     whose host timer had not yet been handled; the edge still happened;
//!   - `timer`: arm or cancel the VM's RTC host timer, and call
//!     [`Rtc::timer_expired`] when it fires. `None` means no change.
//! - **Host time.** [`Rtc::set_time`] sets the wall clock (e.g. after a
//!   host suspend); [`Rtc::wall_clock`] reads it.
//! - **Save and restore.** [`Rtc::snapshot`] and [`Rtc::restore`] carry a
//!   versioned [`Snapshot`] in the VM clock's time; restore checks every
//!   field and refuses without changing anything.
//!
//! # What is modelled
//!
//! Registers 0x00-0x0D, the century byte 0x32 and NVRAM bytes 0x0E-0x7F
//! (except 0x32). Layouts are in [`regs`]; the timing facts (first update
//! 500 ms after the divider leaves reset, UIP 244 µs before each update,
//! the periodic rates) in the `divider` module.
//!
//! - **Time without ticking.** The clock is a count of seconds plus the
//!   divider chain's phase; every call brings both up to `now` and sets
//!   the flags of whatever happened since the last call. PF, AF and UF are
//!   set whether or not their interrupts are enabled, and IRQF is always
//!   `(PF & PIE) | (AF & AIE) | (UF & UIE)`: enabling an interrupt whose
//!   flag is already set raises IRQ 8 at once, disabling it lowers it.
//! - **The host timer** is armed only for the next event that would raise
//!   IRQF: a periodic tick if PIE, an update if UIE, the matching update if
//!   AIE. While IRQF is 1 nothing more can change the line, so the timer
//!   is idle until the guest reads register C. Late or early expiries do
//!   no harm: the model looks only at `now`.
//! - **Formats.** Time, date and alarm bytes are BCD or binary per DM, and
//!   the hours are 24-hour or 12-hour with PM in bit 7. While the clock is
//!   counting, its registers always show the time in the current format, so
//!   changing DM or 24/12 converts them (as bhyve and QEMU do; the chip
//!   itself would reinterpret the raw bytes). Alarm bytes are kept as
//!   written and compared in the current format; 0xC0-0xFF match anything.
//! - **Day of week** follows the date (1 = Sunday), as in bhyve: guests
//!   set it wrongly or not at all. A written value reads back while the
//!   registers are held (SET = 1, or an invalid time) and is replaced by
//!   the date's weekday as soon as the clock counts.
//! - **Century** (0x32) is part of the date: it rolls over with the year,
//!   and a write to it sets the year like any date register.
//! - **SET.** Setting SET stops updates and freezes the registers; setting
//!   it also clears UIE (data sheet). Writes to the time registers then
//!   change only the frozen bytes, and they take effect when SET returns to
//!   0. Without SET a write takes effect at once. Either way the divider's
//!   phase is kept: the next update comes on the chain's next second.
//! - **Divider.** DV = 010 runs. 11x holds the chain in reset; the other
//!   values (other crystals, test modes) are treated the same way, since a
//!   PC has only the 32.768 kHz crystal. While the chain is not running
//!   nothing counts, UIP is 0 and no flag is set; when DV returns to 010
//!   the first update comes 500 ms later and periodic ticks restart from 0.
//! - **Invalid times.** When the registers do not hold a valid date and
//!   time in the current format (seconds 0x99 in BCD, month 0, 31 April,
//!   hour 0x13 in 12-hour mode, a year before 1970, ...), the clock keeps
//!   the bytes as written and stops counting, like bhyve's vrtc: updates
//!   still happen (UIP, UF) but change nothing, and AF never sets. It
//!   counts again as soon as a write (or a format change) makes the bytes
//!   valid. The years that count are 1970-9999; after 9999 comes 1970.
//! - **Not modelled:** DSE (stored and read back, but no daylight-saving
//!   jumps: the chip's rules are the pre-2007 US ones, and PC guests keep
//!   the RTC in standard time or UTC); SQWE (stored; a PC has no
//!   square-wave pin); the RESET pin (tied off on a PC: the clock is
//!   battery-backed and survives a VM reset); the extended CMOS bank at
//!   ports 0x72/0x73; leap seconds.
//!
//! Nothing here allocates or panics.

mod calendar;
mod divider;
pub mod regs;
pub mod snapshot;

#[cfg(test)]
mod tests;

pub use calendar::MAX_SECS;
pub use snapshot::{Snapshot, SNAPSHOT_VERSION};

use super::{LineOp, Nanos, TimerAction};
use calendar::{Alarm, TimeBytes, TimeField, SECS_IN_RANGE, SECS_PER_DAY};
use divider::{next_tick_after, next_update_after, period_cycles, updates_by, FIRST_UPDATE, SEC};
use regs::*;

/// What the caller must do after a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Effects {
    /// Raise or lower ISA IRQ 8 (`None`: leave it).
    pub irq8: Option<LineOp>,
    /// Arm or cancel the host timer (`None`: leave it as it is).
    pub timer: Option<TimerAction>,
}

impl Effects {
    /// Nothing to do.
    pub const NONE: Effects = Effects { irq8: None, timer: None };
}

/// [`Rtc::set_cmos`] refused: the index is a clock register (0x00-0x0D,
/// the century 0x32) or beyond the 128 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotNvram;

/// The date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Clock {
    /// Valid: seconds since 1970-01-01 00:00:00 at the last update, up to
    /// [`MAX_SECS`]. The registers show it in the current format.
    Counting(u64),
    /// The registers as the guest last saw or wrote them: frozen because
    /// SET = 1, or (with SET = 0) not a valid time, which stops the clock.
    Held(TimeBytes),
}

/// The alarm registers, in [`Rtc::alarm`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum AlarmReg {
    Seconds = 0,
    Minutes = 1,
    Hours = 2,
}

/// What a CMOS index selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Reg {
    Time(TimeField),
    Alarm(AlarmReg),
    A,
    B,
    C,
    D,
    /// NVRAM byte at this index.
    Ram(usize),
    /// Beyond the 128 bytes.
    None,
}

impl Reg {
    const fn decode(index: u8) -> Reg {
        match index {
            SECONDS => Reg::Time(TimeField::Seconds),
            SECONDS_ALARM => Reg::Alarm(AlarmReg::Seconds),
            MINUTES => Reg::Time(TimeField::Minutes),
            MINUTES_ALARM => Reg::Alarm(AlarmReg::Minutes),
            HOURS => Reg::Time(TimeField::Hours),
            HOURS_ALARM => Reg::Alarm(AlarmReg::Hours),
            DAY_OF_WEEK => Reg::Time(TimeField::DayOfWeek),
            DAY_OF_MONTH => Reg::Time(TimeField::DayOfMonth),
            MONTH => Reg::Time(TimeField::Month),
            YEAR => Reg::Time(TimeField::Year),
            CENTURY => Reg::Time(TimeField::Century),
            REG_A => Reg::A,
            REG_B => Reg::B,
            REG_C => Reg::C,
            REG_D => Reg::D,
            i if (i as usize) < CMOS_SIZE => Reg::Ram(i as usize),
            _ => Reg::None,
        }
    }
}

/// One MC146818A with 128 bytes of CMOS.
///
/// All state is owned here and changed only through `&mut self`; the
/// integration layer serialises calls (one lock per VM's RTC).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rtc {
    /// Port 0x70 bits 6:0: the selected byte.
    index: u8,
    /// Port 0x70 bit 7 as last written.
    nmi_disabled: bool,
    /// Register A bits 6:0 (UIP is computed on read).
    reg_a: u8,
    /// Register B.
    reg_b: u8,
    /// Register C's PF, AF and UF, set since it was last read. IRQF is
    /// computed from them and register B.
    flags: u8,
    /// Seconds, minutes and hours alarm bytes as written.
    alarm: [u8; 3],
    /// The date and time as of `synced`.
    clock: Clock,
    /// When the divider chain last left reset, on the VM clock modulo 2^64
    /// (it may lie "before 0"); only `synced - epoch`, the chain's age, is
    /// used. While the chain runs the age is kept below 1.5 s by moving this
    /// on by whole seconds, which keeps every phase; while it does not run
    /// this is `synced`.
    epoch: Nanos,
    /// Every update and periodic tick up to this time has been applied.
    synced: Nanos,
    /// NVRAM; the clock registers' slots are unused and stay 0.
    ram: [u8; CMOS_SIZE],
    /// IRQ 8 as last reported: always equal to IRQF after a call.
    irq: bool,
    /// The host timer as last requested: always the next event after a
    /// call.
    armed: TimerAction,
}

impl Rtc {
    /// A clock showing `unix_secs` (seconds since 1970-01-01 00:00:00 UTC,
    /// at most [`MAX_SECS`]; later values show [`MAX_SECS`]) at VM time
    /// `now`, the second just begun: the first update comes at `now` + 1 s.
    /// Registers A and B as a PC BIOS leaves them (0x26, 24-hour BCD, no
    /// interrupts), NVRAM zero, index 0x0D, NMI enabled.
    pub fn new(now: Nanos, unix_secs: u64) -> Rtc {
        Rtc {
            index: INDEX_POWER_ON,
            nmi_disabled: false,
            reg_a: A_POWER_ON,
            reg_b: B_POWER_ON,
            flags: 0,
            alarm: [0; 3],
            clock: Clock::Counting(unix_secs.min(MAX_SECS)),
            epoch: now.wrapping_sub(FIRST_UPDATE),
            synced: now,
            ram: [0; CMOS_SIZE],
            irq: false,
            armed: TimerAction::Disarm,
        }
    }

    /// A byte `IN` from `port` at `now`. Reading register C returns and
    /// clears the flags, which lowers IRQ 8.
    pub fn read(&mut self, port: u16, now: Nanos) -> (u8, Effects) {
        if port != PORT_DATA {
            return (OPEN_BUS, Effects::NONE);
        }
        let rose = self.catch_up(now);
        let value = match Reg::decode(self.index) {
            Reg::Time(field) => self.time_bytes().get(field as usize).copied().unwrap_or(0),
            Reg::Alarm(which) => self.alarm.get(which as usize).copied().unwrap_or(0),
            Reg::A => self.reg_a | if self.update_in_progress() { A_UIP } else { 0 },
            Reg::B => self.reg_b,
            Reg::C => {
                let c = self.flags | if self.irqf() { C_IRQF } else { 0 };
                self.flags = 0;
                c
            }
            Reg::D => D_VRT,
            Reg::Ram(i) => self.ram.get(i).copied().unwrap_or(OPEN_BUS),
            Reg::None => OPEN_BUS,
        };
        (value, self.finish(rose, false))
    }

    /// A byte `OUT` of `value` to `port` at `now`.
    pub fn write(&mut self, port: u16, value: u8, now: Nanos) -> Effects {
        match port {
            PORT_INDEX => {
                self.index = value & INDEX_MASK;
                self.nmi_disabled = value & INDEX_NMI_DISABLE != 0;
                return Effects::NONE;
            }
            PORT_DATA => {}
            _ => return Effects::NONE,
        }
        let rose = self.catch_up(now);
        match Reg::decode(self.index) {
            Reg::Time(field) => {
                let mut bytes = self.time_bytes();
                if let Some(b) = bytes.get_mut(field as usize) {
                    *b = field.writable(value);
                }
                self.clock = Clock::Held(bytes);
                self.settle();
            }
            Reg::Alarm(which) => {
                if let Some(b) = self.alarm.get_mut(which as usize) {
                    *b = value;
                }
            }
            Reg::A => self.write_a(value),
            Reg::B => self.write_b(value),
            // Read-only.
            Reg::C | Reg::D | Reg::None => {}
            Reg::Ram(i) => {
                if let Some(b) = self.ram.get_mut(i) {
                    *b = value;
                }
            }
        }
        self.finish(rose, false)
    }

    /// The host timer fired (at `now`, which may be late or early). The
    /// returned timer action is always `Some`: the fired timer is spent.
    pub fn timer_expired(&mut self, now: Nanos) -> Effects {
        let rose = self.catch_up(now);
        self.finish(rose, true)
    }

    /// Sets the wall clock to `unix_secs` (at most [`MAX_SECS`]) at `now`,
    /// the second just begun. If the guest has SET = 1, the frozen
    /// registers take the new time instead and it counts from when SET is
    /// cleared. A running divider is re-phased so the next update comes at
    /// `now` + 1 s.
    pub fn set_time(&mut self, now: Nanos, unix_secs: u64) -> Effects {
        let rose = self.catch_up(now);
        let secs = unix_secs.min(MAX_SECS);
        self.clock = if self.reg_b & B_SET != 0 {
            Clock::Held(calendar::format(secs, self.format()))
        } else {
            Clock::Counting(secs)
        };
        if self.divider() == Divider::Running {
            self.epoch = self.synced.wrapping_sub(FIRST_UPDATE);
        }
        self.finish(rose, false)
    }

    /// The time the clock shows at `now`, in seconds since 1970-01-01
    /// 00:00:00, or `None` while it holds no valid time (SET = 1, or
    /// invalid values written by the guest).
    pub fn wall_clock(&self, now: Nanos) -> Option<u64> {
        let Clock::Counting(secs) = self.clock else {
            return None;
        };
        let from = self.age();
        let to = from.saturating_add(now.saturating_sub(self.synced));
        Some(advance(secs, if self.updating() { updates_by(to) - updates_by(from) } else { 0 }))
    }

    /// Presets NVRAM byte `index` (0x0E-0x7F except the century, 0x32).
    pub fn set_cmos(&mut self, index: u8, value: u8) -> Result<(), NotNvram> {
        match Reg::decode(index) {
            Reg::Ram(i) => self.ram.get_mut(i).map(|b| *b = value).ok_or(NotNvram),
            _ => Err(NotNvram),
        }
    }

    /// NVRAM byte `index`, or `None` for a clock register or an index
    /// beyond 0x7F. Byte 0x0F is the shutdown status the BIOS reads after a
    /// reset.
    pub fn cmos(&self, index: u8) -> Option<u8> {
        match Reg::decode(index) {
            Reg::Ram(i) => self.ram.get(i).copied(),
            _ => None,
        }
    }

    /// Port 0x70 bit 7 as last written: NMIs are masked while it is true.
    pub fn nmi_disabled(&self) -> bool {
        self.nmi_disabled
    }

    /// IRQ 8 as last reported (register C's IRQF).
    pub fn irq8(&self) -> bool {
        self.irq
    }

    fn divider(&self) -> Divider {
        Divider::from_reg_a(self.reg_a)
    }

    fn format(&self) -> Format {
        Format::from_reg_b(self.reg_b)
    }

    /// Whether update cycles happen: the chain runs and SET = 0.
    fn updating(&self) -> bool {
        self.divider() == Divider::Running && self.reg_b & B_SET == 0
    }

    /// The divider chain's age at `synced`.
    fn age(&self) -> Nanos {
        self.synced.wrapping_sub(self.epoch)
    }

    fn irqf(&self) -> bool {
        self.flags & self.reg_b & C_FLAGS != 0
    }

    fn update_in_progress(&self) -> bool {
        self.updating() && divider::update_in_progress(self.age())
    }

    /// The date and time registers as the guest reads them now.
    fn time_bytes(&self) -> TimeBytes {
        match self.clock {
            Clock::Counting(secs) => calendar::format(secs, self.format()),
            Clock::Held(bytes) => bytes,
        }
    }

    /// The alarm, or `None` if a byte can never match.
    fn alarm(&self) -> Option<Alarm> {
        Alarm::new(self.alarm, self.format())
    }

    /// With SET = 0, held bytes that form a valid time start counting.
    fn settle(&mut self) {
        if self.reg_b & B_SET != 0 {
            return;
        }
        if let Clock::Held(bytes) = self.clock {
            if let Some(secs) = calendar::parse(&bytes, self.format()) {
                self.clock = Clock::Counting(secs);
            }
        }
    }

    fn write_a(&mut self, value: u8) {
        self.reg_a = value & A_WRITABLE;
        // A chain that stops is in reset; one that starts does so now (the
        // epoch of a stopped chain is already `synced`).
        if self.divider() != Divider::Running {
            self.epoch = self.synced;
        }
    }

    fn write_b(&mut self, value: u8) {
        let mut value = value;
        if value & B_SET != 0 && self.reg_b & B_SET == 0 {
            // SET going high clears UIE and freezes the registers as the
            // guest could read them a moment ago.
            value &= !B_UIE;
            self.clock = Clock::Held(self.time_bytes());
        }
        self.reg_b = value;
        // SET going low, or a format change that makes held bytes valid.
        self.settle();
    }

    /// Applies every update and periodic tick in (`synced`, `now`], and
    /// says whether that raised IRQF (IRQ 8 should have gone up then).
    fn catch_up(&mut self, now: Nanos) -> bool {
        let now = now.max(self.synced);
        if self.divider() != Divider::Running {
            self.epoch = now;
            self.synced = now;
            return false;
        }
        let from = self.age();
        let to = from.saturating_add(now - self.synced);
        if let Some(period) = period_cycles(self.reg_a & A_RS_MASK) {
            if next_tick_after(from, period) <= to {
                self.flags |= C_PF;
            }
        }
        let updates = updates_by(to) - updates_by(from);
        if self.reg_b & B_SET == 0 && updates > 0 {
            self.flags |= C_UF;
            if let Clock::Counting(secs) = self.clock {
                if self.alarm().is_some_and(|a| a.next_after(secs % SECS_PER_DAY) <= updates) {
                    self.flags |= C_AF;
                }
                self.clock = Clock::Counting(advance(secs, updates));
            }
        }
        if to >= FIRST_UPDATE + SEC {
            self.epoch = self.epoch.wrapping_add((to - FIRST_UPDATE) / SEC * SEC);
        }
        self.synced = now;
        !self.irq && self.irqf()
    }

    /// The host timer the state needs: the next event that would raise
    /// IRQF, if any can.
    fn next_event(&self) -> TimerAction {
        if self.irqf() || self.divider() != Divider::Running {
            return TimerAction::Disarm;
        }
        let age = self.age();
        let b = self.reg_b;
        let periodic = match period_cycles(self.reg_a & A_RS_MASK) {
            Some(period) if b & B_PIE != 0 => Some(next_tick_after(age, period)),
            _ => None,
        };
        let update = (b & B_SET == 0).then(|| next_update_after(age));
        let uie = update.filter(|_| b & B_UIE != 0);
        let alarm = match (update, self.clock, self.alarm()) {
            (Some(update), Clock::Counting(secs), Some(alarm)) if b & B_AIE != 0 => {
                let wait = alarm.next_after(secs % SECS_PER_DAY) - 1;
                Some(update.saturating_add(wait * SEC))
            }
            _ => None,
        };
        match [periodic, uie, alarm].into_iter().flatten().min() {
            Some(at) => TimerAction::Arm(self.synced.saturating_add(at.saturating_sub(age))),
            None => TimerAction::Disarm,
        }
    }

    /// Reports how the line and the timer changed. `rose`: IRQF went up
    /// while catching up; if this call has lowered it again (a read of
    /// register C, a cleared enable), the line still had its edge, which the
    /// PIC may have latched: that is a pulse.
    fn finish(&mut self, rose: bool, expired: bool) -> Effects {
        let irqf = self.irqf();
        let irq8 = match (self.irq, irqf) {
            (false, true) => Some(LineOp::Assert),
            (true, false) => Some(LineOp::Deassert),
            (false, false) if rose => Some(LineOp::Pulse),
            _ => None,
        };
        self.irq = irqf;
        let want = self.next_event();
        let timer = (expired || want != self.armed).then_some(want);
        self.armed = want;
        Effects { irq8, timer }
    }
}

/// `secs` after `updates` more seconds, wrapping after 9999.
fn advance(secs: u64, updates: u64) -> u64 {
    (secs % SECS_IN_RANGE + updates % SECS_IN_RANGE) % SECS_IN_RANGE
}
