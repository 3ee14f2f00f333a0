// SPDX-License-Identifier: MIT OR Apache-2.0

//! The guest's XSETBV, which the kernel emulates (SDM Vol 1, 13.3; Vol 2,
//! XSETBV): #UD while CR4.OSXSAVE is clear; #GP(0) for an XCR other than
//! XCR0 (ECX != 0) or an XCR0 value the processor would refuse (x87 clear,
//! AVX without SSE, AVX-512 components partly set or set without AVX, or a
//! component the guest's CPUID.0xD.0 does not offer); otherwise XCR0 takes
//! the value, RIP moves on, and XGETBV (which does not exit) reads it back.
//!
//! The kernel loads the guest's XCR0 with the host's XSETBV around every
//! entry, so a value it wrongly accepts, such as a partial AVX-512 set on a
//! host with AVX-512, faults in the host at the next entry: a guest could
//! crash the host. The partial AVX-512 values are therefore tried whatever
//! the host has.
//!
//! One VM runs it all. The guest first reports CPUID.1:ECX and
//! CPUID.0xD.0:EAX/EDX and halts; the test builds a table of cases from
//! them, writes it at [`DATA`] and enters the guest's batch loop, which
//! runs each case's XSETBV and reports what happened. Its #UD and #GP
//! handlers record the vector, error code and saved RIP and resume after
//! the 3-byte instruction, so nothing depends on the hardware reporting
//! instruction lengths (NRIP-save, decode assists).

use libvmm::setup::Mode;
use libvmm::uapi::*;

use crate::guest::{describe, s, Payload, Run, TestVm, DATA, LOAD, RUN};
use crate::tap::{
    Outcome::{Pass, Skip},
    TestResult,
};
use crate::{asm_debug, asm_fail, asm_pass, ensure, payload, sym};

/// CPUID.1:ECX.XSAVE.
const L1_ECX_XSAVE: u32 = 1 << 26;
/// CPUID.1:ECX.OSXSAVE, the guest's CR4.OSXSAVE.
const L1_ECX_OSXSAVE: u32 = 1 << 27;
/// CR4.OSXSAVE.
const CR4_OSXSAVE: u64 = 1 << 18;

/// XCR0 components: x87, SSE, AVX.
const X87: u64 = 1 << 0;
const SSE: u64 = 1 << 1;
const AVX: u64 = 1 << 2;
/// XCR0 components: AVX-512 opmask, ZMM_Hi256, Hi16_ZMM.
const AVX512: u64 = 0b111 << 5;
/// XCR0 component: PKRU (never offered to guests).
const PKRU: u64 = 1 << 9;
/// XCR0 components: AMX tile config and data (never offered to guests).
const AMX: u64 = 0b11 << 17;
/// Everything the kernel can offer a guest (its documented CPUID policy).
const OFFERABLE: u64 = X87 | SSE | AVX | AVX512;
/// XCR0 after reset.
const XCR0_RESET: u64 = X87;

/// What the guest reports for "no fault".
const NONE: u32 = u32::MAX;
/// #UD, #GP.
const UD: u32 = 6;
const GP: u32 = 13;

/// Values the guest reports per case.
const REPORTS: usize = 6;
/// Bytes per table entry: RAX, RDX, RCX, flags.
const ENTRY_LEN: usize = 32;
/// Table flag: read XCR0 back with XGETBV after the XSETBV.
const READ_BACK: u64 = 1;

core::arch::global_asm!(
    ".pushsection .rodata.guest, \"a\"",
    ".globl vmm_guest_xsave_start, vmm_guest_xsave_end, vmm_guest_xsave_probe_hlt",
    ".globl vmm_guest_xsave_batch, vmm_guest_xsave_xsetbv, vmm_guest_xsave_xgetbv",
    ".globl vmm_guest_xsave_batch_hlt, vmm_guest_xsave_ud, vmm_guest_xsave_gp",
    ".globl vmm_guest_xsave_bad",
    "vmm_guest_xsave_start:",
    ".code64",
    // Probe: CPUID.1:ECX, CPUID.0xD.0:EAX, EDX.
    "movl $1, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "movl %ecx, %eax",
    asm_debug!(),
    "movl $0xd, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    asm_debug!(),
    "movl %edx, %eax",
    asm_debug!(),
    "vmm_guest_xsave_probe_hlt:",
    "hlt",
    // A batch: DATA holds u32 n, u32 pad, then n entries {u64 rax, rdx,
    // rcx, flags}. Per entry: XSETBV with those registers; report the
    // fault vector (NONE: none), error code and saved RIP the handlers
    // left in R12-R14; then, if flags bit 0, XGETBV(0) (else 0:0) and
    // report EAX, EDX and the vector of a fault in XGETBV.
    "vmm_guest_xsave_batch:",
    "movl ${data}, %esi",
    "movl (%rsi), %r8d",
    "addq $8, %rsi",
    "1: testl %r8d, %r8d",
    "jz 3f",
    "movl $-1, %r12d",
    "xorl %r13d, %r13d",
    "xorl %r14d, %r14d",
    "movq (%rsi), %rax",
    "movq 8(%rsi), %rdx",
    "movq 16(%rsi), %rcx",
    "vmm_guest_xsave_xsetbv:",
    "xsetbv",
    "movl %r12d, %eax",
    asm_debug!(),
    "movl %r13d, %eax",
    asm_debug!(),
    "movl %r14d, %eax",
    asm_debug!(),
    "movl $-1, %r12d",
    "xorl %eax, %eax",
    "xorl %edx, %edx",
    "testl $1, 24(%rsi)",
    "jz 2f",
    "xorl %ecx, %ecx",
    "vmm_guest_xsave_xgetbv:",
    "xgetbv",
    "2: movl %edx, %r15d",
    asm_debug!(),
    "movl %r15d, %eax",
    asm_debug!(),
    "movl %r12d, %eax",
    asm_debug!(),
    "addq $32, %rsi",
    "decl %r8d",
    "jmp 1b",
    "3:",
    "vmm_guest_xsave_batch_hlt:",
    "hlt",
    // The end: a few more instructions, exits and entries (each entry
    // loads the guest's XCR0 again): CPUID.1:ECX, XGETBV(0) EAX, EDX and
    // the vector of a fault in it, then PASS.
    "movl $1, %eax",
    "xorl %ecx, %ecx",
    "cpuid",
    "movl %ecx, %eax",
    asm_debug!(),
    "movl $-1, %r12d",
    "xorl %ecx, %ecx",
    "xgetbv",
    "movl %edx, %r15d",
    asm_debug!(),
    "movl %r15d, %eax",
    asm_debug!(),
    "movl %r12d, %eax",
    asm_debug!(),
    asm_pass!(),
    // #UD: vector, no error code, saved RIP; resume 3 bytes on (XSETBV and
    // XGETBV are both 3 bytes long).
    "vmm_guest_xsave_ud:",
    "movl $6, %r12d",
    "xorl %r13d, %r13d",
    "movq (%rsp), %r14",
    "addq $3, (%rsp)",
    "iretq",
    // #GP: vector, error code, saved RIP; resume 3 bytes on.
    "vmm_guest_xsave_gp:",
    "movl $13, %r12d",
    "movl (%rsp), %r13d",
    "movq 8(%rsp), %r14",
    "addq $3, 8(%rsp)",
    "addq $8, %rsp",
    "iretq",
    // Any other vector: report the low halves of the first two frame words
    // (error code and RIP, or RIP and CS), then fail with 0xbad.
    "vmm_guest_xsave_bad:",
    "movl (%rsp), %eax",
    asm_debug!(),
    "movl 8(%rsp), %eax",
    asm_debug!(),
    "movl $0xbad, %eax",
    asm_fail!(),
    "vmm_guest_xsave_end:",
    ".popsection",
    data = const DATA,
    options(att_syntax)
);

fn xsave_payload() -> Payload {
    payload!(vmm_guest_xsave_start, vmm_guest_xsave_end)
}

/// What one XSETBV must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Complete: XCR0 = EDX:EAX, and XGETBV reads it.
    Done,
    /// #GP(0) at the XSETBV; XCR0 unchanged.
    Gp,
    /// #UD at the XSETBV (CR4.OSXSAVE clear).
    Ud,
}

/// One XSETBV.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    rax: u64,
    rdx: u64,
    rcx: u64,
    /// Whether the guest reads XCR0 back afterwards (not with
    /// CR4.OSXSAVE clear, where XGETBV is #UD as well).
    read_back: bool,
    want: Want,
}

impl Case {
    /// XSETBV of `value` to XCR0 (ECX = 0), read back afterwards.
    fn xcr0(name: &str, value: u64, want: Want) -> Self {
        let name = name.to_string();
        Self { name, rax: value & 0xffff_ffff, rdx: value >> 32, rcx: 0, read_back: true, want }
    }

    /// The value XSETBV writes: EDX:EAX (the upper halves of RDX and RAX
    /// are ignored).
    fn value(&self) -> u64 {
        (self.rdx & 0xffff_ffff) << 32 | self.rax & 0xffff_ffff
    }
}

/// The table the guest's batch loop reads at [`DATA`].
fn table(cases: &[Case]) -> Vec<u8> {
    let mut t = Vec::with_capacity(8 + cases.len() * ENTRY_LEN);
    t.extend((cases.len() as u64).to_le_bytes());
    for c in cases {
        let flags = if c.read_back { READ_BACK } else { 0 };
        for v in [c.rax, c.rdx, c.rcx, flags] {
            t.extend(v.to_le_bytes());
        }
    }
    t
}

/// The cases with CR4.OSXSAVE clear: #UD whatever the value.
fn ud_cases() -> Vec<Case> {
    let ud = |name: &str, value| Case { read_back: false, ..Case::xcr0(name, value, Want::Ud) };
    vec![ud("x87, SSE with CR4.OSXSAVE clear", X87 | SSE), ud("0x27 with CR4.OSXSAVE clear", 0x27)]
}

/// The cases with CR4.OSXSAVE set, for a guest whose CPUID.0xD.0 offers
/// `allowed` (x87 and SSE, maybe AVX, maybe all of AVX-512 with AVX). XCR0
/// starts at its reset value, x87 alone, and each case's read-back also
/// checks that the failed attempts before it left XCR0 alone. The last case
/// that completes leaves `allowed` in XCR0.
fn cases(allowed: u64) -> Vec<Case> {
    use Want::{Done, Gp};
    let x = Case::xcr0;
    let mut v = vec![
        x("0x0: x87 clear", 0, Gp),
        x("0x2: x87 clear", SSE, Gp),
        x("0x3: x87, SSE", X87 | SSE, Done),
        x("0x5: AVX without SSE", X87 | AVX, Gp),
        x("0x1: x87 alone", X87, Done),
    ];
    if allowed & AVX != 0 {
        v.push(x("0x7: x87, SSE, AVX", X87 | SSE | AVX, Done));
    }
    v.extend([
        x("0x27: AVX-512 opmask alone", 0x27, Gp),
        x("0x67: AVX-512 without Hi16_ZMM", 0x67, Gp),
        x("0xa7: AVX-512 without ZMM_Hi256", 0xa7, Gp),
        x("0xe3: AVX-512 without AVX", 0xe3, Gp),
    ]);
    if allowed & AVX512 == AVX512 {
        v.extend([
            x("0xe7: x87, SSE, AVX, AVX-512", 0xe7, Done),
            x("0x27 after 0xe7: AVX-512 opmask alone", 0x27, Gp),
            x("0xc7 after 0xe7: AVX-512 without opmask", 0xc7, Gp),
        ]);
    }
    v.extend([
        x("bit 63", 1 << 63, Gp),
        x("0x3 | bit 63", X87 | SSE | 1 << 63, Gp),
        x("0x3 | bit 32", X87 | SSE | 1 << 32, Gp),
    ]);
    // The lowest component not offered, and the one just above the
    // highest offered, on top of everything offered.
    let lowest = 1 << (!allowed).trailing_zeros();
    let above = 1 << (64 - allowed.leading_zeros());
    v.push(x(&format!("allowed {allowed:#x} | lowest unallowed bit"), allowed | lowest, Gp));
    if above != lowest {
        v.push(x(&format!("allowed {allowed:#x} | next bit up"), allowed | above, Gp));
    }
    v.extend([
        x(&format!("allowed {allowed:#x} | PKRU"), allowed | PKRU, Gp),
        x(&format!("allowed {allowed:#x} | AMX"), allowed | AMX, Gp),
        Case { rcx: 1, ..x("ECX 1 (XINUSE, read-only) with 0x3", X87 | SSE, Gp) },
        Case { rcx: 0xffff_ffff, ..x("ECX 0xffffffff with 0x3", X87 | SSE, Gp) },
        // The upper halves of RAX, RCX and RDX are ignored: ECX = 0,
        // EDX:EAX = 0x3.
        Case {
            rax: 0xdead_beef_0000_0003,
            rdx: 0xfeed_f00d_0000_0000,
            rcx: 0xffff_ffff_0000_0000,
            ..x("0x3 with RAX, RCX, RDX upper halves set", X87 | SSE, Done)
        },
        x(&format!("allowed {allowed:#x}: everything offered"), allowed, Done),
        x("0x27 last: AVX-512 opmask alone", 0x27, Gp),
    ]);
    v
}

/// What the guest reported for one case.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// Vector, error code and saved RIP of a fault in XSETBV.
    fault: Option<(u32, u32, u32)>,
    /// XGETBV(0) (0 when not read back).
    xcr0: u64,
    /// Vector of a fault in XGETBV.
    xgetbv_fault: Option<u32>,
}

impl Seen {
    fn parse(d: &[u32]) -> Self {
        let vector = |v: u32| (v != NONE).then_some(v);
        Self {
            fault: vector(d[0]).map(|v| (v, d[1], d[2])),
            xcr0: u64::from(d[3]) | u64::from(d[4]) << 32,
            xgetbv_fault: vector(d[5]),
        }
    }
}

/// Fails unless `r` ended at the HLT at guest address `hlt`.
fn expect_hlt(r: &Run, hlt: u64, what: &str) -> Result<(), String> {
    ensure!(
        r.exit.reason == exit::HLT && r.exit.rip == hlt + 1,
        "{what}: ended with {}, want the HLT at {hlt:#x}; debug {:#x?}",
        describe(&r.exit),
        r.debug
    );
    Ok(())
}

/// Runs `cases` through the guest's batch loop; returns what it saw of
/// each.
fn run_batch(t: &TestVm, p: &Payload, cases: &[Case], what: &str) -> Result<Vec<Seen>, String> {
    t.write(DATA, &table(cases))?;
    s(t.vcpu.set_regs(&[(reg::RIP, p.addr(sym!(vmm_guest_xsave_batch), LOAD))]))?;
    let r = t.run_to_exit(RUN).map_err(|e| format!("{what}: {e}"))?;
    expect_hlt(&r, p.addr(sym!(vmm_guest_xsave_batch_hlt), LOAD), what)?;
    let n = cases.len() * REPORTS;
    ensure!(r.debug.len() == n, "{what}: {} values, want {n}: {:#x?}", r.debug.len(), r.debug);
    Ok(r.debug.chunks(REPORTS).map(Seen::parse).collect())
}

/// Checks one case, with XCR0 `xcr0` before it and the XSETBV at `at`;
/// returns the XCR0 it must have left.
fn check(c: &Case, seen: &Seen, xcr0: u64, at: u64) -> Result<u64, String> {
    let value = c.value();
    let fault = |vector: u32, err: u32| Some((vector, err, at as u32));
    let (want_fault, after) = match c.want {
        Want::Done => (None, value),
        Want::Gp => (fault(GP, 0), xcr0),
        Want::Ud => (fault(UD, 0), xcr0),
    };
    if seen.fault != want_fault {
        let partial = value & AVX512 != 0 && value & AVX512 != AVX512;
        let why = match (c.want, seen.fault) {
            (Want::Gp, None) if partial => {
                ": the kernel took a partial AVX-512 XCR0, which the host's own XSETBV refuses \
                 at the next entry (the old bug that let a guest crash the host)"
            }
            (Want::Gp | Want::Ud, None) => ": the XSETBV completed",
            _ => "",
        };
        return Err(format!(
            "XSETBV fault (vector, error code, saved RIP) {:x?}, want {want_fault:x?}{why}",
            seen.fault
        ));
    }
    ensure!(seen.xgetbv_fault.is_none(), "XGETBV(0) faulted with vector {:?}", seen.xgetbv_fault);
    if c.read_back {
        ensure!(
            seen.xcr0 == after,
            "XGETBV(0) reads {:#x}, want {after:#x} (XCR0 before the XSETBV: {xcr0:#x})",
            seen.xcr0
        );
    }
    Ok(after)
}

/// Checks a batch; returns the failures and the XCR0 it left (following
/// what the guest read after a failing case, so that one bad case is
/// reported once).
fn check_batch(cases: &[Case], seen: &[Seen], xcr0: u64, at: u64) -> (Vec<String>, u64) {
    let mut failures = Vec::new();
    let mut xcr0 = xcr0;
    for (c, seen) in cases.iter().zip(seen) {
        match check(c, seen, xcr0, at) {
            Ok(after) => xcr0 = after,
            Err(e) => {
                failures.push(format!(
                    "{} (RCX {:#x}, EDX:EAX {:#x}): {e}",
                    c.name,
                    c.rcx,
                    c.value()
                ));
                if c.read_back {
                    xcr0 = seen.xcr0;
                }
            }
        }
    }
    (failures, xcr0)
}

/// Fails unless `allowed`, the guest's CPUID.0xD.0 EDX:EAX, is what the
/// kernel may offer: x87 and SSE, perhaps AVX, perhaps all three AVX-512
/// components with AVX, and nothing else.
fn check_allowed(allowed: u64) -> Result<(), String> {
    let avx512 = allowed & AVX512;
    ensure!(
        allowed & (X87 | SSE) == X87 | SSE
            && allowed & !OFFERABLE == 0
            && (avx512 == 0 || (avx512 == AVX512 && allowed & AVX != 0)),
        "CPUID.0xD.0 EDX:EAX {allowed:#x}: want x87 and SSE, perhaps AVX, perhaps AVX-512 \
         (all three, with AVX), nothing else ({OFFERABLE:#x} at most)"
    );
    Ok(())
}

/// The guest's XSETBV follows the SDM on both backends: #UD with
/// CR4.OSXSAVE clear; #GP(0) at the instruction, XCR0 unchanged, for
/// ECX != 0 and for every value the processor would refuse (the partial
/// AVX-512 ones whatever the host has); otherwise it completes and XGETBV
/// reads the value back. The guest then runs on and passes, so the host
/// survived every entry with the guest's XCR0 loaded. Skipped when the
/// guest's CPUID.1:ECX.XSAVE is clear.
pub fn xsetbv_follows_the_sdm() -> TestResult {
    let p = xsave_payload();
    let t = TestVm::new("xsetbv", Mode::Long64, &p)?;
    let ud = p.addr(sym!(vmm_guest_xsave_ud), LOAD);
    let gp = p.addr(sym!(vmm_guest_xsave_gp), LOAD);
    let bad = p.addr(sym!(vmm_guest_xsave_bad), LOAD);
    t.install_idt(Mode::Long64, |v| match u32::from(v) {
        UD => ud,
        GP => gp,
        _ => bad,
    })?;

    // The guest's CPUID, with CR4.OSXSAVE clear (libvmm::setup leaves it
    // so).
    let r = t.run_to_exit(RUN).map_err(|e| format!("CPUID probe: {e}"))?;
    expect_hlt(&r, p.addr(sym!(vmm_guest_xsave_probe_hlt), LOAD), "CPUID probe")?;
    let &[l1_ecx, d_eax, d_edx] = r.debug.as_slice() else {
        return Err(format!("CPUID probe reported {:#x?}, want 3 values", r.debug));
    };
    if l1_ecx & L1_ECX_XSAVE == 0 {
        return Ok(Skip(format!(
            "the guest's CPUID.1:ECX ({l1_ecx:#x}) has no XSAVE: the host has none"
        )));
    }
    ensure!(
        l1_ecx & L1_ECX_OSXSAVE == 0,
        "CPUID.1:ECX {l1_ecx:#x}: OSXSAVE with CR4.OSXSAVE clear"
    );
    let allowed = u64::from(d_eax) | u64::from(d_edx) << 32;
    check_allowed(allowed)?;

    let at = p.addr(sym!(vmm_guest_xsave_xsetbv), LOAD);
    let mut failures = Vec::new();

    // CR4.OSXSAVE clear: #UD.
    let ud_cases = ud_cases();
    let seen = run_batch(&t, &p, &ud_cases, "CR4.OSXSAVE clear")?;
    let (f, _) = check_batch(&ud_cases, &seen, XCR0_RESET, at);
    failures.extend(f);

    // CR4.OSXSAVE set.
    let cr4 = s(t.vcpu.get_reg(reg::CR4))?;
    s(t.vcpu.set_regs(&[(reg::CR4, cr4 | CR4_OSXSAVE)]))
        .map_err(|e| format!("VMM_VCPU_SET_REGS CR4 {:#x}: {e}", cr4 | CR4_OSXSAVE))?;
    let cases = cases(allowed);
    let seen = run_batch(&t, &p, &cases, "CR4.OSXSAVE set")?;
    let (f, xcr0) = check_batch(&cases, &seen, XCR0_RESET, at);
    failures.extend(f);

    // The end: the guest runs on with the last XCR0 it set, and passes.
    let d = t.run_to_pass().map_err(|e| format!("after the cases: {e}"))?;
    ensure!(d.len() == 4, "after the cases: reported {d:#x?}, want 4 values");
    let end = Seen::parse(&[NONE, 0, 0, d[1], d[2], d[3]]);
    if d[0] & L1_ECX_OSXSAVE == 0 {
        failures.push(format!("CPUID.1:ECX {:#x}: no OSXSAVE with CR4.OSXSAVE set", d[0]));
    }
    if end.xgetbv_fault.is_some() || end.xcr0 != xcr0 {
        failures.push(format!(
            "after the cases: XGETBV(0) reads {:#x} (fault vector {:?}), want {xcr0:#x}",
            end.xcr0, end.xgetbv_fault
        ));
    }

    let n = ud_cases.len() + cases.len();
    ensure!(
        failures.is_empty(),
        "{} failures in {n} cases (CPUID.0xD.0 allows {allowed:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDM's rule for XCR0 values (Vol 1, 13.3), written out apart from
    /// the case table.
    fn sdm_accepts(v: u64, allowed: u64) -> bool {
        let avx512 = v & AVX512;
        v & X87 != 0
            && (v & AVX == 0 || v & SSE != 0)
            && (avx512 == 0 || (avx512 == AVX512 && v & AVX != 0))
            && v & !allowed == 0
    }

    const ALLOWED: [u64; 3] = [X87 | SSE, X87 | SSE | AVX, X87 | SSE | AVX | AVX512];

    #[test]
    fn every_case_wants_what_the_sdm_says() {
        for allowed in ALLOWED {
            check_allowed(allowed).unwrap();
            for c in cases(allowed) {
                let ok = c.rcx as u32 == 0 && sdm_accepts(c.value(), allowed);
                let want = if ok { Want::Done } else { Want::Gp };
                assert_eq!(c.want, want, "{allowed:#x}: {}", c.name);
                assert!(c.read_back, "{}", c.name);
            }
        }
        for c in ud_cases() {
            assert!(c.want == Want::Ud && !c.read_back, "{}", c.name);
        }
    }

    #[test]
    fn the_cases_the_brief_names_are_there() {
        for allowed in ALLOWED {
            let cs = cases(allowed);
            let wants =
                |v: u64, w: Want| cs.iter().any(|c| c.rcx == 0 && c.value() == v && c.want == w);
            for v in [0, 2, 5, 0x27, 0x67, 0xa7, 0xe3, 1 << 63] {
                assert!(wants(v, Want::Gp), "{allowed:#x}: {v:#x}");
            }
            assert!(wants(1, Want::Done) && wants(3, Want::Done), "{allowed:#x}");
            assert_eq!(wants(7, Want::Done), allowed & AVX != 0, "{allowed:#x}");
            assert_eq!(wants(0xe7, Want::Done), allowed == 0xe7, "{allowed:#x}");
            let next = 1 << (!allowed).trailing_zeros();
            assert!(wants(allowed | next, Want::Gp), "{allowed:#x}");
            assert!(cs.iter().any(|c| c.rcx as u32 == 1 && c.want == Want::Gp));
            // The last case that completes leaves everything offered.
            let last = cs.iter().rev().find(|c| c.want == Want::Done).unwrap();
            assert_eq!(last.value(), allowed);
        }
    }

    #[test]
    fn the_model_follows_a_passing_run() {
        let at = 0x8123;
        for allowed in ALLOWED {
            let cs = cases(allowed);
            let mut xcr0 = XCR0_RESET;
            let seen: Vec<Seen> = cs
                .iter()
                .map(|c| {
                    let fault = (c.want == Want::Gp).then_some((GP, 0, at as u32));
                    if c.want == Want::Done {
                        xcr0 = c.value();
                    }
                    Seen { fault, xcr0, xgetbv_fault: None }
                })
                .collect();
            let (failures, end) = check_batch(&cs, &seen, XCR0_RESET, at);
            assert!(failures.is_empty(), "{failures:#?}");
            assert_eq!(end, allowed);
        }
        // A partial AVX-512 value that completes is reported as the old bug.
        let c = Case::xcr0("0x27", 0x27, Want::Gp);
        let seen = Seen { fault: None, xcr0: 0x27, xgetbv_fault: None };
        let e = check(&c, &seen, 0xe7, at).unwrap_err();
        assert!(e.contains("partial AVX-512"), "{e}");
    }

    #[test]
    fn the_table_is_what_the_guest_reads() {
        let c = Case { rcx: 0x11, ..Case::xcr0("x", 0x2_0000_0007, Want::Gp) };
        let u = ud_cases();
        let t = table(&[c, u[0].clone()]);
        assert_eq!(t.len(), 8 + 2 * ENTRY_LEN);
        assert_eq!(&t[..8], &2u64.to_le_bytes());
        let words: Vec<u64> = t[8..]
            .chunks(8)
            .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
            .collect();
        assert_eq!(words, [7, 2, 0x11, READ_BACK, 3, 0, 0, 0]);
        assert_eq!(
            Seen::parse(&[GP, 0, 0x8123, 3, 0, NONE]),
            Seen { fault: Some((GP, 0, 0x8123)), xcr0: 3, xgetbv_fault: None }
        );
    }

    #[test]
    fn the_payload_faults_where_the_test_looks() {
        let p = xsave_payload();
        let byte_at = |sym: usize| (p.addr(sym, LOAD) - LOAD) as usize;
        let x = byte_at(sym!(vmm_guest_xsave_xsetbv));
        assert_eq!(&p.bytes[x..x + 3], &[0x0f, 0x01, 0xd1]);
        let g = byte_at(sym!(vmm_guest_xsave_xgetbv));
        assert_eq!(&p.bytes[g..g + 3], &[0x0f, 0x01, 0xd0]);
        assert_eq!(p.bytes[byte_at(sym!(vmm_guest_xsave_probe_hlt))], 0xf4);
        assert_eq!(p.bytes[byte_at(sym!(vmm_guest_xsave_batch_hlt))], 0xf4);
        // The probe's HLT is followed by the batch loop.
        assert_eq!(
            p.addr(sym!(vmm_guest_xsave_probe_hlt), LOAD) + 1,
            p.addr(sym!(vmm_guest_xsave_batch), LOAD)
        );
    }
}
