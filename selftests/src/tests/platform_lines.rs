// SPDX-License-Identifier: MIT OR Apache-2.0

//! Interrupt lines the sequencer drives with `VMM_VM_IRQ_LINE`, through
//! the IOAPIC: ISA pulses and held lines on an edge pin, an edge lost on a
//! masked pin, a level-triggered pin whose EOI comes back to the IOAPIC
//! (remote IRR, delivery again while the line is up) from an xAPIC and
//! from an x2APIC, and physical and logical destinations, on vCPU 0 and
//! on vCPU 1.
//!
//! vCPU 0 runs on the runtime of [`apic_rt`](super::apic_rt) and fails
//! with codes `0x9xx`; vCPU 1 runs the AP runtime of
//! [`apic_ap`](super::apic_ap), which counts vector 0x41. The guest asks
//! for each line operation with a step (see [`platform`](super::platform)).

use libvmm::uapi::*;
use libvmm::VmFd;

use super::apic_ap::{ap_vm, nonzero, ApSetup, AP_HITS, AP_READY};
use super::apic_rt::{
    delay_us, expect_count, expect_counts, expect_eax, rt_call, send_icr, wait_mem, wait_vec,
    COUNTS,
};
use super::platform::{ioapic_read, ioapic_rte, irq_line, run_steps, set_gate, step, IOAPIC_BASE};
use crate::guest::LOAD;
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload, sym};

/// Guest asm: EOI in x2APIC mode; clobbers EAX, ECX, EDX.
macro_rules! x2_eoi {
    () => {
        "movl $0x80b, %ecx\n xorl %eax, %eax\n xorl %edx, %edx\n wrmsr\n"
    };
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_lines_start, vmm_guest_plat_lines_end",
    ".globl vmm_guest_plat_lines_noeoi, vmm_guest_plat_lines_noeoi_x2",
    "vmm_guest_plat_lines_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "movl ${ioapic}, %ebp",
    // Logical ID 1 (flat model; the DFR is flat after reset).
    "movl $0x01000000, 0xd0(%r15)",
    // 1. An ISA pulse on an edge pin: pin 5, vector 0x45, destination 0.
    ioapic_rte!("5", "0x45", "0"),
    step!("1"),
    "sti",
    wait_vec!("0x45", "1", "100", "0x901"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x45", "1", "0x902"),
    // 2. ISA 5 raised and held: one interrupt; lowered and raised again:
    // one more.
    step!("2"),
    "sti",
    wait_vec!("0x45", "2", "100", "0x903"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x45", "2", "0x904"),
    step!("3"),
    step!("2"),
    "sti",
    wait_vec!("0x45", "3", "100", "0x905"),
    "cli",
    step!("3"),
    // 3. An edge on a masked pin is lost: unmasking brings nothing.
    ioapic_rte!("5", "0x10045", "0"),
    step!("1"),
    ioapic_rte!("5", "0x45", "0"),
    "sti",
    delay_us!("2000"),
    "cli",
    expect_count!("0x45", "3", "0x906"),
    // 4. Pin 9, level-triggered, vector 0x49, whose handler counts but
    // does not EOI. Raised: delivered once, and it stays in service with
    // remote IRR set.
    ioapic_rte!("9", "0x8049", "0"),
    step!("4"),
    "sti",
    wait_vec!("0x49", "1", "100", "0x907"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x49", "1", "0x908"),
    ioapic_read!("0x22"),
    "andl $0x4000, %eax",
    expect_eax!("0x4000", "0x909"),
    // ISR and TMR word 2, bit 9.
    "movl 0x120(%r15), %eax",
    "andl $0x200, %eax",
    expect_eax!("0x200", "0x90a"),
    "movl 0x1a0(%r15), %eax",
    "andl $0x200, %eax",
    expect_eax!("0x200", "0x90b"),
    // The EOI with the line still up: the IOAPIC sends it again.
    "movl $0, 0xb0(%r15)",
    "sti",
    wait_vec!("0x49", "2", "100", "0x90c"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x49", "2", "0x90d"),
    // Lowered: remote IRR stays until the EOI, and then nothing comes.
    step!("5"),
    ioapic_read!("0x22"),
    "andl $0x4000, %eax",
    expect_eax!("0x4000", "0x90e"),
    "movl $0, 0xb0(%r15)",
    ioapic_read!("0x22"),
    "andl $0x4000, %eax",
    expect_eax!("0", "0x90f"),
    "sti",
    delay_us!("2000"),
    "cli",
    expect_count!("0x49", "2", "0x910"),
    // 5. The same in x2APIC mode (EOI by WRMSR): ISA IRQ 10 on pin 10,
    // level-triggered, vector 0x4a, whose handler does not EOI either.
    rt_call!(x2apic),
    ioapic_rte!("10", "0x804a", "0"),
    step!("8"),
    "sti",
    wait_vec!("0x4a", "1", "100", "0x916"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x4a", "1", "0x917"),
    ioapic_read!("0x24"),
    "andl $0x4000, %eax",
    expect_eax!("0x4000", "0x918"),
    // ISR and TMR word 2, bit 10.
    "movl $0x812, %ecx",
    "rdmsr",
    "andl $0x400, %eax",
    expect_eax!("0x400", "0x919"),
    "movl $0x81a, %ecx",
    "rdmsr",
    "andl $0x400, %eax",
    expect_eax!("0x400", "0x91a"),
    x2_eoi!(),
    "sti",
    wait_vec!("0x4a", "2", "100", "0x91b"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x4a", "2", "0x91c"),
    step!("9"),
    x2_eoi!(),
    ioapic_read!("0x24"),
    "andl $0x4000, %eax",
    expect_eax!("0", "0x91d"),
    "sti",
    delay_us!("2000"),
    "cli",
    expect_count!("0x4a", "2", "0x91e"),
    // 6. Logical destination 1 (this vCPU; cluster 0, bit 0 in x2APIC
    // mode): pin 6, vector 0x46.
    ioapic_rte!("6", "0x846", "0x01000000"),
    step!("6"),
    "sti",
    wait_vec!("0x46", "1", "100", "0x911"),
    "cli",
    // 7. vCPU 1 (xAPIC): INIT, SIPI, SIPI; it waits in `sti; hlt` for
    // vector 0x41 with logical ID 2 (flat model).
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    delay_us!("200"),
    send_icr!("0xc4630", "0"),
    wait_mem!("{ready}", "$1", "2000", "0x912"),
    // ISA 11 by physical destination 1, then by logical destination 2.
    ioapic_rte!("11", "0x41", "0x01000000"),
    step!("7"),
    wait_mem!("{hits} + 4", "$1", "200", "0x913"),
    ioapic_rte!("11", "0x841", "0x02000000"),
    step!("7"),
    wait_mem!("{hits} + 4", "$2", "200", "0x914"),
    "sti",
    delay_us!("1000"),
    "cli",
    expect_count!("0x41", "0", "0x915"),
    // vCPU 1 back to waiting for SIPI, so that the VM suspends.
    send_icr!("0xc4500", "0"),
    asm_pass!(),
    // Vectors 0x49 and 0x4a: counted, no EOI.
    "vmm_guest_plat_lines_noeoi:",
    "lock incl {c49}",
    "iretq",
    "vmm_guest_plat_lines_noeoi_x2:",
    "lock incl {c4a}",
    "iretq",
    "vmm_guest_plat_lines_end:",
    ".popsection",
    ioapic = const IOAPIC_BASE,
    ready = const AP_READY,
    hits = const AP_HITS,
    c49 = const COUNTS + 4 * 0x49,
    c4a = const COUNTS + 4 * 0x4a,
    options(att_syntax)
);

/// What the test does at each step of the lines guest.
const LINE_STEPS: [(u32, u32, u32); 9] = [
    (VMM_IRQ_ISA, 5, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 5, VMM_LINE_ASSERT),
    (VMM_IRQ_ISA, 5, VMM_LINE_DEASSERT),
    (VMM_IRQ_IOAPIC, 9, VMM_LINE_ASSERT),
    (VMM_IRQ_IOAPIC, 9, VMM_LINE_DEASSERT),
    (VMM_IRQ_IOAPIC, 6, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 11, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 10, VMM_LINE_ASSERT),
    (VMM_IRQ_ISA, 10, VMM_LINE_DEASSERT),
];

/// Does step `n` (from 1) of `steps` on `vm`.
pub fn do_step(vm: &VmFd, steps: &[(u32, u32, u32)], n: u64) -> Result<(), String> {
    let &(kind, line, op) = usize::try_from(n)
        .ok()
        .and_then(|n| steps.get(n.wrapping_sub(1)))
        .ok_or_else(|| format!("the guest asked for unknown step {n}"))?;
    irq_line(vm, kind, line, op)
}

pub fn platform_ioapic_lines() -> TestResult {
    let p = payload!(vmm_guest_plat_lines_start, vmm_guest_plat_lines_end);
    let v = ap_vm("plat-lines", &[1], &p, ApSetup::default())?;
    let t = &v.t;
    set_gate(t, 0x49, p.addr(sym!(vmm_guest_plat_lines_noeoi), LOAD))?;
    set_gate(t, 0x4a, p.addr(sym!(vmm_guest_plat_lines_noeoi_x2), LOAD))?;
    let r = run_steps(&v, true, |n| do_step(&t.vm, &LINE_STEPS, n));
    r.map_err(|e| format!("{e}\nvector 0x41 on vCPU 1: {:?}", nonzero(&v, AP_HITS)))?;
    expect_counts(t, &[(0x45, 3), (0x49, 2), (0x4a, 2), (0x46, 1)])?;
    let hits = nonzero(&v, AP_HITS)?;
    ensure!(hits == [(1, 2)], "vector 0x41 per APIC ID {hits:?}, want vCPU 1 twice");
    Ok(Pass)
}
