// SPDX-License-Identifier: GPL-2.0

//! VMX capability reporting (SDM Vol. 3, Appendix A) and the load-time
//! decision: can this CPU run vmm, and with which features?
//!
//! Nothing here touches hardware. The glue reads MSRs and CPUID through the
//! [`CpuInfo`] trait and receives either [`VmxCaps`] or the reason to refuse.

#[cfg(kernel)]
use crate::{uapi, x86};
#[cfg(not(kernel))]
use {vmm_uapi as uapi, vmm_x86 as x86};

use uapi::Features;
pub use x86::CpuInfo;
use x86::{msr, regs::cr4};

pub use x86::Unavailable;

/// VT-x's words for a refusal.
pub const WORDING: x86::Wording = x86::Wording {
    absent: "CPU has no VT-x (CPUID.1:ECX.VMX clear)",
    disabled: "VT-x disabled by firmware (IA32_FEATURE_CONTROL locked)",
    in_use: "VT-x already in use by another hypervisor (CR4.VMXE set)",
    msr_fault: "a VMX capability MSR faulted",
};

/// A VMX control capability MSR (Appendix A.3-A.5): the low half holds the
/// bits that must be 1, the high half the bits that may be 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// Bits that must be set.
    pub must_be_one: u32,
    /// Bits that may be set.
    pub may_be_one: u32,
}

impl Allowed {
    /// Splits a capability MSR value.
    pub const fn from_msr(value: u64) -> Self {
        Self { must_be_one: value as u32, may_be_one: (value >> 32) as u32 }
    }

    /// Whether every bit of `bits` may be set.
    pub const fn allows(&self, bits: u32) -> bool {
        bits & !self.may_be_one == 0
    }

    /// Resolves a control word: all `required` bits, as many `optional` bits
    /// as the CPU allows, plus every must-be-one bit. Fails with the required
    /// bits the CPU cannot set, or the must-be-one bits that conflict with
    /// `forbidden` (bits the caller needs clear).
    pub const fn resolve(&self, required: u32, optional: u32, forbidden: u32) -> Result<u32, u32> {
        let missing = required & !self.may_be_one;
        if missing != 0 {
            return Err(missing);
        }
        let stuck = self.must_be_one & forbidden;
        if stuck != 0 {
            return Err(stuck);
        }
        Ok(self.must_be_one | required | (optional & self.may_be_one & !forbidden))
    }
}

bitflags::bitflags! {
    /// Pin-based VM-execution controls (the bits vmm names).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PinBased: u32 {
        /// External-interrupt exiting.
        const EXT_INTR_EXITING = 1 << 0;
        /// NMI exiting.
        const NMI_EXITING = 1 << 3;
        /// Virtual NMIs.
        const VIRTUAL_NMIS = 1 << 5;
        /// Activate VMX-preemption timer.
        const PREEMPT_TIMER = 1 << 6;
        /// Process posted interrupts.
        const POSTED_INTR = 1 << 7;
    }
}

bitflags::bitflags! {
    /// Primary processor-based VM-execution controls.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ProcBased: u32 {
        /// Interrupt-window exiting.
        const INTR_WINDOW = 1 << 2;
        /// Use TSC offsetting.
        const TSC_OFFSETTING = 1 << 3;
        /// HLT exiting.
        const HLT_EXITING = 1 << 7;
        /// INVLPG exiting.
        const INVLPG_EXITING = 1 << 9;
        /// MWAIT exiting.
        const MWAIT_EXITING = 1 << 10;
        /// RDPMC exiting.
        const RDPMC_EXITING = 1 << 11;
        /// RDTSC exiting.
        const RDTSC_EXITING = 1 << 12;
        /// CR3-load exiting.
        const CR3_LOAD = 1 << 15;
        /// CR3-store exiting.
        const CR3_STORE = 1 << 16;
        /// CR8-load exiting.
        const CR8_LOAD = 1 << 19;
        /// CR8-store exiting.
        const CR8_STORE = 1 << 20;
        /// Use TPR shadow.
        const TPR_SHADOW = 1 << 21;
        /// NMI-window exiting.
        const NMI_WINDOW = 1 << 22;
        /// MOV-DR exiting.
        const MOV_DR = 1 << 23;
        /// Unconditional I/O exiting.
        const UNCOND_IO = 1 << 24;
        /// Use I/O bitmaps.
        const IO_BITMAPS = 1 << 25;
        /// Monitor trap flag.
        const MTF = 1 << 27;
        /// Use MSR bitmaps.
        const MSR_BITMAPS = 1 << 28;
        /// MONITOR exiting.
        const MONITOR_EXITING = 1 << 29;
        /// PAUSE exiting.
        const PAUSE_EXITING = 1 << 30;
        /// Activate secondary controls.
        const SECONDARY = 1 << 31;
    }
}

bitflags::bitflags! {
    /// Secondary processor-based VM-execution controls.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ProcBased2: u32 {
        /// Virtualize APIC accesses.
        const APIC_ACCESS = 1 << 0;
        /// Enable EPT.
        const EPT = 1 << 1;
        /// Descriptor-table exiting.
        const DESC_TABLE = 1 << 2;
        /// Enable RDTSCP.
        const RDTSCP = 1 << 3;
        /// Enable VPID.
        const VPID = 1 << 5;
        /// Virtualize x2APIC mode.
        const X2APIC_MODE = 1 << 4;
        /// Unrestricted guest.
        const UNRESTRICTED_GUEST = 1 << 7;
        /// APIC-register virtualization.
        const APIC_REG_VIRT = 1 << 8;
        /// Virtual-interrupt delivery.
        const VINTR_DELIVERY = 1 << 9;
        /// PAUSE-loop exiting.
        const PLE = 1 << 10;
        /// WBINVD exiting.
        const WBINVD_EXITING = 1 << 6;
        /// Enable INVPCID.
        const INVPCID = 1 << 12;
        /// Enable VM functions.
        const VMFUNC = 1 << 13;
        /// VMCS shadowing.
        const VMCS_SHADOW = 1 << 14;
        /// Enable PML.
        const PML = 1 << 17;
        /// Enable XSAVES/XRSTORS.
        const XSAVES = 1 << 20;
    }
}

bitflags::bitflags! {
    /// VM-exit controls.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ExitCtls: u32 {
        /// Save debug controls (DR7, IA32_DEBUGCTL).
        const SAVE_DEBUG = 1 << 2;
        /// Host address-space size (64-bit host).
        const HOST_64 = 1 << 9;
        /// Load IA32_PERF_GLOBAL_CTRL.
        const LOAD_PERF_GLOBAL = 1 << 12;
        /// Acknowledge interrupt on exit.
        const ACK_INTR = 1 << 15;
        /// Save IA32_PAT.
        const SAVE_PAT = 1 << 18;
        /// Load IA32_PAT.
        const LOAD_PAT = 1 << 19;
        /// Save IA32_EFER.
        const SAVE_EFER = 1 << 20;
        /// Load IA32_EFER.
        const LOAD_EFER = 1 << 21;
    }
}

bitflags::bitflags! {
    /// VM-entry controls.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct EntryCtls: u32 {
        /// Load debug controls (DR7, IA32_DEBUGCTL).
        const LOAD_DEBUG = 1 << 2;
        /// IA-32e mode guest.
        const IA32E_GUEST = 1 << 9;
        /// Entry to SMM.
        const ENTRY_TO_SMM = 1 << 10;
        /// Deactivate dual-monitor treatment.
        const DEACTIVATE_DUAL_MONITOR = 1 << 11;
        /// Load IA32_PERF_GLOBAL_CTRL.
        const LOAD_PERF_GLOBAL = 1 << 13;
        /// Load IA32_PAT.
        const LOAD_PAT = 1 << 14;
        /// Load IA32_EFER.
        const LOAD_EFER = 1 << 15;
    }
}

bitflags::bitflags! {
    /// IA32_VMX_EPT_VPID_CAP (Appendix A.10).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct EptVpidCap: u64 {
        /// Page-walk length of 4.
        const WALK_4 = 1 << 6;
        /// Page-walk length of 5.
        const WALK_5 = 1 << 7;
        /// Write-back EPT paging structures.
        const WB = 1 << 14;
        /// 2 MiB EPT pages.
        const PAGE_2M = 1 << 16;
        /// 1 GiB EPT pages.
        const PAGE_1G = 1 << 17;
        /// INVEPT supported.
        const INVEPT = 1 << 20;
        /// Accessed and dirty flags.
        const AD = 1 << 21;
        /// Single-context INVEPT.
        const INVEPT_SINGLE = 1 << 25;
        /// All-context INVEPT.
        const INVEPT_ALL = 1 << 26;
        /// INVVPID supported.
        const INVVPID = 1 << 32;
        /// Single-context INVVPID.
        const INVVPID_SINGLE = 1 << 41;
        /// All-context INVVPID.
        const INVVPID_ALL = 1 << 42;
    }
}

/// IA32_FEATURE_CONTROL bits.
mod feature_control {
    pub(super) const LOCKED: u64 = 1 << 0;
    pub(super) const VMX_OUTSIDE_SMX: u64 = 1 << 2;
}

/// What the load-time probe found on a VMX CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxCaps {
    /// IA32_VMX_BASIC.
    pub basic: u64,
    /// Pin-based controls (TRUE variant when available).
    pub pin: Allowed,
    /// Primary processor-based controls (TRUE variant when available).
    pub proc: Allowed,
    /// Secondary processor-based controls (all-zero when unavailable).
    pub proc2: Allowed,
    /// Exit controls (TRUE variant when available).
    pub exit: Allowed,
    /// Entry controls (TRUE variant when available).
    pub entry: Allowed,
    /// IA32_VMX_MISC.
    pub misc: u64,
    /// IA32_VMX_EPT_VPID_CAP (zero when unavailable).
    pub ept_vpid: EptVpidCap,
    /// IA32_VMX_CR0_FIXED0 and FIXED1.
    pub cr0_fixed: [u64; 2],
    /// IA32_VMX_CR4_FIXED0 and FIXED1.
    pub cr4_fixed: [u64; 2],
    /// IA32_FLUSH_CMD exists (CPUID.7.0:EDX[28]).
    pub flush_l1d: bool,
    /// The raw value of each control MSR as read, in [`uapi::CAPS_RAW_VMX`] order.
    pub raw: [u64; 10],
}

impl VmxCaps {
    /// VMCS revision identifier (bits 30:0 of IA32_VMX_BASIC).
    pub const fn revision(&self) -> u32 {
        (self.basic & 0x7fff_ffff) as u32
    }

    /// Size of the VMXON region and VMCS, in bytes (bits 44:32).
    pub const fn region_size(&self) -> usize {
        ((self.basic >> 32) & 0x1fff) as usize
    }

    /// TRUE capability MSRs exist (bit 55).
    pub const fn has_true_ctls(&self) -> bool {
        self.basic & (1 << 55) != 0
    }

    /// VMX regions must lie below 4 GiB (bit 48).
    pub const fn regions_below_4g(&self) -> bool {
        self.basic & (1 << 48) != 0
    }

    /// Whether CR0 and CR4 satisfy the VMX fixed bits (Appendix A.7, A.8):
    /// every FIXED0 bit set, no bit outside FIXED1 set.
    pub const fn cr_fixed_ok(&self, cr0: u64, cr4: u64) -> bool {
        const fn ok(v: u64, f: [u64; 2]) -> bool {
            v & f[0] == f[0] && v & !f[1] == 0
        }
        ok(cr0, self.cr0_fixed) && ok(cr4, self.cr4_fixed)
    }

    /// Fills the VMX part of a `VMM_GET_CAPS` answer.
    pub fn fill_uapi(&self, c: &mut uapi::VmmCaps) {
        c.backend = uapi::Backend::Vmx as u32;
        c.revision = self.revision();
        c.nr_asids = 0;
        c.features |= self.features().bits();
        c.raw = self.raw;
    }

    fn proc2_allows(&self, bits: ProcBased2) -> bool {
        self.proc.allows(ProcBased::SECONDARY.bits()) && self.proc2.allows(bits.bits())
    }

    /// Features for `VMM_GET_CAPS`.
    pub fn features(&self) -> Features {
        let mut f = Features::empty();
        let mut set = |flag: Features, on: bool| f.set(flag, on);
        let ept = self.proc2_allows(ProcBased2::EPT) && self.ept_vpid.contains(EptVpidCap::WALK_4);
        set(Features::NESTED_PAGING, ept);
        set(Features::TAGGED_TLB, self.proc2_allows(ProcBased2::VPID));
        set(Features::UNRESTRICTED_GUEST, self.proc2_allows(ProcBased2::UNRESTRICTED_GUEST));
        set(Features::NPT_2M, ept && self.ept_vpid.contains(EptVpidCap::PAGE_2M));
        set(Features::NPT_1G, ept && self.ept_vpid.contains(EptVpidCap::PAGE_1G));
        set(Features::FLUSH_L1D, self.flush_l1d);
        set(Features::VMX_TRUE_CTLS, self.has_true_ctls());
        set(Features::VMX_MSR_BITMAP, self.proc.allows(ProcBased::MSR_BITMAPS.bits()));
        set(Features::VMX_TPR_SHADOW, self.proc.allows(ProcBased::TPR_SHADOW.bits()));
        set(Features::VMX_MTF, self.proc.allows(ProcBased::MTF.bits()));
        set(Features::VMX_APIC_ACCESS, self.proc2_allows(ProcBased2::APIC_ACCESS));
        set(Features::VMX_X2APIC_MODE, self.proc2_allows(ProcBased2::X2APIC_MODE));
        set(Features::VMX_APIC_REG_VIRT, self.proc2_allows(ProcBased2::APIC_REG_VIRT));
        set(Features::VMX_VINTR_DELIVERY, self.proc2_allows(ProcBased2::VINTR_DELIVERY));
        set(Features::VMX_PLE, self.proc2_allows(ProcBased2::PLE));
        set(Features::VMX_VMCS_SHADOW, self.proc2_allows(ProcBased2::VMCS_SHADOW));
        set(Features::VMX_POSTED_INTR, self.pin.allows(PinBased::POSTED_INTR.bits()));
        set(Features::VMX_PREEMPT_TIMER, self.pin.allows(PinBased::PREEMPT_TIMER.bits()));
        set(Features::VMX_ACK_INTR_ON_EXIT, self.exit.allows(ExitCtls::ACK_INTR.bits()));
        set(Features::VMX_EPT_AD, ept && self.ept_vpid.contains(EptVpidCap::AD));
        set(Features::VMX_EPT_5LEVEL, ept && self.ept_vpid.contains(EptVpidCap::WALK_5));
        let invept = self.ept_vpid.contains(EptVpidCap::INVEPT);
        set(
            Features::VMX_INVEPT_SINGLE,
            invept && self.ept_vpid.contains(EptVpidCap::INVEPT_SINGLE),
        );
        set(Features::VMX_INVEPT_ALL, invept && self.ept_vpid.contains(EptVpidCap::INVEPT_ALL));
        set(Features::VMX_INVVPID, self.ept_vpid.contains(EptVpidCap::INVVPID));
        f
    }
}

/// Decides whether vmm can use VMX on this CPU, reading what it needs
/// through `cpu`. Run on every CPU; they must agree (see [`VmxCaps`]' `Eq`).
///
/// Requirements: VMX enabled by firmware, not already owned, a 64-bit host
/// exit, EPT with 4-level walks and write-back paging structures, and MSR
/// bitmaps (vmm never traps every MSR).
pub fn probe(cpu: &impl CpuInfo) -> Result<VmxCaps, Unavailable> {
    const CPUID_1_ECX_VMX: u32 = 1 << 5;
    const CPUID_7_EDX_FLUSH_L1D: u32 = 1 << 28;

    if cpu.cpuid(1, 0)[2] & CPUID_1_ECX_VMX == 0 {
        return Err(Unavailable::Absent);
    }
    let read = |index| cpu.rdmsr(index).ok_or(Unavailable::MsrFault(index));
    let fc = read(msr::FEATURE_CONTROL)?;
    // An unlocked IA32_FEATURE_CONTROL is left to the kernel, which locks it
    // at boot on every CPU it enables VMX on; unlocked here means the kernel
    // decided against VMX.
    if fc & feature_control::LOCKED == 0 || fc & feature_control::VMX_OUTSIDE_SMX == 0 {
        return Err(Unavailable::DisabledByFirmware);
    }
    if cpu.cr4() & cr4::VMXE != 0 {
        return Err(Unavailable::InUse);
    }

    let basic = read(msr::VMX_BASIC)?;
    let true_ctls = basic & (1 << 55) != 0;
    let pick = |plain, tru| if true_ctls { tru } else { plain };
    let pin_raw = read(pick(msr::VMX_PINBASED_CTLS, msr::VMX_TRUE_PINBASED_CTLS))?;
    let proc_raw = read(pick(msr::VMX_PROCBASED_CTLS, msr::VMX_TRUE_PROCBASED_CTLS))?;
    let exit_raw = read(pick(msr::VMX_EXIT_CTLS, msr::VMX_TRUE_EXIT_CTLS))?;
    let entry_raw = read(pick(msr::VMX_ENTRY_CTLS, msr::VMX_TRUE_ENTRY_CTLS))?;
    let misc = read(msr::VMX_MISC)?;
    let proc = Allowed::from_msr(proc_raw);
    let has_secondary = proc.allows(ProcBased::SECONDARY.bits());
    let proc2_raw = if has_secondary { read(msr::VMX_PROCBASED_CTLS2)? } else { 0 };
    let proc2 = Allowed::from_msr(proc2_raw);
    // IA32_VMX_EPT_VPID_CAP exists only when EPT or VPID may be enabled.
    let ept_or_vpid = ProcBased2::EPT.union(ProcBased2::VPID).bits();
    let ept_raw = if has_secondary && proc2.may_be_one & ept_or_vpid != 0 {
        read(msr::VMX_EPT_VPID_CAP)?
    } else {
        0
    };
    let cr0_fixed = [read(msr::VMX_CR0_FIXED0)?, read(msr::VMX_CR0_FIXED1)?];
    let cr4_fixed = [read(msr::VMX_CR4_FIXED0)?, read(msr::VMX_CR4_FIXED1)?];
    let leaf7_edx = if cpu.cpuid(0, 0)[0] >= 7 { cpu.cpuid(7, 0)[3] } else { 0 };

    let caps = VmxCaps {
        basic,
        pin: Allowed::from_msr(pin_raw),
        proc,
        proc2,
        exit: Allowed::from_msr(exit_raw),
        entry: Allowed::from_msr(entry_raw),
        misc,
        ept_vpid: EptVpidCap::from_bits_retain(ept_raw),
        cr0_fixed,
        cr4_fixed,
        flush_l1d: leaf7_edx & CPUID_7_EDX_FLUSH_L1D != 0,
        raw: [
            basic,
            pin_raw,
            proc_raw,
            proc2_raw,
            exit_raw,
            entry_raw,
            misc,
            ept_raw,
            cr0_fixed[0],
            cr4_fixed[0],
        ],
    };

    if !caps.exit.allows(ExitCtls::HOST_64.bits()) {
        return Err(Unavailable::Missing("VT-x lacks the 64-bit host exit control"));
    }
    if !caps.proc.allows(ProcBased::MSR_BITMAPS.bits()) {
        return Err(Unavailable::Missing("VT-x lacks MSR bitmaps"));
    }
    let ept_ok = caps.proc2_allows(ProcBased2::EPT)
        && caps.ept_vpid.contains(EptVpidCap::WALK_4 | EptVpidCap::WB | EptVpidCap::INVEPT);
    if !ept_ok {
        return Err(Unavailable::Missing("VT-x lacks EPT (4-level, write-back, INVEPT)"));
    }
    if caps.region_size() == 0 || caps.region_size() > 4096 {
        return Err(Unavailable::Missing("VT-x reports a VMCS region size vmm cannot allocate"));
    }
    // Write-back VMCS memory (IA32_VMX_BASIC[53:50] = 6).
    if (caps.basic >> 50) & 0xf != 6 {
        return Err(Unavailable::Missing("VT-x wants a VMCS memory type other than write-back"));
    }
    super::controls::negotiate(&caps)?;
    Ok(caps)
}
