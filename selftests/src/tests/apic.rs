// SPDX-License-Identifier: MIT OR Apache-2.0

//! The in-kernel local APIC seen from one vCPU: interrupts it sends itself
//! (xAPIC and x2APIC), priorities, and the timer in all its modes.
//!
//! The guests run in long mode on the runtime of [`apic_rt`](super::apic_rt):
//! handlers count every vector, waits are bounded by the TSC, and a guest
//! that sees something wrong fails with a code (`0x1xx` for the IPI test,
//! `0x2xx` for the timer test) after reporting the value it saw. The test
//! then checks how often, and in which order, each vector was handled.

use libvmm::Exit;

use super::apic_rt::{
    counts, delay_us, expect_count, expect_counts, expect_eax, expect_elapsed, handled, rt_call,
    wait_vec, APIC_BASE, KHZ,
};
use super::apic_vm::{bsp_run, run_all, ApicVm};
use crate::guest::{complete, describe, expect_mmio, Next};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, asm_pass, ensure, payload};

/// What the host answers for the read of the xAPIC page once the guest is
/// in x2APIC mode (the page is ordinary, unmapped guest-physical memory).
const MMIO_ANSWER: u64 = 0x5a5a_1234;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_ipi_start, vmm_guest_apic_ipi_end",
    "vmm_guest_apic_ipi_start:",
    ".code64",
    rt_call!(init),
    // Software-enable the APIC, spurious vector 0xff.
    "movl $0x1ff, 0xf0(%r15)",
    // ID register: APIC ID 0 in bits 31:24. Version: integrated (0x1x).
    "movl 0x20(%r15), %eax",
    "shrl $24, %eax",
    expect_eax!("0", "0x101"),
    "movl 0x30(%r15), %eax",
    "andl $0xf0, %eax",
    expect_eax!("0x10", "0x102"),
    // 1. A self-IPI (shorthand self, fixed, vector 0x40) waits while
    // IF = 0, then is taken exactly once.
    "movl $0x40040, 0x300(%r15)",
    delay_us!("200"),
    expect_count!("0x40", "0", "0x103"),
    "sti",
    wait_vec!("0x40", "1", "100", "0x104"),
    delay_us!("200"),
    "cli",
    expect_count!("0x40", "1", "0x105"),
    // 2. TPR 0x50 holds back vector 0x45 (priority class 4): it stays in
    // IRR (bit 5 of IRR word 2) with IF = 1, and PPR reads 0x50, until the
    // TPR drops to 0.
    "movl $0x50, 0x80(%r15)",
    "movl $0x40045, 0x300(%r15)",
    "sti",
    delay_us!("500"),
    "cli",
    expect_count!("0x45", "0", "0x106"),
    "movl 0x220(%r15), %eax",
    "andl $0x20, %eax",
    expect_eax!("0x20", "0x107"),
    "movl 0xa0(%r15), %eax",
    expect_eax!("0x50", "0x108"),
    "movl $0, 0x80(%r15)",
    "sti",
    wait_vec!("0x45", "1", "100", "0x109"),
    "cli",
    // 3. Two pending vectors, the lower sent first: the higher class is
    // taken first (the test checks the order the handlers ran in).
    "movl $0x40051, 0x300(%r15)",
    "movl $0x40092, 0x300(%r15)",
    "sti",
    wait_vec!("0x51", "1", "100", "0x10a"),
    "cli",
    expect_count!("0x92", "1", "0x10b"),
    // 4. IA32_APIC_BASE: 0xfee00000, enabled, BSP, not x2APIC; then
    // x2APIC mode (EXTD).
    "movl $0x1b, %ecx",
    "rdmsr",
    "movl %edx, %ebx",
    "andl $0xffffff00, %eax",
    expect_eax!("0xfee00900", "0x10c"),
    "movl %ebx, %eax",
    expect_eax!("0", "0x10d"),
    rt_call!(x2apic),
    "movl $0x1b, %ecx",
    "rdmsr",
    "andl $0xffffff00, %eax",
    expect_eax!("0xfee00d00", "0x10e"),
    // x2APIC ID 0; LDR cluster 0, bit 0; the SVR kept its value.
    "movl $0x802, %ecx",
    "rdmsr",
    expect_eax!("0", "0x10f"),
    "movl $0x80d, %ecx",
    "rdmsr",
    expect_eax!("1", "0x110"),
    "movl $0x80f, %ecx",
    "rdmsr",
    "andl $0x1ff, %eax",
    expect_eax!("0x1ff", "0x111"),
    // SELF IPI MSR, vector 0x42.
    "movl $0x83f, %ecx",
    "movl $0x42, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "sti",
    wait_vec!("0x42", "1", "100", "0x112"),
    "cli",
    // ICR MSR, shorthand self, vector 0x43.
    "movl $0x830, %ecx",
    "movl $0x40043, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "sti",
    wait_vec!("0x43", "1", "100", "0x113"),
    "cli",
    // TPR MSR 0x50 holds back 0x46 until it drops.
    "movl $0x808, %ecx",
    "movl $0x50, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "movl $0x83f, %ecx",
    "movl $0x46, %eax",
    "wrmsr",
    "sti",
    delay_us!("500"),
    "cli",
    expect_count!("0x46", "0", "0x114"),
    "movl $0x808, %ecx",
    "xorl %eax, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "sti",
    wait_vec!("0x46", "1", "100", "0x115"),
    "cli",
    // Priority order again: 0x53 sent before 0x93.
    "movl $0x83f, %ecx",
    "xorl %edx, %edx",
    "movl $0x53, %eax",
    "wrmsr",
    "movl $0x93, %eax",
    "wrmsr",
    "sti",
    wait_vec!("0x53", "1", "100", "0x116"),
    "cli",
    expect_count!("0x93", "1", "0x117"),
    // 5. In x2APIC mode the xAPIC page is gone: reading it is MMIO for the
    // host, which answers MMIO_ANSWER.
    "movl 0x30(%r15), %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_apic_ipi_end:",
    ".popsection",
    options(att_syntax)
);

pub fn apic_self_ipi_xapic_and_x2apic() -> TestResult {
    let p = payload!(vmm_guest_apic_ipi_start, vmm_guest_apic_ipi_end);
    let v = ApicVm::new("apic-self-ipi", 1, &p)?;
    let t = &v.t;
    let mut mmio = 0;
    let (r, _) = run_all(&v, |_| {
        bsp_run(t, |x, e| match x {
            Exit::Mmio(_) => {
                expect_mmio(e, APIC_BASE + 0x30, 4, false, 0)?;
                mmio += 1;
                Ok(Next::Enter(complete(MMIO_ANSWER)))
            }
            _ => Err(format!("unexpected exit {}", describe(e))),
        })
    })?;
    ensure!(r.passed, "stopped at {}", describe(&r.exit));
    ensure!(
        mmio == 1 && r.debug == [MMIO_ANSWER as u32],
        "{mmio} MMIO exits, debug {:#x?}",
        r.debug
    );
    let want = [0x40, 0x45, 0x92, 0x51, 0x42, 0x43, 0x46, 0x93, 0x53];
    expect_counts(t, &want.map(|v| (v, 1)))?;
    let order = handled(t)?;
    ensure!(order == want, "vectors handled in the order {order:#x?}, want {want:#x?}");
    Ok(Pass)
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_timer_start, vmm_guest_apic_timer_end",
    "vmm_guest_apic_timer_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    // CPUID 1: APIC (EDX 9), x2APIC and TSC deadline (ECX 21, 24), APIC
    // ID 0 (EBX 31:24). CPUID 0x40000010: the timer clock is 1 GHz.
    "movl $1, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "movl %edx, %eax",
    "andl $0x200, %eax",
    expect_eax!("0x200", "0x201"),
    "movl %ecx, %eax",
    "andl $0x1200000, %eax",
    expect_eax!("0x1200000", "0x202"),
    "movl %ebx, %eax",
    "shrl $24, %eax",
    expect_eax!("0", "0x203"),
    "movl $0x40000010, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "movl %ebx, %eax",
    expect_eax!("1000000", "0x204"),
    // 1. One-shot: 16 ms on vector 0x50. The current count
    // starts at most at the initial count and goes down; `sti; hlt`
    // sleeps in the kernel until the timer fires, no sooner than 1 ms.
    // Divide by 16 (16 ms): the count must still be running when it is
    // read back, however slowly the emulator reaches the read.
    "movl $0x3, 0x3e0(%r15)",
    "movl $0x50, 0x320(%r15)",
    rt_call!(tsc),
    "movq %rax, %r12",
    "movl $1000000, 0x380(%r15)",
    "movl 0x390(%r15), %ebx",
    "movl 0x390(%r15), %r13d",
    "leal -1(%rbx), %eax",
    "cmpl $1000000, %eax",
    "jb 21f",
    "movl %ebx, %eax",
    asm_debug!(),
    "movl $0x205, %eax",
    asm_fail!(),
    "21: cmpl %ebx, %r13d",
    "jb 22f",
    "movl %r13d, %eax",
    asm_debug!(),
    "movl $0x206, %eax",
    asm_fail!(),
    "22: sti",
    "hlt",
    "cli",
    expect_count!("0x50", "1", "0x207"),
    expect_elapsed!("%r12", "1000", "200000", "0x208"),
    "movl 0x390(%r15), %eax",
    expect_eax!("0", "0x209"),
    // 2. Periodic, 2 ms on vector 0x51 (divide by 1): five ticks take at
    // least five periods; initial count 0 stops it for good. (Shorter
    // periods livelock the guest on Bochs, whose every exit costs more
    // guest time than that.)
    "movl $0xb, 0x3e0(%r15)",
    "movl $0x20051, 0x320(%r15)",
    rt_call!(tsc),
    "movq %rax, %r12",
    "movl $2000000, 0x380(%r15)",
    "sti",
    wait_vec!("0x51", "5", "200", "0x20a"),
    "cli",
    expect_elapsed!("%r12", "1000", "200000", "0x20b"),
    "movl $0, 0x380(%r15)",
    "sti",
    "nop",
    "cli",
    "movl $0x51, %edi",
    rt_call!(count),
    "movl %eax, %r13d",
    "cmpl $7, %eax",
    "jbe 23f",
    asm_debug!(),
    "movl $0x20c, %eax",
    asm_fail!(),
    "23: sti",
    delay_us!("2000"),
    "cli",
    "movl $0x51, %edi",
    rt_call!(count),
    "cmpl %r13d, %eax",
    "je 24f",
    asm_debug!(),
    "movl $0x20d, %eax",
    asm_fail!(),
    "24: movl 0x390(%r15), %eax",
    expect_eax!("0", "0x20e"),
    // 3. Masked (LVT bit 16): a 100 µs one-shot on vector 0x52 neither
    // runs its handler nor sets its IRR bit (word 2, bit 18).
    "movl $0x10052, 0x320(%r15)",
    "movl $100000, 0x380(%r15)",
    "sti",
    delay_us!("2000"),
    "cli",
    expect_count!("0x52", "0", "0x20f"),
    "movl 0x220(%r15), %eax",
    "andl $0x40000, %eax",
    expect_eax!("0", "0x210"),
    "movl $0, 0x380(%r15)",
    // 4. TSC deadline (LVT bits 18:17 = 2) on vector 0x53: 500 µs ahead
    // wakes `sti; hlt` no sooner, and the MSR then reads 0; a deadline in
    // the past fires at once.
    "movl $0x40053, 0x320(%r15)",
    rt_call!(tsc),
    "movq %rax, %r12",
    "movl {khz}, %eax",
    "shrl $1, %eax",
    "addq %r12, %rax",
    "movq %rax, %rdx",
    "shrq $32, %rdx",
    "movl $0x6e0, %ecx",
    "wrmsr",
    "sti",
    "hlt",
    "cli",
    expect_count!("0x53", "1", "0x211"),
    expect_elapsed!("%r12", "500", "200000", "0x212"),
    "movl $0x6e0, %ecx",
    "rdmsr",
    "orl %edx, %eax",
    expect_eax!("0", "0x213"),
    "movl $0x6e0, %ecx",
    "movl $1, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "sti",
    wait_vec!("0x53", "2", "100", "0x214"),
    "cli",
    asm_pass!(),
    "vmm_guest_apic_timer_end:",
    ".popsection",
    khz = const KHZ,
    options(att_syntax)
);

pub fn apic_timer_modes() -> TestResult {
    let p = payload!(vmm_guest_apic_timer_start, vmm_guest_apic_timer_end);
    let v = ApicVm::new("apic-timer", 1, &p)?;
    let t = &v.t;
    let (r, _) =
        run_all(&v, |_| bsp_run(t, |_, e| Err(format!("unexpected exit {}", describe(e)))))?;
    ensure!(
        r.passed && r.debug.is_empty(),
        "stopped at {}, debug {:#x?}",
        describe(&r.exit),
        r.debug
    );
    // The periodic timer ticked five to seven times (the last ones may
    // come before it is stopped).
    let ticks = counts(t)?.get(&0x51).copied().unwrap_or(0);
    ensure!((5..=7).contains(&ticks), "{ticks} periodic ticks");
    expect_counts(t, &[(0x50, 1), (0x51, ticks), (0x53, 2)])?;
    let order = handled(t)?;
    let mut want = vec![0x50];
    want.extend(std::iter::repeat_n(0x51, ticks as usize));
    want.extend([0x53, 0x53]);
    ensure!(order == want, "vectors handled in the order {order:#x?}, want {want:#x?}");
    Ok(Pass)
}
