// SPDX-License-Identifier: GPL-2.0

//! What an operation is: the [`Op`] enum, its fields, and the decoders that
//! shape raw draws into meaningful values.

use std::fmt;

use vmm_vlapic::{Config, Interrupt};

#[cfg(not(fuzzing))]
use proptest::prelude::*;

/// Where the xAPIC page sits after reset.
pub(super) const DEFAULT_BASE: u64 = 0xfee0_0000;
/// `IA32_APIC_BASE`, `IA32_TSC_DEADLINE`.
pub(super) const MSR_APIC_BASE: u32 = 0x1b;
pub(super) const MSR_TSC_DEADLINE: u32 = 0x6e0;
/// `IA32_APIC_BASE` bits: BSP, EXTD, EN.
pub(super) const BASE_BSP: u64 = 1 << 8;
pub(super) const BASE_EXTD: u64 = 1 << 10;
pub(super) const BASE_EN: u64 = 1 << 11;
/// xAPIC register offsets the interpreter itself uses.
pub(super) const EOI: u16 = 0xb0;
pub(super) const ICR_LOW: u16 = 0x300;
pub(super) const ICR_HIGH: u16 = 0x310;
pub(super) const SVR: u16 = 0xf0;

/// xAPIC offsets of the registers most worth hitting (each is also an
/// x2APIC MSR at `0x800 + (offset >> 4)` unless the mode lacks it).
pub const HOT: [u16; 26] = [
    0x020, 0x030, 0x080, 0x090, 0x0a0, 0x0b0, 0x0d0, 0x0e0, 0x0f0, 0x100, 0x180, 0x200, 0x280,
    0x2f0, 0x300, 0x310, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x390, 0x3e0, 0x3f0,
];

/// Destinations worth addressing: the IDs the setups use, broadcasts, and
/// xAPIC and x2APIC logical masks.
pub const DEST: [u32; 16] = [
    0,
    1,
    2,
    3,
    4,
    0x11,
    0x22,
    0x1_0003,
    0xff,
    0xffff_ffff,
    0x0f,
    0x03,
    0x1_0002,
    0x8,
    0x10,
    0x1000_0008,
];

/// Writes `name(value)` in hex, the way a regression test would spell it.
pub(super) fn hex(f: &mut fmt::Formatter<'_>, name: &str, v: i128) -> fmt::Result {
    if v < 0 {
        write!(f, "{name}(-{:#x})", -v)
    } else {
        write!(f, "{name}({v:#x})")
    }
}

/// A value drawn from `(sel, raw)` by `decode`. `Arbitrary` draws the pair
/// (fuzzing), proptest has [`strategy`](Off::strategy) (otherwise).
macro_rules! leaf {
    ($(#[$m:meta])* $name:ident($t:ty) from ($st:ty, $rt:ty)) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $t);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                hex(f, stringify!($name), self.0 as i128)
            }
        }

        #[cfg(fuzzing)]
        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok(Self::decode(u.arbitrary()?, u.arbitrary()?))
            }
        }

        #[cfg(not(fuzzing))]
        impl $name {
            /// The proptest strategy: the same decoding of a raw pair.
            pub fn strategy() -> impl Strategy<Value = Self> {
                any::<($st, $rt)>().prop_map(|(s, r)| Self::decode(s, r))
            }
        }
    };
}

leaf! {
    /// An MMIO offset from the vCPU's APIC page (the address bits of
    /// `IA32_APIC_BASE`): mostly a real register, 4-byte aligned, but also
    /// any slot, any byte, and just outside the page.
    Off(i32) from (u8, u32)
}

impl Off {
    /// See [`Off`].
    pub fn decode(sel: u8, raw: u32) -> Off {
        let r = raw as usize;
        Off(match sel % 16 {
            0..=7 => HOT[r % HOT.len()] as i32,
            8..=10 => ((raw % 0x40) << 4) as i32,
            11 => ((raw % 0x400) << 2) as i32,
            12 => (((raw % 0x40) << 4) | ((raw >> 8) & 0xf)) as i32,
            13 => (raw % 0x1000) as i32,
            14 => (raw % 0x3000) as i32 - 0x1000,
            _ => raw as i32,
        })
    }
}

leaf! {
    /// An MMIO access width: 4 most of the time, else 1-8, sometimes out of
    /// range (0, 9, 16, 255).
    Width(u8) from (u8, u8)
}

impl Width {
    /// See [`Width`].
    pub fn decode(sel: u8, raw: u8) -> Width {
        Width(match sel % 32 {
            0..=19 => 4,
            20..=27 => 1 + raw % 8,
            28 => 0,
            29 => 9,
            30 => 16,
            _ => 255,
        })
    }
}

/// A vector, legal (16-255) seven times in eight.
pub(super) fn vector(raw: u64) -> u64 {
    let v = raw & 0xff;
    if raw >> 61 == 0 || v >= 16 {
        v
    } else {
        v + 16
    }
}

/// An LVT entry: vector, mostly fixed delivery, polarity and trigger bits,
/// masked one time in four, any timer mode.
pub(super) fn lvt_like(raw: u64) -> u64 {
    let mode = if raw & (1 << 40) != 0 { raw & 0x700 } else { 0 };
    let masked = if raw & (3 << 41) == 3 << 41 { 1 << 16 } else { 0 };
    vector(raw) | mode | (raw & (1 << 13 | 1 << 15 | 3 << 17)) | masked
}

/// An ICR value in the x2APIC layout (destination in bits 63:32): mostly
/// fixed, asserted, edge, no shorthand, to a destination from [`DEST`].
pub(super) fn icr_like(raw: u64) -> u64 {
    let mode = match (raw >> 8) & 15 {
        0..=6 => 0,
        7 | 8 => 1,
        9 => 2,
        10 => 4,
        11 | 12 => 5,
        13 | 14 => 6,
        _ => 3 + 4 * ((raw >> 12) & 1),
    };
    let logical = (raw >> 12) & 1;
    let assert = if raw & (7 << 13) == 0 { 0 } else { 1 };
    let trigger = if raw & (7 << 22) == 0 { 1 } else { 0 };
    let shorthand = if raw & (1 << 19) != 0 { (raw >> 20) & 3 } else { 0 };
    let dest = DEST[(raw >> 32) as usize % DEST.len()] as u64;
    vector(raw)
        | mode << 8
        | logical << 11
        | assert << 14
        | trigger << 15
        | shorthand << 18
        | dest << 32
}

/// An SVR value: spurious vector, focus and EOI-suppression bits, enabled
/// three times in four.
pub(super) fn svr_like(raw: u64) -> u64 {
    (raw & 0x12ff) | if raw & (3 << 20) != 0 { 0x100 } else { 0 }
}

leaf! {
    /// A value to write: any, 32-bit, a byte, zero, or shaped like an LVT
    /// entry, an ICR, an xAPIC destination, an SVR, a timer count, a divide
    /// configuration or an all-ones pattern.
    Val(u64) from (u8, u64)
}

impl Val {
    /// See [`Val`].
    pub fn decode(sel: u8, raw: u64) -> Val {
        Val(match sel % 16 {
            0 => raw,
            1 => raw & 0xffff_ffff,
            2 => raw & 0xff,
            3 => 0,
            4..=6 => lvt_like(raw),
            7 | 8 => icr_like(raw),
            9 => ((DEST[raw as usize % DEST.len()] & 0xff) as u64) << 24,
            10 => svr_like(raw),
            11 => 1 + raw % 1000,
            12 => raw & 0xb,
            13 => [0xffff_ffff, u64::MAX, 1 << 32, 0x0fff_ffff, 0x1ff][raw as usize % 5],
            14 => 1 + raw % 0x1_0000_0000,
            _ => 0x1ff,
        })
    }
}

leaf! {
    /// An ICR value in the x2APIC layout, see [`icr_like`]; in xAPIC mode
    /// bits 39:32 go to the ICR high register.
    Icr(u64) from (u8, u64)
}

impl Icr {
    /// See [`Icr`].
    pub fn decode(sel: u8, raw: u64) -> Icr {
        Icr(match sel % 16 {
            0..=13 => icr_like(raw),
            14 => raw & 0xffff_ffff_000c_cfff,
            _ => raw,
        })
    }
}

leaf! {
    /// An MSR: mostly a real x2APIC register, else anywhere in 0x800-0x8FF,
    /// `IA32_APIC_BASE`, `IA32_TSC_DEADLINE`, the range's edges, or any.
    Msr(u32) from (u8, u32)
}

impl Msr {
    /// See [`Msr`].
    pub fn decode(sel: u8, raw: u32) -> Msr {
        Msr(match sel % 16 {
            0..=7 => 0x800 + (HOT[raw as usize % HOT.len()] >> 4) as u32,
            8 | 9 => 0x800 + raw % 0x40,
            10 => 0x800 + raw % 0x100,
            11 => MSR_APIC_BASE,
            12 => MSR_TSC_DEADLINE,
            13 => [0x7ff, 0x840, 0x8ff, 0x900, 0x10][raw as usize % 5],
            14 => raw,
            _ => [0x830, 0x80b][raw as usize % 2],
        })
    }
}

leaf! {
    /// An `IA32_APIC_BASE` value: an address (default, moved, at the
    /// MAXPHYADDR edges) with any EN/EXTD combination and BSP flag, now and
    /// then with one more bit (perhaps reserved), or any value.
    Base(u64) from (u8, u64)
}

impl Base {
    /// See [`Base`].
    pub fn decode(sel: u8, raw: u64) -> Base {
        const ADDR: [u64; 7] =
            [DEFAULT_BASE, 0xfec0_0000, 0x1000, 0, 0xf_ffff_f000, 1 << 45, 1 << 51];
        let addr = ADDR[raw as usize % ADDR.len()];
        let mode = [0, BASE_EN, BASE_EN | BASE_EXTD, BASE_EXTD][(raw >> 8) as usize % 4];
        let bsp = (raw >> 16) & 1;
        let v = addr | mode | bsp << 8;
        Base(match sel % 8 {
            0..=5 => v,
            6 => v | 1 << ((raw >> 24) % 64),
            _ => raw,
        })
    }
}

leaf! {
    /// How far time moves: nothing, or up to 100, 10^4, 10^6, 10^8 or 10^10
    /// ticks, or up to 2^40.
    Ticks(u64) from (u8, u64)
}

impl Ticks {
    /// See [`Ticks`].
    pub fn decode(sel: u8, raw: u64) -> Ticks {
        Ticks(match sel % 8 {
            0 => 0,
            1 => raw % 100,
            2 => raw % 10_000,
            3 => raw % 1_000_000,
            4 => raw % 100_000_000,
            5 => raw % 10_000_000_000,
            6 => raw % (1 << 40),
            _ => raw % 1000,
        })
    }
}

leaf! {
    /// A TSC deadline relative to now: 0 (disarm), in the past, soon, far,
    /// or anything.
    Rel(i64) from (u8, i64)
}

impl Rel {
    /// See [`Rel`].
    pub fn decode(sel: u8, raw: i64) -> Rel {
        Rel(match sel % 8 {
            0 => 0,
            1 => -raw.rem_euclid(1_000_000),
            2..=4 => 1 + raw.rem_euclid(1_000_000),
            5 => raw.rem_euclid(1 << 40),
            6 => raw.rem_euclid(100),
            _ => raw,
        })
    }
}

leaf! {
    /// A destination: one of [`DEST`], or any 8- or 32-bit value.
    Dest(u32) from (u8, u32)
}

impl Dest {
    /// See [`Dest`].
    pub fn decode(sel: u8, raw: u32) -> Dest {
        Dest(match sel % 8 {
            0..=5 => DEST[raw as usize % DEST.len()],
            6 => raw & 0xff,
            _ => raw,
        })
    }
}

leaf! {
    /// MSI data: vector, delivery mode (mostly fixed or lowest priority),
    /// trigger mode.
    MsiData(u32) from (u8, u32)
}

impl MsiData {
    /// See [`MsiData`].
    pub fn decode(sel: u8, raw: u32) -> MsiData {
        let mode = match (raw >> 8) & 15 {
            0..=7 => 0,
            8..=10 => 1,
            11 => 2,
            12 => 4,
            13 => 5,
            14 => 7,
            _ => 3 + 3 * ((raw >> 12) & 1),
        };
        MsiData(match sel % 8 {
            0..=6 => vector(raw as u64 | (raw as u64) << 40) as u32 | mode << 8 | (raw & (1 << 15)),
            _ => raw,
        })
    }
}

leaf! {
    /// A register slot (xAPIC offset >> 4, x2APIC MSR - 0x800): mostly one
    /// of [`HOT`], else any of the 64.
    RegSel(u8) from (u8, u8)
}

impl RegSel {
    /// See [`RegSel`].
    pub fn decode(sel: u8, raw: u8) -> RegSel {
        RegSel(if sel & 3 != 0 { (HOT[raw as usize % HOT.len()] >> 4) as u8 } else { raw % 0x40 })
    }
}

/// A register slot (xAPIC offset >> 4, x2APIC MSR - 0x800), weighted
/// towards the ones that start timers and send or end interrupts, and a
/// value shaped for that register seven times in eight (a [`Val`]
/// otherwise): a low TPR, an enabling SVR, an LVT entry, an ICR, a short
/// timer count, and so on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RegVal(pub u8, pub u64);

impl fmt::Debug for RegVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegVal({:#x}, {:#x})", self.0, self.1)
    }
}

impl RegVal {
    /// See [`RegVal`].
    pub fn decode(sel: u8, reg: u8, raw: u64) -> RegVal {
        let r = reg as usize;
        let slot = match sel % 16 {
            0 => reg % 0x40,
            1..=5 => (HOT[r % HOT.len()] >> 4) as u8,
            6 | 7 => 0x38,
            8 => 0x32,
            9 => 0x30,
            10 => 0x0f,
            11 => 0x08,
            12 => 0x3e,
            13 => [0x35, 0x36, 0x37, 0x33, 0x34, 0x2f][r % 6],
            14 => 0x3f,
            _ => [0x28, 0x0b, 0x0d, 0x0e, 0x31][r % 5],
        };
        if sel >> 5 == 0 {
            return RegVal(slot, Val::decode(reg, raw).0);
        }
        let value = match slot {
            0x02 => ((DEST[raw as usize % DEST.len()] & 0xff) as u64) << 24,
            0x08 => {
                if raw & 1 == 0 {
                    0
                } else {
                    (raw >> 1) & 0xff
                }
            }
            0x0b | 0x28 => {
                if raw & 7 == 0 {
                    raw >> 3
                } else {
                    0
                }
            }
            0x0d => 1 << (24 + raw % 8),
            0x0e => [0xffff_ffff, 0x0fff_ffff][raw as usize % 2],
            0x0f => svr_like(raw),
            0x32 => lvt_like(raw) & 0x7_00ff,
            0x37 => lvt_like(raw) & 0x1_00ff,
            0x2f | 0x33 | 0x34 => lvt_like(raw) & 0x1_07ff,
            0x35 | 0x36 => lvt_like(raw) & 0x1_e7ff,
            0x30 => icr_like(raw),
            0x31 => ((DEST[raw as usize % DEST.len()] & 0xff) as u64) << 24,
            0x38 => {
                if raw & 7 == 0 {
                    raw & 0xffff_ffff
                } else {
                    1 + (raw >> 3) % 10_000
                }
            }
            0x3e => raw & 0xb,
            0x3f => vector(raw),
            _ => raw & 0xffff_ffff,
        };
        RegVal(slot, value)
    }
}

#[cfg(fuzzing)]
impl<'a> arbitrary::Arbitrary<'a> for RegVal {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::decode(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?))
    }
}

#[cfg(not(fuzzing))]
impl RegVal {
    /// The proptest strategy: the same decoding of a raw triple.
    pub fn strategy() -> impl Strategy<Value = Self> {
        any::<(u8, u8, u64)>().prop_map(|(s, g, r)| Self::decode(s, g, r))
    }
}

/// A mode to ask for through `IA32_APIC_BASE`.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeSel {
    /// EN = 0.
    Disabled,
    /// EN = 1, EXTD = 0.
    XApic,
    /// EN = 1, EXTD = 1.
    X2Apic,
}

/// An interrupt as delivered to one APIC ([`Interrupt`], which is foreign
/// here and so cannot derive `Arbitrary`).
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irq {
    /// [`Interrupt::Fixed`].
    Fixed {
        /// Vector.
        vector: u8,
        /// Level-triggered.
        level: bool,
    },
    /// [`Interrupt::Smi`].
    Smi,
    /// [`Interrupt::Nmi`].
    Nmi,
    /// [`Interrupt::Init`].
    Init,
    /// [`Interrupt::Sipi`].
    Sipi(u8),
    /// [`Interrupt::ExtInt`].
    ExtInt,
}

impl From<Irq> for Interrupt {
    fn from(irq: Irq) -> Interrupt {
        match irq {
            Irq::Fixed { vector, level } => Interrupt::Fixed { vector, level },
            Irq::Smi => Interrupt::Smi,
            Irq::Nmi => Interrupt::Nmi,
            Irq::Init => Interrupt::Init,
            Irq::Sipi(v) => Interrupt::Sipi(v),
            Irq::ExtInt => Interrupt::ExtInt,
        }
    }
}

/// One operation. `cpu` is taken modulo the number of vCPUs.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Guest MMIO read at the vCPU's APIC page + `off`.
    MmioRead { cpu: u8, off: Off, size: Width },
    /// Guest MMIO write at the vCPU's APIC page + `off`.
    MmioWrite { cpu: u8, off: Off, size: Width, value: Val },
    /// Guest `RDMSR`.
    Rdmsr { cpu: u8, msr: Msr },
    /// Guest `WRMSR`.
    Wrmsr { cpu: u8, msr: Msr, value: Val },
    /// Guest read of a register through the interface of the current mode
    /// (a 4-byte MMIO read, or `RDMSR`).
    RegRead { cpu: u8, reg: RegSel },
    /// Guest write of a register through the interface of the current mode
    /// (a 4-byte MMIO write of the low 32 bits, or `WRMSR`, of all 64 for
    /// the ICR and the low 32 otherwise).
    RegWrite { cpu: u8, write: RegVal },
    /// Guest IPI: ICR high then low (xAPIC), or the 64-bit ICR (x2APIC).
    Ipi { cpu: u8, icr: Icr },
    /// Guest EOI through the interface of the current mode.
    Eoi { cpu: u8 },
    /// Guest `WRMSR IA32_APIC_BASE` asking for mode `to`, at the same
    /// address or a moved one.
    Transition { cpu: u8, to: ModeSel, moved: bool },
    /// Host sets `IA32_APIC_BASE` (`Origin::Host`).
    SetApicBase { cpu: u8, value: Base },
    /// Guest `WRMSR IA32_TSC_DEADLINE` of now + `at` (0 stays 0).
    Deadline { cpu: u8, at: Rel },
    /// An interrupt arrives for this vCPU (as after `resolve`).
    Deliver { cpu: u8, irq: Irq },
    /// An MSI (or IOAPIC message), resolved over the bus and delivered.
    Msi { dest: Dest, logical: bool, data: MsiData, x2apic_format: bool },
    /// Time moves on; every timer fires at its armed time on the way.
    Advance { ticks: Ticks },
    /// Time moves to the earliest armed timer, which fires.
    RunToTimer,
    /// A spurious `timer_expired` now.
    TimerExpired { cpu: u8 },
    /// Before entry: `take_events`.
    TakeEvents { cpu: u8 },
    /// Before entry: `pending_interrupt`, and `accept_interrupt` of it.
    Accept { cpu: u8 },
    /// `accept_interrupt` of a vector that may not be the pending one.
    AcceptVector { cpu: u8, vector: u8 },
    /// A LINT pin changes level (pins 2 and 3 do not exist).
    SetLint { cpu: u8, pin: u8, asserted: bool },
    /// A local source signals through LVT entry `lvt % 7`.
    Fire { cpu: u8, lvt: u8 },
    /// Guest writes CR8 (the TPR).
    SetTpr { cpu: u8, value: u8 },
    /// Host takes a snapshot.
    Snapshot { cpu: u8 },
    /// Host snapshots the vCPU and replaces it by the restored copy.
    Restore { cpu: u8 },
}

/// The machine to build, in raw draws (see [`Machine::new`]).
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// 2 + `cpus % 4` vCPUs.
    pub cpus: u8,
    /// The [`Config`] (see [`config`]).
    pub config: u8,
    /// The APIC ID scheme (see [`apic_id`]).
    pub ids: u8,
    /// Per vCPU: bits 2:0 the mode (5-6 x2APIC, 7 disabled, else xAPIC);
    /// unless bits 4:3 are both set, software-enabled, and then unless bit
    /// 5 is set with LINT0 ExtINT and LINT1 NMI, and unless bit 6 is set
    /// with the timer unmasked (bit 7: periodic) at vector 0xec.
    pub modes: [u8; 5],
    /// The start time's range: 0, 32 bits, 62 bits, or (one in eight) just
    /// below `u64::MAX`, the end of guest time.
    pub time: u8,
    /// The start time's draw.
    pub tsc: u64,
}

/// A fuzz input: a machine, where to fork it, and the ops.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug)]
pub struct Input {
    /// The machine.
    pub setup: Setup,
    /// Fork into a restored copy before op `split % (ops.len() + 1)`.
    pub split: u16,
    /// The operations.
    pub ops: Vec<Op>,
}

/// The configuration a [`Setup::config`] selects: mostly the default;
/// without x2APIC; without the optional features; odd clocks and the
/// MAXPHYADDR extremes; the CMCI toggled by bit 3; a 1 Hz bus now and then.
pub fn config(sel: u8) -> Config {
    let mut c = Config::DEFAULT;
    match sel % 8 {
        0..=3 => {}
        4 => c.x2apic = false,
        5 => {
            c.tsc_deadline = false;
            c.cmci = false;
            c.eoi_suppression = false;
        }
        6 => {
            c.bus_hz = 100_000_000;
            c.tsc_hz = 3_000_000_000;
            c.min_period = 0;
            c.maxphyaddr = 36;
        }
        _ => {
            c.bus_hz = 3_000_000_000;
            c.tsc_hz = 1_000_000;
            c.min_period = 1;
            c.maxphyaddr = 52;
        }
    }
    if sel & 0x08 != 0 {
        c.cmci = !c.cmci;
    }
    if sel & 0x70 == 0x70 {
        c.bus_hz = 1;
    }
    c
}

/// The x2APIC ID of vCPU `i` under `scheme`: 0, 1, 2...; 0, 0x11, 0x22...
/// (clusters); 4, 3, 2... (reversed); or 3, 0x10003, 0x20003... (every
/// xAPIC ID the same).
pub fn apic_id(scheme: u8, i: usize) -> u32 {
    let i = i as u32;
    match scheme % 4 {
        0 => i,
        1 => 0x11 * i,
        2 => 4 - i,
        _ => 0x1_0000 * i + 3,
    }
}
