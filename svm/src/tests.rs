// SPDX-License-Identifier: GPL-2.0

//! Host tests for SVM feature identification, against recorded CPUID values.

use crate::caps::{probe, CpuInfo, SvmFeatures, Unavailable, VM_CR_SVMDIS};
use vmm_uapi::Features;
use vmm_x86::{
    msr::{EFER as MSR_EFER, VM_CR as MSR_VM_CR},
    regs::efer::SVME as EFER_SVME,
};

struct FakeCpu {
    svm: bool,
    leaf_a: [u32; 4],
    vm_cr: Option<u64>,
    efer: u64,
}

impl CpuInfo for FakeCpu {
    fn cpuid(&self, leaf: u32, _sub: u32) -> [u32; 4] {
        match leaf {
            0x8000_0000 => [0x8000_0021, 0, 0, 0],
            0x8000_0001 => [0, 0, if self.svm { 1 << 2 } else { 0 }, 1 << 26],
            0x8000_000a => self.leaf_a,
            _ => [0; 4],
        }
    }
    fn rdmsr(&self, index: u32) -> Option<u64> {
        match index {
            MSR_VM_CR => self.vm_cr,
            MSR_EFER => Some(self.efer),
            _ => None,
        }
    }
    fn cr4(&self) -> u64 {
        0
    }
}

/// QEMU 10 TCG `-cpu max`, as TESTBED.md records: EDX 0x10010001, 16 ASIDs.
fn qemu_tcg() -> FakeCpu {
    FakeCpu { svm: true, leaf_a: [1, 16, 0, 0x1001_0001], vm_cr: Some(0), efer: 0xd01 }
}

#[test]
fn qemu_tcg_is_accepted_without_nrips_or_decode_assists() {
    let caps = probe(&qemu_tcg()).expect("TCG runs vmm");
    assert_eq!(caps.revision, 1);
    assert_eq!(caps.nr_asids, 16);
    assert!(caps.features.contains(SvmFeatures::NP | SvmFeatures::VGIF));
    let f = caps.features();
    assert!(f.contains(Features::NESTED_PAGING | Features::TAGGED_TLB | Features::SVM_VGIF));
    assert!(f.contains(Features::NPT_1G));
    for absent in [
        Features::SVM_NRIPS,
        Features::SVM_DECODE_ASSISTS,
        Features::SVM_VMCB_CLEAN,
        Features::SVM_FLUSH_BY_ASID,
        Features::SVM_AVIC,
        Features::SVM_X2AVIC,
        Features::SVM_PAUSE_FILTER,
        Features::SVM_LBRV,
    ] {
        assert!(!f.contains(absent), "{absent:?} should be absent on TCG");
    }
    assert!(!f.intersects(Features::VMX_EPT_AD | Features::VMX_TRUE_CTLS));
    assert_eq!(caps.raw, [1, 16, 0x1001_0001, 0]);
}

#[test]
fn a_full_featured_epyc() {
    let mut cpu = qemu_tcg();
    // NP..DecodeAssists (0-7), PauseFilter, AVIC, VGIF, x2AVIC.
    cpu.leaf_a = [1, 0x8000, 0, 0x0005_bcff];
    let f = probe(&cpu).unwrap().features();
    assert!(f.contains(
        Features::SVM_NRIPS
            | Features::SVM_DECODE_ASSISTS
            | Features::SVM_FLUSH_BY_ASID
            | Features::SVM_AVIC
            | Features::SVM_X2AVIC
    ));
}

#[test]
fn refusals() {
    let mut cpu = qemu_tcg();
    cpu.svm = false;
    assert_eq!(probe(&cpu), Err(Unavailable::Absent));

    let mut cpu = qemu_tcg();
    cpu.vm_cr = Some(VM_CR_SVMDIS | (1 << 3));
    assert_eq!(probe(&cpu), Err(Unavailable::DisabledByFirmware));

    let mut cpu = qemu_tcg();
    cpu.vm_cr = None;
    assert_eq!(probe(&cpu), Err(Unavailable::MsrFault(MSR_VM_CR)));

    let mut cpu = qemu_tcg();
    cpu.efer |= EFER_SVME;
    assert_eq!(probe(&cpu), Err(Unavailable::InUse));

    let mut cpu = qemu_tcg();
    cpu.leaf_a[3] &= !1;
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));

    let mut cpu = qemu_tcg();
    cpu.leaf_a[1] = 1;
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));
}

#[test]
fn uapi_caps_carry_backend_and_raw_values() {
    let caps = probe(&qemu_tcg()).unwrap();
    let mut c = vmm_uapi::VmmCaps::ZERO;
    caps.fill_uapi(&mut c);
    assert_eq!(c.backend, vmm_uapi::Backend::Svm as u32);
    assert_eq!((c.revision, c.nr_asids), (1, 16));
    assert_eq!(c.raw[..4], [1, 16, 0x1001_0001, 0]);
    assert_eq!(c.raw[4..], [0; 6]);
}

#[test]
fn refusal_kinds() {
    use vmm_x86::Refusal;
    assert_eq!(Unavailable::Absent.kind(), Refusal::Absent);
    assert_eq!(Unavailable::InUse.kind(), Refusal::InUse);
    assert_eq!(Unavailable::MsrFault(1).kind(), Refusal::Fault);
    let wording = Unavailable::DisabledByFirmware.describe(&crate::caps::WORDING);
    assert!(wording.contains("VM_CR.SVMDIS"));
}

#[test]
fn vmcb_exit_codes_and_intercepts() {
    use crate::exit::{ExitCode, Unknown};
    use crate::vmcb::{Intercept1, Intercept2, Vmcb};
    // The exits TESTBED.md saw a real VMRUN return under QEMU TCG.
    assert_eq!(ExitCode::try_from(0x81), Ok(ExitCode::Vmmcall));
    assert_eq!(ExitCode::try_from(0x78), Ok(ExitCode::Hlt));
    assert_eq!(ExitCode::try_from(0x400), Ok(ExitCode::Npf));
    assert_eq!(ExitCode::try_from(0x4e), Ok(ExitCode::Exception(14)));
    assert_eq!(ExitCode::try_from(0x13), Ok(ExitCode::CrWrite(3)));
    assert_eq!(ExitCode::try_from(u64::MAX), Ok(ExitCode::Invalid));
    assert_eq!(ExitCode::try_from(0x1234), Err(Unknown(0x1234)));
    // Intercept bits as the APM numbers them (word 3: bit 96 + n).
    assert_eq!(Intercept1::CPUID.bits(), 1 << 18);
    assert_eq!(Intercept1::HLT.bits(), 1 << 24);
    assert_eq!(Intercept1::IOIO_PROT.bits(), 1 << 27);
    assert_eq!(Intercept1::MSR_PROT.bits(), 1 << 28);
    assert_eq!(Intercept1::SHUTDOWN.bits(), 1 << 31);
    assert_eq!(Intercept2::VMRUN.bits(), 1);
    let mut vmcb = Vmcb::ZERO;
    vmcb.set_intercept1(Intercept1::HLT | Intercept1::SHUTDOWN);
    vmcb.set_intercept2(Intercept2::VMRUN | Intercept2::VMMCALL);
    assert_eq!(vmcb.control.intercepts, [0, 0, 0, 0x8100_0000, 0x3, 0]);
    assert_eq!(core::mem::align_of::<Vmcb>(), 4096);
}
