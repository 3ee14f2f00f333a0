// SPDX-License-Identifier: MIT OR Apache-2.0

//! Random guest code against MMIO: the random-code trials of
//! [`super::fuzz`] (same VMs, which execute only the bytes the test wrote
//! and never a 0x8e byte; same seeds, watchdog and exit answers), but with
//! most general registers pointing into unmapped guest-physical memory, so
//! that random memory operands become MMIO exits the kernel's emulator
//! produces. Reads are answered with random values, writes accepted;
//! `INST_EMUL` ends a trial. Every MMIO and `INST_EMUL` exit is checked
//! against the ABI (legal size, flags and reserved fields, an address no
//! mapping covers), and `VMM_VCPU_RUN` may fail only with `EINTR`.
//!
//! In 32-bit and 64-bit mode everything above [`RAM_LEN`] is unmapped and
//! the registers point at [`WINDOW`]`..+64K`; in real mode the test leaves
//! [`REAL_HOLE`] (inside the first 64 KiB, which real-mode code reaches)
//! unmapped and the registers point there.

use std::collections::BTreeMap;

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::Exit;

use super::fuzz::{code_byte, run_trials, End, Watch};
use super::fuzz::{fuzz_vm_with_hole, guest_random, random_of_size, reason_name, seed};
use super::mmio::WINDOW;
use crate::guest::{complete, inject_gp, s, TestVm, HALT_HANDLER, LOAD, RAM_LEN, RUN};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{ensure, Rng};

/// Trials per CPU mode.
const TRIALS: u32 = 64;
/// Random bytes per trial.
const CODE_LEN: usize = 64;
/// Exits one trial may take (REP strings on MMIO take one per element).
const EXITS_PER_TRIAL: u32 = 64;
/// Real mode's MMIO: between the code page and the scratch area.
const REAL_HOLE: (u64, u64) = (0xa000, 0x1_0000);
/// How far past the start of the window the registers point.
const SPREAD: u64 = 0x1_0000;
/// Mixed into the random-code seed, so that these trials differ from
/// `random_code_*`'s.
const SALT: u64 = 0x4d4d_494f_4d4d_494f;

/// A register value pointing into MMIO for `mode`.
fn pointer(mode: Mode, rng: &mut Rng) -> u64 {
    match mode {
        Mode::Real => REAL_HOLE.0 + rng.next_u64() % (REAL_HOLE.1 - REAL_HOLE.0 - 0x100),
        _ => WINDOW + rng.next_u64() % SPREAD,
    }
}

/// Whether no mapping covers `gpa..gpa + size` in a VM with `hole`.
fn unmapped(hole: Option<(u64, u64)>, gpa: u64, size: u64) -> bool {
    let Some(end) = gpa.checked_add(size) else { return false };
    gpa >= RAM_LEN || hole.is_some_and(|(a, b)| a <= gpa && end <= b)
}

/// What the trials saw.
#[derive(Default)]
struct Tally {
    exits: BTreeMap<&'static str, u32>,
    reads: u32,
    writes: u32,
}

/// Checks an MMIO exit and answers it.
fn mmio_exit(
    m: &VmmExitMmio,
    hole: Option<(u64, u64)>,
    rng: &mut Rng,
    tally: &mut Tally,
) -> Result<VmmEntry, String> {
    let write = m.flags & VMM_MMIO_WRITE != 0;
    ensure!(
        matches!(m.size, 1 | 2 | 4 | 8)
            && m.flags & !VMM_MMIO_WRITE == 0
            && m.reserved == [0; 5]
            && (write || m.data == 0)
            && (m.size == 8 || m.data >> (8 * m.size) == 0),
        "malformed MMIO exit {m:x?}"
    );
    ensure!(unmapped(hole, m.gpa, u64::from(m.size)), "MMIO exit for mapped memory: {m:x?}");
    if write {
        tally.writes += 1;
        Ok(RUN)
    } else {
        tally.reads += 1;
        Ok(complete(random_of_size(rng, m.size)))
    }
}

/// One trial: random code at [`LOAD`], registers mostly at MMIO.
fn trial(
    t: &TestVm,
    mode: Mode,
    hole: Option<(u64, u64)>,
    rng: &mut Rng,
    w: &Watch,
    tally: &mut Tally,
) -> Result<End, String> {
    t.setup(mode, LOAD)?;
    let mut code = [0xf4u8; 2 * CODE_LEN];
    for b in &mut code[..CODE_LEN] {
        *b = code_byte(rng);
    }
    t.write(LOAD, &code)?;
    t.write(HALT_HANDLER, &[0xf4])?;
    t.install_idt(mode, |_| HALT_HANDLER)?;
    let mut regs: Vec<(u32, u64)> = Vec::new();
    for r in (reg::RAX..=reg::R15).filter(|&r| r != reg::RSP) {
        let v = if rng.next_u64() % 4 == 0 { guest_random(rng) } else { pointer(mode, rng) };
        regs.push((r, v));
    }
    regs.extend([(reg::DR6, 0xffff_0ff0), (reg::DR7, 0x400)]);
    s(t.vcpu.set_regs(&regs))?;
    let hex: Vec<String> = code[..CODE_LEN].iter().map(|b| format!("{b:02x}")).collect();
    let mut entry = RUN;
    for _ in 0..EXITS_PER_TRIAL {
        let r = w.run(&t.vcpu, entry);
        let e = match r {
            Ok(e) => e,
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {
                entry = RUN;
                continue;
            }
            Err(err) => {
                return Err(format!("VMM_VCPU_RUN({entry:x?}): {err}; code {}", hex.join(" ")))
            }
        };
        *tally.exits.entry(reason_name(e.reason)).or_default() += 1;
        let bad = |m: String| format!("{m} at rip {:#x}; code {}", e.rip, hex.join(" "));
        entry = match Exit::decode(&e) {
            Exit::Mmio(m) => mmio_exit(&m, hole, rng, tally).map_err(bad)?,
            Exit::InstEmul(ie) => {
                let gpa_ok = ie.flags & VMM_INST_EMUL_GPA == 0 || unmapped(hole, ie.gpa, 1);
                ensure!(
                    ie.flags & !VMM_INST_EMUL_GPA == 0 && gpa_ok && ie.len <= 15,
                    "{}",
                    bad(format!("bad INST_EMUL {ie:x?}"))
                );
                return Ok(End::Next);
            }
            Exit::Inout(io) if io.flags & VMM_INOUT_IN != 0 => {
                complete(random_of_size(rng, io.size))
            }
            Exit::Inout(_) => complete(0),
            Exit::Rdmsr(_) | Exit::Wrmsr(..) if rng.next_u64() & 1 == 0 => inject_gp(),
            Exit::Rdmsr(_) | Exit::Wrmsr(..) => complete(guest_random(rng)),
            Exit::Suspended(_) => return Ok(End::Suspended),
            _ => return Ok(End::Next),
        };
    }
    Ok(End::Next)
}

fn fuzz(mode: Mode) -> TestResult {
    let seed = (seed(mode) ^ SALT) | 1;
    println!("# {mode:?}: seed {seed:#x}, {TRIALS} trials of {CODE_LEN} random bytes on MMIO");
    let hole = (mode == Mode::Real).then_some(REAL_HOLE);
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let vms = run_trials(
        mode,
        seed,
        TRIALS,
        |n| fuzz_vm_with_hole(&format!("mmio-fuzz-{mode:?}-{n}"), hole),
        |t, w| trial(t, mode, hole, &mut rng, w, &mut tally),
    )?;
    println!(
        "# {mode:?}: {vms} VMs, exits {:?}, MMIO reads {} writes {}",
        tally.exits, tally.reads, tally.writes
    );
    Ok(Pass)
}

/// Random code with registers pointing at MMIO, in real, 32-bit and
/// 64-bit mode; see the module comment.
pub fn mmio_random_code() -> TestResult {
    for mode in [Mode::Real, Mode::Protected32, Mode::Long64] {
        fuzz(mode)?;
    }
    Ok(Pass)
}
