// SPDX-License-Identifier: MIT OR Apache-2.0

//! What VT-x adds: the negotiated controls, the `l1d_flush` parameter, and
//! the CR4 constraint of owning VMX from a module (see
//! `Documentation/ownership.rst`): a guest keeps running while the host
//! rewrites CR4 from its shadow on the same CPU.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use libvmm::setup::Mode;
use libvmm::uapi::*;

use crate::guest::{s, TestVm};
use crate::kmod::{self, Kmsg, VMM_KO};
use crate::tap::{skip, Outcome::Pass, TestResult};
use crate::tests::run;
use crate::{asm_debug, asm_pass, ensure, expect_errno, payload, vmm};

fn is_vmx() -> Result<bool, String> {
    let caps = s(vmm()?.caps())?;
    Ok(caps.backend == Backend::Vmx as u32)
}

/// Unloads vmm if loaded, loads it with `params`, and returns the log lines
/// the load printed.
fn reload(params: &str) -> Result<Vec<String>, String> {
    if kmod::loaded("vmm") {
        s(kmod::unload("vmm"))?;
    }
    let mut log = s(Kmsg::tail())?;
    s(kmod::load(VMM_KO, params))?;
    Ok(log.read())
}

/// The load-time control negotiation is logged, and agrees with the
/// features `VMM_GET_CAPS` reports.
pub fn vmx_controls_are_negotiated_and_logged() -> TestResult {
    if !is_vmx()? {
        return Err(skip("AMD-V machine"));
    }
    let lines = reload("")?;
    let line = lines.iter().find(|l| l.contains("VT-x: unrestricted guest"));
    ensure!(line.is_some(), "no negotiation line in {lines:?}");
    let line = line.unwrap();
    let f = Features::from_bits_retain(s(vmm()?.caps())?.features);
    let ug = f.contains(Features::UNRESTRICTED_GUEST);
    let vpid = f.contains(Features::TAGGED_TLB);
    ensure!(
        line.contains(&format!("unrestricted guest {}", if ug { "yes" } else { "no" })),
        "{line}"
    );
    ensure!(line.contains(&format!("VPID {}", if vpid { "yes" } else { "no" })), "{line}");
    // Bochs's skylake-x has both (TESTBED.md), and so does every CPU the
    // bar names.
    ensure!(ug && vpid, "expected unrestricted guest and VPID: {line}");
    Ok(Pass)
}

/// Real mode and protected mode without paging run directly under
/// unrestricted guest: the VT-x CPUs of the test bed have it, and guests
/// in both modes run to completion (CR0.PE and PG clear, then PE alone).
pub fn unrestricted_guest_runs_real_and_unpaged_modes() -> TestResult {
    if !is_vmx()? {
        return Err(skip("AMD-V machine"));
    }
    let f = Features::from_bits_retain(s(vmm()?.caps())?.features);
    ensure!(f.contains(Features::UNRESTRICTED_GUEST), "no unrestricted guest in {f:?}");
    run::real_mode_guest_sums()?;
    run::protected_mode_guest_sums()?;
    Ok(Pass)
}

fn param() -> Result<String, String> {
    let p = "/sys/module/vmm/parameters/l1d_flush";
    Ok(s(std::fs::read_to_string(p))?.trim().to_string())
}

/// `l1d_flush`: a bad value refuses the load; `on` flushes before every
/// entry and guests in all modes still run; `off` is accepted.
pub fn l1d_flush_on_runs_guests() -> TestResult {
    if kmod::loaded("vmm") {
        s(kmod::unload("vmm"))?;
    }
    let mut log = s(Kmsg::tail())?;
    expect_errno!(kmod::load(VMM_KO, "l1d_flush=sometimes"), libc::EINVAL);
    ensure!(
        log.saw("l1d_flush must be auto, on or off").is_some(),
        "no reason logged for the bad value"
    );
    ensure!(!kmod::loaded("vmm"), "loaded with a bad l1d_flush");
    // Longer than the parameter's buffer: refused by the kernel itself.
    expect_errno!(kmod::load(VMM_KO, "l1d_flush=sometimes-but-not-always"), libc::ENOSPC);
    ensure!(!kmod::loaded("vmm"), "loaded with an overlong l1d_flush");

    let lines = reload("l1d_flush=on")?;
    ensure!(param()? == "on", "parameter reads {:?}", param()?);
    if is_vmx()? {
        ensure!(
            lines.iter().any(|l| l.contains("L1D flush on entry on")),
            "flush not on: {lines:?}"
        );
    }
    run::real_mode_guest_sums()?;
    run::protected_mode_guest_sums()?;
    run::long_mode_guest_sums_and_pages()?;
    run::port_io_all_widths()?;

    let lines = reload("l1d_flush=off")?;
    if is_vmx()? {
        ensure!(
            lines.iter().any(|l| l.contains("L1D flush on entry off")),
            "flush not off: {lines:?}"
        );
    }
    run::long_mode_guest_sums_and_pages()?;
    // Back to the default for the tests that follow.
    reload("")?;
    ensure!(param()? == "auto", "default parameter reads {:?}", param()?);
    Ok(Pass)
}

/// How many CPUID exits the CR4 stress guest makes between reports.
const CPUID_PER_REPORT: u32 = 50;
/// How many reports (exits to userspace) it makes.
const REPORTS: u32 = 40;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_cpuid_loop_start, vmm_guest_cpuid_loop_end",
    "vmm_guest_cpuid_loop_start:",
    ".code64",
    "movl ${reports}, %esi",
    "1: movl ${per}, %edi",
    "2: xorl %eax, %eax",
    "cpuid",
    "decl %edi",
    "jnz 2b",
    "movl %esi, %eax",
    asm_debug!(),
    "decl %esi",
    "jnz 1b",
    asm_pass!(),
    "vmm_guest_cpuid_loop_end:",
    ".popsection",
    reports = const REPORTS,
    per = const CPUID_PER_REPORT,
    options(att_syntax)
);

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_icebp_start, vmm_guest_icebp_end",
    "vmm_guest_icebp_start:",
    ".code16",
    "xorw %ax, %ax",
    "movw %ax, %ds",
    "movw ${load} + 1f - vmm_guest_icebp_start, 4",
    "movw $0, 6",
    ".byte 0xf1",
    "movl $0x1234, %eax",
    asm_debug!(),
    asm_pass!(),
    "1: movl $0xdb, %eax",
    asm_debug!(),
    "iret",
    "vmm_guest_icebp_end:",
    ".popsection",
    load = const crate::guest::LOAD,
    options(att_syntax)
);

/// ICEBP (INT1) raises #DB as a privileged software exception. vmm
/// intercepts #DB (so its delivery cannot loop without exits) and must
/// deliver it as it came: the guest's handler runs once and returns past
/// the ICEBP.
pub fn icebp_reaches_the_guest_handler_once() -> TestResult {
    let t =
        TestVm::new("icebp", Mode::Real, &payload!(vmm_guest_icebp_start, vmm_guest_icebp_end))?;
    let debug = t.run_to_pass()?;
    ensure!(
        debug == [0xdb, 0x1234],
        "debug {debug:#x?}, want the handler once, then the code after ICEBP"
    );
    Ok(Pass)
}

/// Pins the calling thread to CPU `cpu`.
fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch it and the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(format!("sched_setaffinity: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The CR4-shadow constraint (TESTBED.md): while a vCPU thread enters and
/// leaves the guest thousands of times, another thread on the same CPU
/// toggles `prctl(PR_SET_TSC)`, so the kernel rewrites CR4.TSD from its
/// shadow on that CPU on every switch between the two. A window the kernel
/// could observe would lose CR4.VMXE (a #GP in VMX operation). The guest
/// must finish with every report in order and the log must stay clean.
pub fn cr4_rewrites_while_a_guest_runs() -> TestResult {
    let t = TestVm::new(
        "cr4-stress",
        Mode::Long64,
        &payload!(vmm_guest_cpuid_loop_start, vmm_guest_cpuid_loop_end),
    )?;
    pin(0)?;
    let stop = Arc::new(AtomicBool::new(false));
    let toggles = Arc::new(AtomicU64::new(0));
    let toggler = {
        let (stop, toggles) = (stop.clone(), toggles.clone());
        thread::spawn(move || -> Result<(), String> {
            pin(0)?;
            let mut on = false;
            while !stop.load(SeqCst) {
                let mode = if on { libc::PR_TSC_ENABLE } else { libc::PR_TSC_SIGSEGV };
                // SAFETY: PR_SET_TSC only changes this thread's TSC mode;
                // this thread never reads the TSC.
                if unsafe { libc::prctl(libc::PR_SET_TSC, mode, 0, 0, 0) } != 0 {
                    return Err(format!("prctl: {}", std::io::Error::last_os_error()));
                }
                on = !on;
                toggles.fetch_add(1, SeqCst);
                thread::yield_now();
            }
            Ok(())
        })
    };
    let result = t.run_to_pass();
    stop.store(true, SeqCst);
    let toggled = toggler.join().map_err(|_| "toggler panicked".to_string())?;
    pin_all()?;
    let debug = result?;
    toggled?;
    let want: Vec<u32> = (1..=REPORTS).rev().collect();
    ensure!(debug == want, "reports {debug:?}, want {want:?}");
    let n = toggles.load(SeqCst);
    ensure!(n >= 2, "CR4.TSD toggled only {n} times");
    Ok(Pass)
}

/// Lets the calling thread run anywhere again.
fn pin_all() -> Result<(), String> {
    // SAFETY: as in `pin`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(format!("sched_setaffinity: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// A VM entry that fails its guest-state checks comes back as a `VMX` exit
/// with the VM-entry-failure bit, not as an error or a host problem: here
/// a TR that is not a busy TSS.
pub fn bad_guest_state_is_a_vmx_exit() -> TestResult {
    if !is_vmx()? {
        return Err(skip("AMD-V machine"));
    }
    let t = TestVm::new(
        "bad-tr",
        Mode::Long64,
        &payload!(vmm_guest_cpuid_loop_start, vmm_guest_cpuid_loop_end),
    )?;
    let mut tr = s(t.vcpu.get_descs(&[reg::TR]))?[0];
    // Type 9: an available 64-bit TSS, which VM entry refuses.
    tr.access = (tr.access & !0xf) | 9;
    s(t.vcpu.set_descs(&[(reg::TR, tr)]))?;
    let r = t.run_to_exit(crate::guest::RUN)?;
    ensure!(r.exit.reason == exit::VMX, "exit {}", crate::guest::describe(&r.exit));
    let v = VmmExitVmx::from_data(&r.exit.data);
    ensure!(
        v.exit_reason == 0x8000_0021,
        "exit reason {:#x}, want entry failure 33",
        v.exit_reason
    );
    // Fixing the state lets the same vCPU run to the end.
    tr.access = (tr.access & !0xf) | 11;
    s(t.vcpu.set_descs(&[(reg::TR, tr)]))?;
    t.run_to_pass()?;
    Ok(Pass)
}
