// SPDX-License-Identifier: MIT OR Apache-2.0

//! Loading and unloading kernel modules and reading the kernel log, with
//! the exact errno of each step. The raw syscalls are the only `unsafe` in
//! the selftests.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// Where the initramfs keeps the modules under test.
pub const VMM_KO: &str = "/modules/vmm.ko";

/// `finit_module(path, params)`.
pub fn load(path: &str, params: &str) -> io::Result<()> {
    let f = File::open(path)?;
    let params = CString::new(params).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `f` is an open file and `params` a NUL-terminated string,
    // both alive across the call.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `delete_module(name, O_NONBLOCK)`: fails with `EWOULDBLOCK` while the
/// module is in use.
pub fn unload(name: &str) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `name` is a NUL-terminated string alive across the call.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether module `name` is loaded.
pub fn loaded(name: &str) -> bool {
    std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.split(' ').next() == Some(name)))
        .unwrap_or(false)
}

/// Makes sure vmm is loaded.
pub fn ensure_vmm() -> io::Result<()> {
    if loaded("vmm") {
        Ok(())
    } else {
        load(VMM_KO, "")
    }
}

/// A reader of kernel log records written after it was created.
pub struct Kmsg(File);

impl Kmsg {
    /// Opens `/dev/kmsg` positioned at its end.
    pub fn tail() -> io::Result<Self> {
        let f = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg")?;
        // SAFETY: plain lseek on an fd we own.
        unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
        Ok(Self(f))
    }

    /// The message text of every record since the last call.
    pub fn read(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    if let Some((_, msg)) = rec.split_once(';') {
                        out.push(msg.lines().next().unwrap_or("").to_string());
                    }
                }
                // EPIPE: records were overwritten; keep reading what is left.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }

    /// Whether some record since the last call contains `needle`.
    pub fn saw(&mut self, needle: &str) -> Option<String> {
        self.read().into_iter().find(|l| l.contains(needle))
    }
}
