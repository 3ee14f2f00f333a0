// SPDX-License-Identifier: GPL-2.0

//! Decoding of #VMEXIT information: the exit code, EXITINFO1 of the exits
//! vmm handles (IOIO, NPF), and the event format shared by EXITINTINFO and
//! EVENTINJ (APM Vol. 2, 15.7, 15.10.2, 15.20, 15.25.6 and Appendix C).
//!
//! Every decoder takes the raw VMCB field and returns a typed value, or
//! [`Unknown`] holding the raw value when the field holds an encoding the
//! APM does not define. No input makes a decoder panic.
//!
//! Bits the APM marks reserved in EXITINFO1 are ignored, so that a newer
//! CPU that defines them does not break decoding. The event format is the
//! exception: software writes it too (EVENTINJ), and EXITINTINFO is copied
//! into EVENTINJ to re-inject, so its reserved bits are checked.
//!
//! Glossary: NPF = nested page fault; GPA = guest-physical address; INTR =
//! external (maskable) interrupt; NMI = non-maskable interrupt.

use core::fmt;

#[cfg(kernel)]
use crate::x86;
#[cfg(not(kernel))]
use vmm_x86 as x86;

use x86::insn::Seg;

/// Error for values this module does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unknown(pub u64);

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown SVM encoding {:#x}", self.0)
    }
}

/// Whether bit `n` of `v` is set.
const fn bit(v: u64, n: u32) -> bool {
    (v >> n) & 1 != 0
}

/// Declares [`ExitCode`], its [`TryFrom<u64>`] and its [`From`] back to
/// `u64` from one list of the codes without an operand, so the three
/// cannot disagree. A listed code that falls in one of the ranges is an
/// unreachable pattern, which the build rejects.
macro_rules! exit_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// A #VMEXIT code (APM Vol. 2, Appendix C, Table C-1), decoded.
        ///
        /// Codes the APM leaves unused have no variant: decoding them gives
        /// [`Unknown`]. The ranged variants carry the register or vector
        /// number; converting back to `u64` uses only its low 4 bits (5 for
        /// [`ExitCode::Exception`]), so the result is always within range.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ExitCode {
            /// 0x00-0x0f, VMEXIT_CRn_READ: read of CRn.
            CrRead(u8),
            /// 0x10-0x1f, VMEXIT_CRn_WRITE: write of CRn.
            CrWrite(u8),
            /// 0x20-0x2f, VMEXIT_DRn_READ: read of DRn.
            DrRead(u8),
            /// 0x30-0x3f, VMEXIT_DRn_WRITE: write of DRn.
            DrWrite(u8),
            /// 0x40-0x5f, VMEXIT_EXCPn: exception vector n (0-31). For #AC
            /// and the other exceptions with one, EXITINFO1 holds the
            /// error code.
            Exception(u8),
            /// 0x90-0x9f, VMEXIT_CRn_WRITE_TRAP: CRn was written (trap, after
            /// the write; EXITINFO1 holds the new value).
            CrWriteTrap(u8),
            $($(#[$doc])* $name,)*
        }

        impl TryFrom<u64> for ExitCode {
            type Error = Unknown;

            /// Decodes the EXITCODE field; an unused code is [`Unknown`].
            fn try_from(code: u64) -> Result<Self, Unknown> {
                let n = (code & 0xf) as u8;
                Ok(match code {
                    0x00..=0x0f => Self::CrRead(n),
                    0x10..=0x1f => Self::CrWrite(n),
                    0x20..=0x2f => Self::DrRead(n),
                    0x30..=0x3f => Self::DrWrite(n),
                    0x40..=0x5f => Self::Exception((code & 0x1f) as u8),
                    0x90..=0x9f => Self::CrWriteTrap(n),
                    $($value => Self::$name,)*
                    _ => return Err(Unknown(code)),
                })
            }
        }

        impl From<ExitCode> for u64 {
            fn from(code: ExitCode) -> u64 {
                match code {
                    ExitCode::CrRead(n) => u64::from(n & 0xf),
                    ExitCode::CrWrite(n) => 0x10 | u64::from(n & 0xf),
                    ExitCode::DrRead(n) => 0x20 | u64::from(n & 0xf),
                    ExitCode::DrWrite(n) => 0x30 | u64::from(n & 0xf),
                    ExitCode::Exception(n) => 0x40 | u64::from(n & 0x1f),
                    ExitCode::CrWriteTrap(n) => 0x90 | u64::from(n & 0xf),
                    $(ExitCode::$name => $value,)*
                }
            }
        }
    };
}

exit_codes! {
    /// Physical INTR (external interrupt).
    Intr = 0x60,
    /// Physical NMI.
    Nmi = 0x61,
    /// Physical SMI.
    Smi = 0x62,
    /// Physical INIT.
    Init = 0x63,
    /// Virtual INTR.
    Vintr = 0x64,
    /// Write of CR0 that changes a bit other than TS or MP.
    Cr0SelWrite = 0x65,
    /// Read of IDTR (SIDT).
    IdtrRead = 0x66,
    /// Read of GDTR (SGDT).
    GdtrRead = 0x67,
    /// Read of LDTR (SLDT).
    LdtrRead = 0x68,
    /// Read of TR (STR).
    TrRead = 0x69,
    /// Write of IDTR (LIDT).
    IdtrWrite = 0x6a,
    /// Write of GDTR (LGDT).
    GdtrWrite = 0x6b,
    /// Write of LDTR (LLDT).
    LdtrWrite = 0x6c,
    /// Write of TR (LTR).
    TrWrite = 0x6d,
    /// RDTSC.
    Rdtsc = 0x6e,
    /// RDPMC.
    Rdpmc = 0x6f,
    /// PUSHF.
    Pushf = 0x70,
    /// POPF.
    Popf = 0x71,
    /// CPUID.
    Cpuid = 0x72,
    /// RSM.
    Rsm = 0x73,
    /// IRET.
    Iret = 0x74,
    /// Software interrupt (INT n).
    Swint = 0x75,
    /// INVD.
    Invd = 0x76,
    /// PAUSE.
    Pause = 0x77,
    /// HLT.
    Hlt = 0x78,
    /// INVLPG.
    Invlpg = 0x79,
    /// INVLPGA.
    Invlpga = 0x7a,
    /// IN/OUT/INS/OUTS; EXITINFO1 is an [`IoInfo`], EXITINFO2 the next RIP.
    Ioio = 0x7b,
    /// RDMSR or WRMSR (EXITINFO1: 0 read, 1 write).
    Msr = 0x7c,
    /// Task switch.
    TaskSwitch = 0x7d,
    /// FERR freeze (legacy FERR handling).
    FerrFreeze = 0x7e,
    /// Shutdown (triple fault).
    Shutdown = 0x7f,
    /// VMRUN.
    Vmrun = 0x80,
    /// VMMCALL.
    Vmmcall = 0x81,
    /// VMLOAD.
    Vmload = 0x82,
    /// VMSAVE.
    Vmsave = 0x83,
    /// STGI.
    Stgi = 0x84,
    /// CLGI.
    Clgi = 0x85,
    /// SKINIT.
    Skinit = 0x86,
    /// RDTSCP.
    Rdtscp = 0x87,
    /// ICEBP (INT1).
    Icebp = 0x88,
    /// WBINVD or WBNOINVD.
    Wbinvd = 0x89,
    /// MONITOR or MONITORX.
    Monitor = 0x8a,
    /// MWAIT or MWAITX.
    Mwait = 0x8b,
    /// MWAIT or MWAITX with a monitor armed.
    MwaitConditional = 0x8c,
    /// XSETBV.
    Xsetbv = 0x8d,
    /// RDPRU.
    Rdpru = 0x8e,
    /// EFER was written (trap, after the write; EXITINFO1 holds the new
    /// value).
    EferWriteTrap = 0x8f,
    /// INVLPGB.
    Invlpgb = 0xa0,
    /// INVLPGB with illegal operands.
    InvlpgbIllegal = 0xa1,
    /// INVPCID.
    Invpcid = 0xa2,
    /// MCOMMIT.
    Mcommit = 0xa3,
    /// TLBSYNC.
    Tlbsync = 0xa4,
    /// Bus lock.
    BusLock = 0xa5,
    /// HLT with no virtual interrupt or NMI pending (idle HLT intercept).
    IdleHlt = 0xa6,
    /// Nested page fault; EXITINFO1 is an [`NpfInfo`], EXITINFO2 the GPA.
    Npf = 0x400,
    /// AVIC: an IPI could not be delivered to every target.
    AvicIncompleteIpi = 0x401,
    /// AVIC: an access to the APIC page was not accelerated.
    AvicNoaccel = 0x402,
    /// VMGEXIT (SEV-ES guest).
    Vmgexit = 0x403,
    /// VMEXIT_INVALID (-1): VMRUN refused the VMCB (invalid guest state or
    /// controls).
    Invalid = 0xffff_ffff_ffff_ffff,
}

/// EXITINFO1 of an IOIO exit (APM Vol. 2, 15.10.2, Figure 15-2).
///
/// EXITINFO2 holds the RIP of the next instruction and is not part of it.
///
/// Two decoders differ only in [`IoInfo::segment`]: [`TryFrom<u64>`] reports
/// the raw SEG field and leaves it to the caller to know whether the CPU
/// fills it; [`IoInfo::decode`] is told and checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoInfo {
    /// Bits 31:16: the port.
    pub port: u16,
    /// Bits 6:4 (SZ32, SZ16, SZ8, one-hot): size of the access in bytes,
    /// 1, 2 or 4.
    pub size: u8,
    /// Bit 0 (TYPE): IN or INS (else OUT or OUTS).
    pub input: bool,
    /// Bit 2 (STR): INS or OUTS.
    pub string: bool,
    /// Bit 3 (REP): REP prefixed.
    pub rep: bool,
    /// Bits 9:7 (A64, A32, A16, one-hot): address size in bytes, 2, 4 or
    /// 8; `None` when the CPU left all three clear, as QEMU's TCG does
    /// (the caller then takes it from the instruction).
    pub addr_size: Option<u8>,
    /// Bits 12:10 (SEG): effective segment of a string instruction's memory
    /// operand, 0 = ES, 1 = CS, 2 = SS, 3 = DS, 4 = FS, 5 = GS; `None` for
    /// the undefined values 6 and 7. The CPU fills SEG only with decode
    /// assists (CPUID Fn8000_000A EDX bit 7), and it names a segment only
    /// for INS/OUTS; otherwise the caller decodes the instruction's
    /// prefixes.
    pub segment: Option<u8>,
}

impl IoInfo {
    /// Decodes EXITINFO1 as [`TryFrom<u64>`] does, but reads SEG only for
    /// a string instruction on a CPU with `decode_assists`: otherwise
    /// [`IoInfo::segment`] is `None`. With them, SEG 6 or 7 on a string
    /// instruction is [`Unknown`].
    pub fn decode(raw: u64, decode_assists: bool) -> Result<Self, Unknown> {
        let mut io = Self::try_from(raw)?;
        if !(io.string && decode_assists) {
            io.segment = None;
        } else if io.segment.is_none() {
            return Err(Unknown(raw));
        }
        Ok(io)
    }

    /// The segment register [`IoInfo::segment`] names.
    pub fn seg(&self) -> Option<Seg> {
        Some(match self.segment? {
            0 => Seg::Es,
            1 => Seg::Cs,
            2 => Seg::Ss,
            3 => Seg::Ds,
            4 => Seg::Fs,
            5 => Seg::Gs,
            _ => return None,
        })
    }
}

impl TryFrom<u64> for IoInfo {
    type Error = Unknown;

    /// Decodes EXITINFO1. [`Unknown`] when no size bit or several are set,
    /// or several address-size bits (none is `addr_size: None`). SEG is reported raw (see
    /// [`IoInfo::segment`]); reserved bits 1, 15:13 and 63:32 are ignored.
    fn try_from(raw: u64) -> Result<Self, Unknown> {
        let size = match (raw >> 4) & 7 {
            0b001 => 1,
            0b010 => 2,
            0b100 => 4,
            _ => return Err(Unknown(raw)),
        };
        let addr_size = match (raw >> 7) & 7 {
            0b000 => None,
            0b001 => Some(2),
            0b010 => Some(4),
            0b100 => Some(8),
            _ => return Err(Unknown(raw)),
        };
        let segment = match ((raw >> 10) & 7) as u8 {
            seg @ 0..=5 => Some(seg),
            _ => None,
        };
        Ok(Self {
            port: (raw >> 16) as u16,
            size,
            input: bit(raw, 0),
            string: bit(raw, 2),
            rep: bit(raw, 3),
            addr_size,
            segment,
        })
    }
}

/// The kind of guest access that caused a nested page fault (a write
/// includes the guest's paging A/D updates).
pub use x86::paging::Access;

bitflags::bitflags! {
    /// EXITINFO1 of a nested page fault (APM Vol. 2, 15.25.6): a #PF-style
    /// error code for the nested (guest-physical) translation. Bits this
    /// type does not name are kept as they are.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct NpfFlags: u64 {
        /// Bit 0 (P): the nested entry was present (a protection fault).
        const PRESENT = 1 << 0;
        /// Bit 1 (R/W): a write access.
        const WRITE = 1 << 1;
        /// Bit 2 (U/S): a user access (the nested walk counts every
        /// access as a user one).
        const USER = 1 << 2;
        /// Bit 3 (RSV): a reserved bit was set in a nested entry.
        const RESERVED = 1 << 3;
        /// Bit 4 (I/D): an instruction fetch.
        const FETCH = 1 << 4;
        /// Bit 32: the fault was on the final guest-physical address (the
        /// translation of the guest's linear address).
        const FINAL_TRANSLATION = 1 << 32;
        /// Bit 33: the fault was on a guest page-table access during the
        /// guest's own page walk.
        const PAGE_TABLE_WALK = 1 << 33;
    }
}

/// EXITINFO1 of an NPF exit; EXITINFO2 holds the faulting GPA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NpfInfo {
    /// The error-code bits, unknown ones included.
    pub flags: NpfFlags,
}

impl From<u64> for NpfInfo {
    /// Every value decodes: the error code has no invalid encoding.
    fn from(raw: u64) -> Self {
        Self { flags: NpfFlags::from_bits_retain(raw) }
    }
}

impl NpfInfo {
    /// The kind of access: write beats fetch beats read.
    pub fn access(&self) -> Access {
        if self.flags.contains(NpfFlags::WRITE) {
            Access::Write
        } else if self.flags.contains(NpfFlags::FETCH) {
            Access::Fetch
        } else {
            Access::Read
        }
    }
}

/// Event type, bits 10:8 of EXITINTINFO and EVENTINJ (APM Vol. 2, 15.20,
/// Table 15-1). Types 1 and 5-7 are reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    /// External or virtual interrupt (INTR).
    Intr = 0,
    /// NMI; the vector is ignored (2 by convention).
    Nmi = 2,
    /// Exception (fault or trap), including #BP and #OF raised by INT3
    /// and INTO.
    Exception = 3,
    /// Software interrupt (INT n).
    SoftwareInterrupt = 4,
}

impl TryFrom<u8> for EventType {
    type Error = Unknown;

    fn try_from(raw: u8) -> Result<Self, Unknown> {
        Ok(match raw {
            0 => Self::Intr,
            2 => Self::Nmi,
            3 => Self::Exception,
            4 => Self::SoftwareInterrupt,
            _ => return Err(Unknown(raw.into())),
        })
    }
}

/// An event in the format EXITINTINFO and EVENTINJ share, their low 32
/// bits (APM Vol. 2, 15.7.2 and 15.20, Figure 15-3); the error code is the
/// high 32 bits, which the VMCB holds as a field of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventInj {
    /// Bits 7:0: the vector.
    pub vector: u8,
    /// Bits 10:8: the event type.
    pub kind: EventType,
    /// Bit 11 (EV): an error code is delivered (read from or written to
    /// the matching error-code field).
    pub has_error: bool,
}

impl EventInj {
    /// Bit 31 (V): the field holds an event.
    pub const VALID: u32 = 1 << 31;
    /// Bit 11 (EV): error code valid.
    pub const ERROR_VALID: u32 = 1 << 11;
    /// Bits 30:12, reserved.
    pub const RESERVED: u32 = 0x7fff_f000;

    /// Decodes a field: `Ok(None)` when V (bit 31) is clear, [`Unknown`]
    /// for a reserved type or reserved bits 30:12 set.
    pub fn decode(raw: u32) -> Result<Option<Self>, Unknown> {
        if raw & Self::VALID == 0 {
            return Ok(None);
        }
        if raw & Self::RESERVED != 0 {
            return Err(Unknown(raw.into()));
        }
        let kind = EventType::try_from(((raw >> 8) & 7) as u8).map_err(|_| Unknown(raw.into()))?;
        Ok(Some(Self { vector: raw as u8, kind, has_error: raw & Self::ERROR_VALID != 0 }))
    }

    /// Encodes for EVENTINJ, with V set.
    pub const fn encode(&self) -> u32 {
        Self::VALID
            | if self.has_error { Self::ERROR_VALID } else { 0 }
            | ((self.kind as u32) << 8)
            | self.vector as u32
    }

    /// An exception, with an error code when `has_error`.
    pub const fn exception(vector: u8, has_error: bool) -> Self {
        Self { vector, kind: EventType::Exception, has_error }
    }

    /// An NMI (vector 2).
    pub const fn nmi() -> Self {
        Self { vector: 2, kind: EventType::Nmi, has_error: false }
    }

    /// An external interrupt with `vector`.
    pub const fn intr(vector: u8) -> Self {
        Self { vector, kind: EventType::Intr, has_error: false }
    }

    /// Whether an event found in EXITINTINFO must be injected again on
    /// the next VMRUN.
    ///
    /// A software interrupt (INT n), or #BP/#OF raised by INT3/INTO (type
    /// 3, vectors 3 and 4), is not: without NRIP-save RIP still points at
    /// the instruction, which runs again and raises it with the right
    /// return address, whereas injecting it would push the instruction's
    /// own address. Every other event is.
    pub const fn reinject(&self) -> bool {
        match self.kind {
            EventType::SoftwareInterrupt => false,
            EventType::Exception => !matches!(self.vector, 3 | 4),
            EventType::Intr | EventType::Nmi => true,
        }
    }
}

impl TryFrom<u32> for EventInj {
    type Error = Unknown;

    /// Decodes a field that must hold an event: [`Unknown`] when V is
    /// clear, as well as in the cases [`EventInj::decode`] rejects.
    fn try_from(raw: u32) -> Result<Self, Unknown> {
        Self::decode(raw)?.ok_or(Unknown(raw.into()))
    }
}

/// #DB, vector 1.
pub const DB_VECTOR: u8 = 1;
/// #AC, vector 17.
pub const AC_VECTOR: u8 = 17;

/// The exceptions vmm always intercepts: the value of the exception
/// intercept word (VMCB offset 0x08, bit n = vector n), #DB and #AC.
///
/// A guest can otherwise make the CPU loop forever delivering one of them
/// without a #VMEXIT, hanging the host CPU: a #DB whose delivery raises
/// #DB again (CVE-2015-8104) or an #AC whose delivery raises #AC again
/// (CVE-2015-5307). Intercepting them gives the host an exit on every
/// delivery; the handler re-injects them unchanged.
pub const INTERCEPTED_EXCEPTIONS: u32 = (1 << DB_VECTOR) | (1 << AC_VECTOR);
