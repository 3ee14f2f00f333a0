// SPDX-License-Identifier: MIT OR Apache-2.0

//! The host side of the local APIC tests: VMs whose vCPU 0 runs a payload
//! on the guest runtime of [`apic_rt`](super::apic_rt), and a harness that
//! runs every vCPU of such a VM on its own thread under a watchdog.
//!
//! A vCPU other than 0 (an application processor, AP) waits for INIT and
//! SIPI inside `VMM_VCPU_RUN`, and an in-kernel HLT blocks there too, so
//! [`run_all`] runs each AP on a thread of its own ([`ApLog`] is what it
//! saw) while the test drives vCPU 0 on the calling thread. A [`Watch`]
//! thread kicks every vCPU after [`WATCHDOG`], or as soon as the test gives
//! up, so that no run blocks forever.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use libvmm::setup::Mode;
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use super::apic_rt::{apic_state, install_rt};
use crate::guest::{
    complete, create_apic_vcpu, describe, s, Next, Payload, Run, TestVm, MAX_EXITS, PASS,
    PORT_DEBUG, PORT_FAIL, PORT_PASS, RUN,
};

/// Skips a multi-vCPU stress test on the QEMU AMD-V machines
/// (`vmmtest_backend=svm`): QEMU 10.0.2's TCG now and then performs a
/// #VMEXIT that writes the host's state into a vCPU's VMCB under such load
/// (Documentation/testing.rst has the evidence); vmm detects it and fails
/// that vCPU's run with `EIO`, but the test could only report the emulator.
pub fn skip_on_qemu_svm() -> Result<(), String> {
    if std::env::var("vmmtest_backend").is_ok_and(|b| b == "svm") {
        return Err(crate::tap::skip("QEMU 10.0.2 TCG SVM loses VMCB state under multi-vCPU load"));
    }
    Ok(())
}

/// How long [`run_all`] lets a test run before it kicks every vCPU. The
/// tests need well under a second of guest time; on Bochs a second of
/// guest time is minutes of ours.
pub const WATCHDOG: Duration = Duration::from_secs(10);

/// A VM for the APIC tests: vCPU 0 in long mode at the payload with the
/// runtime installed, and application processors 1 to `n - 1` waiting for
/// SIPI. Every vCPU keeps the default in-kernel HLT.
pub struct ApicVm {
    /// vCPUs 1 and up (dropped first).
    pub aps: Vec<VcpuFd>,
    /// The VM and vCPU 0.
    pub t: TestVm,
}

impl ApicVm {
    /// VM `name` with `n` vCPUs running `p` on vCPU 0.
    pub fn new(name: &str, n: u32, p: &Payload) -> Result<Self, String> {
        let t = TestVm::new_apic(name, Mode::Long64, p)?;
        install_rt(&t)?;
        let aps = (1..n).map(|id| create_apic_vcpu(&t.vm, id)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { aps, t })
    }
}

/// A thread that kicks a VM's vCPUs once [`WATCHDOG`] has passed, or as
/// soon as the test calls [`Watch::stop`], and goes on kicking every
/// 20 ms until the test is over.
pub struct Watch<'a> {
    vcpus: Vec<&'a VcpuFd>,
    stop: AtomicBool,
    fired: AtomicBool,
}

impl Watch<'_> {
    /// Asks every run to end: the vCPUs are kicked from now on.
    pub fn stop(&self) {
        self.stop.store(true, SeqCst);
    }

    /// Whether runs are being asked to end.
    pub fn stopping(&self) -> bool {
        self.stop.load(SeqCst)
    }

    /// Whether [`WATCHDOG`] ran out.
    pub fn fired(&self) -> bool {
        self.fired.load(SeqCst)
    }
}

/// Runs `f` while a [`Watch`] thread looks after `vcpus`.
pub fn watched<'a, R>(vcpus: Vec<&'a VcpuFd>, f: impl FnOnce(&Watch<'a>) -> R) -> R {
    let w = Watch { vcpus, stop: AtomicBool::new(false), fired: AtomicBool::new(false) };
    let (done, rx) = mpsc::channel::<()>();
    thread::scope(|sc| {
        let w = &w;
        sc.spawn(move || {
            let start = Instant::now();
            // Until `done` is dropped.
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_millis(20)) {
                if start.elapsed() >= WATCHDOG && !w.stop.swap(true, SeqCst) {
                    w.fired.store(true, SeqCst);
                }
                if w.stopping() {
                    for v in &w.vcpus {
                        let _ = v.kick();
                    }
                }
            }
        });
        let r = f(w);
        drop(done);
        r
    })
}

/// How an application processor's thread ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApEnd {
    /// The VM suspended: `VMM_SUSPEND_*`.
    Suspended(u32),
    /// The watchdog or the test stopped it.
    Kicked,
}

/// What an application processor's thread saw.
#[derive(Debug)]
pub struct ApLog {
    /// The vCPU id.
    pub id: u32,
    /// Values it wrote to [`PORT_DEBUG`].
    pub debug: Vec<u32>,
    /// Whether it reported [`PASS`].
    pub passed: bool,
    /// How its runs ended.
    pub end: ApEnd,
}

/// What a test makes of an AP's exit that is no report, suspension or
/// kick: the entry to go on with, or `None` for an unexpected exit (an
/// error). Called on the AP's thread.
pub type ApHandler<'h> = dyn Fn(&VcpuFd, &VmmExit) -> Result<Option<VmmEntry>, String> + Sync + 'h;

/// Runs AP `vcpu` until the VM suspends or `w` stops it: reports are
/// recorded and completed, a FAIL report is an error, and any other exit
/// goes to `other`.
fn ap_loop(vcpu: &VcpuFd, w: &Watch<'_>, other: &ApHandler<'_>) -> Result<ApLog, String> {
    let id = vcpu.id();
    let mut log = ApLog { id, debug: Vec::new(), passed: false, end: ApEnd::Kicked };
    let mut entry = RUN;
    for _ in 0..MAX_EXITS {
        let e = match vcpu.run_entry(entry) {
            Ok(e) => e,
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => {
                entry = RUN;
                continue;
            }
            Err(err) => return Err(format!("vCPU {id}: run: {err}; debug {:#x?}", log.debug)),
        };
        entry = RUN;
        match Exit::decode(&e) {
            Exit::Inout(io) if io.flags == 0 && io.size == 4 && io.port == PORT_DEBUG => {
                log.debug.push(io.value as u32);
                entry = complete(0);
            }
            Exit::Inout(io)
                if io.flags == 0 && io.size == 4 && io.port == PORT_PASS && io.value == PASS =>
            {
                log.passed = true;
                entry = complete(0);
            }
            Exit::Inout(io) if io.flags == 0 && io.size == 4 && io.port == PORT_FAIL => {
                return Err(format!(
                    "vCPU {id} failed with code {:#x} at rip {:#x}; debug {:#x?}",
                    io.value, e.rip, log.debug
                ));
            }
            Exit::Suspended(su) => {
                log.end = ApEnd::Suspended(su.how);
                return Ok(log);
            }
            Exit::Kicked if w.stopping() => return Ok(log),
            // A kick meant for an earlier run.
            Exit::Kicked => {}
            _ => match other(vcpu, &e)? {
                Some(next) => entry = next,
                None => {
                    return Err(format!(
                        "vCPU {id}: unexpected exit {}; debug {:#x?}",
                        describe(&e),
                        log.debug
                    ))
                }
            },
        }
    }
    Err(format!("vCPU {id}: no end after {MAX_EXITS} exits; debug {:#x?}", log.debug))
}

/// Passes `r` on; an error stops every run first, so that a failing AP
/// ends the test at once instead of at the watchdog.
fn stop_on_error<T>(w: &Watch<'_>, r: Result<T, String>) -> Result<T, String> {
    if r.is_err() {
        w.stop();
    }
    r
}

/// Runs every AP of `v` on a thread of its own and `bsp` on this one, all
/// under a [`Watch`]. When `bsp` or an AP fails every run is stopped at
/// once; otherwise they run until the VM suspends (or the watchdog fires).
/// Returns `bsp`'s result and the APs' logs, in vCPU order; any failure,
/// of `bsp` or of an AP, fails the whole with the guest state appended.
pub fn run_all<R>(
    v: &ApicVm,
    bsp: impl FnOnce(&Watch<'_>) -> Result<R, String>,
) -> Result<(R, Vec<ApLog>), String> {
    run_all_with(v, &|_, _| Ok(None), bsp)
}

/// [`run_all`], with `other` deciding about the APs' exits that are no
/// report, suspension or kick (MMIO, say).
pub fn run_all_with<R>(
    v: &ApicVm,
    other: &ApHandler<'_>,
    bsp: impl FnOnce(&Watch<'_>) -> Result<R, String>,
) -> Result<(R, Vec<ApLog>), String> {
    let vcpus = std::iter::once(&v.t.vcpu).chain(&v.aps).collect();
    watched(vcpus, |w| {
        thread::scope(|sc| {
            let threads: Vec<_> = v
                .aps
                .iter()
                .map(|ap| sc.spawn(move || stop_on_error(w, ap_loop(ap, w, other))))
                .collect();
            let r = bsp(w);
            if r.is_err() {
                w.stop();
            }
            let mut errors = Vec::new();
            let mut logs = Vec::new();
            for (h, ap) in threads.into_iter().zip(&v.aps) {
                match h.join() {
                    Ok(Ok(log)) => logs.push(log),
                    Ok(Err(e)) => errors.push(e),
                    Err(_) => errors.push(format!("vCPU {}: its thread panicked", ap.id())),
                }
            }
            if w.fired() {
                errors.push(format!("the watchdog kicked every vCPU after {WATCHDOG:?}"));
            }
            match r {
                Ok(r) if errors.is_empty() => Ok((r, logs)),
                r => {
                    if let Err(e) = r {
                        errors.insert(0, e);
                    }
                    Err(format!("{}\n{}\n{}", errors.join("\n"), apic_state(&v.t), vcpu_regs(v)))
                }
            }
        })
    })
}

/// Every vCPU's RIP, RSP, RFLAGS, CR0, CR3, CR4 and EFER, for failure
/// messages (the vCPUs must not be running).
pub fn vcpu_regs(v: &ApicVm) -> String {
    let ids = [reg::RIP, reg::RSP, reg::RFLAGS, reg::CR0, reg::CR3, reg::CR4, reg::EFER];
    std::iter::once(&v.t.vcpu)
        .chain(&v.aps)
        .map(|c| match c.get_regs(&ids) {
            Ok(r) => format!(
                "vCPU {}: rip {:#x} rsp {:#x} rflags {:#x} cr0 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x}",
                c.id(),
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6]
            ),
            Err(e) => format!("vCPU {}: registers unreadable: {e}", c.id()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs vCPU 0 until the guest reports PASS or `handler` stops it, as
/// [`TestVm::run_until`]; a KICKED exit (the watchdog) is an error.
pub fn bsp_run(
    t: &TestVm,
    mut handler: impl FnMut(&Exit, &VmmExit) -> Result<Next, String>,
) -> Result<Run, String> {
    t.run_until(RUN, |x, e| match x {
        Exit::Kicked => Err(format!("vCPU 0 kicked at rip {:#x}: stopped by the watchdog", e.rip)),
        _ => handler(x, e),
    })
}

/// Runs vCPU 0 to its PASS report; every other exit is an error.
pub fn bsp_pass(t: &TestVm) -> Result<Vec<u32>, String> {
    let r = bsp_run(t, |_, e| Err(format!("unexpected exit {}", describe(e))))?;
    Ok(r.debug)
}

/// Fails unless `e` is SUSPENDED with how `VMM_SUSPEND_HALT`, reserved
/// fields zero, naming a vCPU id below `vcpus` (the last to halt).
pub fn expect_halt_suspended(e: &VmmExit, vcpus: u32) -> Result<(), String> {
    match Exit::decode(e) {
        Exit::Suspended(su)
            if su.how == VMM_SUSPEND_HALT && su.vcpu < vcpus && su.reserved == [0; 7] =>
        {
            Ok(())
        }
        _ => Err(format!("expected SUSPENDED HALT, got {}", describe(e))),
    }
}

/// Completes vCPU 0's PASS report: the guest then halts with IF = 0, and
/// since every other vCPU has halted so too or waits for SIPI, the VM
/// suspends (`VMM_SUSPEND_HALT`). For the end of a [`run_all`] body.
pub fn halt_after_pass(v: &ApicVm) -> Result<(), String> {
    let e = s(v.t.vcpu.complete(0))?;
    // AP ids need not be contiguous.
    expect_halt_suspended(&e, v.aps.iter().map(|ap| ap.id() + 1).max().unwrap_or(1))
}

/// Fails unless every AP ended with the VM suspended by HALT.
pub fn expect_aps_suspended(aps: &[ApLog]) -> Result<(), String> {
    for ap in aps {
        if ap.end != ApEnd::Suspended(VMM_SUSPEND_HALT) {
            return Err(format!("vCPU {} ended {:?}, not SUSPENDED HALT", ap.id, ap.end));
        }
    }
    Ok(())
}
