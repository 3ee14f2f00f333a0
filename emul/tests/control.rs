// SPDX-License-Identifier: GPL-2.0
//! Control-register instructions: mov to/from CR0, CR2, CR3, CR4 and CR8,
//! clts, lmsw and smsw; privilege checks and every #GP rule of a CR write.

pub mod common;
pub mod harness;

use common::{TestCpu, CR0_LONG, CR4_LONG};
use harness::*;
use vmm_emul::{seg::ATTR_L, CpuMode, DecodeErrorKind, Exception, Seg};

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_EM: u64 = 1 << 2;
const CR0_TS: u64 = 1 << 3;
const CR0_ET: u64 = 1 << 4;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_PGE: u64 = 1 << 7;
const CR4_UMIP: u64 = 1 << 11;
const CR4_LA57: u64 = 1 << 12;
const CR4_SMXE: u64 = 1 << 14;
const CR4_PCIDE: u64 = 1 << 17;
const EFER_LME: u64 = 1 << 8;

/// 32-bit protected mode, paging off.
fn prot32() -> T {
    T::prot32()
}

/// Compatibility mode (long mode active, CS.L = 0, 32-bit code).
fn compat32() -> T {
    let mut cpu = TestCpu::long();
    let cs = cpu.seg_mut(Seg::Cs);
    cs.attr = (cs.attr & !ATTR_L) | vmm_emul::seg::ATTR_DB;
    T::new(CpuMode::Compat32, cpu)
}

/// Runs `bytes` (a CR write from rax), which must succeed and load `want`.
fn cr_ok(t: T, bytes: &[u8], rax: u64, n: u8, want: u64) {
    let t = t.reg(RAX, rax).done(bytes);
    assert_eq!(t.cpu.cr_writes, vec![(n, want)], "{bytes:02x?} with {rax:#x}");
    t.regs(&[]);
}

/// Runs `bytes` (a CR write from rax), which must raise #GP(0) and
/// change nothing.
fn cr_gp(t: T, bytes: &[u8], rax: u64) {
    let t = t.reg(RAX, rax).fault(bytes, Exception::Gp(0));
    assert!(t.cpu.cr_writes.is_empty(), "{bytes:02x?} with {rax:#x}");
}

// mov cr0, rax
const TO_CR0: &[u8] = &[0x0f, 0x22, 0xc0];
// mov cr2, rax
const TO_CR2: &[u8] = &[0x0f, 0x22, 0xd0];
// mov cr3, rax
const TO_CR3: &[u8] = &[0x0f, 0x22, 0xd8];
// mov cr4, rax
const TO_CR4: &[u8] = &[0x0f, 0x22, 0xe0];
// mov cr8, rax
const TO_CR8: &[u8] = &[0x44, 0x0f, 0x22, 0xc0];

#[test]
fn mov_from_cr() {
    let setup = || {
        T::long().reg(RAX, 0x5555).with(|c| {
            c.cr2 = 0xffff_8000_1234_5678;
            c.cr3 = 0x1_2345_6000;
            c.cr8 = 0xa;
        })
    };
    // (bytes, register, value)
    let cases: &[(&[u8], usize, u64)] = &[
        // mov rax, cr0
        (&[0x0f, 0x20, 0xc0], RAX, CR0_LONG),
        // mov rax, cr2
        (&[0x0f, 0x20, 0xd0], RAX, 0xffff_8000_1234_5678),
        // mov rax, cr3
        (&[0x0f, 0x20, 0xd8], RAX, 0x1_2345_6000),
        // mov rax, cr4
        (&[0x0f, 0x20, 0xe0], RAX, CR4_LONG),
        // mov rax, cr8
        (&[0x44, 0x0f, 0x20, 0xc0], RAX, 0xa),
        // mov r15, cr0
        (&[0x41, 0x0f, 0x20, 0xc7], R15, CR0_LONG),
        // mov rax, cr0 (mod bits are ignored: 00 still names a register)
        (&[0x0f, 0x20, 0x00], RAX, CR0_LONG),
        // mov rax, cr0 (66 does not make it 16-bit)
        (&[0x66, 0x0f, 0x20, 0xc0], RAX, CR0_LONG),
    ];
    for (bytes, r, v) in cases {
        setup().done(bytes).regs(&[(*r, *v)]);
    }
    // mov eax, cr2 (32-bit mode: the low 32 bits)
    let t = prot32()
        .reg(RAX, 0xffff_ffff_ffff_ffff)
        .with(|c| c.cr2 = 0x1_2345_6789)
        .done(&[0x0f, 0x20, 0xd0]);
    t.regs(&[(RAX, 0x2345_6789)]);
    // mov ecx, cr0 (compatibility mode)
    let t = compat32().done(&[0x0f, 0x20, 0xc1]);
    t.regs(&[(RCX, CR0_LONG)]);
    // mov eax, cr0 (real mode)
    let t = T::real().done(&[0x0f, 0x20, 0xc0]);
    t.regs(&[(RAX, 0x10)]);
}

#[test]
fn cr_numbers_that_do_not_exist() {
    let cases: &[&[u8]] = &[
        // mov rax, cr1
        &[0x0f, 0x20, 0xc8],
        // mov rax, cr5
        &[0x0f, 0x20, 0xe8],
        // mov rax, cr6
        &[0x0f, 0x20, 0xf0],
        // mov rax, cr7
        &[0x0f, 0x20, 0xf8],
        // mov rax, cr9
        &[0x44, 0x0f, 0x20, 0xc8],
        // mov cr1, rax
        &[0x0f, 0x22, 0xc8],
        // mov cr15, rax
        &[0x44, 0x0f, 0x22, 0xf8],
    ];
    for bytes in cases {
        assert_eq!(
            harness::dec_err(bytes, CpuMode::Long64),
            DecodeErrorKind::Invalid,
            "{bytes:02x?}"
        );
    }
    // Outside 64-bit mode there is no REX, so no CR8: 44 is `inc esp`.
    // inc esp
    let insn = dec(&[0x44], CpuMode::Protected32);
    assert_eq!(insn.op, vmm_emul::Op::Inc);
    // inc esp (then 0f 20 c0, a separate instruction)
    assert_eq!(decode_len(&[0x44, 0x0f, 0x20, 0xc0], CpuMode::Protected32), 1);
    // lock mov eax, cr0 (AMD's CR8 alias outside 64-bit mode): #UD here
    assert_eq!(
        harness::dec_err(&[0xf0, 0x0f, 0x20, 0xc0], CpuMode::Protected32),
        DecodeErrorKind::Invalid
    );
    // lock mov cr0, eax
    assert_eq!(
        harness::dec_err(&[0xf0, 0x0f, 0x22, 0xc0], CpuMode::Compat32),
        DecodeErrorKind::Invalid
    );
}

fn decode_len(bytes: &[u8], mode: CpuMode) -> u8 {
    vmm_emul::decode(bytes, mode).unwrap().len
}

#[test]
fn privileged_at_cpl_above_0() {
    let cases: &[&[u8]] = &[
        // mov rax, cr0
        &[0x0f, 0x20, 0xc0],
        // mov rax, cr3
        &[0x0f, 0x20, 0xd8],
        // mov rax, cr8
        &[0x44, 0x0f, 0x20, 0xc0],
        // mov cr0, rax
        &[0x0f, 0x22, 0xc0],
        // mov cr3, rax
        &[0x0f, 0x22, 0xd8],
        // mov cr4, rax
        &[0x0f, 0x22, 0xe0],
        // mov cr8, rax
        &[0x44, 0x0f, 0x22, 0xc0],
        // clts
        &[0x0f, 0x06],
        // lmsw ax
        &[0x0f, 0x01, 0xf0],
        // lmsw word ptr [rbx]
        &[0x0f, 0x01, 0x33],
    ];
    for cpl in 1..=3 {
        for bytes in cases {
            let t = T::long()
                .reg(RAX, CR0_LONG)
                .reg(RBX, 0x2000)
                .with(|c| c.cpl = cpl)
                .fault(bytes, Exception::Gp(0));
            assert!(t.cpu.cr_writes.is_empty());
        }
    }
    // Virtual-8086 mode runs at CPL 3.
    let v86 = || {
        T::real().flags(VM).with(|c| {
            c.cr0 |= CR0_PE;
            c.cpl = 3;
        })
    };
    // clts
    v86().fault(&[0x0f, 0x06], Exception::Gp(0));
    // mov eax, cr0
    v86().fault(&[0x0f, 0x20, 0xc0], Exception::Gp(0));
    // lmsw ax
    v86().fault(&[0x0f, 0x01, 0xf0], Exception::Gp(0));
}

#[test]
fn mov_to_cr_accepted() {
    // mov cr0, rax (set TS)
    cr_ok(T::long(), TO_CR0, CR0_LONG | CR0_TS, 0, CR0_LONG | CR0_TS);
    // mov cr0, rax (CD and NW together)
    cr_ok(T::long(), TO_CR0, CR0_LONG | CR0_CD | CR0_NW, 0, CR0_LONG | CR0_CD | CR0_NW);
    // mov cr0, rcx
    let t = T::long().reg(RCX, CR0_LONG | CR0_MP).done(&[0x0f, 0x22, 0xc1]);
    assert_eq!(t.cpu.cr_writes, vec![(0, CR0_LONG | CR0_MP)]);
    // mov cr2, rax (any value)
    cr_ok(T::long(), TO_CR2, 0xdead_beef_0000_0000, 2, 0xdead_beef_0000_0000);
    // mov cr3, rax
    cr_ok(T::long(), TO_CR3, 0x3fff_ffff_f000, 3, 0x3fff_ffff_f000);
    // mov cr3, r9
    let t = T::long().reg(R9, 0x5000).done(&[0x41, 0x0f, 0x22, 0xd9]);
    assert_eq!(t.cpu.cr_writes, vec![(3, 0x5000)]);
    // mov cr3, rax (with PCIDE, bit 63 is the no-flush hint, not loaded)
    cr_ok(T::long().with(|c| c.cr4 |= CR4_PCIDE), TO_CR3, (1 << 63) | 0x5001, 3, 0x5001);
    // mov cr4, rax (set PGE)
    cr_ok(T::long(), TO_CR4, CR4_LONG | CR4_PGE, 4, CR4_LONG | CR4_PGE);
    // mov cr4, rax (set PCIDE in long mode with CR3[11:0] = 0)
    cr_ok(
        T::long().with(|c| c.cr3 = 0x5000),
        TO_CR4,
        CR4_LONG | CR4_PCIDE,
        4,
        CR4_LONG | CR4_PCIDE,
    );
    // mov cr4, rax (PCIDE already set: CR3[11:0] does not matter)
    let t = T::long().with(|c| {
        c.cr3 = 0x5001;
        c.cr4 |= CR4_PCIDE;
    });
    cr_ok(t, TO_CR4, CR4_LONG | CR4_PCIDE | CR4_PGE, 4, CR4_LONG | CR4_PCIDE | CR4_PGE);
    // mov cr4, rax (LA57 kept set in long mode)
    cr_ok(
        T::long().with(|c| c.cr4 |= CR4_LA57),
        TO_CR4,
        CR4_LONG | CR4_LA57 | CR4_PGE,
        4,
        CR4_LONG | CR4_LA57 | CR4_PGE,
    );
    // mov cr8, rax
    cr_ok(T::long(), TO_CR8, 15, 8, 15);
    // mov cr0, eax (32-bit: enable paging without LME)
    let t = prot32().reg(RAX, 0x8001_0011).done(&[0x0f, 0x22, 0xc0]);
    assert_eq!(t.cpu.cr_writes, vec![(0, 0x8001_0011)]);
    // mov cr0, eax (32-bit: enable paging with LME and PAE, entering long mode)
    let t = prot32().reg(RAX, 0x8000_0011).with(|c| {
        c.efer = EFER_LME;
        c.cr4 = CR4_PAE;
    });
    // mov cr0, eax
    let t = t.done(&[0x0f, 0x22, 0xc0]);
    assert_eq!(t.cpu.cr_writes, vec![(0, 0x8000_0011)]);
    // mov cr0, eax (compatibility mode: clear PG to leave long mode)
    let t = compat32().reg(RAX, CR0_LONG & !CR0_PG).done(&[0x0f, 0x22, 0xc0]);
    assert_eq!(t.cpu.cr_writes, vec![(0, CR0_LONG & !CR0_PG)]);
    // mov cr3, eax (legacy mode: no MAXPHYADDR check on 32 bits)
    let t = prot32().reg(RAX, 0xffff_f000).done(&[0x0f, 0x22, 0xd8]);
    assert_eq!(t.cpu.cr_writes, vec![(3, 0xffff_f000)]);
    // mov cr4, eax (legacy mode: clearing PAE is fine)
    let t = prot32().reg(RAX, 0x600).with(|c| c.cr4 |= CR4_PAE).done(&[0x0f, 0x22, 0xe0]);
    assert_eq!(t.cpu.cr_writes, vec![(4, 0x600)]);
    // mov cr0, eax (real mode: set PE)
    let t = T::real().reg(RAX, 0x11).done(&[0x0f, 0x22, 0xc0]);
    assert_eq!(t.cpu.cr_writes, vec![(0, 0x11)]);
    // mov cr0, eax (32-bit: bits 63:32 of rax are not part of eax)
    let t = prot32().reg(RAX, 0xffff_ffff_0000_0011).done(&[0x0f, 0x22, 0xc0]);
    assert_eq!(t.cpu.cr_writes, vec![(0, 0x11)]);
}

#[test]
fn mov_to_cr0_gp() {
    // mov cr0, rax: bits 63:32 reserved
    cr_gp(T::long(), TO_CR0, CR0_LONG | (1 << 32));
    // mov cr0, rax: bit 63
    cr_gp(T::long(), TO_CR0, CR0_LONG | (1 << 63));
    // mov cr0, rax: NW without CD
    cr_gp(T::long(), TO_CR0, CR0_LONG | CR0_NW);
    // mov cr0, rax: PG without PE
    cr_gp(T::long(), TO_CR0, CR0_LONG & !CR0_PE);
    // mov cr0, rax: clearing PG in 64-bit mode
    cr_gp(T::long(), TO_CR0, CR0_LONG & !CR0_PG);
    // mov cr0, eax: PG without PE (32-bit)
    cr_gp(prot32(), TO_CR0, 0x8000_0010);
    // mov cr0, eax: NW without CD (32-bit)
    cr_gp(prot32(), TO_CR0, 0x2000_0011);
    // mov cr0, eax: enabling paging with LME but without PAE
    cr_gp(prot32().with(|c| c.efer = EFER_LME), TO_CR0, 0x8000_0011);
    // mov cr0, eax: clearing PG with PCIDE set (compatibility mode)
    cr_gp(compat32().with(|c| c.cr4 |= CR4_PCIDE), TO_CR0, CR0_LONG & !CR0_PG);
}

#[test]
fn mov_to_cr3_gp() {
    // mov cr3, rax: bit 46 (MAXPHYADDR 46)
    cr_gp(T::long(), TO_CR3, 1 << 46);
    // mov cr3, rax: bit 63 without PCIDE
    cr_gp(T::long(), TO_CR3, (1 << 63) | 0x5000);
    // mov cr3, rax: bit 36 with MAXPHYADDR 36
    let mut t = T::long();
    t.cfg.phys_bits = 36;
    cr_gp(t, TO_CR3, 1 << 36);
    // mov cr3, rax: bit 35 with MAXPHYADDR 36 is fine
    let mut t = T::long();
    t.cfg.phys_bits = 36;
    cr_ok(t, TO_CR3, 1 << 35, 3, 1 << 35);
    // mov cr3, rax: bit 62 with PCIDE (only bit 63 is the hint)
    cr_gp(T::long().with(|c| c.cr4 |= CR4_PCIDE), TO_CR3, 1 << 62);
}

#[test]
fn mov_to_cr4_gp() {
    // mov cr4, rax: reserved bit 15
    cr_gp(T::long(), TO_CR4, CR4_LONG | (1 << 15));
    // mov cr4, rax: SMXE, not in the default allowed set
    cr_gp(T::long(), TO_CR4, CR4_LONG | CR4_SMXE);
    // mov cr4, rax: bit 32
    cr_gp(T::long(), TO_CR4, CR4_LONG | (1 << 32));
    // mov cr4, rax: PGE when Config::cr4_allowed leaves it out
    let mut t = T::long();
    t.cfg.cr4_allowed = CR4_LONG;
    cr_gp(t, TO_CR4, CR4_LONG | CR4_PGE);
    // mov cr4, rax: clearing PAE in long mode
    cr_gp(T::long(), TO_CR4, CR4_LONG & !CR4_PAE);
    // mov cr4, rax: setting LA57 in long mode
    cr_gp(T::long(), TO_CR4, CR4_LONG | CR4_LA57);
    // mov cr4, rax: clearing LA57 in long mode
    cr_gp(T::long().with(|c| c.cr4 |= CR4_LA57), TO_CR4, CR4_LONG);
    // mov cr4, eax: changing LA57 in compatibility mode (still IA-32e mode)
    cr_gp(compat32(), TO_CR4, CR4_LONG | CR4_LA57);
    // mov cr4, rax: setting PCIDE with CR3[11:0] != 0
    cr_gp(T::long().with(|c| c.cr3 = 0x5001), TO_CR4, CR4_LONG | CR4_PCIDE);
    // mov cr4, eax: setting PCIDE outside long mode
    cr_gp(prot32(), TO_CR4, 0x600 | CR4_PCIDE);
}

#[test]
fn mov_to_cr8_gp() {
    // mov cr8, rax: 16
    cr_gp(T::long(), TO_CR8, 16);
    // mov cr8, rax: bit 63
    cr_gp(T::long(), TO_CR8, 1 << 63);
}

#[test]
fn clts() {
    // clts
    let t = T::long().with(|c| c.cr0 |= CR0_TS).done(&[0x0f, 0x06]);
    assert_eq!(t.cpu.cr_writes, vec![(0, CR0_LONG)]);
    assert_eq!(t.cpu.cr0, CR0_LONG);
    t.regs(&[]);
    // clts (real mode, TS already clear)
    let t = T::real().done(&[0x0f, 0x06]);
    assert_eq!(t.cpu.cr_writes, vec![(0, 0x10)]);
}

#[test]
fn lmsw() {
    // (mode setup, bytes, ax or [rbx], CR0 before, CR0 after)
    let cases: &[(&[u8], u64, u64, u64)] = &[
        // lmsw ax (MP, EM, TS set; PE stays)
        (&[0x0f, 0x01, 0xf0], 0x000e, 0x11, 0x1f),
        // lmsw ax (cannot clear PE)
        (&[0x0f, 0x01, 0xf0], 0x0000, 0x1f, 0x11),
        // lmsw ax (only bits 3:0 are loaded)
        (&[0x0f, 0x01, 0xf0], 0xfff0, 0x8001_0011, 0x8001_0011),
        // lmsw cx
        (&[0x0f, 0x01, 0xf1], 0x0001, 0x10, 0x11),
        // lmsw word ptr [rbx]
        (&[0x0f, 0x01, 0x33], 0x0008, 0x11, 0x19),
        // lmsw word ptr [rbx] (REX.W changes nothing)
        (&[0x48, 0x0f, 0x01, 0x33], 0x0008, 0x11, 0x19),
    ];
    for (bytes, v, before, after) in cases {
        let t = T::long()
            .reg(RAX, *v)
            .reg(RCX, *v)
            .reg(RBX, 0x2000)
            .mem(0x2000, *v, 2)
            .with(|c| c.cr0 = *before);
        let t = t.done(bytes);
        assert_eq!(t.cpu.cr_writes, vec![(0, *after)], "{bytes:02x?}");
        t.regs(&[]);
    }
    // lmsw ax (real mode: sets PE)
    let t = T::real().reg(RAX, 1).done(&[0x0f, 0x01, 0xf0]);
    assert_eq!(t.cpu.cr_writes, vec![(0, CR0_ET | CR0_PE)]);
    // lmsw word ptr [bx+2]
    let t =
        T::real().reg(RBX, 0x2000).mem(0x2002, CR0_MP | CR0_EM, 2).done(&[0x0f, 0x01, 0x77, 0x02]);
    assert_eq!(t.cpu.cr_writes, vec![(0, CR0_ET | CR0_MP | CR0_EM)]);
}

#[test]
fn smsw() {
    // (bytes, register result, memory result)
    let cases: &[(&[u8], Option<u64>, Option<u64>)] = &[
        // smsw eax (64-bit mode: CR0[31:0], zero-extended)
        (&[0x0f, 0x01, 0xe0], Some(CR0_LONG), None),
        // smsw ax
        (&[0x66, 0x0f, 0x01, 0xe0], Some(0xffff_ffff_ffff_0033), None),
        // smsw rax
        (&[0x48, 0x0f, 0x01, 0xe0], Some(CR0_LONG), None),
        // smsw word ptr [rbx]
        (&[0x0f, 0x01, 0x23], None, Some(0xaaaa_0033)),
        // smsw word ptr [rbx] (REX.W: memory is still 16 bits)
        (&[0x48, 0x0f, 0x01, 0x23], None, Some(0xaaaa_0033)),
    ];
    for (bytes, r, m) in cases {
        for cpl in [0, 3] {
            let t = T::long()
                .reg(RAX, u64::MAX)
                .reg(RBX, 0x2000)
                .mem(0x2000, 0xaaaa_aaaa, 4)
                .with(|c| c.cpl = cpl);
            let t = t.done(bytes);
            match r {
                Some(v) => t.regs(&[(RAX, *v)]),
                None => t.regs(&[]),
            };
            if let Some(v) = m {
                t.at(0x2000, 4, *v);
            }
            assert!(t.cpu.cr_writes.is_empty());
        }
    }
    T::long()
        .with(|c| {
            c.cr4 |= CR4_UMIP;
            c.cpl = 3;
        })
        // smsw ax with CR4.UMIP at CPL 3: #GP(0)
        .fault(&[0x66, 0x0f, 0x01, 0xe0], Exception::Gp(0));
    T::long()
        .reg(RBX, 0x2000)
        .with(|c| {
            c.cr4 |= CR4_UMIP;
            c.cpl = 1;
        })
        // smsw word ptr [rbx] with CR4.UMIP at CPL 1
        .fault(&[0x0f, 0x01, 0x23], Exception::Gp(0));
    // smsw eax with CR4.UMIP at CPL 0: allowed
    let t = T::long().with(|c| c.cr4 |= CR4_UMIP).done(&[0x0f, 0x01, 0xe0]);
    t.regs(&[(RAX, CR0_LONG)]);
    // smsw word ptr [bx] (real mode)
    let t = T::real().reg(RBX, 0x100).done(&[0x0f, 0x01, 0x27]);
    t.at(0x100, 2, 0x10);
    // smsw ax (virtual-8086 mode, no UMIP)
    let t = T::real().flags(VM).with(|c| {
        c.cr0 |= CR0_PE;
        c.cpl = 3;
    });
    // smsw ax
    let t = t.done(&[0x0f, 0x01, 0xe0]);
    t.regs(&[(RAX, 0x11)]);
    // Other 0F 01 forms are not emulated.
    // swapgs
    assert_eq!(
        harness::dec_err(&[0x0f, 0x01, 0xf8], CpuMode::Long64),
        DecodeErrorKind::Unsupported
    );
    // xgetbv
    assert_eq!(
        harness::dec_err(&[0x0f, 0x01, 0xd0], CpuMode::Long64),
        DecodeErrorKind::Unsupported
    );
    // invlpg byte ptr [rax]
    assert_eq!(
        harness::dec_err(&[0x0f, 0x01, 0x38], CpuMode::Long64),
        DecodeErrorKind::Unsupported
    );
}

#[test]
fn default_cr4_allowed_as_documented() {
    // Config::default documents CR4 bits 0-12, 16 FSGSBASE, 17 PCIDE, 18
    // OSXSAVE, 20 SMEP, 21 SMAP and 22 PKE as allowed.
    for bit in (0..=12).chain([16, 18, 20, 21, 22]) {
        let mut t = prot32().reg(RAX, 0x4_0600 | (1 << bit));
        // mov cr4, eax (32-bit protected mode)
        assert_eq!(t.run(&[0x0f, 0x22, 0xe0]), Ok(vmm_emul::Step::Done), "CR4 bit {bit}");
        assert_eq!(t.cpu.cr_writes, vec![(4, 0x4_0600 | (1 << bit))], "CR4 bit {bit}");
    }
    // mov cr4, rax (PCIDE needs long mode)
    cr_ok(T::long(), TO_CR4, CR4_LONG | CR4_PCIDE, 4, CR4_LONG | CR4_PCIDE);
    for bit in [13, 14, 15, 19, 23, 24, 31, 32, 63] {
        // mov cr4, rax
        cr_gp(T::long(), TO_CR4, CR4_LONG | (1 << bit));
    }
}
