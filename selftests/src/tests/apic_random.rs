// SPDX-License-Identifier: MIT OR Apache-2.0

//! Random values in every APIC register. The guest writes pseudo-random
//! 32-bit values to every 16-byte slot of the xAPIC page and reads them
//! all back, then does the same in x2APIC mode with WRMSR and RDMSR of
//! 0x800-0x8FF (64-bit values, half of them with the high half zero). The
//! kernel must take every value (the kernel log is checked by the harness
//! separately), and where the SDM fixes the outcome the guest checks it:
//!
//! - xAPIC read-back: TPR bits 7:0, LDR and ICR high bits 31:24, SVR bits
//!   8:0, DCR bits 3 and 1:0, DFR bits 31:28 with 27:0 reading as ones;
//! - x2APIC: the ID is read-only (#GP), EOI #GPs unless it is written 0,
//!   the TPR #GPs when bits above 7 are set and otherwise reads back.
//!
//! Interrupts stay off (IF = 0) throughout, so no handler may run but the
//! #GP one, which skips a faulting WRMSR or RDMSR (both 2 bytes) and fails
//! the test on a #GP anywhere else. ICR values that would send INIT, SIPI,
//! NMI or SMI (to the vCPU itself: it is alone) are made fixed. The seed
//! comes from `vmmtest_seed` like the random-code tests' and is printed
//! with any failure.

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::Exit;

use super::apic_rt::{counts, rt_call, ARGS, COUNTS, GP_SKIP_A, GP_SKIP_B, GP_STRICT};
use super::apic_vm::{bsp_run, run_all, ApicVm};
use crate::guest::{describe, s};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, asm_pass, ensure, payload};

/// u32: rounds over the xAPIC page.
const XAPIC_ROUNDS_AT: u64 = ARGS;
/// u32: rounds over the x2APIC MSRs.
const X2APIC_ROUNDS_AT: u64 = ARGS + 4;
/// Rounds of 256 writes (and 256 reads) in xAPIC mode.
const XAPIC_ROUNDS: u32 = 2;
/// Rounds of 256 WRMSRs (and 256 RDMSRs) in x2APIC mode.
const X2APIC_ROUNDS: u32 = 2;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_random_start, vmm_guest_apic_random_end",
    "vmm_guest_apic_random_start:",
    ".code64",
    // R13: the xorshift64 state, from the seed in RDI.
    "movq %rdi, %r13",
    "orq $1, %r13",
    rt_call!(init),
    "movl $1, {gp_strict}",
    "leaq 81f(%rip), %rax",
    "movq %rax, {gp_a}",
    "leaq 82f(%rip), %rax",
    "movq %rax, {gp_b}",
    // xAPIC: write every slot (checking the ones with a fixed read-back),
    // then read every slot.
    "movl {xrounds}, %r12d",
    "10: xorl %ebx, %ebx",
    "11: call 90f",
    "cmpl $0x300, %ebx",
    "jne 12f",
    "call 95f",
    "12: movl %eax, (%r15,%rbx)",
    "call 96f",
    "addl $0x10, %ebx",
    "cmpl $0x1000, %ebx",
    "jb 11b",
    "xorl %ebx, %ebx",
    "13: movl (%r15,%rbx), %eax",
    "addl $0x10, %ebx",
    "cmpl $0x1000, %ebx",
    "jb 13b",
    "decl %r12d",
    "jnz 10b",
    // x2APIC: WRMSR then RDMSR of every MSR; EDX is zero when bit 63 of
    // the random value is clear.
    rt_call!(x2apic),
    "movl {x2rounds}, %r12d",
    "20: movl $0x800, %ebx",
    "21: call 90f",
    "movq %rax, %rdx",
    "shrq $32, %rdx",
    "testq %rax, %rax",
    "js 22f",
    "xorl %edx, %edx",
    "22: cmpl $0x830, %ebx",
    "jne 23f",
    "call 95f",
    "23: movl %ebx, %ecx",
    "movl {counts} + 52, %esi",
    "81: wrmsr",
    "call 97f",
    "movl %ebx, %ecx",
    "82: rdmsr",
    "incl %ebx",
    "cmpl $0x900, %ebx",
    "jb 21b",
    "decl %r12d",
    "jnz 20b",
    // Report the #GPs taken.
    "movl {counts} + 52, %eax",
    asm_debug!(),
    asm_pass!(),
    // RAX = the next xorshift64 value (as crate::Rng).
    "90: movq %r13, %rax",
    "shlq $13, %rax",
    "xorq %rax, %r13",
    "movq %r13, %rax",
    "shrq $7, %rax",
    "xorq %rax, %r13",
    "movq %r13, %rax",
    "shlq $17, %rax",
    "xorq %rax, %r13",
    "movq %r13, %rax",
    "ret",
    // ICR low in EAX: delivery modes other than fixed and lowest priority
    // (SMI, NMI, INIT, SIPI and the reserved ones) become fixed.
    "95: pushq %rcx",
    "movl %eax, %ecx",
    "shrl $8, %ecx",
    "andl $7, %ecx",
    "cmpl $1, %ecx",
    "jbe 94f",
    "andl $0xfffff8ff, %eax",
    "94: popq %rcx",
    "ret",
    // xAPIC slot EBX was written EAX: if its read-back is fixed, check it
    // (else report the slot, the value and what was read; fail 0x901).
    "96: pushq %rcx",
    "pushq %rdx",
    "movl $0xff, %ecx",
    "cmpl $0x80, %ebx",
    "je 93f",
    "movl $0xff000000, %ecx",
    "cmpl $0xd0, %ebx",
    "je 93f",
    "cmpl $0x310, %ebx",
    "je 93f",
    "movl $0x1ff, %ecx",
    "cmpl $0xf0, %ebx",
    "je 93f",
    "movl $0xb, %ecx",
    "cmpl $0x3e0, %ebx",
    "je 93f",
    "cmpl $0xe0, %ebx",
    "jne 92f",
    "orl $0x0fffffff, %eax",
    "movl $0xffffffff, %ecx",
    "93: movl (%r15,%rbx), %edx",
    "andl %ecx, %eax",
    "andl %ecx, %edx",
    "cmpl %eax, %edx",
    "je 92f",
    "pushq %rax",
    "movl %ebx, %eax",
    asm_debug!(),
    "popq %rax",
    asm_debug!(),
    "movl %edx, %eax",
    asm_debug!(),
    "movl $0x901, %eax",
    asm_fail!(),
    "92: popq %rdx",
    "popq %rcx",
    "ret",
    // x2APIC MSR EBX was written EDX:EAX, with ESI #GPs counted before:
    // check the MSRs whose outcome is fixed (else report the value's
    // halves and the #GPs it caused; fail 0x902-0x905).
    "97: movl {counts} + 52, %edi",
    "subl %esi, %edi",
    "movq %rdx, %r8",
    "shlq $32, %r8",
    "movl %eax, %r9d",
    "orq %r9, %r8",
    "cmpl $0x802, %ebx",
    "jne 98f",
    "cmpl $1, %edi",
    "je 99f",
    "movl $0x904, %eax",
    "jmp 89f",
    "98: cmpl $0x80b, %ebx",
    "jne 88f",
    "xorl %r9d, %r9d",
    "testq %r8, %r8",
    "setne %r9b",
    "cmpl %r9d, %edi",
    "je 99f",
    "movl $0x905, %eax",
    "jmp 89f",
    "88: cmpl $0x808, %ebx",
    "jne 99f",
    "xorl %r9d, %r9d",
    "cmpq $0xff, %r8",
    "seta %r9b",
    "cmpl %r9d, %edi",
    "je 87f",
    "movl $0x902, %eax",
    "jmp 89f",
    "87: testl %edi, %edi",
    "jnz 99f",
    "movl $0x808, %ecx",
    "rdmsr",
    "cmpl %r8d, %eax",
    "je 99f",
    asm_debug!(),
    "movl $0x903, %eax",
    "89: pushq %rax",
    "movl %r8d, %eax",
    asm_debug!(),
    "movq %r8, %rax",
    "shrq $32, %rax",
    asm_debug!(),
    "movl %edi, %eax",
    asm_debug!(),
    "popq %rax",
    asm_fail!(),
    "99: ret",
    "vmm_guest_apic_random_end:",
    ".popsection",
    gp_strict = const GP_STRICT,
    gp_a = const GP_SKIP_A,
    gp_b = const GP_SKIP_B,
    counts = const COUNTS,
    xrounds = const XAPIC_ROUNDS_AT,
    x2rounds = const X2APIC_ROUNDS_AT,
    options(att_syntax)
);

pub fn apic_random_register_writes() -> TestResult {
    let seed = crate::tests::fuzz::seed(Mode::Long64).rotate_left(29) | 1;
    let p = payload!(vmm_guest_apic_random_start, vmm_guest_apic_random_end);
    let v = ApicVm::new("apic-random", 1, &p)?;
    let t = &v.t;
    t.write(XAPIC_ROUNDS_AT, &XAPIC_ROUNDS.to_le_bytes())?;
    t.write(X2APIC_ROUNDS_AT, &X2APIC_ROUNDS.to_le_bytes())?;
    s(t.vcpu.set_regs(&[(reg::RDI, seed)]))?;
    let r = run_all(&v, |_| {
        bsp_run(t, |x, e| match x {
            Exit::Rdmsr(msr) | Exit::Wrmsr(msr, _) if (0x800..=0x8ff).contains(msr) => {
                Err(format!("x2APIC MSR {msr:#x} left to userspace: {}", describe(e)))
            }
            _ => Err(format!("unexpected exit {}", describe(e))),
        })
    });
    let (r, _) = r.map_err(|e| format!("seed {seed:#x}: {e}"))?;
    ensure!(r.passed, "seed {seed:#x}: stopped at {}", describe(&r.exit));
    let c = counts(t)?;
    let gps = c.get(&13).copied().unwrap_or(0);
    ensure!(r.debug == [gps], "seed {seed:#x}: guest counted {:#x?} #GPs, {gps} handled", r.debug);
    ensure!(
        c.keys().all(|&v| v == 13),
        "seed {seed:#x}: handlers ran with interrupts off: {c:#x?}"
    );
    // At least the ID MSR faults in every x2APIC round.
    ensure!(gps >= X2APIC_ROUNDS, "seed {seed:#x}: only {gps} #GPs");
    Ok(Pass)
}
