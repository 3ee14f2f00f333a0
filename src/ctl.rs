// SPDX-License-Identifier: GPL-2.0

//! `/dev/vmm`, the control device: version, capabilities, and VMs by name.

use kernel::{
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    sync::{atomic::Relaxed, Arc, ArcBorrow},
};

use crate::hw::abi::{write_arg, write_array, UserArg};
use crate::uapi::{self, VmmVmEntry};
use crate::vm::{self, Shared};

/// An open `/dev/vmm`. Every open shares the module-wide state.
pub(crate) struct Ctl;

#[vtable]
impl MiscDevice for Ctl {
    type Ptr = Arc<Shared>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Shared>> {
        Ok(crate::hw::module_of(misc).core.shared.clone())
    }

    fn ioctl(shared: ArcBorrow<'_, Shared>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let shared: Arc<Shared> = shared.into();
        match cmd {
            uapi::VMM_GET_VERSION => {
                let v = uapi::VmmVersion {
                    api_version: uapi::VMM_API_VERSION,
                    abi_fingerprint: uapi::ABI_FINGERPRINT,
                    ..uapi::VmmVersion::ZERO
                };
                write_arg(arg, &v).map(|()| 0)
            }
            uapi::VMM_GET_CAPS => write_arg(arg, &shared.caps).map(|()| 0),
            uapi::VMM_CREATE_VM => vm::create(&shared, UserArg(arg)),
            uapi::VMM_OPEN_VM => vm::open(&shared, UserArg(arg)),
            uapi::VMM_DESTROY_VM => vm::destroy(&shared, UserArg(arg)),
            uapi::VMM_LIST_VMS => list(&shared, arg),
            uapi::VMM_GET_STATS => {
                let s = uapi::VmmStats {
                    nr_vms: shared.vms.lock().len() as u32,
                    nr_vm_objects: shared.nr_vm_objects.load(Relaxed),
                    vm_bytes: shared.vm_bytes.load(Relaxed),
                    seg_pages: shared.seg_pages.load(Relaxed),
                    nr_vcpu_objects: shared.nr_vcpu_objects.load(Relaxed),
                    ..uapi::VmmStats::ZERO
                };
                write_arg(arg, &s).map(|()| 0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// `VMM_LIST_VMS`: copies the registry out, or says how much room it needs.
fn list(shared: &Shared, arg: usize) -> Result<isize> {
    let mut req: uapi::VmmVmList = UserArg(arg).read()?;
    if req.reserved != 0 {
        return Err(EINVAL);
    }
    // Snapshot under the lock, copy out after: a faulting user page must
    // never stall other VM operations.
    let entries: KVec<VmmVmEntry> = {
        let vms = shared.vms.lock();
        let mut out = KVec::with_capacity(vms.len(), GFP_KERNEL)?;
        for named in vms.iter() {
            out.push(named.vm.entry(), GFP_KERNEL)?;
        }
        out
    };
    let room = req.count as usize;
    req.count = entries.len() as u32;
    if room < entries.len() {
        write_arg(arg, &req)?;
        return Err(E2BIG);
    }
    if !entries.is_empty() {
        let addr = usize::try_from(req.entries).map_err(|_| EFAULT)?;
        write_array(addr, &entries)?;
    }
    write_arg(arg, &req).map(|()| 0)
}
