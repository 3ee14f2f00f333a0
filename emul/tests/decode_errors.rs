// SPDX-License-Identifier: GPL-2.0
//! Decoder errors: every truncation of long instructions is `Truncated`,
//! the 15-byte limit is `TooLong`, errors carry the bytes they were given,
//! and no input makes the decoder (or the emulator, on what it decodes)
//! panic or break the restart rule.

pub mod common;
pub mod harness;

use common::{FlatMem, TestCpu};
use vmm_emul::{decode, emulate, insn::MAX_LEN, Config, CpuMode, DecodeErrorKind, Step};

const MODES: [CpuMode; 6] = [
    CpuMode::Real,
    CpuMode::Protected16,
    CpuMode::Protected32,
    CpuMode::Compat16,
    CpuMode::Compat32,
    CpuMode::Long64,
];

/// Long instructions, each complete.
const LONG: &[(CpuMode, &[u8])] = &[
    // lock add qword ptr fs:[eax+ecx*4+0x12345678], 0xffffffff89abcdef
    (
        CpuMode::Long64,
        &[0xf0, 0x64, 0x67, 0x48, 0x81, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12, 0xef, 0xcd, 0xab, 0x89],
    ),
    // mov rax, 0x1122334455667788
    (CpuMode::Long64, &[0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]),
    // mov rax, qword ptr fs:[0x8]
    (CpuMode::Long64, &[0x64, 0x48, 0xa1, 0x08, 0, 0, 0, 0, 0, 0, 0]),
    // vmovdqa ymm0, ymmword ptr [rax+rcx*4+0x12345678]
    (CpuMode::Long64, &[0xc4, 0xe1, 0x7d, 0x6f, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12]),
    // bt word ptr [rax+rcx*4+0x12345678], 5
    (CpuMode::Long64, &[0x66, 0x0f, 0xba, 0xa4, 0x88, 0x78, 0x56, 0x34, 0x12, 0x05]),
    // movbe dword ptr [rax+rcx*4+0x12345678], eax
    (CpuMode::Long64, &[0x0f, 0x38, 0xf1, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12]),
    // mov dword ptr [rip+0x10], 0x12345678
    (CpuMode::Long64, &[0xc7, 0x05, 0x10, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12]),
    // rep movsq
    (CpuMode::Long64, &[0xf3, 0x48, 0xa5]),
    // mov cr8, rax
    (CpuMode::Long64, &[0x44, 0x0f, 0x22, 0xc0]),
    // movq xmm0, rax
    (CpuMode::Long64, &[0x66, 0x48, 0x0f, 0x6e, 0xc0]),
    // movdqu xmmword ptr [r8+r9*8-0x80], xmm15
    (CpuMode::Long64, &[0xf3, 0x47, 0x0f, 0x7f, 0x7c, 0xc8, 0x80]),
    // mov word ptr [bp+0x1234], 0x5678
    (CpuMode::Real, &[0xc7, 0x86, 0x34, 0x12, 0x78, 0x56]),
    // mov word ptr [eax+ecx*4+0x12345678], 0x1234
    (CpuMode::Protected32, &[0x66, 0xc7, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12, 0x34, 0x12]),
    // vmovdqa ymm0, ymmword ptr [eax+ecx*4+0x12345678]
    (CpuMode::Protected32, &[0xc5, 0xfd, 0x6f, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12]),
    // mov dword ptr [eax+ecx*4+0x12345678], 0x12345678
    (
        CpuMode::Protected16,
        &[0x67, 0x66, 0xc7, 0x84, 0x88, 0x78, 0x56, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12],
    ),
    // mov eax, dword ptr [0x12345678]
    (CpuMode::Compat32, &[0xa1, 0x78, 0x56, 0x34, 0x12]),
    // add word ptr [bx+si+0x1234], 0x5678
    (CpuMode::Compat16, &[0x81, 0x80, 0x34, 0x12, 0x78, 0x56]),
];

#[test]
fn every_truncation_is_truncated() {
    for (mode, bytes) in LONG {
        let insn = harness::dec(bytes, *mode);
        assert_eq!(insn.bytes(), *bytes);
        for k in 0..bytes.len() {
            let e = decode(&bytes[..k], *mode).expect_err("a truncated instruction decoded");
            assert_eq!(e.kind, DecodeErrorKind::Truncated, "{:02x?} cut to {k} ({mode:?})", bytes);
            assert_eq!(e.bytes(), &bytes[..k]);
            assert_eq!(usize::from(e.len), k);
        }
    }
}

#[test]
fn fifteen_byte_limit() {
    // 13 x 66, mov ax, word ptr [rbx]: exactly 15 bytes
    let mut b = vec![0x66; 13];
    b.extend([0x8b, 0x03]);
    assert_eq!(harness::dec(&b, CpuMode::Long64).len, 15);
    // 14 x 66, mov ax, word ptr [rbx]: 16 bytes
    let mut b = vec![0x66; 14];
    b.extend([0x8b, 0x03]);
    let e = decode(&b, CpuMode::Long64).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::TooLong);
    assert_eq!(e.bytes(), &b[..15]);
    assert_eq!(usize::from(e.len), MAX_LEN);
    // 14 x 66, mov (ModRM missing): the 16th byte would be needed
    let mut b = vec![0x66; 14];
    b.push(0x8b);
    assert_eq!(decode(&b, CpuMode::Long64).unwrap_err().kind, DecodeErrorKind::TooLong);
    // 15 prefixes
    assert_eq!(decode(&[0x66; 15], CpuMode::Real).unwrap_err().kind, DecodeErrorKind::TooLong);
    // 14 prefixes: more bytes might still make an instruction
    assert_eq!(decode(&[0x66; 14], CpuMode::Real).unwrap_err().kind, DecodeErrorKind::Truncated);
    // 14 x REX, mov
    let mut b = vec![0x48; 14];
    b.push(0x8b);
    assert_eq!(decode(&b, CpuMode::Long64).unwrap_err().kind, DecodeErrorKind::TooLong);
    // 66, then the 15-byte lock add above: 16 bytes
    let mut b = vec![0x66];
    b.extend(LONG[0].1);
    assert_eq!(decode(&b, CpuMode::Long64).unwrap_err().kind, DecodeErrorKind::TooLong);
    // 13 x 67, vmovdqa xmm0, ... : VEX runs into the limit
    let mut b = vec![0x67; 13];
    b.extend([0xc5, 0xf9, 0x6f, 0x03]);
    assert_eq!(decode(&b, CpuMode::Long64).unwrap_err().kind, DecodeErrorKind::TooLong);
    // 14 x 67, C5: the VEX byte after it is the 16th
    let mut b = vec![0x67; 14];
    b.extend([0xc5, 0xf9]);
    assert_eq!(decode(&b, CpuMode::Protected32).unwrap_err().kind, DecodeErrorKind::TooLong);
    // 12 x 66, mov ax, 0x1234: the immediate ends at byte 15
    let mut b = vec![0x66; 12];
    b.extend([0xb8, 0x34, 0x12]);
    assert_eq!(harness::dec(&b, CpuMode::Protected32).len, 15);
    // 13 x 66, mov ax, 0x1234: the immediate's last byte is the 16th
    let mut b = vec![0x66; 13];
    b.extend([0xb8, 0x34, 0x12]);
    assert_eq!(decode(&b, CpuMode::Protected32).unwrap_err().kind, DecodeErrorKind::TooLong);
}

#[test]
fn errors_carry_their_input() {
    // (mode, bytes, kind)
    let cases: &[(CpuMode, &[u8], DecodeErrorKind)] = &[
        // mov word ptr [rbx], <sreg 6>, then more bytes
        (CpuMode::Long64, &[0x8c, 0x33, 0x90, 0x90], DecodeErrorKind::Invalid),
        // lock mov dword ptr [rbx], eax
        (CpuMode::Long64, &[0xf0, 0x89, 0x03], DecodeErrorKind::Invalid),
        // rdtsc
        (CpuMode::Long64, &[0x0f, 0x31], DecodeErrorKind::Unsupported),
        // mov ds, ax
        (CpuMode::Real, &[0x8e, 0xd8], DecodeErrorKind::Unsupported),
        // xgetbv
        (CpuMode::Protected32, &[0x0f, 0x01, 0xd0], DecodeErrorKind::Unsupported),
        // add byte ptr [rbx], 0x9b (82 in 64-bit mode)
        (CpuMode::Long64, &[0x82, 0x03, 0x9b], DecodeErrorKind::Invalid),
    ];
    for (mode, bytes, kind) in cases {
        let e = decode(bytes, *mode).unwrap_err();
        assert_eq!(e.kind, *kind, "{bytes:02x?}");
        assert_eq!(e.bytes(), *bytes);
        assert_eq!(usize::from(e.len), bytes.len());
    }
    // More than 15 bytes of input: the error keeps the first 15.
    // int3, then more int3
    let mut b = vec![0xcc];
    b.extend([0xcc; 20]);
    let e = decode(&b, CpuMode::Long64).unwrap_err();
    assert_eq!(e.bytes(), &b[..15]);
    // A valid instruction followed by more input keeps only its own bytes.
    let mut b = vec![0x8b, 0x03];
    b.extend([0xcc; 20]);
    let insn = decode(&b, CpuMode::Long64).unwrap();
    assert_eq!(insn.len, 2);
    assert_eq!(insn.bytes(), &[0x8b, 0x03]);
}

#[test]
fn les_lds_truncated() {
    // lds eax, fword ptr [0x12345678], cut after the ModRM
    assert_eq!(
        decode(&[0xc5, 0x05], CpuMode::Protected32).unwrap_err().kind,
        DecodeErrorKind::Truncated
    );
    // les ax, dword ptr [0x1234], cut after the ModRM
    assert_eq!(
        decode(&[0xc4, 0x06, 0x34], CpuMode::Real).unwrap_err().kind,
        DecodeErrorKind::Truncated
    );
}

/// Checks one decode: no panic, errors carry the input, an instruction's
/// length fits.
fn check_decode(bytes: &[u8], mode: CpuMode) -> Option<vmm_emul::Insn> {
    match decode(bytes, mode) {
        Ok(insn) => {
            assert!(usize::from(insn.len) <= bytes.len().min(MAX_LEN), "{bytes:02x?}");
            assert!(insn.len > 0);
            assert_eq!(insn.bytes(), &bytes[..usize::from(insn.len)]);
            Some(insn)
        }
        Err(e) => {
            assert_eq!(e.bytes(), &bytes[..bytes.len().min(MAX_LEN)], "{bytes:02x?}");
            None
        }
    }
}

#[test]
fn all_one_and_two_byte_inputs() {
    for mode in MODES {
        for a in 0..=255u8 {
            check_decode(&[a], mode);
            for b in 0..=255u8 {
                check_decode(&[a, b], mode);
            }
        }
    }
}

#[test]
fn all_three_byte_inputs_after_escapes_and_prefixes() {
    for mode in [CpuMode::Real, CpuMode::Protected32, CpuMode::Long64] {
        for first in [
            0x0f, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0xc4, 0xc5, 0x48, 0x40, 0x8f, 0xf6, 0xff, 0xfe,
            0x8c,
        ] {
            for b in 0..=255u8 {
                for c in 0..=255u8 {
                    check_decode(&[first, b, c], mode);
                }
            }
        }
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn random_inputs_decode_and_emulate_without_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Bytes that make decodable instructions likely.
    const COMMON: [u8; 24] = [
        0x0f, 0x66, 0x67, 0xf0, 0xf3, 0xf2, 0x48, 0x41, 0x89, 0x8b, 0x01, 0x81, 0x83, 0xa5, 0xab,
        0xc7, 0xff, 0x8f, 0xc5, 0xc4, 0x6f, 0x7f, 0xb1, 0x22,
    ];
    let mut decoded = 0;
    for i in 0..60_000 {
        let mode = MODES[i % MODES.len()];
        let mut bytes = [0u8; 15];
        for b in bytes.iter_mut() {
            let r = rng.next();
            *b =
                if r & 1 == 0 { COMMON[(r >> 8) as usize % COMMON.len()] } else { (r >> 16) as u8 };
        }
        let len = 1 + (rng.next() % 15) as usize;
        let Some(insn) = check_decode(&bytes[..len], mode) else { continue };
        decoded += 1;
        let mut cpu = match mode {
            CpuMode::Long64 => TestCpu::long(),
            CpuMode::Protected32 | CpuMode::Compat32 => TestCpu::prot32(),
            CpuMode::Protected16 | CpuMode::Compat16 => TestCpu::prot16(),
            CpuMode::Real => TestCpu::real(),
        };
        for g in cpu.gpr.iter_mut() {
            let r = rng.next();
            *g = match r % 4 {
                0 => r >> 40,
                1 => 0x2000,
                2 => r,
                _ => 0,
            };
        }
        cpu.rflags = 2 | (rng.next() & 0x8d5);
        cpu.cpl = if rng.next() % 8 == 0 { 3 } else { 0 };
        let mut mem = FlatMem::new();
        if rng.next() % 4 == 0 {
            mem.mmio.push((0, 0x1_0000));
        }
        let before = cpu.clone();
        let r = emulate(&insn, &mut cpu, &mut mem, &Config::default());
        match r {
            Ok(Step::Done) => {}
            Ok(Step::Partial) => {
                assert!(insn.is_string(), "{:02x?}", insn.bytes());
                assert_eq!(cpu.rip, before.rip);
            }
            Err(_) if !insn.is_string() => {
                assert_eq!(
                    cpu,
                    before,
                    "{:02x?} ({mode:?}) failed but changed the vCPU",
                    insn.bytes()
                );
            }
            Err(_) => assert_eq!(cpu.rip, before.rip),
        }
    }
    assert!(decoded > 5_000, "only {decoded} decoded");
}
