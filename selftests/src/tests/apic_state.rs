// SPDX-License-Identifier: MIT OR Apache-2.0

//! Saving and restoring an APIC: `VMM_VCPU_GET/SET_APIC` and
//! `VMM_VCPU_GET/SET_RUN_STATE`.
//!
//! A guest programs its APIC (SVR, TPR, LDR and DFR, a masked LINT0 and
//! error LVT, a periodic timer, and a self-IPI left pending with IF = 0),
//! reports every register it programmed and stops on [`PORT_SAVE`]. The
//! test takes the APIC and run state, builds a second VM from the same
//! memory, tries bad states on it (each `EINVAL`, each leaving the state as
//! it was), sets the saved ones, and lets the guest go on in the second VM
//! at `vmm_guest_apic_save_phase2`: it reads the same registers, and
//! once it sets IF it takes the pending vector and the timer keeps
//! ticking. Guest failures are codes `0x75x`.
//!
//! Finally a vCPU 0 set to `WAIT_SIPI` blocks in `VMM_VCPU_RUN` until it is
//! kicked while another vCPU runs, and suspends the VM when it is alone.

use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use libvmm::sys::ioctl_ptr;
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use super::apic_ap::TEST_DATA;
use super::apic_rt::{counts, handled, rt_call, wait_vec};
use super::apic_vm::{bsp_pass, bsp_run, expect_halt_suspended, run_all, watched, ApicVm};
use crate::guest::{describe, s, Next, LOAD, RAM_LEN};
use crate::mem::expect_efault;
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_debug, asm_pass, ensure, payload, sym};

/// The port the guest writes to have its state taken.
const PORT_SAVE: u32 = 0xe5;
/// u32: how many registers [`REGS`] names.
const NR_REGS: u64 = TEST_DATA;
/// u32s: the offsets of the registers the guest reports, in order.
const REGS: u64 = TEST_DATA + 4;
/// The timer's initial count: 1 ms at the 1 GHz input clock, divide by 1.
const PERIOD: u32 = 1_000_000;

/// The registers the guest reports, and what it programmed into them
/// (`None`: not programmed, only compared between the two VMs).
const REPORTED: [(u32, &str, Option<u32>); 31] = [
    (0x20, "ID", Some(0)),
    (0x30, "version", None),
    (0x80, "TPR", Some(0x20)),
    (0xd0, "LDR", Some(0x3400_0000)),
    (0xe0, "DFR", Some(0x0fff_ffff)),
    (0xf0, "SVR", Some(0x1f7)),
    (0x100, "ISR 0", Some(0)),
    (0x110, "ISR 1", Some(0)),
    (0x120, "ISR 2", Some(0)),
    (0x130, "ISR 3", Some(0)),
    (0x140, "ISR 4", Some(0)),
    (0x150, "ISR 5", Some(0)),
    (0x160, "ISR 6", Some(0)),
    (0x170, "ISR 7", Some(0)),
    (0x180, "TMR 0", Some(0)),
    (0x190, "TMR 1", Some(0)),
    (0x1a0, "TMR 2", Some(0)),
    (0x1b0, "TMR 3", Some(0)),
    (0x1c0, "TMR 4", Some(0)),
    (0x1d0, "TMR 5", Some(0)),
    (0x1e0, "TMR 6", Some(0)),
    (0x1f0, "TMR 7", Some(0)),
    // Vector 0x60, the pending self-IPI.
    (0x230, "IRR 3", Some(1)),
    (0x320, "LVT timer", Some(0x2_0050)),
    (0x330, "LVT thermal", None),
    (0x340, "LVT performance", None),
    (0x350, "LVT LINT0", Some(0x1_2453)),
    (0x360, "LVT LINT1", None),
    (0x370, "LVT error", Some(0x1_0033)),
    (0x380, "timer initial count", Some(PERIOD)),
    (0x3e0, "timer divide", Some(0xb)),
];

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_save_start, vmm_guest_apic_save_end",
    ".globl vmm_guest_apic_save_phase2",
    "vmm_guest_apic_save_start:",
    ".code64",
    rt_call!(init),
    "movl $0x0fffffff, 0xe0(%r15)",
    "movl $0x34000000, 0xd0(%r15)",
    "movl $0x1f7, 0xf0(%r15)",
    "movl $0x20, 0x80(%r15)",
    // LINT0: masked, NMI, active low, vector 0x53; error: masked, 0x33.
    "movl $0x12453, 0x350(%r15)",
    "movl $0x10033, 0x370(%r15)",
    // Timer: divide by 1, periodic, vector 0x50, every PERIOD ns.
    "movl $0xb, 0x3e0(%r15)",
    "movl $0x20050, 0x320(%r15)",
    "movl ${period}, 0x380(%r15)",
    // A self-IPI that waits in IRR: IF = 0.
    "movl $0x40060, 0x300(%r15)",
    "call 50f",
    "movl $1, %eax",
    "outl %eax, ${save}",
    "1: cli",
    "hlt",
    "jmp 1b",
    // The second VM goes on here with the saved APIC.
    "vmm_guest_apic_save_phase2:",
    rt_call!(init),
    "call 50f",
    "sti",
    wait_vec!("0x60", "1", "100", "0x751"),
    wait_vec!("0x50", "3", "200", "0x752"),
    "cli",
    asm_pass!(),
    // Report the registers REGS names, then the timer's current count.
    "50: xorl %ecx, %ecx",
    "51: cmpl {nr_regs}, %ecx",
    "jae 52f",
    "movl {regs}(,%rcx,4), %ebx",
    "movl (%r15,%rbx), %eax",
    asm_debug!(),
    "incl %ecx",
    "jmp 51b",
    "52: movl 0x390(%r15), %eax",
    asm_debug!(),
    "ret",
    "vmm_guest_apic_save_end:",
    ".popsection",
    period = const PERIOD,
    save = const PORT_SAVE,
    nr_regs = const NR_REGS,
    regs = const REGS,
    options(att_syntax)
);

/// A VM running the save payload, with [`REGS`] filled in.
fn save_vm(name: &str, n: u32) -> Result<ApicVm, String> {
    let p = payload!(vmm_guest_apic_save_start, vmm_guest_apic_save_end);
    let v = ApicVm::new(name, n, &p)?;
    let offsets: Vec<u8> = REPORTED.iter().flat_map(|r| r.0.to_le_bytes()).collect();
    v.t.write(NR_REGS, &(REPORTED.len() as u32).to_le_bytes())?;
    v.t.write(REGS, &offsets)?;
    Ok(v)
}

/// Checks one report of the guest (the registers of [`REPORTED`], then the
/// current count) against what it programmed; returns the registers.
fn check_report(debug: &[u32], vm: &str) -> Result<Vec<u32>, String> {
    ensure!(debug.len() == REPORTED.len() + 1, "{vm}: guest reported {debug:#x?}");
    for ((off, name, want), &got) in REPORTED.iter().zip(debug) {
        if let Some(want) = want {
            ensure!(got == *want, "{vm}: {name} ({off:#x}) reads {got:#x}, want {want:#x}");
        }
    }
    let current = debug[REPORTED.len()];
    ensure!(
        (1..=PERIOD).contains(&current),
        "{vm}: the timer's current count is {current}, want 1 to {PERIOD}"
    );
    Ok(debug[..REPORTED.len()].to_vec())
}

/// The fields of two APIC states that differ, ignoring those that move
/// with time: when it was taken, the timer's counting state and next
/// expiry, and the timer's vector (0x50) in IRR.
fn differences(a: &VmmApicState, b: &VmmApicState) -> Vec<String> {
    let timeless = |s: &VmmApicState| {
        let mut s = *s;
        s.taken_at = 0;
        s.timer_start = 0;
        s.timer_count = 0;
        s.timer_next = 0;
        s.irr[2] &= !(1 << 16);
        s
    };
    let (a, b) = (timeless(a), timeless(b));
    if a == b {
        return Vec::new();
    }
    vec![format!("{a:#x?}\nversus\n{b:#x?}")]
}

/// A change to a good APIC state, named.
type Mutation = (&'static str, fn(&mut VmmApicState));

/// States `VMM_VCPU_SET_APIC` must refuse: each a change to the good state
/// the guest produced (xAPIC, software-enabled, periodic timer running,
/// vector 0x60 pending).
const BAD_STATES: [Mutation; 29] = [
    ("version 0", |s| s.version = 0),
    ("version 2", |s| s.version = 2),
    ("reserved[0] set", |s| s.reserved[0] = 1),
    ("reserved[3] set", |s| s.reserved[3] = 1 << 31),
    ("index 1 on vCPU 0", |s| s.index = 1),
    ("initial_id 1 on vCPU 0", |s| s.initial_id = 1),
    ("xapic_id wider than 8 bits", |s| s.xapic_id = 0x100),
    ("tpr wider than 8 bits", |s| s.tpr = 0x120),
    ("IA32_APIC_BASE reserved bit 0", |s| s.apic_base |= 1),
    ("IA32_APIC_BASE reserved bit 9", |s| s.apic_base |= 1 << 9),
    ("IA32_APIC_BASE bit 63", |s| s.apic_base |= 1 << 63),
    ("IA32_APIC_BASE EXTD without EN", |s| s.apic_base = s.apic_base & !0x800 | 0x400),
    ("x2APIC mode with an xAPIC LDR", |s| s.apic_base |= 0xc00),
    ("DFR model bits clear", |s| s.dfr = 0x0fff_fff0),
    ("SVR reserved bit 16", |s| s.svr |= 1 << 16),
    ("ICR low reserved bit 20", |s| s.icr |= 1 << 20),
    ("ESR reserved bit 31", |s| s.esr |= 1 << 31),
    ("timer divide reserved bit 4", |s| s.timer_dcr |= 1 << 4),
    ("IRR vector 5", |s| s.irr[0] |= 1 << 5),
    ("ISR vector 0", |s| s.isr[0] |= 1),
    ("TMR vector 15", |s| s.tmr[0] |= 1 << 15),
    ("LVT timer reserved bit 19", |s| s.lvt[1] |= 1 << 19),
    ("LVT LINT0 delivery status set", |s| s.lvt[4] |= 1 << 12),
    ("LVT LINT0 remote IRR while edge-triggered", |s| s.lvt[4] = 0x4053),
    ("timer LVT unmasked while software-disabled", |s| s.svr &= !0x100),
    ("timer expiry at taken_at", |s| s.timer_next = s.taken_at),
    ("timer expiry beyond its count", |s| s.timer_next = s.taken_at + (1 << 40)),
    ("timer count above its initial count", |s| s.timer_count = s.timer_initial + 1),
    ("TSC deadline set in periodic mode", |s| s.tsc_deadline = s.taken_at + 1000),
];

/// More states it must refuse: INIT/SIPI and pin state, and a disabled
/// APIC holding state.
const BAD_RUN_STATES: [Mutation; 6] = [
    ("activity 2", |s| s.activity = 2),
    ("a SIPI latched while running without INIT", |s| s.sipi = 0x30),
    ("SIPI vector 0x101", |s| s.sipi = 0x101),
    ("latched bit 4", |s| s.latched |= 1 << 4),
    ("LINT level bit 2", |s| s.lint |= 1 << 2),
    ("a disabled APIC with IRR and a timer", |s| s.apic_base &= !0x800),
];

/// States it takes although they look odd: a TMR bit with nothing in ISR
/// or IRR (left by a level-triggered interrupt after its EOI), and a
/// masked LVT entry with a vector below 16 (the error comes when it
/// fires). The model refuses neither.
const ODD_STATES: [Mutation; 2] = [
    ("TMR vector 0x70 alone", |s| s.tmr[3] |= 1 << 16),
    ("masked LVT error vector 3", |s| s.lvt[6] = 0x1_0003),
];

/// Every refused `VMM_VCPU_SET_APIC` and `SET_RUN_STATE` on `vcpu`, whose
/// states must stay as they were; `good` is a state it would take.
fn bad_input(vcpu: &VcpuFd, good: &VmmApicState) -> Result<(), String> {
    let before = s(vcpu.apic_state())?;
    let run_before = s(vcpu.run_state())?;
    for (what, change) in BAD_STATES.iter().chain(&BAD_RUN_STATES) {
        let mut bad = *good;
        change(&mut bad);
        expect_errno_of(vcpu.set_apic_state(&bad), libc::EINVAL, &format!("SET_APIC {what}"))?;
        let now = s(vcpu.apic_state())?;
        ensure!(
            VmmApicState { taken_at: 0, ..now } == VmmApicState { taken_at: 0, ..before },
            "SET_APIC {what} was refused but changed the state:\n{before:#x?}\nto\n{now:#x?}"
        );
    }
    let fd = vcpu.as_fd();
    for (state, flags, reserved) in [
        (3, 0, [0; 3]),
        (u32::MAX, 0, [0; 3]),
        (VMM_RUN_STATE_HALTED, 2, [0; 3]),
        (VMM_RUN_STATE_HALTED, 1 << 31, [0; 3]),
        (VMM_RUN_STATE_HALTED, 0, [1, 0, 0]),
        (VMM_RUN_STATE_WAIT_SIPI, 0, [0, 0, 1 << 63]),
    ] {
        let mut a = VmmRunState { state, flags, reserved };
        let what = format!("SET_RUN_STATE {a:x?}");
        expect_errno_of(ioctl_ptr(fd, VMM_VCPU_SET_RUN_STATE, &mut a), libc::EINVAL, &what)?;
        let now = s(vcpu.run_state())?;
        ensure!(now == run_before, "{what} was refused but made the run state {now:x?}");
    }
    expect_efault(fd, VMM_VCPU_GET_APIC, "GET_APIC")?;
    expect_efault(fd, VMM_VCPU_SET_APIC, "SET_APIC")?;
    expect_efault(fd, VMM_VCPU_GET_RUN_STATE, "GET_RUN_STATE")?;
    expect_efault(fd, VMM_VCPU_SET_RUN_STATE, "SET_RUN_STATE")?;
    ensure!(s(vcpu.apic_state())?.taken_at >= before.taken_at, "taken_at went back");
    Ok(())
}

/// Sets the odd but reachable states on `vcpu`; each must read back.
fn odd_states(vcpu: &VcpuFd, good: &VmmApicState) -> Result<(), String> {
    for (what, change) in ODD_STATES {
        let mut odd = *good;
        change(&mut odd);
        s(vcpu.set_apic_state(&odd)).map_err(|e| format!("SET_APIC {what}: {e}"))?;
        let diff = differences(&odd, &s(vcpu.apic_state())?);
        ensure!(diff.is_empty(), "SET_APIC {what} reads back otherwise: {}", diff.join("\n"));
    }
    Ok(())
}

/// Runs the first VM to [`PORT_SAVE`]; returns its register report and its
/// APIC and run state, and the guest memory.
fn first_half() -> Result<(Vec<u32>, VmmApicState, VmmRunState, Vec<u8>), String> {
    let a = save_vm("apic-save-a", 1)?;
    let t = &a.t;
    let (r, _) = run_all(&a, |_| {
        bsp_run(t, |x, e| match x {
            Exit::Inout(io) if io.port == PORT_SAVE && io.size == 4 => Ok(Next::Stop),
            _ => Err(format!("unexpected exit {}", describe(e))),
        })
    })?;
    let regs = check_report(&r.debug, "first VM")?;
    let state = s(t.vcpu.apic_state())?;
    let run = s(t.vcpu.run_state())?;
    let want = (VMM_APIC_STATE_VERSION, 0, 0, 0xfee0_0900, 0x1f7, 0x20, PERIOD, 0xb);
    let got = (
        state.version,
        state.index,
        state.initial_id,
        state.apic_base,
        state.svr,
        state.tpr,
        state.timer_initial,
        state.timer_dcr,
    );
    ensure!(
        got == want && state.irr[3] & 1 != 0 && state.timer_next > state.taken_at,
        "GET_APIC after the guest programmed its APIC: {state:#x?}"
    );
    ensure!(
        run == VmmRunState { state: VMM_RUN_STATE_RUNNING, ..VmmRunState::ZERO },
        "GET_RUN_STATE at an I/O exit: {run:x?}"
    );
    Ok((regs, state, run, t.read(0, RAM_LEN as usize)?))
}

pub fn apic_state_save_restore() -> TestResult {
    let (regs, state, run, mem) = first_half()?;
    let b = save_vm("apic-save-b", 1)?;
    let t = &b.t;
    bad_input(&t.vcpu, &state)?;
    odd_states(&t.vcpu, &state)?;
    // The NMI-pending flag reads back.
    s(t.vcpu.set_run_state(VMM_RUN_STATE_RUNNING, VMM_RUN_STATE_NMI_PENDING))?;
    let got = s(t.vcpu.run_state())?;
    ensure!(got.flags == VMM_RUN_STATE_NMI_PENDING, "NMI_PENDING set, GET_RUN_STATE {got:x?}");
    // The saved state, on the same memory.
    t.write(0, &mem)?;
    s(t.vcpu.set_apic_state(&state)).map_err(|e| format!("SET_APIC of the saved state: {e}"))?;
    s(t.vcpu.set_run_state(run.state, run.flags))?;
    let got = s(t.vcpu.apic_state())?;
    let diff = differences(&state, &got);
    ensure!(diff.is_empty(), "the restored state reads back otherwise: {}", diff.join("\n"));
    ensure!(s(t.vcpu.run_state())? == run, "the restored run state reads back otherwise");
    let p = payload!(vmm_guest_apic_save_start, vmm_guest_apic_save_end);
    let phase2 = p.addr(sym!(vmm_guest_apic_save_phase2), LOAD);
    s(t.vcpu.set_regs(&[(reg::RIP, phase2)]))?;
    let (debug, _) = run_all(&b, |_| bsp_pass(t))?;
    let regs2 = check_report(&debug, "second VM")?;
    for ((off, name, _), (a, b)) in REPORTED.iter().zip(regs.iter().zip(&regs2)) {
        ensure!(a == b, "{name} ({off:#x}) read {a:#x} in the first VM, {b:#x} in the second");
    }
    let c = counts(t)?;
    let ticks = c.get(&0x50).copied().unwrap_or(0);
    ensure!(
        c.get(&0x60) == Some(&1) && ticks >= 3 && c.len() == 2,
        "handler counts {c:#x?}, want 0x60 once and 0x50 at least 3 times"
    );
    let order = handled(t)?;
    ensure!(order.first() == Some(&0x60), "vectors handled in the order {order:#x?}");
    wait_sipi_blocks()
}

/// vCPU 0 set to `WAIT_SIPI` waits in `VMM_VCPU_RUN`: until a kick while
/// vCPU 1 runs, and when it is alone the VM suspends as if it halted.
fn wait_sipi_blocks() -> TestResult {
    let v = save_vm("apic-wait-sipi", 2)?;
    let (bsp, ap) = (&v.t.vcpu, &v.aps[0]);
    s(ap.set_run_state(VMM_RUN_STATE_RUNNING, 0))?;
    s(bsp.set_run_state(VMM_RUN_STATE_WAIT_SIPI, 0))?;
    let want = VmmRunState { state: VMM_RUN_STATE_WAIT_SIPI, ..VmmRunState::ZERO };
    let got = s(bsp.run_state())?;
    ensure!(got == want, "vCPU 0 set to WAIT_SIPI reads {got:x?}");
    let e = watched(vec![bsp], |_| {
        thread::scope(|sc| {
            let h = sc.spawn(|| bsp.run());
            thread::sleep(Duration::from_millis(50));
            let kicked = bsp.kick();
            let r = h.join().map_err(|_| "the vCPU thread panicked".to_string())?;
            s(kicked)?;
            s(r)
        })
    })?;
    ensure!(e.reason == exit::KICKED, "vCPU 0 in WAIT_SIPI: {}, want KICKED", describe(&e));
    let got = s(bsp.run_state())?;
    ensure!(got == want, "vCPU 0 after the kick reads {got:x?}");
    let v = save_vm("apic-wait-sipi-1", 1)?;
    s(v.t.vcpu.set_run_state(VMM_RUN_STATE_WAIT_SIPI, 0))?;
    let e = watched(vec![&v.t.vcpu], |_| v.t.vcpu.run());
    expect_halt_suspended(&s(e)?, 1)?;
    Ok(Pass)
}
