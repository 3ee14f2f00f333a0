// SPDX-License-Identifier: GPL-2.0
//! The arithmetic and logic forms: 00-3D in all six encodings, the 80-83
//! immediate group, test (84/85, A8/A9, F6/F7 /0 /1), not/neg, inc/dec
//! (FE/FF, 40-4F outside 64-bit mode), with flags computed by hand.

pub mod common;
pub mod harness;

use harness::*;
use vmm_emul::{CpuMode, DecodeErrorKind};

/// The eight operations in opcode order, each with hand-computed results:
/// `byte`: 0x6a op 0x9b; `dword`: 0xfffffff0 op 0x10; `sx8`: 0x10 op
/// 0xfffffff0 (imm8 0xf0 sign-extended); all with CF = 1 coming in (and
/// ZF = 1, which every result here clears or sets itself).
struct OpRes {
    name: &'static str,
    byte: (u64, u64),
    dword: (u64, u64),
    sx8: (u64, u64),
}

const OPS: [OpRes; 8] = [
    OpRes {
        name: "add",
        byte: (0x05, CF | AF | PF),
        dword: (0, CF | ZF | PF),
        sx8: (0, CF | ZF | PF),
    },
    OpRes {
        name: "or",
        byte: (0xfb, SF),
        dword: (0xffff_fff0, SF | PF),
        sx8: (0xffff_fff0, SF | PF),
    },
    OpRes { name: "adc", byte: (0x06, CF | AF | PF), dword: (1, CF), sx8: (1, CF) },
    OpRes {
        name: "sbb",
        byte: (0xce, CF | AF | OF | SF),
        dword: (0xffff_ffdf, AF | SF),
        sx8: (0x1f, CF | AF),
    },
    OpRes { name: "and", byte: (0x0a, PF), dword: (0x10, 0), sx8: (0x10, 0) },
    OpRes {
        name: "sub",
        byte: (0xcf, CF | AF | OF | SF | PF),
        dword: (0xffff_ffe0, SF),
        sx8: (0x20, CF),
    },
    OpRes { name: "xor", byte: (0xf1, SF), dword: (0xffff_ffe0, SF), sx8: (0xffff_ffe0, SF) },
    OpRes {
        name: "cmp",
        byte: (0x6a, CF | AF | OF | SF | PF),
        dword: (0xffff_fff0, SF),
        sx8: (0x10, CF),
    },
];

const IN_FLAGS: u64 = CF | ZF;
const MEM_FILL: u64 = 0xcccc_cccc_cccc_cccc;
const RCX_FILL: u64 = 0xdddd_dddd_dddd_dddd;
const RAX_FILL: u64 = 0xeeee_eeee_eeee_eeee;

/// The six encodings of 00-3F: 0 `r/m8, r8`, 1 `r/m32, r32`, 2 `r8,
/// r/m8`, 3 `r32, r/m32`, 4 `al, imm8`, 5 `eax, imm32`. Memory is [rbx] =
/// 0x2000 and the register is cl/ecx.
fn check_form(op: usize, form: u8, bytes: &[u8]) {
    let o = &OPS[op];
    let cmp = o.name == "cmp";
    let byte = form % 2 == 0;
    let (a, b, (r, f)) = if byte { (0x6a, 0x9b, o.byte) } else { (0xffff_fff0, 0x10, o.dword) };
    let size = if byte { 1 } else { 4 };
    let keep = |fill: u64, v: u64| (fill & !((1u64 << (8 * size)) - 1)) | v;
    let mut t = T::long().reg(RBX, 0x2000).flags(IN_FLAGS).mem(0x2000, MEM_FILL, 8);
    match form {
        0 | 1 => t = t.mem(0x2000, keep(MEM_FILL, a), 8).reg(RCX, keep(RCX_FILL, b)),
        2 | 3 => t = t.mem(0x2000, keep(MEM_FILL, b), 8).reg(RCX, keep(RCX_FILL, a)),
        _ => t = t.reg(RAX, keep(RAX_FILL, a)),
    }
    let t = t.done(bytes);
    t.rflags(f);
    let what = format!("{} form {form} {bytes:02x?}", o.name);
    match form {
        0 | 1 => {
            t.regs(&[]);
            assert_eq!(t.mem.peek_u64(0x2000, 8), keep(MEM_FILL, r), "{what}");
            assert_eq!(t.writes().is_empty(), cmp, "{what}");
        }
        2 => {
            t.regs(&[(RCX, keep(RCX_FILL, r))]);
        }
        3 => {
            t.regs(&[(RCX, if cmp { keep(RCX_FILL, a) } else { r })]);
        }
        4 => {
            t.regs(&[(RAX, keep(RAX_FILL, r))]);
        }
        _ => {
            t.regs(&[(RAX, if cmp { keep(RAX_FILL, a) } else { r })]);
        }
    }
    if form >= 2 {
        assert!(t.writes().is_empty(), "{what}");
    }
}

#[test]
fn alu_00_3d_all_six_forms() {
    // (op index, form, bytes)
    let cases: &[(usize, u8, &[u8])] = &[
        // add byte ptr [rbx], cl
        (0, 0, &[0x00, 0x0b]),
        // add dword ptr [rbx], ecx
        (0, 1, &[0x01, 0x0b]),
        // add cl, byte ptr [rbx]
        (0, 2, &[0x02, 0x0b]),
        // add ecx, dword ptr [rbx]
        (0, 3, &[0x03, 0x0b]),
        // add al, 0x9b
        (0, 4, &[0x04, 0x9b]),
        // add eax, 0x10
        (0, 5, &[0x05, 0x10, 0x00, 0x00, 0x00]),
        // or byte ptr [rbx], cl
        (1, 0, &[0x08, 0x0b]),
        // or dword ptr [rbx], ecx
        (1, 1, &[0x09, 0x0b]),
        // or cl, byte ptr [rbx]
        (1, 2, &[0x0a, 0x0b]),
        // or ecx, dword ptr [rbx]
        (1, 3, &[0x0b, 0x0b]),
        // or al, 0x9b
        (1, 4, &[0x0c, 0x9b]),
        // or eax, 0x10
        (1, 5, &[0x0d, 0x10, 0x00, 0x00, 0x00]),
        // adc byte ptr [rbx], cl
        (2, 0, &[0x10, 0x0b]),
        // adc dword ptr [rbx], ecx
        (2, 1, &[0x11, 0x0b]),
        // adc cl, byte ptr [rbx]
        (2, 2, &[0x12, 0x0b]),
        // adc ecx, dword ptr [rbx]
        (2, 3, &[0x13, 0x0b]),
        // adc al, 0x9b
        (2, 4, &[0x14, 0x9b]),
        // adc eax, 0x10
        (2, 5, &[0x15, 0x10, 0x00, 0x00, 0x00]),
        // sbb byte ptr [rbx], cl
        (3, 0, &[0x18, 0x0b]),
        // sbb dword ptr [rbx], ecx
        (3, 1, &[0x19, 0x0b]),
        // sbb cl, byte ptr [rbx]
        (3, 2, &[0x1a, 0x0b]),
        // sbb ecx, dword ptr [rbx]
        (3, 3, &[0x1b, 0x0b]),
        // sbb al, 0x9b
        (3, 4, &[0x1c, 0x9b]),
        // sbb eax, 0x10
        (3, 5, &[0x1d, 0x10, 0x00, 0x00, 0x00]),
        // and byte ptr [rbx], cl
        (4, 0, &[0x20, 0x0b]),
        // and dword ptr [rbx], ecx
        (4, 1, &[0x21, 0x0b]),
        // and cl, byte ptr [rbx]
        (4, 2, &[0x22, 0x0b]),
        // and ecx, dword ptr [rbx]
        (4, 3, &[0x23, 0x0b]),
        // and al, 0x9b
        (4, 4, &[0x24, 0x9b]),
        // and eax, 0x10
        (4, 5, &[0x25, 0x10, 0x00, 0x00, 0x00]),
        // sub byte ptr [rbx], cl
        (5, 0, &[0x28, 0x0b]),
        // sub dword ptr [rbx], ecx
        (5, 1, &[0x29, 0x0b]),
        // sub cl, byte ptr [rbx]
        (5, 2, &[0x2a, 0x0b]),
        // sub ecx, dword ptr [rbx]
        (5, 3, &[0x2b, 0x0b]),
        // sub al, 0x9b
        (5, 4, &[0x2c, 0x9b]),
        // sub eax, 0x10
        (5, 5, &[0x2d, 0x10, 0x00, 0x00, 0x00]),
        // xor byte ptr [rbx], cl
        (6, 0, &[0x30, 0x0b]),
        // xor dword ptr [rbx], ecx
        (6, 1, &[0x31, 0x0b]),
        // xor cl, byte ptr [rbx]
        (6, 2, &[0x32, 0x0b]),
        // xor ecx, dword ptr [rbx]
        (6, 3, &[0x33, 0x0b]),
        // xor al, 0x9b
        (6, 4, &[0x34, 0x9b]),
        // xor eax, 0x10
        (6, 5, &[0x35, 0x10, 0x00, 0x00, 0x00]),
        // cmp byte ptr [rbx], cl
        (7, 0, &[0x38, 0x0b]),
        // cmp dword ptr [rbx], ecx
        (7, 1, &[0x39, 0x0b]),
        // cmp cl, byte ptr [rbx]
        (7, 2, &[0x3a, 0x0b]),
        // cmp ecx, dword ptr [rbx]
        (7, 3, &[0x3b, 0x0b]),
        // cmp al, 0x9b
        (7, 4, &[0x3c, 0x9b]),
        // cmp eax, 0x10
        (7, 5, &[0x3d, 0x10, 0x00, 0x00, 0x00]),
    ];
    for (op, form, bytes) in cases {
        check_form(*op, *form, bytes);
    }
}

/// The immediate group on memory: `kind` 0x80 (byte, imm8 0x9b on
/// 0x6a), 0x81 (dword, imm32 0x10 on 0xfffffff0) or 0x83 (dword, imm8
/// 0xf0 on 0x10).
fn check_group(t: T, op: usize, kind: u8, bytes: &[u8]) {
    let o = &OPS[op];
    let (a, (r, f), size) = match kind {
        0x80 => (0x6a, o.byte, 1),
        0x81 => (0xffff_fff0, o.dword, 4),
        _ => (0x10, o.sx8, 4),
    };
    let mask = (1u64 << (8 * size)) - 1;
    let t = t.reg(RBX, 0x2000).flags(IN_FLAGS).mem(0x2000, (MEM_FILL & !mask) | a, 8).done(bytes);
    t.regs(&[]).rflags(f);
    assert_eq!(t.mem.peek_u64(0x2000, 8), (MEM_FILL & !mask) | r, "{} {bytes:02x?}", o.name);
}

#[test]
fn alu_80_81_83_groups() {
    let cases: &[(usize, u8, &[u8])] = &[
        // add byte ptr [rbx], 0x9b
        (0, 0x80, &[0x80, 0x03, 0x9b]),
        // or byte ptr [rbx], 0x9b
        (1, 0x80, &[0x80, 0x0b, 0x9b]),
        // adc byte ptr [rbx], 0x9b
        (2, 0x80, &[0x80, 0x13, 0x9b]),
        // sbb byte ptr [rbx], 0x9b
        (3, 0x80, &[0x80, 0x1b, 0x9b]),
        // and byte ptr [rbx], 0x9b
        (4, 0x80, &[0x80, 0x23, 0x9b]),
        // sub byte ptr [rbx], 0x9b
        (5, 0x80, &[0x80, 0x2b, 0x9b]),
        // xor byte ptr [rbx], 0x9b
        (6, 0x80, &[0x80, 0x33, 0x9b]),
        // cmp byte ptr [rbx], 0x9b
        (7, 0x80, &[0x80, 0x3b, 0x9b]),
        // add dword ptr [rbx], 0x10
        (0, 0x81, &[0x81, 0x03, 0x10, 0x00, 0x00, 0x00]),
        // or dword ptr [rbx], 0x10
        (1, 0x81, &[0x81, 0x0b, 0x10, 0x00, 0x00, 0x00]),
        // adc dword ptr [rbx], 0x10
        (2, 0x81, &[0x81, 0x13, 0x10, 0x00, 0x00, 0x00]),
        // sbb dword ptr [rbx], 0x10
        (3, 0x81, &[0x81, 0x1b, 0x10, 0x00, 0x00, 0x00]),
        // and dword ptr [rbx], 0x10
        (4, 0x81, &[0x81, 0x23, 0x10, 0x00, 0x00, 0x00]),
        // sub dword ptr [rbx], 0x10
        (5, 0x81, &[0x81, 0x2b, 0x10, 0x00, 0x00, 0x00]),
        // xor dword ptr [rbx], 0x10
        (6, 0x81, &[0x81, 0x33, 0x10, 0x00, 0x00, 0x00]),
        // cmp dword ptr [rbx], 0x10
        (7, 0x81, &[0x81, 0x3b, 0x10, 0x00, 0x00, 0x00]),
        // add dword ptr [rbx], -0x10
        (0, 0x83, &[0x83, 0x03, 0xf0]),
        // or dword ptr [rbx], -0x10
        (1, 0x83, &[0x83, 0x0b, 0xf0]),
        // adc dword ptr [rbx], -0x10
        (2, 0x83, &[0x83, 0x13, 0xf0]),
        // sbb dword ptr [rbx], -0x10
        (3, 0x83, &[0x83, 0x1b, 0xf0]),
        // and dword ptr [rbx], -0x10
        (4, 0x83, &[0x83, 0x23, 0xf0]),
        // sub dword ptr [rbx], -0x10
        (5, 0x83, &[0x83, 0x2b, 0xf0]),
        // xor dword ptr [rbx], -0x10
        (6, 0x83, &[0x83, 0x33, 0xf0]),
        // cmp dword ptr [rbx], -0x10
        (7, 0x83, &[0x83, 0x3b, 0xf0]),
    ];
    for (op, kind, bytes) in cases {
        check_group(T::long(), *op, *kind, bytes);
    }
}

#[test]
fn alu_82_outside_64bit_mode() {
    let cases: &[(usize, &[u8])] = &[
        // add byte ptr [ebx], 0x9b
        (0, &[0x82, 0x03, 0x9b]),
        // or byte ptr [ebx], 0x9b
        (1, &[0x82, 0x0b, 0x9b]),
        // adc byte ptr [ebx], 0x9b
        (2, &[0x82, 0x13, 0x9b]),
        // sbb byte ptr [ebx], 0x9b
        (3, &[0x82, 0x1b, 0x9b]),
        // and byte ptr [ebx], 0x9b
        (4, &[0x82, 0x23, 0x9b]),
        // sub byte ptr [ebx], 0x9b
        (5, &[0x82, 0x2b, 0x9b]),
        // xor byte ptr [ebx], 0x9b
        (6, &[0x82, 0x33, 0x9b]),
        // cmp byte ptr [ebx], 0x9b
        (7, &[0x82, 0x3b, 0x9b]),
    ];
    for (op, bytes) in cases {
        check_group(T::prot32(), *op, 0x80, bytes);
    }
    // add byte ptr [bp+di], 0x9b (16-bit: SS-based)
    let t =
        T::real().reg(RBP, 0x2000).flags(IN_FLAGS).mem(0x2000, 0x6a, 1).done(&[0x82, 0x03, 0x9b]);
    t.at(0x2000, 1, 0x05).rflags(CF | AF | PF);
    // add byte ptr [rbx], 0x9b: 82 is invalid in 64-bit mode
    assert_eq!(harness::dec_err(&[0x82, 0x03, 0x9b], CpuMode::Long64), DecodeErrorKind::Invalid);
}

#[test]
fn alu_immediate_sizes_and_sign_extension() {
    // (bytes, rax before, flags before, rax after, flags after)
    let cases: &[(&[u8], u64, u64, u64, u64)] = &[
        // add rax, -1
        (&[0x48, 0x83, 0xc0, 0xff], 1, 0, 0, CF | ZF | PF | AF),
        // add eax, -1 (83: imm8 sign-extended to 32 bits, result zero-extended)
        (&[0x83, 0xc0, 0xff], 0xffff_ffff_0000_0001, 0, 0, CF | ZF | PF | AF),
        // add ax, -1
        (
            &[0x66, 0x83, 0xc0, 0xff],
            0xffff_ffff_ffff_0001,
            0,
            0xffff_ffff_ffff_0000,
            CF | ZF | PF | AF,
        ),
        // add rax, 0xffffffff80000000
        (&[0x48, 0x05, 0x00, 0x00, 0x00, 0x80], 0x8000_0000, 0, 0, CF | ZF | PF),
        // and rax, 0xffffffff80000000
        (
            &[0x48, 0x25, 0x00, 0x00, 0x00, 0x80],
            u64::MAX,
            CF | OF | AF,
            0xffff_ffff_8000_0000,
            SF | PF,
        ),
        // and eax, 0x80000000 (no sign extension into bits 63:32)
        (&[0x25, 0x00, 0x00, 0x00, 0x80], u64::MAX, 0, 0x8000_0000, SF | PF),
        // add ax, 0x7fff
        (&[0x66, 0x05, 0xff, 0x7f], 0x1, 0, 0x8000, OF | SF | AF | PF),
        // add rax, 0x7fffffff
        (&[0x48, 0x05, 0xff, 0xff, 0xff, 0x7f], 1, 0, 0x8000_0000, AF | PF),
        // sub rax, 1
        (&[0x48, 0x83, 0xe8, 0x01], 0x8000_0000_0000_0000, 0, 0x7fff_ffff_ffff_ffff, OF | AF | PF),
        // cmp rax, -1
        (&[0x48, 0x83, 0xf8, 0xff], u64::MAX, 0, u64::MAX, ZF | PF),
        // add qword ptr [rbx], rax... here: add rax, rax
        (&[0x48, 0x01, 0xc0], 0x8000_0000_0000_0000, 0, 0, CF | OF | ZF | PF),
    ];
    for (bytes, a, fin, r, fout) in cases {
        let t = T::long().reg(RAX, *a).flags(*fin).done(bytes);
        t.regs(&[(RAX, *r)]).rflags(*fout);
    }
}

#[test]
fn alu_named_flag_edges_byte() {
    // (bytes, al before, flags before, al after, flags after)
    let cases: &[(&[u8], u64, u64, u64, u64)] = &[
        // add al, 0x01
        (&[0x04, 0x01], 0x7f, 0, 0x80, OF | SF | AF),
        // add al, 0x01
        (&[0x04, 0x01], 0xff, 0, 0x00, CF | ZF | AF | PF),
        // add al, 0x80
        (&[0x04, 0x80], 0x80, 0, 0x00, CF | OF | ZF | PF),
        // add al, 0x08
        (&[0x04, 0x08], 0x08, CF | SF | OF, 0x10, AF),
        // add al, 0x03
        (&[0x04, 0x03], 0x00, 0, 0x03, PF),
        // adc al, 0x00
        (&[0x14, 0x00], 0xff, CF, 0x00, CF | ZF | AF | PF),
        // adc al, 0x7f
        (&[0x14, 0x7f], 0x00, CF, 0x80, OF | SF | AF),
        // adc al, 0x00
        (&[0x14, 0x00], 0x00, 0, 0x00, ZF | PF),
        // sub al, 0x01
        (&[0x2c, 0x01], 0x80, 0, 0x7f, OF | AF),
        // sub al, 0x01
        (&[0x2c, 0x01], 0x00, 0, 0xff, CF | AF | SF | PF),
        // sub al, 0x10
        (&[0x2c, 0x10], 0x10, CF | AF | OF, 0x00, ZF | PF),
        // sbb al, 0x00
        (&[0x1c, 0x00], 0x00, CF, 0xff, CF | AF | SF | PF),
        // sbb al, 0xff
        (&[0x1c, 0xff], 0xff, CF, 0xff, CF | AF | SF | PF),
        // sbb al, 0x7f
        (&[0x1c, 0x7f], 0x80, 0, 0x01, OF | AF),
        // cmp al, 0x80
        (&[0x3c, 0x80], 0x00, 0, 0x00, CF | OF | SF),
        // cmp al, 0x01
        (&[0x3c, 0x01], 0x01, CF | SF | OF | AF, 0x01, ZF | PF),
        // and al, 0x0f
        (&[0x24, 0x0f], 0xf0, CF | OF | AF | SF, 0x00, ZF | PF),
        // or al, 0x00
        (&[0x0c, 0x00], 0x80, CF | OF | AF | ZF | PF, 0x80, SF),
        // xor al, 0xff
        (&[0x34, 0xff], 0x0f, CF | OF | AF, 0xf0, SF | PF),
        // xor al, 0x01
        (&[0x34, 0x01], 0x02, 0, 0x03, PF),
    ];
    for (bytes, al, fin, r, fout) in cases {
        let t = T::long().reg(RAX, 0x1234_5600 | al).flags(*fin).done(bytes);
        t.regs(&[(RAX, 0x1234_5600 | r)]).rflags(*fout);
    }
}

#[test]
fn alu_parity_is_of_the_low_byte_only() {
    // or eax, 0x100
    let t = T::long().flags(0).done(&[0x0d, 0x00, 0x01, 0x00, 0x00]);
    t.regs(&[(RAX, 0x100)]).rflags(PF);
    // or eax, 0x101
    let t = T::long().flags(PF).done(&[0x0d, 0x01, 0x01, 0x00, 0x00]);
    t.regs(&[(RAX, 0x101)]).rflags(0);
    // xor eax, eax
    let t = T::long().reg(RAX, u64::MAX).flags(CF | OF | AF | SF).done(&[0x31, 0xc0]);
    t.regs(&[(RAX, 0)]).rflags(ZF | PF);
    // and eax, 0x80000000 with eax = 0x80000000: SF from bit 31
    let t = T::long().reg(RAX, 0x8000_0000).flags(0).done(&[0x25, 0x00, 0x00, 0x00, 0x80]);
    t.regs(&[(RAX, 0x8000_0000)]).rflags(SF | PF);
}

#[test]
fn alu_16_and_64_bit_memory_and_high_bytes() {
    // add word ptr [rbx], cx
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(RCX, 0x0001)
        .mem(0x2000, 0xaaaa_7fff, 4)
        .flags(0)
        .done(&[0x66, 0x01, 0x0b]);
    t.at(0x2000, 4, 0xaaaa_8000).rflags(OF | SF | AF | PF);
    // sub qword ptr [rbx], rcx
    let t =
        T::long().reg(RBX, 0x2000).reg(RCX, 1).mem(0x2000, 0, 8).flags(0).done(&[0x48, 0x29, 0x0b]);
    t.at(0x2000, 8, u64::MAX).rflags(CF | AF | SF | PF);
    // add ah, bh
    let t = T::long().reg(RAX, 0x7f00).reg(RBX, 0x0100).flags(0).done(&[0x00, 0xfc]);
    t.regs(&[(RAX, 0x8000)]).rflags(OF | SF | AF);
    // add spl, dil
    let t = T::long().reg(RSP, 0x7f00_00ff).reg(RDI, 0x01).flags(0).done(&[0x40, 0x00, 0xfc]);
    t.regs(&[(RSP, 0x7f00_0000)]).rflags(CF | ZF | AF | PF);
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(R10, 4)
        .reg(R9, 0xffff_0005)
        .mem(0x2008, 5, 2)
        .flags(0)
        // sub r9w, word ptr [rbx+r10*2]
        .done(&[0x66, 0x46, 0x2b, 0x0c, 0x53]);
    t.regs(&[(R9, 0xffff_0000)]).rflags(ZF | PF);
    let t =
        // add word ptr [bx+si], ax (16-bit mode)
        T::real().reg(RBX, 0x100).reg(RSI, 0x10).reg(RAX, 0x8000).mem(0x110, 0x8000, 2).flags(0).done(&[0x01, 0x00]);
    t.at(0x110, 2, 0).rflags(CF | OF | ZF | PF);
}

#[test]
fn test_forms() {
    // (bytes, flags after); al = 0x80, ebx = 0x2000, [rbx] = 0x80000001
    let cases: &[(&[u8], u64)] = &[
        // test byte ptr [rbx], cl
        (&[0x84, 0x0b], 0),
        // test dword ptr [rbx], ecx
        (&[0x85, 0x0b], 0),
        // test al, al
        (&[0x84, 0xc0], SF),
        // test ah, ah
        (&[0x84, 0xe4], ZF | PF),
        // test spl, spl
        (&[0x40, 0x84, 0xe4], 0),
        // test rcx, rcx
        (&[0x48, 0x85, 0xc9], PF),
        // test al, 0x80
        (&[0xa8, 0x80], SF),
        // test al, 0x7f
        (&[0xa8, 0x7f], ZF | PF),
        // test eax, 0x80
        (&[0xa9, 0x80, 0x00, 0x00, 0x00], 0),
        // test ax, 0x80
        (&[0x66, 0xa9, 0x80, 0x00], 0),
        // test rax, -1
        (&[0x48, 0xa9, 0xff, 0xff, 0xff, 0xff], 0),
        // test byte ptr [rbx], 0x01
        (&[0xf6, 0x03, 0x01], 0),
        // test dword ptr [rbx], 0x80000000
        (&[0xf7, 0x03, 0x00, 0x00, 0x00, 0x80], SF | PF),
        // test qword ptr [rbx], -1
        (&[0x48, 0xf7, 0x03, 0xff, 0xff, 0xff, 0xff], 0),
        // test word ptr [rbx], 0x8000
        (&[0x66, 0xf7, 0x03, 0x00, 0x80], ZF | PF),
        // test bl, 0x80 (F6 /1, the undocumented alias of /0)
        (&[0xf6, 0xcb, 0x80], ZF | PF),
        // test eax, 0x80 (F7 /1)
        (&[0xf7, 0xc8, 0x80, 0x00, 0x00, 0x00], 0),
    ];
    for (bytes, f) in cases {
        let t = T::long()
            .reg(RAX, 0x80)
            .reg(RBX, 0x2000)
            .reg(RCX, 0x0000_0000_0000_0003)
            .reg(RSP, 0x8001)
            .mem(0x2000, 0x0001_0000_8000_0001, 8)
            .flags(CF | OF | AF | ZF | SF | PF)
            .done(bytes);
        t.regs(&[]).rflags(*f);
        assert!(t.writes().is_empty(), "{bytes:02x?}");
    }
}

#[test]
fn not_neg_forms() {
    // not: flags untouched; only the operand's bytes change.
    let not_cases: &[(&[u8], u64)] = &[
        // not byte ptr [rbx]
        (&[0xf6, 0x13], 0xa5a5_a5a5_a5a5_a55a),
        // not word ptr [rbx]
        (&[0x66, 0xf7, 0x13], 0xa5a5_a5a5_a5a5_5a5a),
        // not dword ptr [rbx]
        (&[0xf7, 0x13], 0xa5a5_a5a5_5a5a_5a5a),
        // not qword ptr [rbx]
        (&[0x48, 0xf7, 0x13], 0x5a5a_5a5a_5a5a_5a5a),
    ];
    for (bytes, v) in not_cases {
        let t = T::long()
            .reg(RBX, 0x2000)
            .mem(0x2000, 0xa5a5_a5a5_a5a5_a5a5, 8)
            .flags(CF | ZF)
            .done(bytes);
        t.regs(&[]).at(0x2000, 8, *v).rflags(CF | ZF);
    }
    // not eax
    let t = T::long().reg(RAX, 0xffff_ffff_0000_ffff).done(&[0xf7, 0xd0]);
    t.regs(&[(RAX, 0xffff_0000)]);
    // not ah
    let t = T::long().reg(RAX, 0x0f00).done(&[0xf6, 0xd4]);
    t.regs(&[(RAX, 0xf000)]);
    // not rax
    let t = T::long().reg(RAX, 0).done(&[0x48, 0xf7, 0xd0]);
    t.regs(&[(RAX, u64::MAX)]);

    // (bytes, value before, value after, flags after); flags before CF|ZF
    let neg_cases: &[(&[u8], u64, u64, u64)] = &[
        // neg byte ptr [rbx]
        (&[0xf6, 0x1b], 0x00, 0x00, ZF | PF),
        // neg byte ptr [rbx]
        (&[0xf6, 0x1b], 0x80, 0x80, CF | OF | SF),
        // neg byte ptr [rbx]
        (&[0xf6, 0x1b], 0x01, 0xff, CF | AF | SF | PF),
        // neg byte ptr [rbx]
        (&[0xf6, 0x1b], 0x10, 0xf0, CF | SF | PF),
        // neg dword ptr [rbx]
        (&[0xf7, 0x1b], 0x8000_0000, 0x8000_0000, CF | OF | SF | PF),
        // neg word ptr [rbx]
        (&[0x66, 0xf7, 0x1b], 0x0001, 0xffff, CF | AF | SF | PF),
        // neg qword ptr [rbx]
        (&[0x48, 0xf7, 0x1b], 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0001, CF | AF | SF),
    ];
    for (bytes, a, r, f) in neg_cases {
        let t = T::long().reg(RBX, 0x2000).mem(0x2000, *a, 8).flags(CF | ZF).done(bytes);
        t.at(0x2000, 8, *r).rflags(*f);
    }
    // neg eax
    let t = T::long().reg(RAX, 0xffff_ffff_0000_0001).flags(0).done(&[0xf7, 0xd8]);
    t.regs(&[(RAX, 0xffff_ffff)]).rflags(CF | AF | SF | PF);
    // neg bh
    let t = T::long().reg(RBX, 0x0200).flags(0).done(&[0xf6, 0xdf]);
    t.regs(&[(RBX, 0xfe00)]).rflags(CF | AF | SF);
    // mul byte ptr [rbx] (F6 /4): not emulated
    assert_eq!(harness::dec_err(&[0xf6, 0x23], CpuMode::Long64), DecodeErrorKind::Unsupported);
    // idiv dword ptr [rax] (F7 /7)
    assert_eq!(harness::dec_err(&[0xf7, 0x38], CpuMode::Long64), DecodeErrorKind::Unsupported);
}

#[test]
fn inc_dec_40_4f_every_register() {
    // (bytes, register, before, after, flags after); CF comes in set and stays
    let cases: &[(&[u8], usize, u64, u64, u64)] = &[
        // inc eax
        (&[0x40], 0, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc ecx
        (&[0x41], 1, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc edx
        (&[0x42], 2, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc ebx
        (&[0x43], 3, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc esp
        (&[0x44], 4, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc ebp
        (&[0x45], 5, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc esi
        (&[0x46], 6, 0x0000_00ff, 0x0000_0100, AF | PF),
        // inc edi
        (&[0x47], 7, 0x0000_00ff, 0x0000_0100, AF | PF),
        // dec eax
        (&[0x48], 0, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec ecx
        (&[0x49], 1, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec edx
        (&[0x4a], 2, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec ebx
        (&[0x4b], 3, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec esp
        (&[0x4c], 4, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec ebp
        (&[0x4d], 5, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec esi
        (&[0x4e], 6, 0x0000_0100, 0x0000_00ff, AF | PF),
        // dec edi
        (&[0x4f], 7, 0x0000_0100, 0x0000_00ff, AF | PF),
    ];
    for (bytes, r, a, v, f) in cases {
        let t = T::prot32().reg(*r, *a).flags(CF).done(bytes);
        t.regs(&[(*r, *v)]).rflags(CF | *f);
    }
    // In 64-bit mode 40-4F are REX prefixes: 48 ff c0 is `inc rax`, not `dec eax`.
    let insn = dec(&[0x48, 0xff, 0xc0], CpuMode::Long64);
    assert_eq!(insn.op, vmm_emul::Op::Inc);
    assert_eq!(insn.op_size, 8);
}

#[test]
fn inc_dec_forms() {
    // (bytes, value before, flags before, value after, flags after) on [rbx]
    let mem_cases: &[(&[u8], u64, u64, u64, u64)] = &[
        // inc byte ptr [rbx]
        (&[0xfe, 0x03], 0x7f, CF, 0x80, CF | OF | SF | AF),
        // inc byte ptr [rbx]
        (&[0xfe, 0x03], 0xff, 0, 0x00, ZF | AF | PF),
        // inc byte ptr [rbx]
        (&[0xfe, 0x03], 0x00, CF | ZF | SF, 0x01, CF),
        // dec byte ptr [rbx]
        (&[0xfe, 0x0b], 0x80, 0, 0x7f, OF | AF),
        // dec byte ptr [rbx]
        (&[0xfe, 0x0b], 0x00, CF, 0xff, CF | SF | AF | PF),
        // dec byte ptr [rbx]
        (&[0xfe, 0x0b], 0x01, 0, 0x00, ZF | PF),
        // inc dword ptr [rbx]
        (&[0xff, 0x03], 0x7fff_ffff, 0, 0x8000_0000, OF | SF | AF | PF),
        // dec dword ptr [rbx]
        (&[0xff, 0x0b], 0, CF, 0xffff_ffff, CF | SF | AF | PF),
        // inc word ptr [rbx]
        (&[0x66, 0xff, 0x03], 0xffff, 0, 0, ZF | AF | PF),
        // inc qword ptr [rbx]
        (&[0x48, 0xff, 0x03], 0x7fff_ffff_ffff_ffff, 0, 0x8000_0000_0000_0000, OF | SF | AF | PF),
        // dec qword ptr [rbx]
        (&[0x48, 0xff, 0x0b], 0x10, 0, 0x0f, AF | PF),
    ];
    for (bytes, a, fin, r, fout) in mem_cases {
        let t = T::long().reg(RBX, 0x2000).mem(0x2000, *a, 8).flags(*fin).done(bytes);
        t.at(0x2000, 8, *r).rflags(*fout);
    }
    // (mode, bytes, register, before, after, flags after); flags before: CF
    type Case = (CpuMode, &'static [u8], usize, u64, u64, u64);
    let reg_cases: &[Case] = &[
        // inc rax
        (CpuMode::Long64, &[0x48, 0xff, 0xc0], RAX, u64::MAX, 0, CF | ZF | AF | PF),
        // inc eax
        (CpuMode::Long64, &[0xff, 0xc0], RAX, 0xffff_ffff_ffff_ffff, 0, CF | ZF | AF | PF),
        // dec ax
        (CpuMode::Long64, &[0x66, 0xff, 0xc8], RAX, 0x1234_0000, 0x1234_ffff, CF | SF | AF | PF),
        // inc ah
        (CpuMode::Long64, &[0xfe, 0xc4], RAX, 0x7f00, 0x8000, CF | OF | SF | AF),
        // inc spl
        (CpuMode::Long64, &[0x40, 0xfe, 0xc4], RSP, 0x7f7f, 0x7f80, CF | OF | SF | AF),
        // dec r15b
        (CpuMode::Long64, &[0x41, 0xfe, 0xcf], R15, 0x100, 0x1ff, CF | SF | AF | PF),
        // inc eax
        (CpuMode::Protected32, &[0x40], RAX, 0x7fff_ffff, 0x8000_0000, CF | OF | SF | AF | PF),
        // dec eax
        (CpuMode::Protected32, &[0x48], RAX, 0, 0xffff_ffff, CF | SF | AF | PF),
        // inc cx
        (CpuMode::Protected32, &[0x66, 0x41], RCX, 0x1_ffff, 0x1_0000, CF | ZF | AF | PF),
        // dec edi
        (CpuMode::Protected32, &[0x4f], RDI, 1, 0, CF | ZF | PF),
        // inc esp
        (CpuMode::Protected32, &[0x44], RSP, 0x0f, 0x10, CF | AF),
        // dec ebp
        (CpuMode::Protected32, &[0x4d], RBP, 0x10, 0x0f, CF | AF | PF),
        // inc ax
        (CpuMode::Real, &[0x40], RAX, 0xffff_00ff, 0xffff_0100, CF | AF | PF),
        // dec bx
        (CpuMode::Real, &[0x4b], RBX, 0x8000, 0x7fff, CF | OF | AF | PF),
        // inc edx
        (CpuMode::Real, &[0x66, 0x42], RDX, 0xffff, 0x1_0000, CF | AF | PF),
    ];
    for (mode, bytes, r, a, v, f) in reg_cases {
        let t = match mode {
            CpuMode::Long64 => T::long(),
            CpuMode::Protected32 => T::prot32(),
            _ => T::real(),
        };
        let t = t.reg(*r, *a).flags(CF).done(bytes);
        t.regs(&[(*r, *v)]).rflags(*f);
    }
    // FE /2 (call with a byte operand does not exist)
    assert_eq!(harness::dec_err(&[0xfe, 0x13], CpuMode::Long64), DecodeErrorKind::Invalid);
    // FE /7
    assert_eq!(harness::dec_err(&[0xfe, 0xf8], CpuMode::Long64), DecodeErrorKind::Invalid);
    // FF /7
    assert_eq!(harness::dec_err(&[0xff, 0x3b], CpuMode::Long64), DecodeErrorKind::Invalid);
    // call qword ptr [rbx]
    assert_eq!(harness::dec_err(&[0xff, 0x13], CpuMode::Long64), DecodeErrorKind::Unsupported);
    // jmp qword ptr [rbx]
    assert_eq!(harness::dec_err(&[0xff, 0x23], CpuMode::Long64), DecodeErrorKind::Unsupported);
}
