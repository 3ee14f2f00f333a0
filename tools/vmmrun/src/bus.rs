// SPDX-License-Identifier: MIT OR Apache-2.0

//! The port-I/O bus: COM1, the exit port, and nothing else. (MMIO has its
//! own bus, [`crate::mmio`].)
//!
//! | ports | device |
//! |---|---|
//! | `0x3f8`-`0x3ff` | a 16550 ([`Serial`]) on ISA IRQ 4; bytes sent go to the output |
//! | `0x501` | exit port: an OUT of any width ends vmmrun with status `value & 0xff` |
//! | anything else | nothing: IN reads all ones, OUT is dropped |
//!
//! A 2- or 4-byte access is split into byte accesses at consecutive ports
//! (an `outw` to 0x3f8 writes THR and IER), except at the exit port, whose
//! OUT of any width counts once. String I/O arrives one element per exit
//! and takes the same path.

use std::collections::BTreeSet;
use std::io::Write;

use libvmm::uapi::{VmmExitInout, VMM_INOUT_IN};

use crate::uart::{self, Serial};

/// COM1's base port.
pub const COM1: u32 = 0x3f8;
/// COM1's ISA IRQ.
pub const COM1_IRQ: u32 = 4;
/// The exit port (QEMU's `isa-debug-exit` default address).
pub const EXIT_PORT: u32 = 0x501;

/// What to do after a port access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoAction {
    /// Complete the exit with this value (what an IN reads; 0 for an OUT).
    Complete(u64),
    /// The guest asked to stop, with this exit status.
    Exit(u8),
}

/// The devices on the port bus and where the UART's output goes.
#[derive(Debug)]
pub struct Bus<W: Write> {
    com1: Serial<W>,
    verbose: bool,
    /// Ports with no device that the guest touched (each reported once).
    unmapped: BTreeSet<u32>,
}

impl<W: Write> Bus<W> {
    /// A bus whose UART writes to `out`; `verbose` reports the first access
    /// to each unmapped port on stderr.
    pub fn new(out: W, verbose: bool) -> Self {
        Self { com1: Serial::new(out), verbose, unmapped: BTreeSet::new() }
    }

    /// Handles one `INOUT` exit.
    pub fn io(&mut self, io: &VmmExitInout) -> IoAction {
        let is_in = io.flags & VMM_INOUT_IN != 0;
        if !is_in && io.port == EXIT_PORT {
            return IoAction::Exit(io.value as u8);
        }
        let width = io.size.min(8);
        let mut value = 0u64;
        for i in 0..width {
            let port = io.port + i;
            if is_in {
                value |= u64::from(self.in_byte(port)) << (8 * i);
            } else {
                self.out_byte(port, (io.value >> (8 * i)) as u8);
            }
        }
        IoAction::Complete(value)
    }

    fn uart_reg(port: u32) -> Option<u8> {
        port.checked_sub(COM1).filter(|&r| r < uart::REGS).map(|r| r as u8)
    }

    fn in_byte(&mut self, port: u32) -> u8 {
        match Self::uart_reg(port) {
            Some(reg) => self.com1.read_reg(reg),
            None => {
                self.note_unmapped(port, "in");
                0xff
            }
        }
    }

    fn out_byte(&mut self, port: u32, byte: u8) {
        match Self::uart_reg(port) {
            Some(reg) => self.com1.write_reg(reg, byte),
            None => self.note_unmapped(port, "out"),
        }
    }

    fn note_unmapped(&mut self, port: u32, dir: &str) {
        if self.unmapped.insert(port) && self.verbose {
            eprintln!("vmmrun: {dir} at port {port:#x}: no device (reported once)");
        }
    }

    /// COM1's interrupt line (ISA IRQ [`COM1_IRQ`]): its new level, if it
    /// changed since the last call.
    pub fn irq_change(&mut self) -> Option<bool> {
        self.com1.irq_change()
    }

    /// Ports without a device that the guest touched.
    pub fn unmapped(&self) -> impl Iterator<Item = u32> + '_ {
        self.unmapped.iter().copied()
    }

    /// The output the UART writes to.
    #[cfg(test)]
    pub fn output(&self) -> &W {
        self.com1.output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libvmm::uapi::{VMM_INOUT_REP, VMM_INOUT_STRING};

    fn io(flags: u32, port: u32, size: u32, value: u64) -> VmmExitInout {
        VmmExitInout { flags, port, size, value, ..VmmExitInout::ZERO }
    }
    fn outp(port: u32, size: u32, value: u64) -> VmmExitInout {
        io(0, port, size, value)
    }
    fn inp(port: u32, size: u32) -> VmmExitInout {
        io(VMM_INOUT_IN, port, size, 0)
    }

    #[test]
    fn serial_output_reaches_the_writer() {
        let mut bus = Bus::new(Vec::new(), false);
        for b in b"hi\n" {
            assert_eq!(bus.io(&inp(0x3fd, 1)), IoAction::Complete(0x60));
            assert_eq!(bus.io(&outp(0x3f8, 1, u64::from(*b))), IoAction::Complete(0));
        }
        assert_eq!(bus.output(), b"hi\n");
        assert_eq!(bus.unmapped().count(), 0);
    }

    #[test]
    fn string_io_takes_the_same_path() {
        let mut bus = Bus::new(Vec::new(), false);
        let s = VMM_INOUT_STRING | VMM_INOUT_REP;
        for (i, b) in b"ok".iter().enumerate() {
            let e = VmmExitInout {
                count: 2 - i as u64,
                gpa: 0x1000 + i as u64,
                ..io(s, 0x3f8, 1, (*b).into())
            };
            assert_eq!(bus.io(&e), IoAction::Complete(0));
        }
        assert_eq!(bus.output(), b"ok");
        assert_eq!(bus.io(&io(s | VMM_INOUT_IN, 0x3fd, 1, 0)), IoAction::Complete(0x60));
    }

    #[test]
    fn exit_port_ends_the_run_at_any_width() {
        let mut bus = Bus::new(Vec::new(), false);
        assert_eq!(bus.io(&outp(EXIT_PORT, 1, 0)), IoAction::Exit(0));
        assert_eq!(bus.io(&outp(EXIT_PORT, 2, 0x1234)), IoAction::Exit(0x34));
        assert_eq!(bus.io(&outp(EXIT_PORT, 4, 0xdead_be07)), IoAction::Exit(7));
        // Reading it is just an unmapped port.
        assert_eq!(bus.io(&inp(EXIT_PORT, 1)), IoAction::Complete(0xff));
    }

    #[test]
    fn unmapped_ports_read_all_ones_of_the_width() {
        let mut bus = Bus::new(Vec::new(), true);
        assert_eq!(bus.io(&inp(0x80, 1)), IoAction::Complete(0xff));
        assert_eq!(bus.io(&inp(0x60, 2)), IoAction::Complete(0xffff));
        assert_eq!(bus.io(&inp(0xcfc, 4)), IoAction::Complete(0xffff_ffff));
        assert_eq!(bus.io(&outp(0x80, 1, 0x55)), IoAction::Complete(0));
        assert_eq!(
            bus.unmapped().collect::<Vec<_>>(),
            [0x60, 0x61, 0x80, 0xcfc, 0xcfd, 0xcfe, 0xcff]
        );
        assert!(bus.output().is_empty());
    }

    #[test]
    fn wide_accesses_split_into_bytes() {
        let mut bus = Bus::new(Vec::new(), false);
        // outw 0x3fb <- 0x0383: LCR = 0x83 (DLAB), MCR = 0x03.
        bus.io(&outp(0x3fb, 2, 0x0383));
        // inl 0x3f8: DLL, DLM, IIR, LCR.
        assert_eq!(bus.io(&inp(0x3f8, 4)), IoAction::Complete(0x8301_0000));
        // A dword straddling the UART's end: LSR, MSR, SCR, then port 0x400.
        bus.io(&outp(0x3fb, 1, 0x03));
        assert_eq!(bus.io(&inp(0x3fd, 4)), IoAction::Complete(0xff00_0060));
        assert_eq!(bus.unmapped().collect::<Vec<_>>(), [0x400]);
    }
}
