// SPDX-License-Identifier: GPL-2.0

//! Ports, register layouts and the clock of the 8254 and of port 0x61.
//!
//! Sources: Intel 8254 datasheet (order no. 231164), "Control Word
//! Format", "Read-Back Command Format", "Status Byte", "Minimum and
//! Maximum Initial Counts"; the IBM PC/AT technical reference for port
//! 0x61 ("system control port B").

use super::super::common::{mul_div, Nanos};

/// Counter 0's data port (IRQ 0).
pub const PORT_COUNTER0: u16 = 0x40;
/// Counter 1's data port (once DRAM refresh; no output wired here).
pub const PORT_COUNTER1: u16 = 0x41;
/// Counter 2's data port (the speaker; gate and output through port 0x61).
pub const PORT_COUNTER2: u16 = 0x42;
/// The control word register (write-only; reads return 0 here, as in QEMU
/// and KVM).
pub const PORT_CONTROL: u16 = 0x43;
/// System control port B: counter 2's gate and the speaker in, counter 2's
/// output and the refresh toggle out.
pub const PORT_SYSTEM_B: u16 = 0x61;

/// What a read of a port this device does not decode returns (open bus).
pub const OPEN_BUS: u8 = 0xff;

// ---- Control word (port 0x43) ----

/// Control word bits 7:6, SC: the counter (0-2) or 3 for read-back.
pub const CW_SELECT_SHIFT: u8 = 6;
/// SC value of the read-back command.
pub const CW_SELECT_READBACK: u8 = 3;
/// Control word bits 5:4, RW: 0 = counter latch command, 1 = LSB only,
/// 2 = MSB only, 3 = LSB then MSB.
pub const CW_ACCESS_SHIFT: u8 = 4;
/// Mask of RW after shifting.
pub const CW_ACCESS_MASK: u8 = 3;
/// Control word bits 3:1, M: the mode, 0-5; 6 and 7 are modes 2 and 3.
pub const CW_MODE_SHIFT: u8 = 1;
/// Mask of M after shifting.
pub const CW_MODE_MASK: u8 = 7;
/// Control word bit 0: count in BCD (four decades) rather than binary.
pub const CW_BCD: u8 = 1 << 0;
/// The bits of a programming control word that the counter keeps and the
/// status byte reports as written (RW, M, BCD: bits 5:0).
pub const CW_PROGRAM_MASK: u8 = 0x3f;
/// What each counter holds at power-up: RW = LSB then MSB, mode 0, binary.
pub const CW_POWER_UP: u8 = (ACCESS_WORD << CW_ACCESS_SHIFT) & CW_PROGRAM_MASK;

/// RW: the counter latch command.
pub const ACCESS_LATCH: u8 = 0;
/// RW: least significant byte only.
pub const ACCESS_LSB: u8 = 1;
/// RW: most significant byte only.
pub const ACCESS_MSB: u8 = 2;
/// RW: least significant byte, then most significant byte.
pub const ACCESS_WORD: u8 = 3;

// ---- Read-back command (port 0x43, SC = 3) ----

/// Bit 5, active low: do *not* latch the count.
pub const RB_NO_COUNT: u8 = 1 << 5;
/// Bit 4, active low: do *not* latch the status.
pub const RB_NO_STATUS: u8 = 1 << 4;
/// Bit 1: select counter 0 (bit 2 counter 1, bit 3 counter 2).
pub const RB_COUNTER0: u8 = 1 << 1;
/// Bits 3:1: the counters selected. Bit 0 is reserved (zero) and ignored.
pub const RB_SELECT_MASK: u8 = 0x0e;

// ---- Status byte (read-back) ----

/// Bit 7: the OUT pin.
pub const STATUS_OUT: u8 = 1 << 7;
/// Bit 6: null count, the last count written is not yet in the counting
/// element. Bits 5:0 repeat the control word.
pub const STATUS_NULL_COUNT: u8 = 1 << 6;

// ---- Port 0x61 ----

/// Bit 0 (RW): counter 2's gate.
pub const SYSB_GATE2: u8 = 1 << 0;
/// Bit 1 (RW): speaker data enable (ANDed with counter 2's output on real
/// boards; only stored here).
pub const SYSB_SPEAKER: u8 = 1 << 1;
/// Bit 4 (RO): the refresh request toggle.
pub const SYSB_REFRESH: u8 = 1 << 4;
/// Bit 5 (RO): counter 2's OUT.
pub const SYSB_OUT2: u8 = 1 << 5;
/// The bits a write to port 0x61 changes. Bits 2 and 3 (parity and I/O
/// channel check enables) and the status bits 6 and 7 are not modelled:
/// they read 0, as in KVM.
pub const SYSB_WRITABLE: u8 = SYSB_GATE2 | SYSB_SPEAKER;
/// Input clocks per half period of the refresh toggle: 18 clocks =
/// 15.0857 µs, the rate of the PC's DRAM refresh requests (counter 1 in
/// mode 2 with count 18 on the original boards). Bit 4 therefore flips
/// every 15.085 µs.
pub const REFRESH_CLOCKS: u64 = 18;

// ---- Counting ----

/// The range of a binary counter: a count of 0 means 2^16.
pub const BINARY_MODULUS: u32 = 0x1_0000;
/// The range of a BCD counter: a count of 0 means 10^4.
pub const BCD_MODULUS: u32 = 10_000;
/// The smallest initial count modes 2 and 3 accept (datasheet table
/// "Minimum and Maximum Initial Counts"); a 1 runs as this.
pub const PERIODIC_MIN_COUNT: u32 = 2;

// ---- Clock ----

/// The input clock in Hz, rounded: 1_193_182. The exact value is a third
/// of the NTSC colour burst, 3.579545 MHz / 3 = 1.193181818... MHz =
/// 105/88 MHz; the model counts with the exact ratio ([`CLOCK_NUM`] /
/// [`CLOCK_DEN_NS`] clocks per ns).
pub const CLOCK_HZ: u64 = 1_193_182;
/// Numerator of clocks per nanosecond (105/88 MHz = 105 / 88_000 per ns).
pub const CLOCK_NUM: u64 = 105;
/// Denominator of clocks per nanosecond.
pub const CLOCK_DEN_NS: u64 = 88_000;

/// The index of the last input clock edge at or before `now`. Edge `k`
/// comes at `k * 88_000 / 105` ns on the VM clock, so edge 0 is at time 0
/// and all counters and every restored copy share one grid.
pub fn clock_at(now: Nanos) -> u64 {
    mul_div(now, CLOCK_NUM, CLOCK_DEN_NS)
}

/// The time of clock edge `k`, rounded up to whole ns: the first `now`
/// with `clock_at(now) == k`. Saturates at `u64::MAX`.
pub fn time_of(k: u64) -> Nanos {
    let q = mul_div(k, CLOCK_DEN_NS, CLOCK_NUM);
    if q == u64::MAX {
        return q;
    }
    // The remainder of k * 88_000 / 105 is below 105, so the wrapped
    // difference below is exact.
    let rem = k.wrapping_mul(CLOCK_DEN_NS).wrapping_sub(q.wrapping_mul(CLOCK_NUM));
    if rem == 0 {
        q
    } else {
        q.saturating_add(1)
    }
}

/// Operating mode (control word bits 3:1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Mode 0, interrupt on terminal count: OUT low from the control word
    /// until the count reaches zero, then high.
    TerminalCount,
    /// Mode 1, hardware-retriggerable one-shot: a gate rising edge loads
    /// the count and takes OUT low until zero.
    OneShot,
    /// Mode 2, rate generator: OUT low for one clock every `n` clocks.
    RateGenerator,
    /// Mode 3, square wave: OUT high for `ceil(n/2)` clocks, low for
    /// `floor(n/2)`.
    SquareWave,
    /// Mode 4, software-triggered strobe: OUT low for one clock when the
    /// count written reaches zero.
    SoftwareStrobe,
    /// Mode 5, hardware-triggered strobe: as mode 4, started by a gate
    /// rising edge.
    HardwareStrobe,
}

impl Mode {
    /// Decodes M (control word bits 3:1); 6 and 7 are modes 2 and 3.
    pub const fn from_control(control: u8) -> Mode {
        match (control >> CW_MODE_SHIFT) & CW_MODE_MASK {
            0 => Mode::TerminalCount,
            1 => Mode::OneShot,
            2 | 6 => Mode::RateGenerator,
            3 | 7 => Mode::SquareWave,
            4 => Mode::SoftwareStrobe,
            _ => Mode::HardwareStrobe,
        }
    }

    /// Modes 2 and 3 reload themselves.
    pub const fn periodic(self) -> bool {
        matches!(self, Mode::RateGenerator | Mode::SquareWave)
    }

    /// Modes 0, 2, 3 and 4 count only while the gate is high.
    pub const fn gate_level(self) -> bool {
        !matches!(self, Mode::OneShot | Mode::HardwareStrobe)
    }
}

/// How the data port reads and writes the 16-bit count (control word
/// bits 5:4, not 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// The least significant byte only (the MSB is written as 0).
    Lsb,
    /// The most significant byte only (the LSB is written as 0).
    Msb,
    /// The LSB, then the MSB, tracked by the read and write flip-flops.
    Word,
}

impl Access {
    /// Decodes RW from a kept control word (never the latch command; a 0
    /// there, which no guest can store, counts as [`Access::Word`]).
    pub const fn from_control(control: u8) -> Access {
        match (control >> CW_ACCESS_SHIFT) & CW_ACCESS_MASK {
            ACCESS_LSB => Access::Lsb,
            ACCESS_MSB => Access::Msb,
            _ => Access::Word,
        }
    }
}

/// A counter named by a port or a control word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Counter 0: IRQ 0, gate tied high.
    C0,
    /// Counter 1: output not wired, gate tied high.
    C1,
    /// Counter 2: gate and output through port 0x61.
    C2,
}

impl Channel {
    /// All three, in order.
    pub const ALL: [Channel; 3] = [Channel::C0, Channel::C1, Channel::C2];

    /// The counter an SC field (0-2) names.
    pub const fn from_select(sc: u8) -> Option<Channel> {
        match sc {
            0 => Some(Channel::C0),
            1 => Some(Channel::C1),
            2 => Some(Channel::C2),
            _ => None,
        }
    }

    /// The counter a data port belongs to.
    pub const fn from_port(port: u16) -> Option<Channel> {
        match port {
            PORT_COUNTER0 => Some(Channel::C0),
            PORT_COUNTER1 => Some(Channel::C1),
            PORT_COUNTER2 => Some(Channel::C2),
            _ => None,
        }
    }

    /// The counter's read-back select bit.
    pub const fn readback_bit(self) -> u8 {
        match self {
            Channel::C0 => RB_COUNTER0,
            Channel::C1 => RB_COUNTER0 << 1,
            Channel::C2 => RB_COUNTER0 << 2,
        }
    }
}

/// A byte written to the control port, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Program a counter: keep RW, M and BCD (bits 5:0).
    Program {
        /// The counter.
        channel: Channel,
        /// Bits 5:0 of the control word.
        control: u8,
    },
    /// Counter latch command (RW = 0): latch the count.
    Latch {
        /// The counter.
        channel: Channel,
    },
    /// Read-back: latch the count and/or status of the selected counters.
    ReadBack {
        /// Latch the counts (bit 5 clear).
        count: bool,
        /// Latch the statuses (bit 4 clear).
        status: bool,
        /// Selected counters: bits 3:1 of the command.
        select: u8,
    },
}

impl Command {
    /// Decodes any byte: every one is some command.
    pub const fn decode(byte: u8) -> Command {
        let sc = byte >> CW_SELECT_SHIFT;
        let channel = match Channel::from_select(sc) {
            Some(c) => c,
            None => {
                return Command::ReadBack {
                    count: byte & RB_NO_COUNT == 0,
                    status: byte & RB_NO_STATUS == 0,
                    select: byte & RB_SELECT_MASK,
                }
            }
        };
        if (byte >> CW_ACCESS_SHIFT) & CW_ACCESS_MASK == ACCESS_LATCH {
            Command::Latch { channel }
        } else {
            Command::Program { channel, control: byte & CW_PROGRAM_MASK }
        }
    }
}

/// Four BCD digits as a number; a nibble above 9 weighs what it says
/// (0xA in the units is 10), and the sum is taken modulo 10^4. The
/// datasheet leaves such counts undefined.
pub const fn bcd_to_number(raw: u16) -> u32 {
    let d = raw as u32;
    ((d >> 12) * 1000 + ((d >> 8) & 0xf) * 100 + ((d >> 4) & 0xf) * 10 + (d & 0xf)) % BCD_MODULUS
}

/// A number below 10^4 (taken modulo 10^4 otherwise) as four BCD digits.
pub const fn number_to_bcd(n: u32) -> u16 {
    let n = n % BCD_MODULUS;
    ((n / 1000) << 12 | (n / 100 % 10) << 8 | (n / 10 % 10) << 4 | (n % 10)) as u16
}
