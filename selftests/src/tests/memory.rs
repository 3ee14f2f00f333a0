// SPDX-License-Identifier: MIT OR Apache-2.0

//! Guest memory: ROM, unbacked addresses (MMIO for data, PAGING for
//! fetches), the top of guest-physical space, and bad input to segments,
//! mappings and `mmap`.

use std::os::fd::AsFd;

use libvmm::setup::{Mode, PML4_OFFSET};
use libvmm::sys::ioctl_ptr;
use libvmm::uapi::*;
use libvmm::{Exit, Segment, VmFd};

use crate::guest::{
    complete, describe, expect_mmio, expect_paging, s, Next, TestVm, DATA, FREE, LOAD, RAM_LEN,
    RUN, SCRATCH,
};
use crate::mem::{expect_efault, try_mmap};
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_debug, asm_pass, ensure, expect_errno, payload, sym, vmm};

/// Where the ROM tests map their ROM: the top 64 KiB below 4 GiB, inside
/// the identity map `libvmm::setup` builds.
const ROM: u64 = 0xffff_0000;
const ROM_LEN: u64 = 0x1_0000;
const PAGE: u64 = 0x1000;
const MIB2: u64 = 2 << 20;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    // Runs in RAM: reads ROM data, calls code in ROM, writes ROM (a PAGING
    // exit, after which the test resumes at R15), reads it again.
    ".globl vmm_guest_rom_rw_start, vmm_guest_rom_rw_end",
    "vmm_guest_rom_rw_start:",
    ".code64",
    "movl ${rom} + 0x800, %ebx",
    "movl (%rbx), %eax",
    asm_debug!(),
    "movl ${rom} + 0x1000, %eax",
    "call *%rax",
    asm_debug!(),
    "leaq 1f(%rip), %r15",
    "movl $0x5a5a5a5a, 4(%rbx)",
    "1: movl 4(%rbx), %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_rom_rw_end:",
    // Copied into ROM by the test: returns a word of its own.
    ".globl vmm_guest_rom_fn_start, vmm_guest_rom_fn_end",
    "vmm_guest_rom_fn_start:",
    "movl 1f(%rip), %eax",
    "ret",
    "1: .long 0x0dd0c0de",
    "vmm_guest_rom_fn_end:",
    // Runs from ROM: reads its own data, uses RAM and the stack, then
    // writes its own data (a PAGING exit; the test resumes at R15).
    ".globl vmm_guest_rom_boot_start, vmm_guest_rom_boot_end, vmm_guest_rom_boot_data",
    "vmm_guest_rom_boot_start:",
    "movl vmm_guest_rom_boot_data(%rip), %eax",
    asm_debug!(),
    "incl %eax",
    "movl %eax, {data}",
    "pushq %rax",
    "popq %rcx",
    "movl {data}, %eax",
    asm_debug!(),
    "leaq 1f(%rip), %r15",
    "movl $0, vmm_guest_rom_boot_data(%rip)",
    "1:",
    asm_pass!(),
    "vmm_guest_rom_boot_data: .long 0x20b0070d",
    "vmm_guest_rom_boot_end:",
    ".popsection",
    rom = const ROM,
    data = const DATA,
    options(att_syntax)
);

/// A handler that accepts one PAGING exit for a write to `gpa` in a
/// read-only mapping, and resumes the guest at the address in R15.
fn rom_write_fault<'a>(
    t: &'a TestVm,
    gpa: u64,
    seen: &'a mut u32,
) -> impl FnMut(&Exit, &VmmExit) -> Result<Next, String> + 'a {
    move |_, e| {
        *seen += 1;
        ensure!(*seen == 1, "a second exit {}", describe(e));
        expect_paging(e, gpa, VMM_ACCESS_WRITE, VMM_PAGING_PROTECTION)?;
        let resume = s(t.vcpu.get_reg(reg::R15))?;
        s(t.vcpu.set_regs(&[(reg::RIP, resume)]))?;
        Ok(Next::Enter(RUN))
    }
}

/// Allocates a ROM segment of [`ROM_LEN`], maps it read+exec at [`ROM`]
/// (a writable mapping is refused) and writes each `(offset, bytes)` of
/// `fill` into it.
fn add_rom(vm: &VmFd, fill: &[(u64, &[u8])]) -> Result<Segment, String> {
    let rom = s(vm.alloc_segment(SegKind::Rom, ROM_LEN))?;
    for prot in [Prot::READ | Prot::WRITE, Prot::all()] {
        expect_errno_of(
            vm.map(ROM, &rom, 0, ROM_LEN, prot),
            libc::EINVAL,
            &format!("ROM {prot:?}"),
        )?;
    }
    s(vm.map(ROM, &rom, 0, ROM_LEN, Prot::READ | Prot::EXEC))?;
    let m = s(vm.mmap_segment(&rom))?;
    for &(off, bytes) in fill {
        m.write(off as usize, bytes);
    }
    Ok(rom)
}

pub fn rom_is_read_and_exec_only() -> TestResult {
    let p = payload!(vmm_guest_rom_rw_start, vmm_guest_rom_rw_end);
    let f = payload!(vmm_guest_rom_fn_start, vmm_guest_rom_fn_end);
    let t = TestVm::new("rom", Mode::Long64, &p)?;
    let rom = add_rom(&t.vm, &[(0x800, &0xc0ff_ee11u32.to_le_bytes()), (0x1000, f.bytes)])?;
    let mut seen = 0;
    let r = t.run_until(RUN, rom_write_fault(&t, ROM + 0x804, &mut seen))?;
    ensure!(r.passed && seen == 1, "{seen} write faults, then {}", describe(&r.exit));
    ensure!(r.debug == [0xc0ff_ee11, 0x0dd0_c0de, 0], "debug {:#x?}", r.debug);
    let mut word = [0u8; 4];
    s(t.vm.mmap_segment(&rom))?.read(0x804, &mut word);
    ensure!(word == [0; 4], "the guest changed ROM: {word:x?}");
    Ok(Pass)
}

pub fn rom_can_hold_the_code() -> TestResult {
    let p = payload!(vmm_guest_rom_boot_start, vmm_guest_rom_boot_end);
    let t = TestVm::bare("rom-boot", CreateFlags::DESTROY_ON_CLOSE, RAM_LEN)?;
    add_rom(&t.vm, &[(0, p.bytes)])?;
    t.setup(Mode::Long64, ROM)?;
    let mut seen = 0;
    let data = p.addr(sym!(vmm_guest_rom_boot_data), ROM);
    let r = t.run_until(RUN, rom_write_fault(&t, data, &mut seen))?;
    ensure!(r.passed && seen == 1, "{seen} write faults, then {}", describe(&r.exit));
    ensure!(r.debug == [0x20b0_070d, 0x20b0_070e], "debug {:#x?}", r.debug);
    Ok(Pass)
}

// --- unbacked guest-physical addresses --------------------------------------

/// Guest-physical addresses the unmapped test touches, inside the identity
/// map but beyond RAM.
const LATE_READ: u64 = 0x4000_0123;
const LATE_WRITE: u64 = 0x4020_1008;
const LATE_CODE: u64 = 0x4040_0000;

/// What the test answers the MMIO reads with.
const ANSWER_QWORD: u64 = 0x1122_3344_5566_7788;
const ANSWER_AFTER_UNMAP: u64 = 0x0bad_cafe;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_unmapped_start, vmm_guest_unmapped_end",
    ".globl vmm_guest_unmapped_read, vmm_guest_unmapped_write, vmm_guest_unmapped_reread",
    "vmm_guest_unmapped_start:",
    ".code64",
    "movl ${read}, %ebx",
    "vmm_guest_unmapped_read:",
    "movl (%rbx), %eax",
    asm_debug!(),
    "movl ${write}, %ecx",
    "movl $7, (%rcx)",
    "vmm_guest_unmapped_write:",
    "movb $0x5a, 1(%rcx)",
    "movq (%rcx), %rax",
    asm_debug!(),
    "shrq $32, %rax",
    asm_debug!(),
    "movl ${code}, %eax",
    "call *%rax",
    "movl $0x77, %eax",
    asm_debug!(),
    "hlt",
    "vmm_guest_unmapped_reread:",
    "movl (%rbx), %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_unmapped_end:",
    ".popsection",
    read = const LATE_READ,
    write = const LATE_WRITE,
    code = const LATE_CODE,
    options(att_syntax)
);

/// A data access to guest-physical memory no mapping covers is an MMIO
/// exit with its address, size and direction (a read waits for its value,
/// a write comes with it after the instruction); an instruction fetch from
/// there is a PAGING exit. Mappings made and removed while the guest runs
/// take effect at once: a read abandoned after its page was mapped reads
/// RAM when the guest executes it again, and once the page is unmapped the
/// same read is MMIO again.
pub fn unbacked_access_is_mmio_fetch_is_paging() -> TestResult {
    let p = payload!(vmm_guest_unmapped_start, vmm_guest_unmapped_end);
    let t = TestVm::new("unmapped", Mode::Long64, &p)?;
    let read_at = p.addr(sym!(vmm_guest_unmapped_read), LOAD);
    let write_at = p.addr(sym!(vmm_guest_unmapped_write), LOAD);
    let reread_at = p.addr(sym!(vmm_guest_unmapped_reread), LOAD);
    // Pages mapped as the guest needs them: the read's, and the code's.
    // The write's page (the middle one) is never mapped.
    let late = s(t.vm.alloc_segment(SegKind::SysMem, 3 * PAGE))?;
    let lm = s(t.vm.mmap_segment(&late))?;
    lm.write(0x123, &0xfeed_0123u32.to_le_bytes());
    lm.write(2 * PAGE as usize, &[0xc3]); // ret
    let rw = Prot::READ | Prot::WRITE;
    let mut step = 0;
    let r = t.run_until(RUN, |x, e| {
        step += 1;
        let rip = |want: u64| {
            ensure!(e.rip == want, "step {step}: exit at rip {:#x}, want {want:#x}", e.rip);
            Ok(())
        };
        Ok(Next::Enter(match step {
            1 => {
                // A read waits at the instruction; mapping the page and
                // abandoning the read makes the guest read RAM.
                expect_mmio(e, LATE_READ, 4, false, 0)?;
                rip(read_at)?;
                s(t.vm.map(LATE_READ & !0xfff, &late, 0, PAGE, rw))?;
                RUN
            }
            2 => {
                // A write comes after its instruction.
                expect_mmio(e, LATE_WRITE, 4, true, 7)?;
                rip(write_at)?;
                RUN
            }
            3 => {
                expect_mmio(e, LATE_WRITE + 1, 1, true, 0x5a)?;
                RUN
            }
            4 => {
                expect_mmio(e, LATE_WRITE, 8, false, 0)?;
                complete(ANSWER_QWORD)
            }
            5 => {
                expect_paging(e, LATE_CODE, VMM_ACCESS_EXEC, VMM_PAGING_UNMAPPED)?;
                s(t.vm.map(LATE_CODE, &late, 2 * PAGE, PAGE, Prot::READ | Prot::EXEC))?;
                RUN
            }
            6 => {
                ensure!(matches!(x, Exit::Hlt), "expected HLT, got {}", describe(e));
                s(t.vm.unmap(LATE_READ & !0xfff, PAGE))?;
                RUN
            }
            7 => {
                // The unmap took effect for a page the guest had used.
                expect_mmio(e, LATE_READ, 4, false, 0)?;
                rip(reread_at)?;
                complete(ANSWER_AFTER_UNMAP)
            }
            _ => return Err(format!("unexpected {}", describe(e))),
        }))
    })?;
    ensure!(r.passed && step == 7, "after {step} exits: {}", describe(&r.exit));
    let want = [0xfeed_0123, ANSWER_QWORD as u32, (ANSWER_QWORD >> 32) as u32, 0x77, 0x0bad_cafe];
    ensure!(r.debug == want, "debug {:#x?}, want {want:#x?}", r.debug);
    let mut page = vec![0u8; PAGE as usize];
    lm.read(PAGE as usize, &mut page);
    ensure!(page.iter().all(|&b| b == 0), "an MMIO write reached the unmapped page's segment");
    Ok(Pass)
}

// --- the top of guest-physical space ----------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_high_start, vmm_guest_high_end",
    "vmm_guest_high_start:",
    ".code64",
    "movabsq $0x100000000, %rbx",
    "movl 0x1ff000(%rbx), %eax",
    asm_debug!(),
    "movl $0x70b0070b, 0x123(%rbx)",
    "movl 0x123(%rbx), %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_high_end:",
    ".popsection",
    options(att_syntax)
);

pub fn top_of_guest_physical_space() -> TestResult {
    let p = payload!(vmm_guest_high_start, vmm_guest_high_end);
    let t = TestVm::new("high-gpa", Mode::Long64, &p)?;
    let bits = s(t.vm.info())?.guest_phys_bits;
    ensure!((36..=52).contains(&bits), "guest_phys_bits {bits}");
    let top = 1u64 << bits;
    let high = s(t.vm.alloc_segment(SegKind::SysMem, MIB2))?;
    for (gpa, len) in [(top, PAGE), (top - PAGE, 2 * PAGE), (top + MIB2, PAGE)] {
        expect_errno_of(
            t.vm.map(gpa, &high, 0, len, Prot::all()),
            libc::EINVAL,
            &format!("map {gpa:#x}+{len:#x} with {bits} bits"),
        )?;
    }
    let gpa = top - MIB2;
    s(t.vm.map(gpa, &high, 0, MIB2, Prot::all()))?;
    let hm = s(t.vm.mmap_segment(&high))?;
    hm.write(0x1f_f000, &0x4849_4748u32.to_le_bytes());
    // Virtual 4 GiB (PDPT entry 4) -> a new PD at FREE -> a 2 MiB page at
    // `gpa`: the setup identity map stops at 4 GiB.
    let pdpt = t.read_u64(SCRATCH + PML4_OFFSET)? & 0x000f_ffff_ffff_f000;
    t.write_u64(pdpt + 4 * 8, FREE | 0x3)?;
    t.write_u64(FREE, gpa | 0x83)?;
    let debug = t.run_to_pass()?;
    ensure!(debug == [0x4849_4748, 0x70b0_070b], "debug {debug:#x?} at gpa {gpa:#x}");
    let mut word = [0u8; 4];
    hm.read(0x123, &mut word);
    ensure!(word == 0x70b0_070bu32.to_le_bytes(), "guest write not in the segment: {word:x?}");
    Ok(Pass)
}

// --- bad input ---------------------------------------------------------------

fn test_vm(name: &str) -> Result<VmFd, String> {
    s(vmm()?.create_vm(name, CreateFlags::DESTROY_ON_CLOSE))
}

fn alloc_raw(vm: &VmFd, mut a: VmmSegment) -> std::io::Result<i32> {
    ioctl_ptr(vm.as_fd(), VMM_VM_ALLOC_SEG, &mut a)
}

fn map_raw(vm: &VmFd, cmd: u32, mut m: VmmMap) -> std::io::Result<i32> {
    ioctl_ptr(vm.as_fd(), cmd, &mut m)
}

pub fn alloc_seg_bad_input() -> TestResult {
    let vm = test_vm("seg-bad")?;
    let ok = VmmSegment { kind: SegKind::SysMem as u32, len: PAGE, ..VmmSegment::ZERO };
    let cases = [
        ("kind 0", VmmSegment { kind: 0, ..ok }),
        ("kind 3", VmmSegment { kind: 3, ..ok }),
        ("len 0", VmmSegment { len: 0, ..ok }),
        ("len 100", VmmSegment { len: 100, ..ok }),
        ("len 1.5 pages", VmmSegment { len: 0x1800, ..ok }),
        ("len past the VM limit", VmmSegment { len: VMM_MAX_VM_MEMORY + PAGE, ..ok }),
        ("len 2^64 - 4096", VmmSegment { len: !0xfff, ..ok }),
        ("id on input", VmmSegment { id: 1, ..ok }),
        ("flags", VmmSegment { flags: 1, ..ok }),
        ("reserved", VmmSegment { reserved: 1, ..ok }),
        ("reserved2", VmmSegment { reserved2: [0, 1], ..ok }),
    ];
    for (what, a) in cases {
        expect_errno_of(alloc_raw(&vm, a), libc::EINVAL, what)?;
    }
    expect_efault(vm.as_fd(), VMM_VM_ALLOC_SEG, "ALLOC_SEG")?;
    ensure!(s(vm.info())?.nr_segments == 0, "a refused request made a segment");
    // The segment count limit, with small segments.
    let mut ids = Vec::new();
    for _ in 0..VMM_MAX_SEGMENTS {
        let seg = s(vm.alloc_segment(SegKind::SysMem, PAGE))?;
        ensure!(seg.mmap_offset == u64::from(seg.id) << VMM_SEG_MMAP_SHIFT, "segment {seg:?}");
        ensure!(!ids.contains(&seg.id), "id {} twice", seg.id);
        ids.push(seg.id);
    }
    expect_errno!(vm.alloc_segment(SegKind::Rom, PAGE), libc::ENOSPC);
    ensure!(s(vm.info())?.nr_segments == VMM_MAX_SEGMENTS, "segment count");
    // The memory limit is checked before anything is allocated.
    let vm = test_vm("seg-total")?;
    s(vm.alloc_segment(SegKind::SysMem, PAGE))?;
    expect_errno!(vm.alloc_segment(SegKind::SysMem, VMM_MAX_VM_MEMORY), libc::ENOSPC);
    ensure!(s(vm.info())?.nr_segments == 1, "the refused segment counts");
    Ok(Pass)
}

pub fn map_bad_input() -> TestResult {
    let vm = test_vm("map-bad")?;
    let seg = s(vm.alloc_segment(SegKind::SysMem, 0x1_0000))?;
    let bits = s(vm.info())?.guest_phys_bits;
    let top = 1u64 << bits;
    let rw = (Prot::READ | Prot::WRITE).bits();
    let ok = VmmMap {
        gpa: 0x10_0000,
        len: 0x4000,
        seg_offset: 0,
        seg_id: seg.id,
        prot: rw,
        ..VmmMap::ZERO
    };
    let einval = [
        ("unaligned gpa", VmmMap { gpa: 0x10_0800, ..ok }),
        ("unaligned len", VmmMap { len: 0x1800, ..ok }),
        ("unaligned offset", VmmMap { seg_offset: 0x800, ..ok }),
        ("len 0", VmmMap { len: 0, ..ok }),
        ("past the segment end", VmmMap { seg_offset: 0xe000, ..ok }),
        ("offset at the end", VmmMap { seg_offset: 0x1_0000, len: PAGE, ..ok }),
        ("offset + len wraps", VmmMap { seg_offset: !0xfff, len: 0x2000, ..ok }),
        ("gpa + len wraps", VmmMap { gpa: !0xfff, len: 0x2000, ..ok }),
        ("gpa at 2^bits", VmmMap { gpa: top, len: PAGE, ..ok }),
        ("range across 2^bits", VmmMap { gpa: top - PAGE, len: 0x2000, ..ok }),
        ("prot 0", VmmMap { prot: 0, ..ok }),
        ("unknown prot bit", VmmMap { prot: rw | 8, ..ok }),
        ("write without read", VmmMap { prot: Prot::WRITE.bits(), ..ok }),
        ("exec without read", VmmMap { prot: Prot::EXEC.bits(), ..ok }),
        ("write+exec without read", VmmMap { prot: (Prot::WRITE | Prot::EXEC).bits(), ..ok }),
        ("flags", VmmMap { flags: 1, ..ok }),
        ("reserved", VmmMap { reserved: 1, ..ok }),
    ];
    for (what, m) in einval {
        expect_errno_of(map_raw(&vm, VMM_VM_MAP, m), libc::EINVAL, what)?;
    }
    expect_errno_of(
        map_raw(&vm, VMM_VM_MAP, VmmMap { seg_id: seg.id + 7, ..ok }),
        libc::ENOENT,
        "unknown segment",
    )?;
    expect_efault(vm.as_fd(), VMM_VM_MAP, "MAP")?;
    ensure!(s(vm.info())?.nr_mappings == 0, "a refused request made a mapping");
    // Overlaps: [1 MiB, +16 KiB) is mapped.
    s(map_raw(&vm, VMM_VM_MAP, ok))?;
    for (what, gpa, len) in [
        ("the same range", 0x10_0000, 0x4000),
        ("the tail", 0x10_2000, 0x4000),
        ("the head", 0xf_f000, 0x2000),
        ("inside", 0x10_1000, PAGE),
        ("around", 0xf_e000, 0x8000),
    ] {
        expect_errno_of(map_raw(&vm, VMM_VM_MAP, VmmMap { gpa, len, ..ok }), libc::EEXIST, what)?;
    }
    // Right next to it is fine, from the same segment too.
    s(map_raw(&vm, VMM_VM_MAP, VmmMap { gpa: 0x10_4000, ..ok }))?;
    s(map_raw(&vm, VMM_VM_MAP, VmmMap { gpa: 0xf_c000, ..ok }))?;
    ensure!(s(vm.info())?.nr_mappings == 3, "mapping count");
    Ok(Pass)
}

pub fn mapping_limit_is_enospc() -> TestResult {
    let vm = test_vm("map-limit")?;
    let seg = s(vm.alloc_segment(SegKind::SysMem, PAGE))?;
    let gpa = |i: u32| 0x100_0000 + u64::from(i) * 0x2000;
    for i in 0..VMM_MAX_MAPPINGS {
        s(vm.map(gpa(i), &seg, 0, PAGE, Prot::READ))?;
    }
    expect_errno!(vm.map(gpa(VMM_MAX_MAPPINGS), &seg, 0, PAGE, Prot::READ), libc::ENOSPC);
    ensure!(s(vm.info())?.nr_mappings == VMM_MAX_MAPPINGS, "mapping count");
    s(vm.unmap(gpa(3), PAGE))?;
    s(vm.map(gpa(VMM_MAX_MAPPINGS), &seg, 0, PAGE, Prot::READ))?;
    Ok(Pass)
}

pub fn unmap_bad_input() -> TestResult {
    let vm = test_vm("unmap-bad")?;
    let seg = s(vm.alloc_segment(SegKind::SysMem, 0x4000))?;
    s(vm.map(0x10_0000, &seg, 0, 0x4000, Prot::all()))?;
    for (what, gpa, len) in [
        ("the first page", 0x10_0000, PAGE),
        ("the tail", 0x10_1000, 0x3000),
        ("more than the mapping", 0x10_0000, 0x8000),
        ("nothing mapped", 0x20_0000, PAGE),
    ] {
        expect_errno_of(vm.unmap(gpa, len), libc::ENOENT, what)?;
    }
    let exact = VmmMap { gpa: 0x10_0000, len: 0x4000, ..VmmMap::ZERO };
    for (what, m) in [
        ("seg_offset", VmmMap { seg_offset: PAGE, ..exact }),
        ("seg_id", VmmMap { seg_id: seg.id + 1, ..exact }),
        ("prot", VmmMap { prot: 1, ..exact }),
        ("flags", VmmMap { flags: 1, ..exact }),
        ("reserved", VmmMap { reserved: 1, ..exact }),
    ] {
        expect_errno_of(map_raw(&vm, VMM_VM_UNMAP, m), libc::EINVAL, what)?;
    }
    expect_efault(vm.as_fd(), VMM_VM_UNMAP, "UNMAP")?;
    ensure!(s(vm.info())?.nr_mappings == 1, "a refused unmap removed the mapping");
    s(vm.unmap(0x10_0000, 0x4000))?;
    expect_errno!(vm.unmap(0x10_0000, 0x4000), libc::ENOENT);
    ensure!(s(vm.info())?.nr_mappings == 0, "mapping count after unmap");
    s(vm.map(0x10_0000, &seg, 0, 0x4000, Prot::all()))?;
    Ok(Pass)
}

pub fn mmap_bad_input() -> TestResult {
    let vm = test_vm("mmap-bad")?;
    let seg = s(vm.alloc_segment(SegKind::SysMem, 0x4000))?;
    let len = seg.len as usize;
    let shared = libc::MAP_SHARED;
    let fd = vm.as_fd();
    s(try_mmap(fd, seg.mmap_offset, len, shared))?;
    let unused = u64::from(seg.id + 5) << VMM_SEG_MMAP_SHIFT;
    for (what, off, len, flags) in [
        ("a segment that does not exist", unused, PAGE as usize, shared),
        ("past the segment's end", seg.mmap_offset + seg.len, PAGE as usize, shared),
        ("longer than the segment", seg.mmap_offset, len + PAGE as usize, shared),
        ("MAP_PRIVATE", seg.mmap_offset, len, libc::MAP_PRIVATE),
    ] {
        expect_errno_of(try_mmap(fd, off, len, flags), libc::EINVAL, what)?;
    }
    Ok(Pass)
}

/// A sequencer's mmap keeps its pages after the VM is destroyed: the VM
/// gives its segment memory back at destroy (the stats return), the mapping
/// still reads what was written and still takes writes, and the VM object,
/// which the mapping's file reference holds, goes at munmap.
pub fn mmap_outlives_the_vm() -> TestResult {
    let v = vmm()?;
    let before = s(v.stats())?;
    let vm = s(v.create_vm("mmap-outlives", CreateFlags::empty()))?;
    let (_seg, ram) = s(vm.add_ram(0, 2 * PAGE))?;
    let during = s(v.stats())?;
    ensure!(during.seg_pages >= before.seg_pages + 2, "segment pages not counted: {during:?}");
    let pattern: Vec<u8> = (0..2 * PAGE as usize).map(|i| (i * 7) as u8).collect();
    ram.write(0, &pattern);
    s(v.destroy_vm("mmap-outlives"))?;
    drop(vm);
    let after = s(v.stats())?;
    ensure!(
        after.seg_pages == before.seg_pages,
        "memory kept after destroy: {after:?} vs {before:?}"
    );
    ensure!(after.nr_vms == before.nr_vms, "still named: {after:?}");
    let mut back = vec![0u8; pattern.len()];
    ram.read(0, &mut back);
    ensure!(back == pattern, "the mapping lost its contents after the VM went");
    ram.write(PAGE as usize, &[0x5a; 16]);
    let mut one = [0u8; 16];
    ram.read(PAGE as usize, &mut one);
    ensure!(one == [0x5a; 16], "the mapping no longer takes writes");
    drop(ram);
    let last = s(v.stats())?;
    ensure!(last.nr_vm_objects == before.nr_vm_objects, "VM object kept after munmap: {last:?}");
    Ok(Pass)
}
