// SPDX-License-Identifier: MIT OR Apache-2.0

//! The run loop: enter the guest, handle the exit, complete it, repeat.
//!
//! | exit | vmmrun |
//! |---|---|
//! | `INOUT` | the [`Bus`]; completed with what an IN reads |
//! | `MMIO` | the [`MmioBus`]; a read is completed with what it reads, a write resumed with `VMM_ENTRY_RUN` |
//! | `RDMSR`, `WRMSR` | #GP(0) injected into the guest |
//! | `KICKED` | re-entered |
//! | `HLT` (only with `VMM_OPTION_HLT_EXIT`), `SUSPENDED` with `HALT` (every vCPU halted with interrupts off) | stops: status 0 |
//! | `SUSPENDED` otherwise | stops: status 2 (triple fault or suspend) |
//! | `PAGING` | stops: status 3 |
//! | anything else | stops: status 4 |
//!
//! `VMM_VCPU_RUN` failing with `EINTR` has already applied the completion
//! it carried, so the retry is a plain run, never the same completion.

use std::io::{self, Write};

use libvmm::uapi::{
    VmmEntry, VmmExit, VmmExitSuspended, VMM_ACCESS_EXEC, VMM_ACCESS_READ, VMM_ACCESS_WRITE,
    VMM_ENTRY_COMPLETE, VMM_ENTRY_INJECT_GP, VMM_IRQ_ISA, VMM_LINE_ASSERT, VMM_LINE_DEASSERT,
    VMM_PAGING_PROTECTION, VMM_PAGING_UNMAPPED, VMM_SUSPEND_HALT, VMM_SUSPEND_TRIPLE_FAULT,
    VMM_SUSPEND_USER,
};
use libvmm::{Exit, VcpuFd, VmFd};

use crate::bus::{Bus, IoAction, COM1_IRQ};
use crate::mmio::MmioBus;

/// What the loop needs of a vCPU and its VM (a trait so tests can script
/// exits).
pub trait Vcpu {
    /// `VMM_VCPU_RUN` with `entry`.
    fn run_entry(&self, entry: VmmEntry) -> io::Result<VmmExit>;
    /// Sets ISA IRQ `irq`'s level (`VMM_VM_IRQ_LINE`).
    fn set_isa_irq(&self, irq: u32, level: bool) -> io::Result<()>;
}

/// The vCPU the loop runs and the VM whose interrupt lines it drives.
pub struct VmVcpu<'a> {
    /// The VM.
    pub vm: &'a VmFd,
    /// The vCPU.
    pub vcpu: &'a VcpuFd,
}

impl Vcpu for VmVcpu<'_> {
    fn run_entry(&self, entry: VmmEntry) -> io::Result<VmmExit> {
        self.vcpu.run_entry(entry)
    }

    fn set_isa_irq(&self, irq: u32, level: bool) -> io::Result<()> {
        let op = if level { VMM_LINE_ASSERT } else { VMM_LINE_DEASSERT };
        self.vm.irq_line(VMM_IRQ_ISA, irq, op)
    }
}

/// Why the loop stopped.
#[derive(Debug)]
pub enum Outcome {
    /// The guest wrote this to the exit port.
    ExitPort(u8),
    /// The guest executed HLT; RIP is past it.
    Halted {
        /// RIP after the HLT.
        rip: u64,
    },
    /// The VM is suspended.
    Suspended {
        /// The exit's data.
        data: VmmExitSuspended,
        /// RIP at the exit.
        rip: u64,
    },
    /// A guest-physical access nothing handles.
    Paging {
        /// The address.
        gpa: u64,
        /// `VMM_ACCESS_*` bits.
        access: u32,
        /// `VMM_PAGING_*` bits.
        flags: u32,
        /// RIP of the access.
        rip: u64,
    },
    /// An exit vmmrun does not handle.
    Unhandled {
        /// The exit, decoded.
        exit: Exit,
        /// RIP at the exit.
        rip: u64,
    },
    /// `--max-exits` reached.
    TooManyExits(u64),
    /// `VMM_VCPU_RUN` failed.
    Failed(io::Error),
}

impl Outcome {
    /// vmmrun's exit status for this outcome.
    pub fn status(&self) -> u8 {
        match self {
            Self::ExitPort(v) => *v,
            Self::Halted { .. } => 0,
            Self::Failed(_) => 1,
            Self::Suspended { .. } => 2,
            Self::Paging { .. } => 3,
            Self::Unhandled { .. } => 4,
            Self::TooManyExits(_) => 5,
        }
    }

    /// A line for stderr, if this outcome deserves one without `-v`.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Self::ExitPort(_) => return None,
            Self::Halted { rip } => format!("guest halted (rip {rip:#x})"),
            Self::Suspended { data, rip } => match data.how {
                VMM_SUSPEND_TRIPLE_FAULT => {
                    format!("vCPU {} triple-faulted (rip {rip:#x})", data.vcpu)
                }
                VMM_SUSPEND_USER => format!("VM suspended (rip {rip:#x})"),
                how => format!("VM suspended, how {how} (rip {rip:#x})"),
            },
            Self::Paging { gpa, access, flags, rip } => format!(
                "unhandled {} of guest-physical {gpa:#x}: {} (rip {rip:#x})",
                access_str(*access),
                if flags & VMM_PAGING_UNMAPPED != 0 {
                    "nothing mapped there"
                } else if flags & VMM_PAGING_PROTECTION != 0 {
                    "mapping forbids it"
                } else {
                    "no reason given"
                },
            ),
            Self::Unhandled { exit, rip } => {
                format!("unhandled exit at rip {rip:#x}: {}", describe(exit))
            }
            Self::TooManyExits(n) => format!("stopped after {n} exits (--max-exits)"),
            Self::Failed(e) => format!("VMM_VCPU_RUN: {e}"),
        })
    }
}

fn access_str(access: u32) -> String {
    let names =
        [(VMM_ACCESS_READ, "read"), (VMM_ACCESS_WRITE, "write"), (VMM_ACCESS_EXEC, "fetch")];
    let v: Vec<&str> = names.iter().filter(|(b, _)| access & b != 0).map(|(_, n)| *n).collect();
    if v.is_empty() {
        format!("access {access:#x}")
    } else {
        v.join("/")
    }
}

fn describe(exit: &Exit) -> String {
    match exit {
        Exit::Svm(s) => format!(
            "SVM exit code {:#x}, info1 {:#x}, info2 {:#x}, intinfo {:#x}",
            s.exit_code, s.exit_info1, s.exit_info2, s.exit_int_info
        ),
        Exit::Vmx(v) if v.exit_reason == 0 => {
            format!("VM entry failed: VM-instruction error {}", v.instruction_error)
        }
        Exit::Vmx(v) => format!(
            "VMX exit reason {:#x}, qualification {:#x}, gpa {:#x}, intr info {:#x}",
            v.exit_reason, v.qualification, v.guest_physical, v.intr_info
        ),
        Exit::InstEmul(i) => {
            let n = (i.len as usize).min(i.bytes.len());
            let bytes: Vec<String> = i.bytes[..n].iter().map(|b| format!("{b:02x}")).collect();
            format!("instruction the kernel could not emulate: [{}]", bytes.join(" "))
        }
        Exit::Other(e) => format!("reason {} data {:x?}", e.reason, e.data),
        other => format!("{other:?}"),
    }
}

fn complete(value: u64) -> VmmEntry {
    VmmEntry { cmd: VMM_ENTRY_COMPLETE, value, ..VmmEntry::ZERO }
}

const INJECT_GP: VmmEntry = VmmEntry { cmd: VMM_ENTRY_INJECT_GP, ..VmmEntry::ZERO };

/// Runs `vcpu` until the guest stops, handing port I/O to `bus` and MMIO
/// to `mmio`. With `max_exits`, stops instead of resuming after that many
/// exits. `verbose` reports MSR exits and MMIO no device took on stderr.
pub fn run<W: Write>(
    vcpu: &impl Vcpu,
    bus: &mut Bus<W>,
    mmio: &mut MmioBus,
    max_exits: Option<u64>,
    verbose: bool,
) -> Outcome {
    let mut entry = VmmEntry::ZERO;
    let mut exits = 0u64;
    loop {
        let raw = match vcpu.run_entry(entry) {
            Ok(raw) => raw,
            // The completion went in with the interrupted call.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                entry = VmmEntry::ZERO;
                continue;
            }
            Err(e) => return Outcome::Failed(e),
        };
        exits += 1;
        let rip = raw.rip;
        entry = match Exit::decode(&raw) {
            Exit::Inout(io) => match bus.io(&io) {
                IoAction::Complete(v) => {
                    if let Some(level) = bus.irq_change() {
                        if let Err(e) = vcpu.set_isa_irq(COM1_IRQ, level) {
                            return Outcome::Failed(e);
                        }
                    }
                    complete(v)
                }
                IoAction::Exit(status) => return Outcome::ExitPort(status),
            },
            Exit::Rdmsr(msr) => {
                if verbose {
                    eprintln!("vmmrun: rdmsr {msr:#x} at rip {rip:#x}: #GP");
                }
                INJECT_GP
            }
            Exit::Wrmsr(msr, value) => {
                if verbose {
                    eprintln!("vmmrun: wrmsr {msr:#x} <- {value:#x} at rip {rip:#x}: #GP");
                }
                INJECT_GP
            }
            Exit::Kicked => VmmEntry::ZERO,
            // The MMIO bus answers; an access no device takes reads all
            // ones, as on a bus with nothing behind the address, or writes
            // nowhere (see `mmio`), and goes on.
            Exit::Mmio(m) => {
                let a = mmio.access(&m);
                if let Some(line) = a.report(rip).filter(|_| verbose) {
                    eprintln!("vmmrun: {line}");
                }
                // A write has completed in the kernel: nothing to answer.
                if a.write {
                    VmmEntry::ZERO
                } else {
                    complete(a.value)
                }
            }
            Exit::Hlt => return Outcome::Halted { rip },
            // HLT blocks in the kernel; a guest that halts with interrupts
            // off has stopped for good.
            Exit::Suspended(data) if data.how == VMM_SUSPEND_HALT => {
                return Outcome::Halted { rip }
            }
            Exit::Suspended(data) => return Outcome::Suspended { data, rip },
            Exit::Paging(p) => {
                return Outcome::Paging { gpa: p.gpa, access: p.access, flags: p.flags, rip };
            }
            exit @ (Exit::Svm(_) | Exit::Vmx(_) | Exit::InstEmul(_) | Exit::Other(_)) => {
                return Outcome::Unhandled { exit, rip };
            }
        };
        if max_exits.is_some_and(|max| exits >= max) {
            return Outcome::TooManyExits(exits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libvmm::uapi::{
        exit, ExitData, VmmExitInout, VmmExitMmio, VmmExitMsr, VmmExitPaging, VmmExitSvm,
        VMM_ENTRY_RUN, VMM_INOUT_IN, VMM_MMIO_WRITE,
    };
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use crate::mmio::SharedOut;
    use crate::uart::{self, Serial};

    /// A vCPU that replays scripted results and records each entry.
    struct Script {
        results: RefCell<VecDeque<io::Result<VmmExit>>>,
        entries: RefCell<Vec<VmmEntry>>,
        irqs: RefCell<Vec<(u32, bool)>>,
    }

    impl Script {
        fn new(results: Vec<io::Result<VmmExit>>) -> Self {
            Self {
                results: RefCell::new(results.into()),
                entries: RefCell::new(Vec::new()),
                irqs: RefCell::new(Vec::new()),
            }
        }
        fn cmds(&self) -> Vec<(u32, u64)> {
            self.entries.borrow().iter().map(|e| (e.cmd, e.value)).collect()
        }
    }

    impl Vcpu for Script {
        fn run_entry(&self, entry: VmmEntry) -> io::Result<VmmExit> {
            self.entries.borrow_mut().push(entry);
            self.results.borrow_mut().pop_front().expect("the loop ran past the script")
        }
        fn set_isa_irq(&self, irq: u32, level: bool) -> io::Result<()> {
            self.irqs.borrow_mut().push((irq, level));
            Ok(())
        }
    }

    #[test]
    fn com1_interrupt_line_follows_the_uart() {
        // OUT2 and ETBEI: THRE is pending, IRQ 4 goes up; reading IIR
        // clears it and the line goes down; a byte sent raises it again.
        let v = Script::new(vec![
            outb(0x3fc, 0x08),
            outb(0x3f9, 0x02),
            inb(0x3fa),
            outb(0x3f8, b'k'),
            outb(0x501, 0),
        ]);
        let mut bus = Bus::new(Vec::new(), false);
        let o = run(&v, &mut bus, &mut MmioBus::new(), None, false);
        assert!(matches!(o, Outcome::ExitPort(0)), "{o:?}");
        assert_eq!(*v.irqs.borrow(), [(4, true), (4, false), (4, true)]);
        assert_eq!(bus.output(), b"k");
    }

    fn raw(reason: u32, data: [u64; 8]) -> io::Result<VmmExit> {
        Ok(VmmExit { reason, rip: 0x1000, data, ..VmmExit::ZERO })
    }
    fn outb(port: u32, v: u8) -> io::Result<VmmExit> {
        let io = VmmExitInout { port, size: 1, value: v.into(), ..VmmExitInout::ZERO };
        raw(exit::INOUT, io.to_data())
    }
    fn inb(port: u32) -> io::Result<VmmExit> {
        let io = VmmExitInout { flags: VMM_INOUT_IN, port, size: 1, ..VmmExitInout::ZERO };
        raw(exit::INOUT, io.to_data())
    }
    fn msr(reason: u32, msr: u32) -> io::Result<VmmExit> {
        raw(reason, VmmExitMsr { msr, ..VmmExitMsr::ZERO }.to_data())
    }
    fn eintr() -> io::Result<VmmExit> {
        Err(io::Error::from(io::ErrorKind::Interrupted))
    }

    fn mmio(gpa: u64, size: u32, write: Option<u64>) -> io::Result<VmmExit> {
        let m = VmmExitMmio {
            gpa,
            size,
            flags: if write.is_some() { VMM_MMIO_WRITE } else { 0 },
            data: write.unwrap_or(0),
            ..VmmExitMmio::ZERO
        };
        raw(exit::MMIO, m.to_data())
    }

    /// Runs the script with no MMIO device.
    fn go(v: &Script, max_exits: Option<u64>) -> Outcome {
        run(v, &mut Bus::new(Vec::new(), false), &mut MmioBus::new(), max_exits, false)
    }

    const C: u32 = VMM_ENTRY_COMPLETE;

    #[test]
    fn hello_then_exit_port() {
        let v = Script::new(vec![
            inb(0x3fd),
            outb(0x3f8, b'h'),
            inb(0x3fd),
            outb(0x3f8, b'\n'),
            outb(0x501, 3),
        ]);
        let mut bus = Bus::new(Vec::new(), false);
        let o = run(&v, &mut bus, &mut MmioBus::new(), None, false);
        assert!(matches!(o, Outcome::ExitPort(3)), "{o:?}");
        assert_eq!(o.status(), 3);
        assert_eq!(o.message(), None);
        assert_eq!(bus.output(), b"h\n");
        assert_eq!(v.cmds(), [(VMM_ENTRY_RUN, 0), (C, 0x60), (C, 0), (C, 0x60), (C, 0)]);
    }

    #[test]
    fn eintr_retries_without_repeating_the_completion() {
        let v = Script::new(vec![inb(0x3fd), eintr(), eintr(), raw(exit::HLT, [0; 8])]);
        let o = go(&v, None);
        assert!(matches!(o, Outcome::Halted { rip: 0x1000 }), "{o:?}");
        assert_eq!(o.status(), 0);
        assert!(o.message().unwrap().contains("guest halted"));
        assert_eq!(
            v.cmds(),
            [(VMM_ENTRY_RUN, 0), (C, 0x60), (VMM_ENTRY_RUN, 0), (VMM_ENTRY_RUN, 0)]
        );
    }

    #[test]
    fn msrs_get_gp_and_kicks_resume() {
        let v = Script::new(vec![
            msr(exit::RDMSR, 0x1b),
            msr(exit::WRMSR, 0xc000_0081),
            raw(exit::KICKED, [0; 8]),
            outb(0x501, 0),
        ]);
        let o = go(&v, None);
        assert!(matches!(o, Outcome::ExitPort(0)));
        assert_eq!(
            v.cmds(),
            [
                (VMM_ENTRY_RUN, 0),
                (VMM_ENTRY_INJECT_GP, 0),
                (VMM_ENTRY_INJECT_GP, 0),
                (VMM_ENTRY_RUN, 0)
            ]
        );
    }

    #[test]
    fn stops_with_their_statuses() {
        let susp = VmmExitSuspended { how: VMM_SUSPEND_TRIPLE_FAULT, ..VmmExitSuspended::ZERO };
        let pg = VmmExitPaging {
            gpa: 0xfee0_0000,
            access: VMM_ACCESS_WRITE,
            flags: VMM_PAGING_UNMAPPED,
            ..VmmExitPaging::ZERO
        };
        let svm = VmmExitSvm { exit_code: 0x7b, ..VmmExitSvm::ZERO };
        let halt = VmmExitSuspended { how: VMM_SUSPEND_HALT, ..VmmExitSuspended::ZERO };
        let cases: [(io::Result<VmmExit>, u8, &str); 6] = [
            (raw(exit::SUSPENDED, susp.to_data()), 2, "triple-faulted"),
            (raw(exit::SUSPENDED, halt.to_data()), 0, "guest halted"),
            (
                raw(exit::PAGING, pg.to_data()),
                3,
                "write of guest-physical 0xfee00000: nothing mapped",
            ),
            (raw(exit::SVM, svm.to_data()), 4, "SVM exit code 0x7b"),
            (raw(99, [0; 8]), 4, "reason 99"),
            (Err(io::Error::from_raw_os_error(22)), 1, "VMM_VCPU_RUN"),
        ];
        for (exit, status, text) in cases {
            let v = Script::new(vec![exit]);
            let o = go(&v, None);
            assert_eq!(o.status(), status, "{o:?}");
            let m = o.message().unwrap();
            assert!(m.contains(text), "{m}");
        }
    }

    #[test]
    fn max_exits_stops_before_resuming() {
        let v = Script::new(vec![inb(0x3fd), inb(0x3fd), inb(0x3fd)]);
        let o = go(&v, Some(2));
        assert!(matches!(o, Outcome::TooManyExits(2)), "{o:?}");
        assert_eq!(o.status(), 5);
        assert_eq!(v.entries.borrow().len(), 2);
        // An exit that ends the run wins over the limit.
        let v = Script::new(vec![inb(0x3fd), outb(0x501, 9)]);
        assert_eq!(go(&v, Some(2)).status(), 9);
    }

    #[test]
    fn mmio_reads_complete_with_the_device_value_and_writes_just_run() {
        const UART: u64 = 0xd000_0000;
        let v = Script::new(vec![
            mmio(UART + 5, 1, None),
            mmio(UART, 1, Some(b'm'.into())),
            mmio(UART + 7, 1, Some(0x1a5)),
            mmio(UART + 7, 1, None),
            mmio(UART, 4, None),
            mmio(0xe000_0000, 2, None),
            mmio(0xe000_0000, 8, Some(1)),
            outb(0x3f8, b'p'),
            mmio(UART, 1, Some(b'\n'.into())),
            outb(0x501, 0),
        ]);
        let out = SharedOut::default();
        let mut mmio_bus = MmioBus::new();
        let dev = Box::new(Serial::new(out.clone()));
        mmio_bus.add(UART, uart::REGS.into(), "uart-mmio", dev).unwrap();
        let mut bus = Bus::new(Vec::new(), false);
        let o = run(&v, &mut bus, &mut mmio_bus, None, true);
        assert!(matches!(o, Outcome::ExitPort(0)), "{o:?}");
        assert_eq!(*out.0.borrow(), b"m\n", "the MMIO UART's output");
        assert_eq!(bus.output(), b"p", "COM1 is a UART of its own");
        // Each entry after the first answers the exit before it.
        let r = VMM_ENTRY_RUN;
        assert_eq!(
            v.cmds(),
            [
                (r, 0),
                (C, 0x60),        // LSR
                (r, 0),           // THR <- 'm'
                (r, 0),           // SCR <- 0xa5 (masked to the byte)
                (C, 0xa5),        // SCR
                (C, 0xffff_ffff), // a 4-byte read of the UART: refused
                (C, 0xffff),      // nothing there
                (r, 0),           // dropped
                (C, 0),           // the OUT to COM1
                (r, 0),           // THR <- '\n'
            ]
        );
    }

    #[test]
    fn unclaimed_mmio_stops_nothing() {
        let v = Script::new(vec![mmio(0xfee0_0030, 4, None), mmio(0, 8, Some(7)), inb(0x3fd)]);
        assert!(matches!(go(&v, Some(3)), Outcome::TooManyExits(3)));
        assert_eq!(v.cmds(), [(VMM_ENTRY_RUN, 0), (C, 0xffff_ffff), (VMM_ENTRY_RUN, 0)]);
    }
}
