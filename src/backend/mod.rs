// SPDX-License-Identifier: GPL-2.0

//! The seam between common vCPU code and a hardware backend.
//!
//! [`Backend`] is chosen once, at load, from what the probe found: it
//! holds the vendor's per-CPU state and creates vCPUs. A vCPU of either
//! vendor is an [`AnyVcpu`], which owns the hardware view of one vCPU (a
//! VMCB, or a VMCS with its software copy) and does three things: it reads
//! and writes architectural registers, it injects events, and it enters
//! the guest once and says why it came back, in vendor-neutral terms
//! ([`HwExit`]). Everything else (which exits go to userspace, CPUID,
//! MSRs, port I/O, completions, kicks and signals) is common code in
//! `vcpu.rs`, which names no vendor type.
//!
//! - [`svm`]: AMD-V (VMCB, permission maps, ASIDs).
//! - [`vmx`]: VT-x (VMCS, bitmaps, VPIDs, EPT flushes).
//!
//! The backend knows nothing of VMs: an entry gets what it needs from the
//! VM through [`Entry`].

use kernel::{
    prelude::*,
    sync::{atomic::Atomic, Arc},
};

use crate::uapi::{access, reg, VmmSegDesc};
use crate::virt::Found;
use crate::vmspace::gen::Generation;
use crate::x86::{
    insn::Seg,
    msr::{DirectMsr, Gp},
    paging::canonical,
};

pub(crate) mod svm;
pub(crate) mod vmx;

/// The backend chosen at load, with its per-CPU state. Immutable.
pub(crate) enum Backend {
    /// AMD-V.
    Svm(Arc<svm::SvmCpus>),
    /// VT-x.
    Vmx(Arc<vmx::VmxCpus>),
}

/// The nested page-table format a backend walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NestedFormat {
    /// AMD nested page tables (the host's paging format and depth).
    Npt,
    /// Intel EPT (4 levels).
    Ept,
}

impl Backend {
    /// Builds the backend the probe found. `la57`: linear addresses are 57
    /// bits wide; `l1d_flush`: flush the L1D before every VT-x entry.
    pub(crate) fn new(found: Found, la57: bool, l1d_flush: bool) -> Result<Self> {
        Ok(match found {
            Found::Vmx { caps, regions } => {
                let cpus = vmx::VmxCpus::new(caps, regions, la57, l1d_flush)?;
                Self::Vmx(Arc::new(cpus, GFP_KERNEL)?)
            }
            Found::Svm { caps } => {
                let cpus = svm::SvmCpus::new(crate::hw::nr_cpu_ids(), &caps, la57)?;
                Self::Svm(Arc::new(cpus, GFP_KERNEL)?)
            }
        })
    }

    /// A vCPU in the architectural reset state.
    pub(crate) fn create_vcpu(&self) -> Result<AnyVcpu> {
        let mut v = match self {
            Self::Svm(cpus) => AnyVcpu::Svm(KBox::new(svm::SvmVcpu::new(cpus)?, GFP_KERNEL)?),
            Self::Vmx(cpus) => AnyVcpu::Vmx(KBox::new(vmx::VmxVcpu::new(cpus)?, GFP_KERNEL)?),
        };
        v.reset()?;
        Ok(v)
    }

    /// The nested page-table format of this backend.
    pub(crate) fn nested_format(&self) -> NestedFormat {
        match self {
            Self::Svm(_) => NestedFormat::Npt,
            Self::Vmx(_) => NestedFormat::Ept,
        }
    }
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
    /// #PF with `error`; CR2 must be set first.
    pub(crate) const fn page_fault(error: u32) -> Self {
        Self { vector: 14, error: Some(error) }
    }
}

/// What decides whether an event can be injected at the next entry.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Interruptibility {
    /// An event is queued already (one an exit interrupted, or an
    /// exception): nothing else can go in with it.
    pub(crate) event_queued: bool,
    /// RFLAGS.IF.
    pub(crate) if_set: bool,
    /// Blocking by STI or MOV SS.
    pub(crate) shadow: bool,
    /// An NMI handler has not returned yet (its IRET unblocks NMIs).
    pub(crate) nmi_blocked: bool,
}

impl Interruptibility {
    /// Whether an external interrupt can go in now.
    pub(crate) fn takes_interrupt(&self) -> bool {
        !self.event_queued && self.if_set && !self.shadow
    }

    /// Whether an NMI can go in now.
    pub(crate) fn takes_nmi(&self) -> bool {
        !self.event_queued && !self.nmi_blocked && !self.shadow
    }
}

/// Why the guest stopped, as common code needs to know it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HwExit {
    /// Nothing for common code to do (a host interrupt, NMI or SMI, or an
    /// event the backend re-injected or an instruction it completed).
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
    /// Address size of a string instruction, 2, 4 or 8, when the hardware
    /// decoded it.
    pub(crate) addr_size: Option<u8>,
    /// Segment of a string source, when the hardware decoded it.
    pub(crate) seg: Option<Seg>,
    /// RIP of the next instruction.
    pub(crate) next_rip: u64,
}

/// One vCPU's hardware state. `set` and `set_desc` are the ioctl paths and
/// validate what userspace gives them; the other setters take values that
/// common code or the guest already made valid.
pub(crate) trait VcpuHw {
    /// A register by `uapi::reg` id; `None` for an unknown id.
    fn get(&self, id: u32) -> Option<u64>;
    /// Writes a register after checking the value (`EINVAL`).
    fn set(&mut self, id: u32, value: u64) -> Result;
    /// A descriptor by id (`reg::ES` to `reg::IDTR`).
    fn get_desc(&self, id: u32) -> Option<VmmSegDesc>;
    /// Writes a descriptor after checking it (`EINVAL`).
    fn set_desc(&mut self, id: u32, d: &VmmSegDesc) -> Result;
    /// Moves RIP past a completed instruction to `rip`, which common code
    /// checked against the guest's mode, and ends any interrupt shadow
    /// (STI, MOV SS) the instruction was in.
    fn set_rip(&mut self, rip: u64);
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
    /// backend switches it).
    fn direct_msr(&self, msr: DirectMsr) -> u64;
    /// Writes a direct MSR, or refuses the value (the guest gets #GP).
    fn set_direct_msr(&mut self, msr: DirectMsr, value: u64) -> Result<(), Gp>;
    /// Whether events can be injected now.
    fn interruptibility(&self) -> Interruptibility;
    /// Delivers external interrupt `vector` at the next entry
    /// (`interruptibility` said it can go in).
    fn inject_interrupt(&mut self, vector: u8);
    /// Delivers an NMI at the next entry, and blocks NMIs until the
    /// guest's IRET.
    fn inject_nmi(&mut self);
    /// Asks for an exit as soon as the guest can take an interrupt (`irq`)
    /// or an NMI (`nmi`), or lowers its CR8 below priority class
    /// `tpr_class` (0: no such exit); `false` and 0 withdraw the requests.
    fn set_windows(&mut self, irq: bool, nmi: bool, tpr_class: u8);
    /// The task priority as the guest's CR8 holds it (bits 7:4; a backend
    /// may drop bits 3:0 that [`VcpuHw::set_tpr`] gave it).
    fn tpr(&self) -> u8;
    /// Sets the task priority that the guest's CR8 reads.
    fn set_tpr(&mut self, tpr: u8);
    /// Enters the guest once, on this CPU, and says why it came back.
    fn enter(&mut self, entry: Entry<'_>) -> Result<HwExit>;
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
    Svm(KBox<svm::SvmVcpu>),
    /// VT-x.
    Vmx(KBox<vmx::VmxVcpu>),
}

impl AnyVcpu {
    /// Puts the architectural reset state (SDM Vol 3, Table 10-1) into
    /// registers and descriptors, the same way on both backends.
    /// Through the ioctl setters, so the values pass the same checks.
    /// The state INIT puts a vCPU in (SDM Vol 3, Table 10-1): the reset
    /// state, with the general registers, CR2-CR4 and EFER cleared and the
    /// processor signature in EDX. PAT, the MTRRs and the FPU keep their
    /// values, as INIT keeps them. Any queued event is dropped.
    pub(crate) fn init(&mut self, signature: u64) -> Result {
        for id in reg::RAX..=reg::R15 {
            self.set(id, 0)?;
        }
        self.set(reg::RDX, signature)?;
        self.set(reg::CR4, 0)?;
        self.set(reg::CR3, 0)?;
        self.set(reg::CR2, 0)?;
        self.set_efer(0);
        self.set_windows(false, false, 0);
        self.clear_event();
        self.reset()
    }

    /// Drops an event queued for the next entry.
    fn clear_event(&mut self) {
        match self {
            AnyVcpu::Svm(v) => v.clear_event(),
            AnyVcpu::Vmx(v) => v.clear_event(),
        }
    }

    /// Starts an application processor at a SIPI's `vector`: real mode at
    /// CS = vector << 8, IP = 0.
    pub(crate) fn start_at(&mut self, vector: u8) -> Result {
        let sel = u64::from(vector) << 8;
        let d = VmmSegDesc {
            base: sel << 4,
            limit: 0xffff,
            access: crate::x86::reset::SEGMENTS[1].access,
        };
        self.set_desc(reg::CS, &d)?;
        self.set(reg::CS, sel)?;
        self.set_rip(0);
        Ok(())
    }

    fn reset(&mut self) -> Result {
        use crate::x86::reset;
        self.set_rip(reset::RIP);
        self.set(reg::RFLAGS, reset::RFLAGS)?;
        self.set(reg::CR0, reset::CR0)?;
        self.set(reg::DR6, reset::DR6)?;
        self.set(reg::DR7, reset::DR7)?;
        self.set_pat(reset::PAT);
        for (id, s) in (reg::ES..=reg::IDTR).zip(reset::SEGMENTS.iter()) {
            let d = VmmSegDesc { base: s.base, limit: s.limit, access: s.access };
            self.set_desc(id, &d)?;
            if id <= reg::TR {
                self.set(id, u64::from(s.selector))?;
            }
        }
        Ok(())
    }
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
    fn set_rip(&mut self, rip: u64) {
        dispatch!(self, v => v.set_rip(rip))
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
    fn direct_msr(&self, msr: DirectMsr) -> u64 {
        dispatch!(self, v => v.direct_msr(msr))
    }
    fn set_direct_msr(&mut self, msr: DirectMsr, value: u64) -> Result<(), Gp> {
        dispatch!(self, v => v.set_direct_msr(msr, value))
    }
    fn interruptibility(&self) -> Interruptibility {
        dispatch!(self, v => v.interruptibility())
    }
    fn inject_interrupt(&mut self, vector: u8) {
        dispatch!(self, v => v.inject_interrupt(vector))
    }
    fn inject_nmi(&mut self) {
        dispatch!(self, v => v.inject_nmi())
    }
    fn set_windows(&mut self, irq: bool, nmi: bool, tpr_class: u8) {
        dispatch!(self, v => v.set_windows(irq, nmi, tpr_class))
    }
    fn tpr(&self) -> u8 {
        dispatch!(self, v => v.tpr())
    }
    fn set_tpr(&mut self, tpr: u8) {
        dispatch!(self, v => v.set_tpr(tpr))
    }
    fn enter(&mut self, entry: Entry<'_>) -> Result<HwExit> {
        dispatch!(self, v => v.enter(entry))
    }
}
