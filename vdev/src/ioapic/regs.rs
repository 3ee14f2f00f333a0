// SPDX-License-Identifier: GPL-2.0

//! The I/O APIC's register layout: the two directly addressed registers
//! of its page, the indirect register indices behind them, the
//! redirection-table entry's fields, and the MSI form a delivery takes.
//!
//! Sources: Intel 82093AA I/O APIC datasheet (order no. 290566),
//! sections "Register Description" (IOREGSEL, IOWIN, IOAPICID, IOAPICVER,
//! IOAPICARB, IOREDTBL); Intel SDM vol. 3A, "Message Signalled
//! Interrupts" (address and data layout).

use super::super::common::Msi;

/// Input pins, one redirection-table entry each.
pub const PINS: usize = 24;
/// Every pin's bit in a pin bitmask (bits 23:0).
pub const ALL_PINS: u32 = (1 << PINS) - 1;

/// Where the page sits on a PC (the MADT/MP table must say the same).
pub const DEFAULT_BASE: u64 = 0xfec0_0000;
/// Size of the MMIO page.
pub const MMIO_SIZE: u64 = 0x1000;

/// Page offset of IOREGSEL, the register-select (index) register. Bits
/// 7:0 are the index; bits 31:8 are reserved (read 0, writes dropped).
pub const IOREGSEL: u64 = 0x00;
/// Page offset of IOWIN, the 32-bit window onto the selected register.
pub const IOWIN: u64 = 0x10;
/// Width in bytes of IOREGSEL and of IOWIN.
pub const WINDOW_BYTES: u64 = 4;

/// Index of IOAPICID, the identification register.
pub const REG_ID: u8 = 0x00;
/// Index of IOAPICVER, the version register (read-only).
pub const REG_VERSION: u8 = 0x01;
/// Index of IOAPICARB, the arbitration register (read-only).
pub const REG_ARBITRATION: u8 = 0x02;
/// Index of redirection entry 0's low half; entry n's low half is at
/// `REG_RTE_BASE + 2n`, its high half at `REG_RTE_BASE + 2n + 1`.
pub const REG_RTE_BASE: u8 = 0x10;

/// IOAPICID bits 27:24: the APIC ID. The other bits are reserved.
pub const ID_MASK: u32 = 0x0f00_0000;
/// Position of the ID in IOAPICID and IOAPICARB.
pub const ID_SHIFT: u32 = 24;
/// Largest APIC ID the 4-bit field holds.
pub const ID_MAX: u8 = 0x0f;

/// IOAPICVER bits 7:0: the implementation's version, that of the 82093AA.
/// Version 0x11 has no directed-EOI register (0x20 and later put one at
/// page offset 0x40); like KVM's and bhyve's, this I/O APIC is told of an
/// EOI only by the local APICs' EOI broadcast ([`super::Ioapic::eoi`]).
pub const VERSION: u32 = 0x11;
/// IOAPICVER bits 23:16: the highest redirection-entry index.
pub const VERSION_MAX_RTE_SHIFT: u32 = 16;
/// IOAPICVER as the guest reads it: 0x0017_0011.
pub const VERSION_REG: u32 = ((PINS as u32 - 1) << VERSION_MAX_RTE_SHIFT) | VERSION;

/// RTE bits 7:0: the vector.
pub const RTE_VECTOR: u64 = 0xff;
/// RTE bits 10:8: the delivery mode ([`DeliveryMode`]).
pub const RTE_DELIVERY_MODE: u64 = 0x7 << RTE_DELIVERY_MODE_SHIFT;
/// Position of the delivery mode.
pub const RTE_DELIVERY_MODE_SHIFT: u32 = 8;
/// RTE bit 11: logical destination mode (0: physical).
pub const RTE_DEST_LOGICAL: u64 = 1 << 11;
/// RTE bit 12: delivery status (read-only). Delivery is instantaneous
/// here, so it always reads 0 (idle), never 1 (send pending).
pub const RTE_DELIVERY_STATUS: u64 = 1 << 12;
/// RTE bit 13: the input is active low (0: active high). Stored and read
/// back; it does not change delivery (see [`super::Ioapic::set_pin`]).
pub const RTE_ACTIVE_LOW: u64 = 1 << 13;
/// RTE bit 14: remote IRR (read-only). Set when a level-triggered
/// interrupt is sent; cleared by the EOI of its vector, or by making the
/// entry edge-triggered.
pub const RTE_REMOTE_IRR: u64 = 1 << 14;
/// RTE bit 15: level-triggered (0: edge).
pub const RTE_LEVEL: u64 = 1 << 15;
/// RTE bit 16: masked.
pub const RTE_MASKED: u64 = 1 << 16;
/// RTE bits 55:48: extended destination ID. Reserved on the 82093AA;
/// kept here, as QEMU does, for guests that use the "extended destination
/// ID" convention (Linux puts destination bits 14:8 in bits 55:49 when
/// the hypervisor advertises it). It goes to MSI address bits 11:4.
pub const RTE_EXT_DEST: u64 = 0xff << RTE_EXT_DEST_SHIFT;
/// Position of the extended destination ID.
pub const RTE_EXT_DEST_SHIFT: u32 = 48;
/// RTE bits 63:56: the destination (an APIC ID in physical mode, a set
/// of processors in logical mode). The 82093AA decodes only bits 59:56 in
/// physical mode; like KVM and bhyve this model passes all eight on.
pub const RTE_DEST: u64 = 0xff << RTE_DEST_SHIFT;
/// Position of the destination.
pub const RTE_DEST_SHIFT: u32 = 56;

/// Bits software sets in an entry. Bits 47:17 are reserved: they read 0
/// and writes to them are dropped.
pub const RTE_WRITABLE: u64 = RTE_VECTOR
    | RTE_DELIVERY_MODE
    | RTE_DEST_LOGICAL
    | RTE_ACTIVE_LOW
    | RTE_LEVEL
    | RTE_MASKED
    | RTE_EXT_DEST
    | RTE_DEST;
/// Bits the I/O APIC keeps, which a write leaves alone.
pub const RTE_READ_ONLY: u64 = RTE_DELIVERY_STATUS | RTE_REMOTE_IRR;
/// An entry after reset: masked, everything else 0 (the datasheet sets
/// only the mask; KVM and bhyve clear the rest, as here).
pub const RTE_RESET: u64 = RTE_MASKED;

/// MSI address bits 31:20 of every interrupt message.
pub const MSI_ADDR_BASE: u64 = 0xfee0_0000;
/// MSI address bits 19:12: destination ID.
pub const MSI_ADDR_DEST_SHIFT: u32 = 12;
/// MSI address bits 11:4: extended destination ID (see [`RTE_EXT_DEST`]).
pub const MSI_ADDR_EXT_DEST_SHIFT: u32 = 4;
/// MSI address bit 2: logical destination mode.
pub const MSI_ADDR_LOGICAL: u64 = 1 << 2;
/// MSI data bits 10:8: delivery mode.
pub const MSI_DATA_MODE_SHIFT: u32 = 8;
/// MSI data bit 14: assert (always set by the I/O APIC).
pub const MSI_DATA_ASSERT: u32 = 1 << 14;
/// MSI data bit 15: level-triggered.
pub const MSI_DATA_LEVEL: u32 = 1 << 15;

/// What an indirect register index (IOREGSEL bits 7:0) selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    /// IOAPICID: bits 27:24 read and write, the rest read 0.
    Id,
    /// IOAPICVER: reads [`VERSION_REG`]; writes are dropped.
    Version,
    /// IOAPICARB: reads the ID in bits 27:24 (the arbitration ID is
    /// loaded from it); writes are dropped.
    Arbitration,
    /// Bits 31:0 of a pin's redirection entry.
    RteLow(u8),
    /// Bits 63:32 of a pin's redirection entry.
    RteHigh(u8),
    /// Nothing (0x03-0x0f, 0x40-0xff): reads 0, writes are dropped.
    Unused,
}

impl Reg {
    /// Decodes an index.
    pub const fn decode(index: u8) -> Reg {
        match index {
            REG_ID => Reg::Id,
            REG_VERSION => Reg::Version,
            REG_ARBITRATION => Reg::Arbitration,
            _ => {
                let Some(rel) = index.checked_sub(REG_RTE_BASE) else {
                    return Reg::Unused;
                };
                let pin = rel / 2;
                if pin as usize >= PINS {
                    Reg::Unused
                } else if rel % 2 == 0 {
                    Reg::RteLow(pin)
                } else {
                    Reg::RteHigh(pin)
                }
            }
        }
    }
}

/// Delivery mode, RTE bits 10:8 (and MSI data bits 10:8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// 000: the vector, to every destination.
    Fixed = 0,
    /// 001: the vector, to the lowest-priority destination.
    LowestPriority = 1,
    /// 010: an SMI (the vector is ignored; the datasheet asks for edge).
    Smi = 2,
    /// 011: reserved; the local APICs drop such a message.
    Reserved3 = 3,
    /// 100: an NMI (edge only, by the datasheet).
    Nmi = 4,
    /// 101: INIT (edge only, by the datasheet).
    Init = 5,
    /// 110: reserved; the local APICs drop such a message.
    Reserved6 = 6,
    /// 111: ExtINT: the vector comes from an 8259 (edge only).
    ExtInt = 7,
}

impl DeliveryMode {
    /// The mode encoded in the low three bits of `bits`.
    pub const fn from_bits(bits: u64) -> DeliveryMode {
        match bits & 7 {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            3 => DeliveryMode::Reserved3,
            4 => DeliveryMode::Nmi,
            5 => DeliveryMode::Init,
            6 => DeliveryMode::Reserved6,
            _ => DeliveryMode::ExtInt,
        }
    }
}

/// Destination mode, RTE bit 11.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DestMode {
    /// The destination is an APIC ID.
    Physical,
    /// The destination is matched against each APIC's logical ID.
    Logical,
}

/// Trigger mode, RTE bit 15.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A rising edge of the line sends one interrupt.
    Edge,
    /// An asserted line sends an interrupt whenever remote IRR is clear.
    Level,
}

/// Input polarity, RTE bit 13.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// The line is asserted when high.
    ActiveHigh,
    /// The line is asserted when low.
    ActiveLow,
}

/// One redirection-table entry, as the guest reads it (reserved bits and
/// delivery status 0). Only an [`super::Ioapic`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rte(u64);

impl Rte {
    /// The entry after reset: masked.
    pub const RESET: Rte = Rte(RTE_RESET);

    /// `bits` without reserved bits or delivery status. Crate-private:
    /// every `Rte` holds only [`RTE_WRITABLE`] and [`RTE_REMOTE_IRR`].
    pub(crate) const fn from_bits_truncate(bits: u64) -> Rte {
        Rte(bits & (RTE_WRITABLE | RTE_REMOTE_IRR))
    }

    /// All 64 bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The vector.
    pub const fn vector(self) -> u8 {
        (self.0 & RTE_VECTOR) as u8
    }

    /// The delivery mode.
    pub const fn delivery_mode(self) -> DeliveryMode {
        DeliveryMode::from_bits(self.0 >> RTE_DELIVERY_MODE_SHIFT)
    }

    /// The destination mode.
    pub const fn dest_mode(self) -> DestMode {
        if self.0 & RTE_DEST_LOGICAL != 0 {
            DestMode::Logical
        } else {
            DestMode::Physical
        }
    }

    /// The input polarity.
    pub const fn polarity(self) -> Polarity {
        if self.0 & RTE_ACTIVE_LOW != 0 {
            Polarity::ActiveLow
        } else {
            Polarity::ActiveHigh
        }
    }

    /// The trigger mode.
    pub const fn trigger(self) -> Trigger {
        if self.0 & RTE_LEVEL != 0 {
            Trigger::Level
        } else {
            Trigger::Edge
        }
    }

    /// Whether it is level-triggered.
    pub const fn is_level(self) -> bool {
        self.0 & RTE_LEVEL != 0
    }

    /// Whether it is masked.
    pub const fn is_masked(self) -> bool {
        self.0 & RTE_MASKED != 0
    }

    /// Remote IRR: a level-triggered interrupt was sent and its EOI has
    /// not come back.
    pub const fn remote_irr(self) -> bool {
        self.0 & RTE_REMOTE_IRR != 0
    }

    /// The destination, bits 63:56.
    pub const fn dest(self) -> u8 {
        (self.0 >> RTE_DEST_SHIFT) as u8
    }

    /// The extended destination ID, bits 55:48.
    pub const fn ext_dest(self) -> u8 {
        ((self.0 & RTE_EXT_DEST) >> RTE_EXT_DEST_SHIFT) as u8
    }

    /// The message this entry sends: address 0xFEE0_0000 | destination
    /// << 12 | extended destination << 4 | logical << 2; data vector |
    /// delivery mode << 8 | assert (bit 14, always) | level << 15.
    pub const fn msi(self) -> Msi {
        let mut addr = MSI_ADDR_BASE
            | (self.dest() as u64) << MSI_ADDR_DEST_SHIFT
            | (self.ext_dest() as u64) << MSI_ADDR_EXT_DEST_SHIFT;
        if self.0 & RTE_DEST_LOGICAL != 0 {
            addr |= MSI_ADDR_LOGICAL;
        }
        let mut data = self.vector() as u32
            | (self.delivery_mode() as u32) << MSI_DATA_MODE_SHIFT
            | MSI_DATA_ASSERT;
        if self.is_level() {
            data |= MSI_DATA_LEVEL;
        }
        Msi { addr, data }
    }

    /// This entry with `set` bits set and `clear` bits cleared (within
    /// the bits an `Rte` holds).
    pub(crate) const fn with(self, set: u64, clear: u64) -> Rte {
        Rte::from_bits_truncate((self.0 & !clear) | set)
    }
}
