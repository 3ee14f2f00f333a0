// SPDX-License-Identifier: MIT OR Apache-2.0

//! Bad input to the platform devices' ioctl, and VMs created without some
//! of them: `VMM_VM_IRQ_LINE` refuses what it must with `EINVAL`, `ENODEV`
//! or `EFAULT`, and a device left out leaves its ports and registers to
//! the sequencer (`INOUT` and `MMIO` exits), while the others stay in the
//! kernel.

use std::collections::BTreeSet;
use std::os::fd::AsFd;

use libvmm::setup::Mode;
use libvmm::sys::ioctl_ptr;
use libvmm::uapi::*;
use libvmm::{Exit, VmFd};

use super::apic_vm::{bsp_run, watched};
use super::platform::{HPET_BASE, IOAPIC_BASE};
use crate::guest::{complete, create_vcpu, describe, Next, TestVm, LOAD, NO_PLATFORM, RAM_LEN};
use crate::mem::expect_efault;
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_pass, ensure, payload};

/// `VMM_VM_IRQ_LINE` arguments that are `EINVAL` on a VM with every
/// device: what, kind, line, op.
const BAD_LINES: [(&str, u32, u32, u32); 19] = [
    ("kind 0", 0, 3, VMM_LINE_PULSE),
    ("kind 3", 3, 3, VMM_LINE_PULSE),
    ("kind u32::MAX", u32::MAX, 3, VMM_LINE_PULSE),
    ("ISA IRQ 16", VMM_IRQ_ISA, 16, VMM_LINE_PULSE),
    ("ISA IRQ 0x100", VMM_IRQ_ISA, 0x100, VMM_LINE_ASSERT),
    ("ISA IRQ u32::MAX", VMM_IRQ_ISA, u32::MAX, VMM_LINE_DEASSERT),
    ("IOAPIC pin 24", VMM_IRQ_IOAPIC, 24, VMM_LINE_PULSE),
    ("IOAPIC pin u32::MAX", VMM_IRQ_IOAPIC, u32::MAX, VMM_LINE_ASSERT),
    ("ISA op 5", VMM_IRQ_ISA, 3, 5),
    ("ISA op u32::MAX", VMM_IRQ_ISA, 3, u32::MAX),
    ("IOAPIC op 5", VMM_IRQ_IOAPIC, 3, 5),
    ("IOAPIC op u32::MAX", VMM_IRQ_IOAPIC, 3, u32::MAX),
    ("IOAPIC SET_EDGE", VMM_IRQ_IOAPIC, 3, VMM_LINE_SET_EDGE),
    ("IOAPIC SET_LEVEL", VMM_IRQ_IOAPIC, 3, VMM_LINE_SET_LEVEL),
    ("SET_LEVEL ISA IRQ 0", VMM_IRQ_ISA, 0, VMM_LINE_SET_LEVEL),
    ("SET_LEVEL ISA IRQ 1", VMM_IRQ_ISA, 1, VMM_LINE_SET_LEVEL),
    ("SET_LEVEL ISA IRQ 2", VMM_IRQ_ISA, 2, VMM_LINE_SET_LEVEL),
    ("SET_LEVEL ISA IRQ 8", VMM_IRQ_ISA, 8, VMM_LINE_SET_LEVEL),
    ("SET_LEVEL ISA IRQ 13", VMM_IRQ_ISA, 13, VMM_LINE_SET_LEVEL),
];

/// A VM with RAM and vCPU 0 (HLT exits) and the devices `flags` leaves in.
fn vm_with(name: &str, flags: CreateFlags) -> Result<TestVm, String> {
    TestVm::bare_with(name, CreateFlags::DESTROY_ON_CLOSE | flags, RAM_LEN, create_vcpu)
}

/// `VMM_VM_IRQ_LINE` with `flags`, which libvmm always leaves 0.
fn irq_line_flags(vm: &VmFd, flags: u32) -> std::io::Result<i32> {
    let mut a = VmmIrqLine { kind: VMM_IRQ_ISA, line: 3, op: VMM_LINE_PULSE, flags };
    ioctl_ptr(vm.as_fd(), VMM_VM_IRQ_LINE, &mut a)
}

/// Fails unless `kind`/`line`/`op` on `vm` is refused with `errno`.
fn refused(vm: &VmFd, kind: u32, line: u32, op: u32, errno: i32, what: &str) -> Result<(), String> {
    expect_errno_of(vm.irq_line(kind, line, op), errno, what)
}

/// Fails unless `kind`/`line`/`op` on `vm` succeeds.
fn accepted(vm: &VmFd, kind: u32, line: u32, op: u32, what: &str) -> Result<(), String> {
    vm.irq_line(kind, line, op).map_err(|e| format!("{what}: {e}"))
}

fn line_errors() -> Result<(), String> {
    let t = vm_with("plat-bad-lines", CreateFlags::empty())?;
    let vm = &t.vm;
    for (what, kind, line, op) in BAD_LINES {
        refused(vm, kind, line, op, libc::EINVAL, what)?;
    }
    for flags in [1, 0x8000_0000] {
        let what = format!("flags {flags:#x}");
        expect_errno_of(irq_line_flags(vm, flags), libc::EINVAL, &what)?;
    }
    expect_efault(vm.as_fd(), VMM_VM_IRQ_LINE, "IRQ_LINE")?;
    // Every op on every line that exists is accepted; SET_LEVEL only where
    // the ELCR has a bit, SET_EDGE on every ISA IRQ.
    for irq in 0..VMM_ISA_IRQS {
        for op in [VMM_LINE_ASSERT, VMM_LINE_DEASSERT, VMM_LINE_PULSE, VMM_LINE_SET_EDGE] {
            accepted(vm, VMM_IRQ_ISA, irq, op, &format!("ISA IRQ {irq} op {op}"))?;
        }
        if ![0, 1, 2, 8, 13].contains(&irq) {
            accepted(vm, VMM_IRQ_ISA, irq, VMM_LINE_SET_LEVEL, &format!("SET_LEVEL IRQ {irq}"))?;
            accepted(vm, VMM_IRQ_ISA, irq, VMM_LINE_SET_EDGE, &format!("SET_EDGE IRQ {irq}"))?;
        }
    }
    for pin in 0..VMM_IOAPIC_PINS {
        for op in [VMM_LINE_ASSERT, VMM_LINE_DEASSERT, VMM_LINE_PULSE] {
            accepted(vm, VMM_IRQ_IOAPIC, pin, op, &format!("IOAPIC pin {pin} op {op}"))?;
        }
    }
    Ok(())
}

fn enodev() -> Result<(), String> {
    // Neither PIC nor IOAPIC: no line exists.
    let t = vm_with("plat-bad-nolines", CreateFlags::NO_PIC | CreateFlags::NO_IOAPIC)?;
    for op in [VMM_LINE_ASSERT, VMM_LINE_DEASSERT, VMM_LINE_PULSE, VMM_LINE_SET_LEVEL] {
        refused(&t.vm, VMM_IRQ_ISA, 3, op, libc::ENODEV, &format!("ISA op {op}, no PIC/IOAPIC"))?;
    }
    refused(&t.vm, VMM_IRQ_IOAPIC, 3, VMM_LINE_PULSE, libc::ENODEV, "IOAPIC pin, no IOAPIC")?;
    // Without the IOAPIC, ISA IRQs still reach the PIC.
    let t = vm_with("plat-bad-noioapic", CreateFlags::NO_IOAPIC)?;
    refused(&t.vm, VMM_IRQ_IOAPIC, 3, VMM_LINE_ASSERT, libc::ENODEV, "IOAPIC pin, no IOAPIC")?;
    accepted(&t.vm, VMM_IRQ_ISA, 3, VMM_LINE_PULSE, "ISA pulse, no IOAPIC")?;
    accepted(&t.vm, VMM_IRQ_ISA, 3, VMM_LINE_SET_LEVEL, "SET_LEVEL, no IOAPIC")?;
    // Without the PIC, ISA IRQs reach the IOAPIC, but there is no ELCR.
    let t = vm_with("plat-bad-nopic", CreateFlags::NO_PIC)?;
    accepted(&t.vm, VMM_IRQ_ISA, 3, VMM_LINE_PULSE, "ISA pulse, no PIC")?;
    for op in [VMM_LINE_SET_LEVEL, VMM_LINE_SET_EDGE] {
        refused(&t.vm, VMM_IRQ_ISA, 3, op, libc::ENODEV, &format!("ISA op {op}, no PIC"))?;
    }
    Ok(())
}

/// What the test answers for a read the sequencer gets.
const ANSWER: u64 = 0x5a5a_5a5a;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_plat_absent_start, vmm_guest_plat_absent_end",
    "vmm_guest_plat_absent_start:",
    ".code64",
    // One harmless read of each device: PIC IRR, PIT counter 0, the RTC's
    // index port, the PM timer, IOAPIC IOWIN, HPET GCAP_ID.
    "movw $0x20, %dx",
    "inb %dx, %al",
    "movw $0x40, %dx",
    "inb %dx, %al",
    "movw $0x70, %dx",
    "inb %dx, %al",
    "movw $0x408, %dx",
    "inl %dx, %eax",
    "movl ${ioapic}, %ebx",
    "movl 0x10(%rbx), %eax",
    "movl ${hpet}, %ebx",
    "movl (%rbx), %eax",
    asm_pass!(),
    "vmm_guest_plat_absent_end:",
    ".popsection",
    ioapic = const IOAPIC_BASE,
    hpet = const HPET_BASE,
    options(att_syntax)
);

/// An access the sequencer saw: a port, or an MMIO address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Port(u32),
    Mmio(u64),
}

/// Each device and what the absent-device guest touches of it.
const DEVICES: [(CreateFlags, Seen); 6] = [
    (CreateFlags::NO_PIC, Seen::Port(0x20)),
    (CreateFlags::NO_PIT, Seen::Port(0x40)),
    (CreateFlags::NO_RTC, Seen::Port(0x70)),
    (CreateFlags::NO_PM_TIMER, Seen::Port(0x408)),
    (CreateFlags::NO_IOAPIC, Seen::Mmio(IOAPIC_BASE + 0x10)),
    (CreateFlags::NO_HPET, Seen::Mmio(HPET_BASE)),
];

/// Runs the absent-device guest on a VM created with `flags`: the accesses
/// that reached the sequencer.
fn absent(name: &str, flags: CreateFlags) -> Result<BTreeSet<Seen>, String> {
    let t = vm_with(name, flags)?;
    let p = payload!(vmm_guest_plat_absent_start, vmm_guest_plat_absent_end);
    t.write(LOAD, p.bytes)?;
    t.setup(Mode::Long64, LOAD)?;
    let mut seen = BTreeSet::new();
    let r = watched(vec![&t.vcpu], |_| {
        bsp_run(&t, |x, e| {
            let (what, size) = match x {
                Exit::Inout(io) if io.flags == VMM_INOUT_IN => (Seen::Port(io.port), io.size),
                Exit::Mmio(m) if m.flags == 0 => (Seen::Mmio(m.gpa), m.size),
                _ => return Err(format!("unexpected exit {}", describe(e))),
            };
            let want = if matches!(what, Seen::Port(0x408) | Seen::Mmio(_)) { 4 } else { 1 };
            ensure!(size == want && seen.insert(what), "{what:x?}: size {size}, seen {seen:x?}");
            Ok(Next::Enter(complete(ANSWER)))
        })
    })?;
    ensure!(r.passed, "stopped at {}", describe(&r.exit));
    Ok(seen)
}

pub fn platform_bad_input() -> TestResult {
    line_errors()?;
    enodev()?;
    // Every device left out, each alone, and none.
    let all: BTreeSet<Seen> = DEVICES.iter().map(|&(_, w)| w).collect();
    let got = absent("plat-absent-all", NO_PLATFORM)?;
    ensure!(got == all, "with no device the sequencer saw {got:x?}, want {all:x?}");
    for (flag, what) in DEVICES {
        let got = absent(&format!("plat-absent-{:x}", flag.bits()), flag)?;
        ensure!(got == BTreeSet::from([what]), "with {flag:?} the sequencer saw {got:x?}");
    }
    let got = absent("plat-absent-none", CreateFlags::empty())?;
    ensure!(got.is_empty(), "with every device the sequencer saw {got:x?}");
    Ok(Pass)
}
