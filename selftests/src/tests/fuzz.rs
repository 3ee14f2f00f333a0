// SPDX-License-Identifier: MIT OR Apache-2.0

//! Random guest code. Whatever a guest executes, every ioctl keeps working
//! and the host survives; the harness checks the kernel log for oopses
//! separately.
//!
//! Each trial writes [`CODE_LEN`] random bytes (then HLTs) at the entry
//! point, puts the vCPU back in its mode with `libvmm::setup`, gives it an
//! IDT whose every gate leads to a HLT (so most faults end the trial instead
//! of triple-faulting), randomises the general registers except RSP, and
//! runs up to [`EXITS_PER_TRIAL`] exits, answering port I/O with random data
//! and MSR accesses with random data or #GP. A guest that loops without
//! exiting is kicked by a watchdog thread after [`WATCH_YIELDS`] yields (no
//! wall-clock timeouts: Bochs's clock barely moves). A suspended VM (triple
//! fault) is replaced by a new one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::thread;

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use crate::guest::{complete, create_vcpu, inject_gp, s, TestVm, HALT_HANDLER, LOAD, RAM_LEN, RUN};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{ensure, Rng};

/// Trials per CPU mode.
const TRIALS: u32 = 64;
/// Random bytes per trial.
const CODE_LEN: usize = 64;
/// Exits one trial may take.
const EXITS_PER_TRIAL: u32 = 50;
/// Yields after which the watchdog kicks a run that has not returned.
const WATCH_YIELDS: u32 = 2_000;
/// The default seed; `vmmtest_seed` (decimal or 0x-hex) overrides it.
const SEED: u64 = 0x5eed_0ff0_0d1e_5500;

pub(crate) fn seed(mode: Mode) -> u64 {
    let base = std::env::var("vmmtest_seed")
        .ok()
        .and_then(|v| match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        })
        .unwrap_or(SEED);
    // A different stream per mode; never zero (xorshift would stay at 0).
    (base ^ (mode as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
}

/// What the watchdog and the running thread share.
#[derive(Default)]
pub(crate) struct Watch {
    /// Bumped before every run.
    pub(crate) epoch: AtomicU64,
    /// A run is in progress.
    pub(crate) running: AtomicBool,
    /// The trials on this VM are over.
    pub(crate) stop: AtomicBool,
    /// A kick that failed.
    pub(crate) error: Mutex<Option<String>>,
}

impl Watch {
    /// One `VMM_VCPU_RUN` of `vcpu` with `entry`, under this watch.
    pub(crate) fn run(&self, vcpu: &VcpuFd, entry: VmmEntry) -> std::io::Result<VmmExit> {
        self.epoch.fetch_add(1, SeqCst);
        self.running.store(true, SeqCst);
        let r = vcpu.run_entry(entry);
        self.running.store(false, SeqCst);
        r
    }
}

/// Kicks `vcpu` whenever one run has lasted [`WATCH_YIELDS`] yields.
pub(crate) fn watchdog(vcpu: &VcpuFd, w: &Watch) {
    let mut last = u64::MAX;
    while !w.stop.load(SeqCst) {
        let epoch = w.epoch.load(SeqCst);
        if epoch == last && w.running.load(SeqCst) {
            if let Err(e) = vcpu.kick() {
                *w.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("kick: {e}"));
                return;
            }
        }
        last = epoch;
        for _ in 0..WATCH_YIELDS {
            if w.stop.load(SeqCst) {
                return;
            }
            thread::yield_now();
        }
    }
}

pub(crate) enum End {
    /// Go on with the next trial on this VM.
    Next,
    /// The VM is suspended: the next trial needs a new one.
    Suspended,
}

pub(crate) fn reason_name(reason: u32) -> &'static str {
    match reason {
        exit::INOUT => "inout",
        exit::HLT => "hlt",
        exit::PAGING => "paging",
        exit::SUSPENDED => "suspended",
        exit::RDMSR => "rdmsr",
        exit::WRMSR => "wrmsr",
        exit::SVM => "svm",
        exit::VMX => "vmx",
        exit::INST_EMUL => "inst_emul",
        exit::KICKED => "kicked",
        exit::MMIO => "mmio",
        _ => "unknown",
    }
}

/// A random value of `size` bytes.
pub(crate) fn random_of_size(rng: &mut Rng, size: u32) -> u64 {
    let bits = 8 * size.min(8);
    guest_random(rng) & (u64::MAX >> (64 - bits))
}

/// Random data for the guest (code, registers, IN and RDMSR results), with
/// no 0x8e byte (MOV Sreg, r/m): QEMU 10.0.2's TCG segfaults translating it
/// with an invalid segment register (reg 6 or 7) in real-mode code, SVM
/// guest or not (seen with `8e b5`, backtrace in `tcg_optimize`), which
/// would kill the test machine, not test vmm. Data is filtered too, though
/// [`fuzz_vm`] no longer lets the guest execute what it stores.
pub(crate) fn guest_random(rng: &mut Rng) -> u64 {
    let mut bytes = rng.next_u64().to_le_bytes();
    for b in &mut bytes {
        if *b == 0x8e {
            *b = 0x90;
        }
    }
    u64::from_le_bytes(bytes)
}

/// A VM like [`TestVm::bare`] whose guest may execute only the two pages
/// the test writes code into, [`HALT_HANDLER`]'s and [`LOAD`]'s, mapped
/// read+exec; the rest of RAM is read-write but not executable. Filtering
/// what the test writes (see [`guest_random`]) is not enough on its own:
/// random code computes and stores bytes (`add [bx+si], al` sliding through
/// zeroed RAM is common) and jumps into them, and a runtime-made `8e /6`
/// killed QEMU. Now executing any byte the test did not write is a paging
/// exit, which ends the trial.
fn fuzz_vm(name: &str) -> Result<TestVm, String> {
    fuzz_vm_with_hole(name, None)
}

/// [`fuzz_vm`], but with `hole` (a page-aligned range of RAM above the
/// code pages) left unmapped, so that real-mode code can reach MMIO.
pub(crate) fn fuzz_vm_with_hole(name: &str, hole: Option<(u64, u64)>) -> Result<TestVm, String> {
    const PAGE: u64 = 0x1000;
    let vm = s(crate::vmm()?.create_vm(name, CreateFlags::DESTROY_ON_CLOSE))?;
    let seg = s(vm.alloc_segment(SegKind::SysMem, RAM_LEN))?;
    let (rw, rx) = (Prot::READ | Prot::WRITE, Prot::READ | Prot::EXEC);
    let mut at = 0;
    for code in [HALT_HANDLER & !(PAGE - 1), LOAD & !(PAGE - 1)] {
        if at < code {
            s(vm.map(at, &seg, at, code - at, rw))?;
        }
        s(vm.map(code, &seg, code, PAGE, rx))?;
        at = code + PAGE;
    }
    if let Some((start, end)) = hole {
        ensure!(
            at <= start && start < end && end <= RAM_LEN && (start | end) % PAGE == 0,
            "bad hole {start:#x}..{end:#x}"
        );
        if at < start {
            s(vm.map(at, &seg, at, start - at, rw))?;
        }
        at = end;
    }
    if at < RAM_LEN {
        s(vm.map(at, &seg, at, RAM_LEN - at, rw))?;
    }
    let mem = s(vm.mmap_segment(&seg))?;
    let vcpu = create_vcpu(&vm, 0)?;
    Ok(TestVm { vcpu, mem, vm })
}

// `fuzz_vm` maps the two code pages in ascending order, and a trial's code
// (random bytes, then as many HLTs) fits in LOAD's page.
const _: () =
    assert!(HALT_HANDLER >> 12 < LOAD >> 12 && (LOAD & 0xfff) + 2 * CODE_LEN as u64 <= 0x1000);

/// A random code byte (see [`guest_random`]).
pub(crate) fn code_byte(rng: &mut Rng) -> u8 {
    guest_random(rng) as u8
}

fn trial(
    t: &TestVm,
    mode: Mode,
    rng: &mut Rng,
    w: &Watch,
    tally: &mut BTreeMap<&str, u32>,
) -> Result<End, String> {
    t.setup(mode, LOAD)?;
    let mut code = [0xf4u8; 2 * CODE_LEN];
    for b in &mut code[..CODE_LEN] {
        *b = code_byte(rng);
    }
    t.write(LOAD, &code)?;
    t.write(HALT_HANDLER, &[0xf4])?;
    t.install_idt(mode, |_| HALT_HANDLER)?;
    let mut regs: Vec<(u32, u64)> =
        (reg::RAX..=reg::R15).filter(|&r| r != reg::RSP).map(|r| (r, guest_random(rng))).collect();
    regs.extend([(reg::DR6, 0xffff_0ff0), (reg::DR7, 0x400)]);
    s(t.vcpu.set_regs(&regs))?;
    let mut entry = RUN;
    for _ in 0..EXITS_PER_TRIAL {
        let r = w.run(&t.vcpu, entry);
        let e = match r {
            Ok(e) => e,
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {
                entry = RUN;
                continue;
            }
            Err(err) => return Err(format!("run: {err}")),
        };
        *tally.entry(reason_name(e.reason)).or_default() += 1;
        entry = match Exit::decode(&e) {
            Exit::Inout(io) if io.flags & VMM_INOUT_IN != 0 => {
                complete(random_of_size(rng, io.size))
            }
            Exit::Inout(_) => complete(0),
            Exit::Rdmsr(_) | Exit::Wrmsr(..) if rng.next_u64() & 1 == 0 => inject_gp(),
            Exit::Rdmsr(_) | Exit::Wrmsr(..) => complete(guest_random(rng)),
            Exit::Suspended(_) => return Ok(End::Suspended),
            // Raw exits are legitimate answers to random code, but say
            // which, so a new kind is seen.
            Exit::Vmx(v) => {
                println!(
                    "# {mode:?}: VMX exit reason {:#x} qualification {:#x} intr {:#x} error {} \
                     at {:#x}",
                    v.exit_reason, v.qualification, v.intr_info, v.instruction_error, e.rip
                );
                return Ok(End::Next);
            }
            Exit::Svm(v) => {
                println!(
                    "# {mode:?}: SVM exit code {:#x} info1 {:#x} info2 {:#x} at {:#x}",
                    v.exit_code, v.exit_info1, v.exit_info2, e.rip
                );
                return Ok(End::Next);
            }
            _ => return Ok(End::Next),
        };
    }
    Ok(End::Next)
}

/// Runs `trials` trials of `trial` under a watchdog that kicks a guest
/// that loops, on VMs from `new_vm` (numbered from 0; a new one after each
/// suspension). Returns how many VMs it took.
pub(crate) fn run_trials(
    mode: Mode,
    seed: u64,
    trials: u32,
    mut new_vm: impl FnMut(u32) -> Result<TestVm, String>,
    mut trial: impl FnMut(&TestVm, &Watch) -> Result<End, String>,
) -> Result<u32, String> {
    let (mut done, mut vms) = (0, 0);
    while done < trials {
        // Every VM but the last ends in a suspension that used up a trial.
        ensure!(vms <= trials, "more VMs than trials");
        let t = new_vm(vms)?;
        vms += 1;
        let w = Watch::default();
        thread::scope(|sc| {
            sc.spawn(|| watchdog(&t.vcpu, &w));
            let mut r = Ok(());
            while done < trials {
                done += 1;
                match trial(&t, &w) {
                    Ok(End::Next) => {}
                    Ok(End::Suspended) => break,
                    Err(e) => {
                        r = Err(format!("{mode:?} trial {done} (seed {seed:#x}): {e}"));
                        break;
                    }
                }
            }
            w.stop.store(true, SeqCst);
            r
        })?;
        let kick_error = w.error.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(e) = kick_error {
            return Err(e);
        }
    }
    Ok(vms)
}

fn fuzz(mode: Mode) -> TestResult {
    let seed = seed(mode);
    println!("# {mode:?}: seed {seed:#x}, {TRIALS} trials of {CODE_LEN} random bytes");
    let mut rng = Rng(seed);
    let mut tally = BTreeMap::new();
    let vms = run_trials(
        mode,
        seed,
        TRIALS,
        |n| fuzz_vm(&format!("fuzz-{mode:?}-{n}")),
        |t, w| trial(t, mode, &mut rng, w, &mut tally),
    )?;
    println!("# {mode:?}: {vms} VMs, exits {tally:?}");
    Ok(Pass)
}

pub fn random_code_real_mode() -> TestResult {
    fuzz(Mode::Real)
}

pub fn random_code_protected_mode() -> TestResult {
    fuzz(Mode::Protected32)
}

pub fn random_code_long_mode() -> TestResult {
    fuzz(Mode::Long64)
}
