// SPDX-License-Identifier: MIT OR Apache-2.0

//! Random accesses to every platform device: a guest with interrupts on
//! and a handler for every vector writes and reads random values at random
//! sizes on every port of the PICs, the PIT, the RTC and the PM timer, and
//! at random offsets of the IOAPIC's and the HPET's registers, for a
//! bounded number of accesses and of guest time. Whatever the devices then
//! do (timers at any rate, interrupt storms, lines left up), the run must
//! end: with the guest's PASS, or with a kick after [`TIMEOUT`] when the
//! guest drowns in interrupts. A run that no kick ends hangs the test
//! machine and shows as its timeout; the harness checks the kernel log.
//!
//! Every other trial starts with the devices set up and interrupting (the
//! PICs, every IOAPIC pin, the PIT, the RTC and an HPET timer), so that
//! the random accesses disturb devices at work; the others start from
//! reset.
//!
//! The seed is printed (`vmmtest_seed` overrides it, as for the other
//! random tests). Values that would make an IOAPIC entry or an HPET FSB
//! message deliver INIT or SIPI (delivery modes 5 and 6) are turned into
//! NMI and ExtINT: an INIT would reset vCPU 0 into code nobody wrote.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::Exit;

use super::apic_rt::{apic_state, counts, rt_call, ARGS, KHZ};
use super::apic_vm::ApicVm;
use super::platform::{count_stub, nmi_handler, set_gate, HPET_BASE, IOAPIC_BASE};
use crate::guest::{complete, describe, PASS, PORT_DEBUG, PORT_FAIL, PORT_PASS, RUN};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_pass, payload, Rng};

/// u64: the guest's xorshift64 state.
const SEED: u64 = ARGS;
/// u32: how many accesses the guest makes at most.
const OPS: u64 = ARGS + 8;
/// u32: how many it had left when it stopped.
const LEFT: u64 = ARGS + 0xc;
/// u64: TSC at the start; u64: the TSC budget.
const T0: u64 = ARGS + 0x10;
/// See [`T0`].
const BUDGET: u64 = ARGS + 0x18;
/// u32: non-zero: the devices start out set up and busy.
const BASELINE: u64 = ARGS + 0x20;

/// Accesses per trial.
const ACCESSES: u32 = 3000;
/// Trials (VMs), each with its own seed; the odd ones start with the
/// devices set up and busy.
const TRIALS: u32 = 4;
/// How long a trial may run before the test kicks it.
const TIMEOUT: Duration = Duration::from_secs(3);

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_random_start, vmm_guest_plat_random_end",
    "vmm_guest_plat_random_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    // LINT0 ExtINT (the PIC), logical ID 1 (flat).
    "movl $0x700, 0x350(%r15)",
    "movl $0x01000000, 0xd0(%r15)",
    "movl ${ioapic}, %ebp",
    "movl ${hpet}, %ebx",
    // With {baseline} set, the devices start out busy, and are set up
    // again every 256 accesses (routine 60 below).
    "cmpl $0, {baseline}",
    "je 5f",
    "call 60f",
    "5: movq {seed}, %r12",
    "movl {ops}, %r13d",
    rt_call!(tsc),
    "movq %rax, {t0}",
    // At most 300 ms of guest time.
    "movl {khz}, %eax",
    "imulq $300, %rax",
    "movq %rax, {budget}",
    "sti",
    // The loop: xorshift64 in R12; RCX = the choices: bits 2:0 the
    // device (0-3 a port, 4-5 the IOAPIC, 6-7 the HPET), bit 3 read, bits
    // 5:4 the size, bits 15:8 and 27:16 where.
    "1: movq %r12, %rax",
    "shlq $13, %rax",
    "xorq %rax, %r12",
    "movq %r12, %rax",
    "shrq $7, %rax",
    "xorq %rax, %r12",
    "movq %r12, %rax",
    "shlq $17, %rax",
    "xorq %rax, %r12",
    "movq %r12, %rcx",
    "movl %ecx, %edx",
    "andl $7, %edx",
    "cmpl $4, %edx",
    "jb 10f",
    "cmpl $6, %edx",
    "jb 20f",
    "jmp 30f",
    // A port from the table, 1, 2 or 4 bytes.
    "10: movq %r12, %rax",
    "shrq $32, %rax",
    "movl %ecx, %edx",
    "shrl $8, %edx",
    "andl $15, %edx",
    "leaq vmm_guest_plat_random_ports(%rip), %rdi",
    "movzwl (%rdi,%rdx,2), %edx",
    "movl %ecx, %edi",
    "shrl $4, %edi",
    "andl $3, %edi",
    "testl $8, %ecx",
    "jnz 15f",
    "cmpl $1, %edi",
    "je 11f",
    "cmpl $2, %edi",
    "je 12f",
    "outb %al, %dx",
    "jmp 90f",
    "11: outw %ax, %dx",
    "jmp 90f",
    "12: outl %eax, %dx",
    "jmp 90f",
    "15: cmpl $1, %edi",
    "je 16f",
    "cmpl $2, %edi",
    "je 17f",
    "inb %dx, %al",
    "jmp 90f",
    "16: inw %dx, %ax",
    "jmp 90f",
    "17: inl %dx, %eax",
    "jmp 90f",
    // The IOAPIC: mostly IOREGSEL (a register that exists) and IOWIN,
    // one access in eight anywhere in the page; 4, 2 or 1 bytes.
    "20: movq %r12, %rax",
    "shrq $32, %rax",
    "xorl %edx, %edx",
    "testl $0x100, %ecx",
    "jz 21f",
    "movl $0x10, %edx",
    "21: testl $0xe00, %ecx",
    "jnz 22f",
    "movl %ecx, %edx",
    "shrl $16, %edx",
    "andl $0xffc, %edx",
    "22: testl %edx, %edx",
    "jnz 23f",
    "andl $0x3f, %eax",
    // Half the time destination 0 (in an entry's high half).
    "23: testl $0x1000, %ecx",
    "jz 24f",
    "andl $0x00ffffff, %eax",
    "24: call 80f",
    "movl %ecx, %edi",
    "shrl $4, %edi",
    "andl $3, %edi",
    "testl $8, %ecx",
    "jnz 26f",
    "cmpl $2, %edi",
    "je 25f",
    "cmpl $3, %edi",
    "je 27f",
    "movl %eax, (%rbp,%rdx)",
    "jmp 90f",
    "25: movw %ax, (%rbp,%rdx)",
    "jmp 90f",
    "27: movb %al, (%rbp,%rdx)",
    "jmp 90f",
    "26: cmpl $2, %edi",
    "je 28f",
    "cmpl $3, %edi",
    "je 29f",
    "movl (%rbp,%rdx), %eax",
    "jmp 90f",
    "28: movw (%rbp,%rdx), %ax",
    "jmp 90f",
    "29: movb (%rbp,%rdx), %al",
    "jmp 90f",
    // The HPET: a register of timers 0-7, GEN_CONF, or anywhere in the
    // block; small values (at most 10 ms of ticks) half the time; 8 bytes,
    // either 4-byte half, or 1 byte.
    "30: movq %r12, %rax",
    "rorq $29, %rax",
    "movl %ecx, %edx",
    "shrl $16, %edx",
    "andl $0x3f8, %edx",
    "testl $0x200, %ecx",
    "jz 31f",
    "andl $0xf8, %edx",
    "orl $0x100, %edx",
    "jmp 32f",
    "31: testl $0x400, %ecx",
    "jz 32f",
    "movl $0x10, %edx",
    "32: testl $0x800, %ecx",
    "jz 33f",
    "andl $0xfffff, %eax",
    "33: call 80f",
    "movl %ecx, %edi",
    "shrl $4, %edi",
    "andl $3, %edi",
    "testl $8, %ecx",
    "jnz 40f",
    "cmpl $1, %edi",
    "je 34f",
    "cmpl $2, %edi",
    "je 35f",
    "cmpl $3, %edi",
    "je 36f",
    "movq %rax, (%rbx,%rdx)",
    "jmp 90f",
    "34: movl %eax, (%rbx,%rdx)",
    "jmp 90f",
    "35: movl %eax, 4(%rbx,%rdx)",
    "jmp 90f",
    "36: movb %al, (%rbx,%rdx)",
    "jmp 90f",
    "40: cmpl $1, %edi",
    "je 41f",
    "cmpl $2, %edi",
    "je 42f",
    "cmpl $3, %edi",
    "je 43f",
    "movq (%rbx,%rdx), %rax",
    "jmp 90f",
    "41: movl (%rbx,%rdx), %eax",
    "jmp 90f",
    "42: movl 4(%rbx,%rdx), %eax",
    "jmp 90f",
    "43: movb (%rbx,%rdx), %al",
    // Until the accesses or the time run out.
    "90: decl %r13d",
    "jz 95f",
    "testl $0xff, %r13d",
    "jnz 91f",
    "cmpl $0, {baseline}",
    "je 91f",
    "call 60f",
    "91:",
    rt_call!(tsc),
    "subq {t0}, %rax",
    "cmpq {budget}, %rax",
    "jb 1b",
    "95: cli",
    "movl %r13d, {left}",
    asm_pass!(),
    // Delivery modes INIT (5) and SIPI (6) in bits 10:8 of RAX become NMI
    // (4) and ExtINT (7).
    "80: pushq %rdi",
    "movl %eax, %edi",
    "shrl $8, %edi",
    "andl $7, %edi",
    "cmpl $5, %edi",
    "je 81f",
    "cmpl $6, %edi",
    "jne 82f",
    "81: xorq $0x100, %rax",
    "82: popq %rdi",
    "ret",
    // The baseline: the PICs set up (vectors 0x20 and 0x28, automatic
    // EOI, nothing masked), every IOAPIC pin to vector 0x60 + pin (edge,
    // destination 0), the PIT at 250 Hz, the RTC's periodic interrupt at
    // 64 Hz (register C read, so that it comes), HPET timer 0 every 2 ms
    // on pin 20 from a counter restarted at 0. Clobbers RAX and RCX.
    "60: movb $0x11, %al",
    "outb %al, $0x20",
    "outb %al, $0xa0",
    "movb $0x20, %al",
    "outb %al, $0x21",
    "movb $0x28, %al",
    "outb %al, $0xa1",
    "movb $0x04, %al",
    "outb %al, $0x21",
    "movb $0x02, %al",
    "outb %al, $0xa1",
    "movb $0x03, %al",
    "outb %al, $0x21",
    "outb %al, $0xa1",
    "xorl %eax, %eax",
    "outb %al, $0x21",
    "outb %al, $0xa1",
    "xorl %ecx, %ecx",
    "4: leal 0x11(%rcx,%rcx), %eax",
    "movl %eax, (%rbp)",
    "movl $0, 0x10(%rbp)",
    "leal 0x10(%rcx,%rcx), %eax",
    "movl %eax, (%rbp)",
    "leal 0x60(%rcx), %eax",
    "movl %eax, 0x10(%rbp)",
    "incl %ecx",
    "cmpl $24, %ecx",
    "jb 4b",
    "movb $0x34, %al",
    "outb %al, $0x43",
    "movb $0xa5, %al",
    "outb %al, $0x40",
    "movb $0x12, %al",
    "outb %al, $0x40",
    "movb $0x0a, %al",
    "outb %al, $0x70",
    "movb $0x2a, %al",
    "outb %al, $0x71",
    "movb $0x0b, %al",
    "outb %al, $0x70",
    "movb $0x42, %al",
    "outb %al, $0x71",
    "movb $0x0c, %al",
    "outb %al, $0x70",
    "inb $0x71, %al",
    "movq $0, 0x10(%rbx)",
    "movq $0, 0xf0(%rbx)",
    "movq $0x284c, 0x100(%rbx)",
    "movq $200000, 0x108(%rbx)",
    "movq $200000, 0x108(%rbx)",
    "movq $1, 0x10(%rbx)",
    "ret",
    "vmm_guest_plat_random_ports:",
    ".word 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41",
    ".word 0x42, 0x43, 0x61, 0x70, 0x71, 0x408, 0x409, 0x40a",
    "vmm_guest_plat_random_end:",
    ".popsection",
    ioapic = const IOAPIC_BASE,
    hpet = const HPET_BASE,
    seed = const SEED,
    ops = const OPS,
    left = const LEFT,
    t0 = const T0,
    budget = const BUDGET,
    khz = const KHZ,
    baseline = const BASELINE,
    options(att_syntax)
);

/// How a trial ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The guest made its accesses and reported PASS; this many were left.
    Passed(u32),
    /// The test kicked it after [`TIMEOUT`].
    Kicked,
}

/// One trial: a VM whose guest starts from `seed`. Returns how it ended,
/// the exits the sequencer got (there should be none) and the interrupts
/// the guest took by vector.
fn trial(n: u32, seed: u64) -> Result<(End, u32, BTreeMap<u8, u32>), String> {
    let p = payload!(vmm_guest_plat_random_start, vmm_guest_plat_random_end);
    let v = ApicVm::new(&format!("plat-random-{n}"), 1, &p)?;
    let t = &v.t;
    // Every vector counts (vectors below 32 come from the PIC's random
    // vector base or the IOAPIC as external interrupts, without error
    // codes); NMI has its own handler.
    for vector in 0..32u8 {
        let h = if vector == 2 { nmi_handler() } else { count_stub(vector) };
        set_gate(t, vector, h)?;
    }
    t.write_u64(SEED, seed)?;
    t.write(OPS, &ACCESSES.to_le_bytes())?;
    t.write(BASELINE, &(n % 2).to_le_bytes())?;
    let done = AtomicBool::new(false);
    let mut others = 0;
    let r = thread::scope(|sc| {
        sc.spawn(|| {
            let start = Instant::now();
            while !done.load(SeqCst) {
                if start.elapsed() >= TIMEOUT {
                    let _ = t.vcpu.kick();
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        let r = (|| {
            let mut entry = RUN;
            loop {
                let e = match t.vcpu.run_entry(entry) {
                    Ok(e) => e,
                    Err(err) if err.raw_os_error() == Some(libc::EINTR) => {
                        entry = RUN;
                        continue;
                    }
                    Err(err) => return Err(format!("run: {err}")),
                };
                entry = match Exit::decode(&e) {
                    Exit::Inout(io) if io.port == PORT_PASS && io.value == PASS => {
                        let left = super::apic_rt::read_u32s(t, LEFT, 1)?[0];
                        return Ok(End::Passed(left));
                    }
                    Exit::Inout(io) if io.port == PORT_FAIL || io.port == PORT_DEBUG => {
                        return Err(format!(
                            "the guest reported {:#x} on port {:#x}",
                            io.value, io.port
                        ))
                    }
                    Exit::Kicked => return Ok(End::Kicked),
                    // Nothing of the devices' should reach the sequencer;
                    // answer, count and go on.
                    Exit::Inout(_) | Exit::Mmio(_) if others < 100 => {
                        others += 1;
                        println!("# trial {n}: the sequencer got {}", describe(&e));
                        match Exit::decode(&e) {
                            Exit::Mmio(m) if m.flags & VMM_MMIO_WRITE != 0 => RUN,
                            _ => complete(0),
                        }
                    }
                    _ => return Err(format!("unexpected exit {}", describe(&e))),
                };
            }
        })();
        done.store(true, SeqCst);
        r
    });
    let end = r.map_err(|e| format!("trial {n}, seed {seed:#x}: {e}\n{}", apic_state(t)))?;
    Ok((end, others, counts(t)?))
}

pub fn platform_random_io() -> TestResult {
    let seed = super::fuzz::seed(Mode::Long64) ^ 0x706c_6174_666f_726d;
    // Bochs (VT-x) runs guests a few hundred times slower than QEMU: half
    // the trials there keep `make check` in its time.
    let trials = if std::env::var("vmmtest_backend").is_ok_and(|b| b == "vmx") {
        TRIALS / 2
    } else {
        TRIALS
    };
    println!("# platform_random_io: seed {seed:#x}, {trials} trials of {ACCESSES} accesses");
    let mut rng = Rng(seed | 1);
    for n in 0..trials {
        let s = rng.next_u64() | 1;
        let start = Instant::now();
        let (end, others, irqs) = trial(n, s)?;
        println!(
            "# trial {n} (seed {s:#x}): {end:?} after {:?}, {others} sequencer exits, {} \
             interrupts on {} vectors",
            start.elapsed(),
            irqs.values().sum::<u32>(),
            irqs.len()
        );
    }
    Ok(Pass)
}
