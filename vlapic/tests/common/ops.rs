// SPDX-License-Identifier: GPL-2.0

//! A shared interpreter of random operations on a small machine of virtual
//! local APICs, used by the property tests (`tests/prop.rs`) and by the
//! cargo-fuzz target (`fuzz/fuzz_targets/ops.rs`), which both include this
//! file as a module.
//!
//! An [`Op`] is one thing that a guest, a device or the integration layer
//! does to one vCPU's APIC. A [`Machine`] holds 2-5 [`Vlapic`]s and a guest
//! TSC that only goes forward, and acts on every [`Effects`] the way the
//! crate documentation says the integration layer must: IPIs are resolved
//! over the bus of all vCPUs and delivered, host timers are armed, and
//! `timer_expired` is called at the armed times. [`Machine::step`] asserts
//! what each op must (or must not) have done; [`Machine::check`] asserts,
//! from the public API alone, invariants that hold after every op. [`run`]
//! plays a sequence, optionally forks a second machine from snapshots part
//! way through, and asserts that both then behave identically.
//!
//! The fields of an op are raw draws shaped by `decode` functions that
//! favour real registers, aligned 4-byte accesses and meaningful values
//! (LVT, ICR, SVR, timer counts, legal `IA32_APIC_BASE` values). The
//! fuzzer's `Arbitrary` (only under `cfg(fuzzing)`) and the proptest
//! strategies (only outside it) both go through them, so both see the same
//! shapes of values, and a printed op list is valid Rust for a regression
//! test.

#![allow(dead_code)]

use std::fmt;

use vmm_vlapic::regs::{Bits256, Lvt};
use vmm_vlapic::{
    resolve, x2apic_ldr, Config, Delivery, Effects, Endpoint, Events, Gp, Interrupt, Latched,
    Message, Mode, Origin, Snapshot, TimerAction, Tsc, Vlapic,
};

#[cfg(not(fuzzing))]
use proptest::prelude::*;

/// Where the xAPIC page sits after reset.
const DEFAULT_BASE: u64 = 0xfee0_0000;
/// `IA32_APIC_BASE`, `IA32_TSC_DEADLINE`.
const MSR_APIC_BASE: u32 = 0x1b;
const MSR_TSC_DEADLINE: u32 = 0x6e0;
/// `IA32_APIC_BASE` bits: BSP, EXTD, EN.
const BASE_BSP: u64 = 1 << 8;
const BASE_EXTD: u64 = 1 << 10;
const BASE_EN: u64 = 1 << 11;
/// xAPIC register offsets the interpreter itself uses.
const EOI: u16 = 0xb0;
const ICR_LOW: u16 = 0x300;
const ICR_HIGH: u16 = 0x310;
const SVR: u16 = 0xf0;



/// xAPIC offsets of the registers most worth hitting (each is also an
/// x2APIC MSR at `0x800 + (offset >> 4)` unless the mode lacks it).
pub const HOT: [u16; 26] = [
    0x020, 0x030, 0x080, 0x090, 0x0a0, 0x0b0, 0x0d0, 0x0e0, 0x0f0, 0x100, 0x180, 0x200, 0x280,
    0x2f0, 0x300, 0x310, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x390, 0x3e0, 0x3f0,
];

/// Destinations worth addressing: the IDs the setups use, broadcasts, and
/// xAPIC and x2APIC logical masks.
pub const DEST: [u32; 16] = [
    0, 1, 2, 3, 4, 0x11, 0x22, 0x1_0003, 0xff, 0xffff_ffff, 0x0f, 0x03, 0x1_0002, 0x8, 0x10,
    0x1000_0008,
];

/// Writes `name(value)` in hex, the way a regression test would spell it.
fn hex(f: &mut fmt::Formatter<'_>, name: &str, v: i128) -> fmt::Result {
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
fn vector(raw: u64) -> u64 {
    let v = raw & 0xff;
    if raw >> 61 == 0 || v >= 16 {
        v
    } else {
        v + 16
    }
}

/// An LVT entry: vector, mostly fixed delivery, polarity and trigger bits,
/// masked one time in four, any timer mode.
fn lvt_like(raw: u64) -> u64 {
    let mode = if raw & (1 << 40) != 0 { raw & 0x700 } else { 0 };
    let masked = if raw & (3 << 41) == 3 << 41 { 1 << 16 } else { 0 };
    vector(raw) | mode | (raw & (1 << 13 | 1 << 15 | 3 << 17)) | masked
}

/// An ICR value in the x2APIC layout (destination in bits 63:32): mostly
/// fixed, asserted, edge, no shorthand, to a destination from [`DEST`].
fn icr_like(raw: u64) -> u64 {
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
    vector(raw) | mode << 8 | logical << 11 | assert << 14 | trigger << 15 | shorthand << 18 | dest << 32
}

/// An SVR value: spurious vector, focus and EOI-suppression bits, enabled
/// three times in four.
fn svr_like(raw: u64) -> u64 {
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
            0x08 => if raw & 1 == 0 { 0 } else { (raw >> 1) & 0xff },
            0x0b | 0x28 => if raw & 7 == 0 { raw >> 3 } else { 0 },
            0x0d => 1 << (24 + raw % 8),
            0x0e => [0xffff_ffff, 0x0fff_ffff][raw as usize % 2],
            0x0f => svr_like(raw),
            0x32 => lvt_like(raw) & 0x7_00ff,
            0x37 => lvt_like(raw) & 0x1_00ff,
            0x2f | 0x33 | 0x34 => lvt_like(raw) & 0x1_07ff,
            0x35 | 0x36 => lvt_like(raw) & 0x1_e7ff,
            0x30 => icr_like(raw),
            0x31 => ((DEST[raw as usize % DEST.len()] & 0xff) as u64) << 24,
            0x38 => if raw & 7 == 0 { raw & 0xffff_ffff } else { 1 + (raw >> 3) % 10_000 },
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

/// What a call returned, for comparing two machines op by op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// `mmio_read`.
    Read(Option<u64>),
    /// `mmio_write`.
    Write(Option<Effects>),
    /// `rdmsr`.
    Rdmsr(Result<u64, Gp>),
    /// `wrmsr` or `set_apic_base`.
    Wrmsr(Result<Effects, Gp>),
    /// A message resolved.
    Resolved(Delivery),
    /// `deliver` to a vCPU.
    Delivered(usize, Effects),
    /// `timer_expired` on a vCPU.
    Expired(usize, Effects),
    /// Any other call's effects.
    Fx(Effects),
    /// `take_events`.
    Events(Events),
    /// `pending_interrupt`.
    Pending(Option<u8>),
    /// `accept_interrupt`.
    Accepted(bool),
    /// `snapshot`.
    Snapshot(Box<Snapshot>, Effects),
    /// `restore`.
    Restored(Effects),
    /// Time now.
    Now(Tsc),
}

/// How far the interpreter got, to show that random runs reach deep states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Interrupts moved from IRR to ISR.
    pub accepted: u64,
    /// EOIs that ended an in-service vector.
    pub eois: u64,
    /// Level-triggered EOIs reported for the IOAPIC.
    pub eoi_broadcasts: u64,
    /// Interrupts delivered after `resolve`.
    pub delivered: u64,
    /// Timer expiries that signalled something.
    pub timer_fires: u64,
    /// Mode changes and moves.
    pub mode_changes: u64,
    /// INITs and SIPIs applied by `take_events`.
    pub resets: u64,
    /// vCPUs in x2APIC mode after an op (summed over ops).
    pub x2apic: u64,
}

/// What an op may do to the ISR of the vCPU it acts on (all others' ISRs
/// must not change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IsrRule {
    /// Nothing.
    Same,
    /// `accept_interrupt` of this vector: it is added.
    Added(u8),
    /// EOI: the highest in-service vector is removed (SDM "EOI Register").
    Eoi,
    /// INIT: everything is cleared.
    Reset,
    /// `IA32_APIC_BASE` write: depends on the mode change.
    Base(Mode),
}

/// A machine of vCPUs with the integration layer's bookkeeping.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The configuration of every vCPU.
    pub cfg: Config,
    /// The APICs, indexed by vCPU.
    pub cpus: Vec<Vlapic>,
    /// Guest TSC.
    pub now: Tsc,
    /// x2APIC IDs given at creation.
    ids: Vec<u32>,
    /// Host timers, as the effects armed them.
    armed: Vec<Option<Tsc>>,
    /// Mode and page address, as the effects reported them.
    mode: Vec<(Mode, u64)>,
    /// Vectors accepted and not seen leaving the ISR since.
    accepted: Vec<Bits256>,
    /// vCPUs told to wake during the current op.
    woken: Vec<bool>,
    /// What the current op returned.
    out: Vec<Out>,
    /// Ops run (to rotate sampled MSRs).
    steps: u64,
    /// How deep the run got.
    pub stats: Stats,
}

impl Machine {
    /// Builds the machine `setup` describes: each vCPU created, then
    /// optionally software-enabled with LINT0 ExtINT and LINT1 NMI (as
    /// firmware does), then moved to its mode by the host.
    pub fn new(setup: &Setup) -> Machine {
        let cfg = config(setup.config);
        let n = 2 + setup.cpus as usize % 4;
        let ids: Vec<u32> = (0..n).map(|i| apic_id(setup.ids, i)).collect();
        let now = match setup.time % 8 {
            0 | 1 => 0,
            2 | 3 => setup.tsc % (1 << 32),
            4..=6 => setup.tsc % (1 << 62),
            _ => u64::MAX - setup.tsc % (1 << 40),
        };
        let cpus = (0..n)
            .map(|i| Vlapic::new(cfg, i as u16, ids[i], i == 0).expect("valid config"))
            .collect();
        let mut m = Machine {
            cfg,
            cpus,
            now,
            ids,
            armed: vec![None; n],
            mode: vec![(Mode::XApic, DEFAULT_BASE); n],
            accepted: vec![Bits256::EMPTY; n],
            woken: vec![false; n],
            out: Vec::new(),
            steps: 0,
            stats: Stats::default(),
        };
        for i in 0..n {
            let b = setup.modes[i];
            if b & 0x18 != 0x18 {
                m.mmio_write(i, SVR, 0x1ff);
                if b & 0x20 == 0 {
                    m.mmio_write(i, 0x350, 0x700);
                    m.mmio_write(i, 0x360, 0x400);
                }
                if b & 0x40 == 0 {
                    m.mmio_write(i, 0x320, 0xec | (b as u64 >> 7) << 17);
                }
            }
            let bsp = if i == 0 { BASE_BSP } else { 0 };
            let to = match b & 7 {
                5 | 6 if cfg.x2apic => DEFAULT_BASE | BASE_EN | BASE_EXTD | bsp,
                7 => DEFAULT_BASE | bsp,
                _ => continue,
            };
            let fx = m.cpus[i].set_apic_base(to, Origin::Host).expect("legal setup");
            m.effects(i, fx, 0);
        }
        m.out.clear();
        m.woken.fill(false);
        m
    }

    /// Number of vCPUs.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    fn cpu(&self, cpu: u8) -> usize {
        cpu as usize % self.cpus.len()
    }

    /// vCPU `c`'s APIC page address (whatever the mode).
    fn page(&self, c: usize) -> u64 {
        self.cpus[c].apic_base() & !0xfff
    }

    /// A 4-byte MMIO write at page offset `off`, effects acted on.
    fn mmio_write(&mut self, c: usize, off: u16, value: u64) -> Option<Effects> {
        let gpa = self.page(c) + off as u64;
        let r = self.cpus[c].mmio_write(gpa, 4, value, self.now);
        self.out.push(Out::Write(r));
        if let Some(fx) = r {
            self.effects(c, fx, 0);
        }
        r
    }

    /// A `WRMSR`, effects acted on.
    fn wrmsr(&mut self, c: usize, msr: u32, value: u64) -> Result<Effects, Gp> {
        let r = self.cpus[c].wrmsr(msr, value, self.now);
        self.out.push(Out::Wrmsr(r));
        if let Ok(fx) = r {
            self.effects(c, fx, 0);
        }
        r
    }

    /// Acts on what vCPU `c` asked for, as the integration layer must.
    fn effects(&mut self, c: usize, fx: Effects, depth: u32) {
        assert!(depth < 4, "effects keep causing effects: {fx:?}");
        if let Some(t) = fx.timer {
            self.armed[c] = match t {
                TimerAction::Arm(t) => Some(t),
                TimerAction::Disarm => None,
            };
        }
        if let Some(mc) = fx.mode {
            assert_eq!(mc.from, self.mode[c].0, "vCPU {c}: ModeChange.from is not the mode it was in");
            self.mode[c] = (mc.to, mc.base);
            self.stats.mode_changes += 1;
        }
        if fx.eoi.is_some() {
            self.stats.eoi_broadcasts += 1;
        }
        if fx.wake {
            self.woken[c] = true;
        }
        if let Some(msg) = fx.ipi {
            self.send(msg, Some(c), depth + 1);
        }
    }

    /// Resolves `msg` over the bus and delivers it to every target.
    fn send(&mut self, msg: Message, source: Option<usize>, depth: u32) {
        let bus: Vec<Option<Endpoint>> = self.cpus.iter_mut().map(|v| Some(v.endpoint())).collect();
        let d = resolve(&msg, source, &bus[..]);
        self.out.push(Out::Resolved(d));
        for t in d.targets.iter() {
            assert!(t < self.cpus.len(), "resolve picked vCPU {t} of {}", self.cpus.len());
            let fx = self.cpus[t].deliver(d.interrupt);
            self.out.push(Out::Delivered(t, fx));
            self.stats.delivered += 1;
            self.effects(t, fx, depth);
        }
    }

    /// Fires every timer that is due now, as often as it stays due.
    fn settle(&mut self) {
        for _ in 0..8 {
            let now = self.now;
            let due: Vec<usize> =
                (0..self.cpus.len()).filter(|&i| self.armed[i].is_some_and(|t| t <= now)).collect();
            if due.is_empty() {
                return;
            }
            for i in due {
                let fx = self.cpus[i].timer_expired(now);
                assert!(fx.timer.is_some(), "timer_expired must say what the host timer does");
                if fx != (Effects { timer: fx.timer, ..Effects::NONE }) {
                    self.stats.timer_fires += 1;
                }
                self.out.push(Out::Expired(i, fx));
                self.effects(i, fx, 0);
            }
        }
        panic!("at TSC {:#x} a timer stays due however often it is serviced: {:?}", self.now, self.armed);
    }

    /// Moves time forward by `ticks`, firing timers at their armed times
    /// (at most 64 expiries on the way; the rest coalesce at the end, as
    /// when the host runs late).
    fn advance(&mut self, ticks: u64) {
        let target = self.now.saturating_add(ticks);
        for _ in 0..64 {
            let next = self.armed.iter().flatten().copied().filter(|&t| t <= target).min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.settle();
        }
        self.now = target;
        self.settle();
    }

    /// `IA32_APIC_BASE` writes the SDM allows ("x2APIC State Transitions";
    /// reserved bits: 0-7, 9, EXTD without x2APIC, MAXPHYADDR and up). The
    /// host may set any valid state.
    fn base_write_legal(&self, c: usize, value: u64, origin: Origin) -> bool {
        let mut reserved = 0x2ff | (!0u64 << self.cfg.maxphyaddr);
        if !self.cfg.x2apic {
            reserved |= BASE_EXTD;
        }
        if value & reserved != 0 {
            return false;
        }
        let to = match (value & BASE_EN != 0, value & BASE_EXTD != 0) {
            (false, false) => Mode::Disabled,
            (false, true) => return false,
            (true, false) => Mode::XApic,
            (true, true) => Mode::X2Apic,
        };
        let from = self.cpus[c].mode();
        origin == Origin::Host
            || from == to
            || matches!(
                (from, to),
                (Mode::XApic, Mode::X2Apic)
                    | (Mode::XApic, Mode::Disabled)
                    | (Mode::X2Apic, Mode::Disabled)
                    | (Mode::Disabled, Mode::XApic)
            )
    }

    /// Runs `op`, acting on its effects and firing due timers, and asserts
    /// what it must have done. Returns everything the calls returned.
    pub fn step(&mut self, op: &Op) -> Vec<Out> {
        self.out.clear();
        self.woken.fill(false);
        self.steps += 1;
        let before: Vec<(Bits256, Bits256, Latched)> = self
            .cpus
            .iter_mut()
            .map(|v| {
                let (irr, isr, _) = v.vectors();
                (irr, isr, v.latched())
            })
            .collect();
        let now = self.now;
        // The vCPU the op acts on, whether the guest on it is running (so
        // that it needs no wake-up), and what the op may do to its ISR.
        let mut acting: Option<(usize, bool)> = None;
        let mut rule = IsrRule::Same;
        match *op {
            Op::MmioRead { cpu, off, size } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let gpa = self.page(c).wrapping_add_signed(off.0 as i64);
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let r = self.cpus[c].mmio_read(gpa, size.0 as usize, now);
                if mode != Mode::XApic {
                    assert_eq!(r, None, "vCPU {c}: MMIO read in {mode:?} mode");
                }
                if r.is_none() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused MMIO read changed state");
                }
                self.out.push(Out::Read(r));
            }
            Op::MmioWrite { cpu, off, size, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let page = self.page(c);
                let gpa = page.wrapping_add_signed(off.0 as i64);
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let r = self.cpus[c].mmio_write(gpa, size.0 as usize, value.0, now);
                if mode != Mode::XApic {
                    assert_eq!(r, None, "vCPU {c}: MMIO write in {mode:?} mode");
                }
                if r.is_none() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused MMIO write changed state");
                }
                if r.is_some() && gpa == page + EOI as u64 && size.0 == 4 {
                    rule = IsrRule::Eoi;
                }
                self.out.push(Out::Write(r));
                if let Some(fx) = r {
                    self.effects(c, fx, 0);
                }
            }
            Op::Rdmsr { cpu, msr } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let r = self.cpus[c].rdmsr(msr.0, now);
                assert_eq!(self.cpus[c], old, "vCPU {c}: RDMSR {:#x} changed state", msr.0);
                let known = msr.0 == MSR_APIC_BASE
                    || (msr.0 == MSR_TSC_DEADLINE && self.cfg.tsc_deadline)
                    || ((0x800..=0x8ff).contains(&msr.0) && mode == Mode::X2Apic);
                if !known {
                    assert_eq!(r, Err(Gp), "vCPU {c}: RDMSR {:#x} in {mode:?} mode", msr.0);
                }
                self.out.push(Out::Rdmsr(r));
            }
            Op::Wrmsr { cpu, msr, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let legal_base = self.base_write_legal(c, value.0, Origin::Guest);
                let r = self.cpus[c].wrmsr(msr.0, value.0, now);
                if r.is_err() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: WRMSR {:#x} #GP changed state", msr.0);
                }
                match msr.0 {
                    MSR_APIC_BASE => {
                        assert_eq!(r.is_ok(), legal_base, "vCPU {c}: WRMSR APIC_BASE {:#x} from {mode:?}", value.0);
                        rule = IsrRule::Base(mode);
                    }
                    MSR_TSC_DEADLINE => assert_eq!(r.is_ok(), self.cfg.tsc_deadline),
                    0x800..=0x8ff if mode != Mode::X2Apic => {
                        assert_eq!(r, Err(Gp), "vCPU {c}: WRMSR {:#x} in {mode:?} mode", msr.0)
                    }
                    0x80b if r.is_ok() => rule = IsrRule::Eoi,
                    0x800..=0x8ff => {}
                    _ => assert_eq!(r, Err(Gp), "vCPU {c}: WRMSR of unknown MSR {:#x}", msr.0),
                }
                self.out.push(Out::Wrmsr(r));
                if let Ok(fx) = r {
                    self.effects(c, fx, 0);
                }
            }
            Op::RegRead { cpu, reg } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                if self.cpus[c].mode() == Mode::X2Apic {
                    let r = self.cpus[c].rdmsr(0x800 + reg.0 as u32, now);
                    self.out.push(Out::Rdmsr(r));
                } else {
                    let gpa = self.page(c) + ((reg.0 as u64) << 4);
                    let r = self.cpus[c].mmio_read(gpa, 4, now);
                    self.out.push(Out::Read(r));
                }
            }
            Op::RegWrite { cpu, write: RegVal(slot, value) } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let off = (slot as u16) << 4;
                let ok = if self.cpus[c].mode() == Mode::X2Apic {
                    let v = if off == ICR_LOW { value } else { value & 0xffff_ffff };
                    self.wrmsr(c, 0x800 + slot as u32, v).is_ok()
                } else {
                    self.mmio_write(c, off, value & 0xffff_ffff).is_some()
                };
                if ok && off == EOI {
                    rule = IsrRule::Eoi;
                }
            }
            Op::Ipi { cpu, icr } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                match self.cpus[c].mode() {
                    Mode::X2Apic => {
                        let _ = self.wrmsr(c, 0x830, icr.0);
                    }
                    Mode::XApic => {
                        self.mmio_write(c, ICR_HIGH, ((icr.0 >> 32) & 0xff) << 24);
                        self.mmio_write(c, ICR_LOW, icr.0 & 0xffff_ffff);
                    }
                    Mode::Disabled => {}
                }
            }
            Op::Eoi { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                match self.cpus[c].mode() {
                    Mode::X2Apic => {
                        let r = self.wrmsr(c, 0x80b, 0);
                        assert!(r.is_ok(), "vCPU {c}: WRMSR EOI of 0 must not #GP");
                        rule = IsrRule::Eoi;
                    }
                    Mode::XApic => {
                        assert!(self.mmio_write(c, EOI, 0).is_some());
                        rule = IsrRule::Eoi;
                    }
                    Mode::Disabled => {}
                }
            }
            Op::Transition { cpu, to, moved } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let mode = self.cpus[c].mode();
                let mut addr = self.page(c);
                if moved {
                    addr = if addr == DEFAULT_BASE { 0xfed0_0000 } else { DEFAULT_BASE };
                }
                let bits = match to {
                    ModeSel::Disabled => 0,
                    ModeSel::XApic => BASE_EN,
                    ModeSel::X2Apic => BASE_EN | BASE_EXTD,
                };
                let value = addr | bits | (self.cpus[c].apic_base() & BASE_BSP);
                let legal = self.base_write_legal(c, value, Origin::Guest);
                let old = self.cpus[c].clone();
                let r = self.wrmsr(c, MSR_APIC_BASE, value);
                assert_eq!(r.is_ok(), legal, "vCPU {c}: WRMSR APIC_BASE {value:#x} from {mode:?}");
                if r.is_err() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a #GP on APIC_BASE changed state");
                }
                rule = IsrRule::Base(mode);
            }
            Op::SetApicBase { cpu, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let mode = self.cpus[c].mode();
                let legal = self.base_write_legal(c, value.0, Origin::Host);
                let old = self.cpus[c].clone();
                let r = self.cpus[c].set_apic_base(value.0, Origin::Host);
                assert_eq!(r.is_ok(), legal, "vCPU {c}: host APIC_BASE {:#x} from {mode:?}", value.0);
                if r.is_err() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused APIC_BASE changed state");
                }
                self.out.push(Out::Wrmsr(r));
                if let Ok(fx) = r {
                    self.effects(c, fx, 0);
                }
                rule = IsrRule::Base(mode);
            }
            Op::Deadline { cpu, at } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let value = if at.0 == 0 { 0 } else { now.saturating_add_signed(at.0) };
                let r = self.wrmsr(c, MSR_TSC_DEADLINE, value);
                assert_eq!(r.is_ok(), self.cfg.tsc_deadline);
            }
            Op::Deliver { cpu, irq } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].deliver(irq.into());
                self.out.push(Out::Delivered(c, fx));
                self.effects(c, fx, 0);
            }
            Op::Msi { dest, logical, data, x2apic_format } => {
                match Message::from_msi(dest.0, logical, data.0, x2apic_format) {
                    Some(msg) => self.send(msg, None, 0),
                    None => self.out.push(Out::Fx(Effects::NONE)),
                }
            }
            Op::Advance { ticks } => self.advance(ticks.0),
            Op::RunToTimer => {
                if let Some(t) = self.armed.iter().flatten().copied().min() {
                    self.advance(t.saturating_sub(now));
                }
            }
            Op::TimerExpired { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].timer_expired(now);
                self.out.push(Out::Expired(c, fx));
                self.effects(c, fx, 0);
            }
            Op::TakeEvents { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let ev = self.cpus[c].take_events();
                if ev.reset.is_some() {
                    rule = IsrRule::Reset;
                }
                if ev.reset.is_some() || ev.start.is_some() {
                    self.stats.resets += 1;
                }
                assert_eq!(self.cpus[c].latched(), Latched::default(), "vCPU {c}: take_events left requests");
                self.out.push(Out::Events(ev));
                self.effects(c, ev.effects, 0);
            }
            Op::Accept { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let p = self.cpus[c].pending_interrupt();
                self.out.push(Out::Pending(p));
                if let Some(v) = p {
                    let ok = self.cpus[c].accept_interrupt(v);
                    assert!(ok, "vCPU {c}: accept_interrupt({v:#x}) refused the pending vector");
                    self.out.push(Out::Accepted(ok));
                    self.accepted[c].set(v);
                    self.stats.accepted += 1;
                    rule = IsrRule::Added(v);
                }
            }
            Op::AcceptVector { cpu, vector } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let p = self.cpus[c].pending_interrupt();
                let old = self.cpus[c].clone();
                let ok = self.cpus[c].accept_interrupt(vector);
                assert_eq!(ok, p == Some(vector), "vCPU {c}: accept_interrupt({vector:#x}) with {p:?} pending");
                if ok {
                    self.accepted[c].set(vector);
                    self.stats.accepted += 1;
                    rule = IsrRule::Added(vector);
                } else {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused accept_interrupt changed state");
                }
                self.out.push(Out::Accepted(ok));
            }
            Op::SetLint { cpu, pin, asserted } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].set_lint(pin % 4, asserted);
                self.out.push(Out::Fx(fx));
                self.effects(c, fx, 0);
            }
            Op::Fire { cpu, lvt } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].fire(Lvt::ALL[lvt as usize % 7]);
                self.out.push(Out::Fx(fx));
                self.effects(c, fx, 0);
            }
            Op::SetTpr { cpu, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                self.cpus[c].set_tpr(value);
            }
            Op::Snapshot { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let (snap, fx) = self.cpus[c].snapshot(now);
                self.out.push(Out::Snapshot(Box::new(snap), fx));
                self.effects(c, fx, 0);
            }
            Op::Restore { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let (snap, fx) = self.cpus[c].snapshot(now);
                self.out.push(Out::Snapshot(Box::new(snap), fx));
                self.effects(c, fx, 0);
                let (v, rfx) = Vlapic::restore(self.cfg, &snap)
                    .unwrap_or_else(|e| panic!("vCPU {c}: restore refused its own snapshot: {e}\n{snap:#x?}"));
                self.cpus[c] = v;
                self.restored(c, rfx);
                self.out.push(Out::Restored(rfx));
            }
        }
        self.settle();
        self.after_step(&before, acting, rule);
        std::mem::take(&mut self.out)
    }

    /// Takes over the effects of a restore into vCPU `c`, which (by the
    /// API's definition) report a change from the power-up xAPIC mode.
    fn restored(&mut self, c: usize, rfx: Effects) {
        let mc = rfx.mode.expect("restore reports the mode");
        assert_eq!(mc.from, Mode::XApic);
        assert_eq!((mc.to, mc.base), self.mode[c], "vCPU {c}: restore reports another mode or page");
        let t = rfx.timer.expect("restore reports the timer");
        let armed = match t {
            TimerAction::Arm(t) => Some(t),
            TimerAction::Disarm => None,
        };
        assert_eq!(armed, self.armed[c], "vCPU {c}: restore arms another timer than was armed");
        assert_eq!(rfx.ipi, None);
        assert_eq!(rfx.eoi, None);
    }

    /// What every op must have left true, beyond [`Machine::check`]: ISRs
    /// change only as the op allows, and anything that became pending on a
    /// vCPU not already running was signalled with `wake`.
    fn after_step(&mut self, before: &[(Bits256, Bits256, Latched)], acting: Option<(usize, bool)>, rule: IsrRule) {
        for (i, (irr0, isr0, lat0)) in before.iter().enumerate() {
            let (irr, isr, _) = self.cpus[i].vectors();
            let lat = self.cpus[i].latched();
            let here = acting.map(|(c, _)| c) == Some(i);
            let rule = if here { rule } else { IsrRule::Same };
            let highest = isr0.highest();
            match rule {
                IsrRule::Same => assert_eq!(isr, *isr0, "vCPU {i}: ISR changed"),
                IsrRule::Added(v) => {
                    let mut want = *isr0;
                    want.set(v);
                    assert_eq!(isr, want, "vCPU {i}: accepting {v:#x} did not just add it to ISR");
                    assert!(!irr.get(v), "vCPU {i}: accepted {v:#x} still in IRR");
                }
                IsrRule::Eoi => {
                    let mut want = *isr0;
                    if let Some(v) = highest {
                        want.clear(v);
                        self.stats.eois += 1;
                    }
                    assert_eq!(isr, want, "vCPU {i}: EOI did not end exactly the highest in-service vector");
                }
                IsrRule::Reset => assert!(isr.is_empty(), "vCPU {i}: INIT left ISR {isr:x?}"),
                IsrRule::Base(from) => {
                    let to = self.cpus[i].mode();
                    match (from, to) {
                        (a, b) if a == b => assert_eq!(isr, *isr0, "vCPU {i}: ISR changed"),
                        (Mode::XApic, Mode::X2Apic) => {
                            assert_eq!(isr, *isr0, "vCPU {i}: entering x2APIC mode changed ISR")
                        }
                        (_, Mode::Disabled) => assert!(isr.is_empty(), "vCPU {i}: disabling left ISR"),
                        _ => assert!(subset(&isr, isr0), "vCPU {i}: a mode change added to ISR"),
                    }
                }
            }
            let running = acting == Some((i, true));
            let gained = !subset(&irr, irr0)
                || (lat.init && !lat0.init)
                || (lat.nmi && !lat0.nmi)
                || (lat.smi && !lat0.smi)
                || (lat.extint && !lat0.extint)
                || (lat.sipi.is_some() && lat0.sipi.is_none());
            if gained && !running {
                assert!(self.woken[i], "vCPU {i}: something became pending without a wake-up");
            }
        }
    }

    /// Asserts the invariants that hold after every op, for every vCPU,
    /// through the public API; the probes run on copies and must not change
    /// them.
    pub fn check(&mut self) {
        for i in 0..self.cpus.len() {
            self.check_cpu(i);
            if self.cpus[i].mode() == Mode::X2Apic {
                self.stats.x2apic += 1;
            }
        }
    }

    fn check_cpu(&mut self, i: usize) {
        let now = self.now;
        let cfg = self.cfg;
        let id = self.ids[i];
        let sample = 0x800 + ((self.steps * 37 + i as u64 * 11) % 0x100) as u32;
        let mut v = self.cpus[i].clone();
        let mode = v.mode();
        let (irr, isr, tmr) = v.vectors();
        for (name, bits) in [("IRR", irr), ("ISR", isr), ("TMR", tmr)] {
            assert!(!bits.has_illegal(), "vCPU {i}: {name} holds a vector below 16: {bits:x?}");
        }

        // SDM "Processor Priority Register" and "Arbitration Priority
        // Register".
        let tpr = v.tpr();
        let isrv = isr.highest().unwrap_or(0);
        let irrv = irr.highest().unwrap_or(0);
        let ppr = if tpr >> 4 >= isrv >> 4 { tpr } else { isrv & 0xf0 };
        assert_eq!(v.ppr(), ppr, "vCPU {i}: PPR with TPR {tpr:#x}, ISRV {isrv:#x}");
        let apr = if tpr >> 4 >= irrv >> 4 && tpr >> 4 > isrv >> 4 {
            tpr
        } else {
            (tpr & 0xf0).max(isrv & 0xf0).max(irrv & 0xf0)
        };
        assert_eq!(v.apr(), apr, "vCPU {i}: APR with TPR {tpr:#x}, ISRV {isrv:#x}, IRRV {irrv:#x}");
        let pending = irr.highest().filter(|&x| x >> 4 > ppr >> 4);
        assert_eq!(v.pending_interrupt(), pending, "vCPU {i}: pending interrupt with PPR {ppr:#x}");

        // Every in-service vector was accepted, and not ended since.
        assert!(
            subset(&isr, &self.accepted[i]),
            "vCPU {i}: ISR {isr:x?} holds a vector that was never accepted (accepted: {:x?})",
            self.accepted[i]
        );
        self.accepted[i] = intersect(&self.accepted[i], &isr);

        // The mode and page the effects reported are the real ones.
        assert_eq!(self.mode[i], (mode, v.apic_base() & !0xfff), "vCPU {i}: mode effects missed a change");

        let ep = v.endpoint();
        match mode {
            Mode::X2Apic => {
                let ldr = ((id >> 4) << 16) | (1 << (id & 15));
                assert_eq!(x2apic_ldr(id), ldr);
                assert_eq!(v.rdmsr(0x80d, now), Ok(ldr as u64), "vCPU {i}: x2APIC LDR");
                assert_eq!(v.rdmsr(0x802, now), Ok(id as u64), "vCPU {i}: x2APIC ID");
                assert_eq!((ep.id, ep.ldr), (id, ldr), "vCPU {i}: endpoint in x2APIC mode");
                assert_eq!(v.rdmsr(0x808, now), Ok(tpr as u64), "vCPU {i}: TPR MSR");
                assert_eq!(v.rdmsr(0x80a, now), Ok(ppr as u64), "vCPU {i}: PPR MSR");
                for w in 0..8u32 {
                    assert_eq!(v.rdmsr(0x810 + w, now), Ok(isr.0[w as usize] as u64), "vCPU {i}: ISR MSR {w}");
                    assert_eq!(v.rdmsr(0x818 + w, now), Ok(tmr.0[w as usize] as u64), "vCPU {i}: TMR MSR {w}");
                    assert_eq!(v.rdmsr(0x820 + w, now), Ok(irr.0[w as usize] as u64), "vCPU {i}: IRR MSR {w}");
                }
                let page = v.apic_base() & !0xfff;
                assert_eq!(v.mmio_base(), None);
                for gpa in [page + 0x20, page + 0x80, DEFAULT_BASE + 0x20] {
                    assert_eq!(v.mmio_read(gpa, 4, now), None, "vCPU {i}: MMIO read in x2APIC mode");
                    assert_eq!(v.mmio_write(gpa, 4, 0xff, now), None, "vCPU {i}: MMIO write in x2APIC mode");
                }
            }
            Mode::XApic => {
                let page = v.mmio_base().expect("xAPIC mode has a page");
                assert_eq!(page, v.apic_base() & !0xfff);
                let rd = |v: &mut Vlapic, off: u64| v.mmio_read(page + off, 4, now).expect("in the page");
                assert_eq!(rd(&mut v, 0x20) >> 24, ep.id as u64, "vCPU {i}: xAPIC ID");
                assert_eq!(rd(&mut v, 0xd0), ep.ldr as u64, "vCPU {i}: xAPIC LDR");
                assert_eq!(rd(&mut v, 0x80), tpr as u64, "vCPU {i}: TPR register");
                assert_eq!(rd(&mut v, 0x90), apr as u64, "vCPU {i}: APR register");
                assert_eq!(rd(&mut v, 0xa0), ppr as u64, "vCPU {i}: PPR register");
                for w in 0..8usize {
                    let off = 0x10 * w as u64;
                    assert_eq!(rd(&mut v, 0x100 + off), isr.0[w] as u64, "vCPU {i}: ISR word {w}");
                    assert_eq!(rd(&mut v, 0x180 + off), tmr.0[w] as u64, "vCPU {i}: TMR word {w}");
                    assert_eq!(rd(&mut v, 0x200 + off), irr.0[w] as u64, "vCPU {i}: IRR word {w}");
                }
            }
            Mode::Disabled => {
                assert_eq!(v.mmio_base(), None);
                assert_eq!(v.mmio_read(DEFAULT_BASE + 0x20, 4, now), None);
                assert!(irr.is_empty() && isr.is_empty(), "vCPU {i}: a disabled APIC holds vectors");
                assert_eq!(v.latched(), Latched::default(), "vCPU {i}: a disabled APIC holds requests");
            }
        }
        if mode != Mode::X2Apic {
            for msr in [0x802, 0x808, 0x80a, 0x80b, 0x80d, 0x830, 0x83f, sample] {
                assert_eq!(v.rdmsr(msr, now), Err(Gp), "vCPU {i}: RDMSR {msr:#x} in {mode:?} mode");
                assert_eq!(v.wrmsr(msr, 0, now), Err(Gp), "vCPU {i}: WRMSR {msr:#x} in {mode:?} mode");
            }
        }
        assert_eq!(v, self.cpus[i], "vCPU {i}: reading registers changed state");

        // Every snapshot restores, to the same state; and the timer the
        // effects armed is the one the model holds.
        let (snap, fx) = v.snapshot(now);
        let (mut r, _) = Vlapic::restore(cfg, &snap)
            .unwrap_or_else(|e| panic!("vCPU {i}: restore refused a snapshot: {e}\n{snap:#x?}"));
        assert_eq!(r.snapshot(now).0, snap, "vCPU {i}: snapshot of the restored APIC differs");
        if self.armed[i].is_none_or(|t| t > now) {
            assert_eq!(fx, Effects::NONE, "vCPU {i}: snapshot serviced a timer that was not due");
            let next = (snap.timer_next != 0).then_some(snap.timer_next);
            assert_eq!(self.armed[i], next, "vCPU {i}: timer effects missed a change (armed vs. model)");
        }
    }

    /// Snapshots every vCPU now (acting on the effects).
    pub fn snapshots(&mut self) -> Vec<Snapshot> {
        let now = self.now;
        (0..self.cpus.len())
            .map(|i| {
                let (snap, fx) = self.cpus[i].snapshot(now);
                self.effects(i, fx, 0);
                snap
            })
            .collect()
    }

    /// A second machine restored from snapshots of every vCPU, with the
    /// same clock and bookkeeping.
    pub fn fork(&mut self) -> Machine {
        let snaps = self.snapshots();
        let mut b = self.clone();
        b.out.clear();
        for (i, snap) in snaps.iter().enumerate() {
            let (v, rfx) = Vlapic::restore(self.cfg, snap)
                .unwrap_or_else(|e| panic!("vCPU {i}: restore refused a snapshot: {e}\n{snap:#x?}"));
            b.cpus[i] = v;
            b.restored(i, rfx);
        }
        b
    }
}

/// Whether every bit of `a` is in `b`.
fn subset(a: &Bits256, b: &Bits256) -> bool {
    a.0.iter().zip(b.0).all(|(x, y)| x & !y == 0)
}

fn intersect(a: &Bits256, b: &Bits256) -> Bits256 {
    let mut out = *a;
    for (o, y) in out.0.iter_mut().zip(b.0) {
        *o &= y;
    }
    out
}

/// Plays `ops` on the machine `setup` describes, checking after every op.
/// With `split`, forks a restored copy before op `split` (clamped to the
/// end) and asserts that from there both machines return the same values
/// and effects for every op, and end with the same snapshots. Returns how
/// deep the run got.
pub fn run(setup: &Setup, ops: &[Op], split: Option<usize>) -> Stats {
    let mut a = Machine::new(setup);
    a.check();
    let split = split.map(|s| s.min(ops.len()));
    let mut b: Option<Machine> = None;
    for (k, op) in ops.iter().enumerate() {
        if split == Some(k) {
            b = Some(a.fork());
        }
        let out = a.step(op);
        a.check();
        if let Some(b) = &mut b {
            let out_b = b.step(op);
            b.check();
            assert_eq!(out, out_b, "op {k} ({op:?}) went differently after snapshot and restore");
        }
    }
    if split == Some(ops.len()) {
        b = Some(a.fork());
    }
    if let Some(mut b) = b {
        assert_eq!(a.now, b.now);
        assert_eq!(a.snapshots(), b.snapshots(), "final snapshots differ after snapshot and restore");
    }
    a.stats
}

/// The proptest strategies.
#[cfg(not(fuzzing))]
pub mod strategy {
    use super::*;

    /// A [`Setup`], any draw.
    pub fn setup() -> impl Strategy<Value = Setup> {
        (any::<(u8, u8, u8)>(), any::<[u8; 5]>(), any::<(u8, u64)>()).prop_map(
            |((cpus, config, ids), modes, (time, tsc))| Setup { cpus, config, ids, modes, time, tsc },
        )
    }

    fn irq() -> impl Strategy<Value = Irq> {
        prop_oneof![
            6 => (any::<u8>(), any::<bool>()).prop_map(|(vector, level)| Irq::Fixed { vector, level }),
            1 => Just(Irq::Smi),
            1 => Just(Irq::Nmi),
            1 => Just(Irq::Init),
            1 => any::<u8>().prop_map(Irq::Sipi),
            1 => Just(Irq::ExtInt),
        ]
    }

    fn mode() -> impl Strategy<Value = ModeSel> {
        prop_oneof![1 => Just(ModeSel::Disabled), 2 => Just(ModeSel::XApic), 3 => Just(ModeSel::X2Apic)]
    }

    /// One [`Op`], weighted towards the ones that move interrupts along.
    pub fn op() -> impl Strategy<Value = Op> {
        let cpu = || any::<u8>();
        prop_oneof![
            2 => (cpu(), Off::strategy(), Width::strategy())
                .prop_map(|(cpu, off, size)| Op::MmioRead { cpu, off, size }),
            6 => (cpu(), Off::strategy(), Width::strategy(), Val::strategy())
                .prop_map(|(cpu, off, size, value)| Op::MmioWrite { cpu, off, size, value }),
            2 => (cpu(), Msr::strategy()).prop_map(|(cpu, msr)| Op::Rdmsr { cpu, msr }),
            3 => (cpu(), Msr::strategy(), Val::strategy())
                .prop_map(|(cpu, msr, value)| Op::Wrmsr { cpu, msr, value }),
            2 => (cpu(), RegSel::strategy()).prop_map(|(cpu, reg)| Op::RegRead { cpu, reg }),
            14 => (cpu(), RegVal::strategy()).prop_map(|(cpu, write)| Op::RegWrite { cpu, write }),
            8 => (cpu(), Icr::strategy()).prop_map(|(cpu, icr)| Op::Ipi { cpu, icr }),
            10 => cpu().prop_map(|cpu| Op::Eoi { cpu }),
            2 => (cpu(), mode(), any::<bool>())
                .prop_map(|(cpu, to, moved)| Op::Transition { cpu, to, moved }),
            1 => (cpu(), Base::strategy()).prop_map(|(cpu, value)| Op::SetApicBase { cpu, value }),
            3 => (cpu(), Rel::strategy()).prop_map(|(cpu, at)| Op::Deadline { cpu, at }),
            10 => (cpu(), irq()).prop_map(|(cpu, irq)| Op::Deliver { cpu, irq }),
            4 => (Dest::strategy(), any::<bool>(), MsiData::strategy(), any::<bool>()).prop_map(
                |(dest, logical, data, x2apic_format)| Op::Msi { dest, logical, data, x2apic_format }
            ),
            5 => Ticks::strategy().prop_map(|ticks| Op::Advance { ticks }),
            3 => Just(Op::RunToTimer),
            1 => cpu().prop_map(|cpu| Op::TimerExpired { cpu }),
            5 => cpu().prop_map(|cpu| Op::TakeEvents { cpu }),
            16 => cpu().prop_map(|cpu| Op::Accept { cpu }),
            1 => (cpu(), any::<u8>()).prop_map(|(cpu, vector)| Op::AcceptVector { cpu, vector }),
            3 => (cpu(), 0..4u8, any::<bool>())
                .prop_map(|(cpu, pin, asserted)| Op::SetLint { cpu, pin, asserted }),
            3 => (cpu(), 0..7u8).prop_map(|(cpu, lvt)| Op::Fire { cpu, lvt }),
            2 => (cpu(), prop_oneof![Just(0u8), any::<u8>()])
                .prop_map(|(cpu, value)| Op::SetTpr { cpu, value }),
            1 => cpu().prop_map(|cpu| Op::Snapshot { cpu }),
            1 => cpu().prop_map(|cpu| Op::Restore { cpu }),
        ]
    }

    /// Up to `max` ops.
    pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(op(), 0..=max)
    }
}
