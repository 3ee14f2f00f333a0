// SPDX-License-Identifier: MIT OR Apache-2.0

//! VM lifecycle: create, open, list, destroy, destroy-on-close, VM fds.

use std::os::fd::{AsFd, AsRawFd};

use libvmm::sys::{ioctl_ptr, ioctl_raw};
use libvmm::uapi::*;
use libvmm::{VmEntry, Vmm};

use crate::tap::{Outcome::Pass, TestResult};
use crate::{ensure, expect_errno, vmm};

fn s<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn listed(v: &Vmm, name: &str) -> Result<Option<VmEntry>, String> {
    Ok(s(v.list_vms())?.into_iter().find(|e| e.name == name))
}

pub fn create_returns_a_vm_fd() -> TestResult {
    let v = vmm()?;
    let vm = s(v.create_vm("fd-test", CreateFlags::DESTROY_ON_CLOSE))?;
    let fd = vm.as_fd().as_raw_fd();
    let link = s(std::fs::read_link(format!("/proc/self/fd/{fd}")))?;
    ensure!(link.to_string_lossy() == "anon_inode:vmm-vm", "fd is {link:?}");
    let flags = crate::fd_flags(fd);
    ensure!(flags & libc::FD_CLOEXEC != 0, "VM fd lacks close-on-exec");
    let info = s(vm.info())?;
    ensure!(name_bytes(&info.name) == b"fd-test", "info name {:?}", info.name);
    ensure!(info.flags == CreateFlags::DESTROY_ON_CLOSE.bits(), "info flags {:#x}", info.flags);
    ensure!(info.reserved == 0, "reserved {:?}", info.reserved);
    Ok(Pass)
}

pub fn duplicate_name_is_eexist() -> TestResult {
    let v = vmm()?;
    let _a = s(v.create_vm("dup", CreateFlags::DESTROY_ON_CLOSE))?;
    expect_errno!(v.create_vm("dup", CreateFlags::empty()), libc::EEXIST);
    expect_errno!(v.create_vm("dup", CreateFlags::DESTROY_ON_CLOSE), libc::EEXIST);
    ensure!(s(v.list_vms())?.len() == 1, "duplicate left a VM");
    Ok(Pass)
}

pub fn open_by_name() -> TestResult {
    let v = vmm()?;
    let a = s(v.create_vm("opener", CreateFlags::DESTROY_ON_CLOSE))?;
    let b = s(v.open_vm("opener"))?;
    ensure!(a.as_fd().as_raw_fd() != b.as_fd().as_raw_fd(), "same fd twice");
    ensure!(s(b.name())? == "opener", "opened another VM");
    let e = listed(&v, "opener")?.ok_or("not listed")?;
    ensure!(e.nr_fds == 2, "nr_fds {}", e.nr_fds);
    expect_errno!(v.open_vm("no-such-vm"), libc::ENOENT);
    expect_errno!(v.destroy_vm("no-such-vm"), libc::ENOENT);
    // A second /dev/vmm open sees the same VMs.
    let w = s(Vmm::open())?;
    let c = s(w.open_vm("opener"))?;
    ensure!(listed(&w, "opener")?.ok_or("gone")?.nr_fds == 3, "third fd not counted");
    drop((a, b, c));
    ensure!(listed(&v, "opener")?.is_none(), "destroy-on-close VM outlived its fds");
    Ok(Pass)
}

pub fn list_sizes_and_e2big() -> TestResult {
    let v = vmm()?;
    let names = ["list-a", "list-b", "list-c"];
    let vms: Vec<_> = names
        .iter()
        .map(|n| v.create_vm(n, CreateFlags::DESTROY_ON_CLOSE))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let got: Vec<String> = s(v.list_vms())?.into_iter().map(|e| e.name).collect();
    ensure!(got == names, "list {got:?}");
    // Too little room: E2BIG, count says how much is needed, nothing written.
    let mut entries = vec![VmmVmEntry::ZERO; 2];
    let mut req = VmmVmList { count: 2, entries: entries.as_mut_ptr() as u64, ..VmmVmList::ZERO };
    expect_errno!(ioctl_ptr(v.as_fd(), VMM_LIST_VMS, &mut req), libc::E2BIG);
    ensure!(req.count == 3, "count {}", req.count);
    ensure!(entries.iter().all(|e| *e == VmmVmEntry::ZERO), "E2BIG wrote entries");
    // Zero room and a null array only ask for the count.
    let mut req = VmmVmList::ZERO;
    expect_errno!(ioctl_ptr(v.as_fd(), VMM_LIST_VMS, &mut req), libc::E2BIG);
    ensure!(req.count == 3, "count {}", req.count);
    // Room, but a bad array pointer.
    let mut req = VmmVmList { count: 8, entries: 8, ..VmmVmList::ZERO };
    expect_errno!(ioctl_ptr(v.as_fd(), VMM_LIST_VMS, &mut req), libc::EFAULT);
    // More room than needed: exactly three written, the rest untouched.
    let mut entries = vec![VmmVmEntry { nr_fds: 77, ..VmmVmEntry::ZERO }; 5];
    let mut req = VmmVmList { count: 5, entries: entries.as_mut_ptr() as u64, ..VmmVmList::ZERO };
    s(ioctl_ptr(v.as_fd(), VMM_LIST_VMS, &mut req))?;
    ensure!(req.count == 3 && entries[3].nr_fds == 77 && entries[2].nr_fds == 1, "overwrite");
    drop(vms);
    let mut req = VmmVmList::ZERO;
    s(ioctl_ptr(v.as_fd(), VMM_LIST_VMS, &mut req))?;
    ensure!(req.count == 0, "count {} after closing", req.count);
    Ok(Pass)
}

pub fn destroy_leaves_fds_enxio() -> TestResult {
    let v = vmm()?;
    let before = s(v.stats())?;
    let vm = s(v.create_vm("doomed", CreateFlags::empty()))?;
    s(v.destroy_vm("doomed"))?;
    expect_errno!(vm.info(), libc::ENXIO);
    let mut buf = [0u8; 256];
    expect_errno!(ioctl_raw(vm.as_fd(), 0, buf.as_mut_ptr() as usize), libc::ENXIO);
    ensure!(listed(&v, "doomed")?.is_none(), "still listed");
    expect_errno!(v.open_vm("doomed"), libc::ENOENT);
    expect_errno!(v.destroy_vm("doomed"), libc::ENOENT);
    // The name is free at once; the old object lives until its fd closes.
    let again = s(v.create_vm("doomed", CreateFlags::DESTROY_ON_CLOSE))?;
    let mid = s(v.stats())?;
    ensure!(mid.nr_vm_objects == before.nr_vm_objects + 2, "objects {}", mid.nr_vm_objects);
    ensure!(mid.nr_vms == before.nr_vms + 1, "named {}", mid.nr_vms);
    ensure!(s(again.name())? == "doomed", "new VM unusable");
    drop((vm, again));
    let after = s(v.stats())?;
    ensure!(after == before, "stats {after:?} != {before:?}");
    Ok(Pass)
}

pub fn persistent_vm_outlives_its_fds() -> TestResult {
    let v = vmm()?;
    drop(s(v.create_vm("keeper", CreateFlags::empty()))?);
    let e = listed(&v, "keeper")?.ok_or("persistent VM vanished on close")?;
    ensure!(e.nr_fds == 0 && e.flags.is_empty(), "entry {e:?}");
    // Closing /dev/vmm does not matter either.
    drop(v);
    let v = vmm()?;
    let vm = s(v.open_vm("keeper"))?;
    ensure!(s(vm.name())? == "keeper", "reopened the wrong VM");
    s(v.destroy_vm("keeper"))?;
    expect_errno!(vm.info(), libc::ENXIO);
    Ok(Pass)
}

pub fn destroy_on_close_waits_for_the_last_fd() -> TestResult {
    let v = vmm()?;
    let a = s(v.create_vm("doc", CreateFlags::DESTROY_ON_CLOSE))?;
    let b = s(v.open_vm("doc"))?;
    drop(a);
    let e = listed(&v, "doc")?.ok_or("destroyed with an fd still open")?;
    ensure!(e.nr_fds == 1, "nr_fds {}", e.nr_fds);
    ensure!(s(b.name())? == "doc", "survivor fd broken");
    drop(b);
    ensure!(listed(&v, "doc")?.is_none(), "not destroyed on last close");
    // Explicit destroy of a destroy-on-close VM works too, once.
    let c = s(v.create_vm("doc", CreateFlags::DESTROY_ON_CLOSE))?;
    s(v.destroy_vm("doc"))?;
    drop(c);
    ensure!(s(v.stats())?.nr_vm_objects == 0, "object leaked");
    Ok(Pass)
}

pub fn vm_fd_bad_input() -> TestResult {
    let v = vmm()?;
    let vm = s(v.create_vm("vmfd", CreateFlags::DESTROY_ON_CLOSE))?;
    let mut buf = [0u64; 64];
    let addr = buf.as_mut_ptr() as usize;
    for cmd in [
        0,
        VMM_GET_CAPS,
        VMM_CREATE_VM,
        VMM_VM_GET_INFO + 1,
        (VMM_VM_GET_INFO & !(0x3fff << 16)) | (8 << 16),
    ] {
        expect_errno!(ioctl_raw(vm.as_fd(), cmd, addr), libc::ENOTTY);
    }
    for bad in [0usize, 0xffff_8000_0000_0000, 16] {
        expect_errno!(ioctl_raw(vm.as_fd(), VMM_VM_GET_INFO, bad), libc::EFAULT);
    }
    ensure!(s(vm.name())? == "vmfd", "VM damaged by bad input");
    Ok(Pass)
}

pub fn vm_fds_survive_dev_close() -> TestResult {
    let vm = {
        let v = vmm()?;
        s(v.create_vm("orphan", CreateFlags::DESTROY_ON_CLOSE))?
    };
    ensure!(s(vm.name())? == "orphan", "VM fd died with /dev/vmm");
    drop(vm);
    ensure!(s(vmm()?.list_vms())?.is_empty(), "VM left after last close");
    Ok(Pass)
}

pub fn dup_shares_the_vm() -> TestResult {
    // dup() shares one open file: the VM counts it once and closes on the
    // last of the duplicates.
    let v = vmm()?;
    let vm = s(v.create_vm("dupfd", CreateFlags::DESTROY_ON_CLOSE))?;
    let dup = s(vm.as_fd().try_clone_to_owned())?;
    ensure!(listed(&v, "dupfd")?.ok_or("gone")?.nr_fds == 1, "dup counted as new open");
    drop(vm);
    ensure!(listed(&v, "dupfd")?.is_some(), "destroyed while a dup was open");
    drop(dup);
    ensure!(listed(&v, "dupfd")?.is_none(), "not destroyed after the last dup");
    Ok(Pass)
}
