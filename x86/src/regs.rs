// SPDX-License-Identifier: GPL-2.0

//! The architectural bits of CR0, CR4, EFER and RFLAGS (SDM Vol. 3A 2.5
//! and 2.2.1, Vol. 1 3.4.3; APM Vol. 2 3.1), defined once for every crate
//! and the glue, and the checks on them that do not depend on the backend.
//!
//! Glossary: PG = paging; PE = protection enable; CD/NW = cache disable,
//! not write-through; LA57 = 5-level paging; IP = instruction pointer.

use super::paging::canonical;

/// CR0 (SDM Vol. 3A 2.5).
pub mod cr0 {
    /// CR0.PE: protected mode.
    pub const PE: u64 = 1 << 0;
    /// CR0.MP: WAIT/FWAIT honour TS.
    pub const MP: u64 = 1 << 1;
    /// CR0.EM: no x87 unit (x87, MMX and SSE instructions #UD or #NM).
    pub const EM: u64 = 1 << 2;
    /// CR0.TS: task switched (the next FPU/SSE instruction raises #NM).
    pub const TS: u64 = 1 << 3;
    /// CR0.ET: extension type (hardwired to 1 on modern CPUs).
    pub const ET: u64 = 1 << 4;
    /// CR0.NE: native x87 error reporting (#MF rather than FERR#).
    pub const NE: u64 = 1 << 5;
    /// CR0.WP: supervisor writes honour read-only pages.
    pub const WP: u64 = 1 << 16;
    /// CR0.AM: alignment checking at CPL 3 when RFLAGS.AC is set.
    pub const AM: u64 = 1 << 18;
    /// CR0.NW: not write-through (only with CD).
    pub const NW: u64 = 1 << 29;
    /// CR0.CD: cache disable.
    pub const CD: u64 = 1 << 30;
    /// CR0.PG: paging (only with PE).
    pub const PG: u64 = 1 << 31;
}

/// CR4 (SDM Vol. 3A 2.5).
pub mod cr4 {
    /// CR4.VME: virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// CR4.PVI: protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// CR4.TSD: RDTSC is privileged.
    pub const TSD: u64 = 1 << 2;
    /// CR4.DE: debugging extensions (DR4/DR5 #UD, I/O breakpoints).
    pub const DE: u64 = 1 << 3;
    /// CR4.PSE: 4 MiB pages in 32-bit paging.
    pub const PSE: u64 = 1 << 4;
    /// CR4.PAE: 8-byte entries (PAE, 4- and 5-level paging).
    pub const PAE: u64 = 1 << 5;
    /// CR4.MCE: machine-check exceptions.
    pub const MCE: u64 = 1 << 6;
    /// CR4.PGE: global pages.
    pub const PGE: u64 = 1 << 7;
    /// CR4.PCE: RDPMC at any CPL.
    pub const PCE: u64 = 1 << 8;
    /// CR4.OSFXSR: the OS uses FXSAVE/FXRSTOR (SSE enabled).
    pub const OSFXSR: u64 = 1 << 9;
    /// CR4.OSXMMEXCPT: unmasked SIMD floating-point exceptions raise #XM.
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// CR4.UMIP: SGDT, SIDT, SLDT, SMSW and STR are privileged.
    pub const UMIP: u64 = 1 << 11;
    /// CR4.LA57: 5-level paging (when EFER.LMA is set).
    pub const LA57: u64 = 1 << 12;
    /// CR4.VMXE: VMX operation is possible.
    pub const VMXE: u64 = 1 << 13;
    /// CR4.SMXE: SMX operation is possible.
    pub const SMXE: u64 = 1 << 14;
    /// CR4.FSGSBASE: RDFSBASE and friends.
    pub const FSGSBASE: u64 = 1 << 16;
    /// CR4.PCIDE: process-context identifiers.
    pub const PCIDE: u64 = 1 << 17;
    /// CR4.OSXSAVE: XSAVE and XGETBV/XSETBV enabled.
    pub const OSXSAVE: u64 = 1 << 18;
    /// CR4.KL: Key Locker.
    pub const KL: u64 = 1 << 19;
    /// CR4.SMEP: supervisor fetches from user pages fault.
    pub const SMEP: u64 = 1 << 20;
    /// CR4.SMAP: supervisor data accesses to user pages fault.
    pub const SMAP: u64 = 1 << 21;
    /// CR4.PKE: protection keys for user-mode pages (PKRU).
    pub const PKE: u64 = 1 << 22;
    /// CR4.CET: control-flow enforcement technology.
    pub const CET: u64 = 1 << 23;
    /// CR4.PKS: protection keys for supervisor-mode pages (IA32_PKRS).
    pub const PKS: u64 = 1 << 24;
}

/// IA32_EFER (SDM Vol. 3A 2.2.1, APM Vol. 2 3.1.7).
pub mod efer {
    /// EFER.SCE: SYSCALL/SYSRET.
    pub const SCE: u64 = 1 << 0;
    /// EFER.LME: long mode enable.
    pub const LME: u64 = 1 << 8;
    /// EFER.LMA: long mode active (IA-32e paging in use; read-only).
    pub const LMA: u64 = 1 << 10;
    /// EFER.NXE: the XD bit of page-table entries is honoured.
    pub const NXE: u64 = 1 << 11;
    /// EFER.SVME: SVM operation is enabled (AMD).
    pub const SVME: u64 = 1 << 12;
    /// EFER.LMSLE: long-mode segment limits (AMD, withdrawn).
    pub const LMSLE: u64 = 1 << 13;
    /// EFER.FFXSR: fast FXSAVE/FXRSTOR (AMD).
    pub const FFXSR: u64 = 1 << 14;
    /// EFER.TCE: translation cache extension (AMD).
    pub const TCE: u64 = 1 << 15;
}

/// RFLAGS (SDM Vol. 1 3.4.3, Vol. 3A 2.3).
pub mod rflags {
    /// RFLAGS.CF: carry.
    pub const CF: u64 = 1 << 0;
    /// RFLAGS bit 1, reserved and always set.
    pub const FIXED: u64 = 1 << 1;
    /// RFLAGS.PF: parity of the low result byte (set when even).
    pub const PF: u64 = 1 << 2;
    /// RFLAGS.AF: carry out of bit 3.
    pub const AF: u64 = 1 << 4;
    /// RFLAGS.ZF: zero.
    pub const ZF: u64 = 1 << 6;
    /// RFLAGS.SF: sign.
    pub const SF: u64 = 1 << 7;
    /// RFLAGS.TF: single-step trap.
    pub const TF: u64 = 1 << 8;
    /// RFLAGS.IF: maskable interrupts enabled.
    pub const IF: u64 = 1 << 9;
    /// RFLAGS.DF: string direction (set: decrement).
    pub const DF: u64 = 1 << 10;
    /// RFLAGS.OF: signed overflow.
    pub const OF: u64 = 1 << 11;
    /// RFLAGS.IOPL: I/O privilege level, a two-bit field (bits 13:12).
    pub const IOPL: u64 = 3 << 12;
    /// RFLAGS.NT: nested task.
    pub const NT: u64 = 1 << 14;
    /// RFLAGS.RF: resume (suppresses instruction breakpoints once).
    pub const RF: u64 = 1 << 16;
    /// RFLAGS.VM: virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// RFLAGS.AC: alignment check (and the SMAP override at CPL 0-2).
    pub const AC: u64 = 1 << 18;
    /// RFLAGS.VIF: virtual interrupt flag.
    pub const VIF: u64 = 1 << 19;
    /// RFLAGS.VIP: virtual interrupt pending.
    pub const VIP: u64 = 1 << 20;
    /// RFLAGS.ID: CPUID is available (the bit can be toggled).
    pub const ID: u64 = 1 << 21;
}

/// Whether `v` is a CR0 value the guest (or userspace) may load: no bits
/// above 31, PG only with PE, NW only with CD; otherwise #GP (SDM Vol. 2
/// "MOV—Move to/from Control Registers").
pub const fn cr0_valid(v: u64) -> bool {
    v >> 32 == 0 && (v & cr0::PG == 0 || v & cr0::PE != 0) && (v & cr0::NW == 0 || v & cr0::CD != 0)
}

/// The CR4 bits a guest may have: VME through LA57, FSGSBASE, PCIDE,
/// OSXSAVE, SMEP, SMAP and CET; not VMXE and SMXE (no nested VMX or SMX),
/// nor KL, PKE or PKS. VT-x further limits them to what
/// IA32_VMX_CR4_FIXED1 allows.
pub const CR4_VALID: u64 = cr4::VME
    | cr4::PVI
    | cr4::TSD
    | cr4::DE
    | cr4::PSE
    | cr4::PAE
    | cr4::MCE
    | cr4::PGE
    | cr4::PCE
    | cr4::OSFXSR
    | cr4::OSXMMEXCPT
    | cr4::UMIP
    | cr4::LA57
    | cr4::FSGSBASE
    | cr4::PCIDE
    | cr4::OSXSAVE
    | cr4::SMEP
    | cr4::SMAP
    | cr4::CET;

/// The EFER bits a guest may have: SCE, LME, LMA, NXE.
pub const EFER_VALID: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE;

/// The RFLAGS bits that may be set: every architectural flag (bit 1 always
/// is; bits 3, 5, 15 and 22-63 are reserved).
pub const RFLAGS_VALID: u64 = rflags::CF
    | rflags::FIXED
    | rflags::PF
    | rflags::AF
    | rflags::ZF
    | rflags::SF
    | rflags::TF
    | rflags::IF
    | rflags::DF
    | rflags::OF
    | rflags::IOPL
    | rflags::NT
    | rflags::RF
    | rflags::VM
    | rflags::AC
    | rflags::VIF
    | rflags::VIP
    | rflags::ID;

/// Whether continuing at instruction pointer `next` faults (#GP) in the
/// guest's current mode: in 64-bit mode (`long64`: EFER.LMA and CS.L) when
/// `next` is not canonical, at 57 bits with CR4.LA57 (`la57`) and at 48
/// without; outside 64-bit mode never, since the IP is a 32-bit (or 16-bit)
/// value there and the caller has already truncated it.
pub fn next_ip_faults(next: u64, long64: bool, la57: bool) -> bool {
    long64 && !canonical(next, la57)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_their_values() {
        assert_eq!(CR4_VALID, 0x37_1fff | (1 << 23));
        assert_eq!(EFER_VALID, 0xd01);
        assert_eq!(RFLAGS_VALID, 0x3f_7fd7);
        assert_eq!(CR4_VALID & (cr4::VMXE | cr4::SMXE), 0);
    }

    #[test]
    fn bit_positions() {
        let cr0 = [cr0::PE, cr0::MP, cr0::EM, cr0::TS, cr0::ET, cr0::NE, cr0::WP, cr0::AM];
        assert_eq!(cr0, [1, 2, 4, 8, 0x10, 0x20, 0x1_0000, 0x4_0000]);
        assert_eq!([cr0::NW, cr0::CD, cr0::PG], [0x2000_0000, 0x4000_0000, 0x8000_0000]);
        assert_eq!([cr4::PSE, cr4::PAE, cr4::OSFXSR, cr4::LA57], [0x10, 0x20, 0x200, 0x1000]);
        assert_eq!([cr4::VMXE, cr4::PCIDE, cr4::OSXSAVE], [0x2000, 0x2_0000, 0x4_0000]);
        assert_eq!([cr4::SMEP, cr4::SMAP, cr4::PKE], [0x10_0000, 0x20_0000, 0x40_0000]);
        assert_eq!([cr4::CET, cr4::PKS], [0x80_0000, 0x100_0000]);
        assert_eq!([efer::SCE, efer::LME, efer::LMA, efer::NXE], [1, 0x100, 0x400, 0x800]);
        let amd = [efer::SVME, efer::LMSLE, efer::FFXSR, efer::TCE];
        assert_eq!(amd, [0x1000, 0x2000, 0x4000, 0x8000]);
        assert_eq!([rflags::CF, rflags::FIXED, rflags::ZF, rflags::IF], [1, 2, 0x40, 0x200]);
        let rf = [rflags::DF, rflags::IOPL, rflags::VM, rflags::AC, rflags::ID];
        assert_eq!(rf, [0x400, 0x3000, 0x2_0000, 0x4_0000, 0x20_0000]);
    }

    #[test]
    fn cr0_checks() {
        assert!(cr0_valid(0x6000_0010));
        assert!(cr0_valid(0x8005_0033));
        assert!(cr0_valid(0));
        assert!(cr0_valid(cr0::CD | cr0::NW));
        assert!(cr0_valid(cr0::CD));
        assert!(!cr0_valid(cr0::NW));
        assert!(!cr0_valid(cr0::PG));
        assert!(cr0_valid(cr0::PG | cr0::PE));
        assert!(!cr0_valid(1 << 32 | cr0::PE));
        assert!(!cr0_valid(u64::MAX));
        assert!(cr0_valid(0xffff_ffff));
    }

    #[test]
    fn next_ip() {
        // Outside 64-bit mode the IP is already truncated: never a fault.
        assert!(!next_ip_faults(0x1_0000_0000, false, false));
        assert!(!next_ip_faults(u64::MAX >> 1, false, true));
        // 48-bit canonical.
        assert!(!next_ip_faults(0x0000_7fff_ffff_ffff, true, false));
        assert!(next_ip_faults(0x0000_8000_0000_0000, true, false));
        assert!(!next_ip_faults(0xffff_8000_0000_0000, true, false));
        // 57-bit canonical with LA57.
        assert!(!next_ip_faults(0x0000_8000_0000_0000, true, true));
        assert!(!next_ip_faults(0x00ff_ffff_ffff_ffff, true, true));
        assert!(next_ip_faults(0x0100_0000_0000_0000, true, true));
        assert!(!next_ip_faults(0xff00_0000_0000_0000, true, true));
    }
}
