// SPDX-License-Identifier: GPL-2.0

//! Host tests for what the emulated local APIC changes in the CPUID
//! policy: the APIC, x2APIC and TSC-deadline bits, ARAT, the leaf-0xB
//! topology, the hypervisor timing leaf and leaf 0x15. The fake hosts are
//! those of `tests_cpuid.rs`.

use super::*;

/// `get_count_order(n)` as Linux computes it: the smallest `s` with
/// `1 << s >= n`.
fn count_order(n: u32) -> u32 {
    (0..32).find(|&s| 1u64 << s >= u64::from(n)).unwrap_or(32)
}

/// What Linux's `native_calibrate_tsc` makes of leaf 0x15, in its own
/// 32-bit arithmetic: (TSC kHz, crystal kHz), or `None` when it gives up.
fn linux_tsc(r: Regs) -> Option<(u32, u32)> {
    let [den, num, hz, _] = r;
    if den == 0 || num == 0 || hz / 1000 == 0 {
        return None;
    }
    let crystal_khz = hz / 1000;
    Some((crystal_khz.wrapping_mul(num) / den, crystal_khz))
}

fn with_tsc(vcpu_id: u32, nr_vcpus: u32, tsc_khz: u32) -> Guest {
    Guest { tsc_khz, ..guest(vcpu_id, nr_vcpus) }
}

fn intel(mut host: Host) -> Host {
    let [a, b, c, _] = words(b"GenuineIntel");
    host.set(0, None, [0x1f, a, c, b]);
    host
}

#[test]
fn apic_bits_are_set_even_when_the_host_lacks_them() {
    let mut host = tcg_max();
    // APIC id 0, no x2APIC, no TSC-deadline, no APIC, no hypervisor bit.
    host.set(1, None, [0x663, 0x0000_0800, 0x7ffe_fbff & !(1 << 21 | 1 << 24 | 1 << 31), 0]);
    let [_, ebx, ecx, edx] = default_answer(&host, 1, 0, &guest(5, 8));
    assert_eq!(ecx & L1_ECX_X2APIC, L1_ECX_X2APIC, "x2APIC");
    assert_eq!(ecx & L1_ECX_TSC_DEADLINE, L1_ECX_TSC_DEADLINE, "TSC-deadline");
    assert_eq!(ecx & L1_ECX_HYPERVISOR, L1_ECX_HYPERVISOR, "hypervisor");
    assert_eq!(edx & L1_EDX_APIC, L1_EDX_APIC, "APIC");
    assert_eq!(edx, L1_EDX_APIC | L1_EDX_HTT);
    // APIC id = vCPU id, logical count = vCPU count.
    assert_eq!(ebx, 0x0508_0800);
    // A host with everything: the emulated bits stay, the hidden ones go.
    host.set(1, None, [0x663, 0, ONES, ONES]);
    let [_, _, ecx, edx] = default_answer(&host, 1, 0, &guest(0, 1));
    assert_eq!(ecx, !L1_ECX_HIDDEN);
    assert_eq!(edx, !L1_EDX_HIDDEN);
    // The masks no longer hide what is emulated.
    assert_eq!(L1_ECX_HIDDEN & L1_ECX_EMULATED, 0);
    assert_eq!(L1_EDX_HIDDEN & L1_EDX_EMULATED, 0);
    // And an Intel host is no different.
    let [_, _, ecx, edx] = default_answer(&intel(tcg_max()), 1, 0, &guest(0, 1));
    assert_eq!(ecx & L1_ECX_EMULATED, L1_ECX_EMULATED);
    assert_eq!(edx & L1_EDX_EMULATED, L1_EDX_EMULATED);
}

#[test]
fn amd_apic_copy_in_leaf_8000_0001() {
    let mut host = tcg_max();
    host.set(0x8000_0001, None, [0x663, 0, 0, 0]);
    assert_eq!(default_answer(&host, 0x8000_0001, 0, &guest(0, 1))[3], E1_EDX_APIC);
    // On Intel the bit is reserved: clear, whatever the host says.
    let host = intel(tcg_max());
    assert_eq!(default_answer(&host, 0x8000_0001, 0, &guest(0, 1))[3] & E1_EDX_APIC, 0);
}

#[test]
fn leaf6_is_arat_only() {
    assert_eq!(ans(6, 0), [L6_EAX_ARAT, 0, 0, 0]);
    assert_eq!(L6_EAX_ARAT, 1 << 2);
    let mut host = tcg_max();
    for r in [[0; 4], [ONES; 4]] {
        host.set(6, None, r);
        assert_eq!(default_answer(&host, 6, 0, &guest(0, 1)), [1 << 2, 0, 0, 0]);
    }
}

#[test]
fn leaf_b_topology() {
    let host = tcg_max();
    for (n, shift) in [(1, 0), (2, 1), (3, 2), (4, 2), (64, 6)] {
        for id in [0, n - 1] {
            let g = guest(id, n);
            let b = |sub| default_answer(&host, 0xb, sub, &g);
            assert_eq!(b(0), [0, 1, 1 << 8, id], "{n} vCPUs, SMT level");
            assert_eq!(b(1), [shift, n, 1 | 2 << 8, id], "{n} vCPUs, core level");
            for sub in [2, 3, 4, 64, 255] {
                assert_eq!(b(sub), [0, 0, sub, id], "{n} vCPUs, sub-leaf {sub}");
            }
            assert_eq!(b(256), [0, 0, 0, id]);
            assert_eq!(b(ONES), [0, 0, 0xff, id]);
            // The legacy leaves describe the same package.
            let l1 = default_answer(&host, 1, 0, &g);
            assert_eq!(l1[1] >> 24, id);
            assert_eq!(count_order((l1[1] >> 16) & 0xff), shift, "leaf 1, {n} vCPUs");
            assert_eq!(l1[3] & L1_EDX_HTT != 0, n > 1);
            let l4 = default_answer(&host, 4, 0, &g);
            assert_eq!(count_order((l4[0] >> 26) + 1), shift, "leaf 4, {n} vCPUs");
            let nc = default_answer(&host, 0x8000_0008, 0, &g)[2];
            assert_eq!(nc >> 12 & 0xf, 0, "ApicIdSize: derived from NC");
            assert_eq!(count_order((nc & 0xff) + 1), shift, "0x8000_0008, {n} vCPUs");
        }
    }
    // x2APIC ids do not wrap; leaf 1's 8-bit id does.
    let g = guest(300, 64);
    assert_eq!(default_answer(&host, 0xb, 1, &g)[3], 300);
    assert_eq!(default_answer(&host, 1, 0, &g)[1] >> 24, 300 & 0xff);
    // nr_vcpus = 0 counts as one.
    assert_eq!(default_answer(&host, 0xb, 1, &guest(0, 0)), [0, 1, 0x201, 0]);
    // The host's own leaf 0xB does not matter.
    let mut other = tcg_max();
    other.set(0xb, Some(0), [0; 4]);
    other.set(0xb, Some(1), [ONES; 4]);
    for sub in 0..3 {
        let g = guest(2, 3);
        assert_eq!(default_answer(&other, 0xb, sub, &g), default_answer(&host, 0xb, sub, &g));
    }
}

#[test]
fn max_basic_leaf_covers_leaf_b() {
    const { assert!(MAX_BASIC >= 0xb && MIN_BASIC == 0xb) };
    let mut host = tcg_max();
    let [_, b, c, d] = host.cpuid(0, 0);
    // A host whose maximum is 5 (AMD K10): 0xB is there, and what lies
    // between is zeros, not the host's answers above its maximum.
    host.set(0, None, [5, b, c, d]);
    let g = guest(1, 2);
    assert_eq!(default_answer(&host, 0, 0, &g), [0xb, b, c, d]);
    assert_eq!(default_answer(&host, 0xb, 1, &g), [1, 2, 0x201, 1]);
    assert_eq!(default_answer(&host, 6, 0, &g), [L6_EAX_ARAT, 0, 0, 0]);
    for leaf in [7, 0xa] {
        assert_eq!(default_answer(&host, leaf, 0, &g), [0; 4], "leaf {leaf:#x}");
    }
    for leaf in [0xc, 0xd, 0x15] {
        assert_eq!(default_answer(&host, leaf, 0, &g), [0; 4], "leaf {leaf:#x}");
    }
    // Up to the host's maximum, the host's leaves as before.
    assert_eq!(default_answer(&host, 4, 0, &g)[1..], host.cpuid(4, 0)[1..]);
    // A host reaching 0xB or beyond keeps its own maximum.
    host.set(0, None, [0xd, b, c, d]);
    assert_eq!(default_answer(&host, 0, 0, &g)[0], 0xd);
}

#[test]
fn hypervisor_timing_leaf() {
    let host = tcg_max();
    let g = with_tsc(0, 1, 2_995_200);
    assert_eq!(default_answer(&host, 0x4000_0000, 0, &g)[0], 0x4000_0010);
    assert_eq!(default_answer(&host, TIMING_LEAF, 0, &g), [2_995_200, 1_000_000, 0, 0]);
    // Unknown TSC frequency: EAX = 0; the bus frequency is still there.
    assert_eq!(ans(0x4000_0010, 0), [0, 1_000_000, 0, 0]);
    for leaf in 0x4000_0001..=0x4000_000f {
        assert_eq!(default_answer(&host, leaf, 0, &g), [0; 4], "{leaf:#x}");
    }
    // The signature is still ours, not KVM's.
    let sig = default_answer(&host, 0x4000_0000, 0, &g);
    assert_eq!(sig[1..], words(&SIGNATURE)[..3]);
}

#[test]
fn leaf15_follows_the_guest_tsc() {
    let host = tcg_max();
    let l15 = |tsc_khz| default_answer(&host, 0x15, 0, &with_tsc(0, 1, tsc_khz));
    // Unknown: the host's.
    assert_eq!(l15(0), host.cpuid(0x15, 0));
    // Crystal = the 1 GHz APIC timer clock when the reduced ratio fits
    // Linux's 32-bit product, so its APIC timer period comes out right.
    assert_eq!(l15(3_000_000), [1, 3, 1_000_000_000, 0]);
    assert_eq!(l15(2_995_200), [625, 1872, 1_000_000_000, 0]);
    assert_eq!(l15(5_000_000), [1, 5, 1_000_000_000, 0]);
    // Otherwise crystal = TSC (or TSC / k when the Hz overflow ECX).
    assert_eq!(l15(2_903_999), [1, 1, 2_903_999_000, 0]);
    assert_eq!(l15(5_000_001), [1, 3, 1_666_667_000, 0]);
    // Not stated exactly either way: zeros, not a wrong frequency.
    assert_eq!(l15(4_294_973), [0; 4]);
    for tsc in [1, 999, 1_000_000, 2_903_999, 2_995_200, 3_000_000, 4_294_967, 5_000_001] {
        let r = l15(tsc);
        assert_eq!(linux_tsc(r).map(|(t, _)| t), Some(tsc), "{tsc} kHz: {r:x?}");
    }
    // Linux's APIC timer period (crystal kHz) is the bus clock when it can be.
    assert_eq!(linux_tsc(l15(2_995_200)).map(|(_, c)| c), Some(1_000_000));
    // No bus frequency: crystal = TSC.
    let g = Guest { bus_khz: 0, ..with_tsc(0, 1, 3_000_000) };
    assert_eq!(default_answer(&host, 0x15, 0, &g), [1, 1, 3_000_000_000, 0]);
    // Leaf 0x16 stays the host's; a host below 0x15 gets no leaf 0x15.
    assert_eq!(default_answer(&host, 0x16, 0, &with_tsc(0, 1, 3_000_000)), host.cpuid(0x16, 0));
    let mut small = tcg_max();
    let [_, b, c, d] = small.cpuid(0, 0);
    small.set(0, None, [0x14, b, c, d]);
    assert_eq!(default_answer(&small, 0x15, 0, &with_tsc(0, 1, 3_000_000)), [0; 4]);
}

#[test]
fn live_tables_keep_their_own_apic_ids() {
    // table_answer_live patches only what mirrors guest state (CR4, XCR0);
    // the APIC ids are the table's, as userspace wrote them.
    let e = |function, index, indexed, regs| TableEntry { function, index, indexed, regs };
    let t = [
        e(1, 0, false, [0x663, 0x0102_0800, L1_ECX_X2APIC, L1_EDX_APIC]),
        e(0xb, 0, true, [0, 1, 0x100, 7]),
        e(0xb, 1, true, [2, 4, 0x201, 7]),
    ];
    let g = guest(3, 4);
    assert_eq!(table_answer_live(&t, 1, 0, &g), [0x663, 0x0102_0800, L1_ECX_X2APIC, L1_EDX_APIC]);
    assert_eq!(table_answer_live(&t, 0xb, 1, &g), [2, 4, 0x201, 7]);
    assert_eq!(table_answer_live(&t, 0xb, 2, &g), [0; 4]);
}
