// SPDX-License-Identifier: GPL-2.0

//! Saving and restoring the PICs: a versioned snapshot of plain integers,
//! checked field by field on import. A snapshot that no sequence of guest
//! operations can produce is refused, naming the field, and nothing
//! changes.

use super::super::common::ImportError;
use super::chip::{bit, Chip};
use super::regs::{Init, ReadSelect, CASCADE_PIN, ICW1_IC4, ICW1_SNGL, ICW2_VECTOR_BASE};
use super::{Effects, Pic};

/// The layout version [`Snapshot::version`] carries.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One chip's state. Flags are 0 or 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChipSnapshot {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register.
    pub imr: u8,
    /// Input line levels (on the master, bit 2 is the slave's INT).
    pub lines: u8,
    /// ELCR: bit set = level-triggered. Only bits of the chip's mask.
    pub elcr: u8,
    /// The lowest-priority input, 0-7.
    pub lowest_priority: u8,
    /// ICW2 vector base; bits 2:0 are 0.
    pub vector_base: u8,
    /// Initialisation: 0 not initialised since reset, 1 ready, 2-4
    /// waiting for ICW2-ICW4.
    pub init: u8,
    /// The last ICW1's IC4 (bit 0) and SNGL (bit 1); no other bits.
    pub icw1: u8,
    /// Command-port reads return the ISR (1) or the IRR (0).
    pub read_isr: u8,
    /// The next read is the poll word.
    pub poll: u8,
    /// Special mask mode.
    pub special_mask: u8,
    /// Automatic EOI.
    pub auto_eoi: u8,
    /// Rotate in automatic-EOI mode.
    pub rotate_on_aeoi: u8,
    /// Special fully nested mode.
    pub sfnm: u8,
}

/// Both chips' state, ELCRs included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The master (ports 0x20/0x21, ELCR 0x4D0).
    pub master: ChipSnapshot,
    /// The slave (ports 0xA0/0xA1, ELCR 0x4D1).
    pub slave: ChipSnapshot,
}

impl Pic {
    /// The whole state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { version: SNAPSHOT_VERSION, master: save(&self.master), slave: save(&self.slave) }
    }

    /// Replaces the state with `snap` after checking every field; on
    /// error nothing changes. The effects always carry the INTR level
    /// (whatever the caller's line held before), so the caller can set
    /// its wire from them.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<Effects, ImportError> {
        if snap.version != SNAPSHOT_VERSION {
            return Err(ImportError::Version { found: snap.version });
        }
        let pic = Pic { master: load(&snap.master, true)?, slave: load(&snap.slave, false)? };
        if !pic.settled() {
            return Err(ImportError::Invalid { field: "master.lines" });
        }
        *self = pic;
        Ok(Effects { intr: Some(self.intr()) })
    }
}

fn save(c: &Chip) -> ChipSnapshot {
    ChipSnapshot {
        irr: c.irr,
        isr: c.isr,
        imr: c.imr,
        lines: c.lines,
        elcr: c.elcr,
        lowest_priority: c.lowest,
        vector_base: c.vector_base,
        init: c.init.encode(),
        icw1: if c.ic4 { ICW1_IC4 } else { 0 } | if c.single { ICW1_SNGL } else { 0 },
        read_isr: u8::from(c.read == ReadSelect::Isr),
        poll: u8::from(c.poll),
        special_mask: u8::from(c.special_mask),
        auto_eoi: u8::from(c.aeoi),
        rotate_on_aeoi: u8::from(c.rotate_aeoi),
        sfnm: u8::from(c.sfnm),
    }
}

/// A snapshot field's name for the chip it belongs to.
macro_rules! field {
    ($master:expr, $name:literal) => {
        if $master {
            concat!("master.", $name)
        } else {
            concat!("slave.", $name)
        }
    };
}

/// Builds a chip from `s`, checking every field and the chip's
/// invariants.
fn load(s: &ChipSnapshot, master: bool) -> Result<Chip, ImportError> {
    let bad = |field: &'static str| Err(ImportError::Invalid { field });
    let flag = |v: u8, field: &'static str| match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ImportError::Invalid { field }),
    };
    let mut c = Chip::new(master);
    if s.elcr & !c.elcr_mask() != 0 {
        return bad(field!(master, "elcr"));
    }
    if (s.irr ^ s.lines) & s.elcr != 0 {
        // A level-triggered input's request is its line.
        return bad(field!(master, "irr"));
    }
    if master && s.elcr & bit(CASCADE_PIN) != 0 {
        return bad(field!(master, "elcr"));
    }
    if s.lowest_priority > 7 {
        return bad(field!(master, "lowest_priority"));
    }
    if s.vector_base & !ICW2_VECTOR_BASE != 0 {
        return bad(field!(master, "vector_base"));
    }
    let Some(init) = Init::decode(s.init) else {
        return bad(field!(master, "init"));
    };
    if s.icw1 & !(ICW1_IC4 | ICW1_SNGL) != 0 {
        return bad(field!(master, "icw1"));
    }
    let ic4 = s.icw1 & ICW1_IC4 != 0;
    let single = s.icw1 & ICW1_SNGL != 0;
    let aeoi = flag(s.auto_eoi, field!(master, "auto_eoi"))?;
    let sfnm = flag(s.sfnm, field!(master, "sfnm"))?;
    match init {
        Init::Icw3 if single => return bad(field!(master, "init")),
        Init::Icw4 if !ic4 => return bad(field!(master, "init")),
        Init::Reset if s.icw1 != 0 => return bad(field!(master, "icw1")),
        Init::Reset if s.vector_base != 0 => return bad(field!(master, "vector_base")),
        Init::Reset if s.isr != 0 => return bad(field!(master, "isr")),
        _ => {}
    }
    if !ic4 && aeoi {
        return bad(field!(master, "auto_eoi"));
    }
    if !ic4 && sfnm {
        return bad(field!(master, "sfnm"));
    }
    c.irr = s.irr;
    c.isr = s.isr;
    c.imr = s.imr;
    c.lines = s.lines;
    c.elcr = s.elcr;
    c.lowest = s.lowest_priority;
    c.vector_base = s.vector_base;
    c.init = init;
    c.ic4 = ic4;
    c.single = single;
    c.read = if flag(s.read_isr, field!(master, "read_isr"))? {
        ReadSelect::Isr
    } else {
        ReadSelect::Irr
    };
    c.poll = flag(s.poll, field!(master, "poll"))?;
    c.special_mask = flag(s.special_mask, field!(master, "special_mask"))?;
    c.aeoi = aeoi;
    c.rotate_aeoi = flag(s.rotate_on_aeoi, field!(master, "rotate_on_aeoi"))?;
    c.sfnm = sfnm;
    Ok(c)
}
