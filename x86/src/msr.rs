// SPDX-License-Identifier: GPL-2.0

//! Guest MSR policy: which MSRs the kernel handles, which the hardware
//! switches, which go to userspace, and the validity rules for the ones
//! the kernel handles (SDM Vol. 4; SDM Vol. 3A 11.11 for MTRRs, 11.12.2
//! for PAT; APM Vol. 2 3.1.7 for EFER).
//!
//! Glossary: MSR = model-specific register; #GP = general-protection
//! exception; PAT = page attribute table; MTRR = memory type range
//! register; UC/WC/WT/WP/WB = the memory types uncacheable, write-combining,
//! write-through, write-protected, write-back (encodings 0, 1, 4, 5, 6;
//! PAT adds 7 = UC-); M = MAXPHYADDR; VMCB = AMD's virtual machine
//! control block; VMLOAD/VMSAVE = the SVM instructions that switch the
//! syscall, segment-base and SYSENTER MSRs.

pub use super::paging::canonical;

/// IA32_TIME_STAMP_COUNTER.
pub const TSC: u32 = 0x10;
/// IA32_PLATFORM_ID.
pub const PLATFORM_ID: u32 = 0x17;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1b;
/// IA32_SPEC_CTRL (left to userspace).
pub const SPEC_CTRL: u32 = 0x48;
/// IA32_PRED_CMD (left to userspace).
pub const PRED_CMD: u32 = 0x49;
/// IA32_BIOS_SIGN_ID (microcode revision).
pub const BIOS_SIGN_ID: u32 = 0x8b;
/// IA32_MTRRCAP.
pub const MTRRCAP: u32 = 0xfe;
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
/// IA32_PAT.
pub const PAT: u32 = 0x277;
/// IA32_MTRR_DEF_TYPE.
pub const MTRR_DEF_TYPE: u32 = 0x2ff;
/// IA32_EFER.
pub const EFER: u32 = super::MSR_EFER;
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
    /// the MTRRs, APIC_BASE, MISC_ENABLE, PLATFORM_ID, BIOS_SIGN_ID).
    Kernel,
    /// The hardware switches it with the guest state, so the guest may
    /// access it directly: on SVM, VMLOAD/VMSAVE switch FS_BASE, GS_BASE,
    /// KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK and SYSENTER_CS/ESP/EIP
    /// (the VMCB holds them), and the backend leaves them unintercepted.
    /// When an access is intercepted anyway (a VMX backend without MSR
    /// load/store for one of them, or a userspace register write), the
    /// kernel reads or writes the saved copy, checking writes with
    /// [`canonical`] where the SDM asks.
    Hardware,
    /// Everything else, SPEC_CTRL and PRED_CMD included: exit to userspace.
    User,
}

/// Who handles guest accesses to `msr`.
pub fn classify(msr: u32) -> MsrClass {
    match msr {
        FS_BASE | GS_BASE | KERNEL_GS_BASE | STAR | LSTAR | CSTAR | SFMASK | SYSENTER_CS
        | SYSENTER_ESP | SYSENTER_EIP => MsrClass::Hardware,
        EFER | PAT | TSC | TSC_AUX | APIC_BASE | MISC_ENABLE | PLATFORM_ID | BIOS_SIGN_ID => {
            MsrClass::Kernel
        }
        m if is_mtrr(m) => MsrClass::Kernel,
        _ => MsrClass::User,
    }
}

// --- EFER ---------------------------------------------------------------------

/// EFER.SCE: SYSCALL/SYSRET.
pub const EFER_SCE: u64 = 1 << 0;
/// EFER.LME: long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active (read-only).
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: execute-disable.
pub const EFER_NXE: u64 = 1 << 11;
/// EFER.SVME: SVM enable.
pub const EFER_SVME: u64 = super::EFER_SVME;
/// EFER.LMSLE: long-mode segment limits (AMD, withdrawn).
pub const EFER_LMSLE: u64 = 1 << 13;
/// EFER.FFXSR: fast FXSAVE/FXRSTOR (AMD).
pub const EFER_FFXSR: u64 = 1 << 14;
/// EFER.TCE: translation cache extension (AMD).
pub const EFER_TCE: u64 = 1 << 15;

/// The EFER bits a guest may ever set: SCE, LME, NXE, FFXSR. Never SVME
/// (no nested virtualization), LMSLE or TCE (not virtualized).
pub const EFER_GUEST_WRITABLE: u64 = EFER_SCE | EFER_LME | EFER_NXE | EFER_FFXSR;

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
        allowed |= EFER_SCE;
    }
    if edx & NX != 0 {
        allowed |= EFER_NXE;
    }
    if edx & FFXSR != 0 {
        allowed |= EFER_FFXSR;
    }
    if edx & LM != 0 {
        allowed |= EFER_LME;
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
    let new = new & !EFER_LMA;
    if new & !(allowed & EFER_GUEST_WRITABLE) != 0 {
        return Err(Gp);
    }
    if cr0_pg && (old ^ new) & EFER_LME != 0 {
        return Err(Gp);
    }
    Ok(new | (old & EFER_LMA))
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
