// SPDX-License-Identifier: MIT OR Apache-2.0

//! A guest that drowns in its own timer interrupts: a periodic APIC timer
//! far faster than its handler. The guest makes no progress (as it would
//! on hardware), but the host must: a kick still ends the run at once.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use libvmm::setup::Mode;
use libvmm::Exit;

use crate::guest::{describe, s, TestVm, LOAD};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{ensure, payload, sym};

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_storm_start, vmm_guest_apic_storm_end, vmm_guest_apic_storm_isr",
    "vmm_guest_apic_storm_start:",
    ".code64",
    "movl $0xfee00000, %r15d",
    // Software-enable, divide by 1, periodic on vector 0x40 every 100 µs
    // (the kernel's shortest period).
    "movl $0x1ff, 0xf0(%r15)",
    "movl $0xb, 0x3e0(%r15)",
    "movl $0x20040, 0x320(%r15)",
    "movl $100000, 0x380(%r15)",
    "sti",
    "1: incq %rbx",
    "jmp 1b",
    // The handler spins for 2^24 TSC ticks (several ms anywhere), far
    // longer than the period, then ends the interrupt.
    "vmm_guest_apic_storm_isr:",
    "rdtsc",
    "movl %eax, %ecx",
    "2: rdtsc",
    "subl %ecx, %eax",
    "cmpl $0x1000000, %eax",
    "jb 2b",
    "movl $0, 0xb0(%r15)",
    "iretq",
    "vmm_guest_apic_storm_end:",
    ".code64",
    ".popsection",
    options(att_syntax)
);

pub fn apic_interrupt_storm_is_kickable() -> TestResult {
    let p = payload!(vmm_guest_apic_storm_start, vmm_guest_apic_storm_end);
    let t = TestVm::new_apic("apic-storm", Mode::Long64, &p)?;
    let isr = p.addr(sym!(vmm_guest_apic_storm_isr), LOAD);
    t.install_idt(Mode::Long64, |_| isr)?;
    let vcpu = &t.vcpu;
    let done = AtomicBool::new(false);
    thread::scope(|sc| {
        sc.spawn(|| {
            thread::sleep(Duration::from_millis(300));
            // Again and again, so that a lost kick shows as a slow test
            // rather than a hang.
            while !done.load(SeqCst) {
                let _ = vcpu.kick();
                thread::sleep(Duration::from_millis(500));
            }
        });
        let start = Instant::now();
        let r = vcpu.run();
        done.store(true, SeqCst);
        let e = s(r)?;
        let took = start.elapsed();
        ensure!(matches!(Exit::decode(&e), Exit::Kicked), "expected KICKED, got {}", describe(&e));
        ensure!(took < Duration::from_secs(5), "the kick took {took:?} to end the run");
        Ok(Pass)
    })
}
