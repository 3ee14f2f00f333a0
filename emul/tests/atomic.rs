// SPDX-License-Identifier: GPL-2.0
//! xchg, cmpxchg, xadd and the LOCK prefix: which forms take LOCK, that a
//! locked (or xchg) memory update goes through `Memory::cmpxchg`, and that
//! a lost race is `Error::Contended` with nothing changed.

pub mod common;
pub mod harness;

use common::Access;
use harness::*;
use vmm_emul::{CpuMode, DecodeErrorKind, Error};

fn cmpxchgs(t: &T) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    t.accesses()
        .iter()
        .filter_map(|a| match a {
            Access::Cmpxchg { la, old, new } => Some((*la, old.clone(), new.clone())),
            _ => None,
        })
        .collect()
}

fn plain_writes(t: &T) -> usize {
    t.accesses().iter().filter(|a| matches!(a, Access::Write { .. })).count()
}

// ----- xchg -----

#[test]
fn xchg_memory_is_always_atomic() {
    // (bytes, rcx before, memory after, rcx after, size); [rbx] = 0x8877665544337788
    let cases: &[(&[u8], u64, u64, u64, usize)] = &[
        // xchg byte ptr [rbx], cl
        (&[0x86, 0x0b], 0xcccc_cccc_cccc_2222, 0x8877_6655_4433_7722, 0xcccc_cccc_cccc_2288, 1),
        // xchg word ptr [rbx], cx
        (
            &[0x66, 0x87, 0x0b],
            0xcccc_cccc_cccc_2222,
            0x8877_6655_4433_2222,
            0xcccc_cccc_cccc_7788,
            2,
        ),
        // xchg dword ptr [rbx], ecx
        (&[0x87, 0x0b], 0xcccc_cccc_2222_2222, 0x8877_6655_2222_2222, 0x4433_7788, 4),
        // xchg qword ptr [rbx], rcx
        (
            &[0x48, 0x87, 0x0b],
            0x2222_2222_2222_2222,
            0x2222_2222_2222_2222,
            0x8877_6655_4433_7788,
            8,
        ),
    ];
    for (bytes, c0, m, c, size) in cases {
        let t = T::long()
            .reg(RBX, 0x2000)
            .reg(RCX, *c0)
            .mem(0x2000, 0x8877_6655_4433_7788, 8)
            .done(bytes);
        t.regs(&[(RCX, *c)]).at(0x2000, 8, *m);
        let x = cmpxchgs(&t);
        assert_eq!(x.len(), 1, "{bytes:02x?}: {x:?}");
        assert_eq!(x[0].0, 0x2000);
        assert_eq!(x[0].1.len(), *size);
        assert_eq!(plain_writes(&t), 0, "{bytes:02x?}");
    }
}

#[test]
fn xchg_registers() {
    // (bytes, rax after, rcx after); rax = 0xaaaa_aaaa_1111_2233, rcx = 0xbbbb_bbbb_4444_5566
    let cases: &[(&[u8], u64, u64)] = &[
        // xchg ecx, eax
        (&[0x87, 0xc1], 0x4444_5566, 0x1111_2233),
        // xchg eax, eax (not the one-byte nop: the 32-bit write zero-extends)
        (&[0x87, 0xc0], 0x1111_2233, 0xbbbb_bbbb_4444_5566),
        // xchg rcx, rax
        (&[0x48, 0x87, 0xc1], 0xbbbb_bbbb_4444_5566, 0xaaaa_aaaa_1111_2233),
        // xchg cx, ax
        (&[0x66, 0x87, 0xc1], 0xaaaa_aaaa_1111_5566, 0xbbbb_bbbb_4444_2233),
        // xchg al, ah
        (&[0x86, 0xe0], 0xaaaa_aaaa_1111_3322, 0xbbbb_bbbb_4444_5566),
        // xchg cl, ah
        (&[0x86, 0xe1], 0xaaaa_aaaa_1111_6633, 0xbbbb_bbbb_4444_5522),
        // xchg cl, spl
        (&[0x40, 0x86, 0xe1], 0xaaaa_aaaa_1111_2233, 0xbbbb_bbbb_4444_5544),
    ];
    for (bytes, a, c) in cases {
        let t = T::long()
            .reg(RAX, 0xaaaa_aaaa_1111_2233)
            .reg(RCX, 0xbbbb_bbbb_4444_5566)
            .reg(RSP, 0x9944)
            .done(bytes);
        if bytes.starts_with(&[0x40]) {
            t.regs(&[(RCX, *c), (RSP, 0x9966)]);
        } else {
            t.regs(&[(RAX, *a), (RCX, *c)]);
        }
        assert!(t.accesses().is_empty());
    }
}

// ----- cmpxchg -----

#[test]
fn cmpxchg_memory() {
    // Equal: [rbx] gets ecx, rAX untouched (even bits 63:32).
    let t = T::long()
        .reg(RAX, 0xaaaa_aaaa_0000_0005)
        .reg(RBX, 0x2000)
        .reg(RCX, 0x9)
        .mem(0x2000, 0xffff_ffff_0000_0005, 8)
        .flags(CF | SF)
        // cmpxchg dword ptr [rbx], ecx
        .done(&[0x0f, 0xb1, 0x0b]);
    t.regs(&[]).at(0x2000, 8, 0xffff_ffff_0000_0009).rflags(ZF | PF);
    // Not equal: eAX gets the memory (zero-extended), memory is written back unchanged.
    let t = T::long()
        .reg(RAX, 0xaaaa_aaaa_0000_0005)
        .reg(RBX, 0x2000)
        .reg(RCX, 0x9)
        .mem(0x2000, 0xffff_ffff_0000_0007, 8)
        .flags(ZF)
        // cmpxchg dword ptr [rbx], ecx
        .done(&[0x0f, 0xb1, 0x0b]);
    t.regs(&[(RAX, 7)]).at(0x2000, 8, 0xffff_ffff_0000_0007).rflags(CF | SF | AF);
    assert_eq!(t.write_las(), vec![0x2000], "the destination always gets a write cycle");
    let t = T::long()
        .reg(RAX, 0x1280)
        .reg(RBX, 0x2000)
        .reg(RCX, 0x33)
        .mem(0x2000, 0x80, 1)
        .flags(0)
        // cmpxchg byte ptr [rbx], cl
        .done(&[0x0f, 0xb0, 0x0b]);
    t.regs(&[]).at(0x2000, 1, 0x33).rflags(ZF | PF);
    let t = T::long()
        .reg(RAX, 0x1201)
        .reg(RBX, 0x2000)
        .reg(RCX, 0x33)
        .mem(0x2000, 0x02, 1)
        .flags(0)
        // cmpxchg byte ptr [rbx], cl
        .done(&[0x0f, 0xb0, 0x0b]);
    t.regs(&[(RAX, 0x1202)]).at(0x2000, 1, 0x02).rflags(CF | SF | AF | PF);
    let t = T::long()
        .reg(RAX, 0xffff_0001)
        .reg(RBX, 0x2000)
        .reg(RCX, 0x4444)
        .mem(0x2000, 0x0001, 2)
        .flags(0)
        // cmpxchg word ptr [rbx], cx
        .done(&[0x66, 0x0f, 0xb1, 0x0b]);
    t.regs(&[]).at(0x2000, 2, 0x4444).rflags(ZF | PF);
    let t = T::long()
        .reg(RAX, 1)
        .reg(RBX, 0x2000)
        .reg(RCX, 0x4444)
        .mem(0x2000, 0x8000_0000_0000_0000, 8)
        .flags(0)
        // cmpxchg qword ptr [rbx], rcx
        .done(&[0x48, 0x0f, 0xb1, 0x0b]);
    t.regs(&[(RAX, 0x8000_0000_0000_0000)])
        .at(0x2000, 8, 0x8000_0000_0000_0000)
        .rflags(CF | OF | SF);
    // cmpxchg dword ptr [ebx], ecx (32-bit mode)
    let t = T::prot32()
        .reg(RAX, 5)
        .reg(RBX, 0x2000)
        .reg(RCX, 6)
        .mem(0x2000, 5, 4)
        .flags(0)
        .done(&[0x0f, 0xb1, 0x0b]);
    t.regs(&[]).at(0x2000, 4, 6).rflags(ZF | PF);
}

#[test]
fn cmpxchg_register_destination() {
    // Equal: ecx gets edx (zero-extended), rax untouched.
    let t = T::long()
        .reg(RAX, 0xaaaa_aaaa_0000_0005)
        .reg(RCX, 0xbbbb_bbbb_0000_0005)
        .reg(RDX, 0xcccc_cccc_0000_0009)
        .flags(0)
        // cmpxchg ecx, edx
        .done(&[0x0f, 0xb1, 0xd1]);
    t.regs(&[(RCX, 9)]).rflags(ZF | PF);
    // cmpxchg cl, ah
    let t = T::long().reg(RAX, 0x7705).reg(RCX, 0x1105).flags(0).done(&[0x0f, 0xb0, 0xe1]);
    t.regs(&[(RCX, 0x1177)]).rflags(ZF | PF);
    // cmpxchg rcx, rdx
    let t = T::long().reg(RAX, 1).reg(RCX, 2).reg(RDX, 3).flags(0).done(&[0x48, 0x0f, 0xb1, 0xd1]);
    t.regs(&[(RAX, 2)]).rflags(CF | SF | AF | PF);
}

#[test]
fn cmpxchg_register_destination_not_equal_keeps_destination() {
    // Not equal: eax gets ecx zero-extended; ecx itself is not written, so
    // its bits 63:32 stay (SDM: only a memory destination gets a write
    // cycle; hardware leaves a register destination alone).
    let t = T::long()
        .reg(RAX, 0xaaaa_aaaa_0000_0005)
        .reg(RCX, 0xbbbb_bbbb_0000_0007)
        .reg(RDX, 0xcccc_cccc_0000_0009)
        .flags(0)
        // cmpxchg ecx, edx
        .done(&[0x0f, 0xb1, 0xd1]);
    t.regs(&[(RAX, 7)]).rflags(CF | SF | AF);
}

// ----- xadd -----

#[test]
fn xadd_forms() {
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(RCX, 0xffff_ffff_0000_0010)
        .mem(0x2000, 0xffff_fff0, 4)
        .flags(0)
        // xadd dword ptr [rbx], ecx
        .done(&[0x0f, 0xc1, 0x0b]);
    t.regs(&[(RCX, 0xffff_fff0)]).at(0x2000, 4, 0).rflags(CF | ZF | PF);
    // xadd byte ptr [rbx], cl
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(RCX, 0x119b)
        .mem(0x2000, 0x6a, 1)
        .flags(0)
        .done(&[0x0f, 0xc0, 0x0b]);
    t.regs(&[(RCX, 0x116a)]).at(0x2000, 1, 0x05).rflags(CF | AF | PF);
    let t = T::long()
        .reg(RBX, 0x2000)
        .reg(RCX, 1)
        .mem(0x2000, 0x7fff_ffff_ffff_ffff, 8)
        .flags(0)
        // xadd qword ptr [rbx], rcx
        .done(&[0x48, 0x0f, 0xc1, 0x0b]);
    t.regs(&[(RCX, 0x7fff_ffff_ffff_ffff)])
        .at(0x2000, 8, 0x8000_0000_0000_0000)
        .rflags(OF | SF | AF | PF);
    let t =
        // xadd word ptr [rbx], cx
        T::long().reg(RBX, 0x2000).reg(RCX, 0x1_0001).mem(0x2000, 0xffff, 2).flags(0).done(&[0x66, 0x0f, 0xc1, 0x0b]);
    t.regs(&[(RCX, 0x1_ffff)]).at(0x2000, 2, 0).rflags(CF | ZF | AF | PF);
    // xadd eax, ecx
    let t = T::long().reg(RAX, 1).reg(RCX, 2).flags(0).done(&[0x0f, 0xc1, 0xc8]);
    t.regs(&[(RAX, 3), (RCX, 1)]).rflags(PF);
    // xadd eax, eax (the sum wins)
    let t = T::long().reg(RAX, 0xffff_ffff_0000_0005).flags(0).done(&[0x0f, 0xc1, 0xc0]);
    t.regs(&[(RAX, 10)]).rflags(PF);
    // xadd ah, al
    let t = T::long().reg(RAX, 0x0102).flags(0).done(&[0x0f, 0xc0, 0xc4]);
    t.regs(&[(RAX, 0x0301)]).rflags(PF);
}

// ----- LOCK -----

/// The lockable forms with a memory destination: [rbx] = 3 (dword), ecx =
/// 1, eax = 3. (bytes, memory after)
const LOCKED: &[(&[u8], u64)] = &[
    // lock add byte ptr [rbx], cl
    (&[0xf0, 0x00, 0x0b], 4),
    // lock add dword ptr [rbx], ecx
    (&[0xf0, 0x01, 0x0b], 4),
    // lock add word ptr [rbx], cx
    (&[0x66, 0xf0, 0x01, 0x0b], 4),
    // lock add qword ptr [rbx], rcx
    (&[0xf0, 0x48, 0x01, 0x0b], 4),
    // lock or dword ptr [rbx], ecx
    (&[0xf0, 0x09, 0x0b], 3),
    // lock adc dword ptr [rbx], ecx
    (&[0xf0, 0x11, 0x0b], 4),
    // lock sbb dword ptr [rbx], ecx
    (&[0xf0, 0x19, 0x0b], 2),
    // lock and dword ptr [rbx], ecx
    (&[0xf0, 0x21, 0x0b], 1),
    // lock sub dword ptr [rbx], ecx
    (&[0xf0, 0x29, 0x0b], 2),
    // lock xor dword ptr [rbx], ecx
    (&[0xf0, 0x31, 0x0b], 2),
    // lock add byte ptr [rbx], 1
    (&[0xf0, 0x80, 0x03, 0x01], 4),
    // lock sub dword ptr [rbx], 1
    (&[0xf0, 0x81, 0x2b, 0x01, 0x00, 0x00, 0x00], 2),
    // lock xor dword ptr [rbx], 1
    (&[0xf0, 0x83, 0x33, 0x01], 2),
    // lock not byte ptr [rbx]
    (&[0xf0, 0xf6, 0x13], 0xfc),
    // lock neg dword ptr [rbx]
    (&[0xf0, 0xf7, 0x1b], 0xffff_fffd),
    // lock inc byte ptr [rbx]
    (&[0xf0, 0xfe, 0x03], 4),
    // lock dec dword ptr [rbx]
    (&[0xf0, 0xff, 0x0b], 2),
    // lock bts dword ptr [rbx], ecx
    (&[0xf0, 0x0f, 0xab, 0x0b], 3),
    // lock btr dword ptr [rbx], ecx
    (&[0xf0, 0x0f, 0xb3, 0x0b], 1),
    // lock btc dword ptr [rbx], ecx
    (&[0xf0, 0x0f, 0xbb, 0x0b], 1),
    // lock bts dword ptr [rbx], 2
    (&[0xf0, 0x0f, 0xba, 0x2b, 0x02], 7),
    // lock btr dword ptr [rbx], 0
    (&[0xf0, 0x0f, 0xba, 0x33, 0x00], 2),
    // lock btc dword ptr [rbx], 3
    (&[0xf0, 0x0f, 0xba, 0x3b, 0x03], 0xb),
    // lock xchg byte ptr [rbx], cl
    (&[0xf0, 0x86, 0x0b], 1),
    // lock xchg dword ptr [rbx], ecx
    (&[0xf0, 0x87, 0x0b], 1),
    // lock cmpxchg byte ptr [rbx], cl
    (&[0xf0, 0x0f, 0xb0, 0x0b], 1),
    // lock cmpxchg dword ptr [rbx], ecx
    (&[0xf0, 0x0f, 0xb1, 0x0b], 1),
    // lock xadd byte ptr [rbx], cl
    (&[0xf0, 0x0f, 0xc0, 0x0b], 4),
    // lock xadd dword ptr [rbx], ecx
    (&[0xf0, 0x0f, 0xc1, 0x0b], 4),
];

fn lock_setup() -> T {
    T::long().reg(RAX, 3).reg(RBX, 0x2000).reg(RCX, 1).mem(0x2000, 3, 8).flags(0)
}

#[test]
fn lock_accepted_on_rmw_memory_forms() {
    for (bytes, after) in LOCKED {
        let insn = dec(bytes, CpuMode::Long64);
        assert!(insn.lock, "{bytes:02x?}");
        let t = lock_setup().done(bytes);
        t.at(0x2000, 8, *after);
        let x = cmpxchgs(&t);
        assert_eq!(x.len(), 1, "{bytes:02x?}: {x:?}");
        assert_eq!(x[0].0, 0x2000, "{bytes:02x?}");
        assert_eq!(plain_writes(&t), 0, "{bytes:02x?}");
    }
    // lock add dword ptr [ebx], eax (32-bit mode)
    let t = T::prot32().reg(RAX, 2).reg(RBX, 0x2000).mem(0x2000, 3, 4).done(&[0xf0, 0x01, 0x03]);
    t.at(0x2000, 4, 5);
    assert_eq!(cmpxchgs(&t).len(), 1);
}

#[test]
fn lock_lost_race_is_contended_and_changes_nothing() {
    for (bytes, _) in LOCKED {
        let mut t = lock_setup();
        t.mem.cmpxchg_failures = 1;
        let mem = t.mem.bytes.clone();
        let r = t.run(bytes);
        assert_eq!(r, Err(Error::Contended), "{bytes:02x?}");
        assert_eq!(t.cpu, t.before, "{bytes:02x?}");
        assert_eq!(t.mem.bytes, mem, "{bytes:02x?}");
        // Retrying succeeds.
        let r = t.run(bytes);
        assert_eq!(r, Ok(vmm_emul::Step::Done), "{bytes:02x?}");
    }
    let mut t = lock_setup();
    t.mem.cmpxchg_failures = 1;
    // xchg byte ptr [rbx], cl without LOCK is locked too.
    assert_eq!(t.run(&[0x86, 0x0b]), Err(Error::Contended));
    assert_eq!(t.cpu, t.before);
    let mut t = lock_setup().reg(RAX, 9);
    t.mem.cmpxchg_failures = 1;
    // cmpxchg dword ptr [rbx], ecx (not equal) with LOCK: the write-back is locked too
    assert_eq!(t.run(&[0xf0, 0x0f, 0xb1, 0x0b]), Err(Error::Contended));
    assert_eq!(t.cpu, t.before);
}

#[test]
fn unlocked_rmw_uses_plain_writes() {
    let mut t = lock_setup();
    t.mem.cmpxchg_failures = 1;
    // add dword ptr [rbx], ecx
    let t = t.done(&[0x01, 0x0b]);
    t.at(0x2000, 4, 4);
    assert!(cmpxchgs(&t).is_empty());
    assert_eq!(plain_writes(&t), 1);
}

#[test]
fn lock_rejected() {
    let cases: &[&[u8]] = &[
        // lock add eax, ecx
        &[0xf0, 0x01, 0xc8],
        // lock add ecx, dword ptr [rbx]
        &[0xf0, 0x03, 0x0b],
        // lock add al, 1
        &[0xf0, 0x04, 0x01],
        // lock cmp dword ptr [rbx], ecx
        &[0xf0, 0x39, 0x0b],
        // lock cmp dword ptr [rbx], 1
        &[0xf0, 0x83, 0x3b, 0x01],
        // lock test dword ptr [rbx], ecx
        &[0xf0, 0x85, 0x0b],
        // lock test byte ptr [rbx], 1
        &[0xf0, 0xf6, 0x03, 0x01],
        // lock mov dword ptr [rbx], ecx
        &[0xf0, 0x89, 0x0b],
        // lock mov dword ptr [rbx], 1
        &[0xf0, 0xc7, 0x03, 0x01, 0x00, 0x00, 0x00],
        // lock bt dword ptr [rbx], ecx
        &[0xf0, 0x0f, 0xa3, 0x0b],
        // lock bt dword ptr [rbx], 1
        &[0xf0, 0x0f, 0xba, 0x23, 0x01],
        // lock bts eax, ecx
        &[0xf0, 0x0f, 0xab, 0xc8],
        // lock xchg eax, ecx
        &[0xf0, 0x87, 0xc8],
        // lock cmpxchg eax, ecx
        &[0xf0, 0x0f, 0xb1, 0xc8],
        // lock xadd eax, ecx
        &[0xf0, 0x0f, 0xc1, 0xc8],
        // lock inc al
        &[0xf0, 0xfe, 0xc0],
        // lock neg eax
        &[0xf0, 0xf7, 0xd8],
        // lock not eax
        &[0xf0, 0xf7, 0xd0],
        // lock movsb
        &[0xf0, 0xa4],
        // lock push qword ptr [rbx]
        &[0xf0, 0xff, 0x33],
        // lock pop qword ptr [rbx]
        &[0xf0, 0x8f, 0x03],
        // lock movzx eax, byte ptr [rbx]
        &[0xf0, 0x0f, 0xb6, 0x03],
        // lock mov eax, cr0
        &[0xf0, 0x0f, 0x20, 0xc0],
        // lock movdqa xmm0, xmmword ptr [rbx]
        &[0xf0, 0x66, 0x0f, 0x6f, 0x03],
        // lock movbe dword ptr [rbx], eax
        &[0xf0, 0x0f, 0x38, 0xf1, 0x03],
        // lock mov word ptr [rbx], ds
        &[0xf0, 0x8c, 0x1b],
        // lock smsw word ptr [rbx]
        &[0xf0, 0x0f, 0x01, 0x23],
    ];
    for bytes in cases {
        assert_eq!(
            harness::dec_err(bytes, CpuMode::Long64),
            DecodeErrorKind::Invalid,
            "{bytes:02x?}"
        );
    }
    // lock add dword ptr [ebx], eax is fine in 32-bit mode, lock add eax, ebx is not
    assert_eq!(
        harness::dec_err(&[0xf0, 0x01, 0xd8], CpuMode::Protected32),
        DecodeErrorKind::Invalid
    );
}
