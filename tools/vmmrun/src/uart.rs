// SPDX-License-Identifier: MIT OR Apache-2.0

//! A 16550 UART register model, transmit only.
//!
//! Glossary: *THR/RBR* transmit holding / receive buffer register, *IER*
//! interrupt enable, *IIR/FCR* interrupt identification / FIFO control,
//! *LCR* line control (bit 7 is *DLAB*, which swaps THR/RBR and IER for
//! *DLL/DLM*, the divisor latch), *MCR/MSR* modem control / status, *LSR*
//! line status, *SCR* scratch.
//!
//! The transmitter is always ready: LSR reads THRE and TEMT (0x60), and
//! every THR write is a byte out. Nothing is ever received, except in
//! loopback mode (MCR bit 4), where a THR write lands in RBR instead of
//! going out and MSR mirrors MCR's outputs, as drivers probing the chip
//! expect.
//!
//! Two interrupts exist, as a driver needs them: received data available
//! (a looped-back byte, IER bit 0) and transmitter holding register empty
//! (IER bit 1). The THRE interrupt is raised when the guest enables it with
//! THR empty and after every THR write (the byte leaves at once); reading
//! IIR while it is the reason clears it. The interrupt output reaches the
//! bus only with MCR OUT2 set and outside loopback, as on a PC, where OUT2
//! gates the UART's IRQ line ([`Uart::irq`]).
//!
//! [`Serial`] wires the model to an output; the port bus ([`crate::bus`])
//! puts one at COM1, and `--uart-mmio ADDR` puts another on the MMIO bus
//! ([`crate::mmio`]) with its registers one byte apart from ADDR (reg-shift
//! 0, as Linux's `earlycon=uart8250,mmio,ADDR` expects).

use std::io::Write;

use crate::mmio::MmioDevice;

/// Register offsets from the base port or address.
pub mod off {
    /// RBR (read) / THR (write); DLL with DLAB set.
    pub const DATA: u8 = 0;
    /// IER; DLM with DLAB set.
    pub const IER: u8 = 1;
    /// IIR (read) / FCR (write).
    pub const IIR_FCR: u8 = 2;
    /// LCR.
    pub const LCR: u8 = 3;
    /// MCR.
    pub const MCR: u8 = 4;
    /// LSR.
    pub const LSR: u8 = 5;
    /// MSR.
    pub const MSR: u8 = 6;
    /// SCR.
    pub const SCR: u8 = 7;
}

/// Number of registers: the ports, or bytes of MMIO, the UART decodes.
pub const REGS: u32 = 8;

const LCR_DLAB: u8 = 1 << 7;
const MCR_LOOP: u8 = 1 << 4;
const LSR_DR: u8 = 1 << 0;
const LSR_THRE: u8 = 1 << 5;
const LSR_TEMT: u8 = 1 << 6;
const IIR_NO_INT: u8 = 0x01;
/// IIR: transmitter holding register empty.
const IIR_THRE: u8 = 0x02;
/// IIR: received data available.
const IIR_RDA: u8 = 0x04;
/// IER: received data available interrupt.
const IER_RDA: u8 = 1 << 0;
/// IER: THR empty interrupt.
const IER_THRE: u8 = 1 << 1;
/// MCR OUT2: gates the interrupt output onto the bus on a PC.
const MCR_OUT2: u8 = 1 << 3;
const IIR_FIFO: u8 = 0xc0;
const FCR_FIFO_ENABLE: u8 = 1 << 0;
/// IER bits a 16550 implements.
const IER_MASK: u8 = 0x0f;
/// MCR bits a 16550 implements (DTR, RTS, OUT1, OUT2, LOOP).
const MCR_MASK: u8 = 0x1f;

/// The UART's registers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo: bool,
    /// A byte looped back in loopback mode, not yet read.
    rbr: Option<u8>,
    /// The THR-empty interrupt is latched (cleared by reading IIR while it
    /// is the reason).
    thre: bool,
}

impl Uart {
    /// A UART as after reset: every register zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    /// The pending interrupt's IIR code, highest priority first.
    fn pending(&self) -> Option<u8> {
        if self.ier & IER_RDA != 0 && self.rbr.is_some() {
            Some(IIR_RDA)
        } else if self.ier & IER_THRE != 0 && self.thre {
            Some(IIR_THRE)
        } else {
            None
        }
    }

    /// The level of the interrupt line on the bus: an interrupt is pending
    /// and OUT2 lets it out (never in loopback, where OUT2 is looped back
    /// to MSR instead).
    pub fn irq(&self) -> bool {
        self.pending().is_some() && self.mcr & MCR_OUT2 != 0 && !self.loopback()
    }

    /// Reads the register at offset `reg` (0-7).
    pub fn read(&mut self, reg: u8) -> u8 {
        match reg {
            off::DATA if self.dlab() => self.dll,
            off::DATA => self.rbr.take().unwrap_or(0),
            off::IER if self.dlab() => self.dlm,
            off::IER => self.ier,
            off::IIR_FCR => {
                let id = self.pending();
                if id == Some(IIR_THRE) {
                    self.thre = false;
                }
                id.unwrap_or(IIR_NO_INT) | if self.fifo { IIR_FIFO } else { 0 }
            }
            off::LCR => self.lcr,
            off::MCR => self.mcr,
            off::LSR => LSR_THRE | LSR_TEMT | if self.rbr.is_some() { LSR_DR } else { 0 },
            off::MSR if self.loopback() => {
                // DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD.
                let m = self.mcr;
                (m & 1) << 5 | (m >> 1 & 1) << 4 | (m >> 2 & 1) << 6 | (m >> 3 & 1) << 7
            }
            off::MSR => 0,
            off::SCR => self.scr,
            _ => 0xff,
        }
    }

    /// Writes `value` to the register at offset `reg` (0-7); returns the
    /// byte transmitted, if this was a THR write outside loopback mode.
    pub fn write(&mut self, reg: u8, value: u8) -> Option<u8> {
        match reg {
            off::DATA if self.dlab() => self.dll = value,
            off::DATA => {
                // The byte leaves at once: THR is empty again.
                self.thre = true;
                if self.loopback() {
                    self.rbr = Some(value);
                } else {
                    return Some(value);
                }
            }
            off::IER if self.dlab() => self.dlm = value,
            off::IER => {
                // Enabling the THRE interrupt with THR empty raises it.
                if value & IER_THRE != 0 && self.ier & IER_THRE == 0 {
                    self.thre = true;
                }
                self.ier = value & IER_MASK;
            }
            off::IIR_FCR => self.fifo = value & FCR_FIFO_ENABLE != 0,
            off::LCR => self.lcr = value,
            off::MCR => self.mcr = value & MCR_MASK,
            off::SCR => self.scr = value,
            // LSR and MSR writes are ignored (factory test only).
            _ => {}
        }
        None
    }
}

/// A [`Uart`] wired to an output: each byte the guest transmits is written
/// to `out` and flushed.
#[derive(Debug)]
pub struct Serial<W: Write> {
    uart: Uart,
    out: W,
    /// The interrupt line's level as last reported ([`Serial::irq_change`]).
    irq: bool,
}

impl<W: Write> Serial<W> {
    /// A UART after reset, transmitting to `out`.
    pub fn new(out: W) -> Self {
        Self { uart: Uart::new(), out, irq: false }
    }

    /// The interrupt line's new level, if it changed since the last call.
    pub fn irq_change(&mut self) -> Option<bool> {
        let now = self.uart.irq();
        (now != core::mem::replace(&mut self.irq, now)).then_some(now)
    }

    /// Reads the register at offset `reg` (0-7).
    pub fn read_reg(&mut self, reg: u8) -> u8 {
        self.uart.read(reg)
    }

    /// Writes `value` to the register at offset `reg` (0-7); a byte
    /// transmitted goes out.
    pub fn write_reg(&mut self, reg: u8, value: u8) {
        if let Some(b) = self.uart.write(reg, value) {
            // Flushed per byte: the guest's output must be on the console
            // before anything vmmrun prints after it. A closed output is not
            // the guest's problem, so errors are dropped as a disconnected
            // serial line drops bytes.
            let _ = self.out.write_all(&[b]).and_then(|()| self.out.flush());
        }
    }

    /// The output.
    #[cfg(test)]
    pub fn output(&self) -> &W {
        &self.out
    }
}

/// The UART on the MMIO bus, as an 8250 with reg-shift 0 and 1-byte
/// registers: register `n` is the byte at offset `n`, and only 1-byte
/// accesses reach it. A wider access is refused (it reads all ones and
/// writes nothing, as an unclaimed one): splitting it into bytes, as the
/// port bus does for `inw`/`outw`, would read RBR or write THR as a side
/// effect of what is a driver bug (such as `mmio32`, which needs reg-shift
/// 2), and all ones reads as "no UART here" to a driver probing with it.
impl<W: Write> MmioDevice for Serial<W> {
    fn accepts(&self, offset: u64, size: u32) -> bool {
        size == 1 && offset < u64::from(REGS)
    }

    fn read(&mut self, offset: u64, _size: u32) -> u64 {
        // `accepts` keeps offset below REGS.
        self.read_reg(offset as u8).into()
    }

    fn write(&mut self, offset: u64, _size: u32, value: u64) {
        self.write_reg(offset as u8, value as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmitter_is_always_ready_and_thr_writes_go_out() {
        let mut u = Uart::new();
        assert_eq!(u.read(off::LSR), 0x60);
        assert_eq!(u.write(off::DATA, b'H'), Some(b'H'));
        assert_eq!(u.read(off::LSR), 0x60);
        assert_eq!(u.read(off::DATA), 0, "nothing received");
        assert_eq!(u.read(off::MSR), 0);
    }

    #[test]
    fn no_interrupt_without_ier() {
        let mut u = Uart::new();
        assert_eq!(u.read(off::IIR_FCR), 0x01);
        u.write(off::IIR_FCR, 0x07); // enable and clear FIFOs
        assert_eq!(u.read(off::IIR_FCR), 0xc1);
        u.write(off::DATA, b'x');
        assert_eq!(u.read(off::IIR_FCR), 0xc1, "THRE latched but not enabled");
        u.write(off::IIR_FCR, 0x00);
        assert_eq!(u.read(off::IIR_FCR), 0x01);
    }

    #[test]
    fn thre_interrupt_as_a_16550_raises_and_clears_it() {
        let mut u = Uart::new();
        u.write(off::MCR, MCR_OUT2);
        assert!(!u.irq());
        // Enabling ETBEI with THR empty raises it at once.
        u.write(off::IER, IER_THRE);
        assert!(u.irq());
        // Reading IIR names it and clears it.
        assert_eq!(u.read(off::IIR_FCR), IIR_THRE);
        assert!(!u.irq());
        assert_eq!(u.read(off::IIR_FCR), IIR_NO_INT);
        // Each byte sent empties THR again.
        assert_eq!(u.write(off::DATA, b'a'), Some(b'a'));
        assert!(u.irq());
        // Disabling and enabling again raises it again.
        u.write(off::IER, 0);
        assert!(!u.irq());
        u.write(off::IER, IER_THRE);
        assert!(u.irq());
        // OUT2 gates the line, not the interrupt.
        u.write(off::MCR, 0);
        assert!(!u.irq());
        assert_eq!(u.read(off::IIR_FCR), IIR_THRE);
    }

    #[test]
    fn received_data_interrupt_goes_first_and_loopback_keeps_the_line_down() {
        let mut u = Uart::new();
        u.write(off::MCR, MCR_LOOP | MCR_OUT2);
        u.write(off::IER, IER_RDA | IER_THRE);
        u.write(off::DATA, 0x42);
        assert_eq!(u.read(off::IIR_FCR), IIR_RDA, "RDA has priority over THRE");
        assert!(!u.irq(), "loopback disconnects the line");
        assert_eq!(u.read(off::DATA), 0x42);
        assert_eq!(u.read(off::IIR_FCR), IIR_THRE);
    }

    #[test]
    fn serial_reports_each_line_change_once() {
        let mut s = Serial::new(Vec::new());
        assert_eq!(s.irq_change(), None);
        s.write_reg(off::MCR, MCR_OUT2);
        s.write_reg(off::IER, IER_THRE);
        assert_eq!(s.irq_change(), Some(true));
        assert_eq!(s.irq_change(), None);
        s.read_reg(off::IIR_FCR);
        assert_eq!(s.irq_change(), Some(false));
        s.write_reg(off::DATA, b'z');
        assert_eq!(s.irq_change(), Some(true));
        assert_eq!(s.output(), b"z");
    }

    #[test]
    fn registers_read_back() {
        let mut u = Uart::new();
        u.write(off::LCR, 0x03);
        u.write(off::SCR, 0x5a);
        u.write(off::IER, 0xff);
        u.write(off::MCR, 0xff);
        assert_eq!(u.read(off::LCR), 0x03);
        assert_eq!(u.read(off::SCR), 0x5a);
        assert_eq!(u.read(off::IER), 0x0f, "a 16550 has four IER bits");
        assert_eq!(u.read(off::MCR), 0x1f, "and five MCR bits");
        // LSR and MSR ignore writes.
        u.write(off::MCR, 0);
        u.write(off::LSR, 0);
        u.write(off::MSR, 0xff);
        assert_eq!((u.read(off::LSR), u.read(off::MSR)), (0x60, 0));
    }

    #[test]
    fn dlab_selects_the_divisor_latch() {
        let mut u = Uart::new();
        u.write(off::IER, 0x01);
        u.write(off::LCR, 0x83);
        assert_eq!(u.write(off::DATA, 0x0c), None, "DLL, not THR");
        u.write(off::IER, 0x00);
        assert_eq!((u.read(off::DATA), u.read(off::IER)), (0x0c, 0x00));
        u.write(off::LCR, 0x03);
        assert_eq!(u.read(off::IER), 0x01, "IER kept its value");
        u.write(off::LCR, 0x80);
        assert_eq!((u.read(off::DATA), u.read(off::IER)), (0x0c, 0x00));
    }

    #[test]
    fn loopback_as_linux_probes_it() {
        let mut u = Uart::new();
        // serial8250 autoconfig: MCR = LOOP | OUT2 | RTS, expects MSR & 0xf0 == 0x90.
        u.write(off::MCR, 0x1a);
        assert_eq!(u.read(off::MSR) & 0xf0, 0x90);
        u.write(off::MCR, 0x15); // LOOP | OUT1 | DTR
        assert_eq!(u.read(off::MSR), 0x60);
        assert_eq!(u.write(off::DATA, b'x'), None, "looped back, not sent");
        assert_eq!(u.read(off::LSR), 0x61);
        assert_eq!(u.read(off::DATA), b'x');
        assert_eq!(u.read(off::LSR), 0x60);
        u.write(off::MCR, 0x03);
        assert_eq!(u.write(off::DATA, b'y'), Some(b'y'));
    }

    #[test]
    fn serial_sends_what_the_guest_transmits() {
        let mut s = Serial::new(Vec::new());
        assert_eq!(s.read_reg(off::LSR), 0x60);
        s.write_reg(off::DATA, b'o');
        s.write_reg(off::SCR, b'x');
        s.write_reg(off::DATA, b'k');
        assert_eq!(s.output(), b"ok");
    }

    #[test]
    fn on_mmio_only_single_bytes_at_the_eight_registers_are_taken() {
        let s = Serial::new(Vec::new());
        for offset in 0..8 {
            assert!(s.accepts(offset, 1), "{offset}");
            for size in [2, 4, 8] {
                assert!(!s.accepts(offset, size), "{offset}/{size}");
            }
        }
        assert!(!s.accepts(8, 1));
        assert!(!s.accepts(0x100, 1), "no aliasing through a truncated offset");
    }
}
