// SPDX-License-Identifier: MIT OR Apache-2.0

//! Image formats: multiboot (v1), plain ELF, flat binary.
//!
//! [`parse`] only reads the file; it says where each piece goes and where
//! execution starts, and [`crate::boot`] writes it into guest RAM.
//!
//! - **Multiboot**: a header (magic `0x1BADB002`, flags, checksum) on a
//!   4-byte boundary within the first 8 KiB. With flag bit 16 its address
//!   fields place the image (the "a.out kludge"); otherwise the file must be
//!   an ELF, loaded as below. Starts in 32-bit protected mode.
//! - **ELF** (32- or 64-bit, little-endian, x86): each `PT_LOAD` at its
//!   physical address `p_paddr`, `p_memsz - p_filesz` zero bytes after its
//!   file bytes. The entry is `e_entry`, translated to a physical address
//!   through the `PT_LOAD` whose virtual range holds it, as GRUB does.
//! - **Flat**: anything else, loaded whole at the given address, which is
//!   also the entry.

use std::fmt;

/// Multiboot v1 header magic.
pub const MULTIBOOT_MAGIC: u32 = 0x1bad_b002;
/// What a multiboot loader leaves in EAX.
pub const MULTIBOOT_BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// The header must lie within this many bytes from the file's start.
pub const MULTIBOOT_SEARCH: usize = 8192;
/// Header flag: the address fields are valid (a.out kludge).
pub const MULTIBOOT_AOUT_KLUDGE: u32 = 1 << 16;
/// Header flags 0-2 (page-align modules, memory info, video mode) are the
/// only required features defined; a set bit among 3-15 must fail the load.
const MULTIBOOT_KNOWN_REQUIRED: u32 = 0x7;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;

/// Which format [`parse`] recognized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A multiboot image; `elf` if it was placed by its ELF headers.
    Multiboot {
        /// The ELF program headers placed it (else the address fields).
        elf: bool,
    },
    /// An ELF without multiboot header.
    Elf {
        /// ELFCLASS64.
        bits64: bool,
    },
    /// A flat binary.
    Flat,
}

/// A piece of the image and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Guest-physical address of its first byte.
    pub gpa: u64,
    /// The bytes from the file.
    pub data: &'a [u8],
    /// Bytes it occupies in memory: `data`, then zeros up to this length.
    pub mem_len: u64,
}

/// A parsed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    /// Its format.
    pub format: Format,
    /// What to load where, in file order.
    pub segments: Vec<Segment<'a>>,
    /// Guest-physical entry point.
    pub entry: u64,
}

/// Why a file could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The file is empty.
    Empty,
    /// The multiboot header requires a feature we lack (flags bits 3-15).
    MultibootFlags(u32),
    /// The multiboot header's address fields are inconsistent.
    MultibootAddresses(&'static str),
    /// A multiboot header without address fields, in a file that is not ELF.
    MultibootNotElf,
    /// The ELF headers are malformed or not for x86.
    Elf(&'static str),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty image"),
            Self::MultibootFlags(fl) => {
                write!(f, "multiboot header flags {fl:#x} require features vmmrun lacks")
            }
            Self::MultibootAddresses(why) => write!(f, "multiboot address fields: {why}"),
            Self::MultibootNotElf => {
                write!(f, "multiboot header without address fields (flag 16) in a non-ELF file")
            }
            Self::Elf(why) => write!(f, "ELF: {why}"),
        }
    }
}

impl std::error::Error for LoadError {}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

/// A multiboot header found in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MultibootHeader {
    /// File offset of the magic.
    offset: usize,
    flags: u32,
}

fn find_multiboot(file: &[u8]) -> Option<MultibootHeader> {
    let end = file.len().min(MULTIBOOT_SEARCH);
    (0..end.saturating_sub(11)).step_by(4).find_map(|offset| {
        let magic = u32_at(file, offset)?;
        let flags = u32_at(file, offset + 4)?;
        let sum = u32_at(file, offset + 8)?;
        (magic == MULTIBOOT_MAGIC && magic.wrapping_add(flags).wrapping_add(sum) == 0)
            .then_some(MultibootHeader { offset, flags })
    })
}

/// Places an image by the multiboot address fields.
fn aout_kludge(file: &[u8], h: MultibootHeader) -> Result<Image<'_>, LoadError> {
    use LoadError::MultibootAddresses as Bad;
    if h.offset + 32 > MULTIBOOT_SEARCH {
        return Err(Bad("the header's address fields reach past the first 8 KiB"));
    }
    let field =
        |i: usize| u32_at(file, h.offset + 12 + 4 * i).map(u64::from).ok_or(Bad("truncated"));
    let (header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    // The header's own address fixes which file byte goes to load_addr.
    let into = header_addr.checked_sub(load_addr).ok_or(Bad("header_addr below load_addr"))?;
    let start =
        (h.offset as u64).checked_sub(into).ok_or(Bad("load_addr before the file's start"))?;
    let file_len = file.len() as u64 - start;
    let len = if load_end_addr == 0 {
        file_len
    } else {
        load_end_addr.checked_sub(load_addr).ok_or(Bad("load_end_addr below load_addr"))?
    };
    if len > file_len {
        return Err(Bad("load_end_addr past the file's end"));
    }
    let mem_len = if bss_end_addr == 0 {
        len
    } else {
        bss_end_addr
            .checked_sub(load_addr)
            .filter(|&m| m >= len)
            .ok_or(Bad("bss_end_addr below load_end_addr"))?
    };
    let data = &file[start as usize..(start + len) as usize];
    Ok(Image {
        format: Format::Multiboot { elf: false },
        segments: vec![Segment { gpa: load_addr, data, mem_len }],
        entry: entry_addr,
    })
}

/// One `PT_LOAD` program header.
#[derive(Clone, Copy, Debug)]
struct Phdr {
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Parses an ELF's loadable segments; `None` if `file` is not ELF at all.
fn elf(file: &[u8]) -> Option<Result<Image<'_>, LoadError>> {
    if !file.starts_with(ELF_MAGIC) {
        return None;
    }
    Some(elf_inner(file))
}

fn elf_inner(file: &[u8]) -> Result<Image<'_>, LoadError> {
    use LoadError::Elf as Bad;
    let truncated = Bad("truncated headers");
    let bits64 = match file.get(4) {
        Some(&ELFCLASS32) => false,
        Some(&ELFCLASS64) => true,
        _ => return Err(Bad("unknown class")),
    };
    if file.get(5) != Some(&ELFDATA2LSB) {
        return Err(Bad("not little-endian"));
    }
    if u16_at(file, 16) != Some(ET_EXEC) {
        return Err(Bad("not an executable (ET_EXEC)"));
    }
    let machine = u16_at(file, 18).ok_or(truncated.clone())?;
    if machine != if bits64 { EM_X86_64 } else { EM_386 } {
        return Err(Bad("not an x86 image of its class"));
    }
    // (e_entry, e_phoff, e_phentsize, e_phnum, size of one phdr we read)
    let (entry, phoff, phentsize, phnum, min_phent) = if bits64 {
        let g = || -> Option<_> {
            Some((u64_at(file, 24)?, u64_at(file, 32)?, u16_at(file, 54)?, u16_at(file, 56)?, 56))
        };
        g().ok_or(truncated.clone())?
    } else {
        let g = || -> Option<_> {
            Some((
                u64::from(u32_at(file, 24)?),
                u64::from(u32_at(file, 28)?),
                u16_at(file, 42)?,
                u16_at(file, 44)?,
                32,
            ))
        };
        g().ok_or(truncated.clone())?
    };
    if phnum > 0 && usize::from(phentsize) < min_phent {
        return Err(Bad("program headers too small"));
    }
    let mut loads = Vec::new();
    for i in 0..u64::from(phnum) {
        let at = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|a| usize::try_from(a).ok())
            .filter(|&a| a.checked_add(usize::from(phentsize)).is_some_and(|end| end <= file.len()))
            .ok_or(truncated.clone())?;
        let ph = if bits64 {
            (|| -> Option<_> {
                Some((
                    u32_at(file, at)?,
                    Phdr {
                        offset: u64_at(file, at + 8)?,
                        vaddr: u64_at(file, at + 16)?,
                        paddr: u64_at(file, at + 24)?,
                        filesz: u64_at(file, at + 32)?,
                        memsz: u64_at(file, at + 40)?,
                    },
                ))
            })()
        } else {
            (|| -> Option<_> {
                let w = |o: usize| u32_at(file, at + o).map(u64::from);
                Some((
                    u32_at(file, at)?,
                    Phdr {
                        offset: w(4)?,
                        vaddr: w(8)?,
                        paddr: w(12)?,
                        filesz: w(16)?,
                        memsz: w(20)?,
                    },
                ))
            })()
        };
        let (p_type, ph) = ph.ok_or(truncated.clone())?;
        if p_type != PT_LOAD || ph.memsz == 0 {
            continue;
        }
        if ph.filesz > ph.memsz {
            return Err(Bad("a PT_LOAD has p_filesz > p_memsz"));
        }
        if ph.offset.checked_add(ph.filesz).is_none_or(|end| end > file.len() as u64) {
            return Err(Bad("a PT_LOAD reaches past the file's end"));
        }
        if ph.paddr.checked_add(ph.memsz).is_none() {
            return Err(Bad("a PT_LOAD wraps the address space"));
        }
        loads.push(ph);
    }
    if loads.is_empty() {
        return Err(Bad("no PT_LOAD segment"));
    }
    let entry = loads
        .iter()
        .find(|p| entry >= p.vaddr && entry - p.vaddr < p.memsz)
        .map_or(entry, |p| entry - p.vaddr + p.paddr);
    let segments = loads
        .iter()
        .map(|p| Segment {
            gpa: p.paddr,
            data: &file[p.offset as usize..(p.offset + p.filesz) as usize],
            mem_len: p.memsz,
        })
        .collect();
    Ok(Image { format: Format::Elf { bits64 }, segments, entry })
}

/// Recognizes `file` and says where it goes; a flat binary goes at
/// `flat_load`.
pub fn parse(file: &[u8], flat_load: u64) -> Result<Image<'_>, LoadError> {
    if file.is_empty() {
        return Err(LoadError::Empty);
    }
    if let Some(h) = find_multiboot(file) {
        if h.flags & 0xffff & !MULTIBOOT_KNOWN_REQUIRED != 0 {
            return Err(LoadError::MultibootFlags(h.flags));
        }
        if h.flags & MULTIBOOT_AOUT_KLUDGE != 0 {
            return aout_kludge(file, h);
        }
        let mut img = elf(file).ok_or(LoadError::MultibootNotElf)??;
        img.format = Format::Multiboot { elf: true };
        return Ok(img);
    }
    if let Some(img) = elf(file) {
        return img;
    }
    Ok(Image {
        format: Format::Flat,
        segments: vec![Segment { gpa: flat_load, data: file, mem_len: file.len() as u64 }],
        entry: flat_load,
    })
}

/// Builders of small images, shared by the tests of this crate.
#[cfg(test)]
pub mod testimg {
    /// A multiboot header with `flags` and a correct checksum.
    pub fn mb_header(flags: u32) -> Vec<u8> {
        let mut h = Vec::new();
        for w in [
            super::MULTIBOOT_MAGIC,
            flags,
            0u32.wrapping_sub(super::MULTIBOOT_MAGIC).wrapping_sub(flags),
        ] {
            h.extend_from_slice(&w.to_le_bytes());
        }
        h
    }

    /// One program header: (vaddr, paddr, file bytes, memsz).
    pub type Load<'a> = (u64, u64, &'a [u8], u64);

    /// An ELF executable of the given class with `loads` as PT_LOADs (data
    /// after the headers, in order) and `extra` appended at offset 0x100
    /// (where a multiboot header can go).
    pub fn elf(bits64: bool, entry: u64, loads: &[Load<'_>], extra: &[u8]) -> Vec<u8> {
        let (ehsize, phentsize) = if bits64 { (64usize, 56usize) } else { (52, 32) };
        let mut f = vec![0u8; 0x100];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = if bits64 { 2 } else { 1 };
        f[5] = 1;
        f[6] = 1;
        let put = |f: &mut Vec<u8>, at: usize, v: u64, n: usize| {
            f[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        };
        put(&mut f, 16, 2, 2);
        put(&mut f, 18, if bits64 { 62 } else { 3 }, 2);
        put(&mut f, 20, 1, 4);
        let w = if bits64 { 8 } else { 4 };
        put(&mut f, 24, entry, w);
        put(&mut f, 24 + w, ehsize as u64, w); // e_phoff: right after the header
        let (phent_at, phnum_at) = if bits64 { (54, 56) } else { (42, 44) };
        put(&mut f, if bits64 { 52 } else { 40 }, ehsize as u64, 2); // e_ehsize
        put(&mut f, phent_at, phentsize as u64, 2);
        put(&mut f, phnum_at, loads.len() as u64, 2);
        assert!(ehsize + loads.len() * phentsize <= 0x100);
        f.extend_from_slice(extra);
        let mut data_at = f.len();
        for (i, (vaddr, paddr, data, memsz)) in loads.iter().enumerate() {
            let ph = ehsize + i * phentsize;
            put(&mut f, ph, 1, 4);
            if bits64 {
                put(&mut f, ph + 8, data_at as u64, 8);
                put(&mut f, ph + 16, *vaddr, 8);
                put(&mut f, ph + 24, *paddr, 8);
                put(&mut f, ph + 32, data.len() as u64, 8);
                put(&mut f, ph + 40, *memsz, 8);
            } else {
                put(&mut f, ph + 4, data_at as u64, 4);
                put(&mut f, ph + 8, *vaddr, 4);
                put(&mut f, ph + 12, *paddr, 4);
                put(&mut f, ph + 16, data.len() as u64, 4);
                put(&mut f, ph + 20, *memsz, 4);
            }
            data_at += data.len();
        }
        for (_, _, data, _) in loads {
            f.extend_from_slice(data);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::testimg::{elf, mb_header};
    use super::*;

    #[test]
    fn flat_binaries_go_where_asked() {
        let f = [0xf4u8; 3]; // hlt hlt hlt
        let img = parse(&f, 0x7c00).unwrap();
        assert_eq!(img.format, Format::Flat);
        assert_eq!(img.entry, 0x7c00);
        assert_eq!(img.segments, [Segment { gpa: 0x7c00, data: &f, mem_len: 3 }]);
        assert_eq!(parse(&[], 0), Err(LoadError::Empty));
    }

    #[test]
    fn elf32_multiboot() {
        let text = [0x90u8, 0xf4];
        let f = elf(false, 0x10_0000, &[(0x10_0000, 0x10_0000, &text, 0x2000)], &mb_header(0x3));
        let img = parse(&f, 0).unwrap();
        assert_eq!(img.format, Format::Multiboot { elf: true });
        assert_eq!(img.entry, 0x10_0000);
        assert_eq!(img.segments, [Segment { gpa: 0x10_0000, data: &text, mem_len: 0x2000 }]);
    }

    #[test]
    fn elf64_multiboot_with_a_higher_half_entry() {
        // Linked at 0xffffffff80100000, loaded at 1 MiB: the entry is
        // translated to its physical address.
        let v = 0xffff_ffff_8010_0000u64;
        let (a, b) = ([1u8; 16], [2u8; 8]);
        let f = elf(
            true,
            v + 0x10,
            &[(v, 0x10_0000, &a, 0x1000), (v + 0x1000, 0x10_1000, &b, 0x10)],
            &mb_header(0),
        );
        let img = parse(&f, 0).unwrap();
        assert_eq!(img.format, Format::Multiboot { elf: true });
        assert_eq!(img.entry, 0x10_0010);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.segments[1], Segment { gpa: 0x10_1000, data: &b, mem_len: 0x10 });
    }

    #[test]
    fn plain_elf_without_multiboot_header() {
        let f = elf(true, 0x20_0000, &[(0x20_0000, 0x20_0000, &[0xf4], 1)], &[]);
        let img = parse(&f, 0).unwrap();
        assert_eq!(img.format, Format::Elf { bits64: true });
        assert_eq!(img.entry, 0x20_0000);
        let f = elf(false, 0x20_0000, &[(0x20_0000, 0x20_0000, &[0xf4], 1)], &[]);
        assert_eq!(parse(&f, 0).unwrap().format, Format::Elf { bits64: false });
    }

    #[test]
    fn aout_kludge_places_the_file_by_the_header() {
        // A flat file whose header sits at offset 8, loaded at 1 MiB:
        // header_addr = load_addr + 8.
        let mut f = vec![0xeb, 0x1e, 0, 0, 0, 0, 0, 0]; // jmp over the header
        f.extend(mb_header(MULTIBOOT_AOUT_KLUDGE | 0x2));
        for w in [0x10_0008u32, 0x10_0000, 0, 0x10_4000, 0x10_0020] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(&[0xf4; 4]);
        let img = parse(&f, 0).unwrap();
        assert_eq!(img.format, Format::Multiboot { elf: false });
        assert_eq!(img.entry, 0x10_0020);
        assert_eq!(img.segments, [Segment { gpa: 0x10_0000, data: &f, mem_len: 0x4000 }]);

        // load_end_addr cuts the file short; no bss.
        let mut g = f.clone();
        g[28..32].copy_from_slice(&0x10_0024u32.to_le_bytes());
        g[32..36].copy_from_slice(&0u32.to_le_bytes());
        let img = parse(&g, 0).unwrap();
        assert_eq!(img.segments, [Segment { gpa: 0x10_0000, data: &g[..0x24], mem_len: 0x24 }]);
    }

    #[test]
    fn aout_kludge_rejects_impossible_addresses() {
        let mk = |fields: [u32; 5]| {
            let mut f = mb_header(MULTIBOOT_AOUT_KLUDGE);
            for w in fields {
                f.extend_from_slice(&w.to_le_bytes());
            }
            f.extend_from_slice(&[0; 16]);
            parse(&f, 0).map(|img| (img.entry, img.segments.len()))
        };
        assert!(mk([0x10_0000, 0x10_0000, 0, 0, 0x10_0000]).is_ok());
        // The header would be 16 bytes into the image, but is at offset 0.
        assert!(matches!(
            mk([0x10_0010, 0x10_0000, 0, 0, 0]),
            Err(LoadError::MultibootAddresses(_))
        ));
        assert!(matches!(
            mk([0x10_0000, 0x10_0004, 0, 0, 0]),
            Err(LoadError::MultibootAddresses(_))
        ));
        assert!(matches!(
            mk([0x10_0000, 0x10_0000, 0x10_1000, 0, 0]),
            Err(LoadError::MultibootAddresses(_))
        ));
        assert!(matches!(
            mk([0x10_0000, 0x10_0000, 0, 0x10_0004, 0]),
            Err(LoadError::MultibootAddresses(_))
        ));
    }

    #[test]
    fn multiboot_header_must_be_valid_aligned_and_early() {
        let load = [(0x10_0000u64, 0x10_0000u64, &[0xf4u8][..], 1u64)];
        // Bad checksum: not multiboot, just an ELF.
        let mut h = mb_header(0);
        h[8] ^= 1;
        assert_eq!(
            parse(&elf(false, 0x10_0000, &load, &h), 0).unwrap().format,
            Format::Elf { bits64: false }
        );
        // Misaligned: not found.
        let mut h = vec![0u8; 2];
        h.extend(mb_header(0));
        assert_eq!(
            parse(&elf(false, 0x10_0000, &load, &h), 0).unwrap().format,
            Format::Elf { bits64: false }
        );
        // Past the first 8 KiB: not found.
        let mut h = vec![0u8; MULTIBOOT_SEARCH - 0x100];
        h.extend(mb_header(0));
        assert_eq!(
            parse(&elf(false, 0x10_0000, &load, &h), 0).unwrap().format,
            Format::Elf { bits64: false }
        );
        // Just inside: found.
        let mut h = vec![0u8; MULTIBOOT_SEARCH - 0x100 - 12];
        h.extend(mb_header(0));
        assert_eq!(
            parse(&elf(false, 0x10_0000, &load, &h), 0).unwrap().format,
            Format::Multiboot { elf: true }
        );
    }

    #[test]
    fn multiboot_required_features_we_lack_fail() {
        let load = [(0x10_0000u64, 0x10_0000u64, &[0xf4u8][..], 1u64)];
        let f = elf(false, 0x10_0000, &load, &mb_header(1 << 3));
        assert_eq!(parse(&f, 0), Err(LoadError::MultibootFlags(1 << 3)));
        // Optional features (bits 16-31, other than 16 itself) are fine.
        let f = elf(false, 0x10_0000, &load, &mb_header(1 << 20 | 0x7));
        assert!(parse(&f, 0).is_ok());
        // Without address fields, the file must be an ELF.
        let mut f = vec![0x90u8; 16];
        f.extend(mb_header(0));
        assert_eq!(parse(&f, 0), Err(LoadError::MultibootNotElf));
    }

    #[test]
    fn malformed_elves_are_errors_not_panics() {
        let good = elf(true, 0x1000, &[(0x1000, 0x1000, &[0xf4], 1)], &[]);
        assert!(parse(&good, 0).is_ok());
        for cut in [5, 20, 40, 63, 64 + 30] {
            assert!(matches!(parse(&good[..cut], 0), Err(LoadError::Elf(_))), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[18] = 3; // EM_386 in a 64-bit file
        assert!(matches!(parse(&bad, 0), Err(LoadError::Elf(_))));
        let mut bad = good.clone();
        bad[5] = 2; // big-endian
        assert!(matches!(parse(&bad, 0), Err(LoadError::Elf(_))));
        let mut bad = good.clone();
        bad[64 + 32] = 2; // p_filesz 2 > p_memsz 1
        assert!(matches!(parse(&bad, 0), Err(LoadError::Elf(_))));
        let mut bad = good.clone();
        bad[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes()); // p_offset
        assert!(matches!(parse(&bad, 0), Err(LoadError::Elf(_))));
        let mut bad = good.clone();
        bad[32..40].copy_from_slice(&(u64::MAX - 8).to_le_bytes()); // e_phoff
        assert!(matches!(parse(&bad, 0), Err(LoadError::Elf(_))));
        let none = elf(true, 0x1000, &[], &[]);
        assert_eq!(parse(&none, 0), Err(LoadError::Elf("no PT_LOAD segment")));
    }
}
