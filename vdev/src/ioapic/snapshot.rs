// SPDX-License-Identifier: GPL-2.0

//! Saving and restoring an I/O APIC: a versioned, plain-integer snapshot
//! of its whole state, checked field by field on restore. A snapshot that
//! no sequence of guest and device operations can produce is refused with
//! the field to blame, and the device is left as it was.

use super::super::common::ImportError;
use super::regs::{Rte, ALL_PINS, ID_MAX, PINS};
use super::{rte_problem, Ioapic};

/// The layout version [`Snapshot::version`] carries.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The whole state of one I/O APIC. It has no time-dependent state, so a
/// snapshot holds no time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// IOAPICID bits 27:24, 0-15.
    pub id: u8,
    /// IOREGSEL bits 7:0 (any value).
    pub ioregsel: u8,
    /// Redirection entries, pin order, as the guest reads them (remote IRR
    /// included; reserved bits and delivery status 0).
    pub rte: [u64; PINS],
    /// Line levels, bit n for pin n (bits 23:0).
    pub lines: u32,
}

impl Ioapic {
    /// The whole state.
    pub fn snapshot(&self) -> Snapshot {
        let mut rte = [0u64; PINS];
        for (out, r) in rte.iter_mut().zip(self.rte.iter()) {
            *out = r.bits();
        }
        Snapshot {
            version: SNAPSHOT_VERSION,
            id: self.id,
            ioregsel: self.ioregsel,
            rte,
            lines: self.lines,
        }
    }

    /// Replaces the whole state with `snap`'s, after checking it:
    /// - `version` must be [`SNAPSHOT_VERSION`];
    /// - `id` at most 15 (`"id"`);
    /// - `lines` only bits 23:0 (`"lines"`);
    /// - each entry without reserved bits or delivery status (`"rte"`),
    ///   with remote IRR only if level-triggered, and with remote IRR set
    ///   if it is level-triggered, unmasked and its line asserted (it would
    ///   have sent) (`"rte.remote_irr"`).
    ///
    /// On error nothing changes. Nothing is sent on success: every pending
    /// level interrupt already has remote IRR set.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<(), ImportError> {
        check(snap)?;
        let mut rte = [Rte::RESET; PINS];
        for (out, &bits) in rte.iter_mut().zip(snap.rte.iter()) {
            *out = Rte::from_bits_truncate(bits);
        }
        *self = Ioapic { id: snap.id, ioregsel: snap.ioregsel, rte, lines: snap.lines };
        Ok(())
    }
}

/// Whether a guest could have left an I/O APIC in `snap`'s state.
fn check(snap: &Snapshot) -> Result<(), ImportError> {
    if snap.version != SNAPSHOT_VERSION {
        return Err(ImportError::Version { found: snap.version });
    }
    if snap.id > ID_MAX {
        return Err(ImportError::Invalid { field: "id" });
    }
    if snap.lines & !ALL_PINS != 0 {
        return Err(ImportError::Invalid { field: "lines" });
    }
    for (pin, &bits) in snap.rte.iter().enumerate() {
        if let Some(field) = rte_problem(bits, snap.lines & (1 << pin) != 0) {
            return Err(ImportError::Invalid { field });
        }
    }
    Ok(())
}
