// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: decode up to 16 random bytes in a random [`CpuMode`] and,
//! when they decode, emulate the instruction against a random vCPU state
//! (a [`TestCpu`] whose registers, segments and control registers need
//! not agree with the mode) and random memory: either the linear
//! [`FlatMem`] of the unit tests, or [`Paged`] over a small guest-physical
//! RAM with page tables built for whatever paging mode CR0/CR4/EFER
//! select. Any panic is a finding; beyond that it checks:
//!
//! - decode: an error carries exactly the input's first 15 (or fewer)
//!   bytes; an instruction is 1-15 bytes, no longer than the input, its
//!   bytes decode again to the same [`Insn`], and every shorter prefix of
//!   them is [`DecodeErrorKind::Truncated`];
//! - memory calls: the sizes the [`Memory`] contract allows, no call after
//!   one that failed (a failure is the last access, and its error is what
//!   `emulate` returns), reads before writes, locked read-modify-writes
//!   through `cmpxchg` only, at most two calls per REP iteration and
//!   [`Config::rep_budget`] iterations per call (so `emulate` returns in
//!   bounded time); the [`Bus`] sees no access that crosses a page and
//!   page-table reads that are naturally aligned;
//! - results: any `Err` of a non-string instruction leaves the vCPU as it
//!   was and wrote no memory; `Ok(Step::Done)` moves RIP by the length,
//!   wrapped to the mode's IP width; `Ok(Step::Partial)` comes only from
//!   REP string instructions and leaves RIP alone; segments, CPL, EFER and
//!   XCR0 never change, and control registers only through a CR write.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::fmt::Debug;
use vmm_emul::{
    decode, emulate,
    insn::{Op, Rep, MAX_LEN},
    seg::{Segment, ATTR_DB, ATTR_UNUSABLE},
    Bus, Config, CpuMode, DecodeErrorKind, Error, Insn, Memory, Paged, Step,
};
use vmm_x86::paging::{self, GuestPhys, PagingRegs};

#[path = "../../tests/common/mod.rs"]
pub mod common;
use common::{FlatMem, TestCpu};

// ----- the input -----

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Real,
    Protected16,
    Protected32,
    Compat16,
    Compat32,
    Long64,
}

impl Mode {
    fn cpu_mode(self) -> CpuMode {
        match self {
            Self::Real => CpuMode::Real,
            Self::Protected16 => CpuMode::Protected16,
            Self::Protected32 => CpuMode::Protected32,
            Self::Compat16 => CpuMode::Compat16,
            Self::Compat32 => CpuMode::Compat32,
            Self::Long64 => CpuMode::Long64,
        }
    }
}

/// A 64-bit value, biased towards the small addresses that the memory
/// pokes, MMIO ranges and page-table mappings use, and towards the edges.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Val {
    Zero,
    Small(u8),
    /// Page `.0 % 32`, offset `.1 % 4096`.
    Page(u8, u16),
    /// Just below a page boundary of page `.0 % 32`.
    PageEnd(u8, u8),
    /// `-x`.
    Neg(u16),
    /// Just below 4 GiB, 64 KiB, or the top of the lower canonical half.
    Edge(u8, u8),
    Low32(u32),
    Raw(u64),
}

impl Val {
    fn get(self) -> u64 {
        match self {
            Self::Zero => 0,
            Self::Small(v) => u64::from(v),
            Self::Page(p, o) => (u64::from(p % 32) << 12) | u64::from(o & 0xfff),
            Self::PageEnd(p, d) => {
                ((u64::from(p % 32) + 1) << 12).wrapping_sub(u64::from(d % 32) + 1)
            }
            Self::Neg(v) => u64::from(v).wrapping_neg(),
            Self::Edge(which, d) => {
                let top: u64 = match which % 4 {
                    0 => 1 << 32,
                    1 => 1 << 16,
                    2 => 1 << 47,
                    _ => 1 << 56,
                };
                top.wrapping_sub(u64::from(d % 64) + 1)
            }
            Self::Low32(v) => u64::from(v),
            Self::Raw(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Limit {
    Max,
    K64,
    Small(u16),
    Raw(u32),
}

/// A segment register: the mode's usual one, or something else.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum SegIn {
    Mode,
    Real(u16),
    Flat {
        code: bool,
        long: bool,
    },
    Unusable,
    /// Any attributes of the VMCS layout's shape (type, S, DPL, P, AVL,
    /// L, D/B, G, unusable).
    Raw {
        selector: u16,
        base: Val,
        limit: Limit,
        attr: u32,
    },
}

/// A control register (or EFER): the mode's usual value, that with one bit
/// flipped, or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ctl {
    Mode,
    Flip(u8),
    Raw(u64),
}

impl Ctl {
    fn get(self, usual: u64) -> u64 {
        match self {
            Self::Mode => usual,
            Self::Flip(b) => usual ^ (1 << (b % 64)),
            Self::Raw(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Flags {
    /// The status flags and DF, as given; the rest clear.
    Status(u16),
    /// Any of the defined RFLAGS bits.
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
struct CpuIn {
    gpr: [Val; 16],
    rip: Val,
    rflags: Flags,
    cpl: u8,
    segs: [SegIn; 6],
    cr0: Ctl,
    cr2: u64,
    cr3: Ctl,
    cr4: Ctl,
    cr8: u8,
    efer: Ctl,
    xcr0: Option<u8>,
    vec_seed: u64,
}

#[derive(Arbitrary, Debug)]
struct CfgIn {
    rep_budget: u8,
    phys_bits: u8,
    cr4_allowed: Option<u64>,
}

#[derive(Arbitrary, Debug)]
struct MemIn {
    fill: u8,
    /// Bytes to place at addresses (linear for `FlatMem`, guest-physical,
    /// modulo the RAM size, for `Paged`).
    pokes: Vec<(Val, Vec<u8>)>,
    /// MMIO ranges: start and length (linear or guest-physical).
    mmio: Vec<(Val, u16)>,
    mmio_answers: Vec<u8>,
    port_data: Vec<u8>,
    ports_stop: bool,
    cmpxchg_failures: u8,
}

/// One mapping for the page-table builder.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct MapIn {
    la: Val,
    /// The frame, in units of the page size; RAM is only the first few.
    frame: u8,
    /// Leaf flag bits 8:0 (P is set unless bits 15:12 are all ones).
    flags: u16,
    /// Clear R/W (bit 0) or U/S (bit 1) in the tables above the leaf.
    upper: u8,
    /// 0: a 4 KiB page; 1: a PDE leaf (2 or 4 MiB); 2: a PDPTE leaf.
    large: u8,
    xd: bool,
    key: u8,
}

#[derive(Arbitrary, Debug)]
struct PagingIn {
    ram_pages: u8,
    maps: Vec<MapIn>,
    /// Bytes changed after the tables are built (offsets modulo RAM).
    corrupt: Vec<(u16, u8)>,
    phys_bits: u8,
    pkru: u32,
    pkrs: u32,
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: Mode,
    code: [u8; MAX_LEN + 1],
    /// How many of `code` to decode (modulo 17: 16 checks that only 15
    /// are looked at).
    code_len: u8,
    cpu: CpuIn,
    cfg: CfgIn,
    mem: MemIn,
    paging: Option<PagingIn>,
}

// ----- building the state -----

fn base_cpu(mode: Mode) -> TestCpu {
    match mode {
        Mode::Real => TestCpu::real(),
        Mode::Protected16 => TestCpu::prot16(),
        Mode::Protected32 => TestCpu::prot32(),
        Mode::Compat32 | Mode::Compat16 => {
            let mut c = TestCpu::long();
            let mut cs = Segment::flat(true, false);
            if mode == Mode::Compat16 {
                cs.attr &= !ATTR_DB;
                cs.limit = 0xffff;
            }
            c.segs[1] = cs;
            c
        }
        Mode::Long64 => TestCpu::long(),
    }
}

fn make_cpu(mode: Mode, c: &CpuIn) -> TestCpu {
    let mut cpu = base_cpu(mode);
    for (r, v) in cpu.gpr.iter_mut().zip(c.gpr) {
        *r = v.get();
    }
    cpu.rip = c.rip.get();
    cpu.rflags = match c.rflags {
        Flags::Status(s) => 2 | (u64::from(s) & 0xcd5),
        Flags::Raw(r) => 2 | (u64::from(r) & 0x3f_7fd5),
    };
    cpu.cpl = c.cpl % 4;
    for (s, i) in cpu.segs.iter_mut().zip(c.segs) {
        *s = match i {
            SegIn::Mode => *s,
            SegIn::Real(sel) => Segment::real(sel),
            SegIn::Flat { code, long } => Segment::flat(code, long),
            SegIn::Unusable => Segment { attr: s.attr | ATTR_UNUSABLE, ..*s },
            SegIn::Raw { selector, base, limit, attr } => Segment {
                selector,
                base: base.get(),
                limit: match limit {
                    Limit::Max => u32::MAX,
                    Limit::K64 => 0xffff,
                    Limit::Small(l) => u32::from(l),
                    Limit::Raw(l) => l,
                },
                attr: attr & 0x1_f0ff,
            },
        };
    }
    cpu.cr0 = c.cr0.get(cpu.cr0);
    cpu.cr2 = c.cr2;
    cpu.cr3 = c.cr3.get(0);
    cpu.cr4 = c.cr4.get(cpu.cr4);
    cpu.cr8 = u64::from(c.cr8 & 0xf);
    cpu.efer = c.efer.get(cpu.efer);
    cpu.xcr0 = c.xcr0.map_or(cpu.xcr0, u64::from);
    for (i, v) in cpu.vec.iter_mut().enumerate() {
        for (j, b) in v.iter_mut().enumerate() {
            *b = (c.vec_seed.wrapping_mul((i * 32 + j) as u64 * 2 + 1) >> 56) as u8;
        }
    }
    cpu
}

fn make_cfg(c: &CfgIn) -> Config {
    Config {
        // Small: at least one iteration runs anyway.
        rep_budget: u32::from(c.rep_budget % 8),
        phys_bits: c.phys_bits,
        cr4_allowed: c.cr4_allowed.unwrap_or(Config::default().cr4_allowed),
    }
}

fn mmio_ranges(m: &MemIn) -> Vec<(u64, u64)> {
    m.mmio.iter().take(4).map(|&(s, l)| (s.get(), s.get().wrapping_add(u64::from(l) + 1))).collect()
}

fn make_flat(m: &MemIn) -> FlatMem {
    let mut mem = FlatMem::new();
    mem.fill = m.fill;
    for (la, data) in m.pokes.iter().take(8) {
        mem.poke(la.get(), data.get(..32).unwrap_or(data));
    }
    mem.mmio = mmio_ranges(m);
    mem.mmio_answers = m.mmio_answers.iter().copied().take(64).collect();
    mem.port_data = m.port_data.iter().copied().take(16).collect();
    mem.ports_stop = m.ports_stop;
    mem.cmpxchg_failures = u32::from(m.cmpxchg_failures % 3);
    mem
}

// ----- guest-physical memory and page tables -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BusStop {
    Mmio(u64),
    Port(u16),
}

/// Guest RAM (a `Vec`), MMIO ranges that stop reads unless an answer is
/// queued, and nothing else: page-table reads outside RAM are `None`
/// (so the walk ends in `Unbacked`), data reads there stop like MMIO.
struct Ram {
    ram: Vec<u8>,
    mmio: Vec<(u64, u64)>,
    answers: Vec<u8>,
    port_data: Vec<u8>,
    ports_stop: bool,
}

impl Ram {
    /// The RAM bytes of `len` at `gpa`, unless any of them is MMIO or
    /// outside RAM.
    fn range(&self, gpa: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let end = gpa.checked_add(len as u64)?;
        if self.mmio.iter().any(|&(s, e)| gpa < e && end > s) {
            return None;
        }
        let start = usize::try_from(gpa).ok()?;
        let end = usize::try_from(end).ok()?;
        (end <= self.ram.len()).then_some(start..end)
    }

    /// A table entry: naturally aligned, in RAM (MMIO does not count).
    fn entry(&self, gpa: u64, len: usize) -> Option<std::ops::Range<usize>> {
        assert_eq!(gpa % len as u64, 0, "page-table entry at {gpa:#x} is not aligned");
        let start = usize::try_from(gpa).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.ram.len()).then_some(start..end)
    }

    fn piece(gpa: u64, len: usize) {
        assert!((1..=32).contains(&len), "bus access of {len} bytes");
        let last = gpa.wrapping_add(len as u64 - 1);
        assert_eq!(gpa >> 12, last >> 12, "bus access of {len} bytes at {gpa:#x} crosses a page");
    }

    fn answer(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), BusStop> {
        if self.answers.len() < buf.len() {
            return Err(BusStop::Mmio(gpa));
        }
        let rest = self.answers.split_off(buf.len());
        buf.copy_from_slice(&self.answers);
        self.answers = rest;
        Ok(())
    }
}

impl GuestPhys for Ram {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        let r = self.entry(gpa, 8)?;
        Some(u64::from_le_bytes(self.ram[r].try_into().ok()?))
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        let r = self.entry(gpa, 4)?;
        Some(u32::from_le_bytes(self.ram[r].try_into().ok()?))
    }
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        let r = self.entry(gpa, 8)?;
        if self.ram[r.clone()] != old.to_le_bytes() {
            return Some(false);
        }
        self.ram[r].copy_from_slice(&new.to_le_bytes());
        Some(true)
    }
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool> {
        let r = self.entry(gpa, 4)?;
        if self.ram[r.clone()] != old.to_le_bytes() {
            return Some(false);
        }
        self.ram[r].copy_from_slice(&new.to_le_bytes());
        Some(true)
    }
}

impl Bus for Ram {
    type Stop = BusStop;

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), BusStop> {
        Self::piece(gpa, buf.len());
        match self.range(gpa, buf.len()) {
            Some(r) => {
                buf.copy_from_slice(&self.ram[r]);
                Ok(())
            }
            None => self.answer(gpa, buf),
        }
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), BusStop> {
        Self::piece(gpa, data.len());
        if let Some(r) = self.range(gpa, data.len()) {
            self.ram[r].copy_from_slice(data);
        }
        Ok(())
    }

    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, BusStop> {
        Self::piece(gpa, old.len());
        assert_eq!(old.len(), new.len(), "cmpxchg of unequal sizes");
        let mut cur = [0u8; 32];
        let cur = &mut cur[..old.len()];
        self.read(gpa, cur)?;
        if cur != old {
            return Ok(false);
        }
        self.write(gpa, new)?;
        Ok(true)
    }

    fn port_in(&mut self, port: u16, buf: &mut [u8]) -> Result<(), BusStop> {
        if self.ports_stop {
            return Err(BusStop::Port(port));
        }
        for b in buf.iter_mut() {
            *b = if self.port_data.is_empty() { 0xff } else { self.port_data.remove(0) };
        }
        Ok(())
    }

    fn port_out(&mut self, _port: u16, _data: &[u8]) -> Result<(), BusStop> {
        Ok(())
    }
}

const P: u64 = paging::PTE_P;
const RW: u64 = paging::PTE_RW;
const US: u64 = paging::PTE_US;
const A: u64 = paging::PTE_A;
const PS: u64 = paging::PTE_PS;

/// Page tables in `ram` for `mode`, root at 0, tables allocated from page
/// 1 on while there is room: each mapping adds the entries it needs.
fn build_tables(ram: &mut [u8], mode: paging::Mode, maps: &[MapIn]) {
    // (LA shift, index mask) per level, the root first.
    let (levels, wide): (&[(u32, u64)], bool) = match mode {
        paging::Mode::Off => return,
        paging::Mode::Bits32 => (&[(22, 0x3ff), (12, 0x3ff)], false),
        paging::Mode::Pae => (&[(30, 3), (21, 0x1ff), (12, 0x1ff)], true),
        paging::Mode::Level4 => (&[(39, 0x1ff), (30, 0x1ff), (21, 0x1ff), (12, 0x1ff)], true),
        paging::Mode::Level5 => {
            (&[(48, 0x1ff), (39, 0x1ff), (30, 0x1ff), (21, 0x1ff), (12, 0x1ff)], true)
        }
    };
    let pages = ram.len() >> 12;
    let esize = if wide { 8 } else { 4 };
    let addr_mask: u64 = if wide { 0x000f_ffff_ffff_f000 } else { 0xffff_f000 };
    let get = |ram: &[u8], gpa: usize| -> u64 {
        let mut b = [0u8; 8];
        b[..esize].copy_from_slice(&ram[gpa..gpa + esize]);
        u64::from_le_bytes(b)
    };
    let set = |ram: &mut [u8], gpa: usize, v: u64| {
        ram[gpa..gpa + esize].copy_from_slice(&v.to_le_bytes()[..esize])
    };
    ram[..0x1000].fill(0);
    let mut next = 1;
    for m in maps.iter().take(8) {
        let la = m.la.get();
        let mut table = 0usize;
        let last = levels.len() - 1;
        for (i, &(shift, mask)) in levels.iter().enumerate() {
            let gpa = table + ((la >> shift) & mask) as usize * esize;
            let pdpt = mode == paging::Mode::Pae && i == 0;
            let leaf = i == last || (!pdpt && usize::from(m.large % 3) == last - i);
            if leaf {
                let frame = (u64::from(m.frame) << shift) & addr_mask;
                let mut v = frame | (u64::from(m.flags) & 0x1ff);
                v = if i == last { v } else { v | PS };
                if m.flags >> 12 != 0xf {
                    v |= P;
                }
                if wide {
                    v |= u64::from(m.key & 0xf) << 59;
                    if m.xd {
                        v |= paging::PTE_XD;
                    }
                }
                set(ram, gpa, v);
                break;
            }
            let e = get(ram, gpa);
            let t = (e & addr_mask) as usize;
            if e & P != 0 && e & PS == 0 && t != 0 && t < next << 12 {
                table = t;
                continue;
            }
            if next >= pages {
                break;
            }
            let t = next << 12;
            next += 1;
            ram[t..t + 0x1000].fill(0);
            let v = if pdpt {
                t as u64 | P
            } else {
                let rw = if m.upper & 1 != 0 { 0 } else { RW };
                let us = if m.upper & 2 != 0 { 0 } else { US };
                t as u64 | P | A | rw | us
            };
            set(ram, gpa, v);
            table = t;
        }
    }
}

fn make_ram(m: &MemIn, p: &PagingIn, cpu: &TestCpu) -> Ram {
    let pages = 8 + usize::from(p.ram_pages % 25);
    let mut ram = vec![0u8; pages << 12];
    let len = ram.len();
    for (gpa, data) in m.pokes.iter().take(8) {
        for (i, b) in data.iter().take(32).enumerate() {
            ram[(gpa.get() as usize).wrapping_add(i) % len] = *b;
        }
    }
    let regs = PagingRegs {
        cr0: cpu.cr0,
        cr3: cpu.cr3,
        cr4: cpu.cr4,
        efer: cpu.efer,
        phys_bits: p.phys_bits,
    };
    build_tables(&mut ram, paging::Mode::of(&regs), &p.maps);
    for &(off, b) in p.corrupt.iter().take(4) {
        ram[usize::from(off) % len] = b;
    }
    Ram {
        ram,
        mmio: mmio_ranges(m),
        answers: m.mmio_answers.iter().copied().take(64).collect(),
        port_data: m.port_data.iter().copied().take(16).collect(),
        ports_stop: m.ports_stop,
    }
}

// ----- watching the memory calls -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Rmw,
    Write,
    Cmpxchg,
    In,
    Out,
}

/// One memory call (the fields show in the failure messages).
#[derive(Clone, Copy, Debug)]
#[expect(dead_code, reason = "the fields are read only through Debug, in failure messages")]
struct Call {
    kind: Kind,
    la: u64,
    len: usize,
    ok: bool,
    /// Memory was written (a write, or a cmpxchg that succeeded).
    wrote: bool,
}

/// A [`Memory`] that checks and records every call to the one inside.
struct Probe<M: Memory> {
    inner: M,
    calls: Vec<Call>,
    failed: Option<Error<M::Stop>>,
}

impl<M: Memory> Probe<M>
where
    M::Stop: Clone + Debug,
{
    fn new(inner: M) -> Self {
        Self { inner, calls: Vec::new(), failed: None }
    }

    fn before(&self, kind: Kind, len: usize) {
        assert!(
            self.failed.is_none(),
            "{kind:?} after a failed access ({:?}): {:?}",
            self.failed,
            self.calls
        );
        let ok = match kind {
            Kind::Read | Kind::Rmw | Kind::Write => (1..=32).contains(&len),
            Kind::Cmpxchg => (1..=8).contains(&len),
            Kind::In | Kind::Out => matches!(len, 1 | 2 | 4),
        };
        assert!(ok, "{kind:?} of {len} bytes");
    }

    fn after<T>(
        &mut self,
        kind: Kind,
        la: u64,
        len: usize,
        r: &Result<T, Error<M::Stop>>,
        wrote: bool,
    ) {
        if let Err(e) = r {
            self.failed = Some(e.clone());
        }
        self.calls.push(Call { kind, la, len, ok: r.is_ok(), wrote });
    }
}

impl<M: Memory> Memory for Probe<M>
where
    M::Stop: Clone + Debug,
{
    type Stop = M::Stop;

    fn read(&mut self, la: u64, buf: &mut [u8], write: bool) -> Result<(), Error<M::Stop>> {
        let kind = if write { Kind::Rmw } else { Kind::Read };
        self.before(kind, buf.len());
        let r = self.inner.read(la, buf, write);
        self.after(kind, la, buf.len(), &r, false);
        r
    }

    fn write(&mut self, la: u64, data: &[u8]) -> Result<(), Error<M::Stop>> {
        self.before(Kind::Write, data.len());
        let r = self.inner.write(la, data);
        self.after(Kind::Write, la, data.len(), &r, r.is_ok());
        r
    }

    fn cmpxchg(&mut self, la: u64, old: &[u8], new: &[u8]) -> Result<bool, Error<M::Stop>> {
        self.before(Kind::Cmpxchg, old.len());
        assert_eq!(old.len(), new.len(), "cmpxchg of unequal sizes");
        let r = self.inner.cmpxchg(la, old, new);
        self.after(Kind::Cmpxchg, la, old.len(), &r, matches!(r, Ok(true)));
        r
    }

    fn port_in(&mut self, port: u16, buf: &mut [u8]) -> Result<(), Error<M::Stop>> {
        self.before(Kind::In, buf.len());
        let r = self.inner.port_in(port, buf);
        self.after(Kind::In, u64::from(port), buf.len(), &r, false);
        r
    }

    fn port_out(&mut self, port: u16, data: &[u8]) -> Result<(), Error<M::Stop>> {
        self.before(Kind::Out, data.len());
        let r = self.inner.port_out(port, data);
        self.after(Kind::Out, u64::from(port), data.len(), &r, false);
        r
    }
}

// ----- the checks -----

/// Decodes `bytes` in `mode` and checks the result.
fn check_decode(bytes: &[u8], mode: CpuMode) -> Option<Insn> {
    let n = bytes.len().min(MAX_LEN);
    match decode(bytes, mode) {
        Err(e) => {
            assert_eq!(usize::from(e.len), n, "error length: {e:?}");
            assert_eq!(e.bytes(), &bytes[..n], "error bytes: {e:?}");
            match e.kind {
                // 15 bytes are always enough to decide.
                DecodeErrorKind::Truncated => assert!(bytes.len() < MAX_LEN, "{e:?}"),
                // Only a 16th byte makes an instruction too long.
                DecodeErrorKind::TooLong => assert!(bytes.len() >= MAX_LEN, "{e:?}"),
                DecodeErrorKind::Invalid | DecodeErrorKind::Unsupported => {}
            }
            None
        }
        Ok(insn) => {
            let len = usize::from(insn.len);
            assert!((1..=n).contains(&len), "length {len} of {n} bytes: {insn:?}");
            assert_eq!(insn.bytes(), &bytes[..len]);
            assert_eq!(insn.mode, mode);
            assert!(matches!(insn.addr_size, 2 | 4 | 8), "{insn:?}");
            assert!(matches!(insn.op_size, 0 | 1 | 2 | 4 | 8 | 16 | 32), "{insn:?}");
            assert_eq!(
                decode(insn.bytes(), mode),
                Ok(insn),
                "the instruction's own bytes decode differently"
            );
            for k in 0..len {
                let r = decode(&bytes[..k], mode).map_err(|e| e.kind);
                assert_eq!(r, Err(DecodeErrorKind::Truncated), "a {k}-byte prefix of {insn:?}");
            }
            Some(insn)
        }
    }
}

/// The IP width of the mode the instruction was decoded for.
fn ip_mask(mode: CpuMode) -> u64 {
    match mode {
        CpuMode::Long64 => u64::MAX,
        CpuMode::Protected32 | CpuMode::Compat32 => 0xffff_ffff,
        CpuMode::Real | CpuMode::Protected16 | CpuMode::Compat16 => 0xffff,
    }
}

fn mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1 << (8 * u32::from(size))) - 1
    }
}

fn writes_cr(insn: &Insn) -> bool {
    matches!(insn.op, Op::MovToCr | Op::Clts | Op::Lmsw)
}

/// Checks one `emulate` call: `before` and `after` are the vCPU, `calls`
/// the memory calls it made.
fn check_emulate<S: Debug + PartialEq>(
    insn: &Insn,
    cfg: &Config,
    before: &TestCpu,
    after: &TestCpu,
    r: &Result<Step, Error<S>>,
    calls: &[Call],
    failed: Option<&Error<S>>,
) {
    let string = insn.is_string();
    let rep = string && insn.rep != Rep::None;
    // Bounded work: two accesses per iteration (movs, cmps, ins, outs),
    // at most rep_budget iterations (at least one); a non-string
    // instruction has at most one memory operand (or a memory operand and
    // the stack), read and then written.
    let most = if rep { 2 * cfg.rep_budget.max(1) as usize } else { 2 };
    assert!(calls.len() <= most, "{} memory calls (at most {most}): {calls:?}", calls.len());

    // A failed access is the last, and its error is the result.
    if let Some(e) = failed {
        assert!(
            !calls.last().is_some_and(|c| c.ok),
            "the failed access is not the last: {calls:?}"
        );
        assert_eq!(r.as_ref().err(), Some(e), "emulate did not return the memory's error");
    }
    if let Err(Error::Stop(_)) = r {
        assert!(failed.is_some(), "a Stop that no memory call returned");
    }
    if !string {
        // All reads before the first write.
        let first_write = calls.iter().position(|c| matches!(c.kind, Kind::Write | Kind::Cmpxchg));
        if let Some(w) = first_write {
            let late = calls[w..].iter().any(|c| matches!(c.kind, Kind::Read | Kind::Rmw));
            assert!(!late, "a read after a write: {calls:?}");
        }
        // A locked read-modify-write (xchg with memory is always locked)
        // writes with a compare-and-exchange, never a plain write.
        let locked = insn.lock || (insn.op == Op::Xchg && insn.mem().is_some());
        if locked {
            assert!(
                !calls.iter().any(|c| c.kind == Kind::Write),
                "a locked {insn:?} wrote plainly: {calls:?}"
            );
        }
    }

    // What never changes (CR writes go through set_cr, checked below).
    let mut same = after.clone();
    same.gpr = before.gpr;
    same.rip = before.rip;
    same.rflags = before.rflags;
    same.vec = before.vec;
    if writes_cr(insn) {
        same.cr0 = before.cr0;
        same.cr2 = before.cr2;
        same.cr3 = before.cr3;
        same.cr4 = before.cr4;
        same.cr8 = before.cr8;
        same.cr_writes.clone_from(&before.cr_writes);
    }
    assert_eq!(&same, before, "state other than GPRs, RIP, RFLAGS, vectors and CRs changed");

    match r {
        Err(e) if !string => {
            // Reads come first, writes are the last access and happen only
            // when nothing else can fail, registers change at the end.
            assert_eq!(after, before, "{e:?} changed the vCPU");
            assert!(!calls.iter().any(|c| c.wrote), "{e:?} after a memory write: {calls:?}");
        }
        Err(e) => {
            // A string instruction keeps the iterations that completed,
            // but never moves RIP.
            assert_eq!(after.rip, before.rip, "{e:?} moved RIP");
            assert!(after.cr_writes.is_empty());
        }
        Ok(Step::Done) => {
            // CR writes advance RIP too: TestCpu::set_cr changes no mode,
            // and the emulator completes the instruction in the mode it
            // was decoded for.
            let want = before.rip.wrapping_add(u64::from(insn.len)) & ip_mask(insn.mode);
            assert_eq!(after.rip, want, "RIP after {insn:?}");
            let crs = if writes_cr(insn) { 1 } else { 0 };
            assert_eq!(after.cr_writes.len(), crs, "CR writes of {insn:?}");
        }
        Ok(Step::Partial) => {
            assert!(rep, "Step::Partial from {insn:?}");
            assert_eq!(after.rip, before.rip, "Step::Partial moved RIP");
            assert_ne!(after.gpr[1] & mask(insn.addr_size), 0, "Step::Partial with rCX = 0");
            assert!(
                calls.len() >= cfg.rep_budget.max(1) as usize,
                "Step::Partial before the budget: {calls:?}"
            );
        }
    }
}

fn run_flat(insn: &Insn, cfg: &Config, cpu: &TestCpu, mem: FlatMem, retry: bool) {
    let mut c = cpu.clone();
    let bytes_before = mem.bytes.clone();
    let mut m = Probe::new(mem);
    let r = emulate(insn, &mut c, &mut m, cfg);
    check_emulate(insn, cfg, cpu, &c, &r, &m.calls, m.failed.as_ref());
    if r.is_err() && !insn.is_string() {
        assert_eq!(m.inner.bytes, bytes_before, "{r:?} changed memory");
    }
    // The restart rule: after a Stop, the same instruction runs again with
    // the answer at hand (from the state it left, which for a non-string
    // instruction is the state before).
    if retry {
        if let Err(Error::Stop(_)) = r {
            let mut mem = m.inner;
            mem.mmio_answers = (0..64).collect();
            mem.ports_stop = false;
            run_flat(insn, cfg, &c, mem, false);
        }
    }
}

fn run_paged(insn: &Insn, cfg: &Config, cpu: &TestCpu, m: &MemIn, p: &PagingIn) {
    let mut ram = make_ram(m, p, cpu);
    let mut c = cpu.clone();
    let paged = Paged::new(&mut ram, cpu, p.phys_bits, p.pkru, p.pkrs);
    let mut probe = Probe::new(paged);
    let r = emulate(insn, &mut c, &mut probe, cfg);
    check_emulate(insn, cfg, cpu, &c, &r, &probe.calls, probe.failed.as_ref());
}

fuzz_target!(|input: Input| {
    let mode = input.mode.cpu_mode();
    let n = usize::from(input.code_len % (MAX_LEN as u8 + 2));
    let Some(insn) = check_decode(&input.code[..n], mode) else { return };
    let cpu = make_cpu(input.mode, &input.cpu);
    let cfg = make_cfg(&input.cfg);
    match &input.paging {
        None => run_flat(&insn, &cfg, &cpu, make_flat(&input.mem), true),
        Some(p) => run_paged(&insn, &cfg, &cpu, &input.mem, p),
    }
});
