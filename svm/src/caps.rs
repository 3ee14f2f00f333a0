// SPDX-License-Identifier: GPL-2.0

//! SVM feature identification (APM Vol. 2, 15.4 and CPUID Fn8000_000A) and
//! the load-time decision: can this CPU run vmm, and with which features?

#[cfg(kernel)]
use crate::{uapi, x86};
#[cfg(not(kernel))]
use {vmm_uapi as uapi, vmm_x86 as x86};

use uapi::Features;
pub use x86::CpuInfo;
use x86::{
    msr::{EFER, VM_CR},
    regs::efer::SVME,
};

/// VM_CR.SVMDIS: SVME cannot be set.
pub const VM_CR_SVMDIS: u64 = 1 << 4;

bitflags::bitflags! {
    /// CPUID Fn8000_000A EDX: SVM features.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SvmFeatures: u32 {
        /// Nested paging.
        const NP = 1 << 0;
        /// LBR virtualization.
        const LBRV = 1 << 1;
        /// SVM lock.
        const SVML = 1 << 2;
        /// Next-RIP save on #VMEXIT.
        const NRIPS = 1 << 3;
        /// MSR-based TSC rate control.
        const TSC_RATE = 1 << 4;
        /// VMCB clean bits.
        const VMCB_CLEAN = 1 << 5;
        /// Flush by ASID.
        const FLUSH_BY_ASID = 1 << 6;
        /// Decode assists.
        const DECODE_ASSISTS = 1 << 7;
        /// PAUSE intercept filter.
        const PAUSE_FILTER = 1 << 10;
        /// PAUSE filter threshold.
        const PAUSE_FILTER_THRESHOLD = 1 << 12;
        /// AVIC.
        const AVIC = 1 << 13;
        /// VMSAVE and VMLOAD virtualization.
        const V_VMSAVE_VMLOAD = 1 << 15;
        /// Virtual GIF.
        const VGIF = 1 << 16;
        /// x2AVIC.
        const X2AVIC = 1 << 18;
    }
}

pub use x86::Unavailable;

/// AMD-V's words for a refusal.
pub const WORDING: x86::Wording = x86::Wording {
    absent: "CPU has no AMD-V (CPUID 0x80000001 ECX.SVM clear)",
    disabled: "AMD-V disabled by firmware (VM_CR.SVMDIS set)",
    in_use: "AMD-V already in use by another hypervisor (EFER.SVME set)",
    msr_fault: "an SVM MSR faulted",
};

/// What the load-time probe found on an SVM CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvmCaps {
    /// SVM revision (Fn8000_000A EAX[7:0]).
    pub revision: u32,
    /// Number of ASIDs (Fn8000_000A EBX).
    pub nr_asids: u32,
    /// Feature bits (Fn8000_000A EDX), unknown bits kept.
    pub features: SvmFeatures,
    /// NPT maps 1 GiB pages (it follows the host's Fn8000_0001 EDX.Page1GB).
    pub npt_1g: bool,
    /// The raw words, in [`uapi::CAPS_RAW_SVM`] order.
    pub raw: [u64; 4],
}

impl SvmCaps {
    /// Fills the SVM part of a `VMM_GET_CAPS` answer.
    pub fn fill_uapi(&self, c: &mut uapi::VmmCaps) {
        c.backend = uapi::Backend::Svm as u32;
        c.revision = self.revision;
        c.nr_asids = self.nr_asids;
        c.features |= self.features().bits();
        let [a, b, d, vm_cr] = self.raw;
        c.raw = [a, b, d, vm_cr, 0, 0, 0, 0, 0, 0];
    }

    /// Features for `VMM_GET_CAPS`.
    pub fn features(&self) -> Features {
        let mut f = Features::empty();
        let has = |x: SvmFeatures| self.features.contains(x);
        let np = has(SvmFeatures::NP);
        let map = [
            // SVM runs real mode and unpaged protected mode natively once
            // nested paging backs guest-physical memory.
            (Features::NESTED_PAGING, np),
            (Features::UNRESTRICTED_GUEST, np),
            (Features::NPT_2M, np),
            (Features::NPT_1G, np && self.npt_1g),
            (Features::TAGGED_TLB, self.nr_asids > 1),
            (Features::SVM_NRIPS, has(SvmFeatures::NRIPS)),
            (Features::SVM_DECODE_ASSISTS, has(SvmFeatures::DECODE_ASSISTS)),
            (Features::SVM_VMCB_CLEAN, has(SvmFeatures::VMCB_CLEAN)),
            (Features::SVM_FLUSH_BY_ASID, has(SvmFeatures::FLUSH_BY_ASID)),
            (Features::SVM_AVIC, has(SvmFeatures::AVIC)),
            (Features::SVM_X2AVIC, has(SvmFeatures::X2AVIC)),
            (Features::SVM_VGIF, has(SvmFeatures::VGIF)),
            (Features::SVM_LBRV, has(SvmFeatures::LBRV)),
            (Features::SVM_PAUSE_FILTER, has(SvmFeatures::PAUSE_FILTER)),
            (Features::SVM_TSC_SCALE, has(SvmFeatures::TSC_RATE)),
            (Features::SVM_V_VMSAVE_VMLOAD, has(SvmFeatures::V_VMSAVE_VMLOAD)),
        ];
        for (flag, on) in map {
            f.set(flag, on);
        }
        f
    }
}

/// Decides whether vmm can use SVM on this CPU.
///
/// Requirements: SVM not disabled by firmware, not already owned, nested
/// paging, and at least one ASID besides the host's.
pub fn probe(cpu: &impl CpuInfo) -> Result<SvmCaps, Unavailable> {
    const CPUID_80000001_ECX_SVM: u32 = 1 << 2;
    const CPUID_80000001_EDX_PDPE1GB: u32 = 1 << 26;

    let max_ext = cpu.cpuid(0x8000_0000, 0)[0];
    if max_ext < 0x8000_000a || cpu.cpuid(0x8000_0001, 0)[2] & CPUID_80000001_ECX_SVM == 0 {
        return Err(Unavailable::Absent);
    }
    let vm_cr = cpu.rdmsr(VM_CR).ok_or(Unavailable::MsrFault(VM_CR))?;
    if vm_cr & VM_CR_SVMDIS != 0 {
        return Err(Unavailable::DisabledByFirmware);
    }
    let efer = cpu.rdmsr(EFER).ok_or(Unavailable::MsrFault(EFER))?;
    if efer & SVME != 0 {
        return Err(Unavailable::InUse);
    }
    let [eax, ebx, _, edx] = cpu.cpuid(0x8000_000a, 0);
    let caps = SvmCaps {
        revision: eax & 0xff,
        nr_asids: ebx,
        features: SvmFeatures::from_bits_retain(edx),
        npt_1g: cpu.cpuid(0x8000_0001, 0)[3] & CPUID_80000001_EDX_PDPE1GB != 0,
        raw: [u64::from(eax), u64::from(ebx), u64::from(edx), vm_cr],
    };
    if !caps.features.contains(SvmFeatures::NP) {
        return Err(Unavailable::Missing("AMD-V lacks nested paging"));
    }
    if caps.nr_asids < 2 {
        return Err(Unavailable::Missing("AMD-V reports no ASID for guests"));
    }
    Ok(caps)
}
