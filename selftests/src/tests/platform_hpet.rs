// SPDX-License-Identifier: MIT OR Apache-2.0

//! The HPET from a guest: its capabilities, a main counter that runs only
//! while enabled (and at the rate GCAP_ID gives), comparator 0 periodic
//! through the IOAPIC pin its route capability offers, and a one-shot
//! through legacy replacement routing (IRQ 0, IOAPIC pin 2), which also
//! takes IRQ 0 away from the PIT.
//!
//! The guest runs on the runtime of [`apic_rt`](super::apic_rt) with the
//! HPET's registers in RBX and the IOAPIC's in RBP, stores what it reads at
//! [`ARGS`] for the test to judge, and fails with codes `0xdxx`.
//!
//! Glossary: GCAP_ID, GEN_CONF, MAIN_CNT, Tn_CONF, Tn_COMPARATOR = the
//! HPET's capabilities, configuration, main counter, and timer n's
//! configuration and comparator registers; LEG_RT = legacy replacement
//! routing; fs = femtoseconds.

use super::apic_rt::{delay_us, read_u32s, report_fail, rt_call, wait_mem, wait_vec, ARGS, COUNTS};
use super::apic_vm::ApicVm;
use super::platform::{
    check_rate, check_window, ioapic_rte, mark, no_more, outb, run_marked, ten_ticks, HPET_BASE,
    IOAPIC_BASE,
};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload};

/// u64: GCAP_ID.
const GCAP: u64 = ARGS;
/// u64 each: T0_CONF, T1_CONF and T2_CONF after reset.
const TCONF: u64 = ARGS + 8;
/// u64: GEN_CONF after reset.
const GCONF: u64 = ARGS + 0x20;
/// u64 each: the counter halted (twice), running (twice), halted (twice).
const COUNTER: u64 = ARGS + 0x28;
/// u32: the IOAPIC pin timer 0 was routed to.
const PIN: u64 = ARGS + 0x68;
/// u64: T0_CONF as programmed for the periodic interrupt.
const T0_PERIODIC: u64 = ARGS + 0x70;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_hpet_start, vmm_guest_plat_hpet_end",
    "vmm_guest_plat_hpet_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "movl ${ioapic}, %ebp",
    "movl ${hpet}, %ebx",
    // The registers after reset.
    "movq (%rbx), %rax",
    "movq %rax, {gcap}",
    "movq 0x100(%rbx), %rax",
    "movq %rax, {tconf}",
    "movq 0x120(%rbx), %rax",
    "movq %rax, {tconf} + 8",
    "movq 0x140(%rbx), %rax",
    "movq %rax, {tconf} + 16",
    "movq 0x10(%rbx), %rax",
    "movq %rax, {gconf}",
    // 1. The main counter, halted for 10 ms, running for about 200 ms
    // (between marks 0 and 1), halted for 10 ms.
    "movq 0xf0(%rbx), %rax",
    "movq %rax, {counter}",
    delay_us!("10000"),
    "movq 0xf0(%rbx), %rax",
    "movq %rax, {counter} + 8",
    "movq $1, 0x10(%rbx)",
    "movq 0xf0(%rbx), %rax",
    "movq %rax, {counter} + 16",
    mark!("0"),
    delay_us!("200000"),
    mark!("1"),
    "movq 0xf0(%rbx), %rax",
    "movq %rax, {counter} + 24",
    "movq $0, 0x10(%rbx)",
    "movq 0xf0(%rbx), %rax",
    "movq %rax, {counter} + 32",
    delay_us!("10000"),
    "movq 0xf0(%rbx), %rax",
    "movq %rax, {counter} + 40",
    // R8 = ticks in 10 ms = 10^13 fs / the period.
    "movq {gcap}, %rcx",
    "shrq $32, %rcx",
    "jnz 1f",
    "xorl %eax, %eax",
    report_fail!("0xd01"),
    "1: movabsq $10000000000000, %rax",
    "xorl %edx, %edx",
    "divq %rcx",
    "movq %rax, %r8",
    // 2. Timer 0 periodic every 10 ms, routed to the lowest IOAPIC pin its
    // capability allows (vector 0x50, edge, destination 0).
    "movq {tconf}, %rax",
    "shrq $32, %rax",
    "bsfl %eax, %ecx",
    "jnz 2f",
    report_fail!("0xd02"),
    "2: movl %ecx, {pin}",
    "leal 0x11(%rcx,%rcx), %eax",
    "movl %eax, (%rbp)",
    "movl $0, 0x10(%rbp)",
    "leal 0x10(%rcx,%rcx), %eax",
    "movl %eax, (%rbp)",
    "movl $0x50, 0x10(%rbp)",
    // Counter halted at 0; T0_CONF: the route, VAL_SET, periodic,
    // interrupt enabled, edge; comparator (with VAL_SET) then period.
    "movq $0, 0xf0(%rbx)",
    "movl %ecx, %eax",
    "shll $9, %eax",
    "orl $0x4c, %eax",
    "movq %rax, 0x100(%rbx)",
    "movq %r8, 0x108(%rbx)",
    "movq %r8, 0x108(%rbx)",
    "movq 0x100(%rbx), %rax",
    "movq %rax, {t0_periodic}",
    "movq $1, 0x10(%rbx)",
    ten_ticks!("0x50", "{c50}", "2", "3", "0xd03"),
    // Timer 0's interrupt off: nothing more.
    "movl {pin}, %eax",
    "shll $9, %eax",
    "orl $0x08, %eax",
    "movq %rax, 0x100(%rbx)",
    no_more!("0x50", "30000", "0xd05"),
    // 3. The PIT at 100 Hz reaches IOAPIC pin 2 (vector 0x42) ...
    ioapic_rte!("2", "0x42", "0"),
    outb!("0x43", "0x34"),
    outb!("0x40", "0x9c"),
    outb!("0x40", "0x2e"),
    "sti",
    wait_vec!("0x42", "1", "1000", "0xd06"),
    "cli",
    // ... until legacy replacement routing gives IRQ 0 to the HPET.
    "movq $0, 0x100(%rbx)",
    "movq $3, 0x10(%rbx)",
    no_more!("0x42", "50000", "0xd07"),
    // 4. Timer 0 one-shot, 20 ms ahead, under legacy replacement: once
    // (marks 4 and 5 around the wait).
    "movq 0xf0(%rbx), %rax",
    "leaq (%rax,%r8,2), %rax",
    "movq %rax, 0x108(%rbx)",
    "movq $0x04, 0x100(%rbx)",
    mark!("4"),
    "movl $0x42, %edi",
    rt_call!(count),
    "leal 1(%rax), %r13d",
    "sti",
    wait_mem!("{c42}", "%r13d", "5000", "0xd08"),
    mark!("5"),
    "cli",
    no_more!("0x42", "50000", "0xd0a"),
    // The PIT stops, then the HPET.
    outb!("0x43", "0x30"),
    "movq $0, 0x10(%rbx)",
    asm_pass!(),
    "vmm_guest_plat_hpet_end:",
    ".popsection",
    ioapic = const IOAPIC_BASE,
    hpet = const HPET_BASE,
    gcap = const GCAP,
    tconf = const TCONF,
    gconf = const GCONF,
    counter = const COUNTER,
    pin = const PIN,
    t0_periodic = const T0_PERIODIC,
    c42 = const COUNTS + 4 * 0x42,
    c50 = const COUNTS + 4 * 0x50,
    options(att_syntax)
);

/// GCAP_ID: the vendor, at least three timers, legacy replacement, a
/// period of at most 100 ns; and each timer's configuration after reset.
fn check_caps(gcap: u64, tconf: &[u64], gconf: u64) -> Result<(), String> {
    let (rev, timers, vendor, period) =
        (gcap & 0xff, ((gcap >> 8) & 0x1f) + 1, (gcap >> 16) & 0xffff, gcap >> 32);
    ensure!(
        rev != 0 && timers >= 3 && vendor == 0x8086 && gcap & (1 << 15) != 0,
        "GCAP_ID {gcap:#x}: revision {rev}, {timers} timers, vendor {vendor:#x}, LEG_RT_CAP {}",
        gcap >> 15 & 1
    );
    ensure!(period != 0 && period <= 100_000_000, "GCAP_ID {gcap:#x}: period {period} fs");
    ensure!(gconf == 0, "GEN_CONF after reset {gconf:#x}");
    for (n, &c) in tconf.iter().enumerate() {
        // Route capability; periodic capable (timer 0 must be); interrupt
        // off, no route, one-shot after reset.
        ensure!(
            c >> 32 != 0 && (n != 0 || c & (1 << 4) != 0) && c & 0x3e0c == 0,
            "T{n}_CONF after reset {c:#x}"
        );
    }
    Ok(())
}

pub fn platform_hpet() -> TestResult {
    let p = payload!(vmm_guest_plat_hpet_start, vmm_guest_plat_hpet_end);
    let v = ApicVm::new("plat-hpet", 1, &p)?;
    let t = &v.t;
    let r = run_marked(&v);
    let gcap = t.read_u64(GCAP)?;
    let tconf = [t.read_u64(TCONF)?, t.read_u64(TCONF + 8)?, t.read_u64(TCONF + 16)?];
    let state = format!("GCAP_ID {gcap:#x}, T0-2_CONF {tconf:#x?}");
    let marks = r.map_err(|e| format!("{e}\n{state}"))?;
    check_caps(gcap, &tconf, t.read_u64(GCONF)?)?;
    let c: Vec<u64> = (0..6).map(|i| t.read_u64(COUNTER + 8 * i)).collect::<Result<_, _>>()?;
    ensure!(c[0] == c[1], "the halted counter moved from {:#x} to {:#x}", c[0], c[1]);
    ensure!(c[4] == c[5], "the counter halted again moved from {:#x} to {:#x}", c[4], c[5]);
    ensure!(c[3] > c[2] && c[4] >= c[3], "the running counter read {:#x?}", &c[2..5]);
    let period = (gcap >> 32) as f64 * 1e-15;
    let what = format!("HPET main counter ({:#x} ticks)", c[3] - c[2]);
    check_rate(t, &marks, (0, 1), (c[3] - c[2]) as f64 * period, &what)?;
    let pin = read_u32s(t, PIN, 1)?[0];
    let t0 = t.read_u64(T0_PERIODIC)?;
    ensure!(
        tconf[0] >> 32 >> pin & 1 == 1 && (t0 >> 9) & 0x1f == u64::from(pin) && t0 & 0xe == 0xc,
        "T0_CONF {t0:#x} for pin {pin} (capability {:#x})",
        tconf[0] >> 32
    );
    check_window(t, &marks, (2, 3), 0.1, (0.9, 2.0), "HPET timer 0 periodic, ten periods")?;
    check_window(t, &marks, (4, 5), 0.02, (0.9, 10.0), "HPET timer 0 one-shot")?;
    let counts = super::apic_rt::counts(t)?;
    let (n42, n50) = (counts.get(&0x42).copied(), counts.get(&0x50).copied().unwrap_or(0));
    ensure!(
        counts.len() == 2 && n42.is_some_and(|n| n >= 2) && (11..=14).contains(&n50),
        "handler counts {counts:#x?}"
    );
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_of_the_model_pass() {
        // Revision 1, 8 timers, 64-bit, LEG_RT, Intel, 10 ns; pins 20-23.
        let gcap = 1 | 7 << 8 | 1 << 13 | 1 << 15 | 0x8086 << 16 | 10_000_000 << 32;
        let t = 0x00f0_0000_u64 << 32 | 0x30 | 1 << 15;
        assert!(check_caps(gcap, &[t, t, t], 0).is_ok());
        assert!(check_caps(gcap & !(0xffff << 16), &[t, t, t], 0).is_err());
        assert!(check_caps(gcap & !(0x1f << 8) | 1 << 8, &[t, t, t], 0).is_err());
        assert!(check_caps(gcap | 0xffff_ffff << 32, &[t, t, t], 0).is_err());
        assert!(check_caps(gcap, &[t | 4, t, t], 0).is_err());
    }
}
