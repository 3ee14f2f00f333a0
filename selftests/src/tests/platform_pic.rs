// SPDX-License-Identifier: MIT OR Apache-2.0

//! The 8259 PIC pair from a guest, set up as a BIOS does (vectors 0x08 and
//! 0x70, normal EOI): masking, priorities and the in-service register,
//! requests that go away, the cascade, the ELCR, and the spurious IR7
//! vectors of both chips.
//!
//! The guest runs on the runtime of [`apic_rt`](super::apic_rt) with LINT0
//! programmed ExtINT; the master's vectors 0x08-0x0F are exception
//! vectors, so the test points those IDT entries (but #GP's, 13: IRQ 5 is
//! never raised) at the counting stubs. An ExtINT pushes no error code, and
//! the stubs' EOI to the local APIC finds nothing in service there. The
//! guest ends interrupts at the PIC itself (OCW2 0x20), which is how it
//! can look at the in-service register in between (OCW3 0x0B, then reads
//! of the command port). Lines move at the guest's request
//! ([`PORT_STEP`](super::platform::PORT_STEP)); failure codes are `0xaxx`.
//!
//! A request that goes away before the CPU acknowledges it gives no
//! interrupt in vmm, spurious or not: the PIC's INTR reaches LINT0 as a
//! level that each VM entry looks at again. The spurious IR7 vectors come
//! where the 8259A gives them deterministically: the slave's (IRQ 15) when
//! master IR2 latched a slave request that went away, and the master's
//! (IRQ 7) when an ExtINT message finds no request at all.

use libvmm::uapi::*;

use super::apic_rt::{
    delay_us, expect_count, expect_counts, expect_eax, handled, rt_call, wait_vec, APIC_BASE,
};
use super::apic_vm::ApicVm;
use super::platform::{count_stub, expect_inb, inb, irq_line, outb, run_steps, set_gate, step};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload};

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_pic_start, vmm_guest_plat_pic_end",
    "vmm_guest_plat_pic_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "movl $0x700, 0x350(%r15)",
    // A BIOS's initialisation: edge, cascade, ICW4; vectors 0x08 and 0x70;
    // slave on IR2; 8086 mode, normal EOI.
    outb!("0x20", "0x11"),
    outb!("0x21", "0x08"),
    outb!("0x21", "0x04"),
    outb!("0x21", "0x01"),
    outb!("0xa0", "0x11"),
    outb!("0xa1", "0x70"),
    outb!("0xa1", "0x02"),
    outb!("0xa1", "0x01"),
    // 1. Masking: IRQ 2, 3 and 4 open on the master, nothing on the slave.
    outb!("0x21", "0xe3"),
    outb!("0xa1", "0xff"),
    expect_inb!("0x21", "0xe3", "0xa01"),
    expect_inb!("0xa1", "0xff", "0xa02"),
    // A pulse on masked IRQ 6 latches in IRR and interrupts nothing ...
    step!("1"),
    "sti",
    delay_us!("1000"),
    "cli",
    expect_count!("0x0e", "0", "0xa03"),
    outb!("0x20", "0x0a"),
    inb!("0x20"),
    "andl $0x40, %eax",
    expect_eax!("0x40", "0xa04"),
    // ... until it is unmasked: vector 0x0E, in service until the EOI.
    outb!("0x21", "0xa3"),
    "sti",
    wait_vec!("0x0e", "1", "100", "0xa05"),
    "cli",
    outb!("0x20", "0x0b"),
    expect_inb!("0x20", "0x40", "0xa06"),
    outb!("0x20", "0x20"),
    expect_inb!("0x20", "0", "0xa07"),
    outb!("0x21", "0xe3"),
    // 2. Priorities: IRQ 4 raised before IRQ 3 with IF = 0. IRQ 3 comes
    // first, and IRQ 4 only after IRQ 3's EOI.
    step!("2"),
    step!("3"),
    outb!("0x20", "0x0a"),
    inb!("0x20"),
    "andl $0x18, %eax",
    expect_eax!("0x18", "0xa08"),
    "sti",
    wait_vec!("0x0b", "1", "100", "0xa09"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x0c", "0", "0xa0a"),
    outb!("0x20", "0x0b"),
    expect_inb!("0x20", "0x08", "0xa0b"),
    outb!("0x20", "0x20"),
    "sti",
    wait_vec!("0x0c", "1", "100", "0xa0c"),
    "cli",
    expect_inb!("0x20", "0x10", "0xa0d"),
    outb!("0x20", "0x20"),
    expect_inb!("0x20", "0", "0xa0e"),
    // 3. IRQ 3 level-triggered (ELCR bit 3), raised and lowered again
    // with IF = 0: its IRR bit follows the line, and nothing comes.
    step!("4"),
    expect_inb!("0x4d0", "0x08", "0xa0f"),
    step!("5"),
    outb!("0x20", "0x0a"),
    inb!("0x20"),
    "andl $0x08, %eax",
    expect_eax!("0x08", "0xa10"),
    step!("6"),
    inb!("0x20"),
    "andl $0x08, %eax",
    expect_eax!("0", "0xa11"),
    "sti",
    delay_us!("1000"),
    "cli",
    expect_count!("0x0b", "1", "0xa12"),
    expect_count!("0x0f", "0", "0xa13"),
    step!("7"),
    expect_inb!("0x4d0", "0", "0xa14"),
    // 4. The cascade: slave IRQ 10 (vector 0x72) through master IR2, in
    // service on both chips until each has its EOI.
    outb!("0xa1", "0xfb"),
    step!("8"),
    "sti",
    wait_vec!("0x72", "1", "100", "0xa15"),
    "cli",
    outb!("0x20", "0x0b"),
    expect_inb!("0x20", "0x04", "0xa16"),
    outb!("0xa0", "0x0b"),
    expect_inb!("0xa0", "0x04", "0xa17"),
    outb!("0xa0", "0x20"),
    expect_inb!("0xa0", "0", "0xa18"),
    expect_inb!("0x20", "0x04", "0xa19"),
    outb!("0x20", "0x20"),
    expect_inb!("0x20", "0", "0xa1a"),
    // 5. IRQ 10 made level-triggered by the sequencer shows in the ELCR at
    // 0x4D1. Raised and lowered with IF = 0, it leaves master IR2 latched:
    // the acknowledge gets the slave's IR7 vector (0x77, spurious IRQ 15)
    // with only the master's IR2 in service.
    step!("9"),
    expect_inb!("0x4d1", "0x04", "0xa1b"),
    step!("10"),
    step!("11"),
    "sti",
    wait_vec!("0x77", "1", "100", "0xa1c"),
    delay_us!("1000"),
    "cli",
    expect_count!("0x72", "1", "0xa1d"),
    expect_inb!("0xa0", "0", "0xa1e"),
    expect_inb!("0x20", "0x04", "0xa1f"),
    outb!("0x20", "0x20"),
    expect_inb!("0x20", "0", "0xa20"),
    step!("12"),
    expect_inb!("0x4d1", "0", "0xa21"),
    // The guest's own ELCR writes: IRQ 0, 1, 2, 8 and 13 stay edge.
    outb!("0x4d0", "0xff"),
    expect_inb!("0x4d0", "0xf8", "0xa22"),
    outb!("0x4d1", "0xff"),
    expect_inb!("0x4d1", "0xde", "0xa23"),
    outb!("0x4d0", "0"),
    outb!("0x4d1", "0"),
    // 6. An ExtINT message with no request: the master's IR7 vector
    // (0x0F), nothing in service.
    "sti",
    "nop",
    step!("13"),
    wait_vec!("0x0f", "1", "100", "0xa24"),
    "cli",
    expect_inb!("0x20", "0", "0xa25"),
    // The same with IF = 0: it waits for STI.
    step!("13"),
    delay_us!("1000"),
    expect_count!("0x0f", "1", "0xa26"),
    "sti",
    wait_vec!("0x0f", "2", "100", "0xa27"),
    "cli",
    asm_pass!(),
    "vmm_guest_plat_pic_end:",
    ".popsection",
    options(att_syntax)
);

/// What the test does at each step (13: an ExtINT MSI).
const PIC_STEPS: [(u32, u32, u32); 12] = [
    (VMM_IRQ_ISA, 6, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 4, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 3, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 3, VMM_LINE_SET_LEVEL),
    (VMM_IRQ_ISA, 3, VMM_LINE_ASSERT),
    (VMM_IRQ_ISA, 3, VMM_LINE_DEASSERT),
    (VMM_IRQ_ISA, 3, VMM_LINE_SET_EDGE),
    (VMM_IRQ_ISA, 10, VMM_LINE_PULSE),
    (VMM_IRQ_ISA, 10, VMM_LINE_SET_LEVEL),
    (VMM_IRQ_ISA, 10, VMM_LINE_ASSERT),
    (VMM_IRQ_ISA, 10, VMM_LINE_DEASSERT),
    (VMM_IRQ_ISA, 10, VMM_LINE_SET_EDGE),
];

/// MSI data: delivery mode ExtINT (7), vector 0.
const EXTINT_MSI: u32 = 0x700;

pub fn platform_pic_behaviour() -> TestResult {
    let p = payload!(vmm_guest_plat_pic_start, vmm_guest_plat_pic_end);
    let v = ApicVm::new("plat-pic", 1, &p)?;
    let t = &v.t;
    for vector in (8..=15).filter(|&v| v != 13) {
        set_gate(t, vector, count_stub(vector))?;
    }
    run_steps(&v, false, |n| match n {
        13 => t.vm.msi(APIC_BASE, EXTINT_MSI).map_err(|e| format!("ExtINT MSI: {e}")),
        _ => {
            let &(kind, line, op) = usize::try_from(n)
                .ok()
                .and_then(|n| PIC_STEPS.get(n.wrapping_sub(1)))
                .ok_or_else(|| format!("unknown step {n}"))?;
            irq_line(&t.vm, kind, line, op)
        }
    })?;
    expect_counts(t, &[(0x0e, 1), (0x0b, 1), (0x0c, 1), (0x72, 1), (0x77, 1), (0x0f, 2)])?;
    let order = handled(t)?;
    let want = [0x0e, 0x0b, 0x0c, 0x72, 0x77, 0x0f, 0x0f];
    ensure!(order == want, "vectors handled in the order {order:#x?}, want {want:#x?}");
    Ok(Pass)
}
