// SPDX-License-Identifier: MIT OR Apache-2.0

//! Guest payloads and the harness that runs them.
//!
//! # Payloads
//!
//! A payload is guest code assembled into this binary with `global_asm!`
//! (AT&T syntax, `options(att_syntax)`), in the `.rodata.guest` section
//! between two exported labels, `vmm_guest_<name>_start` and `_end`. Here it
//! is read-only data, never executed: a test copies its bytes into guest RAM
//! and runs them there. Because it is assembled at a host address, a payload
//! uses relative jumps and RIP-relative addressing, or absolute guest
//! addresses written as `label - start + load` with `load = const LOAD`.
//! Every payload ends in `.code64` so that the code after it assembles for
//! the host again. [`payload!`] turns the two labels into a [`Payload`];
//! [`sym!`] gives the address of any other exported label, which
//! [`Payload::addr`] turns into a guest address.
//!
//! # Guest memory
//!
//! A [`TestVm`] has [`RAM_LEN`] bytes of RAM at guest-physical 0:
//!
//! | GPA | use |
//! |---|---|
//! | `0x0000` | real-mode IVT (when a test installs one) |
//! | [`IDT`] | protected/long-mode IDT (when a test installs one) |
//! | [`HALT_HANDLER`] | one `hlt`, for IDTs that just stop the guest |
//! | below [`STACK`] | the stack |
//! | [`LOAD`] | the payload, entered at its first byte |
//! | [`SCRATCH`] | GDT, TSS and page tables from `libvmm::setup` |
//! | [`DATA`] | data the test and the guest exchange |
//! | [`FREE`] | free pages, e.g. for page tables a guest builds |
//!
//! # Report ports
//!
//! The guest reports with a 4-byte `OUT`: [`PORT_PASS`] with [`PASS`] ends
//! the run successfully, [`PORT_FAIL`] fails it with the value as a code,
//! and [`PORT_DEBUG`] hands the test a value and carries on.
//! [`TestVm::run_until`] consumes these and passes every other exit to the
//! test's handler. The asm snippets [`asm_pass!`], [`asm_fail!`] and
//! [`asm_debug!`] write them.

use std::fmt::Display;

use libvmm::setup::{setup_vcpu, Mode, SCRATCH_LEN};
use libvmm::sys::Mapping;
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd, VmFd};

use crate::ensure;

/// Bytes of RAM a [`TestVm`] gets by default.
pub const RAM_LEN: u64 = 2 << 20;
/// Where tests put a protected/long-mode IDT (256 gates fit below 0x2000).
pub const IDT: u64 = 0x1000;
/// Where [`TestVm::install_idt`] tests put a lone `hlt` to point gates at.
pub const HALT_HANDLER: u64 = 0x2ff0;
/// Initial stack pointer (the stack grows down towards 0x3000).
pub const STACK: u64 = 0x7000;
/// Where payloads are loaded and entered.
pub const LOAD: u64 = 0x8000;
/// The `libvmm::setup` scratch area.
pub const SCRATCH: u64 = 0x1_0000;
/// A data area for the test and the guest.
pub const DATA: u64 = 0x2_0000;
/// Free RAM (up to the end of RAM) for page tables and the like.
pub const FREE: u64 = 0x3_0000;

/// Port whose 4-byte OUT of [`PASS`] ends a run successfully.
pub const PORT_PASS: u32 = 0xe0;
/// Port whose 4-byte OUT fails the test with the value as a code.
pub const PORT_FAIL: u32 = 0xe1;
/// Port whose 4-byte OUT hands a value to the test.
pub const PORT_DEBUG: u32 = 0xe2;
/// The value a passing guest writes to [`PORT_PASS`].
pub const PASS: u64 = 0x600d;

/// Most exits one [`TestVm::run_until`] handles before it gives up.
pub const MAX_EXITS: usize = 10_000;

const _: () = assert!(SCRATCH + SCRATCH_LEN <= DATA && STACK <= LOAD && HALT_HANDLER < STACK);

/// Guest asm: report [`PASS`], then halt for good.
#[macro_export]
macro_rules! asm_pass {
    () => {
        "movl $0x600d, %eax\n outl %eax, $0xe0\n 9999: hlt\n jmp 9999b\n"
    };
}

/// Guest asm: fail with the code in EAX, then halt for good.
#[macro_export]
macro_rules! asm_fail {
    () => {
        "outl %eax, $0xe1\n 9998: hlt\n jmp 9998b\n"
    };
}

/// Guest asm: hand EAX to the test and carry on.
#[macro_export]
macro_rules! asm_debug {
    () => {
        "outl %eax, $0xe2\n"
    };
}

/// The address of `$s`, a label a `global_asm!` block exported.
#[macro_export]
macro_rules! sym {
    ($s:ident) => {{
        extern "C" {
            static $s: u8;
        }
        (&raw const $s) as usize
    }};
}

/// The [`Payload`] between two exported labels of `.rodata.guest`.
#[macro_export]
macro_rules! payload {
    ($start:ident, $end:ident) => {{
        let (start, end) = ($crate::sym!($start), $crate::sym!($end));
        // SAFETY: `$start` and `$end` are the labels that open and close one
        // payload in the read-only `.rodata.guest` section of this binary.
        unsafe { $crate::guest::Payload::from_labels(stringify!($start), start, end) }
    }};
}

/// Guest code assembled into this binary.
#[derive(Clone, Copy, Debug)]
pub struct Payload {
    /// The start label, for messages.
    pub name: &'static str,
    /// The machine code.
    pub bytes: &'static [u8],
}

impl Payload {
    /// The payload between the labels at `start` and `end`.
    ///
    /// # Safety
    ///
    /// `start` and `end` must be the addresses of two labels, `start` first,
    /// that enclose data assembled into this binary's read-only
    /// `.rodata.guest` section (use [`payload!`]).
    pub unsafe fn from_labels(name: &'static str, start: usize, end: usize) -> Self {
        assert!(start <= end, "{name}: end label before start label");
        // SAFETY: by the caller's promise, `start..end` is initialised,
        // read-only data of this binary, valid and unchanged for the whole
        // run.
        let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
        Self { name, bytes }
    }

    /// The guest address of the label at `sym` (from [`sym!`]) when the
    /// payload is loaded at `load`.
    pub fn addr(&self, sym: usize, load: u64) -> u64 {
        let off = sym.wrapping_sub(self.bytes.as_ptr() as usize);
        assert!(off <= self.bytes.len(), "label outside payload {}", self.name);
        load + off as u64
    }

    /// The guest address just past the payload loaded at `load`.
    pub fn end(&self, load: u64) -> u64 {
        load + self.bytes.len() as u64
    }
}

/// Turns any displayable error into a test failure message.
pub fn s<T, E: Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// `VmFd::create_vcpu` with `VMM_OPTION_HLT_EXIT` set, so that HLT exits
/// to the test (`VMM_EXIT_HLT`) as the tests written before the in-kernel
/// local APIC expect. A backend that cannot run guests yet (`EOPNOTSUPP`)
/// skips the test instead of failing it.
pub fn create_vcpu(vm: &VmFd, id: u32) -> Result<VcpuFd, String> {
    let vcpu = create_apic_vcpu(vm, id)?;
    vcpu.set_option(VMM_OPTION_HLT_EXIT, 1)
        .map_err(|e| format!("VMM_VCPU_SET_OPTION HLT_EXIT 1 on vCPU {id}: {e}"))?;
    Ok(vcpu)
}

/// `VmFd::create_vcpu` with the defaults: HLT blocks in the kernel until
/// the vCPU has something to do, and a vCPU other than 0 waits for SIPI.
/// `EOPNOTSUPP` skips the test, as in [`create_vcpu`].
pub fn create_apic_vcpu(vm: &VmFd, id: u32) -> Result<VcpuFd, String> {
    vm.create_vcpu(id).map_err(|e| match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => crate::tap::skip("this backend does not run guests yet"),
        _ => format!("VMM_VM_CREATE_VCPU {id}: {e}"),
    })
}

/// What a [`TestVm::run_until`] handler wants next.
pub enum Next {
    /// Enter the guest again with this entry.
    Enter(VmmEntry),
    /// Return this exit to the test.
    Stop,
}

/// An entry that just runs (abandoning anything pending).
pub const RUN: VmmEntry = VmmEntry::ZERO;

/// An entry that completes the pending exit with `value`.
pub fn complete(value: u64) -> VmmEntry {
    VmmEntry { cmd: VMM_ENTRY_COMPLETE, value, ..VmmEntry::ZERO }
}

/// An entry that makes the pending RDMSR/WRMSR raise #GP.
pub fn inject_gp() -> VmmEntry {
    VmmEntry { cmd: VMM_ENTRY_INJECT_GP, ..VmmEntry::ZERO }
}

/// How a [`TestVm::run_until`] ended.
#[derive(Debug)]
pub struct Run {
    /// The last exit: the PASS report, or the one the handler stopped at.
    pub exit: VmmExit,
    /// Values the guest wrote to [`PORT_DEBUG`], in order.
    pub debug: Vec<u32>,
    /// Whether the guest reported [`PASS`].
    pub passed: bool,
}

/// An exit, for messages.
pub fn describe(e: &VmmExit) -> String {
    format!("{:?} at rip {:#x}", Exit::decode(e), e.rip)
}

/// Fails unless `e` is a PAGING exit for exactly `gpa`, `access`, `flags`.
pub fn expect_paging(e: &VmmExit, gpa: u64, access: u32, flags: u32) -> Result<(), String> {
    match Exit::decode(e) {
        Exit::Paging(p) if p.gpa == gpa && p.access == access && p.flags == flags => {
            ensure!(p.reserved == [0; 6], "paging exit reserved {:?}", p.reserved);
            Ok(())
        }
        _ => Err(format!(
            "expected PAGING gpa {gpa:#x} access {access:#x} flags {flags:#x}, got {}",
            describe(e)
        )),
    }
}

/// Fails unless `e` is an MMIO exit for exactly `gpa` and `size`, a write
/// of `data` when `write`, else a read (whose `data` must be zero).
pub fn expect_mmio(e: &VmmExit, gpa: u64, size: u32, write: bool, data: u64) -> Result<(), String> {
    let flags = if write { VMM_MMIO_WRITE } else { 0 };
    let want =
        VmmExitMmio { gpa, size, flags, data: if write { data } else { 0 }, ..VmmExitMmio::ZERO };
    match Exit::decode(e) {
        Exit::Mmio(m) if m == want => Ok(()),
        _ => Err(format!(
            "expected MMIO {} gpa {gpa:#x} size {size}{}, got {}",
            if write { "write" } else { "read" },
            if write { format!(" data {data:#x}") } else { String::new() },
            describe(e)
        )),
    }
}

/// Fails unless `e` is SUSPENDED for `how` (vCPU 0).
pub fn expect_suspended(e: &VmmExit, how: u32) -> Result<(), String> {
    match Exit::decode(e) {
        Exit::Suspended(su) if su.how == how && su.vcpu == 0 && su.reserved == [0; 7] => Ok(()),
        _ => Err(format!("expected SUSPENDED how {how}, got {}", describe(e))),
    }
}

/// A VM with RAM at 0 and vCPU 0, torn down on drop (vCPU fd first).
pub struct TestVm {
    /// vCPU 0.
    pub vcpu: VcpuFd,
    /// RAM, mapped into this process.
    pub mem: Mapping,
    /// The VM.
    pub vm: VmFd,
}

/// Every in-kernel platform device left out.
pub const NO_PLATFORM: CreateFlags = CreateFlags::NO_PIC
    .union(CreateFlags::NO_PIT)
    .union(CreateFlags::NO_RTC)
    .union(CreateFlags::NO_HPET)
    .union(CreateFlags::NO_IOAPIC)
    .union(CreateFlags::NO_PM_TIMER);

impl TestVm {
    /// VM `name` with `ram_len` bytes of RAM at 0 and vCPU 0 (HLT exits,
    /// see [`create_vcpu`]); nothing loaded. No in-kernel platform devices
    /// ([`NO_PLATFORM`]): the tests that use their ports or MMIO ranges
    /// as the sequencer's ask for them with [`TestVm::bare_with`].
    pub fn bare(name: &str, flags: CreateFlags, ram_len: u64) -> Result<Self, String> {
        Self::bare_with(name, flags | NO_PLATFORM, ram_len, create_vcpu)
    }

    /// [`TestVm::bare`] with vCPU 0 made by `create`, and the platform
    /// devices `flags` does not leave out.
    pub fn bare_with(
        name: &str,
        flags: CreateFlags,
        ram_len: u64,
        create: fn(&VmFd, u32) -> Result<VcpuFd, String>,
    ) -> Result<Self, String> {
        let vm = s(crate::vmm()?.create_vm(name, flags))?;
        let (_, mem) = s(vm.add_ram(0, ram_len))?;
        let vcpu = create(&vm, 0)?;
        Ok(Self { vcpu, mem, vm })
    }

    /// VM `name` (destroyed on close) running `p` at [`LOAD`] in `mode`.
    pub fn new(name: &str, mode: Mode, p: &Payload) -> Result<Self, String> {
        Self::loaded(Self::bare(name, CreateFlags::DESTROY_ON_CLOSE, RAM_LEN)?, mode, p)
    }

    /// [`TestVm::new`], but vCPU 0 keeps the default in-kernel HLT (see
    /// [`create_apic_vcpu`]).
    pub fn new_apic(name: &str, mode: Mode, p: &Payload) -> Result<Self, String> {
        let t = Self::bare_with(name, CreateFlags::DESTROY_ON_CLOSE, RAM_LEN, create_apic_vcpu)?;
        Self::loaded(t, mode, p)
    }

    fn loaded(t: Self, mode: Mode, p: &Payload) -> Result<Self, String> {
        t.write(LOAD, p.bytes)?;
        t.setup(mode, LOAD)?;
        Ok(t)
    }

    /// Puts vCPU 0 at `entry` in `mode` (stack [`STACK`], scratch [`SCRATCH`]).
    pub fn setup(&self, mode: Mode, entry: u64) -> Result<(), String> {
        setup_vcpu(&self.vcpu, &self.mem, 0, mode, entry, STACK, SCRATCH)
            .map_err(|e| format!("setup_vcpu({mode:?}, {entry:#x}): {e}"))
    }

    fn range(&self, gpa: u64, len: usize) -> Result<usize, String> {
        let end = gpa.checked_add(len as u64);
        ensure!(end.is_some_and(|e| e <= self.mem.len() as u64), "{gpa:#x}+{len:#x} outside RAM");
        Ok(gpa as usize)
    }

    /// Copies `data` into RAM at `gpa`.
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), String> {
        self.mem.write(self.range(gpa, data.len())?, data);
        Ok(())
    }

    /// Reads `len` bytes of RAM at `gpa`.
    pub fn read(&self, gpa: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; len];
        self.mem.read(self.range(gpa, len)?, &mut buf);
        Ok(buf)
    }

    /// Writes a little-endian u64 at `gpa`.
    pub fn write_u64(&self, gpa: u64, v: u64) -> Result<(), String> {
        self.write(gpa, &v.to_le_bytes())
    }

    /// Reads a little-endian u64 at `gpa`.
    pub fn read_u64(&self, gpa: u64) -> Result<u64, String> {
        let b = self.read(gpa, 8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// Points every vector at `handler(vector)` in an IDT for `mode` (the
    /// IVT at 0 for real mode, 64-bit or 32-bit interrupt gates at [`IDT`]
    /// otherwise) and loads IDTR.
    pub fn install_idt(&self, mode: Mode, handler: impl Fn(u8) -> u64) -> Result<(), String> {
        let base = if mode == Mode::Real { 0 } else { IDT };
        let table = idt_table(mode, handler);
        self.write(base, &table)?;
        let idtr = VmmSegDesc { base, limit: table.len() as u32 - 1, access: 0 };
        s(self.vcpu.set_descs(&[(reg::IDTR, idtr)]))
    }

    /// Runs from `entry` until the guest reports PASS or `handler` says
    /// [`Next::Stop`]; FAIL reports and more than [`MAX_EXITS`] exits are
    /// errors, and so is any failing run.
    pub fn run_until(
        &self,
        entry: VmmEntry,
        mut handler: impl FnMut(&Exit, &VmmExit) -> Result<Next, String>,
    ) -> Result<Run, String> {
        let mut entry = entry;
        let mut debug = Vec::new();
        for _ in 0..MAX_EXITS {
            let e = self.vcpu.run_entry(entry).map_err(|err| format!("run: {err}"))?;
            let x = Exit::decode(&e);
            if let Exit::Inout(io) = x {
                if io.flags == 0 && io.size == 4 {
                    match io.port {
                        PORT_PASS if io.value == PASS => {
                            return Ok(Run { exit: e, debug, passed: true })
                        }
                        PORT_PASS => return Err(format!("PASS port got {:#x}", io.value)),
                        PORT_FAIL => {
                            return Err(format!(
                                "guest failed with code {:#x} at rip {:#x}; debug {debug:#x?}",
                                io.value, e.rip
                            ))
                        }
                        PORT_DEBUG => {
                            debug.push(io.value as u32);
                            entry = complete(0);
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            match handler(&x, &e)? {
                Next::Enter(next) => entry = next,
                Next::Stop => return Ok(Run { exit: e, debug, passed: false }),
            }
        }
        Err(format!("no end after {MAX_EXITS} exits; debug {debug:#x?}"))
    }

    /// Runs until the guest reports PASS; any other exit fails. Returns the
    /// debug values.
    pub fn run_to_pass(&self) -> Result<Vec<u32>, String> {
        let r = self.run_until(RUN, |_, e| Err(format!("unexpected exit {}", describe(e))))?;
        Ok(r.debug)
    }

    /// Runs from `entry` to the first exit that is not a report; a PASS
    /// first is an error.
    pub fn run_to_exit(&self, entry: VmmEntry) -> Result<Run, String> {
        let r = self.run_until(entry, |_, _| Ok(Next::Stop))?;
        ensure!(!r.passed, "guest passed before the expected exit; debug {:#x?}", r.debug);
        Ok(r)
    }
}

/// The bytes of a table whose every vector leads to `handler(vector)`: a
/// real-mode IVT (handlers below 64 KiB, segment 0), or 32-bit or 64-bit
/// interrupt gates through the code selectors of `libvmm::setup`.
pub fn idt_table(mode: Mode, handler: impl Fn(u8) -> u64) -> Vec<u8> {
    let gate_len = match mode {
        Mode::Real => 4,
        Mode::Protected32 => 8,
        Mode::Long64 => 16,
    };
    let mut table = Vec::with_capacity(256 * gate_len);
    for v in 0..=255u8 {
        let h = handler(v);
        match mode {
            // offset:segment, segment 0: handlers live below 64 KiB.
            Mode::Real => table.extend_from_slice(&[(h as u16).to_le_bytes(), [0, 0]].concat()),
            Mode::Protected32 => {
                table.extend_from_slice(&idt_gate(h, libvmm::setup::sel::CODE32)[..8])
            }
            Mode::Long64 => table.extend_from_slice(&idt_gate(h, libvmm::setup::sel::CODE64)),
        }
    }
    table
}

/// A 16-byte 64-bit interrupt gate (its first 8 bytes are the 32-bit gate)
/// to `handler` through code selector `cs`: present, DPL 0, no IST.
fn idt_gate(handler: u64, cs: u16) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    g[2..4].copy_from_slice(&cs.to_le_bytes());
    g[5] = 0x8e;
    g[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    g[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_split_the_handler_address() {
        let g = idt_gate(0x1234_5678_9abc_def0, 0x08);
        let want = [0xf0, 0xde, 0x08, 0, 0, 0x8e, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0];
        assert_eq!(g, want);
    }

    #[test]
    fn payloads_come_out_of_the_binary() {
        let p = crate::tests::run::spin_payload();
        // out %al, $0x40; hlt; jmp .; hlt; then the PASS report.
        assert_eq!(&p.bytes[..6], &[0xe6, 0x40, 0xf4, 0xeb, 0xfe, 0xf4]);
        assert_eq!(&p.bytes[6..11], &[0xb8, 0x0d, 0x60, 0, 0]);
        assert_eq!(p.addr(sym!(vmm_guest_spin_hlt), LOAD), LOAD + 5);
        assert_eq!(p.end(LOAD), LOAD + p.bytes.len() as u64);
    }
}
