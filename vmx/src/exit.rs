// SPDX-License-Identifier: GPL-2.0

//! Decoding of VM-exit information: the exit reason, the exit
//! qualifications vmm handles, interruption information and VM-instruction
//! errors (SDM Vol. 3C, Chapters 25, 28 and 31, Appendix C).
//!
//! Every decoder takes the raw VMCS field and returns a typed value, or
//! [`Unknown`] holding the raw value when a field holds an encoding the SDM
//! does not define. No input makes a decoder panic.
//!
//! Bits that the SDM marks reserved or undefined in an exit qualification are
//! ignored, so that a newer CPU that defines them does not break decoding.
//! The interruption-information format is the exception: software writes it
//! too (VM-entry event injection), so its reserved bits are checked.
//!
//! Glossary: GLA = guest-linear address; GPR = general-purpose register;
//! LMSW = load machine status word; MTF = monitor trap flag; NMI =
//! non-maskable interrupt; IDT = interrupt-descriptor table; PML = page-
//! modification log; SPP = sub-page write permission; PASID = process
//! address-space identifier.

use core::fmt;

#[cfg(kernel)]
use crate::x86;
#[cfg(not(kernel))]
use vmm_x86 as x86;

/// Error for values this module does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unknown(pub u64);

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown VMX encoding {:#x}", self.0)
    }
}

/// Whether bit `n` of `v` is set.
const fn bit(v: u64, n: u32) -> bool {
    (v >> n) & 1 != 0
}

/// Declares [`ExitReason`], its [`TryFrom<u16>`] and [`ExitReason::ALL`]
/// from one list, so the three cannot disagree.
macro_rules! exit_reasons {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// Basic exit reasons (SDM Vol. 3C, Appendix C, Table C-1): bits
        /// 15:0 of the exit-reason field. Numbers the SDM leaves unused (35,
        /// 38, 42, 71, ...) have no variant.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum ExitReason {
            $($(#[$doc])* $name = $value,)*
        }

        impl ExitReason {
            /// Every basic exit reason this module knows, in numeric order.
            pub const ALL: &'static [ExitReason] = &[$(ExitReason::$name,)*];
        }

        impl TryFrom<u16> for ExitReason {
            type Error = Unknown;

            fn try_from(raw: u16) -> Result<Self, Unknown> {
                match raw {
                    $($value => Ok(ExitReason::$name),)*
                    _ => Err(Unknown(raw.into())),
                }
            }
        }
    };
}

exit_reasons! {
    /// Exception or non-maskable interrupt (NMI).
    ExceptionNmi = 0,
    /// External interrupt.
    ExternalInterrupt = 1,
    /// Triple fault.
    TripleFault = 2,
    /// INIT signal.
    InitSignal = 3,
    /// Start-up IPI (SIPI).
    Sipi = 4,
    /// I/O system-management interrupt (SMI).
    IoSmi = 5,
    /// Other SMI.
    OtherSmi = 6,
    /// Interrupt window.
    InterruptWindow = 7,
    /// NMI window.
    NmiWindow = 8,
    /// Task switch.
    TaskSwitch = 9,
    /// CPUID.
    Cpuid = 10,
    /// GETSEC.
    Getsec = 11,
    /// HLT.
    Hlt = 12,
    /// INVD.
    Invd = 13,
    /// INVLPG.
    Invlpg = 14,
    /// RDPMC.
    Rdpmc = 15,
    /// RDTSC.
    Rdtsc = 16,
    /// RSM in SMM.
    Rsm = 17,
    /// VMCALL.
    Vmcall = 18,
    /// VMCLEAR.
    Vmclear = 19,
    /// VMLAUNCH.
    Vmlaunch = 20,
    /// VMPTRLD.
    Vmptrld = 21,
    /// VMPTRST.
    Vmptrst = 22,
    /// VMREAD.
    Vmread = 23,
    /// VMRESUME.
    Vmresume = 24,
    /// VMWRITE.
    Vmwrite = 25,
    /// VMXOFF.
    Vmxoff = 26,
    /// VMXON.
    Vmxon = 27,
    /// Control-register access (MOV CR, CLTS, LMSW); see [`CrAccess`].
    CrAccess = 28,
    /// MOV DR.
    DrAccess = 29,
    /// I/O instruction; see [`IoQual`].
    IoInstruction = 30,
    /// RDMSR.
    Rdmsr = 31,
    /// WRMSR.
    Wrmsr = 32,
    /// VM-entry failure due to invalid guest state.
    EntryFailGuestState = 33,
    /// VM-entry failure due to MSR loading.
    EntryFailMsrLoading = 34,
    /// MWAIT.
    Mwait = 36,
    /// Monitor trap flag.
    MonitorTrapFlag = 37,
    /// MONITOR.
    Monitor = 39,
    /// PAUSE.
    Pause = 40,
    /// VM-entry failure due to a machine-check event.
    EntryFailMachineCheck = 41,
    /// TPR below threshold.
    TprBelowThreshold = 43,
    /// APIC access; see [`ApicAccess`].
    ApicAccess = 44,
    /// Virtualized EOI.
    VirtualizedEoi = 45,
    /// Access to GDTR or IDTR (LGDT, LIDT, SGDT, SIDT).
    GdtrIdtrAccess = 46,
    /// Access to LDTR or TR (LLDT, LTR, SLDT, STR).
    LdtrTrAccess = 47,
    /// EPT violation; see [`EptViolation`].
    EptViolation = 48,
    /// EPT misconfiguration.
    EptMisconfig = 49,
    /// INVEPT.
    Invept = 50,
    /// RDTSCP.
    Rdtscp = 51,
    /// VMX-preemption timer expired.
    PreemptionTimer = 52,
    /// INVVPID.
    Invvpid = 53,
    /// WBINVD or WBNOINVD.
    Wbinvd = 54,
    /// XSETBV.
    Xsetbv = 55,
    /// APIC write.
    ApicWrite = 56,
    /// RDRAND.
    Rdrand = 57,
    /// INVPCID.
    Invpcid = 58,
    /// VMFUNC.
    Vmfunc = 59,
    /// ENCLS.
    Encls = 60,
    /// RDSEED.
    Rdseed = 61,
    /// Page-modification log full.
    PmlFull = 62,
    /// XSAVES.
    Xsaves = 63,
    /// XRSTORS.
    Xrstors = 64,
    /// PCONFIG.
    Pconfig = 65,
    /// SPP-related event.
    SppEvent = 66,
    /// UMWAIT.
    Umwait = 67,
    /// TPAUSE.
    Tpause = 68,
    /// LOADIWKEY.
    Loadiwkey = 69,
    /// ENCLV.
    Enclv = 70,
    /// ENQCMD PASID translation failure.
    EnqcmdPasidFailure = 72,
    /// ENQCMDS PASID translation failure.
    EnqcmdsPasidFailure = 73,
    /// Bus lock.
    BusLock = 74,
    /// Instruction timeout (KVM's "notify" exit).
    InstructionTimeout = 75,
    /// SEAMCALL.
    Seamcall = 76,
    /// TDCALL.
    Tdcall = 77,
    /// RDMSRLIST.
    Rdmsrlist = 78,
    /// WRMSRLIST.
    Wrmsrlist = 79,
    /// RDMSR with an immediate MSR index.
    RdmsrImm = 84,
    /// WRMSRNS with an immediate MSR index.
    WrmsrImm = 85,
}

impl From<ExitReason> for u16 {
    fn from(reason: ExitReason) -> u16 {
        reason as u16
    }
}

/// The 32-bit exit-reason VMCS field (SDM Vol. 3C, 25.9.1, Table 25-17).
///
/// Only the basic reason and the VM-entry failure bit are kept; the other
/// flags can be tested on the raw value with the associated constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// Basic exit reason, bits 15:0.
    pub reason: ExitReason,
    /// Bit 31: the VM entry failed (reasons 33, 34 and 41).
    pub entry_failure: bool,
}

impl ExitInfo {
    /// Bit 27: the exit was incident to enclave mode.
    pub const ENCLAVE_MODE: u32 = 1 << 27;
    /// Bit 28: a pending MTF VM exit (SMM transfer monitor only).
    pub const PENDING_MTF: u32 = 1 << 28;
    /// Bit 29: a VM exit from VMX root operation (SMM transfer monitor
    /// only).
    pub const FROM_VMX_ROOT: u32 = 1 << 29;
    /// Bit 31: VM-entry failure.
    pub const ENTRY_FAILURE: u32 = 1 << 31;
}

impl TryFrom<u32> for ExitInfo {
    type Error = Unknown;

    /// Decodes the field; an unknown basic reason gives the whole raw value
    /// back.
    fn try_from(raw: u32) -> Result<Self, Unknown> {
        let reason = ExitReason::try_from(raw as u16).map_err(|_| Unknown(raw.into()))?;
        Ok(Self { reason, entry_failure: raw & Self::ENTRY_FAILURE != 0 })
    }
}

/// Exit qualification for I/O instructions (SDM Vol. 3C, Table 28-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoQual {
    /// Size of the access in bytes, from bits 2:0: 1, 2 or 4.
    pub size: u8,
    /// Bit 3: IN or INS (else OUT or OUTS).
    pub input: bool,
    /// Bit 4: INS or OUTS.
    pub string: bool,
    /// Bit 5: REP prefixed.
    pub rep: bool,
    /// Bit 6: the port is an immediate operand (else DX).
    pub immediate: bool,
    /// Bits 31:16: the port number.
    pub port: u16,
}

impl TryFrom<u64> for IoQual {
    type Error = Unknown;

    /// Decodes the qualification; size encodings other than 0, 1 and 3
    /// are [`Unknown`].
    fn try_from(raw: u64) -> Result<Self, Unknown> {
        let size = match raw & 7 {
            0 => 1,
            1 => 2,
            3 => 4,
            _ => return Err(Unknown(raw)),
        };
        Ok(Self {
            size,
            input: bit(raw, 3),
            string: bit(raw, 4),
            rep: bit(raw, 5),
            immediate: bit(raw, 6),
            port: (raw >> 16) as u16,
        })
    }
}

/// Exit qualification for control-register accesses (SDM Vol. 3C, Table
/// 28-3).
///
/// GPR numbers follow the instruction encoding: 0 = RAX, 1 = RCX, 2 = RDX,
/// 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8-15 = R8-R15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrAccess {
    /// Access type 0: MOV to CR`cr` from GPR `gpr`.
    MovTo {
        /// Control register: 0, 3, 4 or 8.
        cr: u8,
        /// Source GPR, bits 11:8.
        gpr: u8,
    },
    /// Access type 1: MOV from CR`cr` to GPR `gpr`.
    MovFrom {
        /// Control register: 0, 3, 4 or 8.
        cr: u8,
        /// Destination GPR, bits 11:8.
        gpr: u8,
    },
    /// Access type 2: CLTS.
    Clts,
    /// Access type 3: LMSW.
    Lmsw {
        /// Bits 31:16: the LMSW source data.
        source: u16,
        /// Bit 6: the operand was in memory (else a register).
        memory: bool,
        /// Whether the guest-linear-address VMCS field holds the operand's
        /// address (SDM 28.2.1): true exactly for a memory operand.
        gla_valid: bool,
    },
}

impl TryFrom<u64> for CrAccess {
    type Error = Unknown;

    /// Decodes the qualification. A MOV naming a control register other
    /// than CR0, CR3, CR4 or CR8 is [`Unknown`]. For CLTS and LMSW the
    /// register fields, which the CPU clears, are ignored.
    fn try_from(raw: u64) -> Result<Self, Unknown> {
        let cr = (raw & 0xf) as u8;
        let gpr = ((raw >> 8) & 0xf) as u8;
        let mov_cr = || match cr {
            0 | 3 | 4 | 8 => Ok(cr),
            _ => Err(Unknown(raw)),
        };
        Ok(match (raw >> 4) & 3 {
            0 => Self::MovTo { cr: mov_cr()?, gpr },
            1 => Self::MovFrom { cr: mov_cr()?, gpr },
            2 => Self::Clts,
            _ => {
                let memory = bit(raw, 6);
                Self::Lmsw { source: (raw >> 16) as u16, memory, gla_valid: memory }
            }
        })
    }
}

/// The kind of guest access that caused an EPT violation (a write
/// includes the guest's paging A/D updates).
pub use x86::paging::Access;

/// Exit qualification for EPT violations (SDM Vol. 3C, Table 28-7).
///
/// `readable`, `writable` and `executable` describe the guest-physical
/// address as the EPT paging structures map it; with mode-based execute
/// control `executable` is the supervisor-mode permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EptViolation {
    /// Bit 0: the access was a data read.
    pub read: bool,
    /// Bit 1: the access was a data write.
    pub write: bool,
    /// Bit 2: the access was an instruction fetch.
    pub fetch: bool,
    /// Bit 3: the address was readable.
    pub readable: bool,
    /// Bit 4: the address was writable.
    pub writable: bool,
    /// Bit 5: the address was executable.
    pub executable: bool,
    /// Bit 7: the guest-linear-address VMCS field is valid.
    pub gla_valid: bool,
    /// Bit 8, meaningful only with `gla_valid`: the access was to the
    /// translation of the linear address (else to a guest paging
    /// structure during the walk). False when `gla_valid` is clear.
    pub gla_translated: bool,
    /// Bit 12: NMI unblocking due to IRET.
    pub nmi_unblocking: bool,
}

impl TryFrom<u64> for EptViolation {
    type Error = Unknown;

    /// Decodes the qualification; it is [`Unknown`] when none of bits 2:0
    /// (read, write, fetch) is set, as no access can have caused it.
    fn try_from(raw: u64) -> Result<Self, Unknown> {
        if raw & 7 == 0 {
            return Err(Unknown(raw));
        }
        let gla_valid = bit(raw, 7);
        Ok(Self {
            read: bit(raw, 0),
            write: bit(raw, 1),
            fetch: bit(raw, 2),
            readable: bit(raw, 3),
            writable: bit(raw, 4),
            executable: bit(raw, 5),
            gla_valid,
            gla_translated: gla_valid && bit(raw, 8),
            nmi_unblocking: bit(raw, 12),
        })
    }
}

impl EptViolation {
    /// The kind of access: write beats fetch beats read.
    pub fn access(&self) -> Access {
        if self.write {
            Access::Write
        } else if self.fetch {
            Access::Fetch
        } else {
            Access::Read
        }
    }
}

/// Access type of an APIC-access exit, bits 15:12 of its qualification
/// (SDM Vol. 3C, Table 28-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicAccessKind {
    /// Linear access for a data read during instruction execution.
    LinearRead = 0,
    /// Linear access for a data write during instruction execution.
    LinearWrite = 1,
    /// Linear access for an instruction fetch.
    LinearFetch = 2,
    /// Linear access (read or write) during event delivery.
    LinearEventDelivery = 3,
    /// Guest-physical access during event delivery.
    PhysicalEventDelivery = 10,
    /// Guest-physical access for an instruction fetch or during instruction
    /// execution.
    PhysicalFetchOrExecution = 15,
}

impl ApicAccessKind {
    /// Whether the access was linear, so that the offset is defined.
    pub const fn is_linear(self) -> bool {
        (self as u8) < 4
    }
}

impl TryFrom<u8> for ApicAccessKind {
    type Error = Unknown;

    fn try_from(raw: u8) -> Result<Self, Unknown> {
        Ok(match raw {
            0 => Self::LinearRead,
            1 => Self::LinearWrite,
            2 => Self::LinearFetch,
            3 => Self::LinearEventDelivery,
            10 => Self::PhysicalEventDelivery,
            15 => Self::PhysicalFetchOrExecution,
            _ => return Err(Unknown(raw.into())),
        })
    }
}

/// Exit qualification for APIC-access exits (SDM Vol. 3C, Table 28-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApicAccess {
    /// Bits 11:0: offset of the access within the APIC page. Defined only
    /// for linear kinds; 0 for the guest-physical ones.
    pub offset: u16,
    /// Bits 15:12: the access type.
    pub kind: ApicAccessKind,
    /// Bit 16: the access was asynchronous to instruction execution and
    /// not part of event delivery.
    pub async_instruction: bool,
}

impl TryFrom<u64> for ApicAccess {
    type Error = Unknown;

    /// Decodes the qualification; an undefined access type is
    /// [`Unknown`].
    fn try_from(raw: u64) -> Result<Self, Unknown> {
        let kind = ApicAccessKind::try_from(((raw >> 12) & 0xf) as u8).map_err(|_| Unknown(raw))?;
        let offset = if kind.is_linear() { (raw & 0xfff) as u16 } else { 0 };
        Ok(Self { offset, kind, async_instruction: bit(raw, 16) })
    }
}

/// Interruption type, bits 10:8 of the interruption-information format
/// (SDM Vol. 3C, 25.8.3, 25.9.2, 25.9.3). Type 1 is reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    /// External interrupt.
    External = 0,
    /// Non-maskable interrupt; the vector is 2.
    Nmi = 2,
    /// Hardware exception (a fault or abort, #DB from the debug unit, or
    /// #BP/#OF outside INT3/INTO).
    HardwareException = 3,
    /// Software interrupt (INT n).
    SoftwareInterrupt = 4,
    /// Privileged software exception (INT1).
    PrivilegedSoftwareException = 5,
    /// Software exception (INT3 or INTO).
    SoftwareException = 6,
    /// Other event; on VM entry, vector 0 injects a pending MTF VM exit.
    Other = 7,
}

impl TryFrom<u8> for EventType {
    type Error = Unknown;

    fn try_from(raw: u8) -> Result<Self, Unknown> {
        Ok(match raw {
            0 => Self::External,
            2 => Self::Nmi,
            3 => Self::HardwareException,
            4 => Self::SoftwareInterrupt,
            5 => Self::PrivilegedSoftwareException,
            6 => Self::SoftwareException,
            7 => Self::Other,
            _ => return Err(Unknown(raw.into())),
        })
    }
}

/// Interruption-information format shared by VM-exit interruption
/// information, IDT-vectoring information and VM-entry interruption
/// information (SDM Vol. 3C, 25.8.3, 25.9.2, 25.9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interruption {
    /// Bits 7:0: the vector.
    pub vector: u8,
    /// Bits 10:8: the interruption type.
    pub kind: EventType,
    /// Bit 11: an error code is delivered (read from or written to the
    /// matching error-code field).
    pub has_error: bool,
    /// Bit 12 of VM-exit interruption information: NMI unblocking due to
    /// IRET. Undefined in IDT-vectoring information and reserved in
    /// VM-entry interruption information.
    pub nmi_unblocking: bool,
}

impl Interruption {
    /// Bit 31: the field is valid.
    const VALID: u32 = 1 << 31;
    /// Bits 30:13, reserved in all three fields.
    const RESERVED: u32 = 0x7fff_e000;

    /// Decodes a field; Ok(None) when bit 31 (valid) is clear; Err for
    /// reserved type 1 or reserved bits 30:13 set (for the exit/IDT-vectoring
    /// variants bit 12 is nmi_unblocking).
    pub fn decode(raw: u32) -> Result<Option<Self>, Unknown> {
        if raw & Self::VALID == 0 {
            return Ok(None);
        }
        if raw & Self::RESERVED != 0 {
            return Err(Unknown(raw.into()));
        }
        let kind = EventType::try_from(((raw >> 8) & 7) as u8).map_err(|_| Unknown(raw.into()))?;
        Ok(Some(Self {
            vector: raw as u8,
            kind,
            has_error: raw & (1 << 11) != 0,
            nmi_unblocking: raw & (1 << 12) != 0,
        }))
    }

    /// Encodes for the VM-entry interruption-information field (valid bit
    /// set, bit 12 clear).
    pub fn encode(&self) -> u32 {
        Self::VALID
            | (u32::from(self.has_error) << 11)
            | ((self.kind as u32) << 8)
            | u32::from(self.vector)
    }

    /// A hardware exception with an optional error code.
    pub const fn exception(vector: u8, error: bool) -> Self {
        Self { vector, kind: EventType::HardwareException, has_error: error, nmi_unblocking: false }
    }
}

/// VM-exit instruction information for INS/OUTS (SDM Vol. 3C, Table 28-8):
/// address size and segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringIoInfo {
    /// Bits 9:7: address size in bytes: 2, 4 or 8.
    pub addr_size: u8,
    /// Bits 17:15: segment register of the memory operand: 0 = ES, 1 = CS,
    /// 2 = SS, 3 = DS, 4 = FS, 5 = GS.
    pub segment: u8,
}

impl StringIoInfo {
    /// Decodes the field for an INS exit. The SDM leaves the segment field
    /// undefined for INS, whose destination is always ES:rDI, so it is
    /// ignored and reported as ES.
    pub fn for_ins(raw: u32) -> Result<Self, Unknown> {
        Ok(Self { addr_size: Self::addr_size(raw)?, segment: 0 })
    }

    /// The address size in bytes; encodings 3 and above are [`Unknown`].
    fn addr_size(raw: u32) -> Result<u8, Unknown> {
        match (raw >> 7) & 7 {
            0 => Ok(2),
            1 => Ok(4),
            2 => Ok(8),
            _ => Err(Unknown(raw.into())),
        }
    }
}

impl TryFrom<u32> for StringIoInfo {
    type Error = Unknown;

    /// Decodes the field for an OUTS exit (for INS see
    /// [`StringIoInfo::for_ins`]); address-size encodings 3 and above and
    /// segments 6 and 7 are [`Unknown`].
    fn try_from(raw: u32) -> Result<Self, Unknown> {
        let addr_size = Self::addr_size(raw)?;
        let segment = ((raw >> 15) & 7) as u8;
        if segment > 5 {
            return Err(Unknown(raw.into()));
        }
        Ok(Self { addr_size, segment })
    }
}

/// VM-instruction error numbers (SDM Vol. 3C, 31.4, Table 31-1), for log
/// messages.
pub fn instruction_error_name(n: u32) -> &'static str {
    match n {
        1 => "VMCALL executed in VMX root operation",
        2 => "VMCLEAR with invalid physical address",
        3 => "VMCLEAR with VMXON pointer",
        4 => "VMLAUNCH with non-clear VMCS",
        5 => "VMRESUME with non-launched VMCS",
        6 => "VMRESUME after VMXOFF",
        7 => "VM entry with invalid control field(s)",
        8 => "VM entry with invalid host-state field(s)",
        9 => "VMPTRLD with invalid physical address",
        10 => "VMPTRLD with VMXON pointer",
        11 => "VMPTRLD with incorrect VMCS revision identifier",
        12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
        13 => "VMWRITE to read-only VMCS component",
        15 => "VMXON executed in VMX root operation",
        16 => "VM entry with invalid executive-VMCS pointer",
        17 => "VM entry with non-launched executive VMCS",
        18 => "VM entry with executive-VMCS pointer not VMXON pointer",
        19 => "VMCALL with non-clear VMCS",
        20 => "VMCALL with invalid VM-exit control fields",
        22 => "VMCALL with incorrect MSEG revision identifier",
        23 => "VMXOFF under dual-monitor treatment of SMIs and SMM",
        24 => "VMCALL with invalid SMM-monitor features",
        25 => "VM entry with invalid VM-execution control fields in executive VMCS",
        26 => "VM entry with events blocked by MOV SS",
        28 => "Invalid operand to INVEPT/INVVPID",
        _ => "unknown VM-instruction error",
    }
}
