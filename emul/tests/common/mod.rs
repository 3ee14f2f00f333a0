// SPDX-License-Identifier: GPL-2.0

//! Test doubles shared by the emulator's tests and its fuzz target: a
//! [`TestCpu`] with plain fields and a [`FlatMem`] whose linear addresses
//! are indices into a byte map, with optional "MMIO" ranges that stop.
//!
//! Every includer declares it `pub mod`, so that what one test binary
//! does not use is not dead code there; `doc(hidden)` says that it is a
//! test helper, not an API to document.

#![doc(hidden)]

use std::collections::BTreeMap;
use vmm_emul::{seg::Segment, Cpu, Error, Exception, Memory, Seg};

/// A vCPU made of fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCpu {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub cpl: u8,
    pub segs: [Segment; 6],
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub xcr0: u64,
    pub vec: [[u8; 32]; 16],
    /// Control-register writes, in order.
    pub cr_writes: Vec<(u8, u64)>,
}

fn seg_index(s: Seg) -> usize {
    match s {
        Seg::Es => 0,
        Seg::Cs => 1,
        Seg::Ss => 2,
        Seg::Ds => 3,
        Seg::Fs => 4,
        Seg::Gs => 5,
    }
}

/// CR0.PE | CR0.PG | CR0.WP and friends for a 64-bit guest.
pub const CR0_LONG: u64 = 0x8005_0033;
/// CR4.PAE | OSFXSR | OSXMMEXCPT | OSXSAVE.
pub const CR4_LONG: u64 = 0x4_0620;
/// EFER.LME | LMA | NXE | SCE.
pub const EFER_LONG: u64 = 0xd01;

impl TestCpu {
    /// A 64-bit-mode vCPU at CPL 0 with flat segments, paging on, SSE and
    /// AVX enabled, RFLAGS = 0x2.
    pub fn long() -> Self {
        let data = Segment::flat(false, false);
        let mut segs = [data; 6];
        segs[1] = Segment::flat(true, true);
        Self {
            gpr: [0; 16],
            rip: 0x1000,
            rflags: 2,
            cpl: 0,
            segs,
            cr0: CR0_LONG,
            cr2: 0,
            cr3: 0,
            cr4: CR4_LONG,
            cr8: 0,
            efer: EFER_LONG,
            xcr0: 7,
            vec: [[0; 32]; 16],
            cr_writes: Vec::new(),
        }
    }

    /// A 32-bit protected-mode vCPU (flat 4 GiB segments, no paging).
    pub fn prot32() -> Self {
        let mut c = Self::long();
        let data = Segment::flat(false, false);
        c.segs = [data; 6];
        c.segs[1] = Segment::flat(true, false);
        c.cr0 = 0x11 | (1 << 16);
        c.cr4 = 0x4_0600;
        c.efer = 0;
        c
    }

    /// A 16-bit protected-mode vCPU (64 KiB segments, D/B clear).
    pub fn prot16() -> Self {
        let mut c = Self::prot32();
        for s in c.segs.iter_mut() {
            s.limit = 0xffff;
            s.attr &= !vmm_emul::seg::ATTR_DB;
        }
        c
    }

    /// A real-mode vCPU with all segments at selector 0.
    pub fn real() -> Self {
        let mut c = Self::prot32();
        c.segs = [Segment::real(0); 6];
        c.cr0 = 0x10;
        c
    }

    pub fn seg_mut(&mut self, s: Seg) -> &mut Segment {
        &mut self.segs[seg_index(s)]
    }
}

impl Cpu for TestCpu {
    fn gpr(&self, num: u8) -> u64 {
        self.gpr[usize::from(num & 15)]
    }
    fn set_gpr(&mut self, num: u8, val: u64) {
        self.gpr[usize::from(num & 15)] = val;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, val: u64) {
        self.rip = val;
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
    fn set_rflags(&mut self, val: u64) {
        self.rflags = val;
    }
    fn cpl(&self) -> u8 {
        self.cpl
    }
    fn segment(&self, seg: Seg) -> Segment {
        self.segs[seg_index(seg)]
    }
    fn cr(&self, n: u8) -> u64 {
        match n {
            0 => self.cr0,
            2 => self.cr2,
            3 => self.cr3,
            4 => self.cr4,
            8 => self.cr8,
            _ => 0,
        }
    }
    fn efer(&self) -> u64 {
        self.efer
    }
    fn xcr0(&self) -> u64 {
        self.xcr0
    }
    fn set_cr(&mut self, n: u8, val: u64) -> Result<(), Exception> {
        self.cr_writes.push((n, val));
        match n {
            0 => self.cr0 = val,
            2 => self.cr2 = val,
            3 => self.cr3 = val,
            4 => self.cr4 = val,
            8 => self.cr8 = val,
            _ => return Err(Exception::Ud),
        }
        Ok(())
    }
    fn vec(&self, num: u8) -> [u8; 32] {
        self.vec[usize::from(num & 15)]
    }
    fn set_vec(&mut self, num: u8, val: [u8; 32]) {
        self.vec[usize::from(num & 15)] = val;
    }
}

/// One access the emulator made, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Read { la: u64, len: usize, rmw: bool },
    Write { la: u64, data: Vec<u8> },
    Cmpxchg { la: u64, old: Vec<u8>, new: Vec<u8> },
    In { port: u16, len: usize },
    Out { port: u16, data: Vec<u8> },
}

/// Why [`FlatMem`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A read of the MMIO range at this address.
    MmioRead(u64),
    /// A port read (when `ports_stop` is set).
    PortIn(u16),
}

/// Linear memory as a sparse byte map (unwritten bytes read as
/// `fill`). Reads from `mmio` ranges stop unless a value is queued in
/// `mmio_answers`; writes there are recorded and accepted.
#[derive(Clone, Debug, Default)]
pub struct FlatMem {
    pub bytes: BTreeMap<u64, u8>,
    pub fill: u8,
    pub mmio: Vec<(u64, u64)>,
    pub mmio_answers: Vec<u8>,
    pub log: Vec<Access>,
    /// Values port reads return, consumed in order (then 0xff).
    pub port_data: Vec<u8>,
    pub ports_stop: bool,
    /// Make the next cmpxchg fail this many times.
    pub cmpxchg_failures: u32,
}

impl FlatMem {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn poke(&mut self, la: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.bytes.insert(la.wrapping_add(i as u64), *b);
        }
    }

    pub fn peek(&self, la: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| *self.bytes.get(&la.wrapping_add(i as u64)).unwrap_or(&self.fill))
            .collect()
    }

    pub fn poke_u64(&mut self, la: u64, v: u64, size: usize) {
        self.poke(la, &v.to_le_bytes()[..size]);
    }

    pub fn peek_u64(&self, la: u64, size: usize) -> u64 {
        let b = self.peek(la, size);
        b.iter().rev().fold(0, |v, x| (v << 8) | u64::from(*x))
    }

    fn is_mmio(&self, la: u64, len: usize) -> bool {
        let end = la.wrapping_add(len as u64);
        self.mmio.iter().any(|&(s, e)| la < e && end > s)
    }
}

impl Memory for FlatMem {
    type Stop = Stop;

    fn read(&mut self, la: u64, buf: &mut [u8], rmw: bool) -> Result<(), Error<Stop>> {
        if self.is_mmio(la, buf.len()) {
            if self.mmio_answers.len() < buf.len() {
                return Err(Error::Stop(Stop::MmioRead(la)));
            }
            let rest = self.mmio_answers.split_off(buf.len());
            buf.copy_from_slice(&self.mmio_answers);
            self.mmio_answers = rest;
        } else {
            buf.copy_from_slice(&self.peek(la, buf.len()));
        }
        self.log.push(Access::Read { la, len: buf.len(), rmw });
        Ok(())
    }

    fn write(&mut self, la: u64, data: &[u8]) -> Result<(), Error<Stop>> {
        self.log.push(Access::Write { la, data: data.to_vec() });
        if !self.is_mmio(la, data.len()) {
            self.poke(la, data);
        }
        Ok(())
    }

    fn cmpxchg(&mut self, la: u64, old: &[u8], new: &[u8]) -> Result<bool, Error<Stop>> {
        self.log.push(Access::Cmpxchg { la, old: old.to_vec(), new: new.to_vec() });
        if self.cmpxchg_failures > 0 {
            self.cmpxchg_failures -= 1;
            return Ok(false);
        }
        if self.peek(la, old.len()) != old {
            return Ok(false);
        }
        self.poke(la, new);
        Ok(true)
    }

    fn port_in(&mut self, port: u16, buf: &mut [u8]) -> Result<(), Error<Stop>> {
        if self.ports_stop {
            return Err(Error::Stop(Stop::PortIn(port)));
        }
        self.log.push(Access::In { port, len: buf.len() });
        for b in buf.iter_mut() {
            *b = if self.port_data.is_empty() { 0xff } else { self.port_data.remove(0) };
        }
        Ok(())
    }

    fn port_out(&mut self, port: u16, data: &[u8]) -> Result<(), Error<Stop>> {
        self.log.push(Access::Out { port, data: data.to_vec() });
        Ok(())
    }
}
