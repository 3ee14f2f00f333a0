// SPDX-License-Identifier: MIT OR Apache-2.0

//! MMIO: a guest data access to guest-physical memory that no mapping
//! covers is completed by the kernel's instruction emulator, one `MMIO`
//! exit per access (reads completed with `VMM_ENTRY_COMPLETE` and their
//! value, writes reported after the instruction).
//!
//! The "device" here is memory in the test: a [`Device`] stands for one
//! page of MMIO at [`WINDOW`], answering reads from its bytes and storing
//! writes into them. So every instruction can be run twice, once on RAM
//! (the CPU alone) and once on the device (the CPU, the kernel's emulator
//! and the device), from the same registers and the same bytes, and the
//! two end states must agree: general registers, RIP, the defined RFLAGS
//! bits, the window's bytes (and its RAM neighbours'), a RAM buffer and
//! the stack.
//!
//! # A differential run's guest memory
//!
//! | GPA | use |
//! |---|---|
//! | [`IDT`](crate::guest::IDT) | every vector to its own HLT at [`HANDLERS`]` + vector` |
//! | [`LOAD`] | the case's code, then HLT |
//! | [`RAMBUF`] | one page, RAM in both runs |
//! | [`SHADOW`]` - 4K .. + 8K` | the RAM run's stand-in for the window and its neighbours |
//! | [`WINDOW`]` - 4K`, `+ 4K` | the MMIO run's RAM neighbours of the window (a segment) |
//! | [`WINDOW`] | the MMIO run's device page; nothing is mapped there |
//!
//! The RAM side and the MMIO side of each mode keep one VM each (see
//! [`Side`]), which every case starts afresh; a run that fails gets its
//! side a new VM.

use std::sync::atomic::Ordering::SeqCst;
use std::thread;

use libvmm::setup::Mode;
use libvmm::sys::Mapping;
use libvmm::uapi::*;
use libvmm::Exit;

use crate::guest::{complete, describe, s, Payload, TestVm, DATA, FREE, LOAD, RUN, STACK};
use crate::tap::{Outcome::Pass, TestResult};
use crate::tests::fuzz::{watchdog, Watch};
use crate::{ensure, payload, Rng};

/// The MMIO window: one page of guest-physical space nothing maps.
pub(crate) const WINDOW: u64 = 0xd000_0000;
/// A page.
pub(crate) const PAGE: u64 = 0x1000;
/// The RAM buffer, RAM in both runs.
const RAMBUF: u64 = DATA;
/// The RAM run's stand-in for [`WINDOW`] (its neighbours at +-4 KiB).
const SHADOW: u64 = FREE + PAGE;
/// 256 one-byte HLTs, one per vector: a fault ends the run at the HLT
/// of its vector.
pub(crate) const HANDLERS: u64 = 0x2c00;
/// RAM of a differential VM.
const DIFF_RAM: u64 = 0x4_0000;
/// The stack bytes compared: from `STACK - STACK_BELOW` to `STACK + STACK_ABOVE`.
const STACK_BELOW: u64 = 0x100;
const STACK_ABOVE: u64 = 0x40;
/// Bytes at [`LOAD`] a case's code (at most 255 bytes) and its HLT get.
const CODE_ROOM: usize = 0x100;
/// Exits one run may take.
const MAX_EXITS: usize = 2_000;
/// Watchdog kicks one run may take: more means the guest, or the kernel,
/// loops.
const MAX_KICKS: u32 = 3;

const _: () = assert!(SHADOW + 2 * PAGE <= DIFF_RAM && HANDLERS + 0x100 <= 0x3000);

/// RFLAGS bits.
pub(crate) const CF: u64 = 1 << 0;
pub(crate) const PF: u64 = 1 << 2;
pub(crate) const AF: u64 = 1 << 4;
pub(crate) const ZF: u64 = 1 << 6;
pub(crate) const SF: u64 = 1 << 7;
pub(crate) const OF: u64 = 1 << 11;
/// The arithmetic flags.
const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
/// RFLAGS.RF, which says nothing about the instruction.
const RF: u64 = 1 << 16;
/// CR4.OSFXSR | OSXMMEXCPT, and OSXSAVE.
pub(crate) const CR4_SSE: u64 = 3 << 9;
const CR4_OSXSAVE: u64 = 1 << 18;

// ----- the device -------------------------------------------------------------

/// One MMIO exit as the device saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) gpa: u64,
    pub(crate) size: u32,
    pub(crate) write: bool,
    /// The value written, or the value the read was answered with.
    pub(crate) value: u64,
    /// The exit's RIP.
    pub(crate) rip: u64,
}

/// Memory standing for MMIO at `base`: reads answered from `bytes`,
/// writes stored into them; every exit is checked against the ABI.
pub(crate) struct Device {
    pub(crate) base: u64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) log: Vec<Access>,
}

impl Device {
    pub(crate) fn new(base: u64, bytes: Vec<u8>) -> Self {
        Self { base, bytes, log: Vec::new() }
    }

    /// Takes one MMIO exit: the entry that answers it.
    pub(crate) fn access(&mut self, m: &VmmExitMmio, rip: u64) -> Result<VmmEntry, String> {
        ensure!(
            matches!(m.size, 1 | 2 | 4 | 8)
                && m.flags & !VMM_MMIO_WRITE == 0
                && m.reserved == [0; 5],
            "malformed MMIO exit {m:x?} at rip {rip:#x} (size must be 1, 2, 4 or 8)"
        );
        let write = m.flags & VMM_MMIO_WRITE != 0;
        let size = m.size as usize;
        let off = m.gpa.wrapping_sub(self.base) as usize;
        ensure!(
            m.gpa >= self.base && off + size <= self.bytes.len(),
            "MMIO {} at gpa {:#x} size {size} (rip {rip:#x}) outside the device {:#x}+{:#x}",
            if write { "write" } else { "read" },
            m.gpa,
            self.base,
            self.bytes.len()
        );
        let bytes = &mut self.bytes[off..off + size];
        let value = if write {
            ensure!(
                size == 8 || m.data >> (8 * size) == 0,
                "MMIO write {m:x?} at rip {rip:#x}: data wider than its size"
            );
            bytes.copy_from_slice(&m.data.to_le_bytes()[..size]);
            m.data
        } else {
            ensure!(m.data == 0, "MMIO read {m:x?} at rip {rip:#x} with data");
            bytes.iter().rev().fold(0, |v, b| v << 8 | u64::from(*b))
        };
        self.log.push(Access { gpa: m.gpa, size: m.size, write, value, rip });
        Ok(if write { RUN } else { complete(value) })
    }
}

/// Runs `t` from `entry`, answering MMIO exits with `dev`, to the first
/// exit that is neither MMIO nor a watchdog kick; returns it. A watchdog
/// kicks a run that does not return.
pub(crate) fn run_device(t: &TestVm, dev: &mut Device, entry: VmmEntry) -> Result<VmmExit, String> {
    let w = Watch::default();
    let r = thread::scope(|sc| {
        sc.spawn(|| watchdog(&t.vcpu, &w));
        let r = (|| {
            let (mut entry, mut kicks) = (entry, 0);
            for _ in 0..MAX_EXITS {
                let r = w.run(&t.vcpu, entry);
                let e = r.map_err(|err| format!("VMM_VCPU_RUN failed: {err}"))?;
                match Exit::decode(&e) {
                    Exit::Mmio(m) => entry = dev.access(&m, e.rip)?,
                    Exit::Kicked => {
                        kicks += 1;
                        ensure!(kicks <= MAX_KICKS, "kicked {kicks} times at rip {:#x}", e.rip);
                        entry = RUN;
                    }
                    _ => return Ok(e),
                }
            }
            Err(format!("no end after {MAX_EXITS} exits"))
        })();
        w.stop.store(true, SeqCst);
        r
    });
    if let Some(e) = w.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    r
}

/// Whether the tests run on the QEMU AMD-V machines.
fn on_qemu_svm() -> bool {
    std::env::var("vmmtest_backend").is_ok_and(|b| b == "svm")
}

/// Host CPUID leaf `leaf`, subleaf 0: EAX, EBX, ECX, EDX.
pub(crate) fn host_cpuid(leaf: u32) -> [u32; 4] {
    let r = std::arch::x86_64::__cpuid_count(leaf, 0);
    [r.eax, r.ebx, r.ecx, r.edx]
}

// ----- differential cases -----------------------------------------------------

/// Where a pointer register points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Area {
    /// The window ([`WINDOW`] in the MMIO run, [`SHADOW`] in the RAM run).
    Win,
    /// [`RAMBUF`] in both runs.
    Ram,
}

/// The bytes a case starts with (random, then adjusted).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fill {
    Random,
    /// Window bytes `at..at + n` equal RAMBUF's, and the next one differs.
    Equal {
        at: usize,
        n: usize,
    },
    /// `byte` is in the window page at `at` and nowhere else.
    Find {
        at: usize,
        byte: u8,
    },
    /// Window bytes `at..at + n` are all the same, and the next one differs.
    Run {
        at: usize,
        n: usize,
    },
}

/// What the CPU needs for a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Nothing,
    /// SSE: CR4.OSFXSR is set for it.
    Sse,
    /// AVX: CR4.OSXSAVE too; the case sets XCR0 itself.
    Avx,
    Movbe,
}

/// How a case runs and what it must do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    /// RFLAGS bits the instruction leaves undefined (not compared).
    pub(crate) undef: u64,
    /// Pointer registers: (register, area, offset into the area). They are
    /// compared as offsets into their area.
    pub(crate) ptrs: &'static [(u32, Area, i64)],
    /// Registers with fixed values (others are random), by number.
    pub(crate) regs: [Option<u64>; 16],
    pub(crate) fill: Fill,
    pub(crate) need: Need,
    /// MMIO exits the MMIO run takes at least.
    pub(crate) min_exits: usize,
    /// When non-zero: the MMIO run's accesses are exactly this many
    /// 8-byte pieces, in address order.
    pub(crate) pieces: usize,
}

/// The usual case: RBX points 0x100 into the window, one MMIO exit at
/// least, all flags defined.
pub(crate) const M: Meta = Meta {
    undef: 0,
    ptrs: &[(reg::RBX, Area::Win, 0x100)],
    regs: [None; 16],
    fill: Fill::Random,
    need: Need::Nothing,
    min_exits: 1,
    pieces: 0,
};

impl Meta {
    /// This meta with register `r` starting at `v`.
    pub(crate) const fn with(self, r: u32, v: u64) -> Self {
        let mut m = self;
        m.regs[r as usize] = Some(v);
        m
    }
}

/// A table of cases: each `"asm" => meta` (default [`M`]) is assembled
/// into `.rodata.guest` between `$start` and `$end` as a length byte and
/// the code, in mode `$mode`; `$table` gets the text and the meta.
macro_rules! cases {
    ($table:ident, $start:ident, $end:ident, $mode:literal,
     [$($asm:literal $(=> $meta:expr)?),* $(,)?]) => {
        core::arch::global_asm!(
            ".pushsection .rodata.guest, \"a\"",
            concat!(".globl ", stringify!($start), ", ", stringify!($end)),
            concat!(stringify!($start), ":"),
            $mode,
            $(".byte 5f - 4f", "4:", $asm, "5:",)*
            concat!(stringify!($end), ":"),
            ".code64",
            ".popsection",
            options(att_syntax)
        );
        pub(crate) const $table: &[(&str, $crate::tests::mmio::Meta)] =
            &[$(($asm, cases!(@meta $($meta)?))),*];
    };
    (@meta) => { $crate::tests::mmio::M };
    (@meta $m:expr) => { $m };
}
pub(crate) use cases;

/// The snippets of a [`cases!`] payload, in order.
pub(crate) fn snippets(p: &Payload) -> Vec<&'static [u8]> {
    let mut v = Vec::new();
    let mut b = p.bytes;
    while let Some((&n, rest)) = b.split_first() {
        let (code, rest) = rest.split_at(usize::from(n).min(rest.len()));
        v.push(code);
        b = rest;
    }
    v
}

/// One run's end state.
#[derive(Debug)]
struct State {
    /// The last exit, if it is not a HLT.
    other: Option<String>,
    /// The run ended in a triple fault before any MMIO exit.
    early_triple_fault: bool,
    /// RAX-R15, with pointer registers as offsets into their area.
    gprs: [u64; 16],
    rip: u64,
    rflags: u64,
    /// The window and its neighbours (3 pages), RAMBUF, the stack.
    win: Vec<u8>,
    ram: Vec<u8>,
    stack: Vec<u8>,
    log: Vec<Access>,
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n.div_ceil(8)).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    v.truncate(n);
    v
}

/// The base of `area` in the MMIO run (`mmio`) or the RAM run.
fn area_base(area: Area, mmio: bool) -> u64 {
    match (area, mmio) {
        (Area::Win, true) => WINDOW,
        (Area::Win, false) => SHADOW,
        (Area::Ram, _) => RAMBUF,
    }
}

/// The VM of one side (RAM or MMIO) of one mode's cases. Creating and
/// destroying a VM per run costs more than everything else together on
/// Bochs, so each side keeps one and every case starts it afresh: code,
/// all general registers, RFLAGS, control registers, descriptors, page
/// tables, IDT, and every byte a case can see. A run that ended in an
/// error may have left an exit pending; its VM is dropped.
pub(crate) struct Side {
    mmio: bool,
    vm: Option<(TestVm, Option<Mapping>)>,
    serial: u32,
}

impl Side {
    pub(crate) fn new(mmio: bool) -> Self {
        Self { mmio, vm: None, serial: 0 }
    }

    /// The VM, made if there is none: RAM at 0, and for the MMIO side a
    /// segment for the window's neighbours (returned).
    fn vm(&mut self) -> Result<&(TestVm, Option<Mapping>), String> {
        if self.vm.is_none() {
            let name = format!("mmio-diff-{}-{}", u8::from(self.mmio), self.serial);
            self.serial += 1;
            let t = TestVm::bare(&name, CreateFlags::DESTROY_ON_CLOSE, DIFF_RAM)?;
            let around = if self.mmio {
                let seg = s(t.vm.alloc_segment(SegKind::SysMem, 2 * PAGE))?;
                let rw = Prot::READ | Prot::WRITE;
                s(t.vm.map(WINDOW - PAGE, &seg, 0, PAGE, rw))?;
                s(t.vm.map(WINDOW + PAGE, &seg, PAGE, PAGE, rw))?;
                Some(s(t.vm.mmap_segment(&seg))?)
            } else {
                None
            };
            self.vm = Some((t, around));
        }
        self.vm.as_ref().ok_or_else(|| "no VM".into())
    }

    /// Runs `code` in `mode` from the state `seed` makes, with the window
    /// at [`WINDOW`] (the MMIO side) or in RAM at [`SHADOW`].
    fn run(&mut self, mode: Mode, code: &[u8], m: &Meta, seed: u64) -> Result<State, String> {
        let mut r = self.run_in(mode, code, m, seed);
        if matches!(&r, Ok(s) if s.early_triple_fault) && on_qemu_svm() {
            // QEMU 10.0.2's TCG now and then walks a guest's page tables
            // without nested paging on the first instruction after a VMRUN
            // (Documentation/testing.rst): the same state runs cleanly on a
            // second try. A real triple fault comes back.
            println!(
                "# {mode:?}: triple fault before any access on QEMU AMD-V: run again on a new VM"
            );
            self.vm = None;
            r = self.run_in(mode, code, m, seed);
        }
        if r.is_err() {
            self.vm = None;
        }
        r
    }

    fn run_in(&mut self, mode: Mode, code: &[u8], m: &Meta, seed: u64) -> Result<State, String> {
        let mmio = self.mmio;
        let (t, around) = self.vm()?;
        let p = PAGE as usize;
        // The code, then HLTs over whatever an earlier case left.
        let mut text = vec![0xf4; CODE_ROOM];
        text[..code.len()].copy_from_slice(code);
        t.write(LOAD, &text)?;
        t.setup(mode, LOAD)?;
        t.write(HANDLERS, &[0xf4; 256])?;
        t.install_idt(mode, |v| HANDLERS + u64::from(v))?;
        let mut rng = Rng(seed | 1);
        let ram = random_bytes(&mut rng, p);
        let mut win = random_bytes(&mut rng, 3 * p);
        let page = &mut win[p..2 * p];
        match m.fill {
            Fill::Random => {}
            Fill::Equal { at, n } => {
                page[at..at + n].copy_from_slice(&ram[at..at + n]);
                page[at + n] = !ram[at + n];
            }
            Fill::Find { at, byte } => {
                page.iter_mut().filter(|b| **b == byte).for_each(|b| *b ^= 1);
                page[at] = byte;
            }
            Fill::Run { at, n } => {
                let b = page[at];
                page[at..at + n].fill(b);
                page[at + n] = !b;
            }
        }
        t.write(RAMBUF, &ram)?;
        let stack_len = (STACK_BELOW + STACK_ABOVE) as usize;
        t.write(STACK - STACK_BELOW, &random_bytes(&mut rng, stack_len))?;
        let mut dev = Device::new(WINDOW, win[p..2 * p].to_vec());
        match around {
            Some(sm) => {
                sm.write(0, &win[..p]);
                sm.write(p, &win[2 * p..]);
            }
            None => t.write(SHADOW - PAGE, &win)?,
        }
        let wide = if mode == Mode::Long64 { u64::MAX } else { 0xffff_ffff };
        let mut values: Vec<u64> = (0..16).map(|_| rng.next_u64() & wide).collect();
        for (v, fixed) in values.iter_mut().zip(m.regs) {
            *v = fixed.unwrap_or(*v);
        }
        for &(r, area, off) in m.ptrs {
            values[r as usize] = area_base(area, mmio).wrapping_add_signed(off);
        }
        // RSP stays at the setup's stack unless the case points it.
        let rsp_set = m.ptrs.iter().any(|p| p.0 == reg::RSP);
        let mut regs: Vec<(u32, u64)> =
            (reg::RAX..=reg::R15).zip(values).filter(|&(r, _)| r != reg::RSP || rsp_set).collect();
        regs.push((reg::RFLAGS, 0x2 | (rng.next_u64() & ARITH)));
        s(t.vcpu.set_regs(&regs))?;
        if m.need == Need::Sse || m.need == Need::Avx {
            let cr4 = s(t.vcpu.get_reg(reg::CR4))?;
            let more = if m.need == Need::Avx { CR4_SSE | CR4_OSXSAVE } else { CR4_SSE };
            t.vcpu
                .set_regs(&[(reg::CR4, cr4 | more)])
                .map_err(|e| format!("VMM_VCPU_SET_REGS CR4 {:#x}: {e}", cr4 | more))?;
        }
        let e = run_device(t, &mut dev, RUN)?;
        let other = (e.reason != exit::HLT).then(|| match Exit::decode(&e) {
            Exit::InstEmul(ie) => format!(
                "INST_EMUL (flags {:#x}, gpa {:#x}, bytes {:02x?}) at rip {:#x} after {} MMIO \
                 exits",
                ie.flags,
                ie.gpa,
                &ie.bytes[..(ie.len as usize).min(16)],
                e.rip,
                dev.log.len()
            ),
            _ => describe(&e),
        });
        let ids: Vec<u32> = (reg::RAX..=reg::R15).chain([reg::RIP, reg::RFLAGS]).collect();
        let v = s(t.vcpu.get_regs(&ids))?;
        let mut gprs = [0u64; 16];
        for (i, g) in gprs.iter_mut().enumerate() {
            *g = v[i];
            if let Some(&(_, area, _)) = m.ptrs.iter().find(|p| p.0 == i as u32) {
                *g = g.wrapping_sub(area_base(area, mmio));
            }
            *g &= wide;
        }
        let win = match around {
            Some(sm) => {
                let mut w = vec![0u8; 3 * p];
                sm.read(0, &mut w[..p]);
                w[p..2 * p].copy_from_slice(&dev.bytes);
                sm.read(p, &mut w[2 * p..]);
                w
            }
            None => t.read(SHADOW - PAGE, 3 * p)?,
        };
        let early_triple_fault = dev.log.is_empty()
            && matches!(Exit::decode(&e), Exit::Suspended(x) if x.how == VMM_SUSPEND_TRIPLE_FAULT);
        Ok(State {
            other,
            early_triple_fault,
            gprs,
            rip: v[16],
            rflags: v[17],
            win,
            ram: t.read(RAMBUF, p)?,
            stack: t.read(STACK - STACK_BELOW, stack_len)?,
            log: dev.log,
        })
    }
}

const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// Where two byte strings differ (the first few offsets, with both bytes).
fn byte_diffs(what: &str, base: i64, a: &[u8], b: &[u8]) -> Option<String> {
    let d: Vec<String> = (0..a.len())
        .filter(|&i| a[i] != b[i])
        .take(6)
        .map(|i| format!("{:+#x}: {:02x}/{:02x}", base + i as i64, a[i], b[i]))
        .collect();
    (!d.is_empty()).then(|| format!("{what} bytes (RAM/MMIO) {}", d.join(", ")))
}

/// What differs between the RAM run `r` and the MMIO run `o`, and what the
/// MMIO run did wrong on its own.
fn differences(m: &Meta, r: &State, o: &State) -> Vec<String> {
    let mut d = Vec::new();
    if r.other.is_some() || o.other.is_some() {
        let end = |o: &Option<String>| o.clone().unwrap_or_else(|| "HLT".into());
        d.push(format!("ended with {} / {} (RAM/MMIO)", end(&r.other), end(&o.other)));
    }
    if r.rip != o.rip {
        d.push(format!("rip {:#x}/{:#x}", r.rip, o.rip));
    }
    for ((name, a), b) in GPR_NAMES.iter().zip(r.gprs).zip(o.gprs) {
        if a != b {
            d.push(format!("{name} {a:#x}/{b:#x}"));
        }
    }
    let mask = !(m.undef | RF);
    if (r.rflags ^ o.rflags) & mask != 0 {
        d.push(format!("rflags {:#x}/{:#x} (undefined {:#x})", r.rflags, o.rflags, m.undef));
    }
    d.extend(byte_diffs("window", -(PAGE as i64), &r.win, &o.win));
    d.extend(byte_diffs("RAMBUF", 0, &r.ram, &o.ram));
    d.extend(byte_diffs("stack", -(STACK_BELOW as i64), &r.stack, &o.stack));
    if !r.log.is_empty() {
        d.push(format!("the RAM run took MMIO exits: {:x?}", r.log));
    }
    if o.log.len() < m.min_exits {
        d.push(format!(
            "{} MMIO exits, want at least {} (a guest access the device never saw)",
            o.log.len(),
            m.min_exits
        ));
    }
    if m.pieces != 0 {
        let ok = o.log.len() == m.pieces
            && o.log.iter().all(|a| a.size == 8)
            && o.log.windows(2).all(|w| w[1].gpa == w[0].gpa + 8);
        if !ok {
            d.push(format!("want {} 8-byte pieces in address order", m.pieces));
        }
    }
    d
}

fn regs_line(s: &State) -> String {
    let g: Vec<String> = (0..16).map(|i| format!("{}={:x}", GPR_NAMES[i], s.gprs[i])).collect();
    format!("rip={:x} rflags={:x} {}", s.rip, s.rflags, g.join(" "))
}

/// Whether this CPU can run cases that need `n`.
fn host_can(n: Need) -> bool {
    let l1 = host_cpuid(1);
    match n {
        Need::Nothing | Need::Sse => true,
        Need::Movbe => l1[2] & (1 << 22) != 0,
        // AVX, XSAVE and OSXSAVE (the host kernel enabled XSAVE).
        Need::Avx => l1[2] & (7 << 26) == 7 << 26,
    }
}

/// Runs every case of `table` (whose code is in `p`) on RAM and on MMIO
/// and compares; prints a `#` block per failing case. Returns the
/// failures and the number of MMIO exits the MMIO runs took.
pub(crate) fn differential(
    mode: Mode,
    p: &Payload,
    table: &[(&str, Meta)],
) -> Result<(Vec<String>, usize), String> {
    let codes = snippets(p);
    ensure!(codes.len() == table.len(), "{} snippets for {} cases", codes.len(), table.len());
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut exits = 0;
    let (mut on_ram, mut on_mmio) = (Side::new(false), Side::new(true));
    for (i, ((name, m), code)) in table.iter().zip(&codes).enumerate() {
        if !host_can(m.need) {
            skipped.push(name.split_whitespace().collect::<Vec<_>>().join(" "));
            continue;
        }
        let seed = 0x3177_0000_0000_0000 ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let hex: Vec<String> = code.iter().map(|b| format!("{b:02x}")).collect();
        let text = name.split_whitespace().collect::<Vec<_>>().join(" ");
        let what = format!("{mode:?} `{text}` [{}]", hex.join(" "));
        let r = on_ram.run(mode, code, m, seed).map_err(|e| format!("{what} on RAM: {e}"));
        let o = on_mmio.run(mode, code, m, seed).map_err(|e| format!("{what} on MMIO: {e}"));
        let (r, o) = match (r, o) {
            (Ok(r), Ok(o)) => (r, o),
            (Err(e), _) | (_, Err(e)) => {
                println!("# {e}");
                failures.push(what);
                continue;
            }
        };
        exits += o.log.len();
        if m.need == Need::Avx && r.rip > HANDLERS && r.rip <= HANDLERS + 0x100 {
            // XSETBV or the first VEX instruction faulted on RAM: the
            // guest has no AVX.
            println!("# {what}: vector {} on RAM: not compared", r.rip - HANDLERS - 1);
            skipped.push(text);
            continue;
        }
        let d = differences(m, &r, &o);
        if !d.is_empty() {
            println!("# {what}: {}", d.join("; "));
            println!("#   RAM:  {}", regs_line(&r));
            println!("#   MMIO: {}", regs_line(&o));
            println!("#   MMIO accesses: {:x?}", &o.log[..o.log.len().min(8)]);
            failures.push(what);
        }
    }
    if !skipped.is_empty() {
        println!("# {mode:?}: not run, the CPU lacks what they need: {skipped:?}");
    }
    Ok((failures, exits))
}

fn verdict(failures: &[String], n: usize) -> TestResult {
    ensure!(
        failures.is_empty(),
        "{} of {n} cases differ between RAM and MMIO:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(Pass)
}

/// Every instruction of the tables in `mmio_cases` ends the same on RAM as
/// on MMIO, in 64-bit and 32-bit protected mode.
pub fn mmio_matches_ram() -> TestResult {
    use super::mmio_cases::{CASES32, CASES64};
    let p64 = payload!(vmm_guest_mmio64_start, vmm_guest_mmio64_end);
    let p32 = payload!(vmm_guest_mmio32_start, vmm_guest_mmio32_end);
    let (mut failures, e64) = differential(Mode::Long64, &p64, CASES64)?;
    let (f32, e32) = differential(Mode::Protected32, &p32, CASES32)?;
    failures.extend(f32);
    println!(
        "# {} 64-bit and {} 32-bit cases, {} MMIO exits",
        CASES64.len(),
        CASES32.len(),
        e64 + e32
    );
    verdict(&failures, CASES64.len() + CASES32.len())
}

/// String instructions on MMIO (REP MOVS/STOS/LODS/CMPS/SCAS, both
/// directions, MMIO to MMIO, across the window's edge) end as on RAM, with
/// at least one MMIO exit per element that touches the window.
pub fn mmio_strings() -> TestResult {
    use super::mmio_cases::{STRINGS32, STRINGS64};
    let p64 = payload!(vmm_guest_mmio_str64_start, vmm_guest_mmio_str64_end);
    let p32 = payload!(vmm_guest_mmio_str32_start, vmm_guest_mmio_str32_end);
    let (mut failures, e64) = differential(Mode::Long64, &p64, STRINGS64)?;
    let (f32, e32) = differential(Mode::Protected32, &p32, STRINGS32)?;
    failures.extend(f32);
    println!("# {} string cases, {} MMIO exits", STRINGS64.len() + STRINGS32.len(), e64 + e32);
    verdict(&failures, STRINGS64.len() + STRINGS32.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmio(gpa: u64, size: u32, write: bool, data: u64) -> VmmExitMmio {
        let flags = if write { VMM_MMIO_WRITE } else { 0 };
        VmmExitMmio { gpa, size, flags, data, ..VmmExitMmio::ZERO }
    }

    #[test]
    fn the_device_is_little_endian_memory() {
        let mut d = Device::new(WINDOW, (0..16).collect());
        let e = d.access(&mmio(WINDOW + 2, 4, false, 0), 0x8000).unwrap();
        assert_eq!((e.cmd, e.value), (VMM_ENTRY_COMPLETE, 0x0504_0302));
        let e = d.access(&mmio(WINDOW + 8, 8, true, 0x1122_3344_5566_7788), 0x8003).unwrap();
        assert_eq!(e, RUN);
        assert_eq!(&d.bytes[8..], &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(d.log.len(), 2);
        assert!(d.log[1].write && d.log[1].value == 0x1122_3344_5566_7788);
    }

    #[test]
    fn the_device_refuses_what_the_abi_does_not_allow() {
        let mut d = Device::new(WINDOW, vec![0; 16]);
        for bad in [
            mmio(WINDOW, 3, false, 0),
            mmio(WINDOW, 16, false, 0),
            mmio(WINDOW + 12, 8, false, 0),
            mmio(WINDOW - 1, 1, false, 0),
            mmio(WINDOW, 2, true, 0x1_0000),
            mmio(WINDOW, 2, false, 1),
            VmmExitMmio { flags: 2, ..mmio(WINDOW, 1, false, 0) },
            VmmExitMmio { reserved: [0, 0, 1, 0, 0], ..mmio(WINDOW, 1, false, 0) },
        ] {
            assert!(d.access(&bad, 0).is_err(), "{bad:x?}");
        }
        assert!(d.log.is_empty() && d.bytes == [0; 16]);
    }

    #[test]
    fn random_bytes_are_as_long_as_asked() {
        let mut rng = Rng(1);
        for n in [0, 1, 7, 8, 9, 4096] {
            assert_eq!(random_bytes(&mut rng, n).len(), n);
        }
    }
}
