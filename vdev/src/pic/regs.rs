// SPDX-License-Identifier: GPL-2.0

//! The 8259A's programming interface as the PC wires it: the six ports,
//! the command words and their bit fields, and the ELCR's fixed bits.
//!
//! Sources: Intel 8259A datasheet (order 231468), "Programming the
//! 8259A" (ICW1-ICW4, OCW1-OCW3, poll word); Intel PIIX/ICH datasheets,
//! "8259 Interrupt Controller" (ELCR at 0x4D0/0x4D1, which IRQs are always
//! edge, ICW1's LTIM ignored).

/// Master command port (A0 = 0): ICW1, OCW2, OCW3; reads IRR, ISR or the
/// poll word.
pub const MASTER_CMD: u16 = 0x20;
/// Master data port (A0 = 1): ICW2-ICW4 during initialisation, OCW1
/// (the IMR) otherwise; reads the IMR or the poll word.
pub const MASTER_DATA: u16 = 0x21;
/// Slave command port.
pub const SLAVE_CMD: u16 = 0xa0;
/// Slave data port.
pub const SLAVE_DATA: u16 = 0xa1;
/// Master ELCR: bit n set = IRQ n is level-triggered.
pub const ELCR_MASTER: u16 = 0x4d0;
/// Slave ELCR: bit n set = IRQ 8 + n is level-triggered.
pub const ELCR_SLAVE: u16 = 0x4d1;
/// Every port the device answers.
pub const PORTS: [u16; 6] =
    [MASTER_CMD, MASTER_DATA, SLAVE_CMD, SLAVE_DATA, ELCR_MASTER, ELCR_SLAVE];
/// What a read of any other port returns (an undriven ISA data bus).
pub const UNCLAIMED_READ: u8 = 0xff;

/// The master input the slave's INT output drives.
pub const CASCADE_PIN: u8 = 2;
/// The input whose vector a spurious acknowledge returns (IR7 of the chip
/// that found no request).
pub const SPURIOUS_PIN: u8 = 7;
/// The input with the lowest priority after ICW1 and reset.
pub const RESET_LOWEST: u8 = 7;

/// ELCR bits that can be level-triggered on the master. IRQ 0 (timer), 1
/// (keyboard) and 2 (cascade) are always edge: their bits read 0 and
/// writes to them are ignored.
pub const ELCR_MASTER_MASK: u8 = 0xf8;
/// ELCR bits that can be level-triggered on the slave. IRQ 8 (RTC, bit 0)
/// and IRQ 13 (FPU error, bit 5) are always edge.
pub const ELCR_SLAVE_MASK: u8 = 0xde;

/// A command-port write with this bit set is ICW1 (and starts
/// initialisation).
pub const CMD_ICW1: u8 = 1 << 4;
/// A command-port write without [`CMD_ICW1`] and with this bit set is
/// OCW3; with neither it is OCW2.
pub const CMD_OCW3: u8 = 1 << 3;

/// ICW1 bit 0 (IC4): ICW4 follows.
pub const ICW1_IC4: u8 = 1 << 0;
/// ICW1 bit 1 (SNGL): single chip, no ICW3.
pub const ICW1_SNGL: u8 = 1 << 1;
/// ICW1 bit 2 (ADI): call address interval (8080/8085 only; ignored).
pub const ICW1_ADI: u8 = 1 << 2;
/// ICW1 bit 3 (LTIM): all inputs level-triggered. Ignored, as on the
/// PIIX/ICH: the ELCR alone selects edge or level per input.
pub const ICW1_LTIM: u8 = 1 << 3;

/// ICW2 bits 7:3: the vector base (T7-T3). Bits 2:0 are the input number
/// in the vector and are ignored when written.
pub const ICW2_VECTOR_BASE: u8 = 0xf8;

/// ICW4 bit 0 (uPM): 8086 mode. Ignored: an x86 CPU's acknowledge always
/// takes a vector byte, so vectoring is always the 8086 kind.
pub const ICW4_UPM: u8 = 1 << 0;
/// ICW4 bit 1 (AEOI): automatic end of interrupt at acknowledge.
pub const ICW4_AEOI: u8 = 1 << 1;
/// ICW4 bit 2 (M/S): master or slave in buffered mode (ignored: the
/// wiring is fixed).
pub const ICW4_MS: u8 = 1 << 2;
/// ICW4 bit 3 (BUF): buffered mode (ignored).
pub const ICW4_BUF: u8 = 1 << 3;
/// ICW4 bit 4 (SFNM): special fully nested mode (effective on the master
/// only, where the slave hangs).
pub const ICW4_SFNM: u8 = 1 << 4;

/// OCW2 bits 2:0 (L2-L0): the input a specific command names.
pub const OCW2_LEVEL: u8 = 0x07;
/// OCW2 bits 7:5 (R, SL, EOI) select the command.
pub const OCW2_CMD_SHIFT: u8 = 5;

/// OCW3 bit 0 (RIS): read ISR (1) or IRR (0), if [`OCW3_RR`].
pub const OCW3_RIS: u8 = 1 << 0;
/// OCW3 bit 1 (RR): bit 0 selects the register command-port reads return.
pub const OCW3_RR: u8 = 1 << 1;
/// OCW3 bit 2 (P): poll; the next read of this chip is the poll word.
pub const OCW3_POLL: u8 = 1 << 2;
/// OCW3 bit 5 (SMM): special mask mode on (1) or off (0), if
/// [`OCW3_ESMM`].
pub const OCW3_SMM: u8 = 1 << 5;
/// OCW3 bit 6 (ESMM): bit 5 takes effect.
pub const OCW3_ESMM: u8 = 1 << 6;

/// Poll word bit 7 (I): an interrupt was pending (and is now acknowledged);
/// bits 2:0 then give its input.
pub const POLL_INT: u8 = 0x80;

/// What a command-port write is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Start initialisation with these ICW1 bits.
    Icw1(u8),
    /// An operation on the ISR or on priorities.
    Ocw2(Ocw2),
    /// Read selection, poll and special mask mode.
    Ocw3(Ocw3),
}

impl Command {
    /// Decodes a command-port write. Every byte is one of the three; OCW3's
    /// bit 7, which must be 0, is ignored.
    pub const fn decode(value: u8) -> Command {
        if value & CMD_ICW1 != 0 {
            Command::Icw1(value)
        } else if value & CMD_OCW3 != 0 {
            Command::Ocw3(Ocw3::decode(value))
        } else {
            Command::Ocw2(Ocw2::decode(value))
        }
    }
}

/// The eight OCW2 commands (bits 7:5 = R, SL, EOI; datasheet table
/// "Operation Command Word 2").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ocw2 {
    /// 000: stop rotating in automatic-EOI mode.
    RotateAeoiClear,
    /// 001: clear the highest-priority ISR bit.
    NonSpecificEoi,
    /// 010: nothing.
    Nop,
    /// 011: clear this ISR bit.
    SpecificEoi(u8),
    /// 100: rotate in automatic-EOI mode (each acknowledged input becomes
    /// the lowest priority).
    RotateAeoiSet,
    /// 101: clear the highest-priority ISR bit and make it the lowest
    /// priority.
    RotateNonSpecificEoi,
    /// 110: make this input the lowest priority.
    SetPriority(u8),
    /// 111: clear this ISR bit and make it the lowest priority.
    RotateSpecificEoi(u8),
}

impl Ocw2 {
    /// Decodes an OCW2 byte (bits 4:3 must be 0; [`Command::decode`] has
    /// already told OCW2 apart by them).
    pub const fn decode(value: u8) -> Ocw2 {
        let level = value & OCW2_LEVEL;
        match value >> OCW2_CMD_SHIFT {
            0 => Ocw2::RotateAeoiClear,
            1 => Ocw2::NonSpecificEoi,
            2 => Ocw2::Nop,
            3 => Ocw2::SpecificEoi(level),
            4 => Ocw2::RotateAeoiSet,
            5 => Ocw2::RotateNonSpecificEoi,
            6 => Ocw2::SetPriority(level),
            _ => Ocw2::RotateSpecificEoi(level),
        }
    }
}

/// Which register command-port reads return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadSelect {
    /// The interrupt request register (after ICW1 and reset).
    Irr,
    /// The in-service register.
    Isr,
}

/// An OCW3 byte, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ocw3 {
    /// New read selection, if RR is set.
    pub read: Option<ReadSelect>,
    /// Poll: the next read is the poll word.
    pub poll: bool,
    /// New special mask mode, if ESMM is set.
    pub special_mask: Option<bool>,
}

impl Ocw3 {
    /// Decodes an OCW3 byte.
    pub const fn decode(value: u8) -> Ocw3 {
        Ocw3 {
            read: if value & OCW3_RR == 0 {
                None
            } else if value & OCW3_RIS != 0 {
                Some(ReadSelect::Isr)
            } else {
                Some(ReadSelect::Irr)
            },
            poll: value & OCW3_POLL != 0,
            special_mask: if value & OCW3_ESMM != 0 { Some(value & OCW3_SMM != 0) } else { None },
        }
    }
}

/// Where a chip's initialisation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Init {
    /// Not initialised since reset: the chip holds INT low; data-port
    /// writes set the IMR.
    Reset,
    /// ICW1 was written; the next data-port write is ICW2. INT is low
    /// until the sequence ends.
    Icw2,
    /// The next data-port write is ICW3 (cascade mode).
    Icw3,
    /// The next data-port write is ICW4 (ICW1 had IC4).
    Icw4,
    /// Initialised and operating.
    Ready,
}

impl Init {
    /// The snapshot encoding: 0 reset, 1 ready, 2-4 waiting for ICW2-ICW4.
    pub const fn encode(self) -> u8 {
        match self {
            Init::Reset => 0,
            Init::Ready => 1,
            Init::Icw2 => 2,
            Init::Icw3 => 3,
            Init::Icw4 => 4,
        }
    }

    /// The inverse of [`Init::encode`]; `None` for other values.
    pub const fn decode(value: u8) -> Option<Init> {
        match value {
            0 => Some(Init::Reset),
            1 => Some(Init::Ready),
            2 => Some(Init::Icw2),
            3 => Some(Init::Icw3),
            4 => Some(Init::Icw4),
            _ => None,
        }
    }
}
