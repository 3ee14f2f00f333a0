// SPDX-License-Identifier: MIT OR Apache-2.0

//! The guest side of the local APIC tests: a runtime in guest memory, the
//! data it keeps there, and asm snippets that call it.
//!
//! [`rt_payload`] is 64-bit code loaded at [`RT`]. It starts with a table of
//! routine addresses that payloads call as `call *N(%r14)` (the harness
//! sets R14 = [`RT`]; [`rt_call!`] names the entries). `init` reads the
//! guest TSC frequency from CPUID 0x4000_0010 and sets R15 to the xAPIC
//! base, so payloads write registers as `movl $v, 0x300(%r15)`. Waits are
//! bounded by the guest TSC, so a guest that waits for an interrupt that
//! never comes fails instead of hanging.
//!
//! [`install_rt`] gives vCPU 0 an IDT into the runtime: vectors 32-255 go to
//! counting stubs that bump [`COUNTS`]`[vector]`, append the vector to
//! [`LOG`], write EOI (xAPIC or x2APIC, by [`X2`]) and return; NMI bumps
//! `COUNTS[2]` (and can skip a HLT, see [`NMI_FROM`]); #GP records its
//! error code and RIP and, at the addresses in [`GP_SKIP_A`] and
//! [`GP_SKIP_B`], skips the 2-byte RDMSR/WRMSR that faulted; any other
//! exception fails the test with code `0xbad00 | vector`. A guest check
//! that fails reports the value it saw on `PORT_DEBUG`, then fails with a
//! code of its own ([`report_fail!`]).
//!
//! Guest memory, beyond [`crate::guest`]'s layout:
//!
//! | GPA | use |
//! |---|---|
//! | [`DATA`] | [`COUNTS`], [`LOG`] and the runtime's other variables |
//! | [`ARGS`] | the test's own variables |
//! | [`TRAMP`] | AP trampolines (SIPI vector [`SIPI_VECTOR`]) |
//! | [`RT`] | the runtime |
//! | [`APIC_BASE`] | the xAPIC page (no RAM there) |
//!
//! Glossary: ICR, SVR, TPR, PPR, EOI, LVT, IRR = the APIC's interrupt
//! command, spurious-vector, task-priority, processor-priority,
//! end-of-interrupt, local-vector-table and interrupt-request registers;
//! DFR, LDR, DCR = destination format, logical destination and timer
//! divide configuration; SIPI = start-up IPI.

use std::collections::BTreeMap;

use libvmm::setup::Mode;
use libvmm::uapi::*;

use crate::guest::{s, Payload, TestVm, DATA, FREE};
use crate::{asm_debug, asm_fail, payload, sym};

/// The xAPIC page after reset.
pub const APIC_BASE: u64 = 0xfee0_0000;
/// Where the runtime is loaded.
pub const RT: u64 = 0x4_0000;
/// Where AP trampolines go: page-aligned below 1 MiB, SIPI vector
/// [`SIPI_VECTOR`].
pub const TRAMP: u64 = FREE;
/// The SIPI vector that starts an AP at [`TRAMP`].
pub const SIPI_VECTOR: u64 = TRAMP >> 12;
/// One u32 per vector: how often the runtime's handlers ran for it.
pub const COUNTS: u64 = DATA;
/// The vectors the counting stubs handled, in order (bytes).
pub const LOG: u64 = DATA + 0x400;
/// Room in [`LOG`]; later vectors are counted in [`LOG_LEN`] only.
pub const LOG_MAX: u64 = 64;
/// u32: how many vectors the counting stubs handled.
pub const LOG_LEN: u64 = DATA + 0x440;
/// u32: non-zero once the guest is in x2APIC mode (EOI by WRMSR).
pub const X2: u64 = DATA + 0x444;
/// u32: the guest TSC frequency in kHz (2 GHz assumed if CPUID says 0).
pub const KHZ: u64 = DATA + 0x448;
/// u32: non-zero if CPUID gave [`KHZ`]; elapsed-time checks need it.
pub const KHZ_KNOWN: u64 = DATA + 0x44c;
/// u64: TSC ticks the last elapsed-time check measured.
pub const ELAPSED: u64 = DATA + 0x450;
/// u64: the last #GP's error code.
pub const GP_ERR: u64 = DATA + 0x458;
/// u64: the last #GP's RIP.
pub const GP_RIP: u64 = DATA + 0x460;
/// u64: a RIP where #GP skips the 2-byte instruction (0: none).
pub const GP_SKIP_A: u64 = DATA + 0x468;
/// u64: another such RIP.
pub const GP_SKIP_B: u64 = DATA + 0x470;
/// u32: non-zero: a #GP anywhere else fails the test.
pub const GP_STRICT: u64 = DATA + 0x478;
/// u64s: NMIs that interrupt the guest at a RIP from [`NMI_FROM`] to
/// [`NMI_HLT`] resume after the HLT at [`NMI_HLT`] (0: none). An NMI is
/// not held back by IF = 0, so one that comes just before a `sti; hlt`
/// would otherwise leave the guest halted for good.
pub const NMI_FROM: u64 = DATA + 0x480;
/// See [`NMI_FROM`].
pub const NMI_HLT: u64 = DATA + 0x488;
/// Data of the test's own.
pub const ARGS: u64 = DATA + 0x800;

/// R14, which holds [`RT`] for the payloads.
const R14: u32 = reg::R8 + 6;

/// Guest asm: calls runtime routine `$r`. Routines keep every register but
/// RAX unless they say otherwise.
///
/// - `init`: reads the TSC frequency, sets R15 = [`APIC_BASE`]; clobbers
///   RCX and RDX.
/// - `wait_vec`: EAX = 0 once `COUNTS[EDI]` >= ESI, 1 after EDX ms.
/// - `wait_mem`: EAX = 0 once the u32 at RDI >= ESI, 1 after EDX ms.
/// - `delay`: waits EDI µs (interrupts as the caller left them).
/// - `count`: EAX = `COUNTS[EDI]`.
/// - `tsc`: RAX = the TSC; clobbers RDX.
/// - `elapsed`: EAX = 0 if EDI µs <= TSC - RSI <= EDX µs (or the TSC rate
///   is unknown), 1 if less, 2 if more; the ticks go to [`ELAPSED`].
/// - `icr`: sends ICR low EAX to destination EDX (xAPIC: written to the
///   high half first); clobbers RDX.
/// - `x2apic`: switches to x2APIC mode and sets [`X2`].
macro_rules! rt_call {
    (init) => {
        "call *0(%r14)\n"
    };
    (wait_vec) => {
        "call *8(%r14)\n"
    };
    (wait_mem) => {
        "call *16(%r14)\n"
    };
    (delay) => {
        "call *24(%r14)\n"
    };
    (count) => {
        "call *32(%r14)\n"
    };
    (tsc) => {
        "call *40(%r14)\n"
    };
    (elapsed) => {
        "call *48(%r14)\n"
    };
    (icr) => {
        "call *56(%r14)\n"
    };
    (x2apic) => {
        "call *64(%r14)\n"
    };
}
pub(crate) use rt_call;

/// Guest asm: reports EAX, then fails with `$code`.
macro_rules! report_fail {
    ($code:literal) => {
        concat!($crate::asm_debug!(), "movl $", $code, ", %eax\n", $crate::asm_fail!())
    };
}
pub(crate) use report_fail;

/// Guest asm: EDI, ESI, EDX = three immediates.
macro_rules! args3 {
    ($a:literal, $b:literal, $c:literal) => {
        concat!("movl $", $a, ", %edi\n movl $", $b, ", %esi\n movl $", $c, ", %edx\n")
    };
}

/// Guest asm: unless vector `$v` has been counted `$n` times within `$ms`
/// ms, reports the count and fails with `$code`.
macro_rules! wait_vec {
    ($v:literal, $n:literal, $ms:literal, $code:literal) => {
        concat!(
            $crate::tests::apic_rt::args3!($v, $n, $ms),
            $crate::tests::apic_rt::rt_call!(wait_vec),
            "testl %eax, %eax\n jz 7001f\n",
            $crate::tests::apic_rt::rt_call!(count),
            $crate::tests::apic_rt::report_fail!($code),
            "7001:\n"
        )
    };
}
pub(crate) use {args3, wait_vec};

/// Guest asm: unless the u32 at `$addr` reaches `$n` (an AT&T source
/// operand: `$5`, `%r12d`) within `$ms` ms, reports it and fails with
/// `$code`.
macro_rules! wait_mem {
    ($addr:literal, $n:literal, $ms:literal, $code:literal) => {
        concat!(
            "movl $",
            $addr,
            ", %edi\n movl ",
            $n,
            ", %esi\n movl $",
            $ms,
            ", %edx\n",
            $crate::tests::apic_rt::rt_call!(wait_mem),
            "testl %eax, %eax\n jz 7003f\n movl (%rdi), %eax\n",
            $crate::tests::apic_rt::report_fail!($code),
            "7003:\n"
        )
    };
}
pub(crate) use wait_mem;

/// Guest asm: unless vector `$v` has been counted exactly `$n` times,
/// reports the count and fails with `$code`.
macro_rules! expect_count {
    ($v:literal, $n:literal, $code:literal) => {
        concat!(
            "movl $",
            $v,
            ", %edi\n",
            $crate::tests::apic_rt::rt_call!(count),
            "cmpl $",
            $n,
            ", %eax\n je 7002f\n",
            $crate::tests::apic_rt::report_fail!($code),
            "7002:\n"
        )
    };
}
pub(crate) use expect_count;

/// Guest asm: unless EAX is `$v`, reports EAX and fails with `$code`.
macro_rules! expect_eax {
    ($v:literal, $code:literal) => {
        concat!(
            "cmpl $",
            $v,
            ", %eax\n je 7005f\n",
            $crate::tests::apic_rt::report_fail!($code),
            "7005:\n"
        )
    };
}
pub(crate) use expect_eax;

/// Guest asm: unless `$min` µs <= TSC - `$start` (a register) <= `$max`
/// µs, reports 1 (too soon) or 2 (too late) and fails with `$code`.
macro_rules! expect_elapsed {
    ($start:literal, $min:literal, $max:literal, $code:literal) => {
        concat!(
            "movq ",
            $start,
            ", %rsi\n movl $",
            $min,
            ", %edi\n movl $",
            $max,
            ", %edx\n",
            $crate::tests::apic_rt::rt_call!(elapsed),
            "testl %eax, %eax\n jz 7004f\n",
            $crate::tests::apic_rt::report_fail!($code),
            "7004:\n"
        )
    };
}
pub(crate) use expect_elapsed;

/// Guest asm: waits `$us` µs.
macro_rules! delay_us {
    ($us:literal) => {
        concat!("movl $", $us, ", %edi\n", $crate::tests::apic_rt::rt_call!(delay))
    };
}
pub(crate) use delay_us;

/// Guest asm: sends ICR low `$low` to destination `$dest`.
macro_rules! send_icr {
    ($low:literal, $dest:literal) => {
        concat!(
            "movl $",
            $low,
            ", %eax\n movl $",
            $dest,
            ", %edx\n",
            $crate::tests::apic_rt::rt_call!(icr)
        )
    };
}
pub(crate) use send_icr;

/// One entry of the runtime's call table.
macro_rules! rt_entry {
    ($name:ident) => {
        concat!(".quad vmm_guest_apic_rt_", stringify!($name), " - vmm_guest_apic_rt_start + {rt}")
    };
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_rt_start, vmm_guest_apic_rt_end",
    ".globl vmm_guest_apic_rt_init, vmm_guest_apic_rt_wait_vec, vmm_guest_apic_rt_wait_mem",
    ".globl vmm_guest_apic_rt_delay, vmm_guest_apic_rt_count, vmm_guest_apic_rt_tsc",
    ".globl vmm_guest_apic_rt_elapsed, vmm_guest_apic_rt_icr, vmm_guest_apic_rt_x2apic",
    ".globl vmm_guest_apic_rt_count_stubs, vmm_guest_apic_rt_bad_stubs",
    ".globl vmm_guest_apic_rt_nmi, vmm_guest_apic_rt_gp",
    "vmm_guest_apic_rt_start:",
    ".code64",
    rt_entry!(init),
    rt_entry!(wait_vec),
    rt_entry!(wait_mem),
    rt_entry!(delay),
    rt_entry!(count),
    rt_entry!(tsc),
    rt_entry!(elapsed),
    rt_entry!(icr),
    rt_entry!(x2apic),
    // init
    "vmm_guest_apic_rt_init:",
    "pushq %rbx",
    "movl $0x40000010, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "popq %rbx",
    "movl %eax, {khz}",
    "movl $1, {khz_known}",
    "testl %eax, %eax",
    "jnz 11f",
    "movl $2000000, {khz}",
    "movl $0, {khz_known}",
    "11: movl ${apic}, %r15d",
    "ret",
    // wait_vec
    "vmm_guest_apic_rt_wait_vec:",
    "pushq %rdi",
    "leaq {counts}(,%rdi,4), %rdi",
    "call vmm_guest_apic_rt_wait_mem",
    "popq %rdi",
    "ret",
    // wait_mem
    "vmm_guest_apic_rt_wait_mem:",
    "pushq %rcx",
    "pushq %rdx",
    "pushq %r8",
    "pushq %r9",
    "movl %edx, %ecx",
    "call vmm_guest_apic_rt_tsc",
    "movq %rax, %r8",
    "movl {khz}, %eax",
    "imulq %rcx, %rax",
    "movq %rax, %r9",
    "31: cmpl %esi, (%rdi)",
    "jae 32f",
    "pause",
    "call vmm_guest_apic_rt_tsc",
    "subq %r8, %rax",
    "cmpq %r9, %rax",
    "jb 31b",
    "movl $1, %eax",
    "jmp 33f",
    "32: xorl %eax, %eax",
    "33: popq %r9",
    "popq %r8",
    "popq %rdx",
    "popq %rcx",
    "ret",
    // delay
    "vmm_guest_apic_rt_delay:",
    "pushq %rcx",
    "pushq %rdx",
    "pushq %r8",
    "pushq %r9",
    "call 45f",
    "movq %rax, %r9",
    "call vmm_guest_apic_rt_tsc",
    "movq %rax, %r8",
    "41: pause",
    "call vmm_guest_apic_rt_tsc",
    "subq %r8, %rax",
    "cmpq %r9, %rax",
    "jb 41b",
    "popq %r9",
    "popq %r8",
    "popq %rdx",
    "popq %rcx",
    "ret",
    // RAX = TSC ticks in EDI µs; clobbers RCX, RDX.
    "45: movl {khz}, %eax",
    "movl %edi, %ecx",
    "imulq %rcx, %rax",
    "xorl %edx, %edx",
    "movl $1000, %ecx",
    "divq %rcx",
    "ret",
    // count
    "vmm_guest_apic_rt_count:",
    "movl {counts}(,%rdi,4), %eax",
    "ret",
    // tsc
    "vmm_guest_apic_rt_tsc:",
    "rdtsc",
    "shlq $32, %rdx",
    "orq %rdx, %rax",
    "ret",
    // elapsed
    "vmm_guest_apic_rt_elapsed:",
    "pushq %rcx",
    "pushq %rdx",
    "pushq %rdi",
    "pushq %r8",
    "pushq %r9",
    "movl %edx, %r9d",
    "call vmm_guest_apic_rt_tsc",
    "subq %rsi, %rax",
    "movq %rax, %r8",
    "movq %rax, {elapsed}",
    "xorl %eax, %eax",
    "cmpl $0, {khz_known}",
    "je 59f",
    "call 45b",
    "cmpq %rax, %r8",
    "jb 57f",
    "movl %r9d, %edi",
    "call 45b",
    "cmpq %rax, %r8",
    "ja 58f",
    "xorl %eax, %eax",
    "jmp 59f",
    "57: movl $1, %eax",
    "jmp 59f",
    "58: movl $2, %eax",
    "59: popq %r9",
    "popq %r8",
    "popq %rdi",
    "popq %rdx",
    "popq %rcx",
    "ret",
    // icr
    "vmm_guest_apic_rt_icr:",
    "cmpl $0, {x2}",
    "jne 61f",
    "shll $24, %edx",
    "movl %edx, 0x310(%r15)",
    "movl %eax, 0x300(%r15)",
    "ret",
    "61: pushq %rcx",
    "movl $0x830, %ecx",
    "wrmsr",
    "popq %rcx",
    "ret",
    // x2apic
    "vmm_guest_apic_rt_x2apic:",
    "pushq %rcx",
    "pushq %rdx",
    "movl $0x1b, %ecx",
    "rdmsr",
    "orl $0x400, %eax",
    "wrmsr",
    "movl $1, {x2}",
    "popq %rdx",
    "popq %rcx",
    "ret",
    // Vectors 0-255: `call` (5 bytes) and 3 bytes of padding each, so the
    // return address says which vector it was.
    "vmm_guest_apic_rt_count_stubs:",
    ".rept 256",
    "call 70f",
    ".byte 0xcc, 0xcc, 0xcc",
    ".endr",
    "70: pushq %rax",
    "pushq %rdx",
    "movq 16(%rsp), %rax",
    "subl $(vmm_guest_apic_rt_count_stubs - vmm_guest_apic_rt_start + {rt} + 5), %eax",
    "shrl $3, %eax",
    "lock incl {counts}(,%rax,4)",
    "movl {log_len}, %edx",
    "cmpl ${log_max}, %edx",
    "jae 71f",
    "movb %al, {log}(%rdx)",
    "71: incl {log_len}",
    "cmpl $0, {x2}",
    "jne 72f",
    "movl ${apic}, %eax",
    "movl $0, 0xb0(%rax)",
    "jmp 73f",
    "72: pushq %rcx",
    "movl $0x80b, %ecx",
    "xorl %eax, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "popq %rcx",
    "73: popq %rdx",
    "popq %rax",
    "addq $8, %rsp",
    "iretq",
    // Exceptions nobody expects: report the first two frame words (error
    // code and RIP, or RIP and CS), then fail with 0xbad00 | vector.
    "vmm_guest_apic_rt_bad_stubs:",
    ".rept 32",
    "call 80f",
    ".byte 0xcc, 0xcc, 0xcc",
    ".endr",
    "80: movq 8(%rsp), %rax",
    asm_debug!(),
    "movq 16(%rsp), %rax",
    asm_debug!(),
    "popq %rax",
    "subl $(vmm_guest_apic_rt_bad_stubs - vmm_guest_apic_rt_start + {rt} + 5), %eax",
    "shrl $3, %eax",
    "orl $0xbad00, %eax",
    asm_fail!(),
    "vmm_guest_apic_rt_nmi:",
    "pushq %rax",
    "lock incl {counts} + 8",
    "movq 8(%rsp), %rax",
    "cmpq {nmi_from}, %rax",
    "jb 85f",
    "cmpq {nmi_hlt}, %rax",
    "ja 85f",
    "movq {nmi_hlt}, %rax",
    "incq %rax",
    "movq %rax, 8(%rsp)",
    "85: popq %rax",
    "iretq",
    "vmm_guest_apic_rt_gp:",
    "pushq %rax",
    "lock incl {counts} + 52",
    "movq 8(%rsp), %rax",
    "movq %rax, {gp_err}",
    "movq 16(%rsp), %rax",
    "movq %rax, {gp_rip}",
    "cmpq {gp_skip_a}, %rax",
    "je 91f",
    "cmpq {gp_skip_b}, %rax",
    "je 91f",
    "cmpl $0, {gp_strict}",
    "je 92f",
    asm_debug!(),
    "movl $0xbad0d, %eax",
    asm_fail!(),
    "91: addq $2, 16(%rsp)",
    "92: popq %rax",
    "addq $8, %rsp",
    "iretq",
    "vmm_guest_apic_rt_end:",
    ".popsection",
    rt = const RT,
    apic = const APIC_BASE,
    counts = const COUNTS,
    log = const LOG,
    log_max = const LOG_MAX,
    log_len = const LOG_LEN,
    x2 = const X2,
    khz = const KHZ,
    khz_known = const KHZ_KNOWN,
    elapsed = const ELAPSED,
    gp_err = const GP_ERR,
    gp_rip = const GP_RIP,
    gp_skip_a = const GP_SKIP_A,
    gp_skip_b = const GP_SKIP_B,
    gp_strict = const GP_STRICT,
    nmi_from = const NMI_FROM,
    nmi_hlt = const NMI_HLT,
    options(att_syntax)
);

/// The guest runtime (see the module documentation).
pub fn rt_payload() -> Payload {
    payload!(vmm_guest_apic_rt_start, vmm_guest_apic_rt_end)
}

/// The runtime's IDT entry for `vector`, given the addresses of the two
/// stub arrays and of the NMI and #GP handlers.
fn rt_gate(vector: u8, count_stubs: u64, bad_stubs: u64, nmi: u64, gp: u64) -> u64 {
    match vector {
        2 => nmi,
        13 => gp,
        0..=31 => bad_stubs + 8 * u64::from(vector),
        _ => count_stubs + 8 * u64::from(vector),
    }
}

/// Loads the runtime at [`RT`], points vCPU 0's IDT into it and sets its
/// R14 to [`RT`]. vCPU 0 must be in long mode.
pub fn install_rt(t: &TestVm) -> Result<(), String> {
    let rt = rt_payload();
    t.write(RT, rt.bytes)?;
    let count = rt.addr(sym!(vmm_guest_apic_rt_count_stubs), RT);
    let bad = rt.addr(sym!(vmm_guest_apic_rt_bad_stubs), RT);
    let nmi = rt.addr(sym!(vmm_guest_apic_rt_nmi), RT);
    let gp = rt.addr(sym!(vmm_guest_apic_rt_gp), RT);
    t.install_idt(Mode::Long64, |v| rt_gate(v, count, bad, nmi, gp))?;
    s(t.vcpu.set_regs(&[(R14, RT)]))
}

/// Reads `n` little-endian u32s at `gpa`.
pub fn read_u32s(t: &TestVm, gpa: u64, n: usize) -> Result<Vec<u32>, String> {
    let b = t.read(gpa, 4 * n)?;
    Ok(b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// The vectors the runtime counted, and how often (non-zero only).
pub fn counts(t: &TestVm) -> Result<BTreeMap<u8, u32>, String> {
    let c = read_u32s(t, COUNTS, 256)?;
    Ok((0..=255u8).zip(c).filter(|&(_, n)| n != 0).collect())
}

/// The vectors the counting stubs handled, in order.
pub fn handled(t: &TestVm) -> Result<Vec<u8>, String> {
    let n = read_u32s(t, LOG_LEN, 1)?[0];
    t.read(LOG, n.min(LOG_MAX as u32) as usize)
}

/// Fails unless the runtime counted exactly the vectors of `want`.
pub fn expect_counts(t: &TestVm, want: &[(u8, u32)]) -> Result<(), String> {
    let got = counts(t)?;
    let want: BTreeMap<u8, u32> = want.iter().copied().collect();
    if got != want {
        return Err(format!("handler counts {got:#x?}, want {want:#x?}"));
    }
    Ok(())
}

/// What the runtime saw, for failure messages.
pub fn apic_state(t: &TestVm) -> String {
    let summary = || -> Result<String, String> {
        let khz = read_u32s(t, KHZ, 2)?;
        Ok(format!(
            "guest state: counts {:x?}, handled {:x?}, last elapsed {} TSC ticks ({} kHz{}), \
             last #GP error {:#x} at {:#x}",
            counts(t)?,
            handled(t)?,
            t.read_u64(ELAPSED)?,
            khz[0],
            if khz[1] == 0 { ", guessed" } else { "" },
            t.read_u64(GP_ERR)?,
            t.read_u64(GP_RIP)?,
        ))
    };
    summary().unwrap_or_else(|e| format!("guest state unreadable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_table_matches_rt_call() {
        let rt = rt_payload();
        let table = [
            sym!(vmm_guest_apic_rt_init),
            sym!(vmm_guest_apic_rt_wait_vec),
            sym!(vmm_guest_apic_rt_wait_mem),
            sym!(vmm_guest_apic_rt_delay),
            sym!(vmm_guest_apic_rt_count),
            sym!(vmm_guest_apic_rt_tsc),
            sym!(vmm_guest_apic_rt_elapsed),
            sym!(vmm_guest_apic_rt_icr),
            sym!(vmm_guest_apic_rt_x2apic),
        ];
        let calls = [
            rt_call!(init),
            rt_call!(wait_vec),
            rt_call!(wait_mem),
            rt_call!(delay),
            rt_call!(count),
            rt_call!(tsc),
            rt_call!(elapsed),
            rt_call!(icr),
            rt_call!(x2apic),
        ];
        for (i, (&label, call)) in table.iter().zip(calls).enumerate() {
            let at = 8 * i;
            let entry = u64::from_le_bytes(rt.bytes[at..at + 8].try_into().unwrap());
            assert_eq!(entry, rt.addr(label, RT), "entry {i}");
            assert_eq!(call, format!("call *{at}(%r14)\n"), "rt_call! entry {i}");
        }
    }

    #[test]
    fn stubs_are_eight_bytes_and_call_their_handler() {
        let rt = rt_payload();
        for (label, n) in
            [(sym!(vmm_guest_apic_rt_count_stubs), 256), (sym!(vmm_guest_apic_rt_bad_stubs), 32)]
        {
            let off = (rt.addr(label, RT) - RT) as usize;
            let target = |i: usize| {
                let at = off + 8 * i;
                let rel = i32::from_le_bytes(rt.bytes[at + 1..at + 5].try_into().unwrap());
                (at as i64 + 5 + i64::from(rel)) as usize
            };
            for i in 0..n {
                let at = off + 8 * i;
                assert_eq!(rt.bytes[at], 0xe8, "stub {i} is no CALL rel32");
                assert_eq!(&rt.bytes[at + 5..at + 8], &[0xcc; 3], "stub {i} padding");
                assert_eq!(target(i), target(0), "stub {i} calls elsewhere");
            }
            assert_eq!(target(0), off + 8 * n, "the handler follows the stubs");
        }
    }

    #[test]
    fn gates_lead_to_the_right_handlers() {
        let g = |v| rt_gate(v, 0x1000, 0x2000, 0x3000, 0x4000);
        assert_eq!((g(0), g(1), g(2), g(13), g(31)), (0x2000, 0x2008, 0x3000, 0x4000, 0x20f8));
        assert_eq!((g(32), g(0x40), g(255)), (0x1100, 0x1200, 0x17f8));
    }

    #[test]
    fn layout_fits() {
        const { assert!(ARGS >= NMI_HLT + 8 && NMI_FROM >= GP_STRICT + 4) };
        const { assert!(LOG + LOG_MAX <= LOG_LEN) };
        const { assert!(TRAMP % 0x1000 == 0 && TRAMP < 0x10_0000 && SIPI_VECTOR == 0x30) };
        let rt = rt_payload();
        assert!(rt.end(RT) <= crate::guest::RAM_LEN && RT >= TRAMP + 0x1000);
    }
}
