// SPDX-License-Identifier: GPL-2.0

//! Architectural x86 definitions that both backends and the glue share:
//! control-register and EFER bits, common MSR indices, and CPU
//! identification through the [`CpuInfo`] trait.
//!
//! - [`regs`]: the bits of CR0, CR4, EFER and RFLAGS, and their validity
//!   checks.
//! - [`reset`]: the architectural state after RESET.
//! - [`paging`]: guest linear-to-physical translation through the guest's
//!   own page tables, with #PF error codes and A/D updates.
//! - [`insn`]: the CPU modes and segment registers instruction decoding
//!   works with. The decoder is `emul::decode` (`emul/`).
//! - [`cpuid`]: the guest's default CPUID answers and userspace tables.
//! - [`msr`]: which guest MSRs the kernel handles, and their rules.
//!
//! It exists so that `vmx/` and `svm/` do not each carry a copy. The kernel
//! module compiles this file in as its `x86` module.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

pub mod cpuid;
pub mod insn;
pub mod msr;
pub mod paging;
pub mod regs;
pub mod reset;

/// What pure code may ask about the CPU it runs on. The glue implements it
/// with CPUID, `rdmsr` under an exception fixup, and a live CR4 read; tests
/// implement it with tables.
pub trait CpuInfo {
    /// CPUID leaf `leaf`, sub-leaf `sub`, as `[eax, ebx, ecx, edx]`.
    fn cpuid(&self, leaf: u32, sub: u32) -> [u32; 4];
    /// The MSR's value, or `None` when reading it faults.
    fn rdmsr(&self, index: u32) -> Option<u64>;
    /// The live CR4 register (not the kernel's shadow of it).
    fn cr4(&self) -> u64;
}

/// Why a backend cannot be used, in vendor-neutral terms (each backend's
/// `Unavailable` says the vendor-specific detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The CPU does not have the virtualization extension.
    Absent,
    /// Firmware disabled it.
    DisabledByFirmware,
    /// Another hypervisor has it enabled.
    InUse,
    /// Reading a capability faulted.
    Fault,
    /// A feature vmm requires is missing.
    Missing,
}

/// Why vmm cannot use this CPU's virtualization extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// CPUID says the extension is absent.
    Absent,
    /// Firmware disabled it.
    DisabledByFirmware,
    /// Another hypervisor (KVM, say) has it enabled.
    InUse,
    /// A capability MSR could not be read.
    MsrFault(u32),
    /// The CPU lacks a feature vmm requires.
    Missing(&'static str),
}

/// A vendor's words for the refusals that name its registers.
#[derive(Clone, Copy, Debug)]
pub struct Wording {
    /// For [`Unavailable::Absent`].
    pub absent: &'static str,
    /// For [`Unavailable::DisabledByFirmware`].
    pub disabled: &'static str,
    /// For [`Unavailable::InUse`].
    pub in_use: &'static str,
    /// For [`Unavailable::MsrFault`].
    pub msr_fault: &'static str,
}

impl Unavailable {
    /// The vendor-neutral kind of refusal.
    pub fn kind(&self) -> Refusal {
        match self {
            Self::Absent => Refusal::Absent,
            Self::DisabledByFirmware => Refusal::DisabledByFirmware,
            Self::InUse => Refusal::InUse,
            Self::MsrFault(_) => Refusal::Fault,
            Self::Missing(_) => Refusal::Missing,
        }
    }

    /// One line for the kernel log, in `words`.
    pub fn describe(&self, words: &Wording) -> &'static str {
        match self {
            Self::Absent => words.absent,
            Self::DisabledByFirmware => words.disabled,
            Self::InUse => words.in_use,
            Self::MsrFault(_) => words.msr_fault,
            Self::Missing(what) => what,
        }
    }
}

/// The CPU vendors whose virtualization vmm drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// GenuineIntel: VT-x.
    Intel,
    /// AuthenticAMD or HygonGenuine: AMD-V.
    Amd,
    /// Anything else.
    Other,
}

impl Vendor {
    /// Reads the vendor string from CPUID leaf 0.
    pub fn detect(cpu: &impl CpuInfo) -> Self {
        let [_, ebx, ecx, edx] = cpu.cpuid(0, 0);
        let mut id = [0u8; 12];
        id[0..4].copy_from_slice(&ebx.to_le_bytes());
        id[4..8].copy_from_slice(&edx.to_le_bytes());
        id[8..12].copy_from_slice(&ecx.to_le_bytes());
        match &id {
            b"GenuineIntel" => Self::Intel,
            b"AuthenticAMD" | b"HygonGenuine" => Self::Amd,
            _ => Self::Other,
        }
    }
}

/// Physical-address width in bits (CPUID 0x80000008 EAX[7:0]; 36 when the
/// leaf is absent, as the SDM specifies).
pub fn phys_addr_bits(cpu: &impl CpuInfo) -> u32 {
    if cpu.cpuid(0x8000_0000, 0)[0] >= 0x8000_0008 {
        cpu.cpuid(0x8000_0008, 0)[0] & 0xff
    } else {
        36
    }
}

/// Paging levels the host runs with: 5 when CR4.LA57 is set, else 4.
pub fn host_paging_levels(cpu: &impl CpuInfo) -> u32 {
    if cpu.cr4() & regs::cr4::LA57 != 0 {
        5
    } else {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cpu([u32; 4], u64);
    impl CpuInfo for Cpu {
        fn cpuid(&self, leaf: u32, _: u32) -> [u32; 4] {
            match leaf {
                0 => self.0,
                0x8000_0000 => [0x8000_0008, 0, 0, 0],
                0x8000_0008 => [0x3030, 0, 0, 0],
                _ => [0; 4],
            }
        }
        fn rdmsr(&self, _: u32) -> Option<u64> {
            None
        }
        fn cr4(&self) -> u64 {
            self.1
        }
    }

    fn regs(s: &[u8; 12]) -> [u32; 4] {
        let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        [0xd, w(0), w(8), w(4)]
    }

    #[test]
    fn vendors() {
        assert_eq!(Vendor::detect(&Cpu(regs(b"GenuineIntel"), 0)), Vendor::Intel);
        assert_eq!(Vendor::detect(&Cpu(regs(b"AuthenticAMD"), 0)), Vendor::Amd);
        assert_eq!(Vendor::detect(&Cpu(regs(b"HygonGenuine"), 0)), Vendor::Amd);
        assert_eq!(Vendor::detect(&Cpu(regs(b"CentaurHauls"), 0)), Vendor::Other);
    }

    #[test]
    fn widths_and_levels() {
        let cpu = Cpu(regs(b"AuthenticAMD"), super::regs::cr4::LA57);
        assert_eq!(phys_addr_bits(&cpu), 0x30);
        assert_eq!(host_paging_levels(&cpu), 5);
        assert_eq!(host_paging_levels(&Cpu([0; 4], 0)), 4);
    }
}
