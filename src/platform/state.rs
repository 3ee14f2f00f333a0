// SPDX-License-Identifier: GPL-2.0

//! `VMM_VM_GET_DEVICE` / `VMM_VM_SET_DEVICE`: one platform device's state,
//! as the models' snapshots give it, in the fixed layouts of
//! `uapi/src/devstate.rs`.
//!
//! The user memory is copied before the chipset lock is taken (`SET`) or
//! after it is dropped (`GET`); under the lock there is only the model's
//! snapshot or restore and the conversion, which neither sleeps nor
//! allocates. A restore is all or nothing: the models check a snapshot
//! whole before they change anything, and the HPET is restored into a
//! fresh device that replaces the live one only once it is accepted.
//!
//! Times are the VM clock's ([`now_ns`]), absolute, as the models keep
//! them: a state restores on the host boot that took it.

use kernel::{prelude::*, sync::Arc};

use super::{Chipset, Out, Platform};
use crate::hw::abi::{write_arg, UserArg};
use crate::hw::timer::{now_ns, Ticker};
use crate::uapi::{
    self, VmmDeviceState, VmmHpetState, VmmIoapicState, VmmPicChipState, VmmPicState,
    VmmPitCounterState, VmmPitState, VmmPmTimerState, VmmRtcState,
};
use crate::vdev::{
    hpet::{self, Hpet},
    ioapic, pic, pit, pmtimer, rtc, LineOp, Nanos,
};

// The ABI's versions are the models'; a model that changes its snapshot
// changes the ABI with it.
const _: () = {
    assert!(uapi::VMM_IOAPIC_STATE_VERSION == ioapic::SNAPSHOT_VERSION);
    assert!(uapi::VMM_PIC_STATE_VERSION == pic::SNAPSHOT_VERSION);
    assert!(uapi::VMM_PIT_STATE_VERSION == pit::SNAPSHOT_VERSION);
    assert!(uapi::VMM_PM_TIMER_STATE_VERSION == pmtimer::SNAPSHOT_VERSION);
    assert!(uapi::VMM_RTC_STATE_VERSION == rtc::SNAPSHOT_VERSION);
    assert!(uapi::VMM_HPET_STATE_VERSION == hpet::SNAPSHOT_VERSION);
};

/// A device `VMM_VM_GET_DEVICE` and `VMM_VM_SET_DEVICE` can name.
#[derive(Clone, Copy)]
enum Device {
    Ioapic,
    Pic,
    Pit,
    Pm,
    Rtc,
    Hpet,
}

impl Device {
    /// The device `VMM_DEVICE_*` number `n` names.
    fn from_abi(n: u32) -> Option<Device> {
        Some(match n {
            uapi::VMM_DEVICE_IOAPIC => Device::Ioapic,
            uapi::VMM_DEVICE_PIC => Device::Pic,
            uapi::VMM_DEVICE_PIT => Device::Pit,
            uapi::VMM_DEVICE_PM_TIMER => Device::Pm,
            uapi::VMM_DEVICE_RTC => Device::Rtc,
            uapi::VMM_DEVICE_HPET => Device::Hpet,
            _ => return None,
        })
    }

    /// The size of its state struct.
    fn size(self) -> usize {
        match self {
            Device::Ioapic => size_of::<VmmIoapicState>(),
            Device::Pic => size_of::<VmmPicState>(),
            Device::Pit => size_of::<VmmPitState>(),
            Device::Pm => size_of::<VmmPmTimerState>(),
            Device::Rtc => size_of::<VmmRtcState>(),
            Device::Hpet => size_of::<VmmHpetState>(),
        }
    }
}

/// One device's state in its ABI layout.
enum State {
    Ioapic(VmmIoapicState),
    Pic(VmmPicState),
    Pit(VmmPitState),
    Pm(VmmPmTimerState),
    Rtc(VmmRtcState),
    Hpet(VmmHpetState),
}

/// The device a [`VmmDeviceState`] names, and the user address of its
/// state: `EINVAL` for an unknown device, a size other than its struct's,
/// non-zero `flags` or `reserved`; `EFAULT` for an address that is none.
fn parse(arg: UserArg) -> Result<(Device, usize)> {
    let req: VmmDeviceState = arg.read()?;
    if req.flags != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    let device = Device::from_abi(req.device).ok_or(EINVAL)?;
    if req.size as usize != device.size() {
        return Err(EINVAL);
    }
    let data = usize::try_from(req.data).map_err(|_| EFAULT)?;
    Ok((device, data))
}

impl State {
    /// Copies `device`'s state struct in from `addr`.
    fn read(device: Device, addr: usize) -> Result<State> {
        let at = UserArg(addr);
        Ok(match device {
            Device::Ioapic => State::Ioapic(at.read()?),
            Device::Pic => State::Pic(at.read()?),
            Device::Pit => State::Pit(at.read()?),
            Device::Pm => State::Pm(at.read()?),
            Device::Rtc => State::Rtc(at.read()?),
            Device::Hpet => State::Hpet(at.read()?),
        })
    }

    /// Copies the state struct out to `addr`.
    fn write(&self, addr: usize) -> Result {
        match self {
            State::Ioapic(s) => write_arg(addr, s),
            State::Pic(s) => write_arg(addr, s),
            State::Pit(s) => write_arg(addr, s),
            State::Pm(s) => write_arg(addr, s),
            State::Rtc(s) => write_arg(addr, s),
            State::Hpet(s) => write_arg(addr, s),
        }
    }
}

impl Platform {
    /// `VMM_VM_GET_DEVICE`.
    pub(crate) fn get_state(&self, arg: UserArg) -> Result {
        let (device, addr) = parse(arg)?;
        let state = {
            let c = self.chipset.lock();
            // Read under the lock: no device has seen a later time.
            take(&c, device, now_ns())
        };
        state.ok_or(ENODEV)?.write(addr)
    }

    /// `VMM_VM_SET_DEVICE`: all or nothing.
    pub(crate) fn set_state(this: &Arc<Ticker<Platform>>, arg: UserArg) -> Result {
        let (device, addr) = parse(arg)?;
        let state = State::read(device, addr)?;
        let mut r = Ok(());
        this.with(Some(this), |c, out| r = put(c, &state, now_ns(), out));
        r
    }
}

/// The state of `device` at `now`, or `None` if the VM has none.
fn take(c: &Chipset, device: Device, now: Nanos) -> Option<State> {
    Some(match device {
        Device::Ioapic => State::Ioapic(ioapic_abi(&c.ioapic.as_ref()?.snapshot())),
        Device::Pic => State::Pic(pic_abi(&c.pic.as_ref()?.snapshot())),
        Device::Pit => State::Pit(pit_abi(&c.pit.as_ref()?.snapshot(now))),
        Device::Pm => State::Pm(pm_abi(&c.pm.as_ref()?.snapshot(now))),
        Device::Rtc => State::Rtc(rtc_abi(&c.rtc.as_ref()?.snapshot())),
        Device::Hpet => State::Hpet(hpet_abi(&c.hpet.as_ref()?.snapshot())),
    })
}

/// Restores `state` into its device at `now` and records in `out` what
/// that asks for. `ENODEV` without the device, `EINVAL` for a state the
/// model refuses; either way nothing has changed.
fn put(c: &mut Chipset, state: &State, now: Nanos, out: &mut Out) -> Result {
    match state {
        State::Ioapic(a) => {
            let io = c.ioapic.as_mut().ok_or(ENODEV)?;
            let s = ioapic_snap(a).ok_or(EINVAL)?;
            io.restore(&s).map_err(|_| EINVAL)?;
            c.adopt_ioapic_lines();
        }
        State::Pic(a) => {
            let p = c.pic.as_mut().ok_or(ENODEV)?;
            let s = pic_snap(a).ok_or(EINVAL)?;
            out.pic(p.restore(&s).map_err(|_| EINVAL)?);
            c.adopt_pic_lines(u16::from(s.master.lines) | u16::from(s.slave.lines) << 8);
        }
        State::Pit(a) => {
            let p = c.pit.as_mut().ok_or(ENODEV)?;
            let s = pit_snap(a).ok_or(EINVAL)?;
            let fx = p.restore(&s, now).map_err(|_| EINVAL)?;
            c.pit_fx(fx, out);
        }
        State::Pm(a) => {
            let pm = c.pm.as_mut().ok_or(ENODEV)?;
            let s = pm_snap(a).ok_or(EINVAL)?;
            pm.restore(&s, now).map_err(|_| EINVAL)?;
        }
        State::Rtc(a) => {
            let r = c.rtc.as_mut().ok_or(ENODEV)?;
            let s = rtc_snap(a).ok_or(EINVAL)?;
            let fx = r.restore(&s, now).map_err(|_| EINVAL)?;
            c.rtc_fx(fx, out);
        }
        State::Hpet(a) => {
            let live = c.hpet.as_mut().ok_or(ENODEV)?;
            let s = hpet_snap(a).ok_or(EINVAL)?;
            // The model restores into a device whose lines are down.
            let mut fresh = Hpet::new();
            let fx = fresh.restore(&s, now).map_err(|_| EINVAL)?;
            let before = core::mem::replace(live, fresh).asserted();
            // Lower what the old device held and the new one does not; a
            // line both hold stays up, without an edge.
            let mut lower = hpet::Effects::NONE;
            let held = |o: &hpet::Irq| fx.irqs.iter().flatten().any(|n| same_line(o, n));
            for (slot, old) in lower.irqs.iter_mut().zip(before) {
                *slot = old.filter(|o| !held(o)).and_then(lowered);
            }
            c.hpet_fx(lower, out);
            c.hpet_fx(fx, out);
        }
    }
    Ok(())
}

/// Whether two HPET interrupt operations drive the same line.
fn same_line(a: &hpet::Irq, b: &hpet::Irq) -> bool {
    match (a, b) {
        (hpet::Irq::Isa { irq: x, .. }, hpet::Irq::Isa { irq: y, .. }) => x == y,
        (hpet::Irq::Ioapic { pin: x, .. }, hpet::Irq::Ioapic { pin: y, .. }) => x == y,
        _ => false,
    }
}

/// The operation that lowers the line `irq` drives (none for an MSI).
fn lowered(irq: hpet::Irq) -> Option<hpet::Irq> {
    let op = LineOp::Deassert;
    match irq {
        hpet::Irq::Isa { irq, .. } => Some(hpet::Irq::Isa { irq, op }),
        hpet::Irq::Ioapic { pin, .. } => Some(hpet::Irq::Ioapic { pin, op }),
        hpet::Irq::Msi(_) => None,
    }
}

// --- conversions: model snapshot to ABI, and back -------------------------
//
// To the ABI every field widens; back, a value that does not fit the
// model's field, or a non-zero reserved field, is refused (`None`). The
// version goes through as it is: the model checks it.

fn ioapic_abi(s: &ioapic::Snapshot) -> VmmIoapicState {
    VmmIoapicState {
        version: s.version,
        id: s.id.into(),
        ioregsel: s.ioregsel.into(),
        lines: s.lines,
        rte: s.rte,
    }
}

fn ioapic_snap(a: &VmmIoapicState) -> Option<ioapic::Snapshot> {
    Some(ioapic::Snapshot {
        version: a.version,
        id: a.id.try_into().ok()?,
        ioregsel: a.ioregsel.try_into().ok()?,
        rte: a.rte,
        lines: a.lines,
    })
}

fn chip_abi(s: &pic::ChipSnapshot) -> VmmPicChipState {
    VmmPicChipState {
        irr: s.irr.into(),
        isr: s.isr.into(),
        imr: s.imr.into(),
        lines: s.lines.into(),
        elcr: s.elcr.into(),
        lowest_priority: s.lowest_priority.into(),
        vector_base: s.vector_base.into(),
        init: s.init.into(),
        icw1: s.icw1.into(),
        read_isr: s.read_isr.into(),
        poll: s.poll.into(),
        special_mask: s.special_mask.into(),
        auto_eoi: s.auto_eoi.into(),
        rotate_on_aeoi: s.rotate_on_aeoi.into(),
        sfnm: s.sfnm.into(),
        reserved: 0,
    }
}

fn chip_snap(a: &VmmPicChipState) -> Option<pic::ChipSnapshot> {
    if a.reserved != 0 {
        return None;
    }
    let b = |v: u32| u8::try_from(v).ok();
    Some(pic::ChipSnapshot {
        irr: b(a.irr)?,
        isr: b(a.isr)?,
        imr: b(a.imr)?,
        lines: b(a.lines)?,
        elcr: b(a.elcr)?,
        lowest_priority: b(a.lowest_priority)?,
        vector_base: b(a.vector_base)?,
        init: b(a.init)?,
        icw1: b(a.icw1)?,
        read_isr: b(a.read_isr)?,
        poll: b(a.poll)?,
        special_mask: b(a.special_mask)?,
        auto_eoi: b(a.auto_eoi)?,
        rotate_on_aeoi: b(a.rotate_on_aeoi)?,
        sfnm: b(a.sfnm)?,
    })
}

fn pic_abi(s: &pic::Snapshot) -> VmmPicState {
    VmmPicState {
        version: s.version,
        reserved: 0,
        master: chip_abi(&s.master),
        slave: chip_abi(&s.slave),
    }
}

fn pic_snap(a: &VmmPicState) -> Option<pic::Snapshot> {
    if a.reserved != 0 {
        return None;
    }
    Some(pic::Snapshot {
        version: a.version,
        master: chip_snap(&a.master)?,
        slave: chip_snap(&a.slave)?,
    })
}

fn counter_abi(s: &pit::CounterSnapshot) -> VmmPitCounterState {
    VmmPitCounterState {
        control: s.control.into(),
        count_register: s.count_register.into(),
        has_count: s.has_count.into(),
        write_lsb: s.write_lsb.into(),
        read_msb: s.read_msb.into(),
        latched_count: s.latched_count,
        latched_status: s.latched_status.into(),
        null_count: s.null_count.into(),
        gate: s.gate.into(),
        count: s.count,
        phase: s.phase,
        run: s.run.into(),
        strobed: s.strobed.into(),
        load_low_half: s.load_low_half.into(),
        load_cycle_end: s.load_cycle_end.into(),
        reserved: 0,
        run_value: s.run_value,
        paused_since: s.paused_since,
        load_at: s.load_at,
    }
}

fn counter_snap(a: &VmmPitCounterState) -> Option<pit::CounterSnapshot> {
    if a.reserved != 0 {
        return None;
    }
    let b = |v: u32| u8::try_from(v).ok();
    let w = |v: u32| u16::try_from(v).ok();
    Some(pit::CounterSnapshot {
        control: b(a.control)?,
        count_register: w(a.count_register)?,
        has_count: b(a.has_count)?,
        write_lsb: w(a.write_lsb)?,
        read_msb: b(a.read_msb)?,
        latched_count: a.latched_count,
        latched_status: w(a.latched_status)?,
        null_count: b(a.null_count)?,
        gate: b(a.gate)?,
        count: a.count,
        phase: a.phase,
        run: b(a.run)?,
        run_value: a.run_value,
        paused_since: a.paused_since,
        strobed: b(a.strobed)?,
        load_at: a.load_at,
        load_low_half: b(a.load_low_half)?,
        load_cycle_end: b(a.load_cycle_end)?,
    })
}

fn pit_abi(s: &pit::Snapshot) -> VmmPitState {
    let [c0, c1, c2] = &s.counters;
    VmmPitState {
        version: s.version,
        speaker: s.speaker.into(),
        taken_at: s.taken_at,
        irq_next: s.irq_next,
        deadline: s.deadline,
        counters: [counter_abi(c0), counter_abi(c1), counter_abi(c2)],
    }
}

fn pit_snap(a: &VmmPitState) -> Option<pit::Snapshot> {
    let [c0, c1, c2] = &a.counters;
    Some(pit::Snapshot {
        version: a.version,
        taken_at: a.taken_at,
        counters: [counter_snap(c0)?, counter_snap(c1)?, counter_snap(c2)?],
        speaker: a.speaker.try_into().ok()?,
        irq_next: a.irq_next,
        deadline: a.deadline,
    })
}

fn pm_abi(s: &pmtimer::Snapshot) -> VmmPmTimerState {
    VmmPmTimerState {
        version: s.version,
        width: s.width.into(),
        origin: s.origin,
        count: s.count,
        reserved: 0,
    }
}

fn pm_snap(a: &VmmPmTimerState) -> Option<pmtimer::Snapshot> {
    if a.reserved != 0 {
        return None;
    }
    Some(pmtimer::Snapshot {
        version: a.version,
        width: a.width.try_into().ok()?,
        origin: a.origin,
        count: a.count,
    })
}

fn rtc_abi(s: &rtc::Snapshot) -> VmmRtcState {
    VmmRtcState {
        version: s.version,
        index: s.index.into(),
        synced: s.synced,
        divider_age: s.divider_age,
        secs: s.secs,
        nmi_disabled: s.nmi_disabled.into(),
        reg_a: s.reg_a.into(),
        reg_b: s.reg_b.into(),
        flags: s.flags.into(),
        alarm: s.alarm.map(u32::from),
        clock: s.clock.into(),
        held: s.held,
        cmos: s.cmos,
    }
}

fn rtc_snap(a: &VmmRtcState) -> Option<rtc::Snapshot> {
    let b = |v: u32| u8::try_from(v).ok();
    let [s, m, h] = a.alarm;
    Some(rtc::Snapshot {
        version: a.version,
        synced: a.synced,
        divider_age: a.divider_age,
        index: b(a.index)?,
        nmi_disabled: b(a.nmi_disabled)?,
        reg_a: b(a.reg_a)?,
        reg_b: b(a.reg_b)?,
        flags: b(a.flags)?,
        alarm: [b(s)?, b(m)?, b(h)?],
        clock: b(a.clock)?,
        secs: a.secs,
        held: a.held,
        cmos: a.cmos,
    })
}

fn hpet_abi(s: &hpet::Snapshot) -> VmmHpetState {
    VmmHpetState {
        version: s.version,
        reserved: 0,
        config: s.config,
        status: s.status,
        counter: s.counter,
        base_ns: s.base_ns,
        checked: s.checked,
        timer_conf: s.timer_conf,
        timer_comparator: s.timer_comparator,
        timer_period: s.timer_period,
        timer_fsb: s.timer_fsb,
    }
}

fn hpet_snap(a: &VmmHpetState) -> Option<hpet::Snapshot> {
    if a.reserved != 0 {
        return None;
    }
    Some(hpet::Snapshot {
        version: a.version,
        config: a.config,
        status: a.status,
        counter: a.counter,
        base_ns: a.base_ns,
        checked: a.checked,
        timer_conf: a.timer_conf,
        timer_comparator: a.timer_comparator,
        timer_period: a.timer_period,
        timer_fsb: a.timer_fsb,
    })
}
