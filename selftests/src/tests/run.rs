// SPDX-License-Identifier: MIT OR Apache-2.0

//! Running guests: the three CPU modes, port I/O, string I/O, shared memory,
//! suspension, and the ways another thread can stop a running vCPU (kick,
//! signal, VM destruction).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;
use std::thread;

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use crate::guest::{
    complete, create_vcpu, describe, expect_suspended, s, Next, Payload, TestVm, DATA, FREE, LOAD,
    RAM_LEN, RUN,
};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_debug, asm_pass, ensure, expect_errno, payload, sym, vmm};

/// Guest asm for every mode: EAX = 1 + 2 + ... + 100 through a called
/// subroutine (so the stack works), reported; ECX ends at 0.
macro_rules! asm_sum {
    () => {
        concat!(
            "xorl %eax, %eax\n movl $100, %ecx\n",
            "8001: call 8002f\n loop 8001b\n jmp 8003f\n",
            "8002: addl %ecx, %eax\n ret\n",
            "8003: ",
            asm_debug!()
        )
    };
}

/// Where the real-mode guest stores its sum (DS = 0).
const REAL_VAR: u64 = 0x500;
/// Where the real-mode guest writes through ES = 0x200.
const REAL_ES_SEG: u64 = 0x200;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    // Real mode: the sum, a memory round trip, CR0 through SMSW, and a
    // write through a segment whose base is its selector times 16.
    ".globl vmm_guest_real_sum_start, vmm_guest_real_sum_end",
    "vmm_guest_real_sum_start:",
    ".code16",
    "xorw %ax, %ax",
    "movw %ax, %ds",
    asm_sum!(),
    "movl %eax, {real_var}",
    "xorl %eax, %eax",
    "movl {real_var}, %eax",
    "incl %eax",
    asm_debug!(),
    "xorl %eax, %eax",
    "smsw %ax",
    asm_debug!(),
    "movw ${es_seg}, %ax",
    "movw %ax, %es",
    "movl $0x5ea1, %es:0x10",
    asm_pass!(),
    "vmm_guest_real_sum_end:",
    // 32-bit protected mode: the sum, a memory round trip, CR0.
    ".globl vmm_guest_prot_sum_start, vmm_guest_prot_sum_end",
    "vmm_guest_prot_sum_start:",
    ".code32",
    asm_sum!(),
    "movl %eax, {data}",
    "xorl %eax, %eax",
    "movl {data}, %eax",
    "incl %eax",
    asm_debug!(),
    "movl %cr0, %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_prot_sum_end:",
    // 64-bit long mode: the sum, then a new 4 KiB mapping of two virtual
    // pages at 4 GiB onto one data page, used both ways.
    ".globl vmm_guest_long_sum_start, vmm_guest_long_sum_end",
    "vmm_guest_long_sum_start:",
    ".code64",
    asm_sum!(),
    "movq %cr3, %rax",
    "andq $-4096, %rax",
    "movq (%rax), %rax",
    "movabsq $0x000ffffffffff000, %rdx",
    "andq %rdx, %rax",
    "movq ${pd} + 3, %rdx",
    "movq %rdx, 32(%rax)",
    "movq ${pt} + 3, %rdx",
    "movq %rdx, {pd}",
    "movq ${page} + 3, %rdx",
    "movq %rdx, {pt}",
    "movq %rdx, {pt} + 8",
    "movq %cr3, %rax",
    "movq %rax, %cr3",
    "movl $0x5a5aa5a5, {page} + 8",
    "movabsq $0x100000000, %rbx",
    "movl 8(%rbx), %eax",
    asm_debug!(),
    "movl $0x12344321, 0x1010(%rbx)",
    "movl {page} + 0x10, %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_long_sum_end:",
    ".popsection",
    real_var = const REAL_VAR,
    es_seg = const REAL_ES_SEG,
    data = const DATA,
    pd = const LONG_PD,
    pt = const LONG_PT,
    page = const LONG_PAGE,
    options(att_syntax)
);

/// Page tables and the data page of the long-mode guest's extra mapping.
const LONG_PD: u64 = FREE;
const LONG_PT: u64 = FREE + 0x1000;
const LONG_PAGE: u64 = FREE + 0x2000;

/// Runs `p` in `mode`; it must report the sum and then `more`.
fn sums(name: &str, mode: Mode, p: Payload, more: &[u32]) -> Result<TestVm, String> {
    let t = TestVm::new(name, mode, &p)?;
    let debug = t.run_to_pass()?;
    ensure!(debug.first() == Some(&5050), "{mode:?} sum: debug {debug:#x?}");
    ensure!(debug[1..] == *more, "{mode:?}: debug {debug:#x?}, want 5050 then {more:#x?}");
    Ok(t)
}

pub fn real_mode_guest_sums() -> TestResult {
    // CR0 is ET|NE (0x30) as setup left it: PE clear.
    let t = sums(
        "real-sum",
        Mode::Real,
        payload!(vmm_guest_real_sum_start, vmm_guest_real_sum_end),
        &[5051, 0x30],
    )?;
    let at = REAL_ES_SEG * 16 + 0x10;
    let v = t.read(at, 4)?;
    ensure!(v == 0x5ea1u32.to_le_bytes(), "ES:0x10 write landed elsewhere: {v:x?} at {at:#x}");
    Ok(Pass)
}

pub fn protected_mode_guest_sums() -> TestResult {
    // CR0: PE|ET|NE, paging off.
    sums(
        "prot-sum",
        Mode::Protected32,
        payload!(vmm_guest_prot_sum_start, vmm_guest_prot_sum_end),
        &[5051, 0x31],
    )?;
    Ok(Pass)
}

pub fn long_mode_guest_sums_and_pages() -> TestResult {
    let p = payload!(vmm_guest_long_sum_start, vmm_guest_long_sum_end);
    let t = sums("long-sum", Mode::Long64, p, &[0x5a5a_a5a5, 0x1234_4321])?;
    let v = t.read(LONG_PAGE + 0x10, 4)?;
    ensure!(v == 0x1234_4321u32.to_le_bytes(), "write through the alias not in RAM: {v:x?}");
    Ok(Pass)
}

// --- port I/O --------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_inout_start, vmm_guest_inout_end",
    "vmm_guest_inout_start:",
    ".code64",
    "movl $0xaaaaaaaa, %eax",
    "inb $0x10, %al",
    asm_debug!(),
    "movl $0xaaaaaaaa, %eax",
    "inw $0x12, %ax",
    asm_debug!(),
    "movl $0xaaaaaaaa, %eax",
    "inl $0x14, %eax",
    asm_debug!(),
    "movw $0x1234, %dx",
    "movl $0xaaaaaaaa, %eax",
    "inb %dx, %al",
    asm_debug!(),
    "movw $0x1236, %dx",
    "movl $0xaaaaaaaa, %eax",
    "inw %dx, %ax",
    asm_debug!(),
    "movw $0x1238, %dx",
    "movl $0xaaaaaaaa, %eax",
    "inl %dx, %eax",
    asm_debug!(),
    "movl $0x87654321, %eax",
    "outb %al, $0x20",
    "outw %ax, $0x22",
    "outl %eax, $0x24",
    "movw $0x2345, %dx",
    "outb %al, %dx",
    "movw $0x2347, %dx",
    "outw %ax, %dx",
    "movw $0x2349, %dx",
    "outl %eax, %dx",
    asm_pass!(),
    "vmm_guest_inout_end:",
    ".popsection",
    options(att_syntax)
);

/// One expected port access: port, size, IN?, value (IN: what the test
/// returns; OUT: what the guest writes), instruction length.
type PortAccess = (u32, u32, bool, u64, u32);

const PORT_ACCESSES: [PortAccess; 12] = [
    (0x10, 1, true, 0x5b, 2),
    (0x12, 2, true, 0xc0de, 3),
    (0x14, 4, true, 0x1bad_f00d, 2),
    (0x1234, 1, true, 0x77, 1),
    (0x1236, 2, true, 0xbeef, 2),
    (0x1238, 4, true, 0xfeed_face, 1),
    (0x20, 1, false, 0x21, 2),
    (0x22, 2, false, 0x4321, 3),
    (0x24, 4, false, 0x8765_4321, 2),
    (0x2345, 1, false, 0x21, 1),
    (0x2347, 2, false, 0x4321, 2),
    (0x2349, 4, false, 0x8765_4321, 1),
];

pub fn port_io_all_widths() -> TestResult {
    let p = payload!(vmm_guest_inout_start, vmm_guest_inout_end);
    let t = TestVm::new("inout", Mode::Long64, &p)?;
    let mut next = PORT_ACCESSES.iter();
    let r = t.run_until(RUN, |x, e| {
        let Exit::Inout(io) = x else { return Err(format!("unexpected {}", describe(e))) };
        let &(port, size, is_in, value, len) =
            next.next().ok_or_else(|| format!("extra port access {io:?}"))?;
        let flags = if is_in { VMM_INOUT_IN } else { 0 };
        ensure!(
            io.port == port && io.size == size && io.flags == flags,
            "got {io:?}, want port {port:#x} size {size} flags {flags:#x}"
        );
        ensure!(io.value == if is_in { 0 } else { value }, "port {port:#x}: value {:#x}", io.value);
        ensure!(io.reserved == 0 && io.reserved2 == [0; 3], "reserved fields in {io:?}");
        ensure!(e.inst_len == 0 || e.inst_len == len, "port {port:#x}: inst_len {}", e.inst_len);
        ensure!(e.rip >= LOAD && e.rip < p.end(LOAD), "rip {:#x} outside the payload", e.rip);
        Ok(Next::Enter(complete(if is_in { value } else { 0 })))
    })?;
    ensure!(r.passed, "stopped at {}", describe(&r.exit));
    ensure!(next.next().is_none(), "the guest skipped port accesses");
    // IN of 1 and 2 bytes leaves the rest of EAX alone.
    let want = [0xaaaa_aa5b, 0xaaaa_c0de, 0x1bad_f00d, 0xaaaa_aa77, 0xaaaa_beef, 0xfeed_face];
    ensure!(r.debug == want, "registers after IN: {:#x?}", r.debug);
    Ok(Pass)
}

// --- string I/O ------------------------------------------------------------

const SIO_BYTES: u64 = DATA;
const SIO_WORDS: u64 = DATA + 0x100;
const SIO_DWORDS: u64 = DATA + 0x200;
const SIO_IN: u64 = DATA + 0x300;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_string_io_start, vmm_guest_string_io_end",
    "vmm_guest_string_io_start:",
    ".code64",
    "cld",
    "movl ${bytes}, %esi",
    "movl $100, %ecx",
    "movw $0x30, %dx",
    "rep outsb",
    "hlt",
    "movl ${words}, %esi",
    "movl $3, %ecx",
    "movw $0x32, %dx",
    "rep outsw",
    "movl ${dwords}, %esi",
    "movl $2, %ecx",
    "movw $0x34, %dx",
    "rep outsl",
    "hlt",
    "movl ${inbuf}, %edi",
    "movl $50, %ecx",
    "movw $0x36, %dx",
    "rep insb",
    "hlt",
    "movl ${inbuf}, %esi",
    "movl $50, %ecx",
    "xorl %eax, %eax",
    "1: movzbl (%rsi), %ebx",
    "addl %ebx, %eax",
    "incq %rsi",
    "decl %ecx",
    "jnz 1b",
    asm_debug!(),
    // Backwards: DF set.
    "std",
    "movl ${bytes} + 2, %esi",
    "movl $3, %ecx",
    "movw $0x38, %dx",
    "rep outsb",
    "cld",
    "hlt",
    // RCX = 0: nothing moves, nothing exits.
    "xorl %ecx, %ecx",
    "movl ${bytes}, %esi",
    "movl ${inbuf}, %edi",
    "movw $0x3a, %dx",
    "rep outsb",
    "rep insb",
    "hlt",
    asm_pass!(),
    "vmm_guest_string_io_end:",
    ".popsection",
    bytes = const SIO_BYTES,
    words = const SIO_WORDS,
    dwords = const SIO_DWORDS,
    inbuf = const SIO_IN,
    options(att_syntax)
);

/// What the string I/O guest does, in order: one element per exit, or a
/// HLT at which RCX is 0 and RSI (and RDI, if given) hold these values.
enum Step {
    /// `value`: for OUT what the guest writes, for IN what the test returns.
    Elem {
        port: u32,
        size: u32,
        flags: u32,
        gpa: u64,
        count: u64,
        value: u64,
    },
    Halt {
        rsi: u64,
        rdi: Option<u64>,
    },
}

/// One REP string instruction's element exits: the first at `gpa`, each
/// next `stride` bytes on.
fn elems(port: u32, size: u32, flags: u32, gpa: u64, stride: i64, values: &[u64]) -> Vec<Step> {
    let n = values.len() as u64;
    (0..n)
        .map(|i| Step::Elem {
            port,
            size,
            flags: flags | VMM_INOUT_STRING | VMM_INOUT_REP,
            gpa: gpa.wrapping_add_signed(stride * i as i64),
            count: n - i,
            value: values[i as usize],
        })
        .collect()
}

fn string_io_steps(bytes: &[u64], words: &[u64], dwords: &[u64], replies: &[u64]) -> Vec<Step> {
    let backwards = [bytes[2], bytes[1], bytes[0]];
    let mut v = elems(0x30, 1, 0, SIO_BYTES, 1, bytes);
    v.push(Step::Halt { rsi: SIO_BYTES + 100, rdi: None });
    v.extend(elems(0x32, 2, 0, SIO_WORDS, 2, words));
    v.extend(elems(0x34, 4, 0, SIO_DWORDS, 4, dwords));
    v.push(Step::Halt { rsi: SIO_DWORDS + 8, rdi: None });
    v.extend(elems(0x36, 1, VMM_INOUT_IN, SIO_IN, 1, replies));
    v.push(Step::Halt { rsi: SIO_DWORDS + 8, rdi: Some(SIO_IN + 50) });
    v.extend(elems(0x38, 1, 0, SIO_BYTES + 2, -1, &backwards));
    v.push(Step::Halt { rsi: SIO_BYTES - 1, rdi: Some(SIO_IN + 50) });
    v.push(Step::Halt { rsi: SIO_BYTES, rdi: Some(SIO_IN) });
    v
}

/// Checks one exit of the string I/O guest against `step`; returns the
/// completion.
fn string_io_exit(t: &TestVm, step: &Step, x: &Exit, e: &VmmExit) -> Result<Next, String> {
    match (step, x) {
        (&Step::Elem { port, size, flags, gpa, count, value }, Exit::Inout(io)) => {
            let is_in = flags & VMM_INOUT_IN != 0;
            let want = VmmExitInout {
                flags,
                port,
                size,
                value: if is_in { 0 } else { value },
                gpa,
                count,
                ..VmmExitInout::ZERO
            };
            ensure!(*io == want, "got {io:x?}\nwant {want:x?}");
            Ok(Next::Enter(complete(if is_in { value } else { 0 })))
        }
        (&Step::Halt { rsi, rdi }, Exit::Hlt) => {
            let r = s(t.vcpu.get_regs(&[reg::RSI, reg::RDI, reg::RCX]))?;
            ensure!(
                r[0] == rsi && r[2] == 0,
                "at {:#x}: RSI {:#x} RCX {:#x}, want {rsi:#x}, 0",
                e.rip,
                r[0],
                r[2]
            );
            ensure!(
                rdi.is_none_or(|d| d == r[1]),
                "at {:#x}: RDI {:#x}, want {rdi:#x?}",
                e.rip,
                r[1]
            );
            Ok(Next::Enter(RUN))
        }
        _ => Err(format!("unexpected {}", describe(e))),
    }
}

pub fn string_io_one_element_per_exit() -> TestResult {
    let p = payload!(vmm_guest_string_io_start, vmm_guest_string_io_end);
    let t = TestVm::new("string-io", Mode::Long64, &p)?;
    let bytes: Vec<u64> = (0..100).map(|i| (i * 3 + 1) & 0xff).collect();
    let words = [0x1111, 0xa2a2, 0xf00f];
    let dwords = [0xdead_beef, 0x0123_4567];
    let replies: Vec<u64> = (0..50).map(sio_in_value).collect();
    t.write(SIO_BYTES, &bytes.iter().map(|&b| b as u8).collect::<Vec<_>>())?;
    let words_le: Vec<u8> = words.iter().flat_map(|&w| (w as u16).to_le_bytes()).collect();
    t.write(SIO_WORDS, &words_le)?;
    let dwords_le: Vec<u8> = dwords.iter().flat_map(|&d| (d as u32).to_le_bytes()).collect();
    t.write(SIO_DWORDS, &dwords_le)?;
    let steps = string_io_steps(&bytes, &words, &dwords, &replies);
    let mut next = steps.iter();
    let r = t.run_until(RUN, |x, e| {
        let step = next.next().ok_or_else(|| format!("extra exit {}", describe(e)))?;
        string_io_exit(&t, step, x, e)
    })?;
    ensure!(r.passed, "stopped at {}", describe(&r.exit));
    ensure!(next.next().is_none(), "the guest skipped steps");
    let got = t.read(SIO_IN, 50)?;
    ensure!(got.iter().zip(&replies).all(|(&g, &w)| u64::from(g) == w), "INS wrote {got:x?}");
    let sum: u64 = replies.iter().sum();
    ensure!(r.debug == [sum as u32], "guest checksum {:#x?}, want {sum:#x}", r.debug);
    Ok(Pass)
}

fn sio_in_value(i: u64) -> u64 {
    (i * 7 + 3) & 0xff
}

// --- memory shared with the sequencer ---------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_shared_start, vmm_guest_shared_end",
    "vmm_guest_shared_start:",
    ".code64",
    "movl $2, %r8d",
    "1: movq {data}, %rax",
    "incq %rax",
    "movq %rax, {data} + 8",
    "outl %eax, $0x40",
    "decl %r8d",
    "jnz 1b",
    asm_pass!(),
    "vmm_guest_shared_end:",
    ".popsection",
    data = const DATA,
    options(att_syntax)
);

pub fn guest_and_host_share_memory() -> TestResult {
    let p = payload!(vmm_guest_shared_start, vmm_guest_shared_end);
    let t = TestVm::new("shared", Mode::Long64, &p)?;
    // The second value carries out of bit 63: the guest wraps it to 0.
    let values = [0x00ff_ffff_ffff_ffffu64, u64::MAX];
    t.write_u64(DATA, values[0])?;
    let mut round = 0;
    let r = t.run_until(RUN, |x, e| {
        ensure!(matches!(x, Exit::Inout(io) if io.port == 0x40), "unexpected {}", describe(e));
        let got = t.read_u64(DATA + 8)?;
        ensure!(got == values[round].wrapping_add(1), "round {round}: guest wrote {got:#x}");
        round += 1;
        if let Some(&v) = values.get(round) {
            t.write_u64(DATA, v)?;
        }
        Ok(Next::Enter(complete(0)))
    })?;
    ensure!(r.passed && round == 2, "{round} rounds, then {}", describe(&r.exit));
    Ok(Pass)
}

// --- suspension -------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_triple_start, vmm_guest_triple_end",
    "vmm_guest_triple_start:",
    ".code64",
    // #BP, then #GP and #DF, all past the IDT limit: shutdown.
    "lidt 1f(%rip)",
    "int3",
    asm_pass!(),
    "1: .word 0",
    ".quad 0",
    "vmm_guest_triple_end:",
    ".popsection",
    options(att_syntax)
);

pub fn triple_fault_suspends_the_vm() -> TestResult {
    let p = payload!(vmm_guest_triple_start, vmm_guest_triple_end);
    let t = TestVm::new("triple", Mode::Long64, &p)?;
    let r = t.run_to_exit(RUN)?;
    expect_suspended(&r.exit, VMM_SUSPEND_TRIPLE_FAULT)?;
    // It stays suspended, for this vCPU and any other.
    expect_suspended(&s(t.vcpu.run())?, VMM_SUSPEND_TRIPLE_FAULT)?;
    let other = create_vcpu(&t.vm, 1)?;
    expect_suspended(&s(other.run())?, VMM_SUSPEND_TRIPLE_FAULT)?;
    Ok(Pass)
}

pub fn user_suspend_stops_every_run() -> TestResult {
    // Before the first run.
    let t = spinning_vm("suspend-idle", CreateFlags::DESTROY_ON_CLOSE)?;
    s(t.vm.suspend())?;
    expect_suspended(&s(t.vcpu.run())?, VMM_SUSPEND_USER)?;
    expect_suspended(&s(t.vcpu.run())?, VMM_SUSPEND_USER)?;
    // While the vCPU runs on another thread.
    let t = spinning_vm("suspend-busy", CreateFlags::DESTROY_ON_CLOSE)?;
    let mut suspended = false;
    let r = run_while(&t.vcpu, |_| {
        if !suspended {
            suspended = true;
            s(t.vm.suspend())?;
        }
        Ok(())
    })?;
    expect_suspended(&s(r)?, VMM_SUSPEND_USER)?;
    expect_suspended(&s(t.vcpu.run())?, VMM_SUSPEND_USER)?;
    Ok(Pass)
}

// --- stopping a running vCPU from another thread ---------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_spin_start, vmm_guest_spin_end, vmm_guest_spin_hlt",
    "vmm_guest_spin_start:",
    ".code64",
    "outb %al, $0x40",
    "hlt",
    "1: jmp 1b",
    "vmm_guest_spin_hlt:",
    "hlt",
    asm_pass!(),
    "vmm_guest_spin_end:",
    ".popsection",
    options(att_syntax)
);

pub fn spin_payload() -> Payload {
    payload!(vmm_guest_spin_start, vmm_guest_spin_end)
}

/// The guest address of the spin payload's final HLT.
fn spin_hlt() -> u64 {
    spin_payload().addr(sym!(vmm_guest_spin_hlt), LOAD)
}

/// A VM whose vCPU has passed an OUT to port 0x40 and a HLT: its next run
/// spins in the guest until something stops it.
pub fn spinning_vm(name: &str, flags: CreateFlags) -> Result<TestVm, String> {
    let p = spin_payload();
    let t = TestVm::bare(name, flags, RAM_LEN)?;
    t.write(LOAD, p.bytes)?;
    t.setup(Mode::Long64, LOAD)?;
    let e = s(t.vcpu.run())?;
    ensure!(
        matches!(Exit::decode(&e), Exit::Inout(io) if io.port == 0x40 && io.size == 1),
        "first exit {}",
        describe(&e)
    );
    let e = s(t.vcpu.complete(0))?;
    ensure!(e.reason == exit::HLT && e.rip == LOAD + 3, "second exit {}", describe(&e));
    Ok(t)
}

/// Pokes per [`run_while`] before it stops waiting (each also yields).
const POKE_ROUNDS: u32 = 200_000;

/// Runs `vcpu` (entry RUN) on another thread and calls `poke` with that
/// thread's id on this one until the run returns, which it then returns.
/// If it does not return within [`POKE_ROUNDS`], kicks it until it does and
/// fails.
fn run_while(
    vcpu: &VcpuFd,
    mut poke: impl FnMut(libc::pthread_t) -> Result<(), String>,
) -> Result<io::Result<VmmExit>, String> {
    let done = AtomicBool::new(false);
    let tid = OnceLock::new();
    thread::scope(|sc| {
        let h = sc.spawn(|| {
            // SAFETY: pthread_self has no preconditions.
            let _ = tid.set(unsafe { libc::pthread_self() });
            let r = vcpu.run();
            done.store(true, SeqCst);
            r
        });
        let mut failure = None;
        for _ in 0..POKE_ROUNDS {
            if done.load(SeqCst) {
                break;
            }
            if let Some(&t) = tid.get() {
                if let Err(e) = poke(t) {
                    failure = Some(e);
                    break;
                }
            }
            thread::yield_now();
        }
        if !done.load(SeqCst) {
            failure.get_or_insert_with(|| format!("the run went on for {POKE_ROUNDS} rounds"));
            while !done.load(SeqCst) {
                let _ = vcpu.kick();
                thread::yield_now();
            }
        }
        let r = h.join().map_err(|_| "the vCPU thread panicked".to_string())?;
        failure.map_or(Ok(r), Err)
    })
}

/// Runs `vcpu` from RIP = the spin payload's final HLT, skipping `KICKED`
/// exits that stale kicks may cause, and checks that it halts there.
fn run_to_final_hlt(vcpu: &VcpuFd) -> Result<(), String> {
    s(vcpu.set_regs(&[(reg::RIP, spin_hlt())]))?;
    for _ in 0..4 {
        let e = s(vcpu.run())?;
        if e.reason == exit::KICKED {
            continue;
        }
        ensure!(e.reason == exit::HLT && e.rip == spin_hlt() + 1, "after: {}", describe(&e));
        return Ok(());
    }
    Err("KICKED again and again".into())
}

pub fn kick_from_another_thread() -> TestResult {
    let t = spinning_vm("kick", CreateFlags::DESTROY_ON_CLOSE)?;
    let e = s(run_while(&t.vcpu, |_| s(t.vcpu.kick()))?)?;
    ensure!(e.reason == exit::KICKED && e.vcpu == 0, "{}", describe(&e));
    ensure!(e.data == [0; 8], "KICKED data {:x?}", e.data);
    // Nothing is pending after a kick.
    s(t.vcpu.set_regs(&[(reg::RIP, spin_hlt())]))?;
    expect_errno!(t.vcpu.complete(0), libc::EINVAL);
    run_to_final_hlt(&t.vcpu)?;
    Ok(Pass)
}

pub fn kick_before_run_leaves_at_entry() -> TestResult {
    let t = spinning_vm("kick-idle", CreateFlags::DESTROY_ON_CLOSE)?;
    s(t.vcpu.set_regs(&[(reg::RIP, spin_hlt())]))?;
    s(t.vcpu.kick())?;
    let e = s(t.vcpu.run())?;
    ensure!(e.reason == exit::KICKED, "kick before run: {}", describe(&e));
    // The kick is used up.
    let e = s(t.vcpu.run())?;
    ensure!(e.reason == exit::HLT && e.rip == spin_hlt() + 1, "then: {}", describe(&e));
    Ok(Pass)
}

pub fn concurrent_run_is_ebusy() -> TestResult {
    let t = spinning_vm("ebusy", CreateFlags::DESTROY_ON_CLOSE)?;
    // Two runs race; whichever comes second must fail at once, and the
    // first spins until kicked.
    let finished = AtomicU32::new(0);
    let (a, b) = thread::scope(|sc| {
        let run = || {
            let r = t.vcpu.run();
            finished.fetch_add(1, SeqCst);
            r
        };
        let (ha, hb) = (sc.spawn(run), sc.spawn(run));
        let mut rounds = 0;
        while finished.load(SeqCst) < 2 {
            // Once one has failed with EBUSY, or never, stop the other.
            if finished.load(SeqCst) == 1 || rounds >= POKE_ROUNDS {
                let _ = t.vcpu.kick();
            }
            rounds += 1;
            thread::yield_now();
        }
        (ha.join(), hb.join())
    });
    let (a, b) = (a.map_err(|_| "panic")?, b.map_err(|_| "panic")?);
    let busy = |r: &io::Result<VmmExit>| {
        r.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EBUSY)
    };
    let kicked = |r: &io::Result<VmmExit>| r.as_ref().is_ok_and(|e| e.reason == exit::KICKED);
    ensure!((busy(&a) && kicked(&b)) || (busy(&b) && kicked(&a)), "runs returned {a:?} and {b:?}");
    run_to_final_hlt(&t.vcpu)?;
    Ok(Pass)
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// Installs a SIGUSR1 handler that does nothing, without `SA_RESTART`.
fn catch_sigusr1() -> Result<(), String> {
    // SAFETY: an all-zero sigaction is a valid "no flags, empty mask" value.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `sa` is initialised, the handler is async-signal-safe (it does
    // nothing), and a null old-action pointer is allowed.
    let r = unsafe { libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) };
    ensure!(r == 0, "sigaction: {}", io::Error::last_os_error());
    Ok(())
}

pub fn signal_interrupts_run_with_eintr() -> TestResult {
    catch_sigusr1()?;
    let t = spinning_vm("signal", CreateFlags::DESTROY_ON_CLOSE)?;
    let r = run_while(&t.vcpu, |tid| {
        // SAFETY: `tid` is the vCPU thread, alive until run_while joins it,
        // and SIGUSR1 has a handler.
        let err = unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        ensure!(err == 0, "pthread_kill: {}", io::Error::from_raw_os_error(err));
        Ok(())
    })?;
    expect_errno!(r, libc::EINTR);
    run_to_final_hlt(&t.vcpu)?;
    Ok(Pass)
}

/// Fails unless the module's VM, vCPU and segment counts are as in `before`.
fn counts_back(before: &VmmStats) -> Result<(), String> {
    let now = s(vmm()?.stats())?;
    let counts = |a: &VmmStats| (a.nr_vms, a.nr_vm_objects, a.nr_vcpu_objects, a.seg_pages);
    ensure!(counts(&now) == counts(before), "stats {now:?}, before {before:?}");
    Ok(())
}

/// Destroys the named VM when dropped, so that a failing test leaves no
/// persistent VM behind (the module tests need none to exist).
struct Destroyer<'a>(&'a libvmm::Vmm, &'a str);

impl Drop for Destroyer<'_> {
    fn drop(&mut self) {
        let _ = self.0.destroy_vm(self.1);
    }
}

pub fn destroy_while_running_is_enxio() -> TestResult {
    let v = vmm()?;
    let before = s(v.stats())?;
    let _cleanup = Destroyer(&v, "destroy-run");
    let TestVm { vcpu, mem, vm } = spinning_vm("destroy-run", CreateFlags::empty())?;
    let mut vm_side = Some((vm, mem));
    let r = run_while(&vcpu, |_| {
        if let Some(held) = vm_side.take() {
            s(v.destroy_vm("destroy-run"))?;
            drop(held);
        }
        Ok(())
    })?;
    expect_errno!(r, libc::ENXIO);
    expect_errno!(vcpu.run(), libc::ENXIO);
    drop(vcpu);
    counts_back(&before)?;
    Ok(Pass)
}

pub fn vcpu_fd_keeps_a_closed_vm_alive() -> TestResult {
    let v = vmm()?;
    let before = s(v.stats())?;
    let TestVm { vcpu, mem, vm } = spinning_vm("close-run", CreateFlags::DESTROY_ON_CLOSE)?;
    let mut vm_side = Some((vm, mem));
    let r = run_while(&vcpu, |_| {
        if let Some(held) = vm_side.take() {
            drop(held);
            let mid = s(v.stats())?;
            ensure!(mid.nr_vm_objects == before.nr_vm_objects + 1, "VM object gone: {mid:?}");
        }
        s(vcpu.kick())
    })?;
    let e = s(r)?;
    ensure!(e.reason == exit::KICKED, "{}", describe(&e));
    drop(vcpu);
    counts_back(&before)?;
    ensure!(s(v.list_vms())?.iter().all(|e| e.name != "close-run"), "VM still listed");
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_io_steps_follow_the_guest() {
        let bytes: Vec<u64> = (0..100).collect();
        let steps = string_io_steps(&bytes, &[1, 2, 3], &[4, 5], &[9; 50]);
        let elems = steps.iter().filter(|s| matches!(s, Step::Elem { .. })).count();
        assert_eq!(elems, 100 + 3 + 2 + 50 + 3);
        assert_eq!(steps.len(), elems + 5);
        let Step::Elem { count, gpa, value, .. } = steps[0] else { panic!("first is no element") };
        assert_eq!((count, gpa, value), (100, SIO_BYTES, 0));
        let Step::Elem { count, gpa, flags, .. } = steps[101] else { panic!("no OUTSW") };
        assert_eq!((count, gpa, flags), (3, SIO_WORDS, VMM_INOUT_STRING | VMM_INOUT_REP));
        // The backwards OUTSB: bytes 2, 1, 0.
        let back: Vec<(u64, u64)> = steps[steps.len() - 5..steps.len() - 2]
            .iter()
            .map(|s| match s {
                Step::Elem { gpa, value, .. } => (*gpa, *value),
                Step::Halt { .. } => (0, 0),
            })
            .collect();
        assert_eq!(back, [(SIO_BYTES + 2, 2), (SIO_BYTES + 1, 1), (SIO_BYTES, 0)]);
    }
}
