// SPDX-License-Identifier: GPL-2.0

//! Host tests of the I/O APIC against the Intel 82093AA datasheet
//! (sections "IOREGSEL", "IOWIN", "IOAPICID", "IOAPICVER", "IOAPICARB",
//! "IOREDTBL[23:0]") and the documented choices of the module. Expected
//! values are written out by hand.

use super::super::common::{ImportError, LineOp, Msi};
use super::regs::*;
use super::*;

/// Page offsets of the two window registers (datasheet: FEC0_xx00h and
/// FEC0_xx10h).
const SEL: u64 = 0x00;
const WIN: u64 = 0x10;

/// A 32-bit write of `value` to indirect register `index`.
fn wr(io: &mut Ioapic, index: u8, value: u32) -> Effects {
    assert!(io.write(SEL, 4, u64::from(index)).is_empty());
    io.write(WIN, 4, u64::from(value))
}

/// A 32-bit read of indirect register `index`.
fn rd(io: &mut Ioapic, index: u8) -> u32 {
    assert!(io.write(SEL, 4, u64::from(index)).is_empty());
    io.read(WIN, 4) as u32
}

/// Index of `pin`'s low half.
fn low(pin: u8) -> u8 {
    REG_RTE_BASE + 2 * pin
}

/// Programs a whole entry the way Linux does (high half, then low half);
/// returns the pins that sent during either write.
fn program(io: &mut Ioapic, pin: u8, rte: u64) -> u32 {
    let hi = wr(io, low(pin) + 1, (rte >> 32) as u32);
    let lo = wr(io, low(pin), rte as u32);
    hi.pins() | lo.pins()
}

/// The full entry of `pin`, as the guest reads it.
fn entry(io: &mut Ioapic, pin: u8) -> u64 {
    u64::from(rd(io, low(pin) + 1)) << 32 | u64::from(rd(io, low(pin)))
}

/// One row of the indirect register map.
struct Row {
    first: u8,
    last: u8,
    /// 1, or 2 for the interleaved RTE halves.
    step: u8,
    name: &'static str,
    /// After power-up.
    reset: u32,
    /// After writing 0xffff_ffff to it (on a fresh device).
    ones: u32,
}

/// Datasheet register map: IOAPICID (R/W, ID in 27:24), IOAPICVER (RO,
/// max redirection entry 23:16 = 0x17, version 7:0 = 0x11), IOAPICARB
/// (RO, arbitration ID in 27:24), IOREDTBL (mask set on reset; bits 12
/// and 14 RO; 47:17 reserved here, 55:48 kept as extended destination),
/// and nothing elsewhere.
const MAP: [Row; 7] = [
    row(0x00, 0x00, 1, "IOAPICID", 0, 0x0f00_0000),
    row(0x01, 0x01, 1, "IOAPICVER", 0x0017_0011, 0x0017_0011),
    row(0x02, 0x02, 1, "IOAPICARB", 0, 0),
    row(0x03, 0x0f, 1, "unused", 0, 0),
    row(0x10, 0x3e, 2, "IOREDTBL low", 0x0001_0000, 0x0001_afff),
    row(0x11, 0x3f, 2, "IOREDTBL high", 0, 0xffff_0000),
    row(0x40, 0xff, 1, "unused", 0, 0),
];

const fn row(first: u8, last: u8, step: u8, name: &'static str, reset: u32, ones: u32) -> Row {
    Row { first, last, step, name, reset, ones }
}

fn row_of(index: u8) -> &'static Row {
    let mut found = MAP
        .iter()
        .filter(|r| index >= r.first && index <= r.last && (index - r.first) % r.step == 0);
    let row = found.next().expect("every index is in the map");
    assert!(found.next().is_none(), "index {index:#x} is in the map twice");
    row
}

#[test]
fn every_register_index_per_datasheet() {
    for index in 0..=255u8 {
        let row = row_of(index);
        let mut io = Ioapic::new();
        assert_eq!(rd(&mut io, index), row.reset, "{} {index:#x} reset", row.name);
        assert!(wr(&mut io, index, u32::MAX).is_empty(), "{} {index:#x}", row.name);
        assert_eq!(rd(&mut io, index), row.ones, "{} {index:#x} after ones", row.name);
        assert!(wr(&mut io, index, 0).is_empty());
        let zero = if row.name == "IOAPICVER" { VERSION_REG } else { 0 };
        assert_eq!(rd(&mut io, index), zero, "{} {index:#x} after zero", row.name);
        // Only the register written changed.
        for other in (0..=255u8).filter(|&o| o != index && o != REG_ARBITRATION) {
            assert_eq!(rd(&mut io, other), row_of(other).reset, "{index:#x} wrote {other:#x}");
        }
    }
}

#[test]
fn version_register_value() {
    // 82093AA: version 0x11, maximum redirection entry 23.
    assert_eq!(VERSION_REG, 0x0017_0011);
    assert_eq!(Ioapic::new().read_reg(REG_VERSION), 0x0017_0011);
}

#[test]
fn arbitration_reads_the_id_and_ignores_writes() {
    let mut io = Ioapic::new();
    // Reserved bits of IOAPICID are dropped; the ID shows in IOAPICARB.
    assert!(wr(&mut io, REG_ID, 0xf5ff_ffff).is_empty());
    assert_eq!(rd(&mut io, REG_ID), 0x0500_0000);
    assert_eq!(rd(&mut io, REG_ARBITRATION), 0x0500_0000);
    assert_eq!(io.id(), 5);
    assert!(wr(&mut io, REG_ARBITRATION, 0x0a00_0000).is_empty());
    assert_eq!(rd(&mut io, REG_ARBITRATION), 0x0500_0000);
    assert_eq!(io.id(), 5);
}

#[test]
fn register_index_decoding() {
    let table = [
        (0x00, Reg::Id),
        (0x01, Reg::Version),
        (0x02, Reg::Arbitration),
        (0x03, Reg::Unused),
        (0x0f, Reg::Unused),
        (0x10, Reg::RteLow(0)),
        (0x11, Reg::RteHigh(0)),
        (0x12, Reg::RteLow(1)),
        (0x3e, Reg::RteLow(23)),
        (0x3f, Reg::RteHigh(23)),
        (0x40, Reg::Unused),
        (0xff, Reg::Unused),
    ];
    for (index, reg) in table {
        assert_eq!(Reg::decode(index), reg, "{index:#x}");
    }
}

/// RTE 0 = 0xab00_0000_0001_0931 (masked, lowest priority, logical,
/// vector 0x31, destination 0xab), IOREGSEL = 0x10.
fn window_fixture() -> Ioapic {
    let mut io = Ioapic::new();
    assert_eq!(program(&mut io, 0, 0xab00_0000_0001_0931), 0);
    assert!(io.write(SEL, 4, 0x10).is_empty());
    io
}

#[test]
fn mmio_reads_by_offset_and_size() {
    let io = window_fixture();
    let table: [(u64, u8, u64); 30] = [
        // IOREGSEL: bits 7:0, the rest read 0.
        (0x00, 4, 0x10),
        (0x00, 1, 0x10),
        (0x00, 2, 0x10),
        (0x01, 1, 0),
        (0x00, 8, 0x10),
        // IOWIN: the selected register, any byte lanes.
        (0x10, 4, 0x0001_0931),
        (0x10, 1, 0x31),
        (0x11, 1, 0x09),
        (0x12, 1, 0x01),
        (0x13, 1, 0x00),
        (0x10, 2, 0x0931),
        (0x11, 2, 0x0109),
        (0x12, 2, 0x0001),
        (0x10, 8, 0x0001_0931),
        (0x0e, 4, 0x0931_0000),
        (0x0c, 8, 0x0001_0931_0000_0000),
        (0x12, 8, 0x0001),
        // Nothing else in the page; no aliases.
        (0x04, 4, 0),
        (0x14, 4, 0),
        (0x20, 4, 0),
        (0x40, 4, 0),
        (0xff0, 8, 0),
        (0xfff, 1, 0),
        (0x1000, 4, 0),
        (0x1010, 4, 0),
        (u64::MAX, 8, 0),
        // Sizes other than 1, 2, 4, 8.
        (0x10, 0, 0),
        (0x10, 3, 0),
        (0x10, 16, 0),
        (0x10, 255, 0),
    ];
    for (offset, size, want) in table {
        assert_eq!(io.read(offset, size), want, "read {size} at {offset:#x}");
    }
}

#[test]
fn mmio_writes_by_offset_and_size() {
    // (offset, size, value, IOREGSEL after, RTE 0 after)
    let start = 0xab00_0000_0001_0931u64;
    let table: [(u64, u8, u64, u8, u64); 18] = [
        (0x00, 1, 0x12, 0x12, start),
        (0x01, 1, 0xff, 0x10, start),
        (0x00, 4, 0xffff_ff11, 0x11, start),
        (0x00, 8, 0xdead_beef_0000_0013, 0x13, start),
        (0x10, 1, 0x45, 0x10, 0xab00_0000_0001_0945),
        (0x11, 1, 0x00, 0x10, 0xab00_0000_0001_0031),
        (0x12, 1, 0x00, 0x10, 0xab00_0000_0000_0931),
        // Bit 12 (delivery status) is read-only.
        (0x10, 2, 0x1234, 0x10, 0xab00_0000_0001_0234),
        // Bits 31:17 are reserved.
        (0x13, 1, 0xff, 0x10, start),
        (0x10, 4, 0xffff_0931, 0x10, start),
        // An 8-byte write at IOWIN writes its low 4 bytes there.
        (0x10, 8, 0xffff_ffff_0001_0932, 0x10, 0xab00_0000_0001_0932),
        (0x0c, 8, 0x0001_0933_ffff_ffff, 0x10, 0xab00_0000_0001_0933),
        (0x0c, 4, 0xffff_ffff, 0x10, start),
        (0x14, 4, 0xffff_ffff, 0x10, start),
        (0x1010, 4, 0, 0x10, start),
        (0x10, 3, 0, 0x10, start),
        (0x10, 0, 0, 0x10, start),
        (u64::MAX, 8, 0, 0x10, start),
    ];
    for (offset, size, value, sel, rte) in table {
        let mut io = window_fixture();
        assert!(io.write(offset, size, value).is_empty(), "write {size} at {offset:#x}");
        assert_eq!(io.ioregsel(), sel, "IOREGSEL after {size} at {offset:#x}");
        assert_eq!(io.rte(0).map(Rte::bits), Some(rte), "RTE 0 after {size} at {offset:#x}");
    }
}

#[test]
fn high_half_byte_writes_reach_the_destination() {
    let mut io = window_fixture();
    assert!(io.write(SEL, 1, 0x11).is_empty());
    assert!(io.write(0x13, 1, 0x07).is_empty());
    assert!(io.write(0x12, 1, 0x5a).is_empty());
    // Bits 47:32 are reserved.
    assert!(io.write(0x10, 2, 0xffff).is_empty());
    assert_eq!(io.rte(0).map(Rte::bits), Some(0x075a_0000_0001_0931));
    assert_eq!(io.read(WIN, 4), 0x075a_0000);
}

#[test]
fn no_eoi_register_at_0x40() {
    // Version 0x20 I/O APICs have an EOI register at 0x40; 0x11 has not.
    let mut io = Ioapic::new();
    assert_eq!(program(&mut io, 3, 0x8031), 0);
    assert_eq!(io.set_pin(3, LineOp::Pulse).pins(), 1 << 3);
    assert!(io.write(0x40, 4, 0x31).is_empty());
    assert_eq!(io.rte(3).map(Rte::remote_irr), Some(true));
}

#[test]
fn msi_encoding() {
    // (RTE, MSI address, MSI data) per SDM "Message Signalled Interrupts".
    let table: [(u64, u64, u32); 9] = [
        // Fixed, physical, edge, destination 3, vector 0x30.
        (0x0300_0000_0000_0030, 0xfee0_3000, 0x4030),
        // Polarity and mask do not show.
        (0x0300_0000_0001_2030, 0xfee0_3000, 0x4030),
        // Lowest priority, logical, level, destination 0xff.
        (0xff00_0000_0000_8931, 0xfeef_f004, 0xc131),
        (0x0000_0000_0000_0202, 0xfee0_0000, 0x4202),
        (0x0000_0000_0000_0402, 0xfee0_0000, 0x4402),
        (0x0000_0000_0000_0500, 0xfee0_0000, 0x4500),
        (0x0000_0000_0000_0700, 0xfee0_0000, 0x4700),
        (0x0000_0000_0000_0300, 0xfee0_0000, 0x4300),
        // Extended destination 0xfe to address bits 11:4.
        (0x01fe_0000_0000_0040, 0xfee0_1fe0, 0x4040),
    ];
    for (bits, addr, data) in table {
        assert_eq!(Rte::from_bits_truncate(bits).msi(), Msi { addr, data }, "RTE {bits:#x}");
    }
}

#[test]
fn rte_fields_decode() {
    let r = Rte::from_bits_truncate(0xc1fe_0000_0001_ab42);
    assert_eq!(r.vector(), 0x42);
    assert_eq!(r.delivery_mode(), DeliveryMode::Reserved3);
    assert_eq!(r.dest_mode(), DestMode::Logical);
    assert_eq!(r.polarity(), Polarity::ActiveLow);
    assert_eq!(r.trigger(), Trigger::Level);
    assert!(r.is_masked());
    assert!(!r.remote_irr());
    assert_eq!(r.dest(), 0xc1);
    assert_eq!(r.ext_dest(), 0xfe);
    let modes = [
        DeliveryMode::Fixed,
        DeliveryMode::LowestPriority,
        DeliveryMode::Smi,
        DeliveryMode::Reserved3,
        DeliveryMode::Nmi,
        DeliveryMode::Init,
        DeliveryMode::Reserved6,
        DeliveryMode::ExtInt,
    ];
    for (bits, mode) in (0u64..).zip(modes) {
        assert_eq!(DeliveryMode::from_bits(bits), mode);
        assert_eq!(DeliveryMode::from_bits(bits | 8), mode);
        assert_eq!(mode as u64, bits);
    }
    let e = Rte::from_bits_truncate(0);
    assert_eq!(
        (e.dest_mode(), e.polarity(), e.trigger()),
        (DestMode::Physical, Polarity::ActiveHigh, Trigger::Edge)
    );
}

/// One step of a scenario.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Program a whole entry.
    Rte(u8, u64),
    /// Write an entry's low half.
    Low(u8, u32),
    Pin(u8, LineOp),
    Eoi(u8),
}
use LineOp::{Assert, Deassert, Pulse};
use Step::{Eoi, Low, Pin};

/// Edge-triggered, unmasked, vector 0x30.
const EDGE: u64 = 0x30;
/// Level-triggered, unmasked, vector 0x31.
const LEVEL: u64 = 0x8031;
const M: u64 = RTE_MASKED;

/// A scenario: steps with the pins each must send, then the remote IRR
/// bits and line levels it must end with.
struct Case {
    name: &'static str,
    steps: &'static [(Step, u32)],
    remote_irr: u32,
    lines: u32,
}

const CASES: &[Case] = &[
    Case {
        name: "edge: a rising edge sends once",
        steps: &[
            (Step::Rte(1, EDGE), 0),
            (Pin(1, Assert), 1 << 1),
            (Pin(1, Assert), 0),
            (Pin(1, Deassert), 0),
            (Pin(1, Assert), 1 << 1),
            (Pin(1, Pulse), 0),
            (Pin(1, Pulse), 1 << 1),
            (Pin(1, Pulse), 1 << 1),
            (Eoi(0x30), 0),
        ],
        remote_irr: 0,
        lines: 0,
    },
    Case {
        name: "edge: masked edges are lost; unmasking sends nothing",
        steps: &[
            (Step::Rte(1, EDGE | M), 0),
            (Pin(1, Assert), 0),
            (Pin(1, Pulse), 0),
            (Pin(1, Assert), 0),
            (Low(1, EDGE as u32), 0),
            (Pin(1, Deassert), 0),
            (Pin(1, Pulse), 1 << 1),
        ],
        remote_irr: 0,
        lines: 0,
    },
    Case {
        name: "level: sends and sets remote IRR; EOI resends while asserted",
        steps: &[
            (Step::Rte(2, LEVEL), 0),
            (Pin(2, Assert), 1 << 2),
            (Pin(2, Assert), 0),
            (Eoi(0x30), 0),
            (Eoi(0x31), 1 << 2),
            (Pin(2, Deassert), 0),
            (Eoi(0x31), 0),
            (Eoi(0x31), 0),
        ],
        remote_irr: 0,
        lines: 0,
    },
    Case {
        name: "level: a pulse sends once until EOI",
        steps: &[
            (Step::Rte(2, LEVEL), 0),
            (Pin(2, Pulse), 1 << 2),
            (Pin(2, Pulse), 0),
            (Eoi(0x31), 0),
            (Pin(2, Pulse), 1 << 2),
        ],
        remote_irr: 1 << 2,
        lines: 0,
    },
    Case {
        name: "level: masked, then unmasked while asserted, sends",
        steps: &[(Step::Rte(2, LEVEL | M), 0), (Pin(2, Assert), 0), (Low(2, LEVEL as u32), 1 << 2)],
        remote_irr: 1 << 2,
        lines: 1 << 2,
    },
    Case {
        name: "level: masked while in service keeps remote IRR until EOI",
        steps: &[
            (Step::Rte(2, LEVEL), 0),
            (Pin(2, Assert), 1 << 2),
            (Low(2, (LEVEL | M) as u32), 0),
            (Eoi(0x31), 0),
            (Low(2, LEVEL as u32), 1 << 2),
        ],
        remote_irr: 1 << 2,
        lines: 1 << 2,
    },
    Case {
        name: "level: masked, asserted and dropped before unmask: nothing",
        steps: &[
            (Step::Rte(2, LEVEL | M), 0),
            (Pin(2, Assert), 0),
            (Pin(2, Deassert), 0),
            (Low(2, LEVEL as u32), 0),
        ],
        remote_irr: 0,
        lines: 0,
    },
    Case {
        name: "level: edge mode clears remote IRR; level again resends if asserted",
        steps: &[
            (Step::Rte(2, LEVEL), 0),
            (Pin(2, Assert), 1 << 2),
            (Low(2, 0x31), 0),
            (Eoi(0x31), 0),
            (Low(2, LEVEL as u32), 1 << 2),
        ],
        remote_irr: 1 << 2,
        lines: 1 << 2,
    },
    Case {
        name: "remote IRR is read-only",
        steps: &[
            (Step::Rte(2, LEVEL), 0),
            (Pin(2, Assert), 1 << 2),
            // Writing bit 14 as 0 keeps it set.
            (Low(2, LEVEL as u32), 0),
            // Writing it as 1 does not set it.
            (Step::Rte(3, LEVEL | RTE_REMOTE_IRR), 0),
        ],
        remote_irr: 1 << 2,
        lines: 1 << 2,
    },
    Case {
        name: "EOI: each level pin with the vector, resending the asserted ones",
        steps: &[
            (Step::Rte(4, LEVEL), 0),
            (Step::Rte(5, LEVEL), 0),
            (Step::Rte(6, LEVEL), 0),
            (Step::Rte(7, 0x8032), 0),
            (Step::Rte(8, EDGE | 0x01), 0),
            (Pin(4, Assert), 1 << 4),
            (Pin(5, Assert), 1 << 5),
            (Pin(6, Pulse), 1 << 6),
            (Pin(7, Assert), 1 << 7),
            (Pin(8, Assert), 1 << 8),
            (Eoi(0x31), 1 << 4 | 1 << 5),
        ],
        remote_irr: 1 << 4 | 1 << 5 | 1 << 7,
        lines: 1 << 4 | 1 << 5 | 1 << 7 | 1 << 8,
    },
    Case {
        name: "level: a new vector while in service: the new vector's EOI ends it",
        steps: &[
            (Step::Rte(2, LEVEL), 0),
            (Pin(2, Assert), 1 << 2),
            (Low(2, 0x8040), 0),
            (Eoi(0x31), 0),
            (Eoi(0x40), 1 << 2),
        ],
        remote_irr: 1 << 2,
        lines: 1 << 2,
    },
    Case {
        name: "edge to level while asserted and unmasked sends",
        steps: &[(Step::Rte(9, EDGE), 0), (Pin(9, Assert), 1 << 9), (Low(9, LEVEL as u32), 1 << 9)],
        remote_irr: 1 << 9,
        lines: 1 << 9,
    },
    Case {
        name: "polarity is stored, not applied",
        steps: &[
            (Step::Rte(1, EDGE | RTE_ACTIVE_LOW), 0),
            (Step::Rte(2, LEVEL | RTE_ACTIVE_LOW), 0),
            (Pin(1, Assert), 1 << 1),
            (Pin(1, Deassert), 0),
            (Pin(2, Assert), 1 << 2),
        ],
        remote_irr: 1 << 2,
        lines: 1 << 2,
    },
    Case {
        name: "pins 24 and up do nothing",
        steps: &[
            (Pin(24, Assert), 0),
            (Pin(31, Assert), 0),
            (Pin(32, Pulse), 0),
            (Pin(255, Assert), 0),
            (Pin(24, Deassert), 0),
        ],
        remote_irr: 0,
        lines: 0,
    },
    Case {
        name: "pin 23, the last, works",
        steps: &[(Step::Rte(23, LEVEL), 0), (Pin(23, Assert), 1 << 23), (Eoi(0x31), 1 << 23)],
        remote_irr: 1 << 23,
        lines: 1 << 23,
    },
];

#[test]
fn scenarios() {
    for case in CASES {
        let mut io = Ioapic::new();
        for (i, &(step, want)) in case.steps.iter().enumerate() {
            let got = match step {
                Step::Rte(pin, rte) => program(&mut io, pin, rte),
                Low(pin, value) => wr(&mut io, low(pin), value).pins(),
                Pin(pin, op) => io.set_pin(pin, op).pins(),
                Eoi(vector) => io.eoi(vector).pins(),
            };
            assert_eq!(got, want, "{}: step {i} {step:?}", case.name);
            assert!(io.invariants_hold(), "{}: step {i}", case.name);
        }
        let rirr = (0..PINS as u8)
            .filter(|&p| io.rte(p).is_some_and(Rte::remote_irr))
            .fold(0, |m, p| m | 1 << p);
        assert_eq!(rirr, case.remote_irr, "{}: remote IRR", case.name);
        assert_eq!(io.lines(), case.lines, "{}: lines", case.name);
        for pin in 0..PINS as u8 {
            // Remote IRR reads back in bit 14.
            let bit = u32::from(case.remote_irr & 1 << pin != 0) << 14;
            assert_eq!(rd(&mut io, low(pin)) & (1 << 14), bit, "{}: pin {pin}", case.name);
        }
    }
}

#[test]
fn delivered_message_is_the_entry() {
    let mut io = Ioapic::new();
    // Lowest priority, logical, level, vector 0x59, destination 0x0f.
    assert_eq!(program(&mut io, 9, 0x0f00_0000_0000_8959), 0);
    let fx = io.set_pin(9, Assert);
    let want = Msi { addr: 0xfee0_f004, data: 0xc159 };
    let mut it = fx.iter();
    assert_eq!((it.next(), it.next()), (Some((9, want)), None));
    assert_eq!(fx.msi(9), Some(want));
    // The effects are a copy: reprogramming does not change them.
    assert_eq!(wr(&mut io, low(9), 0x0001_8960).pins(), 0);
    assert_eq!(fx.msi(9), Some(want));
    assert_eq!(fx.msi(8), None);
    assert_eq!(fx.msi(24), None);
    assert_eq!(fx.len(), 1);
}

#[test]
fn eoi_messages_come_in_pin_order() {
    let mut io = Ioapic::new();
    for (pin, dest) in [(3u8, 0x03u64), (17, 0x11), (0, 0x00), (22, 0x16)] {
        assert_eq!(program(&mut io, pin, dest << 56 | LEVEL), 0);
        assert_eq!(io.set_pin(pin, Assert).pins(), 1 << pin);
    }
    let fx = io.eoi(0x31);
    assert_eq!(fx.len(), 4);
    let mut it = fx.iter();
    assert_eq!(it.size_hint(), (4, Some(4)));
    for (pin, dest) in [(0u8, 0u64), (3, 3), (17, 0x11), (22, 0x16)] {
        let msi = Msi { addr: 0xfee0_0000 | dest << 12, data: 0xc031 };
        assert_eq!(it.next(), Some((pin, msi)));
    }
    assert_eq!(it.next(), None);
    assert_eq!((&fx).into_iter().count(), 4);
}

#[test]
fn effects_none() {
    let fx = Effects::NONE;
    assert!(fx.is_empty());
    assert_eq!((fx.len(), fx.pins()), (0, 0));
    assert_eq!(fx.iter().next(), None);
    assert_eq!(fx.msi(0), None);
}

#[test]
fn level_vectors_lists_level_entries() {
    let mut io = Ioapic::new();
    assert_eq!(io.level_vectors(), [0; 4]);
    assert_eq!(program(&mut io, 0, LEVEL | M), 0);
    assert_eq!(program(&mut io, 1, 0x80c1), 0);
    assert_eq!(program(&mut io, 2, 0x00ff), 0);
    assert_eq!(io.level_vectors(), [1 << 0x31, 0, 0, 1 << (0xc1 - 192)]);
}

#[test]
fn reset_restores_power_up_state_but_keeps_lines() {
    let mut io = Ioapic::new();
    assert!(wr(&mut io, REG_ID, 0x0300_0000).is_empty());
    assert_eq!(program(&mut io, 5, LEVEL), 0);
    assert_eq!(io.set_pin(5, Assert).pins(), 1 << 5);
    assert!(io.write(SEL, 4, 0x2a).is_empty());
    io.reset();
    assert_eq!((io.id(), io.ioregsel(), io.lines()), (0, 0, 1 << 5));
    for pin in 0..PINS as u8 {
        assert_eq!(entry(&mut io, pin), 0x0001_0000, "pin {pin}");
    }
    assert!(io.invariants_hold());
    // The device still asserts: unmasking a level entry sends.
    assert_eq!(program(&mut io, 5, LEVEL), 1 << 5);
    assert_eq!(Ioapic::default(), Ioapic::new());
}

/// ID 7, IOREGSEL 0x23, pin 2 level in service with its line high, pin 4
/// level masked with its line high, pin 6 edge.
fn busy() -> Ioapic {
    let mut io = Ioapic::new();
    assert!(wr(&mut io, REG_ID, 0x0700_0000).is_empty());
    assert_eq!(program(&mut io, 2, 0x0100_0000_0000_8031), 0);
    assert_eq!(program(&mut io, 4, LEVEL | M), 0);
    assert_eq!(program(&mut io, 6, EDGE), 0);
    assert_eq!(io.set_pin(2, Assert).pins(), 1 << 2);
    assert_eq!(io.set_pin(4, Assert).pins(), 0);
    assert!(io.write(SEL, 4, 0x23).is_empty());
    io
}

#[test]
fn snapshot_holds_everything_and_restores_exactly() {
    let io = busy();
    let snap = io.snapshot();
    let mut rte = [RTE_RESET; PINS];
    rte[2] = 0x0100_0000_0000_c031;
    rte[4] = 0x0001_8031;
    rte[6] = 0x30;
    let want = Snapshot { version: 1, id: 7, ioregsel: 0x23, rte, lines: 1 << 2 | 1 << 4 };
    assert_eq!(snap, want);
    let mut copy = Ioapic::new();
    assert_eq!(copy.restore(&snap), Ok(()));
    assert_eq!(copy, io);
    assert_eq!(copy.snapshot(), snap);
    // And it behaves the same: EOI resends pin 2.
    let (mut a, mut b) = (io, copy);
    let fx = a.eoi(0x31);
    assert_eq!(fx.pins(), 1 << 2);
    assert_eq!(b.eoi(0x31), fx);
    assert_eq!(a, b);
}

#[test]
fn restore_refuses_unreachable_states_and_changes_nothing() {
    type Edit = fn(&mut Snapshot);
    let invalid = |field| Err(ImportError::Invalid { field });
    let table: [(&str, Edit, Result<(), ImportError>); 12] = [
        ("version 2", |s| s.version = 2, Err(ImportError::Version { found: 2 })),
        ("version 0", |s| s.version = 0, Err(ImportError::Version { found: 0 })),
        ("ID 16", |s| s.id = 16, invalid("id")),
        ("ID 255", |s| s.id = 0xff, invalid("id")),
        ("line 24", |s| s.lines |= 1 << 24, invalid("lines")),
        ("line 31", |s| s.lines |= 1 << 31, invalid("lines")),
        ("reserved bit 17", |s| s.rte[0] |= 1 << 17, invalid("rte")),
        ("reserved bit 47", |s| s.rte[23] |= 1 << 47, invalid("rte")),
        ("delivery status", |s| s.rte[6] |= RTE_DELIVERY_STATUS, invalid("rte")),
        ("remote IRR on edge", |s| s.rte[6] |= RTE_REMOTE_IRR, invalid("rte.remote_irr")),
        ("level asserted unsent", |s| s.rte[2] &= !RTE_REMOTE_IRR, invalid("rte.remote_irr")),
        ("level unmasked unsent", |s| s.rte[4] &= !RTE_MASKED, invalid("rte.remote_irr")),
    ];
    for (name, edit, want) in table {
        let mut snap = busy().snapshot();
        edit(&mut snap);
        let mut target = Ioapic::new();
        assert_eq!(program(&mut target, 0, EDGE), 0);
        let before = target.clone();
        assert_eq!(target.restore(&snap), want, "{name}");
        assert_eq!(target, before, "{name}: changed");
    }
}

#[test]
fn restore_accepts_reachable_edge_values() {
    type Edit = fn(&mut Snapshot);
    let table: [(&str, Edit); 6] = [
        ("ID 15", |s| s.id = 15),
        ("IOREGSEL 0xff", |s| s.ioregsel = 0xff),
        ("all lines", |s| {
            s.lines = 0x00ff_ffff;
            s.rte[6] = RTE_MASKED | RTE_LEVEL;
        }),
        ("every writable bit", |s| s.rte[9] = RTE_WRITABLE),
        ("remote IRR, line low", |s| s.rte[9] = LEVEL | RTE_REMOTE_IRR),
        ("remote IRR, masked", |s| s.rte[9] = LEVEL | M | RTE_REMOTE_IRR),
    ];
    for (name, edit) in table {
        let mut snap = busy().snapshot();
        edit(&mut snap);
        let mut io = Ioapic::new();
        assert_eq!(io.restore(&snap), Ok(()), "{name}");
        assert_eq!(io.snapshot(), snap, "{name}");
        assert!(io.invariants_hold(), "{name}");
    }
}
