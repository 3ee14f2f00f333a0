// SPDX-License-Identifier: GPL-2.0

//! Saving and restoring an APIC: a versioned, plain-integer snapshot of
//! all of its state, checked field by field on import (in the spirit of
//! illumos `vlapic_data_read`/`vlapic_data_write`). An import that would
//! build a state no sequence of guest operations can reach is refused
//! with the reason; nothing is half-imported.

use core::fmt;

use super::apic::{x2apic_ldr, Activity, Latched};
use super::regs::*;
use super::timer::{divisor, Timer, TimerMode};
use super::{Accel, Config, Effects, Mode, ModeChange, Soft, Tsc, Vlapic};

/// The layout version [`Snapshot::version`] carries.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The whole state of one APIC at guest TSC `taken_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Guest TSC when it was taken. Every timer value is a guest TSC.
    pub taken_at: Tsc,
    /// The vCPU's index on the bus.
    pub index: u16,
    /// x2APIC ID.
    pub initial_id: u32,
    /// `IA32_APIC_BASE`.
    pub apic_base: u64,
    /// xAPIC ID register bits 31:24.
    pub xapic_id: u8,
    /// TPR.
    pub tpr: u8,
    /// LDR as the guest reads it (derived from the ID in x2APIC mode).
    pub ldr: u32,
    /// DFR.
    pub dfr: u32,
    /// SVR.
    pub svr: u32,
    /// ISR.
    pub isr: [u32; 8],
    /// TMR.
    pub tmr: [u32; 8],
    /// IRR.
    pub irr: [u32; 8],
    /// ESR as the guest reads it.
    pub esr: u32,
    /// Errors not yet latched into the ESR.
    pub esr_pending: u32,
    /// LVT entries, in [`Lvt`] order.
    pub lvt: [u32; 7],
    /// ICR (x2APIC layout; xAPIC keeps the destination in bits 63:56).
    pub icr: u64,
    /// Timer initial count.
    pub timer_initial: u32,
    /// Timer divide configuration.
    pub timer_dcr: u32,
    /// When the count was `timer_count`.
    pub timer_start: Tsc,
    /// The count at `timer_start` (0: not counting).
    pub timer_count: u32,
    /// `IA32_TSC_DEADLINE`.
    pub tsc_deadline: u64,
    /// Next expiry, 0 for none.
    pub timer_next: Tsc,
    /// LINT0 (bit 0) and LINT1 (bit 1) input levels.
    pub lint: u8,
    /// 0: running; 1: waiting for SIPI.
    pub activity: u8,
    /// Latched INIT (bit 0), NMI (bit 1), SMI (bit 2), ExtINT (bit 3).
    pub latched: u8,
    /// Latched SIPI vector, or 0x100 for none.
    pub sipi: u16,
}

/// Why a snapshot cannot be imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportError {
    /// Not a layout this code knows.
    Version(u32),
    /// The [`Config`] itself is invalid.
    Config,
    /// `IA32_APIC_BASE` has reserved bits set, or EN = 0 with EXTD = 1, or
    /// x2APIC mode without x2APIC support.
    ApicBase,
    /// This register has bits set that are reserved (or, for the xAPIC
    /// DFR, clear that must be ones).
    Reserved(Reg),
    /// IRR, ISR or TMR holds one of vectors 0-15, which no interrupt can
    /// have.
    IllegalVector(Reg),
    /// In x2APIC mode, the LDR does not follow from the ID.
    LdrMismatch,
    /// This LVT entry is unmasked although the APIC is software-disabled.
    UnmaskedWhileDisabled(Lvt),
    /// This LINT entry has remote IRR set but is not level-triggered fixed.
    RemoteIrr(Lvt),
    /// The timer's fields contradict each other or its mode.
    TimerState,
    /// The timer's next expiry is before `taken_at`: it should have fired.
    TimerInPast,
    /// The timer's next expiry is later than its count allows.
    TimerTooFar,
    /// Unknown activity, or a SIPI latched that nothing waits for.
    RunState,
    /// Pending state (latched events, vectors) on a disabled APIC.
    DisabledState,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Version(v) => write!(f, "snapshot version {v} is not {SNAPSHOT_VERSION}"),
            ImportError::Config => f.write_str("invalid APIC configuration"),
            ImportError::ApicBase => f.write_str("IA32_APIC_BASE is not a valid state"),
            ImportError::Reserved(r) => write!(f, "reserved bits set in {r:?}"),
            ImportError::IllegalVector(r) => write!(f, "{r:?} holds a vector below 16"),
            ImportError::LdrMismatch => f.write_str("x2APIC LDR does not match the x2APIC ID"),
            ImportError::UnmaskedWhileDisabled(l) => {
                write!(f, "LVT {l:?} unmasked while the APIC is software-disabled")
            }
            ImportError::RemoteIrr(l) => {
                write!(f, "LVT {l:?} has remote IRR but is not level-triggered")
            }
            ImportError::TimerState => f.write_str("timer fields are inconsistent"),
            ImportError::TimerInPast => f.write_str("timer expiry is before the snapshot time"),
            ImportError::TimerTooFar => f.write_str("timer expiry is beyond its count"),
            ImportError::RunState => f.write_str("INIT/SIPI state is inconsistent"),
            ImportError::DisabledState => f.write_str("a disabled APIC holds pending state"),
        }
    }
}

impl<A: Accel> Vlapic<A> {
    /// The state at `now`. A timer expiry due by `now` is serviced first,
    /// so the snapshot never holds an expiry in its past; the returned
    /// [`Effects`] are those of that expiry.
    pub fn snapshot(&mut self, now: Tsc) -> (Snapshot, Effects) {
        self.sync();
        let fx = self.service_timer(now);
        let t = &self.timer;
        let l = &self.latched;
        let snap = Snapshot {
            version: SNAPSHOT_VERSION,
            taken_at: now,
            index: self.index,
            initial_id: self.initial_id,
            apic_base: self.base,
            xapic_id: self.xapic_id,
            tpr: self.tpr,
            ldr: self.ldr(),
            dfr: self.dfr,
            svr: self.svr,
            isr: self.isr.0,
            tmr: self.tmr.0,
            irr: self.irr.0,
            esr: self.esr,
            esr_pending: self.esr_pending,
            lvt: self.lvt,
            icr: self.icr,
            timer_initial: t.initial,
            timer_dcr: t.dcr,
            timer_start: t.start,
            timer_count: t.count_at_start,
            tsc_deadline: t.deadline,
            timer_next: t.next.unwrap_or(0),
            lint: u8::from(self.lint[0]) | u8::from(self.lint[1]) << 1,
            activity: match self.activity {
                Activity::Running => 0,
                Activity::WaitForSipi => 1,
            },
            latched: u8::from(l.init)
                | u8::from(l.nmi) << 1
                | u8::from(l.smi) << 2
                | u8::from(l.extint) << 3,
            sipi: l.sipi.map_or(0x100, u16::from),
        };
        (snap, fx)
    }

    /// Rebuilds an APIC from `snap` with hooks `accel`. The effects say
    /// how to arm the host timer and (as a change from the power-up xAPIC
    /// mode) how to configure the vCPU's interception of its APIC.
    pub fn restore_with(
        cfg: Config,
        snap: &Snapshot,
        accel: A,
    ) -> Result<(Self, Effects), ImportError> {
        let mut apic = Vlapic::with_accel(cfg, snap.index, snap.initial_id, false, accel)
            .ok_or(ImportError::Config)?;
        check(&apic, snap)?;
        apic.base = snap.apic_base;
        apic.xapic_id = snap.xapic_id;
        apic.tpr = snap.tpr;
        apic.ldr = if apic.mode() == Mode::X2Apic { 0 } else { snap.ldr };
        apic.dfr = snap.dfr;
        apic.svr = snap.svr;
        apic.isr = Bits256(snap.isr);
        apic.tmr = Bits256(snap.tmr);
        apic.irr = Bits256(snap.irr);
        apic.esr = snap.esr;
        apic.esr_pending = snap.esr_pending;
        apic.lvt = snap.lvt;
        apic.icr = snap.icr;
        apic.timer = Timer {
            initial: snap.timer_initial,
            dcr: snap.timer_dcr,
            start: snap.timer_start,
            count_at_start: snap.timer_count,
            deadline: snap.tsc_deadline,
            next: (snap.timer_next != 0).then_some(snap.timer_next),
        };
        apic.lint = [snap.lint & 1 != 0, snap.lint & 2 != 0];
        apic.activity = if snap.activity == 1 { Activity::WaitForSipi } else { Activity::Running };
        apic.latched = Latched {
            init: snap.latched & 1 != 0,
            nmi: snap.latched & 2 != 0,
            smi: snap.latched & 4 != 0,
            extint: snap.latched & 8 != 0,
            sipi: u8::try_from(snap.sipi).ok(),
        };
        let fx = Effects {
            timer: Some(apic.timer.action()),
            mode: Some(ModeChange {
                from: Mode::XApic,
                to: apic.mode(),
                base: apic.base & !0xfff & !apic.apic_base_reserved(),
            }),
            wake: !apic.irr.is_empty() || apic.latched != Latched::default(),
            ..Effects::NONE
        };
        Ok((apic, fx))
    }
}

impl Vlapic<Soft> {
    /// [`Vlapic::restore_with`] without APIC virtualization.
    pub fn restore(cfg: Config, snap: &Snapshot) -> Result<(Self, Effects), ImportError> {
        Self::restore_with(cfg, snap, Soft)
    }
}

/// Checks `snap` against the configuration `fresh` was built with.
fn check<A: Accel>(fresh: &Vlapic<A>, snap: &Snapshot) -> Result<(), ImportError> {
    use ImportError as E;
    let cfg = &fresh.cfg;
    if snap.version != SNAPSHOT_VERSION {
        return Err(E::Version(snap.version));
    }
    if snap.apic_base & fresh.apic_base_reserved() != 0
        || snap.apic_base & (BASE_EN | BASE_EXTD) == BASE_EXTD
    {
        return Err(E::ApicBase);
    }
    let mode = match (snap.apic_base & BASE_EN != 0, snap.apic_base & BASE_EXTD != 0) {
        (false, _) => Mode::Disabled,
        (true, false) => Mode::XApic,
        (true, true) => Mode::X2Apic,
    };
    let reserved = |reg: Reg, bad: bool| if bad { Err(E::Reserved(reg)) } else { Ok(()) };
    if mode == Mode::X2Apic {
        if snap.ldr != x2apic_ldr(snap.initial_id) {
            return Err(E::LdrMismatch);
        }
        reserved(Reg::IcrLow, snap.icr & !ICR_X2APIC_MASK != 0)?;
    } else {
        reserved(Reg::Ldr, snap.ldr & 0x00ff_ffff != 0)?;
        reserved(Reg::IcrLow, snap.icr as u32 & !ICR_LOW_MASK != 0)?;
        reserved(Reg::IcrHigh, (snap.icr >> 32) as u32 & !ICR_HIGH_XAPIC_MASK != 0)?;
    }
    reserved(Reg::Dfr, snap.dfr | DFR_MODEL != u32::MAX)?;
    let svr_ok = 0x3ff | if cfg.eoi_suppression { SVR_SUPPRESS_EOI } else { 0 };
    reserved(Reg::Svr, snap.svr & !svr_ok != 0)?;
    reserved(Reg::Esr, (snap.esr | snap.esr_pending) & !ESR_MASK != 0)?;
    reserved(Reg::DivideConfig, snap.timer_dcr & !DCR_MASK != 0)?;
    for (reg, bits) in [(Reg::Irr(0), snap.irr), (Reg::Isr(0), snap.isr), (Reg::Tmr(0), snap.tmr)] {
        if Bits256(bits).has_illegal() {
            return Err(E::IllegalVector(reg));
        }
    }
    let sw_enabled = snap.svr & SVR_ENABLE != 0;
    for which in Lvt::ALL {
        let v = snap.lvt[which as usize];
        if which == Lvt::Cmci && !cfg.cmci {
            reserved(Reg::Lvt(which), v != LVT_RESET)?;
        }
        // The delivery status bit always reads idle here.
        reserved(Reg::Lvt(which), v & !which.writable(cfg.tsc_deadline) & !LVT_REMOTE_IRR != 0)?;
        if v & LVT_REMOTE_IRR != 0
            && !(which.read_only() & LVT_REMOTE_IRR != 0 && v & LVT_LEVEL != 0 && (v >> 8) & 7 == 0)
        {
            return Err(E::RemoteIrr(which));
        }
        if !sw_enabled && v & LVT_MASKED == 0 {
            return Err(E::UnmaskedWhileDisabled(which));
        }
    }
    check_timer(fresh, snap)?;
    let waiting = match snap.activity {
        0 => false,
        1 => true,
        _ => return Err(E::RunState),
    };
    if snap.latched & !0xf != 0 || snap.lint & !3 != 0 || snap.sipi > 0x100 {
        return Err(E::RunState);
    }
    if snap.sipi != 0x100 && !(waiting || snap.latched & 1 != 0) {
        return Err(E::RunState);
    }
    if mode == Mode::Disabled
        && (snap.latched != 0
            || snap.sipi != 0x100
            || snap.irr != [0; 8]
            || snap.isr != [0; 8]
            || snap.timer_next != 0)
    {
        return Err(E::DisabledState);
    }
    Ok(())
}

fn check_timer<A: Accel>(fresh: &Vlapic<A>, snap: &Snapshot) -> Result<(), ImportError> {
    use ImportError as E;
    let clock = fresh.clock();
    let mode = TimerMode::from_lvt(snap.lvt[Lvt::Timer as usize]);
    let next = (snap.timer_next != 0).then_some(snap.timer_next);
    if let Some(t) = next {
        if t <= snap.taken_at {
            return Err(E::TimerInPast);
        }
    }
    if mode == TimerMode::TscDeadline {
        let consistent = snap.timer_initial == 0
            && snap.timer_count == 0
            && next == (snap.tsc_deadline != 0).then_some(snap.tsc_deadline);
        return if consistent { Ok(()) } else { Err(E::TimerState) };
    }
    if snap.tsc_deadline != 0
        || snap.timer_count > snap.timer_initial
        || snap.timer_start > snap.taken_at
    {
        return Err(E::TimerState);
    }
    // Counting exactly when an expiry is armed.
    let Some(t) = next else {
        return if snap.timer_count == 0 { Ok(()) } else { Err(E::TimerState) };
    };
    if snap.timer_count == 0 || snap.timer_initial == 0 {
        return Err(E::TimerState);
    }
    let div = divisor(snap.timer_dcr);
    let longest = clock.ticks(u64::from(snap.timer_initial), div).max(1).max(clock.min_period);
    if t > snap.taken_at.saturating_add(longest) {
        return Err(E::TimerTooFar);
    }
    Ok(())
}
