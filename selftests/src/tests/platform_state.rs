// SPDX-License-Identifier: MIT OR Apache-2.0

//! Saving and restoring the platform devices (`VMM_VM_GET_DEVICE`,
//! `VMM_VM_SET_DEVICE`): a guest programs every device into a state worth
//! keeping (the PICs initialised, IOAPIC entries, the PIT counting, the RTC
//! holding IRQ 8 with its CMOS written, an HPET comparator holding its
//! level line); each state, set into a fresh VM, reads back the same; a
//! restored source drives its lines again through the VM's routing; bad
//! arguments fail with their errno; and a refused state changes nothing.
//!
//! Times are absolute VM-clock nanoseconds (the host's monotonic clock):
//! the PIT's `taken_at` and the PM timer's instant move on between two
//! reads, and are compared as such.

use std::os::fd::AsFd;
use std::time::Duration;

use libvmm::setup::Mode;
use libvmm::sys::ioctl_ptr;
use libvmm::uapi::*;
use libvmm::{DeviceState, VmFd};

use crate::guest::{create_vcpu, s, TestVm, LOAD, NO_PLATFORM, RAM_LEN};
use crate::mem::{expect_efault, guard_page, BAD_ADDRS};
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload};

/// The IOAPIC's and the HPET's registers.
const IOAPIC: u64 = 0xfec0_0000;
const HPET: u64 = 0xfed0_0000;
/// The IOAPIC pin the HPET's comparator 2 drives, level-triggered.
const HPET_PIN: u32 = 20;
/// 200 ms, and the PM timer's counts in it (3.579545 MHz, exactly).
const PM_STEP_NS: u64 = 200_000_000;
const PM_STEP_COUNTS: u64 = 715_909;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_state_start, vmm_guest_plat_state_end",
    "vmm_guest_plat_state_start:",
    ".code32",
    // PICs: ICW1-ICW4 (vectors 0x20 and 0x28, slave on IR2), masks that
    // leave IRQ 0, 2 and 8 open; IRQ 10 level-triggered in the ELCR.
    "movb $0x11, %al\n outb %al, $0x20",
    "movb $0x20, %al\n outb %al, $0x21",
    "movb $0x04, %al\n outb %al, $0x21",
    "movb $0x01, %al\n outb %al, $0x21",
    "movb $0x11, %al\n outb %al, $0xa0",
    "movb $0x28, %al\n outb %al, $0xa1",
    "movb $0x02, %al\n outb %al, $0xa1",
    "movb $0x01, %al\n outb %al, $0xa1",
    "movb $0xfa, %al\n outb %al, $0x21",
    "movb $0xfe, %al\n outb %al, $0xa1",
    "movw $0x4d1, %dx\n movb $0x04, %al\n outb %al, %dx",
    // IOAPIC: pin 8 level, vector 0x48, open; pin 20 level, vector 0x54,
    // masked; pin 2 edge, vector 0x30, masked.
    "movl ${ioapic}, %ebx",
    "movl $0x20, (%ebx)\n movl $0x8048, 0x10(%ebx)",
    "movl $0x38, (%ebx)\n movl $0x18054, 0x10(%ebx)",
    "movl $0x14, (%ebx)\n movl $0x10030, 0x10(%ebx)",
    // PIT: counter 0 one-shot (mode 0) of 1000 clocks; counter 2 a square
    // wave (mode 3) with its gate and the speaker on, its count latched.
    "movb $0x30, %al\n outb %al, $0x43",
    "movb $0xe8, %al\n outb %al, $0x40",
    "movb $0x03, %al\n outb %al, $0x40",
    "movb $0xb6, %al\n outb %al, $0x43",
    "movb $0x34, %al\n outb %al, $0x42",
    "movb $0x12, %al\n outb %al, $0x42",
    "inb $0x61, %al\n orb $0x03, %al\n outb %al, $0x61",
    "movb $0x80, %al\n outb %al, $0x43",
    // RTC: two CMOS bytes, then the periodic interrupt (register B PIE):
    // its first tick raises IRQ 8 until register C is read, which nobody
    // does. The index is left at register B with NMIs disabled.
    "movb $0x40, %al\n outb %al, $0x70\n movb $0x5a, %al\n outb %al, $0x71",
    "movb $0x41, %al\n outb %al, $0x70\n movb $0xa5, %al\n outb %al, $0x71",
    "movb $0x8b, %al\n outb %al, $0x70\n inb $0x71, %al",
    "orb $0x40, %al\n outb %al, $0x71",
    // HPET: comparator 2 level-triggered to IOAPIC pin 20, due at count
    // 1000 (10 us); comparator 0 edge to pin 21, due in about 40 s; then
    // the main counter runs.
    "movl ${hpet}, %ebx",
    "movl ${t2conf}, 0x140(%ebx)\n movl $0, 0x144(%ebx)",
    "movl $1000, 0x148(%ebx)\n movl $0, 0x14c(%ebx)",
    "movl $0x2a04, 0x100(%ebx)\n movl $0, 0x104(%ebx)",
    "movl $0xf0000000, 0x108(%ebx)\n movl $0, 0x10c(%ebx)",
    "movl $1, 0x10(%ebx)",
    // The PM timer, read once.
    "movw $0x408, %dx\n inl %dx, %eax",
    asm_pass!(),
    "vmm_guest_plat_state_end:",
    ".code64",
    ".popsection",
    ioapic = const IOAPIC,
    hpet = const HPET,
    t2conf = const (HPET_PIN << 9) | 0x6,
    options(att_syntax)
);

/// Every device's state, as one VM gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct All {
    ioapic: VmmIoapicState,
    pic: VmmPicState,
    pit: VmmPitState,
    pm: VmmPmTimerState,
    rtc: VmmRtcState,
    hpet: VmmHpetState,
}

fn get<T: DeviceState>(vm: &VmFd, what: &str) -> Result<T, String> {
    vm.get_device::<T>().map_err(|e| format!("GET_DEVICE {what}: {e}"))
}

fn set<T: DeviceState>(vm: &VmFd, state: &T, what: &str) -> Result<(), String> {
    vm.set_device(state).map_err(|e| format!("SET_DEVICE {what}: {e}"))
}

fn get_all(vm: &VmFd) -> Result<All, String> {
    Ok(All {
        ioapic: get(vm, "IOAPIC")?,
        pic: get(vm, "PIC")?,
        pit: get(vm, "PIT")?,
        pm: get(vm, "PM timer")?,
        rtc: get(vm, "RTC")?,
        hpet: get(vm, "HPET")?,
    })
}

/// Sets every device, the interrupt controllers first, then the sources
/// that drive their lines.
fn set_all(vm: &VmFd, a: &All) -> Result<(), String> {
    set(vm, &a.ioapic, "IOAPIC")?;
    set(vm, &a.pic, "PIC")?;
    set(vm, &a.pit, "PIT")?;
    set(vm, &a.pm, "PM timer")?;
    set(vm, &a.rtc, "RTC")?;
    set(vm, &a.hpet, "HPET")
}

/// Whether two PM timer states count alike: the later instant is the
/// earlier one moved by whole 200 ms steps, with the counts of those steps.
fn pm_alike(a: &VmmPmTimerState, b: &VmmPmTimerState) -> bool {
    let (x, y) = if a.origin <= b.origin { (a, b) } else { (b, a) };
    let d = y.origin - x.origin;
    let count = (u64::from(x.count) + d / PM_STEP_NS * PM_STEP_COUNTS) as u32 & 0xff_ffff;
    x.version == y.version && x.width == y.width && d % PM_STEP_NS == 0 && y.count == count
}

/// `later` is `earlier` read again: equal but for the times that move on
/// (the PIT's `taken_at`, the PM timer's instant).
fn alike(earlier: &All, later: &All) -> Result<(), String> {
    ensure!(later.pit.taken_at >= earlier.pit.taken_at, "PIT taken_at went back");
    let pit = VmmPitState { taken_at: earlier.pit.taken_at, ..later.pit };
    let pm = if pm_alike(&earlier.pm, &later.pm) { earlier.pm } else { later.pm };
    let later = All { pit, pm, ..*later };
    for (what, same) in [
        ("IOAPIC", earlier.ioapic == later.ioapic),
        ("PIC", earlier.pic == later.pic),
        ("PIT", earlier.pit == later.pit),
        ("PM timer", earlier.pm == later.pm),
        ("RTC", earlier.rtc == later.rtc),
        ("HPET", earlier.hpet == later.hpet),
    ] {
        ensure!(same, "{what} differs:\n{earlier:#x?}\nthen\n{later:#x?}");
    }
    Ok(())
}

/// A VM with RAM, vCPU 0 (HLT exits) and the devices `flags` leaves in.
fn vm(name: &str, flags: CreateFlags) -> Result<TestVm, String> {
    TestVm::bare_with(name, CreateFlags::DESTROY_ON_CLOSE | flags, RAM_LEN, create_vcpu)
}

/// What the guest programmed shows in the states it left.
fn programmed(a: &All) -> Result<(), String> {
    let m = &a.pic.master;
    ensure!(m.vector_base == 0x20 && m.imr == 0xfa && m.init == 1, "master PIC {m:#x?}");
    ensure!(a.pic.slave.vector_base == 0x28 && a.pic.slave.elcr == 0x04, "slave PIC {a:#x?}");
    // Pin 8 delivered IRQ 8 and waits for the EOI (remote IRR, bit 14).
    ensure!(a.ioapic.rte[8] & 0xffff == 0xc048, "IOAPIC RTE 8 {:#x}", a.ioapic.rte[8]);
    let lines = (1 << 8) | (1 << HPET_PIN);
    ensure!(a.ioapic.lines & lines == lines, "IOAPIC lines {:#x}", a.ioapic.lines);
    ensure!(a.pic.slave.lines & 1 == 1, "PIC IRQ 8 down: {:#x?}", a.pic.slave);
    let c2 = &a.pit.counters[2];
    ensure!(a.pit.speaker == 1 && c2.gate == 1 && c2.run == 1, "PIT counter 2 {c2:#x?}");
    ensure!(c2.latched_count < 0x1_0000, "PIT counter 2 not latched: {c2:#x?}");
    ensure!(a.pit.irq_next == 0, "PIT one-shot not fired: {:#x?}", a.pit);
    ensure!(a.rtc.cmos[0x40] == 0x5a && a.rtc.cmos[0x41] == 0xa5, "CMOS {:x?}", a.rtc.cmos);
    ensure!(a.rtc.flags & 0x40 != 0 && a.rtc.nmi_disabled == 1, "RTC {:#x?}", a.rtc);
    ensure!(a.hpet.config == 1 && a.hpet.status == 1 << 2, "HPET {:#x?}", a.hpet);
    ensure!(a.pm.width == 24, "PM timer {:#x?}", a.pm);
    Ok(())
}

/// `VMM_VM_GET_DEVICE` or `SET_DEVICE` with a hand-made argument.
fn raw(vm: &VmFd, cmd: u32, device: u32, size: usize, data: u64) -> std::io::Result<i32> {
    raw_arg(vm, cmd, VmmDeviceState { device, size: size as u32, data, ..VmmDeviceState::ZERO })
}

fn raw_arg(vm: &VmFd, cmd: u32, mut a: VmmDeviceState) -> std::io::Result<i32> {
    ioctl_ptr(vm.as_fd(), cmd, &mut a)
}

/// Each device's number and state size.
const DEVICES: [(&str, u32, usize); 6] = [
    ("IOAPIC", VMM_DEVICE_IOAPIC, size_of::<VmmIoapicState>()),
    ("PIC", VMM_DEVICE_PIC, size_of::<VmmPicState>()),
    ("PIT", VMM_DEVICE_PIT, size_of::<VmmPitState>()),
    ("PM timer", VMM_DEVICE_PM_TIMER, size_of::<VmmPmTimerState>()),
    ("RTC", VMM_DEVICE_RTC, size_of::<VmmRtcState>()),
    ("HPET", VMM_DEVICE_HPET, size_of::<VmmHpetState>()),
];

fn bad_arguments(vm: &VmFd) -> Result<(), String> {
    let mut buf = vec![0u64; 64];
    let data = buf.as_mut_ptr() as u64;
    let page = s(guard_page())? as u64;
    for cmd in [VMM_VM_GET_DEVICE, VMM_VM_SET_DEVICE] {
        let op = if cmd == VMM_VM_GET_DEVICE { "GET" } else { "SET" };
        expect_efault(vm.as_fd(), cmd, op)?;
        for device in [0, 7, 0x100, u32::MAX] {
            let r = raw(vm, cmd, device, size_of::<VmmPicState>(), data);
            expect_errno_of(r, libc::EINVAL, &format!("{op} device {device:#x}"))?;
        }
        for (what, device, size) in DEVICES {
            for bad in [0, size - 1, size + 1, size + 8, 4096] {
                let r = raw(vm, cmd, device, bad, data);
                expect_errno_of(r, libc::EINVAL, &format!("{op} {what} size {bad}"))?;
            }
            let good = VmmDeviceState { device, size: size as u32, data, ..VmmDeviceState::ZERO };
            for (field, a) in [
                ("flags 1", VmmDeviceState { flags: 1, ..good }),
                ("flags 1 << 31", VmmDeviceState { flags: 1 << 31, ..good }),
                ("reserved 1", VmmDeviceState { reserved: 1, ..good }),
            ] {
                expect_errno_of(
                    raw_arg(vm, cmd, a),
                    libc::EINVAL,
                    &format!("{op} {what} {field}"),
                )?;
            }
            let ends = page + 4096 - size as u64 / 2;
            for addr in BAD_ADDRS.iter().map(|a| *a as u64).chain([ends]) {
                let r = raw(vm, cmd, device, size, addr);
                expect_errno_of(r, libc::EFAULT, &format!("{op} {what} data {addr:#x}"))?;
            }
        }
    }
    Ok(())
}

fn enodev(a: &All) -> Result<(), String> {
    let t = vm("plat-state-none", NO_PLATFORM)?;
    let vm = &t.vm;
    for (what, device, size) in DEVICES {
        let mut buf = vec![0u8; size];
        let r = raw(vm, VMM_VM_GET_DEVICE, device, size, buf.as_mut_ptr() as u64);
        expect_errno_of(r, libc::ENODEV, &format!("GET {what} without it"))?;
    }
    let no = |r: std::io::Result<()>, what: &str| {
        expect_errno_of(r, libc::ENODEV, &format!("SET {what} without it"))
    };
    no(vm.set_device(&a.ioapic), "IOAPIC")?;
    no(vm.set_device(&a.pic), "PIC")?;
    no(vm.set_device(&a.pit), "PIT")?;
    no(vm.set_device(&a.pm), "PM timer")?;
    no(vm.set_device(&a.rtc), "RTC")?;
    no(vm.set_device(&a.hpet), "HPET")
}

/// States the models refuse: each is `EINVAL`, and every device reads the
/// same afterwards.
fn refused(vm: &VmFd, a: &All) -> Result<(), String> {
    let before = get_all(vm)?;
    let future = before.pit.taken_at + 3600 * 1_000_000_000;
    let v = |version: u32| version.wrapping_add(1);
    let mut pic_chip = a.pic;
    pic_chip.master.reserved = 1;
    let mut pit_counter = a.pit;
    pit_counter.counters[1].control = 0x100;
    let cases: [(&str, std::io::Result<()>); 20] = [
        (
            "IOAPIC version",
            vm.set_device(&VmmIoapicState { version: v(a.ioapic.version), ..a.ioapic }),
        ),
        ("IOAPIC id 16", vm.set_device(&VmmIoapicState { id: 16, ..a.ioapic })),
        ("IOAPIC lines bit 24", vm.set_device(&VmmIoapicState { lines: 1 << 24, ..a.ioapic })),
        ("PIC version", vm.set_device(&VmmPicState { version: v(a.pic.version), ..a.pic })),
        ("PIC reserved", vm.set_device(&VmmPicState { reserved: 1, ..a.pic })),
        ("PIC chip reserved", vm.set_device(&pic_chip)),
        ("PIT version", vm.set_device(&VmmPitState { version: v(a.pit.version), ..a.pit })),
        ("PIT speaker 2", vm.set_device(&VmmPitState { speaker: 2, ..a.pit })),
        ("PIT taken later", vm.set_device(&VmmPitState { taken_at: future, ..a.pit })),
        ("PIT control 0x100", vm.set_device(&pit_counter)),
        ("PM version", vm.set_device(&VmmPmTimerState { version: v(a.pm.version), ..a.pm })),
        ("PM width 32", vm.set_device(&VmmPmTimerState { width: 32, ..a.pm })),
        ("PM reserved", vm.set_device(&VmmPmTimerState { reserved: 1, ..a.pm })),
        ("RTC version", vm.set_device(&VmmRtcState { version: v(a.rtc.version), ..a.rtc })),
        ("RTC index 0x80", vm.set_device(&VmmRtcState { index: 0x80, ..a.rtc })),
        ("RTC synced later", vm.set_device(&VmmRtcState { synced: future, ..a.rtc })),
        ("RTC alarm 0x100", vm.set_device(&VmmRtcState { alarm: [0x100, 0, 0], ..a.rtc })),
        ("HPET version", vm.set_device(&VmmHpetState { version: v(a.hpet.version), ..a.hpet })),
        ("HPET reserved", vm.set_device(&VmmHpetState { reserved: 1, ..a.hpet })),
        ("HPET config bit 2", vm.set_device(&VmmHpetState { config: 1 << 2, ..a.hpet })),
    ];
    for (what, r) in cases {
        expect_errno_of(r, libc::EINVAL, what)?;
    }
    alike(&before, &get_all(vm)?)
}

/// A restored source drives its lines through the VM's routing: the RTC
/// and HPET states of a fresh VM lower IRQ 8 and pin 20, the saved ones
/// raise them again.
fn lines_follow(vm: &VmFd, a: &All) -> Result<(), String> {
    let fresh = vm_fresh()?;
    set(vm, &fresh.rtc, "fresh RTC")?;
    set(vm, &fresh.hpet, "fresh HPET")?;
    let io: VmmIoapicState = get(vm, "IOAPIC")?;
    let pic: VmmPicState = get(vm, "PIC")?;
    ensure!(io.lines & (1 << 8 | 1 << HPET_PIN) == 0, "lines still up: {:#x}", io.lines);
    ensure!(pic.slave.lines & 1 == 0, "PIC IRQ 8 still up: {:#x?}", pic.slave);
    set(vm, &a.rtc, "RTC")?;
    set(vm, &a.hpet, "HPET")?;
    let io: VmmIoapicState = get(vm, "IOAPIC")?;
    let pic: VmmPicState = get(vm, "PIC")?;
    ensure!(io.lines == a.ioapic.lines, "lines {:#x}, saved {:#x}", io.lines, a.ioapic.lines);
    ensure!(pic.slave.lines == a.pic.slave.lines, "PIC slave {:#x?}", pic.slave);
    Ok(())
}

/// The states of a VM that never ran.
fn vm_fresh() -> Result<All, String> {
    let t = vm("plat-state-fresh", CreateFlags::empty())?;
    get_all(&t.vm)
}

/// Every device's state from a programmed VM into a fresh one and back,
/// with the bad arguments and refused states.
pub fn platform_device_state() -> TestResult {
    let t = vm("plat-state-a", CreateFlags::empty())?;
    let p = payload!(vmm_guest_plat_state_start, vmm_guest_plat_state_end);
    t.write(LOAD, p.bytes)?;
    t.setup(Mode::Protected32, LOAD)?;
    t.run_to_pass()?;
    // The PIT's one-shot, the RTC's first tick and the HPET's comparator 2
    // are due within 2 ms.
    std::thread::sleep(Duration::from_millis(50));
    let a = get_all(&t.vm)?;
    programmed(&a)?;
    alike(&a, &get_all(&t.vm)?)?;

    let u = vm("plat-state-b", CreateFlags::empty())?;
    set_all(&u.vm, &a)?;
    alike(&a, &get_all(&u.vm)?)?;
    // The same state set again into its own VM changes nothing.
    set_all(&t.vm, &get_all(&t.vm)?)?;
    alike(&a, &get_all(&t.vm)?)?;

    bad_arguments(&u.vm)?;
    enodev(&a)?;
    refused(&u.vm, &a)?;
    lines_follow(&u.vm, &a)?;
    alike(&a, &get_all(&u.vm)?)?;
    Ok(Pass)
}
