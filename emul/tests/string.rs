// SPDX-License-Identifier: GPL-2.0
//! String instructions: movs, cmps, stos, lods, scas, ins, outs in every
//! size, with and without REP/REPE/REPNE; count 0; the REP budget and
//! `Step::Partial`; DF = 1; 16- and 32-bit address sizes; segment
//! overrides; and a fault or MMIO stop part-way through.

pub mod common;
pub mod harness;

use common::{Access, Stop};
use harness::*;
use vmm_emul::{CpuMode, Error, Exception, Seg, Step};

/// 64-bit mode, rsi = 0x2000 (bytes 0x10, 0x11, ... 0x1f), rdi = 0x3000,
/// dx = port 0x60.
fn setup() -> T {
    let mut t = T::long().reg(RSI, 0x2000).reg(RDI, 0x3000).reg(RDX, 0x60).flags(0);
    t.mem.poke(0x2000, &(0x10..0x20).collect::<Vec<u8>>());
    t
}

#[test]
fn single_iteration_forms() {
    // (bytes, rsi after, rdi after, rax after, bytes at 0x3000 after)
    type Case = (&'static [u8], u64, u64, u64, &'static [u8]);
    let cases: &[Case] = &[
        // movsb
        (&[0xa4], 0x2001, 0x3001, 0xaaaa_aaaa_aaaa_aaaa, &[0x10, 0, 0, 0, 0, 0, 0, 0]),
        // movsw
        (&[0x66, 0xa5], 0x2002, 0x3002, 0xaaaa_aaaa_aaaa_aaaa, &[0x10, 0x11, 0, 0, 0, 0, 0, 0]),
        // movsd
        (&[0xa5], 0x2004, 0x3004, 0xaaaa_aaaa_aaaa_aaaa, &[0x10, 0x11, 0x12, 0x13, 0, 0, 0, 0]),
        // movsq
        (
            &[0x48, 0xa5],
            0x2008,
            0x3008,
            0xaaaa_aaaa_aaaa_aaaa,
            &[0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17],
        ),
        // stosb
        (&[0xaa], 0x2000, 0x3001, 0xaaaa_aaaa_aaaa_aaaa, &[0xaa, 0, 0, 0, 0, 0, 0, 0]),
        // stosw
        (&[0x66, 0xab], 0x2000, 0x3002, 0xaaaa_aaaa_aaaa_aaaa, &[0xaa, 0xaa, 0, 0, 0, 0, 0, 0]),
        // stosd
        (&[0xab], 0x2000, 0x3004, 0xaaaa_aaaa_aaaa_aaaa, &[0xaa, 0xaa, 0xaa, 0xaa, 0, 0, 0, 0]),
        // stosq
        (&[0x48, 0xab], 0x2000, 0x3008, 0xaaaa_aaaa_aaaa_aaaa, &[0xaa; 8]),
        // lodsb
        (&[0xac], 0x2001, 0x3000, 0xaaaa_aaaa_aaaa_aa10, &[0; 8]),
        // lodsw
        (&[0x66, 0xad], 0x2002, 0x3000, 0xaaaa_aaaa_aaaa_1110, &[0; 8]),
        // lodsd (the 32-bit write zero-extends)
        (&[0xad], 0x2004, 0x3000, 0x1312_1110, &[0; 8]),
        // lodsq
        (&[0x48, 0xad], 0x2008, 0x3000, 0x1716_1514_1312_1110, &[0; 8]),
    ];
    for (bytes, si, di, ax, out) in cases {
        let t = setup().reg(RAX, 0xaaaa_aaaa_aaaa_aaaa).done(bytes);
        t.regs(&[(RSI, *si), (RDI, *di), (RAX, *ax)]).rflags(0);
        assert_eq!(t.mem.peek(0x3000, 8), out.to_vec(), "{bytes:02x?}");
    }
}

#[test]
fn single_compare_forms() {
    // (bytes, [rsi], [rdi], rax, rsi after, rdi after, flags)
    type Case = (&'static [u8], u64, u64, u64, u64, u64, u64);
    let cases: &[Case] = &[
        // cmpsb
        (&[0xa6], 0x58, 0x59, 0, 0x2001, 0x3001, CF | SF | AF | PF),
        // cmpsw
        (&[0x66, 0xa7], 0x1234, 0x1234, 0, 0x2002, 0x3002, ZF | PF),
        // cmpsd
        (&[0xa7], 5, 7, 0, 0x2004, 0x3004, CF | SF | AF),
        // cmpsq
        (&[0x48, 0xa7], 0x8000_0000_0000_0000, 1, 0, 0x2008, 0x3008, OF | AF | PF),
        // scasb
        (&[0xae], 0, 0x01, 0x1280, 0x2000, 0x3001, OF | AF),
        // scasw
        (&[0x66, 0xaf], 0, 0x8000, 0x8000, 0x2000, 0x3002, ZF | PF),
        // scasd
        (&[0xaf], 0, 0x10, 0xffff_ffff_0000_0008, 0x2000, 0x3004, CF | SF),
        // scasq
        (&[0x48, 0xaf], 0, 1, 1, 0x2000, 0x3008, ZF | PF),
    ];
    for (bytes, s, d, ax, si, di, f) in cases {
        let t = setup().mem(0x2000, *s, 8).mem(0x3000, *d, 8).reg(RAX, *ax).done(bytes);
        t.regs(&[(RSI, *si), (RDI, *di)]).rflags(*f);
        assert!(t.writes().is_empty(), "{bytes:02x?}");
    }
}

#[test]
fn ins_outs_forms() {
    // (bytes, size moved)
    let ins: &[(&[u8], usize)] = &[
        // insb
        (&[0x6c], 1),
        // insw
        (&[0x66, 0x6d], 2),
        // insd
        (&[0x6d], 4),
        // insd (REX.W does not make a 64-bit port access)
        (&[0x48, 0x6d], 4),
    ];
    for (bytes, n) in ins {
        let mut t = setup();
        t.mem.port_data = vec![0xa1, 0xa2, 0xa3, 0xa4, 0xa5];
        let t = t.done(bytes);
        t.regs(&[(RDI, 0x3000 + *n as u64)]);
        assert_eq!(t.accesses()[0], Access::In { port: 0x60, len: *n });
        assert_eq!(t.mem.peek(0x3000, *n), vec![0xa1, 0xa2, 0xa3, 0xa4][..*n].to_vec());
        assert_eq!(t.mem.peek(0x3000 + *n as u64, 1), vec![0]);
    }
    let outs: &[(&[u8], usize)] = &[
        // outsb
        (&[0x6e], 1),
        // outsw
        (&[0x66, 0x6f], 2),
        // outsd
        (&[0x6f], 4),
        // outsd (REX.W)
        (&[0x48, 0x6f], 4),
    ];
    for (bytes, n) in outs {
        let t = setup().done(bytes);
        t.regs(&[(RSI, 0x2000 + *n as u64)]);
        let data: Vec<u8> = (0x10..0x10 + *n as u8).collect();
        assert_eq!(t.accesses().last(), Some(&Access::Out { port: 0x60, data }), "{bytes:02x?}");
    }
    // outsb fs:[rsi] (the source segment can be overridden)
    let t = setup().seg_base(Seg::Fs, 0x1000).mem(0x3000, 0x5a, 1).done(&[0x64, 0x6e]);
    assert_eq!(t.accesses().last(), Some(&Access::Out { port: 0x60, data: vec![0x5a] }));
    assert_eq!(t.read_las(), vec![0x3000]);
}

#[test]
fn segment_overrides() {
    // movsb fs:[rsi] -> es:[rdi] (64-bit: FS base applies, ES base does not)
    let t = setup()
        .seg_base(Seg::Fs, 0x1000)
        .seg_base(Seg::Es, 0x10_0000)
        .mem(0x3000, 0x77, 1)
        .done(&[0x64, 0xa4]);
    assert_eq!(t.read_las(), vec![0x3000]);
    assert_eq!(t.write_las(), vec![0x3000]);
    // 32-bit: movsb es:[esi] -> es:[edi]; stos ignores an override for its destination
    let t = T::prot32()
        .reg(RSI, 0x100)
        .reg(RDI, 0x200)
        .reg(RAX, 0x42)
        .seg_base(Seg::Es, 0x1_0000)
        .seg_base(Seg::Fs, 0x2_0000)
        .mem(0x1_0100, 0x99, 1);
    // movsb byte ptr es:[edi], byte ptr es:[esi]
    let t = t.done(&[0x26, 0xa4]);
    assert_eq!(t.read_las(), vec![0x1_0100]);
    t.at(0x1_0200, 1, 0x99);
    // stosb byte ptr es:[edi] (with an FS prefix, which does not apply)
    let t = t.done(&[0x64, 0xaa]);
    assert_eq!(t.write_las(), vec![0x1_0201]);
    // lodsb byte ptr fs:[esi]
    let t = t.done(&[0x64, 0xac]);
    assert_eq!(t.read_las(), vec![0x2_0101]);
    // scasb byte ptr es:[edi] with a CS prefix: rDI is always ES
    let t = t.done(&[0x2e, 0xae]);
    assert_eq!(t.read_las(), vec![0x1_0202]);
}

#[test]
fn rep_forms_complete() {
    // rep movsb
    let t = setup().reg(RCX, 3).done(&[0xf3, 0xa4]);
    t.regs(&[(RCX, 0), (RSI, 0x2003), (RDI, 0x3003)]);
    assert_eq!(t.mem.peek(0x3000, 4), vec![0x10, 0x11, 0x12, 0]);
    // rep movsb, written with F2 (REPNE means REP here)
    let t = setup().reg(RCX, 3).done(&[0xf2, 0xa4]);
    t.regs(&[(RCX, 0), (RSI, 0x2003), (RDI, 0x3003)]);
    // rep movsq
    let t = setup().reg(RCX, 2).done(&[0xf3, 0x48, 0xa5]);
    t.regs(&[(RCX, 0), (RSI, 0x2010), (RDI, 0x3010)]);
    assert_eq!(t.mem.peek(0x3000, 16), (0x10..0x20).collect::<Vec<u8>>());
    // rep stosd
    let t = setup().reg(RCX, 3).reg(RAX, 0x1122_3344).done(&[0xf3, 0xab]);
    t.regs(&[(RCX, 0), (RDI, 0x300c)]);
    assert_eq!(t.mem.peek_u64(0x3008, 4), 0x1122_3344);
    // rep stosw
    let t = setup().reg(RCX, 2).reg(RAX, 0xbeef).done(&[0x66, 0xf3, 0xab]);
    t.regs(&[(RCX, 0), (RDI, 0x3004)]).at(0x3000, 4, 0xbeef_beef);
    // rep lodsb
    let t = setup().reg(RCX, 3).reg(RAX, 0x1100).done(&[0xf3, 0xac]);
    t.regs(&[(RCX, 0), (RSI, 0x2003), (RAX, 0x1112)]);
    let mut t = setup().reg(RCX, 3);
    t.mem.port_data = vec![1, 2, 3, 4];
    // rep insb
    let t = t.done(&[0xf3, 0x6c]);
    t.regs(&[(RCX, 0), (RDI, 0x3003)]);
    assert_eq!(t.mem.peek(0x3000, 4), vec![1, 2, 3, 0]);
    assert_eq!(t.mem.port_data, vec![4]);
    let mut t = setup().reg(RCX, 2);
    t.mem.port_data = vec![1, 2, 3, 4];
    // rep insw
    let t = t.done(&[0x66, 0xf3, 0x6d]);
    t.regs(&[(RCX, 0), (RDI, 0x3004)]).at(0x3000, 4, 0x0403_0201);
    // rep outsb
    let t = setup().reg(RCX, 2).done(&[0xf3, 0x6e]);
    t.regs(&[(RCX, 0), (RSI, 0x2002)]);
    let outs: Vec<_> =
        t.accesses().iter().filter(|a| matches!(a, Access::Out { .. })).cloned().collect();
    assert_eq!(
        outs,
        vec![
            Access::Out { port: 0x60, data: vec![0x10] },
            Access::Out { port: 0x60, data: vec![0x11] }
        ]
    );
    // rep outsd
    let t = setup().reg(RCX, 2).done(&[0xf3, 0x6f]);
    t.regs(&[(RCX, 0), (RSI, 0x2008)]);
    assert_eq!(
        t.accesses().last(),
        Some(&Access::Out { port: 0x60, data: vec![0x14, 0x15, 0x16, 0x17] })
    );
}

#[test]
fn rep_count_zero_does_nothing() {
    let cases: &[&[u8]] = &[
        // rep movsb
        &[0xf3, 0xa4],
        // rep stosq
        &[0xf3, 0x48, 0xab],
        // rep lodsd
        &[0xf3, 0xad],
        // repe cmpsb
        &[0xf3, 0xa6],
        // repne scasb
        &[0xf2, 0xae],
        // rep insb
        &[0xf3, 0x6c],
        // rep outsw
        &[0x66, 0xf3, 0x6f],
    ];
    for bytes in cases {
        let t = setup().reg(RCX, 0).reg(RAX, 0x55).flags(CF | ZF).done(bytes);
        t.regs(&[]).rflags(CF | ZF);
        assert!(t.accesses().is_empty(), "{bytes:02x?}: {:?}", t.accesses());
    }
    // rep movsb with cx = 0 in 16-bit addressing, bits 31:16 of ecx set
    let t = T::real().reg(RCX, 0x1_0000).reg(RSI, 0x10).reg(RDI, 0x20).done(&[0xf3, 0xa4]);
    t.regs(&[]);
    assert!(t.accesses().is_empty());
}

#[test]
fn rep_count_zero_addr32_in_64bit_mode() {
    // With ecx = 0 the CPU still writes ecx, esi and edi (unchanged), which
    // clears bits 63:32 (see exec.rs `zero_count`, taken from the host-CPU
    // comparison).
    let t = setup()
        .reg(RCX, 0xffff_ffff_0000_0000)
        .reg(RSI, 0xffff_ffff_0000_2000)
        .reg(RDI, 0xffff_ffff_0000_3000)
        // rep movsb (addr32)
        .done(&[0x67, 0xf3, 0xa4]);
    t.regs(&[(RCX, 0), (RSI, 0x2000), (RDI, 0x3000)]);
    assert!(t.accesses().is_empty());
}

#[test]
fn repe_repne_termination() {
    let mut t = setup().reg(RCX, 10);
    t.mem.poke(0x2000, b"abcX");
    t.mem.poke(0x3000, b"abcY");
    // repe cmpsb: stops at the first difference ("abcX" vs "abcY")
    let t = t.done(&[0xf3, 0xa6]);
    t.regs(&[(RCX, 6), (RSI, 0x2004), (RDI, 0x3004)]).rflags(CF | SF | AF | PF);
    let mut t = setup().reg(RCX, 3);
    t.mem.poke(0x2000, b"abc");
    t.mem.poke(0x3000, b"abc");
    // repe cmpsb: runs out of count with all equal
    let t = t.done(&[0xf3, 0xa6]);
    t.regs(&[(RCX, 0), (RSI, 0x2003), (RDI, 0x3003)]).rflags(ZF | PF);
    let mut t = setup().reg(RCX, 10);
    t.mem.poke(0x2000, b"abcd");
    t.mem.poke(0x3000, b"xbyz");
    // repne cmpsb: stops at the first equal pair ("abcd" vs "xbyz")
    let t = t.done(&[0xf2, 0xa6]);
    t.regs(&[(RCX, 8), (RSI, 0x2002), (RDI, 0x3002)]).rflags(ZF | PF);
    let mut t = setup().reg(RCX, 10).reg(RAX, u64::from(b'c'));
    t.mem.poke(0x3000, b"abcd");
    // repne scasb: finds 'c' in "abcd"
    let t = t.done(&[0xf2, 0xae]);
    t.regs(&[(RCX, 7), (RDI, 0x3003)]).rflags(ZF | PF);
    let mut t = setup().reg(RCX, 4).reg(RAX, u64::from(b'z')).flags(ZF);
    t.mem.poke(0x3000, b"abcd");
    // repne scasb: 'z' is not in "abcd": the count runs out, ZF clear
    let t = t.done(&[0xf2, 0xae]);
    t.regs(&[(RCX, 0), (RDI, 0x3004)]).rflags(0);
    let mut t = setup().reg(RCX, 10).reg(RAX, u64::from(b'a'));
    t.mem.poke(0x3000, b"aab");
    // repe scasb: skips the leading 'a's of "aab"
    let t = t.done(&[0xf3, 0xae]);
    t.regs(&[(RCX, 7), (RDI, 0x3003)]).rflags(CF | SF | AF | PF);
    // repe scasd
    let t = setup().reg(RCX, 4).reg(RAX, 0).mem(0x3008, 1, 4).done(&[0xf3, 0xaf]);
    t.regs(&[(RCX, 1), (RDI, 0x300c)]).rflags(CF | SF | AF | PF);
}

#[test]
fn rep_budget_partial_then_done() {
    let mut t = setup().reg(RCX, 5).reg(RAX, 0x42);
    t.cfg.rep_budget = 2;
    // rep stosb with 5 to go and a budget of 2
    let insn = dec(&[0xf3, 0xaa], CpuMode::Long64);
    assert_eq!(t.exec(&insn), Ok(Step::Partial));
    assert_eq!(t.cpu.rip, 0x1000, "RIP stays on a partial REP");
    t.regs(&[(RCX, 3), (RDI, 0x3002)]);
    assert_eq!(t.exec(&insn), Ok(Step::Partial));
    t.regs(&[(RCX, 1), (RDI, 0x3004)]);
    assert_eq!(t.exec(&insn), Ok(Step::Done));
    t.regs(&[(RCX, 0), (RDI, 0x3005)]);
    assert_eq!(t.cpu.rip, 0x1002);
    assert_eq!(t.mem.peek(0x3000, 6), vec![0x42, 0x42, 0x42, 0x42, 0x42, 0]);
    // A count that ends exactly at the budget is Done.
    let mut t = setup().reg(RCX, 2);
    t.cfg.rep_budget = 2;
    // rep movsb
    assert_eq!(t.run(&[0xf3, 0xa4]), Ok(Step::Done));
    assert_eq!(t.cpu.rip, 0x1002);
    // A budget of 0 still runs one iteration.
    let mut t = setup().reg(RCX, 2);
    t.cfg.rep_budget = 0;
    // rep movsb
    assert_eq!(t.run(&[0xf3, 0xa4]), Ok(Step::Partial));
    t.regs(&[(RCX, 1), (RSI, 0x2001), (RDI, 0x3001)]);
    let mut t = setup().reg(RCX, 5);
    t.cfg.rep_budget = 2;
    t.mem.poke(0x2000, b"aaaaa");
    t.mem.poke(0x3000, b"aaaaa");
    // repe cmpsb, budget 2, equal strings of 5: partial, then stops on the count
    let insn = dec(&[0xf3, 0xa6], CpuMode::Long64);
    assert_eq!(t.exec(&insn), Ok(Step::Partial));
    t.regs(&[(RCX, 3), (RSI, 0x2002), (RDI, 0x3002)]).rflags(ZF | PF);
    assert_eq!(t.exec(&insn), Ok(Step::Partial));
    assert_eq!(t.exec(&insn), Ok(Step::Done));
    t.regs(&[(RCX, 0), (RSI, 0x2005), (RDI, 0x3005)]);
    // repne scasb, budget 2: terminates on ZF within the budget
    let mut t = setup().reg(RCX, 5).reg(RAX, u64::from(b'b'));
    t.cfg.rep_budget = 2;
    t.mem.poke(0x3000, b"ab");
    // repne scasb
    assert_eq!(t.run(&[0xf2, 0xae]), Ok(Step::Done));
    t.regs(&[(RCX, 3), (RDI, 0x3002)]).rflags(ZF | PF);
}

#[test]
fn direction_flag_set() {
    // rep movsb, backwards
    let t = setup().reg(RCX, 3).reg(RSI, 0x2002).reg(RDI, 0x3002).flags(DF).done(&[0xf3, 0xa4]);
    t.regs(&[(RCX, 0), (RSI, 0x1fff), (RDI, 0x2fff)]);
    assert_eq!(t.mem.peek(0x3000, 3), vec![0x10, 0x11, 0x12]);
    assert_eq!(t.read_las(), vec![0x2002, 0x2001, 0x2000]);
    // movsq, backwards
    let t = setup().flags(DF).done(&[0x48, 0xa5]);
    t.regs(&[(RSI, 0x1ff8), (RDI, 0x2ff8)]);
    // stosd, backwards
    let t = setup().reg(RAX, 0x1234_5678).flags(DF).done(&[0xab]);
    t.regs(&[(RDI, 0x2ffc)]).at(0x3000, 4, 0x1234_5678);
    // lodsw, backwards
    let t = setup().flags(DF).done(&[0x66, 0xad]);
    t.regs(&[(RSI, 0x1ffe), (RAX, 0x1110)]);
    let mut t = setup().reg(RCX, 10).reg(RDI, 0x3003).reg(RAX, u64::from(b'a')).flags(DF);
    t.mem.poke(0x3000, b"abcd");
    // repne scasb, backwards: finds 'a' at the start of "abcd" from 'd'
    let t = t.done(&[0xf2, 0xae]);
    t.regs(&[(RCX, 6), (RDI, 0x2fff)]).rflags(DF | ZF | PF);
    let mut t = setup().reg(RCX, 2).reg(RDI, 0x3001).flags(DF);
    t.mem.port_data = vec![7, 8];
    // rep insb, backwards
    let t = t.done(&[0xf3, 0x6c]);
    t.regs(&[(RCX, 0), (RDI, 0x2fff)]);
    assert_eq!(t.mem.peek(0x3000, 2), vec![8, 7]);
    // outsw, backwards
    let t = setup().flags(DF).done(&[0x66, 0x6f]);
    t.regs(&[(RSI, 0x1ffe)]);
}

#[test]
fn address_sizes() {
    let t = setup()
        .reg(RCX, 0xffff_ffff_0000_0003)
        .reg(RSI, 0xffff_ffff_0000_2000)
        .reg(RDI, 0xffff_ffff_0000_3000)
        // rep movsb (addr32 in 64-bit mode): esi/edi/ecx, zero-extended when written
        .done(&[0x67, 0xf3, 0xa4]);
    t.regs(&[(RCX, 0), (RSI, 0x2003), (RDI, 0x3003)]);
    assert_eq!(t.mem.peek(0x3000, 3), vec![0x10, 0x11, 0x12]);
    let mut t = T::long().reg(RCX, 2).reg(RSI, 0xffff_ffff).reg(RDI, 0x3000);
    t.mem.poke(0xffff_ffff, &[0xab]);
    t.mem.poke(0, &[0xcd]);
    // rep movsb (addr32): esi wraps from 0xffffffff to 0
    let t = t.done(&[0x67, 0xf3, 0xa4]);
    t.regs(&[(RCX, 0), (RSI, 1), (RDI, 0x3002)]);
    assert_eq!(t.read_las(), vec![0xffff_ffff, 0]);
    let mut t = T::real()
        .reg(RCX, 0x1234_0002)
        .reg(RSI, 0x1234_ffff)
        .reg(RDI, 0x5678_0100)
        .seg_base(Seg::Ds, 0x1_0000);
    t.mem.poke(0x1_ffff, &[0xab]);
    t.mem.poke(0x1_0000, &[0xcd]);
    // rep movsb in real mode: si/di/cx, wrapping at 64 KiB, bits 31:16 kept
    let t = t.done(&[0xf3, 0xa4]);
    t.regs(&[(RCX, 0x1234_0000), (RSI, 0x1234_0001), (RDI, 0x5678_0102)]);
    assert_eq!(t.read_las(), vec![0x1_ffff, 0x1_0000]);
    assert_eq!(t.mem.peek(0x100, 2), vec![0xab, 0xcd]);
    // rep stosb (addr16 in 32-bit mode): cx/di
    let t = T::prot32()
        .reg(RCX, 0xffff_0002)
        .reg(RDI, 0xffff_0100)
        .reg(RAX, 0x77)
        .done(&[0x67, 0xf3, 0xaa]);
    t.regs(&[(RCX, 0xffff_0000), (RDI, 0xffff_0102)]);
    assert_eq!(t.write_las(), vec![0x100, 0x101]);
    // rep stosb (addr32 in real mode): ecx/edi
    let t = T::real()
        .reg(RCX, 0x1_0001)
        .reg(RDI, 0x0001_fffe)
        .reg(RAX, 0x77)
        .with(|c| c.seg_mut(Seg::Es).limit = 0xffff_ffff);
    let mut t = t;
    t.cfg.rep_budget = 1;
    // rep stosb (addr32)
    assert_eq!(t.run(&[0x67, 0xf3, 0xaa]), Ok(Step::Partial));
    t.regs(&[(RCX, 0x1_0000), (RDI, 0x0001_ffff)]);
    assert_eq!(t.write_las(), vec![0x1_fffe]);
    // lodsw (16-bit protected mode)
    let t = T::prot16().reg(RSI, 0xfffe).mem(0xfffe, 0x4321, 2).done(&[0xad]);
    t.regs(&[(RSI, 0), (RAX, 0x4321)]);
}

#[test]
fn fault_part_way_keeps_completed_iterations() {
    // rep stosb with ES limit 0x3001: iteration 3 (edi = 0x3002) faults
    let mut t = T::prot32()
        .reg(RCX, 4)
        .reg(RDI, 0x3000)
        .reg(RAX, 0x42)
        .with(|c| c.seg_mut(Seg::Es).limit = 0x3001);
    // rep stosb
    let r = t.run(&[0xf3, 0xaa]);
    assert_eq!(r, exc(Exception::Gp(0)));
    t.regs(&[(RCX, 2), (RDI, 0x3002)]);
    assert_eq!(t.cpu.rip, 0x1000);
    assert_eq!(t.mem.peek(0x3000, 3), vec![0x42, 0x42, 0]);
    // rep movsd with DS limit 0x2007: iteration 3 (esi = 0x2008) faults
    let mut t = T::prot32()
        .reg(RCX, 5)
        .reg(RSI, 0x2000)
        .reg(RDI, 0x3000)
        .with(|c| c.seg_mut(Seg::Ds).limit = 0x2007);
    // rep movsd
    assert_eq!(t.run(&[0xf3, 0xa5]), exc(Exception::Gp(0)));
    t.regs(&[(RCX, 3), (RSI, 0x2008), (RDI, 0x3008)]);
    // rep lodsb through SS with SS limit 0x2000: iteration 2 faults with #SS
    let mut t = T::prot32()
        .reg(RCX, 5)
        .reg(RSI, 0x2000)
        .reg(RAX, 0)
        .mem(0x2000, 0x99, 1)
        .with(|c| c.seg_mut(Seg::Ss).limit = 0x2000);
    // rep lodsb byte ptr ss:[esi]
    assert_eq!(t.run(&[0x36, 0xf3, 0xac]), exc(Exception::Ss(0)));
    t.regs(&[(RCX, 4), (RSI, 0x2001), (RAX, 0x99)]);
    // A fault in the first iteration changes nothing.
    let mut t =
        T::prot32().reg(RCX, 5).reg(RDI, 0x3002).with(|c| c.seg_mut(Seg::Es).limit = 0x3001);
    // rep stosb
    assert_eq!(t.run(&[0xf3, 0xaa]), exc(Exception::Gp(0)));
    assert_eq!(t.cpu, t.before);
    // stosd (no REP) across the limit changes nothing
    T::prot32()
        .reg(RDI, 0x2ffe)
        .with(|c| c.seg_mut(Seg::Es).limit = 0x2fff)
        .fault(&[0xab], Exception::Gp(0));
    // rep movsq with a non-canonical destination part-way (64-bit)
    let mut t = T::long().reg(RCX, 3).reg(RSI, 0x2000).reg(RDI, 0x0000_7fff_ffff_fff0);
    // rep movsq
    assert_eq!(t.run(&[0xf3, 0x48, 0xa5]), exc(Exception::Gp(0)));
    t.regs(&[(RCX, 1), (RSI, 0x2010), (RDI, 0x0000_8000_0000_0000)]);
}

#[test]
fn mmio_stop_part_way_and_restart() {
    let mut t = setup().reg(RCX, 4);
    t.mem.mmio.push((0x2002, 0x2004));
    // rep movsb from 0x2000, of which 0x2002-0x2003 is MMIO
    let insn = dec(&[0xf3, 0xa4], CpuMode::Long64);
    assert_eq!(t.exec(&insn), Err(Error::Stop(Stop::MmioRead(0x2002))));
    t.regs(&[(RCX, 2), (RSI, 0x2002), (RDI, 0x3002)]);
    assert_eq!(t.cpu.rip, 0x1000);
    assert_eq!(t.mem.peek(0x3000, 3), vec![0x10, 0x11, 0]);
    // Userspace answers the read; the instruction runs again from where it was.
    t.mem.mmio_answers = vec![0xaa];
    assert_eq!(t.exec(&insn), Err(Error::Stop(Stop::MmioRead(0x2003))));
    t.regs(&[(RCX, 1), (RSI, 0x2003), (RDI, 0x3003)]);
    t.mem.mmio_answers = vec![0xbb];
    assert_eq!(t.exec(&insn), Ok(Step::Done));
    t.regs(&[(RCX, 0), (RSI, 0x2004), (RDI, 0x3004)]);
    assert_eq!(t.cpu.rip, 0x1002);
    assert_eq!(t.mem.peek(0x3000, 4), vec![0x10, 0x11, 0xaa, 0xbb]);
    // rep stosd into MMIO: writes are accepted, all iterations complete
    let mut t = setup().reg(RCX, 2).reg(RAX, 0x1234_5678);
    t.mem.mmio.push((0x3000, 0x3008));
    // rep stosd
    let t = t.done(&[0xf3, 0xab]);
    t.regs(&[(RCX, 0), (RDI, 0x3008)]);
    assert_eq!(t.write_las(), vec![0x3000, 0x3004]);
    // rep insb with the port stopping: nothing done
    let mut t = setup().reg(RCX, 2);
    t.mem.ports_stop = true;
    // rep insb
    assert_eq!(t.run(&[0xf3, 0x6c]), Err(Error::Stop(Stop::PortIn(0x60))));
    assert_eq!(t.cpu, t.before);
    assert!(t.writes().is_empty());
    // repe cmpsb where the second string is MMIO: stops in iteration 1 with nothing changed
    let mut t = setup().reg(RCX, 3).flags(CF);
    t.mem.mmio.push((0x3000, 0x3001));
    // repe cmpsb
    assert_eq!(t.run(&[0xf3, 0xa6]), Err(Error::Stop(Stop::MmioRead(0x3000))));
    assert_eq!(t.cpu, t.before);
}
