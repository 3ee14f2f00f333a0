// SPDX-License-Identifier: GPL-2.0

//! The vCPU file descriptor: an anonymous inode whose private data holds
//! the VM and the vCPU.

use kernel::ffi::{c_int, c_long, c_uint, c_ulong};
use kernel::{
    bindings,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

use super::Vcpu;
use crate::hw;
use crate::vm::Vm;

/// What a vCPU fd holds.
pub(crate) struct VcpuFile {
    vm: Arc<Vm>,
    vcpu: Arc<Vcpu>,
}

/// Installs a vCPU fd for `vcpu` of `vm`.
pub(crate) fn install_fd(vm: Arc<Vm>, vcpu: Arc<Vcpu>) -> Result<isize> {
    vm.vcpu_fd_opened();
    let f = Arc::new(VcpuFile { vm: vm.clone(), vcpu }, GFP_KERNEL).inspect_err(|_| vm.vcpu_fd_closed())?;
    let private = f.into_foreign();
    let fops: &'static bindings::file_operations = &VCPU_FOPS;
    // SAFETY: `VCPU_FOPS` expects `private_data` from
    // `Arc::<VcpuFile>::into_foreign`; the name is a static C string.
    let fd = unsafe {
        hw::ffi::vmm_anon_inode_getfd(c"vmm-vcpu".as_ptr().cast(), core::ptr::from_ref(fops).cast(), private)
    };
    if fd < 0 {
        // SAFETY: no file was created, so nothing else owns `private`.
        drop(unsafe { Arc::<VcpuFile>::from_foreign(private) });
        vm.vcpu_fd_closed();
        return Err(Error::from_errno(fd));
    }
    Ok(fd as isize)
}

/// # Safety
///
/// `file` must be a vCPU fd's file whose `private_data` came from
/// [`install_fd`] and is not yet released.
unsafe extern "C" fn vcpu_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: by the contract `private_data` is an `Arc<VcpuFile>` alive
    // until release, which cannot run during an ioctl.
    let f: ArcBorrow<'_, VcpuFile> = unsafe { Arc::<VcpuFile>::borrow((*file).private_data) };
    match f.vcpu.ioctl(&f.vm, cmd, arg as usize) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// `file` must be a vCPU fd's file being released.
unsafe extern "C" fn vcpu_release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: release is the last use of `private_data`.
    let f = unsafe { Arc::<VcpuFile>::from_foreign((*file).private_data) };
    f.vm.vcpu_fd_closed();
    0
}

const VCPU_FOPS: bindings::file_operations = bindings::file_operations {
    owner: <crate::VmmModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr(),
    unlocked_ioctl: Some(vcpu_ioctl),
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: bindings::compat_ptr_ioctl,
    release: Some(vcpu_release),
    ..pin_init::zeroed()
};

