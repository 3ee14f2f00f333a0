// SPDX-License-Identifier: GPL-2.0

//! Guest linear-to-physical translation through the guest's own page tables
//! (SDM Vol. 3A chapter 4, APM Vol. 2 chapter 5). This is not nested
//! paging: the result is a guest-physical address, and the tables are read
//! through [`GuestPhys`], which the glue implements on top of the guest's
//! memory map and tests implement with a `Vec`.
//!
//! Glossary: LA = linear address; GPA = guest-physical address; PTE =
//! page-table entry; PDE, PDPTE, PML4E, PML5E = entries of the page
//! directory, page-directory-pointer table, and level-4/level-5 tables;
//! PSE = 4 MiB pages in 32-bit paging; PSE-36 = PA bits 32..39 in a 4 MiB
//! PDE; PAE = 3-level paging with 8-byte entries; M = MAXPHYADDR, the
//! physical-address width; A/D = accessed/dirty; XD = execute-disable (NX);
//! SMEP/SMAP = supervisor-mode execution/access prevention; WP = CR0.WP.
//!
//! [`translate`] serves callers that know only the access and the CPL,
//! and treats every supervisor access as one SMAP always applies to.
//! [`translate_request`] takes a [`Request`], which adds RFLAGS.AC for
//! explicit supervisor accesses and the protection-key rights registers
//! (PKRU, IA32_PKRS) for CR4.PKE/PKS.
//!
//! What is not modelled, on purpose:
//! - Shadow-stack and SGX accesses (error-code bits 6 and 15).
//! - 1 GiB pages are always accepted (CPUID Page1GB is assumed).
//! - PML4E/PML5E bit 8 follows Intel (ignored); AMD calls it MBZ.
//! - PAE PDPTEs are read from memory on every walk, as AMD does under
//!   nested paging; a reserved bit in one is a #PF with RSVD. Intel would
//!   have loaded them at the `mov cr3` and raised #GP there.
//! - A20 masking and segmentation: the caller passes a linear address.

use super::regs::{cr0, cr4, efer};

/// Entry bit: present.
pub const PTE_P: u64 = 1 << 0;
/// Entry bit: writable.
pub const PTE_RW: u64 = 1 << 1;
/// Entry bit: user-accessible.
pub const PTE_US: u64 = 1 << 2;
/// Entry bit: accessed.
pub const PTE_A: u64 = 1 << 5;
/// Entry bit: dirty (leaf entries only).
pub const PTE_D: u64 = 1 << 6;
/// Entry bit: page size (a large-page leaf above the PTE level).
pub const PTE_PS: u64 = 1 << 7;
/// Entry bit: execute-disable (8-byte formats).
pub const PTE_XD: u64 = 1 << 63;

/// #PF error code: the page was present (a protection or reserved-bit fault).
pub const PF_P: u32 = 1 << 0;
/// #PF error code: the access was a write.
pub const PF_W: u32 = 1 << 1;
/// #PF error code: the access was a user-mode access.
pub const PF_U: u32 = 1 << 2;
/// #PF error code: a reserved bit was set in some entry.
pub const PF_RSVD: u32 = 1 << 3;
/// #PF error code: the access was an instruction fetch.
pub const PF_I: u32 = 1 << 4;
/// #PF error code: a protection key forbade the access.
pub const PF_PK: u32 = 1 << 5;

/// How many times a walk restarts after losing an A/D update race before
/// [`translate`] gives up with [`WalkError::Contended`].
pub const MAX_WALKS: usize = 8;

/// Guest-physical memory, as the walker reads and updates page tables.
pub trait GuestPhys {
    /// Reads a naturally aligned 8-byte page-table entry at `gpa`; `None`
    /// if `gpa` is not backed by RAM.
    fn read_u64(&mut self, gpa: u64) -> Option<u64>;
    /// Reads a naturally aligned 4-byte page-table entry at `gpa` (32-bit
    /// paging); `None` if `gpa` is not backed by RAM.
    fn read_u32(&mut self, gpa: u64) -> Option<u32>;
    /// Atomically replaces `old` with `new` at `gpa`: `Some(true)` on
    /// success, `Some(false)` if the value changed meanwhile, `None` if
    /// `gpa` is not backed by RAM.
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool>;
    /// Like [`GuestPhys::cmpxchg_u64`], for a 4-byte entry.
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool>;
}

/// The guest registers that select and parameterise paging.
#[derive(Clone, Copy, Debug)]
pub struct PagingRegs {
    /// CR0 (PG, WP).
    pub cr0: u64,
    /// CR3: the root table.
    pub cr3: u64,
    /// CR4 (PSE, PAE, LA57, SMEP, SMAP).
    pub cr4: u64,
    /// EFER (LMA, NXE).
    pub efer: u64,
    /// The guest's MAXPHYADDR: entry bits at and above it are reserved.
    /// Clamped to 32..=52.
    pub phys_bits: u8,
}

impl PagingRegs {
    /// MAXPHYADDR, clamped to 32..=52 (every CPU with PAE has at least 36).
    fn maxphyaddr(&self) -> u32 {
        u32::from(self.phys_bits.clamp(32, 52))
    }

    fn has(&self, reg: u64, bit: u64) -> bool {
        reg & bit != 0
    }
}

/// The kind of access being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write: needs R/W and sets D.
    Write,
    /// An instruction fetch: subject to XD and SMEP.
    Fetch,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// Inject #PF with this error code (CR2 = the linear address).
    PageFault {
        /// The #PF error code (`PF_*` bits).
        error_code: u32,
    },
    /// Non-canonical address in 64-bit mode: #GP(0) (or #SS for stack
    /// accesses; the caller decides).
    NonCanonical,
    /// A paging-structure entry lies in guest-physical memory that is not RAM.
    Unbacked {
        /// The entry's address.
        gpa: u64,
    },
    /// The guest kept changing its tables under the walk, so the A/D
    /// updates lost [`MAX_WALKS`] races in a row. The walks changed at
    /// most accessed bits of entries they used before losing; resume the
    /// guest without emulating, and it retries the instruction.
    Contended,
}

/// The paging mode in force (SDM 4.1.1, table 4-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// CR0.PG = 0: linear addresses are physical, 32 bits wide.
    Off,
    /// 32-bit paging: 4-byte entries, two levels.
    Bits32,
    /// PAE paging: 8-byte entries, a 4-entry PDPT and two levels.
    Pae,
    /// 4-level paging (EFER.LMA, CR4.LA57 = 0).
    Level4,
    /// 5-level paging (EFER.LMA, CR4.LA57 = 1).
    Level5,
}

impl Mode {
    /// The mode CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57 select. EFER.LMA,
    /// which the CPU sets from LME and PG, decides long mode.
    pub fn of(regs: &PagingRegs) -> Self {
        if !regs.has(regs.cr0, cr0::PG) {
            Self::Off
        } else if regs.has(regs.efer, efer::LMA) {
            if regs.has(regs.cr4, cr4::LA57) {
                Self::Level5
            } else {
                Self::Level4
            }
        } else if regs.has(regs.cr4, cr4::PAE) {
            Self::Pae
        } else {
            Self::Bits32
        }
    }

    /// Whether entries are 8 bytes wide.
    fn wide(self) -> bool {
        !matches!(self, Self::Off | Self::Bits32)
    }
}

/// Whether `la` is canonical: bits 63 down to 47 (or 56 with 5-level
/// paging) are all equal (SDM 3.3.7.1).
pub fn canonical(la: u64, la57: bool) -> bool {
    let shift = if la57 { 7 } else { 16 };
    (((la << shift) as i64) >> shift) as u64 == la
}

/// One access to translate, with everything that decides its rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Read, write or fetch.
    pub access: Access,
    /// A user-mode access (CPL 3, and not an implicit supervisor access
    /// such as a descriptor-table read).
    pub user: bool,
    /// RFLAGS.AC for an explicit supervisor data access: when set, SMAP
    /// lets it reach user pages. Leave it clear for user-mode and implicit
    /// supervisor accesses, which SMAP always checks.
    pub ac: bool,
    /// PKRU, consulted for data accesses to user pages when CR4.PKE is set
    /// (4- and 5-level paging only).
    pub pkru: u32,
    /// IA32_PKRS, consulted for data accesses to supervisor pages when
    /// CR4.PKS is set (4- and 5-level paging only).
    pub pkrs: u32,
}

impl Request {
    /// An access with no AC override and all protection keys open.
    pub fn new(access: Access, user: bool) -> Self {
        Self { access, user, ac: false, pkru: 0, pkrs: 0 }
    }
}

/// Translates `la` for an `access` made in user mode (CPL 3) when `user`
/// is set, supervisor mode otherwise: [`translate_request`] with SMAP
/// applying to every supervisor access and all protection keys open.
pub fn translate(
    mem: &mut impl GuestPhys,
    regs: &PagingRegs,
    la: u64,
    access: Access,
    user: bool,
) -> Result<u64, WalkError> {
    translate_request(mem, regs, la, &Request::new(access, user))
}

/// Translates `la` for `req`. On success, returns the GPA, after setting
/// the accessed bit in every entry used and, for a write, the dirty bit in
/// the leaf.
///
/// A/D bits are set only after a walk has passed every check, top level
/// first, each with a compare-and-exchange; a lost race restarts the walk,
/// at most [`MAX_WALKS`] times. Accessed bits that a walk set before it
/// lost a race stay set, even when the walk that follows faults.
pub fn translate_request(
    mem: &mut impl GuestPhys,
    regs: &PagingRegs,
    la: u64,
    req: &Request,
) -> Result<u64, WalkError> {
    let (access, user) = (req.access, req.user);
    let mode = Mode::of(regs);
    let la = match mode {
        // No paging means no long mode: linear addresses are 32 bits.
        Mode::Off => return Ok(la & 0xffff_ffff),
        Mode::Bits32 | Mode::Pae => la & 0xffff_ffff,
        Mode::Level4 | Mode::Level5 => {
            if !canonical(la, mode == Mode::Level5) {
                return Err(WalkError::NonCanonical);
            }
            la
        }
    };
    let walker = Walker { regs, mode, la, access, user, req };
    for _ in 0..MAX_WALKS {
        let walk = walker.walk(mem)?;
        walker.check(&walk)?;
        if walker.set_accessed_dirty(mem, &walk)? {
            return Ok(walk.gpa);
        }
    }
    Err(WalkError::Contended)
}

/// An inclusive bit range `hi:lo` as a mask; empty when `lo > hi`.
const fn bits(lo: u32, hi: u32) -> u64 {
    if lo > hi || hi > 63 {
        return 0;
    }
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

/// The address field of an 8-byte entry (bits 51:12).
const ADDR_MASK: u64 = bits(12, 51);
/// The address field of a 4-byte entry (bits 31:12).
const ADDR_MASK_32: u64 = bits(12, 31);

/// One entry the walk used.
#[derive(Clone, Copy, Default)]
struct Step {
    gpa: u64,
    val: u64,
    /// Whether the entry has an accessed bit (PAE PDPTEs do not).
    has_a: bool,
}

/// A completed walk: the entries used and what they allow together.
struct Walk {
    steps: [Step; 5],
    len: usize,
    gpa: u64,
    /// U/S is set at every level.
    user: bool,
    /// R/W is set at every level.
    writable: bool,
    /// XD is set at some level (and EFER.NXE is on).
    nx: bool,
    /// The leaf's protection key (bits 62:59).
    key: u32,
}

impl Walk {
    fn new() -> Self {
        Self {
            steps: [Step::default(); 5],
            len: 0,
            gpa: 0,
            user: true,
            writable: true,
            nx: false,
            key: 0,
        }
    }

    fn push(&mut self, step: Step) {
        if let Some(slot) = self.steps.get_mut(self.len) {
            *slot = step;
            self.len += 1;
        }
    }

    fn used(&self) -> &[Step] {
        self.steps.get(..self.len).unwrap_or(&[])
    }
}

/// One translation request.
struct Walker<'a> {
    regs: &'a PagingRegs,
    mode: Mode,
    la: u64,
    access: Access,
    user: bool,
    req: &'a Request,
}

impl Walker<'_> {
    /// Reads the tables without changing them.
    fn walk(&self, mem: &mut impl GuestPhys) -> Result<Walk, WalkError> {
        let mut walk = Walk::new();
        let (mut table, top) = match self.mode {
            Mode::Off => return Ok(walk),
            Mode::Bits32 => (self.regs.cr3 & ADDR_MASK_32, 2),
            Mode::Pae => (self.pdpte(mem, &mut walk)? & ADDR_MASK, 2),
            Mode::Level4 => (self.regs.cr3 & ADDR_MASK, 4),
            Mode::Level5 => (self.regs.cr3 & ADDR_MASK, 5),
        };
        for level in (2..=top).rev() {
            let entry = self.entry(mem, &mut walk, table, level)?;
            if self.is_large(level, entry) {
                walk.gpa = self.frame(level, entry);
                return Ok(walk);
            }
            table = entry & if self.mode.wide() { ADDR_MASK } else { ADDR_MASK_32 };
        }
        let entry = self.entry(mem, &mut walk, table, 1)?;
        walk.gpa = self.frame(1, entry);
        Ok(walk)
    }

    /// PAE: the PDPTE for `la`, from the 32-byte table at CR3\[31:5\]
    /// (SDM 4.4.1). PDPTEs carry no access rights and no A bit.
    fn pdpte(&self, mem: &mut impl GuestPhys, walk: &mut Walk) -> Result<u64, WalkError> {
        let gpa = (self.regs.cr3 & bits(5, 31)).wrapping_add(((self.la >> 30) & 3) * 8);
        let val = mem.read_u64(gpa).ok_or(WalkError::Unbacked { gpa })?;
        if val & PTE_P == 0 {
            return Err(self.fault(0));
        }
        // Bits 2:1, 8:5 and 63:M are reserved (SDM table 4-8).
        let reserved = bits(1, 2) | bits(5, 8) | bits(self.regs.maxphyaddr(), 63);
        if val & reserved != 0 {
            return Err(self.fault(PF_P | PF_RSVD));
        }
        walk.push(Step { gpa, val, has_a: false });
        Ok(val)
    }

    /// Reads, records and checks the entry for `la` at `level` (1 = PTE)
    /// of the table at `table`, and folds its rights into `walk`.
    fn entry(
        &self,
        mem: &mut impl GuestPhys,
        walk: &mut Walk,
        table: u64,
        level: u32,
    ) -> Result<u64, WalkError> {
        let index = self.la.wrapping_shr(self.shift(level));
        let (gpa, val) = if self.mode.wide() {
            let gpa = table.wrapping_add((index & 0x1ff) * 8);
            (gpa, mem.read_u64(gpa).ok_or(WalkError::Unbacked { gpa })?)
        } else {
            let gpa = table.wrapping_add((index & 0x3ff) * 4);
            let val = mem.read_u32(gpa).ok_or(WalkError::Unbacked { gpa })?;
            (gpa, u64::from(val))
        };
        if val & PTE_P == 0 {
            return Err(self.fault(0));
        }
        if val & self.reserved(level, val) != 0 {
            return Err(self.fault(PF_P | PF_RSVD));
        }
        walk.push(Step { gpa, val, has_a: true });
        walk.user &= val & PTE_US != 0;
        walk.writable &= val & PTE_RW != 0;
        walk.nx |= self.nxe() && val & PTE_XD != 0;
        walk.key = ((val >> 59) & 0xf) as u32;
        Ok(val)
    }

    /// The lowest LA bit that `level` (1 = PTE) translates: 12, plus 9 per
    /// level above with 8-byte entries, 10 with 4-byte ones.
    fn shift(&self, level: u32) -> u32 {
        let per_level = if self.mode.wide() { 9 } else { 10 };
        level.saturating_sub(1).saturating_mul(per_level).saturating_add(12).min(63)
    }

    fn nxe(&self) -> bool {
        self.mode.wide() && self.regs.has(self.regs.efer, efer::NXE)
    }

    /// Whether `entry` at `level` maps a page rather than a table: PS in a
    /// PDE (32-bit paging only with CR4.PSE; otherwise PS is ignored
    /// there), or in a 4-/5-level PDPTE (1 GiB).
    fn is_large(&self, level: u32, entry: u64) -> bool {
        if entry & PTE_PS == 0 {
            return false;
        }
        match self.mode {
            Mode::Bits32 => level == 2 && self.regs.has(self.regs.cr4, cr4::PSE),
            Mode::Pae => level == 2,
            Mode::Level4 | Mode::Level5 => level == 2 || level == 3,
            Mode::Off => false,
        }
    }

    /// Reserved bits of `entry` at `level` (SDM tables 4-4 to 4-20):
    /// - 8-byte formats: bits M and up to 51 (PAE: to 62), and XD (bit
    ///   63) when EFER.NXE is clear;
    /// - PML5E/PML4E: PS (bit 7);
    /// - 1 GiB PDPTE: bits 29:13; 2 MiB PDE: bits 20:13;
    /// - 32-bit 4 MiB PDE: bit 21 and the PSE-36 bits beyond M (which is
    ///   limited to 40 there); other 4-byte entries have none.
    fn reserved(&self, level: u32, entry: u64) -> u64 {
        let m = self.regs.maxphyaddr();
        let large = self.is_large(level, entry);
        if self.mode == Mode::Bits32 {
            // PDE bits 13.. hold PA bits 32..; PA bit m-1 is PDE bit m-20.
            return if large { bits(m.min(40).saturating_sub(19), 21) } else { 0 };
        }
        let xd = if self.nxe() { 0 } else { PTE_XD };
        let high = if self.mode == Mode::Pae { bits(m, 62) } else { bits(m, 51) };
        let shape = match (level, large) {
            (4 | 5, _) => PTE_PS,
            (3, true) => bits(13, 29),
            (2, true) => bits(13, 20),
            _ => 0,
        };
        xd | high | shape
    }

    /// The GPA `entry` maps `la` to, `entry` being a leaf at `level`.
    fn frame(&self, level: u32, entry: u64) -> u64 {
        if self.mode.wide() {
            let offset = !u64::MAX.wrapping_shl(self.shift(level));
            (entry & ADDR_MASK & !offset) | (self.la & offset)
        } else if level == 2 {
            // 4 MiB page: PA 31:22 from PDE 31:22, PA 39:32 from PDE 20:13.
            let high = ((entry >> 13) & 0xff) << 32;
            (entry & bits(22, 31)) | high | (self.la & bits(0, 21))
        } else {
            (entry & ADDR_MASK_32) | (self.la & 0xfff)
        }
    }

    /// Access rights (SDM 4.6.1), given the rights all levels grant:
    /// - user mode: the page must be user; writes need R/W;
    /// - supervisor mode, user page: data accesses fault when CR4.SMAP
    ///   unless [`Request::ac`] is set, fetches when CR4.SMEP;
    /// - supervisor writes need R/W only when CR0.WP;
    /// - fetches fault on XD pages (EFER.NXE only; see [`Walker::entry`]);
    /// - protection keys (SDM 4.6.2), for data accesses with 4- or
    ///   5-level paging: PKRU for user pages under CR4.PKE, IA32_PKRS for
    ///   supervisor pages under CR4.PKS. AD forbids any data access; WD
    ///   forbids writes in user mode, and supervisor writes when CR0.WP.
    ///
    /// The error code has PK whenever the key forbids the access, also
    /// when another rule forbids it too (SDM 4.7 defines PK by the key
    /// alone).
    fn check(&self, walk: &Walk) -> Result<(), WalkError> {
        let regs = self.regs;
        let write = self.access == Access::Write;
        let fetch = self.access == Access::Fetch;
        let denied = if self.user {
            !walk.user || (write && !walk.writable)
        } else {
            let smap = walk.user && !fetch && regs.has(regs.cr4, cr4::SMAP) && !self.req.ac;
            let smep = walk.user && fetch && regs.has(regs.cr4, cr4::SMEP);
            let wp = write && !walk.writable && regs.has(regs.cr0, cr0::WP);
            smap || smep || wp
        };
        let long = matches!(self.mode, Mode::Level4 | Mode::Level5);
        let rights = match (walk.user, long && !fetch) {
            (true, true) if regs.has(regs.cr4, cr4::PKE) => Some(self.req.pkru),
            (false, true) if regs.has(regs.cr4, cr4::PKS) => Some(self.req.pkrs),
            _ => None,
        };
        let key_denied = rights.is_some_and(|rights| {
            let ad = rights >> (2 * walk.key) & 1 != 0;
            let wd = rights >> (2 * walk.key + 1) & 1 != 0;
            let wd_applies = write && (self.user || regs.has(regs.cr0, cr0::WP));
            ad || (wd && wd_applies)
        });
        if key_denied {
            return Err(self.fault(PF_P | PF_PK));
        }
        if denied || (fetch && walk.nx) {
            return Err(self.fault(PF_P));
        }
        Ok(())
    }

    /// A #PF with `bits` plus what the access contributes: W/R, U/S, and
    /// I/D for fetches when CR4.SMEP is set or when PAE-format entries are
    /// in use with EFER.NXE (SDM 4.7).
    fn fault(&self, bits: u32) -> WalkError {
        let mut error_code = bits;
        if self.access == Access::Write {
            error_code |= PF_W;
        }
        if self.user {
            error_code |= PF_U;
        }
        let id = self.nxe() || self.regs.has(self.regs.cr4, cr4::SMEP);
        if self.access == Access::Fetch && id {
            error_code |= PF_I;
        }
        WalkError::PageFault { error_code }
    }

    /// Sets A in every entry of `walk` that lacks it, and D in the leaf
    /// for a write (SDM 4.8). `Ok(false)`: an entry changed since the walk
    /// read it; walk again.
    fn set_accessed_dirty(&self, mem: &mut impl GuestPhys, walk: &Walk) -> Result<bool, WalkError> {
        let used = walk.used();
        for (i, step) in used.iter().enumerate() {
            if !step.has_a {
                continue;
            }
            let mut new = step.val | PTE_A;
            if i + 1 == used.len() && self.access == Access::Write {
                new |= PTE_D;
            }
            if new == step.val {
                continue;
            }
            if !self.cmpxchg(mem, step.gpa, step.val, new)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn cmpxchg(
        &self,
        mem: &mut impl GuestPhys,
        gpa: u64,
        old: u64,
        new: u64,
    ) -> Result<bool, WalkError> {
        let done = if self.mode.wide() {
            mem.cmpxchg_u64(gpa, old, new)
        } else {
            // 4-byte entries were zero-extended when read.
            mem.cmpxchg_u32(gpa, old as u32, new as u32)
        };
        done.ok_or(WalkError::Unbacked { gpa })
    }
}

#[cfg(test)]
#[path = "tests_paging.rs"]
mod tests;
