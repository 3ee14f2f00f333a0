// SPDX-License-Identifier: MIT OR Apache-2.0

//! The clocks a guest reads: the RTC/CMOS at ports 0x70 and 0x71 (date and
//! time against the host's, the update cycle, the periodic interrupt on
//! IRQ 8 and the NVRAM) and the ACPI PM timer (monotonic, at 3.579545
//! MHz, at the port `VMM_CREATE_VM` asks for).
//!
//! The guests run on the runtime of [`apic_rt`](super::apic_rt) and fail
//! with codes `0xbxx` (RTC) and `0xcxx` (PM timer); what they read goes to
//! guest memory at [`ARGS`] for the test to judge.

use std::time::{SystemTime, UNIX_EPOCH};

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::Exit;

use super::apic_rt::{
    delay_us, expect_count, expect_eax, read_u32s, report_fail, rt_call, wait_vec, ARGS, COUNTS,
    KHZ,
};
use super::apic_vm::{bsp_run, watched, ApicVm};
use super::platform::{
    check_rate, check_window, clock_resolution, ioapic_rte, mark, no_more, run_marked, set_gate,
    ten_ticks, IOAPIC_BASE,
};
use crate::guest::{complete, create_apic_vcpu, describe, s, Next, TestVm, LOAD, RAM_LEN};
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload, sym};

/// Guest asm: EAX = CMOS byte `$idx` (ports 0x70, 0x71).
macro_rules! cmos_read {
    ($idx:literal) => {
        concat!("movb $", $idx, ", %al\n outb %al, $0x70\n xorl %eax, %eax\n inb $0x71, %al\n")
    };
}

/// Guest asm: CMOS byte `$idx` = `$v`; clobbers EAX.
macro_rules! cmos_write {
    ($idx:literal, $v:literal) => {
        concat!("movb $", $idx, ", %al\n outb %al, $0x70\n movb $", $v, ", %al\n outb %al, $0x71\n")
    };
}

// --- the RTC ------------------------------------------------------------------

/// u32: register B as the guest found it.
const RTC_B: u64 = ARGS;
/// u32: the seconds register before the update the guest waited for.
const RTC_S0: u64 = ARGS + 4;
/// u64: TSC ticks from the start of the poll to UIP (odd), or 0 if the
/// guest never saw UIP.
const RTC_UIP_AT: u64 = ARGS + 8;
/// 8 bytes: seconds, minutes, hours, day of week, day, month, year,
/// century, read just after an update.
const RTC_TIME: u64 = ARGS + 0x10;
/// u32, set by the test: skip the wait for an update (on Bochs, where the
/// second it takes on average costs minutes of `make check`).
const RTC_NO_UPDATE: u64 = ARGS + 0x18;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_rtc_start, vmm_guest_plat_rtc_end, vmm_guest_plat_rtc_isr",
    "vmm_guest_plat_rtc_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    "movl ${ioapic}, %ebp",
    // Register D: valid RAM and time. Register A: the divider runs, rate
    // 1024 Hz (the power-on value); UIP aside.
    cmos_read!("0x0d"),
    expect_eax!("0x80", "0xb01"),
    cmos_read!("0x0a"),
    "andl $0x7f, %eax",
    expect_eax!("0x26", "0xb02"),
    cmos_read!("0x0b"),
    "movl %eax, {regb}",
    cmos_read!("0x00"),
    "movl %eax, {s0}",
    "movl %eax, %ebx",
    // 1. Poll register A and the seconds (marks 2 and 3 around it): within
    // 1.1 s the seconds move on (an update; the guest gives up after 5 s
    // of TSC time), and UIP (A bit 7) shows before they do. The first TSC
    // reading with UIP set goes to {uip_at}.
    "movq $0, {uip_at}",
    mark!("2"),
    "cmpl $0, {no_update}",
    "jne vmm_guest_plat_rtc_polled",
    rt_call!(tsc),
    "movq %rax, %r12",
    "movl {khz}, %eax",
    "imulq $5000, %rax",
    "movq %rax, %r13",
    "1:",
    cmos_read!("0x0a"),
    "testb $0x80, %al",
    "jz 2f",
    "cmpq $0, {uip_at}",
    "jne 2f",
    rt_call!(tsc),
    "subq %r12, %rax",
    "orq $1, %rax",
    "movq %rax, {uip_at}",
    "2:",
    cmos_read!("0x00"),
    "cmpl %eax, %ebx",
    "jne 3f",
    rt_call!(tsc),
    "subq %r12, %rax",
    "cmpq %r13, %rax",
    "jb 1b",
    "movl %ebx, %eax",
    report_fail!("0xb03"),
    "3:",
    "vmm_guest_plat_rtc_polled:",
    mark!("3"),
    // 2. Just after the update: the date and time, with a second to spare.
    cmos_read!("0x00"),
    "movb %al, {time}",
    cmos_read!("0x02"),
    "movb %al, {time} + 1",
    cmos_read!("0x04"),
    "movb %al, {time} + 2",
    cmos_read!("0x06"),
    "movb %al, {time} + 3",
    cmos_read!("0x07"),
    "movb %al, {time} + 4",
    cmos_read!("0x08"),
    "movb %al, {time} + 5",
    cmos_read!("0x09"),
    "movb %al, {time} + 6",
    cmos_read!("0x32"),
    "movb %al, {time} + 7",
    // 3. NVRAM: the shutdown byte (0x0F) and two free ones keep what is
    // written; index bit 7 (NMI off) selects the same byte.
    cmos_write!("0x0f", "0x5a"),
    cmos_write!("0x40", "0xa5"),
    cmos_write!("0x7f", "0x3c"),
    cmos_read!("0x0f"),
    expect_eax!("0x5a", "0xb05"),
    cmos_read!("0x40"),
    expect_eax!("0xa5", "0xb06"),
    cmos_read!("0x7f"),
    expect_eax!("0x3c", "0xb07"),
    cmos_read!("0x8f"),
    expect_eax!("0x5a", "0xb08"),
    cmos_write!("0x0f", "0"),
    // 4. The periodic interrupt at 64 Hz (RS = 10) on IRQ 8, IOAPIC pin 8,
    // vector 0x48 edge, whose handler does not read register C: one
    // interrupt, and no other while IRQF stays set.
    cmos_read!("0x0c"),
    ioapic_rte!("8", "0x48", "0"),
    cmos_write!("0x0a", "0x2a"),
    "movb $0x0b, %al",
    "outb %al, $0x70",
    "movl {regb}, %eax",
    "orb $0x40, %al",
    "outb %al, $0x71",
    "sti",
    wait_vec!("0x48", "1", "200", "0xb09"),
    delay_us!("100000"),
    "cli",
    expect_count!("0x48", "1", "0xb0a"),
    // Register C: IRQF and PF; reading it lowers IRQ 8, and the next
    // period raises it again.
    cmos_read!("0x0c"),
    "andl $0xc0, %eax",
    expect_eax!("0xc0", "0xb0b"),
    "sti",
    wait_vec!("0x48", "2", "200", "0xb0c"),
    "cli",
    // 5. Vector 0x58, whose handler reads register C: a tick per period.
    ioapic_rte!("8", "0x58", "0"),
    cmos_read!("0x0c"),
    ten_ticks!("0x58", "{c58}", "0", "1", "0xb0d"),
    // PIE off: nothing more.
    "movb $0x0b, %al",
    "outb %al, $0x70",
    "movl {regb}, %eax",
    "outb %al, $0x71",
    cmos_read!("0x0c"),
    no_more!("0x58", "50000", "0xb0f"),
    cmos_write!("0x0a", "0x26"),
    asm_pass!(),
    // Vector 0x58: read register C, count, EOI.
    "vmm_guest_plat_rtc_isr:",
    "pushq %rax",
    "movb $0x0c, %al",
    "outb %al, $0x70",
    "inb $0x71, %al",
    "lock incl {c58}",
    "movl ${apic}, %eax",
    "movl $0, 0xb0(%rax)",
    "popq %rax",
    "iretq",
    "vmm_guest_plat_rtc_end:",
    ".popsection",
    ioapic = const IOAPIC_BASE,
    apic = const super::apic_rt::APIC_BASE,
    khz = const KHZ,
    regb = const RTC_B,
    s0 = const RTC_S0,
    uip_at = const RTC_UIP_AT,
    time = const RTC_TIME,
    no_update = const RTC_NO_UPDATE,
    c58 = const COUNTS + 4 * 0x58,
    options(att_syntax)
);

/// Days from 1970-01-01 to `y`-`m`-`d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A CMOS time byte in the format register B gives.
fn cmos_value(b: u8, regb: u8) -> Result<i64, String> {
    if regb & 0x04 != 0 {
        return Ok(i64::from(b));
    }
    let (hi, lo) = (b >> 4, b & 0xf);
    ensure!(hi <= 9 && lo <= 9, "{b:#04x} is not BCD (register B {regb:#04x})");
    Ok(i64::from(hi * 10 + lo))
}

/// What the RTC said, as seconds since the epoch, and its day of week.
fn rtc_seconds(time: &[u8], regb: u8) -> Result<(i64, i64), String> {
    let v = |i: usize| cmos_value(time[i], regb);
    let hour_byte = time[2];
    let hours = if regb & 0x02 != 0 {
        v(2)?
    } else {
        // 12-hour: bit 7 is PM, 12 means 0.
        let h = cmos_value(hour_byte & 0x7f, regb)?;
        h % 12 + if hour_byte & 0x80 != 0 { 12 } else { 0 }
    };
    let (sec, min, dow, day, month) = (v(0)?, v(1)?, v(3)?, v(4)?, v(5)?);
    let year = v(7)? * 100 + v(6)?;
    ensure!(
        sec < 60 && min < 60 && hours < 24 && (1..=31).contains(&day) && (1..=12).contains(&month),
        "RTC time bytes {time:02x?} (register B {regb:#04x}) are no date"
    );
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hours * 3600 + min * 60 + sec, dow))
}

/// How long UIP shows before each update, in seconds.
const UIP_S: f64 = 244e-6;

pub fn platform_rtc_cmos() -> TestResult {
    let p = payload!(vmm_guest_plat_rtc_start, vmm_guest_plat_rtc_end);
    let v = ApicVm::new("plat-rtc", 1, &p)?;
    let t = &v.t;
    set_gate(t, 0x58, p.addr(sym!(vmm_guest_plat_rtc_isr), LOAD))?;
    // On Bochs the update wait (half a second on average) costs minutes
    // of `make check`; the update and UIP are checked on QEMU.
    let no_update = std::env::var("vmmtest_backend").is_ok_and(|b| b == "vmx");
    t.write(RTC_NO_UPDATE, &u32::from(no_update).to_le_bytes())?;
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64);
    let before = s(now())?;
    let marks = run_marked(&v)?;
    let after = s(now())?;
    let regb = read_u32s(t, RTC_B, 2)?;
    let (regb, s0) = (regb[0] as u8, regb[1] as u8);
    let time = t.read(RTC_TIME, 8)?;
    let (secs, dow) = rtc_seconds(&time, regb)?;
    ensure!(
        before - 5 <= secs && secs <= after + 5,
        "the RTC says {secs} s since the epoch (bytes {time:02x?}, register B {regb:#04x}), the \
         host {before} to {after}"
    );
    // 1970-01-01 was a Thursday, day 5 with Sunday 1.
    let want_dow = (secs.div_euclid(86_400) + 4).rem_euclid(7) + 1;
    ensure!(dow == want_dow, "day of week {dow}, want {want_dow} (bytes {time:02x?})");
    // The periodic ticks: 0x48 twice, then 0x58 eleven times and up to
    // three more.
    let c = super::apic_rt::counts(t)?;
    ensure!(c.get(&0x48) == Some(&2), "vector 0x48 counted {:?} times, want 2", c.get(&0x48));
    let n58 = c.get(&0x58).copied().unwrap_or(0);
    ensure!(c.len() == 2 && (11..=14).contains(&n58), "handler counts {c:#x?}");
    check_window(t, &marks, (0, 1), 0.156_25, (0.9, 2.0), "RTC at 64 Hz, ten periods")?;
    println!("# RTC: {secs} s since the epoch (host {before}..{after})");
    if no_update {
        println!("# RTC: no wait for an update on Bochs (checked on QEMU)");
        return Ok(Pass);
    }
    // The seconds moved on by one at the update.
    let step = (cmos_value(time[0], regb)? - cmos_value(s0, regb)?).rem_euclid(60);
    ensure!(step == 1, "seconds {s0:#x} before the update, {:#x} after", time[0]);
    // UIP showed first, unless the VM clock cannot show a 244 µs window:
    // on a host whose monotonic clock moves in jiffies (the QEMU test
    // machines have no clocksource but jiffies), every update falls on a
    // jiffy and no read ever lands in the window before it.
    let khz = read_u32s(t, KHZ, 1)?[0];
    let uip_at = t.read_u64(RTC_UIP_AT)?;
    let res = clock_resolution();
    if uip_at == 0 {
        let coarse = res > UIP_S;
        ensure!(coarse, "the guest never saw UIP before the update (clock resolution {res} s)");
        println!("# RTC: UIP not seen: the host clock moves in steps of {:.3} ms", res * 1e3);
    } else {
        let uip_ms = uip_at as f64 / f64::from(khz.max(1));
        println!("# RTC: UIP seen {uip_ms:.0} ms into the poll");
    }
    check_window(t, &marks, (2, 3), 1.0, (0.0, 1.1), "RTC: polled until the update")?;
    Ok(Pass)
}

// --- the PM timer -------------------------------------------------------------

/// u32s: the first and the last of the monotonic reads (for messages).
const PM_FIRST: u64 = ARGS;
/// u32s: the timer before and after about 200 ms.
const PM_RATE: u64 = ARGS + 8;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_pm_start, vmm_guest_plat_pm_end",
    "vmm_guest_plat_pm_start:",
    ".code64",
    rt_call!(init),
    // 1. 2000 reads: each below 2^24 and at most 2^23 past the one before
    // (mod 2^24).
    "movw $0x408, %dx",
    "inl %dx, %eax",
    "movl %eax, {first}",
    "movl %eax, %ebx",
    "movl $2000, %ecx",
    "1: inl %dx, %eax",
    "testl $0xff000000, %eax",
    "jz 2f",
    report_fail!("0xc01"),
    "2: movl %eax, %esi",
    "subl %ebx, %esi",
    "andl $0xffffff, %esi",
    "cmpl $0x800000, %esi",
    "jb 3f",
    report_fail!("0xc02"),
    "3: movl %eax, %ebx",
    "decl %ecx",
    "jnz 1b",
    "movl %ebx, {first} + 4",
    // 2. Its count over about 200 ms, between marks 0 and 1.
    "movw $0x408, %dx",
    "inl %dx, %eax",
    "movl %eax, {rate}",
    mark!("0"),
    delay_us!("200000"),
    mark!("1"),
    "movw $0x408, %dx",
    "inl %dx, %eax",
    "movl %eax, {rate} + 4",
    asm_pass!(),
    "vmm_guest_plat_pm_end:",
    ".popsection",
    first = const PM_FIRST,
    rate = const PM_RATE,
    options(att_syntax)
);

/// What the guest at the moved port reads: the timer twice, then what the
/// sequencer answers at 0x408.
const MOVED: u64 = ARGS;
/// What the test answers for the read at 0x408 once the timer moved.
const MOVED_ANSWER: u64 = 0xabcd_1234;
/// Where the moved timer answers.
const MOVED_PORT: u32 = 0x608;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_pm_moved_start, vmm_guest_plat_pm_moved_end",
    "vmm_guest_plat_pm_moved_start:",
    ".code64",
    "movw ${port}, %dx",
    "inl %dx, %eax",
    "movl %eax, {moved}",
    // Read until it moves (the QEMU test kernel's clock moves in 4 ms
    // steps), a million reads at most.
    "movl %eax, %ebx",
    "movl $1000000, %ecx",
    "1: inl %dx, %eax",
    "cmpl %eax, %ebx",
    "jne 2f",
    "decl %ecx",
    "jnz 1b",
    "2: movl %eax, {moved} + 4",
    "movw $0x408, %dx",
    "inl %dx, %eax",
    "movl %eax, {moved} + 8",
    asm_pass!(),
    "vmm_guest_plat_pm_moved_end:",
    ".popsection",
    port = const MOVED_PORT,
    moved = const MOVED,
    options(att_syntax)
);

/// PM timer ports `VMM_CREATE_VM` refuses (with the default flags).
const BAD_PM_PORTS: [u32; 13] =
    [0x409, 0x40a, 0x40b, 0xfffd, 0xffff, 0x1_0000, u32::MAX, 0x20, 0x40, 0x60, 0x70, 0xa0, 0x4d0];

/// The PM timer frequency.
const PM_HZ: f64 = 3_579_545.0;

pub fn platform_pm_timer() -> TestResult {
    // At the default port: monotonic, and at the right rate.
    let p = payload!(vmm_guest_plat_pm_start, vmm_guest_plat_pm_end);
    let v = ApicVm::new("plat-pm", 1, &p)?;
    let t = &v.t;
    let marks = run_marked(&v)?;
    let pm = read_u32s(t, PM_FIRST, 4)?;
    let ticks = pm[3].wrapping_sub(pm[2]) & 0xff_ffff;
    let what =
        format!("PM timer ({ticks} ticks; 2000 reads went from {:#x} to {:#x})", pm[0], pm[1]);
    check_rate(t, &marks, (0, 1), f64::from(ticks) / PM_HZ, &what)?;
    drop(v);

    // Moved to 0x608: it answers there, and 0x408 is the sequencer's.
    let vmm = crate::vmm()?;
    let vm = s(vmm.create_vm_pm("plat-pm-608", CreateFlags::DESTROY_ON_CLOSE, MOVED_PORT))?;
    let (_, mem) = s(vm.add_ram(0, RAM_LEN))?;
    let vcpu = create_apic_vcpu(&vm, 0)?;
    let t = TestVm { vcpu, mem, vm };
    let p = payload!(vmm_guest_plat_pm_moved_start, vmm_guest_plat_pm_moved_end);
    t.write(LOAD, p.bytes)?;
    t.setup(Mode::Long64, LOAD)?;
    let mut exits = 0;
    let r = watched(vec![&t.vcpu], |_| {
        bsp_run(&t, |x, e| match x {
            Exit::Inout(io)
                if io.port == 0x408 && io.size == 4 && io.flags == VMM_INOUT_IN && exits == 0 =>
            {
                exits += 1;
                Ok(Next::Enter(complete(MOVED_ANSWER)))
            }
            _ => Err(format!("unexpected exit {}", describe(e))),
        })
    })?;
    ensure!(
        r.passed && exits == 1,
        "stopped at {} after {exits} exits at 0x408",
        describe(&r.exit)
    );
    let got = read_u32s(&t, MOVED, 3)?;
    ensure!(
        got[0] >> 24 == 0 && got[1] >> 24 == 0 && got[0] != got[1],
        "the PM timer at {MOVED_PORT:#x} read {:#x}, then {:#x}",
        got[0],
        got[1]
    );
    ensure!(u64::from(got[2]) == MOVED_ANSWER, "0x408 read {:#x}, want the test's answer", got[2]);
    drop(t);

    // Bad ports, and a port without the timer.
    for (i, port) in BAD_PM_PORTS.into_iter().enumerate() {
        let r = vmm.create_vm_pm(&format!("plat-pm-bad-{i}"), CreateFlags::DESTROY_ON_CLOSE, port);
        expect_errno_of(r, libc::EINVAL, &format!("pm_port {port:#x}"))?;
    }
    let flags = CreateFlags::DESTROY_ON_CLOSE | CreateFlags::NO_PM_TIMER;
    let r = vmm.create_vm_pm("plat-pm-none", flags, MOVED_PORT);
    expect_errno_of(r, libc::EINVAL, "pm_port 0x608 with NO_PM_TIMER")?;
    // Good ones: the highest, one just below the PIC, none with NO_PM_TIMER.
    for (name, flags, port) in [
        ("plat-pm-top", CreateFlags::DESTROY_ON_CLOSE, 0xfffc),
        ("plat-pm-1c", CreateFlags::DESTROY_ON_CLOSE, 0x1c),
        ("plat-pm-off", flags, 0),
    ] {
        let vm = vmm.create_vm_pm(name, flags, port);
        s(vm).map_err(|e| format!("pm_port {port:#x} flags {flags:?}: {e}"))?;
    }
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 7), 20_794);
    }

    #[test]
    fn rtc_bytes_decode() {
        // 2026-12-07 23:59:58, Monday, BCD, 24-hour.
        let time = [0x58, 0x59, 0x23, 0x02, 0x07, 0x12, 0x26, 0x20];
        let (secs, dow) = rtc_seconds(&time, 0x02).unwrap();
        assert_eq!((secs, dow), (20_794 * 86_400 + 86_398, 2));
        // The same in binary, 12-hour: 11 PM.
        let time = [58, 59, 0x80 | 11, 2, 7, 12, 26, 20];
        assert_eq!(rtc_seconds(&time, 0x04).unwrap().0, secs);
        // 12 AM is midnight.
        let time = [0, 0, 12, 2, 7, 12, 26, 20];
        assert_eq!(rtc_seconds(&time, 0x04).unwrap().0, 20_794 * 86_400);
        assert!(rtc_seconds(&[0x5a, 0, 0, 1, 1, 1, 0, 0x20], 0x02).is_err());
    }
}
