// SPDX-License-Identifier: GPL-2.0
//! Restart semantics: an MMIO read that stops (`Error::Stop`) leaves the
//! vCPU exactly as it was; answering the read and running the same
//! instruction again completes it; writes to MMIO are accepted.

pub mod common;
pub mod harness;

use common::{Access, Stop};
use harness::*;
use vmm_emul::{CpuMode, Error, Step};

/// 64-bit mode with MMIO at 0xf000-0xf0ff: rbx, rsi and rsp point into it,
/// rdi at RAM 0x3000, rax = 0x1111, rcx = 2, rdx = port 0x60.
fn setup() -> T {
    let mut t = T::long()
        .reg(RAX, 0x1111)
        .reg(RBX, 0xf000)
        .reg(RCX, 2)
        .reg(RDX, 0x60)
        .reg(RSI, 0xf000)
        .reg(RDI, 0x3000)
        .flags(CF);
    t.mem.mmio.push((0xf000, 0xf100));
    for (n, v) in t.cpu.vec.iter_mut().enumerate() {
        *v = [n as u8; 32];
    }
    t
}

/// Runs `bytes` once (it must stop on the MMIO read at `la` and change
/// nothing), then again with `answer` queued (it must complete).
fn stop_then_answer(mut t: T, bytes: &[u8], la: u64, answer: &[u8]) -> T {
    let insn = dec(bytes, CpuMode::Long64);
    let mem = t.mem.bytes.clone();
    assert_eq!(t.exec(&insn), Err(Error::Stop(Stop::MmioRead(la))), "{bytes:02x?}");
    assert_eq!(t.cpu, t.before, "{bytes:02x?}: the vCPU changed on a stop");
    assert_eq!(t.mem.bytes, mem, "{bytes:02x?}");
    assert!(t.writes().is_empty(), "{bytes:02x?}: {:?}", t.writes());
    t.mem.mmio_answers = answer.to_vec();
    assert_eq!(t.exec(&insn), Ok(Step::Done), "{bytes:02x?}");
    assert_eq!(t.cpu.rip, t.before.rip + bytes.len() as u64);
    assert!(t.mem.mmio_answers.is_empty(), "{bytes:02x?}: answer not consumed");
    t
}

fn mmio_writes(t: &T) -> Vec<(u64, Vec<u8>)> {
    t.accesses()
        .iter()
        .filter_map(|a| match a {
            Access::Write { la, data } if (0xf000..0xf100).contains(la) => {
                Some((*la, data.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn loads_stop_then_complete() {
    const A4: &[u8] = &[0x78, 0x56, 0x34, 0x12];
    // (bytes, la, answer, register, value after)
    type Case = (&'static [u8], u64, &'static [u8], usize, u64);
    let cases: &[Case] = &[
        // mov eax, dword ptr [rbx]
        (&[0x8b, 0x03], 0xf000, A4, RAX, 0x1234_5678),
        // mov rax, qword ptr [rbx+8]
        (&[0x48, 0x8b, 0x43, 0x08], 0xf008, &[1, 2, 3, 4, 5, 6, 7, 8], RAX, 0x0807_0605_0403_0201),
        // mov ah, byte ptr [rbx+1]
        (&[0x8a, 0x63, 0x01], 0xf001, &[0x99], RAX, 0x9911),
        // movzx ecx, word ptr [rbx]
        (&[0x0f, 0xb7, 0x0b], 0xf000, &[0xff, 0xee], RCX, 0xeeff),
        // movsx rcx, byte ptr [rbx]
        (&[0x48, 0x0f, 0xbe, 0x0b], 0xf000, &[0x80], RCX, 0xffff_ffff_ffff_ff80),
        // movbe eax, dword ptr [rbx]
        (&[0x0f, 0x38, 0xf0, 0x03], 0xf000, A4, RAX, 0x7856_3412),
        // mov rax, qword ptr [0xf010]
        (&[0x48, 0xa1, 0x10, 0xf0, 0, 0, 0, 0, 0, 0], 0xf010, &[1, 0, 0, 0, 0, 0, 0, 0], RAX, 1),
        // add ecx, dword ptr [rbx]
        (&[0x03, 0x0b], 0xf000, A4, RCX, 0x1234_567a),
        // lodsd
        (&[0xad], 0xf000, A4, RAX, 0x1234_5678),
    ];
    for (bytes, la, answer, r, v) in cases {
        let t = stop_then_answer(setup(), bytes, *la, answer);
        assert_eq!(t.gpr(*r), *v, "{bytes:02x?}");
    }
}

#[test]
fn flag_only_reads() {
    // cmp dword ptr [rbx], ecx
    let t = stop_then_answer(setup(), &[0x39, 0x0b], 0xf000, &[2, 0, 0, 0]);
    t.rflags(ZF | PF).regs(&[]);
    // test byte ptr [rbx], 0x80
    let t = stop_then_answer(setup(), &[0xf6, 0x03, 0x80], 0xf000, &[0x80]);
    t.rflags(SF).regs(&[]);
    // bt dword ptr [rbx], ecx
    let t = stop_then_answer(setup(), &[0x0f, 0xa3, 0x0b], 0xf000, &[4, 0, 0, 0]);
    t.rflags(CF).regs(&[]);
    // scasb (rdi in MMIO)
    let t = stop_then_answer(setup().reg(RDI, 0xf004), &[0xae], 0xf004, &[0x11]);
    t.rflags(ZF | PF).regs(&[(RDI, 0xf005)]);
}

#[test]
fn read_modify_write_on_mmio() {
    // add dword ptr [rbx], ecx
    let t = stop_then_answer(setup(), &[0x01, 0x0b], 0xf000, &[0xfe, 0xff, 0xff, 0xff]);
    assert_eq!(mmio_writes(&t), vec![(0xf000, vec![0, 0, 0, 0])]);
    t.rflags(CF | ZF | AF | PF);
    // not dword ptr [rbx]
    let t = stop_then_answer(setup(), &[0xf7, 0x13], 0xf000, &[0, 0, 0, 0]);
    assert_eq!(mmio_writes(&t), vec![(0xf000, vec![0xff; 4])]);
    // inc byte ptr [rbx+3]
    let t = stop_then_answer(setup(), &[0xfe, 0x43, 0x03], 0xf003, &[0x41]);
    assert_eq!(mmio_writes(&t), vec![(0xf003, vec![0x42])]);
    // xadd dword ptr [rbx], ecx
    let t = stop_then_answer(setup(), &[0x0f, 0xc1, 0x0b], 0xf000, &[5, 0, 0, 0]);
    assert_eq!(mmio_writes(&t), vec![(0xf000, vec![7, 0, 0, 0])]);
    t.regs(&[(RCX, 5)]);
    // cmpxchg dword ptr [rbx], ecx (not equal: eax gets the answer)
    let t = stop_then_answer(setup(), &[0x0f, 0xb1, 0x0b], 0xf000, &[9, 0, 0, 0]);
    t.regs(&[(RAX, 9)]);
    // bts dword ptr [rbx], ecx
    let t = stop_then_answer(setup(), &[0x0f, 0xab, 0x0b], 0xf000, &[0, 0, 0, 0]);
    assert_eq!(mmio_writes(&t), vec![(0xf000, vec![4, 0, 0, 0])]);
    // lock or dword ptr [rbx], ecx: the locked write goes through Memory::cmpxchg
    // with the answered value as the old one (FlatMem compares against its
    // RAM bytes, so those are made to match).
    let mut t = setup();
    t.mem.poke(0xf000, &[1, 0, 0, 0]);
    let t = stop_then_answer(t, &[0xf0, 0x09, 0x0b], 0xf000, &[1, 0, 0, 0]);
    assert_eq!(
        t.writes(),
        vec![Access::Cmpxchg { la: 0xf000, old: vec![1, 0, 0, 0], new: vec![3, 0, 0, 0] }]
    );
}

#[test]
fn other_stopping_reads() {
    // push qword ptr [rbx]
    let t = stop_then_answer(
        setup().reg(RSP, 0x8000),
        &[0xff, 0x33],
        0xf000,
        &[1, 2, 3, 4, 5, 6, 7, 8],
    );
    t.regs(&[(RSP, 0x7ff8)]).at(0x7ff8, 8, 0x0807_0605_0403_0201);
    // pop rax (the stack is MMIO)
    let t = stop_then_answer(
        setup().reg(RSP, 0xf0f8),
        &[0x8f, 0xc0],
        0xf0f8,
        &[1, 0, 0, 0, 0, 0, 0, 0],
    );
    t.regs(&[(RAX, 1), (RSP, 0xf100)]);
    // movdqa xmm0, xmmword ptr [rbx]
    let t = stop_then_answer(setup(), &[0x66, 0x0f, 0x6f, 0x03], 0xf000, &[0x5a; 16]);
    let mut want = [0x5a; 32];
    want[16..].copy_from_slice(&[0; 16]);
    assert_eq!(t.cpu.vec[0], want);
    // vmovdqu ymm1, ymmword ptr [rbx]
    let t = stop_then_answer(setup(), &[0xc5, 0xfe, 0x6f, 0x0b], 0xf000, &[0x77; 32]);
    assert_eq!(t.cpu.vec[1], [0x77; 32]);
    // movsb (source in MMIO)
    let t = stop_then_answer(setup(), &[0xa4], 0xf000, &[0x66]);
    t.regs(&[(RSI, 0xf001), (RDI, 0x3001)]).at(0x3000, 1, 0x66);
    // outsb (source in MMIO)
    let t = stop_then_answer(setup(), &[0x6e], 0xf000, &[0x66]);
    assert_eq!(t.accesses().last(), Some(&Access::Out { port: 0x60, data: vec![0x66] }));
}

#[test]
fn two_mmio_reads_restart_twice() {
    // cmpsb with both strings in MMIO: the first run stops on [rsi], the
    // second on [rdi] (with [rsi] answered), the third completes.
    let mut t = setup().reg(RDI, 0xf080);
    // cmpsb
    let insn = dec(&[0xa6], CpuMode::Long64);
    let start = t.cpu.clone();
    assert_eq!(t.exec(&insn), Err(Error::Stop(Stop::MmioRead(0xf000))));
    assert_eq!(t.cpu, start);
    t.mem.mmio_answers = vec![0x41];
    assert_eq!(t.exec(&insn), Err(Error::Stop(Stop::MmioRead(0xf080))));
    assert_eq!(t.cpu, start);
    t.mem.mmio_answers = vec![0x41, 0x41, 0x42];
    assert_eq!(t.exec(&insn), Ok(Step::Done));
    t.regs(&[(RSI, 0xf001), (RDI, 0xf081)]).rflags(ZF | PF);
    assert_eq!(t.mem.mmio_answers, vec![0x42], "only the two reads of this run");
}

#[test]
fn writes_to_mmio_are_accepted() {
    // (bytes, data written at 0xf000)
    let cases: &[(&[u8], &[u8])] = &[
        // mov dword ptr [rbx], eax
        (&[0x89, 0x03], &[0x11, 0x11, 0, 0]),
        // mov byte ptr [rbx], 0x5a
        (&[0xc6, 0x03, 0x5a], &[0x5a]),
        // mov qword ptr [rbx], -1
        (&[0x48, 0xc7, 0x03, 0xff, 0xff, 0xff, 0xff], &[0xff; 8]),
        // mov word ptr [rbx], ds
        (&[0x8c, 0x1b], &[0, 0]),
        // movnti dword ptr [rbx], ecx
        (&[0x0f, 0xc3, 0x0b], &[2, 0, 0, 0]),
        // movbe dword ptr [rbx], ecx
        (&[0x0f, 0x38, 0xf1, 0x0b], &[0, 0, 0, 2]),
        // movaps xmmword ptr [rbx], xmm3
        (&[0x0f, 0x29, 0x1b], &[3; 16]),
        // vmovdqa ymmword ptr [rbx], ymm4
        (&[0xc5, 0xfd, 0x7f, 0x23], &[4; 32]),
        // movq qword ptr [rbx], xmm5
        (&[0x66, 0x0f, 0xd6, 0x2b], &[5; 8]),
        // smsw word ptr [rbx]
        (&[0x0f, 0x01, 0x23], &[0x33, 0x00]),
    ];
    for (bytes, data) in cases {
        let t = setup().done(bytes);
        assert_eq!(mmio_writes(&t), vec![(0xf000, data.to_vec())], "{bytes:02x?}");
        assert!(t.mem.bytes.is_empty(), "MMIO writes do not land in RAM");
        t.regs(&[]);
    }
    // pop qword ptr [rbx] (stack in RAM, destination MMIO)
    let t = setup().reg(RSP, 0x7ff8).mem(0x7ff8, 0x1234, 8).done(&[0x8f, 0x03]);
    assert_eq!(mmio_writes(&t), vec![(0xf000, vec![0x34, 0x12, 0, 0, 0, 0, 0, 0])]);
    t.regs(&[(RSP, 0x8000)]);
    // push rax (stack is MMIO)
    let t = setup().reg(RSP, 0xf008).done(&[0xff, 0xf0]);
    assert_eq!(mmio_writes(&t), vec![(0xf000, vec![0x11, 0x11, 0, 0, 0, 0, 0, 0])]);
    // rep stosb into MMIO
    let t = setup().reg(RDI, 0xf010).done(&[0xf3, 0xaa]);
    assert_eq!(mmio_writes(&t), vec![(0xf010, vec![0x11]), (0xf011, vec![0x11])]);
    t.regs(&[(RCX, 0), (RDI, 0xf012)]);
    let mut t = setup().reg(RDI, 0xf020);
    t.mem.port_data = vec![0xab, 0xcd];
    // insw into MMIO
    let t = t.done(&[0x66, 0x6d]);
    assert_eq!(mmio_writes(&t), vec![(0xf020, vec![0xab, 0xcd])]);
    // movsb from RAM into MMIO
    let t = setup().reg(RSI, 0x3000).reg(RDI, 0xf030).mem(0x3000, 0x99, 1).done(&[0xa4]);
    assert_eq!(mmio_writes(&t), vec![(0xf030, vec![0x99])]);
}
