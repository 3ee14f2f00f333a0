// SPDX-License-Identifier: GPL-2.0

//! vmm: a bhyve-style hypervisor for Intel VT-x and AMD-V.
//!
//! This file is the crate root of `vmm.ko`: the module list and `module!`.
//! The pure crates (ABI, architectural definitions, VT-x and AMD-V
//! decisions, the vlapic, the instruction emulator and the guest address
//! space) are compiled in as modules under `cfg(kernel)`; they are
//! host-tested with `cargo test`.
//!
//! - [`abi`]: copying ABI structs to and from userspace.
//! - [`ctl`]: `/dev/vmm`, the control device.
//! - [`hw`]: every privileged instruction and C helper, behind safe APIs.
//! - [`virt`]: VMX/SVM ownership, the load-time probe, shutdown paths.
//! - [`vm`]: VMs, the registry and VM fds.
//! - [`mem`]: a VM's segments, mappings and nested page table.
//! - [`vcpu`]: vCPU fds, registers, CPUID, MSRs and the run loop.
//! - [`backend`]: the narrow seam between common code and a backend.
//! - [`svm_vcpu`]: the AMD-V backend (VMCB, permission maps, ASIDs).
//! - [`vmx_vcpu`]: the VT-x backend (VMCS, bitmaps, VPIDs, EPT flushes).

#[path = "../uapi/src/lib.rs"]
pub mod uapi;
#[path = "../x86/src/lib.rs"]
pub mod x86;
#[path = "../vmx/src/lib.rs"]
pub mod vmx;
#[path = "../svm/src/lib.rs"]
pub mod svm;
#[path = "../vlapic/src/lib.rs"]
pub mod vlapic;
#[path = "../vmspace/src/lib.rs"]
pub mod vmspace;
#[path = "../emul/src/lib.rs"]
pub mod emul;

mod abi;
mod backend;
mod ctl;
mod hw;
mod mem;
mod svm_vcpu;
mod vcpu;
mod virt;
mod vm;
mod vmx_vcpu;

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
/// shared state, then the per-CPU virtualization state.
pub(crate) struct Core {
    _hooks: virt::ShutdownHooks,
    pub(crate) shared: Arc<vm::Shared>,
    _virt: virt::Virt,
}

impl Core {
    fn new() -> Result<Self> {
        // Checked on every backend, so a bad value never loads silently;
        // only VT-x entries flush (AMD CPUs are not affected by L1TF).
        let l1d_flush = hw::vmx::l1d_flush_param().ok_or_else(|| {
            pr_err!("not loading: l1d_flush must be auto, on or off\n");
            EINVAL
        })?;
        let mut virt = virt::Virt::probe()?;
        // The CPU's linear-address width, not the host's paging mode: a
        // guest may use 5-level paging under a 4-level host.
        let la57 = hw::cpu::host_cpuid(7, 0)[2] & (1 << 16) != 0;
        let vmx = match &mut virt.backend {
            virt::Backend::Vmx { caps, regions } => {
                // The probe's VMXON regions become the run loop's.
                let regions = core::mem::take(regions);
                Some(vmx_vcpu::VmxCpus::new(*caps, regions, la57, l1d_flush)?)
            }
            virt::Backend::Svm { .. } => None,
        };
        let svm = match &virt.backend {
            virt::Backend::Svm { caps } => {
                Some(svm_vcpu::SvmCpus::new(hw::nr_cpu_ids(), caps.nr_asids, caps.features, la57)?)
            }
            virt::Backend::Vmx { .. } => None,
        };
        let fpu = {
            let irq = kernel::interrupt::local_interrupt_disable();
            hw::cpu::FpuCaps::probe(&hw::cpu::LocalCpu::new(&irq))
        };
        Ok(Self {
            shared: vm::Shared::new(virt.caps, svm, vmx, fpu)?,
            _hooks: virt::ShutdownHooks::register()?,
            _virt: virt,
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
