// SPDX-License-Identifier: GPL-2.0

//! Host tests for the CPUID policy, against a fake host modelled on QEMU
//! TCG `-cpu max` (AuthenticAMD, family 6 model 6), with the feature
//! registers that need filtering set to all ones, and with the bits TCG
//! lacks but real hosts have (VMX, SMX, debug store, thermal, AMX, ...)
//! switched on so that the tests see them hidden.

extern crate std;
use std::vec::Vec;

use super::*;

/// A host answering from a table: `(leaf, Some(sub))` matches one sub-leaf,
/// `(leaf, None)` any; anything else answers zeros.
struct Host(Vec<((u32, Option<u32>), Regs)>);

impl CpuInfo for Host {
    fn cpuid(&self, leaf: u32, sub: u32) -> [u32; 4] {
        self.0
            .iter()
            .find(|((l, s), _)| *l == leaf && s.is_none_or(|s| s == sub))
            .map_or([0; 4], |(_, r)| *r)
    }
    fn rdmsr(&self, _: u32) -> Option<u64> {
        None
    }
    fn cr4(&self) -> u64 {
        0
    }
}

impl Host {
    fn set(&mut self, leaf: u32, sub: Option<u32>, regs: Regs) {
        self.0.retain(|(k, _)| *k != (leaf, sub));
        self.0.insert(0, ((leaf, sub), regs));
    }
}

/// Four little-endian words of `s`, zero-padded.
fn words(s: &[u8]) -> [u32; 4] {
    let mut b = [0u8; 16];
    b[..s.len()].copy_from_slice(s);
    [0, 4, 8, 12].map(|i| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

const ONES: u32 = u32::MAX;
/// XCR0 components the fake host supports: x87, SSE, AVX, AVX-512 (5-7),
/// PKRU (9), AMX (17, 18).
const HOST_XCR0: u32 = 0b110_0000_0010_1110_0111;

#[rustfmt::skip]
fn tcg_max() -> Host {
    let [a, b, c, _] = words(b"AuthenticAMD");
    let brand = words(b"QEMU TCG CPU ver");
    Host(Vec::from([
        ((0, None), [0x1f, a, c, b]),
        // APIC id 1, 2 logical, CLFLUSH 64 bytes.
        ((1, None), [0x663, 0x0102_0800, 0x7ffe_fbff, 0xbfeb_fbff]),
        ((2, None), [1, 0, 0, 0x002c_307d]),
        ((3, None), [0, 0, 0x1234, 0x5678]),
        // L1d, L1i, L2, L3; 8 cores; L3 shared by 16 threads.
        ((4, Some(0)), [0x1c00_4121, 0x01c0_003f, 0x3f, 1]),
        ((4, Some(1)), [0x1c00_4122, 0x01c0_003f, 0x3f, 1]),
        ((4, Some(2)), [0x1c00_4143, 0x03c0_003f, 0x3ff, 1]),
        ((4, Some(3)), [0x1c03_c163, 0x03c0_003f, 0x3fff, 6]),
        ((5, None), [0x40, 0x40, 3, 0x1114_2120]),
        ((6, None), [4, 0, 1, 0]),
        ((7, Some(0)), [2, ONES, ONES, ONES]),
        ((7, Some(1)), [ONES, ONES, ONES, ONES]),
        ((7, Some(2)), [0, 0, 0, 0x3f]),
        ((0xa, None), [0x0730_0805, 0, 0, 0x603]),
        ((0xb, Some(0)), [0, 1, 0x100, 1]),
        ((0xb, Some(1)), [4, 16, 0x201, 1]),
        ((0xd, Some(0)), [HOST_XCR0, 0x2b00, 0x2b00, 0]),
        ((0xd, Some(1)), [0x1f, 0x2b80, 0x1900, 0]),
        ((0xd, Some(2)), [256, 576, 0, 0]),
        ((0xd, Some(5)), [64, 1088, 0, 0]),
        ((0xd, Some(6)), [512, 1152, 0, 0]),
        ((0xd, Some(7)), [1024, 1664, 0, 0]),
        ((0xd, Some(8)), [128, 0, 1, 0]),
        ((0xd, Some(9)), [8, 2688, 0, 0]),
        ((0xd, Some(11)), [16, 0, 1, 0]),
        ((0xd, Some(12)), [24, 0, 1, 0]),
        ((0xd, Some(17)), [64, 2752, 2, 0]),
        ((0xd, Some(18)), [8192, 2816, 6, 0]),
        ((0x12, None), [1, 0, 0, 0]),
        ((0x14, None), [1, 0xf, 7, 0]),
        ((0x15, None), [2, 0x1a6, 0x016e_3600, 0]),
        ((0x16, None), [0xbb8, 0xfa0, 0x64, 0]),
        ((0x1f, None), [1, 1, 0x100, 1]),
        ((0x4000_0000, None), [0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d]),
        ((0x8000_0000, None), [0x8000_0023, a, c, b]),
        ((0x8000_0001, None), [0x663, 0, ONES, 0x2fd3_fbff]),
        ((0x8000_0002, None), [brand[0], brand[1], brand[2], brand[3]]),
        ((0x8000_0005, None), [0x01ff_01ff, 0x01ff_01ff, 0x4002_0140, 0x4002_0140]),
        ((0x8000_0006, None), [0, 0x4200_4200, 0x0200_8140, 0x0080_8140]),
        ((0x8000_0007, None), [0, 0, 0, 0xfff]),
        ((0x8000_0008, None), [0x3030, ONES, 0x7007, 7]),
        ((0x8000_000a, None), [1, 0x10, 0, 0x0001_2cbf]),
        ((0x8000_001f, None), [0x1_fffe, 0x16f, 0x1fd, 1]),
    ]))
}

fn guest(vcpu_id: u32, nr_vcpus: u32) -> Guest {
    Guest { vcpu_id, nr_vcpus, cr4: 0, xcr0: 1, tsc_khz: 0, bus_khz: 1_000_000 }
}

fn ans(leaf: u32, sub: u32) -> Regs {
    default_answer(&tcg_max(), leaf, sub, &guest(0, 1))
}

#[test]
fn vendor_and_max_basic_leaf() {
    let host = tcg_max();
    let [_, b, c, d] = ans(0, 0);
    assert_eq!(ans(0, 0)[0], MAX_BASIC);
    assert_eq!([b, c, d], [host.cpuid(0, 0)[1], host.cpuid(0, 0)[2], host.cpuid(0, 0)[3]]);
    // A host with fewer leaves keeps its own maximum.
    let mut small = tcg_max();
    small.set(0, None, [0xd, b, c, d]);
    assert_eq!(default_answer(&small, 0, 0, &guest(0, 1))[0], 0xd);
    assert_eq!(default_answer(&small, 0x15, 0, &guest(0, 1)), [0; 4]);
}

#[test]
fn hypervisor_leaves() {
    let [a, b, c, d] = ans(0x4000_0000, 0);
    assert_eq!(a, HYPERVISOR_MAX);
    let mut sig = Vec::new();
    for w in [b, c, d] {
        sig.extend_from_slice(&w.to_le_bytes());
    }
    assert_eq!(&sig[..], b"VmmRustVmm\0\0");
    for leaf in [0x4000_0001, 0x4000_000f, 0x4000_0011, 0x4000_00ff, 0x4000_0100, 0x4000_0101] {
        assert_eq!(ans(leaf, 0), [0; 4], "{leaf:#x}");
    }
    // The hypervisor bit says to look there.
    assert_ne!(ans(1, 0)[2] & L1_ECX_HYPERVISOR, 0);
}

#[test]
fn leaf1_hidden_bits() {
    let [eax, _, ecx, edx] = ans(1, 0);
    assert_eq!(eax, 0x663);
    for (name, bit) in [
        ("DTES64", L1_ECX_DTES64),
        ("MONITOR", L1_ECX_MONITOR),
        ("DS-CPL", L1_ECX_DSCPL),
        ("VMX", L1_ECX_VMX),
        ("SMX", L1_ECX_SMX),
        ("EIST", L1_ECX_EIST),
        ("TM2", L1_ECX_TM2),
        ("SDBG", L1_ECX_SDBG),
        ("xTPR", L1_ECX_XTPR),
        ("PDCM", L1_ECX_PDCM),
        ("DCA", L1_ECX_DCA),
        ("OSXSAVE", L1_ECX_OSXSAVE),
    ] {
        assert_eq!(ecx & bit, 0, "1.ECX {name}");
    }
    for (name, bit) in [
        ("DS", L1_EDX_DS),
        ("ACPI", L1_EDX_ACPI),
        ("TM", L1_EDX_TM),
        ("PBE", L1_EDX_PBE),
        ("HTT", L1_EDX_HTT),
    ] {
        assert_eq!(edx & bit, 0, "1.EDX {name}");
    }
    // Kept: SSE3, SSSE3, FMA, CX16, PCID, SSE4.1/4.2, MOVBE, POPCNT, AES,
    // XSAVE, AVX, F16C, RDRAND; and FPU..PAT, CLFLUSH, MMX, FXSR, SSE, SSE2.
    let kept_ecx = 1
        | 1 << 9
        | 1 << 12
        | 1 << 13
        | 1 << 17
        | 1 << 19
        | 1 << 20
        | 1 << 22
        | 1 << 23
        | 1 << 25
        | 1 << 26
        | 1 << 28
        | 1 << 29
        | 1 << 30;
    assert_eq!(ecx & kept_ecx, kept_ecx);
    assert_eq!(ecx, (0x7ffe_fbff & !L1_ECX_HIDDEN) | L1_ECX_EMULATED);
    assert_eq!(edx, (0xbfeb_fbff & !L1_EDX_HIDDEN) | L1_EDX_EMULATED);
}

#[test]
fn osxsave_follows_guest_cr4() {
    let host = tcg_max();
    let g = Guest { cr4: 1 << 18, ..guest(0, 1) };
    assert_ne!(default_answer(&host, 1, 0, &g)[2] & L1_ECX_OSXSAVE, 0);
    // OSPKE does not: PKU is hidden, so CR4.PKE cannot be set.
    let g = Guest { cr4: 1 << 18 | 1 << 22, ..g };
    assert_eq!(default_answer(&host, 7, 0, &g)[2] & (L7_ECX_PKU | L7_ECX_OSPKE), 0);
}

#[test]
fn apic_id_and_logical_count() {
    let host = tcg_max();
    let ebx = |id, n| default_answer(&host, 1, 0, &guest(id, n))[1];
    let htt = |id, n| default_answer(&host, 1, 0, &guest(id, n))[3] & L1_EDX_HTT != 0;
    assert_eq!(ebx(3, 4), 0x0304_0800);
    assert!(htt(3, 4));
    assert_eq!(ebx(0, 1), 0x0001_0800);
    assert!(!htt(0, 1));
    // nr_vcpus = 0 counts as one; ids and counts beyond 8 bits saturate or wrap.
    assert_eq!(ebx(0, 0), 0x0001_0800);
    assert_eq!(ebx(0x1ff, 300), 0xffff_0800);
}

#[test]
fn cache_topology_follows_vcpu_count() {
    let host = tcg_max();
    let eax = |sub, n| default_answer(&host, 4, sub, &guest(0, n))[0];
    // L1d with 4 vCPUs: not shared, 4 cores.
    assert_eq!(eax(0, 4), 0x0c00_0121);
    // L3 with 4 vCPUs: shared by all.
    assert_eq!(eax(3, 4), 0x0c00_c163);
    // One vCPU.
    assert_eq!(eax(3, 1), 0x0000_0163);
    // Geometry registers are the host's; no more caches after the last.
    assert_eq!(default_answer(&host, 4, 2, &guest(0, 4))[1..], [0x03c0_003f, 0x3ff, 1]);
    assert_eq!(default_answer(&host, 4, 4, &guest(0, 4)), [0; 4]);
    // Leaf 0x1F is above the maximum (0xB: tests_cpuid_apic.rs).
    assert_eq!(ans(0x1f, 0), [0; 4]);
}

#[test]
fn zeroed_basic_leaves() {
    for leaf in [3, 5, 8, 9, 0xa, 0xc, 0xe, 0xf, 0x10, 0x11, 0x12, 0x13, 0x14] {
        assert_eq!(ans(leaf, 0), [0; 4], "leaf {leaf:#x}");
    }
    for leaf in [0x17, 0x1a, 0x1d, 0x1f, 0x20, 0x3fff_ffff] {
        assert_eq!(ans(leaf, 0), [0; 4], "leaf {leaf:#x} (above the maximum)");
    }
    let host = tcg_max();
    assert_eq!(ans(2, 0), host.cpuid(2, 0));
    assert_eq!(ans(0x15, 0), host.cpuid(0x15, 0));
    assert_eq!(ans(0x16, 0), host.cpuid(0x16, 0));
}

#[test]
fn leaf7_features() {
    let [eax, ebx, ecx, edx] = ans(7, 0);
    assert_eq!(eax, 1, "sub-leaf 2 is hidden");
    assert_eq!((ebx, ecx, edx), (L7_EBX_ALLOWED, L7_ECX_ALLOWED, L7_EDX_ALLOWED));
    let hidden_ebx =
        [("TSC_ADJUST", 1), ("SGX", 2), ("PQM", 12), ("MPX", 14), ("PQE", 15), ("PT", 25)];
    let kept_ebx = [
        ("FSGSBASE", 0),
        ("BMI1", 3),
        ("HLE", 4),
        ("AVX2", 5),
        ("SMEP", 7),
        ("BMI2", 8),
        ("ERMS", 9),
        ("INVPCID", 10),
        ("RTM", 11),
        ("AVX512F", 16),
        ("SMAP", 20),
    ];
    let hidden_ecx = [
        ("PKU", 3),
        ("OSPKE", 4),
        ("WAITPKG", 5),
        ("CET_SS", 7),
        ("TME", 13),
        ("RDPID", 22),
        ("KL", 23),
        ("ENQCMD", 29),
        ("SGX_LC", 30),
        ("PKS", 31),
    ];
    let kept_ecx = [("UMIP", 2), ("GFNI", 8), ("VAES", 9), ("LA57", 16), ("MOVDIRI", 27)];
    let hidden_edx = [
        ("UINTR", 5),
        ("HYBRID", 15),
        ("PCONFIG", 18),
        ("ARCH_LBR", 19),
        ("CET_IBT", 20),
        ("AMX_BF16", 22),
        ("AMX_TILE", 24),
        ("AMX_INT8", 25),
        ("IBRS", 26),
        ("STIBP", 27),
        ("L1D_FLUSH", 28),
        ("ARCH_CAP", 29),
        ("CORE_CAP", 30),
        ("SSBD", 31),
    ];
    let kept_edx = [("FSRM", 4), ("MD_CLEAR", 10), ("SERIALIZE", 14)];
    for (reg, list, want) in [
        (ebx, &hidden_ebx[..], false),
        (ebx, &kept_ebx[..], true),
        (ecx, &hidden_ecx[..], false),
        (ecx, &kept_ecx[..], true),
        (edx, &hidden_edx[..], false),
        (edx, &kept_edx[..], true),
    ] {
        for (name, bit) in list {
            assert_eq!(reg & (1 << bit) != 0, want, "7.0 {name}");
        }
    }
    // LA57 only when the host has it.
    let mut host = tcg_max();
    host.set(7, Some(0), [2, 0, ONES & !(1 << 16), 0]);
    assert_eq!(default_answer(&host, 7, 0, &guest(0, 1))[2] & (1 << 16), 0);
    // Sub-leaf 1: FRED (17), LKGS (18), LAM (26) hidden; AVX-VNNI (4) kept.
    let [eax1, ebx1, ecx1, edx1] = ans(7, 1);
    assert_eq!((eax1, ebx1, ecx1, edx1), (L7_1_EAX_ALLOWED, 0, 0, L7_1_EDX_ALLOWED));
    assert_eq!(eax1 & (1 << 17 | 1 << 18 | 1 << 26), 0);
    assert_ne!(eax1 & (1 << 4), 0);
    assert_eq!(ans(7, 2), [0; 4]);
}

#[test]
fn guest_xcr0_masks() {
    assert_eq!(guest_xcr0_allowed(u64::from(HOST_XCR0)), 0xe7);
    assert_eq!(guest_xcr0_allowed(0x7), 0x7);
    assert_eq!(guest_xcr0_allowed(0x3), 0x3);
    // AVX-512 needs all three components and AVX.
    assert_eq!(guest_xcr0_allowed(0x67), 0x7);
    assert_eq!(guest_xcr0_allowed(0xe3), 0x3);
    // Supervisor, PKRU, CET, AMX and high bits never.
    assert_eq!(guest_xcr0_allowed(u64::MAX), 0xe7);
    const { assert!(guest_xcr0_allowed(0x2e7) == 0xe7) };
}

#[test]
fn xsave_leaf() {
    let host = tcg_max();
    let d = |sub, xcr0| default_answer(&host, 0xd, sub, &Guest { xcr0, ..guest(0, 1) });
    // Sub-leaf 0: allowed components; size for XCR0; size for all allowed.
    assert_eq!(d(0, 0x1), [0xe7, 576, 2688, 0]);
    assert_eq!(d(0, 0x7), [0xe7, 832, 2688, 0]);
    assert_eq!(d(0, 0xe7), [0xe7, 2688, 2688, 0]);
    // A guest XCR0 with a component it may not have counts only what it may.
    assert_eq!(d(0, 0x2e7)[1], 2688);
    // Sub-leaf 1: no XSAVES/XFD; compacted size; no supervisor components.
    assert_eq!(d(1, 0x7), [0x7, 832, 0, 0]);
    assert_eq!(d(1, 0xe7), [0x7, 576 + 256 + 64 + 512 + 1024, 0, 0]);
    // Components: allowed ones are the host's, others are zero.
    assert_eq!(d(2, 0x7), [256, 576, 0, 0]);
    assert_eq!(d(5, 0x7), [64, 1088, 0, 0]);
    assert_eq!(d(7, 0x7), [1024, 1664, 0, 0]);
    for hidden in [3, 4, 8, 9, 11, 12, 17, 18, 62, 63, 64, 1000] {
        assert_eq!(d(hidden, 0xe7), [0; 4], "sub-leaf {hidden}");
    }
    // Without AVX-512 on the host, the sizes shrink with it.
    let mut small = tcg_max();
    small.set(0xd, Some(0), [0x7, 832, 832, 0]);
    let g = Guest { xcr0: 0xe7, ..guest(0, 1) };
    assert_eq!(default_answer(&small, 0xd, 0, &g), [0x7, 832, 832, 0]);
    assert_eq!(default_answer(&small, 0xd, 5, &g), [0; 4]);
    // No XSAVE at all: the leaf is empty.
    small.set(0xd, Some(0), [0; 4]);
    assert_eq!(default_answer(&small, 0xd, 0, &g), [0; 4]);
    assert_eq!(default_answer(&small, 0xd, 1, &g), [0; 4]);
}

#[test]
fn compacted_size_honours_alignment() {
    // Component 2 is 100 bytes and component 5 wants 64-byte alignment.
    let mut host = tcg_max();
    host.set(0xd, Some(2), [100, 576, 0, 0]);
    host.set(0xd, Some(5), [64, 1088, 2, 0]);
    let g = Guest { xcr0: 0xe7, ..guest(0, 1) };
    // 576 + 100 = 676, aligned to 704, + 64 + 512 + 1024.
    assert_eq!(default_answer(&host, 0xd, 1, &g)[1], 704 + 64 + 512 + 1024);
    assert_eq!(default_answer(&host, 0xd, 5, &g), [64, 1088, 2, 0]);
}

#[test]
fn extended_leaves() {
    let host = tcg_max();
    let [max, b, c, d] = ans(0x8000_0000, 0);
    assert_eq!(max, MAX_EXTENDED);
    assert_eq!([b, c, d], host.cpuid(0x8000_0000, 0)[1..]);
    let [eax, _, ecx, edx] = ans(0x8000_0001, 0);
    assert_eq!(eax, 0x663);
    assert_eq!(ecx, E1_ECX_ALLOWED);
    assert_eq!(ecx & E1_ECX_SVM, 0, "SVM");
    assert_eq!(edx & E1_EDX_RDTSCP, 0, "RDTSCP");
    assert_ne!(edx & E1_EDX_APIC, 0, "APIC (emulated; the host is AMD)");
    // SYSCALL, NX, Page1GB and LM stay.
    let kept = 1 << 11 | 1 << 20 | 1 << 26 | 1 << 29;
    assert_eq!(edx & kept, kept);
    assert_eq!(edx, 0x2fd3_fbff & !E1_EDX_RDTSCP);
    // Brand string and caches pass through.
    for leaf in [0x8000_0002, 0x8000_0005, 0x8000_0006] {
        assert_eq!(ans(leaf, 0), host.cpuid(leaf, 0), "{leaf:#x}");
    }
    assert_eq!(ans(0x8000_0007, 0), [0, 0, 0, E7_EDX_INVARIANT_TSC]);
    // Address sizes pass; speculation controls and INVLPGB/RDPRU do not.
    let g = guest(2, 6);
    assert_eq!(default_answer(&host, 0x8000_0008, 0, &g), [0x3030, E8_EBX_ALLOWED, 5, 0]);
    // Above the cap: SVM, SEV and the rest.
    for leaf in
        [0x8000_0009, 0x8000_000a, 0x8000_001f, 0x8000_0023, 0x8fff_ffff, 0x9000_0000, 0xc000_0000]
    {
        assert_eq!(ans(leaf, 0), [0; 4], "{leaf:#x}");
    }
}

#[test]
fn hosts_with_fewer_extended_leaves() {
    let mut host = tcg_max();
    host.set(0x8000_0000, None, [0x8000_0004, 0, 0, 0]);
    assert_eq!(default_answer(&host, 0x8000_0000, 0, &guest(0, 1))[0], 0x8000_0004);
    assert_eq!(default_answer(&host, 0x8000_0008, 0, &guest(0, 1)), [0; 4]);
    host.set(0x8000_0000, None, [0x10, 0, 0, 0]);
    assert_eq!(default_answer(&host, 0x8000_0000, 0, &guest(0, 1)), [0; 4]);
    assert_eq!(default_answer(&host, 0x8000_0001, 0, &guest(0, 1)), [0; 4]);
}

#[test]
fn table_lookup() {
    let t = [
        TableEntry { function: 0, index: 0, indexed: false, regs: [0xd, 1, 2, 3] },
        TableEntry { function: 7, index: 0, indexed: true, regs: [1, 0x11, 0, 0] },
        TableEntry { function: 7, index: 1, indexed: true, regs: [0x10, 0, 0, 0] },
        TableEntry { function: 0xd, index: 1, indexed: false, regs: [9, 9, 9, 9] },
        TableEntry { function: 0xd, index: 1, indexed: true, regs: [8, 8, 8, 8] },
    ];
    // Non-indexed entries answer every sub-leaf.
    assert_eq!(table_answer(&t, 0, 0), [0xd, 1, 2, 3]);
    assert_eq!(table_answer(&t, 0, 77), [0xd, 1, 2, 3]);
    // Indexed entries answer their own sub-leaf only.
    assert_eq!(table_answer(&t, 7, 0), [1, 0x11, 0, 0]);
    assert_eq!(table_answer(&t, 7, 1), [0x10, 0, 0, 0]);
    assert_eq!(table_answer(&t, 7, 2), [0; 4]);
    // The first match wins.
    assert_eq!(table_answer(&t, 0xd, 1), [9, 9, 9, 9]);
    // Missing leaves are zeros, whatever the maximum says.
    assert_eq!(table_answer(&t, 1, 0), [0; 4]);
    assert_eq!(table_answer(&t, 0x4000_0000, 0), [0; 4]);
    assert_eq!(table_answer(&[], 0, 0), [0; 4]);
}

#[test]
fn live_table_answers_follow_guest_state() {
    let e = |function, index, indexed, regs| TableEntry { function, index, indexed, regs };
    let t = [
        e(1, 0, false, [0x663, 0, L1_ECX_XSAVE | L1_ECX_OSXSAVE, 0]),
        e(7, 0, true, [0, 0, L7_ECX_PKU, 0]),
        e(0xd, 0, true, [0x7, 0, 832, 0]),
        e(0xd, 1, true, [0x3, 0, 0, 0]),
        e(0xd, 2, true, [256, 576, 0, 0]),
    ];
    let g = |cr4, xcr0| Guest { cr4, xcr0, ..guest(0, 1) };
    // OSXSAVE: cleared unless CR4.OSXSAVE, whatever the table says.
    assert_eq!(table_answer_live(&t, 1, 0, &g(0, 1))[2], L1_ECX_XSAVE);
    assert_eq!(table_answer_live(&t, 1, 0, &g(1 << 18, 1))[2], L1_ECX_XSAVE | L1_ECX_OSXSAVE);
    // OSPKE: the table offers PKU, so it follows CR4.PKE.
    assert_eq!(table_answer_live(&t, 7, 0, &g(1 << 22, 1))[2], L7_ECX_PKU | L7_ECX_OSPKE);
    assert_eq!(table_answer_live(&t, 7, 0, &g(0, 1))[2], L7_ECX_PKU);
    // XSAVE sizes follow XCR0, from the table's sub-leaves.
    assert_eq!(table_answer_live(&t, 0xd, 0, &g(0, 0x3))[1], 576);
    assert_eq!(table_answer_live(&t, 0xd, 0, &g(0, 0x7))[1], 832);
    assert_eq!(table_answer_live(&t, 0xd, 1, &g(0, 0x7)), [0x3, 832, 0, 0]);
    // Missing leaves stay zero; others are untouched.
    assert_eq!(table_answer_live(&t, 0xd, 5, &g(0, 0x7)), [0; 4]);
    assert_eq!(table_answer_live(&[], 1, 0, &g(1 << 18, 0x7)), [0; 4]);
    assert_eq!(table_answer_live(&t, 0xd, 2, &g(0, 0x7)), [256, 576, 0, 0]);
}

#[test]
fn no_panic_on_garbage_hosts() {
    // A host that answers all ones everywhere.
    let host = Host(Vec::from([((0, None), [ONES; 4])]));
    struct Ones;
    impl CpuInfo for Ones {
        fn cpuid(&self, _: u32, _: u32) -> [u32; 4] {
            [ONES; 4]
        }
        fn rdmsr(&self, _: u32) -> Option<u64> {
            None
        }
        fn cr4(&self) -> u64 {
            0
        }
    }
    let g = Guest {
        vcpu_id: ONES,
        nr_vcpus: ONES,
        cr4: u64::MAX,
        xcr0: u64::MAX,
        tsc_khz: ONES,
        bus_khz: ONES,
    };
    for leaf in
        (0..0x30).chain(0x4000_0000..0x4000_0003).chain(0x8000_0000..0x8000_0030).chain([ONES])
    {
        for sub in [0, 1, 2, 5, 63, 64, ONES] {
            let _ = default_answer(&host, leaf, sub, &g);
            let _ = default_answer(&Ones, leaf, sub, &g);
        }
    }
    assert_eq!(default_answer(&Ones, 0xd, 0, &g)[1], ONES);
}

#[test]
fn xcr0_validity() {
    let all = 0xe7;
    for (v, ok) in [
        (0x1, true),
        (0x3, true),
        (0x7, true),
        (0xe7, true),
        (0x0, false),   // no x87
        (0x2, false),   // no x87
        (0x5, false),   // AVX without SSE
        (0x27, false),  // opmask alone
        (0x67, false),  // two of the three AVX-512 components
        (0xe3, false),  // AVX-512 without AVX
        (0x107, false), // outside `allowed`
    ] {
        assert_eq!(xcr0_valid(v, all), ok, "{v:#x}");
    }
    assert!(!xcr0_valid(0x7, 0x3));
}

/// The local APIC's part of the policy, with the fake hosts above.
#[path = "tests_cpuid_apic.rs"]
mod apic;
