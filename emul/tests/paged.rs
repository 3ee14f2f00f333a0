// SPDX-License-Identifier: GPL-2.0
//! [`Paged`] end to end: instructions decoded and emulated against a
//! guest-physical RAM with the guest's own page tables in it (4-level,
//! 32-bit and PAE paging, and no paging), plus an MMIO range. Page
//! crossings, #PF error codes and CR2, SMAP/PKRU and A/D bits.

pub mod common;
use common::TestCpu;
use vmm_emul::{decode, emulate, Bus, Config, CpuMode, Error, Exception, Paged, Step};
use vmm_x86::paging::{GuestPhys, PF_P, PF_PK, PF_U, PF_W, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US};
use vmm_x86::regs::rflags;

const RAM_SIZE: u64 = 8 << 20;
/// Page tables are allocated from here up.
const TABLES: u64 = 0x1000;
const PRW: u64 = PTE_P | PTE_RW;
const PRWU: u64 = PTE_P | PTE_RW | PTE_US;
const ADDR: u64 = 0x000f_ffff_ffff_f000;
const RAX: usize = 0;
const RCX: usize = 1;
const RBX: usize = 3;
/// CR0.WP, CR0.PG, CR4.PAE, CR4.SMAP, CR4.PKE, CR4.PKS, EFER.LMA.
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_SMAP: u64 = 1 << 21;
const CR4_PKE: u64 = 1 << 22;
const CR4_PKS: u64 = 1 << 24;
const EFER_LMA: u64 = 1 << 10;

/// One data access the bus saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Read(u64, usize),
    Write(u64, Vec<u8>),
    Cmpxchg(u64, Vec<u8>, Vec<u8>),
}

/// Why [`Ram`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// A read of the MMIO range that userspace must answer.
    MmioRead(u64),
    /// Neither RAM nor MMIO.
    Unbacked(u64),
}

/// Guest-physical memory: RAM at [0, RAM_SIZE) and an optional MMIO range
/// whose writes are recorded and whose reads stop unless answers are
/// queued (or `mmio_stops` is clear: then they read 0).
struct Ram {
    bytes: Vec<u8>,
    mmio: Option<(u64, u64)>,
    mmio_stops: bool,
    mmio_answers: Vec<u8>,
    /// Every data access (RAM and MMIO).
    log: Vec<Op>,
    /// Every page-table update of the walker: (gpa, width).
    pt_updates: Vec<(u64, usize)>,
    /// After this many data reads, write these bytes (another vCPU).
    interfere: Option<(usize, u64, Vec<u8>)>,
    reads: usize,
    next_table: u64,
}

impl Ram {
    fn new() -> Self {
        Self {
            bytes: vec![0; RAM_SIZE as usize],
            mmio: None,
            mmio_stops: true,
            mmio_answers: Vec::new(),
            log: Vec::new(),
            pt_updates: Vec::new(),
            interfere: None,
            reads: 0,
            next_table: TABLES,
        }
    }

    fn is_mmio(&self, gpa: u64, len: usize) -> bool {
        self.mmio.is_some_and(|(s, e)| gpa < e && gpa + len as u64 > s)
    }

    fn ram(&self, gpa: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let end = gpa.checked_add(len as u64)?;
        (end <= RAM_SIZE && !self.is_mmio(gpa, len)).then_some(gpa as usize..end as usize)
    }

    fn poke(&mut self, gpa: u64, data: &[u8]) {
        let r = self.ram(gpa, data.len()).expect("poke outside RAM");
        self.bytes[r].copy_from_slice(data);
    }

    fn peek(&self, gpa: u64, len: usize) -> Vec<u8> {
        self.bytes[self.ram(gpa, len).expect("peek outside RAM")].to_vec()
    }

    fn get(&self, gpa: u64, width: usize) -> u64 {
        self.peek(gpa, width).iter().rev().fold(0, |v, b| (v << 8) | u64::from(*b))
    }

    fn put(&mut self, gpa: u64, width: usize, v: u64) {
        self.poke(gpa, &v.to_le_bytes()[..width]);
    }

    fn alloc(&mut self) -> u64 {
        let t = self.next_table;
        self.next_table += 0x1000;
        assert!(self.next_table <= 0x10_0000, "out of table space");
        t
    }

    /// The entries that translate `la` in `kind` paging from `cr3`, top
    /// first, as (gpa, width); with `create`, missing tables are made
    /// (PRWU; a PAE PDPTE gets P only).
    fn slots(&mut self, kind: Kind, cr3: u64, la: u64, create: bool) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        let (mut table, shifts, width): (u64, &[u32], usize) = match kind {
            Kind::Four => (cr3, &[39, 30, 21, 12], 8),
            Kind::Bits32 => (cr3, &[22, 12], 4),
            Kind::Pae => {
                let pdpte = cr3 + ((la >> 30) & 3) * 8;
                let mut e = self.get(pdpte, 8);
                if e & PTE_P == 0 && create {
                    e = self.alloc() | PTE_P;
                    self.put(pdpte, 8, e);
                }
                out.push((pdpte, 8));
                (e & ADDR, &[21, 12], 8)
            }
        };
        let index_mask = if width == 8 { 0x1ff } else { 0x3ff };
        for (n, shift) in shifts.iter().enumerate() {
            let slot = table + ((la >> shift) & index_mask) * width as u64;
            out.push((slot, width));
            if n + 1 < shifts.len() {
                let mut e = self.get(slot, width);
                if e & PTE_P == 0 && create {
                    e = self.alloc() | PRWU;
                    self.put(slot, width, e);
                }
                table = e & ADDR;
            }
        }
        out
    }

    /// Maps the 4 KiB page at `la` to `pa` with leaf `flags`.
    fn map(&mut self, kind: Kind, cr3: u64, la: u64, pa: u64, flags: u64) {
        let (gpa, width) = *self.slots(kind, cr3, la, true).last().unwrap();
        self.put(gpa, width, pa | flags);
    }

    /// The leaf entry for `la`.
    fn leaf(&mut self, kind: Kind, cr3: u64, la: u64) -> u64 {
        let (gpa, width) = *self.slots(kind, cr3, la, false).last().unwrap();
        self.get(gpa, width)
    }

    fn set_leaf(&mut self, kind: Kind, cr3: u64, la: u64, v: u64) {
        let (gpa, width) = *self.slots(kind, cr3, la, false).last().unwrap();
        self.put(gpa, width, v);
    }
}

impl GuestPhys for Ram {
    fn read_u64(&mut self, gpa: u64) -> Option<u64> {
        self.ram(gpa, 8).map(|_| self.get(gpa, 8))
    }
    fn read_u32(&mut self, gpa: u64) -> Option<u32> {
        self.ram(gpa, 4).map(|_| self.get(gpa, 4) as u32)
    }
    fn cmpxchg_u64(&mut self, gpa: u64, old: u64, new: u64) -> Option<bool> {
        self.ram(gpa, 8)?;
        self.pt_updates.push((gpa, 8));
        let ok = self.get(gpa, 8) == old;
        if ok {
            self.put(gpa, 8, new);
        }
        Some(ok)
    }
    fn cmpxchg_u32(&mut self, gpa: u64, old: u32, new: u32) -> Option<bool> {
        self.ram(gpa, 4)?;
        self.pt_updates.push((gpa, 4));
        let ok = self.get(gpa, 4) == u64::from(old);
        if ok {
            self.put(gpa, 4, new.into());
        }
        Some(ok)
    }
}

fn same_page(gpa: u64, len: usize) {
    assert_eq!(gpa >> 12, (gpa + len as u64 - 1) >> 12, "access at {gpa:#x}+{len} crosses a page");
}

impl Bus for Ram {
    type Stop = Stop;

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), Stop> {
        same_page(gpa, buf.len());
        if self.is_mmio(gpa, buf.len()) {
            if self.mmio_stops && self.mmio_answers.len() < buf.len() {
                return Err(Stop::MmioRead(gpa));
            }
            for b in buf.iter_mut() {
                *b = if self.mmio_answers.is_empty() { 0 } else { self.mmio_answers.remove(0) };
            }
        } else {
            let r = self.ram(gpa, buf.len()).ok_or(Stop::Unbacked(gpa))?;
            buf.copy_from_slice(&self.bytes[r]);
        }
        self.log.push(Op::Read(gpa, buf.len()));
        self.reads += 1;
        if let Some((after, at, data)) = self.interfere.clone() {
            if self.reads == after {
                self.poke(at, &data);
                self.interfere = None;
            }
        }
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Stop> {
        same_page(gpa, data.len());
        if !self.is_mmio(gpa, data.len()) {
            let r = self.ram(gpa, data.len()).ok_or(Stop::Unbacked(gpa))?;
            self.bytes[r].copy_from_slice(data);
        }
        self.log.push(Op::Write(gpa, data.to_vec()));
        Ok(())
    }

    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, Stop> {
        same_page(gpa, old.len());
        self.log.push(Op::Cmpxchg(gpa, old.to_vec(), new.to_vec()));
        let r = self.ram(gpa, old.len()).ok_or(Stop::Unbacked(gpa))?;
        if self.bytes[r.clone()] != *old {
            return Ok(false);
        }
        self.bytes[r].copy_from_slice(new);
        Ok(true)
    }

    fn port_in(&mut self, _port: u16, buf: &mut [u8]) -> Result<(), Stop> {
        buf.fill(0xff);
        Ok(())
    }

    fn port_out(&mut self, _port: u16, _data: &[u8]) -> Result<(), Stop> {
        Ok(())
    }
}

/// The paging modes the tests build tables for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Four,
    Bits32,
    Pae,
}

const KINDS: [Kind; 3] = [Kind::Four, Kind::Bits32, Kind::Pae];

/// A CPL-0 vCPU with `kind` paging, CR0.WP set and an empty root table.
fn cpu_with(ram: &mut Ram, kind: Kind) -> TestCpu {
    let mut cpu = match kind {
        Kind::Four => TestCpu::long(),
        Kind::Bits32 | Kind::Pae => {
            let mut c = TestCpu::prot32();
            c.cr0 |= CR0_PG;
            if kind == Kind::Pae {
                c.cr4 |= CR4_PAE;
            }
            c
        }
    };
    assert_ne!(cpu.cr0 & CR0_WP, 0);
    cpu.cr3 = ram.alloc();
    cpu
}

/// Decodes `bytes` in the vCPU's mode and emulates them through [`Paged`]
/// with MAXPHYADDR 46 and the given PKRU and IA32_PKRS.
fn exec_pk(
    ram: &mut Ram,
    cpu: &mut TestCpu,
    bytes: &[u8],
    pkru: u32,
    pkrs: u32,
) -> Result<Step, Error<Stop>> {
    let mode = if cpu.efer & EFER_LMA != 0 { CpuMode::Long64 } else { CpuMode::Protected32 };
    let insn = decode(bytes, mode).expect("decode");
    assert_eq!(usize::from(insn.len), bytes.len());
    let mut mem = Paged::new(ram, &*cpu, 46, pkru, pkrs);
    emulate(&insn, cpu, &mut mem, &Config::default())
}

fn exec(ram: &mut Ram, cpu: &mut TestCpu, bytes: &[u8]) -> Result<Step, Error<Stop>> {
    exec_pk(ram, cpu, bytes, 0, 0)
}

fn pf(addr: u64, code: u32) -> Result<Step, Error<Stop>> {
    Err(Error::Exception(Exception::Pf { addr, code }))
}

// mov dword ptr [rbx], eax
const MOV_STORE: &[u8] = &[0x89, 0x03];
// mov eax, dword ptr [rbx]
const MOV_LOAD: &[u8] = &[0x8b, 0x03];
// mov ecx, dword ptr [rbx]
const MOV_LOAD_ECX: &[u8] = &[0x8b, 0x0b];
// add dword ptr [rbx], eax
const ADD_STORE: &[u8] = &[0x01, 0x03];
// cmp dword ptr [rbx], eax
const CMP_MEM: &[u8] = &[0x39, 0x03];
// inc dword ptr [rbx]
const INC_MEM: &[u8] = &[0xff, 0x03];
// lock add dword ptr [rbx], eax
const LOCK_ADD: &[u8] = &[0xf0, 0x01, 0x03];
// lock cmpxchg dword ptr [rbx], ecx
const LOCK_CMPXCHG: &[u8] = &[0xf0, 0x0f, 0xb1, 0x0b];
// xchg dword ptr [rbx], eax
const XCHG: &[u8] = &[0x87, 0x03];

/// Two adjacent linear pages and the two non-adjacent frames (in reverse
/// order) they map to.
const PAGE_A: u64 = 0x40_0000;
const PAGE_B: u64 = 0x40_1000;
const FRAME_A: u64 = 0x23_0000;
const FRAME_B: u64 = 0x11_0000;

/// A vCPU with PAGE_A -> FRAME_A and PAGE_B -> FRAME_B mapped with these
/// leaf flags (None: not mapped).
fn two_pages(ram: &mut Ram, kind: Kind, a: Option<u64>, b: Option<u64>) -> TestCpu {
    let cpu = cpu_with(ram, kind);
    if let Some(flags) = a {
        ram.map(kind, cpu.cr3, PAGE_A, FRAME_A, flags);
    }
    if let Some(flags) = b {
        ram.map(kind, cpu.cr3, PAGE_B, FRAME_B, flags);
    } else {
        // Make sure PAGE_B has a (not-present) PTE next to PAGE_A's.
        ram.map(kind, cpu.cr3, PAGE_B, 0, 0);
    }
    cpu
}

// ----- page crossings ---------------------------------------------------------

#[test]
fn crossing_accesses_land_in_two_frames() {
    for kind in KINDS {
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), Some(PRW));
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        cpu.gpr[RAX] = 0x4433_2211;
        let rip = cpu.rip;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(cpu.rip, rip + 2);
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0x11, 0x22], "{kind:?}");
        assert_eq!(ram.peek(FRAME_B, 2), [0x33, 0x44], "{kind:?}");
        // Not the frame that follows FRAME_A.
        assert_eq!(ram.peek(FRAME_A + 0x1000, 2), [0, 0], "{kind:?}");
        assert_eq!(
            ram.log,
            [Op::Write(FRAME_A + 0xffe, vec![0x11, 0x22]), Op::Write(FRAME_B, vec![0x33, 0x44])]
        );

        // A read split 1 + 3.
        ram.log.clear();
        ram.poke(FRAME_A + 0xfff, &[0xa1]);
        ram.poke(FRAME_B, &[0xb1, 0xb2, 0xb3]);
        cpu.gpr[RBX] = PAGE_A + 0xfff;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD_ECX), Ok(Step::Done), "{kind:?}");
        assert_eq!(cpu.gpr[RCX], 0xb3b2_b1a1, "{kind:?}");
        assert_eq!(ram.log, [Op::Read(FRAME_A + 0xfff, 1), Op::Read(FRAME_B, 3)]);
    }
}

#[test]
fn crossing_qword_in_long_mode() {
    let mut ram = Ram::new();
    let mut cpu = two_pages(&mut ram, Kind::Four, Some(PRW), Some(PRW));
    ram.poke(FRAME_A + 0xffd, &[1, 2, 3]);
    ram.poke(FRAME_B, &[4, 5, 6, 7, 8]);
    cpu.gpr[RBX] = PAGE_A + 0xffd;
    // mov rax, qword ptr [rbx]
    assert_eq!(exec(&mut ram, &mut cpu, &[0x48, 0x8b, 0x03]), Ok(Step::Done));
    assert_eq!(cpu.gpr[RAX], 0x0807_0605_0403_0201);
    assert_eq!(ram.log, [Op::Read(FRAME_A + 0xffd, 3), Op::Read(FRAME_B, 5)]);
    // mov qword ptr [rbx], rax (with the bytes reversed)
    cpu.gpr[RAX] = 0x0102_0304_0506_0708;
    assert_eq!(exec(&mut ram, &mut cpu, &[0x48, 0x89, 0x03]), Ok(Step::Done));
    assert_eq!(ram.peek(FRAME_A + 0xffd, 3), [8, 7, 6]);
    assert_eq!(ram.peek(FRAME_B, 5), [5, 4, 3, 2, 1]);
}

#[test]
fn crossing_write_into_a_bad_page_faults_before_writing() {
    for kind in KINDS {
        // (flags of the second page, CPL, CR0.WP, error code; None = fine)
        let cases = [
            (None, 0, true, Some(PF_W)),
            (Some(PTE_P), 0, true, Some(PF_P | PF_W)),
            (Some(PTE_P), 0, false, None),
            (None, 3, true, Some(PF_W | PF_U)),
            (Some(PTE_P | PTE_US), 3, true, Some(PF_P | PF_W | PF_U)),
            (Some(PTE_P | PTE_US), 3, false, Some(PF_P | PF_W | PF_U)),
            (Some(PRW), 3, true, Some(PF_P | PF_W | PF_U)),
        ];
        for (n, (b, cpl, wp, fault)) in cases.into_iter().enumerate() {
            let mut ram = Ram::new();
            let mut cpu = two_pages(&mut ram, kind, Some(PRWU), b);
            cpu.cpl = cpl;
            if !wp {
                cpu.cr0 &= !CR0_WP;
            }
            cpu.gpr[RBX] = PAGE_A + 0xffe;
            cpu.gpr[RAX] = 0x4433_2211;
            ram.poke(FRAME_A + 0xff8, &[0x5a; 8]);
            let before = cpu.clone();
            let got = exec(&mut ram, &mut cpu, MOV_STORE);
            match fault {
                Some(code) => {
                    assert_eq!(got, pf(PAGE_B, code), "{kind:?} case {n}");
                    assert_eq!(cpu, before, "{kind:?} case {n}: the vCPU changed");
                    assert_eq!(ram.log, [], "{kind:?} case {n}: something was written");
                    assert_eq!(ram.peek(FRAME_A + 0xff8, 8), [0x5a; 8], "{kind:?} case {n}");
                }
                None => {
                    assert_eq!(got, Ok(Step::Done), "{kind:?} case {n}");
                    assert_eq!(ram.peek(FRAME_B, 2), [0x33, 0x44], "{kind:?} case {n}");
                }
            }
        }
        // The first page missing: CR2 is the access's own address.
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, None, Some(PRW));
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), pf(PAGE_A + 0xffe, PF_W), "{kind:?}");
        // A read crossing into a missing page: W clear.
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), None);
        cpu.gpr[RBX] = PAGE_A + 0xffd;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), pf(PAGE_B, 0), "{kind:?}");
        assert_eq!(ram.log, []);
    }
}

#[test]
fn read_modify_write_of_a_read_only_page_faults_at_the_read() {
    for kind in KINDS {
        for (cpl, flags, code) in [(0, PTE_P, PF_P | PF_W), (3, PTE_P | PTE_US, PF_P | PF_W | PF_U)]
        {
            let mut ram = Ram::new();
            let mut cpu = two_pages(&mut ram, kind, Some(flags), Some(PRWU));
            cpu.cpl = cpl;
            cpu.gpr[RBX] = PAGE_A + 0x100;
            cpu.gpr[RAX] = 1;
            for insn in [ADD_STORE, INC_MEM, LOCK_ADD, XCHG] {
                let before = cpu.clone();
                let got = exec(&mut ram, &mut cpu, insn);
                assert_eq!(got, pf(PAGE_A + 0x100, code), "{kind:?} {insn:02x?}");
                // Faulted at the read: the bus saw nothing at all.
                assert_eq!(ram.log, [], "{kind:?} {insn:02x?}");
                assert_eq!(cpu, before);
            }
            // A compare only reads.
            assert_eq!(exec(&mut ram, &mut cpu, CMP_MEM), Ok(Step::Done), "{kind:?}");
            assert_eq!(ram.log, [Op::Read(FRAME_A + 0x100, 4)]);
        }
        // Crossing into the read-only page: CR2 at its first byte, still
        // before any byte is read.
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), Some(PTE_P));
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        assert_eq!(exec(&mut ram, &mut cpu, ADD_STORE), pf(PAGE_B, PF_P | PF_W), "{kind:?}");
        assert_eq!(ram.log, []);
        // Not present: W without P.
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), None);
        cpu.gpr[RBX] = PAGE_B + 8;
        assert_eq!(exec(&mut ram, &mut cpu, ADD_STORE), pf(PAGE_B + 8, PF_W), "{kind:?}");
    }
}

#[test]
fn locked_operations_crossing_a_page() {
    for kind in KINDS {
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), Some(PRW));
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        // lock add: 0x0001_ffff + 1 = 0x0002_0000.
        ram.poke(FRAME_A + 0xffe, &[0xff, 0xff]);
        ram.poke(FRAME_B, &[0x01, 0x00]);
        cpu.gpr[RAX] = 1;
        assert_eq!(exec(&mut ram, &mut cpu, LOCK_ADD), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0, 0]);
        assert_eq!(ram.peek(FRAME_B, 2), [0x02, 0]);
        assert_eq!(cpu.rflags & (rflags::ZF | rflags::CF), 0);
        // The read, then a read-compare-write of both halves: no bus
        // cmpxchg can span two frames.
        assert_eq!(
            ram.log,
            [
                Op::Read(FRAME_A + 0xffe, 2),
                Op::Read(FRAME_B, 2),
                Op::Read(FRAME_A + 0xffe, 2),
                Op::Read(FRAME_B, 2),
                Op::Write(FRAME_A + 0xffe, vec![0, 0]),
                Op::Write(FRAME_B, vec![0x02, 0]),
            ]
        );

        // lock cmpxchg, equal: the destination takes ECX.
        ram.log.clear();
        cpu.gpr[RAX] = 0x0002_0000;
        cpu.gpr[RCX] = 0xdead_beef;
        assert_eq!(exec(&mut ram, &mut cpu, LOCK_CMPXCHG), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0xef, 0xbe]);
        assert_eq!(ram.peek(FRAME_B, 2), [0xad, 0xde]);
        assert_ne!(cpu.rflags & rflags::ZF, 0);
        // Not equal: EAX takes the destination, which keeps its value.
        cpu.gpr[RAX] = 0x1234;
        assert_eq!(exec(&mut ram, &mut cpu, LOCK_CMPXCHG), Ok(Step::Done), "{kind:?}");
        assert_eq!(cpu.gpr[RAX], 0xdead_beef);
        assert_eq!(cpu.rflags & rflags::ZF, 0);
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0xef, 0xbe]);
        assert_eq!(ram.peek(FRAME_B, 2), [0xad, 0xde]);

        // xchg (locked by definition).
        cpu.gpr[RAX] = 0x4433_2211;
        assert_eq!(exec(&mut ram, &mut cpu, XCHG), Ok(Step::Done), "{kind:?}");
        assert_eq!(cpu.gpr[RAX], 0xdead_beef);
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0x11, 0x22]);
        assert_eq!(ram.peek(FRAME_B, 2), [0x33, 0x44]);

        // Another vCPU changes the second half between the instruction's
        // read and the locked write: nothing is written, the instruction
        // reports contention and changes no register.
        ram.log.clear();
        ram.reads = 0;
        ram.interfere = Some((2, FRAME_B, vec![0x99]));
        cpu.gpr[RAX] = 1;
        let before = cpu.clone();
        assert_eq!(exec(&mut ram, &mut cpu, LOCK_ADD), Err(Error::Contended), "{kind:?}");
        assert_eq!(cpu, before);
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0x11, 0x22]);
        assert_eq!(ram.peek(FRAME_B, 2), [0x99, 0x44]);
        assert!(ram.log.iter().all(|op| matches!(op, Op::Read(..))), "{:?}", ram.log);

        // Within one page, the bus's own cmpxchg does it.
        ram.log.clear();
        cpu.gpr[RBX] = PAGE_A + 0x10;
        ram.poke(FRAME_A + 0x10, &[5, 0, 0, 0]);
        assert_eq!(exec(&mut ram, &mut cpu, LOCK_ADD), Ok(Step::Done), "{kind:?}");
        assert_eq!(
            ram.log,
            [
                Op::Read(FRAME_A + 0x10, 4),
                Op::Cmpxchg(FRAME_A + 0x10, vec![5, 0, 0, 0], vec![6, 0, 0, 0])
            ]
        );
    }
}

// ----- RAM and MMIO -------------------------------------------------------------

const MMIO: u64 = 0xfee0_0000;

#[test]
fn one_half_ram_one_half_mmio() {
    for kind in KINDS {
        let mut ram = Ram::new();
        ram.mmio = Some((MMIO, MMIO + 0x1000));
        let mut cpu = cpu_with(&mut ram, kind);
        ram.map(kind, cpu.cr3, PAGE_A, FRAME_A, PRW);
        ram.map(kind, cpu.cr3, PAGE_B, MMIO, PRW);
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        cpu.gpr[RAX] = 0x4433_2211;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0x11, 0x22]);
        assert_eq!(
            ram.log,
            [Op::Write(FRAME_A + 0xffe, vec![0x11, 0x22]), Op::Write(MMIO, vec![0x33, 0x44])]
        );

        // A read that needs userspace for its MMIO half stops and changes
        // no register; with the answer at hand it completes.
        ram.log.clear();
        cpu.gpr[RAX] = 0;
        let before = cpu.clone();
        assert_eq!(
            exec(&mut ram, &mut cpu, MOV_LOAD),
            Err(Error::Stop(Stop::MmioRead(MMIO))),
            "{kind:?}"
        );
        assert_eq!(cpu, before);
        ram.mmio_answers = vec![0x55, 0x66];
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), Ok(Step::Done), "{kind:?}");
        assert_eq!(cpu.gpr[RAX], 0x6655_2211);

        // MMIO first, RAM second.
        let (page_c, page_d, frame_d) = (0x50_0000, 0x50_1000, 0x24_0000);
        ram.map(kind, cpu.cr3, page_c, MMIO, PRW);
        ram.map(kind, cpu.cr3, page_d, frame_d, PRW);
        ram.log.clear();
        cpu.gpr[RBX] = page_c + 0xfff;
        cpu.gpr[RAX] = 0x4433_2211;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.peek(frame_d, 3), [0x22, 0x33, 0x44]);
        assert_eq!(
            ram.log,
            [Op::Write(MMIO + 0xfff, vec![0x11]), Op::Write(frame_d, vec![0x22, 0x33, 0x44])]
        );

        // A locked operation across RAM and MMIO (MMIO reads as 0 here).
        ram.mmio_stops = false;
        ram.log.clear();
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        cpu.gpr[RAX] = 0x0101_0101;
        assert_eq!(exec(&mut ram, &mut cpu, LOCK_ADD), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0x12, 0x23]);
        assert_eq!(ram.log.last(), Some(&Op::Write(MMIO, vec![0x01, 0x01])));
    }
}

// ----- 32-bit linear addresses ------------------------------------------------------

#[test]
fn linear_addresses_wrap_at_4_gib_outside_long_mode() {
    for kind in [Kind::Bits32, Kind::Pae] {
        let mut ram = Ram::new();
        let mut cpu = cpu_with(&mut ram, kind);
        ram.map(kind, cpu.cr3, 0xffff_f000, FRAME_A, PRW);
        ram.map(kind, cpu.cr3, 0, FRAME_B, PRW);
        // DS.base + EBX = 0xffff_f000 + 0xffe = 0xffff_fffe.
        cpu.seg_mut(vmm_emul::Seg::Ds).base = 0xffff_f000;
        cpu.gpr[RBX] = 0xffe;
        cpu.gpr[RAX] = 0x4433_2211;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.peek(FRAME_A + 0xffe, 2), [0x11, 0x22]);
        assert_eq!(ram.peek(FRAME_B, 2), [0x33, 0x44]);
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD_ECX), Ok(Step::Done), "{kind:?}");
        assert_eq!(cpu.gpr[RCX], 0x4433_2211);
        // Page 0 missing: CR2 = 0, not 0x1_0000_0000.
        ram.set_leaf(kind, cpu.cr3, 0, 0);
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), pf(0, PF_W), "{kind:?}");
    }
    // No paging: the physical address wraps the same way.
    let mut ram = Ram::new();
    ram.mmio = Some((0xffff_f000, 0x1_0000_0000));
    let mut cpu = TestCpu::prot32();
    cpu.seg_mut(vmm_emul::Seg::Ds).base = 0xffff_f000;
    cpu.gpr[RBX] = 0xffe;
    cpu.gpr[RAX] = 0x4433_2211;
    assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done));
    assert_eq!(ram.log, [Op::Write(0xffff_fffe, vec![0x11, 0x22]), Op::Write(0, vec![0x33, 0x44])]);
}

// ----- SMAP, user mode and protection keys ---------------------------------------

#[test]
fn smap_follows_rflags_ac_at_cpl_0() {
    for kind in KINDS {
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRWU), Some(PRWU));
        cpu.cr4 |= CR4_SMAP;
        cpu.gpr[RBX] = PAGE_A + 0x20;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), pf(PAGE_A + 0x20, PF_P), "{kind:?}");
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), pf(PAGE_A + 0x20, PF_P | PF_W), "{kind:?}");
        assert_eq!(exec(&mut ram, &mut cpu, ADD_STORE), pf(PAGE_A + 0x20, PF_P | PF_W), "{kind:?}");
        assert_eq!(ram.log, []);
        // RFLAGS.AC (read by Paged::new) lets explicit accesses through.
        cpu.rflags |= rflags::AC;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), Ok(Step::Done), "{kind:?}");
        cpu.rflags &= !rflags::AC;
        // CPL 3 is not subject to SMAP.
        cpu.cpl = 3;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        // Without CR4.SMAP, CPL 0 reaches user pages.
        cpu.cpl = 0;
        cpu.cr4 &= !CR4_SMAP;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), Ok(Step::Done), "{kind:?}");
    }
}

#[test]
fn smap_on_the_second_page_of_a_crossing() {
    let mut ram = Ram::new();
    let mut cpu = two_pages(&mut ram, Kind::Four, Some(PRW), Some(PRWU));
    cpu.cr4 |= CR4_SMAP;
    cpu.gpr[RBX] = PAGE_A + 0xffc;
    // mov qword ptr [rbx], rax
    assert_eq!(exec(&mut ram, &mut cpu, &[0x48, 0x89, 0x03]), pf(PAGE_B, PF_P | PF_W));
    assert_eq!(ram.log, []);
    cpu.rflags |= rflags::AC;
    assert_eq!(exec(&mut ram, &mut cpu, &[0x48, 0x89, 0x03]), Ok(Step::Done));
}

#[test]
fn user_mode_access_to_a_supervisor_page() {
    for kind in KINDS {
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), Some(PRWU));
        cpu.cpl = 3;
        cpu.gpr[RBX] = PAGE_A + 0x40;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), pf(PAGE_A + 0x40, PF_P | PF_U), "{kind:?}");
        assert_eq!(
            exec(&mut ram, &mut cpu, MOV_STORE),
            pf(PAGE_A + 0x40, PF_P | PF_W | PF_U),
            "{kind:?}"
        );
        // The user page next to it is fine; a crossing faults on PAGE_A.
        cpu.gpr[RBX] = PAGE_B + 0x40;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), Ok(Step::Done), "{kind:?}");
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), pf(PAGE_A + 0xffe, PF_P | PF_U), "{kind:?}");
        // The same accesses at CPL 0 go through.
        cpu.cpl = 0;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
    }
}

#[test]
fn protection_keys_from_pkru_and_pkrs() {
    // Key 1 on a user page, key 2 on a supervisor page.
    let key = |k: u64| k << 59;
    let (ad, wd) = (|k: u32| 1u32 << (2 * k), |k: u32| 1u32 << (2 * k + 1));
    let mut ram = Ram::new();
    let mut cpu = two_pages(&mut ram, Kind::Four, Some(PRWU | key(1)), Some(PRW | key(2)));
    cpu.cr4 |= CR4_PKE;
    cpu.cpl = 3;
    cpu.gpr[RBX] = PAGE_A + 0x80;
    let a = PAGE_A + 0x80;
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_LOAD, 0, 0), Ok(Step::Done));
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_LOAD, ad(1), 0), pf(a, PF_P | PF_U | PF_PK));
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_STORE, ad(1), 0), pf(a, PF_P | PF_W | PF_U | PF_PK));
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_LOAD, wd(1), 0), Ok(Step::Done));
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_STORE, wd(1), 0), pf(a, PF_P | PF_W | PF_U | PF_PK));
    // A read-modify-write with writes disabled faults at the read.
    ram.log.clear();
    assert_eq!(exec_pk(&mut ram, &mut cpu, ADD_STORE, wd(1), 0), pf(a, PF_P | PF_W | PF_U | PF_PK));
    assert_eq!(ram.log, []);
    // Other keys' rights do not matter.
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_STORE, !(ad(1) | wd(1)), 0), Ok(Step::Done));
    // CPL 0 writes honour WD only with CR0.WP.
    cpu.cpl = 0;
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_STORE, wd(1), 0), pf(a, PF_P | PF_W | PF_PK));
    cpu.cr0 &= !CR0_WP;
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_STORE, wd(1), 0), Ok(Step::Done));
    cpu.cr0 |= CR0_WP;
    // Supervisor page: IA32_PKRS under CR4.PKS only.
    let b = PAGE_B + 0x80;
    cpu.gpr[RBX] = b;
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_LOAD, !0, ad(2)), Ok(Step::Done));
    cpu.cr4 |= CR4_PKS;
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_LOAD, !0, ad(2)), pf(b, PF_P | PF_PK));
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_STORE, 0, wd(2)), pf(b, PF_P | PF_W | PF_PK));
    assert_eq!(exec_pk(&mut ram, &mut cpu, MOV_LOAD, 0, wd(2)), Ok(Step::Done));
}

// ----- accessed and dirty ----------------------------------------------------------

#[test]
fn accessed_and_dirty_bits_from_emulated_accesses() {
    for kind in KINDS {
        let width = if kind == Kind::Bits32 { 4 } else { 8 };
        let mut ram = Ram::new();
        let mut cpu = two_pages(&mut ram, kind, Some(PRW), Some(PRW));
        let slots_a = ram.slots(kind, cpu.cr3, PAGE_A, false);
        // The entries above the leaf that have an A bit (a PAE PDPTE has none).
        let skip = usize::from(kind == Kind::Pae);
        let upper: Vec<(u64, usize)> = slots_a[skip..slots_a.len() - 1].to_vec();
        let pdpte = ram.get(slots_a[0].0, 8);
        cpu.gpr[RBX] = PAGE_A + 0x10;
        // A read: A, no D; the walker's updates are 4 bytes wide with
        // 32-bit paging.
        assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_A), FRAME_A | PRW | PTE_A, "{kind:?}");
        assert!(ram.pt_updates.iter().all(|&(_, w)| w == width), "{kind:?}: {:?}", ram.pt_updates);
        assert!(!upper.is_empty());
        for &(gpa, w) in &upper {
            assert_eq!(ram.get(gpa, w) & (PTE_A | PTE_D), PTE_A, "{kind:?} entry at {gpa:#x}");
        }
        if kind == Kind::Pae {
            assert_eq!(ram.get(slots_a[0].0, 8), pdpte, "the PDPTE changed");
        }
        // A compare reads only.
        assert_eq!(exec(&mut ram, &mut cpu, CMP_MEM), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_A) & PTE_D, 0, "{kind:?}");
        // A write dirties the leaf, not the tables above it.
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_A), FRAME_A | PRW | PTE_A | PTE_D, "{kind:?}");
        for &(gpa, w) in &upper {
            assert_eq!(ram.get(gpa, w) & PTE_D, 0, "{kind:?} entry at {gpa:#x}");
        }
        // A read-modify-write of a fresh page dirties it too.
        ram.set_leaf(kind, cpu.cr3, PAGE_A, FRAME_A | PRW);
        assert_eq!(exec(&mut ram, &mut cpu, ADD_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_A), FRAME_A | PRW | PTE_A | PTE_D, "{kind:?}");
        // A crossing write dirties both pages.
        ram.set_leaf(kind, cpu.cr3, PAGE_A, FRAME_A | PRW);
        cpu.gpr[RBX] = PAGE_A + 0xffe;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), Ok(Step::Done), "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_A), FRAME_A | PRW | PTE_A | PTE_D, "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_B), FRAME_B | PRW | PTE_A | PTE_D, "{kind:?}");
        // A faulting write leaves the page's entry alone.
        ram.set_leaf(kind, cpu.cr3, PAGE_A, FRAME_A | PTE_P);
        cpu.gpr[RBX] = PAGE_A + 0x10;
        assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), pf(PAGE_A + 0x10, PF_P | PF_W), "{kind:?}");
        assert_eq!(ram.leaf(kind, cpu.cr3, PAGE_A), FRAME_A | PTE_P, "{kind:?}");
    }
}

#[test]
fn fetch_bit_never_reported_for_data_accesses() {
    // The emulator's accesses are data accesses: I/D stays clear even
    // with EFER.NXE and an XD page.
    let mut ram = Ram::new();
    let mut cpu = two_pages(&mut ram, Kind::Four, Some(PTE_P | 1 << 63), Some(PRW));
    cpu.gpr[RBX] = PAGE_A;
    assert_eq!(exec(&mut ram, &mut cpu, MOV_LOAD), Ok(Step::Done));
    assert_eq!(exec(&mut ram, &mut cpu, MOV_STORE), pf(PAGE_A, PF_P | PF_W));
}
