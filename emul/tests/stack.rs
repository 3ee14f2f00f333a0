// SPDX-License-Identifier: GPL-2.0
//! push r/m (FF /6) and pop r/m (8F /0): operand and stack sizes, the
//! rSP used for the address of the memory operand, 16-bit stack wrap, and
//! stack faults.

pub mod common;
pub mod harness;

use harness::*;
use vmm_emul::{seg::ATTR_DB, CpuMode, DecodeErrorKind, Exception, Seg};

const V: u64 = 0x1122_3344_5566_7788;

#[test]
fn push_64bit() {
    // (bytes, rsp after, address and size of the store)
    let cases: &[(&[u8], u64, u64, usize, u64)] = &[
        // push qword ptr [rbx]
        (&[0xff, 0x33], 0x7ff8, 0x7ff8, 8, V),
        // push word ptr [rbx]
        (&[0x66, 0xff, 0x33], 0x7ffe, 0x7ffe, 2, 0x7788),
        // push qword ptr [rbx] (REX.W overrides 66)
        (&[0x66, 0x48, 0xff, 0x33], 0x7ff8, 0x7ff8, 8, V),
        // push qword ptr [rbx] (REX.W changes nothing)
        (&[0x48, 0xff, 0x33], 0x7ff8, 0x7ff8, 8, V),
        // push rax
        (&[0xff, 0xf0], 0x7ff8, 0x7ff8, 8, 0xaaaa_bbbb_cccc_dddd),
        // push r15
        (&[0x41, 0xff, 0xf7], 0x7ff8, 0x7ff8, 8, 0xf15),
        // push ax
        (&[0x66, 0xff, 0xf0], 0x7ffe, 0x7ffe, 2, 0xdddd),
        // push qword ptr [rsp+8] (the address uses rsp before the push)
        (&[0xff, 0x74, 0x24, 0x08], 0x7ff8, 0x7ff8, 8, 0x8008),
        // push qword ptr [rsp]
        (&[0xff, 0x34, 0x24], 0x7ff8, 0x7ff8, 8, 0x8000),
        // push qword ptr [rip+0x100]
        (&[0xff, 0x35, 0x00, 0x01, 0x00, 0x00], 0x7ff8, 0x7ff8, 8, 0x1106),
    ];
    for (bytes, rsp, la, size, v) in cases {
        let t = T::long()
            .reg(RAX, 0xaaaa_bbbb_cccc_dddd)
            .reg(RBX, 0x2000)
            .reg(RSP, 0x8000)
            .reg(R15, 0xf15)
            .mem(0x2000, V, 8)
            .mem(0x8000, 0x8000, 8)
            .mem(0x8008, 0x8008, 8)
            .mem(0x1106, 0x1106, 8)
            .done(bytes);
        t.regs(&[(RSP, *rsp)]).at(*la, *size, *v);
        assert_eq!(t.write_las(), vec![*la], "{bytes:02x?}");
    }
}

#[test]
fn push_32_and_16bit() {
    // push dword ptr [ebx]
    let t = T::prot32().reg(RBX, 0x2000).reg(RSP, 0x8000).mem(0x2000, V, 8).done(&[0xff, 0x33]);
    t.regs(&[(RSP, 0x7ffc)]).at(0x7ffc, 4, 0x5566_7788);
    // push word ptr [ebx]
    let t =
        T::prot32().reg(RBX, 0x2000).reg(RSP, 0x8000).mem(0x2000, V, 8).done(&[0x66, 0xff, 0x33]);
    t.regs(&[(RSP, 0x7ffe)]).at(0x7ffe, 2, 0x7788);
    let t = T::prot32()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x1234_8000)
        .mem(0x2000, V, 8)
        .with(|c| {
            c.seg_mut(Seg::Ss).attr &= !ATTR_DB;
            c.seg_mut(Seg::Ss).limit = 0xffff;
        })
        // push dword ptr [ebx] on a 16-bit stack (SS.B = 0): only sp moves
        .done(&[0xff, 0x33]);
    t.regs(&[(RSP, 0x1234_7ffc)]).at(0x7ffc, 4, 0x5566_7788);
    // push word ptr [bx] (real mode; SS base 0x10000, sp wraps from 0 to 0xfffe)
    let t = T::real()
        .reg(RBX, 0x2000)
        .reg(RSP, 0)
        .mem(0x2000, V, 8)
        .seg_base(Seg::Ss, 0x1_0000)
        .done(&[0xff, 0x37]);
    t.regs(&[(RSP, 0xfffe)]).at(0x1_fffe, 2, 0x7788);
    // push dword ptr [bx] (real mode)
    let t = T::real().reg(RBX, 0x2000).reg(RSP, 0x100).mem(0x2000, V, 8).done(&[0x66, 0xff, 0x37]);
    t.regs(&[(RSP, 0xfc)]).at(0xfc, 4, 0x5566_7788);
    // push word ptr [bp] (16-bit protected mode: SS-based source)
    let t =
        T::prot16().reg(RBP, 0x10).reg(RSP, 0x100).mem(0x10, 0x4242, 2).done(&[0xff, 0x76, 0x00]);
    t.regs(&[(RSP, 0xfe)]).at(0xfe, 2, 0x4242);
}

#[test]
fn push_faults() {
    T::prot32()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x8004)
        .with(|c| c.seg_mut(Seg::Ss).limit = 0x7fff)
        // push dword ptr [ebx] with SS limit 0x7fff: the new top 0x8000-0x8003 is outside
        .fault(&[0xff, 0x33], Exception::Ss(0));
    // push qword ptr [rbx] with a non-canonical new rsp
    T::long()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x8000_0000_0000_0008)
        .fault(&[0xff, 0x33], Exception::Ss(0));
    // push qword ptr [rbx] with a non-canonical source: #GP(0), not #SS
    T::long()
        .reg(RBX, 0x8000_0000_0000_0000)
        .reg(RSP, 0x8000)
        .fault(&[0xff, 0x33], Exception::Gp(0));
    // push qword ptr [rbp] with a non-canonical rbp: #SS(0)
    T::long()
        .reg(RBP, 0x8000_0000_0000_0000)
        .reg(RSP, 0x8000)
        .fault(&[0xff, 0x75, 0x00], Exception::Ss(0));
}

#[test]
fn pop_64bit() {
    // (bytes, rsp after, address and size of the store or register result)
    let cases: &[(&[u8], u64, u64, usize)] = &[
        // pop qword ptr [rbx]
        (&[0x8f, 0x03], 0x8000, 0x2000, 8),
        // pop word ptr [rbx]
        (&[0x66, 0x8f, 0x03], 0x7ffa, 0x2000, 2),
        // pop qword ptr [rbx] (REX.W overrides 66)
        (&[0x66, 0x48, 0x8f, 0x03], 0x8000, 0x2000, 8),
        // pop qword ptr [rsp+8] (the address uses rsp after the pop)
        (&[0x8f, 0x44, 0x24, 0x08], 0x8000, 0x8008, 8),
        // pop qword ptr [rsp]
        (&[0x8f, 0x04, 0x24], 0x8000, 0x8000, 8),
        // pop qword ptr [rip+0x100]
        (&[0x8f, 0x05, 0x00, 0x01, 0x00, 0x00], 0x8000, 0x1106, 8),
    ];
    for (bytes, rsp, la, size) in cases {
        let t = T::long().reg(RBX, 0x2000).reg(RSP, 0x7ff8).mem(0x7ff8, V, 8).done(bytes);
        t.regs(&[(RSP, *rsp)]);
        let mask = if *size == 8 { u64::MAX } else { (1 << (8 * size)) - 1 };
        t.at(*la, *size, V & mask);
        assert_eq!(t.read_las(), vec![0x7ff8], "{bytes:02x?}");
        assert_eq!(t.write_las(), vec![*la], "{bytes:02x?}");
    }
    // (bytes, register, value after)
    let regs: &[(&[u8], usize, u64)] = &[
        // pop rax
        (&[0x8f, 0xc0], RAX, V),
        // pop r15
        (&[0x41, 0x8f, 0xc7], R15, V),
        // pop ax
        (&[0x66, 0x8f, 0xc0], RAX, 0xffff_ffff_ffff_7788),
    ];
    for (bytes, r, v) in regs {
        let t = T::long().reg(RAX, u64::MAX).reg(RSP, 0x7ff8).mem(0x7ff8, V, 8).done(bytes);
        let sp = if bytes.starts_with(&[0x66]) { 0x7ffa } else { 0x8000 };
        t.regs(&[(*r, *v), (RSP, sp)]);
    }
    // pop rsp: the popped value wins
    let t = T::long().reg(RSP, 0x7ff8).mem(0x7ff8, 0x4000, 8).done(&[0x8f, 0xc4]);
    t.regs(&[(RSP, 0x4000)]);
    // 8F /1 is XOP on AMD: not emulated
    assert_eq!(harness::dec_err(&[0x8f, 0x0b], CpuMode::Long64), DecodeErrorKind::Unsupported);
}

#[test]
fn pop_32_and_16bit() {
    // pop dword ptr [ebx]
    let t = T::prot32().reg(RBX, 0x2000).reg(RSP, 0x7ffc).mem(0x7ffc, V, 4).done(&[0x8f, 0x03]);
    t.regs(&[(RSP, 0x8000)]).at(0x2000, 4, 0x5566_7788);
    // pop word ptr [ebx]
    let t =
        T::prot32().reg(RBX, 0x2000).reg(RSP, 0x7ffc).mem(0x7ffc, V, 4).done(&[0x66, 0x8f, 0x03]);
    t.regs(&[(RSP, 0x7ffe)]).at(0x2000, 2, 0x7788);
    let t = T::prot32()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x1234_fffc)
        .mem(0xfffc, V, 4)
        .with(|c| {
            c.seg_mut(Seg::Ss).attr &= !ATTR_DB;
            c.seg_mut(Seg::Ss).limit = 0xffff;
        })
        // pop dword ptr [ebx] on a 16-bit stack: sp wraps from 0xfffc to 0
        .done(&[0x8f, 0x03]);
    t.regs(&[(RSP, 0x1234_0000)]).at(0x2000, 4, 0x5566_7788);
    let t = T::real()
        .reg(RBX, 0x2000)
        .reg(RSP, 0xfffe)
        .mem(0x1_fffe, 0x4242, 2)
        .seg_base(Seg::Ss, 0x1_0000)
        // pop word ptr [bx] (real mode, SS base 0x10000)
        .done(&[0x8f, 0x07]);
    t.regs(&[(RSP, 0)]).at(0x2000, 2, 0x4242);
    // pop word ptr [bp+2] (16-bit: an SS-based destination)
    let t =
        T::prot16().reg(RBP, 0x10).reg(RSP, 0x100).mem(0x100, 0x4242, 2).done(&[0x8f, 0x46, 0x02]);
    t.regs(&[(RSP, 0x102)]).at(0x12, 2, 0x4242);
}

#[test]
fn pop_faults_leave_rsp() {
    let t = T::prot32()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x7ffc)
        .mem(0x7ffc, V, 4)
        .with(|c| c.seg_mut(Seg::Ds).limit = 0xfff)
        // pop dword ptr [ebx] with DS limit 0xfff: the store faults, esp is kept
        .fault(&[0x8f, 0x03], Exception::Gp(0));
    assert_eq!(t.read_las(), vec![0x7ffc]);
    T::prot32()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x7ffc)
        .with(|c| c.seg_mut(Seg::Ss).limit = 0x7ffd)
        // pop dword ptr [ebx] with SS limit 0x7ffd: the read faults
        .fault(&[0x8f, 0x03], Exception::Ss(0));
    // pop qword ptr [rbx] with a non-canonical rsp
    T::long()
        .reg(RBX, 0x2000)
        .reg(RSP, 0x0000_8000_0000_0000)
        .fault(&[0x8f, 0x03], Exception::Ss(0));
    // pop qword ptr [rbx] with a non-canonical destination
    T::long()
        .reg(RBX, 0x0000_8000_0000_0000)
        .reg(RSP, 0x7ff8)
        .fault(&[0x8f, 0x03], Exception::Gp(0));
}
