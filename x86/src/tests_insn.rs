// SPDX-License-Identifier: GPL-2.0

//! Host tests for the intercept decoder. Each byte string carries its
//! assembly in a comment (Intel syntax, as `llvm-mc --disassemble` prints
//! it for the mode of the test).

extern crate std;
use std::vec::Vec;

use super::*;
use CpuMode::{Compat16, Compat32, Long64, Protected16, Protected32, Real};

const MODES: [CpuMode; 6] = [Real, Protected16, Protected32, Compat16, Compat32, Long64];

/// What `decode` returns for an unprefixed `op` of `len` bytes in `mode`.
fn plain(op: Op, len: u8, mode: CpuMode) -> Insn {
    let (addr_size, op_size) = mode.defaults();
    Insn { op, len, seg: None, rep: false, addr_size, op_size, byte_op: false }
}

fn ok(bytes: &[u8], mode: CpuMode) -> Insn {
    match decode(bytes, mode) {
        Ok(i) => i,
        Err(e) => panic!("{bytes:02x?} in {mode:?}: {e:?}"),
    }
}

/// Every instruction, without prefixes, the same in every mode.
#[rustfmt::skip]
const PLAIN: &[(&[u8], Op, bool)] = &[
    (&[0x0f, 0xa2], Op::Cpuid, false),              // cpuid
    (&[0x0f, 0x32], Op::Rdmsr, false),              // rdmsr
    (&[0x0f, 0x30], Op::Wrmsr, false),              // wrmsr
    (&[0xf4], Op::Hlt, false),                      // hlt
    (&[0x0f, 0x01, 0xd9], Op::Vmmcall, false),      // vmmcall
    (&[0x0f, 0x01, 0xc1], Op::Vmcall, false),       // vmcall
    (&[0x0f, 0x01, 0xd1], Op::Xsetbv, false),       // xsetbv
    (&[0x0f, 0x31], Op::Rdtsc, false),              // rdtsc
    (&[0x0f, 0x01, 0xf9], Op::Rdtscp, false),       // rdtscp
    (&[0x0f, 0x33], Op::Rdpmc, false),              // rdpmc
    (&[0xf3, 0x90], Op::Pause, false),              // pause
    (&[0x0f, 0x09], Op::Wbinvd, false),             // wbinvd
    (&[0x0f, 0x08], Op::Invd, false),               // invd
    (&[0x0f, 0x01, 0xc8], Op::Monitor, false),      // monitor
    (&[0x0f, 0x01, 0xc9], Op::Mwait, false),        // mwait
    (&[0x0f, 0x01, 0x38], Op::Invlpg, false),       // invlpg [rax] / [eax] / [bx+si]
    (&[0x6c], Op::Ins, true),                       // insb
    (&[0x6d], Op::Ins, false),                      // insd (insw in 16-bit code)
    (&[0x6e], Op::Outs, true),                      // outsb
    (&[0x6f], Op::Outs, false),                     // outsd (outsw in 16-bit code)
    (&[0xe4, 0x80], Op::In, true),                  // in al, 0x80
    (&[0xe5, 0x71], Op::In, false),                 // in eax, 0x71
    (&[0xec], Op::In, true),                        // in al, dx
    (&[0xed], Op::In, false),                       // in eax, dx
    (&[0xe6, 0x80], Op::Out, true),                 // out 0x80, al
    (&[0xe7, 0xf0], Op::Out, false),                // out 0xf0, eax
    (&[0xee], Op::Out, true),                       // out dx, al
    (&[0xef], Op::Out, false),                      // out dx, eax
    (&[0xcc], Op::Int3, false),                     // int3
    (&[0xf1], Op::Icebp, false),                    // int1
    (&[0x0f, 0x0b], Op::Ud2, false),                // ud2
    (&[0x90], Op::Other, false),                    // nop
];

#[test]
fn every_op_in_every_mode() {
    for mode in MODES {
        for &(bytes, op, byte_op) in PLAIN {
            let mut want = plain(op, bytes.len() as u8, mode);
            want.byte_op = byte_op;
            want.rep = bytes[0] == 0xf3;
            assert_eq!(ok(bytes, mode), want, "{bytes:02x?} in {mode:?}");
        }
    }
}

#[test]
fn trailing_bytes_are_not_part_of_the_instruction() {
    for &(bytes, op, _) in PLAIN {
        let mut longer = Vec::from(bytes);
        longer.extend_from_slice(&[0x0f; 20]);
        let got = ok(&longer, Long64);
        assert_eq!((got.op, usize::from(got.len)), (op, bytes.len()));
    }
}

#[test]
fn prefixed_string_and_port_io() {
    // rep outsb
    assert_eq!(
        ok(&[0xf3, 0x6e], Long64),
        Insn { rep: true, byte_op: true, ..plain(Op::Outs, 2, Long64) }
    );
    // rep insw
    assert_eq!(
        ok(&[0x66, 0xf3, 0x6d], Protected32),
        Insn { rep: true, op_size: 2, ..plain(Op::Ins, 3, Protected32) }
    );
    // rep outsd dx, dword ptr fs:[esi]
    assert_eq!(
        ok(&[0x67, 0x64, 0xf3, 0x6f], Long64),
        Insn { rep: true, seg: Some(Seg::Fs), addr_size: 4, ..plain(Op::Outs, 4, Long64) }
    );
    // repne insb (F2 counts as a repeat prefix too)
    assert_eq!(
        ok(&[0xf2, 0x6c], Real),
        Insn { rep: true, byte_op: true, ..plain(Op::Ins, 2, Real) }
    );
    // rep outsd dx, dword ptr es:[si] (16-bit code, 66 and ES override)
    assert_eq!(
        ok(&[0x26, 0x66, 0xf3, 0x6f], Real),
        Insn { rep: true, seg: Some(Seg::Es), op_size: 4, ..plain(Op::Outs, 4, Real) }
    );
    // out dx, ax
    assert_eq!(
        ok(&[0x66, 0xef], Protected32),
        Insn { op_size: 2, ..plain(Op::Out, 2, Protected32) }
    );
    // in ax, 0x60
    assert_eq!(ok(&[0x66, 0xe5, 0x60], Long64), Insn { op_size: 2, ..plain(Op::In, 3, Long64) });
    // rex.W in eax, dx (REX.W is ignored: there is no 64-bit IN)
    assert_eq!(ok(&[0x48, 0xed], Long64), plain(Op::In, 2, Long64));
    // rex.W rep outsd dx, dword ptr [rsi]
    assert_eq!(ok(&[0xf3, 0x48, 0x6f], Long64), Insn { rep: true, ..plain(Op::Outs, 3, Long64) });
    // out 0x80, al with a redundant operand-size prefix: still a byte op
    assert_eq!(
        ok(&[0x66, 0xe6, 0x80], Long64),
        Insn { op_size: 2, byte_op: true, ..plain(Op::Out, 3, Long64) }
    );
}

#[test]
fn prefixed_other_ops() {
    // lock cpuid (#UD on hardware, before any intercept; decoded anyway)
    assert_eq!(ok(&[0xf0, 0x0f, 0xa2], Protected32), plain(Op::Cpuid, 3, Protected32));
    // cs rdtsc
    assert_eq!(
        ok(&[0x2e, 0x0f, 0x31], Protected32),
        Insn { seg: Some(Seg::Cs), ..plain(Op::Rdtsc, 3, Protected32) }
    );
    // data16 rdmsr
    assert_eq!(ok(&[0x66, 0x0f, 0x32], Long64), Insn { op_size: 2, ..plain(Op::Rdmsr, 3, Long64) });
    // rex.W wrmsr
    assert_eq!(ok(&[0x48, 0x0f, 0x30], Long64), Insn { op_size: 8, ..plain(Op::Wrmsr, 3, Long64) });
    // gs vmmcall
    assert_eq!(
        ok(&[0x65, 0x0f, 0x01, 0xd9], Compat32),
        Insn { seg: Some(Seg::Gs), ..plain(Op::Vmmcall, 4, Compat32) }
    );
    // rep hlt
    assert_eq!(ok(&[0xf3, 0xf4], Real), Insn { rep: true, ..plain(Op::Hlt, 2, Real) });
    // repne nop: F2 90 is not PAUSE
    assert_eq!(
        ok(&[0xf2, 0x90], Protected16),
        Insn { rep: true, ..plain(Op::Other, 2, Protected16) }
    );
    // pause, after a repne prefix: the last of F2/F3 decides
    assert_eq!(ok(&[0xf2, 0xf3, 0x90], Long64), Insn { rep: true, ..plain(Op::Pause, 3, Long64) });
}

#[test]
fn segment_overrides() {
    // ds outsb; es outsb; fs outsb; ss outsb
    for (pfx, seg) in [(0x3e, Seg::Ds), (0x26, Seg::Es), (0x64, Seg::Fs), (0x36, Seg::Ss)] {
        assert_eq!(ok(&[pfx, 0x6e], Protected32).seg, Some(seg));
    }
    // In 64-bit mode, ES/CS/SS/DS overrides are consumed and ignored.
    for pfx in [0x26, 0x2e, 0x36, 0x3e] {
        assert_eq!(ok(&[pfx, 0x6e], Long64), Insn { byte_op: true, ..plain(Op::Outs, 2, Long64) });
    }
    // gs outsb (the last override wins)
    assert_eq!(ok(&[0x64, 0x65, 0x6e], Long64).seg, Some(Seg::Gs));
    // es outsb in 32-bit code; fs outsb in 64-bit code, where ES is ignored
    assert_eq!(ok(&[0x64, 0x26, 0x6e], Protected32).seg, Some(Seg::Es));
    assert_eq!(ok(&[0x64, 0x26, 0x6e], Long64).seg, Some(Seg::Fs));
    // Compatibility mode is not 64-bit mode: every override counts.
    assert_eq!(ok(&[0x64, 0x3e, 0x6e], Compat32).seg, Some(Seg::Ds));
}

#[test]
fn invlpg_memory_operands() {
    let cases: &[(CpuMode, &[u8], u8)] = &[
        // invlpg [rax]
        (Long64, &[0x0f, 0x01, 0x38], 8),
        // invlpg [rip + 0x12345678]
        (Long64, &[0x0f, 0x01, 0x3d, 0x78, 0x56, 0x34, 0x12], 8),
        // invlpg [rsp]
        (Long64, &[0x0f, 0x01, 0x3c, 0x24], 8),
        // invlpg [rbp + 0x10]
        (Long64, &[0x0f, 0x01, 0x7d, 0x10], 8),
        // invlpg [r13]
        (Long64, &[0x41, 0x0f, 0x01, 0x7d, 0x00], 8),
        // invlpg [r12]
        (Long64, &[0x41, 0x0f, 0x01, 0x3c, 0x24], 8),
        // invlpg [r12 + 4*rax + 0x11223344]
        (Long64, &[0x41, 0x0f, 0x01, 0xbc, 0x84, 0x44, 0x33, 0x22, 0x11], 8),
        // invlpg [8*rax + 0x1000]
        (Long64, &[0x0f, 0x01, 0x3c, 0xc5, 0x00, 0x10, 0x00, 0x00], 8),
        // invlpg [r13 + 0x1000] (SIB, no base)
        (Long64, &[0x42, 0x0f, 0x01, 0x3c, 0x2d, 0x00, 0x10, 0x00, 0x00], 8),
        // invlpg [eax]
        (Long64, &[0x67, 0x0f, 0x01, 0x38], 4),
        // invlpg [eip]
        (Long64, &[0x67, 0x0f, 0x01, 0x3d, 0x00, 0x00, 0x00, 0x00], 4),
        // invlpg [rax - 0x80000000]
        (Long64, &[0x0f, 0x01, 0xb8, 0x00, 0x00, 0x00, 0x80], 8),
        // invlpg [0x12345678]
        (Protected32, &[0x0f, 0x01, 0x3d, 0x78, 0x56, 0x34, 0x12], 4),
        // invlpg [esp - 0x4]
        (Protected32, &[0x0f, 0x01, 0x7c, 0x24, 0xfc], 4),
        // invlpg [bx + si]
        (Protected32, &[0x67, 0x0f, 0x01, 0x38], 2),
        // invlpg [0x1234]
        (Protected32, &[0x67, 0x0f, 0x01, 0x3e, 0x34, 0x12], 2),
        // invlpg [0x12345678]
        (Compat32, &[0x0f, 0x01, 0x3d, 0x78, 0x56, 0x34, 0x12], 4),
        // invlpg [bx + si]
        (Real, &[0x0f, 0x01, 0x38], 2),
        // invlpg [0x1234]
        (Real, &[0x0f, 0x01, 0x3e, 0x34, 0x12], 2),
        // invlpg [bp + 0x12]
        (Real, &[0x0f, 0x01, 0x7e, 0x12], 2),
        // invlpg [bx + 0x1234]
        (Real, &[0x0f, 0x01, 0xbf, 0x34, 0x12], 2),
        // invlpg [si]
        (Real, &[0x0f, 0x01, 0x3c], 2),
        // invlpg [2*eax + 0x10]
        (Real, &[0x67, 0x0f, 0x01, 0x3c, 0x45, 0x10, 0x00, 0x00, 0x00], 4),
        // invlpg cs:[bx - 0x2]
        (Protected16, &[0x2e, 0x0f, 0x01, 0x7f, 0xfe], 2),
    ];
    for &(mode, bytes, addr_size) in cases {
        let got = ok(bytes, mode);
        assert_eq!(
            (got.op, usize::from(got.len), got.addr_size),
            (Op::Invlpg, bytes.len(), addr_size),
            "{bytes:02x?} in {mode:?}"
        );
    }
}

#[test]
fn unsupported() {
    #[rustfmt::skip]
    let cases: &[(CpuMode, &[u8])] = &[
        (Long64, &[0x0f, 0x01, 0x00]),          // sgdt [rax]
        (Long64, &[0x0f, 0x01, 0x30]),          // lmsw word ptr [rax]
        (Long64, &[0x0f, 0x01, 0xf8]),          // swapgs
        (Long64, &[0x0f, 0x01, 0xd8]),          // vmrun
        (Long64, &[0x0f, 0x01, 0xfa]),          // monitorx
        (Long64, &[0x0f, 0x05]),                // syscall
        (Long64, &[0x89, 0xd8]),                // mov eax, ebx
        (Long64, &[0xcd, 0x03]),                // int 0x3
        (Protected32, &[0x48, 0x0f, 0xa2]),     // dec eax (then cpuid)
        (Long64, &[0xc4, 0xe2, 0x79, 0x18]),    // a VEX prefix
    ];
    for &(mode, bytes) in cases {
        assert_eq!(decode(bytes, mode), Err(DecodeError::Unsupported), "{bytes:02x?}");
    }
}

#[test]
fn truncated() {
    assert_eq!(decode(&[], Long64), Err(DecodeError::Truncated));
    for mode in MODES {
        for &(bytes, _, _) in PLAIN {
            for n in 0..bytes.len() {
                assert_eq!(
                    decode(&bytes[..n], mode),
                    Err(DecodeError::Truncated),
                    "{:02x?}",
                    &bytes[..n]
                );
            }
        }
    }
    // rep (prefixes only)
    assert_eq!(decode(&[0xf3, 0x66], Long64), Err(DecodeError::Truncated));
    // invlpg [rip + disp32], two displacement bytes missing
    assert_eq!(decode(&[0x0f, 0x01, 0x3d, 0x78, 0x56], Long64), Err(DecodeError::Truncated));
    // invlpg [rsp], SIB missing
    assert_eq!(decode(&[0x0f, 0x01, 0x3c], Long64), Err(DecodeError::Truncated));
    // invlpg [0x1234] in 16-bit code, one displacement byte missing
    assert_eq!(decode(&[0x0f, 0x01, 0x3e, 0x34], Real), Err(DecodeError::Truncated));
}

#[test]
fn fifteen_byte_limit() {
    let mut bytes = [0x66u8; 20];
    // 13 prefixes + cpuid = 15 bytes: fine.
    bytes[13] = 0x0f;
    bytes[14] = 0xa2;
    assert_eq!(ok(&bytes, Protected32).len, 15);
    // 14 redundant prefixes + hlt = 15 bytes: fine.
    let mut bytes = [0x3eu8; 20];
    bytes[14] = 0xf4;
    assert_eq!(
        ok(&bytes, Protected32),
        Insn { seg: Some(Seg::Ds), ..plain(Op::Hlt, 15, Protected32) }
    );
    // 14 prefixes + cpuid = 16 bytes: too long, however much was fetched.
    let mut bytes = [0x2eu8; 20];
    bytes[14] = 0x0f;
    bytes[15] = 0xa2;
    assert_eq!(decode(&bytes, Long64), Err(DecodeError::TooLong));
    assert_eq!(decode(&bytes[..15], Long64), Err(DecodeError::TooLong));
    // 15 prefixes: the opcode would be byte 16.
    assert_eq!(decode(&[0xf3; 15], Long64), Err(DecodeError::TooLong));
    assert_eq!(decode(&[0x40; 30], Long64), Err(DecodeError::TooLong));
    // The limit counts ModRM, SIB and displacement too.
    let invlpg = [0x0f, 0x01, 0x3c, 0xc5, 0x00, 0x10, 0x00, 0x00]; // invlpg [8*rax + 0x1000]
    let mut bytes = [0x65u8; 7 + 8];
    bytes[7..].copy_from_slice(&invlpg);
    assert_eq!(ok(&bytes, Long64).len, 15);
    let mut bytes = [0x65u8; 8 + 8];
    bytes[8..].copy_from_slice(&invlpg);
    assert_eq!(decode(&bytes, Long64), Err(DecodeError::TooLong));
}

#[test]
fn rex_placement() {
    // rex.W cpuid: op_size 8
    assert_eq!(ok(&[0x48, 0x0f, 0xa2], Long64).op_size, 8);
    // data16 rex.W cpuid: REX.W wins over 66
    assert_eq!(ok(&[0x66, 0x48, 0x0f, 0xa2], Long64).op_size, 8);
    // rex.W data16 cpuid: a REX followed by a legacy prefix is ignored
    assert_eq!(
        ok(&[0x48, 0x66, 0x0f, 0xa2], Long64),
        Insn { op_size: 2, ..plain(Op::Cpuid, 4, Long64) }
    );
    // rex rex.W cpuid: the last REX counts
    assert_eq!(ok(&[0x40, 0x48, 0x0f, 0xa2], Long64).op_size, 8);
    assert_eq!(ok(&[0x48, 0x40, 0x0f, 0xa2], Long64).op_size, 4);
    // xchg r8d, eax: REX.B makes 90 a real exchange, and F3 does not make it PAUSE
    assert_eq!(ok(&[0x41, 0x90], Long64), plain(Op::Other, 2, Long64));
    assert_eq!(ok(&[0xf3, 0x41, 0x90], Long64), Insn { rep: true, ..plain(Op::Other, 3, Long64) });
    // rex.B pause: the REX is ignored, F3 90 remains
    assert_eq!(ok(&[0x41, 0xf3, 0x90], Long64), Insn { rep: true, ..plain(Op::Pause, 3, Long64) });
    // In 32-bit code 40-4F are INC/DEC.
    assert_eq!(decode(&[0x41, 0x90], Protected32), Err(DecodeError::Unsupported));
    assert_eq!(decode(&[0x48, 0x0f, 0xa2], Compat32), Err(DecodeError::Unsupported));
}

#[test]
fn address_and_operand_size_defaults() {
    // (mode, default addr, with 67, default op, with 66)
    let cases = [
        (Real, 2, 4, 2, 4),
        (Protected16, 2, 4, 2, 4),
        (Compat16, 2, 4, 2, 4),
        (Protected32, 4, 2, 4, 2),
        (Compat32, 4, 2, 4, 2),
        (Long64, 8, 4, 4, 2),
    ];
    for (mode, a, a67, o, o66) in cases {
        // insd / insw
        let i = ok(&[0x6d], mode);
        assert_eq!((i.addr_size, i.op_size), (a, o), "{mode:?}");
        // addr32 insd / addr16 insd / addr32 insd in 64-bit code
        let i = ok(&[0x67, 0x6d], mode);
        assert_eq!((i.addr_size, i.op_size), (a67, o), "{mode:?}");
        // data16 insw / data32 insd
        let i = ok(&[0x66, 0x6d], mode);
        assert_eq!((i.addr_size, i.op_size), (a, o66), "{mode:?}");
        // both, repeated: a prefix given twice toggles once
        let i = ok(&[0x66, 0x67, 0x66, 0x67, 0x6d], mode);
        assert_eq!((i.addr_size, i.op_size, i.len), (a67, o66, 5), "{mode:?}");
    }
}

#[test]
fn mode_from_registers() {
    const PE: u64 = 1;
    const LMA: u64 = 1 << 10;
    // (cr0, efer, cs.d, cs.l, rflags.vm)
    let cases = [
        (0, 0, false, false, false, Real),
        (0, 0, true, false, false, Real),
        (0, LMA, true, true, false, Real),
        (PE, 0, false, false, true, Real),
        (PE, 0, false, false, false, Protected16),
        (PE, 0, true, false, false, Protected32),
        (PE, 0, false, true, false, Protected16),
        (PE, LMA, false, false, false, Compat16),
        (PE, LMA, true, false, false, Compat32),
        (PE, LMA, false, true, false, Long64),
        (PE | 1 << 31, LMA, true, true, false, Long64),
    ];
    for (cr0, efer, d, l, vm, want) in cases {
        assert_eq!(
            CpuMode::from_regs(cr0, efer, d, l, vm),
            want,
            "{cr0:#x} {efer:#x} {d} {l} {vm}"
        );
    }
}

/// Pseudo-random inputs: no panic, never a length beyond the input or 15,
/// and the answer depends only on the bytes it claims.
#[test]
fn random_inputs() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Bias towards prefixes and the opcodes we know.
    const POOL: [u8; 24] = [
        0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x48, 0x41, 0x0f, 0x01,
        0xa2, 0x6c, 0xe4, 0x90, 0x3c, 0x7d, 0xbc, 0x3d, 0x25,
    ];
    for _ in 0..200_000 {
        let n = (next() % 20) as usize;
        let mut bytes = [0u8; 20];
        for b in bytes.iter_mut().take(n) {
            let r = next();
            *b = if r & 1 == 0 { POOL[(r >> 8) as usize % POOL.len()] } else { (r >> 16) as u8 };
        }
        let mode = MODES[(next() % 6) as usize];
        if let Ok(i) = decode(&bytes[..n], mode) {
            let len = usize::from(i.len);
            assert!(len >= 1 && len <= n.min(MAX_LEN));
            assert_eq!(decode(&bytes[..len], mode), Ok(i));
        }
    }
}
