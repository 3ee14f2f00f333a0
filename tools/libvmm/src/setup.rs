// SPDX-License-Identifier: MIT OR Apache-2.0

//! A vCPU's first state without firmware: real mode, flat 32-bit protected
//! mode, or 64-bit long mode with identity paging.
//!
//! [`setup_vcpu`] writes a GDT, a TSS and (for long mode) page tables into a
//! *scratch* area of guest RAM, then loads the vCPU's registers and segment
//! descriptors to match. It is two pure halves and the ioctls:
//! [`scratch_image`] builds the bytes and [`vcpu_state`] the register and
//! descriptor lists. Both are tested on the host; the GDT entries are
//! encoded from the very [`VmmSegDesc`]s the vCPU is given, so the guest's
//! GDT and the hidden segment state cannot disagree.
//!
//! # Scratch layout
//!
//! | offset from `scratch_gpa` | contents |
//! |---|---|
//! | `0x0000` | GDT: the selectors of [`sel`]; GDTR limit [`GDT_LIMIT`] |
//! | `0x0080` | TSS, 0x68 bytes, no I/O bitmap |
//! | `0x1000` | PML4 (long mode only; zero otherwise) |
//! | `0x2000` | PDPT: four entries, one per GiB |
//! | `0x3000`-`0x6fff` | four PDs of 2 MiB pages identity-mapping 0-4 GiB |
//! | `0x7000`-`0x7fff` | unused (zero) |
//!
//! # Glossary
//!
//! - *GDT*: global descriptor table; *TSS*: task-state segment, which VM
//!   entry wants TR to name in every mode.
//! - *PML4, PDPT, PD*: the levels of 4-level paging; a PD entry with PS set
//!   maps a 2 MiB page.
//! - *access*: a descriptor's attribute bits in the VMX layout of
//!   [`uapi::access`](crate::uapi::access).

use std::fmt;
use std::io;

use crate::uapi::{access, reg, VmmSegDesc};
use crate::{sys, VcpuFd};

/// The mode a vCPU starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Real mode: CS is the 64 KiB segment holding the entry point.
    Real,
    /// Flat 32-bit protected mode, paging off.
    Protected32,
    /// 64-bit long mode, the first 4 GiB identity-mapped.
    Long64,
}

/// Bytes of guest RAM `setup_vcpu` needs at `scratch_gpa` (GDT, then page
/// tables for Long64).
pub const SCRATCH_LEN: u64 = 0x8000;

/// Offset of the GDT in the scratch area.
pub const GDT_OFFSET: u64 = 0;
/// GDTR limit: eight 8-byte slots, the TSS descriptor taking the last two.
pub const GDT_LIMIT: u32 = 0x3f;
/// Offset of the TSS in the scratch area.
pub const TSS_OFFSET: u64 = 0x80;
/// Size of a 32/64-bit TSS without I/O bitmap; TR's limit is one less.
pub const TSS_LEN: u64 = 0x68;
/// Offset of the PML4 in the scratch area (long mode).
pub const PML4_OFFSET: u64 = 0x1000;
/// Offset of the PDPT in the scratch area (long mode).
pub const PDPT_OFFSET: u64 = 0x2000;
/// Offset of the first of the four PDs in the scratch area (long mode).
pub const PD_OFFSET: u64 = 0x3000;

/// Selectors of the GDT [`setup_vcpu`] writes.
pub mod sel {
    /// 64-bit code (L=1).
    pub const CODE64: u16 = 0x08;
    /// Flat 32-bit code.
    pub const CODE32: u16 = 0x10;
    /// Flat 32-bit data, also used by 64-bit code.
    pub const DATA: u16 = 0x18;
    /// 16-bit code, base 0, limit 0xffff.
    pub const CODE16: u16 = 0x20;
    /// 16-bit data, base 0, limit 0xffff.
    pub const DATA16: u16 = 0x28;
    /// The busy TSS (a 16-byte descriptor: slots 0x30 and 0x38).
    pub const TSS: u16 = 0x30;
}

// Access rights, in the VMX layout (`uapi::access`).
const TYPE_DATA_RW_ACCESSED: u32 = 0x3;
const TYPE_CODE_RX_ACCESSED: u32 = 0xb;
const TYPE_TSS_BUSY: u32 = 0xb;
const CODE16: u32 = access::P | access::S | TYPE_CODE_RX_ACCESSED; // 0x9b
const DATA16: u32 = access::P | access::S | TYPE_DATA_RW_ACCESSED; // 0x93
const CODE32: u32 = access::G | access::DB | CODE16; // 0xc09b
const CODE64: u32 = access::G | access::L | CODE16; // 0xa09b
const DATA32: u32 = access::G | access::DB | DATA16; // 0xc093
const TSS_BUSY: u32 = access::P | TYPE_TSS_BUSY; // 0x8b

// Control-register and EFER bits.
const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// RFLAGS with only the always-one bit 1: IF clear.
const RFLAGS_FIXED: u64 = 0x2;

// Page-table entry bits.
const PTE_P: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_PS: u64 = 1 << 7;

const GIB: u64 = 1 << 30;
const PAGE: u64 = 0x1000;
/// Real-mode code and data reach the first MiB (plus nothing: no A20 games).
const REAL_MODE_TOP: u64 = 0x10_0000;

/// Why [`setup_vcpu`] refused its arguments, before any ioctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// `scratch_gpa` is not 4 KiB-aligned.
    ScratchMisaligned(u64),
    /// The scratch area is not inside the RAM mapping, or not below 4 GiB
    /// (where every mode can address it).
    ScratchOutside(u64),
    /// The mode cannot start at this entry point (real mode: at or above
    /// 1 MiB; 32-bit: at or above 4 GiB; 64-bit: not canonical).
    Entry(Mode, u64),
    /// The mode cannot use this stack top (same limits as the entry, but a
    /// stack may start exactly at the limit).
    Stack(Mode, u64),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ScratchMisaligned(a) => write!(f, "scratch area {a:#x} is not 4 KiB-aligned"),
            Self::ScratchOutside(a) => {
                write!(
                    f,
                    "scratch area {a:#x}+{SCRATCH_LEN:#x} is not inside guest RAM below 4 GiB"
                )
            }
            Self::Entry(m, a) => write!(f, "{m:?} mode cannot start at {a:#x}"),
            Self::Stack(m, a) => write!(f, "{m:?} mode cannot use stack top {a:#x}"),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<SetupError> for io::Error {
    fn from(e: SetupError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// The register and descriptor writes that put a vCPU in its first state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuState {
    /// For `VMM_VCPU_SET_REGS`, in the order applied. Control registers go
    /// CR0, CR3, CR4, EFER so that every prefix is itself a consistent
    /// state, whichever way the kernel checks them.
    pub regs: Vec<(u32, u64)>,
    /// For `VMM_VCPU_SET_DESCS`: ES to TR, then GDTR and IDTR.
    pub descs: Vec<(u32, VmmSegDesc)>,
}

const fn desc(base: u64, limit: u32, access: u32) -> VmmSegDesc {
    VmmSegDesc { base, limit, access }
}

/// The TSS descriptor for a scratch area at `scratch_gpa`.
pub fn tss_desc(scratch_gpa: u64) -> VmmSegDesc {
    desc(scratch_gpa + TSS_OFFSET, (TSS_LEN - 1) as u32, TSS_BUSY)
}

/// The GDT's descriptors by selector, except the null one.
fn gdt_descs(scratch_gpa: u64) -> [(u16, VmmSegDesc); 6] {
    [
        (sel::CODE64, desc(0, u32::MAX, CODE64)),
        (sel::CODE32, desc(0, u32::MAX, CODE32)),
        (sel::DATA, desc(0, u32::MAX, DATA32)),
        (sel::CODE16, desc(0, 0xffff, CODE16)),
        (sel::DATA16, desc(0, 0xffff, DATA16)),
        (sel::TSS, tss_desc(scratch_gpa)),
    ]
}

/// Encodes the low 8 bytes of a GDT entry for `d`: its limit unscaled by
/// G, its access bits moved back to descriptor bits 40-47 and 52-55. A
/// system descriptor in long mode has a second 8 bytes, `d.base >> 32`.
pub fn gdt_entry(d: &VmmSegDesc) -> u64 {
    let limit = u64::from(if d.access & access::G != 0 { d.limit >> 12 } else { d.limit });
    let base = d.base;
    let acc = u64::from(d.access);
    (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | (acc & 0xff) << 40
        | (limit >> 16 & 0xf) << 48
        | (acc >> 12 & 0xf) << 52
        | (base >> 24 & 0xff) << 56
}

/// The GDT bytes: null, then [`sel`]'s descriptors; [`GDT_LIMIT`] + 1 long.
pub fn gdt_bytes(scratch_gpa: u64) -> [u8; GDT_LIMIT as usize + 1] {
    let mut gdt = [0u8; GDT_LIMIT as usize + 1];
    for (s, d) in gdt_descs(scratch_gpa) {
        let at = usize::from(s);
        gdt[at..at + 8].copy_from_slice(&gdt_entry(&d).to_le_bytes());
        if s == sel::TSS {
            gdt[at + 8..at + 16].copy_from_slice(&(d.base >> 32).to_le_bytes());
        }
    }
    gdt
}

/// Writes `v` as a little-endian u64 at `off` of `buf`.
fn put_u64(buf: &mut [u8], off: u64, v: u64) {
    let off = off as usize;
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// The whole scratch area, [`SCRATCH_LEN`] bytes, as [`setup_vcpu`] writes
/// it at `scratch_gpa`: GDT and TSS always, page tables for
/// [`Mode::Long64`] (zeros otherwise).
pub fn scratch_image(mode: Mode, scratch_gpa: u64) -> Result<Vec<u8>, SetupError> {
    check_scratch(scratch_gpa)?;
    let mut img = vec![0u8; SCRATCH_LEN as usize];
    let gdt = gdt_bytes(scratch_gpa);
    img[GDT_OFFSET as usize..GDT_OFFSET as usize + gdt.len()].copy_from_slice(&gdt);
    // I/O map base at the TSS's end: no I/O permission bitmap.
    let iomap = TSS_OFFSET as usize + 0x66;
    img[iomap..iomap + 2].copy_from_slice(&(TSS_LEN as u16).to_le_bytes());
    if mode == Mode::Long64 {
        put_u64(&mut img, PML4_OFFSET, (scratch_gpa + PDPT_OFFSET) | PTE_P | PTE_RW);
        for gib in 0..4 {
            let pd = PD_OFFSET + gib * PAGE;
            put_u64(&mut img, PDPT_OFFSET + gib * 8, (scratch_gpa + pd) | PTE_P | PTE_RW);
            for i in 0..512 {
                let phys = gib * GIB + i * (2 << 20);
                put_u64(&mut img, pd + i * 8, phys | PTE_P | PTE_RW | PTE_PS);
            }
        }
    }
    Ok(img)
}

fn check_scratch(scratch_gpa: u64) -> Result<(), SetupError> {
    if scratch_gpa % PAGE != 0 {
        return Err(SetupError::ScratchMisaligned(scratch_gpa));
    }
    if scratch_gpa.checked_add(SCRATCH_LEN).is_none_or(|end| end > 4 * GIB) {
        return Err(SetupError::ScratchOutside(scratch_gpa));
    }
    Ok(())
}

fn canonical(a: u64) -> bool {
    // Bits 63:47 all equal (48-bit linear addresses, 4-level paging).
    let top = a >> 47;
    top == 0 || top == (1 << 17) - 1
}

/// The registers and descriptors that start a vCPU at `entry` in `mode`
/// with its stack top at `stack`, given the scratch area at `scratch_gpa`
/// (see [`setup_vcpu`]). Only RIP, RSP and RFLAGS of the general state are
/// set; other general registers keep their values.
///
/// Real mode: CS is `(entry >> 4) & 0xf000`, so IP = `entry & 0xffff`;
/// DS, ES, FS and GS are 0; SS is the 64 KiB segment whose top byte lies
/// just below `stack` (SS 0 for any `stack` up to 0x10000).
pub fn vcpu_state(
    mode: Mode,
    entry: u64,
    stack: u64,
    scratch_gpa: u64,
) -> Result<VcpuState, SetupError> {
    check_scratch(scratch_gpa)?;
    let (entry_ok, stack_ok) = match mode {
        Mode::Real => (entry < REAL_MODE_TOP, stack <= REAL_MODE_TOP),
        Mode::Protected32 => (entry < 4 * GIB, stack <= 4 * GIB),
        Mode::Long64 => (canonical(entry), canonical(stack)),
    };
    if !entry_ok {
        return Err(SetupError::Entry(mode, entry));
    }
    if !stack_ok {
        return Err(SetupError::Stack(mode, stack));
    }

    let gdt = desc(scratch_gpa + GDT_OFFSET, GDT_LIMIT, 0);
    let tr = (sel::TSS, tss_desc(scratch_gpa));
    let ldtr = (0u16, desc(0, 0, access::UNUSABLE));

    // (selector, descriptor) for CS, SS and the other data segments.
    let (cs, ss, data, rip, rsp, cr0, cr3, cr4, efer, idtr) = match mode {
        Mode::Real => {
            let cs = (entry >> 4) & 0xf000;
            let ss = (stack.saturating_sub(1) >> 4) & 0xf000;
            (
                (cs as u16, desc(cs << 4, 0xffff, CODE16)),
                (ss as u16, desc(ss << 4, 0xffff, DATA16)),
                (0, desc(0, 0xffff, DATA16)),
                entry - (cs << 4),
                (stack - (ss << 4)) & 0xffff,
                CR0_ET | CR0_NE,
                0,
                0,
                0,
                // The reset IDTR: the real-mode IVT at 0.
                desc(0, 0xffff, 0),
            )
        }
        Mode::Protected32 => {
            let data = (sel::DATA, desc(0, u32::MAX, DATA32));
            (
                (sel::CODE32, desc(0, u32::MAX, CODE32)),
                data,
                data,
                entry,
                stack & 0xffff_ffff,
                CR0_PE | CR0_ET | CR0_NE,
                0,
                0,
                0,
                desc(0, 0, 0),
            )
        }
        Mode::Long64 => {
            let data = (sel::DATA, desc(0, u32::MAX, DATA32));
            (
                (sel::CODE64, desc(0, u32::MAX, CODE64)),
                data,
                data,
                entry,
                stack,
                CR0_PG | CR0_WP | CR0_NE | CR0_ET | CR0_PE,
                scratch_gpa + PML4_OFFSET,
                CR4_PAE,
                EFER_LME | EFER_LMA,
                desc(0, 0, 0),
            )
        }
    };

    let segs = [
        (reg::ES, data),
        (reg::CS, cs),
        (reg::SS, ss),
        (reg::DS, data),
        (reg::FS, data),
        (reg::GS, data),
        (reg::LDTR, ldtr),
        (reg::TR, tr),
    ];
    let mut regs = vec![
        (reg::CR0, cr0),
        (reg::CR3, cr3),
        (reg::CR4, cr4),
        (reg::EFER, efer),
        (reg::RFLAGS, RFLAGS_FIXED),
        (reg::RSP, rsp),
        (reg::RIP, rip),
    ];
    regs.extend(segs.iter().map(|&(id, (s, _))| (id, u64::from(s))));
    let mut descs: Vec<(u32, VmmSegDesc)> = segs.iter().map(|&(id, (_, d))| (id, d)).collect();
    descs.push((reg::GDTR, gdt));
    descs.push((reg::IDTR, idtr));
    Ok(VcpuState { regs, descs })
}

/// Writes a flat GDT (null, 64-bit code 0x08, 32-bit code 0x10, data 0x18,
/// 16-bit code 0x20, 16-bit data 0x28, TSS 0x30) at scratch_gpa and, for
/// Long64, 4-level page tables identity-mapping the first 4 GiB with 2 MiB
/// pages (PML4 at scratch_gpa+0x1000, PDPT +0x2000, 4 PDs +0x3000..+0x6FFF);
/// then sets the vCPU's registers (VMM_VCPU_SET_REGS) and descriptors
/// (VMM_VCPU_SET_DESCS) so that it starts at `entry` in `mode` with RSP =
/// `stack`, RFLAGS = 0x2, interrupts off.
///
/// `mem` is the mmap of the RAM segment that is mapped at guest-physical
/// `mem_gpa`; scratch must lie inside it, 4 KiB-aligned and below 4 GiB.
/// Arguments are checked before anything is written (`InvalidInput`).
/// See [`vcpu_state`] for the real-mode segments; LDTR is unusable and TR
/// a busy TSS in every mode.
pub fn setup_vcpu(
    vcpu: &VcpuFd,
    mem: &sys::Mapping,
    mem_gpa: u64,
    mode: Mode,
    entry: u64,
    stack: u64,
    scratch_gpa: u64,
) -> io::Result<()> {
    let off = scratch_gpa
        .checked_sub(mem_gpa)
        .filter(|off| off.checked_add(SCRATCH_LEN).is_some_and(|end| end <= mem.len() as u64))
        .ok_or(SetupError::ScratchOutside(scratch_gpa))?;
    let state = vcpu_state(mode, entry, stack, scratch_gpa)?;
    let img = scratch_image(mode, scratch_gpa)?;
    mem.write(off as usize, &img);
    // Registers first, so the mode is in place when the descriptors come,
    // and the descriptors, last, are what the vCPU keeps whatever a
    // selector write might do to hidden state.
    vcpu.set_regs(&state.regs)?;
    vcpu.set_descs(&state.descs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRATCH: u64 = 0x9000;

    fn u64_at(img: &[u8], off: u64) -> u64 {
        let off = off as usize;
        u64::from_le_bytes(img[off..off + 8].try_into().unwrap())
    }

    fn reg_of(s: &VcpuState, id: u32) -> u64 {
        let hits: Vec<u64> = s.regs.iter().filter(|r| r.0 == id).map(|r| r.1).collect();
        assert_eq!(hits.len(), 1, "register {id} set {} times", hits.len());
        hits[0]
    }

    fn desc_of(s: &VcpuState, id: u32) -> VmmSegDesc {
        let hits: Vec<VmmSegDesc> = s.descs.iter().filter(|d| d.0 == id).map(|d| d.1).collect();
        assert_eq!(hits.len(), 1, "descriptor {id} set {} times", hits.len());
        hits[0]
    }

    #[test]
    fn access_constants_match_the_documented_values() {
        assert_eq!(
            (CODE16, DATA16, CODE32, CODE64, DATA32, TSS_BUSY),
            (0x9b, 0x93, 0xc09b, 0xa09b, 0xc093, 0x8b)
        );
    }

    #[test]
    fn gdt_entries_are_the_textbook_encodings() {
        let gdt = gdt_bytes(SCRATCH);
        let e = |s: u16| u64_at(&gdt, u64::from(s));
        assert_eq!(e(0), 0);
        assert_eq!(e(sel::CODE64), 0x00af_9b00_0000_ffff);
        assert_eq!(e(sel::CODE32), 0x00cf_9b00_0000_ffff);
        assert_eq!(e(sel::DATA), 0x00cf_9300_0000_ffff);
        assert_eq!(e(sel::CODE16), 0x0000_9b00_0000_ffff);
        assert_eq!(e(sel::DATA16), 0x0000_9300_0000_ffff);
        // Base 0x9080, limit 0x67, busy 32/64-bit TSS; high half zero.
        assert_eq!(e(sel::TSS), 0x0000_8b00_9080_0067);
        assert_eq!(e(sel::TSS + 8), 0);
    }

    #[test]
    fn tss_base_is_split_over_all_its_fields() {
        let d = desc(0x1234_5678_9abc_d000, 0x67, TSS_BUSY);
        assert_eq!(gdt_entry(&d), 0x9a00_8bbc_d000_0067);
        let gdt = gdt_bytes(0xfedc_b000);
        assert_eq!(u64_at(&gdt, 0x30), 0xfe00_8bdc_b080_0067);
    }

    #[test]
    fn tss_has_no_io_bitmap() {
        let img = scratch_image(Mode::Protected32, SCRATCH).unwrap();
        let at = (TSS_OFFSET + 0x66) as usize;
        assert_eq!(u16::from_le_bytes([img[at], img[at + 1]]), 0x68);
    }

    #[test]
    fn long_mode_page_tables_identity_map_4_gib() {
        let img = scratch_image(Mode::Long64, SCRATCH).unwrap();
        assert_eq!(img.len() as u64, SCRATCH_LEN);
        assert_eq!(u64_at(&img, PML4_OFFSET), (SCRATCH + PDPT_OFFSET) | 3);
        for i in 1..512 {
            assert_eq!(u64_at(&img, PML4_OFFSET + i * 8), 0);
        }
        for gib in 0..512u64 {
            let want = if gib < 4 { (SCRATCH + PD_OFFSET + gib * PAGE) | 3 } else { 0 };
            assert_eq!(u64_at(&img, PDPT_OFFSET + gib * 8), want);
        }
        // Walk a few addresses through the tables, as the CPU would.
        for va in [0u64, 0x1f_ffff, 0x20_0000, 0x4000_0000, 0xbfe0_1234, 0xffff_ffff] {
            let pml4e = u64_at(&img, PML4_OFFSET + (va >> 39 & 511) * 8);
            let pdpt = (pml4e & !0xfff) - SCRATCH;
            let pdpte = u64_at(&img, pdpt + (va >> 30 & 511) * 8);
            let pd = (pdpte & !0xfff) - SCRATCH;
            let pde = u64_at(&img, pd + (va >> 21 & 511) * 8);
            assert_eq!(pde & 0x83, 0x83, "{va:#x}: present, writable, 2 MiB");
            assert_eq!((pde & !0x1f_ffff) | (va & 0x1f_ffff), va, "{va:#x} maps to itself");
        }
        // Nothing past the fourth PD.
        assert!(img[(PD_OFFSET + 4 * PAGE) as usize..].iter().all(|&b| b == 0));
    }

    #[test]
    fn other_modes_write_no_page_tables() {
        for mode in [Mode::Real, Mode::Protected32] {
            let img = scratch_image(mode, SCRATCH).unwrap();
            assert!(img[PML4_OFFSET as usize..].iter().all(|&b| b == 0));
            assert_eq!(&img[..0x40], &gdt_bytes(SCRATCH)[..]);
        }
    }

    #[test]
    fn long_mode_state() {
        let s = vcpu_state(Mode::Long64, 0xffff_ffff_8000_1000, 0x20_0000, SCRATCH).unwrap();
        assert_eq!(reg_of(&s, reg::CR0), 0x8001_0031);
        assert_eq!(reg_of(&s, reg::CR4), 0x20);
        assert_eq!(reg_of(&s, reg::EFER), 0x500);
        assert_eq!(reg_of(&s, reg::CR3), SCRATCH + PML4_OFFSET);
        assert_eq!(reg_of(&s, reg::RIP), 0xffff_ffff_8000_1000);
        assert_eq!(reg_of(&s, reg::RSP), 0x20_0000);
        assert_eq!(reg_of(&s, reg::RFLAGS), 2);
        assert_eq!(reg_of(&s, reg::CS), 0x08);
        assert_eq!(desc_of(&s, reg::CS), desc(0, u32::MAX, 0xa09b));
        for id in [reg::DS, reg::ES, reg::SS, reg::FS, reg::GS] {
            assert_eq!(reg_of(&s, id), 0x18);
            assert_eq!(desc_of(&s, id), desc(0, u32::MAX, 0xc093));
        }
    }

    #[test]
    fn protected_mode_state() {
        let s = vcpu_state(Mode::Protected32, 0x10_0000, 0x1_0000_0000, SCRATCH).unwrap();
        assert_eq!(reg_of(&s, reg::CR0), 0x31);
        assert_eq!((reg_of(&s, reg::CR3), reg_of(&s, reg::CR4), reg_of(&s, reg::EFER)), (0, 0, 0));
        assert_eq!(reg_of(&s, reg::RIP), 0x10_0000);
        assert_eq!(reg_of(&s, reg::RSP), 0, "a 4 GiB stack top wraps to ESP 0");
        assert_eq!(reg_of(&s, reg::CS), 0x10);
        assert_eq!(desc_of(&s, reg::CS), desc(0, u32::MAX, 0xc09b));
        assert_eq!(desc_of(&s, reg::SS), desc(0, u32::MAX, 0xc093));
        assert_eq!(desc_of(&s, reg::IDTR), desc(0, 0, 0));
    }

    #[test]
    fn real_mode_state() {
        let s = vcpu_state(Mode::Real, 0x7c00, 0x7c00, SCRATCH).unwrap();
        assert_eq!(reg_of(&s, reg::CR0), 0x30);
        assert_eq!((reg_of(&s, reg::CS), reg_of(&s, reg::RIP)), (0, 0x7c00));
        assert_eq!(desc_of(&s, reg::CS), desc(0, 0xffff, 0x9b));
        assert_eq!((reg_of(&s, reg::SS), reg_of(&s, reg::RSP)), (0, 0x7c00));
        assert_eq!(desc_of(&s, reg::DS), desc(0, 0xffff, 0x93));
        assert_eq!(desc_of(&s, reg::IDTR), desc(0, 0xffff, 0));

        let s = vcpu_state(Mode::Real, 0xf_fff0, 0x9_0000, SCRATCH).unwrap();
        assert_eq!((reg_of(&s, reg::CS), reg_of(&s, reg::RIP)), (0xf000, 0xfff0));
        assert_eq!(desc_of(&s, reg::CS).base, 0xf_0000);
        // SS:SP = 0x8000:0: the first push lands at 0x8fffe, below the top.
        assert_eq!((reg_of(&s, reg::SS), reg_of(&s, reg::RSP)), (0x8000, 0));
        assert_eq!(desc_of(&s, reg::SS).base, 0x8_0000);

        let s = vcpu_state(Mode::Real, 0x1_2345, 0x1_0000, SCRATCH).unwrap();
        assert_eq!((reg_of(&s, reg::CS), reg_of(&s, reg::RIP)), (0x1000, 0x2345));
        assert_eq!((reg_of(&s, reg::SS), reg_of(&s, reg::RSP)), (0, 0));
    }

    #[test]
    fn every_mode_has_a_busy_tss_an_unusable_ldt_and_our_gdt() {
        for mode in [Mode::Real, Mode::Protected32, Mode::Long64] {
            let s = vcpu_state(mode, 0x8000, 0x8000, SCRATCH).unwrap();
            assert_eq!(reg_of(&s, reg::TR), u64::from(sel::TSS));
            assert_eq!(desc_of(&s, reg::TR), desc(SCRATCH + 0x80, 0x67, 0x8b));
            assert_eq!(reg_of(&s, reg::LDTR), 0);
            assert_eq!(desc_of(&s, reg::LDTR).access, access::UNUSABLE);
            assert_eq!(desc_of(&s, reg::GDTR), desc(SCRATCH, 0x3f, 0));
            assert_eq!(reg_of(&s, reg::RFLAGS), 2);
            assert!(s.regs.len() <= crate::uapi::VMM_MAX_REGS as usize);
            assert_eq!(s.descs.len(), 10);
            // Control registers come first, in an order whose every prefix
            // is consistent: CR0, CR3, CR4, EFER.
            let ids: Vec<u32> = s.regs.iter().take(4).map(|r| r.0).collect();
            assert_eq!(ids, [reg::CR0, reg::CR3, reg::CR4, reg::EFER]);
            for (_, d) in &s.descs {
                assert_eq!(d.access & !access::VALID, 0);
            }
        }
    }

    #[test]
    fn hidden_state_matches_the_gdt() {
        // What the vCPU is given for CS/DS is exactly what reloading the
        // selector from the GDT would give.
        for mode in [Mode::Protected32, Mode::Long64] {
            let s = vcpu_state(mode, 0x10_0000, 0x20_0000, SCRATCH).unwrap();
            let gdt = gdt_bytes(SCRATCH);
            for id in [reg::CS, reg::DS, reg::TR] {
                let at = reg_of(&s, id);
                assert_eq!(u64_at(&gdt, at), gdt_entry(&desc_of(&s, id)), "{mode:?} reg {id}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        use SetupError::*;
        assert_eq!(scratch_image(Mode::Long64, 0x9100), Err(ScratchMisaligned(0x9100)));
        assert_eq!(scratch_image(Mode::Long64, 0xffff_c000), Err(ScratchOutside(0xffff_c000)));
        assert!(scratch_image(Mode::Long64, 0xffff_8000).is_ok());
        assert_eq!(scratch_image(Mode::Real, !0xfff), Err(ScratchOutside(!0xfff)));
        assert_eq!(
            vcpu_state(Mode::Real, 0x10_0000, 0x7c00, SCRATCH),
            Err(Entry(Mode::Real, 0x10_0000))
        );
        assert_eq!(
            vcpu_state(Mode::Real, 0x7c00, 0x10_0001, SCRATCH),
            Err(Stack(Mode::Real, 0x10_0001))
        );
        assert!(vcpu_state(Mode::Real, 0x7c00, 0x10_0000, SCRATCH).is_ok());
        assert_eq!(
            vcpu_state(Mode::Protected32, 1 << 32, 0x7c00, SCRATCH),
            Err(Entry(Mode::Protected32, 1 << 32))
        );
        assert_eq!(
            vcpu_state(Mode::Long64, 0x0000_8000_0000_0000, 0x7c00, SCRATCH),
            Err(Entry(Mode::Long64, 0x0000_8000_0000_0000))
        );
        assert_eq!(
            vcpu_state(Mode::Long64, 0x1000, 0xffff_7fff_ffff_fff0, SCRATCH),
            Err(Stack(Mode::Long64, 0xffff_7fff_ffff_fff0))
        );
        let e: io::Error = Entry(Mode::Real, 0x10_0000).into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
