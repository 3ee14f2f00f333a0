// SPDX-License-Identifier: GPL-2.0

//! Every xAPIC offset at every access width, every x2APIC MSR with every
//! reserved bit, and which access path is live in which mode, checked
//! against a reference register map written here from the Intel SDM
//! (vol. 3A, "Local APIC Register Address Map", "x2APIC Register Address
//! Space", "Reserved Bit Checking") and the crate's documented choices.

use crate::regs::{BASE_EN, BASE_EXTD, DEFAULT_BASE, MSR_APIC_BASE};
use crate::{Config, Dest, Effects, Gp, Interrupt, Kind, Message, Mode, Vlapic};

/// How a register answers in one mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acc {
    /// Not there: xAPIC sets ESR bit 7, x2APIC raises #GP.
    No,
    /// Read and write.
    Rw,
    /// Writes are dropped (xAPIC) or #GP (x2APIC).
    Ro,
    /// Reads give 0 (xAPIC) or #GP (x2APIC).
    Wo,
}
use Acc::{No, Ro, Rw, Wo};

/// One row of the SDM register map.
#[derive(Clone, Copy, Debug)]
struct Row {
    /// xAPIC offset of the first register.
    off: u16,
    /// Consecutive 16-byte slots (8 for ISR, TMR and IRR).
    n: u16,
    name: &'static str,
    xapic: Acc,
    x2apic: Acc,
    /// Bits a write stores; xAPIC drops the others, x2APIC raises #GP for
    /// them unless they are in `ro`.
    wr: u32,
    /// Read-only bits of a writable register: a write leaves them alone.
    ro: u32,
}

const fn row(
    off: u16,
    n: u16,
    name: &'static str,
    xapic: Acc,
    x2apic: Acc,
    wr: u32,
    ro: u32,
) -> Row {
    Row { off, n, name, xapic, x2apic, wr, ro }
}

// LVT and ICR fields (SDM "Local Vector Table", "Interrupt Command Register").
const VEC: u32 = 0xff;
const DM: u32 = 0x700;
const DS: u32 = 1 << 12;
const POL: u32 = 1 << 13;
const RIRR: u32 = 1 << 14;
const TRIG: u32 = 1 << 15;
const MASK: u32 = 1 << 16;
const PERIODIC: u32 = 1 << 17;
const DEADLINE: u32 = 1 << 18;
const ICR_LOW: u32 = VEC | DM | 1 << 11 | 1 << 14 | TRIG | 3 << 18;

/// The register map. Optional parts (CMCI, SVR bit 12, timer bit 18) are
/// applied by [`lookup`].
const MAP: [Row; 27] = [
    row(0x020, 1, "ID", Rw, Ro, 0xff00_0000, 0),
    row(0x030, 1, "version", Ro, Ro, 0, 0),
    row(0x080, 1, "TPR", Rw, Rw, 0xff, 0),
    row(0x090, 1, "APR", Ro, No, 0, 0),
    row(0x0a0, 1, "PPR", Ro, Ro, 0, 0),
    row(0x0b0, 1, "EOI", Wo, Wo, 0, 0),
    row(0x0c0, 1, "RRD", Ro, No, 0, 0),
    row(0x0d0, 1, "LDR", Rw, Ro, 0xff00_0000, 0),
    row(0x0e0, 1, "DFR", Rw, No, 0xf000_0000, 0),
    row(0x0f0, 1, "SVR", Rw, Rw, 0x3ff, 0),
    row(0x100, 8, "ISR", Ro, Ro, 0, 0),
    row(0x180, 8, "TMR", Ro, Ro, 0, 0),
    row(0x200, 8, "IRR", Ro, Ro, 0, 0),
    row(0x280, 1, "ESR", Rw, Rw, 0, 0),
    row(0x2f0, 1, "LVT CMCI", Rw, Rw, VEC | DM | MASK, DS),
    row(0x300, 1, "ICR", Rw, Rw, ICR_LOW, DS),
    row(0x310, 1, "ICR high", Rw, No, 0xff00_0000, 0),
    row(0x320, 1, "LVT timer", Rw, Rw, VEC | MASK | PERIODIC, DS),
    row(0x330, 1, "LVT thermal", Rw, Rw, VEC | DM | MASK, DS),
    row(0x340, 1, "LVT perf", Rw, Rw, VEC | DM | MASK, DS),
    row(0x350, 1, "LVT LINT0", Rw, Rw, VEC | DM | POL | TRIG | MASK, DS | RIRR),
    row(0x360, 1, "LVT LINT1", Rw, Rw, VEC | DM | POL | TRIG | MASK, DS | RIRR),
    row(0x370, 1, "LVT error", Rw, Rw, VEC | MASK, DS),
    row(0x380, 1, "initial count", Rw, Rw, u32::MAX, 0),
    row(0x390, 1, "current count", Ro, Ro, 0, 0),
    row(0x3e0, 1, "divide config", Rw, Rw, 0b1011, 0),
    row(0x3f0, 1, "SELF IPI", No, Wo, 0xff, 0),
];

/// Slots of the LVT entries.
const LVTS: [usize; 7] = [0x2f, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37];

/// Timer divisors by divide-configuration bits 3, 1, 0 (SDM "Divide
/// Configuration Register").
const DIVIDE: [u64; 8] = [2, 4, 8, 16, 32, 64, 128, 1];

/// The row for 16-byte `slot` under `cfg`, if the SDM has one.
fn lookup(cfg: &Config, slot: usize) -> Option<Row> {
    let mut r = *MAP
        .iter()
        .find(|r| (r.off as usize >> 4..(r.off as usize >> 4) + r.n as usize).contains(&slot))?;
    match r.off {
        0x2f0 if !cfg.cmci => return None,
        0x0f0 if cfg.eoi_suppression => r.wr |= 1 << 12,
        0x320 if cfg.tsc_deadline => r.wr |= DEADLINE,
        _ => {}
    }
    Some(r)
}

/// The register's name in the map, for messages.
fn name(cfg: &Config, slot: usize) -> &'static str {
    lookup(cfg, slot).map_or("reserved", |r| r.name)
}

/// The highest vector set in a 256-bit register given as eight words.
fn highest(words: &[u32]) -> Option<u32> {
    (0..8).rev().find(|i| words[*i] != 0).map(|i| i as u32 * 32 + 31 - words[i].leading_zeros())
}

fn put(words: &mut [u32], vector: u8, on: bool) {
    let (w, b) = (vector as usize / 32, vector % 32);
    words[w] = (words[w] & !(1 << b)) | (on as u32) << b;
}

/// The reference APIC: register values by slot, with the SDM's rules.
#[derive(Clone, Debug)]
struct Ref {
    cfg: Config,
    x2: bool,
    /// The initial (x2APIC) ID.
    id: u32,
    /// Values by slot; in x2APIC mode slot 0x31 holds ICR bits 63:32.
    v: [u32; 0x40],
    esr_pending: u32,
}

impl Ref {
    /// SDM "Local APIC State After Power-Up or Reset".
    fn new(cfg: Config, id: u32) -> Ref {
        let mut v = [0; 0x40];
        v[0x02] = (id & 0xff) << 24;
        v[0x0e] = u32::MAX;
        v[0x0f] = 0xff;
        for s in LVTS {
            v[s] = MASK;
        }
        Ref { cfg, x2: false, id, v, esr_pending: 0 }
    }

    fn sw_enabled(&self) -> bool {
        self.v[0x0f] & 0x100 != 0
    }

    /// What reading `slot` gives (64 bits for the x2APIC ICR).
    fn value(&self, slot: usize) -> u64 {
        let tpr = self.v[0x08];
        let isrv = highest(&self.v[0x10..0x18]).unwrap_or(0);
        let irrv = highest(&self.v[0x20..0x28]).unwrap_or(0);
        let v = match slot {
            0x02 if self.x2 => self.id,
            0x03 => {
                0x14 | (if self.cfg.cmci { 6 } else { 5 }) << 16
                    | (self.cfg.eoi_suppression as u32) << 24
            }
            // SDM "Arbitration Priority Register".
            0x09 if tpr >> 4 >= irrv >> 4 && tpr >> 4 > isrv >> 4 => tpr,
            0x09 => (tpr & 0xf0).max(isrv & 0xf0).max(irrv & 0xf0),
            // SDM "Processor Priority Register".
            0x0a if tpr >> 4 >= isrv >> 4 => tpr,
            0x0a => isrv & 0xf0,
            0x0b | 0x0c | 0x3f => 0,
            // SDM "Logical Destination Mode in x2APIC Mode".
            0x0d if self.x2 => ((self.id >> 4) & 0xffff) << 16 | 1 << (self.id & 15),
            0x30 if self.x2 => return self.v[0x30] as u64 | (self.v[0x31] as u64) << 32,
            s => self.v[s],
        };
        v as u64
    }

    /// A write of a writable register, `val` already checked.
    fn store(&mut self, slot: usize, r: Row, val: u64) {
        let new = (val as u32 & r.wr) | (self.v[slot] & r.ro);
        let forced = if self.sw_enabled() { 0 } else { MASK };
        match slot {
            0x0b => {
                if let Some(top) = highest(&self.v[0x10..0x18]) {
                    put(&mut self.v[0x10..0x18], top as u8, false);
                }
            }
            0x0e => self.v[slot] = new | 0x0fff_ffff,
            0x0f => {
                self.v[slot] = new;
                if !self.sw_enabled() {
                    LVTS.iter().for_each(|s| self.v[*s] |= MASK);
                }
            }
            0x28 => self.v[slot] = core::mem::take(&mut self.esr_pending),
            0x2f | 0x32..=0x37 => self.v[slot] = new | forced,
            0x30 => {
                self.v[slot] = new;
                if self.x2 {
                    self.v[0x31] = (val >> 32) as u32;
                }
            }
            // TSC-deadline mode ignores the initial count.
            0x38 if (self.v[0x32] >> 17) & 3 == 2 => {}
            0x38 => [self.v[0x38], self.v[0x39]] = [new; 2],
            0x3f if val >= 16 && self.sw_enabled() => self.deliver(val as u8, false),
            0x3f => {}
            _ => self.v[slot] = new,
        }
    }

    /// The 32-bit word an xAPIC read of `slot` sees, or `None` if reserved.
    fn xapic_word(&self, slot: usize) -> Option<u32> {
        let r = lookup(&self.cfg, slot).filter(|r| r.xapic != No)?;
        Some(if r.xapic == Wo { 0 } else { self.value(slot) as u32 })
    }

    /// An MMIO read: byte by byte, bytes 4-15 of a slot and bytes past the
    /// page read 0, a reserved register's bytes set ESR bit 7.
    fn read(&mut self, off: u64, size: u64) -> u64 {
        let mut out = 0;
        for i in 0..size {
            let at = off + i;
            if at >= 0x1000 || at % 16 >= 4 {
                continue;
            }
            match self.xapic_word(at as usize / 16) {
                Some(w) => out |= ((w >> (8 * (at % 4))) as u64 & 0xff) << (8 * i),
                None => self.esr_pending |= 0x80,
            }
        }
        out
    }

    /// An MMIO write: only 32-bit stores at a slot's start count.
    fn write(&mut self, off: u64, size: u64, val: u64) {
        if off % 16 != 0 || size != 4 {
            return;
        }
        let slot = off as usize / 16;
        match lookup(&self.cfg, slot).filter(|r| r.xapic != No) {
            None => self.esr_pending |= 0x80,
            Some(r) if r.xapic == Ro => {}
            Some(r) => self.store(slot, r, val & 0xffff_ffff),
        }
    }

    fn rdmsr(&self, msr: u32) -> Result<u64, Gp> {
        let slot = msr as usize - 0x800;
        match lookup(&self.cfg, slot).map(|r| r.x2apic) {
            Some(Rw | Ro) => Ok(self.value(slot)),
            _ => Err(Gp),
        }
    }

    fn wrmsr(&mut self, msr: u32, val: u64) -> Result<(), Gp> {
        let slot = msr as usize - 0x800;
        let r = lookup(&self.cfg, slot).filter(|r| matches!(r.x2apic, Rw | Wo)).ok_or(Gp)?;
        // The x2APIC ICR has no delivery-status bit: bit 12 is reserved.
        let ok = if slot == 0x30 { r.wr as u64 | 0xffff_ffff << 32 } else { (r.wr | r.ro) as u64 };
        if val & !ok != 0 {
            return Err(Gp);
        }
        self.store(slot, r, val);
        Ok(())
    }

    /// A fixed interrupt accepted into IRR; TMR says its trigger mode.
    fn deliver(&mut self, vector: u8, level: bool) {
        put(&mut self.v[0x20..0x28], vector, true);
        put(&mut self.v[0x18..0x20], vector, level);
    }

    /// The CPU took `vector`: IRR to ISR.
    fn accept(&mut self, vector: u8) {
        put(&mut self.v[0x20..0x28], vector, false);
        put(&mut self.v[0x10..0x18], vector, true);
    }

    /// Current count after `ticks` TSC ticks of counting from the initial
    /// count.
    fn count_after(&mut self, ticks: u64) {
        let dcr = self.v[0x3e] as usize;
        let div = DIVIDE[(dcr & 3) | (dcr >> 1 & 4)] as u128;
        let counts = ticks as u128 * self.cfg.bus_hz as u128 / (self.cfg.tsc_hz as u128 * div);
        self.v[0x39] = self.v[0x38] - counts as u32;
    }
}

/// Everything optional, and nothing optional.
const BARE: Config =
    Config { tsc_deadline: false, cmci: false, eoi_suppression: false, ..Config::DEFAULT };
const CONFIGS: [Config; 2] = [Config::DEFAULT, BARE];
/// The x2APIC ID of the APIC under test (xAPIC ID 0x45 after reset).
const ID: u32 = 0x0001_2345;
/// When the timer sweeps read the current count.
const NOW: u64 = 2_000_000;
const INITIAL: u32 = 0x1234_5678;

/// The model and the reference, driven in step.
#[derive(Clone)]
struct Pair {
    a: Vlapic,
    r: Ref,
}

impl Pair {
    fn mmio(&mut self, off: u64, val: u64) {
        assert!(self.a.mmio_write(DEFAULT_BASE + off, 4, val, 0).is_some());
        self.r.write(off, 4, val);
    }

    fn msr(&mut self, msr: u32, val: u64) {
        let got = self.a.wrmsr(msr, val, 0).map(|_| ());
        assert_eq!(got, self.r.wrmsr(msr, val), "WRMSR {msr:#x} <- {val:#x}");
    }

    /// Latches ESR on both and returns (model, reference) values.
    fn latch_esr(&mut self) -> (u64, u64) {
        self.mmio(0x280, 0);
        (self.a.mmio_read(DEFAULT_BASE + 0x280, 4, 0).unwrap(), self.r.value(0x28))
    }

    /// Every register xAPIC reads can see (reserved slots are `None` and
    /// not touched, so nothing sets ESR or fires the error LVT).
    fn xapic_dump(&mut self) -> [[Option<u32>; 0x40]; 2] {
        let want: [_; 0x40] = core::array::from_fn(|slot| self.r.xapic_word(slot));
        let got = core::array::from_fn(|slot| {
            want[slot].and_then(|_| {
                self.a.mmio_read(DEFAULT_BASE + slot as u64 * 16, 4, 0).map(|v| v as u32)
            })
        });
        [got, want]
    }

    fn x2apic_dump(&mut self, now: u64) -> [[Result<u64, Gp>; 0x100]; 2] {
        let got = core::array::from_fn(|i| self.a.rdmsr(0x800 + i as u32, now));
        [got, core::array::from_fn(|i| self.r.rdmsr(0x800 + i as u32))]
    }
}

/// Distinctive values for the writable xAPIC registers, some with
/// reserved bits set: (offset, value).
const XAPIC_SETUP: [(u64, u64); 13] = [
    (0x080, 0xffff_ff3c), // TPR
    (0x020, 0x5aff_ffff), // ID
    (0x0d0, 0xa5ff_ffff), // LDR
    (0x0e0, 0x0000_0000), // DFR: cluster model
    (0x2f0, 0x0001_02b1), // LVT CMCI (reserved without CMCI)
    (0x320, 0xfffe_00c2), // LVT timer: periodic
    (0x330, 0x0001_04d3), // LVT thermal: NMI, masked
    (0x340, 0x0000_00e4), // LVT perf
    (0x350, 0x0000_a7f5), // LVT LINT0: ExtINT, active low, level
    (0x360, 0x0001_84c6), // LVT LINT1
    (0x370, 0x0001_00f7), // LVT error: masked, so reserved accesses fire nothing
    (0x3e0, 0xffff_fffb), // divide by 1
    (0x310, 0xb7ff_ffff), // ICR high
];

/// Interrupts taken before the sweeps: (vector, level, accepted into ISR).
const IRQS: [(u8, bool, bool); 7] = [
    (0x21, true, true),
    (0x62, true, true),
    (0xc3, false, true),
    (0x50, false, false),
    (0x9f, false, false),
    (0xe7, true, false),
    (0xfe, false, false),
];

/// NMI to all including self: a combination the ICR drops, so the write
/// only stores it.
const ICR_VALUE: u64 = 0x0008_4ce9;

/// An xAPIC with every writable register set, vectors in ISR, TMR and
/// IRR, ESR latched at 0x80 with 0x20 pending, and the timer stopped.
fn xapic_state(cfg: Config, sw_enabled: bool) -> Pair {
    let mut p = Pair { a: Vlapic::new(cfg, 0, ID, true).unwrap(), r: Ref::new(cfg, ID) };
    p.mmio(0x0f0, 0xffff_ffab); // SVR: enabled, focus off, suppress EOI
    for (vector, level, accept) in IRQS {
        let _ = p.a.deliver(Interrupt::Fixed { vector, level });
        p.r.deliver(vector, level);
        if accept {
            assert!(p.a.accept_interrupt(vector));
            p.r.accept(vector);
        }
    }
    for (off, val) in XAPIC_SETUP {
        p.mmio(off, val);
    }
    let _ = p.a.mmio_read(DEFAULT_BASE + 0x400, 4, 0);
    p.r.read(0x400, 4);
    p.mmio(0x280, 0);
    // A fixed IPI with vector 3: ESR "send illegal vector" (SDM "Error
    // Handling"), left pending.
    p.mmio(0x300, 0x03);
    p.r.esr_pending |= 0x20;
    p.mmio(0x300, ICR_VALUE);
    if !sw_enabled {
        p.mmio(0x0f0, 0xff);
    }
    p
}

/// Distinctive x2APIC values: (MSR, value).
const X2APIC_SETUP: [(u32, u64); 6] = [
    (0x830, 0x8765_4321_0008_4ce9),
    (0x808, 0x5d),
    (0x80f, 0x1ab),
    (0x832, 0x0002_00c5),
    (0x835, 0x0000_27f6),
    (0x83e, 0x8), // divide by 32
];

/// [`xapic_state`], then x2APIC mode and more distinctive values.
fn x2apic_state(cfg: Config, sw_enabled: bool) -> Pair {
    let mut p = xapic_state(cfg, true);
    let _ = p.a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | BASE_EN | BASE_EXTD, 0).unwrap();
    p.r.x2 = true;
    for (msr, val) in X2APIC_SETUP {
        p.msr(msr, val);
    }
    if !sw_enabled {
        p.msr(0x80f, 0xff);
    }
    p
}

/// A value each writable register accepts in both modes.
fn legal(slot: usize) -> u64 {
    match slot {
        0x08 => 0x20,
        0x0f => 0x1ab,
        0x2f | 0x32..=0x37 => 0xe0,
        0x30 => 0x0000_0005_0000_00e0,
        0x3f => 0x40,
        _ => 0,
    }
}

/// Values written to every register: each bit alone, each bit on top of
/// a legal value, and a few patterns.
fn values(slot: usize, bits: u32) -> impl Iterator<Item = u64> {
    let l = legal(slot);
    (0..bits).flat_map(move |b| [1u64 << b, l | 1 << b]).chain([
        l,
        0,
        u64::MAX,
        0xa5a5_a5a5,
        0x5a5a_5a5a,
        0xdead_beef_5a5a_5a5a,
    ])
}

#[test]
fn xapic_reads_every_offset_and_width() {
    for cfg in CONFIGS {
        let mut p = xapic_state(cfg, true);
        p.mmio(0x380, INITIAL as u64);
        p.r.count_after(NOW);
        for off in 0..0x1000 {
            for size in 1..=8 {
                let want = p.r.read(off, size);
                assert_eq!(
                    p.a.mmio_read(DEFAULT_BASE + off, size as usize, NOW),
                    Some(want),
                    "read {off:#x}/{size} ({}) {cfg:?}",
                    name(&cfg, off as usize / 16)
                );
            }
        }
    }
}

#[test]
fn xapic_reads_of_reserved_registers_set_esr_bit7() {
    for cfg in CONFIGS {
        let mut p = xapic_state(cfg, true);
        let (got, want) = p.latch_esr();
        assert_eq!(got, want);
        for off in 0..0x1000 {
            for size in 1..=8 {
                let _ = p.a.mmio_read(DEFAULT_BASE + off, size as usize, 0);
                p.r.read(off, size);
                let illegal = p.r.esr_pending & 0x80 != 0;
                let (got, want) = p.latch_esr();
                assert_eq!(got, want, "ESR after read {off:#x}/{size} {cfg:?}");
                assert_eq!(want, if illegal { 0x80 } else { 0 });
            }
        }
    }
}

#[test]
fn xapic_writes_every_slot_width_and_alignment() {
    for cfg in CONFIGS {
        for sw in [true, false] {
            let p0 = xapic_state(cfg, sw);
            for slot in 0..0x100 {
                for (align, size) in (0..16).flat_map(|a| (1..=8).map(move |s| (a, s))) {
                    let off = slot as u64 * 16 + align;
                    let ctx = |v: u64| (name(&cfg, slot), slot, align, size, v, cfg, sw);
                    // Anything but a 32-bit store at the slot's start is dropped.
                    if (align, size) != (0, 4) {
                        for v in [u64::MAX, legal(slot & 0x3f)] {
                            let mut p = p0.clone();
                            let fx = p.a.mmio_write(DEFAULT_BASE + off, size as usize, v, 0);
                            assert_eq!(fx, Some(Effects::NONE), "{:x?}", ctx(v));
                            assert!(p.a == p0.a, "dropped write changed state {:x?}", ctx(v));
                        }
                        continue;
                    }
                    for v in values(slot & 0x3f, 32) {
                        let mut p = p0.clone();
                        p.mmio(off, v);
                        let ro = lookup(&cfg, slot).is_some_and(|r| r.xapic == Ro);
                        assert!(!ro || p.a == p0.a, "read-only register changed {:x?}", ctx(v));
                        let [got, want] = p.xapic_dump();
                        assert_eq!(got, want, "registers after write {:x?}", ctx(v));
                        let (got, want) = p.latch_esr();
                        assert_eq!(got, want, "ESR after write {:x?}", ctx(v));
                    }
                }
            }
        }
    }
}

#[test]
fn xapic_lvt_mask_forced_while_software_disabled() {
    let mut p = xapic_state(Config::DEFAULT, false);
    for s in LVTS {
        p.mmio(s as u64 * 16, 0xe5);
        assert_eq!(
            p.a.mmio_read(DEFAULT_BASE + s as u64 * 16, 4, 0),
            Some(0x1_00e5),
            "slot {s:#x}"
        );
    }
    p.mmio(0x0f0, 0x1ff);
    for s in LVTS {
        assert_eq!(
            p.a.mmio_read(DEFAULT_BASE + s as u64 * 16, 4, 0),
            Some(0x1_00e5),
            "enable unmasks nothing"
        );
        p.mmio(s as u64 * 16, 0xe5);
        assert_eq!(p.a.mmio_read(DEFAULT_BASE + s as u64 * 16, 4, 0), Some(0xe5));
    }
    p.mmio(0x0f0, 0x0ff);
    for s in LVTS {
        assert_eq!(
            p.a.mmio_read(DEFAULT_BASE + s as u64 * 16, 4, 0),
            Some(0x1_00e5),
            "disable masks all"
        );
    }
}

#[test]
fn xapic_esr_write_latches_pending_errors() {
    let mut a = Vlapic::new(Config::DEFAULT, 0, 0, true).unwrap();
    let esr = |a: &mut Vlapic| a.mmio_read(DEFAULT_BASE + 0x280, 4, 0).unwrap();
    // (access, ESR read before the ESR write, ESR read after it)
    type Step = (fn(&mut Vlapic), u64, u64);
    let steps: [Step; 4] = [
        (|a| assert_eq!(a.mmio_read(DEFAULT_BASE + 0x3f0, 4, 0), Some(0)), 0, 0x80),
        (
            |a| assert_eq!(a.mmio_write(DEFAULT_BASE + 0x400, 4, 1, 0), Some(Effects::NONE)),
            0x80,
            0x80,
        ),
        (|a| assert_eq!(a.mmio_write(DEFAULT_BASE + 0x401, 4, 1, 0), Some(Effects::NONE)), 0x80, 0),
        (|a| assert_eq!(a.mmio_read(DEFAULT_BASE + 0x004, 4, 0), Some(0)), 0, 0),
    ];
    for (i, (access, before, after)) in steps.into_iter().enumerate() {
        access(&mut a);
        assert_eq!(esr(&mut a), before, "step {i}: ESR changes only on a write to it");
        let _ = a.mmio_write(DEFAULT_BASE + 0x280, 4, 0xffff_ffff, 0).unwrap();
        assert_eq!(esr(&mut a), after, "step {i}");
    }
}

#[test]
fn x2apic_rdmsr_every_msr() {
    for cfg in CONFIGS {
        let mut p = x2apic_state(cfg, true);
        p.msr(0x838, INITIAL as u64);
        p.r.count_after(NOW);
        let [got, want] = p.x2apic_dump(NOW);
        for i in 0..0x100 {
            assert_eq!(got[i], want[i], "RDMSR {:#x} ({}) {cfg:?}", 0x800 + i, name(&cfg, i));
        }
    }
}

#[test]
fn x2apic_wrmsr_every_msr_every_bit() {
    for cfg in CONFIGS {
        for sw in [true, false] {
            let p0 = x2apic_state(cfg, sw);
            for msr in 0x800..=0x8ff {
                for v in values(msr as usize - 0x800, 64) {
                    let mut p = p0.clone();
                    let got = p.a.wrmsr(msr, v, 0).map(|_| ());
                    let want = p.r.wrmsr(msr, v);
                    let ctx = (name(&cfg, msr as usize - 0x800), msr, v, cfg, sw);
                    assert_eq!(got, want, "WRMSR {ctx:x?}");
                    if want.is_err() {
                        assert!(p.a == p0.a, "#GP changed state {ctx:x?}");
                        continue;
                    }
                    let [got, want] = p.x2apic_dump(0);
                    assert_eq!(got, want, "registers after WRMSR {ctx:x?}");
                }
            }
        }
    }
}

#[test]
fn x2apic_id_and_ldr_from_initial_id() {
    // (initial ID, LDR: ID bits 19:4 in 31:16, bit ID[3:0] in 15:0)
    const IDS: [(u32, u32); 13] = [
        (0, 0x0000_0001),
        (1, 0x0000_0002),
        (0xf, 0x0000_8000),
        (0x10, 0x0001_0001),
        (0x2a, 0x0002_0400),
        (0xff, 0x000f_8000),
        (0x100, 0x0010_0001),
        (0xffff, 0x0fff_8000),
        (0x1_0000, 0x1000_0001),
        (0xf_ffff, 0xffff_8000),
        (0x10_0000, 0x0000_0001),
        (0x1234_5678, 0x4567_0100),
        (0xffff_fffe, 0xffff_4000),
    ];
    for (id, ldr) in IDS {
        let mut a = Vlapic::new(Config::DEFAULT, 0, id, false).unwrap();
        assert_eq!(
            a.mmio_read(DEFAULT_BASE + 0x20, 4, 0),
            Some(((id & 0xff) << 24) as u64),
            "xAPIC ID {id:#x}"
        );
        // The xAPIC ID is writable, but the x2APIC ID is the initial one.
        let _ = a.mmio_write(DEFAULT_BASE + 0x20, 4, 0x9900_0000, 0).unwrap();
        let _ = a.mmio_write(DEFAULT_BASE + 0xd0, 4, 0x9900_0000, 0).unwrap();
        let _ = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | BASE_EN | BASE_EXTD, 0).unwrap();
        assert_eq!(a.rdmsr(0x802, 0), Ok(id as u64), "x2APIC ID {id:#x}");
        assert_eq!(a.rdmsr(0x80d, 0), Ok(ldr as u64), "LDR of {id:#x}");
        assert_eq!((a.id(), a.ldr()), (id, ldr));
        assert_eq!(a.wrmsr(0x802, id as u64, 0), Err(Gp), "ID is read-only");
        assert_eq!(a.wrmsr(0x80d, ldr as u64, 0), Err(Gp), "LDR is read-only");
    }
}

#[test]
fn x2apic_icr_is_64_bits() {
    let fixed = |vector| Kind::Interrupt(Interrupt::Fixed { vector, level: false });
    let msg = |kind, dest| Some(Message { kind, dest, x2apic_format: true });
    // (value, accepted, message sent)
    let rows: [(u64, bool, Option<Message>); 9] = [
        (0x1234_5678_0000_00ec, true, msg(fixed(0xec), Dest::Physical(0x1234_5678))),
        (0xffff_ffff_0000_0840, true, msg(fixed(0x40), Dest::Logical(0xffff_ffff))),
        (0x0000_0000_000c_4031, true, msg(fixed(0x31), Dest::AllButSelf)),
        (0x0000_0001_0000_0400, true, msg(Kind::Interrupt(Interrupt::Nmi), Dest::Physical(1))),
        (0x0000_0001_0000_10ec, false, None), // bit 12: no delivery status in x2APIC
        (0x0000_0001_0000_20ec, false, None),
        (0x0000_0001_0001_00ec, false, None),
        (0x0000_0001_0010_00ec, false, None),
        (0x0000_0001_8000_00ec, false, None),
    ];
    let mut a = Vlapic::new(Config::DEFAULT, 0, 7, true).unwrap();
    let _ = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | BASE_EN | BASE_EXTD | 1 << 8, 0).unwrap();
    let mut last = 0;
    for (v, ok, ipi) in rows {
        match a.wrmsr(0x830, v, 0) {
            Ok(fx) => {
                assert!(ok, "{v:#x} must #GP");
                assert_eq!(fx.ipi, ipi, "{v:#x}");
                last = v;
            }
            Err(Gp) => assert!(!ok, "{v:#x} must be accepted"),
        }
        assert_eq!(a.rdmsr(0x830, 0), Ok(last), "after {v:#x}");
        assert_eq!(a.rdmsr(0x831, 0), Err(Gp));
    }
}

#[test]
fn mmio_is_dead_in_x2apic_mode() {
    let p = x2apic_state(Config::DEFAULT, true);
    let mut a = p.a.clone();
    assert_eq!(a.mmio_base(), None);
    for off in 0..0x1000 {
        for size in 1..=8 {
            assert_eq!(a.mmio_read(DEFAULT_BASE + off, size, 0), None, "read {off:#x}/{size}");
            assert_eq!(
                a.mmio_write(DEFAULT_BASE + off, size, u64::MAX, 0),
                None,
                "write {off:#x}/{size}"
            );
        }
    }
    assert!(a == p.a);
}

#[test]
fn msrs_gp_in_xapic_mode() {
    for cfg in CONFIGS {
        let p = xapic_state(cfg, true);
        let mut a = p.a.clone();
        for msr in 0x800..=0x8ff {
            assert_eq!(a.rdmsr(msr, 0), Err(Gp), "RDMSR {msr:#x}");
            for v in [0, legal(msr as usize - 0x800), u64::MAX] {
                assert_eq!(a.wrmsr(msr, v, 0).map(|_| ()), Err(Gp), "WRMSR {msr:#x} <- {v:#x}");
            }
        }
        assert!(a == p.a);
    }
}

#[test]
fn disabled_mode_has_neither() {
    let mut a = Vlapic::new(Config::DEFAULT, 0, 0, true).unwrap();
    let _ = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | 1 << 8, 0).unwrap();
    assert_eq!((a.mode(), a.mmio_base()), (Mode::Disabled, None));
    let before = a.clone();
    for off in 0..0x1000 {
        for size in 1..=8 {
            assert_eq!(a.mmio_read(DEFAULT_BASE + off, size, 0), None);
            assert_eq!(a.mmio_write(DEFAULT_BASE + off, size, u64::MAX, 0), None);
        }
    }
    for msr in 0x800..=0x8ff {
        assert_eq!(a.rdmsr(msr, 0), Err(Gp), "RDMSR {msr:#x}");
        assert_eq!(
            a.wrmsr(msr, legal(msr as usize - 0x800), 0).map(|_| ()),
            Err(Gp),
            "WRMSR {msr:#x}"
        );
    }
    assert!(a == before);
    assert_eq!(
        a.rdmsr(MSR_APIC_BASE, 0),
        Ok(DEFAULT_BASE | 1 << 8),
        "IA32_APIC_BASE stays readable"
    );
}
