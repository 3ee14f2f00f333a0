// SPDX-License-Identifier: MIT OR Apache-2.0

//! Many vCPUs and every way to address them: a VM with the most vCPUs a VM
//! may have, brought up with INIT-SIPI-SIPI, and IPIs from an x2APIC-mode
//! sender by physical and logical destination (x2APIC clusters), by
//! shorthand and by broadcast, NMI IPIs and lowest-priority delivery.
//!
//! vCPU 0 runs long-mode payloads on the runtime of
//! [`apic_rt`](super::apic_rt) and fails with codes `0x71x` (64 vCPUs)
//! and `0x72x` (x2APIC IPIs). The APs run the runtime of
//! [`apic_ap`](super::apic_ap), which counts every vector per APIC ID.
//! Each test ends with every AP waiting for SIPI (INIT to all excluding
//! self) and vCPU 0 halted with IF = 0, so the VM suspends.

use libvmm::uapi::VMM_MAX_VCPUS;

use super::apic_ap::{
    ap_vm, nonzero, per_id, ApSetup, AP_COUNT, AP_HITS, AP_LP, AP_NMI, AP_READY, AP_TPR, TEST_DATA,
};
use super::apic_rt::{counts, delay_us, expect_counts, read_u32s, rt_call, send_icr, wait_mem};
use super::apic_rt::{COUNTS, SIPI_VECTOR};
use super::apic_vm::{
    bsp_pass, expect_aps_suspended, halt_after_pass, run_all, skip_on_qemu_svm, ApicVm,
};
use crate::tap::{Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, asm_pass, ensure, payload};

/// u32: how many APs vCPU 0 starts and waits for.
const NR_APS: u64 = TEST_DATA;
/// u32: how many steps [`STEPS`] holds.
const NR_STEPS: u64 = TEST_DATA + 4;
/// u32 per vCPU of [`X2_IDS`]: the address of its vector-0x41 counter.
const COUNTERS: u64 = TEST_DATA + 0x10;
/// The steps of [`apic_ipi_modes_x2apic`]: [`STEP_LEN`] bytes each, ICR
/// low, destination, then the counts every vCPU must reach.
const STEPS: u64 = TEST_DATA + 0x40;
/// Bytes per step: ICR low, destination, one count per vCPU.
const STEP_LEN: u64 = 4 * (2 + X2_IDS.len() as u64);

// The ICR values spell the SIPI vector out.
const _: () = assert!(SIPI_VECTOR == 0x30);

// --- 64 vCPUs ------------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_smp64_start, vmm_guest_apic_smp64_end",
    "vmm_guest_apic_smp64_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    delay_us!("200"),
    send_icr!("0xc4630", "0"),
    "movl {nr_aps}, %r12d",
    wait_mem!("{ready}", "%r12d", "5000", "0x711"),
    "movl {count}, %eax",
    "cmpl %r12d, %eax",
    "je 1f",
    asm_debug!(),
    "movl $0x712, %eax",
    asm_fail!(),
    // One fixed IPI (vector 0x41) to each AP by physical destination...
    "1: movl $1, %ebx",
    "2: movl $0x4041, %eax",
    "movl %ebx, %edx",
    rt_call!(icr),
    "incl %ebx",
    "cmpl %r12d, %ebx",
    "jbe 2b",
    // ...which each AP handles.
    "movl $1, %ebx",
    "3: leaq {hits}(,%rbx,4), %rdi",
    "movl $1, %esi",
    "movl $1000, %edx",
    rt_call!(wait_mem),
    "testl %eax, %eax",
    "jz 4f",
    "movl %ebx, %eax",
    asm_debug!(),
    "movl $0x713, %eax",
    asm_fail!(),
    "4: incl %ebx",
    "cmpl %r12d, %ebx",
    "jbe 3b",
    // Exactly once, 1 ms later.
    delay_us!("1000"),
    "movl $1, %ebx",
    "5: movl {hits}(,%rbx,4), %eax",
    "cmpl $1, %eax",
    "je 6f",
    asm_debug!(),
    "movl %ebx, %eax",
    asm_debug!(),
    "movl $0x714, %eax",
    asm_fail!(),
    "6: incl %ebx",
    "cmpl %r12d, %ebx",
    "jbe 5b",
    send_icr!("0xc4500", "0"),
    asm_pass!(),
    "vmm_guest_apic_smp64_end:",
    ".popsection",
    nr_aps = const NR_APS,
    ready = const AP_READY,
    count = const AP_COUNT,
    hits = const AP_HITS,
    options(att_syntax)
);

/// Skips on the QEMU AMD-V machines, as
/// [`apic_random_multi`](super::apic_random::apic_random_multi) does: QEMU
/// lost an AP's VMCB state here once in about seven runs.
pub fn apic_smp_64_vcpus() -> TestResult {
    skip_on_qemu_svm()?;
    let p = payload!(vmm_guest_apic_smp64_start, vmm_guest_apic_smp64_end);
    let ids: Vec<u32> = (1..VMM_MAX_VCPUS).collect();
    let v = ap_vm("apic-smp-64", &ids, &p, ApSetup { report: true, x2apic: false })?;
    v.t.write(NR_APS, &(ids.len() as u32).to_le_bytes())?;
    let (_, aps) = run_all(&v, |_| {
        bsp_pass(&v.t)?;
        halt_after_pass(&v)
    })
    .map_err(|e| format!("{e}\nhits per APIC ID {:?}", per_id(&v, AP_HITS)))?;
    for ap in &aps {
        ensure!(
            ap.debug == [ap.id],
            "vCPU {} reported APIC IDs {:#x?}, want its own once",
            ap.id,
            ap.debug
        );
    }
    expect_aps_suspended(&aps)?;
    let count = read_u32s(&v.t, AP_COUNT, 1)?[0];
    ensure!(count == ids.len() as u32, "{count} AP starts, want {}", ids.len());
    let hits = per_id(&v, AP_HITS)?;
    let want: Vec<u32> = (0..VMM_MAX_VCPUS).map(|id| u32::from(id != 0)).collect();
    ensure!(hits == want, "vector 0x41 handled {hits:?} times by APIC IDs 0-63, want {want:?}");
    expect_counts(&v.t, &[])?;
    Ok(Pass)
}

// --- IPIs from an x2APIC sender -------------------------------------------------

/// The vCPUs of [`apic_ipi_modes_x2apic`]: vCPU 17 is alone in x2APIC
/// cluster 1 (logical ID 0x0001_0002), the others share cluster 0.
const X2_IDS: [u32; 5] = [0, 1, 2, 3, 17];

/// One IPI of [`apic_ipi_modes_x2apic`]: what, ICR low (vector 0x41),
/// destination (ICR bits 63:32), and the vCPUs it must reach.
const X2_STEPS: [(&str, u32, u32, &[u32]); 12] = [
    ("physical 2", 0x4041, 2, &[2]),
    ("physical 17", 0x4041, 17, &[17]),
    ("physical 4, nobody", 0x4041, 4, &[]),
    ("logical cluster 0 bits 1-2", 0x4841, 0x0000_0006, &[1, 2]),
    ("logical cluster 1 bit 1", 0x4841, 0x0001_0002, &[17]),
    ("logical cluster 0 bits 0 and 3 (self included)", 0x4841, 0x0000_0009, &[0, 3]),
    ("logical cluster 0, every bit", 0x4841, 0x0000_ffff, &[0, 1, 2, 3]),
    ("shorthand self", 0x44041, 0, &[0]),
    ("shorthand all including self", 0x84041, 0, &[0, 1, 2, 3, 17]),
    ("shorthand all excluding self", 0xc4041, 0, &[1, 2, 3, 17]),
    ("physical broadcast 0xffffffff", 0x4041, 0xffff_ffff, &[0, 1, 2, 3, 17]),
    ("logical broadcast 0xffffffff", 0x4841, 0xffff_ffff, &[0, 1, 2, 3, 17]),
];

/// The step table's bytes: each step's ICR low and destination, then the
/// count of vector 0x41 every vCPU of [`X2_IDS`] must have reached by then.
fn step_table() -> Vec<u8> {
    let mut total = [0u32; X2_IDS.len()];
    let mut b = Vec::new();
    for (_, low, dest, to) in X2_STEPS {
        for (n, id) in total.iter_mut().zip(X2_IDS) {
            *n += u32::from(to.contains(&id));
        }
        for w in [low, dest].into_iter().chain(total) {
            b.extend_from_slice(&w.to_le_bytes());
        }
    }
    b
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_apic_x2ipi_start, vmm_guest_apic_x2ipi_end",
    "vmm_guest_apic_x2ipi_start:",
    ".code64",
    rt_call!(init),
    "movl $0x1ff, 0xf0(%r15)",
    rt_call!(x2apic),
    send_icr!("0xc4500", "0"),
    delay_us!("100"),
    send_icr!("0xc4630", "0"),
    delay_us!("200"),
    send_icr!("0xc4630", "0"),
    "movl {nr_aps}, %r12d",
    wait_mem!("{ready}", "%r12d", "2000", "0x721"),
    "sti",
    // Each step: send its IPI, then wait until every vCPU's count has
    // reached the step's; else report the step, the vCPU's index and its
    // count, and fail.
    "xorl %r13d, %r13d",
    "1: cmpl {nr_steps}, %r13d",
    "jae 4f",
    "imull ${step_len}, %r13d, %ebx",
    "addl ${steps}, %ebx",
    "movl (%rbx), %eax",
    "movl 4(%rbx), %edx",
    rt_call!(icr),
    "xorl %ebp, %ebp",
    "2: movl {counters}(,%rbp,4), %edi",
    "movl 8(%rbx,%rbp,4), %esi",
    "movl $200, %edx",
    rt_call!(wait_mem),
    "testl %eax, %eax",
    "jz 3f",
    "movl %r13d, %eax",
    asm_debug!(),
    "movl %ebp, %eax",
    asm_debug!(),
    "movl (%rdi), %eax",
    asm_debug!(),
    "movl $0x722, %eax",
    asm_fail!(),
    "3: incl %ebp",
    "cmpl ${nr_vcpus}, %ebp",
    "jb 2b",
    "incl %r13d",
    "jmp 1b",
    // 1 ms later every count is exactly the last step's.
    "4:",
    delay_us!("1000"),
    "xorl %ebp, %ebp",
    "5: movl {counters}(,%rbp,4), %edi",
    "movl (%rdi), %eax",
    "cmpl 8(%rbx,%rbp,4), %eax",
    "je 6f",
    asm_debug!(),
    "movl %ebp, %eax",
    asm_debug!(),
    "movl $0x723, %eax",
    asm_fail!(),
    "6: incl %ebp",
    "cmpl ${nr_vcpus}, %ebp",
    "jb 5b",
    // An NMI IPI to APIC ID 3 runs its NMI handler.
    send_icr!("0x4400", "3"),
    wait_mem!("{nmi} + 12", "$1", "200", "0x724"),
    // Lowest priority to logical cluster 0 bits 1-2: APIC ID 1 has TPR
    // 0x20, ID 2 TPR 0, so ID 2 takes vector 0x42, twice.
    send_icr!("0x4942", "6"),
    wait_mem!("{lp} + 8", "$1", "200", "0x725"),
    send_icr!("0x4942", "6"),
    wait_mem!("{lp} + 8", "$2", "200", "0x726"),
    delay_us!("1000"),
    "cli",
    send_icr!("0xc4500", "0"),
    asm_pass!(),
    "vmm_guest_apic_x2ipi_end:",
    ".popsection",
    nr_aps = const NR_APS,
    ready = const AP_READY,
    nr_steps = const NR_STEPS,
    step_len = const STEP_LEN,
    steps = const STEPS,
    counters = const COUNTERS,
    nr_vcpus = const X2_IDS.len(),
    nmi = const AP_NMI,
    lp = const AP_LP,
    options(att_syntax)
);

/// Fails unless the per-APIC-ID array at `gpa` holds exactly `want`
/// (non-zero entries, (id, n)).
fn expect_per_id(v: &ApicVm, gpa: u64, what: &str, want: &[(u32, u32)]) -> Result<(), String> {
    let got = nonzero(v, gpa)?;
    ensure!(got == want, "{what} per APIC ID {got:?}, want {want:?}");
    Ok(())
}

pub fn apic_ipi_modes_x2apic() -> TestResult {
    let p = payload!(vmm_guest_apic_x2ipi_start, vmm_guest_apic_x2ipi_end);
    let v = ap_vm("apic-x2-ipi", &X2_IDS[1..], &p, ApSetup { report: false, x2apic: true })?;
    let t = &v.t;
    t.write(NR_APS, &(X2_IDS.len() as u32 - 1).to_le_bytes())?;
    t.write(NR_STEPS, &(X2_STEPS.len() as u32).to_le_bytes())?;
    let addrs: Vec<u8> = X2_IDS
        .iter()
        .map(|&id| if id == 0 { COUNTS + 4 * 0x41 } else { AP_HITS + 4 * u64::from(id) })
        .flat_map(|a| (a as u32).to_le_bytes())
        .collect();
    t.write(COUNTERS, &addrs)?;
    t.write(STEPS, &step_table())?;
    t.write(AP_TPR + 4, &0x20u32.to_le_bytes())?;
    let r = run_all(&v, |_| {
        bsp_pass(t)?;
        halt_after_pass(&v)
    });
    let hits = || -> String {
        format!(
            "vector 0x41 per APIC ID {:?}, vector 0x42 {:?}, NMIs {:?}; vCPU 0's counts {:x?}",
            nonzero(&v, AP_HITS),
            nonzero(&v, AP_LP),
            nonzero(&v, AP_NMI),
            counts(t)
        )
    };
    let (_, aps) = r.map_err(|e| {
        let steps: Vec<String> =
            X2_STEPS.iter().enumerate().map(|(k, s)| format!("{k}: {}", s.0)).collect();
        format!(
            "{e}\nsteps (0x722 reports step, vCPU index, count): {}\n{}",
            steps.join("; "),
            hits()
        )
    })?;
    for ap in &aps {
        ensure!(ap.debug.is_empty(), "vCPU {} reported {:#x?}", ap.id, ap.debug);
    }
    expect_aps_suspended(&aps)?;
    let table = step_table();
    let last = &table[table.len() - STEP_LEN as usize + 8..];
    let want: Vec<(u32, u32)> = X2_IDS[1..]
        .iter()
        .zip(last.chunks_exact(4).skip(1))
        .map(|(&id, c)| (id, u32::from_le_bytes(c.try_into().unwrap())))
        .collect();
    expect_per_id(&v, AP_HITS, "vector 0x41", &want).map_err(|e| format!("{e}; {}", hits()))?;
    let bsp = u32::from_le_bytes(last[..4].try_into().unwrap());
    expect_counts(t, &[(0x41, bsp)])?;
    expect_per_id(&v, AP_NMI, "NMIs", &[(3, 1)])?;
    expect_per_id(&v, AP_LP, "lowest-priority vector 0x42", &[(2, 2)])?;
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_table_counts_up() {
        let t = step_table();
        assert_eq!(t.len(), X2_STEPS.len() * STEP_LEN as usize);
        let last: Vec<u32> = t[t.len() - STEP_LEN as usize..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // physical broadcast, logical broadcast; vCPUs 0, 1, 2, 3, 17.
        assert_eq!(last, [0x4841, 0xffff_ffff, 6, 6, 7, 6, 6]);
        assert!(STEPS + t.len() as u64 <= TEST_DATA + 0x1000 && COUNTERS + 20 <= STEPS);
    }
}
