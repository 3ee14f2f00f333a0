// SPDX-License-Identifier: GPL-2.0

//! Ownership of VMX and SVM: the load-time probe, the shutdown paths and
//! the capabilities reported to userspace.
//!
//! vmm turns virtualization on only inside *windows*: sections with
//! interrupts disabled that set CR4.VMXE (and execute VMXON) or EFER.SVME
//! on entry and undo it on exit. Outside a window the hardware is exactly
//! as the kernel believes it to be. `Documentation/ownership.rst` explains
//! why this is safe despite the kernel's CR4 shadow being closed to modules
//! in 7.3, and how it coexists with KVM.

use kernel::{
    interrupt::LocalInterruptDisabled,
    prelude::*,
    sync::atomic::{Atomic, Relaxed, Release},
};

use crate::hw::{
    self, cpu::LocalCpu, svm::SvmWindow, vmx::VmxWindow, vmx::VmxonRegion, WindowError,
};
use crate::uapi::{Features, VmmCaps};
use crate::x86::{
    self,
    msr::EFER,
    regs::{cr4, efer::SVME},
    CpuInfo, Refusal, Vendor,
};
use crate::{svm, vmx};

/// What one CPU reported; every CPU must report the same.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CpuCaps {
    Vmx(vmx::caps::VmxCaps),
    Svm(svm::caps::SvmCaps),
}

/// The backend the probe found, with what it needs on every CPU; it
/// becomes a `backend::Backend`.
pub(crate) enum Found {
    /// Intel VT-x, with one VMXON region per possible CPU id.
    Vmx { caps: vmx::caps::VmxCaps, regions: KVec<VmxonRegion> },
    /// AMD-V.
    Svm { caps: svm::caps::SvmCaps },
}

/// Virtualization as found at load.
pub(crate) struct Virt {
    /// The backend and its per-CPU state.
    pub(crate) found: Found,
    /// The `VMM_GET_CAPS` answer.
    pub(crate) caps: VmmCaps,
}

/// Logs `why` and returns `err`: every refusal to load says why.
fn refuse(why: &str, err: Error) -> Error {
    pr_err!("not loading: {why}\n");
    err
}

/// Logs why the CPU cannot be used and returns the errno for the refusal.
fn unavailable(kind: Refusal, why: &str) -> Error {
    let errno = match kind {
        Refusal::Absent => ENODEV,
        Refusal::DisabledByFirmware => EPERM,
        Refusal::InUse => EBUSY,
        Refusal::Fault => EIO,
        Refusal::Missing => EOPNOTSUPP,
    };
    refuse(why, errno)
}

/// Reads the local CPU's capabilities and decides whether vmm can use it.
fn detect(cpu: &LocalCpu<'_>) -> Result<(CpuCaps, u32, u32)> {
    let caps = match Vendor::detect(cpu) {
        Vendor::Intel => CpuCaps::Vmx(
            vmx::caps::probe(cpu)
                .map_err(|e| unavailable(e.kind(), e.describe(&vmx::caps::WORDING)))?,
        ),
        Vendor::Amd => CpuCaps::Svm(
            svm::caps::probe(cpu)
                .map_err(|e| unavailable(e.kind(), e.describe(&svm::caps::WORDING)))?,
        ),
        Vendor::Other => return Err(refuse("CPU vendor has neither VT-x nor AMD-V", ENODEV)),
    };
    Ok((caps, x86::host_paging_levels(cpu), x86::phys_addr_bits(cpu)))
}

/// Runs `f` on every online CPU in turn; returns how many ran it.
fn for_each_online_cpu(
    mut f: impl FnMut(u32, &LocalInterruptDisabled) -> Result + Send,
) -> Result<u32> {
    let mut ran = 0;
    for cpu in 0..hw::nr_cpu_ids() {
        let mut result = Ok(());
        match hw::on_cpu(cpu, &mut |irq| result = f(cpu, irq)) {
            Err(e) if e == ENXIO => continue, // offline
            other => other?,
        }
        result?;
        ran += 1;
    }
    Ok(ran)
}

impl Virt {
    /// Finds VMX or SVM on every online CPU, checks that nobody else owns
    /// it, and opens and closes one window on each CPU to prove the scheme.
    /// Refuses (with a logged reason) when any CPU cannot be used.
    pub(crate) fn probe() -> Result<Self> {
        let _hotplug = hw::CpusReadGuard::new();

        let mut found: Option<(CpuCaps, u32, u32)> = None;
        let nr_cpus = for_each_online_cpu(|cpu, irq| {
            let here = detect(&LocalCpu::new(irq))?;
            match &found {
                None => found = Some(here),
                Some(first) if *first == here => {}
                Some(_) => {
                    pr_err!("CPU {cpu} reports other capabilities than the first CPU\n");
                    return Err(refuse("CPUs disagree on virtualization capabilities", EIO));
                }
            }
            Ok(())
        })?;
        let (cpu_caps, levels, phys_bits) = found.ok_or(ENODEV)?;

        let found = match cpu_caps {
            CpuCaps::Vmx(caps) => {
                let n = hw::nr_cpu_ids() as usize;
                let mut regions = KVec::with_capacity(n, GFP_KERNEL)?;
                for cpu in 0..n as u32 {
                    regions.push(VmxonRegion::new(cpu, caps.revision())?, GFP_KERNEL)?;
                }
                Found::Vmx { caps, regions }
            }
            CpuCaps::Svm(caps) => Found::Svm { caps },
        };
        let virt = Self { caps: Self::uapi_caps(&found, nr_cpus, levels, phys_bits), found };

        for_each_online_cpu(|_, irq| {
            virt.probe_window(irq).map_err(|e| {
                pr_err!("test window failed: {e:?}\n");
                refuse("could not enter and leave VMX/SVM operation", e.to_errno())
            })
        })?;
        virt.log();
        Ok(virt)
    }

    fn uapi_caps(found: &Found, nr_cpus: u32, levels: u32, phys_bits: u32) -> VmmCaps {
        let mut c = VmmCaps::ZERO;
        match found {
            Found::Vmx { caps, .. } => caps.fill_uapi(&mut c),
            Found::Svm { caps } => caps.fill_uapi(&mut c),
        }
        c.nr_cpus = nr_cpus;
        c.host_paging_levels = levels;
        c.phys_addr_bits = phys_bits;
        if levels == 5 {
            c.features |= Features::HOST_LA57.bits();
        }
        c
    }

    /// Opens a window on this CPU and closes it again.
    fn probe_window(&self, irq: &LocalInterruptDisabled) -> Result<(), WindowError> {
        let cpu = LocalCpu::new(irq);
        match &self.found {
            Found::Vmx { caps, regions } => {
                let id = hw::this_cpu(irq);
                let region = regions.get(id as usize).ok_or(WindowError::WrongCpu)?;
                drop(VmxWindow::enter(&cpu, id, region, caps)?);
            }
            Found::Svm { .. } => drop(SvmWindow::enter(&cpu)?),
        }
        Ok(())
    }

    fn log(&self) {
        let c = &self.caps;
        let features = Features::from_bits_retain(c.features);
        match &self.found {
            Found::Vmx { .. } => pr_info!(
                "VT-x on {} CPUs: VMCS revision {:#x}, {}-level host paging, {} physical address bits\n",
                c.nr_cpus, c.revision, c.host_paging_levels, c.phys_addr_bits
            ),
            Found::Svm { .. } => pr_info!(
                "AMD-V on {} CPUs: revision {}, {} ASIDs, {}-level host paging, {} physical address bits\n",
                c.nr_cpus, c.revision, c.nr_asids, c.host_paging_levels, c.phys_addr_bits
            ),
        }
        pr_info!("features {:#x}: {:?}\n", c.features, features);
        pr_info!(
            "raw {:#x} {:#x} {:#x} {:#x} {:#x} {:#x} {:#x} {:#x} {:#x} {:#x}\n",
            c.raw[0],
            c.raw[1],
            c.raw[2],
            c.raw[3],
            c.raw[4],
            c.raw[5],
            c.raw[6],
            c.raw[7],
            c.raw[8],
            c.raw[9]
        );
    }
}

/// Stops new windows and waits until none is open on any CPU; then reports
/// how many CPUs still have VMX or SVM enabled (by anyone, KVM included).
pub(crate) fn quiesce(why: &str) {
    hw::SHUTTING_DOWN.store(true, Release);
    // A window is an interrupts-off section: once every online CPU has
    // taken this cross-call, none that began before the flag is still open.
    let (checked, on) = count_enabled();
    let open = hw::OPEN_WINDOWS.load(Relaxed);
    if open != 0 {
        pr_err!("{why}: {open} vmm windows still open\n");
    } else {
        pr_info!("{why}: no vmm window open; VMX/SVM enabled on {on} of {checked} CPUs\n");
    }
}

/// Visits every online CPU (a barrier for windows) and counts those with
/// CR4.VMXE or EFER.SVME set.
fn count_enabled() -> (u32, u32) {
    let checked = Atomic::new(0u32);
    let on = Atomic::new(0u32);
    hw::on_each_cpu(&|irq: &LocalInterruptDisabled| {
        let cpu = LocalCpu::new(irq);
        let svme = cpu.rdmsr(EFER).is_some_and(|e| e & SVME != 0);
        let vmxe = cpu.cr4() & cr4::VMXE != 0;
        checked.add(1, Relaxed);
        if svme || vmxe {
            on.add(1, Relaxed);
        }
    });
    (checked.load(Relaxed), on.load(Relaxed))
}

/// Reboot notifier: no window may be open when the machine resets, or INIT
/// would be blocked on a CPU left in VMX operation.
extern "C" fn on_reboot() {
    quiesce("reboot");
}

/// Panic notifier, on the panicking CPU after the others were stopped. The
/// kernel's own emergency path (`x86_virt_emergency_disable_virtualization_cpu`)
/// already turned VMX/SVM off on the stopped CPUs by reading the live CR4
/// and EFER; this covers a panic raised inside one of our windows.
extern "C" fn on_panic() {
    hw::SHUTTING_DOWN.store(true, Release);
    let open = hw::OPEN_WINDOWS.load(Relaxed);
    if open != 0 {
        let irq = kernel::interrupt::local_interrupt_disable();
        hw::emergency_off(&LocalCpu::new(&irq));
    }
    pr_info!("panic: no new windows; {open} were open, VMX/SVM now off on this CPU\n");
}

/// The reboot and panic notifiers; on drop (module unload) it also waits
/// for windows to close and reports the CPUs' state.
pub(crate) struct ShutdownHooks(hw::Hooks);

impl ShutdownHooks {
    /// Registers the notifiers.
    pub(crate) fn register() -> Result<Self> {
        Ok(Self(hw::Hooks::register(on_reboot, on_panic)?))
    }
}

impl Drop for ShutdownHooks {
    fn drop(&mut self) {
        quiesce("unload");
    }
}
