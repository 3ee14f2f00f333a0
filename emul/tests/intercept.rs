// SPDX-License-Identifier: GPL-2.0
//! The intercept instructions the glue decodes for their length and
//! prefixes (SVM without NRIP save or decode assists): cpuid, rdmsr,
//! wrmsr, hlt, xsetbv, in and out. Their prefix rules, truncations, the
//! 15-byte limit, and that `emulate` refuses them without changing
//! anything.

pub mod common;
pub mod harness;

use harness::*;
use vmm_emul::insn::{Operand, Reg, Rep};
use vmm_emul::{CpuMode, DecodeErrorKind, Error, Op, Seg};

const MODES: [CpuMode; 6] = [
    CpuMode::Real,
    CpuMode::Protected16,
    CpuMode::Protected32,
    CpuMode::Compat16,
    CpuMode::Compat32,
    CpuMode::Long64,
];

/// The default (address size, operand size) of `mode`.
fn defaults(mode: CpuMode) -> (u8, u8) {
    match mode {
        CpuMode::Real | CpuMode::Protected16 | CpuMode::Compat16 => (2, 2),
        CpuMode::Protected32 | CpuMode::Compat32 => (4, 4),
        CpuMode::Long64 => (8, 4),
    }
}

/// The operand-less instructions, unprefixed.
#[rustfmt::skip]
const NO_OPERANDS: &[(&[u8], Op)] = &[
    (&[0x0f, 0xa2], Op::Cpuid),             // cpuid
    (&[0x0f, 0x32], Op::Rdmsr),             // rdmsr
    (&[0x0f, 0x30], Op::Wrmsr),             // wrmsr
    (&[0xf4], Op::Hlt),                     // hlt
    (&[0x0f, 0x01, 0xd1], Op::Xsetbv),      // xsetbv
];

#[test]
fn operand_less_in_every_mode() {
    for mode in MODES {
        for &(bytes, op) in NO_OPERANDS {
            let i = dec(bytes, mode);
            assert_eq!(i.op, op, "{bytes:02x?} in {mode:?}");
            assert_eq!(i.operands, [Operand::None; 3]);
            assert_eq!((i.op_size, i.addr_size), (0, defaults(mode).0));
            assert_eq!((i.seg, i.rep, i.lock, i.rex), (None, Rep::None, false, 0));
            assert_eq!(i.bytes(), bytes);
            // What follows is not part of the instruction.
            let mut longer = bytes.to_vec();
            longer.extend([0x90, 0x0f, 0xa2]);
            let j = vmm_emul::decode(&longer, mode).expect("decodes with a tail");
            assert_eq!(j, i);
        }
    }
}

const AL: Operand = Operand::Reg(Reg::Gpr { num: 0, size: 1 });
const DX: Operand = Operand::Reg(Reg::Gpr { num: 2, size: 2 });

fn acc(size: u8) -> Operand {
    Operand::Reg(Reg::Gpr { num: 0, size })
}

#[test]
fn port_io_forms() {
    for mode in MODES {
        let full = defaults(mode).1;
        #[rustfmt::skip]
        let cases: &[(&[u8], Op, [Operand; 2], u8)] = &[
            (&[0xe4, 0x80], Op::In, [AL, Operand::Imm(0x80)], 1),         // in al, 0x80
            (&[0xe5, 0xff], Op::In, [acc(full), Operand::Imm(0xff)], full), // in eax, 0xff
            (&[0xec], Op::In, [AL, DX], 1),                               // in al, dx
            (&[0xed], Op::In, [acc(full), DX], full),                     // in eax, dx
            (&[0xe6, 0x70], Op::Out, [Operand::Imm(0x70), AL], 1),        // out 0x70, al
            (&[0xe7, 0xf0], Op::Out, [Operand::Imm(0xf0), acc(full)], full), // out 0xf0, eax
            (&[0xee], Op::Out, [DX, AL], 1),                              // out dx, al
            (&[0xef], Op::Out, [DX, acc(full)], full),                    // out dx, eax
        ];
        for &(bytes, op, [a, b], size) in cases {
            let i = dec(bytes, mode);
            assert_eq!((i.op, i.operands, i.op_size), (op, [a, b, Operand::None], size));
            assert_eq!((i.seg, i.rep, i.addr_size), (None, Rep::None, defaults(mode).0));
        }
    }
}

/// (mode, bytes, op, seg, addr_size, op_size).
type Prefixed = (CpuMode, &'static [u8], Op, Option<Seg>, u8, u8);

/// Prefixes the operation ignores still count in the length and are
/// reported.
#[rustfmt::skip]
const PREFIXED: &[Prefixed] = &[
    // rep cpuid
    (CpuMode::Long64, &[0xf3, 0x0f, 0xa2], Op::Cpuid, None, 8, 0),
    // repne rdmsr
    (CpuMode::Protected32, &[0xf2, 0x0f, 0x32], Op::Rdmsr, None, 4, 0),
    // data16 addr32 wrmsr
    (CpuMode::Real, &[0x66, 0x67, 0x0f, 0x30], Op::Wrmsr, None, 4, 0),
    // rex.w wrmsr
    (CpuMode::Long64, &[0x48, 0x0f, 0x30], Op::Wrmsr, None, 8, 0),
    // fs hlt
    (CpuMode::Protected32, &[0x64, 0xf4], Op::Hlt, Some(Seg::Fs), 4, 0),
    // es cs hlt (the last override wins)
    (CpuMode::Compat16, &[0x26, 0x2e, 0xf4], Op::Hlt, Some(Seg::Cs), 2, 0),
    // ds hlt: ignored in 64-bit mode
    (CpuMode::Long64, &[0x3e, 0xf4], Op::Hlt, None, 8, 0),
    // gs ds hlt: an earlier FS/GS still applies in 64-bit mode
    (CpuMode::Long64, &[0x65, 0x3e, 0xf4], Op::Hlt, Some(Seg::Gs), 8, 0),
    // addr32 xsetbv
    (CpuMode::Long64, &[0x67, 0x0f, 0x01, 0xd1], Op::Xsetbv, None, 4, 0),
    // rex.b xsetbv: the ModRM byte is fixed, REX.B does not change it
    (CpuMode::Long64, &[0x41, 0x0f, 0x01, 0xd1], Op::Xsetbv, None, 8, 0),
    // ss xsetbv
    (CpuMode::Protected16, &[0x36, 0x0f, 0x01, 0xd1], Op::Xsetbv, Some(Seg::Ss), 2, 0),
    // in ax, dx
    (CpuMode::Protected32, &[0x66, 0xed], Op::In, None, 4, 2),
    // in eax, dx (data16 in 16-bit code)
    (CpuMode::Real, &[0x66, 0xed], Op::In, None, 2, 4),
    // rex.w in eax, dx: no 64-bit form
    (CpuMode::Long64, &[0x48, 0xed], Op::In, None, 8, 4),
    // data16 rex.w out 0x80, eax: REX.W wins over 66, and is ignored
    (CpuMode::Long64, &[0x66, 0x48, 0xe7, 0x80], Op::Out, None, 8, 4),
    // rep out dx, al
    (CpuMode::Compat32, &[0xf3, 0xee], Op::Out, None, 4, 1),
    // gs addr32 out 0x71, ax
    (CpuMode::Long64, &[0x65, 0x67, 0x66, 0xe7, 0x71], Op::Out, Some(Seg::Gs), 4, 2),
    // 14 prefixes and hlt: exactly 15 bytes
    (
        CpuMode::Protected32,
        &[0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0xf4],
        Op::Hlt, Some(Seg::Ds), 2, 0,
    ),
];

#[test]
fn prefixed_forms() {
    for &(mode, bytes, op, seg, addr_size, op_size) in PREFIXED {
        let i = dec(bytes, mode);
        assert_eq!(i.op, op, "{bytes:02x?} in {mode:?}");
        assert_eq!((i.seg, i.addr_size, i.op_size), (seg, addr_size, op_size), "{bytes:02x?}");
        // A repeat prefix means nothing to these.
        assert_eq!(i.rep, Rep::None);
        assert!(!i.lock);
    }
}

#[test]
fn lock_and_np_prefixes_are_invalid() {
    #[rustfmt::skip]
    let cases: &[(CpuMode, &[u8])] = &[
        (CpuMode::Long64, &[0xf0, 0x0f, 0xa2]),             // lock cpuid
        (CpuMode::Protected32, &[0xf0, 0x0f, 0x32]),        // lock rdmsr
        (CpuMode::Real, &[0xf0, 0x0f, 0x30]),               // lock wrmsr
        (CpuMode::Long64, &[0xf0, 0xf4]),                   // lock hlt
        (CpuMode::Compat32, &[0xf0, 0x0f, 0x01, 0xd1]),     // lock xsetbv
        (CpuMode::Long64, &[0xf0, 0xe4, 0x80]),             // lock in al, 0x80
        (CpuMode::Protected16, &[0xf0, 0xef]),              // lock out dx, ax
        (CpuMode::Long64, &[0x66, 0x0f, 0x01, 0xd1]),       // data16 xsetbv (NP)
        (CpuMode::Protected32, &[0xf3, 0x0f, 0x01, 0xd1]),  // rep xsetbv (NP)
        (CpuMode::Real, &[0xf2, 0x0f, 0x01, 0xd1]),         // repne xsetbv (NP)
    ];
    for &(mode, bytes) in cases {
        assert_eq!(dec_err(bytes, mode), DecodeErrorKind::Invalid, "{bytes:02x?} in {mode:?}");
    }
}

#[test]
fn group7_neighbours_are_unsupported() {
    #[rustfmt::skip]
    let cases: &[&[u8]] = &[
        &[0x0f, 0x01, 0xd0],    // xgetbv
        &[0x0f, 0x01, 0xd9],    // vmmcall
        &[0x0f, 0x01, 0xc1],    // vmcall
        &[0x0f, 0x01, 0xf9],    // rdtscp
        &[0x0f, 0x01, 0x10],    // lgdt [rax] / [eax] / [bx+si]
        &[0x0f, 0x31],          // rdtsc
    ];
    for mode in MODES {
        for &bytes in cases {
            let k = dec_err(bytes, mode);
            assert_eq!(k, DecodeErrorKind::Unsupported, "{bytes:02x?} in {mode:?}");
        }
    }
}

#[test]
fn every_truncation_is_truncated() {
    #[rustfmt::skip]
    let cases: &[(CpuMode, &[u8])] = &[
        (CpuMode::Long64, &[0x64, 0x48, 0x0f, 0xa2]),       // fs rex.w cpuid
        (CpuMode::Protected32, &[0x66, 0x0f, 0x32]),        // data16 rdmsr
        (CpuMode::Real, &[0x2e, 0x0f, 0x30]),               // cs wrmsr
        (CpuMode::Compat16, &[0x67, 0xf4]),                 // addr32 hlt
        (CpuMode::Long64, &[0x65, 0x0f, 0x01, 0xd1]),       // gs xsetbv
        (CpuMode::Protected32, &[0x66, 0xe5, 0x71]),        // in ax, 0x71
        (CpuMode::Long64, &[0xf3, 0xe6, 0x80]),             // rep out 0x80, al
    ];
    for &(mode, bytes) in cases {
        dec(bytes, mode);
        for k in 0..bytes.len() {
            let kind = dec_err(&bytes[..k], mode);
            assert_eq!(kind, DecodeErrorKind::Truncated, "{bytes:02x?} cut to {k} ({mode:?})");
        }
    }
}

#[test]
fn fifteen_byte_limit() {
    // 13 prefixes and cpuid: 15 bytes.
    let mut cpuid = [0x3e; 15];
    cpuid[13..].copy_from_slice(&[0x0f, 0xa2]);
    assert_eq!(dec(&cpuid, CpuMode::Protected32).op, Op::Cpuid);
    // 14 prefixes and cpuid: 16 bytes, #GP.
    let mut long = [0x3e; 16];
    long[14..].copy_from_slice(&[0x0f, 0xa2]);
    let e = vmm_emul::decode(&long, CpuMode::Protected32).expect_err("16 bytes decoded");
    assert_eq!(e.kind, DecodeErrorKind::TooLong);
    // 14 prefixes and in al, 0x80: the port byte is the 16th.
    let mut port = [0x66; 16];
    port[13..].copy_from_slice(&[0x3e, 0xe4, 0x80]);
    let e = vmm_emul::decode(&port, CpuMode::Long64).expect_err("16 bytes decoded");
    assert_eq!(e.kind, DecodeErrorKind::TooLong);
}

#[test]
fn emulate_refuses_them_and_changes_nothing() {
    #[rustfmt::skip]
    let cases: &[&[u8]] = &[
        &[0x0f, 0xa2],          // cpuid
        &[0x0f, 0x32],          // rdmsr
        &[0x0f, 0x30],          // wrmsr
        &[0xf4],                // hlt
        &[0x0f, 0x01, 0xd1],    // xsetbv
        &[0xe4, 0x80],          // in al, 0x80
        &[0xef],                // out dx, eax
    ];
    for &bytes in cases {
        let mut t = T::long().reg(RAX, 0x1234).reg(RDX, 0x80);
        let r = t.run(bytes);
        assert_eq!(r, Err(Error::NotEmulated), "{bytes:02x?}");
        assert_eq!(t.cpu, t.before, "{bytes:02x?} changed the vCPU");
        assert!(t.accesses().is_empty(), "{bytes:02x?} accessed {:?}", t.accesses());
    }
}
