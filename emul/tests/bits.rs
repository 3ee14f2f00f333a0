// SPDX-License-Identifier: GPL-2.0
//! The bit-test group: 0F A3/AB/B3/BB (register bit offset, which reaches
//! outside a memory operand) and 0F BA /4-/7 (imm8, taken modulo the
//! operand width), on registers and memory, in every operand size.

pub mod common;
pub mod harness;

use harness::*;
use vmm_emul::{CpuMode, DecodeErrorKind};

/// Flags that the bit tests keep (they change only CF).
const OTHERS: u64 = ZF | SF | OF | AF | PF;

#[test]
fn bit_ops_on_registers() {
    // (bytes, rax before, rcx, rax after, CF after)
    let cases: &[(&[u8], u64, u64, u64, bool)] = &[
        // bt eax, ecx
        (&[0x0f, 0xa3, 0xc8], 0x8000_0000, 31, 0x8000_0000, true),
        // bt eax, ecx (the offset is taken modulo 32)
        (&[0x0f, 0xa3, 0xc8], 0x8000_0000, 63, 0x8000_0000, true),
        // bt eax, ecx (bits 63:32 of rcx are not part of ecx)
        (&[0x0f, 0xa3, 0xc8], 0x20, 0xffff_ffff_0000_0005, 0x20, true),
        // bt rax, rcx
        (&[0x48, 0x0f, 0xa3, 0xc8], 0x8000_0000_0000_0000, 63, 0x8000_0000_0000_0000, true),
        // bt ax, cx
        (&[0x66, 0x0f, 0xa3, 0xc8], 0x8000, 0x1f, 0x8000, true),
        // bt eax, ecx
        (&[0x0f, 0xa3, 0xc8], 0xffff_fffe, 0, 0xffff_fffe, false),
        // bts eax, ecx (the 32-bit write zero-extends)
        (&[0x0f, 0xab, 0xc8], 0xffff_ffff_0000_0000, 4, 0x10, false),
        // bts rax, rcx
        (&[0x48, 0x0f, 0xab, 0xc8], 0x10, 0x44, 0x10, true),
        // btr eax, ecx
        (&[0x0f, 0xb3, 0xc8], 0xff, 0, 0xfe, true),
        // btr ax, cx
        (&[0x66, 0x0f, 0xb3, 0xc8], 0xffff_ffff_ffff_ffff, 0x10, 0xffff_ffff_ffff_fffe, true),
        // btc eax, ecx
        (&[0x0f, 0xbb, 0xc8], 0, 33, 2, false),
        // btc rax, rcx
        (&[0x48, 0x0f, 0xbb, 0xc8], 0x8000_0000_0000_0000, 0x7f, 0, true),
        // bt eax, 5
        (&[0x0f, 0xba, 0xe0, 0x05], 0x20, 0, 0x20, true),
        // bt eax, 0x25 (37 mod 32 = 5)
        (&[0x0f, 0xba, 0xe0, 0x25], 0x20, 0, 0x20, true),
        // bt rax, 0x3f
        (&[0x48, 0x0f, 0xba, 0xe0, 0x3f], 0x8000_0000_0000_0000, 0, 0x8000_0000_0000_0000, true),
        // bt ax, 0x1f (31 mod 16 = 15)
        (&[0x66, 0x0f, 0xba, 0xe0, 0x1f], 0x8000, 0, 0x8000, true),
        // bt eax, 0xff (255 mod 32 = 31)
        (&[0x0f, 0xba, 0xe0, 0xff], 0x8000_0000, 0, 0x8000_0000, true),
        // bts eax, 5
        (&[0x0f, 0xba, 0xe8, 0x05], 0, 0, 0x20, false),
        // btr eax, 5
        (&[0x0f, 0xba, 0xf0, 0x05], 0x21, 0, 0x01, true),
        // btc eax, 5
        (&[0x0f, 0xba, 0xf8, 0x05], 0x21, 0, 0x01, true),
        // btc eax, 5
        (&[0x0f, 0xba, 0xf8, 0x05], 0x01, 0, 0x21, false),
        // bts r9, 0x3f
        (&[0x49, 0x0f, 0xba, 0xe9, 0x3f], 0, 0, 0, false),
    ];
    for (bytes, a, c, r, cf) in cases {
        let flags_in = if *cf { OTHERS } else { OTHERS | CF };
        let t = T::long().reg(RAX, *a).reg(RCX, *c).flags(flags_in).done(bytes);
        t.rflags(OTHERS | if *cf { CF } else { 0 });
        if bytes.starts_with(&[0x49]) {
            t.regs(&[(R9, 0x8000_0000_0000_0000)]);
        } else {
            t.regs(&[(RAX, *r)]);
        }
    }
    // bt eax, <BA /0>
    assert_eq!(
        harness::dec_err(&[0x0f, 0xba, 0xc0, 0x05], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
    // <BA /3> dword ptr [rbx], 5
    assert_eq!(
        harness::dec_err(&[0x0f, 0xba, 0x1b, 0x05], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
}

#[test]
fn bit_ops_on_memory_with_register_offset() {
    // (bytes, rcx, address of the unit, value before, value after, CF, size)
    type Case = (&'static [u8], u64, u64, u64, u64, bool, usize);
    let cases: &[Case] = &[
        // bt dword ptr [rbx], ecx
        (&[0x0f, 0xa3, 0x0b], 35, 0x3004, 0x08, 0x08, true, 4),
        // bt dword ptr [rbx], ecx (ecx = -1: bit 31 of the dword below)
        (&[0x0f, 0xa3, 0x0b], 0xffff_ffff, 0x2ffc, 0x8000_0000, 0x8000_0000, true, 4),
        // bt dword ptr [rbx], ecx (-33: bit 31 two dwords below)
        (&[0x0f, 0xa3, 0x0b], 0xffff_ffdf, 0x2ff8, 0x7fff_ffff, 0x7fff_ffff, false, 4),
        // bts qword ptr [rbx], rcx
        (&[0x48, 0x0f, 0xab, 0x0b], 66, 0x3008, 0, 4, false, 8),
        // bts qword ptr [rbx], rcx (-65: bit 63 of [rbx-16])
        (&[0x48, 0x0f, 0xab, 0x0b], (-65i64) as u64, 0x2ff0, 0, 0x8000_0000_0000_0000, false, 8),
        // btr word ptr [rbx], cx (cx = -32768: [rbx-0x1000] bit 0)
        (&[0x66, 0x0f, 0xb3, 0x0b], 0x8000, 0x2000, 0xffff, 0xfffe, true, 2),
        // btr word ptr [rbx], cx
        (&[0x66, 0x0f, 0xb3, 0x0b], 17, 0x3002, 0x0002, 0x0000, true, 2),
        // btc dword ptr [rbx], ecx
        (&[0x0f, 0xbb, 0x0b], 0, 0x3000, 0x1, 0x0, true, 4),
        // btc dword ptr [rbx+4], ecx
        (&[0x0f, 0xbb, 0x4b, 0x04], 64, 0x300c, 0x0, 0x1, false, 4),
    ];
    for (bytes, c, la, before, after, cf, size) in cases {
        let t = T::long()
            .reg(RBX, 0x3000)
            .reg(RCX, *c)
            .mem(*la, *before, *size)
            .flags(if *cf { OTHERS } else { OTHERS | CF })
            .done(bytes);
        t.regs(&[]).at(*la, *size, *after).rflags(OTHERS | if *cf { CF } else { 0 });
        assert_eq!(t.read_las(), vec![*la], "{bytes:02x?}");
        let wrote = t.write_las();
        if bytes.windows(2).any(|w| w == [0x0f, 0xa3]) {
            assert!(wrote.is_empty(), "bt wrote: {wrote:x?}");
        } else {
            assert_eq!(wrote, vec![*la], "{bytes:02x?}");
        }
    }
}

#[test]
fn bit_ops_on_memory_with_immediate() {
    // (bytes, value before, value after, CF, size); the unit is [rbx]
    let cases: &[(&[u8], u64, u64, bool, usize)] = &[
        // bt dword ptr [rbx], 0x23 (35 mod 32 = 3: no displacement)
        (&[0x0f, 0xba, 0x23, 0x23], 0x08, 0x08, true, 4),
        // bts dword ptr [rbx], 7
        (&[0x0f, 0xba, 0x2b, 0x07], 0x00, 0x80, false, 4),
        // btr dword ptr [rbx], 7
        (&[0x0f, 0xba, 0x33, 0x07], 0xff, 0x7f, true, 4),
        // btc dword ptr [rbx], 7
        (&[0x0f, 0xba, 0x3b, 0x07], 0xff, 0x7f, true, 4),
        // bts word ptr [rbx], 0x1f
        (&[0x66, 0x0f, 0xba, 0x2b, 0x1f], 0x0000, 0x8000, false, 2),
        // btc qword ptr [rbx], 0x40
        (&[0x48, 0x0f, 0xba, 0x3b, 0x40], 0x0, 0x1, false, 8),
        // btr qword ptr [rbx], 0x3f
        (&[0x48, 0x0f, 0xba, 0x33, 0x3f], u64::MAX, 0x7fff_ffff_ffff_ffff, true, 8),
    ];
    for (bytes, before, after, cf, size) in cases {
        let t = T::long()
            .reg(RBX, 0x3000)
            .mem(0x3000, *before, *size)
            .flags(if *cf { OTHERS } else { OTHERS | CF })
            .done(bytes);
        t.regs(&[]).at(0x3000, *size, *after).rflags(OTHERS | if *cf { CF } else { 0 });
        assert_eq!(t.read_las(), vec![0x3000], "{bytes:02x?}");
    }
}

#[test]
fn bit_ops_16_and_32bit_modes() {
    // bt word ptr [bx], ax
    let t = T::real()
        .reg(RBX, 0x2000)
        .reg(RAX, 17)
        .mem(0x2002, 2, 2)
        .flags(0)
        .done(&[0x0f, 0xa3, 0x07]);
    t.rflags(CF);
    assert_eq!(t.read_las(), vec![0x2002]);
    // bts dword ptr [bx], eax
    let t =
        T::real().reg(RBX, 0x2000).reg(RAX, 0xffff_ffff).flags(0).done(&[0x66, 0x0f, 0xab, 0x07]);
    t.at(0x1ffc, 4, 0x8000_0000).rflags(0);
    // btr dword ptr [ebx], 3
    let t =
        T::prot32().reg(RBX, 0x2000).mem(0x2000, 0xf, 4).flags(0).done(&[0x0f, 0xba, 0x33, 0x03]);
    t.at(0x2000, 4, 0x7).rflags(CF);
    // btc word ptr [ebx], cx
    let t = T::prot32().reg(RBX, 0x2000).reg(RCX, 0x20).flags(0).done(&[0x66, 0x0f, 0xbb, 0x0b]);
    t.at(0x2004, 2, 1).rflags(0);
}
