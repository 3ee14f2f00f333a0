// SPDX-License-Identifier: GPL-2.0

//! Runs one instruction on the host CPU, in user mode, from a register and
//! memory state of the caller's choosing, and captures the state after it.
//!
//! A [`Host`] owns one anonymous mapping below 2 GiB (`MAP_32BIT`, so that
//! 32-bit addresses, `[disp32]` and RIP-relative operands all reach it):
//!
//! | offset   | size    | contents                                        |
//! |----------|---------|-------------------------------------------------|
//! | `0x0000` | 4 KiB   | code: the stub, rewritten for every run         |
//! | `0x1000` | 4 KiB   | state: registers in and out, the host RSP       |
//! | `0x2000` | [`DATA_LEN`] | data: the memory the instruction may use   |
//! | after    | 4 KiB   | guard page, no access                           |
//!
//! The stub, hand-assembled by [`stub`], saves the callee-saved registers
//! and RSP, loads YMM0-15, RFLAGS (`popfq` from the state page) and all 16
//! general registers (RSP last), runs the instruction, stores the 16
//! general registers, RFLAGS (`pushfq` into the state page) and YMM0-15,
//! clears DF, does `vzeroupper`, reloads RSP, restores the callee-saved
//! registers and returns. Its own memory operands are all RIP-relative, so
//! it needs no register while the test's values are loaded.
//!
//! # Safety
//!
//! This module is the only `unsafe` code of the crate. It relies on these
//! invariants:
//!
//! - `Host::base` is the start of a mapping of `MAP_LEN` bytes that the
//!   `Host` alone owns: made by [`Host::new`], unmapped by `Drop`. It is
//!   accessed only through raw pointers within those bounds; no Rust
//!   reference into it outlives a method call.
//! - The code page is writable only while the stub is copied in and
//!   executable only after that (W^X); the CPU needs no explicit
//!   synchronisation for code written before the `mprotect` system call.
//! - The stub keeps the System V ABI towards its caller: it preserves RBX,
//!   RBP, R12-R15 and RSP, returns with DF clear, and its own accesses go to
//!   the state page only. Vector registers, which it changes, are all
//!   caller-saved.
//! - Input RFLAGS is masked to the status flags and DF, plus IF and the
//!   fixed bit 1, so the instruction cannot run with TF or AC set.
//! - All asynchronous signals are blocked while the stub runs, because
//!   RSP then holds a test value: no signal handler can run on it. The
//!   fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP) cannot be
//!   blocked usefully; [`Host::new`] installs [`on_fault`] for them, on
//!   the alternate signal stack that Rust's runtime gives every thread. It
//!   only prints the instruction that was running (if any), reinstalls the
//!   previous action and returns, so the fault repeats and ends the
//!   process as before.
//! - The instruction under test itself is the caller's contract, stated on
//!   [`Host::run`], which is therefore an `unsafe fn`.

use core::cell::Cell;
use core::ptr;
use std::sync::{Once, OnceLock};

const PAGE: usize = 4096;
/// The state page.
const STATE: usize = PAGE;
/// The data area, right after the state page.
const DATA: usize = 2 * PAGE;
/// The size of the data area, in bytes.
pub const DATA_LEN: usize = 2 * PAGE;
/// The guard page after the data.
const GUARD: usize = DATA + DATA_LEN;
/// The size of the mapping.
const MAP_LEN: usize = GUARD + PAGE;

// The state page's layout (offsets in the mapping).
const GPR_IN: usize = STATE;
const FLAGS_IN: usize = STATE + 0x80;
const GPR_OUT: usize = STATE + 0x100;
const FLAGS_OUT: usize = STATE + 0x180;
const HOST_RSP: usize = STATE + 0x188;
const VEC_IN: usize = STATE + 0x400;
const VEC_OUT: usize = STATE + 0x600;

/// The RFLAGS bits the instruction may start with: CF, PF, AF, ZF, SF, DF
/// and OF. [`Host::run`] sets IF and bit 1 (user mode cannot clear IF) and
/// clears everything else.
pub const FLAGS_IN_MASK: u64 = 0xcd5;
/// The RFLAGS bits [`Host::run`] always sets: bit 1 and IF.
pub const FLAGS_FIXED: u64 = 0x202;

/// The registers an instruction sees and leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regs {
    /// RAX..R15 in encoding order.
    pub gpr: [u64; 16],
    /// RFLAGS.
    pub rflags: u64,
    /// YMM0-15, bytes in memory order.
    pub vec: [[u8; 32]; 16],
}

/// A tiny assembler for the stub's own instructions.
struct Asm(Vec<u8>);

impl Asm {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    /// `op` (with its prefixes) and the ModRM for `[rip + disp32]` that
    /// reaches `target` (an offset in the mapping; the code starts at 0),
    /// with ModRM.reg = `reg`.
    fn rip(&mut self, op: &[u8], reg: u8, target: usize) {
        self.bytes(op);
        self.0.push(((reg & 7) << 3) | 5);
        let next = self.0.len() + 4;
        let disp = i32::try_from(target as i64 - next as i64).unwrap_or(0);
        self.bytes(&disp.to_le_bytes());
    }

    fn rex_w(r: u8) -> u8 {
        0x48 | if r >= 8 { 4 } else { 0 }
    }

    /// `mov r64, [rip + target]`.
    fn load(&mut self, r: u8, target: usize) {
        self.rip(&[Self::rex_w(r), 0x8b], r, target);
    }

    /// `mov [rip + target], r64`.
    fn store(&mut self, r: u8, target: usize) {
        self.rip(&[Self::rex_w(r), 0x89], r, target);
    }

    /// `vmovdqu ymmN, [rip + target]` (`store`: the other way round).
    fn vmov(&mut self, n: u8, target: usize, store: bool) {
        let r = if n < 8 { 0x80 } else { 0 };
        self.rip(&[0xc5, r | 0x7e, if store { 0x7f } else { 0x6f }], n, target);
    }

    /// `lea rsp, [rip + target]`.
    fn lea_rsp(&mut self, target: usize) {
        self.rip(&[0x48, 0x8d], 4, target);
    }
}

/// The stub around `insn`, and the offset of `insn` in it.
fn stub(insn: &[u8]) -> (Vec<u8>, usize) {
    let mut a = Asm(Vec::with_capacity(1024));
    // push rbx, rbp, r12, r13, r14, r15
    a.bytes(&[0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]);
    a.store(4, HOST_RSP);
    for n in 0..16 {
        a.vmov(n, VEC_IN + 32 * usize::from(n), false);
    }
    a.lea_rsp(FLAGS_IN);
    a.bytes(&[0x9d]); // popfq
    for r in (0..16).filter(|&r| r != 4) {
        a.load(r, GPR_IN + 8 * usize::from(r));
    }
    a.load(4, GPR_IN + 8 * 4);
    let at = a.0.len();
    a.bytes(insn);
    for r in 0..16 {
        a.store(r, GPR_OUT + 8 * usize::from(r));
    }
    a.lea_rsp(FLAGS_OUT + 8);
    a.bytes(&[0x9c, 0xfc]); // pushfq; cld
    for n in 0..16 {
        a.vmov(n, VEC_OUT + 32 * usize::from(n), true);
    }
    a.bytes(&[0xc5, 0xf8, 0x77]); // vzeroupper
    a.load(4, HOST_RSP);
    // pop r15, r14, r13, r12, rbp, rbx; ret
    a.bytes(&[0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3]);
    (a.0, at)
}

/// The signals a faulting instruction raises.
const FAULTS: [libc::c_int; 5] =
    [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP];

thread_local! {
    /// The instruction this thread runs natively now: its length (0 for
    /// none) and bytes, for [`on_fault`].
    static RUNNING: Cell<(usize, [u8; 15])> = const { Cell::new((0, [0; 15])) };
}

/// The actions [`on_fault`] replaced, in the order of [`FAULTS`].
static OLD_ACTIONS: OnceLock<[libc::sigaction; 5]> = OnceLock::new();

/// Reports a fault of the instruction under test on stderr, then puts the
/// previous action back; returning repeats the fault, which that action
/// (in the end the default: termination) handles.
extern "C" fn on_fault(sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let (len, bytes) = RUNNING.with(Cell::get);
    if len > 0 {
        let mut msg = [0u8; 128];
        let head = b"vmm-emul-native: signal while running the instruction [";
        let mut n = head.len();
        msg[..n].copy_from_slice(head);
        for b in &bytes[..len.min(15)] {
            let hex = b"0123456789abcdef";
            msg[n] = hex[usize::from(b >> 4)];
            msg[n + 1] = hex[usize::from(b & 15)];
            msg[n + 2] = b' ';
            n += 3;
        }
        msg[n - 1] = b']';
        msg[n] = b'\n';
        // SAFETY: write(2) on a local buffer; async-signal-safe.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), n + 1);
        }
    }
    if let (Some(old), Some(i)) = (OLD_ACTIONS.get(), FAULTS.iter().position(|&f| f == sig)) {
        // SAFETY: reinstalls an action saved by `install_fault_handler`;
        // sigaction(2) is async-signal-safe.
        unsafe {
            libc::sigaction(sig, &old[i], ptr::null_mut());
        }
    }
}

/// Installs [`on_fault`] for [`FAULTS`], once per process.
fn install_fault_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction(2) with initialised structures; the handler
        // is async-signal-safe (see `on_fault`).
        unsafe {
            let mut old: [libc::sigaction; 5] = core::mem::zeroed();
            for (i, &sig) in FAULTS.iter().enumerate() {
                libc::sigaction(sig, ptr::null(), &mut old[i]);
            }
            if OLD_ACTIONS.set(old).is_err() {
                return;
            }
            for &sig in &FAULTS {
                let mut act: libc::sigaction = core::mem::zeroed();
                act.sa_sigaction = on_fault as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, ptr::null_mut());
            }
        }
    });
}

/// The mapping and the stub that runs instructions in it.
pub struct Host {
    base: *mut u8,
    insn_at: usize,
}

impl Host {
    /// Maps the code, state and data pages below 2 GiB (and installs the
    /// fault reporter, once).
    pub fn new() -> std::io::Result<Self> {
        install_fault_handler();
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe { libc::mmap(ptr::null_mut(), MAP_LEN, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let host = Self { base: p.cast(), insn_at: stub(&[]).1 };
        // SAFETY: the guard page lies inside the mapping just made.
        if unsafe { libc::mprotect(p.cast::<u8>().add(GUARD).cast(), PAGE, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(host)
    }

    /// The linear address at which the instruction under test runs (its
    /// RIP).
    pub fn insn_addr(&self) -> u64 {
        self.base as u64 + self.insn_at as u64
    }

    /// The linear address of the data area ([`DATA_LEN`] bytes).
    pub fn data_addr(&self) -> u64 {
        self.base as u64 + DATA as u64
    }

    /// Runs `insn` with the registers `input` (RFLAGS masked with
    /// [`FLAGS_IN_MASK`], plus [`FLAGS_FIXED`]) and the data area holding
    /// `data`; returns the registers afterwards and leaves the data area's
    /// new contents in `data`.
    ///
    /// # Safety
    ///
    /// `insn` must be exactly one instruction that, from this state, runs
    /// to its end and falls through: no control transfer, no system call,
    /// no privileged or faulting instruction. Every memory access it
    /// makes must lie inside the data area (the stack of a `push`/`pop`
    /// included). It may change any register, which the stub saves and
    /// restores around it.
    pub unsafe fn run(&mut self, insn: &[u8], input: &Regs, data: &mut [u8; DATA_LEN]) -> Regs {
        let (code, at) = stub(insn);
        assert!(insn.len() <= 15, "instruction longer than 15 bytes: {insn:02x?}");
        assert!(code.len() <= PAGE && at == self.insn_at);
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let rx = libc::PROT_READ | libc::PROT_EXEC;
        let flags = (input.rflags & FLAGS_IN_MASK) | FLAGS_FIXED;
        let b = self.base;
        // SAFETY: every pointer lies inside the mapping (the layout
        // constants above, `code.len() <= PAGE`), which only `self` uses.
        unsafe {
            assert_eq!(libc::mprotect(b.cast(), PAGE, rw), 0);
            ptr::copy_nonoverlapping(code.as_ptr(), b, code.len());
            assert_eq!(libc::mprotect(b.cast(), PAGE, rx), 0);
            ptr::copy_nonoverlapping(input.gpr.as_ptr().cast::<u8>(), b.add(GPR_IN), 128);
            ptr::copy_nonoverlapping(flags.to_ne_bytes().as_ptr(), b.add(FLAGS_IN), 8);
            ptr::copy_nonoverlapping(input.vec.as_ptr().cast::<u8>(), b.add(VEC_IN), 512);
            ptr::copy_nonoverlapping(data.as_ptr(), b.add(DATA), DATA_LEN);
        }
        // SAFETY: plain libc calls on local signal sets.
        let old = unsafe {
            let mut all: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut all);
            for sig in FAULTS {
                libc::sigdelset(&mut all, sig);
            }
            assert_eq!(libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old), 0);
            old
        };
        let mut running = [0u8; 15];
        running[..insn.len()].copy_from_slice(insn);
        RUNNING.with(|r| r.set((insn.len(), running)));
        // SAFETY: the code page holds the stub just written (see the module
        // invariants for what it preserves); the instruction inside it
        // keeps to the caller's contract.
        unsafe {
            let entry = core::mem::transmute::<*mut u8, unsafe extern "sysv64" fn()>(b);
            entry();
        }
        RUNNING.with(|r| r.set((0, [0; 15])));
        // SAFETY: restores the mask saved above.
        unsafe {
            assert_eq!(libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()), 0);
        }
        let mut out = Regs { gpr: [0; 16], rflags: 0, vec: [[0; 32]; 16] };
        let mut fl = [0u8; 8];
        // SAFETY: as for the copies in, the other way round.
        unsafe {
            ptr::copy_nonoverlapping(b.add(GPR_OUT), out.gpr.as_mut_ptr().cast::<u8>(), 128);
            ptr::copy_nonoverlapping(b.add(FLAGS_OUT), fl.as_mut_ptr(), 8);
            ptr::copy_nonoverlapping(b.add(VEC_OUT), out.vec.as_mut_ptr().cast::<u8>(), 512);
            ptr::copy_nonoverlapping(b.add(DATA), data.as_mut_ptr(), DATA_LEN);
        }
        out.rflags = u64::from_ne_bytes(fl);
        out
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        unsafe {
            libc::munmap(self.base.cast(), MAP_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `add rax, rbx` and `mov [rdi], rax` through the stub.
    #[test]
    fn add_and_store() {
        let mut h = Host::new().unwrap();
        let mut data = [0u8; DATA_LEN];
        let mut r = Regs { gpr: [0; 16], rflags: 0, vec: [[0; 32]; 16] };
        r.gpr[0] = u64::MAX;
        r.gpr[3] = 1;
        r.gpr[7] = h.data_addr() + 8;
        r.vec[5][31] = 0x5a;
        // SAFETY: register-only instruction.
        let out = unsafe { h.run(&[0x48, 0x01, 0xd8], &r, &mut data) };
        assert_eq!(out.gpr[0], 0);
        assert_eq!(out.rflags & 0xcd5, 0x55); // CF PF AF ZF
        assert_eq!(out.vec, r.vec);
        r = out;
        r.gpr[0] = 0x1122_3344_5566_7788;
        // SAFETY: stores to data + 8, inside the data area.
        let out = unsafe { h.run(&[0x48, 0x89, 0x07], &r, &mut data) };
        assert_eq!(out.gpr, r.gpr);
        assert_eq!(data[8..16], r.gpr[0].to_le_bytes());
    }
}
