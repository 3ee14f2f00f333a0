// SPDX-License-Identifier: GPL-2.0

//! vmm: a bhyve-style hypervisor for Intel VT-x and AMD-V.
//!
//! This file is the crate root of `vmm.ko`: the module list and `module!`.
//! The pure crates (ABI, architectural definitions, VT-x and AMD-V
//! decisions, the vlapic, the platform devices, the instruction emulator
//! and the guest address
//! space) are compiled in as modules under `cfg(kernel)`; they are
//! host-tested with `cargo test`.
//!
//! - [`ctl`]: `/dev/vmm`, the control device.
//! - [`hw`]: every `unsafe` block, privileged instruction and C helper,
//!   behind safe APIs (the ABI's user copies among them).
//! - [`virt`]: VMX/SVM ownership, the load-time probe, shutdown paths.
//! - [`vm`]: VMs, the registry and VM fds.
//! - [`mem`]: a VM's segments, mappings and nested page table.
//! - [`vcpu`]: vCPU fds, registers, CPUID, MSRs and the run loop.
//! - [`platform`]: the IOAPIC, PICs, PIT, PM timer, RTC and HPET of a VM,
//!   and the interrupt lines between them and the local APICs.
//! - [`backend`]: the seam between common code and the two hardware
//!   backends, `backend::svm` (AMD-V) and `backend::vmx` (VT-x).

#[path = "../emul/src/lib.rs"]
pub mod emul;
#[path = "../svm/src/lib.rs"]
pub mod svm;
#[path = "../uapi/src/lib.rs"]
pub mod uapi;
#[path = "../vdev/src/lib.rs"]
pub mod vdev;
#[path = "../vlapic/src/lib.rs"]
pub mod vlapic;
#[path = "../vmspace/src/lib.rs"]
pub mod vmspace;
#[path = "../vmx/src/lib.rs"]
pub mod vmx;
#[path = "../x86/src/lib.rs"]
pub mod x86;

mod backend;
mod ctl;
mod hw;
mod mem;
mod platform;
mod vcpu;
mod virt;
mod vm;

use kernel::{
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    sync::Arc,
};

module! {
    type: VmmModule,
    name: "vmm",
    authors: ["The vmm developers"],
    description: "bhyve-style hypervisor for Intel VT-x and AMD-V",
    license: "GPL",
}

/// The loaded module. Fields drop in declaration order: `/dev/vmm` goes
/// first, so no ioctl can start while the rest is torn down.
#[pin_data]
pub(crate) struct VmmModule {
    #[pin]
    dev: MiscDeviceRegistration<ctl::Ctl>,
    core: Core,
}

/// Everything but the device node. Fields drop in declaration order: the
/// shutdown hooks first (they wait for and report on windows), then the
/// shared state with the backend's per-CPU state.
pub(crate) struct Core {
    _hooks: virt::ShutdownHooks,
    pub(crate) shared: Arc<vm::Shared>,
}

impl Core {
    fn new() -> Result<Self> {
        // Checked on every backend, so a bad value never loads silently;
        // only VT-x entries flush (AMD CPUs are not affected by L1TF).
        let l1d_flush = hw::vmx::l1d_flush_param().ok_or_else(|| {
            pr_err!("not loading: l1d_flush must be auto, on or off\n");
            EINVAL
        })?;
        let virt = virt::Virt::probe()?;
        let tsc_khz = hw::calibrate_tsc();
        if tsc_khz == 0 {
            pr_err!("not loading: the TSC frequency is unknown and could not be measured\n");
            return Err(EOPNOTSUPP);
        }
        // The CPU's linear-address width, not the host's paging mode: a
        // guest may use 5-level paging under a 4-level host.
        let la57 = hw::cpu::host_cpuid(7, 0)[2] & (1 << 16) != 0;
        let backend = backend::Backend::new(virt.found, la57, l1d_flush)?;
        let fpu = {
            let irq = kernel::interrupt::local_interrupt_disable();
            hw::cpu::FpuCaps::probe(&hw::cpu::LocalCpu::new(&irq))
        };
        Ok(Self {
            shared: vm::Shared::new(virt.caps, backend, fpu)?,
            _hooks: virt::ShutdownHooks::register()?,
        })
    }
}

impl kernel::InPlaceModule for VmmModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let core = Core::new();
        try_pin_init!(Self {
            core: core?,
            dev <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"vmm" }),
        }? Error)
    }
}
