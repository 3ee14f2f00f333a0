// SPDX-License-Identifier: MIT OR Apache-2.0

//! Safe wrappers for the vmm ioctls, in the style of rust-vmm `kvm-ioctls`.
//!
//! [`Vmm`] is an open `/dev/vmm`; [`VmFd`] is a VM file descriptor. Opening
//! `/dev/vmm` checks the interface version and the ABI fingerprint, so a
//! module built from other ABI definitions is refused up front instead of
//! misreading structs later.
//!
//! | ioctl | method | fd |
//! |---|---|---|
//! | `VMM_GET_VERSION` | [`Vmm::version`] | /dev/vmm |
//! | `VMM_GET_CAPS` | [`Vmm::caps`] | /dev/vmm |
//! | `VMM_CREATE_VM` | [`Vmm::create_vm`] | /dev/vmm |
//! | `VMM_OPEN_VM` | [`Vmm::open_vm`] | /dev/vmm |
//! | `VMM_DESTROY_VM` | [`Vmm::destroy_vm`] | /dev/vmm |
//! | `VMM_LIST_VMS` | [`Vmm::list_vms`] | /dev/vmm |
//! | `VMM_GET_STATS` | [`Vmm::stats`] | /dev/vmm |
//! | `VMM_VM_GET_INFO` | [`VmFd::info`] | VM fd |

pub mod sys;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

pub use vmm_uapi as uapi;
use uapi::*;

/// Path of the control device.
pub const VMM_DEVICE: &str = "/dev/vmm";

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn name_buf(name: &str) -> io::Result<[u8; VMM_NAME_MAX]> {
    make_name(name.as_bytes()).map_err(|e| invalid(&format!("bad VM name {name:?}: {e:?}")))
}

/// A VM as `VMM_LIST_VMS` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmEntry {
    /// The VM's name.
    pub name: String,
    /// The flags it was created with.
    pub flags: CreateFlags,
    /// VM fds open on it.
    pub nr_fds: u32,
}

/// An open `/dev/vmm`.
#[derive(Debug)]
pub struct Vmm {
    file: File,
}

impl Vmm {
    /// Opens [`VMM_DEVICE`] and checks that the module speaks our ABI.
    pub fn open() -> io::Result<Self> {
        Self::open_path(VMM_DEVICE)
    }

    /// Opens a control device at `path` and checks its ABI.
    pub fn open_path(path: &str) -> io::Result<Self> {
        let vmm = Self::open_unchecked(path)?;
        let v = vmm.version()?;
        if v.api_version != VMM_API_VERSION || v.abi_fingerprint != ABI_FINGERPRINT {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "vmm module speaks API {} (ABI {:#x}); this library speaks {} ({:#x})",
                    v.api_version, v.abi_fingerprint, VMM_API_VERSION, ABI_FINGERPRINT
                ),
            ));
        }
        Ok(vmm)
    }

    /// Opens the control device without the ABI check (tests of the check
    /// itself need this).
    pub fn open_unchecked(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self { file })
    }

    /// `VMM_GET_VERSION`.
    pub fn version(&self) -> io::Result<VmmVersion> {
        let mut v = VmmVersion::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_GET_VERSION, &mut v)?;
        Ok(v)
    }

    /// `VMM_GET_CAPS`.
    pub fn caps(&self) -> io::Result<VmmCaps> {
        let mut c = VmmCaps::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_GET_CAPS, &mut c)?;
        Ok(c)
    }

    /// `VMM_GET_STATS`.
    pub fn stats(&self) -> io::Result<VmmStats> {
        let mut s = VmmStats::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_GET_STATS, &mut s)?;
        Ok(s)
    }

    /// `VMM_CREATE_VM`: creates VM `name` and returns a VM fd for it.
    pub fn create_vm(&self, name: &str, flags: CreateFlags) -> io::Result<VmFd> {
        let mut arg = VmmCreateVm { name: name_buf(name)?, flags: flags.bits(), ..VmmCreateVm::ZERO };
        let fd = sys::ioctl_ptr(self.as_fd(), VMM_CREATE_VM, &mut arg)?;
        Ok(VmFd { fd: sys::adopt_fd(fd) })
    }

    /// `VMM_OPEN_VM`: returns a new VM fd for existing VM `name`.
    pub fn open_vm(&self, name: &str) -> io::Result<VmFd> {
        let mut arg = VmmVmName { name: name_buf(name)?, ..VmmVmName::ZERO };
        let fd = sys::ioctl_ptr(self.as_fd(), VMM_OPEN_VM, &mut arg)?;
        Ok(VmFd { fd: sys::adopt_fd(fd) })
    }

    /// `VMM_DESTROY_VM`: destroys VM `name`. Open VM fds on it then fail
    /// with `ENXIO`; its memory goes when the last of them closes.
    pub fn destroy_vm(&self, name: &str) -> io::Result<()> {
        let mut arg = VmmVmName { name: name_buf(name)?, ..VmmVmName::ZERO };
        sys::ioctl_ptr(self.as_fd(), VMM_DESTROY_VM, &mut arg).map(drop)
    }

    /// `VMM_LIST_VMS`, retrying if VMs appear between sizing and reading.
    pub fn list_vms(&self) -> io::Result<Vec<VmEntry>> {
        let mut room = 16u32;
        loop {
            let mut entries = vec![VmmVmEntry::ZERO; room as usize];
            let mut arg =
                VmmVmList { count: room, entries: entries.as_mut_ptr() as u64, ..VmmVmList::ZERO };
            match sys::ioctl_ptr(self.as_fd(), VMM_LIST_VMS, &mut arg) {
                Ok(_) => {
                    entries.truncate(arg.count as usize);
                    return Ok(entries
                        .iter()
                        .map(|e| VmEntry {
                            name: String::from_utf8_lossy(name_bytes(&e.name)).into_owned(),
                            flags: CreateFlags::from_bits_retain(e.flags),
                            nr_fds: e.nr_fds,
                        })
                        .collect());
                }
                Err(e) if e.raw_os_error() == Some(libc::E2BIG) => room = arg.count.max(room + 1),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Vmm {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// A VM file descriptor. Closing it drops this handle's reference; a VM
/// created with [`CreateFlags::DESTROY_ON_CLOSE`] is destroyed when its last
/// VM fd closes.
#[derive(Debug)]
pub struct VmFd {
    fd: OwnedFd,
}

impl VmFd {
    /// `VMM_VM_GET_INFO`.
    pub fn info(&self) -> io::Result<VmmVmInfo> {
        let mut i = VmmVmInfo::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_VM_GET_INFO, &mut i)?;
        Ok(i)
    }

    /// The VM's name, from [`Self::info`].
    pub fn name(&self) -> io::Result<String> {
        Ok(String::from_utf8_lossy(name_bytes(&self.info()?.name)).into_owned())
    }
}

impl AsFd for VmFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_the_kernel() {
        assert!(name_buf("ok-name").is_ok());
        assert!(name_buf("").is_err());
        assert!(name_buf(&"x".repeat(VMM_NAME_MAX)).is_err());
        assert!(name_buf("bad/name").is_err());
    }

    #[test]
    fn missing_device_is_an_error_not_a_panic() {
        let e = Vmm::open_path("/nonexistent/vmm").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
