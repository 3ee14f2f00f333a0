// SPDX-License-Identifier: MIT OR Apache-2.0

//! The in-kernel platform devices seen from a guest: the PIT's IRQ 0
//! through the 8259 PICs and through the IOAPIC, and what the platform
//! tests share.
//!
//! The guests run in long mode on the runtime of
//! [`apic_rt`](super::apic_rt) (counting handlers that EOI the local APIC,
//! TSC-bounded waits), and fail with codes `0x8xx` here.
//! The PIC is reached through the local APIC's LINT0 programmed ExtINT
//! (LVT0 = 0x700), the IOAPIC through its page at [`IOAPIC_BASE`], which
//! the payloads keep in RBP. A guest asks the test to act on a line with a
//! 4-byte OUT of a step number to [`PORT_STEP`]; the test does it before it
//! completes the OUT, so the guest knows the line's state from then on.
//!
//! The other platform tests live beside this file: interrupt lines the
//! sequencer drives ([`platform_lines`](super::platform_lines)), the PIC
//! ([`platform_pic`](super::platform_pic)), the RTC and the PM timer
//! ([`platform_clock`](super::platform_clock)), the HPET
//! ([`platform_hpet`](super::platform_hpet)), bad input and devices left
//! out ([`platform_bad`](super::platform_bad)) and random accesses to all
//! of them ([`platform_random`](super::platform_random)). This file holds
//! what they share.
//!
//! # Time
//!
//! A guest marks the moments the test times ([`mark!`], a [`PORT_STEP`]
//! exit): the test notes its monotonic clock, which is the VM clock the
//! devices run on, and its TSC, whose rate the guest TSC shares. Tick
//! rates are ten periods from the first tick seen: at least 0.9 of the
//! nominal time (a host timer is never early, but the first tick seen may
//! itself have been late) and at most twice it (late host timers merge
//! ticks); device clocks (PM timer, HPET counter) within 10%. Each bound
//! allows the clock's resolution at each end, and holds on the host's
//! clock and, where the host's clock kept pace with the TSC over the
//! window, in guest TSC time ([`window`]). Both matter on the QEMU test
//! machines: their kernel has no clocksource but jiffies (4 ms), and when
//! QEMU's threads are starved it loses jiffies, so its clock, and with it
//! every device, falls behind the TSC (seen: 4 ms of VM clock in 100 ms of
//! TSC time). Waits in the guest are bounded by the TSC, generously.
//!
//! Glossary: PIT = 8254 programmable interval timer; PIC = 8259
//! programmable interrupt controller; IOAPIC = I/O APIC; RTE = its
//! redirection-table entry; ICW/OCW = the PIC's initialisation and
//! operation command words; AEOI = automatic end of interrupt; ExtINT = an
//! interrupt whose vector the PIC supplies; ISA IRQ = one of the 16 legacy
//! interrupt lines.

use std::collections::BTreeMap;
use std::time::Instant;

use libvmm::setup::sel;
use libvmm::uapi::*;
use libvmm::{Exit, VmFd};

use super::apic_rt::{
    counts, delay_us, expect_count, expect_eax, handled, read_u32s, report_fail, rt_call,
    rt_payload, COUNTS, KHZ, RT,
};
use super::apic_vm::{bsp_run, expect_aps_suspended, halt_after_pass, run_all, ApicVm};
use crate::guest::{complete, describe, Next, TestVm, IDT};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload, sym};

/// Where the IOAPIC's registers are.
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// Where the HPET's registers are.
pub const HPET_BASE: u64 = 0xfed0_0000;
/// The port a guest writes a step number to, for the test to act on.
pub const PORT_STEP: u32 = 0xe4;

/// Guest asm: a byte OUT of `$v` to port `$port`; clobbers EAX and EDX.
macro_rules! outb {
    ($port:literal, $v:literal) => {
        concat!("movw $", $port, ", %dx\n movb $", $v, ", %al\n outb %al, %dx\n")
    };
}
pub(crate) use outb;

/// Guest asm: EAX = a byte IN from port `$port`; clobbers EDX.
macro_rules! inb {
    ($port:literal) => {
        concat!("movw $", $port, ", %dx\n xorl %eax, %eax\n inb %dx, %al\n")
    };
}
pub(crate) use inb;

/// Guest asm: unless the byte IN from `$port` is `$v`, reports it and
/// fails with `$code`.
macro_rules! expect_inb {
    ($port:literal, $v:literal, $code:literal) => {
        concat!(
            $crate::tests::platform::inb!($port),
            $crate::tests::apic_rt::expect_eax!($v, $code)
        )
    };
}
pub(crate) use expect_inb;

/// Guest asm: asks the test for step `$n` (see [`PORT_STEP`]); clobbers
/// EAX.
macro_rules! step {
    ($n:literal) => {
        concat!("movl $", $n, ", %eax\n outl %eax, $0xe4\n")
    };
}
pub(crate) use step;

/// Guest asm: IOAPIC pin `$pin`'s RTE = `$high:$low`, the destination
/// half first (RBP = [`IOAPIC_BASE`]).
macro_rules! ioapic_rte {
    ($pin:literal, $low:literal, $high:literal) => {
        concat!(
            "movl $(0x11 + 2 * ",
            $pin,
            "), (%rbp)\n movl $",
            $high,
            ", 0x10(%rbp)\n movl $(0x10 + 2 * ",
            $pin,
            "), (%rbp)\n movl $",
            $low,
            ", 0x10(%rbp)\n"
        )
    };
}
pub(crate) use ioapic_rte;

/// Guest asm: EAX = IOAPIC register `$reg` (RBP = [`IOAPIC_BASE`]).
macro_rules! ioapic_read {
    ($reg:literal) => {
        concat!("movl $", $reg, ", (%rbp)\n movl 0x10(%rbp), %eax\n")
    };
}
pub(crate) use ioapic_read;

/// Guest asm: the test notes the time as mark `$n` (a [`PORT_STEP`]
/// exit with step [`MARK`] + `$n`); clobbers EAX.
macro_rules! mark {
    ($n:literal) => {
        concat!("movl $(0x100 + ", $n, "), %eax\n outl %eax, $0xe4\n")
    };
}
pub(crate) use mark;

/// Guest asm: with interrupts on, waits for a tick of vector `$v` (whose
/// counter is at `$counter`, an address expression), marks the time as
/// mark `$m0`, waits for ten more and marks the time as `$m1`;
/// interrupts are off after. Fails with `$late` if a wait takes more than
/// 5 s of guest TSC time. The test judges the time between the marks
/// ([`check_window`]).
macro_rules! ten_ticks {
    ($v:literal, $counter:literal, $m0:literal, $m1:literal, $late:literal) => {
        concat!(
            "sti\n",
            $crate::tests::apic_rt::wait_vec!($v, "1", "5000", $late),
            $crate::tests::platform::mark!($m0),
            "movl $",
            $v,
            ", %edi\n",
            $crate::tests::apic_rt::rt_call!(count),
            "leal 10(%rax), %r13d\n",
            $crate::tests::apic_rt::wait_mem!($counter, "%r13d", "5000", $late),
            $crate::tests::platform::mark!($m1),
            "cli\n"
        )
    };
}
pub(crate) use ten_ticks;

/// Guest asm: once whatever was pending has been taken (1 ms with
/// interrupts on), `$us` more microseconds bring no vector `$v`; fails
/// with `$code` otherwise. Interrupts are off after.
macro_rules! no_more {
    ($v:literal, $us:literal, $code:literal) => {
        concat!(
            "sti\n",
            $crate::tests::apic_rt::delay_us!("1000"),
            "cli\n movl $",
            $v,
            ", %edi\n",
            $crate::tests::apic_rt::rt_call!(count),
            "movl %eax, %r13d\n sti\n",
            $crate::tests::apic_rt::delay_us!($us),
            "cli\n movl $",
            $v,
            ", %edi\n",
            $crate::tests::apic_rt::rt_call!(count),
            "cmpl %eax, %r13d\n je 7006f\n",
            $crate::tests::apic_rt::report_fail!($code),
            "7006:\n"
        )
    };
}
pub(crate) use no_more;

/// The 64-bit interrupt gate to `handler` (present, DPL 0, no IST).
fn gate(handler: u64) -> [u8; 16] {
    let low = (handler & 0xffff)
        | u64::from(sel::CODE64) << 16
        | 0x8e << 40
        | ((handler >> 16) & 0xffff) << 48;
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&low.to_le_bytes());
    g[8..].copy_from_slice(&(handler >> 32).to_le_bytes());
    g
}

/// Points vCPU 0's IDT entry `vector` (installed by
/// [`install_rt`](super::apic_rt::install_rt)) at `handler`.
pub fn set_gate(t: &TestVm, vector: u8, handler: u64) -> Result<(), String> {
    t.write(IDT + 16 * u64::from(vector), &gate(handler))
}

/// The runtime's counting stub for `vector` (it counts, logs and EOIs the
/// local APIC; an ExtINT or an exception vector works too, as long as no
/// error code is pushed).
pub fn count_stub(vector: u8) -> u64 {
    rt_payload().addr(sym!(vmm_guest_apic_rt_count_stubs), RT) + 8 * u64::from(vector)
}

/// The runtime's NMI handler.
pub fn nmi_handler() -> u64 {
    rt_payload().addr(sym!(vmm_guest_apic_rt_nmi), RT)
}

/// The step number of a [`PORT_STEP`] exit.
pub fn step_of(x: &Exit) -> Option<u64> {
    match x {
        Exit::Inout(io) if io.port == PORT_STEP && io.size == 4 && io.flags == 0 => Some(io.value),
        _ => None,
    }
}

/// `VMM_VM_IRQ_LINE` `op` on `line` of `kind`, as a test step.
pub fn irq_line(vm: &VmFd, kind: u32, line: u32, op: u32) -> Result<(), String> {
    vm.irq_line(kind, line, op).map_err(|e| {
        let k = if kind == VMM_IRQ_ISA { "ISA IRQ" } else { "IOAPIC pin" };
        format!("VMM_VM_IRQ_LINE {k} {line} op {op}: {e}")
    })
}

/// Step numbers from `MARK` up are marks: the test notes the time.
pub const MARK: u64 = 0x100;

/// A moment a guest marked: the host's monotonic clock (which is the VM
/// clock the devices run on) and its TSC (the guest TSC's rate).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    /// `CLOCK_MONOTONIC`.
    pub at: Instant,
    /// The TSC.
    pub tsc: u64,
}

impl Mark {
    /// Now.
    pub fn now() -> Self {
        // SAFETY: RDTSC only reads the time-stamp counter.
        let tsc = unsafe { core::arch::x86_64::_rdtsc() };
        Self { at: Instant::now(), tsc }
    }
}

/// The marks of one run, by number.
pub type Marks = BTreeMap<u64, Mark>;

/// Runs vCPU 0 of `v` (APs on their threads) to its PASS report, noting
/// the time of each mark and doing `on_step(n)` for each other step the
/// guest asks for; any other exit fails. Ends with the VM suspended when
/// `halt` (every AP must be back waiting for SIPI). Returns the marks.
pub fn run_steps(
    v: &ApicVm,
    halt: bool,
    mut on_step: impl FnMut(u64) -> Result<(), String>,
) -> Result<Marks, String> {
    let t = &v.t;
    let mut marks = Marks::new();
    let (r, aps) = run_all(v, |_| {
        let r = bsp_run(t, |x, e| match step_of(x) {
            Some(n) if n >= MARK => {
                let m = n - MARK;
                ensure!(marks.insert(m, Mark::now()).is_none(), "mark {m} twice");
                Ok(Next::Enter(complete(0)))
            }
            Some(n) => {
                on_step(n).map_err(|err| format!("step {n}: {err}"))?;
                Ok(Next::Enter(complete(0)))
            }
            None => Err(format!("unexpected exit {}", describe(e))),
        })?;
        if halt {
            halt_after_pass(v)?;
        }
        Ok(r)
    })?;
    if halt {
        expect_aps_suspended(&aps)?;
    }
    ensure!(r.passed, "stopped at {}", describe(&r.exit));
    ensure!(r.debug.is_empty(), "vCPU 0 reported {:#x?}", r.debug);
    Ok(marks)
}

/// [`run_steps`] for a guest that asks for nothing but marks.
pub fn run_marked(v: &ApicVm) -> Result<Marks, String> {
    run_steps(v, false, |n| Err(format!("unknown step {n}")))
}

/// The vectors handled: exactly `vector`, `min` to `max` times; returns
/// how often.
pub fn only_vector(t: &TestVm, vector: u8, min: u32, max: u32) -> Result<u32, String> {
    let c = counts(t)?;
    let n = c.get(&vector).copied().unwrap_or(0);
    ensure!(
        c.len() == 1 && (min..=max).contains(&n),
        "handler counts {c:#x?}, want only vector {vector:#x}, {min} to {max} times"
    );
    Ok(n)
}

/// The resolution of the host's monotonic clock (`clock_getres`), in
/// seconds: the VM clock's. On the QEMU test machines, which have no
/// clocksource but jiffies, it is a jiffy (4 ms).
pub fn clock_resolution() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The time between marks `a` and `b`: seconds on the host's monotonic
/// clock, and in guest TSC time if the TSC rate is known and the host's
/// clock kept pace with it over the window (within 3%, plus the clock's
/// resolution at each end). A host whose clock moves in jiffies loses
/// them when its CPUs are starved (QEMU's TCG on a loaded machine); the
/// devices follow that clock, so the TSC is then no reference for them.
pub fn window(t: &TestVm, marks: &Marks, a: u64, b: u64) -> Result<(f64, Option<f64>), String> {
    let (Some(ma), Some(mb)) = (marks.get(&a), marks.get(&b)) else {
        return Err(format!("marks {a} and {b} missing: {marks:?}"));
    };
    let mono = mb.at.saturating_duration_since(ma.at).as_secs_f64();
    let khz = read_u32s(t, KHZ, 2)?;
    let tsc = (khz[1] != 0 && khz[0] != 0)
        .then(|| mb.tsc.wrapping_sub(ma.tsc) as f64 / (f64::from(khz[0]) * 1e3));
    let slack = 0.03 + 2.0 * clock_resolution() / mono.max(1e-6);
    Ok((mono, tsc.filter(|&tsc| (mono / tsc - 1.0).abs() <= slack)))
}

/// Fails unless the time between marks `a` and `b` (see [`window`]) was
/// `lo` to `hi` times `nominal` seconds, give or take the clock's
/// resolution, on the host's clock and (where it counts) in guest TSC
/// time. Prints both as a TAP comment.
pub fn check_window(
    t: &TestVm,
    marks: &Marks,
    (a, b): (u64, u64),
    nominal: f64,
    (lo, hi): (f64, f64),
    what: &str,
) -> Result<(), String> {
    let (mono, tsc) = window(t, marks, a, b)?;
    let res = clock_resolution();
    let fits = |s: f64| lo * nominal - res <= s && s <= hi * nominal + res;
    let tsc_text =
        tsc.map_or("the TSC is no reference here".into(), |s| format!("{:.2} ms of TSC", s * 1e3));
    println!("# {what}: {:.2} ms ({tsc_text}), nominal {:.2} ms", mono * 1e3, nominal * 1e3);
    ensure!(
        fits(mono),
        "{what}: {:.2} ms on the host's clock, want {lo} to {hi} times {:.2} ms",
        mono * 1e3,
        nominal * 1e3
    );
    if let Some(s) = tsc {
        ensure!(
            fits(s),
            "{what}: {:.2} ms of guest TSC time, want {lo} to {hi} times {:.2} ms",
            s * 1e3,
            nominal * 1e3
        );
    }
    Ok(())
}

/// Fails unless a device clock that counted `device` seconds between
/// marks `a` and `b` kept within 10% of the host's clock and (where it
/// counts) of the guest TSC, plus the clock's resolution at each end.
pub fn check_rate(
    t: &TestVm,
    marks: &Marks,
    (a, b): (u64, u64),
    device: f64,
    what: &str,
) -> Result<(), String> {
    let (mono, tsc) = window(t, marks, a, b)?;
    let res = clock_resolution();
    let fits = |s: f64| (device - s).abs() <= 0.1 * s + 2.0 * res;
    let tsc_text =
        tsc.map_or("the TSC is no reference here".into(), |s| format!("{:.2} ms of TSC", s * 1e3));
    println!("# {what}: {:.2} ms in {:.2} ms ({tsc_text})", device * 1e3, mono * 1e3);
    ensure!(
        fits(mono),
        "{what}: {:.2} ms in {:.2} ms on the host's clock",
        device * 1e3,
        mono * 1e3
    );
    if let Some(s) = tsc {
        ensure!(fits(s), "{what}: {:.2} ms in {:.2} ms of guest TSC time", device * 1e3, s * 1e3);
    }
    Ok(())
}

// --- the PIT through the PIC ----------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_pit_pic_start, vmm_guest_plat_pit_pic_end",
    "vmm_guest_plat_pit_pic_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    // LINT0: ExtINT, the PIC's INTR.
    "movl $0x700, 0x350(%r15)",
    // The PICs as Linux sets them up, but with automatic EOI (ICW4 3):
    // edge, cascade, vectors 0x30 and 0x38, slave on IR2.
    outb!("0x20", "0x11"),
    outb!("0x21", "0x30"),
    outb!("0x21", "0x04"),
    outb!("0x21", "0x03"),
    outb!("0xa0", "0x11"),
    outb!("0xa1", "0x38"),
    outb!("0xa1", "0x02"),
    outb!("0xa1", "0x03"),
    // Only IRQ 0.
    outb!("0x21", "0xfe"),
    outb!("0xa1", "0xff"),
    expect_inb!("0x21", "0xfe", "0x801"),
    expect_inb!("0xa1", "0xff", "0x802"),
    // PIT counter 0: LSB then MSB, mode 2, binary, 11932 (100 Hz).
    outb!("0x43", "0x34"),
    outb!("0x40", "0x9c"),
    outb!("0x40", "0x2e"),
    // Read-back of counter 0's status: the control word as written, and
    // null count (bit 6) until the count is loaded, one input clock after
    // it was written (here: once the VM clock moves on; on a host whose
    // clock ticks in jiffies that is the next jiffy). 50 ms at most.
    rt_call!(tsc),
    "movq %rax, %r12",
    "2:",
    outb!("0x43", "0xe2"),
    inb!("0x40"),
    "movl %eax, %ebx",
    "andl $0x3f, %eax",
    expect_eax!("0x34", "0x803"),
    "testl $0x40, %ebx",
    "jz 3f",
    "pause",
    rt_call!(tsc),
    "subq %r12, %rax",
    "movl {khz}, %ecx",
    "imulq $50, %rcx",
    "cmpq %rcx, %rax",
    "jb 2b",
    "movl %ebx, %eax",
    report_fail!("0x808"),
    "3:",
    // Counter latch: a count from 1 to 11932.
    outb!("0x43", "0x00"),
    inb!("0x40"),
    "movl %eax, %ebx",
    inb!("0x40"),
    "shll $8, %eax",
    "orl %ebx, %eax",
    "leal -1(%rax), %ecx",
    "cmpl $11932, %ecx",
    "jb 1f",
    report_fail!("0x804"),
    "1:",
    // Ten periods of 10 ms, on the PIC's vector.
    ten_ticks!("0x30", "{c30}", "0", "1", "0x805"),
    // Masked at the PIC, IRQ 0 interrupts no more.
    outb!("0x21", "0xff"),
    no_more!("0x30", "30000", "0x807"),
    // And the PIT stops: mode 0 waits for a count that never comes.
    outb!("0x43", "0x30"),
    asm_pass!(),
    "vmm_guest_plat_pit_pic_end:",
    ".popsection",
    c30 = const COUNTS + 4 * 0x30,
    khz = const KHZ,
    options(att_syntax)
);

pub fn platform_pit_through_pic() -> TestResult {
    let p = payload!(vmm_guest_plat_pit_pic_start, vmm_guest_plat_pit_pic_end);
    let v = ApicVm::new("plat-pit-pic", 1, &p)?;
    let t = &v.t;
    let marks = run_marked(&v)?;
    // The first tick, ten more, and up to three that came before the
    // guest turned interrupts off (IOAPIC pin 2, masked, sent nothing).
    only_vector(t, 0x30, 11, 14)?;
    let log = handled(t)?;
    ensure!(log.iter().all(|&v| v == 0x30), "vectors handled {log:#x?}");
    check_window(t, &marks, (0, 1), 0.1, (0.9, 2.0), "PIT through the PIC, ten periods")?;
    Ok(Pass)
}

// --- the PIT through the IOAPIC -------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_pit_ioapic_start, vmm_guest_plat_pit_ioapic_end",
    "vmm_guest_plat_pit_ioapic_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "movl ${ioapic}, %ebp",
    // The PICs masked.
    outb!("0x21", "0xff"),
    outb!("0xa1", "0xff"),
    // IOAPIC version 0x11, 24 pins; pin 2 masked after reset.
    ioapic_read!("1"),
    expect_eax!("0x170011", "0x811"),
    ioapic_read!("0x14"),
    expect_eax!("0x10000", "0x812"),
    // Pin 2 (IRQ 0): vector 0x41, fixed, physical destination 0, edge,
    // active high, masked for now.
    ioapic_rte!("2", "0x10041", "0"),
    // PIT counter 0 at 100 Hz, mode 2.
    outb!("0x43", "0x34"),
    outb!("0x40", "0x9c"),
    outb!("0x40", "0x2e"),
    // Masked: 50 ms (five periods) bring nothing.
    "sti",
    delay_us!("50000"),
    "cli",
    expect_count!("0x41", "0", "0x813"),
    // Unmasked: the entry reads back as written.
    ioapic_rte!("2", "0x41", "0"),
    ioapic_read!("0x14"),
    expect_eax!("0x41", "0x814"),
    ioapic_read!("0x15"),
    expect_eax!("0", "0x815"),
    ten_ticks!("0x41", "{c41}", "0", "1", "0x816"),
    // Masked again: nothing more.
    ioapic_rte!("2", "0x10041", "0"),
    no_more!("0x41", "30000", "0x818"),
    outb!("0x43", "0x30"),
    asm_pass!(),
    "vmm_guest_plat_pit_ioapic_end:",
    ".popsection",
    ioapic = const IOAPIC_BASE,
    c41 = const COUNTS + 4 * 0x41,
    options(att_syntax)
);

pub fn platform_pit_through_ioapic() -> TestResult {
    let p = payload!(vmm_guest_plat_pit_ioapic_start, vmm_guest_plat_pit_ioapic_end);
    let v = ApicVm::new("plat-pit-ioapic", 1, &p)?;
    let t = &v.t;
    let marks = run_marked(&v)?;
    only_vector(t, 0x41, 11, 14)?;
    check_window(t, &marks, (0, 1), 0.1, (0.9, 2.0), "PIT through the IOAPIC, ten periods")?;
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_match_the_harness() {
        let table =
            crate::guest::idt_table(libvmm::setup::Mode::Long64, |v| 0x1234_5678 + u64::from(v));
        for v in [0u8, 0x49, 0xff] {
            let at = 16 * usize::from(v);
            assert_eq!(gate(0x1234_5678 + u64::from(v)), table[at..at + 16], "vector {v:#x}");
        }
    }

    #[test]
    fn stubs_are_in_the_runtime() {
        let rt = rt_payload();
        assert!(count_stub(0) >= RT && count_stub(255) + 8 <= rt.end(RT));
        assert!(nmi_handler() > count_stub(255) && nmi_handler() < rt.end(RT));
    }
}
