// SPDX-License-Identifier: GPL-2.0

//! The register file's layout: which register lives at which xAPIC offset
//! and which x2APIC MSR, what each mode offers, and the bit masks the
//! access paths apply.
//!
//! Sources: Intel SDM vol. 3A, "Local APIC Register Address Map" and
//! "x2APIC Register Address Space"; AMD APM vol. 2, "APIC Registers".

#[cfg(kernel)]
use crate::x86;
#[cfg(not(kernel))]
use vmm_x86 as x86;

/// The MSRs the model answers, by the names the model uses (defined in
/// `x86::msr`, the one home of MSR numbers).
pub use x86::msr::{
    APIC_BASE as MSR_APIC_BASE, TSC_DEADLINE as MSR_TSC_DEADLINE, X2APIC_FIRST as MSR_X2APIC_FIRST,
    X2APIC_LAST as MSR_X2APIC_LAST,
};

/// `IA32_APIC_BASE` bit 8: this is the bootstrap processor (read-only).
pub const BASE_BSP: u64 = 1 << 8;
/// `IA32_APIC_BASE` bit 10: x2APIC mode (EXTD).
pub const BASE_EXTD: u64 = 1 << 10;
/// `IA32_APIC_BASE` bit 11: the APIC is enabled (EN).
pub const BASE_EN: u64 = 1 << 11;
/// Where the xAPIC page sits after reset.
pub const DEFAULT_BASE: u64 = 0xfee0_0000;
/// Size of the xAPIC MMIO page.
pub const PAGE_SIZE: u64 = 0x1000;

/// One of the seven local vector table entries. The discriminant is the
/// index into the LVT array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lvt {
    /// Corrected machine-check error interrupt (Intel; optional).
    Cmci = 0,
    /// The APIC timer.
    Timer = 1,
    /// Thermal sensor.
    Thermal = 2,
    /// Performance-monitoring counters.
    Perf = 3,
    /// Local interrupt pin 0.
    Lint0 = 4,
    /// Local interrupt pin 1.
    Lint1 = 5,
    /// APIC internal errors (ESR).
    Error = 6,
}

impl Lvt {
    /// All entries, in index order.
    pub const ALL: [Lvt; 7] =
        [Lvt::Cmci, Lvt::Timer, Lvt::Thermal, Lvt::Perf, Lvt::Lint0, Lvt::Lint1, Lvt::Error];

    /// Bits software may set in this entry. The delivery status (bit 12)
    /// and remote IRR (bit 14) are read-only and kept by the model; bit 18
    /// of the timer entry exists only with TSC-deadline support.
    pub const fn writable(self, tsc_deadline: bool) -> u32 {
        match self {
            Lvt::Timer => {
                LVT_VECTOR | LVT_MASKED | (1 << 17) | if tsc_deadline { 1 << 18 } else { 0 }
            }
            Lvt::Error => LVT_VECTOR | LVT_MASKED,
            Lvt::Cmci | Lvt::Thermal | Lvt::Perf => LVT_VECTOR | LVT_MODE | LVT_MASKED,
            Lvt::Lint0 | Lvt::Lint1 => {
                LVT_VECTOR | LVT_MODE | LVT_POLARITY | LVT_LEVEL | LVT_MASKED
            }
        }
    }

    /// Bits that read back but that writes do not set.
    pub const fn read_only(self) -> u32 {
        match self {
            Lvt::Lint0 | Lvt::Lint1 => LVT_STATUS | LVT_REMOTE_IRR,
            _ => LVT_STATUS,
        }
    }
}

/// LVT and ICR vector field.
pub const LVT_VECTOR: u32 = 0xff;
/// LVT delivery-mode field (bits 10:8).
pub const LVT_MODE: u32 = 0x700;
/// LVT delivery status (read-only; always idle in this model).
pub const LVT_STATUS: u32 = 1 << 12;
/// LINT pin polarity.
pub const LVT_POLARITY: u32 = 1 << 13;
/// LINT remote IRR (read-only).
pub const LVT_REMOTE_IRR: u32 = 1 << 14;
/// LINT trigger mode: 1 = level.
pub const LVT_LEVEL: u32 = 1 << 15;
/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT value after reset: masked, everything else zero.
pub const LVT_RESET: u32 = LVT_MASKED;

/// SVR bit 8: APIC software enable.
pub const SVR_ENABLE: u32 = 1 << 8;
/// SVR bit 9: focus processor checking disabled.
pub const SVR_FOCUS: u32 = 1 << 9;
/// SVR bit 12: suppress EOI broadcasts.
pub const SVR_SUPPRESS_EOI: u32 = 1 << 12;
/// SVR after reset: spurious vector 0xff, software-disabled.
pub const SVR_RESET: u32 = 0xff;

/// DFR model bits (31:28); the rest read as ones.
pub const DFR_MODEL: u32 = 0xf000_0000;
/// DFR after reset: flat model.
pub const DFR_RESET: u32 = 0xffff_ffff;

/// Timer divide configuration: bits 0, 1 and 3.
pub const DCR_MASK: u32 = 0b1011;

/// ESR bit 5: the APIC tried to send an illegal vector (0-15).
pub const ESR_SEND_ILLEGAL: u32 = 1 << 5;
/// ESR bit 6: the APIC received or generated an illegal vector.
pub const ESR_RECEIVE_ILLEGAL: u32 = 1 << 6;
/// ESR bit 7: a reserved register was accessed.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;
/// ESR bits this model ever sets.
pub const ESR_MASK: u32 = ESR_SEND_ILLEGAL | ESR_RECEIVE_ILLEGAL | ESR_ILLEGAL_REGISTER;

/// ICR low bits that exist in both modes: vector, delivery mode,
/// destination mode, level, trigger mode and shorthand.
pub const ICR_LOW_MASK: u32 = 0x000c_cfff;
/// The xAPIC ICR high half: destination in bits 31:24.
pub const ICR_HIGH_XAPIC_MASK: u32 = 0xff00_0000;
/// The bits of a 64-bit x2APIC ICR write that are not reserved.
pub const ICR_X2APIC_MASK: u64 = 0xffff_ffff_0000_0000 | ICR_LOW_MASK as u64;

/// Version register value without the max-LVT and EOI-suppression fields:
/// an integrated APIC.
pub const VERSION: u32 = 0x14;

/// A register of the local APIC, independent of how it is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    /// Local APIC ID.
    Id,
    /// Version.
    Version,
    /// Task priority.
    Tpr,
    /// Arbitration priority (xAPIC only).
    Apr,
    /// Processor priority.
    Ppr,
    /// End of interrupt (write-only).
    Eoi,
    /// Remote read (xAPIC only; reads zero).
    Rrd,
    /// Logical destination.
    Ldr,
    /// Destination format (xAPIC only).
    Dfr,
    /// Spurious-interrupt vector.
    Svr,
    /// In-service register, word 0-7.
    Isr(u8),
    /// Trigger-mode register, word 0-7.
    Tmr(u8),
    /// Interrupt-request register, word 0-7.
    Irr(u8),
    /// Error status.
    Esr,
    /// A local vector table entry.
    Lvt(Lvt),
    /// Interrupt command, low half (the whole 64-bit ICR in x2APIC mode).
    IcrLow,
    /// Interrupt command, high half (xAPIC only).
    IcrHigh,
    /// Timer initial count.
    InitialCount,
    /// Timer current count (read-only).
    CurrentCount,
    /// Timer divide configuration.
    DivideConfig,
    /// Self IPI (x2APIC only, write-only).
    SelfIpi,
}

/// How a register answers an access in a given mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rw {
    /// Read and write.
    ReadWrite,
    /// Writes are dropped (xAPIC) or #GP (x2APIC).
    ReadOnly,
    /// Reads give zero (xAPIC) or #GP (x2APIC).
    WriteOnly,
}

impl Reg {
    /// The register at xAPIC page offset `slot << 4`, if any. `cmci` says
    /// whether the LVT CMCI entry exists.
    pub const fn from_slot(slot: u16, cmci: bool) -> Option<Reg> {
        Some(match slot {
            0x02 => Reg::Id,
            0x03 => Reg::Version,
            0x08 => Reg::Tpr,
            0x09 => Reg::Apr,
            0x0a => Reg::Ppr,
            0x0b => Reg::Eoi,
            0x0c => Reg::Rrd,
            0x0d => Reg::Ldr,
            0x0e => Reg::Dfr,
            0x0f => Reg::Svr,
            0x10..=0x17 => Reg::Isr((slot - 0x10) as u8),
            0x18..=0x1f => Reg::Tmr((slot - 0x18) as u8),
            0x20..=0x27 => Reg::Irr((slot - 0x20) as u8),
            0x28 => Reg::Esr,
            0x2f if cmci => Reg::Lvt(Lvt::Cmci),
            0x30 => Reg::IcrLow,
            0x31 => Reg::IcrHigh,
            0x32 => Reg::Lvt(Lvt::Timer),
            0x33 => Reg::Lvt(Lvt::Thermal),
            0x34 => Reg::Lvt(Lvt::Perf),
            0x35 => Reg::Lvt(Lvt::Lint0),
            0x36 => Reg::Lvt(Lvt::Lint1),
            0x37 => Reg::Lvt(Lvt::Error),
            0x38 => Reg::InitialCount,
            0x39 => Reg::CurrentCount,
            0x3e => Reg::DivideConfig,
            0x3f => Reg::SelfIpi,
            _ => return None,
        })
    }

    /// The xAPIC slot (offset >> 4) of this register.
    pub const fn slot(self) -> u16 {
        match self {
            Reg::Id => 0x02,
            Reg::Version => 0x03,
            Reg::Tpr => 0x08,
            Reg::Apr => 0x09,
            Reg::Ppr => 0x0a,
            Reg::Eoi => 0x0b,
            Reg::Rrd => 0x0c,
            Reg::Ldr => 0x0d,
            Reg::Dfr => 0x0e,
            Reg::Svr => 0x0f,
            Reg::Isr(i) => 0x10 + (i & 7) as u16,
            Reg::Tmr(i) => 0x18 + (i & 7) as u16,
            Reg::Irr(i) => 0x20 + (i & 7) as u16,
            Reg::Esr => 0x28,
            Reg::Lvt(Lvt::Cmci) => 0x2f,
            Reg::IcrLow => 0x30,
            Reg::IcrHigh => 0x31,
            Reg::Lvt(Lvt::Timer) => 0x32,
            Reg::Lvt(Lvt::Thermal) => 0x33,
            Reg::Lvt(Lvt::Perf) => 0x34,
            Reg::Lvt(Lvt::Lint0) => 0x35,
            Reg::Lvt(Lvt::Lint1) => 0x36,
            Reg::Lvt(Lvt::Error) => 0x37,
            Reg::InitialCount => 0x38,
            Reg::CurrentCount => 0x39,
            Reg::DivideConfig => 0x3e,
            Reg::SelfIpi => 0x3f,
        }
    }

    /// Access rules in xAPIC mode, or `None` where the register does not
    /// exist there (SELF IPI).
    pub const fn xapic(self) -> Option<Rw> {
        Some(match self {
            Reg::SelfIpi => return None,
            Reg::Eoi => Rw::WriteOnly,
            Reg::Version
            | Reg::Apr
            | Reg::Ppr
            | Reg::Rrd
            | Reg::Isr(_)
            | Reg::Tmr(_)
            | Reg::Irr(_)
            | Reg::CurrentCount => Rw::ReadOnly,
            _ => Rw::ReadWrite,
        })
    }

    /// Access rules in x2APIC mode, or `None` where the MSR is reserved
    /// (APR, RRD, DFR and the ICR high half have no MSR).
    pub const fn x2apic(self) -> Option<Rw> {
        Some(match self {
            Reg::Apr | Reg::Rrd | Reg::Dfr | Reg::IcrHigh => return None,
            Reg::Eoi | Reg::SelfIpi => Rw::WriteOnly,
            Reg::Id
            | Reg::Version
            | Reg::Ppr
            | Reg::Ldr
            | Reg::Isr(_)
            | Reg::Tmr(_)
            | Reg::Irr(_)
            | Reg::CurrentCount => Rw::ReadOnly,
            _ => Rw::ReadWrite,
        })
    }

    /// The register behind x2APIC MSR `msr`, if it exists.
    pub const fn from_msr(msr: u32, cmci: bool) -> Option<Reg> {
        if msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST {
            return None;
        }
        match Reg::from_slot((msr - MSR_X2APIC_FIRST) as u16, cmci) {
            Some(reg) if reg.x2apic().is_some() => Some(reg),
            _ => None,
        }
    }
}

/// 256 bits, one per vector: the layout of IRR, ISR and TMR (word `i`
/// holds vectors `32 * i` to `32 * i + 31`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bits256(pub [u32; 8]);

impl Bits256 {
    /// No bit set.
    pub const EMPTY: Bits256 = Bits256([0; 8]);

    /// Whether `vector`'s bit is set.
    pub const fn get(&self, vector: u8) -> bool {
        self.0[(vector >> 5) as usize] & (1 << (vector & 31)) != 0
    }

    /// Sets `vector`'s bit.
    pub fn set(&mut self, vector: u8) {
        self.0[(vector >> 5) as usize] |= 1 << (vector & 31);
    }

    /// Clears `vector`'s bit.
    pub fn clear(&mut self, vector: u8) {
        self.0[(vector >> 5) as usize] &= !(1 << (vector & 31));
    }

    /// Sets or clears `vector`'s bit.
    pub fn put(&mut self, vector: u8, on: bool) {
        if on {
            self.set(vector)
        } else {
            self.clear(vector)
        }
    }

    /// The highest vector whose bit is set.
    pub fn highest(&self) -> Option<u8> {
        (0..8).rev().find_map(|i| {
            let w = self.0[i];
            (w != 0).then(|| (i as u8) * 32 + (31 - w.leading_zeros() as u8))
        })
    }

    /// Whether any of vectors 0-15 (which no interrupt may use) is set.
    pub const fn has_illegal(&self) -> bool {
        self.0[0] & 0xffff != 0
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}
