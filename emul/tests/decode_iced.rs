// SPDX-License-Identifier: GPL-2.0
//! Differential decoder test: `vmm_emul::decode` against `iced-x86` over
//! millions of random, structured and mutated byte strings in every CPU
//! mode.
//!
//! - Ours decodes: iced must decode the same instruction (length, an
//!   operation that maps to our `Op`, operands, sizes, prefixes, segment).
//! - Ours says Unsupported: iced's instruction must not be one we claim.
//! - Ours says Invalid: iced must reject the bytes too.
//! - Ours says Truncated/TooLong: iced must report running out of bytes /
//!   an invalid (over-long) instruction.
//! - Where one decoder decides before it has read the whole instruction
//!   (ours Invalid/Unsupported while iced wants more bytes; ours Truncated
//!   while iced already calls it invalid), the input is padded to 15 bytes
//!   a few ways and both must then agree.
//!
//! Ours decoding is also checked against the prefixes themselves (REX
//! byte, address size), and each operation must be decoded often enough
//! that a regression to "everything Unsupported" fails.
//!
//! `EMUL_DIFF_CASES=n` (default 10,000,000, about 45 s in the debug
//! profile) or `EMUL_DIFF_SECONDS=s` sets the run length,
//! `EMUL_DIFF_SEED=n` (decimal or 0x-hex) the seed, `EMUL_DIFF_VERBOSE=1`
//! also lists what ours leaves Unsupported. Run with `--nocapture` to see
//! the statistics. Normalisations and deliberate differences are
//! documented in `iced_diff/model.rs`.

pub mod iced_diff;

use iced_diff::gen::{self, Input, Kind, Rng, KINDS};
use iced_diff::model::{bitness, claim, compare};
use iced_x86::{Decoder, DecoderError, DecoderOptions, Formatter, Instruction, IntelFormatter};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vmm_emul::insn::{Alu, BitOp, VecMove};
use vmm_emul::{decode, CpuMode, DecodeErrorKind, Insn, Op};

const MODES: [CpuMode; 6] = [
    CpuMode::Real,
    CpuMode::Protected16,
    CpuMode::Protected32,
    CpuMode::Compat16,
    CpuMode::Compat32,
    CpuMode::Long64,
];

const DEFAULT_CASES: u64 = 10_000_000;

/// Every operation, for the coverage table.
fn all_ops() -> Vec<Op> {
    let mut v = vec![Op::Mov, Op::Movzx, Op::Movsx, Op::Movsxd, Op::Movbe, Op::Movnti, Op::Xchg];
    v.extend((0..8).map(|i| Op::Alu(Alu::from_index(i))));
    v.extend([Op::Test, Op::Not, Op::Neg, Op::Inc, Op::Dec]);
    v.extend([BitOp::Bt, BitOp::Bts, BitOp::Btr, BitOp::Btc].map(Op::Bit));
    v.extend([Op::Cmpxchg, Op::Xadd, Op::Push, Op::Pop]);
    v.extend([Op::Movs, Op::Stos, Op::Lods, Op::Cmps, Op::Scas, Op::Ins, Op::Outs]);
    v.extend([Op::MovToCr, Op::MovFromCr, Op::Clts, Op::Lmsw, Op::Smsw]);
    v.extend([Op::Imul, Op::Bextr, Op::Flush]);
    v.extend([Op::Cpuid, Op::Rdmsr, Op::Wrmsr, Op::Hlt, Op::Xsetbv, Op::In, Op::Out]);
    v.extend([VecMove::Movd, VecMove::Movq, VecMove::Aligned, VecMove::Unaligned].map(Op::VecMove));
    v
}

fn iced_decode(bytes: &[u8], mode: CpuMode) -> (Instruction, DecoderError) {
    let mut d = Decoder::with_ip(bitness(mode), bytes, 0, DecoderOptions::NONE);
    let ins = d.decode();
    (ins, d.last_error())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

fn show_ours(r: &Result<Insn, vmm_emul::DecodeError>) -> String {
    match r {
        Ok(i) => format!(
            "{:?} {:?} op_size={} addr_size={} seg={:?} lock={} rep={:?} rex={:#x} vex={} len={}",
            i.op, i.operands, i.op_size, i.addr_size, i.seg, i.lock, i.rep, i.rex, i.vex, i.len
        ),
        Err(e) => format!("{:?}", e.kind),
    }
}

fn show_iced(ins: &Instruction, err: DecoderError) -> String {
    if err != DecoderError::None {
        return format!("{err:?}");
    }
    let mut s = String::new();
    IntelFormatter::new().format(ins, &mut s);
    format!("`{s}` ({:?}, len {})", ins.code(), ins.len())
}

/// What happened to one input, for the statistics.
#[derive(Clone, Copy)]
enum Outcome {
    Ok(Op),
    /// `code`: iced's instruction, when it is valid.
    Unsupported {
        iced_valid: bool,
        code: Option<iced_x86::Code>,
    },
    Invalid,
    Truncated,
    TooLong,
}

type Failure = (String, String);

/// Decodes `bytes` both ways and compares.
fn check(bytes: &[u8], mode: CpuMode, rng: &mut Rng, depth: u32) -> Result<Outcome, Failure> {
    let ours = decode(bytes, mode);
    let (ins, err) = iced_decode(bytes, mode);
    let report = |cat: &str, why: String| -> Failure {
        (
            cat.to_string(),
            format!(
                "mode {mode:?}, bytes [{}]\n  ours: {}\n  iced: {}\n  {why}",
                hex(bytes),
                show_ours(&ours),
                show_iced(&ins, err)
            ),
        )
    };
    let kind = match &ours {
        Ok(insn) => {
            if err != DecoderError::None {
                return Err(report("ours-ok-iced-error", String::new()));
            }
            compare(insn, &ins, mode, bytes).map_err(|(c, w)| report(&c, w))?;
            return Ok(Outcome::Ok(insn.op));
        }
        Err(e) => e.kind,
    };
    match (kind, err) {
        (DecodeErrorKind::Truncated, DecoderError::NoMoreBytes) => Ok(Outcome::Truncated),
        // iced stops at the first field that makes the instruction invalid
        // (VEX.L, vvvv, ...); the decoder reads the whole instruction first,
        // as the CPU's length decoder does, so a fetch fault inside it comes
        // before #UD. Once the bytes are there, ours must say Invalid too.
        (DecodeErrorKind::Truncated, DecoderError::InvalidInstruction)
            if bytes.len() < gen::MAX && depth == 0 =>
        {
            for _ in 0..3 {
                let ext = gen::extend(rng, bytes);
                match decode(ext.bytes(), mode) {
                    Err(e)
                        if matches!(
                            e.kind,
                            DecodeErrorKind::Invalid | DecodeErrorKind::TooLong
                        ) => {}
                    other => {
                        return Err(report(
                            "truncated-but-iced-invalid",
                            format!("padded to [{}]: ours {}", hex(ext.bytes()), show_ours(&other)),
                        ))
                    }
                }
                check(ext.bytes(), mode, rng, depth + 1)?;
            }
            Ok(Outcome::Truncated)
        }
        (DecodeErrorKind::Truncated, _) => Err(report("truncated", String::new())),
        (DecodeErrorKind::TooLong, DecoderError::InvalidInstruction) if bytes.len() == gen::MAX => {
            Ok(Outcome::TooLong)
        }
        (DecodeErrorKind::TooLong, _) => Err(report("too-long", String::new())),
        (DecodeErrorKind::Invalid, DecoderError::InvalidInstruction) => Ok(Outcome::Invalid),
        // VEX bytes in real mode: #UD, as the LDS/LES register form they
        // would otherwise be (see model.rs).
        (DecodeErrorKind::Invalid, DecoderError::None)
            if mode == CpuMode::Real && ins.encoding() == iced_x86::EncodingKind::VEX =>
        {
            Ok(Outcome::Invalid)
        }
        (DecodeErrorKind::Invalid, DecoderError::None) => {
            Err(report("invalid-but-iced-valid", String::new()))
        }
        (DecodeErrorKind::Unsupported, DecoderError::InvalidInstruction) => {
            Ok(Outcome::Unsupported { iced_valid: false, code: None })
        }
        (DecodeErrorKind::Unsupported, DecoderError::None) => match claim(&ins, mode) {
            Some(op) => Err(report("unsupported-but-claimed", format!("claimed as {op:?}"))),
            None => Ok(Outcome::Unsupported { iced_valid: true, code: Some(ins.code()) }),
        },
        // Ours decided early, iced wants more bytes: ours must decide the
        // same whatever follows, and iced must agree once it has them.
        (DecodeErrorKind::Invalid | DecodeErrorKind::Unsupported, DecoderError::NoMoreBytes)
            if depth == 0 =>
        {
            for _ in 0..3 {
                let ext = gen::extend(rng, bytes);
                match decode(ext.bytes(), mode) {
                    Err(e) if e.kind == kind => {}
                    other => {
                        return Err(report(
                            "early-decision-changed",
                            format!("padded to [{}]: ours {}", hex(ext.bytes()), show_ours(&other)),
                        ))
                    }
                }
                check(ext.bytes(), mode, rng, depth + 1)?;
            }
            Ok(if kind == DecodeErrorKind::Invalid {
                Outcome::Invalid
            } else {
                Outcome::Unsupported { iced_valid: false, code: None }
            })
        }
        (_, e) => Err(report("error-kind", format!("ours {kind:?} vs iced {e:?}"))),
    }
}

/// The opcode of `b` past its legacy/REX prefixes, with ModRM.mod and
/// ModRM.reg, for grouping in the verbose statistics.
fn opcode_key(b: &[u8], mode: CpuMode) -> String {
    let long = mode == CpuMode::Long64;
    let mut i = 0;
    while i < b.len()
        && (matches!(
            b[i],
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3
        ) || (long && b[i] & 0xf0 == 0x40))
    {
        i += 1;
    }
    let rest = &b[i..];
    let n = match rest {
        [0xc4, ..] => 4,
        [0xc5, ..] => 3,
        [0x0f, 0x38 | 0x3a, ..] => 3,
        [0x0f, ..] => 2,
        _ => 1,
    };
    let op = &rest[..n.min(rest.len())];
    match rest.get(n) {
        Some(m) => format!("{} mod{} /{}", hex(op), m >> 6, (m >> 3) & 7),
        None => hex(op),
    }
}

#[derive(Default)]
struct ModeStats {
    cases: u64,
    ok: u64,
    unsupported_iced_valid: u64,
    unsupported_iced_invalid: u64,
    invalid: u64,
    truncated: u64,
    too_long: u64,
}

fn env_u64(name: &str) -> Option<u64> {
    let s = std::env::var(name).ok()?;
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[test]
fn differential_against_iced() {
    let seed = env_u64("EMUL_DIFF_SEED").unwrap_or(0x5eed_1ced_0d1f_f001);
    let seconds = env_u64("EMUL_DIFF_SECONDS");
    let cases = env_u64("EMUL_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let mut rng = Rng::new(seed);
    let ops = all_ops();
    let mut op_hits = vec![0u64; ops.len()];
    let mut ok_by_kind = [0u64; 3];
    let mut cases_by_kind = [0u64; 3];
    let mut stats: Vec<ModeStats> = MODES.iter().map(|_| ModeStats::default()).collect();
    let mut failures: BTreeMap<String, (u64, String)> = BTreeMap::new();
    // EMUL_DIFF_VERBOSE=1: also list what ours leaves Unsupported.
    let verbose = std::env::var_os("EMUL_DIFF_VERBOSE").is_some();
    let mut unsupported_codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut unsupported_invalid: BTreeMap<String, u64> = BTreeMap::new();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        match deadline {
            Some(d) if n % 4096 == 0 && Instant::now() >= d => break,
            None if n >= cases => break,
            _ => {}
        }
        n += 1;
        let m = rng.index(MODES.len());
        let mode = MODES[m];
        let k = match rng.index(100) {
            0..=14 => 0,
            15..=64 => 1,
            _ => 2,
        };
        let input: Input = match KINDS[k] {
            Kind::Random => gen::random(&mut rng),
            Kind::Structured => gen::structured(&mut rng, mode),
            Kind::Mutated => gen::mutated(&mut rng, mode),
        };
        cases_by_kind[k] += 1;
        let st = &mut stats[m];
        st.cases += 1;
        match check(input.bytes(), mode, &mut rng, 0) {
            Ok(Outcome::Ok(op)) => {
                st.ok += 1;
                ok_by_kind[k] += 1;
                if let Some(i) = ops.iter().position(|o| *o == op) {
                    op_hits[i] += 1;
                }
            }
            Ok(Outcome::Unsupported { iced_valid: true, code }) => {
                st.unsupported_iced_valid += 1;
                if verbose {
                    *unsupported_codes.entry(format!("{code:?}")).or_insert(0) += 1;
                }
            }
            Ok(Outcome::Unsupported { iced_valid: false, .. }) => {
                st.unsupported_iced_invalid += 1;
                if verbose {
                    *unsupported_invalid.entry(opcode_key(input.bytes(), mode)).or_insert(0) += 1;
                }
            }
            Ok(Outcome::Invalid) => st.invalid += 1,
            Ok(Outcome::Truncated) => st.truncated += 1,
            Ok(Outcome::TooLong) => st.too_long += 1,
            Err((cat, msg)) => {
                let e = failures.entry(cat).or_insert((0, msg));
                e.0 += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    println!("decode_iced: {n} cases in {:.1}s, seed {seed:#x}", elapsed.as_secs_f64());
    println!(
        "{:<12} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>8}",
        "mode", "cases", "ok", "unsup/valid", "unsup/inval", "invalid", "truncated", "toolong"
    );
    for (mode, s) in MODES.iter().zip(&stats) {
        println!(
            "{:<12} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>8}",
            format!("{mode:?}"),
            s.cases,
            s.ok,
            s.unsupported_iced_valid,
            s.unsupported_iced_invalid,
            s.invalid,
            s.truncated,
            s.too_long
        );
    }
    for (i, kind) in KINDS.iter().enumerate() {
        println!("generator {kind:?}: {} cases, {} decoded", cases_by_kind[i], ok_by_kind[i]);
    }
    println!("decoded per op:");
    for (op, hits) in ops.iter().zip(&op_hits) {
        println!("  {:<26} {hits}", format!("{op:?}"));
    }
    if verbose {
        let mut v: Vec<_> = unsupported_codes.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        println!("unsupported by us, valid for iced ({} codes):", v.len());
        for (c, k) in &v {
            println!("  {c:<40} {k}");
        }
        let mut v: Vec<_> = unsupported_invalid.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        println!("unsupported by us, invalid for iced ({} opcode keys, top 100):", v.len());
        for (c, k) in v.iter().take(100) {
            println!("  {c:<40} {k}");
        }
    }
    if !failures.is_empty() {
        let total: u64 = failures.values().map(|f| f.0).sum();
        let mut msg = format!(
            "{total} mismatches in {} categories (first example of each):\n",
            failures.len()
        );
        for (cat, (count, example)) in &failures {
            msg += &format!("[{cat}] x{count}\n  {example}\n");
        }
        panic!("{msg}");
    }
    // Coverage: a decoder that regressed to "everything Unsupported" (or
    // lost an operation) must fail. Scaled to the run length.
    let min_hits = (n / 20_000).max(1);
    for (op, hits) in ops.iter().zip(&op_hits) {
        assert!(*hits >= min_hits, "only {hits} decodes of {op:?} in {n} cases (want {min_hits})");
    }
    let structured = cases_by_kind[1].max(1);
    assert!(
        ok_by_kind[1] * 100 >= structured * 30,
        "only {} of {structured} structured cases decoded",
        ok_by_kind[1]
    );
}
