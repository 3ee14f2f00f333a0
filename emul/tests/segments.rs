// SPDX-License-Identifier: GPL-2.0
//! Segmentation and the other address checks: limits (#GP(0), #SS(0) for
//! SS), expand-down segments, read-only data and execute-only code,
//! unusable segments, real-mode limits, 64-bit canonical addresses, FS/GS
//! bases, and #AC.

pub mod common;
pub mod harness;

use common::TestCpu;
use harness::*;
use vmm_emul::{
    seg::{ATTR_DB, ATTR_L, ATTR_UNUSABLE},
    CpuMode, Exception, Seg,
};

const CR0_AM: u64 = 1 << 18;
const CR4_LA57: u64 = 1 << 12;

/// 32-bit protected mode with segment `s` given `limit` and `ty` (type
/// bits 3:0).
fn prot32_with(s: Seg, limit: u32, ty: u32) -> T {
    T::prot32().with(|c| {
        let sg = c.seg_mut(s);
        sg.limit = limit;
        sg.attr = (sg.attr & !0xf) | ty;
    })
}

#[test]
fn limits_gp_and_ss() {
    // (segment limited to 0xfff, bytes, register, value, fault)
    type Case = (Seg, &'static [u8], usize, u64, Option<Exception>);
    let cases: &[Case] = &[
        // mov eax, dword ptr [ebx]
        (Seg::Ds, &[0x8b, 0x03], RBX, 0xffc, None),
        // mov eax, dword ptr [ebx]
        (Seg::Ds, &[0x8b, 0x03], RBX, 0xffd, Some(Exception::Gp(0))),
        // mov eax, dword ptr [ebx]
        (Seg::Ds, &[0x8b, 0x03], RBX, 0x1000, Some(Exception::Gp(0))),
        // mov al, byte ptr [ebx]
        (Seg::Ds, &[0x8a, 0x03], RBX, 0xfff, None),
        // mov dword ptr [ebx], eax
        (Seg::Ds, &[0x89, 0x03], RBX, 0xffe, Some(Exception::Gp(0))),
        // mov eax, dword ptr [ebx-4] (the effective address wraps to 0xfffffffc)
        (Seg::Ds, &[0x8b, 0x43, 0xfc], RBX, 0, Some(Exception::Gp(0))),
        // mov eax, dword ptr [ebp]
        (Seg::Ss, &[0x8b, 0x45, 0x00], RBP, 0xffe, Some(Exception::Ss(0))),
        // mov eax, dword ptr [esp]
        (Seg::Ss, &[0x8b, 0x04, 0x24], RSP, 0xffe, Some(Exception::Ss(0))),
        // mov eax, dword ptr ss:[ebx]
        (Seg::Ss, &[0x36, 0x8b, 0x03], RBX, 0xffe, Some(Exception::Ss(0))),
        // mov eax, dword ptr [ebp] (within the limit)
        (Seg::Ss, &[0x8b, 0x45, 0x00], RBP, 0xffc, None),
        // mov eax, dword ptr ds:[ebp] (DS is flat)
        (Seg::Ss, &[0x3e, 0x8b, 0x45, 0x00], RBP, 0xffe, None),
        // mov eax, dword ptr es:[ebx]
        (Seg::Es, &[0x26, 0x8b, 0x03], RBX, 0x1000, Some(Exception::Gp(0))),
        // mov eax, dword ptr fs:[ebx]
        (Seg::Fs, &[0x64, 0x8b, 0x03], RBX, 0x1000, Some(Exception::Gp(0))),
        // mov eax, dword ptr gs:[ebx]
        (Seg::Gs, &[0x65, 0x8b, 0x03], RBX, 0xffe, Some(Exception::Gp(0))),
        // add dword ptr [ebx], eax
        (Seg::Ds, &[0x01, 0x03], RBX, 0xffd, Some(Exception::Gp(0))),
    ];
    for (s, bytes, r, v, fault) in cases {
        let t = prot32_with(*s, 0xfff, 0x3).reg(*r, *v);
        match fault {
            Some(e) => {
                let t = t.fault(bytes, *e);
                assert!(t.accesses().is_empty(), "{bytes:02x?}");
            }
            None => {
                t.done(bytes);
            }
        }
    }
}

#[test]
fn expand_down() {
    // (big: D/B set, bytes, ebx, fault)
    let cases: &[(bool, &[u8], u64, bool)] = &[
        // mov eax, dword ptr [ebx]
        (true, &[0x8b, 0x03], 0x1000, false),
        // mov eax, dword ptr [ebx]
        (true, &[0x8b, 0x03], 0xfff, true),
        // mov eax, dword ptr [ebx] (starts inside the hole)
        (true, &[0x8b, 0x03], 0xffe, true),
        // mov eax, dword ptr [ebx]
        (true, &[0x8b, 0x03], 0xffff_fffc, false),
        // mov eax, dword ptr [ebx] (runs past 4 GiB)
        (true, &[0x8b, 0x03], 0xffff_fffd, true),
        // mov eax, dword ptr [ebx] (D/B clear: the top is 0xffff)
        (false, &[0x8b, 0x03], 0xfffc, false),
        // mov eax, dword ptr [ebx]
        (false, &[0x8b, 0x03], 0xfffd, true),
        // mov eax, dword ptr [ebx]
        (false, &[0x8b, 0x03], 0x1_0000, true),
        // mov byte ptr [ebx], al
        (false, &[0x88, 0x03], 0x1000, false),
    ];
    for (big, bytes, ebx, fault) in cases {
        let t = prot32_with(Seg::Ds, 0xfff, 0x7).reg(RBX, *ebx).with(|c| {
            if !big {
                c.seg_mut(Seg::Ds).attr &= !ATTR_DB;
            }
        });
        if *fault {
            t.fault(bytes, Exception::Gp(0));
        } else {
            t.done(bytes);
        }
    }
    // push dword ptr [ebx] onto an expand-down stack: the new top 0x7ffe is in the hole
    prot32_with(Seg::Ss, 0x7fff, 0x7).reg(RSP, 0x8002).fault(&[0xff, 0x33], Exception::Ss(0));
    // push dword ptr [ebx] onto an expand-down stack, above the limit
    let t =
        prot32_with(Seg::Ss, 0x7fff, 0x7).reg(RSP, 0x8008).mem(0, 0x1234, 4).done(&[0xff, 0x33]);
    t.at(0x8004, 4, 0x1234);
}

#[test]
fn read_only_data() {
    let ro = || prot32_with(Seg::Ds, u32::MAX, 0x1).reg(RBX, 0x2000).mem(0x2000, 0x55, 4);
    // mov eax, dword ptr [ebx]
    ro().done(&[0x8b, 0x03]).regs(&[(RAX, 0x55)]);
    // bt dword ptr [ebx], eax
    ro().done(&[0x0f, 0xa3, 0x03]);
    // cmp dword ptr [ebx], eax
    ro().done(&[0x39, 0x03]);
    // mov dword ptr [ebx], eax
    ro().fault(&[0x89, 0x03], Exception::Gp(0));
    // add dword ptr [ebx], eax (refused before the read)
    let t = ro().fault(&[0x01, 0x03], Exception::Gp(0));
    assert!(t.accesses().is_empty());
    // bts dword ptr [ebx], eax
    ro().fault(&[0x0f, 0xab, 0x03], Exception::Gp(0));
    // xchg dword ptr [ebx], eax
    ro().fault(&[0x87, 0x03], Exception::Gp(0));
    // stosb with a read-only ES
    prot32_with(Seg::Es, u32::MAX, 0x1).reg(RDI, 0x2000).fault(&[0xaa], Exception::Gp(0));
    // movsb from a read-only DS is fine
    prot32_with(Seg::Ds, u32::MAX, 0x1).reg(RSI, 0x2000).reg(RDI, 0x3000).done(&[0xa4]);
    // movsb byte ptr es:[edi], byte ptr ds:[esi] to a read-only ES
    prot32_with(Seg::Es, u32::MAX, 0x1)
        .reg(RSI, 0x2000)
        .reg(RDI, 0x3000)
        .fault(&[0xa4], Exception::Gp(0));
    // pop dword ptr [ebx] to a read-only DS: #GP, esp kept
    prot32_with(Seg::Ds, u32::MAX, 0x1)
        .reg(RBX, 0x2000)
        .reg(RSP, 0x7000)
        .fault(&[0x8f, 0x03], Exception::Gp(0));
}

#[test]
fn code_segment_access() {
    // (CS type, bytes, fault)
    let cases: &[(u32, &[u8], bool)] = &[
        // mov eax, dword ptr cs:[ebx] (execute-only)
        (0x9, &[0x2e, 0x8b, 0x03], true),
        // mov eax, dword ptr cs:[ebx] (execute/read)
        (0xb, &[0x2e, 0x8b, 0x03], false),
        // mov eax, dword ptr cs:[ebx] (execute/read, conforming)
        (0xf, &[0x2e, 0x8b, 0x03], false),
        // mov eax, dword ptr cs:[ebx] (execute-only, conforming)
        (0xd, &[0x2e, 0x8b, 0x03], true),
        // mov dword ptr cs:[ebx], eax (code is never writable)
        (0xb, &[0x2e, 0x89, 0x03], true),
        // lodsb byte ptr cs:[esi] (execute-only)
        (0x9, &[0x2e, 0xac], true),
        // lodsb byte ptr cs:[esi] (execute/read)
        (0xb, &[0x2e, 0xac], false),
        // movdqu xmm0, xmmword ptr cs:[ebx] (execute-only)
        (0x9, &[0x2e, 0xf3, 0x0f, 0x6f, 0x03], true),
        // clflush byte ptr cs:[ebx] (execute-only: allowed, SDM "CLFLUSH")
        (0x9, &[0x2e, 0x0f, 0xae, 0x3b], false),
    ];
    for (ty, bytes, fault) in cases {
        let t = prot32_with(Seg::Cs, u32::MAX, *ty).reg(RBX, 0x2000).reg(RSI, 0x2000);
        if *fault {
            t.fault(bytes, Exception::Gp(0));
        } else {
            t.done(bytes);
        }
    }
}

#[test]
fn unusable_segments() {
    let unusable = |s: Seg| {
        T::prot32()
            .reg(RBX, 0x2000)
            .reg(RBP, 0x2000)
            .reg(RDI, 0x2000)
            .with(move |c| c.seg_mut(s).attr |= ATTR_UNUSABLE)
    };
    // mov eax, dword ptr [ebx]
    unusable(Seg::Ds).fault(&[0x8b, 0x03], Exception::Gp(0));
    // mov eax, dword ptr fs:[ebx]
    unusable(Seg::Fs).fault(&[0x64, 0x8b, 0x03], Exception::Gp(0));
    // mov eax, dword ptr gs:[ebx]
    unusable(Seg::Gs).fault(&[0x65, 0x8b, 0x03], Exception::Gp(0));
    // stosb with an unusable ES
    unusable(Seg::Es).fault(&[0xaa], Exception::Gp(0));
    // mov eax, dword ptr [ebp] with an unusable SS
    unusable(Seg::Ss).fault(&[0x8b, 0x45, 0x00], Exception::Ss(0));
    // mov eax, dword ptr [ebx] with only FS unusable
    unusable(Seg::Fs).done(&[0x8b, 0x03]);
    // 64-bit mode does not check DS, ES or SS at all.
    let t = T::long().reg(RBX, 0x2000).with(|c| {
        for s in [Seg::Ds, Seg::Es, Seg::Ss, Seg::Fs, Seg::Gs] {
            c.seg_mut(s).attr |= ATTR_UNUSABLE;
            c.seg_mut(s).limit = 0;
        }
    });
    // mov eax, dword ptr [rbx]
    let t = t.done(&[0x8b, 0x03]);
    // mov eax, dword ptr [rsp]
    let t = t.done(&[0x8b, 0x04, 0x24]);
    // mov eax, dword ptr fs:[rbx] (an unusable FS still has its base in 64-bit mode)
    t.done(&[0x64, 0x8b, 0x03]);
    // Real mode has no unusable segments.
    let t = T::real().reg(RBX, 0x100).with(|c| c.seg_mut(Seg::Ds).attr |= ATTR_UNUSABLE);
    // mov ax, word ptr [bx]
    t.done(&[0x8b, 0x07]);
}

#[test]
fn real_mode_limits_and_wrap() {
    // mov ax, word ptr [bx] at offset 0xffff: the second byte is past the limit
    T::real().reg(RBX, 0xffff).fault(&[0x8b, 0x07], Exception::Gp(0));
    // mov ax, word ptr [bp] at offset 0xffff: #SS
    T::real().reg(RBP, 0xffff).fault(&[0x8b, 0x46, 0x00], Exception::Ss(0));
    // mov al, byte ptr [bx] at offset 0xffff is fine
    T::real().reg(RBX, 0xffff).done(&[0x8a, 0x07]);
    // mov eax, dword ptr [bx+si] at 0xfff0+0x20: the offset wraps to 0x10 first
    let t = T::real().reg(RBX, 0xfff0).reg(RSI, 0x20).done(&[0x66, 0x8b, 0x00]);
    assert_eq!(t.read_las(), vec![0x10]);
    let t =
        // mov ax, word ptr [bx] with DS = 0xffff: no wrap at 1 MiB (that is A20's business)
        T::real().reg(RBX, 0x20).with(|c| *c.seg_mut(Seg::Ds) = vmm_emul::Segment::real(0xffff)).done(&[0x8b, 0x07]);
    assert_eq!(t.read_las(), vec![0x10_0010]);
    // mov ax, word ptr [ebx] with ebx = 0x10000 and a 64 KiB limit
    T::real().reg(RBX, 0x1_0000).fault(&[0x67, 0x8b, 0x03], Exception::Gp(0));
    // mov ax, word ptr [ebx] with a 4 GiB limit ("unreal" mode)
    let t = T::real()
        .reg(RBX, 0x10_0000)
        .with(|c| c.seg_mut(Seg::Ds).limit = u32::MAX)
        .done(&[0x67, 0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![0x10_0000]);
    T::real()
        .reg(RBX, 0xffff)
        .flags(VM)
        .with(|c| {
            c.cr0 |= 1;
            c.cpl = 3;
        })
        // mov ax, word ptr [bx] in virtual-8086 mode: the same real-mode rules
        .fault(&[0x8b, 0x07], Exception::Gp(0));
}

#[test]
fn canonical_64bit() {
    const NC: u64 = 0x0000_8000_0000_0000;
    // (bytes, setup register, value, fault)
    let cases: &[(&[u8], usize, u64, Exception)] = &[
        // mov eax, dword ptr [rbx]
        (&[0x8b, 0x03], RBX, NC, Exception::Gp(0)),
        // mov eax, dword ptr [rbp+0]
        (&[0x8b, 0x45, 0x00], RBP, NC, Exception::Ss(0)),
        // mov eax, dword ptr [rsp]
        (&[0x8b, 0x04, 0x24], RSP, NC, Exception::Ss(0)),
        // mov eax, dword ptr [rsp+rbx*1]
        (&[0x8b, 0x04, 0x1c], RSP, NC, Exception::Ss(0)),
        // mov eax, dword ptr [rbx+rbp*1] (the base decides: DS)
        (&[0x8b, 0x04, 0x2b], RBP, NC, Exception::Gp(0)),
        // mov eax, dword ptr fs:[rbp+0]
        (&[0x64, 0x8b, 0x45, 0x00], RBP, NC, Exception::Gp(0)),
        // mov eax, dword ptr [r13+0] (r13 is not rBP)
        (&[0x41, 0x8b, 0x45, 0x00], R13, NC, Exception::Gp(0)),
        // mov eax, dword ptr [r12] (r12 is not rSP)
        (&[0x41, 0x8b, 0x04, 0x24], R12, NC, Exception::Gp(0)),
        // mov rax, qword ptr [rbx] (the last byte is non-canonical)
        (&[0x48, 0x8b, 0x03], RBX, 0x0000_7fff_ffff_fffc, Exception::Gp(0)),
        // mov rax, qword ptr [rbp+0] (the last byte is non-canonical)
        (&[0x48, 0x8b, 0x45, 0x00], RBP, 0x0000_7fff_ffff_fffc, Exception::Ss(0)),
        // mov eax, dword ptr [rbx]
        (&[0x8b, 0x03], RBX, 0xffff_7fff_ffff_fffc, Exception::Gp(0)),
        // mov dword ptr [rbx], eax
        (&[0x89, 0x03], RBX, NC, Exception::Gp(0)),
        // add dword ptr [rbp+0], eax
        (&[0x01, 0x45, 0x00], RBP, NC, Exception::Ss(0)),
        // mov rax, qword ptr [0x0000800000000000]
        (&[0x48, 0xa1, 0, 0, 0, 0, 0, 0x80, 0, 0], RAX, 0, Exception::Gp(0)),
        // stosb with a non-canonical rdi
        (&[0xaa], RDI, NC, Exception::Gp(0)),
        // lodsb with a non-canonical rsi
        (&[0xac], RSI, NC, Exception::Gp(0)),
    ];
    for (bytes, r, v, e) in cases {
        T::long().reg(*r, *v).fault(bytes, *e);
    }
    // mov eax, dword ptr [rbx] (4 bytes ending at the top of the lower half)
    T::long().reg(RBX, 0x0000_7fff_ffff_fffc).done(&[0x8b, 0x03]);
    // mov eax, dword ptr [rbx] (the bottom of the upper half)
    T::long().reg(RBX, 0xffff_8000_0000_0000).done(&[0x8b, 0x03]);
    // mov eax, dword ptr [rip+0x1000] (RIP-relative into the hole)
    T::long()
        .with(|c| c.rip = 0x0000_7fff_ffff_f000)
        .fault(&[0x8b, 0x05, 0x00, 0x10, 0x00, 0x00], Exception::Gp(0));
    // mov eax, dword ptr fs:[rbx] (the FS base carries it into the hole)
    T::long()
        .reg(RBX, 0x1000)
        .seg_base(Seg::Fs, 0x0000_7fff_ffff_f000)
        .fault(&[0x64, 0x8b, 0x03], Exception::Gp(0));
    // mov eax, dword ptr gs:[rbx] (a GS base in the upper half)
    let t =
        T::long().reg(RBX, 0x10).seg_base(Seg::Gs, 0xffff_ffff_ffff_fff0).done(&[0x65, 0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![0]);
    // With LA57 the canonical boundary moves to bit 56.
    let la57 = || T::long().with(|c| c.cr4 |= CR4_LA57);
    // mov eax, dword ptr [rbx]
    let t = la57().reg(RBX, NC).done(&[0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![NC]);
    // mov eax, dword ptr [rbx]
    la57().reg(RBX, 0x0100_0000_0000_0000).fault(&[0x8b, 0x03], Exception::Gp(0));
    // mov eax, dword ptr [rbp+0]
    la57().reg(RBP, 0x0100_0000_0000_0000).fault(&[0x8b, 0x45, 0x00], Exception::Ss(0));
}

#[test]
fn bases_64bit_and_compat() {
    // mov eax, dword ptr [rbx] (64-bit: the DS base is not used)
    let t = T::long().reg(RBX, 0x2000).seg_base(Seg::Ds, 0x10_0000).done(&[0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![0x2000]);
    // mov eax, dword ptr [rbp+0] (64-bit: nor the SS base)
    let t = T::long().reg(RBP, 0x2000).seg_base(Seg::Ss, 0x10_0000).done(&[0x8b, 0x45, 0x00]);
    assert_eq!(t.read_las(), vec![0x2000]);
    // mov eax, dword ptr fs:[ebx] (64-bit with addr32: the FS base is 64 bits)
    let t = T::long()
        .reg(RBX, 0xffff_ffff)
        .seg_base(Seg::Fs, 0x1_0000_0000)
        .done(&[0x64, 0x67, 0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![0x1_ffff_ffff]);
    // Compatibility mode segments like 32-bit protected mode.
    let compat = || {
        let mut cpu = TestCpu::long();
        let cs = cpu.seg_mut(Seg::Cs);
        cs.attr = (cs.attr & !ATTR_L) | ATTR_DB;
        T::new(CpuMode::Compat32, cpu)
    };
    // mov eax, dword ptr [ebx] (DS base applies)
    let t = compat().reg(RBX, 0x2000).seg_base(Seg::Ds, 0x10_0000).done(&[0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![0x10_2000]);
    // mov eax, dword ptr [ebx] (DS limit applies)
    compat()
        .reg(RBX, 0x2000)
        .with(|c| c.seg_mut(Seg::Ds).limit = 0xfff)
        .fault(&[0x8b, 0x03], Exception::Gp(0));
    // mov eax, dword ptr fs:[ebx] (the linear address wraps at 4 GiB)
    let t = compat().reg(RBX, 0x2000).seg_base(Seg::Fs, 0xffff_f000).done(&[0x64, 0x8b, 0x03]);
    assert_eq!(t.read_las(), vec![0x1000]);
}

#[test]
fn alignment_check() {
    let user = || {
        T::long().reg(RBX, 0x2001).reg(RDI, 0x3001).reg(RSP, 0x8004).flags(AC).with(|c| {
            c.cpl = 3;
            assert_ne!(c.cr0 & CR0_AM, 0);
        })
    };
    let faults: &[&[u8]] = &[
        // mov eax, dword ptr [rbx]
        &[0x8b, 0x03],
        // mov ax, word ptr [rbx]
        &[0x66, 0x8b, 0x03],
        // mov rax, qword ptr [rbx]
        &[0x48, 0x8b, 0x03],
        // add dword ptr [rbx], eax
        &[0x01, 0x03],
        // lock add dword ptr [rbx], eax
        &[0xf0, 0x01, 0x03],
        // stosd
        &[0xab],
        // push rax (rsp 0x8004: the new top 0x7ffc is not 8-aligned)
        &[0xff, 0xf0],
        // movq xmm0, qword ptr [rbx]
        &[0xf3, 0x0f, 0x7e, 0x03],
    ];
    for bytes in faults {
        user().fault(bytes, Exception::Ac);
    }
    // mov al, byte ptr [rbx] (bytes are always aligned)
    user().done(&[0x8a, 0x03]);
    // mov eax, dword ptr [rbx] (aligned)
    user().reg(RBX, 0x2004).done(&[0x8b, 0x03]);
    // mov ax, word ptr [rbx] (2-aligned is enough for a word)
    user().reg(RBX, 0x2002).done(&[0x66, 0x8b, 0x03]);
    // mov rax, qword ptr [rbx] (4-aligned is not enough for a qword)
    user().reg(RBX, 0x2004).fault(&[0x48, 0x8b, 0x03], Exception::Ac);
    for cpl in 0..3 {
        // mov eax, dword ptr [rbx] at CPL 0, 1, 2: no #AC
        user().with(|c| c.cpl = cpl).done(&[0x8b, 0x03]);
    }
    // mov eax, dword ptr [rbx] without RFLAGS.AC
    user().flags(0).done(&[0x8b, 0x03]);
    // mov eax, dword ptr [rbx] without CR0.AM
    user().with(|c| c.cr0 &= !CR0_AM).done(&[0x8b, 0x03]);
    T::prot32()
        .reg(RBX, 0x2002)
        .flags(AC)
        .with(|c| {
            c.cpl = 3;
            c.cr0 |= CR0_AM;
        })
        // mov eax, dword ptr [ebx] (32-bit mode)
        .fault(&[0x8b, 0x03], Exception::Ac);
    prot32_with(Seg::Ds, 0xfff, 0x3)
        .reg(RBX, 0xffe)
        .flags(AC)
        .with(|c| {
            c.cpl = 3;
            c.cr0 |= CR0_AM;
        })
        // mov eax, dword ptr [ebx] past the DS limit: #GP comes before #AC
        .fault(&[0x8b, 0x03], Exception::Gp(0));
    // rep movsw with rsi aligned and rdi not: #AC in the first iteration, nothing done
    user().reg(RSI, 0x2000).reg(RCX, 2).fault(&[0x66, 0xf3, 0xa5], Exception::Ac);
    // rep movsw with both aligned
    let t = user().reg(RSI, 0x2000).reg(RDI, 0x3000).reg(RCX, 2).done(&[0x66, 0xf3, 0xa5]);
    t.regs(&[(RCX, 0), (RSI, 0x2004), (RDI, 0x3004)]);
}

#[test]
fn exception_vectors_and_codes() {
    let cases = [
        (Exception::Ud, 6, None),
        (Exception::Nm, 7, None),
        (Exception::Ss(0), 12, Some(0)),
        (Exception::Gp(0x18), 13, Some(0x18)),
        (Exception::Pf { addr: 0x1000, code: 2 }, 14, Some(2)),
        (Exception::Ac, 17, Some(0)),
    ];
    for (e, v, code) in cases {
        assert_eq!(e.vector(), v);
        assert_eq!(e.error_code(), code);
    }
}
