// SPDX-License-Identifier: GPL-2.0

//! The seam between common vCPU code and a hardware backend.
//!
//! A backend owns the hardware view of one vCPU (a VMCB or a VMCS) and
//! does three things: it reads and writes architectural registers, it
//! injects events, and it enters the guest once and says why it came back,
//! in vendor-neutral terms ([`HwExit`]). Everything else (which exits go to
//! userspace, CPUID, MSRs, port I/O, completions, kicks and signals) is
//! common code in `vcpu.rs`.

use kernel::prelude::*;

use crate::uapi::VmmSegDesc;
use crate::x86::insn::Seg;

/// An event to deliver at the next entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// Vector.
    pub(crate) vector: u8,
    /// Error code pushed, for exceptions that have one.
    pub(crate) error: Option<u32>,
}

impl Event {
    /// #UD.
    pub(crate) const UD: Self = Self { vector: 6, error: None };
    /// #GP(0).
    pub(crate) const GP0: Self = Self { vector: 13, error: Some(0) };
}

/// Why the guest stopped, as common code needs to know it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HwExit {
    /// Nothing for common code to do (a host interrupt, NMI or SMI, or an
    /// event the backend re-injected itself).
    Continue,
    /// IN, OUT, INS or OUTS.
    Io(IoExit),
    /// CPUID.
    Cpuid,
    /// RDMSR (`write == false`) or WRMSR.
    Msr { write: bool },
    /// HLT.
    Hlt,
    /// XSETBV.
    Xsetbv,
    /// Triple fault.
    Shutdown,
    /// Nested page fault at `gpa`, with `VMM_ACCESS_*` bits.
    NestedFault { gpa: u64, access: u32 },
    /// An instruction the guest may not use here: inject this exception.
    Fault(Event),
    /// An SVM exit common code does not know: goes to userspace raw.
    Svm { code: u64, info1: u64, info2: u64, int_info: u64 },
}

/// A port I/O exit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoExit {
    /// Port.
    pub(crate) port: u16,
    /// 1, 2 or 4.
    pub(crate) size: u8,
    /// IN/INS.
    pub(crate) input: bool,
    /// INS/OUTS.
    pub(crate) string: bool,
    /// REP prefix.
    pub(crate) rep: bool,
    /// Address size of a string instruction: 2, 4 or 8.
    pub(crate) addr_size: u8,
    /// Segment of a string source, when the hardware decoded it.
    pub(crate) seg: Option<Seg>,
    /// RIP of the next instruction.
    pub(crate) next_rip: u64,
}

/// One vCPU's hardware state.
pub(crate) trait VcpuHw {
    /// A register by `uapi::reg` id; `None` for an unknown id.
    fn get(&self, id: u32) -> Option<u64>;
    /// Writes a register after checking the value (`EINVAL`).
    fn set(&mut self, id: u32, value: u64) -> Result;
    /// A descriptor by id (`reg::ES` to `reg::IDTR`).
    fn get_desc(&self, id: u32) -> Option<VmmSegDesc>;
    /// Writes a descriptor after checking it (`EINVAL`).
    fn set_desc(&mut self, id: u32, d: &VmmSegDesc) -> Result;
    /// Current privilege level.
    fn cpl(&self) -> u8;
    /// Delivers `e` at the next entry (a #PF also needs CR2 set first).
    fn inject(&mut self, e: Event);
    /// RIP of the next instruction when the hardware saved it (NRIP-save).
    fn next_rip(&self) -> Option<u64>;
}
