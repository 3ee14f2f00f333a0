// SPDX-License-Identifier: MIT OR Apache-2.0

//! An application-processor (AP) runtime for the multi-vCPU APIC tests:
//! a trampoline that a SIPI to vector
//! [`SIPI_VECTOR`](super::apic_rt::SIPI_VECTOR) starts, and the
//! handlers it installs.
//!
//! Each AP, in real mode, takes its APIC ID from CPUID leaf 1, reports it
//! on `PORT_DEBUG` if [`AP_REPORT`] is set, counts itself in
//! [`AP_COUNT`], and switches to flat 32-bit protected mode (paging off,
//! so the APIC page is reachable). There it loads [`AP_IDT`], enables its
//! APIC in xAPIC mode (flat logical ID `1 << id` for IDs below 8) or, with
//! [`AP_MODE`] set, in x2APIC mode, sets its TPR from [`AP_TPR`]`[id]`,
//! counts itself in [`AP_READY`] and waits in `sti; hlt`. ESI holds the
//! APIC ID from then on, which is how the handlers know whose counter to
//! bump:
//!
//! | vector | handler |
//! |---|---|
//! | 2 (NMI) | bumps [`AP_NMI`]`[id]` |
//! | 0x41 | EOI, bumps [`AP_HITS`]`[id]` |
//! | 0x42 | EOI, bumps [`AP_LP`]`[id]` |
//! | 0x4f | EOI, then runs the command in [`CMD`] (see [`Cmd`]) |
//! | any other | reports the vector and fails with `0xbad000 \| id << 8 \| vector` |
//!
//! EOI goes to the xAPIC page or the x2APIC MSR as [`AP_X2`]`[id]` says.
//! Counters are arrays of 64 u32s indexed by APIC ID.

use libvmm::setup::{sel, Mode, GDT_LIMIT, GDT_OFFSET};

use super::apic_rt::{read_u32s, APIC_BASE, ARGS, TRAMP};
use super::apic_vm::ApicVm;
use crate::guest::{create_apic_vcpu, idt_table, Payload, DATA, RAM_LEN, SCRATCH};
use crate::{asm_debug, asm_fail, ensure, payload, sym};

/// u32: APs that ran the trampoline (once per start).
pub const AP_COUNT: u64 = ARGS;
/// u32: APs waiting for interrupts.
pub const AP_READY: u64 = ARGS + 4;
/// u32: non-zero: each AP reports its APIC ID on `PORT_DEBUG`.
pub const AP_REPORT: u64 = ARGS + 8;
/// u32: non-zero: the APs switch to x2APIC mode.
pub const AP_MODE: u64 = ARGS + 0xc;
/// u32: the command vector 0x4f runs (a [`Cmd`]).
pub const CMD: u64 = ARGS + 0x10;
/// u32: the command's first argument.
pub const CMD_LO: u64 = ARGS + 0x14;
/// u32: the command's second argument.
pub const CMD_HI: u64 = ARGS + 0x18;
/// u32: what the last command read.
pub const CMD_RESULT: u64 = ARGS + 0x1c;
/// u32: commands run so far.
pub const CMD_DONE: u64 = ARGS + 0x20;
/// u32 per APIC ID: the TPR the AP starts with.
pub const AP_TPR: u64 = ARGS + 0x100;
/// u32 per APIC ID: vector 0x41 handled.
pub const AP_HITS: u64 = ARGS + 0x200;
/// u32 per APIC ID: vector 0x42 handled.
pub const AP_LP: u64 = ARGS + 0x300;
/// u32 per APIC ID: NMIs handled.
pub const AP_NMI: u64 = ARGS + 0x400;
/// u32 per APIC ID: non-zero while the AP is in x2APIC mode.
pub const AP_X2: u64 = ARGS + 0x500;
/// The tests' own data, past the runtimes'.
pub const TEST_DATA: u64 = DATA + 0x1000;
/// The APs' 32-bit IDT (256 gates).
pub const AP_IDT: u64 = TRAMP + 0x8000;
/// AP n's stack is the page below `AP_STACKS + (n + 1) * 0x1000`.
pub const AP_STACKS: u64 = 0x5_0000;
/// Most APIC IDs the counters have room for.
pub const MAX_ID: u32 = 64;

/// The real-mode data segment that addresses [`DATA`] from offset 0.
const DATA_SEG: u64 = DATA >> 4;

const _: () = assert!(
    DATA_SEG << 4 == DATA
        && AP_X2 + 4 * MAX_ID as u64 <= ARGS + 0x600
        && ARGS + 0x600 <= TEST_DATA
        && AP_STACKS + (MAX_ID as u64 + 1) * 0x1000 <= RAM_LEN
);

/// What vector 0x4f makes an AP do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Cmd {
    /// Send ICR low [`CMD_LO`] to destination [`CMD_HI`] (x2APIC: the
    /// 32-bit destination; xAPIC: the 8-bit one).
    Ipi = 1,
    /// Read the u32 at address [`CMD_LO`] into [`CMD_RESULT`].
    Read = 2,
    /// Disable the APIC (clear `IA32_APIC_BASE` bits 11 and 10), read the
    /// u32 at [`CMD_LO`] into [`CMD_RESULT`], write [`CMD_HI`] there, and
    /// halt with interrupts off for good.
    DisableThenAccess = 3,
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_ap_start, vmm_guest_apic_ap_end, vmm_guest_apic_ap_stubs",
    "vmm_guest_apic_ap_start:",
    ".code16",
    "cli",
    "movw ${data_seg}, %ax",
    "movw %ax, %ds",
    "movl $1, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "shrl $24, %ebx",
    "movl %ebx, %esi",
    "cmpl $0, {report16}",
    "je 1f",
    "movl %esi, %eax",
    asm_debug!(),
    "1: lock incl {count16}",
    "lgdtl %cs:(2f - vmm_guest_apic_ap_start)",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl ${code32}, $(4f - vmm_guest_apic_ap_start + {tramp})",
    "2: .word {gdt_limit}",
    ".long {gdt}",
    "3: .word 0x7ff",
    ".long {ap_idt}",
    ".code32",
    "4: movw ${data32}, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    "leal 1(%esi), %esp",
    "shll $12, %esp",
    "addl ${ap_stacks}, %esp",
    "lidtl 3b - vmm_guest_apic_ap_start + {tramp}",
    "movl ${apic}, %ebx",
    "cmpl $0, {mode}",
    "je 5f",
    // x2APIC: EN | EXTD, then SVR and TPR by MSR.
    "movl $0x1b, %ecx",
    "rdmsr",
    "orl $0xc00, %eax",
    "wrmsr",
    "movl $1, {x2}(,%esi,4)",
    "movl $0x80f, %ecx",
    "movl $0x1ff, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "movl $0x808, %ecx",
    "movl {tpr}(,%esi,4), %eax",
    "wrmsr",
    "jmp 7f",
    // xAPIC: SVR, TPR, flat logical ID 1 << id below 8, else 0.
    "5: movl $0x1ff, 0xf0(%ebx)",
    "movl {tpr}(,%esi,4), %eax",
    "movl %eax, 0x80(%ebx)",
    "xorl %eax, %eax",
    "cmpl $8, %esi",
    "jae 6f",
    "movl %esi, %ecx",
    "movl $1, %eax",
    "shll %cl, %eax",
    "shll $24, %eax",
    "6: movl %eax, 0xd0(%ebx)",
    "7: lock incl {ready}",
    "8: sti",
    "hlt",
    "jmp 8b",
    // 256 stubs of 8 bytes: `call` and padding, so that the return address
    // says which vector it was.
    "vmm_guest_apic_ap_stubs:",
    ".rept 256",
    "call 10f",
    ".byte 0xcc, 0xcc, 0xcc",
    ".endr",
    "10: pushl %eax",
    "pushl %ecx",
    "pushl %edx",
    "movl 12(%esp), %eax",
    "subl $(vmm_guest_apic_ap_stubs - vmm_guest_apic_ap_start + {tramp} + 5), %eax",
    "shrl $3, %eax",
    "cmpl $2, %eax",
    "je 20f",
    "cmpl $0x41, %eax",
    "je 21f",
    "cmpl $0x42, %eax",
    "je 22f",
    "cmpl $0x4f, %eax",
    "je 30f",
    // Anything else: report the vector and the frame's first word, fail.
    asm_debug!(),
    "pushl %eax",
    "movl 20(%esp), %eax",
    asm_debug!(),
    "popl %eax",
    "movl %esi, %ecx",
    "shll $8, %ecx",
    "orl %ecx, %eax",
    "orl $0xbad000, %eax",
    asm_fail!(),
    // EOI before the count: whoever sees the count may rely on the
    // vector having left ISR (lowest-priority arbitration does).
    "20: lock incl {nmi}(,%esi,4)",
    "jmp 29f",
    "21: call 40f",
    "lock incl {hits}(,%esi,4)",
    "jmp 29f",
    "22: call 40f",
    "lock incl {lp}(,%esi,4)",
    "29: popl %edx",
    "popl %ecx",
    "popl %eax",
    "addl $4, %esp",
    "iretl",
    // Vector 0x4f: EOI, then the command.
    "30: call 40f",
    "movl {cmd}, %eax",
    "cmpl $1, %eax",
    "je 31f",
    "cmpl $2, %eax",
    "je 32f",
    "cmpl $3, %eax",
    "je 33f",
    "orl $0xbadc00, %eax",
    asm_fail!(),
    "31: cmpl $0, {x2}(,%esi,4)",
    "je 34f",
    "movl $0x830, %ecx",
    "movl {cmd_lo}, %eax",
    "movl {cmd_hi}, %edx",
    "wrmsr",
    "jmp 39f",
    "34: movl {cmd_hi}, %eax",
    "shll $24, %eax",
    "movl %eax, {apic} + 0x310",
    "movl {cmd_lo}, %eax",
    "movl %eax, {apic} + 0x300",
    "jmp 39f",
    "32: movl {cmd_lo}, %eax",
    "movl (%eax), %eax",
    "movl %eax, {cmd_result}",
    "jmp 39f",
    "33: movl $0x1b, %ecx",
    "rdmsr",
    "andl $0xfffff3ff, %eax",
    "wrmsr",
    "movl $0, {x2}(,%esi,4)",
    "movl {cmd_lo}, %ecx",
    "movl (%ecx), %eax",
    "movl %eax, {cmd_result}",
    "movl {cmd_hi}, %eax",
    "movl %eax, (%ecx)",
    "lock incl {cmd_done}",
    "35: cli",
    "hlt",
    "jmp 35b",
    "39: lock incl {cmd_done}",
    "jmp 29b",
    // EOI by the AP's mode; clobbers EAX, ECX, EDX.
    "40: cmpl $0, {x2}(,%esi,4)",
    "jne 41f",
    "movl $0, {apic} + 0xb0",
    "ret",
    "41: movl $0x80b, %ecx",
    "xorl %eax, %eax",
    "xorl %edx, %edx",
    "wrmsr",
    "ret",
    ".code64",
    "vmm_guest_apic_ap_end:",
    ".popsection",
    data_seg = const DATA_SEG,
    report16 = const AP_REPORT - DATA,
    count16 = const AP_COUNT - DATA,
    code32 = const sel::CODE32,
    data32 = const sel::DATA,
    tramp = const TRAMP,
    gdt_limit = const GDT_LIMIT,
    gdt = const SCRATCH + GDT_OFFSET,
    ap_idt = const AP_IDT,
    ap_stacks = const AP_STACKS,
    apic = const APIC_BASE,
    mode = const AP_MODE,
    x2 = const AP_X2,
    tpr = const AP_TPR,
    ready = const AP_READY,
    nmi = const AP_NMI,
    hits = const AP_HITS,
    lp = const AP_LP,
    cmd = const CMD,
    cmd_lo = const CMD_LO,
    cmd_hi = const CMD_HI,
    cmd_result = const CMD_RESULT,
    cmd_done = const CMD_DONE,
    options(att_syntax)
);

/// The AP trampoline and its handlers.
pub fn ap_payload() -> Payload {
    payload!(vmm_guest_apic_ap_start, vmm_guest_apic_ap_end)
}

/// How the APs of an [`ap_vm`] start.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApSetup {
    /// Each AP reports its APIC ID.
    pub report: bool,
    /// The APs switch to x2APIC mode.
    pub x2apic: bool,
}

/// A VM running `p` on vCPU 0 with APs `ids` (each waiting for SIPI) and
/// the AP runtime at [`TRAMP`], its IDT at [`AP_IDT`].
pub fn ap_vm(name: &str, ids: &[u32], p: &Payload, how: ApSetup) -> Result<ApicVm, String> {
    let tramp = ap_payload();
    ensure!(tramp.end(TRAMP) <= AP_IDT, "AP runtime too long");
    ensure!(ids.iter().all(|&id| (1..MAX_ID).contains(&id)), "AP ids {ids:?}");
    let mut v = ApicVm::new(name, 1, p)?;
    v.aps = ids.iter().map(|&id| create_apic_vcpu(&v.t.vm, id)).collect::<Result<_, _>>()?;
    let t = &v.t;
    t.write(TRAMP, tramp.bytes)?;
    let stubs = tramp.addr(sym!(vmm_guest_apic_ap_stubs), TRAMP);
    t.write(AP_IDT, &idt_table(Mode::Protected32, |vec| stubs + 8 * u64::from(vec)))?;
    t.write(AP_REPORT, &u32::from(how.report).to_le_bytes())?;
    t.write(AP_MODE, &u32::from(how.x2apic).to_le_bytes())?;
    Ok(v)
}

/// The u32 array at `gpa` (one per APIC ID).
pub fn per_id(v: &ApicVm, gpa: u64) -> Result<Vec<u32>, String> {
    read_u32s(&v.t, gpa, MAX_ID as usize)
}

/// The non-zero entries of the per-APIC-ID array at `gpa`, as (id, n).
pub fn nonzero(v: &ApicVm, gpa: u64) -> Result<Vec<(u32, u32)>, String> {
    Ok((0..).zip(per_id(v, gpa)?).filter(|&(_, n)| n != 0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_are_eight_bytes_and_fit() {
        let p = ap_payload();
        let off = (p.addr(sym!(vmm_guest_apic_ap_stubs), TRAMP) - TRAMP) as usize;
        for i in 0..256 {
            let at = off + 8 * i;
            assert_eq!(p.bytes[at], 0xe8, "stub {i} is no CALL rel32");
            let rel = i32::from_le_bytes(p.bytes[at + 1..at + 5].try_into().unwrap());
            assert_eq!(at as i64 + 5 + i64::from(rel), (off + 8 * 256) as i64, "stub {i}");
        }
        assert!(p.end(TRAMP) <= AP_IDT && AP_IDT + 0x800 <= super::super::apic_rt::RT);
        assert_eq!(super::super::apic_rt::SIPI_VECTOR << 12, TRAMP);
    }
}
