// SPDX-License-Identifier: MIT OR Apache-2.0

//! vCPUs whose APICs are in different modes and places: vCPU 1 in x2APIC
//! mode while vCPU 0 stays in xAPIC mode, then vCPU 1 with its APIC
//! disabled, then vCPU 0 with its APIC page moved.
//!
//! vCPU 0 runs a long-mode payload on the runtime of
//! [`apic_rt`](super::apic_rt) and fails with codes `0x73x`/`0x74x`;
//! vCPU 1 runs the AP runtime of [`apic_ap`](super::apic_ap) in x2APIC
//! mode and does what vCPU 0 asks of it with vector 0x4f (a [`Cmd`]). The
//! test answers the MMIO reads the APIC page no longer completes, and
//! checks which vCPU made each access.

use std::sync::Mutex;

use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use super::apic_ap::{
    ap_vm, nonzero, ApSetup, Cmd, AP_HITS, AP_READY, AP_X2, CMD, CMD_DONE, CMD_HI, CMD_LO,
    CMD_RESULT,
};
use super::apic_rt::{
    delay_us, expect_counts, expect_eax, read_u32s, report_fail, rt_call, send_icr, wait_mem,
    wait_vec, APIC_BASE,
};
use super::apic_vm::{bsp_run, expect_aps_suspended, halt_after_pass, run_all_with};
use crate::guest::{complete, describe, expect_mmio, Next, RUN};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload};

/// Where vCPU 0 moves its APIC.
const NEW_BASE: u64 = 0xfed0_0000;
/// What the test answers for vCPU 1's read of the APIC page in x2APIC mode.
const X2_ANSWER: u64 = 0x1234_5678;
/// What the test answers for vCPU 1's read with its APIC disabled.
const DISABLED_ANSWER: u64 = 0x2345_6789;
/// What vCPU 1 writes to the APIC page with its APIC disabled.
const DISABLED_WRITE: u64 = 0x3456_789a;
/// What the test answers for vCPU 0's read of 0xFEE00030 after the move.
const MOVED_ANSWER: u64 = 0x4567_89ab;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_mixed_start, vmm_guest_apic_mixed_end",
    "vmm_guest_apic_mixed_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    delay_us!("200"),
    send_icr!("0xc4630", "0"),
    wait_mem!("{ready}", "$1", "2000", "0x731"),
    "movl {x2} + 4, %eax",
    expect_eax!("1", "0x732"),
    "sti",
    // 1. xAPIC to x2APIC: vCPU 0's ICR, physical destination 1.
    send_icr!("0x4041", "1"),
    wait_mem!("{hits} + 4", "$1", "200", "0x733"),
    // 2. x2APIC to xAPIC: vCPU 1 sends vector 0x44 to physical ID 0.
    "movl ${ipi}, {cmd}",
    "movl $0x4044, {cmd_lo}",
    "movl $0, {cmd_hi}",
    send_icr!("0x404f", "1"),
    wait_mem!("{cmd_done}", "$1", "200", "0x734"),
    wait_vec!("0x44", "1", "200", "0x735"),
    // 3. vCPU 1 reads its old APIC page: an MMIO exit the test answers.
    "movl ${read}, {cmd}",
    "movl ${apic} + 0x30, {cmd_lo}",
    send_icr!("0x404f", "1"),
    wait_mem!("{cmd_done}", "$2", "1000", "0x736"),
    "movl {cmd_result}, %eax",
    expect_eax!("{x2_answer}", "0x737"),
    // vCPU 0's page is still its APIC: ID 0, an integrated version.
    "movl 0x20(%r15), %eax",
    expect_eax!("0", "0x738"),
    "movl 0x30(%r15), %r12d",
    "movl %r12d, %eax",
    "andl $0xf0, %eax",
    expect_eax!("0x10", "0x739"),
    // 4. vCPU 1 disables its APIC, then reads and writes the page: MMIO.
    "movl ${disable}, {cmd}",
    "movl ${apic} + 0x30, {cmd_lo}",
    "movl ${disabled_write}, {cmd_hi}",
    send_icr!("0x404f", "1"),
    wait_mem!("{cmd_done}", "$3", "1000", "0x73a"),
    "movl {cmd_result}, %eax",
    expect_eax!("{disabled_answer}", "0x73b"),
    // A disabled APIC takes no fixed IPI, neither by ID nor by shorthand.
    send_icr!("0x4041", "1"),
    send_icr!("0xc4041", "0"),
    delay_us!("1000"),
    "movl {hits} + 4, %eax",
    expect_eax!("1", "0x73c"),
    // 5. vCPU 0 moves its APIC page to NEW_BASE.
    "cli",
    "movl $0x1b, %ecx",
    "rdmsr",
    "andl $0xfff, %eax",
    "orl ${new_base}, %eax",
    "wrmsr",
    "rdmsr",
    "andl $0xfffff000, %eax",
    expect_eax!("{new_base}", "0x73d"),
    "movl ${new_base}, %ebx",
    "movl 0x30(%rbx), %eax",
    "cmpl %eax, %r12d",
    "je 1f",
    report_fail!("0x73e"),
    "1: movl 0x20(%rbx), %eax",
    expect_eax!("0", "0x73f"),
    // Its ICR is there too: a self-IPI waits in IRR (vector 0x45: IRR
    // word 2, bit 5) with IF = 0.
    "movl $0x40045, 0x300(%rbx)",
    "movl 0x220(%rbx), %eax",
    "andl $0x20, %eax",
    expect_eax!("0x20", "0x740"),
    // The old page is plain MMIO: the test answers.
    "movl 0x30(%r15), %eax",
    expect_eax!("{moved_answer}", "0x741"),
    // Back to 0xFEE00000, where the handler's EOI goes: 0x45 is taken.
    "movl $0x1b, %ecx",
    "rdmsr",
    "andl $0xfff, %eax",
    "orl ${apic}, %eax",
    "wrmsr",
    "sti",
    wait_vec!("0x45", "1", "200", "0x742"),
    "cli",
    asm_pass!(),
    "vmm_guest_apic_mixed_end:",
    ".popsection",
    ready = const AP_READY,
    x2 = const AP_X2,
    hits = const AP_HITS,
    cmd = const CMD,
    cmd_lo = const CMD_LO,
    cmd_hi = const CMD_HI,
    cmd_done = const CMD_DONE,
    cmd_result = const CMD_RESULT,
    ipi = const Cmd::Ipi as u32,
    read = const Cmd::Read as u32,
    disable = const Cmd::DisableThenAccess as u32,
    apic = const APIC_BASE,
    new_base = const NEW_BASE,
    x2_answer = const X2_ANSWER,
    disabled_answer = const DISABLED_ANSWER,
    disabled_write = const DISABLED_WRITE,
    moved_answer = const MOVED_ANSWER,
    options(att_syntax)
);

/// vCPU 1's MMIO exits, in order: what each must be and what to answer.
const AP_MMIO: [(u64, bool, u64); 3] = [
    (APIC_BASE + 0x30, false, X2_ANSWER),
    (APIC_BASE + 0x30, false, DISABLED_ANSWER),
    (APIC_BASE + 0x30, true, DISABLED_WRITE),
];

pub fn apic_x2apic_mixed() -> TestResult {
    let p = payload!(vmm_guest_apic_mixed_start, vmm_guest_apic_mixed_end);
    let v = ap_vm("apic-mixed", &[1], &p, ApSetup { report: false, x2apic: true })?;
    let t = &v.t;
    let ap_seen = Mutex::new(0usize);
    let ap_mmio = |vcpu: &VcpuFd, e: &VmmExit| -> Result<Option<VmmEntry>, String> {
        if !matches!(Exit::decode(e), Exit::Mmio(_)) {
            return Ok(None);
        }
        let mut n = ap_seen.lock().map_err(|_| "poisoned".to_string())?;
        let Some(&(gpa, write, value)) = AP_MMIO.get(*n) else {
            return Err(format!("vCPU {}: MMIO exit {} after the last", vcpu.id(), *n));
        };
        expect_mmio(e, gpa, 4, write, value)
            .map_err(|err| format!("vCPU {}, MMIO exit {}: {err}", vcpu.id(), *n))?;
        *n += 1;
        Ok(Some(if write { RUN } else { complete(value) }))
    };
    let mut bsp_mmio = 0;
    let (r, aps) = run_all_with(&v, &ap_mmio, |_| {
        let r = bsp_run(t, |x, e| match x {
            Exit::Mmio(_) if bsp_mmio == 0 => {
                expect_mmio(e, APIC_BASE + 0x30, 4, false, 0)
                    .map_err(|err| format!("vCPU 0 after the move: {err}"))?;
                bsp_mmio += 1;
                Ok(Next::Enter(complete(MOVED_ANSWER)))
            }
            _ => Err(format!("vCPU 0: unexpected exit {}", describe(e))),
        })?;
        halt_after_pass(&v)?;
        Ok(r)
    })
    .map_err(|e| {
        let hits = nonzero(&v, AP_HITS);
        let cmd = read_u32s(t, CMD, 5);
        format!("{e}\nvector 0x41 per APIC ID {hits:?}; command, lo, hi, result, done {cmd:x?}")
    })?;
    ensure!(r.debug.is_empty(), "vCPU 0 reported {:#x?}", r.debug);
    let seen = *ap_seen.lock().map_err(|_| "poisoned".to_string())?;
    ensure!(seen == AP_MMIO.len(), "vCPU 1 made {seen} MMIO exits, want {}", AP_MMIO.len());
    ensure!(bsp_mmio == 1, "vCPU 0 made {bsp_mmio} MMIO exits, want 1");
    ensure!(aps[0].debug.is_empty(), "vCPU 1 reported {:#x?}", aps[0].debug);
    expect_aps_suspended(&aps)?;
    let hits = nonzero(&v, AP_HITS)?;
    ensure!(hits == [(1, 1)], "vector 0x41 per APIC ID {hits:?}, want vCPU 1 once");
    expect_counts(t, &[(0x44, 1), (0x45, 1)])?;
    Ok(Pass)
}
