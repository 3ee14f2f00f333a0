// SPDX-License-Identifier: GPL-2.0

//! The PC's two cascaded 8259A programmable interrupt controllers and
//! their edge/level control registers, as one pure, total state machine.
//!
//! The master answers ports 0x20/0x21, the slave 0xA0/0xA1; the slave's
//! INT output drives master input IR2; the ELCR at 0x4D0/0x4D1 selects
//! edge or level triggering per IRQ as on the PIIX/ICH. The behaviour is
//! the Intel 8259A datasheet's: the ICW1-ICW4 initialisation sequence,
//! OCW1 masking, every OCW2 command (EOIs, rotations, set priority), OCW3
//! (read IRR/ISR, poll, special mask mode), automatic EOI, special fully
//! nested mode, and the spurious IR7 vector of the chip whose request went
//! away before the acknowledge.
//!
//! # How the integration layer uses it
//!
//! One [`Pic`] per VM, behind the VM's interrupt-controller lock.
//!
//! - **Port I/O.** Byte accesses to [`regs::PORTS`] go to [`Pic::read`]
//!   and [`Pic::write`]. A wider access is split into bytes at ascending
//!   ports (what the ISA bus does). Other ports are not the device's:
//!   reads give 0xFF, writes do nothing.
//! - **Inputs.** ISA IRQ lines go to [`Pic::set_irq`] (IRQ 0-15, except
//!   2: master IR2 is the cascade input and takes no ISA line).
//! - **Output.** Every mutating call returns [`Effects`]; `intr` is the
//!   INTR output's new level when it changed. Feed it to the BSP's LINT0
//!   (the local APIC decides whether it is ExtINT, and the IOAPIC's pin 0
//!   if that is programmed ExtINT), and kick the BSP when it rises.
//!   [`Pic::intr`] gives the level at any time.
//! - **Acknowledge.** When the CPU takes the ExtINT, [`Pic::intack`] is
//!   the INTA cycle: it returns the vector to inject.
//! - **Reset and save/restore.** [`Pic::reset`] on platform reset;
//!   [`Pic::snapshot`] / [`Pic::restore`] for migration.
//!
//! There is no time here: the 8259A has no clock.
//!
//! Glossary: PIC = programmable interrupt controller; IR = interrupt
//! request input (IR0-IR7 of one chip); IRR, ISR, IMR = interrupt request,
//! in-service and mask registers; ICW, OCW = initialisation and operation
//! command words; INT, INTR = the interrupt output and the CPU's input it
//! drives; INTA = interrupt acknowledge; EOI = end of interrupt; AEOI =
//! automatic EOI; SFNM = special fully nested mode; SMM = special mask
//! mode; ELCR = edge/level control register; LTIM = ICW1's level-trigger
//! bit; IC4 = ICW1's "ICW4 follows" bit; SNGL = ICW1's single-chip bit;
//! uPM = ICW4's 8086-mode bit; BSP = bootstrap processor; LINT0 = local
//! APIC interrupt pin 0.

pub mod regs;
pub mod snapshot;

mod chip;

#[cfg(test)]
mod tests;

pub use snapshot::{ChipSnapshot, Snapshot, SNAPSHOT_VERSION};

use super::common::LineOp;
use chip::{bit, Chip};
use regs::*;

/// What the caller must do after a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct Effects {
    /// The INTR output's new level, when it changed: drive the BSP's
    /// LINT0 (and the IOAPIC's ExtINT pin) to it.
    pub intr: Option<bool>,
}

impl Effects {
    /// No effect.
    pub const NONE: Effects = Effects { intr: None };

    /// Merges `later` into `self`: the later level wins.
    pub fn merge(&mut self, later: Effects) {
        self.intr = later.intr.or(self.intr);
    }
}

/// The two 8259As and their ELCRs.
///
/// State: each chip's IRR, ISR, IMR, input line levels, ELCR byte,
/// lowest-priority input, vector base, initialisation step and the IC4 and
/// SNGL bits of its last ICW1, read selection, pending poll, special mask
/// mode, AEOI, rotate-in-AEOI and SFNM (see [`ChipSnapshot`]). The master's
/// line 2 is the slave's INT output as last evaluated; it changes only
/// through the slave. Nothing else is kept: INTR is computed.
///
/// Choices where the datasheet leaves room, or where the PC differs:
/// - **Edge inputs latch.** A rising edge sets the IRR bit, which stays
///   until acknowledged (or ICW1, or reset) even if the line drops; a
///   level input's IRR bit follows the line. A [`LineOp::Pulse`] is a
///   rise then a fall, so on a level input it leaves nothing behind.
/// - **Cascade.** Master IR2 is edge-triggered and driven by the slave's
///   INT, which is high while the slave has a request to offer. The
///   slave's INT falls during each acknowledge of the slave (INTA or
///   poll) and rises again if it still has one, which latches master IR2
///   anew. A slave request that goes away after master IR2 latched leaves
///   the latch set: the acknowledge then returns the slave's IR7 vector
///   (spurious IRQ 15) and sets master ISR bit 2, as on hardware.
/// - **Not initialised.** After reset and from ICW1 until the last ICW,
///   a chip holds INT low and its poll word reports nothing; lines and
///   IRR still follow their inputs.
/// - **Ignored bits.** ICW1's LTIM and ADI (the ELCR decides triggering,
///   as on the PIIX/ICH), ICW3 (the wiring is fixed), ICW4's uPM, BUF and
///   M/S (vectors are always 8086-style). SNGL and IC4 only shape the
///   ICW sequence. SFNM acts on the master only.
/// - **ICW1** keeps the ISR and the rotate-in-AEOI flag, and drops a
///   pending poll (beyond the datasheet's list, which it also does).
/// - **Poll** acknowledges like INTA (AEOI and rotation apply). With no
///   request the poll word is 0. Polling the master when the slave
///   requests returns IR2 and does not touch the slave; poll it next.
/// - **Reset** is the platform's: both chips uninitialised, IMR, ISR,
///   IRR and vector base 0, IR7 lowest, ELCR all-edge. Lines keep their
///   levels (other devices drive them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pic {
    master: Chip,
    slave: Chip,
}

impl Default for Pic {
    fn default() -> Pic {
        Pic::new()
    }
}

impl Pic {
    /// Both chips in the reset state, all lines low.
    pub const fn new() -> Pic {
        Pic { master: Chip::new(true), slave: Chip::new(false) }
    }

    /// Platform reset (see [`Pic`] for the state it leaves).
    pub fn reset(&mut self) -> Effects {
        self.track(|pic| {
            pic.master.reset();
            pic.slave.reset();
        })
        .1
    }

    /// The INTR output level: the master has a request for the CPU.
    pub fn intr(&self) -> bool {
        self.master.output()
    }

    /// A byte read of `port`. Reads have effects only in poll mode, where
    /// the read is an acknowledge.
    pub fn read(&mut self, port: u16) -> (u8, Effects) {
        match port {
            MASTER_CMD | MASTER_DATA if self.master.poll => self.track(|pic| pic.poll(false)),
            SLAVE_CMD | SLAVE_DATA if self.slave.poll => self.track(|pic| pic.poll(true)),
            MASTER_CMD => (self.master.read_command(), Effects::NONE),
            MASTER_DATA => (self.master.imr, Effects::NONE),
            SLAVE_CMD => (self.slave.read_command(), Effects::NONE),
            SLAVE_DATA => (self.slave.imr, Effects::NONE),
            ELCR_MASTER => (self.master.elcr, Effects::NONE),
            ELCR_SLAVE => (self.slave.elcr, Effects::NONE),
            _ => (UNCLAIMED_READ, Effects::NONE),
        }
    }

    /// A byte write of `value` to `port`.
    pub fn write(&mut self, port: u16, value: u8) -> Effects {
        let chip_write = |pic: &mut Pic| match port {
            MASTER_CMD => pic.master.write_command(value),
            MASTER_DATA => pic.master.write_data(value),
            SLAVE_CMD => pic.slave.write_command(value),
            SLAVE_DATA => pic.slave.write_data(value),
            ELCR_MASTER => pic.master.write_elcr(value),
            ELCR_SLAVE => pic.slave.write_elcr(value),
            _ => {}
        };
        self.track(chip_write).1
    }

    /// Drives ISA IRQ `irq` (0-15). IRQ 2 and numbers above 15 have no
    /// input here: nothing happens.
    pub fn set_irq(&mut self, irq: u8, op: LineOp) -> Effects {
        if irq > 15 || irq == CASCADE_PIN {
            return Effects::NONE;
        }
        self.track(|pic| {
            let chip = if irq < 8 { &mut pic.master } else { &mut pic.slave };
            let pin = irq & 7;
            match op {
                LineOp::Assert => chip.set_line(pin, true),
                LineOp::Deassert => chip.set_line(pin, false),
                LineOp::Pulse => {
                    chip.set_line(pin, true);
                    chip.set_line(pin, false);
                }
            }
        })
        .1
    }

    /// The CPU's interrupt acknowledge: the vector of the master's
    /// highest-priority request (through the slave for IR2), which is
    /// moved to service (or, with AEOI, ended at once). Without a request
    /// (INTR is low, or the request went away) it is the master's IR7
    /// vector and nothing changes; when master IR2 latched but the slave
    /// has nothing, it is the slave's IR7 vector and only the master
    /// acknowledges.
    pub fn intack(&mut self) -> (u8, Effects) {
        self.track(|pic| {
            let Some(pin) = pic.master.pick() else {
                return pic.master.vector(SPURIOUS_PIN);
            };
            pic.master.ack(pin);
            if pin != CASCADE_PIN {
                return pic.master.vector(pin);
            }
            match pic.slave.pick() {
                Some(pin) => pic.ack_slave(pin),
                None => pic.slave.vector(SPURIOUS_PIN),
            }
        })
    }

    /// Acknowledges slave input `pin`: its INT falls (master line 2 with
    /// it) until [`Pic::settle`] looks again. Returns its vector.
    fn ack_slave(&mut self, pin: u8) -> u8 {
        self.slave.ack(pin);
        self.master.set_line(CASCADE_PIN, false);
        self.slave.vector(pin)
    }

    /// A read of a chip in poll mode: the poll word, acknowledging the
    /// request it reports.
    fn poll(&mut self, slave: bool) -> u8 {
        let chip = if slave { &mut self.slave } else { &mut self.master };
        chip.poll = false;
        let Some(pin) = chip.pick() else {
            return 0;
        };
        if slave {
            self.ack_slave(pin);
        } else {
            chip.ack(pin);
        }
        POLL_INT | pin
    }

    /// Propagates the slave's INT to master line 2.
    fn settle(&mut self) {
        let int = self.slave.output();
        self.master.set_line(CASCADE_PIN, int);
    }

    /// Runs `op`, settles the cascade and reports an INTR change.
    fn track<R>(&mut self, op: impl FnOnce(&mut Pic) -> R) -> (R, Effects) {
        let before = self.intr();
        let r = op(self);
        self.settle();
        let after = self.intr();
        (r, Effects { intr: (after != before).then_some(after) })
    }

    /// Whether the master's line 2 is the slave's INT (the cascade is
    /// settled).
    fn settled(&self) -> bool {
        (self.master.lines & bit(CASCADE_PIN) != 0) == self.slave.output()
    }
}
