// SPDX-License-Identifier: MIT OR Apache-2.0

//! vCPUs: registers, CPUID, and the run protocol.
//!
//! `VMM_VM_CREATE_VCPU` returns a vCPU fd. Its ioctls may be issued from any
//! thread, but only one `VMM_VCPU_RUN` runs at a time per vCPU (a second
//! fails with `EBUSY`); register and CPUID ioctls wait for a running vCPU
//! to return. `VMM_VCPU_KICK` never waits.
//!
//! # The run protocol
//!
//! `VMM_VCPU_RUN` takes a [`VmmRun`]. Its [`VmmEntry`] completes the exit
//! the previous call returned, and its [`VmmExit`] is filled in on return.
//! Exits that need the sequencer's answer (`INOUT`, `RDMSR`, `WRMSR`) leave
//! the instruction pending: the next entry's command completes it
//! ([`VMM_ENTRY_COMPLETE`], with the value an `IN` or `RDMSR` reads), makes
//! it raise #GP ([`VMM_ENTRY_INJECT_GP`], for MSRs), or, with
//! [`VMM_ENTRY_RUN`], abandons it so the guest executes it again. Any other
//! completion of a pending exit, or a completion when none is pending,
//! fails with `EINVAL` and changes nothing.
//!
//! A string `INS`/`OUTS` moves one element per exit; the kernel reads or
//! writes guest memory, updates RSI/RDI/RCX, and re-enters the guest for the
//! next element, so a large `REP` count costs many exits and never a
//! kernel-side loop over a guest-controlled count.
//!
//! `VMM_VCPU_RUN` fails with `EINTR` when a signal is pending; a completion
//! carried by that call has been applied first.

use super::{AbiField, FieldLayout, StructLayout};
use core::mem::{offset_of, size_of};

/// Most vCPUs one VM may have: ids are `0..VMM_MAX_VCPUS`.
pub const VMM_MAX_VCPUS: u32 = 64;
/// Most registers one `VMM_VCPU_GET_REGS`/`SET_REGS` moves.
pub const VMM_MAX_REGS: u32 = 64;
/// Most entries of a CPUID table.
pub const VMM_MAX_CPUID: u32 = 256;

/// Register ids for [`VmmRegs`]. General registers are 0-15 in the
/// instruction-encoding order.
pub mod reg {
    /// RAX.
    pub const RAX: u32 = 0;
    /// RCX.
    pub const RCX: u32 = 1;
    /// RDX.
    pub const RDX: u32 = 2;
    /// RBX.
    pub const RBX: u32 = 3;
    /// RSP.
    pub const RSP: u32 = 4;
    /// RBP.
    pub const RBP: u32 = 5;
    /// RSI.
    pub const RSI: u32 = 6;
    /// RDI.
    pub const RDI: u32 = 7;
    /// R8; R9-R15 follow as 9-15.
    pub const R8: u32 = 8;
    /// R15.
    pub const R15: u32 = 15;
    /// RIP.
    pub const RIP: u32 = 16;
    /// RFLAGS. Bit 1 always reads 1; reserved bits may not be set.
    pub const RFLAGS: u32 = 17;
    /// CR0.
    pub const CR0: u32 = 18;
    /// CR2.
    pub const CR2: u32 = 19;
    /// CR3.
    pub const CR3: u32 = 20;
    /// CR4.
    pub const CR4: u32 = 21;
    /// IA32_EFER as the guest sees it.
    pub const EFER: u32 = 22;
    /// DR6.
    pub const DR6: u32 = 23;
    /// DR7.
    pub const DR7: u32 = 24;
    /// Segment selectors ES, CS, SS, DS, FS, GS, LDTR, TR are 32-39; the
    /// same ids name their descriptors in [`super::VmmDescs`].
    pub const ES: u32 = 32;
    /// CS selector / descriptor.
    pub const CS: u32 = 33;
    /// SS selector / descriptor.
    pub const SS: u32 = 34;
    /// DS selector / descriptor.
    pub const DS: u32 = 35;
    /// FS selector / descriptor.
    pub const FS: u32 = 36;
    /// GS selector / descriptor.
    pub const GS: u32 = 37;
    /// LDTR selector / descriptor.
    pub const LDTR: u32 = 38;
    /// TR selector / descriptor.
    pub const TR: u32 = 39;
    /// GDTR (descriptor only: base and limit).
    pub const GDTR: u32 = 40;
    /// IDTR (descriptor only: base and limit).
    pub const IDTR: u32 = 41;
    /// Highest register id.
    pub const LAST: u32 = IDTR;
}

/// Access-rights bits of [`VmmSegDesc::access`], in the VMX layout (the
/// descriptor's bits 40-47 and 52-55 at bits 0-7 and 12-15).
pub mod access {
    /// Segment type, bits 0-3.
    pub const TYPE_MASK: u32 = 0xf;
    /// S: code or data (not system).
    pub const S: u32 = 1 << 4;
    /// DPL, bits 5-6.
    pub const DPL_SHIFT: u32 = 5;
    /// P: present.
    pub const P: u32 = 1 << 7;
    /// AVL.
    pub const AVL: u32 = 1 << 12;
    /// L: 64-bit code.
    pub const L: u32 = 1 << 13;
    /// D/B: 32-bit default size.
    pub const DB: u32 = 1 << 14;
    /// G: 4 KiB granularity.
    pub const G: u32 = 1 << 15;
    /// The segment is unusable (a null selector was loaded).
    pub const UNUSABLE: u32 = 1 << 16;
    /// Every bit that may be set.
    pub const VALID: u32 = 0x1f0ff;
}

abi_struct! {
    /// `VMM_VCPU_GET_REGS` / `VMM_VCPU_SET_REGS` argument: a batch of
    /// registers. All ids are checked before any register is changed.
    pub struct VmmRegs as "vmm_regs" {
        /// Number of registers, 1 to [`VMM_MAX_REGS`].
        pub count: u32,
        /// Zero.
        pub flags: u32,
        /// User address of `u32 ids[count]` (see [`reg`]).
        pub ids: u64,
        /// User address of `u64 values[count]`.
        pub values: u64,
    }
}

abi_struct! {
    /// A segment descriptor's hidden part, or GDTR/IDTR (base and limit).
    pub struct VmmSegDesc as "vmm_seg_desc" {
        /// Base address.
        pub base: u64,
        /// Limit in bytes (already scaled by G).
        pub limit: u32,
        /// [`access`] bits; zero for GDTR and IDTR.
        pub access: u32,
    }
}

abi_struct! {
    /// `VMM_VCPU_GET_DESCS` / `VMM_VCPU_SET_DESCS` argument.
    pub struct VmmDescs as "vmm_descs" {
        /// Number of descriptors, 1 to [`VMM_MAX_REGS`].
        pub count: u32,
        /// Zero.
        pub flags: u32,
        /// User address of `u32 ids[count]`: `reg::ES` to `reg::IDTR`.
        pub ids: u64,
        /// User address of `struct vmm_seg_desc descs[count]`.
        pub descs: u64,
    }
}

/// [`VmmCpuidEntry::flags`]: `index` (ECX) selects the entry.
pub const VMM_CPUID_INDEXED: u32 = 1 << 0;

abi_struct! {
    /// One CPUID answer.
    pub struct VmmCpuidEntry as "vmm_cpuid_entry" {
        /// EAX input.
        pub function: u32,
        /// ECX input, when [`VMM_CPUID_INDEXED`].
        pub index: u32,
        /// [`VMM_CPUID_INDEXED`] or zero.
        pub flags: u32,
        /// EAX output.
        pub eax: u32,
        /// EBX output.
        pub ebx: u32,
        /// ECX output.
        pub ecx: u32,
        /// EDX output.
        pub edx: u32,
        /// Zero.
        pub reserved: u32,
    }
}

abi_struct! {
    /// `VMM_VCPU_SET_CPUID` / `VMM_VCPU_GET_CPUID` argument.
    ///
    /// Set: `count` entries replace the vCPU's table; with a table, CPUID
    /// answers only from it (all zeros for a leaf it lacks). `count == 0`
    /// returns the vCPU to the kernel's default answers.
    ///
    /// Get: `count` is the room in `entries`; on return it is the number of
    /// entries in the table (zero: the default is in use), and `E2BIG`
    /// means the room was too small and nothing was written.
    pub struct VmmCpuid as "vmm_cpuid" {
        /// Entries, up to [`VMM_MAX_CPUID`].
        pub count: u32,
        /// Zero.
        pub flags: u32,
        /// User address of `struct vmm_cpuid_entry entries[count]`.
        pub entries: u64,
    }
}

// --- entries --------------------------------------------------------------

/// [`VmmEntry::cmd`]: run; abandon any pending instruction.
pub const VMM_ENTRY_RUN: u32 = 0;
/// [`VmmEntry::cmd`]: complete the pending `INOUT`/`RDMSR`/`WRMSR` exit;
/// `value` is what an `IN` or `RDMSR` reads (ignored otherwise).
pub const VMM_ENTRY_COMPLETE: u32 = 1;
/// [`VmmEntry::cmd`]: the pending `RDMSR`/`WRMSR` raises #GP(0) instead.
pub const VMM_ENTRY_INJECT_GP: u32 = 2;

abi_struct! {
    /// What the sequencer hands the kernel on `VMM_VCPU_RUN`.
    pub struct VmmEntry as "vmm_entry" {
        /// A `VMM_ENTRY_*` command.
        pub cmd: u32,
        /// Zero.
        pub flags: u32,
        /// The value an `IN`, `RDMSR` or MMIO read completion delivers.
        pub value: u64,
        /// Zero.
        pub reserved: [u64; 2],
    }
}

// --- exits ----------------------------------------------------------------

/// Exit reasons, for [`VmmExit::reason`].
pub mod exit {
    /// Port I/O; `data` is a [`super::VmmExitInout`]. Needs completion.
    pub const INOUT: u32 = 1;
    /// The guest executed HLT; RIP is already past it.
    pub const HLT: u32 = 2;
    /// A nested page fault; `data` is a [`super::VmmExitPaging`]. The
    /// instruction runs again on the next entry.
    pub const PAGING: u32 = 3;
    /// The VM is suspended; `data` is a [`super::VmmExitSuspended`]. Every
    /// later run of any vCPU returns it again.
    pub const SUSPENDED: u32 = 4;
    /// RDMSR of an MSR the kernel leaves to the sequencer; `data` is a
    /// [`super::VmmExitMsr`]. Needs completion.
    pub const RDMSR: u32 = 5;
    /// WRMSR of an MSR the kernel leaves to the sequencer. Needs completion.
    pub const WRMSR: u32 = 6;
    /// An SVM exit the kernel does not handle; `data` is a
    /// [`super::VmmExitSvm`]. The guest state is as at the exit.
    pub const SVM: u32 = 7;
    /// A VMX exit the kernel does not handle, or a failed VM entry (the
    /// VT-x backend); `data` is a [`super::VmmExitVmx`]. The guest state is
    /// as at the exit.
    pub const VMX: u32 = 8;
    /// An instruction the kernel had to decode and could not; `data` is a
    /// [`super::VmmExitInstEmul`].
    pub const INST_EMUL: u32 = 9;
    /// `VMM_VCPU_KICK` made the vCPU leave the guest. Nothing is pending.
    pub const KICKED: u32 = 10;
    /// An access the kernel emulated to guest-physical memory that no
    /// mapping covers and no in-kernel device claims; `data` is a
    /// [`super::VmmExitMmio`]. A read needs completion.
    pub const MMIO: u32 = 11;
}

/// [`VmmExitMmio::flags`]: a write (else a read).
pub const VMM_MMIO_WRITE: u32 = 1 << 0;

abi_struct! {
    /// `MMIO` exit data: one access of 1, 2, 4 or 8 bytes. Wider accesses
    /// come as 8-byte exits in address order.
    pub struct VmmExitMmio as "vmm_exit_mmio" {
        /// The guest-physical address.
        pub gpa: u64,
        /// Access size in bytes: 1, 2, 4 or 8.
        pub size: u32,
        /// `VMM_MMIO_*` bits.
        pub flags: u32,
        /// A write: the value written (zero-extended). A read: zero.
        pub data: u64,
        /// Zero.
        pub reserved: [u64; 5],
    }
}

/// [`VmmExitInstEmul::flags`]: [`VmmExitInstEmul::gpa`] is the
/// guest-physical address the instruction touched (an MMIO access).
pub const VMM_INST_EMUL_GPA: u32 = 1 << 0;

/// [`VmmExitInout::flags`]: IN (else OUT).
pub const VMM_INOUT_IN: u32 = 1 << 0;
/// [`VmmExitInout::flags`]: one element of INS/OUTS.
pub const VMM_INOUT_STRING: u32 = 1 << 1;
/// [`VmmExitInout::flags`]: with a REP prefix.
pub const VMM_INOUT_REP: u32 = 1 << 2;

abi_struct! {
    /// `INOUT` exit data.
    pub struct VmmExitInout as "vmm_exit_inout" {
        /// `VMM_INOUT_*` bits.
        pub flags: u32,
        /// Port number.
        pub port: u32,
        /// Access size in bytes: 1, 2 or 4.
        pub size: u32,
        /// Zero.
        pub reserved: u32,
        /// OUT: the value written (zero-extended). IN: zero.
        pub value: u64,
        /// String: the element's guest-physical address.
        pub gpa: u64,
        /// String with REP: elements left, including this one.
        pub count: u64,
        /// Zero.
        pub reserved2: [u64; 3],
    }
}

/// [`VmmExitPaging::access`]: a read.
pub const VMM_ACCESS_READ: u32 = 1 << 0;
/// [`VmmExitPaging::access`]: a write.
pub const VMM_ACCESS_WRITE: u32 = 1 << 1;
/// [`VmmExitPaging::access`]: an instruction fetch.
pub const VMM_ACCESS_EXEC: u32 = 1 << 2;
/// [`VmmExitPaging::flags`]: no mapping covers the address.
pub const VMM_PAGING_UNMAPPED: u32 = 1 << 0;
/// [`VmmExitPaging::flags`]: a mapping exists but forbids the access.
pub const VMM_PAGING_PROTECTION: u32 = 1 << 1;

abi_struct! {
    /// `PAGING` exit data.
    pub struct VmmExitPaging as "vmm_exit_paging" {
        /// The faulting guest-physical address.
        pub gpa: u64,
        /// `VMM_ACCESS_*` bits of the access.
        pub access: u32,
        /// `VMM_PAGING_*`: why it faulted.
        pub flags: u32,
        /// Zero.
        pub reserved: [u64; 6],
    }
}

/// [`VmmExitSuspended::how`]: a vCPU triple-faulted (shutdown).
pub const VMM_SUSPEND_TRIPLE_FAULT: u32 = 1;
/// [`VmmExitSuspended::how`]: the sequencer called `VMM_VM_SUSPEND`.
pub const VMM_SUSPEND_USER: u32 = 2;
/// [`VmmExitSuspended::how`]: every vCPU halted with interrupts disabled
/// (or waits for a SIPI no running vCPU can send); `vcpu` is the last to
/// halt.
pub const VMM_SUSPEND_HALT: u32 = 3;

abi_struct! {
    /// `SUSPENDED` exit data.
    pub struct VmmExitSuspended as "vmm_exit_suspended" {
        /// `VMM_SUSPEND_*`.
        pub how: u32,
        /// The vCPU that triple-faulted (zero for a user suspend).
        pub vcpu: u32,
        /// Zero.
        pub reserved: [u64; 7],
    }
}

abi_struct! {
    /// `RDMSR` / `WRMSR` exit data.
    pub struct VmmExitMsr as "vmm_exit_msr" {
        /// The MSR number (ECX).
        pub msr: u32,
        /// Zero.
        pub reserved: u32,
        /// WRMSR: the value (EDX:EAX). RDMSR: zero.
        pub value: u64,
        /// Zero.
        pub reserved2: [u64; 6],
    }
}

abi_struct! {
    /// `SVM` exit data: the VMCB's exit fields, raw.
    pub struct VmmExitSvm as "vmm_exit_svm" {
        /// EXITCODE.
        pub exit_code: u64,
        /// EXITINFO1.
        pub exit_info1: u64,
        /// EXITINFO2.
        pub exit_info2: u64,
        /// EXITINTINFO.
        pub exit_int_info: u64,
        /// Zero.
        pub reserved: [u64; 4],
    }
}

abi_struct! {
    /// `VMX` exit data: the VMCS exit-information fields.
    pub struct VmmExitVmx as "vmm_exit_vmx" {
        /// Exit reason (bit 31: VM-entry failure).
        pub exit_reason: u32,
        /// VM-instruction error, when VMLAUNCH/VMRESUME failed (then
        /// `exit_reason` is zero).
        pub instruction_error: u32,
        /// Exit qualification.
        pub qualification: u64,
        /// Guest-physical address.
        pub guest_physical: u64,
        /// Guest-linear address.
        pub guest_linear: u64,
        /// VM-exit interruption information.
        pub intr_info: u32,
        /// VM-exit interruption error code.
        pub intr_error: u32,
        /// IDT-vectoring information.
        pub idt_info: u32,
        /// IDT-vectoring error code.
        pub idt_error: u32,
        /// VM-exit instruction length.
        pub instruction_len: u32,
        /// VM-exit instruction information.
        pub instruction_info: u32,
        /// Zero.
        pub reserved: u64,
    }
}

abi_struct! {
    /// `INST_EMUL` exit data.
    pub struct VmmExitInstEmul as "vmm_exit_inst_emul" {
        /// The instruction bytes fetched at RIP.
        pub bytes: [u8; 16],
        /// How many of `bytes` are valid.
        pub len: u32,
        /// `VMM_INST_EMUL_*` bits.
        pub flags: u32,
        /// With `VMM_INST_EMUL_GPA`: the guest-physical address of the
        /// MMIO access that made the kernel decode the instruction.
        pub gpa: u64,
        /// Zero.
        pub reserved: [u64; 4],
    }
}

abi_struct! {
    /// What `VMM_VCPU_RUN` reports.
    pub struct VmmExit as "vmm_exit" {
        /// An [`exit`] reason.
        pub reason: u32,
        /// The vCPU's id.
        pub vcpu: u32,
        /// RIP at the exit: of the exiting instruction, or past it for HLT.
        pub rip: u64,
        /// Length of the exiting instruction when known, else zero.
        pub inst_len: u32,
        /// Zero.
        pub reserved: u32,
        /// Reason-specific data; read it as the `vmm_exit_*` struct the
        /// reason names (each is exactly 64 bytes).
        pub data: [u64; 8],
    }
}

abi_struct! {
    /// `VMM_VCPU_RUN` argument.
    pub struct VmmRun as "vmm_run" {
        /// In: the completion of the previous exit, if any.
        pub entry: VmmEntry,
        /// Out: why the vCPU stopped.
        pub exit: VmmExit,
    }
}

abi_struct! {
    /// `VMM_VM_CREATE_VCPU` argument. Returns a vCPU fd.
    pub struct VmmCreateVcpu as "vmm_create_vcpu" {
        /// 0 to [`VMM_MAX_VCPUS`]` - 1`; each id once (`EEXIST`).
        pub id: u32,
        /// Zero.
        pub flags: u32,
        /// Zero.
        pub reserved: [u64; 3],
    }
}

/// The 64-byte payload structs, which are read out of [`VmmExit::data`].
pub trait ExitData: Copy {
    /// Reinterprets exit data as this payload.
    fn from_data(data: &[u64; 8]) -> Self;
    /// This payload as exit data.
    fn to_data(&self) -> [u64; 8];
}

macro_rules! exit_data {
    ($($t:ident => |$s:ident, $d:ident| { to: $to:expr, from: $from:expr })*) => {$(
        static_assertions::const_assert_eq!(size_of::<$t>(), 64);
        impl ExitData for $t {
            fn from_data($d: &[u64; 8]) -> Self { $from }
            fn to_data(&self) -> [u64; 8] { let $s = self; $to }
        }
    )*};
}

const fn lo(v: u64) -> u32 {
    v as u32
}
const fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}
const fn pair(lo: u32, hi: u32) -> u64 {
    lo as u64 | (hi as u64) << 32
}

exit_data! {
    VmmExitInout => |s, d| {
        to: [pair(s.flags, s.port), pair(s.size, s.reserved), s.value, s.gpa, s.count,
             s.reserved2[0], s.reserved2[1], s.reserved2[2]],
        from: VmmExitInout { flags: lo(d[0]), port: hi(d[0]), size: lo(d[1]), reserved: hi(d[1]),
             value: d[2], gpa: d[3], count: d[4], reserved2: [d[5], d[6], d[7]] }
    }
    VmmExitPaging => |s, d| {
        to: [s.gpa, pair(s.access, s.flags), s.reserved[0], s.reserved[1], s.reserved[2],
             s.reserved[3], s.reserved[4], s.reserved[5]],
        from: VmmExitPaging { gpa: d[0], access: lo(d[1]), flags: hi(d[1]),
             reserved: [d[2], d[3], d[4], d[5], d[6], d[7]] }
    }
    VmmExitSuspended => |s, d| {
        to: [pair(s.how, s.vcpu), s.reserved[0], s.reserved[1], s.reserved[2], s.reserved[3],
             s.reserved[4], s.reserved[5], s.reserved[6]],
        from: VmmExitSuspended { how: lo(d[0]), vcpu: hi(d[0]),
             reserved: [d[1], d[2], d[3], d[4], d[5], d[6], d[7]] }
    }
    VmmExitMsr => |s, d| {
        to: [pair(s.msr, s.reserved), s.value, s.reserved2[0], s.reserved2[1], s.reserved2[2],
             s.reserved2[3], s.reserved2[4], s.reserved2[5]],
        from: VmmExitMsr { msr: lo(d[0]), reserved: hi(d[0]), value: d[1],
             reserved2: [d[2], d[3], d[4], d[5], d[6], d[7]] }
    }
    VmmExitSvm => |s, d| {
        to: [s.exit_code, s.exit_info1, s.exit_info2, s.exit_int_info, s.reserved[0],
             s.reserved[1], s.reserved[2], s.reserved[3]],
        from: VmmExitSvm { exit_code: d[0], exit_info1: d[1], exit_info2: d[2],
             exit_int_info: d[3], reserved: [d[4], d[5], d[6], d[7]] }
    }
    VmmExitVmx => |s, d| {
        to: [pair(s.exit_reason, s.instruction_error), s.qualification, s.guest_physical,
             s.guest_linear, pair(s.intr_info, s.intr_error), pair(s.idt_info, s.idt_error),
             pair(s.instruction_len, s.instruction_info), s.reserved],
        from: VmmExitVmx { exit_reason: lo(d[0]), instruction_error: hi(d[0]), qualification: d[1],
             guest_physical: d[2], guest_linear: d[3], intr_info: lo(d[4]), intr_error: hi(d[4]),
             idt_info: lo(d[5]), idt_error: hi(d[5]), instruction_len: lo(d[6]),
             instruction_info: hi(d[6]), reserved: d[7] }
    }
    VmmExitInstEmul => |s, d| {
        to: [u64::from_le_bytes(bytes8(&s.bytes, 0)), u64::from_le_bytes(bytes8(&s.bytes, 8)),
             pair(s.len, s.flags), s.gpa, s.reserved[0], s.reserved[1], s.reserved[2],
             s.reserved[3]],
        from: VmmExitInstEmul { bytes: bytes16(d[0], d[1]), len: lo(d[2]), flags: hi(d[2]),
             gpa: d[3], reserved: [d[4], d[5], d[6], d[7]] }
    }
    VmmExitMmio => |s, d| {
        to: [s.gpa, pair(s.size, s.flags), s.data, s.reserved[0], s.reserved[1],
             s.reserved[2], s.reserved[3], s.reserved[4]],
        from: VmmExitMmio { gpa: d[0], size: lo(d[1]), flags: hi(d[1]), data: d[2],
             reserved: [d[3], d[4], d[5], d[6], d[7]] }
    }
}

fn bytes8(b: &[u8; 16], at: usize) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = b[at + i];
    }
    out
}

fn bytes16(a: u64, b: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = if i < 8 { a.to_le_bytes()[i] } else { b.to_le_bytes()[i - 8] };
    }
    out
}
