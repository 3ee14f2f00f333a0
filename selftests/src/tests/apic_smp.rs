// SPDX-License-Identifier: MIT OR Apache-2.0

//! Several vCPUs: application processors started with INIT-SIPI-SIPI, INIT
//! sent to running ones (the ICR value of illumos 13253), and fixed IPIs
//! between vCPUs by physical and logical destination and by shorthand.
//!
//! vCPU 0 runs long-mode payloads on the runtime of
//! [`apic_rt`](super::apic_rt) and fails with codes `0x3xx` (bring-up),
//! `0x4xx` (INIT) and `0x5xx` (IPIs). The APs start in real mode at
//! [`TRAMP`]: [`tramp16`] reports the APIC ID from CPUID leaf 1, counts
//! itself in [`AP_COUNT`], then spins (while [`SPIN`] is set, bumping
//! [`HB`]) or halts with interrupts off; [`tramp32`] switches to flat
//! 32-bit protected mode (paging off, so the APIC page is reachable),
//! enables its APIC, sets a flat-model logical ID `1 << APIC ID` and waits
//! in `sti; hlt` for vector 0x41, whose handler counts in [`AP_HITS`].
//! Every test ends with every vCPU halted with IF = 0 or waiting for SIPI,
//! so the VM suspends (`VMM_SUSPEND_HALT`) and every AP thread ends.

use libvmm::setup::{sel, Mode, GDT_LIMIT, GDT_OFFSET};

use super::apic_rt::{
    delay_us, expect_count, expect_counts, expect_eax, read_u32s, rt_call, send_icr, wait_mem,
    wait_vec, APIC_BASE, ARGS, SIPI_VECTOR, TRAMP,
};
use super::apic_vm::{bsp_pass, expect_aps_suspended, halt_after_pass, run_all, ApicVm};
use crate::guest::{idt_table, Payload, DATA, FREE, SCRATCH};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, asm_pass, ensure, payload, sym};

/// u32: APs that ran their trampoline (once per start).
const AP_COUNT: u64 = ARGS;
/// u32: bumped by a spinning AP.
const HB: u64 = ARGS + 4;
/// u32: non-zero: an AP spins after counting itself, else it halts.
const SPIN: u64 = ARGS + 8;
/// u32: non-zero: vCPU 0 sends its IPIs in x2APIC mode.
const USE_X2: u64 = ARGS + 0xc;
/// u32: how many APs vCPU 0 waits for.
const NR_APS: u64 = ARGS + 0x10;
/// u32: APs of [`tramp32`] ready for interrupts.
const AP_READY: u64 = ARGS + 0x14;
/// u32 per APIC ID: vector 0x41 handled on that AP.
const AP_HITS: u64 = ARGS + 0x40;
/// The APs' 32-bit IDT (256 gates).
const AP_IDT: u64 = FREE + 0x4000;
/// AP n's stack is the page below `AP_STACKS + (n + 1) * 0x1000`.
const AP_STACKS: u64 = 0x5_0000;
/// The real-mode data segment that addresses [`DATA`] from offset 0.
const DATA_SEG: u64 = DATA >> 4;

// The ICR values below spell the SIPI vector out.
const _: () =
    assert!(SIPI_VECTOR == 0x30 && DATA_SEG << 4 == DATA && AP_HITS + 16 * 4 <= DATA + 0x1000);

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_tramp16_start, vmm_guest_apic_tramp16_end",
    "vmm_guest_apic_tramp16_start:",
    ".code16",
    "cli",
    "movw ${data_seg}, %ax",
    "movw %ax, %ds",
    "movl $1, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "shrl $24, %ebx",
    "movl %ebx, %eax",
    asm_debug!(),
    "lock incl {ap_count}",
    "1: cmpl $0, {spin}",
    "je 2f",
    "lock incl {hb}",
    "pause",
    "jmp 1b",
    "2: cli",
    "hlt",
    "jmp 2b",
    ".code64",
    "vmm_guest_apic_tramp16_end:",
    ".popsection",
    data_seg = const DATA_SEG,
    ap_count = const AP_COUNT - DATA,
    spin = const SPIN - DATA,
    hb = const HB - DATA,
    options(att_syntax)
);

/// The real-mode AP trampoline.
fn tramp16() -> Payload {
    payload!(vmm_guest_apic_tramp16_start, vmm_guest_apic_tramp16_end)
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_tramp32_start, vmm_guest_apic_tramp32_end",
    ".globl vmm_guest_apic_tramp32_isr, vmm_guest_apic_tramp32_bad",
    "vmm_guest_apic_tramp32_start:",
    ".code16",
    "cli",
    // libvmm's GDT (flat 32-bit code and data), then protected mode.
    "lgdtl %cs:(1f - vmm_guest_apic_tramp32_start)",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl ${code32}, $(3f - vmm_guest_apic_tramp32_start + {tramp})",
    "1: .word {gdt_limit}",
    ".long {gdt}",
    "2: .word 0x7ff",
    ".long {ap_idt}",
    ".code32",
    "3: movw ${data32}, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    // ESI = the APIC ID (xAPIC ID register); a stack of its own.
    "movl ${apic}, %ebx",
    "movl 0x20(%ebx), %esi",
    "shrl $24, %esi",
    "leal 1(%esi), %esp",
    "shll $12, %esp",
    "addl ${ap_stacks}, %esp",
    "lidtl 2b - vmm_guest_apic_tramp32_start + {tramp}",
    // Software-enable the APIC; logical ID 1 << APIC ID (flat model).
    "movl $0x1ff, 0xf0(%ebx)",
    "movl %esi, %ecx",
    "movl $1, %eax",
    "shll %cl, %eax",
    "shll $24, %eax",
    "movl %eax, 0xd0(%ebx)",
    "lock incl {ap_ready}",
    "sti",
    "4: hlt",
    "jmp 4b",
    // Vector 0x41: count it for this APIC ID, EOI.
    "vmm_guest_apic_tramp32_isr:",
    "pushl %eax",
    "pushl %ebx",
    "movl ${apic}, %ebx",
    "movl 0x20(%ebx), %eax",
    "shrl $24, %eax",
    "lock incl {ap_hits}(,%eax,4)",
    "movl $0, 0xb0(%ebx)",
    "popl %ebx",
    "popl %eax",
    "iretl",
    // Any other vector: report the top of the frame, fail.
    "vmm_guest_apic_tramp32_bad:",
    "movl (%esp), %eax",
    asm_debug!(),
    "movl $0xbad32, %eax",
    asm_fail!(),
    ".code64",
    "vmm_guest_apic_tramp32_end:",
    ".popsection",
    code32 = const sel::CODE32,
    data32 = const sel::DATA,
    tramp = const TRAMP,
    gdt_limit = const GDT_LIMIT,
    gdt = const SCRATCH + GDT_OFFSET,
    ap_idt = const AP_IDT,
    apic = const APIC_BASE,
    ap_stacks = const AP_STACKS,
    ap_ready = const AP_READY,
    ap_hits = const AP_HITS,
    options(att_syntax)
);

/// The AP trampoline into 32-bit protected mode.
fn tramp32() -> Payload {
    payload!(vmm_guest_apic_tramp32_start, vmm_guest_apic_tramp32_end)
}

/// A VM of `n` vCPUs running `p` on vCPU 0, with `tramp` at [`TRAMP`].
fn smp_vm(name: &str, n: u32, p: &Payload, tramp: &Payload) -> Result<ApicVm, String> {
    ensure!(tramp.end(TRAMP) <= AP_IDT, "trampoline {} too long", tramp.name);
    let v = ApicVm::new(name, n, p)?;
    v.t.write(TRAMP, tramp.bytes)?;
    v.t.write(NR_APS, &(n - 1).to_le_bytes())?;
    Ok(v)
}

// --- bring-up -------------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_boot_start, vmm_guest_apic_boot_end",
    "vmm_guest_apic_boot_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    // INIT, SIPI, SIPI to all excluding self (the second SIPI must not
    // start anyone twice).
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    delay_us!("200"),
    send_icr!("0xc4630", "0"),
    "movl {nr_aps}, %r12d",
    wait_mem!("{ap_count}", "%r12d", "2000", "0x301"),
    delay_us!("1000"),
    "movl {ap_count}, %eax",
    "cmpl %r12d, %eax",
    "je 1f",
    asm_debug!(),
    "movl $0x302, %eax",
    asm_fail!(),
    "1:",
    asm_pass!(),
    "vmm_guest_apic_boot_end:",
    ".popsection",
    nr_aps = const NR_APS,
    ap_count = const AP_COUNT,
    options(att_syntax)
);

/// Starts the APs of an `n`-vCPU VM; each reports its own APIC ID once and
/// halts, vCPU 0 halts after them, and the VM suspends.
fn bring_up(n: u32) -> Result<(), String> {
    let p = payload!(vmm_guest_apic_boot_start, vmm_guest_apic_boot_end);
    let v = smp_vm(&format!("apic-smp-{n}"), n, &p, &tramp16())?;
    let (_, aps) = run_all(&v, |_| {
        bsp_pass(&v.t)?;
        halt_after_pass(&v)
    })?;
    for ap in &aps {
        ensure!(
            ap.debug == [ap.id],
            "vCPU {} reported APIC IDs {:#x?}, want its own once",
            ap.id,
            ap.debug
        );
    }
    expect_aps_suspended(&aps)?;
    let count = read_u32s(&v.t, AP_COUNT, 1)?[0];
    ensure!(count == n - 1, "{count} AP starts, want {}", n - 1);
    Ok(())
}

pub fn apic_smp_bringup() -> TestResult {
    for n in [2, 4] {
        bring_up(n).map_err(|e| format!("{n} vCPUs: {e}"))?;
    }
    Ok(Pass)
}

// --- INIT to running APs (illumos 13253) --------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_c4500_start, vmm_guest_apic_c4500_end",
    "vmm_guest_apic_c4500_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "cmpl $0, {use_x2}",
    "je 1f",
    rt_call!(x2apic),
    // Start the AP; it reports and spins.
    "1: movl $1, {spin}",
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    wait_mem!("{ap_count}", "$1", "2000", "0x401"),
    "movl {hb}, %r12d",
    "incl %r12d",
    wait_mem!("{hb}", "%r12d", "1000", "0x402"),
    // ICR low 0xc4500: INIT, assert, all excluding self. The AP stops:
    // its heartbeat stands still for 1 ms, within 100 ms.
    send_icr!("0xc4500", "0"),
    "movl $100, %r12d",
    "2: movl {hb}, %ebx",
    delay_us!("1000"),
    "cmpl {hb}, %ebx",
    "je 3f",
    "decl %r12d",
    "jnz 2b",
    "movl $0x403, %eax",
    asm_fail!(),
    "3: movl {ap_count}, %eax",
    expect_eax!("1", "0x404"),
    // It waits for SIPI: one SIPI runs the trampoline again, which now
    // halts.
    "movl $0, {spin}",
    send_icr!("0xc4630", "0"),
    wait_mem!("{ap_count}", "$2", "2000", "0x405"),
    delay_us!("1000"),
    "movl {ap_count}, %eax",
    expect_eax!("2", "0x406"),
    asm_pass!(),
    "vmm_guest_apic_c4500_end:",
    ".popsection",
    use_x2 = const USE_X2,
    spin = const SPIN,
    hb = const HB,
    ap_count = const AP_COUNT,
    options(att_syntax)
);

pub fn apic_icr_c4500_is_init() -> TestResult {
    let p = payload!(vmm_guest_apic_c4500_start, vmm_guest_apic_c4500_end);
    for x2 in [false, true] {
        let mode = if x2 { "x2APIC" } else { "xAPIC" };
        let v = smp_vm(&format!("apic-c4500-{mode}"), 2, &p, &tramp16())?;
        v.t.write(USE_X2, &u32::from(x2).to_le_bytes())?;
        let (_, aps) = run_all(&v, |_| {
            bsp_pass(&v.t)?;
            halt_after_pass(&v)
        })
        .map_err(|e| format!("{mode}: {e}"))?;
        let d = &aps[0].debug;
        ensure!(d == &[1, 1], "{mode}: the AP reported {d:#x?}, want its ID once per start");
        expect_aps_suspended(&aps).map_err(|e| format!("{mode}: {e}"))?;
    }
    Ok(Pass)
}

// --- fixed IPIs between vCPUs -------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_ipi_fixed_start, vmm_guest_apic_ipi_fixed_end",
    "vmm_guest_apic_ipi_fixed_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    delay_us!("200"),
    send_icr!("0xc4630", "0"),
    wait_mem!("{ap_ready}", "$2", "2000", "0x501"),
    // 1. Physical destination APIC ID 1, five times, each handled before
    // the next is sent; APIC ID 2 gets none.
    "movl $1, %r12d",
    "1:",
    send_icr!("0x4041", "1"),
    wait_mem!("{ap_hits} + 4", "%r12d", "200", "0x502"),
    "incl %r12d",
    "cmpl $5, %r12d",
    "jbe 1b",
    delay_us!("500"),
    "movl {ap_hits} + 8, %eax",
    expect_eax!("0", "0x503"),
    "movl {ap_hits} + 4, %eax",
    expect_eax!("5", "0x504"),
    // 2. Logical destination, flat model: AP 2 alone (bit 2), then both.
    send_icr!("0x4841", "4"),
    wait_mem!("{ap_hits} + 8", "$1", "200", "0x505"),
    send_icr!("0x4841", "6"),
    wait_mem!("{ap_hits} + 4", "$6", "200", "0x506"),
    wait_mem!("{ap_hits} + 8", "$2", "200", "0x507"),
    // 3. All excluding self: both APs and not vCPU 0, which takes
    // interrupts from now on to catch a stray one.
    "sti",
    send_icr!("0xc4041", "0"),
    wait_mem!("{ap_hits} + 4", "$7", "200", "0x508"),
    wait_mem!("{ap_hits} + 8", "$3", "200", "0x509"),
    delay_us!("500"),
    expect_count!("0x41", "0", "0x50a"),
    // 4. All including self.
    send_icr!("0x84041", "0"),
    wait_mem!("{ap_hits} + 4", "$8", "200", "0x50b"),
    wait_mem!("{ap_hits} + 8", "$4", "200", "0x50c"),
    wait_vec!("0x41", "1", "200", "0x50d"),
    // 5. Physical destination 0xff, the xAPIC broadcast: everyone.
    send_icr!("0x4041", "0xff"),
    wait_mem!("{ap_hits} + 4", "$9", "200", "0x50e"),
    wait_mem!("{ap_hits} + 8", "$5", "200", "0x50f"),
    wait_vec!("0x41", "2", "200", "0x510"),
    delay_us!("500"),
    "cli",
    "movl {ap_hits} + 4, %eax",
    expect_eax!("9", "0x511"),
    "movl {ap_hits} + 8, %eax",
    expect_eax!("5", "0x512"),
    expect_count!("0x41", "2", "0x513"),
    // INIT the APs: they wait for SIPI, so the VM suspends once vCPU 0
    // halts.
    send_icr!("0xc4500", "0"),
    asm_pass!(),
    "vmm_guest_apic_ipi_fixed_end:",
    ".popsection",
    ap_ready = const AP_READY,
    ap_hits = const AP_HITS,
    options(att_syntax)
);

pub fn apic_ipi_fixed_between_vcpus() -> TestResult {
    let p = payload!(vmm_guest_apic_ipi_fixed_start, vmm_guest_apic_ipi_fixed_end);
    let tramp = tramp32();
    let v = smp_vm("apic-ipi-fixed", 3, &p, &tramp)?;
    let isr = tramp.addr(sym!(vmm_guest_apic_tramp32_isr), TRAMP);
    let bad = tramp.addr(sym!(vmm_guest_apic_tramp32_bad), TRAMP);
    v.t.write(AP_IDT, &idt_table(Mode::Protected32, |vec| if vec == 0x41 { isr } else { bad }))?;
    let (_, aps) = run_all(&v, |_| {
        bsp_pass(&v.t)?;
        halt_after_pass(&v)
    })?;
    for ap in &aps {
        ensure!(ap.debug.is_empty(), "vCPU {} reported {:#x?}", ap.id, ap.debug);
    }
    expect_aps_suspended(&aps)?;
    let hits = read_u32s(&v.t, AP_HITS, 4)?;
    ensure!(hits == [0, 9, 5, 0], "vector 0x41 handled {hits:?} times by APIC IDs 0-3");
    expect_counts(&v.t, &[(0x41, 2)])?;
    Ok(Pass)
}
