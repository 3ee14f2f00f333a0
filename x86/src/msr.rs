// SPDX-License-Identifier: GPL-2.0

//! MSR indices, for the guest and for the host code alike (the VMX
//! capability MSRs, FLUSH_CMD, AMD's VM_CR and VM_HSAVE_PA), and guest MSR
//! policy: which MSRs the kernel handles, which the hardware switches
//! ([`DirectMsr`]), which go to userspace, and the validity rules for the
//! ones the kernel handles (SDM Vol. 4; SDM Vol. 3A 11.11 for MTRRs,
//! 11.12.2 for PAT; APM Vol. 2 3.1.7 for EFER). The bits of EFER are in
//! [`super::regs::efer`].
//!
//! Glossary: MSR = model-specific register; #GP = general-protection
//! exception; PAT = page attribute table; MTRR = memory type range
//! register; UC/WC/WT/WP/WB = the memory types uncacheable, write-combining,
//! write-through, write-protected, write-back (encodings 0, 1, 4, 5, 6;
//! PAT adds 7 = UC-); M = MAXPHYADDR; VMCB = AMD's virtual machine
//! control block; VMLOAD/VMSAVE = the SVM instructions that switch the
//! syscall, segment-base and SYSENTER MSRs.

pub use super::paging::canonical;
use super::regs::efer;

/// IA32_TIME_STAMP_COUNTER.
pub const TSC: u32 = 0x10;
/// IA32_PLATFORM_ID.
pub const PLATFORM_ID: u32 = 0x17;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1b;
/// IA32_FEATURE_CONTROL: firmware's lock and VMX enables.
pub const FEATURE_CONTROL: u32 = 0x3a;
/// IA32_SPEC_CTRL (left to userspace).
pub const SPEC_CTRL: u32 = 0x48;
/// IA32_PRED_CMD (left to userspace).
pub const PRED_CMD: u32 = 0x49;
/// IA32_BIOS_SIGN_ID (microcode revision).
pub const BIOS_SIGN_ID: u32 = 0x8b;
/// IA32_MTRRCAP.
pub const MTRRCAP: u32 = 0xfe;
/// IA32_FLUSH_CMD (write-only; bit 0 flushes the L1 data cache).
pub const FLUSH_CMD: u32 = 0x10b;
/// IA32_SYSENTER_CS.
pub const SYSENTER_CS: u32 = 0x174;
/// IA32_SYSENTER_ESP.
pub const SYSENTER_ESP: u32 = 0x175;
/// IA32_SYSENTER_EIP.
pub const SYSENTER_EIP: u32 = 0x176;
/// IA32_MISC_ENABLE.
pub const MISC_ENABLE: u32 = 0x1a0;
/// IA32_MTRR_PHYSBASE0; PHYSBASEn is `MTRR_PHYSBASE0 + 2n`, PHYSMASKn the
/// MSR after it.
pub const MTRR_PHYSBASE0: u32 = 0x200;
/// IA32_MTRR_PHYSMASK7, the last variable-range MSR.
pub const MTRR_PHYSMASK7: u32 = 0x20f;
/// IA32_MTRR_FIX64K_00000.
pub const MTRR_FIX64K_00000: u32 = 0x250;
/// IA32_MTRR_FIX16K_80000.
pub const MTRR_FIX16K_80000: u32 = 0x258;
/// IA32_MTRR_FIX16K_A0000.
pub const MTRR_FIX16K_A0000: u32 = 0x259;
/// IA32_MTRR_FIX4K_C0000; the eight 4K MSRs run to 0x26f (F8000).
pub const MTRR_FIX4K_C0000: u32 = 0x268;
/// IA32_MTRR_FIX4K_F8000.
pub const MTRR_FIX4K_F8000: u32 = 0x26f;
/// IA32_TSC_DEADLINE: the local APIC timer's deadline in TSC-deadline mode.
pub const TSC_DEADLINE: u32 = 0x6e0;
/// First MSR of the x2APIC range.
pub const X2APIC_FIRST: u32 = 0x800;
/// Last MSR of the x2APIC range.
pub const X2APIC_LAST: u32 = 0x8ff;
/// IA32_PAT.
pub const PAT: u32 = 0x277;
/// IA32_MTRR_DEF_TYPE.
pub const MTRR_DEF_TYPE: u32 = 0x2ff;
/// IA32_VMX_BASIC (SDM Vol. 3D A.1).
pub const VMX_BASIC: u32 = 0x480;
/// IA32_VMX_PINBASED_CTLS.
pub const VMX_PINBASED_CTLS: u32 = 0x481;
/// IA32_VMX_PROCBASED_CTLS.
pub const VMX_PROCBASED_CTLS: u32 = 0x482;
/// IA32_VMX_EXIT_CTLS.
pub const VMX_EXIT_CTLS: u32 = 0x483;
/// IA32_VMX_ENTRY_CTLS.
pub const VMX_ENTRY_CTLS: u32 = 0x484;
/// IA32_VMX_MISC.
pub const VMX_MISC: u32 = 0x485;
/// IA32_VMX_CR0_FIXED0.
pub const VMX_CR0_FIXED0: u32 = 0x486;
/// IA32_VMX_CR0_FIXED1.
pub const VMX_CR0_FIXED1: u32 = 0x487;
/// IA32_VMX_CR4_FIXED0.
pub const VMX_CR4_FIXED0: u32 = 0x488;
/// IA32_VMX_CR4_FIXED1.
pub const VMX_CR4_FIXED1: u32 = 0x489;
/// IA32_VMX_PROCBASED_CTLS2.
pub const VMX_PROCBASED_CTLS2: u32 = 0x48b;
/// IA32_VMX_EPT_VPID_CAP.
pub const VMX_EPT_VPID_CAP: u32 = 0x48c;
/// IA32_VMX_TRUE_PINBASED_CTLS.
pub const VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
/// IA32_VMX_TRUE_PROCBASED_CTLS.
pub const VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
/// IA32_VMX_TRUE_EXIT_CTLS.
pub const VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
/// IA32_VMX_TRUE_ENTRY_CTLS.
pub const VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
/// IA32_EFER.
pub const EFER: u32 = 0xc000_0080;
/// IA32_STAR.
pub const STAR: u32 = 0xc000_0081;
/// IA32_LSTAR.
pub const LSTAR: u32 = 0xc000_0082;
/// IA32_CSTAR.
pub const CSTAR: u32 = 0xc000_0083;
/// IA32_FMASK (SFMASK).
pub const SFMASK: u32 = 0xc000_0084;
/// IA32_FS_BASE.
pub const FS_BASE: u32 = 0xc000_0100;
/// IA32_GS_BASE.
pub const GS_BASE: u32 = 0xc000_0101;
/// IA32_KERNEL_GS_BASE.
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
/// IA32_TSC_AUX.
pub const TSC_AUX: u32 = 0xc000_0103;
/// VM_CR (AMD): SVM lock and disable controls (APM Vol. 2 15.30.1).
pub const VM_CR: u32 = 0xc001_0114;
/// VM_HSAVE_PA (AMD): physical address of the host save area (APM Vol. 2
/// 15.30.4).
pub const VM_HSAVE_PA: u32 = 0xc001_0117;

/// Inject #GP(0): the guest's access is not allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gp;

/// What the kernel does with one intercepted RDMSR or WRMSR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrAction {
    /// Complete the instruction and advance RIP; for RDMSR, EDX:EAX gets
    /// this value (WRMSR ignores it).
    Complete(u64),
    /// Inject #GP(0); RIP stays on the instruction.
    Gp,
    /// Exit to userspace with the index (and, for WRMSR, the value), which
    /// completes the access or asks for #GP.
    User,
}

impl From<Gp> for MsrAction {
    fn from(_: Gp) -> Self {
        Self::Gp
    }
}

impl From<Result<u64, Gp>> for MsrAction {
    fn from(r: Result<u64, Gp>) -> Self {
        match r {
            Ok(v) => Self::Complete(v),
            Err(Gp) => Self::Gp,
        }
    }
}

/// Who handles a guest MSR access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrClass {
    /// The vCPU code in the kernel emulates it (EFER, PAT, TSC, TSC_AUX,
    /// the MTRRs, MISC_ENABLE, PLATFORM_ID, BIOS_SIGN_ID; the local APIC's
    /// APIC_BASE, TSC_DEADLINE and x2APIC range).
    Kernel,
    /// The hardware switches it with the guest state, so the guest may
    /// access it directly: on SVM, VMLOAD/VMSAVE switch FS_BASE, GS_BASE,
    /// KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK and SYSENTER_CS/ESP/EIP
    /// (the VMCB holds them), and the backend leaves them unintercepted.
    /// When an access is intercepted anyway (a VMX backend without MSR
    /// load/store for one of them, or a userspace register write), the
    /// kernel reads or writes the saved copy, checking writes with
    /// [`DirectMsr::accept`].
    Hardware,
    /// Everything else, SPEC_CTRL and PRED_CMD included: exit to userspace.
    User,
}

/// Who handles guest accesses to `msr`.
pub fn classify(msr: u32) -> MsrClass {
    match msr {
        m if DirectMsr::from_index(m).is_some() => MsrClass::Hardware,
        EFER | PAT | TSC | TSC_AUX | APIC_BASE | TSC_DEADLINE | MISC_ENABLE | PLATFORM_ID
        | BIOS_SIGN_ID => MsrClass::Kernel,
        X2APIC_FIRST..=X2APIC_LAST => MsrClass::Kernel,
        m if is_mtrr(m) => MsrClass::Kernel,
        _ => MsrClass::User,
    }
}

// --- Direct MSRs --------------------------------------------------------------

/// The MSRs of [`MsrClass::Hardware`]: the guest reads and writes them
/// without exiting on both backends, because the hardware switches them
/// (VMLOAD/VMSAVE, or VMCS guest-state fields) or the backend does around
/// each entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectMsr {
    /// IA32_FS_BASE.
    FsBase,
    /// IA32_GS_BASE.
    GsBase,
    /// IA32_KERNEL_GS_BASE (the value SWAPGS exchanges with GS_BASE).
    KernelGsBase,
    /// IA32_STAR: SYSCALL/SYSRET selectors (and the legacy SYSCALL EIP).
    Star,
    /// IA32_LSTAR: the 64-bit SYSCALL target.
    Lstar,
    /// IA32_CSTAR: the compatibility-mode SYSCALL target (AMD).
    Cstar,
    /// IA32_FMASK: RFLAGS bits SYSCALL clears.
    Sfmask,
    /// IA32_SYSENTER_CS.
    SysenterCs,
    /// IA32_SYSENTER_ESP.
    SysenterEsp,
    /// IA32_SYSENTER_EIP.
    SysenterEip,
}

impl DirectMsr {
    /// Every direct MSR, in declaration order (`ALL[m as usize] == m`).
    pub const ALL: [DirectMsr; 10] = [
        Self::FsBase,
        Self::GsBase,
        Self::KernelGsBase,
        Self::Star,
        Self::Lstar,
        Self::Cstar,
        Self::Sfmask,
        Self::SysenterCs,
        Self::SysenterEsp,
        Self::SysenterEip,
    ];

    /// The SYSCALL MSRs: STAR, LSTAR, CSTAR, SFMASK.
    pub const SYSCALL: [DirectMsr; 4] = [Self::Star, Self::Lstar, Self::Cstar, Self::Sfmask];

    /// The MSR's index (the number RDMSR and WRMSR take in ECX).
    pub const fn index(self) -> u32 {
        match self {
            Self::FsBase => FS_BASE,
            Self::GsBase => GS_BASE,
            Self::KernelGsBase => KERNEL_GS_BASE,
            Self::Star => STAR,
            Self::Lstar => LSTAR,
            Self::Cstar => CSTAR,
            Self::Sfmask => SFMASK,
            Self::SysenterCs => SYSENTER_CS,
            Self::SysenterEsp => SYSENTER_ESP,
            Self::SysenterEip => SYSENTER_EIP,
        }
    }

    /// The direct MSR with index `msr`, if it is one.
    pub fn from_index(msr: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.index() == msr)
    }

    /// The value a guest WRMSR of `value` stores, or `None` for #GP:
    /// - the address MSRs (FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, CSTAR,
    ///   SYSENTER_ESP, SYSENTER_EIP) must be canonical, at 57 bits when
    ///   `la57` (the host's and the guest's linear-address width) and at 48
    ///   bits otherwise;
    /// - STAR takes any value;
    /// - SFMASK keeps the low 32 bits (the rest is reserved, read as zero);
    /// - SYSENTER_CS keeps the low 16 bits.
    pub fn accept(self, value: u64, la57: bool) -> Option<u64> {
        match self {
            Self::Star => Some(value),
            Self::Sfmask => Some(value & 0xffff_ffff),
            Self::SysenterCs => Some(value & 0xffff),
            Self::FsBase
            | Self::GsBase
            | Self::KernelGsBase
            | Self::Lstar
            | Self::Cstar
            | Self::SysenterEsp
            | Self::SysenterEip => canonical(value, la57).then_some(value),
        }
    }
}

// --- EFER ---------------------------------------------------------------------

/// The EFER bits a guest may ever set: SCE, LME, NXE, FFXSR. Never SVME
/// (no nested virtualization), LMSLE or TCE (not virtualized).
pub const EFER_GUEST_WRITABLE: u64 = efer::SCE | efer::LME | efer::NXE | efer::FFXSR;

/// The writable EFER bits the guest's CPUID 0x8000_0001 EDX advertises:
/// SCE with SYSCALL (bit 11), NXE with NX (20), FFXSR with FFXSR (25), LME
/// with LM (29).
pub const fn efer_allowed(cpuid_8000_0001_edx: u32) -> u64 {
    const SYSCALL: u32 = 1 << 11;
    const NX: u32 = 1 << 20;
    const FFXSR: u32 = 1 << 25;
    const LM: u32 = 1 << 29;
    let edx = cpuid_8000_0001_edx;
    let mut allowed = 0;
    if edx & SYSCALL != 0 {
        allowed |= efer::SCE;
    }
    if edx & NX != 0 {
        allowed |= efer::NXE;
    }
    if edx & FFXSR != 0 {
        allowed |= efer::FFXSR;
    }
    if edx & LM != 0 {
        allowed |= efer::LME;
    }
    allowed
}

/// Checks a guest WRMSR to EFER and returns the value to store:
/// - a bit outside `allowed` (and outside [`EFER_GUEST_WRITABLE`]) → #GP;
/// - LMA is read-only: the written value of it is ignored and `old`'s kept;
/// - changing LME while CR0.PG = 1 → #GP (SDM 9.8.5, APM 14.6.1).
///
/// This is the guest-visible value. On SVM the hardware also needs
/// EFER.SVME in the VMCB's guest EFER; the caller adds it there and never
/// shows it to the guest.
pub fn efer_write_ok(old: u64, new: u64, cr0_pg: bool, allowed: u64) -> Result<u64, Gp> {
    let new = new & !efer::LMA;
    if new & !(allowed & EFER_GUEST_WRITABLE) != 0 {
        return Err(Gp);
    }
    if cr0_pg && (old ^ new) & efer::LME != 0 {
        return Err(Gp);
    }
    Ok(new | (old & efer::LMA))
}

// --- PAT and memory types ------------------------------------------------------

/// Whether `t` is a memory type MTRRs may hold: UC, WC, WT, WP, WB.
const fn mtrr_type_valid(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

/// Whether every byte of `v` is an MTRR memory type (fixed-range MTRRs).
fn all_bytes(v: u64, valid: fn(u64) -> bool) -> bool {
    (0..8).all(|i| valid((v >> (8 * i)) & 0xff))
}

/// Whether `v` is a valid IA32_PAT: each of the eight entries is UC, WC,
/// WT, WP, WB or UC- (0, 1, 4, 5, 6, 7); anything else is #GP (SDM
/// 11.12.2), including bits 7:3 of an entry.
pub fn pat_valid(v: u64) -> bool {
    all_bytes(v, |t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

// --- MTRRs --------------------------------------------------------------------

/// MTRR_DEF_TYPE.FE: fixed-range MTRRs enabled.
pub const MTRR_DEF_TYPE_FE: u64 = 1 << 10;
/// MTRR_DEF_TYPE.E: MTRRs enabled.
pub const MTRR_DEF_TYPE_E: u64 = 1 << 11;
/// PHYSMASKn.V: the variable range is valid.
pub const MTRR_PHYSMASK_V: u64 = 1 << 11;

/// What MTRRCAP reports: 8 variable ranges (VCNT), fixed ranges (FIX,
/// bit 8), write-combining (WC, bit 10); no SMRR.
pub const MTRRCAP_VALUE: u64 = 8 | 1 << 8 | 1 << 10;

/// Whether `v` is a valid IA32_MTRR_DEF_TYPE: the type is UC, WC, WT, WP
/// or WB, and only bits 7:0, 10 (FE) and 11 (E) are set (SDM 11.11.2.1).
pub fn mtrr_def_type_valid(v: u64) -> bool {
    v & !(0xff | MTRR_DEF_TYPE_FE | MTRR_DEF_TYPE_E) == 0 && mtrr_type_valid(v & 0xff)
}

/// Whether `msr` is one of the MTRR MSRs [`Mtrr`] holds (MTRRCAP
/// included).
pub fn is_mtrr(msr: u32) -> bool {
    msr == MTRRCAP || msr == MTRR_DEF_TYPE || var_index(msr).is_some() || fixed_index(msr).is_some()
}

/// The index into [`Mtrr`]'s variable-range registers (PHYSBASE0 = 0,
/// PHYSMASK0 = 1, ...).
fn var_index(msr: u32) -> Option<usize> {
    let i = msr.wrapping_sub(MTRR_PHYSBASE0);
    (i <= MTRR_PHYSMASK7 - MTRR_PHYSBASE0).then_some(i as usize)
}

/// The index into [`Mtrr`]'s fixed-range registers, in address order.
fn fixed_index(msr: u32) -> Option<usize> {
    match msr {
        MTRR_FIX64K_00000 => Some(0),
        MTRR_FIX16K_80000 => Some(1),
        MTRR_FIX16K_A0000 => Some(2),
        MTRR_FIX4K_C0000..=MTRR_FIX4K_F8000 => {
            Some(3 + msr.wrapping_sub(MTRR_FIX4K_C0000) as usize)
        }
        _ => None,
    }
}

/// A vCPU's MTRRs, as the guest programmed them. Every value in here
/// passed [`Mtrr::write`]'s checks. The reset state is all zeros: MTRRs
/// disabled, everything UC (SDM 11.11.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mtrr {
    def_type: u64,
    fixed: [u64; 11],
    /// PHYSBASE0, PHYSMASK0, ..., PHYSBASE7, PHYSMASK7.
    var: [u64; 16],
    /// The guest's MAXPHYADDR, clamped to 32..=52.
    phys_bits: u8,
}

impl Mtrr {
    /// The reset state, for a guest whose MAXPHYADDR is `phys_bits`.
    pub const fn new(phys_bits: u8) -> Self {
        let phys_bits = if phys_bits < 32 {
            32
        } else if phys_bits > 52 {
            52
        } else {
            phys_bits
        };
        Self { def_type: 0, fixed: [0; 11], var: [0; 16], phys_bits }
    }

    /// The value of `msr`, or `None` if it is not an MTRR MSR.
    pub fn read(&self, msr: u32) -> Option<u64> {
        match msr {
            MTRRCAP => Some(MTRRCAP_VALUE),
            MTRR_DEF_TYPE => Some(self.def_type),
            _ => var_index(msr)
                .and_then(|i| self.var.get(i))
                .or_else(|| fixed_index(msr).and_then(|i| self.fixed.get(i)))
                .copied(),
        }
    }

    /// A guest WRMSR of `v` to `msr`. #GP when `msr` is MTRRCAP
    /// (read-only) or not an MTRR MSR, or when `v` breaks the register's
    /// rules (SDM 11.11.2):
    /// - DEF_TYPE: see [`mtrr_def_type_valid`];
    /// - fixed ranges: every byte a valid type;
    /// - PHYSBASEn: type in bits 7:0, bits 11:8 and M and above zero;
    /// - PHYSMASKn: bits 10:0 and M and above zero.
    pub fn write(&mut self, msr: u32, v: u64) -> Result<(), Gp> {
        let ok = match msr {
            MTRR_DEF_TYPE => mtrr_def_type_valid(v),
            _ if fixed_index(msr).is_some() => all_bytes(v, mtrr_type_valid),
            _ if var_index(msr).is_some_and(|i| i % 2 == 0) => {
                v & (0xf00 | self.above_maxphyaddr()) == 0 && mtrr_type_valid(v & 0xff)
            }
            _ if var_index(msr).is_some() => v & (0x7ff | self.above_maxphyaddr()) == 0,
            _ => false,
        };
        if !ok {
            return Err(Gp);
        }
        let slot = match msr {
            MTRR_DEF_TYPE => Some(&mut self.def_type),
            _ => match (var_index(msr), fixed_index(msr)) {
                (Some(i), _) => self.var.get_mut(i),
                (None, Some(i)) => self.fixed.get_mut(i),
                (None, None) => None,
            },
        };
        *slot.ok_or(Gp)? = v;
        Ok(())
    }

    /// Address bits M and above.
    fn above_maxphyaddr(&self) -> u64 {
        u64::MAX.checked_shl(u32::from(self.phys_bits)).unwrap_or(0)
    }
}

#[cfg(test)]
#[path = "tests_msr.rs"]
mod tests;
