// SPDX-License-Identifier: GPL-2.0

//! The run loop and the exits common to both backends: CPUID, MSRs,
//! XSETBV, HLT, triple faults and nested page faults (port I/O is in
//! [`super::io`]).
//!
//! Exit handling keeps two channels apart, as binder keeps its reply apart
//! from its errno: what the guest or the sequencer sees is an [`Outcome`]
//! value, and an errno for the caller of `VMM_VCPU_RUN` travels in the
//! outer `Result`. A handler that decides to stop part-way returns
//! [`Step::Stop`] with the outcome, and [`go!`] passes it on.

use core::sync::atomic::{fence, Ordering};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Release},
};

use super::intr::{is_apic_msr, ApicPage};
use super::{Pending, Vcpu, VcpuState};
use crate::backend::{Entry, Event, HwExit, VcpuHw};
use crate::emul::Op;
use crate::hw;
use crate::hw::abi::{write_arg, UserArg};
use crate::uapi::{self, exit, reg, ExitData, VmmExit};
use crate::vm::Vm;
use crate::x86::{
    cpuid,
    msr::{self, DirectMsr, Gp, MsrClass},
    regs::{cr0, cr4, EFER_VALID},
};

/// What handling an exit decided, as the guest and the sequencer see it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Outcome {
    /// Enter the guest again.
    Reenter,
    /// Deliver this exception, then enter again.
    Fault(Event),
    /// Deliver #PF with this error code and CR2, then enter again.
    PageFault { cr2: u64, error: u32 },
    /// Return to the sequencer with this exit.
    ToUser(VmmExit),
}

/// One step of exit handling: it went on with a value, or it stopped with
/// an outcome.
pub(super) enum Step<T> {
    /// Carry on with this.
    Go(T),
    /// Stop here with this outcome.
    Stop(Outcome),
}

/// Evaluates a `Step<T>`: the value of `Go`, or returns the `Stop`
/// outcome from the enclosing handler.
macro_rules! go {
    ($e:expr) => {
        match $e {
            Step::Go(v) => v,
            Step::Stop(o) => return Ok(o),
        }
    };
}

/// MISC_ENABLE as the guest reads it: fast strings; no BTS, no PEBS.
const MISC_ENABLE: u64 = 1 | (1 << 11) | (1 << 12);

impl Vcpu {
    pub(super) fn run(&self, vm: &Vm, arg: UserArg) -> Result<isize> {
        let mut run: uapi::VmmRun = arg.read()?;
        let e = &run.entry;
        if e.flags != 0 || e.reserved != [0; 2] {
            return Err(EINVAL);
        }
        if self.running.cmpxchg(false, true, Acquire).is_err() {
            return Err(EBUSY);
        }
        let result = (|| {
            let mut st = self.state.lock();
            let mut page = ApicPage::new(vm, self, st.guest_tsc());
            let done = st.complete(vm, &run.entry, &mut page);
            self.after_mmio(&mut st, page);
            match st.apply(done?) {
                Some(exit) => Ok(exit),
                None => self.run_loop(vm, &mut st),
            }
        })();
        self.running.store(false, Release);
        run.exit = result?;
        run.exit.vcpu = self.id;
        write_arg(arg.0, &run)?;
        Ok(0)
    }

    fn run_loop(&self, vm: &Vm, st: &mut VcpuState) -> Result<VmmExit> {
        loop {
            if vm.is_destroyed() {
                return Err(ENXIO);
            }
            if let Some(e) = vm.suspended_exit() {
                return Ok(VmmExit { rip: st.rip(), ..e });
            }
            if self.kick.xchg(false, Acquire) {
                return Ok(VmmExit { reason: exit::KICKED, rip: st.rip(), ..VmmExit::ZERO });
            }
            if hw::signal_pending() {
                return Err(EINTR);
            }
            hw::cond_resched();
            if !self.prepare_entry(vm, st)? {
                self.sleep(vm, st)?;
                continue;
            }
            let (root, generation) = vm.nested();
            let xcr0 = st.guest_xcr0(self.shared.fpu.host_xcr0);
            let fpu = st.fpu.load();
            let lapic = &self.lapic;
            let mut arrive = |cpu: u32| {
                lapic.in_guest.store(cpu as i32, Release);
                fence(Ordering::SeqCst);
                !self.kick.load(Acquire)
                    && !lapic.request.load(Acquire)
                    && !vm.must_not_enter(generation)
            };
            let mut depart = || lapic.in_guest.store(-1, Release);
            let entry = Entry {
                root,
                generation,
                cpu_flushed: vm.cpu_flushed(),
                xcr0,
                arrive: &mut arrive,
                depart: &mut depart,
            };
            let hx = st.hw.enter(entry);
            st.fpu.store(fpu);
            let outcome = self.handle(vm, st, hx?)?;
            if let Some(exit) = st.apply(outcome) {
                return Ok(exit);
            }
        }
    }

    /// Deals with one exit.
    fn handle(&self, vm: &Vm, st: &mut VcpuState, hx: HwExit) -> Result<Outcome> {
        let rip = st.rip();
        let out = |reason, data: [u64; 8]| {
            Ok(Outcome::ToUser(VmmExit { reason, rip, data, ..VmmExit::ZERO }))
        };
        match hx {
            HwExit::Continue => Ok(Outcome::Reenter),
            HwExit::Fault(e) => Ok(Outcome::Fault(e)),
            HwExit::Hlt => {
                go!(st.skip(vm, Op::Hlt));
                if !st.hlt_exit {
                    // `prepare_entry` lets it sleep until it can go on.
                    st.halted = true;
                    return Ok(Outcome::Reenter);
                }
                let rip = st.rip();
                Ok(Outcome::ToUser(VmmExit { reason: exit::HLT, rip, ..VmmExit::ZERO }))
            }
            HwExit::Cpuid => {
                let leaf = st.gpr(reg::RAX) as u32;
                let sub = st.gpr(reg::RCX) as u32;
                let r = st.cpuid(leaf, sub, self.id, vm.nr_vcpus());
                go!(st.skip(vm, Op::Cpuid));
                for (id, v) in [reg::RAX, reg::RBX, reg::RCX, reg::RDX].into_iter().zip(r) {
                    st.hw.set(id, u64::from(v))?;
                }
                Ok(Outcome::Reenter)
            }
            HwExit::Msr { write } => self.msr(vm, st, write),
            HwExit::Xsetbv => st.xsetbv(vm, self.shared.fpu.host_xcr0),
            HwExit::Shutdown => {
                vm.suspend(uapi::VMM_SUSPEND_TRIPLE_FAULT, self.id);
                Ok(vm.suspended_exit().map_or(Outcome::Reenter, Outcome::ToUser))
            }
            HwExit::NestedFault { gpa, access }
                if access != uapi::VMM_ACCESS_EXEC && !vm.is_mapped(gpa) =>
            {
                let mut page = ApicPage::new(vm, self, st.guest_tsc());
                let o = st.mmio(vm, gpa, &mut page);
                self.after_mmio(st, page);
                Ok(o)
            }
            HwExit::NestedFault { gpa, access } => {
                let flags = if vm.is_mapped(gpa) {
                    uapi::VMM_PAGING_PROTECTION
                } else {
                    uapi::VMM_PAGING_UNMAPPED
                };
                let p = uapi::VmmExitPaging { gpa, access, flags, ..uapi::VmmExitPaging::ZERO };
                out(exit::PAGING, p.to_data())
            }
            HwExit::Unhandled { reason, data } => out(reason, data),
            HwExit::Io(io) => st.io(vm, io),
        }
    }

    fn msr(&self, vm: &Vm, st: &mut VcpuState, write: bool) -> Result<Outcome> {
        let index = st.gpr(reg::RCX) as u32;
        let next_rip = go!(st.next_rip(vm, if write { Op::Wrmsr } else { Op::Rdmsr }));
        if is_apic_msr(index) {
            let value = write.then(|| st.edx_eax());
            return Ok(match self.apic_msr(vm, st, index, value) {
                Ok(v) => {
                    if !write {
                        st.set_edx_eax(v);
                    }
                    st.hw.set_rip(next_rip);
                    Outcome::Reenter
                }
                Err(_) => Outcome::Fault(Event::GP0),
            });
        }
        let rip = st.rip();
        if msr::classify(index) == MsrClass::User {
            let value = if write { st.edx_eax() } else { 0 };
            st.pending =
                if write { Pending::Wrmsr { next_rip } } else { Pending::Rdmsr { next_rip } };
            let m = uapi::VmmExitMsr { msr: index, value, ..uapi::VmmExitMsr::ZERO };
            let reason = if write { exit::WRMSR } else { exit::RDMSR };
            let data = m.to_data();
            return Ok(Outcome::ToUser(VmmExit { reason, rip, data, ..VmmExit::ZERO }));
        }
        let done = if write {
            st.wrmsr(index, st.edx_eax())
        } else {
            st.rdmsr(index).map(|v| st.set_edx_eax(v))
        };
        match done {
            Ok(()) => {
                st.hw.set_rip(next_rip);
                Ok(Outcome::Reenter)
            }
            Err(Gp) => Ok(Outcome::Fault(Event::GP0)),
        }
    }
}

impl VcpuState {
    /// Carries out `o`: injects a fault, or returns the exit for the
    /// sequencer.
    fn apply(&mut self, o: Outcome) -> Option<VmmExit> {
        match o {
            Outcome::Reenter => None,
            Outcome::Fault(e) => {
                self.hw.inject(e);
                None
            }
            Outcome::PageFault { cr2, error } => {
                self.hw.set_cr2(cr2);
                self.hw.inject(Event::page_fault(error));
                None
            }
            Outcome::ToUser(exit) => Some(exit),
        }
    }

    fn cpuid(&self, leaf: u32, sub: u32, id: u32, nr: u32) -> [u32; 4] {
        let guest = cpuid::Guest {
            vcpu_id: id,
            nr_vcpus: nr,
            cr4: self.gpr(reg::CR4),
            xcr0: self.xcr0,
            tsc_khz: hw::tsc_khz(),
            // The APIC timer's 1 GHz clock (`vcpu::apic_config`).
            bus_khz: 1_000_000,
        };
        if self.cpuid.is_empty() {
            cpuid::default_answer(&hw::cpu::HostCpuid, leaf, sub, &guest)
        } else {
            cpuid::table_answer_live(&self.cpuid, leaf, sub, &guest)
        }
    }

    /// The MSRs `msr::classify` leaves to the kernel.
    fn rdmsr(&self, index: u32) -> Result<u64, Gp> {
        match index {
            msr::EFER => Ok(self.hw.efer()),
            msr::PAT => Ok(self.hw.pat()),
            msr::TSC => Ok(hw::cpu::rdtsc().wrapping_add(self.hw.tsc_offset())),
            msr::TSC_AUX => Ok(self.tsc_aux),
            msr::MISC_ENABLE => Ok(MISC_ENABLE),
            msr::PLATFORM_ID | msr::BIOS_SIGN_ID => Ok(0),
            _ => match DirectMsr::from_index(index) {
                Some(d) => Ok(self.hw.direct_msr(d)),
                None => self.mtrr.read(index).ok_or(Gp),
            },
        }
    }

    fn wrmsr(&mut self, index: u32, v: u64) -> Result<(), Gp> {
        match index {
            msr::EFER => {
                let pg = self.gpr(reg::CR0) & cr0::PG != 0;
                let host = hw::cpu::host_cpuid(0x8000_0001, 0)[3];
                let allowed = msr::efer_allowed(host) & EFER_VALID;
                let new = msr::efer_write_ok(self.hw.efer(), v, pg, allowed)?;
                self.hw.set_efer(new);
            }
            msr::PAT if msr::pat_valid(v) => self.hw.set_pat(v),
            msr::TSC => self.hw.set_tsc_offset(v.wrapping_sub(hw::cpu::rdtsc())),
            msr::TSC_AUX if v >> 32 == 0 => self.tsc_aux = v,
            msr::MISC_ENABLE if v == MISC_ENABLE => {}
            // Writing the microcode signature is how its read is armed.
            msr::BIOS_SIGN_ID => {}
            _ if msr::is_mtrr(index) => self.mtrr.write(index, v)?,
            _ => {
                let d = DirectMsr::from_index(index).ok_or(Gp)?;
                self.hw.set_direct_msr(d, v)?;
            }
        }
        Ok(())
    }

    fn xsetbv(&mut self, vm: &Vm, host: u64) -> Result<Outcome> {
        if self.gpr(reg::CR4) & cr4::OSXSAVE == 0 || host == 0 {
            return Ok(Outcome::Fault(Event::UD));
        }
        let v = self.edx_eax();
        let allowed = cpuid::guest_xcr0_allowed(host);
        let ok =
            self.hw.cpl() == 0 && self.gpr(reg::RCX) as u32 == 0 && cpuid::xcr0_valid(v, allowed);
        if !ok {
            return Ok(Outcome::Fault(Event::GP0));
        }
        go!(self.skip(vm, Op::Xsetbv));
        self.xcr0 = v;
        Ok(Outcome::Reenter)
    }
}
