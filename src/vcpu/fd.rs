// SPDX-License-Identifier: GPL-2.0

//! The vCPU file descriptor: an anonymous file that holds the VM and the
//! vCPU.

use kernel::{
    prelude::*,
    sync::{Arc, ArcBorrow},
};

use super::Vcpu;
use crate::hw::file::{self, AnonFile};
use crate::vm::Vm;

/// What a vCPU fd holds. Immutable.
pub(crate) struct VcpuFile {
    vm: Arc<Vm>,
    vcpu: Arc<Vcpu>,
}

/// Installs a vCPU fd for `vcpu` of `vm`.
pub(crate) fn install_fd(vm: Arc<Vm>, vcpu: Arc<Vcpu>) -> Result<isize> {
    vm.vcpu_fd_opened();
    let f = Arc::new(VcpuFile { vm: vm.clone(), vcpu }, GFP_KERNEL)
        .inspect_err(|_| vm.vcpu_fd_closed())?;
    // No file, no release: the count goes back here.
    file::install(f).inspect_err(|_| vm.vcpu_fd_closed())
}

impl AnonFile for VcpuFile {
    const NAME: &'static CStr = c"vmm-vcpu";

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        this.vcpu.ioctl(&this.vm, cmd, arg)
    }

    fn release(this: Arc<Self>) {
        this.vm.vcpu_fd_closed();
    }
}
