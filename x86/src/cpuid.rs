// SPDX-License-Identifier: GPL-2.0

//! What the guest sees from CPUID: the default answers, computed from the
//! host's, and lookups in a table that userspace supplies instead.
//!
//! Glossary: leaf = the EAX input; sub-leaf = the ECX input; XCR0 = the
//! extended control register that enables XSAVE state components; XSS =
//! IA32_XSS, the supervisor counterpart; APIC = advanced programmable
//! interrupt controller; x2APIC = its MSR-addressed mode with 32-bit ids;
//! TSC-deadline = the APIC timer mode armed by IA32_TSC_DEADLINE; ARAT =
//! "APIC timer always running" (it does not stop in deep C-states); HTT =
//! the leaf-1 "logical processor count is valid" bit; NC = AMD's thread
//! count in leaf 0x8000_0008; crystal = the core crystal clock of leaf
//! 0x15, which the TSC is a ratio of.
//!
//! # Default policy
//!
//! Guests see the host's features except those that vmm does not
//! virtualize. Where a register is full of features that need a
//! hypervisor's help, it is filtered through an allow-list, so that
//! features newer than this table stay hidden until someone decides.
//! What vmm emulates itself (the local APIC, its TSC-deadline timer) is
//! shown whatever the host has.
//!
//! Leaf by leaf (`n.m` = leaf n, sub-leaf m):
//!
//! - **0**: the maximum basic leaf: the host's, capped at [`MAX_BASIC`]
//!   (later leaves have not been reviewed) and raised to at least
//!   [`MIN_BASIC`] so that the topology leaf is there; the vendor string.
//!   A leaf above the host's own maximum that vmm does not make up
//!   answers zeros.
//! - **1**: EAX (family, model, stepping) passes. EBX\[31:24\] = vCPU id
//!   (the APIC id), EBX\[23:16\] = vCPU count. ECX loses [`L1_ECX_HIDDEN`],
//!   gains [`L1_ECX_EMULATED`] (x2APIC, TSC-deadline, hypervisor), and
//!   OSXSAVE = guest CR4.OSXSAVE. EDX loses [`L1_EDX_HIDDEN`] and gains
//!   [`L1_EDX_EMULATED`] (APIC); HTT is set when there is more than one
//!   vCPU.
//! - **2, 0x16**: pass (cache descriptors, base and maximum frequency).
//! - **4**: the host's caches; the sharing and core counts follow the
//!   vCPU count.
//! - **6**: EAX = ARAT only: the emulated APIC timer runs whatever the
//!   vCPU does. The thermal and power features are not virtualized.
//! - **3, 5, 8-0xA, 0xC, 0xE-0x14**: zeros. Serial number, MONITOR/MWAIT,
//!   DCA, perfmon, RDT, SGX and PT are not virtualized.
//! - **7.0**: EAX (max sub-leaf) = min(host, 1); EBX, ECX and EDX through
//!   [`L7_EBX_ALLOWED`], [`L7_ECX_ALLOWED`], [`L7_EDX_ALLOWED`]: no SGX,
//!   MPX, PT, PKU, WAITPKG, CET, RDPID, AMX, TSC_ADJUST, nor the
//!   SPEC_CTRL family. **7.1**: [`L7_1_EAX_ALLOWED`], [`L7_1_EDX_ALLOWED`]
//!   (no FRED, LAM, LASS, ...). **7.2** and up: zeros.
//! - **0xB**: the x2APIC topology (below).
//! - **0xD**: components limited to [`guest_xcr0_allowed`], sizes
//!   recomputed for them and for the guest's XCR0, no XSAVES, no
//!   supervisor components.
//! - **0x15**: with a known guest TSC frequency ([`Guest::tsc_khz`]), made
//!   up so that crystal × EBX / EAX is exactly that frequency; the
//!   crystal is the APIC timer's clock ([`Guest::bus_khz`]) when the ratio
//!   fits, else the TSC itself ([`tsc_leaf`] has the rules). Unknown: the
//!   host's. The leaf is only there when the host's maximum reaches it.
//! - **0x4000_0000**: EAX = [`HYPERVISOR_MAX`], EBX:ECX:EDX =
//!   [`SIGNATURE`]. **0x4000_0001-0x4000_000F**: zeros (no paravirtual
//!   interface). **0x4000_0010** ([`TIMING_LEAF`]): EAX = TSC kHz, EBX =
//!   APIC bus kHz, ECX = EDX = 0. **0x4000_0011-0x4000_00FF**: zeros.
//! - **0x8000_0000**: the maximum extended leaf, capped at
//!   [`MAX_EXTENDED`].
//! - **0x8000_0001**: ECX through [`E1_ECX_ALLOWED`] (no SVM, IBS, LWP,
//!   topology or perf-counter extensions); EDX without RDTSCP, and with
//!   AMD's copy of the APIC bit when the vendor is AMD (on Intel the bit
//!   is reserved).
//! - **0x8000_0002-0x8000_0006**: pass (brand string, caches).
//! - **0x8000_0007**: EDX keeps only the invariant-TSC bit.
//! - **0x8000_0008**: EAX (address sizes) passes; EBX through
//!   [`E8_EBX_ALLOWED`] (no INVLPGB, RDPRU, SPEC_CTRL family); ECX = vCPU
//!   count - 1; EDX = 0.
//! - **0x8000_000A** (SVM) and everything above: zeros.
//!
//! A leaf above the guest's maximum answers zeros, as AMD and QEMU do,
//! rather than Intel's "the highest basic leaf's data".
//!
//! # Topology
//!
//! One package of `count` cores, one thread each, APIC id = x2APIC id =
//! vCPU id. Every description of it agrees, so that Linux finds the same
//! topology whichever leaves it reads (leaf 0xB on both vendors when the
//! maximum reaches it; leaves 1 and 4 on Intel, 1 and 0x8000_0008 on AMD
//! otherwise): leaf 1 gives `count` logical processors and HTT, leaf 4
//! `count` cores, 0x8000_0008 `count` threads with the id size left to be
//! derived from it, and leaf 0xB has
//!
//! - 0xB.0: SMT level, shift 0, 1 thread, ECX = 0 | 1 << 8;
//! - 0xB.1: core level, shift = the bits that hold `count - 1`
//!   (`get_count_order(count)` in Linux), `count` threads, ECX = 1 | 2 << 8;
//! - 0xB.2 and up: invalid, ECX = the sub-leaf, type 0;
//!
//! with EDX = the x2APIC id in every sub-leaf. Leaf 0x1F is above
//! [`MAX_BASIC`] and reads as absent. Leaf 1's 8-bit id wraps above 255;
//! the x2APIC id does not.
//!
//! # Hypervisor signature
//!
//! We keep our own signature rather than borrow "KVMKVMKVM", which would
//! make Linux use KVM's paravirtual MSRs (kvmclock, async page faults, PV
//! EOI), none of which vmm implements. Linux (7.3) then finds no
//! hypervisor driver (`init_hypervisor_platform`), so
//! `x86_init.hyper.x2apic_available` stays the default that answers
//! false; without interrupt remapping (vmm has no IOMMU),
//! `try_to_enable_x2apic` prints "x2apic: IRQ remapping doesn't support
//! X2APIC mode" and keeps or puts the APIC in xAPIC mode (it panics
//! instead if firmware left x2APIC on with an id of 255 or more). The
//! x2APIC is still there for other guests, and Linux still reads leaf
//! 0xB for the topology. Linux reads 0x4000_0010 only behind the VMware
//! (ECX, the hypercall mode) and ACRN (EAX, TSC kHz) signatures, so a
//! Linux guest takes the TSC frequency from leaf 0x15 (Intel vendor only,
//! `native_calibrate_tsc`, which also takes the APIC timer's period from
//! the crystal) or calibrates it; a guest that knows the generic leaf
//! learns the TSC and APIC bus frequency from 0x4000_0010 (as VMware
//! defines it: EAX = TSC kHz, EBX = APIC bus kHz).
//!
//! Some answers depend on guest state that changes at run time (CR4,
//! XCR0); [`Guest`] carries it, and [`table_answer_live`] applies the
//! same updates to userspace tables.

use super::{regs::cr4, CpuInfo, Vendor};

/// One CPUID answer: EAX, EBX, ECX, EDX.
pub type Regs = [u32; 4];

const EAX: usize = 0;
const EBX: usize = 1;
const ECX: usize = 2;
const EDX: usize = 3;
const ZERO: Regs = [0; 4];

/// The highest basic leaf guests see (the host's, if lower).
pub const MAX_BASIC: u32 = 0x16;
/// The lowest maximum basic leaf guests see, whatever the host's: 0xB, the
/// x2APIC topology, which vmm makes up.
pub const MIN_BASIC: u32 = 0xb;
// `clamp` between them must not panic.
const _: () = assert!(MIN_BASIC <= MAX_BASIC);
/// The highest extended leaf guests see (the host's, if lower).
pub const MAX_EXTENDED: u32 = 0x8000_0008;
/// The hypervisor leaf.
pub const HYPERVISOR_LEAF: u32 = 0x4000_0000;
/// The timing leaf: EAX = TSC kHz, EBX = APIC bus kHz (VMware's
/// definition).
pub const TIMING_LEAF: u32 = 0x4000_0010;
/// The highest hypervisor leaf, in 0x4000_0000 EAX.
pub const HYPERVISOR_MAX: u32 = TIMING_LEAF;
/// The hypervisor signature in leaf 0x4000_0000 EBX, ECX, EDX.
pub const SIGNATURE: [u8; 12] = *b"VmmRustVmm\0\0";

/// The guest state that some answers reflect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Guest {
    /// This vCPU's id, which is also its APIC id.
    pub vcpu_id: u32,
    /// How many vCPUs the VM has.
    pub nr_vcpus: u32,
    /// The guest's CR4 (OSXSAVE, PKE).
    pub cr4: u64,
    /// The guest's XCR0 (leaf 0xD sizes).
    pub xcr0: u64,
    /// The guest's TSC frequency in kHz, 0 if unknown (then 0x4000_0010
    /// EAX is 0 and leaf 0x15 is the host's).
    pub tsc_khz: u32,
    /// The frequency in kHz of the clock that feeds the APIC timer (before
    /// its divider).
    pub bus_khz: u32,
}

// --- leaf 1 -------------------------------------------------------------------

/// 1.ECX: 64-bit debug store.
pub const L1_ECX_DTES64: u32 = 1 << 2;
/// 1.ECX: MONITOR/MWAIT.
pub const L1_ECX_MONITOR: u32 = 1 << 3;
/// 1.ECX: CPL-qualified debug store.
pub const L1_ECX_DSCPL: u32 = 1 << 4;
/// 1.ECX: VMX.
pub const L1_ECX_VMX: u32 = 1 << 5;
/// 1.ECX: SMX (GETSEC).
pub const L1_ECX_SMX: u32 = 1 << 6;
/// 1.ECX: Enhanced SpeedStep (IA32_PERF_CTL).
pub const L1_ECX_EIST: u32 = 1 << 7;
/// 1.ECX: Thermal Monitor 2.
pub const L1_ECX_TM2: u32 = 1 << 8;
/// 1.ECX: L1 context ID.
pub const L1_ECX_CNXT_ID: u32 = 1 << 10;
/// 1.ECX: IA32_DEBUG_INTERFACE.
pub const L1_ECX_SDBG: u32 = 1 << 11;
/// 1.ECX: xTPR update control.
pub const L1_ECX_XTPR: u32 = 1 << 14;
/// 1.ECX: perfmon and debug capability MSR.
pub const L1_ECX_PDCM: u32 = 1 << 15;
/// 1.ECX: direct cache access.
pub const L1_ECX_DCA: u32 = 1 << 18;
/// 1.ECX: x2APIC.
pub const L1_ECX_X2APIC: u32 = 1 << 21;
/// 1.ECX: TSC-deadline timer mode.
pub const L1_ECX_TSC_DEADLINE: u32 = 1 << 24;
/// 1.ECX: XSAVE.
pub const L1_ECX_XSAVE: u32 = 1 << 26;
/// 1.ECX: OSXSAVE, a copy of CR4.OSXSAVE.
pub const L1_ECX_OSXSAVE: u32 = 1 << 27;
/// 1.ECX: running under a hypervisor.
pub const L1_ECX_HYPERVISOR: u32 = 1 << 31;

/// 1.EDX: on-chip local APIC.
pub const L1_EDX_APIC: u32 = 1 << 9;
/// 1.EDX: processor serial number.
pub const L1_EDX_PSN: u32 = 1 << 18;
/// 1.EDX: debug store.
pub const L1_EDX_DS: u32 = 1 << 21;
/// 1.EDX: thermal monitor and clock control (ACPI).
pub const L1_EDX_ACPI: u32 = 1 << 22;
/// 1.EDX: EBX\[23:16\] is valid.
pub const L1_EDX_HTT: u32 = 1 << 28;
/// 1.EDX: thermal monitor.
pub const L1_EDX_TM: u32 = 1 << 29;
/// 1.EDX: pending break enable.
pub const L1_EDX_PBE: u32 = 1 << 31;

/// 1.ECX bits never passed through: VMX and SMX (no nesting, no TXT);
/// MONITOR (MWAIT is not virtualized); debug store, PDCM, xTPR, SDBG, EIST,
/// TM2, CNXT-ID and DCA (MSRs and platform features that are not
/// emulated); OSXSAVE (it follows the guest's CR4 instead).
pub const L1_ECX_HIDDEN: u32 = L1_ECX_DTES64
    | L1_ECX_MONITOR
    | L1_ECX_DSCPL
    | L1_ECX_VMX
    | L1_ECX_SMX
    | L1_ECX_EIST
    | L1_ECX_TM2
    | L1_ECX_CNXT_ID
    | L1_ECX_SDBG
    | L1_ECX_XTPR
    | L1_ECX_PDCM
    | L1_ECX_DCA
    | L1_ECX_OSXSAVE;

/// 1.ECX bits always set, whatever the host has: x2APIC and TSC-deadline
/// (the local APIC is emulated, not passed through), and the hypervisor
/// bit.
pub const L1_ECX_EMULATED: u32 = L1_ECX_X2APIC | L1_ECX_TSC_DEADLINE | L1_ECX_HYPERVISOR;

/// 1.EDX bits never passed through: serial number, debug store, ACPI
/// thermal control, TM, PBE; HTT follows the vCPU count instead.
pub const L1_EDX_HIDDEN: u32 =
    L1_EDX_PSN | L1_EDX_DS | L1_EDX_ACPI | L1_EDX_HTT | L1_EDX_TM | L1_EDX_PBE;

/// 1.EDX bits always set, whatever the host has: the (emulated) local APIC.
pub const L1_EDX_EMULATED: u32 = L1_EDX_APIC;

// --- leaf 6, leaf 0xB -------------------------------------------------------------

/// 6.EAX: the APIC timer keeps running in deep C-states (ARAT).
pub const L6_EAX_ARAT: u32 = 1 << 2;

/// 0xB.ECX\[15:8\] level type: invalid (no such level).
pub const LB_TYPE_INVALID: u32 = 0;
/// 0xB.ECX\[15:8\] level type: SMT (threads of a core).
pub const LB_TYPE_SMT: u32 = 1;
/// 0xB.ECX\[15:8\] level type: core (cores of a package).
pub const LB_TYPE_CORE: u32 = 2;

// --- leaf 7 ---------------------------------------------------------------------

/// 7.0.ECX: protection keys for user pages.
pub const L7_ECX_PKU: u32 = 1 << 3;
/// 7.0.ECX: OSPKE, a copy of CR4.PKE.
pub const L7_ECX_OSPKE: u32 = 1 << 4;

/// 7.0.EBX bits passed through: FSGSBASE(0), BMI1(3), HLE(4), AVX2(5),
/// FDP_EXCPTN_ONLY(6), SMEP(7), BMI2(8), ERMS(9), INVPCID(10, nested
/// paging leaves it to the guest), RTM(11), FPU CS/DS deprecation(13),
/// AVX512F(16), AVX512DQ(17), RDSEED(18), ADX(19), SMAP(20),
/// AVX512_IFMA(21), CLFLUSHOPT(23), CLWB(24), AVX512PF(26), AVX512ER(27),
/// AVX512CD(28), SHA(29), AVX512BW(30), AVX512VL(31). Hidden: TSC_ADJUST(1,
/// MSR not emulated), SGX(2), RDT monitoring(12) and allocation(15),
/// MPX(14), PT(25).
pub const L7_EBX_ALLOWED: u32 = 1 << 0
    | 1 << 3
    | 1 << 4
    | 1 << 5
    | 1 << 6
    | 1 << 7
    | 1 << 8
    | 1 << 9
    | 1 << 10
    | 1 << 11
    | 1 << 13
    | 1 << 16
    | 1 << 17
    | 1 << 18
    | 1 << 19
    | 1 << 20
    | 1 << 21
    | 1 << 23
    | 1 << 24
    | 1 << 26
    | 1 << 27
    | 1 << 28
    | 1 << 29
    | 1 << 30
    | 1 << 31;

/// 7.0.ECX bits passed through: PREFETCHWT1(0), AVX512_VBMI(1), UMIP(2),
/// AVX512_VBMI2(6), GFNI(8), VAES(9), VPCLMULQDQ(10), AVX512_VNNI(11),
/// AVX512_BITALG(12), AVX512_VPOPCNTDQ(14), LA57(16, only if the host has
/// it, like every bit here), CLDEMOTE(25), MOVDIRI(27), MOVDIR64B(28).
/// Hidden: PKU(3) and OSPKE(4) (PKRU is not switched), WAITPKG(5),
/// CET_SS(7), TME(13), MAWAU(17-21), RDPID(22, TSC_AUX is not switched),
/// key locker(23), bus-lock detection(24), ENQCMD(29), SGX_LC(30), PKS(31).
pub const L7_ECX_ALLOWED: u32 = 1 << 0
    | 1 << 1
    | 1 << 2
    | 1 << 6
    | 1 << 8
    | 1 << 9
    | 1 << 10
    | 1 << 11
    | 1 << 12
    | 1 << 14
    | 1 << 16
    | 1 << 25
    | 1 << 27
    | 1 << 28;

/// 7.0.EDX bits passed through: AVX512_4VNNIW(2), AVX512_4FMAPS(3),
/// FSRM(4), AVX512_VP2INTERSECT(8), MD_CLEAR(10), RTM_ALWAYS_ABORT(11),
/// SERIALIZE(14), TSXLDTRK(16), AVX512_FP16(23). Hidden: SGX keys(1),
/// UINTR(5), SRBDS_CTRL(9), TSX_FORCE_ABORT(13), hybrid(15), PCONFIG(18),
/// arch LBR(19), CET_IBT(20), AMX(22, 24, 25), and the speculation
/// controls whose MSRs go to userspace: IBRS/IBPB(26), STIBP(27),
/// L1D_FLUSH(28), ARCH_CAPABILITIES(29), CORE_CAPABILITIES(30), SSBD(31).
pub const L7_EDX_ALLOWED: u32 =
    1 << 2 | 1 << 3 | 1 << 4 | 1 << 8 | 1 << 10 | 1 << 11 | 1 << 14 | 1 << 16 | 1 << 23;

/// 7.1.EAX bits passed through: AVX_VNNI(4), AVX512_BF16(5),
/// CMPCCXADD(7), FZRM(10), FSRS(11), FSRC(12), AVX_IFMA(23). Everything
/// else (LASS, FRED, LKGS, WRMSRNS, LAM, HRESET, AMX_FP16, ...) is hidden.
pub const L7_1_EAX_ALLOWED: u32 = 1 << 4 | 1 << 5 | 1 << 7 | 1 << 10 | 1 << 11 | 1 << 12 | 1 << 23;

/// 7.1.EDX bits passed through: AVX_VNNI_INT8(4), AVX_NE_CONVERT(5),
/// AVX_VNNI_INT16(10), PREFETCHI(14). Hidden: AMX_COMPLEX, UIRET_UIF,
/// CET_SSS, AVX10, APX and the rest.
pub const L7_1_EDX_ALLOWED: u32 = 1 << 4 | 1 << 5 | 1 << 10 | 1 << 14;

// --- leaf 0xD ---------------------------------------------------------------------

/// XCR0/XSS component: x87 state.
pub const XFEATURE_X87: u64 = 1 << 0;
/// XCR0/XSS component: SSE state.
pub const XFEATURE_SSE: u64 = 1 << 1;
/// XCR0/XSS component: AVX (upper YMM halves).
pub const XFEATURE_AVX: u64 = 1 << 2;
/// XCR0/XSS components: AVX-512 opmask, ZMM_Hi256 and Hi16_ZMM.
pub const XFEATURE_AVX512: u64 = 0b111 << 5;

/// 0xD.1.EAX bits passed through: XSAVEOPT(0), XSAVEC(1), XGETBV with
/// ECX = 1(2). Hidden: XSAVES(3, IA32_XSS is not emulated), XFD(4).
pub const LD_1_EAX_ALLOWED: u32 = 0b111;
const LD_1_EAX_XSAVEC: u32 = 1 << 1;
/// Size of the legacy region and XSAVE header.
const XSAVE_LEGACY_SIZE: u32 = 512 + 64;

/// The XCR0 components a guest may enable: x87, SSE and AVX, plus the
/// three AVX-512 components when the host has all of them (and AVX, as
/// the SDM requires of XCR0). Hidden: PKRU(9), CET(11, 12), AMX(17, 18),
/// APX and every supervisor component.
///
/// `host_xcr0_supported` is what the host can context-switch for the
/// guest; the XSETBV emulation uses the same function, so CPUID and XCR0
/// agree.
pub const fn guest_xcr0_allowed(host_xcr0_supported: u64) -> u64 {
    let base = host_xcr0_supported & (XFEATURE_X87 | XFEATURE_SSE | XFEATURE_AVX);
    let with_avx = base & XFEATURE_AVX != 0;
    if with_avx && host_xcr0_supported & XFEATURE_AVX512 == XFEATURE_AVX512 {
        base | XFEATURE_AVX512
    } else {
        base
    }
}

/// Whether `v` is an XCR0 that XSETBV accepts (SDM Vol 1, 13.3) within
/// `allowed`: x87 set; AVX only with SSE; the three AVX-512 components
/// together or not at all, and only with AVX; nothing outside `allowed`.
/// A host XSETBV of anything else raises #GP, so this guards both the
/// guest's XSETBV and every load of a guest value.
pub const fn xcr0_valid(v: u64, allowed: u64) -> bool {
    let avx512 = v & XFEATURE_AVX512;
    v & XFEATURE_X87 != 0
        && (v & XFEATURE_AVX == 0 || v & XFEATURE_SSE != 0)
        && (avx512 == 0 || (avx512 == XFEATURE_AVX512 && v & XFEATURE_AVX != 0))
        && v & !allowed == 0
}

// --- extended leaves ----------------------------------------------------------------

/// 0x8000_0001.ECX bits passed through: LAHF/SAHF(0), LZCNT(5), SSE4A(6),
/// MisAlignSse(7), PREFETCHW(8), XOP(11), FMA4(16), TBM(21). Hidden:
/// CmpLegacy(1, topology), SVM(2), ExtApicSpace(3), AltMovCr8(4), OSVW(9),
/// IBS(10), SKINIT(12), WDT(13), LWP(15), TCE(17), NodeId(19),
/// TopologyExtensions(22), the perf-counter extensions(23, 24, 27, 28),
/// DataBkptExt(26), MONITORX(29), AddrMaskExt(30).
pub const E1_ECX_ALLOWED: u32 =
    1 << 0 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 11 | 1 << 16 | 1 << 21;

/// 0x8000_0001.EDX: AMD's copy of the APIC bit (reserved on Intel).
pub const E1_EDX_APIC: u32 = 1 << 9;
/// 0x8000_0001.EDX: RDTSCP (hidden: TSC_AUX is not switched).
pub const E1_EDX_RDTSCP: u32 = 1 << 27;
/// 0x8000_0001.ECX: SVM.
pub const E1_ECX_SVM: u32 = 1 << 2;

/// 0x8000_0007.EDX: the TSC is invariant.
pub const E7_EDX_INVARIANT_TSC: u32 = 1 << 8;

/// 0x8000_0008.EBX bits passed through: CLZERO(0), XSAVE error-pointer
/// restore(2), WBNOINVD(9), EFER.LMSLE unsupported(20), SSB_NO(26),
/// BTC_NO(29). Hidden: IRPERF, INVLPGB, RDPRU, MCOMMIT, PPIN, CPPC and the
/// speculation controls (IBPB, IBRS, STIBP, SSBD, ...), whose MSRs go to
/// userspace.
pub const E8_EBX_ALLOWED: u32 = 1 << 0 | 1 << 2 | 1 << 9 | 1 << 20 | 1 << 26 | 1 << 29;

// --- answers -------------------------------------------------------------------------

/// The default guest answer for (`leaf`, `sub`), from the host's answers
/// to the same inputs and to the max-leaf queries; see the module
/// documentation for the policy.
pub fn default_answer(host: &impl CpuInfo, leaf: u32, sub: u32, guest: &Guest) -> Regs {
    match leaf {
        0..=0x3fff_ffff => basic(host, leaf, sub, guest),
        HYPERVISOR_LEAF => hypervisor(),
        TIMING_LEAF => [guest.tsc_khz, guest.bus_khz, 0, 0],
        0x8000_0000..=0x8fff_ffff => extended(host, leaf, sub, guest),
        _ => ZERO,
    }
}

fn basic(host: &impl CpuInfo, leaf: u32, sub: u32, guest: &Guest) -> Regs {
    let host_max = host.cpuid(0, 0)[EAX];
    let max = host_max.clamp(MIN_BASIC, MAX_BASIC);
    if leaf > max {
        return ZERO;
    }
    // Above its maximum, an Intel host answers with its highest leaf.
    let r = if leaf <= host_max { host.cpuid(leaf, sub) } else { ZERO };
    match leaf {
        0 => [max, r[EBX], r[ECX], r[EDX]],
        1 => leaf1(r, guest),
        2 | 0x16 => r,
        4 => leaf4(r, guest),
        6 => [L6_EAX_ARAT, 0, 0, 0],
        7 => leaf7(r, sub),
        0xb => topology(sub, guest),
        0xd => xsave(|i| host.cpuid(0xd, i), sub, guest),
        0x15 if guest.tsc_khz != 0 => tsc_leaf(guest.tsc_khz, guest.bus_khz),
        0x15 => r,
        _ => ZERO,
    }
}

/// The vCPU count, at least 1.
fn count(guest: &Guest) -> u32 {
    guest.nr_vcpus.max(1)
}

fn leaf1(r: Regs, guest: &Guest) -> Regs {
    let n = count(guest);
    let ebx = (r[EBX] & 0xffff) | (n.min(0xff) << 16) | ((guest.vcpu_id & 0xff) << 24);
    let mut ecx = (r[ECX] & !L1_ECX_HIDDEN) | L1_ECX_EMULATED;
    if guest.cr4 & cr4::OSXSAVE != 0 {
        ecx |= L1_ECX_OSXSAVE;
    }
    let mut edx = (r[EDX] & !L1_EDX_HIDDEN) | L1_EDX_EMULATED;
    if n > 1 {
        edx |= L1_EDX_HTT;
    }
    [r[EAX], ebx, ecx, edx]
}

/// Deterministic cache parameters: the host's caches, with EAX\[25:14\]
/// (threads sharing the cache, minus one) = 0 for L1 and L2, all vCPUs for
/// L3 and beyond, and EAX\[31:26\] (cores per package, minus one) from the
/// vCPU count.
fn leaf4(r: Regs, guest: &Guest) -> Regs {
    let cache_type = r[EAX] & 0x1f;
    if cache_type == 0 {
        return r;
    }
    let others = count(guest) - 1;
    let level = (r[EAX] >> 5) & 7;
    let sharing = if level >= 3 { others.min(0xfff) } else { 0 };
    let eax = (r[EAX] & 0x3fff) | (sharing << 14) | (others.min(0x3f) << 26);
    [eax, r[EBX], r[ECX], r[EDX]]
}

/// The bits of an APIC id that hold ids `0..n`: `get_count_order(n)` in
/// Linux, as leaf 0x8000_0008 NC implies and leaf 0xB's core level states.
fn id_bits(n: u32) -> u32 {
    u32::BITS - n.saturating_sub(1).leading_zeros()
}

/// Leaf 0xB, x2APIC topology: see the module documentation.
fn topology(sub: u32, guest: &Guest) -> Regs {
    let n = count(guest);
    let id = guest.vcpu_id;
    match sub {
        0 => [0, 1, LB_TYPE_SMT << 8, id],
        // EAX[4:0] and EBX[15:0] are all the room there is.
        1 => [id_bits(n).min(0x1f), n.min(0xffff), 1 | LB_TYPE_CORE << 8, id],
        _ => [0, 0, (sub & 0xff) | LB_TYPE_INVALID << 8, id],
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Leaf 0x15 for a TSC of `tsc_khz` (not zero) and an APIC timer fed at
/// `bus_khz`: EAX = denominator, EBX = numerator, ECX = crystal Hz, so
/// that TSC = crystal × EBX / EAX.
///
/// Linux (`native_calibrate_tsc`) computes `crystal_khz * EBX / EAX` in
/// 32 bits with `crystal_khz = ECX / 1000`, and sets the APIC timer's
/// period from the crystal too. So the crystal is the APIC timer's clock,
/// with the TSC ratio reduced, when that product fits; otherwise it is the
/// TSC itself (ratio 1/1, or k/1 with crystal = TSC / k when the TSC in Hz
/// does not fit ECX), which keeps the TSC exact but not the crystal-derived
/// APIC timer rate (Linux uses the TSC-deadline timer, which does not
/// depend on it). A TSC that neither way states exactly gets zeros:
/// unknown rather than wrong.
pub fn tsc_leaf(tsc_khz: u32, bus_khz: u32) -> Regs {
    if bus_khz != 0 && bus_khz <= u32::MAX / 1000 {
        let g = gcd(tsc_khz, bus_khz);
        let (den, num) = (bus_khz / g, tsc_khz / g);
        if bus_khz.checked_mul(num).is_some() {
            return [den, num, bus_khz * 1000, 0];
        }
    }
    for k in 1..=16 {
        let crystal_khz = tsc_khz / k;
        if tsc_khz % k == 0 && crystal_khz <= u32::MAX / 1000 {
            return [1, k, crystal_khz * 1000, 0];
        }
    }
    ZERO
}

fn leaf7(r: Regs, sub: u32) -> Regs {
    match sub {
        0 => [
            r[EAX].min(1),
            r[EBX] & L7_EBX_ALLOWED,
            r[ECX] & L7_ECX_ALLOWED,
            r[EDX] & L7_EDX_ALLOWED,
        ],
        1 => [r[EAX] & L7_1_EAX_ALLOWED, 0, 0, r[EDX] & L7_1_EDX_ALLOWED],
        _ => ZERO,
    }
}

/// Leaf 0xD, from `component(i)` = the host's (or a table's) sub-leaf `i`.
fn xsave(component: impl Fn(u32) -> Regs, sub: u32, guest: &Guest) -> Regs {
    let s0 = component(0);
    let supported = u64::from(s0[EAX]) | u64::from(s0[EDX]) << 32;
    let allowed = guest_xcr0_allowed(supported);
    if allowed == 0 {
        // No XSAVE on the host.
        return ZERO;
    }
    let enabled = guest.xcr0 & allowed;
    match sub {
        0 => [
            allowed as u32,
            xsave_size(&component, enabled, false),
            xsave_size(&component, allowed, false),
            (allowed >> 32) as u32,
        ],
        1 => {
            let eax = component(1)[EAX] & LD_1_EAX_ALLOWED;
            let ebx =
                if eax & LD_1_EAX_XSAVEC != 0 { xsave_size(&component, enabled, true) } else { 0 };
            [eax, ebx, 0, 0]
        }
        2..=63 if allowed & (1 << sub) != 0 => {
            let r = component(sub);
            // ECX[0] (supervisor) is clear for user components; keep the
            // alignment bit.
            [r[EAX], r[EBX], r[ECX] & 0b10, 0]
        }
        _ => ZERO,
    }
}

/// The size of an XSAVE area holding the components in `mask` (SDM
/// 13.4.3): standard format = the end of the last component; compacted =
/// the components packed in order, each 64-byte aligned if its ECX\[1\]
/// says so. The legacy region and header are always there.
fn xsave_size(component: &impl Fn(u32) -> Regs, mask: u64, compacted: bool) -> u32 {
    let mut size = XSAVE_LEGACY_SIZE;
    for i in 2..63 {
        if mask & (1 << i) == 0 {
            continue;
        }
        let [len, offset, flags, _] = component(i);
        if compacted {
            if flags & 0b10 != 0 {
                size = size.saturating_add(63) & !63;
            }
            size = size.saturating_add(len);
        } else {
            size = size.max(offset.saturating_add(len));
        }
    }
    size
}

fn hypervisor() -> Regs {
    let w = |i: usize| {
        let b = |j: usize| SIGNATURE.get(i + j).copied().unwrap_or(0);
        u32::from_le_bytes([b(0), b(1), b(2), b(3)])
    };
    [HYPERVISOR_MAX, w(0), w(4), w(8)]
}

fn extended(host: &impl CpuInfo, leaf: u32, sub: u32, guest: &Guest) -> Regs {
    let host_max = host.cpuid(0x8000_0000, 0)[EAX];
    let max = host_max.min(MAX_EXTENDED);
    if host_max < 0x8000_0000 || leaf > max {
        return ZERO;
    }
    let r = host.cpuid(leaf, sub);
    match leaf {
        0x8000_0000 => [max, r[EBX], r[ECX], r[EDX]],
        0x8000_0001 => {
            let apic = if Vendor::detect(host) == Vendor::Amd { E1_EDX_APIC } else { 0 };
            let edx = (r[EDX] & !(E1_EDX_APIC | E1_EDX_RDTSCP)) | apic;
            [r[EAX], r[EBX], r[ECX] & E1_ECX_ALLOWED, edx]
        }
        0x8000_0002..=0x8000_0006 => r,
        0x8000_0007 => [0, 0, 0, r[EDX] & E7_EDX_INVARIANT_TSC],
        // ECX: NC = threads - 1; ApicIdSize = 0 (derive it from NC).
        0x8000_0008 => [r[EAX], r[EBX] & E8_EBX_ALLOWED, (count(guest) - 1).min(0xff), 0],
        _ => ZERO,
    }
}

// --- userspace tables ----------------------------------------------------------------

/// One entry of a userspace CPUID table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TableEntry {
    /// The leaf (EAX input).
    pub function: u32,
    /// The sub-leaf (ECX input), when `indexed`.
    pub index: u32,
    /// Whether the entry answers only for `index`; if not, it answers for
    /// every sub-leaf.
    pub indexed: bool,
    /// The answer.
    pub regs: Regs,
}

impl TableEntry {
    fn answers(&self, leaf: u32, sub: u32) -> bool {
        self.function == leaf && (!self.indexed || self.index == sub)
    }
}

/// The table's answer for (`leaf`, `sub`): the first entry that matches,
/// or zeros when none does.
pub fn table_answer(entries: &[TableEntry], leaf: u32, sub: u32) -> Regs {
    find(entries, leaf, sub).map_or(ZERO, |e| e.regs)
}

fn find(entries: &[TableEntry], leaf: u32, sub: u32) -> Option<&TableEntry> {
    entries.iter().find(|e| e.answers(leaf, sub))
}

/// [`table_answer`], with the bits that mirror guest state brought up to
/// date, as the default answers have them: 1.ECX OSXSAVE = CR4.OSXSAVE,
/// 7.0.ECX OSPKE = CR4.PKE (if the table offers PKU), and the XSAVE area
/// sizes in 0xD.0.EBX and 0xD.1.EBX for the guest's XCR0 (computed from
/// the table's own sub-leaves; XSS is taken to be zero). A leaf the table
/// lacks stays all zeros.
pub fn table_answer_live(entries: &[TableEntry], leaf: u32, sub: u32, guest: &Guest) -> Regs {
    let Some(entry) = find(entries, leaf, sub) else {
        return ZERO;
    };
    let mut r = entry.regs;
    let component = |i| table_answer(entries, 0xd, i);
    match (leaf, sub) {
        (1, _) => {
            r[ECX] &= !L1_ECX_OSXSAVE;
            if guest.cr4 & cr4::OSXSAVE != 0 {
                r[ECX] |= L1_ECX_OSXSAVE;
            }
        }
        (7, 0) => {
            r[ECX] &= !L7_ECX_OSPKE;
            if r[ECX] & L7_ECX_PKU != 0 && guest.cr4 & cr4::PKE != 0 {
                r[ECX] |= L7_ECX_OSPKE;
            }
        }
        (0xd, 0) => {
            let supported = u64::from(r[EAX]) | u64::from(r[EDX]) << 32;
            r[EBX] = xsave_size(&component, guest.xcr0 & supported, false);
        }
        (0xd, 1) if r[EAX] & LD_1_EAX_XSAVEC != 0 => {
            let s0 = component(0);
            let supported = u64::from(s0[EAX]) | u64::from(s0[EDX]) << 32;
            r[EBX] = xsave_size(&component, guest.xcr0 & supported, true);
        }
        _ => {}
    }
    r
}

#[cfg(test)]
#[path = "tests_cpuid.rs"]
mod tests;
