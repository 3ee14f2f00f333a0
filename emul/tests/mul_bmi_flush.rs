// SPDX-License-Identifier: GPL-2.0
//! The operations illumos bhyve also emulates: `imul r, r/m` (0F AF) and
//! `imul r, r/m, imm` (69, 6B) with their CF/OF edges, BMI1 `bextr`
//! (VEX.0F38 F7) with start and length on and past the operand's width,
//! and the cache-line write-backs `clflush`/`clflushopt`/`clwb` (0F AE /7,
//! 66 0F AE /7, 66 0F AE /6): checked like a one-byte read (segment limits,
//! canonical addresses, #PF through [`Paged`]), and nothing else.

pub mod common;
pub mod harness;

use common::TestCpu;
use harness::*;
use vmm_emul::{
    emulate, Bus, Config, CpuMode, DecodeErrorKind, Error, Exception, Paged, Seg, Step,
};
use vmm_x86::paging::{GuestPhys, PF_P, PF_U, PF_W, PTE_P, PTE_RW, PTE_US};

/// Flags in: the complement of the status flags `want`, so that every
/// status flag must be written.
fn flags_against(want: u64) -> u64 {
    STATUS & !want
}

// ----- imul -------------------------------------------------------------------

#[test]
fn imul_two_operand_registers() {
    // (bytes, rax before, rbx, rax after, flags after). SF and PF follow
    // the truncated result, ZF and AF are cleared (the emulator's choice
    // for the undefined flags, the host CPU's).
    let cases: &[(&[u8], u64, u64, u64, u64)] = &[
        // imul eax, ebx (7 * 6; the 32-bit write zero-extends)
        (&[0x0f, 0xaf, 0xc3], 0xffff_ffff_0000_0007, 6, 0x2a, 0),
        // imul eax, ebx (2^16 * 2^16 = 2^32: truncated to 0, and ZF stays clear)
        (&[0x0f, 0xaf, 0xc3], 0x1_0000, 0x1_0000, 0, CF | OF | PF),
        // imul eax, ebx (-1 * -2^31 = 2^31 does not fit)
        (&[0x0f, 0xaf, 0xc3], 0xffff_ffff, 0x8000_0000, 0x8000_0000, CF | OF | SF | PF),
        // imul eax, ebx (-2 * 3 = -6)
        (&[0x0f, 0xaf, 0xc3], 0xffff_fffe, 3, 0xffff_fffa, SF | PF),
        // imul eax, ebx (bits 63:32 of the sources do not count)
        (&[0x0f, 0xaf, 0xc3], 0x5555_5555_0000_0003, 0xaaaa_aaaa_0000_0005, 0xf, PF),
        // imul ax, bx (181 * 181 = 32761 fits; bits 63:16 of rax are kept)
        (&[0x66, 0x0f, 0xaf, 0xc3], 0x1234_5678_9abc_00b5, 0xb5, 0x1234_5678_9abc_7ff9, PF),
        // imul ax, bx (182 * 182 = 33124 does not)
        (&[0x66, 0x0f, 0xaf, 0xc3], 0xb6, 0xb6, 0x8164, CF | OF | SF),
        // imul ax, bx (-181 * 181 = -32761 fits)
        (&[0x66, 0x0f, 0xaf, 0xc3], 0xff4b, 0xb5, 0x8007, SF),
        // imul ax, bx (-182 * 182 = -33124 does not: the truncation is positive)
        (&[0x66, 0x0f, 0xaf, 0xc3], 0xff4a, 0xb6, 0x7e9c, CF | OF | PF),
        // imul rax, rbx (3037000499^2 is just below 2^63)
        (&[0x48, 0x0f, 0xaf, 0xc3], 3_037_000_499, 3_037_000_499, 0x7fff_fffe_9ea1_dc29, 0),
        // imul rax, rbx (3037000500^2 is just above)
        (
            &[0x48, 0x0f, 0xaf, 0xc3],
            3_037_000_500,
            3_037_000_500,
            0x8000_0000_08ab_c290,
            CF | OF | SF | PF,
        ),
        // imul rax, rbx (-2^63 * -1)
        (
            &[0x48, 0x0f, 0xaf, 0xc3],
            0x8000_0000_0000_0000,
            u64::MAX,
            0x8000_0000_0000_0000,
            CF | OF | SF | PF,
        ),
        // imul rax, rbx (2^62 * -2 = -2^63 fits exactly)
        (
            &[0x48, 0x0f, 0xaf, 0xc3],
            0x4000_0000_0000_0000,
            (-2i64) as u64,
            0x8000_0000_0000_0000,
            SF | PF,
        ),
        // imul rax, rbx (-3037000499 * 3037000500 fits)
        (
            &[0x48, 0x0f, 0xaf, 0xc3],
            (-3_037_000_499i64) as u64,
            3_037_000_500,
            0x8000_0000_ac59_30a4,
            SF,
        ),
        // imul eax, ebx (F3 is ignored)
        (&[0xf3, 0x0f, 0xaf, 0xc3], 7, 6, 0x2a, 0),
        // imul eax, ebx (F2 is ignored)
        (&[0xf2, 0x0f, 0xaf, 0xc3], 7, 6, 0x2a, 0),
    ];
    for (bytes, a, b, r, f) in cases {
        let t = T::long().reg(RAX, *a).reg(RBX, *b).flags(flags_against(*f)).done(bytes);
        t.regs(&[(RAX, *r)]).rflags(*f);
        assert!(t.accesses().is_empty(), "{bytes:02x?}");
    }
    // imul r9, r10 (-5 * 7)
    let t = T::long()
        .reg(R9, (-5i64) as u64)
        .reg(R10, 7)
        .flags(flags_against(SF | PF))
        .done(&[0x4d, 0x0f, 0xaf, 0xca]);
    t.regs(&[(R9, (-35i64) as u64)]).rflags(SF | PF);
    // imul ebx, ebx (a square)
    let t = T::long().reg(RBX, 0x1_0000_0009).flags(0).done(&[0x0f, 0xaf, 0xdb]);
    t.regs(&[(RBX, 81)]).rflags(0);
}

#[test]
fn imul_two_operand_memory() {
    // imul eax, dword ptr [rbx] (16 * 0x10000001 overflows to 0x10)
    let t = T::long()
        .reg(RAX, 16)
        .reg(RBX, 0x2000)
        .mem(0x2000, 0x1000_0001, 4)
        .flags(0)
        .done(&[0x0f, 0xaf, 0x03]);
    t.regs(&[(RAX, 0x10)]).rflags(CF | OF);
    assert_eq!(t.read_las(), vec![0x2000]);
    assert!(t.writes().is_empty());
    // imul cx, word ptr [rbx+2] (256 * -16 = -4096)
    let t = T::long()
        .reg(RCX, 0xaaaa_0100)
        .reg(RBX, 0x2000)
        .mem(0x2002, 0xfff0, 2)
        .flags(STATUS)
        .done(&[0x66, 0x0f, 0xaf, 0x4b, 0x02]);
    t.regs(&[(RCX, 0xaaaa_f000)]).rflags(SF | PF);
    assert_eq!(t.read_las(), vec![0x2002]);
    // imul rdx, qword ptr [rbx]
    let t = T::long()
        .reg(RDX, 0x1_2345_6789)
        .reg(RBX, 0x2000)
        .mem(0x2000, 0x10, 8)
        .flags(STATUS)
        .done(&[0x48, 0x0f, 0xaf, 0x13]);
    t.regs(&[(RDX, 0x12_3456_7890)]).rflags(PF);
    assert_eq!(t.read_las(), vec![0x2000]);
}

/// Runs the three-operand `cases` (bytes, rbx, rax after, flags after):
/// rax is only the destination and starts as 0xdead_beef_dead_beef.
fn three_operand(cases: &[(&[u8], u64, u64, u64)]) {
    for (bytes, b, r, f) in cases {
        let t = T::long()
            .reg(RAX, 0xdead_beef_dead_beef)
            .reg(RBX, *b)
            .flags(flags_against(*f))
            .done(bytes);
        t.regs(&[(RAX, *r)]).rflags(*f);
        assert!(t.accesses().is_empty(), "{bytes:02x?}");
    }
}

#[test]
fn imul_69_imm16_imm32() {
    three_operand(&[
        // imul eax, ebx, 0x12345678 (0x10 * 0x12345678 = 0x123456780)
        (&[0x69, 0xc3, 0x78, 0x56, 0x34, 0x12], 0x10, 0x2345_6780, CF | OF),
        // imul ax, bx, 0x7fff (2 * 32767 does not fit; bits 63:16 are kept)
        (&[0x66, 0x69, 0xc3, 0xff, 0x7f], 2, 0xdead_beef_dead_fffe, CF | OF | SF),
        // imul rax, rbx, 0xffffffff80000000 (2^32 * -2^31 = -2^63)
        (
            &[0x48, 0x69, 0xc3, 0x00, 0x00, 0x00, 0x80],
            0x1_0000_0000,
            0x8000_0000_0000_0000,
            SF | PF,
        ),
        // imul rax, rbx, 0xffffffff80000000 (2^33 * -2^31 does not fit)
        (&[0x48, 0x69, 0xc3, 0x00, 0x00, 0x00, 0x80], 0x2_0000_0000, 0, CF | OF | PF),
    ]);
    // imul r8w, word ptr [rbx], 0x100 (0x80 * 0x100 = 32768 does not fit)
    let t = T::long()
        .reg(R8, 0x7777_0000)
        .reg(RBX, 0x2000)
        .mem(0x2000, 0x80, 2)
        .flags(0)
        .done(&[0x66, 0x44, 0x69, 0x03, 0x00, 0x01]);
    t.regs(&[(R8, 0x7777_8000)]).rflags(CF | OF | SF | PF);
    assert_eq!(t.read_las(), vec![0x2000]);
    assert!(t.writes().is_empty());
}

#[test]
fn imul_6b_imm8() {
    three_operand(&[
        // imul rax, rbx, 0xfffffffffffffffe (2^62 * -2 = -2^63)
        (&[0x48, 0x6b, 0xc3, 0xfe], 0x4000_0000_0000_0000, 0x8000_0000_0000_0000, SF | PF),
        // imul eax, ebx, 0xffffff80 (2^24 * -128 = -2^31)
        (&[0x6b, 0xc3, 0x80], 0x0100_0000, 0x8000_0000, SF | PF),
        // imul eax, ebx, 0xffffff80 (-2^24 * -128 = 2^31 does not fit)
        (&[0x6b, 0xc3, 0x80], 0xff00_0000, 0x8000_0000, CF | OF | SF | PF),
        // imul eax, ebx, 0x7f (bits 63:32 of rbx do not count)
        (&[0x6b, 0xc3, 0x7f], 0xffff_ffff_0000_0002, 0xfe, 0),
        // imul eax, ebx, 0 (a zero result: ZF stays clear)
        (&[0x6b, 0xc3, 0x00], 0xffff_ffff, 0, PF),
        // imul ax, bx, 0xffff (-32768 * -1 does not fit)
        (&[0x66, 0x6b, 0xc3, 0xff], 0x8000, 0xdead_beef_dead_8000, CF | OF | SF | PF),
    ]);
    // imul eax, dword ptr [rbx+4], 3 (3 * 0x55555556 = 0x100000002)
    let t = T::long()
        .reg(RBX, 0x2000)
        .mem(0x2004, 0x5555_5556, 4)
        .flags(0)
        .done(&[0x6b, 0x43, 0x04, 0x03]);
    t.regs(&[(RAX, 2)]).rflags(CF | OF);
    assert_eq!(t.read_las(), vec![0x2004]);
    assert!(t.writes().is_empty());
}

#[test]
fn imul_16_and_32bit_modes() {
    // imul ax, word ptr [bx] (-1 * 3)
    let t = T::real()
        .reg(RAX, 0xffff)
        .reg(RBX, 0x2000)
        .mem(0x2000, 3, 2)
        .flags(STATUS)
        .done(&[0x0f, 0xaf, 0x07]);
    t.regs(&[(RAX, 0xfffd)]).rflags(SF);
    assert_eq!(t.read_las(), vec![0x2000]);
    // imul eax, ecx, 5 (5 * 0x33333334 = 0x100000004)
    let t = T::prot32().reg(RCX, 0x3333_3334).flags(0).done(&[0x6b, 0xc1, 0x05]);
    t.regs(&[(RAX, 4)]).rflags(CF | OF);
    // imul eax, ebx (66 in 16-bit code: 32 bits)
    let t = T::prot16()
        .reg(RAX, 0x1_2345)
        .reg(RBX, 0x1000)
        .flags(STATUS)
        .done(&[0x66, 0x0f, 0xaf, 0xc3]);
    t.regs(&[(RAX, 0x1234_5000)]).rflags(PF);
}

#[test]
fn imul_decode_errors() {
    // lock imul eax, dword ptr [rbx]
    assert_eq!(dec_err(&[0xf0, 0x0f, 0xaf, 0x03], CpuMode::Long64), DecodeErrorKind::Invalid);
    // lock imul eax, dword ptr [rbx], 5
    assert_eq!(dec_err(&[0xf0, 0x6b, 0x03, 0x05], CpuMode::Long64), DecodeErrorKind::Invalid);
    // imul dword ptr [rbx] (F7 /5, the widening form: not emulated)
    assert_eq!(dec_err(&[0xf7, 0x2b], CpuMode::Long64), DecodeErrorKind::Unsupported);
}

// ----- bextr ------------------------------------------------------------------

#[test]
fn bextr_32() {
    // (rbx, rcx = the control: start in bits 7:0, length in 15:8, rax
    // after, ZF); rax starts with bits 63:32 set, which the 32-bit write
    // clears.
    let cases: &[(u64, u64, u64, bool)] = &[
        // start 4, length 8
        (0x1234_5678, 0x0804, 0x67, false),
        // start 0, length 32: all of it
        (0x1234_5678, 0x2000, 0x1234_5678, false),
        // start 28, length 8: only four bits are left
        (0x1234_5678, 0x081c, 0x1, false),
        // start 32 (the width): nothing
        (0x1234_5678, 0x0820, 0, true),
        // start 255, length 255
        (0x1234_5678, 0xffff, 0, true),
        // length 0
        (0x1234_5678, 0x0000, 0, true),
        // start 16, length 255 (more than the width)
        (0x1234_5678, 0xff10, 0x1234, false),
        // bits 63:16 of the control do not count
        (0x1234_5678, 0xffff_ffff_ffff_0804, 0x67, false),
        // start 0, length 64: bits 63:32 of rbx are not part of ebx
        (0xffff_ffff_0000_0000, 0x4000, 0, true),
    ];
    for (b, c, r, zf) in cases {
        let f = if *zf { ZF } else { 0 };
        // bextr eax, ebx, ecx
        let bytes = [0xc4, 0xe2, 0x70, 0xf7, 0xc3];
        let t = T::long()
            .reg(RAX, 0xffff_ffff_0000_0000)
            .reg(RBX, *b)
            .reg(RCX, *c)
            .flags(flags_against(f))
            .done(&bytes);
        t.regs(&[(RAX, *r)]).rflags(f);
    }
}

#[test]
fn bextr_64() {
    // (rcx = the control, rax after, ZF); rbx = 0xfedcba9876543210
    let cases: &[(u64, u64, bool)] = &[
        // start 60, length 8
        (0x083c, 0xf, false),
        // start 32, length 32
        (0x2020, 0xfedc_ba98, false),
        // start 4, length 32
        (0x2004, 0x8765_4321, false),
        // start 63, length 1
        (0x013f, 1, false),
        // start 64 (the width), length 1
        (0x0140, 0, true),
        // start 0, length 64
        (0x4000, 0xfedc_ba98_7654_3210, false),
        // start 0, length 65
        (0x4100, 0xfedc_ba98_7654_3210, false),
        // start 8, length 255
        (0xff08, 0x00fe_dcba_9876_5432, false),
        // start 16, length 0
        (0x0010, 0, true),
    ];
    for (c, r, zf) in cases {
        let f = if *zf { ZF } else { 0 };
        // bextr rax, rbx, rcx
        let bytes = [0xc4, 0xe2, 0xf0, 0xf7, 0xc3];
        let t = T::long()
            .reg(RAX, 0x5a5a)
            .reg(RBX, 0xfedc_ba98_7654_3210)
            .reg(RCX, *c)
            .flags(flags_against(f))
            .done(&bytes);
        t.regs(&[(RAX, *r)]).rflags(f);
    }
    // bextr r8, r9, r10
    let t = T::long()
        .reg(R9, 0xff00)
        .reg(R10, 0x0408)
        .flags(STATUS)
        .done(&[0xc4, 0x42, 0xa8, 0xf7, 0xc1]);
    t.regs(&[(R8, 0xf)]).rflags(0);
}

#[test]
fn bextr_memory() {
    // bextr eax, dword ptr [rbx], ecx (start 31, length 1)
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(RCX, 0x011f)
        .mem(0x2000, 0x8000_0000, 4)
        .flags(STATUS)
        .done(&[0xc4, 0xe2, 0x70, 0xf7, 0x03]);
    t.regs(&[(RAX, 1)]).rflags(0);
    assert_eq!(t.read_las(), vec![0x2000]);
    assert!(t.writes().is_empty());
    // bextr rax, qword ptr [rbx+8], rcx (start 8, length 16)
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(RCX, 0x1008)
        .mem(0x2008, 0x0123_4567_89ab_cdef, 8)
        .flags(0)
        .done(&[0xc4, 0xe2, 0xf0, 0xf7, 0x43, 0x08]);
    t.regs(&[(RAX, 0xabcd)]).rflags(0);
    assert_eq!(t.read_las(), vec![0x2008]);
}

#[test]
fn bextr_outside_64bit_mode() {
    // bextr eax, ebx, ecx (VEX.W1 is ignored outside 64-bit mode)
    let t = T::prot32()
        .reg(RBX, 0x1234_5678)
        .reg(RCX, 0x0804)
        .flags(0)
        .done(&[0xc4, 0xe2, 0xf0, 0xf7, 0xc3]);
    t.regs(&[(RAX, 0x67)]).rflags(0);
    // bextr eax, ebx, ecx (vvvv = 1001b: bit 3 does not count outside 64-bit mode)
    let t = T::prot32()
        .reg(RBX, 0x1234_5678)
        .reg(RCX, 0x0820)
        .flags(0)
        .done(&[0xc4, 0xe2, 0x30, 0xf7, 0xc3]);
    t.regs(&[(RAX, 0)]).rflags(ZF);
    // bextr eax, ebx, r9d: the same bytes in 64-bit mode name r9
    let t = T::long()
        .reg(RBX, 0x1234_5678)
        .reg(R9, 0x0804)
        .reg(RCX, 0x0820)
        .flags(0)
        .done(&[0xc4, 0xe2, 0x30, 0xf7, 0xc3]);
    t.regs(&[(RAX, 0x67)]).rflags(0);
}

#[test]
fn bextr_decode_errors() {
    for mode in [CpuMode::Long64, CpuMode::Protected32] {
        // bextr eax, ebx, ecx with VEX.L = 1
        assert_eq!(dec_err(&[0xc4, 0xe2, 0x74, 0xf7, 0xc3], mode), DecodeErrorKind::Invalid);
        // shlx eax, ebx, ecx (66: not emulated)
        assert_eq!(dec_err(&[0xc4, 0xe2, 0x71, 0xf7, 0xc3], mode), DecodeErrorKind::Unsupported);
    }
}

// ----- clflush, clflushopt, clwb ----------------------------------------------

/// The three write-backs of byte ptr [rbx], and one with REX.W.
const FLUSHES: [&[u8]; 4] = [
    // clflush byte ptr [rbx]
    &[0x0f, 0xae, 0x3b],
    // clflushopt byte ptr [rbx]
    &[0x66, 0x0f, 0xae, 0x3b],
    // clwb byte ptr [rbx]
    &[0x66, 0x0f, 0xae, 0x33],
    // clflush byte ptr [rbx] (REX.W changes nothing)
    &[0x48, 0x0f, 0xae, 0x3b],
];

#[test]
fn flushes_change_nothing() {
    for bytes in FLUSHES {
        let t = T::long()
            .reg(RBX, 0x2000)
            .reg(RAX, 0x1234)
            .mem(0x2000, 0x5a, 1)
            .flags(STATUS | DF)
            .done(bytes);
        t.regs(&[]).rflags(STATUS | DF).at(0x2000, 1, 0x5a);
        assert!(t.accesses().is_empty(), "{bytes:02x?}: {:?}", t.accesses());
        // On MMIO: no read, so no stop.
        let mut t = T::long().reg(RBX, 0x2000);
        t.mem.mmio.push((0x2000, 0x3000));
        let t = t.done(bytes);
        t.regs(&[]);
        assert!(t.accesses().is_empty(), "{bytes:02x?}: {:?}", t.accesses());
    }
    // clflush byte ptr fs:[rax+rcx*8+0x10]
    let t = T::long()
        .reg(RAX, 0x100)
        .reg(RCX, 2)
        .seg_base(Seg::Fs, 0x7000)
        .done(&[0x64, 0x0f, 0xae, 0x7c, 0xc8, 0x10]);
    t.regs(&[]);
}

#[test]
fn flush_decode_errors() {
    // lock clflush byte ptr [rbx]
    assert_eq!(dec_err(&[0xf0, 0x0f, 0xae, 0x3b], CpuMode::Long64), DecodeErrorKind::Invalid);
    let unsupported: &[&[u8]] = &[
        // sfence
        &[0x0f, 0xae, 0xf8],
        // mfence
        &[0x0f, 0xae, 0xf0],
        // tpause eax (66 0F AE /6 with a register)
        &[0x66, 0x0f, 0xae, 0xf0],
        // xsaveopt [rbx] (0F AE /6 without 66)
        &[0x0f, 0xae, 0x33],
        // xrstor [rbx]
        &[0x0f, 0xae, 0x2b],
        // F3 0F AE /7 with memory (no instruction)
        &[0xf3, 0x0f, 0xae, 0x3b],
    ];
    for bytes in unsupported {
        assert_eq!(dec_err(bytes, CpuMode::Long64), DecodeErrorKind::Unsupported, "{bytes:02x?}");
    }
}

#[test]
fn flush_segment_checks() {
    // DS limited to 0xfff, read/write data.
    let ds = |ty: u32| {
        T::prot32().with(move |c| {
            let s = c.seg_mut(Seg::Ds);
            s.limit = 0xfff;
            s.attr = (s.attr & !0xf) | ty;
        })
    };
    // clflush byte ptr [ebx] (the last byte within the limit)
    ds(0x3).reg(RBX, 0xfff).done(&[0x0f, 0xae, 0x3b]).regs(&[]);
    // clflush byte ptr [ebx] (the first byte beyond it)
    ds(0x3).reg(RBX, 0x1000).fault(&[0x0f, 0xae, 0x3b], Exception::Gp(0));
    // clwb byte ptr [ebx]
    ds(0x3).reg(RBX, 0x1000).fault(&[0x66, 0x0f, 0xae, 0x33], Exception::Gp(0));
    // clflush byte ptr [ebx] (a read-only data segment: checked as a read)
    ds(0x1).reg(RBX, 0x10).done(&[0x0f, 0xae, 0x3b]).regs(&[]);
    // mov byte ptr [ebx], al (the same segment refuses a write)
    ds(0x1).reg(RBX, 0x10).fault(&[0x88, 0x03], Exception::Gp(0));
    // clflushopt byte ptr [ebp+0] (SS limited to 0xfff)
    let t = T::prot32().with(|c| c.seg_mut(Seg::Ss).limit = 0xfff).reg(RBP, 0x1000);
    t.fault(&[0x66, 0x0f, 0xae, 0x7d, 0x00], Exception::Ss(0));
    // clflush byte ptr es:[ebx] (ES unusable)
    let t = T::prot32()
        .with(|c| c.seg_mut(Seg::Es).attr |= vmm_emul::seg::ATTR_UNUSABLE)
        .reg(RBX, 0x10);
    t.fault(&[0x26, 0x0f, 0xae, 0x3b], Exception::Gp(0));
}

#[test]
fn flush_canonical_checks() {
    const NC: u64 = 0x0000_8000_0000_0000;
    // clflush byte ptr [rbx]
    T::long().reg(RBX, NC).fault(&[0x0f, 0xae, 0x3b], Exception::Gp(0));
    // clflushopt byte ptr [rbx]
    T::long().reg(RBX, 0xffff_7fff_ffff_ffff).fault(&[0x66, 0x0f, 0xae, 0x3b], Exception::Gp(0));
    // clwb byte ptr [rbp+0]
    T::long().reg(RBP, NC).fault(&[0x66, 0x0f, 0xae, 0x75, 0x00], Exception::Ss(0));
    // clflush byte ptr fs:[rbx] (the base carries it past the canonical range)
    let t = T::long().seg_base(Seg::Fs, 0x0000_7fff_ffff_f000).reg(RBX, 0x1000);
    t.fault(&[0x64, 0x0f, 0xae, 0x3b], Exception::Gp(0));
    // clflush byte ptr [rbx] (the last canonical byte: one byte is checked)
    T::long().reg(RBX, 0x0000_7fff_ffff_ffff).done(&[0x0f, 0xae, 0x3b]).regs(&[]);
}

// ----- clflush through Paged ---------------------------------------------------

/// Guest-physical RAM with 4-level page tables from 0x1000 up, that logs
/// the data accesses [`Paged`] hands it.
struct Ram {
    bytes: Vec<u8>,
    next_table: u64,
    /// (gpa, length, write) of each data access.
    log: Vec<(u64, usize, bool)>,
}

const RAM_SIZE: usize = 1 << 20;
const PRWU: u64 = PTE_P | PTE_RW | PTE_US;

impl Ram {
    fn new() -> Self {
        Self { bytes: vec![0; RAM_SIZE], next_table: 0x1000, log: Vec::new() }
    }

    fn get(&self, gpa: u64) -> u64 {
        let a = gpa as usize;
        u64::from_le_bytes(self.bytes[a..a + 8].try_into().unwrap())
    }

    fn put(&mut self, gpa: u64, v: u64) {
        let a = gpa as usize;
        self.bytes[a..a + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn alloc(&mut self) -> u64 {
        let t = self.next_table;
        self.next_table += 0x1000;
        t
    }

    /// Maps the 4 KiB page at `la` to `pa` with leaf `flags`.
    fn map(&mut self, cr3: u64, la: u64, pa: u64, flags: u64) {
        let mut table = cr3;
        for shift in [39, 30, 21] {
            let slot = table + ((la >> shift) & 0x1ff) * 8;
            let mut e = self.get(slot);
            if e & PTE_P == 0 {
                e = self.alloc() | PRWU;
                self.put(slot, e);
            }
            table = e & 0x000f_ffff_ffff_f000;
        }
        self.put(table + ((la >> 12) & 0x1ff) * 8, pa | flags);
    }

    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, u64> {
        let a = usize::try_from(gpa).map_err(|_| gpa)?;
        if a + len > RAM_SIZE {
            return Err(gpa);
        }
        Ok(a..a + len)
    }
}

impl GuestPhys for Ram {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        self.range(gpa, 8).ok().map(|_| self.get(gpa))
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        self.range(gpa, 4).ok().map(|_| self.get(gpa) as u32)
    }
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        self.range(gpa, 8).ok()?;
        let ok = self.get(gpa) == old;
        if ok {
            self.put(gpa, new);
        }
        Some(ok)
    }
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool> {
        self.range(gpa, 4).ok()?;
        let v = self.get(gpa);
        let ok = v as u32 == old;
        if ok {
            self.put(gpa, (v & !0xffff_ffff) | u64::from(new));
        }
        Some(ok)
    }
}

impl Bus for Ram {
    /// The guest-physical address of an access outside RAM.
    type Stop = u64;

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), u64> {
        let r = self.range(gpa, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        self.log.push((gpa, buf.len(), false));
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), u64> {
        let r = self.range(gpa, data.len())?;
        self.bytes[r].copy_from_slice(data);
        self.log.push((gpa, data.len(), true));
        Ok(())
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, u64> {
        let r = self.range(gpa, old.len())?;
        self.log.push((gpa, old.len(), true));
        if self.bytes[r.clone()] != *old {
            return Ok(false);
        }
        self.bytes[r].copy_from_slice(new);
        Ok(true)
    }
    fn port_in(&mut self, _port: u16, buf: &mut [u8]) -> Result<(), u64> {
        buf.fill(0xff);
        Ok(())
    }
    fn port_out(&mut self, _port: u16, _data: &[u8]) -> Result<(), u64> {
        Ok(())
    }
}

/// A read-only user page, a supervisor page and an unmapped page (its PTE
/// is there, but not present).
const USER_RO: u64 = 0x40_0000;
const SUPER: u64 = 0x40_1000;
const ABSENT: u64 = 0x40_2000;

/// A 64-bit vCPU at `cpl` over `ram` with the three pages above.
fn paged_setup(ram: &mut Ram, cpl: u8) -> TestCpu {
    let mut cpu = TestCpu::long();
    cpu.cr3 = ram.alloc();
    cpu.cpl = cpl;
    ram.map(cpu.cr3, USER_RO, 0x8_0000, PTE_P | PTE_US);
    ram.map(cpu.cr3, SUPER, 0x8_1000, PTE_P | PTE_RW);
    ram.map(cpu.cr3, ABSENT, 0, 0);
    cpu
}

/// Runs `bytes` (64-bit mode) on `cpu` through [`Paged`] over `ram`.
fn run_paged(ram: &mut Ram, cpu: &mut TestCpu, bytes: &[u8]) -> Result<Step, Error<u64>> {
    let insn = dec(bytes, CpuMode::Long64);
    let mut mem = Paged::new(ram, &*cpu, 46, 0, 0);
    emulate(&insn, cpu, &mut mem, &Config::default())
}

#[test]
fn flush_through_page_tables() {
    // (bytes, CPL, address in rbx, #PF error code; None: completes)
    type Case = (&'static [u8], u8, u64, Option<u32>);
    let mut cases: Vec<Case> = Vec::new();
    for bytes in FLUSHES {
        cases.extend([
            // A read-only user page at CPL 3: a read is allowed.
            (bytes, 3, USER_RO + 0x123, None),
            // ... and at CPL 0.
            (bytes, 0, USER_RO + 0xfff, None),
            // A supervisor page at CPL 0.
            (bytes, 0, SUPER + 0x40, None),
            // A supervisor page at CPL 3: a user read of a present page.
            (bytes, 3, SUPER + 0x40, Some(PF_P | PF_U)),
            // Not present, CPL 0: a supervisor read.
            (bytes, 0, ABSENT + 0x80, Some(0)),
            // Not present, CPL 3: a user read.
            (bytes, 3, ABSENT + 0x80, Some(PF_U)),
        ]);
    }
    for (bytes, cpl, la, fault) in cases {
        let mut ram = Ram::new();
        let mut cpu = paged_setup(&mut ram, cpl);
        cpu.gpr[RBX] = la;
        let before = cpu.clone();
        let got = run_paged(&mut ram, &mut cpu, bytes);
        match fault {
            None => {
                assert_eq!(got, Ok(Step::Done), "{bytes:02x?} at CPL {cpl}, {la:#x}");
                assert_eq!(cpu.rip, before.rip + bytes.len() as u64);
                assert_eq!(cpu.gpr, before.gpr);
                assert_eq!(cpu.rflags, before.rflags);
            }
            Some(code) => {
                assert_eq!(
                    got,
                    Err(Error::Exception(Exception::Pf { addr: la, code })),
                    "{bytes:02x?} at CPL {cpl}"
                );
                assert_eq!(cpu, before, "{bytes:02x?}: the vCPU changed");
            }
        }
        // Only the page walk: the line itself is neither read nor written.
        assert_eq!(ram.log, [], "{bytes:02x?} at CPL {cpl}, {la:#x}");
    }
    // clflush byte ptr fs:[rax+rcx*8+0x10]: CR2 is the linear address.
    let mut ram = Ram::new();
    let mut cpu = paged_setup(&mut ram, 0);
    cpu.seg_mut(Seg::Fs).base = ABSENT;
    cpu.gpr[RAX] = 0x100;
    cpu.gpr[RCX] = 2;
    let got = run_paged(&mut ram, &mut cpu, &[0x64, 0x0f, 0xae, 0x7c, 0xc8, 0x10]);
    assert_eq!(got, Err(Error::Exception(Exception::Pf { addr: ABSENT + 0x120, code: 0 })));
    // mov byte ptr [rbx], al: the read-only user page refuses a write at
    // CPL 3, which the flushes above did not attempt.
    let mut ram = Ram::new();
    let mut cpu = paged_setup(&mut ram, 3);
    cpu.gpr[RBX] = USER_RO + 0x123;
    let got = run_paged(&mut ram, &mut cpu, &[0x88, 0x03]);
    assert_eq!(
        got,
        Err(Error::Exception(Exception::Pf { addr: USER_RO + 0x123, code: PF_P | PF_W | PF_U }))
    );
}
