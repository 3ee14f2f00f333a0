// SPDX-License-Identifier: MIT OR Apache-2.0

//! The RIP after an instruction the kernel completes. When the guest exits
//! on CPUID, RDMSR of an MSR the kernel answers, or port I/O, moving RIP
//! past the instruction is part of completing it. If that next RIP is not
//! canonical for the guest's paging mode, the instruction must not
//! complete: nothing is committed, RIP stays at the instruction, the guest
//! gets #GP(0), and `VMM_VCPU_RUN` succeeds.
//!
//! The guest runs 64-bit code with 4-level paging (CR4.LA57 clear, also on
//! a 5-level host) from one page mapped at [`HIGH_PAGE`], the last page
//! below the canonical hole. An instruction that ends at that page's last
//! byte has next RIP [`HOLE`], 0x0000_8000_0000_0000. The payload at
//! [`LOAD`](crate::guest::LOAD) holds only the #GP handler and the HLT the
//! control cases jump back to; the test sets RIP straight to the case's
//! instruction.

use std::io;

use libvmm::setup::{Mode, PML4_OFFSET};
use libvmm::uapi::*;
use libvmm::Exit;

use crate::guest::{
    complete, describe, s, Next, Payload, TestVm, FREE, LOAD, RAM_LEN, RUN, SCRATCH,
};
use crate::tap::{skip, Outcome::Pass, TestResult};
use crate::{asm_debug, asm_fail, ensure, payload, sym};

/// The last 4 KiB page below the canonical hole (4-level paging).
const HIGH_PAGE: u64 = 0x7fff_ffff_f000;
/// The first non-canonical address, just past [`HIGH_PAGE`].
const HOLE: u64 = 0x0000_8000_0000_0000;
/// The PDPT, PD and PT that map [`HIGH_PAGE`], and the RAM behind it.
const HIGH_PDPT: u64 = FREE;
const HIGH_PD: u64 = FREE + 0x1000;
const HIGH_PT: u64 = FREE + 0x2000;
const HIGH_CODE: u64 = FREE + 0x3000;
/// Present and writable.
const PTE_P_RW: u64 = 3;

const _: () = assert!(HIGH_PAGE + 0x1000 == HOLE && HIGH_CODE + 0x1000 <= RAM_LEN);

/// The port the OUT cases write (the harness reports on 0xe0-0xe2).
const PORT: u32 = 0x4d2;
/// IA32_PAT, which the kernel reads itself on both backends.
const PAT: u32 = 0x277;
/// IA32_PAT after reset.
const PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;
/// The guest's CPUID leaf 0 (from the vCPU's table): EAX, EBX, ECX, EDX.
const CPUID_ANSWER: [u32; 4] = [0x1357_9bdf, 0x2468_ace0, 0x0bad_cafe, 0x0dec_0ded];
/// The upper halves of RAX-RDX before a case: a completed CPUID or RDMSR
/// zero-extends its outputs, so it cannot leave them.
const MARK: u64 = 0x5a5a_5a5a_0000_0000;

const CPUID: &[u8] = &[0x0f, 0xa2];
const RDMSR: &[u8] = &[0x0f, 0x32];
/// `out %al, %dx`.
const OUT_DX_AL: &[u8] = &[0xee];
/// `jmp *%r8`: how a control case gets back to canonical code.
const JMP_R8: &[u8] = &[0x41, 0xff, 0xe0];
/// What fills the rest of the code page: INT3, which fails the test.
const FILL: u8 = 0xcc;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_ncrip_start, vmm_guest_ncrip_end, vmm_guest_ncrip_back",
    ".globl vmm_guest_ncrip_gp, vmm_guest_ncrip_gp_hlt, vmm_guest_ncrip_bad",
    "vmm_guest_ncrip_start:",
    ".code64",
    // A control case jumps here (R8) after its instruction completed.
    "vmm_guest_ncrip_back:",
    "1: hlt",
    "jmp 1b",
    // #GP: report the error code and the saved RIP (low half, high half),
    // then halt with RAX as it was (RBX, RCX, RDX are left alone), so that
    // the test reads the registers the instruction would have written.
    "vmm_guest_ncrip_gp:",
    "movq %rax, %r15",
    "movl (%rsp), %eax",
    asm_debug!(),
    "movl 8(%rsp), %eax",
    asm_debug!(),
    "movl 12(%rsp), %eax",
    asm_debug!(),
    "movq %r15, %rax",
    "vmm_guest_ncrip_gp_hlt:",
    "2: hlt",
    "jmp 2b",
    // Any other vector: report the low halves of the first two frame words
    // (error code and RIP, or RIP and CS) and CR2, then fail with 0xbad.
    "vmm_guest_ncrip_bad:",
    "movl (%rsp), %eax",
    asm_debug!(),
    "movl 8(%rsp), %eax",
    asm_debug!(),
    "movq %cr2, %rax",
    asm_debug!(),
    "movl $0xbad, %eax",
    asm_fail!(),
    "vmm_guest_ncrip_end:",
    ".popsection",
    options(att_syntax)
);

fn ncrip_payload() -> Payload {
    payload!(vmm_guest_ncrip_start, vmm_guest_ncrip_end)
}

/// What a case expects.
#[derive(Clone, Copy)]
enum Want {
    /// The instruction ends at the last byte of [`HIGH_PAGE`]: #GP(0) with
    /// its own RIP saved, RAX-RDX as they were, and no INOUT exit.
    Gp,
    /// A control: the instruction ends 4 bytes earlier, before a `jmp *%r8`
    /// back to the payload. It completes (an OUT as this INOUT exit: port,
    /// value), and the guest halts there with RAX, RBX, RCX, RDX = `regs`.
    Done { out: Option<(u32, u64)>, regs: [u64; 4] },
}

/// One guest run.
struct Case {
    name: &'static str,
    insn: &'static [u8],
    /// RAX, RBX, RCX, RDX before.
    regs: [u64; 4],
    want: Want,
}

impl Case {
    /// The guest linear address of the instruction.
    fn at(&self) -> u64 {
        let after = match self.want {
            Want::Gp => HOLE,
            Want::Done { .. } => HOLE - 1 - JMP_R8.len() as u64,
        };
        after - self.insn.len() as u64
    }

    /// The bytes at [`HIGH_PAGE`]: the instruction (and for a control, the
    /// jump back) at [`Case::at`], [`FILL`] everywhere else.
    fn page(&self) -> Vec<u8> {
        let mut page = vec![FILL; 0x1000];
        let mut code = self.insn.to_vec();
        if matches!(self.want, Want::Done { .. }) {
            code.extend_from_slice(JMP_R8);
        }
        let off = (self.at() - HIGH_PAGE) as usize;
        page[off..off + code.len()].copy_from_slice(&code);
        page
    }
}

const CPUID_REGS: [u64; 4] = [MARK, MARK | 0xbbbb_bbbb, MARK, MARK | 0xdddd_dddd];
const RDMSR_REGS: [u64; 4] = [MARK | 0xaaaa_aaaa, MARK | 0xbbbb_bbbb, PAT as u64, MARK | 0xdddd];
/// AL = 0xa5, DX = [`PORT`].
const OUT_REGS: [u64; 4] = [MARK | 0xaaa5, MARK | 0xbbbb_bbbb, MARK | 0xcccc, MARK | PORT as u64];

/// The controls first: they show that the page is mapped and that the
/// same instructions complete there when their next RIP is canonical.
const CASES: [Case; 6] = [
    Case {
        name: "cpuid, next RIP canonical",
        insn: CPUID,
        regs: CPUID_REGS,
        want: Want::Done {
            out: None,
            regs: [
                CPUID_ANSWER[0] as u64,
                CPUID_ANSWER[1] as u64,
                CPUID_ANSWER[2] as u64,
                CPUID_ANSWER[3] as u64,
            ],
        },
    },
    Case {
        name: "rdmsr IA32_PAT, next RIP canonical",
        insn: RDMSR,
        regs: RDMSR_REGS,
        want: Want::Done {
            out: None,
            regs: [PAT_DEFAULT & 0xffff_ffff, RDMSR_REGS[1], RDMSR_REGS[2], PAT_DEFAULT >> 32],
        },
    },
    Case {
        name: "out %al, %dx, next RIP canonical",
        insn: OUT_DX_AL,
        regs: OUT_REGS,
        want: Want::Done { out: Some((PORT, 0xa5)), regs: OUT_REGS },
    },
    Case { name: "cpuid, next RIP non-canonical", insn: CPUID, regs: CPUID_REGS, want: Want::Gp },
    Case {
        name: "rdmsr IA32_PAT, next RIP non-canonical",
        insn: RDMSR,
        regs: RDMSR_REGS,
        want: Want::Gp,
    },
    Case {
        name: "out %al, %dx, next RIP non-canonical",
        insn: OUT_DX_AL,
        regs: OUT_REGS,
        want: Want::Gp,
    },
];

/// The four entries that map [`HIGH_PAGE`] onto [`HIGH_CODE`] under the
/// PML4 at `pml4`, top level first: (GPA of the entry, entry).
fn high_map(pml4: u64) -> [(u64, u64); 4] {
    let slot = |table: u64, level: u32| table + ((HIGH_PAGE >> (12 + 9 * level)) & 511) * 8;
    [
        (slot(pml4, 3), HIGH_PDPT | PTE_P_RW),
        (slot(HIGH_PDPT, 2), HIGH_PD | PTE_P_RW),
        (slot(HIGH_PD, 1), HIGH_PT | PTE_P_RW),
        (slot(HIGH_PT, 0), HIGH_CODE | PTE_P_RW),
    ]
}

/// A long-mode VM whose guest has the payload at [`LOAD`], [`HIGH_PAGE`]
/// mapped and holding `case`'s code, its IDT sending #GP to the payload's
/// handler, CPUID leaf 0 answering [`CPUID_ANSWER`], and its registers set
/// to run `case`.
fn case_vm(case: &Case, p: &Payload) -> Result<TestVm, String> {
    let t = TestVm::new("noncanonical-rip", Mode::Long64, p)?;
    for (gpa, entry) in high_map(SCRATCH + PML4_OFFSET) {
        ensure!(t.read_u64(gpa)? == 0, "page-table entry at {gpa:#x} already in use");
        t.write_u64(gpa, entry)?;
    }
    t.write(HIGH_CODE, &case.page())?;
    let gp = p.addr(sym!(vmm_guest_ncrip_gp), LOAD);
    let bad = p.addr(sym!(vmm_guest_ncrip_bad), LOAD);
    t.install_idt(Mode::Long64, |v| if v == 13 { gp } else { bad })?;
    let [eax, ebx, ecx, edx] = CPUID_ANSWER;
    s(t.vcpu.set_cpuid(&[VmmCpuidEntry { eax, ebx, ecx, edx, ..VmmCpuidEntry::ZERO }]))?;
    let [rax, rbx, rcx, rdx] = case.regs;
    let back = p.addr(sym!(vmm_guest_ncrip_back), LOAD);
    s(t.vcpu.set_regs(&[
        (reg::RAX, rax),
        (reg::RBX, rbx),
        (reg::RCX, rcx),
        (reg::RDX, rdx),
        (reg::R8, back),
        (reg::RIP, case.at()),
    ]))?;
    Ok(t)
}

/// `run_until`'s error, explained: a failing `VMM_VCPU_RUN` (EINVAL above
/// all) or an exception other than #GP.
fn explain(err: String) -> String {
    let einval = io::Error::from_raw_os_error(libc::EINVAL).to_string();
    if err.starts_with("run: ") && err.contains(&einval) {
        format!(
            "VMM_VCPU_RUN failed with EINVAL ({err}): the old bug, the kernel moved RIP to \
             the non-canonical next RIP through the VMM_VCPU_SET_REGS validator instead of \
             giving the guest #GP(0)"
        )
    } else if err.starts_with("run: ") {
        format!("VMM_VCPU_RUN failed ({err}); it must succeed")
    } else if err.contains("guest failed with code 0xbad") {
        format!("{err} (an exception other than #GP: debug holds frame words 0 and 1, CR2)")
    } else {
        err
    }
}

/// Runs `case` in a VM of its own and checks it.
fn run_case(case: &Case, p: &Payload) -> Result<(), String> {
    let t = case_vm(case, p)?;
    let at = case.at();
    let mut outs = 0;
    let r = t
        .run_until(RUN, |x, e| match (x, case.want) {
            (Exit::Hlt, _) => Ok(Next::Stop),
            (Exit::Inout(io), Want::Done { out: Some((port, value)), .. }) if outs == 0 => {
                outs += 1;
                let want = VmmExitInout { port, size: 1, value, ..VmmExitInout::ZERO };
                ensure!(
                    *io == want && e.rip == at,
                    "INOUT {io:x?} at rip {:#x}, want {want:x?} at {at:#x}",
                    e.rip
                );
                Ok(Next::Enter(complete(0)))
            }
            (Exit::Inout(io), Want::Gp) if io.port == PORT => Err(format!(
                "an INOUT exit for port {PORT:#x} reached the test ({io:x?} at rip {:#x}): \
                 the OUT was let through though its next RIP is {HOLE:#x}",
                e.rip
            )),
            _ => Err(format!("unexpected {}", describe(e))),
        })
        .map_err(explain)?;
    let hlt = match case.want {
        Want::Gp => p.addr(sym!(vmm_guest_ncrip_gp_hlt), LOAD),
        Want::Done { .. } => p.addr(sym!(vmm_guest_ncrip_back), LOAD),
    };
    let what = if matches!(case.want, Want::Gp) { "the #GP handler" } else { "the jump-back" };
    ensure!(
        r.exit.reason == exit::HLT && r.exit.rip == hlt + 1,
        "ended with {}, want the HLT of {what} at {hlt:#x}; debug {:#x?}",
        describe(&r.exit),
        r.debug
    );
    let regs = s(t.vcpu.get_regs(&[reg::RAX, reg::RBX, reg::RCX, reg::RDX]))?;
    match case.want {
        Want::Gp => {
            let saved = r.debug.get(1..3).map(|h| u64::from(h[0]) | u64::from(h[1]) << 32);
            ensure!(
                saved != Some(HOLE),
                "#GP with saved RIP {HOLE:#x}: the instruction at {at:#x} completed and \
                     the guest faulted fetching past it (the old behaviour on a 5-level host)"
            );
            ensure!(
                r.debug.len() == 3 && r.debug[0] == 0 && saved == Some(at),
                "#GP handler saw error code, RIP {:#x?}; want 0 and {at:#x}",
                r.debug
            );
            ensure!(
                regs == case.regs,
                "RAX, RBX, RCX, RDX {regs:#x?} after the #GP, want them unchanged: \
                     {:#x?}",
                case.regs
            );
        }
        Want::Done { out, regs: want } => {
            ensure!(r.debug.is_empty(), "debug {:#x?}: the #GP handler ran", r.debug);
            ensure!(outs == usize::from(out.is_some()), "{outs} INOUT exits for port {PORT:#x}");
            ensure!(regs == want, "RAX, RBX, RCX, RDX {regs:#x?}, want {want:#x?}");
        }
    }
    Ok(())
}

/// An instruction the kernel completes whose next RIP would be
/// non-canonical (64-bit mode, LA57 clear) is a #GP(0) the guest sees at
/// that instruction, with nothing committed, on both backends; the same
/// instructions complete on the same page when their next RIP is canonical.
/// Every case runs, and every failing one is reported.
pub fn run_noncanonical_next_rip() -> TestResult {
    let p = ncrip_payload();
    let mut failures = Vec::new();
    for c in &CASES {
        match run_case(c, &p) {
            Ok(()) => {}
            // A backend that runs no guests skips the whole test.
            Err(e) if e.starts_with(&skip("")) => return Err(e),
            Err(e) => failures.push(format!("{} at {:#x}: {e}", c.name, c.at())),
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `a` is canonical with 48-bit linear addresses.
    fn canonical(a: u64) -> bool {
        let top = a >> 47;
        top == 0 || top == (1 << 17) - 1
    }

    #[test]
    fn cases_sit_where_they_should() {
        assert!(canonical(HOLE - 1) && !canonical(HOLE));
        let ats: Vec<u64> = CASES.iter().map(Case::at).collect();
        let want = [
            0x7fff_ffff_fffa,
            0x7fff_ffff_fffa,
            0x7fff_ffff_fffb,
            0x7fff_ffff_fffe,
            0x7fff_ffff_fffe,
            0x7fff_ffff_ffff,
        ];
        assert_eq!(ats, want);
        for c in &CASES {
            let page = c.page();
            let off = (c.at() - HIGH_PAGE) as usize;
            let end = off + c.insn.len();
            assert_eq!(&page[off..end], c.insn, "{}", c.name);
            let code_end = match c.want {
                Want::Gp => end,
                Want::Done { .. } => end + JMP_R8.len(),
            };
            assert_eq!(&page[end..code_end], if code_end == end { &[] } else { JMP_R8 });
            // GP cases end at the page's last byte, controls one byte short.
            let last = if matches!(c.want, Want::Gp) { 0x1000 } else { 0xfff };
            assert_eq!(code_end, last, "{}", c.name);
            let mut rest = page[..off].iter().chain(&page[code_end..]);
            assert!(rest.all(|&b| b == FILL), "{}", c.name);
        }
    }

    #[test]
    fn the_high_page_walks_to_its_ram() {
        let pml4 = SCRATCH + PML4_OFFSET;
        let map = high_map(pml4);
        let entry = |gpa: u64| map.iter().find(|e| e.0 == gpa).map_or(0, |e| e.1);
        let va = HOLE - 2;
        let mut table = pml4;
        for level in (0..4).rev() {
            let e = entry(table + ((va >> (12 + 9 * level)) & 511) * 8);
            assert_eq!(e & PTE_P_RW, PTE_P_RW, "level {level}");
            table = e & !0xfff;
        }
        assert_eq!(table | (va & 0xfff), HIGH_CODE + 0xffe);
        // The identity map's PML4 entry 0 is not touched.
        assert!(map.iter().all(|e| e.0 != pml4));
    }

    #[test]
    fn the_gp_handler_keeps_rax() {
        let p = ncrip_payload();
        let gp = p.addr(sym!(vmm_guest_ncrip_gp), LOAD);
        let hlt = p.addr(sym!(vmm_guest_ncrip_gp_hlt), LOAD);
        let off = (gp - LOAD) as usize;
        // movq %rax, %r15 first, movq %r15, %rax just before the HLT.
        assert_eq!(&p.bytes[off..off + 3], &[0x49, 0x89, 0xc7]);
        let h = (hlt - LOAD) as usize;
        assert_eq!(&p.bytes[h - 3..=h], &[0x4c, 0x89, 0xf8, 0xf4]);
        assert_eq!(p.bytes[(p.addr(sym!(vmm_guest_ncrip_back), LOAD) - LOAD) as usize], 0xf4);
    }
}
