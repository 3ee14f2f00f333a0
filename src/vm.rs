// SPDX-License-Identifier: GPL-2.0

//! VMs, the registry of named VMs, and the VM file descriptor.
//!
//! Lifetime rules:
//! - A VM is *named* from `VMM_CREATE_VM` until `VMM_DESTROY_VM` or, with
//!   `DESTROY_ON_CLOSE`, until its last VM fd closes. While named it sits in
//!   [`Shared::vms`] and holds a reference on the module, so unloading is
//!   refused (`delete_module` fails with `EWOULDBLOCK`) while any VM exists.
//! - Each VM fd holds an `Arc<Vm>`. A destroyed VM stays allocated until its
//!   last fd closes; every ioctl on it then fails with `ENXIO`.
//! - The registry holds `Arc<Vm>` and each `Vm` holds `Arc<Shared>`; the
//!   cycle is broken when the VM is unlinked, which must happen before the
//!   module can unload (the module reference above).

use kernel::ffi::{c_int, c_long, c_uint, c_ulong};
use kernel::{
    bindings,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, ArcBorrow, Mutex,
    },
    types::ForeignOwnable,
};

use crate::abi::{write_arg, UserArg};
use crate::hw::ffi;
use crate::uapi::{self, CreateFlags, VmmCaps, VMM_NAME_MAX};

/// Module-wide state, shared by `/dev/vmm` opens and VMs.
#[pin_data]
pub(crate) struct Shared {
    /// What the load-time probe found. Immutable.
    pub(crate) caps: VmmCaps,
    /// Named VMs, in creation order. This lock also serialises every change
    /// of [`Vm::nr_fds`] and [`Vm::destroyed`].
    #[pin]
    pub(crate) vms: Mutex<KVec<Arc<Vm>>>,
    /// VM objects alive, named or not. Atomic; changed on create and drop.
    pub(crate) nr_vm_objects: Atomic<u32>,
    /// Bytes held in VM objects. Atomic; changed on create and drop.
    pub(crate) vm_bytes: Atomic<u64>,
}

impl Shared {
    /// Creates the shared state for a module that found `caps`.
    pub(crate) fn new(caps: VmmCaps) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                caps,
                vms <- kernel::new_mutex!(KVec::new()),
                nr_vm_objects: Atomic::new(0),
                vm_bytes: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }
}

/// One virtual machine.
pub(crate) struct Vm {
    /// Zero-filled, NUL-terminated name. Immutable.
    name: [u8; VMM_NAME_MAX],
    /// Creation flags. Immutable.
    flags: CreateFlags,
    /// The module-wide state, for the registry and counters. Immutable.
    shared: Arc<Shared>,
    /// VM fds open on this VM. Read anywhere; written under `shared.vms`.
    nr_fds: Atomic<u32>,
    /// Set once, under `shared.vms`, when the VM loses its name.
    destroyed: Atomic<bool>,
}

/// What a VM object costs, for `VMM_GET_STATS`.
const VM_BYTES: u64 = core::mem::size_of::<Vm>() as u64;

impl Vm {
    /// Allocates a VM with one (about to be installed) fd.
    fn new(shared: &Arc<Shared>, name: [u8; VMM_NAME_MAX], flags: CreateFlags) -> Result<Arc<Self>> {
        let vm = Arc::new(
            Vm {
                name,
                flags,
                shared: shared.clone(),
                nr_fds: Atomic::new(1),
                destroyed: Atomic::new(false),
            },
            GFP_KERNEL,
        )?;
        shared.nr_vm_objects.add(1, Relaxed);
        shared.vm_bytes.add(VM_BYTES, Relaxed);
        Ok(vm)
    }

    /// The registry entry for `VMM_LIST_VMS`.
    pub(crate) fn entry(&self) -> uapi::VmmVmEntry {
        uapi::VmmVmEntry {
            name: self.name,
            flags: self.flags.bits(),
            nr_fds: self.nr_fds.load(Relaxed),
            ..uapi::VmmVmEntry::ZERO
        }
    }

    /// Handles an ioctl on a VM fd.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        if self.destroyed.load(Relaxed) {
            return Err(ENXIO);
        }
        match cmd {
            uapi::VMM_VM_GET_INFO => {
                let info = uapi::VmmVmInfo {
                    name: self.name,
                    flags: self.flags.bits(),
                    ..uapi::VmmVmInfo::ZERO
                };
                write_arg(arg, &info)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }

    /// The last reference to one VM fd went away.
    fn close_fd(self: &Arc<Self>) {
        let mut vms = self.shared.vms.lock();
        let left = self.nr_fds.load(Relaxed) - 1;
        self.nr_fds.store(left, Relaxed);
        if left == 0 && self.flags.contains(CreateFlags::DESTROY_ON_CLOSE) {
            let unlinked = unlink(&mut vms, self);
            drop(vms);
            if unlinked {
                // The file being released holds its own module reference.
                // SAFETY: drops the reference taken when the VM was named.
                unsafe { ffi::vmm_module_put() };
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.shared.nr_vm_objects.fetch_sub(1, Relaxed);
        self.shared.vm_bytes.fetch_sub(VM_BYTES, Relaxed);
    }
}

/// Removes `vm` from the registry and marks it destroyed. Returns whether it
/// was still named (and so held a module reference).
fn unlink(vms: &mut KVec<Arc<Vm>>, vm: &Arc<Vm>) -> bool {
    let Some(i) = vms.iter().position(|v| Arc::ptr_eq(v, vm)) else {
        return false;
    };
    vm.destroyed.store(true, Relaxed);
    // `i` is in bounds, so removal cannot fail.
    drop(vms.remove(i));
    true
}

fn find<'a>(vms: &'a KVec<Arc<Vm>>, name: &[u8; VMM_NAME_MAX]) -> Option<&'a Arc<Vm>> {
    vms.iter().find(|v| &v.name == name)
}

/// `VMM_CREATE_VM`: names a new VM and returns an fd for it.
pub(crate) fn create(shared: &Arc<Shared>, arg: UserArg) -> Result<isize> {
    let req: uapi::VmmCreateVm = arg.read()?;
    let flags = CreateFlags::from_bits(req.flags).ok_or(EINVAL)?;
    if req.reserved != [0; 7] {
        return Err(EINVAL);
    }
    uapi::check_name(&req.name).map_err(|_| EINVAL)?;

    let mut vms = shared.vms.lock();
    if find(&vms, &req.name).is_some() {
        return Err(EEXIST);
    }
    if vms.len() >= uapi::VMM_MAX_VMS as usize {
        return Err(ENOSPC);
    }
    let vm = Vm::new(shared, req.name, flags)?;
    vms.push(vm.clone(), GFP_KERNEL)?;
    // The registry lock stays held until the fd exists, so nobody sees the
    // VM before its first fd is counted; a racing close of the new fd waits
    // for the lock and then finds the VM in its final state.
    match install_fd(vm) {
        Ok(fd) => {
            // SAFETY: paired with `vmm_module_put` when the VM is unlinked.
            unsafe { ffi::vmm_module_get() };
            Ok(fd)
        }
        Err(e) => {
            drop(vms.pop());
            Err(e)
        }
    }
}

/// Reads a `VmmVmName` argument and checks its reserved fields and name.
fn read_name(arg: UserArg) -> Result<[u8; VMM_NAME_MAX]> {
    let req: uapi::VmmVmName = arg.read()?;
    if req.flags != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    uapi::check_name(&req.name).map_err(|_| EINVAL)?;
    Ok(req.name)
}

/// `VMM_OPEN_VM`: a new fd for an existing VM.
pub(crate) fn open(shared: &Arc<Shared>, arg: UserArg) -> Result<isize> {
    let name = read_name(arg)?;
    let vms = shared.vms.lock();
    let vm = find(&vms, &name).ok_or(ENOENT)?.clone();
    vm.nr_fds.add(1, Relaxed);
    install_fd(vm.clone()).inspect_err(|_| {
        vm.nr_fds.fetch_sub(1, Relaxed);
    })
}

/// `VMM_DESTROY_VM`: takes a VM's name away. Its fds then fail with ENXIO.
pub(crate) fn destroy(shared: &Arc<Shared>, arg: UserArg) -> Result<isize> {
    let name = read_name(arg)?;
    let mut vms = shared.vms.lock();
    let vm = find(&vms, &name).ok_or(ENOENT)?.clone();
    let unlinked = unlink(&mut vms, &vm);
    drop(vms);
    if unlinked {
        // SAFETY: the reference was taken when the VM was named; the
        // `/dev/vmm` file this ioctl came through holds its own.
        unsafe { ffi::vmm_module_put() };
    }
    Ok(0)
}

// --- the VM file descriptor -----------------------------------------------

/// Creates an anonymous-inode file for `vm` and installs it as a new fd
/// (`O_RDWR | O_CLOEXEC`). On success the file owns the `Arc`.
fn install_fd(vm: Arc<Vm>) -> Result<isize> {
    let private = vm.into_foreign();
    // Promoted to a `'static`, as miscdevice does for its vtable.
    let fops: &'static bindings::file_operations = &VM_FOPS;
    // SAFETY: `fops` (`VM_FOPS`) expects `private_data` made by
    // `Arc::<Vm>::into_foreign`, and the name is a static C string.
    let fd = unsafe {
        ffi::vmm_anon_inode_getfd(c"vmm-vm".as_ptr().cast(), core::ptr::from_ref(fops).cast(), private)
    };
    if fd < 0 {
        // SAFETY: no file was created, so nothing else owns `private`.
        drop(unsafe { Arc::<Vm>::from_foreign(private) });
        return Err(Error::from_errno(fd));
    }
    Ok(fd as isize)
}

/// # Safety
///
/// `file` must be a VM fd's file, whose `private_data` came from
/// [`install_fd`] and is not yet released.
unsafe extern "C" fn vm_ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: by the function's contract `private_data` is an `Arc<Vm>`
    // that lives until `vm_release`, which cannot run during an ioctl.
    let vm: ArcBorrow<'_, Vm> = unsafe { Arc::<Vm>::borrow((*file).private_data) };
    match vm.ioctl(cmd, arg as usize) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// # Safety
///
/// `file` must be a VM fd's file being released.
unsafe extern "C" fn vm_release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: release is the last use of `private_data`; this takes back
    // the reference `install_fd` gave the file.
    let vm = unsafe { Arc::<Vm>::from_foreign((*file).private_data) };
    vm.close_fd();
    0
}

/// File operations of a VM fd. `owner` makes every open VM fd hold a
/// reference on the module.
const VM_FOPS: bindings::file_operations = bindings::file_operations {
    owner: <crate::VmmModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr(),
    unlocked_ioctl: Some(vm_ioctl),
    // Every argument is 64-bit clean (no pointers or longs in the structs
    // but `u64` addresses), so 32-bit callers use the same path.
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: bindings::compat_ptr_ioctl,
    release: Some(vm_release),
    ..pin_init::zeroed()
};
