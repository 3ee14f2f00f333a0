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
//! NMI or SMI are made fixed. The seed comes from `vmmtest_seed` like the
//! random-code tests' and is printed with any failure. The guest counts
//! the #GPs it took in the u32 at RBP: the runtime's count for one vCPU.
//!
//! [`apic_random_multi`] runs the same guest on several vCPUs at once, each
//! with a seed of its own and a #GP counter of its own (a #GP gate that
//! bumps the u32 at RBP, then goes on to the runtime's handler). Their
//! fixed IPIs land in each other's IRRs, and their xAPIC IDs may collide.

use libvmm::setup::{setup_vcpu, Mode};
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use super::apic_rt::{counts, read_u32s, rt_call, rt_payload, ARGS, COUNTS, RT};
use super::apic_rt::{GP_SKIP_A, GP_SKIP_B, GP_STRICT};
use super::apic_vm::{
    bsp_run, expect_aps_suspended, halt_after_pass, run_all, skip_on_qemu_svm, ApicVm,
};
use crate::guest::{describe, idt_table, s, FREE, IDT, LOAD, SCRATCH, STACK};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, asm_pass, ensure, payload, sym};

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
    "movl (%rbp), %esi",
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
    "movl (%rbp), %eax",
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
    "97: movl (%rbp), %edi",
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
    s(t.vcpu.set_regs(&[(reg::RDI, seed), (reg::RBP, COUNTS + 4 * 13)]))?;
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

// --- several vCPUs at once -----------------------------------------------------

/// u64: where the multi-vCPU #GP gate goes on to (the runtime's handler).
const GP_NEXT: u64 = ARGS + 8;
/// u32 per vCPU: the #GPs it took.
const GP_PER_VCPU: u64 = ARGS + 0x10;
/// Where the multi-vCPU #GP gate goes in guest memory.
const GP_GATE: u64 = FREE;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_random_gp_start, vmm_guest_apic_random_gp_end",
    "vmm_guest_apic_random_gp_start:",
    ".code64",
    "lock incl (%rbp)",
    "jmp *{next}",
    "vmm_guest_apic_random_gp_end:",
    ".popsection",
    next = const GP_NEXT,
    options(att_syntax)
);

/// How many vCPUs [`apic_random_multi`] runs: 2 on VT-x (Bochs, slow),
/// else 4.
fn multi_vcpus() -> u32 {
    if std::env::var("vmmtest_backend").is_ok_and(|b| b == "vmx") {
        2
    } else {
        4
    }
}

/// vCPU `i`'s seed, from the run's `base`.
fn multi_seed(base: u64, i: u32) -> u64 {
    (base ^ u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(7 * i) | 1
}

/// Puts AP `i` of `v` at the payload in long mode with the runtime, its
/// own stack, seed and #GP counter. It waits for SIPI until told to run.
fn start_ap(v: &ApicVm, ap: &VcpuFd, i: u32, seed: u64) -> Result<(), String> {
    let t = &v.t;
    s(ap.set_run_state(VMM_RUN_STATE_RUNNING, 0))?;
    let stack = STACK - 0x1000 * u64::from(i);
    setup_vcpu(ap, &t.mem, 0, Mode::Long64, LOAD, stack, SCRATCH)
        .map_err(|e| format!("setup_vcpu of vCPU {i}: {e}"))?;
    let idtr = s(t.vcpu.get_descs(&[reg::IDTR]))?[0];
    s(ap.set_descs(&[(reg::IDTR, idtr)]))?;
    let counter = GP_PER_VCPU + 4 * u64::from(i);
    s(ap.set_regs(&[(reg::R8 + 6, RT), (reg::RDI, seed), (reg::RBP, counter)]))
}

/// On the QEMU AMD-V machines this test skips ([`skip_on_qemu_svm`]): under
/// this load QEMU 10.0.2 now and then writes the host's state into a vCPU's
/// VMCB at a #VMEXIT (RIP after VMRUN in `vmm_svm_vmrun`, host RSP, CR3 and
/// EFER, `int_ctl` 0), which vmm now detects and fails with `EIO`.
pub fn apic_random_multi() -> TestResult {
    skip_on_qemu_svm()?;
    let n = multi_vcpus();
    let base = crate::tests::fuzz::seed(Mode::Long64).rotate_left(29);
    let seeds: Vec<u64> = (0..n).map(|i| multi_seed(base, i)).collect();
    let seeds_text = seeds.iter().map(|s| format!("{s:#x}")).collect::<Vec<_>>().join(", ");
    println!("# apic_random_multi: {n} vCPUs, seeds {seeds_text}");
    let p = payload!(vmm_guest_apic_random_start, vmm_guest_apic_random_end);
    let v = ApicVm::new("apic-random-multi", n, &p)?;
    let t = &v.t;
    t.write(XAPIC_ROUNDS_AT, &XAPIC_ROUNDS.to_le_bytes())?;
    t.write(X2APIC_ROUNDS_AT, &X2APIC_ROUNDS.to_le_bytes())?;
    // Gate 13 of the IDT they share counts in the u32 at RBP first.
    t.write_u64(GP_NEXT, rt_payload().addr(sym!(vmm_guest_apic_rt_gp), RT))?;
    t.write(GP_GATE, payload!(vmm_guest_apic_random_gp_start, vmm_guest_apic_random_gp_end).bytes)?;
    t.write(IDT + 13 * 16, &idt_table(Mode::Long64, |_| GP_GATE)[13 * 16..14 * 16])?;
    s(t.vcpu.set_regs(&[(reg::RDI, seeds[0]), (reg::RBP, GP_PER_VCPU)]))?;
    for (i, ap) in (1..).zip(&v.aps) {
        start_ap(&v, ap, i, seeds[i as usize])?;
    }
    let r = run_all(&v, |_| {
        let r = bsp_run(t, |x, e| match x {
            Exit::Rdmsr(msr) | Exit::Wrmsr(msr, _) if (0x800..=0x8ff).contains(msr) => {
                Err(format!("x2APIC MSR {msr:#x} left to userspace: {}", describe(e)))
            }
            _ => Err(format!("unexpected exit {}", describe(e))),
        })?;
        halt_after_pass(&v)?;
        Ok(r)
    });
    let (r, aps) = r.map_err(|e| format!("seeds {seeds_text}: {e}"))?;
    let per = read_u32s(t, GP_PER_VCPU, n as usize)?;
    ensure!(r.debug == [per[0]], "vCPU 0 counted {:#x?} #GPs, {} handled", r.debug, per[0]);
    for ap in &aps {
        let gps = per[ap.id as usize];
        ensure!(
            ap.passed && ap.debug == [gps],
            "seeds {seeds_text}: vCPU {} passed {}, counted {:#x?} #GPs, {gps} handled",
            ap.id,
            ap.passed,
            ap.debug
        );
    }
    expect_aps_suspended(&aps)?;
    let c = counts(t)?;
    let total = c.get(&13).copied().unwrap_or(0);
    ensure!(
        c.keys().all(|&v| v == 13) && total == per.iter().sum::<u32>(),
        "seeds {seeds_text}: handler counts {c:#x?}, #GPs per vCPU {per:?}"
    );
    ensure!(
        per.iter().all(|&g| g >= X2APIC_ROUNDS),
        "seeds {seeds_text}: #GPs per vCPU {per:?}, want at least {X2APIC_ROUNDS} each"
    );
    Ok(Pass)
}
