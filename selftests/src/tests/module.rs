// SPDX-License-Identifier: MIT OR Apache-2.0

//! The module's life: load, refusal, unload rules, and KVM coexistence.

use libvmm::uapi::CreateFlags;

use crate::kmod::{self, Kmsg, VMM_KO};
use crate::tap::{Outcome, Outcome::Pass, TestResult};
use crate::{ensure, expect_errno, vmm};

fn s<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

pub fn loads_and_logs_its_backend() -> TestResult {
    if kmod::loaded("vmm") {
        s(kmod::unload("vmm"))?;
    }
    let mut log = s(Kmsg::tail())?;
    s(kmod::load(VMM_KO, ""))?;
    let lines = log.read();
    let found = lines.iter().find(|l| l.contains("VT-x on ") || l.contains("AMD-V on "));
    ensure!(found.is_some(), "no backend line in {lines:?}");
    ensure!(lines.iter().any(|l| l.contains("features ")), "no feature line");
    ensure!(std::path::Path::new("/dev/vmm").exists(), "/dev/vmm missing");
    // A second load of the same module is refused by the kernel.
    expect_errno!(kmod::load(VMM_KO, ""), libc::EEXIST);
    Ok(Pass)
}

pub fn unload_refused_while_dev_open() -> TestResult {
    let v = vmm()?;
    expect_errno!(kmod::unload("vmm"), libc::EWOULDBLOCK);
    drop(v);
    Ok(Pass)
}

pub fn unload_refused_while_a_vm_exists() -> TestResult {
    {
        let v = vmm()?;
        drop(s(v.create_vm("pinned", CreateFlags::empty()))?);
    }
    // No fd is open on anything, but a named VM holds the module.
    expect_errno!(kmod::unload("vmm"), libc::EWOULDBLOCK);
    ensure!(kmod::loaded("vmm"), "module went away under a VM");
    s(vmm()?.destroy_vm("pinned"))?;
    Ok(Pass)
}

pub fn unload_refused_while_a_vm_fd_is_open() -> TestResult {
    let vm = s(vmm()?.create_vm("held", CreateFlags::empty()))?;
    s(vmm()?.destroy_vm("held"))?;
    // Destroyed, /dev/vmm closed, but the VM fd is open.
    expect_errno!(kmod::unload("vmm"), libc::EWOULDBLOCK);
    drop(vm);
    Ok(Pass)
}

pub fn unload_turns_everything_off() -> TestResult {
    let mut log = s(Kmsg::tail())?;
    s(kmod::unload("vmm"))?;
    ensure!(!kmod::loaded("vmm"), "still loaded");
    ensure!(!std::path::Path::new("/dev/vmm").exists(), "/dev/vmm left behind");
    let line = log.saw("unload: ").ok_or("no unload report")?;
    ensure!(line.contains("no vmm window open; VMX/SVM enabled on 0 of"), "{line}");
    // And it comes back.
    s(kmod::load(VMM_KO, ""))?;
    s(vmm()?.version())?;
    Ok(Pass)
}

/// The vendor's KVM modules, in load order, as the initramfs carries them.
fn kvm_modules() -> Result<Vec<(&'static str, &'static str)>, String> {
    let vendor =
        if std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default().contains("GenuineIntel") {
            ("kvm_intel", "/modules/kvm-intel.ko")
        } else {
            ("kvm_amd", "/modules/kvm-amd.ko")
        };
    let mut mods = Vec::new();
    for m in [("irqbypass", "/modules/irqbypass.ko"), ("kvm", "/modules/kvm.ko"), vendor] {
        if std::path::Path::new(m.1).exists() {
            mods.push(m);
        }
    }
    ensure!(mods.len() >= 2, "KVM modules missing from the initramfs: {mods:?}");
    Ok(mods)
}

fn load_kvm() -> Result<Result<(), String>, String> {
    for (name, path) in kvm_modules()? {
        if let Err(e) = kmod::load(path, "") {
            if e.raw_os_error() != Some(libc::EEXIST) {
                unload_kvm();
                return Ok(Err(format!("{name}: {e}")));
            }
        }
    }
    Ok(Ok(()))
}

fn unload_kvm() {
    for (name, _) in kvm_modules().unwrap_or_default().into_iter().rev() {
        let _ = kmod::unload(name);
    }
}

pub fn kvm_first_then_vmm_is_refused() -> TestResult {
    if kmod::loaded("vmm") {
        s(kmod::unload("vmm"))?;
    }
    if let Err(why) = load_kvm()? {
        s(kmod::load(VMM_KO, ""))?;
        return Ok(Outcome::Skip(format!("KVM does not load on this CPU ({why})")));
    }
    let mut log = s(Kmsg::tail())?;
    let r = kmod::load(VMM_KO, "");
    let line = log.saw("not loading:");
    unload_kvm();
    expect_errno!(r, libc::EBUSY);
    let line = line.ok_or("refusal was not logged")?;
    ensure!(line.contains("already in use by another hypervisor"), "{line}");
    // With KVM gone, vmm loads again.
    s(kmod::load(VMM_KO, ""))?;
    s(vmm()?.version())?;
    Ok(Pass)
}

pub fn vmm_first_then_kvm_coexist() -> TestResult {
    s(kmod::ensure_vmm())?;
    let vm = s(vmm()?.create_vm("with-kvm", CreateFlags::DESTROY_ON_CLOSE))?;
    // vmm holds no VMX/SVM state between windows, so KVM can take it.
    if let Err(why) = load_kvm()? {
        return Ok(Outcome::Skip(format!("KVM does not load on this CPU ({why})")));
    }
    let kvm_ok = std::fs::metadata("/dev/kvm").is_ok();
    let still = vm.name();
    drop(vm);
    // vmm's unload must leave KVM's enabled CPUs alone, and say so.
    let mut log = s(Kmsg::tail())?;
    let unloaded = kmod::unload("vmm");
    let line = log.saw("unload: ");
    unload_kvm();
    s(kmod::load(VMM_KO, ""))?;
    ensure!(kvm_ok, "/dev/kvm missing with kvm loaded");
    ensure!(still.is_ok(), "vmm VM broken by KVM: {still:?}");
    s(unloaded)?;
    let line = line.ok_or("no unload report")?;
    ensure!(line.contains("no vmm window open"), "{line}");
    ensure!(!line.contains("enabled on 0 of"), "KVM's VMX/SVM looks off: {line}");
    Ok(Pass)
}
