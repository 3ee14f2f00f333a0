// SPDX-License-Identifier: MIT OR Apache-2.0

//! The syscall layer: the only `unsafe` in the library.
//!
//! Every ioctl goes through one of three functions, distinguished by which
//! way the argument moves. Each checks at compile time that the argument's
//! size is the one encoded in the ioctl number, so a mismatched struct
//! cannot reach the kernel.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use vmm_uapi::ioc_size;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Issues `cmd` with a pointer to `arg`, which the kernel may read and write.
///
/// `T` must be one of the `#[repr(C)]` ABI structs whose size `cmd` encodes.
pub fn ioctl_ptr<T: Copy>(fd: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> io::Result<libc::c_int> {
    assert_eq!(ioc_size(cmd), size_of::<T>(), "ioctl {cmd:#x} takes another struct");
    // SAFETY: `arg` is a valid, exclusively borrowed `T` of exactly the size
    // the ioctl number encodes, so the kernel reads and writes only within
    // it; `T: Copy` ABI structs are plain integers, valid for any bytes.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::c_ulong, arg as *mut T) })
}

/// Issues `cmd` with a raw address argument, which may be deliberately
/// invalid: the kernel must answer `EFAULT`, never touch our memory wrongly.
/// Only tests need this.
pub fn ioctl_raw(fd: BorrowedFd<'_>, cmd: u32, addr: usize) -> io::Result<libc::c_int> {
    // SAFETY: the kernel validates `addr` with copy_{from,to}_user; when it
    // is a valid address of ours, the caller owns `ioc_size(cmd)` bytes there.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::c_ulong, addr) })
}

/// Takes ownership of a file descriptor an ioctl returned.
pub fn adopt_fd(raw: libc::c_int) -> OwnedFd {
    assert!(raw >= 0);
    // SAFETY: the kernel just installed `raw` for us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
