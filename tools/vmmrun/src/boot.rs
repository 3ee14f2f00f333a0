// SPDX-License-Identifier: MIT OR Apache-2.0

//! Guest memory layout, and loading an image into it.
//!
//! RAM is one segment at guest-physical 0. vmmrun keeps the top of the
//! first 4 GiB of it (`top` = min(RAM size, 4 GiB)) for itself; an image
//! that overlaps that area is refused.
//!
//! | guest-physical | what |
//! |---|---|
//! | `top - 0x8000` .. `top` | scratch for [`setup::setup_vcpu`]: GDT, TSS, page tables |
//! | `top - 0x9000` .. `top - 0x8000` | multiboot information (multiboot images only) |
//! | `top - 0x19000` .. `top - 0x9000` | the initial stack (32- and 64-bit): RSP = `top - 0x9000` |
//!
//! A real-mode guest gets SS:SP = 0:0x7c00 instead, as under a BIOS, and is
//! loaded at 0x7c00 unless told otherwise; flat 32/64-bit images load at
//! 1 MiB by default. Everything else is the guest's.

use std::ops::Range;

use libvmm::setup::{self, Mode, SCRATCH_LEN};
use libvmm::uapi::reg;

use crate::args::Args;
use crate::loader::{self, Format, Segment, MULTIBOOT_BOOTLOADER_MAGIC};

/// The reserved area sits below the lower of RAM's end and this.
pub const RESERVED_CEILING: u64 = 4 << 30;
/// Bytes for the multiboot information.
pub const MBI_LEN: u64 = 0x1000;
/// Bytes reserved for the initial stack.
pub const STACK_LEN: u64 = 0x1_0000;
/// Bytes vmmrun reserves at the top.
pub const RESERVED_LEN: u64 = SCRATCH_LEN + MBI_LEN + STACK_LEN;
/// The real-mode stack top.
pub const REAL_MODE_STACK: u64 = 0x7c00;
/// Where a flat image goes by default in 32/64-bit mode.
pub const DEFAULT_LOAD: u64 = 0x10_0000;
/// Where a flat image goes by default in real mode.
pub const DEFAULT_REAL_LOAD: u64 = 0x7c00;
/// The least RAM vmmrun runs with.
pub const MIN_RAM: u64 = 1 << 20;

/// Where vmmrun's own pieces go in a RAM of a given size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// RAM size in bytes, from GPA 0.
    pub ram: u64,
    /// The scratch area for `setup_vcpu`.
    pub scratch: u64,
    /// The multiboot information.
    pub mbi: u64,
    /// The 32/64-bit initial stack top.
    pub stack_top: u64,
    /// Everything vmmrun keeps for itself.
    pub reserved: Range<u64>,
}

impl Layout {
    /// The layout for `ram` bytes of RAM (a multiple of 4 KiB, at least
    /// [`MIN_RAM`]).
    pub fn new(ram: u64) -> Self {
        assert!(ram >= MIN_RAM && ram % 0x1000 == 0, "RAM size {ram:#x}");
        let top = ram.min(RESERVED_CEILING);
        let scratch = top - SCRATCH_LEN;
        let mbi = scratch - MBI_LEN;
        Self { ram, scratch, mbi, stack_top: mbi, reserved: top - RESERVED_LEN..top }
    }

    /// Whether `seg` fits in RAM outside the reserved area.
    pub fn check(&self, seg: &Segment<'_>) -> Result<(), String> {
        let end = seg.gpa.checked_add(seg.mem_len).filter(|&e| e <= self.ram).ok_or_else(|| {
            format!(
                "{:#x}+{:#x} does not fit in {} MiB of RAM (--mem)",
                seg.gpa,
                seg.mem_len,
                self.ram >> 20
            )
        })?;
        if seg.mem_len > 0 && seg.gpa < self.reserved.end && end > self.reserved.start {
            return Err(format!(
                "{:#x}..{end:#x} overlaps vmmrun's area {:#x}..{:#x} (try more --mem)",
                seg.gpa, self.reserved.start, self.reserved.end
            ));
        }
        Ok(())
    }
}

/// Guest RAM as the loader sees it: bytes from guest-physical 0.
pub trait GuestMemory {
    /// Bytes of RAM.
    fn size(&self) -> u64;
    /// Copies `data` to `gpa`; the caller has checked the range.
    fn write_at(&mut self, gpa: u64, data: &[u8]);
}

impl GuestMemory for libvmm::sys::Mapping {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn write_at(&mut self, gpa: u64, data: &[u8]) {
        self.write(gpa as usize, data);
    }
}

fn zero(mem: &mut impl GuestMemory, mut gpa: u64, mut len: u64) {
    const ZEROS: [u8; 4096] = [0; 4096];
    while len > 0 {
        let n = len.min(ZEROS.len() as u64);
        mem.write_at(gpa, &ZEROS[..n as usize]);
        gpa += n;
        len -= n;
    }
}

/// Multiboot information flag: `mem_lower`/`mem_upper` are valid.
const MBI_MEMORY: u32 = 1 << 0;
/// Multiboot information flag: `boot_loader_name` is valid.
const MBI_LOADER_NAME: u32 = 1 << 9;
/// Where the loader's name string sits in the information page.
const MBI_NAME_OFFSET: usize = 0x80;

/// The multiboot information: lower memory up to 640 KiB, upper memory
/// from 1 MiB up to vmmrun's reserved area, and the loader's name.
pub fn multiboot_info(layout: &Layout) -> Vec<u8> {
    let mut mbi = vec![0u8; MBI_NAME_OFFSET];
    let mut put = |off: usize, v: u32| mbi[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let lower = layout.ram.min(640 << 10) >> 10;
    let upper = (layout.reserved.start.saturating_sub(1 << 20) >> 10).min(u64::from(u32::MAX));
    put(0, MBI_MEMORY | MBI_LOADER_NAME);
    put(4, lower as u32);
    put(8, upper as u32);
    // boot_loader_name: a physical address below 4 GiB, as `top` is.
    put(64, (layout.mbi + MBI_NAME_OFFSET as u64) as u32);
    mbi.extend_from_slice(b"vmmrun\0");
    mbi
}

/// How the vCPU starts, once the image is in RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// What was loaded.
    pub format: Format,
    /// The vCPU's first mode.
    pub mode: Mode,
    /// Its first RIP (guest-physical: paging is off or identity).
    pub entry: u64,
    /// Its first RSP.
    pub stack: u64,
    /// Where `setup_vcpu` goes.
    pub scratch: u64,
    /// General registers to set after `setup_vcpu` (multiboot: EAX, EBX).
    pub regs: Vec<(u32, u64)>,
}

/// Parses `file`, writes it into `mem` and says how to start the vCPU.
/// Every check happens before the first byte is written.
pub fn prepare(args: &Args, file: &[u8], mem: &mut impl GuestMemory) -> Result<Boot, String> {
    let layout = Layout::new(mem.size());
    let flat_load = args.load.unwrap_or(match args.mode {
        Some(Mode::Real) => DEFAULT_REAL_LOAD,
        _ => DEFAULT_LOAD,
    });
    let image = loader::parse(file, flat_load).map_err(|e| e.to_string())?;
    if args.load.is_some() && image.format != Format::Flat {
        return Err("--load applies to flat binaries only; this image says where it goes".into());
    }
    let mode = match image.format {
        Format::Multiboot { .. } => match args.mode {
            None | Some(Mode::Protected32) => Mode::Protected32,
            Some(m) => return Err(format!("a multiboot image starts in 32-bit mode, not {m:?}")),
        },
        Format::Elf { bits64 } => {
            args.mode.unwrap_or(if bits64 { Mode::Long64 } else { Mode::Protected32 })
        }
        Format::Flat => args.mode.unwrap_or(Mode::Long64),
    };
    let entry = args.entry.unwrap_or(image.entry);
    let stack = if mode == Mode::Real { REAL_MODE_STACK } else { layout.stack_top };
    for seg in &image.segments {
        layout.check(seg)?;
    }
    // The same checks setup_vcpu makes, before anything is written.
    setup::vcpu_state(mode, entry, stack, layout.scratch).map_err(|e| e.to_string())?;

    for seg in &image.segments {
        mem.write_at(seg.gpa, seg.data);
        zero(mem, seg.gpa + seg.data.len() as u64, seg.mem_len - seg.data.len() as u64);
    }
    let mut regs = Vec::new();
    if let Format::Multiboot { .. } = image.format {
        mem.write_at(layout.mbi, &multiboot_info(&layout));
        regs.push((reg::RAX, u64::from(MULTIBOOT_BOOTLOADER_MAGIC)));
        regs.push((reg::RBX, layout.mbi));
    }
    Ok(Boot { format: image.format, mode, entry, stack, scratch: layout.scratch, regs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::testimg::{elf, mb_header};

    const MIB: u64 = 1 << 20;

    struct Ram(Vec<u8>);

    impl GuestMemory for Ram {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn write_at(&mut self, gpa: u64, data: &[u8]) {
            self.0[gpa as usize..gpa as usize + data.len()].copy_from_slice(data);
        }
    }

    fn ram(mib: u64) -> Ram {
        Ram(vec![0xcc; (mib * MIB) as usize])
    }

    fn args() -> Args {
        Args {
            mem_mib: 0,
            mode: None,
            entry: None,
            load: None,
            max_exits: None,
            uart_mmio: None,
            verbose: false,
            file: String::new(),
        }
    }

    fn u32_at(m: &[u8], at: u64) -> u32 {
        u32::from_le_bytes(m[at as usize..at as usize + 4].try_into().unwrap())
    }

    #[test]
    fn layout_sits_at_the_top_of_ram_below_4_gib() {
        let l = Layout::new(64 * MIB);
        assert_eq!(l.scratch, 64 * MIB - 0x8000);
        assert_eq!(l.mbi, 64 * MIB - 0x9000);
        assert_eq!(l.stack_top, l.mbi);
        assert_eq!(l.reserved, 64 * MIB - 0x19000..64 * MIB);
        let l = Layout::new(8 << 30);
        assert_eq!(l.reserved.end, 4 << 30);
        assert_eq!(l.scratch, (4 << 30) - 0x8000);
    }

    #[test]
    fn multiboot_elf_is_loaded_and_gets_eax_ebx() {
        let text = [0x90u8, 0x90, 0xf4];
        let f = elf(false, 0x10_0001, &[(0x10_0000, 0x10_0000, &text, 0x1000)], &mb_header(0x2));
        let mut mem = ram(4);
        let b = prepare(&args(), &f, &mut mem).unwrap();
        assert_eq!(b.format, Format::Multiboot { elf: true });
        assert_eq!((b.mode, b.entry), (Mode::Protected32, 0x10_0001));
        let l = Layout::new(4 * MIB);
        assert_eq!((b.stack, b.scratch), (l.stack_top, l.scratch));
        assert_eq!(b.regs, [(reg::RAX, 0x2bad_b002), (reg::RBX, l.mbi)]);
        // The segment, then its bss zeroed (RAM started as 0xcc here).
        assert_eq!(&mem.0[0x10_0000..0x10_0003], &text);
        assert!(mem.0[0x10_0003..0x10_1000].iter().all(|&b| b == 0));
        assert_eq!(mem.0[0x10_1000], 0xcc);
        // The information: memory and name.
        assert_eq!(u32_at(&mem.0, l.mbi), 1 | 1 << 9);
        assert_eq!(u32_at(&mem.0, l.mbi + 4), 640);
        assert_eq!(u32_at(&mem.0, l.mbi + 8), ((4 * MIB - 0x19000 - MIB) >> 10) as u32);
        let name = u64::from(u32_at(&mem.0, l.mbi + 64));
        assert_eq!(&mem.0[name as usize..name as usize + 7], b"vmmrun\0");
    }

    #[test]
    fn multiboot_mode_and_load_are_not_negotiable() {
        let f = elf(false, 0x10_0000, &[(0x10_0000, 0x10_0000, &[0xf4], 1)], &mb_header(0));
        let mut a = args();
        a.mode = Some(Mode::Long64);
        assert!(prepare(&a, &f, &mut ram(4)).unwrap_err().contains("32-bit"));
        let mut a = args();
        a.load = Some(0x20_0000);
        assert!(prepare(&a, &f, &mut ram(4)).unwrap_err().contains("--load"));
        // --entry overrides, though.
        let mut a = args();
        a.entry = Some(0x10_0000 + 0x40);
        assert_eq!(prepare(&a, &f, &mut ram(4)).unwrap().entry, 0x10_0040);
    }

    #[test]
    fn flat_defaults_per_mode() {
        let f = [0xf4u8; 16];
        let mut mem = ram(2);
        let b = prepare(&args(), &f, &mut mem).unwrap();
        assert_eq!((b.format, b.mode, b.entry), (Format::Flat, Mode::Long64, 0x10_0000));
        assert!(b.regs.is_empty());
        assert_eq!(&mem.0[0x10_0000..0x10_0010], &f);

        let mut a = args();
        a.mode = Some(Mode::Real);
        let mut mem = ram(1);
        let b = prepare(&a, &f, &mut mem).unwrap();
        assert_eq!((b.mode, b.entry, b.stack), (Mode::Real, 0x7c00, 0x7c00));
        assert_eq!(&mem.0[0x7c00..0x7c10], &f);

        let mut a = args();
        a.mode = Some(Mode::Protected32);
        a.load = Some(0x20_0000);
        a.entry = Some(0x20_0008);
        let b = prepare(&a, &f, &mut ram(4)).unwrap();
        assert_eq!((b.mode, b.entry), (Mode::Protected32, 0x20_0008));
    }

    #[test]
    fn plain_elf_mode_follows_its_class() {
        let load = [(0x10_0000u64, 0x10_0000u64, &[0xf4u8][..], 1u64)];
        let b = prepare(&args(), &elf(true, 0x10_0000, &load, &[]), &mut ram(2)).unwrap();
        assert_eq!(b.mode, Mode::Long64);
        let b = prepare(&args(), &elf(false, 0x10_0000, &load, &[]), &mut ram(2)).unwrap();
        assert_eq!(b.mode, Mode::Protected32);
        let mut a = args();
        a.mode = Some(Mode::Protected32);
        let b = prepare(&a, &elf(true, 0x10_0000, &load, &[]), &mut ram(2)).unwrap();
        assert_eq!(b.mode, Mode::Protected32);
    }

    #[test]
    fn images_must_fit_and_avoid_the_reserved_area() {
        let f = [0xf4u8; 0x100];
        let mut a = args();
        a.load = Some(2 * MIB - 0x80);
        let mut mem = ram(2);
        let e = prepare(&a, &f, &mut mem).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        a.load = Some(2 * MIB - 0x19000 - 0x80);
        let e = prepare(&a, &f, &mut mem).unwrap_err();
        assert!(e.contains("overlaps"), "{e}");
        assert!(mem.0.iter().all(|&b| b == 0xcc), "nothing written on error");
        a.load = Some(2 * MIB - 0x19000 - 0x100);
        assert!(prepare(&a, &f, &mut mem).is_ok());
        a.load = Some(u64::MAX - 0x10);
        assert!(prepare(&a, &f, &mut mem).is_err());
    }

    #[test]
    fn entry_must_suit_the_mode() {
        let f = [0xf4u8; 16];
        let mut a = args();
        a.mode = Some(Mode::Real);
        a.load = Some(0x10_0000);
        let mut mem = ram(2);
        assert!(prepare(&a, &f, &mut mem).unwrap_err().contains("Real mode cannot start"));
        assert!(mem.0.iter().all(|&b| b == 0xcc), "nothing written on error");
    }
}
