// SPDX-License-Identifier: GPL-2.0

//! The I/O APIC: an 82093AA-style interrupt router with 24 input pins.
//!
//! Each pin has a redirection-table entry (RTE) that turns the pin's
//! interrupts into messages to the local APICs. The model is a pure,
//! total state machine: it keeps the RTEs, the ID, IOREGSEL and the level
//! of each input line, and every call returns the messages to send
//! ([`Effects`]). It has no timer and no clock.
//!
//! # How the integration layer uses it
//!
//! One [`Ioapic`] per VM, behind one lock.
//!
//! - **Guest accesses.** Map the page at [`DEFAULT_BASE`] ([`MMIO_SIZE`]
//!   bytes, the address the MADT gives) and pass faults in it to
//!   [`Ioapic::read`] / [`Ioapic::write`] with the offset into the page.
//! - **Lines.** A device's interrupt line that reaches global system
//!   interrupt *n* (n < 24) calls [`Ioapic::set_pin`]`(n, op)` with the
//!   *logical* assertion: `Assert` when the device requests an interrupt,
//!   whatever the line's electrical polarity (an ISA IRQ is active high, a
//!   PCI INTx active low; both say `Assert`). The RTE's polarity bit is
//!   stored for the guest to read back and does not invert anything, as in
//!   KVM and bhyve. (The PIT's IRQ 0 is usually pin 2, per the MADT's
//!   interrupt source override.)
//! - **EOI.** When a local APIC reports the EOI of a level-triggered
//!   vector (vlapic `Effects::eoi`), call [`Ioapic::eoi`] with it. Version
//!   0x11 has no EOI register of its own.
//! - **Effects.** For each `(pin, msi)` of the returned [`Effects`], send
//!   `msi` down the same path as a device MSI: destination ID from address
//!   bits 19:12, logical mode from bit 2, the rest from the data (vlapic
//!   `Message::from_msi`). Address bits 11:4 carry the RTE's extended
//!   destination ID (bits 55:48): honour them only if the VM advertises
//!   the extended-destination-ID feature, else ignore them. The messages
//!   are copies: they may be sent after the lock is dropped. The model has
//!   already set remote IRR for each level-triggered one, so it must be
//!   sent (a lost one leaves the pin blocked until the guest reprograms
//!   it). Messages with a reserved delivery mode (3, 6) are sent as they
//!   are; the local APICs drop them.
//! - **EOI exiting.** With APIC virtualization, the vectors of
//!   level-triggered entries ([`Ioapic::level_vectors`]) need EOI exits;
//!   the set changes only through [`Ioapic::write`], [`Ioapic::reset`] and
//!   [`Ioapic::restore`].
//! - **Save and restore.** [`Ioapic::snapshot`] / [`Ioapic::restore`].
//!
//! # Choices where hardware and other models differ
//!
//! - Masked edges are lost; unmasking an edge-triggered pin whose line is
//!   high sends nothing (no edge is seen).
//! - Writing an RTE that leaves it level-triggered, unmasked, with its
//!   line asserted and remote IRR clear sends at once (KVM, bhyve).
//! - Making an entry edge-triggered clears its remote IRR (KVM; Linux
//!   relies on it to end a stuck level interrupt).
//! - A level-triggered entry with a delivery mode other than fixed or
//!   lowest priority (which the datasheet forbids) still sets remote IRR,
//!   which no EOI clears; making it edge-triggered does (KVM, bhyve).
//! - There is no guard against interrupt storms: a level line that stays
//!   asserted is sent again after every EOI (KVM delays the redelivery
//!   after 10000 in a row; not done here).
//! - [`Ioapic::reset`] keeps the line levels: they are inputs, driven by
//!   the devices.
//!
//! Glossary: APIC = advanced programmable interrupt controller; I/O APIC
//! = the I/O (system) APIC, as opposed to each CPU's local APIC; RTE =
//! redirection-table entry; IRR = interrupt request register (remote IRR:
//! the I/O APIC's note that a level interrupt is in service somewhere);
//! EOI = end of interrupt; MSI = message-signalled interrupt; IOREGSEL =
//! I/O register select; IOWIN = I/O window; MADT = ACPI multiple APIC
//! description table; GSI = global system interrupt; SMI, NMI = system
//! management and non-maskable interrupt; ExtINT = an interrupt whose
//! vector an 8259 supplies.

pub mod regs;
pub mod snapshot;

#[cfg(test)]
mod tests;

use super::common::{LineOp, Msi};
pub use regs::{
    DeliveryMode, DestMode, Polarity, Reg, Rte, Trigger, DEFAULT_BASE, MMIO_SIZE, PINS,
};
pub use snapshot::{Snapshot, SNAPSHOT_VERSION};

use regs::{
    ALL_PINS, ID_MASK, ID_MAX, ID_SHIFT, IOREGSEL, IOWIN, RTE_LEVEL, RTE_REMOTE_IRR, VERSION_REG,
    WINDOW_BYTES,
};

/// The messages a call asks the caller to send: at most one per pin, in
/// pin order. [`Ioapic::set_pin`] and [`Ioapic::write`] send at most one,
/// [`Ioapic::eoi`] one per pin that shares the vector.
///
/// Each message is a copy of its RTE at the time of the call, so sending
/// it later (outside the lock) sends what the guest had programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub struct Effects {
    /// Pins that send (bits 23:0).
    pins: u32,
    /// The RTE of each pin in `pins` when it sent; 0 for the others.
    sent: [u64; PINS],
}

impl Effects {
    /// Nothing to send.
    pub const NONE: Effects = Effects { pins: 0, sent: [0; PINS] };

    /// Whether there is nothing to send.
    pub const fn is_empty(&self) -> bool {
        self.pins == 0
    }

    /// The pins that send, one bit each (bits 23:0).
    pub const fn pins(&self) -> u32 {
        self.pins
    }

    /// How many messages there are.
    pub const fn len(&self) -> usize {
        self.pins.count_ones() as usize
    }

    /// The message `pin` sends, if it sends.
    pub fn msi(&self, pin: u8) -> Option<Msi> {
        if pin_bit(pin) & self.pins == 0 {
            return None;
        }
        self.sent.get(usize::from(pin)).map(|&bits| Rte::from_bits_truncate(bits).msi())
    }

    /// Each `(pin, message)`, in pin order.
    pub fn iter(&self) -> Deliveries<'_> {
        Deliveries { fx: self, rest: self.pins }
    }

    /// Records that `pin` sends with entry `rte`.
    fn add(&mut self, pin: u8, rte: Rte) {
        if let Some(slot) = self.sent.get_mut(usize::from(pin)) {
            *slot = rte.bits();
            self.pins |= pin_bit(pin);
        }
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = (u8, Msi);
    type IntoIter = Deliveries<'a>;

    fn into_iter(self) -> Deliveries<'a> {
        self.iter()
    }
}

/// Iterator over an [`Effects`]' messages, from [`Effects::iter`].
#[derive(Clone, Debug)]
pub struct Deliveries<'a> {
    fx: &'a Effects,
    /// Pins not yet yielded.
    rest: u32,
}

impl Iterator for Deliveries<'_> {
    type Item = (u8, Msi);

    fn next(&mut self) -> Option<(u8, Msi)> {
        while self.rest != 0 {
            // Below 32, so it fits.
            let pin = self.rest.trailing_zeros() as u8;
            self.rest &= self.rest - 1;
            if let Some(msi) = self.fx.msi(pin) {
                return Some((pin, msi));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.count_ones() as usize;
        (n, Some(n))
    }
}

/// `pin`'s bit in a pin mask; 0 for a pin that does not exist.
const fn pin_bit(pin: u8) -> u32 {
    if (pin as usize) < PINS {
        1 << pin
    } else {
        0
    }
}

/// One I/O APIC.
///
/// State (all of it guest-visible or driven by the devices, all in the
/// [`Snapshot`]):
/// - `id`: IOAPICID bits 27:24, 0-15;
/// - `ioregsel`: the selected register index (IOREGSEL bits 7:0);
/// - `rte`: the 24 redirection entries, remote IRR included;
/// - `lines`: each input line's logical level (bit n: pin n asserted).
///
/// Invariants, kept by every call and checked on restore:
/// - an RTE holds no reserved bits and delivery status is 0;
/// - an edge-triggered RTE has remote IRR clear;
/// - a level-triggered, unmasked RTE whose line is asserted has remote
///   IRR set (otherwise it would have sent).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ioapic {
    id: u8,
    ioregsel: u8,
    rte: [Rte; PINS],
    lines: u32,
}

impl Default for Ioapic {
    fn default() -> Self {
        Self::new()
    }
}

impl Ioapic {
    /// An I/O APIC after power-up: ID 0, IOREGSEL 0, every entry masked,
    /// every line low.
    pub const fn new() -> Ioapic {
        Ioapic { id: 0, ioregsel: 0, rte: [Rte::RESET; PINS], lines: 0 }
    }

    /// A platform reset: ID, IOREGSEL and entries as after power-up. The
    /// line levels stay (the devices drive them); every entry is masked,
    /// so nothing is sent.
    pub fn reset(&mut self) {
        *self = Ioapic { lines: self.lines, ..Ioapic::new() };
    }

    /// Drives the line of `pin` (its logical level: see the module
    /// documentation; the RTE's polarity is not applied). `Pulse` is
    /// `Assert` then `Deassert`.
    ///
    /// Edge-triggered: a rising edge sends if the entry is unmasked; a
    /// masked edge is lost. Level-triggered: an asserted line sends if the
    /// entry is unmasked and remote IRR is clear, and sets remote IRR.
    /// A pin of 24 or more does nothing.
    pub fn set_pin(&mut self, pin: u8, op: LineOp) -> Effects {
        let mut fx = Effects::NONE;
        match op {
            LineOp::Assert => self.raise(pin, &mut fx),
            LineOp::Deassert => self.lines &= !pin_bit(pin),
            LineOp::Pulse => {
                self.raise(pin, &mut fx);
                self.lines &= !pin_bit(pin);
            }
        }
        fx
    }

    /// A local APIC's EOI of level-triggered `vector`: every
    /// level-triggered entry with that vector and remote IRR set has it
    /// cleared, and sends again (setting it again) if its line is still
    /// asserted and it is unmasked.
    pub fn eoi(&mut self, vector: u8) -> Effects {
        let mut fx = Effects::NONE;
        for pin in 0..PINS as u8 {
            let Some(rte) = self.rte.get(usize::from(pin)).copied() else {
                continue;
            };
            if rte.is_level() && rte.remote_irr() && rte.vector() == vector {
                self.set_rte(pin, rte.with(0, RTE_REMOTE_IRR));
                self.send_if_pending(pin, &mut fx);
            }
        }
        fx
    }

    /// A guest read of `size` bytes at `offset` in the page.
    ///
    /// The page holds two 32-bit registers: IOREGSEL at 0x00-0x03 (bits
    /// 31:8 read 0) and IOWIN at 0x10-0x13 (the register IOREGSEL selects,
    /// see [`Reg`]). Every other byte reads 0. An access of 1, 2, 4 or 8
    /// bytes, aligned or not, reads the bytes it covers, little-endian;
    /// an access of any other size reads 0. Reads change nothing.
    pub fn read(&self, offset: u64, size: u8) -> u64 {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return 0;
        }
        let sel = u32::from(self.ioregsel);
        let win = self.read_reg(self.ioregsel);
        let mut value = 0u64;
        for lane in 0..u32::from(size) {
            let byte = match offset.checked_add(u64::from(lane)) {
                Some(at) => reg_byte(sel, IOREGSEL, at) | reg_byte(win, IOWIN, at),
                None => 0,
            };
            value |= u64::from(byte) << (8 * lane);
        }
        value
    }

    /// A guest write of the low `size` bytes of `value` at `offset` in the
    /// page.
    ///
    /// Same byte lanes as [`Ioapic::read`]: the bytes that fall on
    /// IOREGSEL or IOWIN replace those bytes of the register, the others
    /// are dropped, and a size other than 1, 2, 4 or 8 writes nothing. A
    /// write that covers only part of IOWIN writes the selected register
    /// with the other bytes as they read (KVM instead zero-extends a
    /// narrow write; Linux and Windows write 32 bits). Only IOWIN writes
    /// can send (see [`Ioapic::write_reg`]).
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Effects {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Effects::NONE;
        }
        let (mut sel_mask, mut sel_new, mut win_mask, mut win_new) = (0u32, 0u32, 0u32, 0u32);
        for lane in 0..u32::from(size) {
            let Some(at) = offset.checked_add(u64::from(lane)) else {
                continue;
            };
            let byte = u32::from((value >> (8 * lane)) as u8);
            if let Some(shift) = lane_shift(IOREGSEL, at) {
                sel_mask |= 0xff << shift;
                sel_new |= byte << shift;
            }
            if let Some(shift) = lane_shift(IOWIN, at) {
                win_mask |= 0xff << shift;
                win_new |= byte << shift;
            }
        }
        if sel_mask != 0 {
            let sel = (u32::from(self.ioregsel) & !sel_mask) | (sel_new & sel_mask);
            // Bits 31:8 are reserved.
            self.ioregsel = sel as u8;
        }
        if win_mask == 0 {
            return Effects::NONE;
        }
        let old = self.read_reg(self.ioregsel);
        self.write_reg(self.ioregsel, (old & !win_mask) | (win_new & win_mask))
    }

    /// The indirect register at `index`, as IOWIN reads it when IOREGSEL
    /// holds `index` (see [`Reg`]).
    pub fn read_reg(&self, index: u8) -> u32 {
        match Reg::decode(index) {
            Reg::Id | Reg::Arbitration => u32::from(self.id) << ID_SHIFT,
            Reg::Version => VERSION_REG,
            Reg::RteLow(pin) => self.rte(pin).map_or(0, |r| r.bits() as u32),
            Reg::RteHigh(pin) => self.rte(pin).map_or(0, |r| (r.bits() >> 32) as u32),
            Reg::Unused => 0,
        }
    }

    /// Writes `value` to the indirect register at `index`, as a 32-bit
    /// IOWIN write does when IOREGSEL holds `index`.
    ///
    /// IOAPICID keeps bits 27:24; IOAPICVER, IOAPICARB and unused indices
    /// drop the write. An RTE half keeps its writable bits (reserved bits
    /// are dropped; delivery status and remote IRR are kept), except that
    /// an edge-triggered result clears remote IRR. Then a level-triggered,
    /// unmasked entry whose line is asserted and whose remote IRR is clear
    /// sends.
    pub fn write_reg(&mut self, index: u8, value: u32) -> Effects {
        let mut fx = Effects::NONE;
        let (pin, shift) = match Reg::decode(index) {
            Reg::Id => {
                self.id = ((value & ID_MASK) >> ID_SHIFT) as u8 & ID_MAX;
                return fx;
            }
            Reg::Version | Reg::Arbitration | Reg::Unused => return fx,
            Reg::RteLow(pin) => (pin, 0),
            Reg::RteHigh(pin) => (pin, 32),
        };
        let Some(old) = self.rte(pin) else {
            return fx;
        };
        let half = u64::from(u32::MAX) << shift;
        let written = (old.bits() & !half) | (u64::from(value) << shift);
        let kept = old.bits() & RTE_REMOTE_IRR;
        let mut new = Rte::from_bits_truncate((written & regs::RTE_WRITABLE) | kept);
        if !new.is_level() {
            new = new.with(0, RTE_REMOTE_IRR);
        }
        self.set_rte(pin, new);
        self.send_if_pending(pin, &mut fx);
        fx
    }

    /// The APIC ID (IOAPICID bits 27:24).
    pub const fn id(&self) -> u8 {
        self.id
    }

    /// The register index IOREGSEL selects.
    pub const fn ioregsel(&self) -> u8 {
        self.ioregsel
    }

    /// The redirection entry of `pin`; `None` for a pin of 24 or more.
    pub fn rte(&self, pin: u8) -> Option<Rte> {
        self.rte.get(usize::from(pin)).copied()
    }

    /// Whether `pin`'s line is asserted (false for a pin of 24 or more).
    pub const fn line(&self, pin: u8) -> bool {
        self.lines & pin_bit(pin) != 0
    }

    /// Every line's level, bit n for pin n.
    pub const fn lines(&self) -> u32 {
        self.lines
    }

    /// The vectors of level-triggered entries, masked or not, as a
    /// 256-bit set (bit v of word v / 64): the vectors whose EOI this I/O
    /// APIC must see.
    pub fn level_vectors(&self) -> [u64; 4] {
        let mut set = [0u64; 4];
        for rte in self.rte.iter().filter(|r| r.is_level()) {
            let v = rte.vector();
            if let Some(word) = set.get_mut(usize::from(v / 64)) {
                *word |= 1 << (v % 64);
            }
        }
        set
    }

    /// Raises `pin`'s line and sends if that is an interrupt.
    fn raise(&mut self, pin: u8, fx: &mut Effects) {
        let Some(rte) = self.rte(pin) else {
            return;
        };
        let was = self.line(pin);
        self.lines |= pin_bit(pin);
        if rte.is_level() {
            self.send_if_pending(pin, fx);
        } else if !was && !rte.is_masked() {
            fx.add(pin, rte);
        }
    }

    /// Sends from a level-triggered, unmasked entry whose line is asserted
    /// and whose remote IRR is clear, and sets its remote IRR.
    fn send_if_pending(&mut self, pin: u8, fx: &mut Effects) {
        let Some(rte) = self.rte(pin) else {
            return;
        };
        if rte.is_level() && !rte.is_masked() && !rte.remote_irr() && self.line(pin) {
            fx.add(pin, rte);
            self.set_rte(pin, rte.with(RTE_REMOTE_IRR, 0));
        }
    }

    fn set_rte(&mut self, pin: u8, rte: Rte) {
        if let Some(slot) = self.rte.get_mut(usize::from(pin)) {
            *slot = rte;
        }
    }

    /// Whether the invariants listed on [`Ioapic`] hold (they always
    /// should; for tests).
    pub fn invariants_hold(&self) -> bool {
        self.id <= ID_MAX
            && self.lines & !ALL_PINS == 0
            && self
                .rte
                .iter()
                .enumerate()
                .all(|(pin, rte)| rte_problem(rte.bits(), self.lines & (1 << pin) != 0).is_none())
    }
}

/// What is wrong with an entry holding `bits` whose line is at `line`, as
/// the [`Snapshot`] field to blame; `None` if a guest can reach it.
fn rte_problem(bits: u64, line: bool) -> Option<&'static str> {
    let level = bits & RTE_LEVEL != 0;
    let masked = bits & regs::RTE_MASKED != 0;
    let remote_irr = bits & RTE_REMOTE_IRR != 0;
    if bits & !(regs::RTE_WRITABLE | RTE_REMOTE_IRR) != 0 {
        // Reserved bits, or delivery status set.
        Some("rte")
    } else if remote_irr && !level {
        Some("rte.remote_irr")
    } else if level && !masked && line && !remote_irr {
        // It would have sent and set remote IRR.
        Some("rte.remote_irr")
    } else {
        None
    }
}

/// The byte of 32-bit register `reg` (at page offset `base`) that page
/// offset `at` falls on, or 0 if it falls outside it.
fn reg_byte(reg: u32, base: u64, at: u64) -> u8 {
    lane_shift(base, at).map_or(0, |shift| (reg >> shift) as u8)
}

/// The bit position within the 32-bit register at page offset `base` of
/// the byte at page offset `at`, if it falls inside it.
fn lane_shift(base: u64, at: u64) -> Option<u32> {
    let rel = at.checked_sub(base)?;
    if rel < WINDOW_BYTES {
        // Below 4.
        Some(8 * rel as u32)
    } else {
        None
    }
}
