// SPDX-License-Identifier: GPL-2.0

//! Host tests for capability decoding, against recorded MSR values.

extern crate std;
use std::vec::Vec;

use crate::caps::{probe, Allowed, CpuInfo, Unavailable};
use vmm_uapi::Features;
use vmm_x86::{msr, regs::cr4};

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
            (msr::FEATURE_CONTROL, 0x5),
            (msr::VMX_BASIC, 0x00da_0400_0000_0004),
            (msr::VMX_PINBASED_CTLS, 0x0000_00ff_0000_0016),
            (msr::VMX_TRUE_PINBASED_CTLS, 0x0000_00ff_0000_0016),
            (msr::VMX_PROCBASED_CTLS, 0xfff9_fffe_0401_e172),
            (msr::VMX_TRUE_PROCBASED_CTLS, 0xfff9_fffe_0400_6172),
            (msr::VMX_PROCBASED_CTLS2, 0x0053_7fff_0000_0000),
            (msr::VMX_EXIT_CTLS, 0x01ff_ffff_0003_6dff),
            (msr::VMX_TRUE_EXIT_CTLS, 0x01ff_ffff_0003_6dfb),
            (msr::VMX_ENTRY_CTLS, 0x0003_ffff_0000_11ff),
            (msr::VMX_TRUE_ENTRY_CTLS, 0x0003_ffff_0000_11fb),
            (msr::VMX_MISC, 0x0000_0000_7004_c1e7),
            (msr::VMX_EPT_VPID_CAP, 0x0000_0f01_0673_4141),
            (msr::VMX_CR0_FIXED0, 0x8000_0021),
            (msr::VMX_CR0_FIXED1, 0xffff_ffff),
            (msr::VMX_CR4_FIXED0, 0x2000),
            (msr::VMX_CR4_FIXED1, 0x0037_67ff),
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
    assert_eq!(probe(&cpu), Err(Unavailable::Absent));
}

#[test]
fn firmware_disabled_or_unlocked() {
    for fc in [0x0, 0x1, 0x3, 0x4] {
        let mut cpu = skylake();
        cpu.set(msr::FEATURE_CONTROL, fc);
        assert_eq!(probe(&cpu), Err(Unavailable::DisabledByFirmware), "fc={fc:#x}");
    }
}

#[test]
fn owned_by_another_hypervisor() {
    let mut cpu = skylake();
    cpu.cr4 |= cr4::VMXE;
    assert_eq!(probe(&cpu), Err(Unavailable::InUse));
}

#[test]
fn faulting_msr_is_named() {
    let mut cpu = skylake();
    cpu.msrs.retain(|(i, _)| *i != msr::VMX_MISC);
    assert_eq!(probe(&cpu), Err(Unavailable::MsrFault(msr::VMX_MISC)));
}

#[test]
fn plain_controls_without_true_msrs() {
    let mut cpu = skylake();
    cpu.set(msr::VMX_BASIC, 0x005a_0400_0000_0004);
    cpu.msrs.retain(|(i, _)| *i < msr::VMX_TRUE_PINBASED_CTLS);
    // Plain controls suffice when their default-one bits are ones vmm can
    // live with (here: no forced CR3-load/store exiting).
    cpu.set(msr::VMX_PROCBASED_CTLS, 0xfff9_fffe_0400_6172);
    let caps = probe(&cpu).expect("plain controls suffice");
    assert!(!caps.has_true_ctls());
    assert_eq!(caps.proc.must_be_one, 0x0400_6172);
}

#[test]
fn ept_is_required() {
    let mut cpu = skylake();
    cpu.set(msr::VMX_PROCBASED_CTLS2, 0x0000_0001_0000_0000);
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));
    // Without secondary controls the EPT/VPID MSR is not even read.
    let mut cpu = skylake();
    cpu.set(msr::VMX_TRUE_PROCBASED_CTLS, 0x7ff9_fffe_0400_6172);
    cpu.msrs.retain(|(i, _)| *i != msr::VMX_EPT_VPID_CAP);
    assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));
}

#[test]
fn msr_bitmaps_are_required() {
    let mut cpu = skylake();
    cpu.set(msr::VMX_TRUE_PROCBASED_CTLS, 0xeff9_fffe_0400_6172);
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
    assert!(caps.cr_fixed_ok(0x8005_0033, 0x3706f0 | cr4::VMXE));
    // VMXE missing from CR4 (FIXED0 requires it).
    assert!(!caps.cr_fixed_ok(0x8005_0033, 0x3706f0));
    // CR0.NE clear.
    assert!(!caps.cr_fixed_ok(0x8005_0013, 0x3706f0 | cr4::VMXE));
    // A CR4 bit outside FIXED1 (bit 24 is not allowed by 0x3767ff).
    assert!(!caps.cr_fixed_ok(0x8005_0033, 0x3706f0 | cr4::VMXE | (1 << 24)));
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
        (msr::VMX_BASIC, 0x00d8_1000_0000_002b),
        (msr::VMX_TRUE_PINBASED_CTLS, 0x0000_007f_0000_0016),
        (msr::VMX_TRUE_PROCBASED_CTLS, 0xf7f9_fffe_0400_6172),
        (msr::VMX_PROCBASED_CTLS2, 0x0217_7fff_0000_0000),
        (msr::VMX_TRUE_EXIT_CTLS, 0x007f_ffff_0003_6dfb),
        (msr::VMX_TRUE_ENTRY_CTLS, 0x0000_ffff_0000_11fb),
        (msr::VMX_MISC, 0x6004_01e0),
        (msr::VMX_EPT_VPID_CAP, 0x0000_0f01_0633_4141),
        (msr::VMX_CR0_FIXED0, 0x8000_0021),
        (msr::VMX_CR4_FIXED0, 0x2000),
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
    assert_eq!(Unavailable::Absent.kind(), Refusal::Absent);
    assert_eq!(Unavailable::DisabledByFirmware.kind(), Refusal::DisabledByFirmware);
    assert_eq!(Unavailable::Missing("x").kind(), Refusal::Missing);
    assert!(Unavailable::InUse.describe(&crate::caps::WORDING).contains("CR4.VMXE"));
}

mod negotiation {
    use super::*;
    use crate::caps::{EntryCtls, ExitCtls, PinBased, ProcBased, ProcBased2};
    use crate::controls::negotiate;

    #[test]
    fn bochs_skx_controls() {
        let caps = probe(&bochs_skx()).expect("Bochs skx runs vmm");
        assert_eq!(caps.revision(), 0x2b);
        assert_eq!(caps.region_size(), 4096);
        let c = negotiate(&caps).unwrap();
        // Must-be-one bits of the TRUE MSRs are kept, CR3 exiting is not.
        assert_eq!(
            c.pin.bits(),
            0x16 | 1 | 8 | PinBased::VIRTUAL_NMIS.bits() | PinBased::PREEMPT_TIMER.bits()
        );
        assert!(c.preemption_timer());
        assert!(c.virtual_nmis());
        assert_eq!(crate::controls::Controls::time_slice(caps.misc), 1 << 22);
        assert_eq!(crate::controls::Controls::time_slice(0x7004_c1e5), 1 << 17);
        assert_eq!(c.proc.bits() & 0x0400_6172, 0x0400_6172);
        assert!(!c.proc.intersects(ProcBased::CR3_LOAD | ProcBased::CR3_STORE | ProcBased::MOV_DR));
        assert!(c.proc.contains(
            ProcBased::HLT_EXITING
                | ProcBased::IO_BITMAPS
                | ProcBased::MSR_BITMAPS
                | ProcBased::SECONDARY
                | ProcBased::TPR_SHADOW
                | ProcBased::TSC_OFFSETTING
        ));
        assert_eq!(
            c.proc2,
            ProcBased2::EPT
                | ProcBased2::VPID
                | ProcBased2::UNRESTRICTED_GUEST
                | ProcBased2::RDTSCP
                | ProcBased2::INVPCID
        );
        assert!(c.unrestricted_guest() && c.vpid());
        assert_eq!(c.exit.bits() & 0x36dfb, 0x36dfb);
        assert!(c.exit.contains(
            ExitCtls::HOST_64 | ExitCtls::LOAD_EFER | ExitCtls::SAVE_EFER | ExitCtls::LOAD_PAT
        ));
        assert!(!c.exit.contains(ExitCtls::ACK_INTR));
        assert_eq!(
            c.entry.bits(),
            0x11fb | EntryCtls::LOAD_EFER.bits() | EntryCtls::LOAD_PAT.bits()
        );
        assert!(!c.entry.contains(EntryCtls::IA32E_GUEST));
        // Every word lies within what the CPU allows.
        assert!(caps.pin.allows(c.pin.bits()) && caps.proc.allows(c.proc.bits()));
        assert!(caps.proc2.allows(c.proc2.bits()) && caps.exit.allows(c.exit.bits()));
        assert!(caps.entry.allows(c.entry.bits()));
        let _ = PinBased::empty();
    }

    #[test]
    fn skylake_server_controls() {
        let caps = probe(&skylake()).unwrap();
        let c = negotiate(&caps).unwrap();
        assert!(c.unrestricted_guest() && c.vpid());
        assert!(!c.proc.intersects(ProcBased::CR3_LOAD | ProcBased::CR3_STORE));
    }

    #[test]
    fn plain_controls_keep_default_one_bits() {
        // Without TRUE controls the plain MSRs force CR3-load/store exiting
        // (default1 bits): negotiation fails rather than run with them,
        // because vmm forbids them.
        let mut cpu = skylake();
        cpu.set(msr::VMX_BASIC, 0x00da_0400_0000_0004 & !(1 << 55));
        assert_eq!(probe(&cpu).map(|_| ()), Err(Unavailable::Missing(
            "VT-x lacks a required primary control (HLT, I/O or MSR bitmaps, TPR shadow, TSC offsetting, MWAIT, MONITOR or RDPMC exiting)"
        )));
    }

    #[test]
    fn optional_features_drop_out() {
        let mut cpu = bochs_skx();
        // No unrestricted guest, no VPID.
        cpu.set(msr::VMX_PROCBASED_CTLS2, 0x0217_7fff_0000_0000 & !((1 << 7 | 1 << 5) << 32));
        let c = negotiate(&probe(&cpu).unwrap()).unwrap();
        assert!(!c.unrestricted_guest() && !c.vpid());
        assert!(c.proc2.contains(ProcBased2::EPT));
    }

    #[test]
    fn missing_requirements_are_named() {
        for (index, clear, what) in [
            (msr::VMX_TRUE_PINBASED_CTLS, 1u64 << 35, "NMI exiting"),
            (msr::VMX_TRUE_PROCBASED_CTLS, 1 << (21 + 32), "TPR shadow"),
            (msr::VMX_TRUE_EXIT_CTLS, 1 << (19 + 32), "PAT"),
            (msr::VMX_TRUE_ENTRY_CTLS, 1 << (14 + 32), "PAT"),
        ] {
            let mut cpu = bochs_skx();
            let v = cpu.rdmsr(index).unwrap();
            cpu.set(index, v & !clear);
            match probe(&cpu) {
                Err(Unavailable::Missing(why)) => assert!(why.contains(what), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        // A must-be-one bit vmm forbids (ACK_INTR forced on).
        let mut cpu = bochs_skx();
        cpu.set(msr::VMX_TRUE_EXIT_CTLS, 0x007f_ffff_0003_6dfb | (1 << 15));
        assert!(matches!(probe(&cpu), Err(Unavailable::Missing(_))));
    }
}

mod vmcs_fields {
    use super::Vec;
    use crate::vmcs::*;

    #[test]
    fn encodings_carry_their_width() {
        assert_eq!(GUEST_RIP.encoding(), 0x681e);
        assert_eq!(EPT_POINTER.encoding(), 0x201a);
        assert_eq!(EXIT_REASON.encoding(), 0x4402);
        assert_eq!(VPID.encoding(), 0);
        for s in GUEST_SEGMENTS {
            assert_eq!((s.base.encoding() >> 13) & 3, 3);
            assert_eq!((s.limit.encoding() >> 13) & 3, 2);
        }
    }

    #[test]
    fn access_rights_round_trip() {
        // 64-bit code, present, DPL 0.
        assert_eq!(ar_from_access(0xa09b), 0xa09b);
        // Not present is unusable, and reads back as unusable.
        assert_eq!(ar_from_access(0x0003), 0x1_0003);
        assert_eq!(access_from_ar(0x1_c093), 0x1_c013);
        assert_eq!(access_from_ar(0xc093), 0xc093);
    }

    struct Table(Vec<(u32, u64)>);
    impl Vmcs for Table {
        fn vmread(&self, e: u32) -> u64 {
            self.0.iter().find(|(k, _)| *k == e).map_or(0, |(_, v)| *v)
        }
        fn vmwrite(&mut self, e: u32, v: u64) {
            self.0.retain(|(k, _)| *k != e);
            self.0.push((e, v));
        }
    }

    #[test]
    fn typed_access() {
        let mut t = Table(Vec::new());
        t.write(GUEST_CS_SELECTOR, 0x10u16);
        t.write(GUEST_CS_LIMIT, u32::MAX);
        t.write(GUEST_IA32_EFER, 0xd01u64);
        let sel: u16 = t.read(GUEST_CS_SELECTOR);
        let lim: u32 = t.read(GUEST_CS_LIMIT);
        assert_eq!((sel, lim, t.read(GUEST_IA32_EFER)), (0x10, u32::MAX, 0xd01));
        // A 32-bit field narrows what the table holds.
        t.vmwrite(EXIT_REASON.encoding(), 0x1_0000_0030);
        assert_eq!(t.read(EXIT_REASON), 0x30);
    }
}
