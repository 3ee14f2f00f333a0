// SPDX-License-Identifier: GPL-2.0

//! The seam between common vCPU code and a hardware backend.
//!
//! A backend owns the hardware view of one vCPU (a VMCB or a VMCS) and
//! does three things: it reads and writes architectural registers, it
//! injects events, and it enters the guest once and says why it came back,
//! in vendor-neutral terms ([`HwExit`]). Everything else (which exits go to
//! userspace, CPUID, MSRs, port I/O, completions, kicks and signals) is
//! common code in `vcpu.rs`.
//!
//! Both backends implement [`VcpuHw`]: `svm_vcpu::SvmVcpu` (AMD-V) and
//! `vmx_vcpu::VmxVcpu` (VT-x). [`AnyVcpu`] is the one a vCPU holds.

use kernel::{prelude::*, sync::atomic::Atomic};

use crate::svm_vcpu::SvmVcpu;
use crate::uapi::{access, reg, VmmSegDesc};
use crate::vm::Shared;
use crate::vmspace::gen::Generation;
use crate::vmx_vcpu::VmxVcpu;
use crate::x86::{insn::Seg, paging::canonical};

/// Guest-visible EFER bits: SCE, LME, LMA, NXE.
pub(crate) const EFER_VALID: u64 = 0xd01;
/// RFLAGS bits that may be set (bit 1 always is).
pub(crate) const RFLAGS_VALID: u64 = 0x3f_7fd7;
/// CR4 bits a guest may have: everything architectural but VMXE and SMXE
/// (VT-x further limits them to what CR4_FIXED1 allows).
pub(crate) const CR4_VALID: u64 = 0x37_1fff | (1 << 23);

/// Whether `v` is a CR0 userspace may set: no high bits, PG only with PE,
/// NW only with CD.
pub(crate) const fn cr0_valid(v: u64) -> bool {
    v >> 32 == 0 && (v & (1 << 31) == 0 || v & 1 != 0) && (v & (1 << 29) == 0 || v & (1 << 30) != 0)
}

/// Checks a `VMM_VCPU_SET_DESCS` entry for descriptor `id` the same way on
/// both backends; says whether it is GDTR or IDTR (base and limit only).
/// Bases that can hold 64-bit values must be canonical, as VMX requires.
pub(crate) fn check_desc(id: u32, d: &VmmSegDesc, la57: bool) -> Result<bool> {
    if !(reg::ES..=reg::IDTR).contains(&id) {
        return Err(EINVAL);
    }
    let table = id == reg::GDTR || id == reg::IDTR;
    if (table && (d.access != 0 || d.limit > 0xffff)) || d.access & !access::VALID != 0 {
        return Err(EINVAL);
    }
    let wide = matches!(id, reg::FS | reg::GS | reg::LDTR | reg::TR | reg::GDTR | reg::IDTR);
    if wide && !canonical(d.base, la57) {
        return Err(EINVAL);
    }
    Ok(table)
}

/// MSRs the guest reads and writes without exiting, on both backends: the
/// hardware switches them (VMLOAD/VMSAVE, or VMCS fields) or the backend
/// does around each entry. [`direct_slot`] numbers them.
pub(crate) const DIRECT_MSRS: [u32; 10] = [
    0xc000_0100, // FS_BASE
    0xc000_0101, // GS_BASE
    0xc000_0102, // KERNEL_GS_BASE
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0x174,       // SYSENTER_CS
    0x175,       // SYSENTER_ESP
    0x176,       // SYSENTER_EIP
];

/// The index of `msr` in [`DIRECT_MSRS`].
pub(crate) fn direct_slot(msr: u32) -> Option<usize> {
    DIRECT_MSRS.iter().position(|m| *m == msr)
}

/// The value a guest write of `v` to direct MSR `slot` stores, or `None`
/// for #GP: addresses must be canonical, SFMASK keeps 32 bits and
/// SYSENTER_CS 16.
pub(crate) fn direct_value(slot: usize, v: u64, la57: bool) -> Option<u64> {
    match slot {
        3 => Some(v),
        6 => Some(v & 0xffff_ffff),
        7 => Some(v & 0xffff),
        _ => canonical(v, la57).then_some(v),
    }
}

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
    /// An exit common code does not know, or a failed entry: goes to
    /// userspace as it is (`exit::SVM` or `exit::VMX` with its data).
    Unhandled { reason: u32, data: [u64; 8] },
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
    /// RIP of the next instruction when the hardware saved it (NRIP-save,
    /// or the VM-exit instruction length).
    fn next_rip(&self) -> Option<u64>;
    /// Sets CR2 (before injecting a #PF).
    fn set_cr2(&mut self, cr2: u64);
    /// EFER as the guest sees it.
    fn efer(&self) -> u64;
    /// Sets EFER (already validated by common code).
    fn set_efer(&mut self, efer: u64);
    /// The guest's IA32_PAT.
    fn pat(&self) -> u64;
    /// Sets IA32_PAT (already validated).
    fn set_pat(&mut self, pat: u64);
    /// The TSC offset.
    fn tsc_offset(&self) -> u64;
    /// Sets the TSC offset.
    fn set_tsc_offset(&mut self, offset: u64);
    /// An MSR the guest reads and writes directly (the hardware or the
    /// backend switches it); `None` for any other.
    fn direct_msr(&self, msr: u32) -> Option<u64>;
    /// Writes a direct MSR; `None` for another MSR or a bad value (the
    /// guest gets #GP).
    fn set_direct_msr(&mut self, msr: u32, value: u64) -> Option<()>;
    /// Enters the guest once, on this CPU, and says why it came back.
    fn enter(&mut self, shared: &Shared, entry: Entry<'_>) -> Result<HwExit>;
}

/// What one entry needs from common code.
pub(crate) struct Entry<'a> {
    /// The nested table's root.
    pub(crate) root: u64,
    /// Its generation.
    pub(crate) generation: Generation,
    /// Per host CPU, the generation of the nested table that CPU's TLB last
    /// caught up with (`Flushed::raw`), for backends whose flush domain is
    /// the host CPU (EPT). Touched only on its own CPU with interrupts off.
    pub(crate) cpu_flushed: &'a [Atomic<u64>],
    /// The guest's XCR0 when it differs from the host's.
    pub(crate) xcr0: Option<u64>,
    /// Runs with interrupts off just before entry, with the CPU number, and
    /// says whether to enter at all (a kick may have come).
    pub(crate) arrive: &'a mut dyn FnMut(u32) -> bool,
    /// Runs right after the exit, still with interrupts off.
    pub(crate) depart: &'a mut dyn FnMut(),
}

/// A vCPU of either backend.
pub(crate) enum AnyVcpu {
    /// AMD-V.
    Svm(SvmVcpu),
    /// VT-x.
    Vmx(KBox<VmxVcpu>),
}

macro_rules! dispatch {
    ($self:ident, $v:ident => $e:expr) => {
        match $self {
            AnyVcpu::Svm($v) => $e,
            AnyVcpu::Vmx($v) => $e,
        }
    };
}

impl VcpuHw for AnyVcpu {
    fn get(&self, id: u32) -> Option<u64> {
        dispatch!(self, v => v.get(id))
    }
    fn set(&mut self, id: u32, value: u64) -> Result {
        dispatch!(self, v => v.set(id, value))
    }
    fn get_desc(&self, id: u32) -> Option<VmmSegDesc> {
        dispatch!(self, v => v.get_desc(id))
    }
    fn set_desc(&mut self, id: u32, d: &VmmSegDesc) -> Result {
        dispatch!(self, v => v.set_desc(id, d))
    }
    fn cpl(&self) -> u8 {
        dispatch!(self, v => v.cpl())
    }
    fn inject(&mut self, e: Event) {
        dispatch!(self, v => v.inject(e))
    }
    fn next_rip(&self) -> Option<u64> {
        dispatch!(self, v => v.next_rip())
    }
    fn set_cr2(&mut self, cr2: u64) {
        dispatch!(self, v => v.set_cr2(cr2))
    }
    fn efer(&self) -> u64 {
        dispatch!(self, v => v.efer())
    }
    fn set_efer(&mut self, efer: u64) {
        dispatch!(self, v => v.set_efer(efer))
    }
    fn pat(&self) -> u64 {
        dispatch!(self, v => v.pat())
    }
    fn set_pat(&mut self, pat: u64) {
        dispatch!(self, v => v.set_pat(pat))
    }
    fn tsc_offset(&self) -> u64 {
        dispatch!(self, v => v.tsc_offset())
    }
    fn set_tsc_offset(&mut self, offset: u64) {
        dispatch!(self, v => v.set_tsc_offset(offset))
    }
    fn direct_msr(&self, msr: u32) -> Option<u64> {
        dispatch!(self, v => v.direct_msr(msr))
    }
    fn set_direct_msr(&mut self, msr: u32, value: u64) -> Option<()> {
        dispatch!(self, v => v.set_direct_msr(msr, value))
    }
    fn enter(&mut self, shared: &Shared, entry: Entry<'_>) -> Result<HwExit> {
        dispatch!(self, v => v.enter(shared, entry))
    }
}
