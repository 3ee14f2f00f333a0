// SPDX-License-Identifier: GPL-2.0

//! The local APIC's vCPU and VM ioctls: options, events, MSIs, and saving
//! and restoring the APIC and run state.

use kernel::{prelude::*, sync::atomic::Release};

use super::{apic_config, Vcpu};
use crate::backend::Event;
use crate::hw::abi::{write_arg, UserArg};
use crate::uapi::{self, VmmApicState, VmmRunState};
use crate::vlapic::{
    snapshot::SNAPSHOT_VERSION, Activity, Effects, Interrupt, Message, Snapshot, Vlapic,
};
use crate::vm::{Cpus, Vm};

impl Vcpu {
    /// `VMM_VCPU_GET_OPTION` / `VMM_VCPU_SET_OPTION`.
    pub(super) fn option(&self, arg: UserArg, set: bool) -> Result<isize> {
        let mut req: uapi::VmmOption = arg.read()?;
        if req.reserved != 0 || req.option != uapi::VMM_OPTION_HLT_EXIT {
            return Err(EINVAL);
        }
        if set {
            if req.value > 1 {
                return Err(EINVAL);
            }
            self.state.lock().hlt_exit = req.value == 1;
            return Ok(0);
        }
        req.value = u64::from(self.state.lock().hlt_exit);
        write_arg(arg.0, &req)?;
        Ok(0)
    }

    /// `VMM_VCPU_EVENT`: checks `e` and raises it. Never waits for a
    /// running vCPU.
    pub(super) fn event(&self, e: &uapi::VmmEvent) -> Result {
        use uapi::VMM_EVENT_LEVEL as LEVEL;
        use uapi::{VMM_EVENT_DEASSERT as DEASSERT, VMM_EVENT_ERROR_CODE as ERR};
        let only = |allowed: u32| e.flags & !allowed == 0;
        match e.kind {
            uapi::VMM_EVENT_FIXED
                if (16..=255).contains(&e.vector) && only(LEVEL) && e.error == 0 =>
            {
                let level = e.flags & LEVEL != 0;
                self.raise(Interrupt::Fixed { vector: e.vector as u8, level });
            }
            uapi::VMM_EVENT_NMI if e.vector == 0 && e.flags == 0 && e.error == 0 => {
                self.raise(Interrupt::Nmi);
            }
            uapi::VMM_EVENT_LINT
                if e.vector <= 1
                    && only(LEVEL | DEASSERT)
                    && e.flags != LEVEL | DEASSERT
                    && e.error == 0 =>
            {
                let pin = e.vector as u8;
                let fx = self.lapic.with(|s| {
                    let mut fx = Effects::NONE;
                    if e.flags & DEASSERT == 0 {
                        fx.merge(s.apic.set_lint(pin, true));
                    }
                    if e.flags & LEVEL == 0 {
                        fx.merge(s.apic.set_lint(pin, false));
                    }
                    fx
                });
                if fx.wake {
                    self.lapic.notify();
                }
            }
            uapi::VMM_EVENT_EXCEPTION
                if e.vector < 32
                    && e.vector != 2
                    && only(ERR)
                    && (e.flags & ERR != 0 || e.error == 0) =>
            {
                let error = (e.flags & ERR != 0).then_some(e.error);
                let ev = Event { vector: e.vector as u8, error };
                self.lapic.with(|s| s.exception = Some(ev));
                self.lapic.notify();
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// `VMM_VCPU_GET_APIC`.
    pub(super) fn get_apic(&self, vm: &Vm, arg: UserArg) -> Result<isize> {
        let mut st = self.state.lock();
        let now = st.guest_tsc();
        let (snap, fx) = self.lapic.with(|s| s.apic.snapshot(now));
        self.effects(vm, &mut st, fx);
        drop(st);
        write_arg(arg.0, &to_abi(&snap))?;
        Ok(0)
    }

    /// `VMM_VCPU_SET_APIC`: all or nothing.
    pub(super) fn set_apic(&self, vm: &Vm, arg: UserArg) -> Result<isize> {
        let a: VmmApicState = arg.read()?;
        let snap = from_abi(&a).ok_or(EINVAL)?;
        if u32::from(snap.index) != self.id || snap.initial_id != self.id {
            return Err(EINVAL);
        }
        let cfg = apic_config(&self.shared);
        let (apic, fx) = Vlapic::restore(cfg, &snap).map_err(|_| EINVAL)?;
        let mut st = self.state.lock();
        let renamed = apic.id() != self.id;
        self.lapic.with(|s| {
            s.apic = apic;
            s.timer_due = false;
        });
        if renamed {
            vm.cpus().set_renamed();
        }
        self.effects(vm, &mut st, Effects { ipi: None, ..fx });
        drop(st);
        self.lapic.notify();
        Ok(0)
    }

    /// `VMM_VCPU_GET_RUN_STATE`.
    pub(super) fn get_run_state(&self, arg: UserArg) -> Result<isize> {
        let st = self.state.lock();
        let wfs = self.lapic.with(|s| s.apic.activity() == Activity::WaitForSipi);
        let state = if wfs {
            uapi::VMM_RUN_STATE_WAIT_SIPI
        } else if st.halted {
            uapi::VMM_RUN_STATE_HALTED
        } else {
            uapi::VMM_RUN_STATE_RUNNING
        };
        let flags = if st.nmi_pending { uapi::VMM_RUN_STATE_NMI_PENDING } else { 0 };
        drop(st);
        write_arg(arg.0, &VmmRunState { state, flags, reserved: [0; 3] })?;
        Ok(0)
    }

    /// `VMM_VCPU_SET_RUN_STATE`.
    pub(super) fn set_run_state(&self, arg: UserArg) -> Result<isize> {
        let r: VmmRunState = arg.read()?;
        if r.reserved != [0; 3] || r.flags & !uapi::VMM_RUN_STATE_NMI_PENDING != 0 {
            return Err(EINVAL);
        }
        let (halted, activity) = match r.state {
            uapi::VMM_RUN_STATE_RUNNING => (false, Activity::Running),
            uapi::VMM_RUN_STATE_HALTED => (true, Activity::Running),
            uapi::VMM_RUN_STATE_WAIT_SIPI => (false, Activity::WaitForSipi),
            _ => return Err(EINVAL),
        };
        let mut st = self.state.lock();
        st.halted = halted;
        st.nmi_pending = r.flags & uapi::VMM_RUN_STATE_NMI_PENDING != 0;
        self.lapic.with(|s| s.apic.set_activity(activity));
        self.dead.store(activity == Activity::WaitForSipi, Release);
        drop(st);
        self.lapic.notify();
        Ok(0)
    }
}

/// `VMM_VM_MSI`: checks `m` and delivers it.
pub(crate) fn msi(vm: &Vm, m: &uapi::VmmMsi) -> Result {
    if m.flags != 0 || m.address >> 20 != 0xfee || m.data >> 16 != 0 {
        return Err(EINVAL);
    }
    deliver_msi(vm.cpus(), m.address, m.data);
    Ok(())
}

/// Delivers the MSI of `address` (0xFEExxxxx) and `data` to the local
/// APICs: from the sequencer, the IOAPIC or the HPET. Any context.
pub(crate) fn deliver_msi(cpus: &Cpus, address: u64, data: u32) {
    let dest = ((address >> 12) & 0xff) as u32;
    let logical = address & (1 << 2) != 0;
    // A reserved delivery mode sends nothing, as the chipset drops it.
    if let Some(msg) = Message::from_msi(dest, logical, data, false) {
        super::intr::deliver(cpus, &msg, None);
    }
}

fn to_abi(s: &Snapshot) -> VmmApicState {
    VmmApicState {
        version: uapi::VMM_APIC_STATE_VERSION,
        initial_id: s.initial_id,
        taken_at: s.taken_at,
        apic_base: s.apic_base,
        icr: s.icr,
        timer_start: s.timer_start,
        tsc_deadline: s.tsc_deadline,
        timer_next: s.timer_next,
        index: u32::from(s.index),
        xapic_id: u32::from(s.xapic_id),
        tpr: u32::from(s.tpr),
        ldr: s.ldr,
        dfr: s.dfr,
        svr: s.svr,
        isr: s.isr,
        tmr: s.tmr,
        irr: s.irr,
        esr: s.esr,
        esr_pending: s.esr_pending,
        lvt: s.lvt,
        timer_initial: s.timer_initial,
        timer_dcr: s.timer_dcr,
        timer_count: s.timer_count,
        lint: u32::from(s.lint),
        activity: u32::from(s.activity),
        latched: u32::from(s.latched),
        sipi: u32::from(s.sipi),
        reserved: [0; 4],
    }
}

/// The model's snapshot, if every narrow field fits and the layout is
/// this one; the model checks the rest.
fn from_abi(a: &VmmApicState) -> Option<Snapshot> {
    if a.version != uapi::VMM_APIC_STATE_VERSION || a.reserved != [0; 4] {
        return None;
    }
    Some(Snapshot {
        version: SNAPSHOT_VERSION,
        taken_at: a.taken_at,
        index: u16::try_from(a.index).ok()?,
        initial_id: a.initial_id,
        apic_base: a.apic_base,
        xapic_id: u8::try_from(a.xapic_id).ok()?,
        tpr: u8::try_from(a.tpr).ok()?,
        ldr: a.ldr,
        dfr: a.dfr,
        svr: a.svr,
        isr: a.isr,
        tmr: a.tmr,
        irr: a.irr,
        esr: a.esr,
        esr_pending: a.esr_pending,
        lvt: a.lvt,
        icr: a.icr,
        timer_initial: a.timer_initial,
        timer_dcr: a.timer_dcr,
        timer_start: a.timer_start,
        timer_count: a.timer_count,
        tsc_deadline: a.tsc_deadline,
        timer_next: a.timer_next,
        lint: u8::try_from(a.lint).ok()?,
        activity: u8::try_from(a.activity).ok()?,
        latched: u8::try_from(a.latched).ok()?,
        sipi: u16::try_from(a.sipi).ok()?,
    })
}
