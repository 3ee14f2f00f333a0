// SPDX-License-Identifier: MIT OR Apache-2.0

//! The local APIC's ioctls and the halt rules: events the test raises
//! (`VMM_VCPU_EVENT`, `VMM_VM_MSI`) reach the guest and wake it from an
//! in-kernel HLT; bad arguments are `EINVAL` and change nothing;
//! `VMM_OPTION_HLT_EXIT` round-trips; a VM whose vCPUs all halt with
//! interrupts off, or wait for SIPI, suspends.

use std::os::fd::AsFd;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use libvmm::sys::ioctl_ptr;
use libvmm::uapi::*;
use libvmm::Exit;

use super::apic_rt::{
    delay_us, expect_count, expect_counts, expect_eax, handled, rt_call, APIC_BASE, GP_ERR, GP_RIP,
    NMI_FROM, NMI_HLT,
};
use super::apic_vm::{bsp_pass, bsp_run, expect_halt_suspended, run_all, watched, ApEnd, ApicVm};
use crate::guest::{complete, describe, s, Next, TestVm, LOAD};
use crate::mem::expect_efault;
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload, sym};

/// The port a guest writes to ask the test for event number EAX.
const PORT_EVENT: u32 = 0xe4;
/// How long the event thread waits before it raises an event, so that the
/// guest is usually halted by then.
const EVENT_DELAY: Duration = Duration::from_millis(20);

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_events_start, vmm_guest_apic_events_end",
    ".globl vmm_guest_apic_events_gp",
    "vmm_guest_apic_events_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    // LVT LINT0: fixed, edge, unmasked, vector 0x62.
    "movl $0x62, 0x350(%r15)",
    // 1. A FIXED event (0x60) wakes `sti; hlt`. Until the STI it waits in
    // IRR, so it may come before the HLT.
    "movl $1, %eax",
    "outl %eax, ${ev}",
    "sti",
    "hlt",
    "cli",
    expect_count!("0x60", "1", "0x601"),
    // 2. An NMI event wakes it too. One that comes before the HLT makes
    // the handler skip it (NMI_FROM to NMI_HLT).
    "leaq 61f(%rip), %rax",
    "movq %rax, {nmi_from}",
    "leaq 62f(%rip), %rax",
    "movq %rax, {nmi_hlt}",
    "movl $2, %eax",
    "outl %eax, ${ev}",
    "61: sti",
    "62: hlt",
    "cli",
    "movq $0, {nmi_from}",
    "movq $0, {nmi_hlt}",
    expect_count!("2", "1", "0x602"),
    // 3. The test raises #GP with error code 0x18 before it completes this
    // OUT: the handler sees the code and the RIP after the OUT.
    "movl $3, %eax",
    "outl %eax, ${ev}",
    "vmm_guest_apic_events_gp:",
    expect_count!("13", "1", "0x603"),
    "movl {gp_err}, %eax",
    expect_eax!("0x18", "0x604"),
    // 4. An MSI to APIC ID 0, vector 0x61.
    "movl $4, %eax",
    "outl %eax, ${ev}",
    "sti",
    "hlt",
    "cli",
    expect_count!("0x61", "1", "0x605"),
    // 5. A LINT0 pulse: vector 0x62 through the LVT.
    "movl $5, %eax",
    "outl %eax, ${ev}",
    "sti",
    "hlt",
    "cli",
    expect_count!("0x62", "1", "0x606"),
    asm_pass!(),
    "vmm_guest_apic_events_end:",
    ".popsection",
    ev = const PORT_EVENT,
    nmi_from = const NMI_FROM,
    nmi_hlt = const NMI_HLT,
    gp_err = const GP_ERR,
    options(att_syntax)
);

/// Raises the event the guest asked for with `step` (all but 3, which the
/// vCPU thread raises itself), after [`EVENT_DELAY`].
fn raise(t: &TestVm, step: u64) -> Result<(), String> {
    thread::sleep(EVENT_DELAY);
    let r = match step {
        1 => t.vcpu.event(VMM_EVENT_FIXED, 0x60, 0, 0),
        2 => t.vcpu.event(VMM_EVENT_NMI, 0, 0, 0),
        4 => t.vm.msi(APIC_BASE, 0x61),
        5 => t.vcpu.event(VMM_EVENT_LINT, 0, 0, 0),
        _ => return Err(format!("the guest asked for unknown event {step}")),
    };
    r.map_err(|e| format!("event {step}: {e}"))
}

pub fn apic_event_ioctls() -> TestResult {
    let p = payload!(vmm_guest_apic_events_start, vmm_guest_apic_events_end);
    let v = ApicVm::new("apic-events", 1, &p)?;
    let t = &v.t;
    let after_gp = p.addr(sym!(vmm_guest_apic_events_gp), LOAD);
    let (r, _) = run_all(&v, |w| {
        let (tx, rx) = mpsc::channel::<u64>();
        thread::scope(|sc| {
            let raiser = sc.spawn(move || {
                for step in rx {
                    if let Err(e) = raise(t, step) {
                        w.stop();
                        return Err(e);
                    }
                }
                Ok(())
            });
            let r = bsp_run(t, |x, e| match x {
                Exit::Inout(io) if io.port == PORT_EVENT && io.size == 4 && io.flags == 0 => {
                    if io.value == 3 {
                        let ev = t.vcpu.event(VMM_EVENT_EXCEPTION, 13, VMM_EVENT_ERROR_CODE, 0x18);
                        s(ev)?;
                    } else {
                        tx.send(io.value).map_err(|_| "the event thread is gone".to_string())?;
                    }
                    Ok(Next::Enter(complete(0)))
                }
                _ => Err(format!("unexpected exit {}", describe(e))),
            });
            drop(tx);
            let raised = raiser.join().map_err(|_| "the event thread panicked".to_string())?;
            match (r, raised) {
                (Ok(r), Ok(())) => Ok(r),
                (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
                (Err(e), Err(f)) => Err(format!("{e}\n{f}")),
            }
        })
    })?;
    ensure!(r.passed, "stopped at {}", describe(&r.exit));
    expect_counts(t, &[(0x60, 1), (2, 1), (13, 1), (0x61, 1), (0x62, 1)])?;
    let order = handled(t)?;
    ensure!(order == [0x60, 0x61, 0x62], "vectors handled in the order {order:#x?}");
    let (err, rip) = (t.read_u64(GP_ERR)?, t.read_u64(GP_RIP)?);
    ensure!(
        err == 0x18 && rip == after_gp,
        "#GP error {err:#x} at {rip:#x}, want 0x18 at {after_gp:#x}"
    );
    Ok(Pass)
}

// --- bad input ---------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_quiet_start, vmm_guest_apic_quiet_end",
    "vmm_guest_apic_quiet_start:",
    ".code64",
    // With the APIC and both LINT pins on (vectors 0x70, 0x71) and IF = 1,
    // nothing comes for 1 ms: no refused event was delivered after all.
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "movl $0x70, 0x350(%r15)",
    "movl $0x71, 0x360(%r15)",
    "sti",
    delay_us!("1000"),
    "cli",
    asm_pass!(),
    "vmm_guest_apic_quiet_end:",
    ".popsection",
    options(att_syntax)
);

/// `VMM_VCPU_EVENT` arguments that are `EINVAL`: what, kind, vector,
/// flags, error.
const BAD_EVENTS: [(&str, u32, u32, u32, u32); 18] = [
    ("kind 4", 4, 0x40, 0, 0),
    ("kind u32::MAX", u32::MAX, 0x40, 0, 0),
    ("FIXED with flag bit 3", VMM_EVENT_FIXED, 0x40, 1 << 3, 0),
    ("FIXED with flag bit 31", VMM_EVENT_FIXED, 0x40, 1 << 31, 0),
    ("FIXED vector 0", VMM_EVENT_FIXED, 0, 0, 0),
    ("FIXED vector 15", VMM_EVENT_FIXED, 15, 0, 0),
    ("FIXED vector 256", VMM_EVENT_FIXED, 256, 0, 0),
    ("FIXED with an error but no ERROR_CODE", VMM_EVENT_FIXED, 0x40, 0, 1),
    ("NMI vector 1", VMM_EVENT_NMI, 1, 0, 0),
    ("NMI vector 2", VMM_EVENT_NMI, 2, 0, 0),
    ("LINT pin 2", VMM_EVENT_LINT, 2, 0, 0),
    ("LINT pin u32::MAX", VMM_EVENT_LINT, u32::MAX, 0, 0),
    ("EXCEPTION vector 2", VMM_EVENT_EXCEPTION, 2, 0, 0),
    ("EXCEPTION vector 32", VMM_EVENT_EXCEPTION, 32, 0, 0),
    ("EXCEPTION vector 255", VMM_EVENT_EXCEPTION, 255, 0, 0),
    ("EXCEPTION with an error but no ERROR_CODE", VMM_EVENT_EXCEPTION, 13, 0, 0x18),
    ("EXCEPTION with flag bit 3", VMM_EVENT_EXCEPTION, 13, 1 << 3, 0),
    ("EXCEPTION with flag bit 31", VMM_EVENT_EXCEPTION, 13, 1 << 31, 0),
];

/// MSI addresses that are `EINVAL` (outside 0xFEE00000-0xFEEFFFFF).
const BAD_MSI_ADDRESSES: [u64; 7] =
    [0, 0xfed0_0000, 0xfedf_ffff, 0xfef0_0000, 0xffff_ffff, 0x1_fee0_0000, u64::MAX];

/// Every refused option access on `t`'s vCPU 0, which must keep option
/// value 0 through them.
fn bad_options(t: &TestVm) -> Result<(), String> {
    let v = &t.vcpu;
    for opt in [0, VMM_OPTION_HLT_EXIT + 1, 0xff, u32::MAX] {
        expect_errno_of(v.option(opt), libc::EINVAL, &format!("GET_OPTION {opt:#x}"))?;
        for value in [0, 1] {
            let what = format!("SET_OPTION {opt:#x} = {value}");
            expect_errno_of(v.set_option(opt, value), libc::EINVAL, &what)?;
        }
    }
    for value in [2, 0xff, 1 << 32, u64::MAX] {
        let what = format!("SET_OPTION HLT_EXIT = {value:#x}");
        expect_errno_of(v.set_option(VMM_OPTION_HLT_EXIT, value), libc::EINVAL, &what)?;
    }
    let fd = v.as_fd();
    let mut get = VmmOption { option: VMM_OPTION_HLT_EXIT, reserved: 1, value: 0 };
    expect_errno_of(ioctl_ptr(fd, VMM_VCPU_GET_OPTION, &mut get), libc::EINVAL, "GET reserved")?;
    let mut set = VmmOption { option: VMM_OPTION_HLT_EXIT, reserved: 1, value: 1 };
    expect_errno_of(ioctl_ptr(fd, VMM_VCPU_SET_OPTION, &mut set), libc::EINVAL, "SET reserved")?;
    expect_efault(fd, VMM_VCPU_GET_OPTION, "GET_OPTION")?;
    expect_efault(fd, VMM_VCPU_SET_OPTION, "SET_OPTION")?;
    let value = s(v.option(VMM_OPTION_HLT_EXIT))?;
    ensure!(value == 0, "refused SET_OPTIONs left HLT_EXIT at {value}");
    Ok(())
}

/// Every refused event and MSI on `t`.
fn bad_events(t: &TestVm) -> Result<(), String> {
    for (what, kind, vector, flags, error) in BAD_EVENTS {
        expect_errno_of(t.vcpu.event(kind, vector, flags, error), libc::EINVAL, what)?;
    }
    expect_efault(t.vcpu.as_fd(), VMM_VCPU_EVENT, "EVENT")?;
    for address in BAD_MSI_ADDRESSES {
        expect_errno_of(t.vm.msi(address, 0x41), libc::EINVAL, &format!("MSI at {address:#x}"))?;
    }
    for flags in [1, 1 << 31] {
        let mut a = VmmMsi { address: APIC_BASE, data: 0x41, flags };
        let what = format!("MSI flags {flags:#x}");
        expect_errno_of(ioctl_ptr(t.vm.as_fd(), VMM_VM_MSI, &mut a), libc::EINVAL, &what)?;
    }
    expect_efault(t.vm.as_fd(), VMM_VM_MSI, "MSI")
}

pub fn apic_bad_input() -> TestResult {
    let p = payload!(vmm_guest_apic_quiet_start, vmm_guest_apic_quiet_end);
    let v = ApicVm::new("apic-bad", 1, &p)?;
    let t = &v.t;
    // The option round-trips: 0 by default, then 1, then 0 again.
    let got = s(t.vcpu.option(VMM_OPTION_HLT_EXIT))?;
    ensure!(got == 0, "HLT_EXIT is {got} on a new vCPU, want 0");
    for value in [1, 0] {
        s(t.vcpu.set_option(VMM_OPTION_HLT_EXIT, value))?;
        let got = s(t.vcpu.option(VMM_OPTION_HLT_EXIT))?;
        ensure!(got == value, "HLT_EXIT reads {got} after setting {value}");
    }
    bad_options(t)?;
    bad_events(t)?;
    // Nothing refused reaches the guest.
    run_all(&v, |_| bsp_pass(t))?;
    expect_counts(t, &[])?;
    // The same ioctls with good arguments succeed.
    let good = [
        (VMM_EVENT_FIXED, 16, 0, 0),
        (VMM_EVENT_FIXED, 0xff, VMM_EVENT_LEVEL, 0),
        (VMM_EVENT_NMI, 0, 0, 0),
        (VMM_EVENT_LINT, 1, 0, 0),
        (VMM_EVENT_EXCEPTION, 13, VMM_EVENT_ERROR_CODE, 0x18),
    ];
    for (kind, vector, flags, error) in good {
        let r = t.vcpu.event(kind, vector, flags, error);
        s(r).map_err(|e| format!("event {kind} vector {vector:#x} flags {flags:#x}: {e}"))?;
    }
    for address in [APIC_BASE, APIC_BASE | 0xf_f000] {
        s(t.vm.msi(address, 0x41)).map_err(|e| format!("MSI at {address:#x}: {e}"))?;
    }
    Ok(Pass)
}

// --- halting -------------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_cli_hlt_start, vmm_guest_apic_cli_hlt_end",
    ".globl vmm_guest_apic_sti_hlt_start, vmm_guest_apic_sti_hlt_end",
    "vmm_guest_apic_cli_hlt_start:",
    ".code64",
    "cli",
    "1: hlt",
    "jmp 1b",
    "vmm_guest_apic_cli_hlt_end:",
    "vmm_guest_apic_sti_hlt_start:",
    "sti",
    "2: hlt",
    "jmp 2b",
    "vmm_guest_apic_sti_hlt_end:",
    ".popsection",
    options(att_syntax)
);

/// Runs vCPU 0 of `v` once (APs on their threads), under the watchdog.
fn run_bsp_once(v: &ApicVm) -> Result<VmmExit, String> {
    let (e, aps) = run_all(v, |_| s(v.t.vcpu.run()))?;
    for ap in aps {
        ensure!(ap.end == ApEnd::Suspended(VMM_SUSPEND_HALT), "vCPU {} ended {:?}", ap.id, ap.end);
    }
    Ok(e)
}

pub fn apic_all_halted_suspends() -> TestResult {
    let cli_hlt = payload!(vmm_guest_apic_cli_hlt_start, vmm_guest_apic_cli_hlt_end);
    let sti_hlt = payload!(vmm_guest_apic_sti_hlt_start, vmm_guest_apic_sti_hlt_end);
    // One vCPU halts with IF = 0: the VM suspends, and stays suspended.
    let v = ApicVm::new("apic-halt-1", 1, &cli_hlt)?;
    expect_halt_suspended(&run_bsp_once(&v)?, 1)?;
    expect_halt_suspended(&run_bsp_once(&v)?, 1)?;
    // With VMM_OPTION_HLT_EXIT the same guest exits with HLT instead, again
    // and again.
    let v = ApicVm::new("apic-halt-exit", 1, &cli_hlt)?;
    s(v.t.vcpu.set_option(VMM_OPTION_HLT_EXIT, 1))?;
    for _ in 0..2 {
        let e = run_bsp_once(&v)?;
        ensure!(e.reason == exit::HLT && e.rip == LOAD + 2, "with HLT_EXIT: {}", describe(&e));
    }
    // Two vCPUs, the AP waiting for SIPI inside its run: both runs end
    // suspended.
    let v = ApicVm::new("apic-halt-2", 2, &cli_hlt)?;
    expect_halt_suspended(&run_bsp_once(&v)?, 1)?;
    // The same when the AP has never run; it finds the VM suspended.
    let v = ApicVm::new("apic-halt-2-idle", 2, &cli_hlt)?;
    let e = watched(vec![&v.t.vcpu], |_| v.t.vcpu.run());
    expect_halt_suspended(&s(e)?, 1)?;
    let e = watched(vec![&v.aps[0]], |_| v.aps[0].run());
    let e = s(e)?;
    ensure!(
        matches!(Exit::decode(&e), Exit::Suspended(su) if su.how == VMM_SUSPEND_HALT),
        "the AP's run after the suspension: {}",
        describe(&e)
    );
    // HLT with IF = 1 and nothing to come does not suspend: the run waits
    // until a kick.
    let v = ApicVm::new("apic-halt-sti", 1, &sti_hlt)?;
    let e = watched(vec![&v.t.vcpu], |_| {
        thread::scope(|sc| {
            let h = sc.spawn(|| v.t.vcpu.run());
            thread::sleep(Duration::from_millis(50));
            let kicked = v.t.vcpu.kick();
            let r = h.join().map_err(|_| "the vCPU thread panicked".to_string())?;
            s(kicked)?;
            s(r)
        })
    })?;
    ensure!(e.reason == exit::KICKED, "sti; hlt: {}, want KICKED after 50 ms", describe(&e));
    Ok(Pass)
}
