// SPDX-License-Identifier: MIT OR Apache-2.0

//! Memory helpers for bad-pointer tests.

use std::io;

/// Maps two pages, unmaps the second, and returns the first's address: an
/// argument placed at its end runs into unmapped memory. The first page
/// stays mapped (leaked) for the rest of the run.
pub fn guard_page() -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ | libc::PROT_WRITE,
                   libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
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
