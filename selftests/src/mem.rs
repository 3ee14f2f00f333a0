// SPDX-License-Identifier: MIT OR Apache-2.0

//! Memory helpers for bad-pointer tests.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use libvmm::sys::ioctl_raw;
use libvmm::uapi as vmm_uapi;

use crate::tap::expect_errno_of;

/// Maps two pages, unmaps the second, and returns the first's address: an
/// argument placed at its end runs into unmapped memory. The first page
/// stays mapped (leaked) for the rest of the run.
pub fn guard_page() -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the second page is part of the mapping just made, and
    // nothing refers to it.
    if unsafe { libc::munmap(p.cast::<u8>().add(4096).cast(), 4096) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(p as usize)
}

/// `mmap`s `len` bytes of `fd` at `offset` with `flags` (read-write) and
/// unmaps them again at once; only whether the kernel accepts matters.
pub fn try_mmap(fd: BorrowedFd<'_>, offset: u64, len: usize, flags: i32) -> io::Result<()> {
    // SAFETY: a new mapping at an address of the kernel's choosing touches
    // no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `p`/`len` are exactly the mapping just made, which nothing uses.
    unsafe { libc::munmap(p, len) };
    Ok(())
}

/// Argument addresses no ioctl may accept: null, a low page, the kernel.
pub const BAD_ADDRS: [usize; 3] = [0, 16, 0xffff_8000_0000_0000];

/// Fails unless `cmd` on `fd` fails with `EFAULT` when its argument is at
/// one of [`BAD_ADDRS`] or runs off the end of a mapping.
pub fn expect_efault(fd: BorrowedFd<'_>, cmd: u32, what: &str) -> Result<(), String> {
    static GUARD: OnceLock<usize> = OnceLock::new();
    let page = *GUARD.get_or_init(|| guard_page().unwrap_or(0));
    let mut addrs = BAD_ADDRS.to_vec();
    if page != 0 {
        addrs.push(page + 4096 - (vmm_uapi::ioc_size(cmd) / 2).max(1));
    }
    for addr in addrs {
        expect_errno_of(ioctl_raw(fd, cmd, addr), libc::EFAULT, &format!("{what} at {addr:#x}"))?;
    }
    Ok(())
}
