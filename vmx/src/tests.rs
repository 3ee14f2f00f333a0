// SPDX-License-Identifier: GPL-2.0

//! Host tests for capability decoding, against recorded MSR values.

extern crate std;
use std::vec::Vec;

use crate::caps::{probe, Allowed, CpuInfo, Unavailable};
use vmm_x86::CR4_VMXE;
use crate::msr::*;
use vmm_uapi::Features;

/// A CPU described by tables of CPUID leaves and MSR values.
struct FakeCpu {
    leaf1_ecx: u32,
    msrs: Vec<(u32, u64)>,
    cr4: u64,
}

impl CpuInfo for FakeCpu {
    fn cpuid(&self, leaf: u32, _sub: u32) -> [u32; 4] {
        match leaf {
            0 => [0xd, 0, 0, 0],
            1 => [0, 0, self.leaf1_ecx, 0],
            7 => [0, 0, 0, 1 << 28],
            _ => [0; 4],
        }
    }
    fn rdmsr(&self, index: u32) -> Option<u64> {
        self.msrs.iter().find(|(i, _)| *i == index).map(|(_, v)| *v)
    }
    fn cr4(&self) -> u64 {
        self.cr4
    }
}

impl FakeCpu {
    fn set(&mut self, index: u32, value: u64) {
        self.msrs.retain(|(i, _)| *i != index);
        self.msrs.push((index, value));
    }
}

/// Capability MSRs as a Skylake server reports them (TRUE controls present).
fn skylake() -> FakeCpu {
    FakeCpu {
        leaf1_ecx: 1 << 5,
        cr4: 0x3706f0,
        msrs: std::vec![
            (IA32_FEATURE_CONTROL, 0x5),
            (IA32_VMX_BASIC, 0x00da_0400_0000_0004),
            (IA32_VMX_PINBASED_CTLS, 0x0000_00ff_0000_0016),
            (IA32_VMX_TRUE_PINBASED_CTLS, 0x0000_00ff_0000_0016),
            (IA32_VMX_PROCBASED_CTLS, 0xfff9_fffe_0401_e172),
            (IA32_VMX_TRUE_PROCBASED_CTLS, 0xfff9_fffe_0400_6172),
            (IA32_VMX_PROCBASED_CTLS2, 0x0053_7fff_0000_0000),
            (IA32_VMX_EXIT_CTLS, 0x01ff_ffff_0003_6dff),
            (IA32_VMX_TRUE_EXIT_CTLS, 0x01ff_ffff_0003_6dfb),
            (IA32_VMX_ENTRY_CTLS, 0x0003_ffff_0000_11ff),
            (IA32_VMX_TRUE_ENTRY_CTLS, 0x0003_ffff_0000_11fb),
            (IA32_VMX_MISC, 0x0000_0000_7004_c1e7),
            (IA32_VMX_EPT_VPID_CAP, 0x0000_0f01_0673_4141),
            (IA32_VMX_CR0_FIXED0, 0x8000_0021),
            (IA32_VMX_CR0_FIXED1, 0xffff_ffff),
            (IA32_VMX_CR4_FIXED0, 0x2000),
            (IA32_VMX_CR4_FIXED1, 0x0037_67ff),
        ],
    }
}

#[test]
fn skylake_is_accepted_with_its_features() {
    let caps = probe(&skylake()).expect("skylake runs vmm");
    assert_eq!(caps.revision(), 4);
    assert_eq!(caps.region_size(), 0x400);
    assert!(caps.has_true_ctls());
    // The TRUE pin-based value was used, not the plain one.
    assert_eq!(caps.proc.must_be_one, 0x0400_6172);
    let f = caps.features();
    for want in [
        Features::NESTED_PAGING,
        Features::TAGGED_TLB,
        Features::UNRESTRICTED_GUEST,
        Features::NPT_2M,
        Features::NPT_1G,
        Features::FLUSH_L1D,
        Features::VMX_TRUE_CTLS,
        Features::VMX_MSR_BITMAP,
        Features::VMX_TPR_SHADOW,
        Features::VMX_APIC_ACCESS,
        Features::VMX_X2APIC_MODE,
        Features::VMX_APIC_REG_VIRT,
        Features::VMX_VINTR_DELIVERY,
        Features::VMX_POSTED_INTR,
        Features::VMX_PREEMPT_TIMER,
        Features::VMX_EPT_AD,
        Features::VMX_INVEPT_SINGLE,
        Features::VMX_INVEPT_ALL,
        Features::VMX_INVVPID,
        Features::VMX_ACK_INTR_ON_EXIT,
    ] {
        assert!(f.contains(want), "missing {want:?}");
    }
    assert!(!f.contains(Features::VMX_EPT_5LEVEL));
    assert!(!f.intersects(Features::SVM_NRIPS | Features::HOST_LA57));
    assert_eq!(caps.raw[0], 0x00da_0400_0000_0004);
}

#[test]
fn no_vmx_in_cpuid() {
    let mut cpu = skylake();
    cpu.leaf1_ecx = 0;
    assert_eq!(probe(&cpu), Err(Unavailable::NoVmx));
}

#[test]
fn firmware_disabled_or_unlocked() {
    for fc in [0x0, 0x1, 0x3, 0x4] {
        let mut cpu = skylake();
        cpu.set(IA32_FEATURE_CONTROL, fc);
        assert_eq!(probe(&cpu), Err(Unavailable::DisabledByFirmware), "fc={fc:#x}");
    }
}

#[test]
fn owned_by_another_hypervisor() {
    let mut cpu = skylake();
    cpu.cr4 |= CR4_VMXE;
    assert_eq!(probe(&cpu), Err(Unavailable::InUse));
}

#[test]
fn faulting_msr_is_named() {
    let mut cpu = skylake();
    cpu.msrs.retain(|(i, _)| *i != IA32_VMX_MISC);
    assert_eq!(probe(&cpu), Err(Unavailable::MsrFault(IA32_VMX_MISC)));
}

#[test]
fn plain_controls_without_true_msrs() {
    let mut cpu = skylake();
    cpu.set(IA32_VMX_BASIC, 0x005a_0400_0000_0004);
    cpu.msrs.retain(|(i, _)| *i < IA32_VMX_TRUE_PINBASED_CTLS);
    let caps = probe(&cpu).expect("plain controls suffice");
    assert!(!caps.has_true_ctls());
    assert_eq!(caps.proc.must_be_one, 0x0401_e172);
}

#[test]
fn ept_is_required() {
    let mut cpu = skylake();
    cpu.set(IA32_VMX_PROCBASED_CTLS2, 0x0000_0001_0000_0000);
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));
    // Without secondary controls the EPT/VPID MSR is not even read.
    let mut cpu = skylake();
    cpu.set(IA32_VMX_TRUE_PROCBASED_CTLS, 0x7ff9_fffe_0400_6172);
    cpu.msrs.retain(|(i, _)| *i != IA32_VMX_EPT_VPID_CAP);
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));
}

#[test]
fn msr_bitmaps_are_required() {
    let mut cpu = skylake();
    cpu.set(IA32_VMX_TRUE_PROCBASED_CTLS, 0xeff9_fffe_0400_6172);
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(m)) if m.contains("MSR bitmaps")));
}

#[test]
fn resolve_controls() {
    // Must-be-one 0x16, may-be-one 0x7f.
    let a = Allowed::from_msr(0x0000_007f_0000_0016);
    assert_eq!(a.resolve(0x1, 0x0, 0x0), Ok(0x17));
    assert_eq!(a.resolve(0x0, 0xff, 0x0), Ok(0x7f));
    assert_eq!(a.resolve(0x80, 0, 0), Err(0x80));
    assert_eq!(a.resolve(0, 0x40, 0x40), Ok(0x16));
    assert_eq!(a.resolve(0, 0, 0x2), Err(0x2));
    assert!(a.allows(0x41));
    assert!(!a.allows(0x100));
}

#[test]
fn cr_fixed_bits() {
    let caps = probe(&skylake()).unwrap();
    // A 64-bit kernel: PE, NE, PG set; CR4 with VMXE.
    assert!(caps.cr_fixed_ok(0x8005_0033, 0x3706f0 | CR4_VMXE));
    // VMXE missing from CR4 (FIXED0 requires it).
    assert!(!caps.cr_fixed_ok(0x8005_0033, 0x3706f0));
    // CR0.NE clear.
    assert!(!caps.cr_fixed_ok(0x8005_0013, 0x3706f0 | CR4_VMXE));
    // A CR4 bit outside FIXED1 (bit 24 is not allowed by 0x3767ff).
    assert!(!caps.cr_fixed_ok(0x8005_0033, 0x3706f0 | CR4_VMXE | (1 << 24)));
}

#[test]
fn uapi_caps_carry_backend_and_raw_values() {
    let caps = probe(&skylake()).unwrap();
    let mut c = vmm_uapi::VmmCaps::ZERO;
    caps.fill_uapi(&mut c);
    assert_eq!(c.backend, vmm_uapi::Backend::Vmx as u32);
    assert_eq!(c.revision, 4);
    assert_eq!(c.raw[0], 0x00da_0400_0000_0004);
    assert_eq!(c.raw[2], 0xfff9_fffe_0400_6172);
    assert!(Features::from_bits_retain(c.features).contains(Features::NESTED_PAGING));
}

/// Bochs 2.7 `corei7_skylake_x`, as vmm.ko logged it under `make check`
/// (the TRUE controls; FIXED1 values were not logged and are typical ones).
fn bochs_skx() -> FakeCpu {
    let mut cpu = skylake();
    for (msr, value) in [
        (IA32_VMX_BASIC, 0x00d8_1000_0000_002b),
        (IA32_VMX_TRUE_PINBASED_CTLS, 0x0000_007f_0000_0016),
        (IA32_VMX_TRUE_PROCBASED_CTLS, 0xf7f9_fffe_0400_6172),
        (IA32_VMX_PROCBASED_CTLS2, 0x0217_7fff_0000_0000),
        (IA32_VMX_TRUE_EXIT_CTLS, 0x007f_ffff_0003_6dfb),
        (IA32_VMX_TRUE_ENTRY_CTLS, 0x0000_ffff_0000_11fb),
        (IA32_VMX_MISC, 0x6004_01e0),
        (IA32_VMX_EPT_VPID_CAP, 0x0000_0f01_0633_4141),
        (IA32_VMX_CR0_FIXED0, 0x8000_0021),
        (IA32_VMX_CR4_FIXED0, 0x2000),
    ] {
        cpu.set(msr, value);
    }
    cpu
}

#[test]
fn bochs_skylake_x_matches_testbed_facts() {
    let caps = probe(&bochs_skx()).expect("Bochs skx runs vmm");
    assert_eq!(caps.revision(), 0x2b);
    assert_eq!(caps.region_size(), 4096);
    let f = caps.features();
    // TESTBED.md: EPT (4-level, 2M/1G, A/D, INVEPT single and all), VPID,
    // unrestricted guest, APIC virtualization, x2APIC mode, APIC-register
    // virtualization, virtual-interrupt delivery, TPR shadow, MSR bitmaps,
    // ack-interrupt-on-exit, preemption timer, PLE, VMCS shadowing.
    for want in [
        Features::NESTED_PAGING,
        Features::NPT_2M,
        Features::NPT_1G,
        Features::VMX_EPT_AD,
        Features::VMX_INVEPT_SINGLE,
        Features::VMX_INVEPT_ALL,
        Features::TAGGED_TLB,
        Features::VMX_INVVPID,
        Features::UNRESTRICTED_GUEST,
        Features::VMX_APIC_ACCESS,
        Features::VMX_X2APIC_MODE,
        Features::VMX_APIC_REG_VIRT,
        Features::VMX_VINTR_DELIVERY,
        Features::VMX_TPR_SHADOW,
        Features::VMX_MSR_BITMAP,
        Features::VMX_ACK_INTR_ON_EXIT,
        Features::VMX_PREEMPT_TIMER,
        Features::VMX_PLE,
        Features::VMX_VMCS_SHADOW,
    ] {
        assert!(f.contains(want), "missing {want:?}");
    }
    // Posted interrupts are missing on every 2.7 model, MTF exists only on
    // icl/tgl, and there is no 5-level EPT.
    assert!(!f.contains(Features::VMX_POSTED_INTR));
    assert!(!f.contains(Features::VMX_MTF));
    assert!(!f.contains(Features::VMX_EPT_5LEVEL));
}

#[test]
fn refusal_kinds() {
    use vmm_x86::Refusal;
    assert_eq!(Unavailable::NoVmx.kind(), Refusal::Absent);
    assert_eq!(Unavailable::DisabledByFirmware.kind(), Refusal::DisabledByFirmware);
    assert_eq!(Unavailable::Missing("x").kind(), Refusal::Missing);
    assert!(Unavailable::InUse.describe().contains("CR4.VMXE"));
}
