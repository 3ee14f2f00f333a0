// SPDX-License-Identifier: GPL-2.0

//! Hardware access: the only modules of vmm that execute privileged
//! instructions or call the C helpers. Everything above them is safe Rust.
//!
//! - [`abi`]: copying ABI structs to and from userspace.
//! - [`cpu`]: CPUID, MSRs and control registers of the local CPU.
//! - [`mem`]: pages this module owns, and the only pointers to them.
//! - [`file`]: the anonymous files behind VM and vCPU fds.
//! - [`vmx`]: VMXON regions and the VMX window.
//! - [`svm`]: the SVM window.
//! - [`ffi`]: declarations of `src/helpers.c`.
//! - [`on_cpu`]: run a closure on one CPU with interrupts off.
//! - [`timer`]: a one-shot host timer inside a shared object.

pub(crate) mod abi;
pub(crate) mod cpu;
pub(crate) mod ffi;
pub(crate) mod file;
pub(crate) mod mem;
pub(crate) mod svm;
pub(crate) mod timer;
pub(crate) mod vmx;

use core::ffi::c_void;
use kernel::{bindings, error::to_result, interrupt::LocalInterruptDisabled, prelude::*};

/// Runs `f` on CPU `cpu` with interrupts disabled there, and waits for it.
/// Fails with `ENXIO` when `cpu` is offline.
pub(crate) fn on_cpu<F: FnMut(&LocalInterruptDisabled) + Send>(cpu: u32, f: &mut F) -> Result {
    /// # Safety
    ///
    /// `info` must point to an `F` that stays valid and unaliased for the
    /// duration of the call.
    unsafe extern "C" fn trampoline<F: FnMut(&LocalInterruptDisabled)>(info: *mut c_void) {
        // SAFETY: `on_cpu` passes a pointer to its `&mut F`, and waits for
        // this call to finish before that borrow ends.
        let f = unsafe { &mut *info.cast::<F>() };
        // The cross-call runs with interrupts already off; the guard nests
        // and proves it to the type system.
        let irq = kernel::interrupt::local_interrupt_disable();
        f(&irq);
    }
    let cpu = i32::try_from(cpu).map_err(|_| EINVAL)?;
    // SAFETY: `trampoline::<F>` matches the callback type; `wait = 1` keeps
    // `f` borrowed until the callback has returned on `cpu`.
    to_result(unsafe {
        bindings::smp_call_function_single(
            cpu,
            Some(trampoline::<F>),
            core::ptr::from_mut(f).cast(),
            true,
        )
    })
}

pub(crate) use kernel::cpu::nr_cpu_ids;

/// Why a VMX or SVM window could not be opened on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowError {
    /// CR4.VMXE or EFER.SVME is already set: another hypervisor owns it.
    InUse,
    /// The module is shutting down (reboot, panic or unload).
    ShuttingDown,
    /// The per-CPU state handed in belongs to another CPU.
    WrongCpu,
    /// CR0/CR4 do not meet the VMX fixed-bit requirements.
    FixedBits,
    /// The instruction failed (VMfail) or faulted.
    Failed(&'static str),
}

impl WindowError {
    /// The errno a caller sees.
    pub(crate) fn to_errno(self) -> Error {
        match self {
            Self::InUse => EBUSY,
            Self::ShuttingDown => ESHUTDOWN,
            Self::WrongCpu | Self::FixedBits | Self::Failed(_) => EIO,
        }
    }
}

/// Windows open right now, on any CPU. A window is an interrupts-off
/// section, so after a cross-call barrier on every CPU this is zero unless
/// the barrier was issued from inside one.
pub(crate) static OPEN_WINDOWS: kernel::sync::atomic::Atomic<u32> =
    kernel::sync::atomic::Atomic::new(0);

/// Set once by the reboot and panic hooks (and on unload): no new window
/// opens afterwards.
pub(crate) static SHUTTING_DOWN: kernel::sync::atomic::Atomic<bool> =
    kernel::sync::atomic::Atomic::new(false);

/// The CPU this code runs on.
pub(crate) fn this_cpu(_irq: &LocalInterruptDisabled) -> u32 {
    // SAFETY: with interrupts off the task cannot migrate, so the id stays
    // true for as long as `_irq` lives.
    unsafe { bindings::raw_smp_processor_id() }
}

/// Runs `f` on every online CPU, interrupts off, and waits for all of them.
pub(crate) fn on_each_cpu<F: Fn(&LocalInterruptDisabled) + Sync>(f: &F) {
    /// # Safety
    ///
    /// `info` must point to an `F` that stays valid for the call.
    unsafe extern "C" fn trampoline<F: Fn(&LocalInterruptDisabled)>(info: *mut c_void) {
        // SAFETY: `on_each_cpu` passes `&F` and waits for every CPU; `F` is
        // `Sync`, so shared use from several CPUs at once is sound.
        let f = unsafe { &*info.cast::<F>() };
        let irq = kernel::interrupt::local_interrupt_disable();
        f(&irq);
    }
    // SAFETY: the trampoline matches the callback type, and the call is
    // synchronous, so `f` outlives every use.
    unsafe { ffi::vmm_on_each_cpu(trampoline::<F>, core::ptr::from_ref(f).cast_mut().cast()) };
}

/// Holds CPU hotplug off (`cpus_read_lock`) while it lives.
pub(crate) struct CpusReadGuard(());

impl CpusReadGuard {
    /// Takes the hotplug read lock; may sleep.
    pub(crate) fn new() -> Self {
        // SAFETY: paired with `cpus_read_unlock` in `Drop`.
        unsafe { bindings::cpus_read_lock() };
        Self(())
    }
}

impl Drop for CpusReadGuard {
    fn drop(&mut self) {
        // SAFETY: the lock was taken in `new`.
        unsafe { bindings::cpus_read_unlock() };
    }
}

/// Turns VMX and SVM off on this CPU, whoever turned them on. For the panic
/// path only, when the machine is going down and a window may be open here.
pub(crate) fn emergency_off(cpu: &cpu::LocalCpu<'_>) {
    use crate::x86::{
        msr::EFER,
        regs::{cr4::VMXE, efer::SVME},
        CpuInfo,
    };
    let cr4 = cpu.cr4();
    if cr4 & VMXE != 0 {
        // Clearing VMXE afterwards restores what the kernel's shadow expects.
        // SAFETY: VMXE is set, so VMXOFF leaves VMX operation or fails or
        // faults harmlessly (the helper catches it).
        unsafe {
            ffi::vmm_vmxoff();
            ffi::vmm_write_cr4_raw(cr4 & !VMXE);
        }
    }
    if let Some(efer) = cpu.rdmsr(EFER).filter(|e| e & SVME != 0) {
        // SAFETY: SVME is set, so STGI is defined; it unblocks INIT and NMI
        // before SVM goes off; clearing SVME then leaves EFER as the kernel
        // set it.
        unsafe {
            ffi::vmm_stgi();
            cpu.wrmsr(EFER, efer & !SVME);
        }
    }
}

/// The reboot and panic notifiers, registered while this value lives.
pub(crate) struct Hooks(());

impl Hooks {
    /// Registers `on_reboot` and `on_panic`.
    pub(crate) fn register(
        on_reboot: unsafe extern "C" fn(),
        on_panic: unsafe extern "C" fn(),
    ) -> Result<Self> {
        // SAFETY: both callbacks are functions of this module, and `Drop`
        // unregisters them before the module's text goes away.
        kernel::error::to_result(unsafe { ffi::vmm_hooks_register(on_reboot, on_panic) })?;
        Ok(Self(()))
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        // SAFETY: registered in `register`.
        unsafe { ffi::vmm_hooks_unregister() };
    }
}

/// Interrupts `cpu` without waiting, so a vCPU in the guest there exits.
pub(crate) fn kick_cpu(cpu: i32) {
    // SAFETY: a reschedule IPI may be sent from any context, hard
    // interrupts included; `cpu` came from `this_cpu` of a vCPU's entry.
    unsafe { ffi::vmm_kick_cpu(cpu) };
}

/// The host TSC frequency in kHz: the host kernel's, or the one
/// [`calibrate_tsc`] measured (0 before that, if the host has none).
pub(crate) fn tsc_khz() -> u32 {
    // SAFETY: reads two variables set before any VM exists.
    unsafe { ffi::vmm_tsc_khz() }
}

/// Learns the TSC frequency in kHz: the host kernel's, or measured against
/// the monotonic clock (100 ms) when the host did not calibrate it. Called
/// once, at load, before any VM exists. 0: unknown.
pub(crate) fn calibrate_tsc() -> u32 {
    // SAFETY: task context that may sleep (module init); nothing reads
    // the result concurrently yet.
    unsafe { ffi::vmm_tsc_calibrate() }
}

/// Whether the current task has a signal pending.
pub(crate) fn signal_pending() -> bool {
    kernel::current!().signal_pending()
}

/// Gives the CPU away if the scheduler wants it.
pub(crate) fn cond_resched() {
    // SAFETY: called from task context without locks that forbid sleeping.
    unsafe { ffi::vmm_cond_resched() };
}

/// A reference on this module, dropped with the value: it keeps the
/// module loaded while a VM is named.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference.
    pub(crate) fn get() -> Self {
        // SAFETY: this module's code is running, so it is live; taking a
        // reference on a live module is always allowed.
        unsafe { ffi::vmm_module_get() };
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: paired with the reference `get` took. Whoever drops it
        // runs code of this module from a file or device that holds a
        // reference of its own, so the module cannot go meanwhile.
        unsafe { ffi::vmm_module_put() };
    }
}

/// The module that `misc`, the `/dev/vmm` registration, is a field of.
pub(crate) fn module_of(
    misc: &kernel::miscdevice::MiscDeviceRegistration<crate::ctl::Ctl>,
) -> &crate::VmmModule {
    // The only `MiscDeviceRegistration<Ctl>` is the `dev` field of the
    // pinned `VmmModule`; the misc core keeps it registered while `misc`
    // is borrowed (during `open`).
    let field = core::ptr::from_ref(misc).cast_mut();
    // SAFETY: so `field` lies in a live `VmmModule`, which outlives the
    // borrow of its field.
    unsafe { &*kernel::container_of!(field, crate::VmmModule, dev) }
}
