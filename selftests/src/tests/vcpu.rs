// SPDX-License-Identifier: MIT OR Apache-2.0

//! vCPU state: registers, descriptors, CPUID, MSRs, and bad input to every
//! vCPU ioctl.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use libvmm::setup::{vcpu_state, Mode, GDT_LIMIT};
use libvmm::sys::{ioctl_ptr, ioctl_raw};
use libvmm::uapi::*;
use libvmm::{Exit, VcpuFd};

use crate::guest::{
    complete, create_vcpu, describe, inject_gp, s, Next, Payload, TestVm, DATA, LOAD, RAM_LEN, RUN,
    SCRATCH, STACK,
};
use crate::mem::{expect_efault, BAD_ADDRS};
use crate::tap::{expect_errno_of, Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, asm_pass, ensure, expect_errno, payload, sym, vmm};

// --- registers and descriptors -----------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_regs_start, vmm_guest_regs_end, vmm_guest_regs_hlt",
    "vmm_guest_regs_start:",
    ".code64",
    "incq %rax",
    "incq %rcx",
    "incq %rdx",
    "incq %rbx",
    "incq %rsp",
    "incq %rbp",
    "incq %rsi",
    "incq %rdi",
    "incq %r8",
    "incq %r9",
    "incq %r10",
    "incq %r11",
    "incq %r12",
    "incq %r13",
    "incq %r14",
    "incq %r15",
    "vmm_guest_regs_hlt:",
    "hlt",
    "sidt {data}",
    "sgdt {data} + 0x10",
    "movl %fs:0, %eax",
    asm_debug!(),
    "movl %gs:8, %eax",
    asm_debug!(),
    asm_pass!(),
    "vmm_guest_regs_end:",
    ".popsection",
    data = const DATA,
    options(att_syntax)
);

/// Every register id `VMM_VCPU_GET_REGS` knows.
fn all_regs() -> Vec<u32> {
    (reg::RAX..=reg::DR7).chain(reg::ES..=reg::TR).collect()
}

/// Every descriptor id `VMM_VCPU_GET_DESCS` knows.
fn all_descs() -> Vec<u32> {
    (reg::ES..=reg::IDTR).collect()
}

const DATA32: u32 = 0xc093;
const FS_DATA: u64 = DATA + 0x100;
const GS_DATA: u64 = DATA + 0x200;

/// Fails unless every register and descriptor `libvmm::setup` wrote for
/// long mode at [`LOAD`] reads back as written (of LDTR's descriptor, only
/// the unusable bit: the other fields of an unusable segment need not stay).
fn setup_state_reads_back(t: &TestVm) -> Result<(), String> {
    let state = s(vcpu_state(Mode::Long64, LOAD, STACK, SCRATCH))?;
    for &(id, want) in &state.regs {
        let got = s(t.vcpu.get_reg(id))?;
        ensure!(got == want, "register {id}: {got:#x}, setup wrote {want:#x}");
    }
    for &(id, want) in &state.descs {
        let got = s(t.vcpu.get_descs(&[id]))?[0];
        let same = if id == reg::LDTR { got.access & access::UNUSABLE != 0 } else { got == want };
        ensure!(same, "descriptor {id}: {got:x?}, setup wrote {want:x?}");
    }
    Ok(())
}

/// Writes every descriptor back as read, then FS, GS and IDTR with new
/// values, and checks that each reads back.
fn descriptors_round_trip(t: &TestVm) -> Result<(), String> {
    let ids = all_descs();
    let descs = s(t.vcpu.get_descs(&ids))?;
    s(t.vcpu.set_descs(&ids.iter().copied().zip(descs.iter().copied()).collect::<Vec<_>>()))?;
    ensure!(s(t.vcpu.get_descs(&ids))? == descs, "descriptors changed when written back");
    let mine = [
        (reg::FS, VmmSegDesc { base: FS_DATA, limit: u32::MAX, access: DATA32 }),
        (reg::GS, VmmSegDesc { base: GS_DATA, limit: 0xf_ffff, access: DATA32 & !access::G }),
        (reg::IDTR, VmmSegDesc { base: 0x1234_5000, limit: 0xfff, access: 0 }),
    ];
    s(t.vcpu.set_descs(&mine))?;
    let back = s(t.vcpu.get_descs(&[reg::FS, reg::GS, reg::IDTR]))?;
    ensure!(back == mine.map(|m| m.1), "descriptors read back {back:x?}");
    Ok(())
}

pub fn registers_round_trip() -> TestResult {
    let p = payload!(vmm_guest_regs_start, vmm_guest_regs_end);
    let t = TestVm::new("regs", Mode::Long64, &p)?;
    setup_state_reads_back(&t)?;
    let value = |id: u32| match id {
        reg::RSP => 0x0000_7fff_ffff_e000,
        _ => 0x1111_1111_1111_1111u64.wrapping_mul(u64::from(id) + 1),
    };
    let gprs: Vec<(u32, u64)> = (reg::RAX..=reg::R15).map(|id| (id, value(id))).collect();
    s(t.vcpu.set_regs(&gprs))?;
    // RFLAGS bit 1 always reads as set.
    s(t.vcpu.set_regs(&[(reg::RFLAGS, 0)]))?;
    ensure!(s(t.vcpu.get_reg(reg::RFLAGS))? == 2, "RFLAGS 0 reads back wrong");
    s(t.vcpu.set_regs(&[(reg::RFLAGS, 0x8c3), (reg::CR2, 0xdead_b000)]))?;
    let got = s(t.vcpu.get_regs(&[reg::RFLAGS, reg::CR2]))?;
    ensure!(got == [0x8c3, 0xdead_b000], "RFLAGS, CR2: {got:#x?}");
    let ctl_ids = [reg::CR0, reg::CR3, reg::CR4, reg::EFER];
    let ctl = s(t.vcpu.get_regs(&ctl_ids))?;
    descriptors_round_trip(&t)?;
    t.write(FS_DATA, &0xf5f5_0001u32.to_le_bytes())?;
    t.write(GS_DATA + 8, &0x9595_0002u32.to_le_bytes())?;

    let hlt = p.addr(sym!(vmm_guest_regs_hlt), LOAD);
    let e = t.run_to_exit(RUN)?.exit;
    ensure!(e.reason == exit::HLT && e.rip == hlt + 1, "{}, want HLT at {hlt:#x}", describe(&e));
    ensure!(s(t.vcpu.get_reg(reg::RIP))? == hlt + 1, "RIP register disagrees with the exit");
    let after = s(t.vcpu.get_regs(&(reg::RAX..=reg::R15).collect::<Vec<_>>()))?;
    for (&(id, v), a) in gprs.iter().zip(after) {
        ensure!(a == v.wrapping_add(1), "register {id}: {a:#x}, want {:#x}", v.wrapping_add(1));
    }
    ensure!(s(t.vcpu.get_reg(reg::RFLAGS))? & 2 == 2, "RFLAGS bit 1 clear");
    ensure!(s(t.vcpu.get_regs(&ctl_ids))? == ctl, "control registers changed");

    let debug = t.run_to_pass()?;
    ensure!(debug == [0xf5f5_0001, 0x9595_0002], "FS/GS reads {debug:#x?}");
    let tables = t.read(DATA, 0x1a)?;
    let idtr = (u16::from_le_bytes([tables[0], tables[1]]), u64_at(&tables, 2));
    let gdtr = (u16::from_le_bytes([tables[0x10], tables[0x11]]), u64_at(&tables, 0x12));
    ensure!(idtr == (0xfff, 0x1234_5000), "SIDT {idtr:#x?}");
    ensure!(gdtr == (GDT_LIMIT as u16, SCRATCH), "SGDT {gdtr:#x?}");
    Ok(Pass)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

// --- CPUID ----------------------------------------------------------------------

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    // DATA: u32 n, then n (leaf, subleaf) pairs; reports EAX-EDX of each.
    ".globl vmm_guest_cpuid_start, vmm_guest_cpuid_end",
    "vmm_guest_cpuid_start:",
    ".code64",
    "movl ${data}, %esi",
    "movl (%rsi), %r8d",
    "addq $4, %rsi",
    "1: testl %r8d, %r8d",
    "jz 2f",
    "movl (%rsi), %eax",
    "movl 4(%rsi), %ecx",
    "addq $8, %rsi",
    "cpuid",
    asm_debug!(),
    "movl %ebx, %eax",
    asm_debug!(),
    "movl %ecx, %eax",
    asm_debug!(),
    "movl %edx, %eax",
    asm_debug!(),
    "decl %r8d",
    "jmp 1b",
    "2:",
    asm_pass!(),
    "vmm_guest_cpuid_end:",
    ".popsection",
    data = const DATA,
    options(att_syntax)
);

fn cpuid_payload() -> Payload {
    payload!(vmm_guest_cpuid_start, vmm_guest_cpuid_end)
}

/// Has the guest of `t` (running the CPUID payload) execute CPUID for each
/// `(leaf, subleaf)`; returns EAX, EBX, ECX, EDX of each.
fn guest_cpuid(t: &TestVm, queries: &[(u32, u32)]) -> Result<Vec<[u32; 4]>, String> {
    let mut buf = (queries.len() as u32).to_le_bytes().to_vec();
    for &(leaf, sub) in queries {
        buf.extend(leaf.to_le_bytes());
        buf.extend(sub.to_le_bytes());
    }
    t.write(DATA, &buf)?;
    t.setup(Mode::Long64, LOAD)?;
    let d = t.run_to_pass()?;
    ensure!(d.len() == 4 * queries.len(), "{} values for {} queries", d.len(), queries.len());
    Ok(d.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
}

/// The kernel's hypervisor signature, leaf 0x40000000 EBX, ECX, EDX.
const SIGNATURE: &[u8; 12] = b"VmmRustVmm\0\0";

fn regs_bytes(regs: &[u32]) -> Vec<u8> {
    regs.iter().flat_map(|r| r.to_le_bytes()).collect()
}

/// Checks the kernel's default answers as seen by the guest.
fn check_default_cpuid(t: &TestVm) -> Result<(), String> {
    let r = guest_cpuid(t, &[(1, 0), (0x8000_0001, 0), (0x4000_0000, 0)])?;
    ensure!(r[0][2] & (1 << 31) != 0, "leaf 1 ECX {:#x}: no hypervisor bit", r[0][2]);
    ensure!(r[0][2] & (1 << 5) == 0, "leaf 1 ECX {:#x}: VMX visible", r[0][2]);
    ensure!(r[1][2] & (1 << 2) == 0, "leaf 0x80000001 ECX {:#x}: SVM visible", r[1][2]);
    ensure!(regs_bytes(&r[2][1..]) == SIGNATURE, "signature {:x?}", regs_bytes(&r[2][1..]));
    ensure!((0x4000_0000..0x4000_0100).contains(&r[2][0]), "leaf 0x40000000 EAX {:#x}", r[2][0]);
    Ok(())
}

pub fn cpuid_defaults() -> TestResult {
    let t = TestVm::new("cpuid-default", Mode::Long64, &cpuid_payload())?;
    ensure!(s(t.vcpu.cpuid())?.is_empty(), "a new vCPU has a CPUID table");
    check_default_cpuid(&t)?;
    Ok(Pass)
}

fn entry(function: u32, index: u32, flags: u32, r: [u32; 4]) -> VmmCpuidEntry {
    let [eax, ebx, ecx, edx] = r;
    VmmCpuidEntry { function, index, flags, eax, ebx, ecx, edx, reserved: 0 }
}

fn answer(e: &VmmCpuidEntry) -> [u32; 4] {
    [e.eax, e.ebx, e.ecx, e.edx]
}

fn word(b: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*b)
}

fn cpuid_table() -> [VmmCpuidEntry; 4] {
    let idx = VMM_CPUID_INDEXED;
    [
        entry(0, 0, 0, [1, word(b"Genu"), word(b"otel"), word(b"ineI")]),
        entry(1, 0, 0, [0x0009_0672, 0x0001_0800, 0x8000_0201, 0x0789_abcd]),
        entry(7, 0, idx, [0, 0x1111_1111, 0x2222_2222, 0x3333_3333]),
        entry(7, 1, idx, [0x4444_4444, 0, 0, 0x5555_5555]),
    ]
}

fn sorted(mut v: Vec<VmmCpuidEntry>) -> Vec<VmmCpuidEntry> {
    v.sort_by_key(|e| (e.function, e.index));
    v
}

pub fn cpuid_table_replaces_the_defaults() -> TestResult {
    let t = TestVm::new("cpuid-table", Mode::Long64, &cpuid_payload())?;
    let table = cpuid_table();
    s(t.vcpu.set_cpuid(&table))?;
    let queries = [
        (0, 0),
        (1, 0),
        (1, 5),
        (7, 0),
        (7, 1),
        (7, 2),
        (2, 0),
        (0x4000_0000, 0),
        (0x8000_0000, 0),
    ];
    let got = guest_cpuid(&t, &queries)?;
    let z = [0u32; 4];
    let want = [
        answer(&table[0]),
        answer(&table[1]),
        answer(&table[1]),
        answer(&table[2]),
        answer(&table[3]),
        z,
        z,
        z,
        z,
    ];
    for ((q, g), w) in queries.iter().zip(&got).zip(&want) {
        ensure!(g == w, "CPUID {q:#x?}: {g:#x?}, want {w:#x?}");
    }
    ensure!(sorted(s(t.vcpu.cpuid())?) == sorted(table.to_vec()), "GET_CPUID differs");
    // Too little room: E2BIG, the size needed, nothing written.
    let mut room = [VmmCpuidEntry { reserved: 0x77, ..VmmCpuidEntry::ZERO }; 2];
    let mut a = VmmCpuid { count: 2, entries: room.as_mut_ptr() as u64, ..VmmCpuid::ZERO };
    expect_errno!(ioctl_ptr(t.vcpu.as_fd(), VMM_VCPU_GET_CPUID, &mut a), libc::E2BIG);
    ensure!(a.count == 4 && room.iter().all(|e| e.reserved == 0x77), "E2BIG: count {}", a.count);
    let mut a = VmmCpuid::ZERO;
    expect_errno!(ioctl_ptr(t.vcpu.as_fd(), VMM_VCPU_GET_CPUID, &mut a), libc::E2BIG);
    ensure!(a.count == 4, "size query: count {}", a.count);
    // An empty table brings the defaults back.
    s(t.vcpu.set_cpuid(&[]))?;
    ensure!(s(t.vcpu.cpuid())?.is_empty(), "table left after reset");
    check_default_cpuid(&t)?;
    Ok(Pass)
}

// --- MSRs -----------------------------------------------------------------------

/// Guest asm for a payload whose IDT the test points at `<p>_gp` for #GP
/// (counted in `<p>_gp_count`, skipping the 2-byte RDMSR/WRMSR) and at
/// `<p>_bad` (fail with 0xbad) for every other vector.
macro_rules! asm_gp_handler {
    ($p:literal) => {
        concat!(
            ".globl ",
            $p,
            "_gp, ",
            $p,
            "_bad\n",
            $p,
            "_gp:\n",
            "incl ",
            $p,
            "_gp_count(%rip)\n",
            "addq $2, 8(%rsp)\n",
            "addq $8, %rsp\n",
            "iretq\n",
            $p,
            "_bad:\n",
            "movl $0xbad, %eax\n",
            asm_fail!(),
            $p,
            "_gp_count: .long 0\n"
        )
    };
}

/// An MSR the kernel leaves to userspace.
const USER_MSR: u32 = 0x4000_0123;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_msr_user_start, vmm_guest_msr_user_end",
    "vmm_guest_msr_user_start:",
    ".code64",
    "movl ${msr}, %ecx",
    "rdmsr",
    asm_debug!(),
    "movl %edx, %eax",
    asm_debug!(),
    "movl $0xdeadbeef, %eax",
    "movl $0xcafebabe, %edx",
    "wrmsr",
    "rdmsr",
    "movl vmm_guest_msr_user_gp_count(%rip), %eax",
    asm_debug!(),
    "wrmsr",
    "movl vmm_guest_msr_user_gp_count(%rip), %eax",
    asm_debug!(),
    asm_pass!(),
    asm_gp_handler!("vmm_guest_msr_user"),
    "vmm_guest_msr_user_end:",
    ".popsection",
    msr = const USER_MSR,
    options(att_syntax)
);

/// Points vector 13 at `gp` and every other vector at `bad`.
fn gp_idt(t: &TestVm, gp: u64, bad: u64) -> Result<(), String> {
    t.install_idt(Mode::Long64, |v| if v == 13 { gp } else { bad })
}

pub fn msr_exits_and_completion() -> TestResult {
    let p = payload!(vmm_guest_msr_user_start, vmm_guest_msr_user_end);
    let t = TestVm::new("msr-user", Mode::Long64, &p)?;
    gp_idt(
        &t,
        p.addr(sym!(vmm_guest_msr_user_gp), LOAD),
        p.addr(sym!(vmm_guest_msr_user_bad), LOAD),
    )?;
    let mut step = 0;
    let mut first_rip = 0;
    let r = t.run_until(RUN, |x, e| {
        step += 1;
        ensure!(e.inst_len == 0 || e.inst_len == 2, "MSR exit inst_len {}", e.inst_len);
        let entry = match (step, x) {
            // RUN abandons the RDMSR: the guest executes it again.
            (1, &Exit::Rdmsr(USER_MSR)) => {
                first_rip = e.rip;
                RUN
            }
            (2, &Exit::Rdmsr(USER_MSR)) if e.rip == first_rip => complete(0x1122_3344_5566_7788),
            (3, &Exit::Wrmsr(USER_MSR, 0xcafe_babe_dead_beef)) => complete(0),
            (4, &Exit::Rdmsr(USER_MSR)) => inject_gp(),
            (5, &Exit::Wrmsr(USER_MSR, 0xcafe_babe_0000_0001)) => inject_gp(),
            _ => return Err(format!("step {step}: unexpected {}", describe(e))),
        };
        Ok(Next::Enter(entry))
    })?;
    ensure!(r.passed && step == 5, "after {step} MSR exits: {}", describe(&r.exit));
    ensure!(r.debug == [0x5566_7788, 0x1122_3344, 1, 2], "debug {:#x?}", r.debug);
    Ok(Pass)
}

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    // DATA: {u32 msr, u32 how, u64 value} until msr 0; how 0: write, read
    // back, compare; 1: read, compare; 2: the write must raise #GP. Then
    // EFER (reported, SCE set and cleared) and TSC (monotonic).
    ".globl vmm_guest_msr_kernel_start, vmm_guest_msr_kernel_end",
    "vmm_guest_msr_kernel_start:",
    ".code64",
    "movl ${data}, %esi",
    "1: movl (%rsi), %ecx",
    "testl %ecx, %ecx",
    "jz 5f",
    "movl 8(%rsi), %eax",
    "movl 12(%rsi), %edx",
    "cmpl $2, 4(%rsi)",
    "je 3f",
    "cmpl $1, 4(%rsi)",
    "je 2f",
    "wrmsr",
    "2: rdmsr",
    "cmpl 8(%rsi), %eax",
    "jne 8f",
    "cmpl 12(%rsi), %edx",
    "jne 8f",
    "jmp 4f",
    "3: movl vmm_guest_msr_kernel_gp_count(%rip), %r11d",
    "wrmsr",
    "subl vmm_guest_msr_kernel_gp_count(%rip), %r11d",
    "cmpl $-1, %r11d",
    "jne 8f",
    "4: addq $16, %rsi",
    "jmp 1b",
    // EFER: LME and LMA set; SCE can be set and cleared.
    "5: movl $0xc0000080, %ecx",
    "rdmsr",
    asm_debug!(),
    "movl %eax, %r9d",
    "orl $1, %eax",
    "wrmsr",
    "rdmsr",
    "movl %r9d, %ebx",
    "orl $1, %ebx",
    "cmpl %ebx, %eax",
    "jne 8f",
    "movl %r9d, %eax",
    "wrmsr",
    "rdmsr",
    "cmpl %r9d, %eax",
    "jne 8f",
    // TSC: a second read is not below the first.
    "movl $0x10, %ecx",
    "rdmsr",
    "shlq $32, %rdx",
    "orq %rax, %rdx",
    "movq %rdx, %r10",
    "rdmsr",
    "shlq $32, %rdx",
    "orq %rax, %rdx",
    "cmpq %r10, %rdx",
    "jb 8f",
    asm_pass!(),
    // Failure: report EAX, EDX, then fail with the MSR's index.
    "8:",
    asm_debug!(),
    "movl %edx, %eax",
    asm_debug!(),
    "movl %ecx, %eax",
    asm_fail!(),
    asm_gp_handler!("vmm_guest_msr_kernel"),
    "vmm_guest_msr_kernel_end:",
    ".popsection",
    data = const DATA,
    options(att_syntax)
);

/// What the guest does with one entry of the kernel-MSR table.
#[derive(Clone, Copy)]
enum MsrCheck {
    /// Write the value, read it back.
    WriteRead = 0,
    /// Read; it must equal the value.
    Read = 1,
    /// Writing the value raises #GP.
    WriteGp = 2,
}

const PAT: u32 = 0x277;
const LSTAR: u32 = 0xc000_0082;
const FS_BASE: u32 = 0xc000_0100;
const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;

const KERNEL_MSRS: &[(u32, MsrCheck, u64)] = &[
    (PAT, MsrCheck::WriteRead, 0x0105_0406_0701_0406),
    (PAT, MsrCheck::WriteRead, PAT_DEFAULT),
    (0x174, MsrCheck::WriteRead, 0x10),        // SYSENTER_CS
    (0x175, MsrCheck::WriteRead, 0x7000_1230), // SYSENTER_ESP
    (0x176, MsrCheck::WriteRead, 0x7000_4560), // SYSENTER_EIP
    (0xc000_0081, MsrCheck::WriteRead, 0x0023_0010_1234_5678), // STAR
    (LSTAR, MsrCheck::WriteRead, 0xffff_ffff_8100_0000),
    (0xc000_0083, MsrCheck::WriteRead, 0xffff_ffff_8100_1000), // CSTAR
    (0xc000_0084, MsrCheck::WriteRead, 0x4_7700),              // SFMASK
    (FS_BASE, MsrCheck::WriteRead, 0x7fff_0000_1000),
    (0xc000_0101, MsrCheck::WriteRead, 0x7fff_0000_2000), // GS_BASE
    (0xc000_0102, MsrCheck::WriteRead, 0xffff_8880_0000_1000), // KERNEL_GS_BASE
    (0x2ff, MsrCheck::WriteRead, 0x806),                  // MTRRdefType: E, WB
    (0x2ff, MsrCheck::WriteGp, 0x802),                    // type 2 is reserved
    (0x2ff, MsrCheck::Read, 0x806),
    (PAT, MsrCheck::WriteGp, 0x0007_0406_0007_0402), // type 2 is reserved
    (PAT, MsrCheck::Read, PAT_DEFAULT),
];

/// Non-canonical writes to MSRs that hold addresses. Checked on VMX only:
/// SVM leaves these MSRs to the CPU (VMLOAD/VMSAVE switch them), and the
/// SVM machines' CPU, QEMU's TCG, does not check them.
const CANONICAL_MSRS: &[(u32, MsrCheck, u64)] = &[
    (LSTAR, MsrCheck::WriteGp, 0x8000_0000_0000_0000),
    (LSTAR, MsrCheck::Read, 0xffff_ffff_8100_0000),
    (FS_BASE, MsrCheck::WriteGp, 0x8000_0000_0000_0000),
    (FS_BASE, MsrCheck::Read, 0x7fff_0000_1000),
];

pub fn kernel_handles_common_msrs() -> TestResult {
    let p = payload!(vmm_guest_msr_kernel_start, vmm_guest_msr_kernel_end);
    let t = TestVm::new("msr-kernel", Mode::Long64, &p)?;
    gp_idt(
        &t,
        p.addr(sym!(vmm_guest_msr_kernel_gp), LOAD),
        p.addr(sym!(vmm_guest_msr_kernel_bad), LOAD),
    )?;
    let vmx = s(vmm()?.caps())?.backend == Backend::Vmx as u32;
    let checks = KERNEL_MSRS.iter().chain(if vmx { CANONICAL_MSRS } else { &[] });
    let mut table = Vec::new();
    for &(msr, how, value) in checks {
        table.extend(msr.to_le_bytes());
        table.extend((how as u32).to_le_bytes());
        table.extend(value.to_le_bytes());
    }
    table.extend([0u8; 16]);
    t.write(DATA, &table)?;
    let debug = t.run_to_pass()?;
    ensure!(debug == [0x500], "guest EFER {debug:#x?}, want LME|LMA");
    Ok(Pass)
}

// --- bad input -----------------------------------------------------------------

/// A VM with RAM and vCPU 0 in long mode at [`LOAD`] (nothing loaded).
fn long_mode_vcpu(name: &str) -> Result<TestVm, String> {
    let t = TestVm::bare(name, CreateFlags::DESTROY_ON_CLOSE, RAM_LEN)?;
    t.setup(Mode::Long64, LOAD)?;
    Ok(t)
}

pub fn create_vcpu_bad_input() -> TestResult {
    let vm = s(vmm()?.create_vm("vcpu-bad", CreateFlags::DESTROY_ON_CLOSE))?;
    let create = |mut a: VmmCreateVcpu| ioctl_ptr(vm.as_fd(), VMM_VM_CREATE_VCPU, &mut a);
    for (what, a) in [
        ("id VMM_MAX_VCPUS", VmmCreateVcpu { id: VMM_MAX_VCPUS, ..VmmCreateVcpu::ZERO }),
        ("id u32::MAX", VmmCreateVcpu { id: u32::MAX, ..VmmCreateVcpu::ZERO }),
        ("flags", VmmCreateVcpu { flags: 1, ..VmmCreateVcpu::ZERO }),
        ("reserved", VmmCreateVcpu { reserved: [0, 0, 1], ..VmmCreateVcpu::ZERO }),
    ] {
        expect_errno_of(create(a), libc::EINVAL, what)?;
    }
    expect_efault(vm.as_fd(), VMM_VM_CREATE_VCPU, "CREATE_VCPU")?;
    ensure!(s(vm.info())?.nr_vcpus == 0, "a refused request made a vCPU");
    let mut vcpus = Vec::new();
    for id in (0..VMM_MAX_VCPUS).rev() {
        let v = create_vcpu(&vm, id)?;
        let fd = v.as_fd().as_raw_fd();
        ensure!(crate::fd_flags(fd) & libc::FD_CLOEXEC != 0, "vCPU fd lacks close-on-exec");
        let link = s(std::fs::read_link(format!("/proc/self/fd/{fd}")))?;
        ensure!(link.to_string_lossy() == "anon_inode:vmm-vcpu", "vCPU fd is {link:?}");
        vcpus.push(v);
    }
    for id in [0, VMM_MAX_VCPUS - 1] {
        expect_errno_of(vm.create_vcpu(id), libc::EEXIST, &format!("vCPU {id} again"))?;
    }
    ensure!(s(vm.info())?.nr_vcpus == VMM_MAX_VCPUS, "vCPU count");
    Ok(Pass)
}

fn regs_raw(
    v: &VcpuFd,
    cmd: u32,
    count: u32,
    flags: u32,
    ids: u64,
    values: u64,
) -> io::Result<i32> {
    let mut a = VmmRegs { count, flags, ids, values };
    ioctl_ptr(v.as_fd(), cmd, &mut a)
}

/// Runs the batch-level checks shared by REGS and DESCS: `call(count,
/// flags, ids, array)` with a bad count, flags, id or pointer must fail,
/// and so must `cmd` with a bad header. `array` has room for 65 elements.
fn batch_bad_input(
    fd: BorrowedFd<'_>,
    cmd: u32,
    what: &str,
    first_id: u32,
    bad_ids: &[u32],
    array: u64,
    call: impl Fn(u32, u32, u64, u64) -> io::Result<i32>,
) -> Result<(), String> {
    let n = VMM_MAX_REGS as usize + 1;
    let ids = vec![first_id; n];
    let p = ids.as_ptr() as u64;
    expect_errno_of(call(0, 0, p, array), libc::EINVAL, &format!("{what}: count 0"))?;
    expect_errno_of(call(n as u32, 0, p, array), libc::EINVAL, &format!("{what}: count {n}"))?;
    expect_errno_of(call(1, 1, p, array), libc::EINVAL, &format!("{what}: flags"))?;
    for &bad in bad_ids {
        let two = [first_id, bad];
        expect_errno_of(
            call(2, 0, two.as_ptr() as u64, array),
            libc::EINVAL,
            &format!("{what}: id {bad}"),
        )?;
    }
    for bad in BAD_ADDRS.map(|a| a as u64) {
        expect_errno_of(call(1, 0, bad, array), libc::EFAULT, &format!("{what}: ids at {bad:#x}"))?;
        expect_errno_of(call(1, 0, p, bad), libc::EFAULT, &format!("{what}: array at {bad:#x}"))?;
    }
    expect_efault(fd, cmd, what)
}

pub fn regs_bad_input() -> TestResult {
    let t = long_mode_vcpu("regs-bad")?;
    let v = &t.vcpu;
    let ids = all_regs();
    let before = s(v.get_regs(&ids))?;
    let mut values = vec![0x1234u64; VMM_MAX_REGS as usize + 1];
    let array = values.as_mut_ptr() as u64;
    let bad_ids = [reg::DR7 + 1, reg::ES - 1, reg::GDTR, reg::IDTR, reg::LAST + 1, u32::MAX];
    for (cmd, what) in [(VMM_VCPU_GET_REGS, "GET_REGS"), (VMM_VCPU_SET_REGS, "SET_REGS")] {
        batch_bad_input(
            v.as_fd(),
            cmd,
            what,
            reg::RAX,
            &bad_ids,
            array,
            |count, flags, ids, vals| regs_raw(v, cmd, count, flags, ids, vals),
        )?;
    }
    let (cr0, cr4, efer) =
        (before[reg::CR0 as usize], before[reg::CR4 as usize], before[reg::EFER as usize]);
    for (what, id, value) in [
        ("RFLAGS bit 3", reg::RFLAGS, 2 | 1 << 3),
        ("RFLAGS bit 15", reg::RFLAGS, 2 | 1 << 15),
        ("RFLAGS bit 22", reg::RFLAGS, 2 | 1 << 22),
        ("RFLAGS bit 63", reg::RFLAGS, 2 | 1 << 63),
        ("CR0.PG without PE", reg::CR0, cr0 & !1),
        ("CR0.NW without CD", reg::CR0, cr0 | 1 << 29),
        ("CR0 bit 32", reg::CR0, cr0 | 1 << 32),
        ("CR3 bit 52", reg::CR3, 1 << 52),
        ("CR4 bit 63", reg::CR4, cr4 | 1 << 63),
        ("CR4.VMXE", reg::CR4, cr4 | 1 << 13),
        ("CR4.SMXE", reg::CR4, cr4 | 1 << 14),
        ("EFER bit 63", reg::EFER, efer | 1 << 63),
        ("EFER.SVME", reg::EFER, efer | 1 << 12),
        ("selector 0x10000", reg::FS, 0x1_0000),
        ("non-canonical RIP in 64-bit mode", reg::RIP, 0x8000_0000_0000_0000),
        ("DR6 bit 32", reg::DR6, 1 << 32),
        ("DR7 bit 32", reg::DR7, 0x400 | 1 << 32),
    ] {
        expect_errno_of(v.set_regs(&[(id, value)]), libc::EINVAL, what)?;
    }
    let after = s(v.get_regs(&ids))?;
    ensure!(after == before, "refused writes changed registers:\n{after:#x?}\n{before:#x?}");
    Ok(Pass)
}

fn descs_raw(
    v: &VcpuFd,
    cmd: u32,
    count: u32,
    flags: u32,
    ids: u64,
    descs: u64,
) -> io::Result<i32> {
    let mut a = VmmDescs { count, flags, ids, descs };
    ioctl_ptr(v.as_fd(), cmd, &mut a)
}

pub fn descs_bad_input() -> TestResult {
    let t = long_mode_vcpu("descs-bad")?;
    let v = &t.vcpu;
    let ids = all_descs();
    let before = s(v.get_descs(&ids))?;
    let mut descs =
        vec![VmmSegDesc { base: 0x5000, limit: 0xffff, access: DATA32 }; VMM_MAX_REGS as usize + 1];
    let array = descs.as_mut_ptr() as u64;
    let bad_ids = [reg::RAX, reg::RIP, reg::ES - 1, reg::LAST + 1, u32::MAX];
    for (cmd, what) in [(VMM_VCPU_GET_DESCS, "GET_DESCS"), (VMM_VCPU_SET_DESCS, "SET_DESCS")] {
        batch_bad_input(
            v.as_fd(),
            cmd,
            what,
            reg::FS,
            &bad_ids,
            array,
            |count, flags, ids, arr| descs_raw(v, cmd, count, flags, ids, arr),
        )?;
    }
    let fs = VmmSegDesc { base: 0x5000, limit: 0xffff, access: DATA32 };
    let table = VmmSegDesc { base: 0x5000, limit: 0xfff, access: 0 };
    for (what, id, d) in [
        ("access bit 20", reg::FS, VmmSegDesc { access: DATA32 | 1 << 20, ..fs }),
        ("access bit 8", reg::FS, VmmSegDesc { access: DATA32 | 1 << 8, ..fs }),
        ("non-canonical FS base", reg::FS, VmmSegDesc { base: 0x8000_0000_0000_0000, ..fs }),
        ("GDTR access", reg::GDTR, VmmSegDesc { access: DATA32, ..table }),
        ("GDTR limit 0x10000", reg::GDTR, VmmSegDesc { limit: 0x1_0000, ..table }),
        ("IDTR limit 0x10000", reg::IDTR, VmmSegDesc { limit: 0x1_0000, ..table }),
        ("non-canonical GDTR base", reg::GDTR, VmmSegDesc { base: 0x8000_0000_0000_0000, ..table }),
        ("non-canonical IDTR base", reg::IDTR, VmmSegDesc { base: 0x8000_0000_0000_0000, ..table }),
    ] {
        expect_errno_of(v.set_descs(&[(id, d)]), libc::EINVAL, what)?;
    }
    let after = s(v.get_descs(&ids))?;
    ensure!(after == before, "refused writes changed descriptors:\n{after:x?}\n{before:x?}");
    Ok(Pass)
}

pub fn cpuid_bad_input() -> TestResult {
    let t = long_mode_vcpu("cpuid-bad")?;
    let v = &t.vcpu;
    let one = [entry(0, 0, 0, [1, 2, 3, 4])];
    s(v.set_cpuid(&one))?;
    let set = |mut a: VmmCpuid| ioctl_ptr(v.as_fd(), VMM_VCPU_SET_CPUID, &mut a);
    let big = vec![entry(1, 0, 0, [0; 4]); VMM_MAX_CPUID as usize + 1];
    let ok = VmmCpuid { count: 1, entries: big.as_ptr() as u64, ..VmmCpuid::ZERO };
    let bad_flags = [entry(1, 0, 2, [0; 4])];
    let bad_reserved = [VmmCpuidEntry { reserved: 1, ..entry(1, 0, 0, [0; 4]) }];
    for (what, a) in [
        ("count VMM_MAX_CPUID + 1", VmmCpuid { count: VMM_MAX_CPUID + 1, ..ok }),
        ("flags", VmmCpuid { flags: 1, ..ok }),
        ("flags with count 0", VmmCpuid { count: 0, flags: 1, ..ok }),
        ("entry flags", VmmCpuid { entries: bad_flags.as_ptr() as u64, ..ok }),
        ("entry reserved", VmmCpuid { entries: bad_reserved.as_ptr() as u64, ..ok }),
    ] {
        expect_errno_of(set(a), libc::EINVAL, what)?;
    }
    for bad in BAD_ADDRS.map(|a| a as u64) {
        expect_errno_of(
            set(VmmCpuid { entries: bad, ..ok }),
            libc::EFAULT,
            &format!("SET_CPUID entries at {bad:#x}"),
        )?;
        let mut a = VmmCpuid { count: 4, entries: bad, ..VmmCpuid::ZERO };
        expect_errno_of(
            ioctl_ptr(v.as_fd(), VMM_VCPU_GET_CPUID, &mut a),
            libc::EFAULT,
            &format!("GET_CPUID entries at {bad:#x}"),
        )?;
    }
    let mut a = VmmCpuid { count: 4, flags: 1, entries: big.as_ptr() as u64 };
    expect_errno!(ioctl_ptr(v.as_fd(), VMM_VCPU_GET_CPUID, &mut a), libc::EINVAL);
    expect_efault(v.as_fd(), VMM_VCPU_SET_CPUID, "SET_CPUID")?;
    expect_efault(v.as_fd(), VMM_VCPU_GET_CPUID, "GET_CPUID")?;
    ensure!(s(v.cpuid())? == one, "refused requests changed the table");
    Ok(Pass)
}

pub fn run_bad_input() -> TestResult {
    let t = crate::tests::run::spinning_vm("run-bad", CreateFlags::DESTROY_ON_CLOSE)?;
    let v = &t.vcpu;
    // Back to the start: OUT to port 0x40, then HLT.
    s(v.set_regs(&[(reg::RIP, LOAD)]))?;
    let bad = |cmd, flags, reserved| VmmEntry { cmd, flags, reserved, ..VmmEntry::ZERO };
    for (what, e) in [
        ("unknown command 3", bad(3, 0, [0; 2])),
        ("unknown command u32::MAX", bad(u32::MAX, 0, [0; 2])),
        ("flags", bad(VMM_ENTRY_RUN, 1, [0; 2])),
        ("reserved[0]", bad(VMM_ENTRY_RUN, 0, [1, 0])),
        ("reserved[1]", bad(VMM_ENTRY_RUN, 0, [0, 1])),
        ("COMPLETE with nothing pending", complete(5)),
        ("INJECT_GP with nothing pending", inject_gp()),
    ] {
        expect_errno_of(v.run_entry(e), libc::EINVAL, what)?;
    }
    // Only addresses where nothing is readable: with the entry readable,
    // the kernel may run the guest before it fails to write the exit.
    for addr in BAD_ADDRS {
        expect_errno_of(
            ioctl_raw(v.as_fd(), VMM_VCPU_RUN, addr),
            libc::EFAULT,
            &format!("RUN at {addr:#x}"),
        )?;
    }
    ensure!(s(v.get_reg(reg::RIP))? == LOAD, "a refused run moved RIP");
    // Now an OUT is pending: only COMPLETE or RUN are right.
    let e = s(v.run())?;
    ensure!(matches!(Exit::decode(&e), Exit::Inout(io) if io.port == 0x40), "{}", describe(&e));
    expect_errno!(v.run_entry(inject_gp()), libc::EINVAL);
    expect_errno!(v.run_entry(bad(VMM_ENTRY_COMPLETE, 1, [0; 2])), libc::EINVAL);
    let e = s(v.complete(0))?;
    ensure!(e.reason == exit::HLT && e.rip == LOAD + 3, "after completion: {}", describe(&e));
    // After HLT nothing is pending.
    expect_errno!(v.complete(0), libc::EINVAL);
    Ok(Pass)
}

pub fn vcpu_unknown_ioctls_are_enotty() -> TestResult {
    let t = long_mode_vcpu("vcpu-enotty")?;
    let mut buf = [0u64; 64];
    let addr = buf.as_mut_ptr() as usize;
    let unused = (3u32 << 30) | (16 << 16) | (VMM_IOC_MAGIC << 8) | 0xbf;
    for (what, cmd) in [
        ("0", 0),
        ("an unused number", unused),
        ("VMM_VM_GET_INFO", VMM_VM_GET_INFO),
        ("VMM_VM_SUSPEND", VMM_VM_SUSPEND),
        ("VMM_VM_CREATE_VCPU", VMM_VM_CREATE_VCPU),
        ("VMM_GET_VERSION", VMM_GET_VERSION),
        ("VMM_CREATE_VM", VMM_CREATE_VM),
    ] {
        expect_errno_of(
            ioctl_raw(t.vcpu.as_fd(), cmd, addr),
            libc::ENOTTY,
            &format!("vCPU fd: {what}"),
        )?;
    }
    for (what, cmd) in [("VMM_VCPU_RUN", VMM_VCPU_RUN), ("VMM_VCPU_KICK", VMM_VCPU_KICK)] {
        expect_errno_of(
            ioctl_raw(t.vm.as_fd(), cmd, addr),
            libc::ENOTTY,
            &format!("VM fd: {what}"),
        )?;
    }
    Ok(Pass)
}

/// `cmd` with its size field replaced by `size`.
fn with_size(cmd: u32, size: usize) -> u32 {
    (cmd & !(0x3fff << 16)) | ((size as u32) << 16)
}

pub fn wrong_size_ioctls_are_enotty() -> TestResult {
    let v = vmm()?;
    let t = long_mode_vcpu("wrong-size")?;
    let mut buf = vec![0u64; 512];
    let addr = buf.as_mut_ptr() as usize;
    for &(name, cmd) in IOCTLS {
        let fd = match cmd & 0xff {
            0..0x40 => v.as_fd(),
            0x40..0x80 => t.vm.as_fd(),
            _ => t.vcpu.as_fd(),
        };
        let size = ioc_size(cmd);
        let mut sizes = vec![size + 8];
        if size >= 8 {
            sizes.extend([size - 8, 0]);
        }
        for wrong in sizes {
            expect_errno_of(
                ioctl_raw(fd, with_size(cmd, wrong), addr),
                libc::ENOTTY,
                &format!("{name} with size {wrong}"),
            )?;
        }
    }
    // Nothing happened to the VM: not suspended, no vCPU or segment added.
    let info = s(t.vm.info())?;
    ensure!(info.nr_vcpus == 1 && info.nr_segments == 1, "info {info:?}");
    s(t.vcpu.kick())?;
    ensure!(s(t.vcpu.run())?.reason == exit::KICKED, "the VM changed");
    Ok(Pass)
}
