// SPDX-License-Identifier: GPL-2.0

//! Host tests for the MSR policy.

use super::*;
use crate::regs::efer;

/// CPUID 0x8000_0001 EDX with SYSCALL, NX, FFXSR and LM.
const AMD_EDX: u32 = 1 << 11 | 1 << 20 | 1 << 25 | 1 << 29;
/// The same on Intel, which has no FFXSR.
const INTEL_EDX: u32 = 1 << 11 | 1 << 20 | 1 << 29;

#[test]
fn efer_allowed_from_cpuid() {
    assert_eq!(efer_allowed(AMD_EDX), efer::SCE | efer::NXE | efer::FFXSR | efer::LME);
    assert_eq!(efer_allowed(INTEL_EDX), efer::SCE | efer::NXE | efer::LME);
    assert_eq!(efer_allowed(0), 0);
    // Nothing else, whatever CPUID claims.
    assert_eq!(efer_allowed(u32::MAX) & !EFER_GUEST_WRITABLE, 0);
}

#[test]
fn efer_writes() {
    let amd = efer_allowed(AMD_EDX);
    let intel = efer_allowed(INTEL_EDX);
    let active = efer::LME | efer::LMA | efer::SCE | efer::NXE;
    /// (old, new, CR0.PG, allowed, result)
    type Case = (u64, u64, bool, u64, Result<u64, Gp>);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (0, efer::SCE, false, intel, Ok(efer::SCE)),
        (0, efer::LME | efer::NXE, false, intel, Ok(efer::LME | efer::NXE)),
        (0, efer::FFXSR, false, amd, Ok(efer::FFXSR)),
        (0, efer::FFXSR, false, intel, Err(Gp)),
        (0, efer::NXE, false, 0, Err(Gp)),
        // Never allowed, even if the caller's mask says so.
        (0, efer::SVME, false, u64::MAX, Err(Gp)),
        (0, efer::LMSLE, false, u64::MAX, Err(Gp)),
        (0, efer::TCE, false, u64::MAX, Err(Gp)),
        (0, 1 << 1, false, u64::MAX, Err(Gp)),
        (0, 1 << 63, false, u64::MAX, Err(Gp)),
        // LMA is read-only: a written value is ignored, the old one kept.
        (0, efer::LMA | efer::SCE, false, intel, Ok(efer::SCE)),
        (active, active & !efer::LMA, true, intel, Ok(active)),
        (active, active & !efer::NXE, true, intel, Ok(active & !efer::NXE)),
        // LME may not change while paging is on.
        (active, active & !efer::LME, true, intel, Err(Gp)),
        (efer::SCE, efer::SCE | efer::LME, true, intel, Err(Gp)),
        (efer::SCE, efer::SCE | efer::LME, false, intel, Ok(efer::SCE | efer::LME)),
        (efer::LME, 0, false, intel, Ok(0)),
        // Same LME with paging on is fine.
        (efer::LME, efer::LME | efer::SCE, true, intel, Ok(efer::LME | efer::SCE)),
    ];
    for (i, &(old, new, pg, allowed, want)) in cases.iter().enumerate() {
        assert_eq!(efer_write_ok(old, new, pg, allowed), want, "case {i}");
    }
}

#[test]
fn pat_values() {
    // The reset value: WB, WT, UC-, UC, repeated.
    assert!(pat_valid(0x0007_0406_0007_0406));
    assert!(pat_valid(0));
    assert!(pat_valid(0x0706_0504_0100_0706));
    for bad in [2u64, 3, 8, 0x10, 0x80, 0xff] {
        for byte in 0..8 {
            let v = 0x0007_0406_0007_0406 & !(0xff << (8 * byte)) | bad << (8 * byte);
            assert!(!pat_valid(v), "{v:#x}");
        }
    }
}

#[test]
fn canonical_addresses() {
    for (v, la57, want) in [
        (0, false, true),
        (0x0000_7fff_ffff_ffff, false, true),
        (0x0000_8000_0000_0000, false, false),
        (0xffff_8000_0000_0000, false, true),
        (0xfff0_0000_0000_0000, false, false),
        (0x0000_8000_0000_0000, true, true),
        (0x00ff_ffff_ffff_ffff, true, true),
        (0x0100_0000_0000_0000, true, false),
        (0xff00_0000_0000_0000, true, true),
        (0xfe00_0000_0000_0000, true, false),
        (u64::MAX, false, true),
        (u64::MAX, true, true),
    ] {
        assert_eq!(canonical(v, la57), want, "{v:#x} la57={la57}");
    }
}

#[test]
fn mtrr_def_type_values() {
    for t in [0, 1, 4, 5, 6] {
        assert!(mtrr_def_type_valid(t));
        assert!(mtrr_def_type_valid(t | MTRR_DEF_TYPE_E | MTRR_DEF_TYPE_FE));
    }
    for t in [2, 3, 7, 8, 0xff] {
        assert!(!mtrr_def_type_valid(t | MTRR_DEF_TYPE_E), "type {t}");
    }
    for bit in [8, 9, 12, 32, 63] {
        assert!(!mtrr_def_type_valid(6 | 1 << bit), "bit {bit}");
    }
}

#[test]
fn mtrr_read_write() {
    let mut m = Mtrr::new(40);
    assert_eq!(m.read(MTRRCAP), Some(0x508));
    assert_eq!(m.write(MTRRCAP, 0x508), Err(Gp));
    // Reset state: all zeros.
    for msr in (0x200..=0x20f).chain([0x250, 0x258, 0x259]).chain(0x268..=0x26f).chain([0x2ff]) {
        assert!(is_mtrr(msr), "{msr:#x}");
        assert_eq!(m.read(msr), Some(0), "{msr:#x}");
    }
    // Each fixed MSR is its own register.
    let fixed = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f];
    for (i, msr) in fixed.into_iter().enumerate() {
        let v = 0x0606_0606_0606_0600 | [0, 1, 4, 5, 6][i % 5];
        assert_eq!(m.write(msr, v), Ok(()));
    }
    for (i, msr) in fixed.into_iter().enumerate() {
        assert_eq!(m.read(msr), Some(0x0606_0606_0606_0600 | [0, 1, 4, 5, 6][i % 5]));
    }
    assert_eq!(m.write(0x250, 0x0606_0606_0606_0602), Err(Gp));
    assert_eq!(m.write(0x26f, 0x0706_0606_0606_0606), Err(Gp));
    assert_eq!(m.read(0x250), Some(0x0606_0606_0606_0600));
    // Default type.
    assert_eq!(m.write(MTRR_DEF_TYPE, 0xc06), Ok(()));
    assert_eq!(m.read(MTRR_DEF_TYPE), Some(0xc06));
    assert_eq!(m.write(MTRR_DEF_TYPE, 0xc07), Err(Gp));
    assert_eq!(m.write(MTRR_DEF_TYPE, 0x1006), Err(Gp));
    assert_eq!(m.read(MTRR_DEF_TYPE), Some(0xc06));
}

#[test]
fn mtrr_variable_ranges() {
    let mut m = Mtrr::new(40);
    // 2 GiB of WB at 0, then UC at 0xc000_0000 for 1 GiB.
    assert_eq!(m.write(0x200, 0x0000_0006), Ok(()));
    assert_eq!(m.write(0x201, 0xff_8000_0000 | MTRR_PHYSMASK_V), Ok(()));
    assert_eq!(m.write(0x20e, 0xc000_0000), Ok(()));
    assert_eq!(m.write(0x20f, 0xff_c000_0800), Ok(()));
    assert_eq!(m.read(0x201), Some(0xff_8000_0800));
    assert_eq!(m.read(0x20e), Some(0xc000_0000));
    // PHYSBASE: bad type, bits 11:8, bits at and above M = 40.
    for bad in [0x1000_0002, 0x1000_0007, 0x1000_0106, 0x1000_0806, 1 << 40 | 6, 1 << 63 | 6] {
        assert_eq!(m.write(0x202, bad), Err(Gp), "{bad:#x}");
    }
    // PHYSMASK: bits 10:0, bits at and above M.
    for bad in [1, 0x400, 1 << 40, 1 << 52] {
        assert_eq!(m.write(0x203, 0xff_f000_0800 | bad), Err(Gp), "{bad:#x}");
    }
    assert_eq!(m.read(0x202), Some(0));
    assert_eq!(m.read(0x203), Some(0));
    // A wider guest accepts the higher bits.
    let mut wide = Mtrr::new(46);
    assert_eq!(wide.write(0x202, (1 << 45) | 6), Ok(()));
    assert_eq!(wide.write(0x203, 0x3fff_f000_0800), Ok(()));
    assert_eq!(wide.write(0x203, 0x7fff_f000_0800), Err(Gp));
    // MAXPHYADDR is clamped to 32..=52.
    let mut clamped = Mtrr::new(200);
    assert_eq!(clamped.write(0x203, 0xf_ffff_ffff_f800), Ok(()));
    assert_eq!(clamped.write(0x203, 1 << 52), Err(Gp));
    let mut tiny = Mtrr::new(0);
    assert_eq!(tiny.write(0x203, 0xffff_f800), Ok(()));
    assert_eq!(tiny.write(0x203, 1 << 32), Err(Gp));
}

#[test]
fn mtrr_rejects_other_msrs() {
    let mut m = Mtrr::new(40);
    for msr in [0x1ff, 0x210, 0x24f, 0x251, 0x257, 0x25a, 0x267, 0x270, 0x277, 0x2fe, 0x300, PAT] {
        assert!(!is_mtrr(msr), "{msr:#x}");
        assert_eq!(m.read(msr), None, "{msr:#x}");
        assert_eq!(m.write(msr, 0), Err(Gp), "{msr:#x}");
    }
}

#[test]
fn classification() {
    let kernel = [
        EFER,
        PAT,
        TSC,
        TSC_AUX,
        APIC_BASE,
        MISC_ENABLE,
        PLATFORM_ID,
        BIOS_SIGN_ID,
        MTRRCAP,
        MTRR_DEF_TYPE,
        0x200,
        0x20f,
        0x250,
        0x258,
        0x259,
        0x268,
        0x26f,
        // The local APIC's.
        0x6e0,
        0x800,
        0x830,
        0x8ff,
    ];
    let hardware = [
        FS_BASE,
        GS_BASE,
        KERNEL_GS_BASE,
        STAR,
        LSTAR,
        CSTAR,
        SFMASK,
        SYSENTER_CS,
        SYSENTER_ESP,
        SYSENTER_EIP,
    ];
    let user = [
        SPEC_CTRL,
        PRED_CMD,
        0,
        0x3a,
        0x10b,
        0x1d9,
        0x210,
        0x7ff,
        0x900,
        0xc000_0080 + 1000,
        0xc001_0015,
        0xc001_0114,
        u32::MAX,
    ];
    for msr in kernel {
        assert_eq!(classify(msr), MsrClass::Kernel, "{msr:#x}");
    }
    for msr in hardware {
        assert_eq!(classify(msr), MsrClass::Hardware, "{msr:#x}");
    }
    for msr in user {
        assert_eq!(classify(msr), MsrClass::User, "{msr:#x}");
    }
    // The constants are the architectural indices.
    assert_eq!((EFER, PAT, TSC, APIC_BASE, MISC_ENABLE), (0xc000_0080, 0x277, 0x10, 0x1b, 0x1a0));
    assert_eq!((SYSENTER_CS, SYSENTER_ESP, SYSENTER_EIP), (0x174, 0x175, 0x176));
    assert_eq!((STAR, LSTAR, CSTAR, SFMASK), (0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084));
    assert_eq!(
        (FS_BASE, GS_BASE, KERNEL_GS_BASE, TSC_AUX),
        (0xc000_0100, 0xc000_0101, 0xc000_0102, 0xc000_0103)
    );
}

#[test]
fn actions() {
    assert_eq!(MsrAction::from(Gp), MsrAction::Gp);
    assert_eq!(MsrAction::from(efer_write_ok(0, efer::SVME, false, u64::MAX)), MsrAction::Gp);
    assert_eq!(
        MsrAction::from(efer_write_ok(0, efer::SCE, false, efer::SCE)),
        MsrAction::Complete(efer::SCE)
    );
}

#[test]
fn host_msr_indices() {
    assert_eq!((FEATURE_CONTROL, FLUSH_CMD), (0x3a, 0x10b));
    assert_eq!((VM_CR, VM_HSAVE_PA), (0xc001_0114, 0xc001_0117));
    let vmx = [
        VMX_BASIC,
        VMX_PINBASED_CTLS,
        VMX_PROCBASED_CTLS,
        VMX_EXIT_CTLS,
        VMX_ENTRY_CTLS,
        VMX_MISC,
        VMX_CR0_FIXED0,
        VMX_CR0_FIXED1,
        VMX_CR4_FIXED0,
        VMX_CR4_FIXED1,
    ];
    assert_eq!(vmx, [0x480, 0x481, 0x482, 0x483, 0x484, 0x485, 0x486, 0x487, 0x488, 0x489]);
    let vmx2 = [
        VMX_PROCBASED_CTLS2,
        VMX_EPT_VPID_CAP,
        VMX_TRUE_PINBASED_CTLS,
        VMX_TRUE_PROCBASED_CTLS,
        VMX_TRUE_EXIT_CTLS,
        VMX_TRUE_ENTRY_CTLS,
    ];
    assert_eq!(vmx2, [0x48b, 0x48c, 0x48d, 0x48e, 0x48f, 0x490]);
}

#[test]
fn direct_msr_indices() {
    let want: [u32; 10] = [
        0xc000_0100,
        0xc000_0101,
        0xc000_0102,
        0xc000_0081,
        0xc000_0082,
        0xc000_0083,
        0xc000_0084,
        0x174,
        0x175,
        0x176,
    ];
    assert_eq!(DirectMsr::ALL.map(DirectMsr::index), want);
    for (i, m) in DirectMsr::ALL.into_iter().enumerate() {
        assert_eq!(m as usize, i);
        assert_eq!(DirectMsr::from_index(m.index()), Some(m));
        assert_eq!(classify(m.index()), MsrClass::Hardware);
    }
    assert_eq!(
        DirectMsr::SYSCALL,
        [DirectMsr::Star, DirectMsr::Lstar, DirectMsr::Cstar, DirectMsr::Sfmask]
    );
    assert_eq!(DirectMsr::SYSCALL.map(DirectMsr::index), [STAR, LSTAR, CSTAR, SFMASK]);
    for msr in [0, EFER, TSC_AUX, PAT, 0x173, 0x177, 0xc000_0080, 0xc000_0085, 0xc000_0103] {
        assert_eq!(DirectMsr::from_index(msr), None, "{msr:#x}");
    }
}

#[test]
fn direct_msr_values() {
    use DirectMsr::*;
    let addresses = [FsBase, GsBase, KernelGsBase, Lstar, Cstar, SysenterEsp, SysenterEip];
    for m in addresses {
        for la57 in [false, true] {
            for v in [0, 0x1000, 0x0000_7fff_ffff_ffff, 0xffff_8000_0000_0000, u64::MAX] {
                assert_eq!(m.accept(v, la57), Some(v), "{m:?} {v:#x}");
            }
            assert_eq!(m.accept(0x0100_0000_0000_0000, la57), None, "{m:?}");
            assert_eq!(m.accept(0x8000_0000_0000_0000, la57), None, "{m:?}");
        }
        // Canonical at 57 bits but not at 48.
        assert_eq!(m.accept(0x0000_8000_0000_0000, false), None, "{m:?}");
        assert_eq!(m.accept(0x0000_8000_0000_0000, true), Some(0x0000_8000_0000_0000));
        assert_eq!(m.accept(0xff00_0000_0000_0000, false), None, "{m:?}");
        assert_eq!(m.accept(0xff00_0000_0000_0000, true), Some(0xff00_0000_0000_0000));
    }
    for la57 in [false, true] {
        for v in [0, 0x0023_0010_0000_0000, 0x8000_0000_0000_0000, u64::MAX] {
            assert_eq!(Star.accept(v, la57), Some(v));
        }
        assert_eq!(Sfmask.accept(0x1234_5678_0004_7700, la57), Some(0x0004_7700));
        assert_eq!(Sfmask.accept(u64::MAX, la57), Some(0xffff_ffff));
        assert_eq!(SysenterCs.accept(0x1234_5678_9abc_0010, la57), Some(0x0010));
        assert_eq!(SysenterCs.accept(u64::MAX, la57), Some(0xffff));
    }
}
