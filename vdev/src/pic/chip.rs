// SPDX-License-Identifier: GPL-2.0

//! One 8259A: its registers, its priority resolver and its command
//! decoder. [`super::Pic`] wires two of them together.

use super::regs::*;

/// The bit of input `pin` (0-7) in an 8-bit register.
pub(super) const fn bit(pin: u8) -> u8 {
    1 << (pin & 7)
}

/// One 8259A's whole state.
///
/// Invariants (kept by every operation, checked on restore):
/// - `elcr` has no bit outside the chip's ELCR mask;
/// - a level-triggered input's IRR bit is its line level
///   (`irr & elcr == lines & elcr`);
/// - `lowest <= 7` and `vector_base & 7 == 0`;
/// - `Init::Reset` (not initialised since reset) has ISR, vector base,
///   AEOI, SFNM and the ICW1 bits all zero;
/// - `Init::Icw3` only in cascade mode, `Init::Icw4` only with IC4;
///   without IC4, AEOI and SFNM are off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Chip {
    /// This is the master (fixed by position; not guest state).
    pub(super) master: bool,
    /// Interrupt request register.
    pub(super) irr: u8,
    /// In-service register.
    pub(super) isr: u8,
    /// Interrupt mask register (OCW1).
    pub(super) imr: u8,
    /// Input line levels as last driven. On the master, bit 2 is the
    /// slave's INT output.
    pub(super) lines: u8,
    /// Edge/level control: bit set = level-triggered.
    pub(super) elcr: u8,
    /// The input with the lowest priority; `lowest + 1` (mod 8) has the
    /// highest.
    pub(super) lowest: u8,
    /// Vector base from ICW2 (bits 7:3).
    pub(super) vector_base: u8,
    /// Initialisation step.
    pub(super) init: Init,
    /// ICW1's IC4 bit: ICW4 is part of the sequence.
    pub(super) ic4: bool,
    /// ICW1's SNGL bit: no ICW3 in the sequence.
    pub(super) single: bool,
    /// What command-port reads return.
    pub(super) read: ReadSelect,
    /// The next read is the poll word.
    pub(super) poll: bool,
    /// Special mask mode.
    pub(super) special_mask: bool,
    /// Automatic EOI (ICW4).
    pub(super) aeoi: bool,
    /// Rotate in automatic-EOI mode (OCW2).
    pub(super) rotate_aeoi: bool,
    /// Special fully nested mode (ICW4).
    pub(super) sfnm: bool,
}

impl Chip {
    /// A chip in its reset state with all lines low.
    pub(super) const fn new(master: bool) -> Chip {
        Chip {
            master,
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            elcr: 0,
            lowest: RESET_LOWEST,
            vector_base: 0,
            init: Init::Reset,
            ic4: false,
            single: false,
            read: ReadSelect::Irr,
            poll: false,
            special_mask: false,
            aeoi: false,
            rotate_aeoi: false,
            sfnm: false,
        }
    }

    /// Reset: everything but the line levels returns to [`Chip::new`].
    /// The ELCR resets to all-edge, so no request survives.
    pub(super) fn reset(&mut self) {
        *self = Chip { lines: self.lines, ..Chip::new(self.master) };
    }

    /// Bits of the ELCR this chip implements.
    pub(super) const fn elcr_mask(&self) -> u8 {
        if self.master {
            ELCR_MASTER_MASK
        } else {
            ELCR_SLAVE_MASK
        }
    }

    /// The vector input `pin` produces.
    pub(super) const fn vector(&self, pin: u8) -> u8 {
        self.vector_base | (pin & 7)
    }

    /// The inputs from highest to lowest priority.
    fn by_priority(&self) -> impl Iterator<Item = u8> {
        let first = self.lowest.wrapping_add(1);
        (0..8u8).map(move |i| first.wrapping_add(i) & 7)
    }

    /// The highest-priority input in `bits`.
    fn highest(&self, bits: u8) -> Option<u8> {
        self.by_priority().find(|&pin| bits & bit(pin) != 0)
    }

    /// Drives input `pin` to `level`. An edge-triggered input latches its
    /// IRR bit on a rising edge and keeps it when the line drops; a
    /// level-triggered one's IRR bit follows the line.
    pub(super) fn set_line(&mut self, pin: u8, level: bool) {
        let b = bit(pin);
        let was = self.lines & b != 0;
        if level {
            self.lines |= b;
            if self.elcr & b != 0 || !was {
                self.irr |= b;
            }
        } else {
            self.lines &= !b;
            if self.elcr & b != 0 {
                self.irr &= !b;
            }
        }
    }

    /// The input the chip would have the CPU acknowledge now, if any: the
    /// highest-priority unmasked request above every in-service level
    /// that still blocks. In special mask mode a masked in-service level
    /// does not block; in special fully nested mode the master's
    /// in-service cascade input does not block the slave. An
    /// uninitialised chip (reset or mid-sequence) offers nothing.
    pub(super) fn pick(&self) -> Option<u8> {
        if self.init != Init::Ready {
            return None;
        }
        let requests = self.irr & !self.imr;
        if requests == 0 {
            return None;
        }
        let mut blocking = self.isr;
        if self.special_mask {
            blocking &= !self.imr;
        }
        if self.sfnm && self.master {
            blocking &= !bit(CASCADE_PIN);
        }
        for pin in self.by_priority() {
            if blocking & bit(pin) != 0 {
                return None;
            }
            if requests & bit(pin) != 0 {
                return Some(pin);
            }
        }
        None
    }

    /// The INT output.
    pub(super) fn output(&self) -> bool {
        self.pick().is_some()
    }

    /// Acknowledges input `pin` (INTA or poll): an edge-triggered request
    /// is consumed (a level-triggered one stays while its line is high);
    /// the ISR bit is set, or, in automatic-EOI mode, not set and the
    /// input becomes the lowest priority if rotation in AEOI is on.
    pub(super) fn ack(&mut self, pin: u8) {
        let b = bit(pin);
        if self.elcr & b == 0 {
            self.irr &= !b;
        }
        if self.aeoi {
            if self.rotate_aeoi {
                self.lowest = pin & 7;
            }
        } else {
            self.isr |= b;
        }
    }

    /// The ISR bit a non-specific EOI clears: the highest-priority one; in
    /// special mask mode, masked ones are passed over.
    fn eoi_target(&self) -> Option<u8> {
        let candidates = if self.special_mask { self.isr & !self.imr } else { self.isr };
        self.highest(candidates)
    }

    /// A command-port write.
    pub(super) fn write_command(&mut self, value: u8) {
        match Command::decode(value) {
            Command::Icw1(icw1) => self.icw1(icw1),
            Command::Ocw2(ocw2) => self.ocw2(ocw2),
            Command::Ocw3(ocw3) => self.ocw3(ocw3),
        }
    }

    /// ICW1: the datasheet's initialisation actions (edge sense reset, IMR
    /// cleared, IR7 lowest priority, special mask off, IRR selected, ICW4
    /// functions cleared without IC4), plus a pending poll dropped. The ISR,
    /// the rotate-in-AEOI flag and the line levels are kept. Edge-latched
    /// requests are dropped: after ICW1 an edge input needs a new rising
    /// edge. Level-triggered requests stay (they follow their lines).
    fn icw1(&mut self, value: u8) {
        self.init = Init::Icw2;
        self.ic4 = value & ICW1_IC4 != 0;
        self.single = value & ICW1_SNGL != 0;
        self.irr &= self.elcr;
        self.imr = 0;
        self.lowest = RESET_LOWEST;
        self.special_mask = false;
        self.read = ReadSelect::Irr;
        self.poll = false;
        if !self.ic4 {
            self.aeoi = false;
            self.sfnm = false;
        }
    }

    fn ocw2(&mut self, cmd: Ocw2) {
        match cmd {
            Ocw2::Nop => {}
            Ocw2::RotateAeoiClear => self.rotate_aeoi = false,
            Ocw2::RotateAeoiSet => self.rotate_aeoi = true,
            Ocw2::NonSpecificEoi => {
                if let Some(pin) = self.eoi_target() {
                    self.isr &= !bit(pin);
                }
            }
            Ocw2::RotateNonSpecificEoi => {
                if let Some(pin) = self.eoi_target() {
                    self.isr &= !bit(pin);
                    self.lowest = pin;
                }
            }
            Ocw2::SpecificEoi(pin) => self.isr &= !bit(pin),
            Ocw2::RotateSpecificEoi(pin) => {
                self.isr &= !bit(pin);
                self.lowest = pin & 7;
            }
            Ocw2::SetPriority(pin) => self.lowest = pin & 7,
        }
    }

    fn ocw3(&mut self, cmd: Ocw3) {
        if let Some(read) = cmd.read {
            self.read = read;
        }
        if cmd.poll {
            self.poll = true;
        }
        if let Some(on) = cmd.special_mask {
            self.special_mask = on;
        }
    }

    /// A data-port write: the next ICW during initialisation, otherwise
    /// OCW1 (the IMR). ICW3 is accepted and ignored: the slave is wired
    /// to master IR2 whatever the guest says.
    pub(super) fn write_data(&mut self, value: u8) {
        match self.init {
            Init::Reset | Init::Ready => self.imr = value,
            Init::Icw2 => {
                self.vector_base = value & ICW2_VECTOR_BASE;
                self.init = if !self.single {
                    Init::Icw3
                } else if self.ic4 {
                    Init::Icw4
                } else {
                    Init::Ready
                };
            }
            Init::Icw3 => self.init = if self.ic4 { Init::Icw4 } else { Init::Ready },
            Init::Icw4 => {
                self.aeoi = value & ICW4_AEOI != 0;
                self.sfnm = value & ICW4_SFNM != 0;
                self.init = Init::Ready;
            }
        }
    }

    /// A non-poll read of the command port.
    pub(super) const fn read_command(&self) -> u8 {
        match self.read {
            ReadSelect::Irr => self.irr,
            ReadSelect::Isr => self.isr,
        }
    }

    /// An ELCR write: bits outside the mask are dropped; inputs that are
    /// now level-triggered take their line level as request.
    pub(super) fn write_elcr(&mut self, value: u8) {
        self.elcr = value & self.elcr_mask();
        self.irr = (self.irr & !self.elcr) | (self.lines & self.elcr);
    }
}
