// SPDX-License-Identifier: GPL-2.0

//! Page-table entry formats: what an entry looks like, not how tables are
//! walked (that is the `table` module). In the spirit of illumos `vmm_gpt`'s
//! `vmm_pte_ops`: the walker asks a format to build and decode entries.

/// Size of a page-table page and of the smallest mapping.
pub const PAGE_SIZE: u64 = 4096;

/// Physical-address bits 51:12 of an entry, common to NPT and EPT.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

bitflags::bitflags! {
    /// Access a guest-physical mapping allows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Prot: u8 {
        /// Reads.
        const READ = 1 << 0;
        /// Writes.
        const WRITE = 1 << 1;
        /// Instruction fetches.
        const EXEC = 1 << 2;
    }
}

/// The sizes a leaf entry can map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageSize {
    /// 4 KiB, a level-1 leaf.
    Size4K,
    /// 2 MiB, a level-2 leaf.
    Size2M,
    /// 1 GiB, a level-3 leaf.
    Size1G,
}

impl PageSize {
    /// Bytes covered.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 1 << 12,
            Self::Size2M => 1 << 21,
            Self::Size1G => 1 << 30,
        }
    }

    /// The table level whose entries map this size (1 = the last level).
    pub const fn level(self) -> u8 {
        match self {
            Self::Size4K => 1,
            Self::Size2M => 2,
            Self::Size1G => 3,
        }
    }

    /// The size a leaf at `level` maps, if leaves exist there.
    pub const fn at_level(level: u8) -> Option<Self> {
        match level {
            1 => Some(Self::Size4K),
            2 => Some(Self::Size2M),
            3 => Some(Self::Size1G),
            _ => None,
        }
    }
}

/// How one kind of nested page table encodes its entries.
pub trait PteFormat {
    /// For messages.
    const NAME: &'static str;

    /// Whether leaves can carry `prot`. Both formats need READ: NPT has no
    /// way to say "writable but not readable", and EPT calls it a
    /// misconfiguration.
    fn supports(prot: Prot) -> bool {
        prot.contains(Prot::READ)
    }

    /// Whether `pte` maps a page or points to a table.
    fn present(pte: u64) -> bool;

    /// Whether a present entry at level 2 or 3 is a large-page leaf.
    fn large(pte: u64) -> bool;

    /// An entry pointing at the next-level table at physical `pa`. It
    /// grants every access: the leaf decides.
    fn table(pa: u64) -> u64;

    /// A leaf mapping physical `pa` with `prot` (which [`Self::supports`]);
    /// `large` for a 2 MiB or 1 GiB leaf.
    fn leaf(pa: u64, prot: Prot, large: bool) -> u64;

    /// The access a leaf grants.
    fn prot(pte: u64) -> Prot;

    /// The physical address an entry holds.
    fn addr(pte: u64) -> u64 {
        pte & ADDR_MASK
    }
}

/// AMD nested page tables: long-mode entries. Guest accesses count as user
/// accesses, so every entry sets U/S; execute is denied with NX (bit 63),
/// which needs EFER.NXE on the host, as Linux sets it.
#[derive(Clone, Copy, Debug)]
pub enum Npt {}

mod npt {
    pub(super) const P: u64 = 1 << 0;
    pub(super) const RW: u64 = 1 << 1;
    pub(super) const US: u64 = 1 << 2;
    pub(super) const PS: u64 = 1 << 7;
    pub(super) const NX: u64 = 1 << 63;
}

impl PteFormat for Npt {
    const NAME: &'static str = "NPT";

    fn present(pte: u64) -> bool {
        pte & npt::P != 0
    }

    fn large(pte: u64) -> bool {
        pte & npt::PS != 0
    }

    fn table(pa: u64) -> u64 {
        (pa & ADDR_MASK) | npt::P | npt::RW | npt::US
    }

    fn leaf(pa: u64, prot: Prot, large: bool) -> u64 {
        let mut e = (pa & ADDR_MASK) | npt::P | npt::US;
        if prot.contains(Prot::WRITE) {
            e |= npt::RW;
        }
        if !prot.contains(Prot::EXEC) {
            e |= npt::NX;
        }
        if large {
            e |= npt::PS;
        }
        e
    }

    fn prot(pte: u64) -> Prot {
        let mut p = Prot::READ;
        p.set(Prot::WRITE, pte & npt::RW != 0);
        p.set(Prot::EXEC, pte & npt::NX == 0);
        p
    }
}

/// Intel extended page tables. Leaves use write-back memory (type 6) and
/// leave "ignore PAT" clear, so the guest's PAT still applies.
#[derive(Clone, Copy, Debug)]
pub enum Ept {}

mod ept {
    pub(super) const R: u64 = 1 << 0;
    pub(super) const W: u64 = 1 << 1;
    pub(super) const X: u64 = 1 << 2;
    pub(super) const MT_WB: u64 = 6 << 3;
    pub(super) const LARGE: u64 = 1 << 7;
}

/// The EPT pointer (EPTP) VM entry takes for the EPT rooted at physical
/// address `root` (4 KiB aligned; bits outside 51:12 are dropped) with
/// `levels` levels, 4 or 5 (SDM Vol. 3C 25.6.11, "Extended-Page-Table
/// Pointer"): the paging-structure memory type write-back (6) in bits 2:0,
/// the page-walk length minus 1 in bits 5:3, and bit 6 (accessed and dirty
/// flags) clear.
pub const fn eptp(root: u64, levels: u8) -> u64 {
    const MT_WB: u64 = 6;
    const WALK_SHIFT: u32 = 3;
    let walk = (levels.wrapping_sub(1) & 7) as u64;
    (root & ADDR_MASK) | (walk << WALK_SHIFT) | MT_WB
}

impl PteFormat for Ept {
    const NAME: &'static str = "EPT";

    fn present(pte: u64) -> bool {
        pte & (ept::R | ept::W | ept::X) != 0
    }

    fn large(pte: u64) -> bool {
        pte & ept::LARGE != 0
    }

    fn table(pa: u64) -> u64 {
        (pa & ADDR_MASK) | ept::R | ept::W | ept::X
    }

    fn leaf(pa: u64, prot: Prot, large: bool) -> u64 {
        let mut e = (pa & ADDR_MASK) | ept::MT_WB;
        if prot.contains(Prot::READ) {
            e |= ept::R;
        }
        if prot.contains(Prot::WRITE) {
            e |= ept::W;
        }
        if prot.contains(Prot::EXEC) {
            e |= ept::X;
        }
        if large {
            e |= ept::LARGE;
        }
        e
    }

    fn prot(pte: u64) -> Prot {
        let mut p = Prot::empty();
        p.set(Prot::READ, pte & ept::R != 0);
        p.set(Prot::WRITE, pte & ept::W != 0);
        p.set(Prot::EXEC, pte & ept::X != 0);
        p
    }
}
