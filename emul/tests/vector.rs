// SPDX-License-Identifier: GPL-2.0
//! Vector moves: every SSE and VEX encoding of movd/movq/movdqa/movdqu/
//! movaps/movups/movapd/movupd/movntdq/movntps/movntpd; upper-bit zeroing
//! (legacy SSE keeps bits 255:128, VEX clears them); alignment #GP; #UD
//! and #NM from CR0/CR4/XCR0.

pub mod common;
pub mod harness;

use harness::*;
use vmm_emul::{CpuMode, DecodeErrorKind, Exception};

const CR0_EM: u64 = 1 << 2;
const CR0_TS: u64 = 1 << 3;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXSAVE: u64 = 1 << 18;
const V: u64 = 0x1122_3344_5566_7788;

/// The 64 bytes 0x00..0x3f at 0x2000 (0x2000 is 32-byte aligned).
fn mem_bytes(off: usize, n: usize) -> Vec<u8> {
    (off..off + n).map(|b| b as u8).collect()
}

/// 64-bit mode, rbx = 0x2000, xmm/ymm `n` = [0xa0 + n; 32], rax = V.
fn setup() -> T {
    let mut t = T::long().reg(RBX, 0x2000).reg(RAX, V);
    t.mem.poke(0x2000, &mem_bytes(0, 64));
    for (n, v) in t.cpu.vec.iter_mut().enumerate() {
        *v = [0xa0 + n as u8; 32];
    }
    t
}

/// `a` then `b` then `c`, as the 32 bytes of a YMM register.
fn ymm(a: &[u8], b: &[u8], c: &[u8]) -> [u8; 32] {
    let v: Vec<u8> = a.iter().chain(b).chain(c).copied().collect();
    v.try_into().unwrap()
}

#[test]
fn sse_loads_keep_bits_255_128() {
    let full = ymm(&mem_bytes(0, 16), &[], &[0xa0; 16]);
    let d4 = ymm(&mem_bytes(0, 4), &[0; 12], &[0xa0; 16]);
    let q8 = ymm(&mem_bytes(0, 8), &[0; 8], &[0xa0; 16]);
    let cases: &[(&[u8], [u8; 32])] = &[
        // movups xmm0, xmmword ptr [rbx]
        (&[0x0f, 0x10, 0x03], full),
        // movupd xmm0, xmmword ptr [rbx]
        (&[0x66, 0x0f, 0x10, 0x03], full),
        // movaps xmm0, xmmword ptr [rbx]
        (&[0x0f, 0x28, 0x03], full),
        // movapd xmm0, xmmword ptr [rbx]
        (&[0x66, 0x0f, 0x28, 0x03], full),
        // movdqa xmm0, xmmword ptr [rbx]
        (&[0x66, 0x0f, 0x6f, 0x03], full),
        // movdqu xmm0, xmmword ptr [rbx]
        (&[0xf3, 0x0f, 0x6f, 0x03], full),
        // movd xmm0, dword ptr [rbx]
        (&[0x66, 0x0f, 0x6e, 0x03], d4),
        // movq xmm0, qword ptr [rbx] (66 REX.W 0F 6E)
        (&[0x66, 0x48, 0x0f, 0x6e, 0x03], q8),
        // movq xmm0, qword ptr [rbx] (F3 0F 7E)
        (&[0xf3, 0x0f, 0x7e, 0x03], q8),
    ];
    for (bytes, want) in cases {
        let t = setup().done(bytes);
        assert_eq!(t.cpu.vec[0], *want, "{bytes:02x?}");
        t.regs(&[]);
        assert!(t.writes().is_empty());
        for n in 1..16 {
            assert_eq!(t.cpu.vec[n], [0xa0 + n as u8; 32]);
        }
    }
}

#[test]
fn sse_stores() {
    // (bytes, bytes written at 0x2000)
    let cases: &[(&[u8], usize)] = &[
        // movups xmmword ptr [rbx], xmm0
        (&[0x0f, 0x11, 0x03], 16),
        // movupd xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0x11, 0x03], 16),
        // movaps xmmword ptr [rbx], xmm0
        (&[0x0f, 0x29, 0x03], 16),
        // movapd xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0x29, 0x03], 16),
        // movntps xmmword ptr [rbx], xmm0
        (&[0x0f, 0x2b, 0x03], 16),
        // movntpd xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0x2b, 0x03], 16),
        // movdqa xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0x7f, 0x03], 16),
        // movdqu xmmword ptr [rbx], xmm0
        (&[0xf3, 0x0f, 0x7f, 0x03], 16),
        // movntdq xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0xe7, 0x03], 16),
        // movd dword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0x7e, 0x03], 4),
        // movq qword ptr [rbx], xmm0 (66 REX.W 0F 7E)
        (&[0x66, 0x48, 0x0f, 0x7e, 0x03], 8),
        // movq qword ptr [rbx], xmm0 (66 0F D6)
        (&[0x66, 0x0f, 0xd6, 0x03], 8),
    ];
    for (bytes, n) in cases {
        let t = setup().done(bytes);
        let mut want = vec![0xa0; *n];
        want.extend(mem_bytes(*n, 32 - *n));
        assert_eq!(t.mem.peek(0x2000, 32), want, "{bytes:02x?}");
        assert_eq!(t.write_las(), vec![0x2000]);
        assert_eq!(t.cpu.vec, setup().cpu.vec);
        t.regs(&[]);
    }
}

#[test]
fn sse_register_forms() {
    let x1_sse = ymm(&[0xa1; 16], &[], &[0xa0; 16]);
    let x0_in_1 = ymm(&[0xa0; 16], &[], &[0xa1; 16]);
    // (bytes, destination register, value after)
    let cases: &[(&[u8], u8, [u8; 32])] = &[
        // movaps xmm0, xmm1
        (&[0x0f, 0x28, 0xc1], 0, x1_sse),
        // movups xmm0, xmm1
        (&[0x0f, 0x10, 0xc1], 0, x1_sse),
        // movapd xmm0, xmm1
        (&[0x66, 0x0f, 0x28, 0xc1], 0, x1_sse),
        // movdqa xmm0, xmm1
        (&[0x66, 0x0f, 0x6f, 0xc1], 0, x1_sse),
        // movdqu xmm0, xmm1
        (&[0xf3, 0x0f, 0x6f, 0xc1], 0, x1_sse),
        // movaps xmm1, xmm0
        (&[0x0f, 0x29, 0xc1], 1, x0_in_1),
        // movups xmm1, xmm0
        (&[0x0f, 0x11, 0xc1], 1, x0_in_1),
        // movdqa xmm1, xmm0
        (&[0x66, 0x0f, 0x7f, 0xc1], 1, x0_in_1),
        // movdqu xmm1, xmm0
        (&[0xf3, 0x0f, 0x7f, 0xc1], 1, x0_in_1),
        // movq xmm0, xmm1
        (&[0xf3, 0x0f, 0x7e, 0xc1], 0, ymm(&[0xa1; 8], &[0; 8], &[0xa0; 16])),
        // movq xmm1, xmm0
        (&[0x66, 0x0f, 0xd6, 0xc1], 1, ymm(&[0xa0; 8], &[0; 8], &[0xa1; 16])),
        // movd xmm0, eax
        (&[0x66, 0x0f, 0x6e, 0xc0], 0, ymm(&[0x88, 0x77, 0x66, 0x55], &[0; 12], &[0xa0; 16])),
        (
            // movq xmm0, rax
            &[0x66, 0x48, 0x0f, 0x6e, 0xc0],
            0,
            ymm(&[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], &[0; 8], &[0xa0; 16]),
        ),
        // movd xmm8, r9d
        (&[0x66, 0x45, 0x0f, 0x6e, 0xc1], 8, ymm(&[0x99, 0, 0, 0], &[0; 12], &[0xa8; 16])),
        // movdqa xmm0, xmm9
        (&[0x66, 0x41, 0x0f, 0x6f, 0xc1], 0, ymm(&[0xa9; 16], &[], &[0xa0; 16])),
        // movdqa xmm8, xmmword ptr [rbx]
        (&[0x66, 0x44, 0x0f, 0x6f, 0x03], 8, ymm(&mem_bytes(0, 16), &[], &[0xa8; 16])),
    ];
    for (bytes, n, want) in cases {
        let t = setup().reg(R9, 0x99).done(bytes);
        assert_eq!(t.cpu.vec[usize::from(*n)], *want, "{bytes:02x?}");
        t.regs(&[]);
    }
    // movd eax, xmm0 (zero-extends into rax)
    let t = setup().done(&[0x66, 0x0f, 0x7e, 0xc0]);
    t.regs(&[(RAX, 0xa0a0_a0a0)]);
    // movq rax, xmm0
    let t = setup().done(&[0x66, 0x48, 0x0f, 0x7e, 0xc0]);
    t.regs(&[(RAX, 0xa0a0_a0a0_a0a0_a0a0)]);
    // movd r9d, xmm8
    let t = setup().reg(R9, u64::MAX).done(&[0x66, 0x45, 0x0f, 0x7e, 0xc1]);
    t.regs(&[(R9, 0xa8a8_a8a8)]);
}

#[test]
fn vex_moves_zero_bits_255_128() {
    let x = ymm(&mem_bytes(0, 16), &[], &[0; 16]);
    let y = ymm(&mem_bytes(0, 32), &[], &[]);
    let cases: &[(&[u8], u8, [u8; 32])] = &[
        // vmovups xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xf8, 0x10, 0x03], 0, x),
        // vmovupd xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xf9, 0x10, 0x03], 0, x),
        // vmovaps xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xf8, 0x28, 0x03], 0, x),
        // vmovapd ymm0, ymmword ptr [rbx]
        (&[0xc5, 0xfd, 0x28, 0x03], 0, y),
        // vmovdqa xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xf9, 0x6f, 0x03], 0, x),
        // vmovdqa ymm0, ymmword ptr [rbx]
        (&[0xc5, 0xfd, 0x6f, 0x03], 0, y),
        // vmovdqu xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xfa, 0x6f, 0x03], 0, x),
        // vmovdqu ymm0, ymmword ptr [rbx]
        (&[0xc5, 0xfe, 0x6f, 0x03], 0, y),
        // vmovups ymm0, ymmword ptr [rbx] (3-byte VEX)
        (&[0xc4, 0xe1, 0x7c, 0x10, 0x03], 0, y),
        // vmovd xmm0, dword ptr [rbx]
        (&[0xc5, 0xf9, 0x6e, 0x03], 0, ymm(&mem_bytes(0, 4), &[0; 28], &[])),
        // vmovq xmm0, qword ptr [rbx] (VEX.W1 6E)
        (&[0xc4, 0xe1, 0xf9, 0x6e, 0x03], 0, ymm(&mem_bytes(0, 8), &[0; 24], &[])),
        // vmovq xmm0, qword ptr [rbx] (F3 7E)
        (&[0xc5, 0xfa, 0x7e, 0x03], 0, ymm(&mem_bytes(0, 8), &[0; 24], &[])),
        // vmovaps xmm0, xmm1
        (&[0xc5, 0xf8, 0x28, 0xc1], 0, ymm(&[0xa1; 16], &[0; 16], &[])),
        // vmovaps ymm0, ymm1
        (&[0xc5, 0xfc, 0x28, 0xc1], 0, [0xa1; 32]),
        // vmovaps xmm1, xmm0 (store form, register destination)
        (&[0xc5, 0xf8, 0x29, 0xc1], 1, ymm(&[0xa0; 16], &[0; 16], &[])),
        // vmovq xmm0, xmm1
        (&[0xc5, 0xfa, 0x7e, 0xc1], 0, ymm(&[0xa1; 8], &[0; 24], &[])),
        // vmovq xmm1, xmm0
        (&[0xc5, 0xf9, 0xd6, 0xc1], 1, ymm(&[0xa0; 8], &[0; 24], &[])),
        // vmovd xmm0, eax
        (&[0xc5, 0xf9, 0x6e, 0xc0], 0, ymm(&[0x88, 0x77, 0x66, 0x55], &[0; 28], &[])),
        // vmovq xmm0, rax
        (
            &[0xc4, 0xe1, 0xf9, 0x6e, 0xc0],
            0,
            ymm(&[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], &[0; 24], &[]),
        ),
        // vmovdqa xmm8, xmmword ptr [rbx]
        (&[0xc5, 0x79, 0x6f, 0x03], 8, x),
        // vmovdqa xmm0, xmmword ptr [r8]
        (&[0xc4, 0xc1, 0x79, 0x6f, 0x00], 0, x),
        // vmovdqa xmm8, xmmword ptr [r8]
        (&[0xc4, 0x41, 0x79, 0x6f, 0x00], 8, x),
        // vmovdqa ymm15, ymmword ptr [rbx+rcx*2]
        (&[0xc4, 0x61, 0x7d, 0x6f, 0x3c, 0x4b], 15, y),
    ];
    for (bytes, n, want) in cases {
        let t = setup().reg(R8, 0x2000).reg(RCX, 0).done(bytes);
        assert_eq!(t.cpu.vec[usize::from(*n)], *want, "{bytes:02x?}");
        t.regs(&[]);
    }
}

#[test]
fn vex_stores() {
    let cases: &[(&[u8], usize)] = &[
        // vmovups xmmword ptr [rbx], xmm0
        (&[0xc5, 0xf8, 0x11, 0x03], 16),
        // vmovapd xmmword ptr [rbx], xmm0
        (&[0xc5, 0xf9, 0x29, 0x03], 16),
        // vmovntps xmmword ptr [rbx], xmm0
        (&[0xc5, 0xf8, 0x2b, 0x03], 16),
        // vmovntpd ymmword ptr [rbx], ymm0
        (&[0xc5, 0xfd, 0x2b, 0x03], 32),
        // vmovdqa ymmword ptr [rbx], ymm0
        (&[0xc5, 0xfd, 0x7f, 0x03], 32),
        // vmovdqu xmmword ptr [rbx], xmm0
        (&[0xc5, 0xfa, 0x7f, 0x03], 16),
        // vmovntdq ymmword ptr [rbx], ymm0
        (&[0xc5, 0xfd, 0xe7, 0x03], 32),
        // vmovd dword ptr [rbx], xmm0
        (&[0xc5, 0xf9, 0x7e, 0x03], 4),
        // vmovq qword ptr [rbx], xmm0 (VEX.W1 7E)
        (&[0xc4, 0xe1, 0xf9, 0x7e, 0x03], 8),
        // vmovq qword ptr [rbx], xmm0 (D6)
        (&[0xc5, 0xf9, 0xd6, 0x03], 8),
    ];
    for (bytes, n) in cases {
        let t = setup().done(bytes);
        let mut want = vec![0xa0; *n];
        want.extend(mem_bytes(*n, 48 - *n));
        assert_eq!(t.mem.peek(0x2000, 48), want, "{bytes:02x?}");
        assert_eq!(t.cpu.vec, setup().cpu.vec);
    }
    // vmovd eax, xmm0
    let t = setup().done(&[0xc5, 0xf9, 0x7e, 0xc0]);
    t.regs(&[(RAX, 0xa0a0_a0a0)]);
    // vmovq rax, xmm0
    let t = setup().done(&[0xc4, 0xe1, 0xf9, 0x7e, 0xc0]);
    t.regs(&[(RAX, 0xa0a0_a0a0_a0a0_a0a0)]);
}

#[test]
fn legacy_modes() {
    let mut t = T::prot32().reg(RBX, 0x2000).reg(RAX, 0x1234_5678);
    t.mem.poke(0x2000, &mem_bytes(0, 32));
    // movdqa xmm0, xmmword ptr [ebx]
    let t = t.done(&[0x66, 0x0f, 0x6f, 0x03]);
    assert_eq!(t.cpu.vec[0], ymm(&mem_bytes(0, 16), &[0; 16], &[]));
    // movd xmm1, eax
    let t = t.done(&[0x66, 0x0f, 0x6e, 0xc8]);
    assert_eq!(t.cpu.vec[1], ymm(&[0x78, 0x56, 0x34, 0x12], &[0; 28], &[]));
    // vmovdqu ymm2, ymmword ptr [ebx]
    let t = t.done(&[0xc5, 0xfe, 0x6f, 0x13]);
    assert_eq!(t.cpu.vec[2], ymm(&mem_bytes(0, 32), &[], &[]));
    // vmovd xmm0, eax (VEX.W1 is ignored outside 64-bit mode: still 32 bits)
    let t = t.done(&[0xc4, 0xe1, 0xf9, 0x6e, 0xc0]);
    assert_eq!(t.cpu.vec[0], ymm(&[0x78, 0x56, 0x34, 0x12], &[0; 28], &[]));
    let mut t = T::real().reg(RBX, 0x100).reg(RSI, 0x10);
    t.cpu.vec[0] = [0x5a; 32];
    // movups xmmword ptr [bx+si], xmm0 (16-bit addressing)
    let t = t.done(&[0x0f, 0x11, 0x00]);
    assert_eq!(t.mem.peek(0x110, 16), vec![0x5a; 16]);
}

#[test]
fn encodings_rejected() {
    let invalid: &[&[u8]] = &[
        // movntps xmm1, xmm0 (register destination)
        &[0x0f, 0x2b, 0xc1],
        // movntdq xmm1, xmm0
        &[0x66, 0x0f, 0xe7, 0xc1],
        // vmovntps xmm1, xmm0
        &[0xc5, 0xf8, 0x2b, 0xc1],
        // vmovdqa xmm0, xmmword ptr [rbx] with vvvv = 1110b
        &[0xc5, 0xf1, 0x6f, 0x03],
        // vmovd xmm0, eax with VEX.L = 1
        &[0xc5, 0xfd, 0x6e, 0xc0],
        // vmovq xmm0, qword ptr [rbx] (F3 7E) with VEX.L = 1
        &[0xc5, 0xfe, 0x7e, 0x03],
        // 66 before VEX
        &[0x66, 0xc5, 0xf9, 0x6f, 0x03],
        // F3 before VEX
        &[0xf3, 0xc5, 0xf9, 0x6f, 0x03],
        // F0 before VEX
        &[0xf0, 0xc5, 0xf9, 0x6f, 0x03],
        // REX before VEX
        &[0x48, 0xc5, 0xf9, 0x6f, 0x03],
    ];
    for bytes in invalid {
        assert_eq!(
            harness::dec_err(bytes, CpuMode::Long64),
            DecodeErrorKind::Invalid,
            "{bytes:02x?}"
        );
    }
    let unsupported: &[&[u8]] = &[
        // movss xmm0, dword ptr [rbx]
        &[0xf3, 0x0f, 0x10, 0x03],
        // movsd xmm0, qword ptr [rbx]
        &[0xf2, 0x0f, 0x10, 0x03],
        // movq mm0, qword ptr [rbx] (MMX)
        &[0x0f, 0x6f, 0x03],
        // movd eax, mm0 (MMX)
        &[0x0f, 0x7e, 0xc0],
        // vbroadcastss xmm0, dword ptr [rbx] (map 0F 38)
        &[0xc4, 0xe2, 0x79, 0x18, 0x03],
        // vaddpd xmm0, xmm0, xmm1
        &[0xc5, 0xf9, 0x58, 0xc1],
    ];
    for bytes in unsupported {
        assert_eq!(
            harness::dec_err(bytes, CpuMode::Long64),
            DecodeErrorKind::Unsupported,
            "{bytes:02x?}"
        );
    }
    // lds eax, fword ptr [ebx] (C5 with mod != 11 outside 64-bit mode)
    assert_eq!(harness::dec_err(&[0xc5, 0x03], CpuMode::Protected32), DecodeErrorKind::Unsupported);
    // lds ax, dword ptr [bp+di] (real mode: never VEX)
    assert_eq!(harness::dec_err(&[0xc5, 0x03], CpuMode::Real), DecodeErrorKind::Unsupported);
    // lds di, cx: in real mode C5 F9 is not VEX, and LDS with a register
    // operand is #UD
    assert_eq!(harness::dec_err(&[0xc5, 0xf9], CpuMode::Real), DecodeErrorKind::Invalid);
    // les eax, fword ptr [ebx]
    assert_eq!(harness::dec_err(&[0xc4, 0x03], CpuMode::Protected32), DecodeErrorKind::Unsupported);
}

#[test]
fn alignment_gp() {
    let cases: &[(&[u8], u64)] = &[
        // movdqa xmm0, xmmword ptr [rbx]
        (&[0x66, 0x0f, 0x6f, 0x03], 0x2008),
        // movaps xmm0, xmmword ptr [rbx]
        (&[0x0f, 0x28, 0x03], 0x2001),
        // movapd xmm0, xmmword ptr [rbx]
        (&[0x66, 0x0f, 0x28, 0x03], 0x2004),
        // movaps xmmword ptr [rbx], xmm0
        (&[0x0f, 0x29, 0x03], 0x2008),
        // movdqa xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0x7f, 0x03], 0x200f),
        // movntps xmmword ptr [rbx], xmm0
        (&[0x0f, 0x2b, 0x03], 0x2008),
        // movntdq xmmword ptr [rbx], xmm0
        (&[0x66, 0x0f, 0xe7, 0x03], 0x2008),
        // vmovdqa xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xf9, 0x6f, 0x03], 0x2008),
        // vmovdqa ymm0, ymmword ptr [rbx] (16-byte aligned is not enough)
        (&[0xc5, 0xfd, 0x6f, 0x03], 0x2010),
        // vmovntdq ymmword ptr [rbx], ymm0
        (&[0xc5, 0xfd, 0xe7, 0x03], 0x2010),
    ];
    for (bytes, rbx) in cases {
        let t = setup().reg(RBX, *rbx).fault(bytes, Exception::Gp(0));
        assert_eq!(t.cpu.vec, setup().cpu.vec);
    }
    // Unaligned forms take any address; 128-bit VEX needs only 16 bytes.
    let ok: &[(&[u8], u64)] = &[
        // movdqu xmm0, xmmword ptr [rbx]
        (&[0xf3, 0x0f, 0x6f, 0x03], 0x2003),
        // movups xmmword ptr [rbx], xmm0
        (&[0x0f, 0x11, 0x03], 0x2003),
        // vmovdqu ymm0, ymmword ptr [rbx]
        (&[0xc5, 0xfe, 0x6f, 0x03], 0x2003),
        // movq xmm0, qword ptr [rbx]
        (&[0xf3, 0x0f, 0x7e, 0x03], 0x2003),
        // movd xmm0, dword ptr [rbx]
        (&[0x66, 0x0f, 0x6e, 0x03], 0x2001),
        // vmovdqa xmm0, xmmword ptr [rbx]
        (&[0xc5, 0xf9, 0x6f, 0x03], 0x2010),
    ];
    for (bytes, rbx) in ok {
        setup().reg(RBX, *rbx).done(bytes);
    }
}

#[test]
fn ud_and_nm() {
    // movdqa xmm0, xmmword ptr [rbx]
    const SSE: &[u8] = &[0x66, 0x0f, 0x6f, 0x03];
    // movd xmm0, eax
    const SSE_REG: &[u8] = &[0x66, 0x0f, 0x6e, 0xc0];
    // vmovdqa xmm0, xmmword ptr [rbx]
    const VEX128: &[u8] = &[0xc5, 0xf9, 0x6f, 0x03];
    // vmovdqa ymm0, ymmword ptr [rbx]
    const VEX256: &[u8] = &[0xc5, 0xfd, 0x6f, 0x03];
    for bytes in [SSE, SSE_REG] {
        // Without CR4.OSFXSR: #UD.
        setup().with(|c| c.cr4 &= !CR4_OSFXSR).fault(bytes, Exception::Ud);
        // With CR0.EM: #UD.
        setup().with(|c| c.cr0 |= CR0_EM).fault(bytes, Exception::Ud);
        // #UD wins over #NM.
        setup().with(|c| c.cr0 |= CR0_EM | CR0_TS).fault(bytes, Exception::Ud);
        // With CR0.TS: #NM.
        setup().with(|c| c.cr0 |= CR0_TS).fault(bytes, Exception::Nm);
        // #NM comes before a misaligned access's #GP.
        setup().reg(RBX, 0x2001).with(|c| c.cr0 |= CR0_TS).fault(bytes, Exception::Nm);
    }
    for bytes in [VEX128, VEX256] {
        // Without CR4.OSXSAVE: #UD.
        setup().with(|c| c.cr4 &= !CR4_OSXSAVE).fault(bytes, Exception::Ud);
        // XCR0 without AVX state: #UD.
        setup().with(|c| c.xcr0 = 3).fault(bytes, Exception::Ud);
        // XCR0 = x87 only: #UD.
        setup().with(|c| c.xcr0 = 1).fault(bytes, Exception::Ud);
        // With CR0.TS: #NM.
        setup().with(|c| c.cr0 |= CR0_TS).fault(bytes, Exception::Nm);
        // CR0.EM and CR4.OSFXSR do not apply to VEX encodings.
        setup()
            .with(|c| {
                c.cr0 |= CR0_EM;
                c.cr4 &= !CR4_OSFXSR;
            })
            .done(bytes);
    }
}
