// SPDX-License-Identifier: MIT OR Apache-2.0

//! `/dev/vmm` itself: version, capabilities, and every kind of bad input.

use std::os::fd::AsFd;

use libvmm::sys::{ioctl_ptr, ioctl_raw};
use libvmm::uapi::*;

use crate::tap::{Outcome::Pass, TestResult};
use crate::{ensure, expect_errno, vmm};

pub fn version_and_abi() -> TestResult {
    let v = vmm()?.version().map_err(|e| e.to_string())?;
    ensure!(v.api_version == VMM_API_VERSION, "api {} != {}", v.api_version, VMM_API_VERSION);
    ensure!(v.flags == 0, "flags {:#x}", v.flags);
    // The kernel computed this from its own compilation of uapi/src/lib.rs:
    // equal fingerprints mean equal sizes, offsets and ioctl numbers.
    ensure!(
        v.abi_fingerprint == ABI_FINGERPRINT,
        "kernel ABI {:#x}, ours {:#x}",
        v.abi_fingerprint,
        ABI_FINGERPRINT
    );
    Ok(Pass)
}

fn cpuinfo_has(word: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.split_whitespace().any(|w| w == word))
        .unwrap_or(false)
}

pub fn caps_match_the_cpu() -> TestResult {
    let c = vmm()?.caps().map_err(|e| e.to_string())?;
    let backend = Backend::try_from(c.backend).map_err(|b| format!("backend {b}"))?;
    let intel = cpuinfo_has("GenuineIntel");
    ensure!((backend == Backend::Vmx) == intel, "backend {backend:?} on intel={intel}");
    if let Ok(want) = std::env::var("vmmtest_backend") {
        let got = if backend == Backend::Vmx { "vmx" } else { "svm" };
        ensure!(got == want, "backend {got}, machine is {want}");
    }
    let online = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    ensure!(c.nr_cpus == online, "nr_cpus {} but {online} CPUs online", c.nr_cpus);
    let f = Features::from_bits_retain(c.features);
    ensure!(f.contains(Features::NESTED_PAGING), "no nested paging in {f:?}");
    ensure!(c.phys_addr_bits >= 36 && c.phys_addr_bits <= 52, "phys bits {}", c.phys_addr_bits);
    let la57 = c.host_paging_levels == 5;
    ensure!(la57 == f.contains(Features::HOST_LA57), "LA57 flag disagrees with levels");
    if let Ok(want) = std::env::var("vmmtest_levels") {
        ensure!(
            c.host_paging_levels.to_string() == want,
            "host paging {}-level, machine booted for {want}",
            c.host_paging_levels
        );
    }
    ensure!(c.reserved == [0; 6], "reserved {:?}", c.reserved);
    match backend {
        Backend::Vmx => {
            ensure!(c.raw[0] & 0x7fff_ffff == c.revision as u64, "VMX_BASIC vs revision");
            ensure!(!f.intersects(Features::SVM_NRIPS | Features::SVM_VGIF), "SVM bits on VMX");
            // Bochs models with APICv, as TESTBED.md measured.
            ensure!(
                f.contains(
                    Features::VMX_APIC_ACCESS
                        | Features::VMX_VINTR_DELIVERY
                        | Features::UNRESTRICTED_GUEST
                        | Features::TAGGED_TLB
                ),
                "expected APICv, UG and VPID in {f:?}"
            );
        }
        Backend::Svm => {
            ensure!(c.raw[1] == c.nr_asids as u64 && c.nr_asids >= 2, "ASIDs {}", c.nr_asids);
            ensure!(!f.intersects(Features::VMX_TRUE_CTLS), "VMX bits on SVM");
        }
    }
    Ok(Pass)
}

pub fn unknown_commands_are_enotty() -> TestResult {
    let v = vmm()?;
    let mut buf = [0u64; 64];
    let addr = buf.as_mut_ptr() as usize;
    let size_of_caps = size_of::<VmmCaps>() as u32;
    let cases = [
        // An unused number in our space.
        (2u32 << 30) | (16 << 16) | (VMM_IOC_MAGIC << 8) | 0x3f,
        // A known number with the wrong size.
        (VMM_GET_CAPS & !(0x3fff << 16)) | (8 << 16),
        // A known number with the wrong direction.
        (VMM_GET_CAPS & !(3 << 30)) | (1 << 30),
        // Another driver's magic ('V') with our layout.
        (VMM_GET_VERSION & !(0xff << 8)) | ((b'V' as u32) << 8),
        // A VM-fd command sent to /dev/vmm.
        VMM_VM_GET_INFO,
        0,
        (3 << 30) | (size_of_caps << 16) | (VMM_IOC_MAGIC << 8) | 0xff,
    ];
    for cmd in cases {
        expect_errno!(ioctl_raw(v.as_fd(), cmd, addr), libc::ENOTTY);
    }
    Ok(Pass)
}

/// Addresses no ioctl may read or write: null, the kernel half, and an
/// unmapped user page.
fn bad_addresses() -> [usize; 3] {
    [0, 0xffff_8000_0000_0000, 0x0000_7fff_ffff_f000 - 0x10_0000]
}

pub fn bad_pointers_are_efault() -> TestResult {
    let v = vmm()?;
    for addr in bad_addresses() {
        for cmd in [
            VMM_GET_VERSION,
            VMM_GET_CAPS,
            VMM_CREATE_VM,
            VMM_OPEN_VM,
            VMM_DESTROY_VM,
            VMM_LIST_VMS,
            VMM_GET_STATS,
        ] {
            expect_errno!(ioctl_raw(v.as_fd(), cmd, addr), libc::EFAULT);
        }
    }
    // An argument that starts mapped but runs into an unmapped page.
    let page = 4096usize;
    let map = crate::mem::guard_page().map_err(|e| e.to_string())?;
    let tail = map + page - size_of::<VmmCaps>() / 2;
    expect_errno!(ioctl_raw(v.as_fd(), VMM_GET_CAPS, tail), libc::EFAULT);
    expect_errno!(ioctl_raw(v.as_fd(), VMM_CREATE_VM, tail), libc::EFAULT);
    ensure!(v.list_vms().map_err(|e| e.to_string())?.is_empty(), "a VM appeared");
    Ok(Pass)
}

/// A create request with `name` copied in raw.
fn raw_create(name: &[u8]) -> VmmCreateVm {
    let mut req = VmmCreateVm::ZERO;
    req.name[..name.len()].copy_from_slice(name);
    req
}

pub fn bad_names_are_einval() -> TestResult {
    let v = vmm()?;
    let mut cases = vec![
        raw_create(b""),
        raw_create(&[b'a'; VMM_NAME_MAX]),
        raw_create(b"has space"),
        raw_create(b"slash/y"),
        raw_create(b".hidden"),
        raw_create(b"nul\0after"),
        raw_create("caf\u{e9}".as_bytes()),
    ];
    let mut tail = raw_create(b"ok");
    tail.name[VMM_NAME_MAX - 1] = b'x';
    tail.name[3] = b'z';
    cases.push(tail);
    for mut req in cases {
        expect_errno!(ioctl_ptr(v.as_fd(), VMM_CREATE_VM, &mut req), libc::EINVAL);
    }
    // The longest legal name works.
    let mut longest = raw_create(&[b'n'; VMM_NAME_MAX - 1]);
    let fd = ioctl_ptr(v.as_fd(), VMM_CREATE_VM, &mut longest).map_err(|e| e.to_string())?;
    drop(libvmm::sys::adopt_fd(fd));
    v.destroy_vm(&"n".repeat(VMM_NAME_MAX - 1)).map_err(|e| e.to_string())?;
    ensure!(v.list_vms().map_err(|e| e.to_string())?.is_empty(), "VMs left behind");
    Ok(Pass)
}

pub fn reserved_fields_and_flags_are_einval() -> TestResult {
    let v = vmm()?;
    let mut req = raw_create(b"rsv");
    req.flags = 1 << 7;
    expect_errno!(ioctl_ptr(v.as_fd(), VMM_CREATE_VM, &mut req), libc::EINVAL);
    for i in 0..6 {
        let mut req = raw_create(b"rsv");
        req.reserved[i] = 1;
        expect_errno!(ioctl_ptr(v.as_fd(), VMM_CREATE_VM, &mut req), libc::EINVAL);
    }
    let _vm = v.create_vm("rsv", CreateFlags::DESTROY_ON_CLOSE).map_err(|e| e.to_string())?;
    for cmd in [VMM_OPEN_VM, VMM_DESTROY_VM] {
        let mut n = VmmVmName { name: make_name(b"rsv").unwrap(), ..VmmVmName::ZERO };
        n.flags = 1;
        expect_errno!(ioctl_ptr(v.as_fd(), cmd, &mut n), libc::EINVAL);
        n.flags = 0;
        n.reserved = 0x8000_0000;
        expect_errno!(ioctl_ptr(v.as_fd(), cmd, &mut n), libc::EINVAL);
    }
    let mut list = VmmVmList { count: 4, reserved: 1, ..VmmVmList::ZERO };
    expect_errno!(ioctl_ptr(v.as_fd(), VMM_LIST_VMS, &mut list), libc::EINVAL);
    ensure!(v.list_vms().map_err(|e| e.to_string())?.len() == 1, "reserved check had effects");
    Ok(Pass)
}

pub fn random_ioctls_never_succeed_wrongly() -> TestResult {
    // Every command in our space with random direction, size and address:
    // the kernel must answer with an errno, and only the documented ones.
    let v = vmm()?;
    let mut rng = crate::Rng(0x5eed_1234_abcd_0001);
    let mut buf = vec![0u8; 1 << 14];
    let known: Vec<u32> = IOCTLS.iter().map(|(_, c)| *c).collect();
    let mut tried = 0;
    while tried < 4000 {
        let (dir, size, nr) = (rng.next_u64() % 4, rng.next_u64() % 300, rng.next_u64() % 256);
        let cmd = (dir << 30 | size << 16 | nr) as u32 | (VMM_IOC_MAGIC << 8);
        if known.contains(&cmd) {
            continue;
        }
        tried += 1;
        let addr = match rng.next_u64() % 3 {
            0 => buf.as_mut_ptr() as usize,
            1 => 0,
            _ => rng.next_u64() as usize,
        };
        expect_errno!(ioctl_raw(v.as_fd(), cmd, addr), libc::ENOTTY);
    }
    ensure!(v.list_vms().map_err(|e| e.to_string())?.is_empty(), "a VM appeared");
    Ok(Pass)
}
