// SPDX-License-Identifier: GPL-2.0

//! The in-kernel local APIC in the run loop: what happens before each
//! entry (the timer, INIT and SIPI, which event goes in and which window
//! opens), HLT and wait-for-SIPI, the APIC's MMIO page and MSRs, and the
//! delivery of IPIs and MSIs to other vCPUs.
//!
//! Everything here runs on the vCPU's thread under its `state` mutex,
//! except [`deliver`] and [`Vcpu::raise`], which any thread may call (they
//! take only APIC spinlocks, one at a time, and never sleep).

use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Relaxed, Release},
};

use super::{lapic::Lapic, Vcpu, VcpuState};
use crate::backend::VcpuHw;
use crate::hw;
use crate::uapi::{self, reg};
use crate::vlapic::{
    resolve, timer::mul_div, Activity, Bus, Dest, Effects, Endpoint, Gp, Interrupt, Kind, Message,
    TimerAction,
};
use crate::vm::{Cpus, Vm};
use crate::x86::{msr, regs::rflags};

/// Whether `index` is an MSR the local APIC answers.
pub(super) fn is_apic_msr(index: u32) -> bool {
    matches!(index, msr::APIC_BASE | msr::TSC_DEADLINE | msr::X2APIC_FIRST..=msr::X2APIC_LAST)
}

impl VcpuState {
    /// The guest's TSC now.
    pub(super) fn guest_tsc(&self) -> u64 {
        hw::cpu::rdtsc().wrapping_add(self.hw.tsc_offset())
    }

    /// Whether the guest has RFLAGS.IF set.
    fn if_set(&self) -> bool {
        self.gpr(reg::RFLAGS) & rflags::IF != 0
    }
}

impl Vcpu {
    /// Gets the vCPU ready to enter: services its APIC (a due timer,
    /// INIT, SIPI, NMI, the TPR the guest set through CR8), then queues the
    /// event that goes in and asks for the windows that a blocked event
    /// needs. `false`: the vCPU has nothing to run (it is halted or waits
    /// for SIPI) and must sleep.
    pub(super) fn prepare_entry(&self, vm: &Vm, st: &mut VcpuState) -> Result<bool> {
        // Anything raised from now on makes the entry stop (`arrive`).
        self.lapic.request.store(false, Relaxed);
        let now = st.guest_tsc();
        let cr8 = st.hw.tpr();
        let changed_cr8 = cr8 != st.tpr_seen;
        let (fx, ev, exception, wfs, extint_msg) = self.lapic.with(|s| {
            if changed_cr8 {
                s.apic.set_tpr(cr8);
            }
            let fx = if core::mem::take(&mut s.timer_due) {
                s.apic.timer_expired(now)
            } else {
                Effects::NONE
            };
            // An ExtINT message stays pending until the PIC is asked for
            // its vector; `take_events` hands it over once.
            let extint_msg = s.apic.latched().extint;
            let ev = s.apic.take_events();
            let wfs = s.apic.activity() == Activity::WaitForSipi;
            let exception = if wfs { None } else { s.exception.take() };
            (fx, ev, exception, wfs, extint_msg)
        });
        self.effects(vm, st, fx);
        self.effects(vm, st, ev.effects);
        if ev.reset.is_some() {
            self.init(st)?;
        }
        if let Some(vector) = ev.start {
            st.hw.start_at(vector)?;
            st.halted = false;
        }
        if wfs {
            return Ok(false);
        }
        // SMIs are dropped (no SMM); ExtINT waits for the 8259.
        st.nmi_pending |= ev.nmi;
        let intr = st.hw.interruptibility();
        let mut took = false;
        if let Some(e) = exception {
            if intr.event_queued {
                // Goes in after the event an exit interrupted.
                self.lapic.with(|s| s.exception = Some(e));
            } else {
                st.hw.inject(e);
                took = true;
            }
        } else if st.nmi_pending && intr.takes_nmi() {
            st.hw.inject_nmi();
            st.nmi_pending = false;
            took = true;
        }
        let mut can_irq = !took && intr.takes_interrupt();
        // The 8259's interrupt goes before the APIC's, as KVM orders them;
        // the PIC gives the vector at the acknowledge.
        let mut extint_held = false;
        if ev.extint {
            if can_irq {
                if let Some(v) = vm.platform().intack() {
                    st.hw.inject_interrupt(v);
                    took = true;
                    can_irq = false;
                }
            } else {
                extint_held = true;
                if extint_msg {
                    // Latched again for the entry that can take it (a
                    // LINT0 level is read again anyway).
                    let _ = self.lapic.with(|s| s.apic.deliver(Interrupt::ExtInt));
                }
            }
        }
        let (injected, more, tpr, held) = self.lapic.with(|s| {
            let v = s.apic.pending_interrupt();
            let injected = v.filter(|v| can_irq && s.apic.accept_interrupt(*v));
            let more =
                if injected.is_some() { s.apic.pending_interrupt().is_some() } else { v.is_some() };
            // A request the TPR holds back: the guest may lower CR8
            // without an exit, so ask for one when it does.
            let held = if more { 0 } else { s.apic.highest_request().map_or(0, |r| r >> 4) };
            (injected, more, s.apic.tpr(), held)
        });
        if let Some(v) = injected {
            st.hw.inject_interrupt(v);
            took = true;
        }
        let more = more || extint_held;
        if st.halted {
            // HLT ends with an interrupt the guest takes, or an NMI.
            if !(took || st.nmi_pending || more && st.if_set()) {
                return Ok(false);
            }
            st.halted = false;
        }
        st.hw.set_tpr(tpr);
        st.tpr_seen = st.hw.tpr();
        let tpr_class = if held != 0 && held <= tpr >> 4 { held } else { 0 };
        st.hw.set_windows(more, st.nmi_pending, tpr_class);
        Ok(true)
    }

    /// INIT: the vCPU's architectural state goes to its INIT values, and
    /// anything pending for it is dropped.
    fn init(&self, st: &mut VcpuState) -> Result {
        st.hw.init(u64::from(hw::cpu::host_cpuid(1, 0)[0]))?;
        st.xcr0 = 1;
        st.halted = false;
        st.nmi_pending = false;
        st.pending = super::Pending::None;
        st.mmio = None;
        Ok(())
    }

    /// Sleeps until the vCPU has something to do (`prepare_entry` said it
    /// has not), after suspending the VM if no vCPU can ever wake up.
    /// `Err(EINTR)` for a signal; the vCPU stays halted.
    pub(super) fn sleep(&self, vm: &Vm, st: &mut VcpuState) -> Result {
        let wfs = self.lapic.with(|s| s.apic.activity() == Activity::WaitForSipi);
        let if_set = st.if_set();
        // Only an NMI, INIT or SIPI (or the sequencer) ends a HLT with
        // interrupts off, or a wait for SIPI.
        self.dead.store(wfs || !if_set, Release);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        if (wfs || !if_set) && vm.all_stuck() {
            vm.suspend(uapi::VMM_SUSPEND_HALT, self.id);
        }
        let woke = self.lapic.sleep_until(|s| {
            s.timer_due
                || s.latched()
                || (!wfs
                    && (s.exception.is_some()
                        || (if_set
                            && (s.apic.pending_interrupt().is_some() || s.apic.extint_pending()))))
        });
        self.dead.store(false, Release);
        if woke {
            Ok(())
        } else {
            Err(EINTR)
        }
    }

    /// Whether this vCPU can only be woken by an NMI, INIT or SIPI and none
    /// is latched.
    pub(crate) fn is_stuck(&self) -> bool {
        self.dead.load(Acquire) && !self.lapic.with(|s| s.latched() || s.exception.is_some())
    }

    /// Acts on what an APIC call returned.
    pub(super) fn effects(&self, vm: &Vm, st: &mut VcpuState, fx: Effects) {
        if let Some(msg) = fx.ipi {
            deliver(vm.cpus(), &msg, Some(self.id as usize));
        }
        if let Some(t) = fx.timer {
            self.set_timer(st, t);
        }
        if let Some(vector) = fx.eoi {
            vm.platform().eoi(vector);
        }
        // `fx.mode` needs nothing: every
        // x2APIC MSR exits in every mode, and the MMIO path asks the APIC
        // for its page at each access. `fx.wake` is this vCPU, which is
        // awake.
    }

    /// Arms or cancels the host timer for the APIC timer's next expiry.
    fn set_timer(&self, st: &mut VcpuState, t: TimerAction) {
        match t {
            TimerAction::Disarm => drop(st.timer.take()),
            TimerAction::Arm(at) => {
                let now = st.guest_tsc();
                if at <= now {
                    drop(st.timer.take());
                    self.lapic.with(|s| s.timer_due = true);
                    self.lapic.request.store(true, Release);
                } else {
                    let khz = u64::from(hw::tsc_khz()).max(1);
                    let ns = mul_div(at - now, 1_000_000, khz, true);
                    self.lapic.arm(&mut st.timer, ns);
                }
            }
        }
    }

    /// RDMSR or WRMSR of an APIC MSR ([`is_apic_msr`]).
    pub(super) fn apic_msr(
        &self,
        vm: &Vm,
        st: &mut VcpuState,
        index: u32,
        write: Option<u64>,
    ) -> Result<u64, Gp> {
        let now = st.guest_tsc();
        let r = self.lapic.with(|s| match write {
            Some(v) => s.apic.wrmsr(index, v, now).map(|fx| (0, fx)),
            None => s.apic.rdmsr(index, now).map(|v| (v, Effects::NONE)),
        });
        let (value, fx) = r?;
        self.effects(vm, st, fx);
        Ok(value)
    }

    /// The LINT0 input (the 8259's INTR) changes level. Any thread.
    pub(crate) fn set_lint0(&self, asserted: bool) {
        let fx = self.lapic.with(|s| s.apic.set_lint(0, asserted));
        if fx.wake {
            self.lapic.notify();
        }
    }

    /// An interrupt from the bus (another vCPU, an MSI, the sequencer).
    /// Any thread.
    pub(crate) fn raise(&self, irq: Interrupt) {
        let fx = self.lapic.with(|s| s.apic.deliver(irq));
        if fx.wake {
            self.lapic.notify();
        }
    }
}

/// This vCPU's xAPIC page on the MMIO bus, for one emulated instruction.
/// Its accesses complete at once: a write's IPI is delivered from inside
/// the emulator (taking only APIC spinlocks), and its timer change is kept
/// for the vCPU to act on afterwards ([`Vcpu::after_mmio`]).
pub(super) struct ApicPage<'a> {
    vm: &'a Vm,
    lapic: &'a Lapic,
    id: u32,
    now: u64,
    timer: Option<TimerAction>,
}

impl<'a> ApicPage<'a> {
    /// vCPU `v`'s page, at guest TSC `now`.
    pub(super) fn new(vm: &'a Vm, v: &'a Vcpu, now: u64) -> Self {
        Self { vm, lapic: &v.lapic, id: v.id, now, timer: None }
    }

    /// Reads `buf.len()` bytes at `gpa`; `false` if the page is not there.
    pub(super) fn read(&mut self, gpa: u64, buf: &mut [u8]) -> bool {
        self.lapic.with(|s| s.apic.mmio_read_bytes(gpa, buf, self.now))
    }

    /// Writes `data` at `gpa`; `false` if the page is not there.
    pub(super) fn write(&mut self, gpa: u64, data: &[u8]) -> bool {
        let (now, id) = (self.now, self.id);
        let done = self.lapic.with(|s| {
            let fx = s.apic.mmio_write_bytes(gpa, data, now)?;
            Some((fx, s.apic.id() != id))
        });
        let Some((fx, renamed)) = done else { return false };
        if renamed {
            self.vm.cpus().set_renamed();
        }
        if let Some(msg) = fx.ipi {
            deliver(self.vm.cpus(), &msg, Some(id as usize));
        }
        if let Some(vector) = fx.eoi {
            self.vm.platform().eoi(vector);
        }
        self.timer = fx.timer.or(self.timer);
        true
    }
}

impl Vcpu {
    /// Acts on what an emulated instruction did to the APIC page.
    pub(super) fn after_mmio(&self, st: &mut VcpuState, page: ApicPage<'_>) {
        if let Some(t) = page.timer {
            self.set_timer(st, t);
        }
    }
}

/// The VM's APICs as the model's bus sees them.
struct VmBus<'a>(&'a Cpus);

impl Bus for VmBus<'_> {
    fn len(&self) -> usize {
        uapi::VMM_MAX_VCPUS as usize
    }
    fn endpoint(&self, index: usize) -> Option<Endpoint> {
        let v = self.0.get(index)?;
        Some(v.lapic.with(|s| s.apic.endpoint()))
    }
}

/// Delivers `msg` from vCPU `source` (`None`: an MSI or the sequencer).
/// A message for one physical APIC ID goes straight to the vCPU of that
/// index (an APIC ID is its vCPU's index unless the guest renamed one);
/// everything else is resolved over every vCPU. Any thread.
pub(crate) fn deliver(cpus: &Cpus, msg: &Message, source: Option<usize>) {
    if let (Dest::Physical(id), Kind::Interrupt(irq)) = (msg.dest, msg.kind) {
        if !msg.is_broadcast(id) && !cpus.renamed() {
            if let Some(v) = cpus.get(id as usize) {
                let ep = v.lapic.with(|s| s.apic.endpoint());
                if ep.id == id && ep.mode != crate::vlapic::Mode::Disabled {
                    v.raise(irq);
                }
            }
            return;
        }
    }
    let d = resolve(msg, source, &VmBus(cpus));
    for cpu in d.targets.iter().take_while(|c| *c < uapi::VMM_MAX_VCPUS as usize) {
        if let Some(v) = cpus.get(cpu) {
            v.raise(d.interrupt);
        }
    }
}
