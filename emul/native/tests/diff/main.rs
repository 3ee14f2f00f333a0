// SPDX-License-Identifier: GPL-2.0

//! Differential execution of the emulator against the host CPU: seeded
//! random cases of every ALU, bit, exchange, move, string, vector move,
//! multiply, BMI and cache-flush opcode the emulator knows run natively (through
//! [`vmm_emul_native::Host`]) and through `vmm_emul::emulate`, and must
//! agree on all 16 general registers, YMM0-15, the data area, and the
//! flags the SDM defines. Flags it leaves undefined are only counted.
//!
//! `EMUL_NATIVE_CASES=n` runs `n` cases per test instead of the default;
//! `EMUL_NATIVE_SEED` changes the seed; `EMUL_NATIVE_TRACE=1` prints each
//! case before it runs natively. Each test prints its case counts on
//! stderr (not captured).

#![deny(unsafe_code)]

#[path = "../../../tests/common/mod.rs"]
pub mod common;
#[path = "../../../tests/common/rng.rs"]
pub mod rng;

mod check;
mod gen;

use gen::{Case, Env, Family, Rng, AF, OF, PF, SF, ZF};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Instant;
use vmm_emul_native::{Host, Regs, DATA_LEN};

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Runs `case` on the host.
#[expect(unsafe_code, reason = "Host::run executes the case's bytes natively")]
fn run_native(host: &mut Host, case: &Case, data: &mut [u8; DATA_LEN]) -> Regs {
    // SAFETY: `gen` makes only the unprivileged, non-branching data
    // instructions of its families, and solves every memory operand, the
    // push/pop stack and the string operands (count and direction
    // included) to lie inside the data area; RFLAGS starts with only
    // status flags and DF. Instructions of optional CPU features (BMI1,
    // CLFLUSHOPT, CLWB) come only from families that `mul_bmi_flush`
    // runs when /proc/cpuinfo lists the feature.
    unsafe { host.run(&case.bytes, &case.regs, data) }
}

#[derive(Default)]
struct Count {
    n: u64,
    mem: u64,
    a32: u64,
    lock: u64,
}

/// Runs `default` (or `EMUL_NATIVE_CASES`) cases drawn from `families`
/// (with weights) and fails on any difference.
fn run(test: &str, families: &[(Family, u64)], default: u64) {
    let n = env_u64("EMUL_NATIVE_CASES").unwrap_or(default);
    let seed = env_u64("EMUL_NATIVE_SEED").unwrap_or(0x5eed_0001);
    let trace = std::env::var_os("EMUL_NATIVE_TRACE").is_some();
    let mut host = Host::new().expect("mmap of the test pages");
    let env = Env { insn: host.insn_addr(), data: host.data_addr() };
    let salt = test.bytes().fold(0u64, |h, b| h.wrapping_mul(0x100_0000_01b3) ^ u64::from(b));
    let mut rng = Rng::new(seed ^ salt);
    let total_weight: u64 = families.iter().map(|f| f.1).sum();
    let mut counts: BTreeMap<String, Count> = BTreeMap::new();
    let mut undef: BTreeMap<(String, &str), (u64, u64)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut nfail = 0u64;
    let start = Instant::now();
    for i in 0..n {
        let mut w = rng.below(total_weight);
        let fam = families.iter().find(|f| {
            if w < f.1 {
                true
            } else {
                w -= f.1;
                false
            }
        });
        let case = gen::generate(&mut rng, env, fam.map_or(families[0].0, |f| f.0));
        if trace {
            let _ = writeln!(
                std::io::stderr(),
                "case {i}: {} {:02x?} {:#x?}",
                case.name,
                case.bytes,
                case.regs.gpr
            );
        }
        let mut data = [0u8; DATA_LEN];
        data.copy_from_slice(&case.data);
        let native = run_native(&mut host, &case, &mut data);
        let emu = check::emulate_case(&case, env);
        let c = counts.entry(case.name.clone()).or_default();
        c.n += 1;
        c.mem += u64::from(case.mem);
        c.a32 += u64::from(case.a32);
        c.lock += u64::from(case.lock);
        if let Some(msg) = check::compare(&case, env, &native, &data, &emu) {
            nfail += 1;
            if failures.len() < 6 {
                failures.push(format!("case {i}: {msg}"));
            }
        } else if let Ok(o) = &emu {
            for (bit, name) in [(OF, "OF"), (SF, "SF"), (AF, "AF"), (PF, "PF"), (ZF, "ZF")] {
                if case.undefined & bit != 0 {
                    let e = undef.entry((case.name.clone(), name)).or_default();
                    e.0 += 1;
                    e.1 += u64::from((native.rflags ^ o.regs.rflags) & bit == 0);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut out =
        format!("emul native [{test}]: {n} cases, seed {seed:#x}, {secs:.1} s, {nfail} differ\n");
    for (name, c) in &counts {
        out.push_str(&format!(
            "  {name:<28} {:>7}  (memory {}, 0x67 {}, lock {})\n",
            c.n, c.mem, c.a32, c.lock
        ));
    }
    if !undef.is_empty() {
        out.push_str("  undefined flags, emulator equal to host / cases:\n");
        let mut last = String::new();
        for ((name, flag), (t, m)) in &undef {
            if *name != last {
                if !last.is_empty() {
                    out.push('\n');
                }
                out.push_str(&format!("    {name:<26}"));
                last = name.clone();
            }
            out.push_str(&format!(" {flag} {m}/{t}"));
        }
        out.push('\n');
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    assert!(
        nfail == 0,
        "{nfail} of {n} cases differ (seed {seed:#x}); the first:\n{}",
        failures.join("\n")
    );
}

#[test]
fn arith() {
    run(
        "arith",
        &[(Family::Alu, 8), (Family::Test, 2), (Family::Unary, 2), (Family::IncDec, 2)],
        24_000,
    );
}

#[test]
fn bits() {
    run("bits", &[(Family::Bit, 1)], 12_000);
}

#[test]
fn exchange_and_moves() {
    run(
        "exchange_and_moves",
        &[
            (Family::Cmpxchg, 3),
            (Family::Xadd, 2),
            (Family::Xchg, 2),
            (Family::Mov, 4),
            (Family::Extend, 2),
            (Family::Movbe, 1),
            (Family::Movnti, 1),
            (Family::PushPop, 2),
        ],
        18_000,
    );
}

#[test]
fn strings() {
    run("strings", &[(Family::String, 1)], 12_000);
}

#[test]
fn vectors() {
    run("vectors", &[(Family::Vector, 1)], 10_000);
}

/// Whether the host CPU has feature `flag` (a word of the `flags` line of
/// `/proc/cpuinfo`).
fn host_has(flag: &str) -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let line = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    line.split_whitespace().any(|w| w == flag)
}

#[test]
fn mul_bmi_flush() {
    let mut families = vec![(Family::Imul, 8)];
    // Each only where the host has it: the instruction would be #UD.
    for (family, flag, weight) in [
        (Family::Bextr, "bmi1", 6),
        (Family::Clflush, "clflush", 1),
        (Family::Clflushopt, "clflushopt", 1),
        (Family::Clwb, "clwb", 1),
    ] {
        if host_has(flag) {
            families.push((family, weight));
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "emul native [mul_bmi_flush]: the host has no {flag}, skipped"
            );
        }
    }
    run("mul_bmi_flush", &families, 18_000);
}
