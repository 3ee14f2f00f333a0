// SPDX-License-Identifier: GPL-2.0

//! The MC146818A's ports, register map and bit layouts.
//!
//! Sources: Motorola MC146818A data sheet ("Address Map", "Registers",
//! tables 3-5) and the Dallas DS12887 data sheet, which describes the same
//! registers; the century byte at 0x32 is the PC/AT convention (IBM AT
//! technical reference, CMOS map).
//!
//! Glossary: UIP = update in progress; DV = divider select; RS = rate
//! select; SET = inhibit updates; PIE, AIE, UIE = periodic, alarm and
//! update-ended interrupt enables; SQWE = square-wave enable; DM = data
//! mode (binary or BCD); DSE = daylight-saving enable; IRQF = interrupt
//! request flag; PF, AF, UF = periodic, alarm and update-ended flags; VRT =
//! valid RAM and time.

/// The index port: bits 6:0 select a byte, bit 7 masks NMI.
pub const PORT_INDEX: u16 = 0x70;
/// The data port: reads and writes the selected byte.
pub const PORT_DATA: u16 = 0x71;
/// What a read of anything but the data port returns (the index port is
/// write-only on a PC).
pub const OPEN_BUS: u8 = 0xff;

/// Index port bits that select the byte.
pub const INDEX_MASK: u8 = 0x7f;
/// Index port bit 7: the chipset masks NMI while it is 1. It does not
/// reach the RTC and does not change the index.
pub const INDEX_NMI_DISABLE: u8 = 0x80;
/// Bytes in the CMOS: clock registers and NVRAM.
pub const CMOS_SIZE: usize = 128;
/// The index selected at power-up (register D, like bhyve: a read of it
/// has no side effect).
pub const INDEX_POWER_ON: u8 = REG_D;

/// Seconds, 0-59.
pub const SECONDS: u8 = 0x00;
/// Seconds alarm.
pub const SECONDS_ALARM: u8 = 0x01;
/// Minutes, 0-59.
pub const MINUTES: u8 = 0x02;
/// Minutes alarm.
pub const MINUTES_ALARM: u8 = 0x03;
/// Hours: 0-23, or 1-12 with [`HOUR_PM`] in 12-hour mode.
pub const HOURS: u8 = 0x04;
/// Hours alarm, in the format of [`HOURS`].
pub const HOURS_ALARM: u8 = 0x05;
/// Day of the week, 1-7, 1 = Sunday.
pub const DAY_OF_WEEK: u8 = 0x06;
/// Day of the month, 1-31.
pub const DAY_OF_MONTH: u8 = 0x07;
/// Month, 1-12.
pub const MONTH: u8 = 0x08;
/// Year within the century, 0-99.
pub const YEAR: u8 = 0x09;
/// Register A: UIP, DV, RS.
pub const REG_A: u8 = 0x0a;
/// Register B: SET, interrupt enables, formats.
pub const REG_B: u8 = 0x0b;
/// Register C: interrupt flags (read-only, cleared by a read).
pub const REG_C: u8 = 0x0c;
/// Register D: VRT (read-only).
pub const REG_D: u8 = 0x0d;
/// Century, 19-99 (PC/AT convention; kept in step with [`YEAR`]).
pub const CENTURY: u8 = 0x32;

/// Seconds register bit 7 is read-only and reads 0 (bhyve and the PC/AT
/// CMOS map agree); a write keeps bits 6:0.
pub const SECONDS_WRITABLE: u8 = 0x7f;
/// Hours bit 7 in 12-hour mode: PM.
pub const HOUR_PM: u8 = 0x80;
/// An alarm byte at or above this ("11" in bits 7:6) matches any value.
pub const ALARM_DONT_CARE: u8 = 0xc0;

/// Register A bit 7: update in progress (read-only).
pub const A_UIP: u8 = 0x80;
/// Register A bits 6:4: divider select.
pub const A_DV_MASK: u8 = 0x70;
/// Register A bits 3:0: rate select.
pub const A_RS_MASK: u8 = 0x0f;
/// Register A bits the guest can write.
pub const A_WRITABLE: u8 = A_DV_MASK | A_RS_MASK;
/// DV = 010: the 32.768 kHz time base, counting.
pub const A_DV_RUN: u8 = 0x20;
/// Register A as a PC BIOS leaves it: DV = 010, RS = 0110 (1024 Hz).
pub const A_POWER_ON: u8 = A_DV_RUN | 0x06;

/// Register B bit 7: SET, updates inhibited while the time is set.
pub const B_SET: u8 = 0x80;
/// Register B bit 6: periodic interrupt enable.
pub const B_PIE: u8 = 0x40;
/// Register B bit 5: alarm interrupt enable.
pub const B_AIE: u8 = 0x20;
/// Register B bit 4: update-ended interrupt enable.
pub const B_UIE: u8 = 0x10;
/// Register B bit 3: square-wave enable (no pin on a PC; stored only).
pub const B_SQWE: u8 = 0x08;
/// Register B bit 2: data mode, 1 = binary, 0 = BCD.
pub const B_DM_BINARY: u8 = 0x04;
/// Register B bit 1: 1 = 24-hour, 0 = 12-hour mode.
pub const B_24H: u8 = 0x02;
/// Register B bit 0: daylight-saving enable (stored only; see the module
/// documentation).
pub const B_DSE: u8 = 0x01;
/// Register B as a PC BIOS leaves it: 24-hour BCD, no interrupts.
pub const B_POWER_ON: u8 = B_24H;

/// Register C bit 7: IRQF = (PF & PIE) | (AF & AIE) | (UF & UIE).
pub const C_IRQF: u8 = 0x80;
/// Register C bit 6: periodic flag.
pub const C_PF: u8 = 0x40;
/// Register C bit 5: alarm flag.
pub const C_AF: u8 = 0x20;
/// Register C bit 4: update-ended flag.
pub const C_UF: u8 = 0x10;
/// Register C flag bits (each has its enable at the same position in
/// register B).
pub const C_FLAGS: u8 = C_PF | C_AF | C_UF;

/// Register D bit 7: the battery is good (always 1 here).
pub const D_VRT: u8 = 0x80;

/// What DV selects, as modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Divider {
    /// 010: the 32.768 kHz time base drives the divider chain; time and
    /// periodic interrupts run.
    Running,
    /// 11x: the chain is held in reset; the first update comes 500 ms
    /// after it is released.
    Reset,
    /// 000, 001, 011, 10x: another crystal or a test mode. A PC has only
    /// the 32.768 kHz crystal, so the chain is treated as held in reset:
    /// nothing counts, and a return to 010 restarts it as from reset.
    Stopped,
}

impl Divider {
    /// Decodes register A.
    pub const fn from_reg_a(a: u8) -> Divider {
        match (a & A_DV_MASK) >> 4 {
            0b010 => Divider::Running,
            0b110 | 0b111 => Divider::Reset,
            _ => Divider::Stopped,
        }
    }
}

/// How register B says time, date and alarm bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Format {
    /// DM = 1: binary; otherwise BCD.
    pub binary: bool,
    /// 24-hour mode; otherwise 12-hour with [`HOUR_PM`].
    pub h24: bool,
}

impl Format {
    /// Decodes register B.
    pub const fn from_reg_b(b: u8) -> Format {
        Format { binary: b & B_DM_BINARY != 0, h24: b & B_24H != 0 }
    }

    /// `v` (0-99) as a byte: binary, or two BCD digits.
    pub const fn encode(self, v: u8) -> u8 {
        let v = v % 100;
        if self.binary {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    /// The value of byte `b`, or `None` when it is not a BCD number in BCD
    /// mode. Binary bytes decode as they are.
    pub const fn decode(self, b: u8) -> Option<u8> {
        if self.binary {
            return Some(b);
        }
        let (hi, lo) = (b >> 4, b & 0xf);
        if hi > 9 || lo > 9 {
            None
        } else {
            Some(hi * 10 + lo)
        }
    }

    /// Hour `h` (0-23) as the hours register shows it.
    pub const fn encode_hour(self, h: u8) -> u8 {
        let h = h % 24;
        if self.h24 {
            return self.encode(h);
        }
        let h12 = if h % 12 == 0 { 12 } else { h % 12 };
        self.encode(h12) | if h >= 12 { HOUR_PM } else { 0 }
    }

    /// The hour (0-23) an hours byte means, or `None` if it means none.
    pub const fn decode_hour(self, b: u8) -> Option<u8> {
        if self.h24 {
            return match self.decode(b) {
                Some(h) if h < 24 => Some(h),
                _ => None,
            };
        }
        let pm = if b & HOUR_PM != 0 { 12 } else { 0 };
        match self.decode(b & !HOUR_PM) {
            Some(h) if h >= 1 && h <= 12 => Some(h % 12 + pm),
            _ => None,
        }
    }
}
