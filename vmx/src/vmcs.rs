// SPDX-License-Identifier: GPL-2.0

//! VMCS field encodings (SDM Vol. 3C, Appendix B), typed by width.
//!
//! A field's width is part of its encoding (bits 14:13) and of its Rust
//! type: a [`Field<W64>`] reads and writes `u64`, a [`Field<W32>`] `u32`,
//! and so on, so a 64-bit field cannot be accessed as a 32-bit one. Each
//! constant is built by [`Field::new`], which refuses at compile time an
//! encoding whose width bits disagree with its type, and the access-type
//! bit (the "high" half of a 64-bit field) is never set.
//!
//! [`Vmcs`] is how pure code reads and writes a VMCS: the kernel glue
//! implements [`Vmcs::vmread`] and [`Vmcs::vmwrite`] with the instructions,
//! and the tests with a table.

use core::marker::PhantomData;

/// A field width and the Rust type of its values.
pub trait Width: Copy {
    /// The value type.
    type Value: Copy;
    /// The width bits (14:13) of encodings of this width.
    const BITS: u32;
    /// Widens a value for VMWRITE.
    fn widen(v: Self::Value) -> u64;
    /// Narrows a VMREAD result.
    fn narrow(v: u64) -> Self::Value;
}

macro_rules! width {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $bits:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub enum $name {}
        impl Width for $name {
            type Value = $ty;
            const BITS: u32 = $bits;
            fn widen(v: $ty) -> u64 {
                v.into()
            }
            fn narrow(v: u64) -> $ty {
                v as $ty
            }
        }
    };
}

width!(/// 16-bit fields.
    W16, u16, 0);
width!(/// 64-bit fields (accessed "full", never as their high half).
    W64, u64, 1);
width!(/// 32-bit fields.
    W32, u32, 2);
width!(/// Natural-width fields (64 bits on a 64-bit host).
    Nat, u64, 3);

/// One VMCS field of width `W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<W: Width> {
    encoding: u32,
    _w: PhantomData<W>,
}

impl<W: Width> Field<W> {
    /// The field with `encoding`; a compile-time error (in a `const`) when
    /// the encoding's width or access-type bits do not fit `W`.
    pub const fn new(encoding: u32) -> Self {
        assert!((encoding >> 13) & 3 == W::BITS, "VMCS field width does not match its type");
        assert!(encoding & 1 == 0 || W::BITS != 1, "the high half of a 64-bit field");
        assert!(encoding >> 15 == 0, "reserved encoding bits");
        Self { encoding, _w: PhantomData }
    }

    /// The encoding VMREAD and VMWRITE take.
    pub const fn encoding(self) -> u32 {
        self.encoding
    }
}

/// Raw access to the current VMCS.
pub trait Vmcs {
    /// VMREAD of `encoding`, zero-extended.
    fn vmread(&self, encoding: u32) -> u64;
    /// VMWRITE of `encoding`.
    fn vmwrite(&mut self, encoding: u32, value: u64);

    /// Reads a typed field.
    fn read<W: Width>(&self, f: Field<W>) -> W::Value {
        W::narrow(self.vmread(f.encoding()))
    }

    /// Writes a typed field.
    fn write<W: Width>(&mut self, f: Field<W>, v: W::Value) {
        self.vmwrite(f.encoding(), W::widen(v))
    }
}

macro_rules! fields {
    ($w:ty: $($(#[$doc:meta])* $name:ident = $enc:expr;)*) => {
        $($(#[$doc])* pub const $name: Field<$w> = Field::new($enc);)*
    };
}

// 16-bit control, guest and host fields (B.1).
fields! { W16:
    /// Virtual-processor identifier.
    VPID = 0x0000;
    /// Posted-interrupt notification vector.
    POSTED_INTR_NV = 0x0002;
    /// EPTP index.
    EPTP_INDEX = 0x0004;
    /// Guest ES selector.
    GUEST_ES_SELECTOR = 0x0800;
    /// Guest CS selector.
    GUEST_CS_SELECTOR = 0x0802;
    /// Guest SS selector.
    GUEST_SS_SELECTOR = 0x0804;
    /// Guest DS selector.
    GUEST_DS_SELECTOR = 0x0806;
    /// Guest FS selector.
    GUEST_FS_SELECTOR = 0x0808;
    /// Guest GS selector.
    GUEST_GS_SELECTOR = 0x080a;
    /// Guest LDTR selector.
    GUEST_LDTR_SELECTOR = 0x080c;
    /// Guest TR selector.
    GUEST_TR_SELECTOR = 0x080e;
    /// Guest interrupt status (RVI, SVI).
    GUEST_INTR_STATUS = 0x0810;
    /// Host ES selector.
    HOST_ES_SELECTOR = 0x0c00;
    /// Host CS selector.
    HOST_CS_SELECTOR = 0x0c02;
    /// Host SS selector.
    HOST_SS_SELECTOR = 0x0c04;
    /// Host DS selector.
    HOST_DS_SELECTOR = 0x0c06;
    /// Host FS selector.
    HOST_FS_SELECTOR = 0x0c08;
    /// Host GS selector.
    HOST_GS_SELECTOR = 0x0c0a;
    /// Host TR selector.
    HOST_TR_SELECTOR = 0x0c0c;
}

// 64-bit fields (B.2).
fields! { W64:
    /// I/O bitmap A (ports 0-0x7fff).
    IO_BITMAP_A = 0x2000;
    /// I/O bitmap B (ports 0x8000-0xffff).
    IO_BITMAP_B = 0x2002;
    /// MSR bitmaps.
    MSR_BITMAP = 0x2004;
    /// VM-exit MSR-store address.
    EXIT_MSR_STORE_ADDR = 0x2006;
    /// VM-exit MSR-load address.
    EXIT_MSR_LOAD_ADDR = 0x2008;
    /// VM-entry MSR-load address.
    ENTRY_MSR_LOAD_ADDR = 0x200a;
    /// TSC offset.
    TSC_OFFSET = 0x2010;
    /// Virtual-APIC address.
    VIRTUAL_APIC_ADDR = 0x2012;
    /// APIC-access address.
    APIC_ACCESS_ADDR = 0x2014;
    /// Posted-interrupt descriptor address.
    POSTED_INTR_DESC_ADDR = 0x2016;
    /// EPT pointer.
    EPT_POINTER = 0x201a;
    /// EOI-exit bitmap 0.
    EOI_EXIT_BITMAP0 = 0x201c;
    /// Guest-physical address of an EPT violation or misconfiguration.
    GUEST_PHYSICAL_ADDR = 0x2400;
    /// VMCS link pointer.
    VMCS_LINK_POINTER = 0x2800;
    /// Guest IA32_DEBUGCTL.
    GUEST_IA32_DEBUGCTL = 0x2802;
    /// Guest IA32_PAT.
    GUEST_IA32_PAT = 0x2804;
    /// Guest IA32_EFER.
    GUEST_IA32_EFER = 0x2806;
    /// Guest PDPTE0 (PAE paging without EPT-friendly reloads).
    GUEST_PDPTE0 = 0x280a;
    /// Guest PDPTE1.
    GUEST_PDPTE1 = 0x280c;
    /// Guest PDPTE2.
    GUEST_PDPTE2 = 0x280e;
    /// Guest PDPTE3.
    GUEST_PDPTE3 = 0x2810;
    /// Host IA32_PAT.
    HOST_IA32_PAT = 0x2c00;
    /// Host IA32_EFER.
    HOST_IA32_EFER = 0x2c02;
}

// 32-bit fields (B.3).
fields! { W32:
    /// Pin-based VM-execution controls.
    PIN_CONTROLS = 0x4000;
    /// Primary processor-based VM-execution controls.
    PROC_CONTROLS = 0x4002;
    /// Exception bitmap.
    EXCEPTION_BITMAP = 0x4004;
    /// Page-fault error-code mask.
    PF_ERROR_MASK = 0x4006;
    /// Page-fault error-code match.
    PF_ERROR_MATCH = 0x4008;
    /// CR3-target count.
    CR3_TARGET_COUNT = 0x400a;
    /// VM-exit controls.
    EXIT_CONTROLS = 0x400c;
    /// VM-exit MSR-store count.
    EXIT_MSR_STORE_COUNT = 0x400e;
    /// VM-exit MSR-load count.
    EXIT_MSR_LOAD_COUNT = 0x4010;
    /// VM-entry controls.
    ENTRY_CONTROLS = 0x4012;
    /// VM-entry MSR-load count.
    ENTRY_MSR_LOAD_COUNT = 0x4014;
    /// VM-entry interruption information.
    ENTRY_INTR_INFO = 0x4016;
    /// VM-entry exception error code.
    ENTRY_EXCEPTION_ERROR = 0x4018;
    /// VM-entry instruction length.
    ENTRY_INSTRUCTION_LEN = 0x401a;
    /// TPR threshold.
    TPR_THRESHOLD = 0x401c;
    /// Secondary processor-based VM-execution controls.
    PROC_CONTROLS2 = 0x401e;
    /// PAUSE-loop-exiting gap.
    PLE_GAP = 0x4020;
    /// PAUSE-loop-exiting window.
    PLE_WINDOW = 0x4022;
    /// VM-instruction error.
    VM_INSTRUCTION_ERROR = 0x4400;
    /// Exit reason.
    EXIT_REASON = 0x4402;
    /// VM-exit interruption information.
    EXIT_INTR_INFO = 0x4404;
    /// VM-exit interruption error code.
    EXIT_INTR_ERROR = 0x4406;
    /// IDT-vectoring information.
    IDT_VECTORING_INFO = 0x4408;
    /// IDT-vectoring error code.
    IDT_VECTORING_ERROR = 0x440a;
    /// VM-exit instruction length.
    EXIT_INSTRUCTION_LEN = 0x440c;
    /// VM-exit instruction information.
    EXIT_INSTRUCTION_INFO = 0x440e;
    /// Guest ES limit.
    GUEST_ES_LIMIT = 0x4800;
    /// Guest CS limit.
    GUEST_CS_LIMIT = 0x4802;
    /// Guest SS limit.
    GUEST_SS_LIMIT = 0x4804;
    /// Guest DS limit.
    GUEST_DS_LIMIT = 0x4806;
    /// Guest FS limit.
    GUEST_FS_LIMIT = 0x4808;
    /// Guest GS limit.
    GUEST_GS_LIMIT = 0x480a;
    /// Guest LDTR limit.
    GUEST_LDTR_LIMIT = 0x480c;
    /// Guest TR limit.
    GUEST_TR_LIMIT = 0x480e;
    /// Guest GDTR limit.
    GUEST_GDTR_LIMIT = 0x4810;
    /// Guest IDTR limit.
    GUEST_IDTR_LIMIT = 0x4812;
    /// Guest ES access rights.
    GUEST_ES_AR = 0x4814;
    /// Guest CS access rights.
    GUEST_CS_AR = 0x4816;
    /// Guest SS access rights.
    GUEST_SS_AR = 0x4818;
    /// Guest DS access rights.
    GUEST_DS_AR = 0x481a;
    /// Guest FS access rights.
    GUEST_FS_AR = 0x481c;
    /// Guest GS access rights.
    GUEST_GS_AR = 0x481e;
    /// Guest LDTR access rights.
    GUEST_LDTR_AR = 0x4820;
    /// Guest TR access rights.
    GUEST_TR_AR = 0x4822;
    /// Guest interruptibility state.
    GUEST_INTERRUPTIBILITY = 0x4824;
    /// Guest activity state.
    GUEST_ACTIVITY_STATE = 0x4826;
    /// Guest IA32_SYSENTER_CS.
    GUEST_SYSENTER_CS = 0x482a;
    /// VMX-preemption timer value.
    PREEMPTION_TIMER = 0x482e;
    /// Host IA32_SYSENTER_CS.
    HOST_SYSENTER_CS = 0x4c00;
}

// Natural-width fields (B.4).
fields! { Nat:
    /// CR0 guest/host mask.
    CR0_MASK = 0x6000;
    /// CR4 guest/host mask.
    CR4_MASK = 0x6002;
    /// CR0 read shadow.
    CR0_SHADOW = 0x6004;
    /// CR4 read shadow.
    CR4_SHADOW = 0x6006;
    /// Exit qualification.
    EXIT_QUALIFICATION = 0x6400;
    /// Guest-linear address.
    GUEST_LINEAR_ADDR = 0x640a;
    /// Guest CR0.
    GUEST_CR0 = 0x6800;
    /// Guest CR3.
    GUEST_CR3 = 0x6802;
    /// Guest CR4.
    GUEST_CR4 = 0x6804;
    /// Guest ES base.
    GUEST_ES_BASE = 0x6806;
    /// Guest CS base.
    GUEST_CS_BASE = 0x6808;
    /// Guest SS base.
    GUEST_SS_BASE = 0x680a;
    /// Guest DS base.
    GUEST_DS_BASE = 0x680c;
    /// Guest FS base.
    GUEST_FS_BASE = 0x680e;
    /// Guest GS base.
    GUEST_GS_BASE = 0x6810;
    /// Guest LDTR base.
    GUEST_LDTR_BASE = 0x6812;
    /// Guest TR base.
    GUEST_TR_BASE = 0x6814;
    /// Guest GDTR base.
    GUEST_GDTR_BASE = 0x6816;
    /// Guest IDTR base.
    GUEST_IDTR_BASE = 0x6818;
    /// Guest DR7.
    GUEST_DR7 = 0x681a;
    /// Guest RSP.
    GUEST_RSP = 0x681c;
    /// Guest RIP.
    GUEST_RIP = 0x681e;
    /// Guest RFLAGS.
    GUEST_RFLAGS = 0x6820;
    /// Guest pending debug exceptions.
    GUEST_PENDING_DBG = 0x6822;
    /// Guest IA32_SYSENTER_ESP.
    GUEST_SYSENTER_ESP = 0x6824;
    /// Guest IA32_SYSENTER_EIP.
    GUEST_SYSENTER_EIP = 0x6826;
    /// Host CR0.
    HOST_CR0 = 0x6c00;
    /// Host CR3.
    HOST_CR3 = 0x6c02;
    /// Host CR4.
    HOST_CR4 = 0x6c04;
    /// Host FS base.
    HOST_FS_BASE = 0x6c06;
    /// Host GS base.
    HOST_GS_BASE = 0x6c08;
    /// Host TR base.
    HOST_TR_BASE = 0x6c0a;
    /// Host GDTR base.
    HOST_GDTR_BASE = 0x6c0c;
    /// Host IDTR base.
    HOST_IDTR_BASE = 0x6c0e;
    /// Host IA32_SYSENTER_ESP.
    HOST_SYSENTER_ESP = 0x6c10;
    /// Host IA32_SYSENTER_EIP.
    HOST_SYSENTER_EIP = 0x6c12;
    /// Host RSP.
    HOST_RSP = 0x6c14;
    /// Host RIP.
    HOST_RIP = 0x6c16;
}

/// The guest fields of one segment register.
#[derive(Clone, Copy, Debug)]
pub struct SegFields {
    /// Selector.
    pub selector: Field<W16>,
    /// Base.
    pub base: Field<Nat>,
    /// Limit.
    pub limit: Field<W32>,
    /// Access rights; `None` for GDTR and IDTR, which have none.
    pub ar: Option<Field<W32>>,
}

/// Guest segment fields in `uapi::reg` order: ES, CS, SS, DS, FS, GS,
/// LDTR, TR, then GDTR and IDTR (whose selector entry is unused).
pub const GUEST_SEGMENTS: [SegFields; 10] = {
    const fn s(sel: Field<W16>, base: Field<Nat>, limit: Field<W32>, ar: Field<W32>) -> SegFields {
        SegFields { selector: sel, base, limit, ar: Some(ar) }
    }
    const fn t(base: Field<Nat>, limit: Field<W32>) -> SegFields {
        SegFields { selector: GUEST_ES_SELECTOR, base, limit, ar: None }
    }
    [
        s(GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR),
        s(GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR),
        s(GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR),
        s(GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR),
        s(GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR),
        s(GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR),
        s(GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR),
        s(GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR),
        t(GUEST_GDTR_BASE, GUEST_GDTR_LIMIT),
        t(GUEST_IDTR_BASE, GUEST_IDTR_LIMIT),
    ]
};

/// Access rights: segment unusable (bit 16).
pub const AR_UNUSABLE: u32 = 1 << 16;

/// The VMX access-rights word for a `uapi` segment access value. The
/// `uapi` format is the VMX one (type, S, DPL, P, AVL, L, D/B, G, and
/// unusable at bit 16); a segment that is not present is also unusable.
pub const fn ar_from_access(access: u32) -> u32 {
    let ar = access & 0x1_f0ff;
    if ar & (1 << 7) == 0 {
        ar | AR_UNUSABLE
    } else {
        ar
    }
}

/// The `uapi` access value of a VMX access-rights word: an unusable
/// segment reads as not present, as on AMD-V.
pub const fn access_from_ar(ar: u32) -> u32 {
    if ar & AR_UNUSABLE != 0 {
        (ar & 0xf07f) | AR_UNUSABLE
    } else {
        ar & 0xf0ff
    }
}

/// Guest interruptibility state bits (SDM 25.4.2).
pub mod interruptibility {
    /// Blocking by STI.
    pub const STI: u32 = 1 << 0;
    /// Blocking by MOV SS.
    pub const MOV_SS: u32 = 1 << 1;
    /// Blocking by SMI.
    pub const SMI: u32 = 1 << 2;
    /// Blocking by NMI.
    pub const NMI: u32 = 1 << 3;
}
