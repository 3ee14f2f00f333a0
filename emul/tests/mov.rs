// SPDX-License-Identifier: GPL-2.0
//! Every `mov`-family form the decoder accepts (88-8C, A0-A3, B0-BF, C6/C7,
//! movzx/movsx/movsxd, movbe, movnti) and every addressing form (16-bit
//! ModRM, SIB, RIP-relative, 0x67), as byte strings.

pub mod common;
pub mod harness;

use harness::*;
use vmm_emul::{decode, CpuMode, DecodeErrorKind, Seg};

const V: u64 = 0x1122_3344_5566_7788;

// ----- 88 / 8A: byte moves, high-byte registers -----

#[test]
fn mov_88_store_byte_registers() {
    let cases: &[(&[u8], u64, u64)] = &[
        // mov byte ptr [rbx], al
        (&[0x88, 0x03], 0x2000, 0x88),
        // mov byte ptr [rbx+1], ah
        (&[0x88, 0x63, 0x01], 0x2001, 0x77),
        // mov byte ptr [rbx+1], spl
        (&[0x40, 0x88, 0x63, 0x01], 0x2001, 0xf4),
        // mov byte ptr [rbx+2], r8b
        (&[0x44, 0x88, 0x43, 0x02], 0x2002, 0x08),
        // mov byte ptr [rbx+3], bh
        (&[0x88, 0x7b, 0x03], 0x2003, 0x20),
        // mov byte ptr [rbx+3], dil
        (&[0x40, 0x88, 0x7b, 0x03], 0x2003, 0xd7),
        // mov byte ptr [rbx+4], ch
        (&[0x88, 0x6b, 0x04], 0x2004, 0xc1),
        // mov byte ptr [rbx+4], bpl
        (&[0x40, 0x88, 0x6b, 0x04], 0x2004, 0xb5),
        // mov byte ptr [rbx+5], dh
        (&[0x88, 0x73, 0x05], 0x2005, 0xd1),
        // mov byte ptr [rbx+5], sil
        (&[0x40, 0x88, 0x73, 0x05], 0x2005, 0x56),
        // mov byte ptr [rbx+6], r15b
        (&[0x44, 0x88, 0x7b, 0x06], 0x2006, 0xff),
    ];
    for (bytes, la, v) in cases {
        let t = T::long()
            .reg(RAX, V)
            .reg(RBX, 0x2000)
            .reg(RCX, 0xc1c2)
            .reg(RDX, 0xd1d2)
            .reg(RSP, 0x8ff4)
            .reg(RBP, 0xb5)
            .reg(RSI, 0x56)
            .reg(RDI, 0xd7)
            .reg(R8, 0x0708)
            .reg(R15, 0xeeff)
            .mem(0x2000, 0, 8)
            .done(bytes);
        t.regs(&[]).at(*la, 1, *v);
        assert_eq!(t.write_las(), vec![*la], "{bytes:02x?}");
    }
}

#[test]
fn mov_88_8a_register_to_register_bytes() {
    // (bytes, register, value after)
    let cases: &[(&[u8], usize, u64)] = &[
        // mov al, ah
        (&[0x88, 0xe0], RAX, 0x1122_3344_5566_7777),
        // mov al, spl
        (&[0x40, 0x88, 0xe0], RAX, 0x1122_3344_5566_7744),
        // mov ah, al
        (&[0x88, 0xc4], RAX, 0x1122_3344_5566_8888),
        // mov spl, al
        (&[0x40, 0x88, 0xc4], RSP, 0x4444_4444_4444_4488),
        // mov r15b, al
        (&[0x41, 0x88, 0xc7], R15, 0xf0f0_f0f0_f0f0_f088),
        // mov ah, bh
        (&[0x88, 0xfc], RAX, 0x1122_3344_5566_b388),
        // mov bh, ah
        (&[0x8a, 0xfc], RBX, 0xb3b3_b3b3_b3b3_77b3),
        // mov dil, spl
        (&[0x40, 0x8a, 0xfc], RDI, 0xd7d7_d7d7_d7d7_d744),
        // mov r12b, r9b
        (&[0x45, 0x8a, 0xe1], R12, 0x1212_1212_1212_1299),
        // mov ch, dh
        (&[0x8a, 0xee], RCX, 0xc1c1_c1c1_c1c1_d2c1),
    ];
    for (bytes, r, v) in cases {
        let t = T::long()
            .reg(RAX, V)
            .reg(RBX, 0xb3b3_b3b3_b3b3_b3b3)
            .reg(RCX, 0xc1c1_c1c1_c1c1_c1c1)
            .reg(RDX, 0xd2d2_d2d2_d2d2_d2d2)
            .reg(RSP, 0x4444_4444_4444_4444)
            .reg(RDI, 0xd7d7_d7d7_d7d7_d7d7)
            .reg(R9, 0x99)
            .reg(R12, 0x1212_1212_1212_1212)
            .reg(R15, 0xf0f0_f0f0_f0f0_f0f0)
            .done(bytes);
        t.regs(&[(*r, *v)]);
    }
}

#[test]
fn mov_8a_load_byte() {
    let cases: &[(&[u8], usize, u64)] = &[
        // mov al, byte ptr [rbx+8]
        (&[0x8a, 0x43, 0x08], RAX, 0xffff_ffff_ffff_ff5a),
        // mov bh, byte ptr [rbx+8]
        (&[0x8a, 0x7b, 0x08], RBX, 0x5a00),
        // mov dil, byte ptr [rbx+8]
        (&[0x40, 0x8a, 0x7b, 0x08], RDI, 0xffff_ffff_ffff_ff5a),
        // mov r11b, byte ptr [rbx+8]
        (&[0x44, 0x8a, 0x5b, 0x08], R11, 0xffff_ffff_ffff_ff5a),
    ];
    for (bytes, r, v) in cases {
        let t = T::long()
            .reg(RAX, u64::MAX)
            .reg(RBX, 0x2000)
            .reg(RDI, u64::MAX)
            .reg(R11, u64::MAX)
            .mem(0x2008, 0x5a, 1)
            .done(bytes);
        t.regs(&[(*r, *v)]);
    }
}

// ----- 89 / 8B: full-size moves -----

#[test]
fn mov_89_store_sizes() {
    let cases: &[(&[u8], u64)] = &[
        // mov dword ptr [rbx], eax
        (&[0x89, 0x03], 0xaaaa_aaaa_5566_7788),
        // mov word ptr [rbx], ax
        (&[0x66, 0x89, 0x03], 0xaaaa_aaaa_aaaa_7788),
        // mov qword ptr [rbx], rax
        (&[0x48, 0x89, 0x03], V),
        // mov qword ptr [rbx], r9
        (&[0x4c, 0x89, 0x0b], 0x9999),
        // mov word ptr [rbx], ax (REX.W after 66 wins)
        (&[0x66, 0x48, 0x89, 0x03], V),
    ];
    for (bytes, v) in cases {
        let t = T::long()
            .reg(RAX, V)
            .reg(RBX, 0x2000)
            .reg(R9, 0x9999)
            .mem(0x2000, 0xaaaa_aaaa_aaaa_aaaa, 8)
            .done(bytes);
        t.regs(&[]).at(0x2000, 8, *v);
    }
}

#[test]
fn mov_89_8b_register_writes_zero_extend_32_keep_16() {
    let cases: &[(&[u8], usize, u64)] = &[
        // mov ecx, eax
        (&[0x89, 0xc1], RCX, 0x5566_7788),
        // mov cx, ax
        (&[0x66, 0x89, 0xc1], RCX, 0xffff_ffff_ffff_7788),
        // mov rcx, r9
        (&[0x4c, 0x89, 0xc9], RCX, 0x9999),
        // mov r9d, ecx
        (&[0x41, 0x89, 0xc9], R9, 0xffff_ffff),
        // mov eax, ecx
        (&[0x8b, 0xc1], RAX, 0xffff_ffff),
        // mov ax, cx
        (&[0x66, 0x8b, 0xc1], RAX, 0x1122_3344_5566_ffff),
        // mov rax, rcx
        (&[0x48, 0x8b, 0xc1], RAX, u64::MAX),
    ];
    for (bytes, r, v) in cases {
        let t = T::long().reg(RAX, V).reg(RCX, u64::MAX).reg(R9, 0x9999).done(bytes);
        t.regs(&[(*r, *v)]);
    }
}

#[test]
fn mov_8b_load_sizes() {
    let cases: &[(&[u8], usize, u64)] = &[
        // mov eax, dword ptr [rbx+8]
        (&[0x8b, 0x43, 0x08], RAX, 0x5566_7788),
        // mov rax, qword ptr [rbx+8]
        (&[0x48, 0x8b, 0x43, 0x08], RAX, V),
        // mov ax, word ptr [rbx+8]
        (&[0x66, 0x8b, 0x43, 0x08], RAX, 0xffff_ffff_ffff_7788),
        // mov r8, qword ptr [rbx+8]
        (&[0x4c, 0x8b, 0x43, 0x08], R8, V),
        // mov r8d, dword ptr [r12]
        (&[0x45, 0x8b, 0x04, 0x24], R8, 0x5566_7788),
    ];
    for (bytes, r, v) in cases {
        let t = T::long()
            .reg(RAX, u64::MAX)
            .reg(RBX, 0x2000)
            .reg(R8, u64::MAX)
            .reg(R12, 0x2008)
            .mem(0x2008, V, 8)
            .done(bytes);
        t.regs(&[(*r, *v)]);
        assert_eq!(t.read_las(), vec![0x2008]);
    }
}

// ----- 8C: store segment register -----

#[test]
fn mov_8c_store_sreg() {
    let sel = |s: Seg| -> u16 {
        match s {
            Seg::Es => 0x10,
            Seg::Cs => 0x33,
            Seg::Ss => 0x2b,
            Seg::Ds => 0x18,
            Seg::Fs => 0x53,
            Seg::Gs => 0x63,
        }
    };
    let setup = || {
        T::long().reg(RAX, u64::MAX).reg(RBX, 0x2000).mem(0x2000, 0xaaaa_aaaa, 4).with(|c| {
            for s in [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs] {
                c.seg_mut(s).selector = sel(s);
            }
        })
    };
    // Memory: always 16 bits.
    let mem_cases: &[(&[u8], Seg)] = &[
        // mov word ptr [rbx], es
        (&[0x8c, 0x03], Seg::Es),
        // mov word ptr [rbx], cs
        (&[0x48, 0x8c, 0x0b], Seg::Cs),
        // mov word ptr [rbx], ss
        (&[0x8c, 0x13], Seg::Ss),
        // mov word ptr [rbx], ds
        (&[0x66, 0x8c, 0x1b], Seg::Ds),
        // mov word ptr [rbx], fs
        (&[0x8c, 0x23], Seg::Fs),
        // mov word ptr [rbx], gs
        (&[0x8c, 0x2b], Seg::Gs),
    ];
    for (bytes, s) in mem_cases {
        let t = setup().done(bytes);
        t.regs(&[]).at(0x2000, 4, 0xaaaa_0000 | u64::from(sel(*s)));
    }
    // Register: the operand size, zero-extended.
    let reg_cases: &[(&[u8], u64)] = &[
        // mov eax, ds
        (&[0x8c, 0xd8], 0x18),
        // mov ax, ds
        (&[0x66, 0x8c, 0xd8], 0xffff_ffff_ffff_0018),
        // mov rax, ds
        (&[0x48, 0x8c, 0xd8], 0x18),
        // mov eax, gs
        (&[0x8c, 0xe8], 0x63),
    ];
    for (bytes, v) in reg_cases {
        setup().done(bytes).regs(&[(RAX, *v)]);
    }
    // mov word ptr [rbx], <sreg 6>
    assert_eq!(harness::dec_err(&[0x8c, 0x33], CpuMode::Long64), DecodeErrorKind::Invalid);
    // mov eax, <sreg 7>
    assert_eq!(harness::dec_err(&[0x8c, 0xf8], CpuMode::Long64), DecodeErrorKind::Invalid);
}

#[test]
fn mov_8c_32bit_mode() {
    let t = T::prot32().reg(RAX, 0xffff_ffff).with(|c| c.seg_mut(Seg::Ss).selector = 0x10);
    // mov eax, ss
    let t = t.done(&[0x8c, 0xd0]);
    t.regs(&[(RAX, 0x10)]);
    let t = T::prot32().reg(RAX, 0xffff_ffff).with(|c| c.seg_mut(Seg::Ss).selector = 0x10);
    // mov ax, ss
    let t = t.done(&[0x66, 0x8c, 0xd0]);
    t.regs(&[(RAX, 0xffff_0010)]);
}

// ----- A0-A3: moffs -----

#[test]
fn mov_moffs_64bit_address() {
    let cases: &[(&[u8], usize, u64)] = &[
        // mov al, byte ptr [0x2000]
        (&[0xa0, 0x00, 0x20, 0, 0, 0, 0, 0, 0], RAX, 0xffff_ffff_ffff_ff88),
        // mov ax, word ptr [0x2000]
        (&[0x66, 0xa1, 0x00, 0x20, 0, 0, 0, 0, 0, 0], RAX, 0xffff_ffff_ffff_7788),
        // mov eax, dword ptr [0x2000]
        (&[0xa1, 0x00, 0x20, 0, 0, 0, 0, 0, 0], RAX, 0x5566_7788),
        // mov rax, qword ptr [0x2000]
        (&[0x48, 0xa1, 0x00, 0x20, 0, 0, 0, 0, 0, 0], RAX, V),
        // mov al, byte ptr [0x2000] (addr32)
        (&[0x67, 0xa0, 0x00, 0x20, 0, 0], RAX, 0xffff_ffff_ffff_ff88),
        // mov rax, qword ptr [0x2000] (addr32)
        (&[0x67, 0x48, 0xa1, 0x00, 0x20, 0, 0], RAX, V),
    ];
    for (bytes, r, v) in cases {
        let t = T::long().reg(RAX, u64::MAX).mem(0x2000, V, 8).done(bytes);
        t.regs(&[(*r, *v)]);
        assert_eq!(t.read_las(), vec![0x2000], "{bytes:02x?}");
    }
    // mov rax, qword ptr fs:[0x8]
    let t = T::long()
        .seg_base(Seg::Fs, 0x3000)
        .mem(0x3008, V, 8)
        .done(&[0x64, 0x48, 0xa1, 8, 0, 0, 0, 0, 0, 0, 0]);
    t.regs(&[(RAX, V)]);
    // mov al, byte ptr [0xffff800000002000]
    let t = T::long()
        .mem(0xffff_8000_0000_2000, 0x5a, 1)
        .done(&[0xa0, 0x00, 0x20, 0, 0, 0, 0x80, 0xff, 0xff]);
    t.regs(&[(RAX, 0x5a)]);
    let stores: &[(&[u8], u64)] = &[
        // mov byte ptr [0x2000], al
        (&[0xa2, 0x00, 0x20, 0, 0, 0, 0, 0, 0], 0xaaaa_aaaa_aaaa_aa88),
        // mov word ptr [0x2000], ax
        (&[0x66, 0xa3, 0x00, 0x20, 0, 0, 0, 0, 0, 0], 0xaaaa_aaaa_aaaa_7788),
        // mov dword ptr [0x2000], eax
        (&[0xa3, 0x00, 0x20, 0, 0, 0, 0, 0, 0], 0xaaaa_aaaa_5566_7788),
        // mov qword ptr [0x2000], rax
        (&[0x48, 0xa3, 0x00, 0x20, 0, 0, 0, 0, 0, 0], V),
        // mov dword ptr [0x2000], eax (addr32)
        (&[0x67, 0xa3, 0x00, 0x20, 0, 0], 0xaaaa_aaaa_5566_7788),
    ];
    for (bytes, v) in stores {
        let t = T::long().reg(RAX, V).mem(0x2000, 0xaaaa_aaaa_aaaa_aaaa, 8).done(bytes);
        t.regs(&[]).at(0x2000, 8, *v);
    }
}

#[test]
fn mov_moffs_32_and_16bit_modes() {
    // (mode, bytes, value in eAX after; eAX was 0xffffffff)
    let cases: &[(CpuMode, &[u8], u64)] = &[
        // mov eax, dword ptr [0x2000]
        (CpuMode::Protected32, &[0xa1, 0x00, 0x20, 0x00, 0x00], 0x5566_7788),
        // mov eax, dword ptr [0x2000] (addr16)
        (CpuMode::Protected32, &[0x67, 0xa1, 0x00, 0x20], 0x5566_7788),
        // mov ax, word ptr [0x2000]
        (CpuMode::Protected32, &[0x66, 0xa1, 0x00, 0x20, 0x00, 0x00], 0xffff_7788),
        // mov al, byte ptr [0x2000]
        (CpuMode::Protected32, &[0xa0, 0x00, 0x20, 0x00, 0x00], 0xffff_ff88),
        // mov ax, word ptr [0x2000]
        (CpuMode::Protected16, &[0xa1, 0x00, 0x20], 0xffff_7788),
        // mov eax, dword ptr [0x2000]
        (CpuMode::Protected16, &[0x66, 0xa1, 0x00, 0x20], 0x5566_7788),
        // mov ax, word ptr [0x2000] (addr32)
        (CpuMode::Protected16, &[0x67, 0xa1, 0x00, 0x20, 0x00, 0x00], 0xffff_7788),
        // mov al, byte ptr [0x2000]
        (CpuMode::Real, &[0xa0, 0x00, 0x20], 0xffff_ff88),
    ];
    for (mode, bytes, v) in cases {
        let cpu = match mode {
            CpuMode::Protected32 => T::prot32(),
            CpuMode::Protected16 => T::prot16(),
            _ => T::real(),
        };
        let t = cpu.reg(RAX, 0xffff_ffff).mem(0x2000, V, 8).done(bytes);
        t.regs(&[(RAX, *v)]);
        assert_eq!(t.read_las(), vec![0x2000], "{bytes:02x?}");
    }
    // Real mode: DS base 0x1000; ES override on a store.
    let t = T::real()
        .reg(RAX, 0x5a)
        .seg_base(Seg::Ds, 0x1000)
        .seg_base(Seg::Es, 0x2000)
        .mem(0x2234, 0x77, 1);
    // mov al, byte ptr [0x1234]
    let t = t.done(&[0xa0, 0x34, 0x12]);
    t.regs(&[(RAX, 0x77)]);
    assert_eq!(t.read_las(), vec![0x2234]);
    // mov byte ptr es:[0x1234], al
    let t = t.done(&[0x26, 0xa2, 0x34, 0x12]);
    t.at(0x3234, 1, 0x77);
    // mov byte ptr [0x1234], al
    let t = T::prot16().reg(RAX, 0x42).done(&[0xa2, 0x34, 0x12]);
    t.at(0x1234, 1, 0x42);
}

// ----- B0-BF: mov reg, imm -----

#[test]
fn mov_b0_bf_immediates_64bit() {
    let cases: &[(&[u8], usize, u64)] = &[
        // mov al, 0x7f
        (&[0xb0, 0x7f], RAX, 0xffff_ffff_ffff_ff7f),
        // mov cl, 0x01
        (&[0xb1, 0x01], RCX, 0xffff_ffff_ffff_ff01),
        // mov dl, 0x02
        (&[0xb2, 0x02], RDX, 0xffff_ffff_ffff_ff02),
        // mov bl, 0x56
        (&[0xb3, 0x56], RBX, 0xffff_ffff_ffff_ff56),
        // mov ah, 0x12
        (&[0xb4, 0x12], RAX, 0xffff_ffff_ffff_12ff),
        // mov spl, 0x12
        (&[0x40, 0xb4, 0x12], RSP, 0xffff_ffff_ffff_ff12),
        // mov ch, 0x34
        (&[0xb5, 0x34], RCX, 0xffff_ffff_ffff_34ff),
        // mov bpl, 0x34
        (&[0x40, 0xb5, 0x34], RBP, 0xffff_ffff_ffff_ff34),
        // mov dh, 0x56
        (&[0xb6, 0x56], RDX, 0xffff_ffff_ffff_56ff),
        // mov sil, 0x56
        (&[0x40, 0xb6, 0x56], RSI, 0xffff_ffff_ffff_ff56),
        // mov bh, 0x34
        (&[0xb7, 0x34], RBX, 0xffff_ffff_ffff_34ff),
        // mov dil, 0x34
        (&[0x40, 0xb7, 0x34], RDI, 0xffff_ffff_ffff_ff34),
        // mov r8b, 0x12
        (&[0x41, 0xb0, 0x12], R8, 0xffff_ffff_ffff_ff12),
        // mov r15b, 0x12
        (&[0x41, 0xb7, 0x12], R15, 0xffff_ffff_ffff_ff12),
        // mov al, 0x80 (REX.W is ignored for the byte form)
        (&[0x48, 0xb0, 0x80], RAX, 0xffff_ffff_ffff_ff80),
        // mov eax, 0x12345678
        (&[0xb8, 0x78, 0x56, 0x34, 0x12], RAX, 0x1234_5678),
        // mov ax, 0x1234
        (&[0x66, 0xb8, 0x34, 0x12], RAX, 0xffff_ffff_ffff_1234),
        // mov ecx, 0x80000000
        (&[0xb9, 0x00, 0x00, 0x00, 0x80], RCX, 0x8000_0000),
        // mov edx, 1
        (&[0xba, 0x01, 0x00, 0x00, 0x00], RDX, 1),
        // mov ebx, 2
        (&[0xbb, 0x02, 0x00, 0x00, 0x00], RBX, 2),
        // mov esp, 3
        (&[0xbc, 0x03, 0x00, 0x00, 0x00], RSP, 3),
        // mov ebp, 4
        (&[0xbd, 0x04, 0x00, 0x00, 0x00], RBP, 4),
        // mov esi, 5
        (&[0xbe, 0x05, 0x00, 0x00, 0x00], RSI, 5),
        // mov edi, 6
        (&[0xbf, 0x06, 0x00, 0x00, 0x00], RDI, 6),
        // mov rax, 0x1122334455667788
        (&[0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], RAX, V),
        // mov rax, 0x8000000000000000
        (&[0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80], RAX, 0x8000_0000_0000_0000),
        // mov r15, 0x00000000ffffffff
        (&[0x49, 0xbf, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], R15, 0xffff_ffff),
        // mov r15d, 0xffffffff
        (&[0x41, 0xbf, 0xff, 0xff, 0xff, 0xff], R15, 0xffff_ffff),
        // mov r9w, 0x8000
        (&[0x66, 0x41, 0xb9, 0x00, 0x80], R9, 0xffff_ffff_ffff_8000),
    ];
    for (bytes, r, v) in cases {
        let mut t = T::long();
        t.cpu.gpr = [u64::MAX; 16];
        t.done(bytes).regs(&[(*r, *v)]);
    }
}

#[test]
fn mov_b8_immediates_legacy_modes() {
    // mov eax, 0x12345678
    let t = T::prot32().reg(RAX, 0xffff_ffff).done(&[0xb8, 0x78, 0x56, 0x34, 0x12]);
    t.regs(&[(RAX, 0x1234_5678)]);
    // mov ax, 0x1234
    let t = T::prot32().reg(RAX, 0xffff_ffff).done(&[0x66, 0xb8, 0x34, 0x12]);
    t.regs(&[(RAX, 0xffff_1234)]);
    // mov ax, 0x1234
    let t = T::prot16().reg(RAX, 0xffff_ffff).done(&[0xb8, 0x34, 0x12]);
    t.regs(&[(RAX, 0xffff_1234)]);
    // mov eax, 0x12345678
    let t = T::real().reg(RAX, 0xffff_ffff).done(&[0x66, 0xb8, 0x78, 0x56, 0x34, 0x12]);
    t.regs(&[(RAX, 0x1234_5678)]);
    // mov sp, 0x1234 (0x44 is `inc sp` outside 64-bit mode, so no REX here)
    let t = T::real().reg(RSP, 0xffff_ffff).done(&[0xbc, 0x34, 0x12]);
    t.regs(&[(RSP, 0xffff_1234)]);
}

// ----- C6 / C7: mov r/m, imm -----

#[test]
fn mov_c6_c7_immediates() {
    let mem_cases: &[(&[u8], u64, u64)] = &[
        // mov byte ptr [rbx], 0xab
        (&[0xc6, 0x03, 0xab], 0x2000, 0xaaaa_aaaa_aaaa_aaab),
        // mov byte ptr [rbx+8], 0xab
        (&[0xc6, 0x43, 0x08, 0xab], 0x2008, 0xaaaa_aaaa_aaaa_aaab),
        // mov dword ptr [rbx], 0x12345678
        (&[0xc7, 0x03, 0x78, 0x56, 0x34, 0x12], 0x2000, 0xaaaa_aaaa_1234_5678),
        // mov word ptr [rbx], 0x1234
        (&[0x66, 0xc7, 0x03, 0x34, 0x12], 0x2000, 0xaaaa_aaaa_aaaa_1234),
        // mov qword ptr [rbx], 0xffffffff80000000
        (&[0x48, 0xc7, 0x03, 0x00, 0x00, 0x00, 0x80], 0x2000, 0xffff_ffff_8000_0000),
        // mov qword ptr [rbx], 0x7fffffff
        (&[0x48, 0xc7, 0x03, 0xff, 0xff, 0xff, 0x7f], 0x2000, 0x7fff_ffff),
        // mov dword ptr [rip+0x10], 0x12345678
        (
            &[0xc7, 0x05, 0x10, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12],
            0x101a,
            0xaaaa_aaaa_1234_5678,
        ),
        // mov byte ptr [rip-1], 0xab
        (&[0xc6, 0x05, 0xff, 0xff, 0xff, 0xff, 0xab], 0x1006, 0xaaaa_aaaa_aaaa_aaab),
    ];
    for (bytes, la, v) in mem_cases {
        let t = T::long().reg(RBX, 0x2000).mem(*la, 0xaaaa_aaaa_aaaa_aaaa, 8).done(bytes);
        t.regs(&[]).at(*la, 8, *v);
        assert_eq!(t.write_las(), vec![*la]);
    }
    let reg_cases: &[(&[u8], usize, u64)] = &[
        // mov ah, 0xab
        (&[0xc6, 0xc4, 0xab], RAX, 0xffff_ffff_ffff_abff),
        // mov spl, 0xab
        (&[0x40, 0xc6, 0xc4, 0xab], RSP, 0xffff_ffff_ffff_ffab),
        // mov rax, -1
        (&[0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff], RAX, u64::MAX),
        // mov eax, 0xffffffff
        (&[0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff], RAX, 0xffff_ffff),
        // mov r10w, 0x8000
        (&[0x66, 0x41, 0xc7, 0xc2, 0x00, 0x80], R10, 0xffff_ffff_ffff_8000),
    ];
    for (bytes, r, v) in reg_cases {
        let mut t = T::long();
        t.cpu.gpr = [u64::MAX; 16];
        t.done(bytes).regs(&[(*r, *v)]);
    }
    // mov byte ptr [rax+8], <reg 1> (C6 /1)
    assert_eq!(
        harness::dec_err(&[0xc6, 0x48, 0x08, 0x00], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
    // mov dword ptr [rax], <reg 3> (C7 /3)
    assert_eq!(
        harness::dec_err(&[0xc7, 0x18, 0, 0, 0, 0], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
    // xabort 0
    assert_eq!(
        harness::dec_err(&[0xc6, 0xf8, 0x00], CpuMode::Long64),
        DecodeErrorKind::Unsupported
    );
    // xbegin +0
    assert_eq!(
        harness::dec_err(&[0xc7, 0xf8, 0, 0, 0, 0], CpuMode::Long64),
        DecodeErrorKind::Unsupported
    );
}

#[test]
fn mov_c7_16bit_mode() {
    // mov word ptr [bx+2], 0x1234
    let t = T::real().reg(RBX, 0x2000).done(&[0xc7, 0x47, 0x02, 0x34, 0x12]);
    t.at(0x2002, 2, 0x1234);
    // mov dword ptr [bx+2], 0x12345678
    let t = T::real().reg(RBX, 0x2000).done(&[0x66, 0xc7, 0x47, 0x02, 0x78, 0x56, 0x34, 0x12]);
    t.at(0x2002, 4, 0x1234_5678);
}

// ----- movzx / movsx / movsxd -----

#[test]
fn movzx_movsx_forms() {
    let cases: &[(&[u8], u64)] = &[
        // movzx eax, byte ptr [rbx]
        (&[0x0f, 0xb6, 0x03], 0x80),
        // movzx rax, byte ptr [rbx]
        (&[0x48, 0x0f, 0xb6, 0x03], 0x80),
        // movzx ax, byte ptr [rbx]
        (&[0x66, 0x0f, 0xb6, 0x03], 0x1111_1111_1111_0080),
        // movzx eax, ah
        (&[0x0f, 0xb6, 0xc4], 0x11),
        // movzx eax, spl
        (&[0x40, 0x0f, 0xb6, 0xc4], 0x44),
        // movzx eax, word ptr [rbx]
        (&[0x0f, 0xb7, 0x03], 0x8180),
        // movzx rax, word ptr [rbx]
        (&[0x48, 0x0f, 0xb7, 0x03], 0x8180),
        // movzx eax, cx
        (&[0x0f, 0xb7, 0xc1], 0xf0f1),
        // movsx eax, byte ptr [rbx]
        (&[0x0f, 0xbe, 0x03], 0xffff_ff80),
        // movsx rax, byte ptr [rbx]
        (&[0x48, 0x0f, 0xbe, 0x03], 0xffff_ffff_ffff_ff80),
        // movsx ax, byte ptr [rbx]
        (&[0x66, 0x0f, 0xbe, 0x03], 0x1111_1111_1111_ff80),
        // movsx eax, bh
        (&[0x0f, 0xbe, 0xc7], 0xffff_ffb0),
        // movsx eax, dil
        (&[0x40, 0x0f, 0xbe, 0xc7], 0x7f),
        // movsx eax, word ptr [rbx]
        (&[0x0f, 0xbf, 0x03], 0xffff_8180),
        // movsx rax, word ptr [rbx]
        (&[0x48, 0x0f, 0xbf, 0x03], 0xffff_ffff_ffff_8180),
        // movsx rax, cx
        (&[0x48, 0x0f, 0xbf, 0xc1], 0xffff_ffff_ffff_f0f1),
        // movsxd rax, dword ptr [rbx]
        (&[0x48, 0x63, 0x03], 0xffff_ffff_8382_8180),
        // movsxd eax, dword ptr [rbx]
        (&[0x63, 0x03], 0x8382_8180),
        // movsxd ax, word ptr [rbx]
        (&[0x66, 0x63, 0x03], 0x1111_1111_1111_8180),
        // movsxd rax, ecx
        (&[0x48, 0x63, 0xc1], 0xffff_ffff_f2f3_f0f1),
        // movsxd rax, r9d
        (&[0x49, 0x63, 0xc1], 0x7fff_ffff),
    ];
    for (bytes, v) in cases {
        // rbx = 0xb000, so bh = 0xb0.
        let t = T::long()
            .reg(RAX, 0x1111_1111_1111_1111)
            .reg(RBX, 0xb000)
            .reg(RCX, 0xffff_ffff_f2f3_f0f1)
            .reg(RSP, 0x44)
            .reg(RDI, 0x7f)
            .reg(R9, 0x7fff_ffff)
            .mem(0xb000, 0x8382_8180, 4)
            .done(bytes);
        t.regs(&[(RAX, *v)]);
    }
    // 63 outside 64-bit mode is arpl.
    // arpl word ptr [ebx], ax
    assert_eq!(harness::dec_err(&[0x63, 0x03], CpuMode::Protected32), DecodeErrorKind::Unsupported);
}

#[test]
fn movzx_16bit_mode() {
    // movzx ax, byte ptr [bx]
    let t = T::real()
        .reg(RAX, 0xffff_ffff)
        .reg(RBX, 0x2000)
        .mem(0x2000, 0x80, 1)
        .done(&[0x0f, 0xb6, 0x07]);
    t.regs(&[(RAX, 0xffff_0080)]);
    // movsx eax, byte ptr [bx]
    let t =
        T::real().reg(RAX, 0).reg(RBX, 0x2000).mem(0x2000, 0x80, 1).done(&[0x66, 0x0f, 0xbe, 0x07]);
    t.regs(&[(RAX, 0xffff_ff80)]);
}

// ----- movbe / movnti -----

#[test]
fn movbe_forms() {
    let loads: &[(&[u8], u64)] = &[
        // movbe eax, dword ptr [rbx]
        (&[0x0f, 0x38, 0xf0, 0x03], 0x8877_6655),
        // movbe rax, qword ptr [rbx]
        (&[0x48, 0x0f, 0x38, 0xf0, 0x03], 0x8877_6655_4433_2211),
        // movbe ax, word ptr [rbx]
        (&[0x66, 0x0f, 0x38, 0xf0, 0x03], 0xffff_ffff_ffff_8877),
    ];
    for (bytes, v) in loads {
        let t = T::long().reg(RAX, u64::MAX).reg(RBX, 0x2000).mem(0x2000, V, 8).done(bytes);
        t.regs(&[(RAX, *v)]);
    }
    let stores: &[(&[u8], u64)] = &[
        // movbe dword ptr [rbx], eax
        (&[0x0f, 0x38, 0xf1, 0x03], 0xaaaa_aaaa_8877_6655),
        // movbe qword ptr [rbx], rax
        (&[0x48, 0x0f, 0x38, 0xf1, 0x03], 0x8877_6655_4433_2211),
        // movbe word ptr [rbx], ax
        (&[0x66, 0x0f, 0x38, 0xf1, 0x03], 0xaaaa_aaaa_aaaa_8877),
    ];
    for (bytes, v) in stores {
        let t = T::long()
            .reg(RAX, V)
            .reg(RBX, 0x2000)
            .mem(0x2000, 0xaaaa_aaaa_aaaa_aaaa, 8)
            .done(bytes);
        t.regs(&[]).at(0x2000, 8, *v);
    }
    // movbe eax, eax (register form)
    assert_eq!(
        harness::dec_err(&[0x0f, 0x38, 0xf0, 0xc0], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
    // crc32 eax, al
    assert_eq!(
        harness::dec_err(&[0xf2, 0x0f, 0x38, 0xf0, 0xc0], CpuMode::Long64),
        DecodeErrorKind::Unsupported
    );
    // movbe eax, dword ptr [ebx]
    let t =
        T::prot32().reg(RBX, 0x2000).mem(0x2000, 0x1122_3344, 4).done(&[0x0f, 0x38, 0xf0, 0x03]);
    t.regs(&[(RAX, 0x4433_2211)]);
}

#[test]
fn movnti_forms() {
    // movnti dword ptr [rbx], eax
    let t =
        T::long().reg(RAX, V).reg(RBX, 0x2000).mem(0x2000, u64::MAX, 8).done(&[0x0f, 0xc3, 0x03]);
    t.regs(&[]).at(0x2000, 8, 0xffff_ffff_5566_7788);
    // movnti qword ptr [rbx], rax
    let t = T::long().reg(RAX, V).reg(RBX, 0x2000).done(&[0x48, 0x0f, 0xc3, 0x03]);
    t.at(0x2000, 8, V);
    // movnti eax, eax
    assert_eq!(harness::dec_err(&[0x0f, 0xc3, 0xc0], CpuMode::Long64), DecodeErrorKind::Invalid);
    // movnti with 66
    assert_eq!(
        harness::dec_err(&[0x66, 0x0f, 0xc3, 0x03], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
    // movnti with F3
    assert_eq!(
        harness::dec_err(&[0xf3, 0x0f, 0xc3, 0x03], CpuMode::Long64),
        DecodeErrorKind::Invalid
    );
}

// ----- addressing forms -----

/// Runs a load whose only memory read must be at `la`.
fn load_at(mut t: T, bytes: &[u8], la: u64) {
    t.mem.poke_u64(la, 0x5a5a_1234, 4);
    let t = t.done(bytes);
    assert_eq!(t.read_las(), vec![la], "{bytes:02x?} in {:?}", t.mode);
    assert_eq!(t.gpr(RAX) & 0xffff, 0x1234, "{bytes:02x?}");
}

#[test]
fn addressing_64bit_sib_and_rip_relative() {
    let base = || {
        T::long()
            .reg(RBX, 0x2000)
            .reg(RCX, 0x10)
            .reg(RSP, 0x3000)
            .reg(RBP, 0x4000)
            .reg(R12, 0x5000)
            .reg(R13, 0x6000)
    };
    let cases: &[(&[u8], u64)] = &[
        // mov eax, dword ptr [rbx]
        (&[0x8b, 0x03], 0x2000),
        // mov eax, dword ptr [rsp]
        (&[0x8b, 0x04, 0x24], 0x3000),
        // mov eax, dword ptr [rsp+8]
        (&[0x8b, 0x44, 0x24, 0x08], 0x3008),
        // mov eax, dword ptr [rbp+0]
        (&[0x8b, 0x45, 0x00], 0x4000),
        // mov eax, dword ptr [rbx+rcx]
        (&[0x8b, 0x04, 0x0b], 0x2010),
        // mov eax, dword ptr [rbx+rcx*2]
        (&[0x8b, 0x04, 0x4b], 0x2020),
        // mov eax, dword ptr [rbx+rcx*4]
        (&[0x8b, 0x04, 0x8b], 0x2040),
        // mov eax, dword ptr [rbx+rcx*8]
        (&[0x8b, 0x04, 0xcb], 0x2080),
        // mov eax, dword ptr [rbx+rcx*8-0x80]
        (&[0x8b, 0x44, 0xcb, 0x80], 0x2000),
        // mov eax, dword ptr [rbx+rcx*2+0x100]
        (&[0x8b, 0x84, 0x4b, 0x00, 0x01, 0x00, 0x00], 0x2120),
        // mov eax, dword ptr [0x2000]
        (&[0x8b, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00], 0x2000),
        // mov eax, dword ptr [rcx*4+0x2000]
        (&[0x8b, 0x04, 0x8d, 0x00, 0x20, 0x00, 0x00], 0x2040),
        // mov eax, dword ptr [rbp+rcx*1+0] (SIB base 101 with mod 01)
        (&[0x8b, 0x44, 0x0d, 0x00], 0x4010),
        // mov eax, dword ptr [rbx] (SIB index 100: none, scale ignored)
        (&[0x8b, 0x04, 0xe3], 0x2000),
        // mov eax, dword ptr [rbx+r12*4]
        (&[0x42, 0x8b, 0x04, 0xa3], 0x16000),
        // mov eax, dword ptr [r12]
        (&[0x41, 0x8b, 0x04, 0x24], 0x5000),
        // mov eax, dword ptr [r13+0]
        (&[0x41, 0x8b, 0x45, 0x00], 0x6000),
        // mov eax, dword ptr [r13+r12*1+0]
        (&[0x43, 0x8b, 0x44, 0x25, 0x00], 0xb000),
        // mov eax, dword ptr [0x2000] (SIB base 101, mod 00: REX.B does not make it r13)
        (&[0x41, 0x8b, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00], 0x2000),
        // mov eax, dword ptr [rbx-8]
        (&[0x8b, 0x43, 0xf8], 0x1ff8),
        // mov eax, dword ptr [rbx-0x80000000]
        (&[0x8b, 0x83, 0x00, 0x00, 0x00, 0x80], 0xffff_ffff_8000_2000),
        // mov eax, dword ptr [rip+0xff0]
        (&[0x8b, 0x05, 0xf0, 0x0f, 0x00, 0x00], 0x1ff6),
        // mov eax, dword ptr [rip-0x1000]
        (&[0x8b, 0x05, 0x00, 0xf0, 0xff, 0xff], 0x6),
        // mov eax, dword ptr [rip+0x10] (REX.B does not change RIP-relative)
        (&[0x41, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00], 0x1017),
        // mov r8d, dword ptr [rip+0x10]... the destination is r8, the load address the same
        (&[0x44, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00], 0x1017),
    ];
    for (bytes, la) in cases {
        if bytes.first() == Some(&0x44) {
            let mut t = base();
            t.mem.poke_u64(*la, 0x1234, 4);
            let t = t.done(bytes);
            assert_eq!(t.read_las(), vec![*la]);
            t.regs(&[(R8, 0x1234)]);
        } else {
            load_at(base(), bytes, *la);
        }
    }
}

#[test]
fn addressing_64bit_addr32() {
    // mov eax, dword ptr [ebx]
    load_at(T::long().reg(RBX, 0xffff_ffff_0000_2000), &[0x67, 0x8b, 0x03], 0x2000);
    // mov eax, dword ptr [ebx+0x10] (wraps at 4 GiB)
    load_at(T::long().reg(RBX, 0xffff_fff8), &[0x67, 0x8b, 0x43, 0x10], 0x8);
    // mov eax, dword ptr [ebx+ecx*4]
    load_at(T::long().reg(RBX, 0x2000).reg(RCX, 0x1_0000_0001), &[0x67, 0x8b, 0x04, 0x8b], 0x2004);
    // mov eax, dword ptr [eip+0]
    let t = T::long().with(|c| c.rip = 0x1_0000_1000);
    load_at(t, &[0x67, 0x8b, 0x05, 0x00, 0x00, 0x00, 0x00], 0x1007);
    // mov eax, dword ptr [r8d]
    load_at(T::long().reg(R8, 0x7_0000_3000), &[0x67, 0x41, 0x8b, 0x00], 0x3000);
}

#[test]
fn addressing_32bit_default_segments() {
    let base = || {
        T::prot32()
            .reg(RBX, 0x2000)
            .reg(RCX, 0x10)
            .reg(RSP, 0x3000)
            .reg(RBP, 0x4000)
            .seg_base(Seg::Ss, 0x10_0000)
            .seg_base(Seg::Es, 0x20_0000)
            .seg_base(Seg::Fs, 0x30_0000)
    };
    let cases: &[(&[u8], u64)] = &[
        // mov eax, dword ptr [ebx]
        (&[0x8b, 0x03], 0x2000),
        // mov eax, dword ptr [ebp+8]
        (&[0x8b, 0x45, 0x08], 0x10_4008),
        // mov eax, dword ptr [esp]
        (&[0x8b, 0x04, 0x24], 0x10_3000),
        // mov eax, dword ptr [ebx+ebp*1]
        (&[0x8b, 0x04, 0x2b], 0x6000),
        // mov eax, dword ptr [ebp+ebx*1+0]
        (&[0x8b, 0x44, 0x1d, 0x00], 0x10_6000),
        // mov eax, dword ptr [ebx*1+0x2000]
        (&[0x8b, 0x04, 0x1d, 0x00, 0x20, 0x00, 0x00], 0x4000),
        // mov eax, dword ptr [0x2000] (mod 00 rm 101: disp32, no RIP-relative outside 64-bit mode)
        (&[0x8b, 0x05, 0x00, 0x20, 0x00, 0x00], 0x2000),
        // mov eax, dword ptr es:[ebp+8]
        (&[0x26, 0x8b, 0x45, 0x08], 0x20_4008),
        // mov eax, dword ptr ds:[esp]
        (&[0x3e, 0x8b, 0x04, 0x24], 0x3000),
        // mov eax, dword ptr fs:[ebx]
        (&[0x64, 0x8b, 0x03], 0x30_2000),
        // mov eax, dword ptr ss:[ebx] (the last override counts)
        (&[0x64, 0x36, 0x8b, 0x03], 0x10_2000),
        // mov eax, dword ptr [bx]
        (&[0x67, 0x8b, 0x07], 0x2000),
        // mov eax, dword ptr [bp+si]
        (&[0x67, 0x8b, 0x02], 0x10_4000),
    ];
    for (bytes, la) in cases {
        load_at(base(), bytes, *la);
    }
}

#[test]
fn addressing_64bit_ignores_legacy_overrides() {
    let base =
        || T::long().reg(RBX, 0x2000).seg_base(Seg::Ds, 0x10_0000).seg_base(Seg::Es, 0x20_0000);
    // mov eax, dword ptr es:[rbx] (ignored: the base of ES does not apply)
    load_at(base(), &[0x26, 0x8b, 0x03], 0x2000);
    // mov eax, dword ptr cs:[rbx]
    load_at(base(), &[0x2e, 0x8b, 0x03], 0x2000);
    // mov eax, dword ptr gs:[rbx]
    load_at(base().seg_base(Seg::Gs, 0x50_0000), &[0x65, 0x8b, 0x03], 0x50_2000);
    // mov eax, dword ptr fs:[rbx]
    load_at(
        base().seg_base(Seg::Fs, 0xffff_8000_0000_0000),
        &[0x64, 0x8b, 0x03],
        0xffff_8000_0000_2000,
    );
    // A REX before a prefix is dropped: 48 2e 8b 03 is `cs mov eax, [rbx]`, 32-bit.
    let insn = decode(&[0x48, 0x2e, 0x8b, 0x03], CpuMode::Long64).unwrap();
    assert_eq!(insn.op_size, 4);
    assert_eq!(insn.rex, 0);
}

#[test]
fn addressing_16bit_modrm_forms() {
    // DS base 0x10000, SS base 0x20000; bx=0x100 si=0x20 di=0x30 bp=0x400.
    let base = || {
        T::real()
            .reg(RBX, 0x100)
            .reg(RSI, 0x20)
            .reg(RDI, 0x30)
            .reg(RBP, 0x400)
            .seg_base(Seg::Ds, 0x1_0000)
            .seg_base(Seg::Ss, 0x2_0000)
            .seg_base(Seg::Es, 0x3_0000)
    };
    let cases: &[(&[u8], u64)] = &[
        // mov ax, word ptr [bx+si]
        (&[0x8b, 0x00], 0x1_0120),
        // mov ax, word ptr [bx+di]
        (&[0x8b, 0x01], 0x1_0130),
        // mov ax, word ptr [bp+si]
        (&[0x8b, 0x02], 0x2_0420),
        // mov ax, word ptr [bp+di]
        (&[0x8b, 0x03], 0x2_0430),
        // mov ax, word ptr [si]
        (&[0x8b, 0x04], 0x1_0020),
        // mov ax, word ptr [di]
        (&[0x8b, 0x05], 0x1_0030),
        // mov ax, word ptr [0x1234]
        (&[0x8b, 0x06, 0x34, 0x12], 0x1_1234),
        // mov ax, word ptr [bx]
        (&[0x8b, 0x07], 0x1_0100),
        // mov ax, word ptr [bx+si+0x10]
        (&[0x8b, 0x40, 0x10], 0x1_0130),
        // mov ax, word ptr [bx+di-1]
        (&[0x8b, 0x41, 0xff], 0x1_012f),
        // mov ax, word ptr [bp+si+0x10]
        (&[0x8b, 0x42, 0x10], 0x2_0430),
        // mov ax, word ptr [bp+di+0x10]
        (&[0x8b, 0x43, 0x10], 0x2_0440),
        // mov ax, word ptr [si+0x10]
        (&[0x8b, 0x44, 0x10], 0x1_0030),
        // mov ax, word ptr [di+0x10]
        (&[0x8b, 0x45, 0x10], 0x1_0040),
        // mov ax, word ptr [bp+0x10]
        (&[0x8b, 0x46, 0x10], 0x2_0410),
        // mov ax, word ptr [bp-0x10]
        (&[0x8b, 0x46, 0xf0], 0x2_03f0),
        // mov ax, word ptr [bx-1]
        (&[0x8b, 0x47, 0xff], 0x1_00ff),
        // mov ax, word ptr [bx+si+0x1000]
        (&[0x8b, 0x80, 0x00, 0x10], 0x1_1120),
        // mov ax, word ptr [bp+di+0x1000]
        (&[0x8b, 0x83, 0x00, 0x10], 0x2_1430),
        // mov ax, word ptr [bp+0x100]
        (&[0x8b, 0x86, 0x00, 0x01], 0x2_0500),
        // mov ax, word ptr [bx+0x8000]
        (&[0x8b, 0x87, 0x00, 0x80], 0x1_8100),
        // mov ax, word ptr [bx-0x200] (disp16 wraps: 0x100 - 0x200 = 0xff00)
        (&[0x8b, 0x87, 0x00, 0xfe], 0x1_ff00),
        // mov ax, word ptr ds:[bp+0x10]
        (&[0x3e, 0x8b, 0x46, 0x10], 0x1_0410),
        // mov ax, word ptr es:[bx]
        (&[0x26, 0x8b, 0x07], 0x3_0100),
        // mov ax, word ptr ss:[bx]
        (&[0x36, 0x8b, 0x07], 0x2_0100),
        // mov ax, word ptr [ebx] (addr32)
        (&[0x67, 0x8b, 0x03], 0x1_0100),
        // mov ax, word ptr [ebp+esi*2] (addr32; SIB)
        (&[0x67, 0x8b, 0x44, 0x75, 0x00], 0x2_0440),
    ];
    for (bytes, la) in cases {
        load_at(base(), bytes, *la);
    }
    // 16-bit effective addresses wrap at 64 KiB: bx+si = 0xfff0+0x20.
    load_at(T::real().reg(RBX, 0xfff0).reg(RSI, 0x20), &[0x8b, 0x00], 0x10);
    // The same forms in 16-bit protected mode.
    // mov ax, word ptr [bp+si]
    load_at(
        T::prot16().reg(RBP, 0x400).reg(RSI, 0x20).seg_base(Seg::Ss, 0x2_0000),
        &[0x8b, 0x02],
        0x2_0420,
    );
}
