// SPDX-License-Identifier: GPL-2.0

//! Anonymous-inode files whose private data is an `Arc<T>`: the VM and
//! vCPU fds. [`install`] creates one and installs it as a new fd; the
//! file operations call [`AnonFile`]'s methods with the object.
//!
//! # Invariants
//!
//! The `private_data` of a file made by [`install::<T>`] is the pointer
//! `Arc::<T>::into_foreign` returned, and the file's operations are
//! `Ops::<T>::FOPS`, which only ever interpret it as an `Arc<T>`. The
//! reference is given back exactly once, in `release`.

use core::marker::PhantomData;
use kernel::ffi::{c_int, c_long, c_uint, c_ulong};
use kernel::{
    bindings,
    mm::virt::VmaNew,
    prelude::*,
    sync::{Arc, ArcBorrow},
    types::ForeignOwnable,
};

use super::ffi;

/// An object that anonymous files can carry.
pub(crate) trait AnonFile: Send + Sync + Sized + 'static {
    /// The file's name (`anon_inode:<NAME>` in `/proc/*/fd`).
    const NAME: &'static CStr;
    /// Whether the file can be mapped.
    const MMAP: bool = false;
    /// An ioctl on the file.
    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize>;
    /// A new mapping of the file, being set up with the mm's lock held.
    fn mmap(_this: ArcBorrow<'_, Self>, _vma: &VmaNew) -> Result {
        Err(ENODEV)
    }
    /// The file's last reference went; `this` is the one it held.
    fn release(this: Arc<Self>);
}

/// Creates an anonymous file for `obj` and installs it as a new fd
/// (`O_RDWR | O_CLOEXEC`). On success the file owns the `Arc`.
pub(crate) fn install<T: AnonFile>(obj: Arc<T>) -> Result<isize> {
    let private = obj.into_foreign();
    let fops = Ops::<T>::build();
    // SAFETY: `fops` interprets `private_data` as `Arc::<T>::into_foreign`
    // made it, and the name is a static C string.
    let fd = unsafe {
        ffi::vmm_anon_inode_getfd(T::NAME.as_char_ptr(), core::ptr::from_ref(fops).cast(), private)
    };
    if fd < 0 {
        // SAFETY: no file was created, so nothing else owns `private`.
        drop(unsafe { Arc::<T>::from_foreign(private) });
        return Err(Error::from_errno(fd));
    }
    Ok(fd as isize)
}

/// The file operations of files carrying a `T`.
struct Ops<T>(PhantomData<T>);

impl<T: AnonFile> Ops<T> {
    /// `owner` makes every open file hold a reference on the module.
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: <crate::VmmModule as kernel::ModuleMetadata>::THIS_MODULE.as_ptr(),
        unlocked_ioctl: Some(Self::ioctl),
        mmap: if T::MMAP { Some(Self::mmap) } else { None },
        // Every argument is 64-bit clean (no pointers or longs in the
        // structs but `u64` addresses), so 32-bit callers use the same path.
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        release: Some(Self::release),
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::file_operations {
        &Self::FOPS
    }

    /// # Safety
    ///
    /// `file` must be a file made by [`install::<T>`], not yet released.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: by the type invariant `private_data` is an `Arc<T>` that
        // lives until release, which cannot run during an ioctl.
        let this = unsafe { Arc::<T>::borrow((*file).private_data) };
        match T::ioctl(this, cmd, arg) {
            Ok(v) => v as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// `file` must be a file made by [`install::<T>`], and `vma` a new
    /// mapping of it that the caller (the mmap path, holding the mm's lock)
    /// is setting up.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: as in `ioctl`; mmap cannot race with release.
        let this = unsafe { Arc::<T>::borrow((*file).private_data) };
        // SAFETY: the mmap path calls this during the VMA's initial setup.
        let vma = unsafe { VmaNew::from_raw(vma) };
        match T::mmap(this, vma) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` must be a file made by [`install::<T>`] being released.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: release is the last use of `private_data`; this takes back
        // the reference `install` gave the file.
        let this = unsafe { Arc::<T>::from_foreign((*file).private_data) };
        T::release(this);
        0
    }
}

/// The page offset a mapping starts at in its file.
pub(crate) fn vma_pgoff(vma: &VmaNew) -> usize {
    // SAFETY: `vma` is a live VMA in setup; `vm_pgoff` is plain data that
    // nothing changes during setup.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}
