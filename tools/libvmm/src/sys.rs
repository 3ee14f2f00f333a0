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

/// Issues `cmd`, which carries no argument.
pub fn ioctl_none(fd: BorrowedFd<'_>, cmd: u32) -> io::Result<libc::c_int> {
    assert_eq!(ioc_size(cmd), 0, "ioctl {cmd:#x} takes an argument");
    // SAFETY: the kernel reads no memory for an argument-less ioctl.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as libc::c_ulong, 0usize) })
}

/// A shared, read-write mapping of part of a file; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, not tied to a thread; all
// access goes through the volatile copies below.
unsafe impl Send for Mapping {}
// SAFETY: as above; concurrent volatile copies are the intended use (the
// guest writes the same memory concurrently anyway).
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`, `MAP_SHARED`, read-write.
    pub fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel aliases nothing of ours.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: ptr.cast(), len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: mmap refuses zero lengths).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, n: usize) {
        assert!(off.checked_add(n).is_some_and(|end| end <= self.len), "access beyond mapping");
    }

    /// Copies `data` into the mapping at `off`. Panics if out of range.
    pub fn write(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        for (i, b) in data.iter().enumerate() {
            // SAFETY: in bounds (checked); the memory is mapped for our lifetime.
            unsafe { self.ptr.add(off + i).write_volatile(*b) };
        }
    }

    /// Copies from the mapping at `off` into `buf`. Panics if out of range.
    pub fn read(&self, off: usize, buf: &mut [u8]) {
        self.check(off, buf.len());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds (checked); the memory is mapped for our lifetime.
            *b = unsafe { self.ptr.add(off + i).read_volatile() };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
