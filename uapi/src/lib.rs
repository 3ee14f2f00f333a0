// SPDX-License-Identifier: MIT OR Apache-2.0

//! The vmm ioctl ABI: the one source of truth.
//!
//! The kernel module compiles this file in as its `uapi` module (under
//! `cfg(kernel)`), the userspace library depends on it as the `vmm-uapi`
//! crate, and `uapi/vmm.h` is the C rendering that a host test checks against
//! the tables here. Every struct is `#[repr(C)]` with explicit padding: the
//! [`abi_struct!`] macro proves at compile time that the fields cover the
//! whole struct, so copying one to or from userspace moves no uninitialised
//! bytes.
//!
//! Glossary: VM = virtual machine; fd = file descriptor; VMX = Intel VT-x;
//! SVM = AMD-V; EPT/NPT = Intel/AMD nested page tables; VPID/ASID = tagged
//! TLB identifiers; APICv/AVIC = Intel/AMD APIC virtualization; LA57 =
//! 5-level paging.
//!
//! Rules every ioctl follows (Documentation/api.rst has the per-ioctl
//! detail): unknown commands fail with `ENOTTY`; unknown flags and non-zero
//! reserved fields fail with `EINVAL`; unreadable or unwritable user memory
//! fails with `EFAULT`.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

use core::mem::{offset_of, size_of};

/// The interface version. Bumped on any incompatible change; userspace
/// refuses to talk to a module with another version. 2: data accesses to
/// unmapped guest-physical memory are emulated and exit as `MMIO` (they
/// were `PAGING` exits).
///
/// 3: the in-kernel local APIC; HLT blocks in the kernel unless
/// `VMM_OPTION_HLT_EXIT` is set, application processors wait for SIPI, and
/// a VM whose vCPUs all halt with interrupts disabled suspends (`HALT`).
///
/// 4: the in-kernel platform devices (IOAPIC, PIC, PIT, PM timer, RTC,
/// HPET) claim their ports and MMIO ranges unless the VM is created without
/// them; `VMM_VM_IRQ_LINE`. `VMM_VM_GET_DEVICE` and `VMM_VM_SET_DEVICE`
/// save and restore each device's state.
pub const VMM_API_VERSION: u32 = 4;

/// ioctl "type" byte shared by all vmm ioctls.
pub const VMM_IOC_MAGIC: u32 = 0xb6;

/// Size of a VM name buffer, including the terminating NUL: names are 1 to
/// [`VMM_NAME_MAX`]` - 1` bytes.
pub const VMM_NAME_MAX: usize = 64;

/// Most VMs that may exist at once; creating one more fails with `ENOSPC`.
pub const VMM_MAX_VMS: u32 = 256;

// --- ioctl number encoding (asm-generic/ioctl.h, which x86 uses) ----------

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    // An argument too large for the 14-bit size field is a build error.
    assert!(size < (1 << IOC_SIZEBITS));
    (dir << IOC_DIRSHIFT) | ((size as u32) << IOC_SIZESHIFT) | (VMM_IOC_MAGIC << IOC_TYPESHIFT) | nr
}
const fn io(nr: u32) -> u32 {
    ioc(0, nr, 0)
}
const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, nr, size_of::<T>())
}
const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, size_of::<T>())
}
const fn iowr<T>(nr: u32) -> u32 {
    ioc(IOC_READ | IOC_WRITE, nr, size_of::<T>())
}

/// Size of the argument an ioctl number says it carries.
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)) as usize
}

// --- ABI struct declarations ---------------------------------------------

/// Where one field of an ABI struct lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// The field's name, the same in Rust and in `vmm.h`.
    pub name: &'static str,
    /// Byte offset from the start of the struct.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// Layout of one ABI struct, for the fingerprint and the C header check.
#[derive(Clone, Copy, Debug)]
pub struct StructLayout {
    /// The struct's name in `vmm.h` (without `struct`).
    pub c_name: &'static str,
    /// `size_of` the struct.
    pub size: usize,
    /// Its fields, in declaration order.
    pub fields: &'static [FieldLayout],
}

/// Types that may appear in an ABI struct: plain integers and arrays of them,
/// which have a zero value and no padding.
pub trait AbiField: Copy {
    /// All-zero value.
    const ZERO: Self;
}
impl AbiField for u8 {
    const ZERO: Self = 0;
}
impl AbiField for u32 {
    const ZERO: Self = 0;
}
impl AbiField for u64 {
    const ZERO: Self = 0;
}
impl<T: AbiField, const N: usize> AbiField for [T; N] {
    const ZERO: Self = [T::ZERO; N];
}

/// Declares a `#[repr(C)]` ABI struct, records its layout and asserts at
/// compile time that it has no implicit padding.
macro_rules! abi_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident as $cname:literal {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty, )*
        }
    ) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
        }

        impl $name {
            /// The all-zero value: no flags, reserved fields clear.
            pub const ZERO: Self = Self { $( $f: <$t as AbiField>::ZERO, )* };
            /// Where each field lies, for the fingerprint and `vmm.h` check.
            pub const LAYOUT: StructLayout = StructLayout {
                c_name: $cname,
                size: size_of::<$name>(),
                fields: &[ $( FieldLayout {
                    name: stringify!($f),
                    offset: offset_of!($name, $f),
                    size: size_of::<$t>(),
                }, )* ],
            };
        }

        impl AbiField for $name {
            const ZERO: Self = Self::ZERO;
        }

        impl Default for $name {
            fn default() -> Self {
                Self::ZERO
            }
        }

        // No implicit padding: the fields add up to the whole struct.
        static_assertions::const_assert_eq!(0 $( + size_of::<$t>() )*, size_of::<$name>());
    };
}

mod apic;
mod devstate;
mod memory;
mod names;
mod platform;
mod tables;
mod vcpu;
pub use apic::*;
pub use devstate::*;
pub use memory::*;
pub use names::*;
pub use platform::*;
pub use tables::*;
pub use vcpu::*;

bitflags::bitflags! {
    /// Flags for [`VmmCreateVm::flags`] (also reported in [`VmmVmEntry`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CreateFlags: u32 {
        /// Destroy the VM when its last VM fd is closed.
        const DESTROY_ON_CLOSE = 1 << 0;
        /// No in-kernel PIC: ports 0x20, 0x21, 0xA0, 0xA1, 0x4D0 and 0x4D1
        /// exit to the sequencer, and ISA lines reach only the IOAPIC.
        const NO_PIC = 1 << 1;
        /// No in-kernel PIT: ports 0x40-0x43 and 0x61 exit.
        const NO_PIT = 1 << 2;
        /// No in-kernel RTC: ports 0x70 and 0x71 exit.
        const NO_RTC = 1 << 3;
        /// No in-kernel HPET: 0xFED00000 is ordinary guest-physical space.
        const NO_HPET = 1 << 4;
        /// No in-kernel IOAPIC: 0xFEC00000 is ordinary guest-physical
        /// space, and ISA lines reach only the PIC.
        const NO_IOAPIC = 1 << 5;
        /// No in-kernel PM timer: its port exits.
        const NO_PM_TIMER = 1 << 6;
    }
}

/// Which hardware virtualization the module drives.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Intel VT-x.
    Vmx = 1,
    /// AMD-V.
    Svm = 2,
}

impl TryFrom<u32> for Backend {
    type Error = u32;
    fn try_from(v: u32) -> Result<Self, u32> {
        match v {
            1 => Ok(Self::Vmx),
            2 => Ok(Self::Svm),
            other => Err(other),
        }
    }
}

bitflags::bitflags! {
    /// Features the module found, in [`VmmCaps::features`].
    ///
    /// Bits 0-15 are vendor-neutral, 16-39 VMX-only, 40-63 SVM-only.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Features: u64 {
        /// Nested paging: EPT or NPT.
        const NESTED_PAGING = 1 << 0;
        /// Tagged TLB entries: VPID or ASID.
        const TAGGED_TLB = 1 << 1;
        /// Real mode and unpaged protected mode run directly.
        const UNRESTRICTED_GUEST = 1 << 2;
        /// Nested paging maps 2 MiB pages.
        const NPT_2M = 1 << 3;
        /// Nested paging maps 1 GiB pages.
        const NPT_1G = 1 << 4;
        /// The host kernel runs with 5-level paging (LA57).
        const HOST_LA57 = 1 << 5;
        /// IA32_FLUSH_CMD is available for an L1D flush on entry.
        const FLUSH_L1D = 1 << 6;

        /// VMX: TRUE capability MSRs exist.
        const VMX_TRUE_CTLS = 1 << 16;
        /// VMX: MSR bitmaps.
        const VMX_MSR_BITMAP = 1 << 17;
        /// VMX: TPR shadow.
        const VMX_TPR_SHADOW = 1 << 18;
        /// VMX: virtualize APIC accesses.
        const VMX_APIC_ACCESS = 1 << 19;
        /// VMX: virtualize x2APIC mode.
        const VMX_X2APIC_MODE = 1 << 20;
        /// VMX: APIC-register virtualization.
        const VMX_APIC_REG_VIRT = 1 << 21;
        /// VMX: virtual-interrupt delivery.
        const VMX_VINTR_DELIVERY = 1 << 22;
        /// VMX: posted interrupts.
        const VMX_POSTED_INTR = 1 << 23;
        /// VMX: VMX-preemption timer.
        const VMX_PREEMPT_TIMER = 1 << 24;
        /// VMX: monitor trap flag.
        const VMX_MTF = 1 << 25;
        /// VMX: PAUSE-loop exiting.
        const VMX_PLE = 1 << 26;
        /// VMX: EPT accessed and dirty flags.
        const VMX_EPT_AD = 1 << 27;
        /// VMX: INVEPT single-context.
        const VMX_INVEPT_SINGLE = 1 << 28;
        /// VMX: INVEPT all-context.
        const VMX_INVEPT_ALL = 1 << 29;
        /// VMX: INVVPID.
        const VMX_INVVPID = 1 << 30;
        /// VMX: acknowledge interrupt on exit.
        const VMX_ACK_INTR_ON_EXIT = 1 << 31;
        /// VMX: VMCS shadowing.
        const VMX_VMCS_SHADOW = 1 << 32;
        /// VMX: 5-level EPT.
        const VMX_EPT_5LEVEL = 1 << 33;

        /// SVM: next-RIP save.
        const SVM_NRIPS = 1 << 40;
        /// SVM: decode assists.
        const SVM_DECODE_ASSISTS = 1 << 41;
        /// SVM: VMCB clean bits.
        const SVM_VMCB_CLEAN = 1 << 42;
        /// SVM: flush by ASID.
        const SVM_FLUSH_BY_ASID = 1 << 43;
        /// SVM: AVIC.
        const SVM_AVIC = 1 << 44;
        /// SVM: x2AVIC.
        const SVM_X2AVIC = 1 << 45;
        /// SVM: virtual GIF.
        const SVM_VGIF = 1 << 46;
        /// SVM: LBR virtualization.
        const SVM_LBRV = 1 << 47;
        /// SVM: PAUSE filter.
        const SVM_PAUSE_FILTER = 1 << 48;
        /// SVM: TSC ratio MSR.
        const SVM_TSC_SCALE = 1 << 49;
        /// SVM: VMSAVE/VMLOAD virtualization.
        const SVM_V_VMSAVE_VMLOAD = 1 << 50;
    }
}

abi_struct! {
    /// `VMM_GET_VERSION` result.
    pub struct VmmVersion as "vmm_version" {
        /// [`VMM_API_VERSION`] of the module.
        pub api_version: u32,
        /// Zero; reserved for future flags.
        pub flags: u32,
        /// [`ABI_FINGERPRINT`] as the module was compiled.
        pub abi_fingerprint: u64,
    }
}

abi_struct! {
    /// `VMM_GET_CAPS` result: what the module found at load.
    pub struct VmmCaps as "vmm_caps" {
        /// A [`Backend`] value.
        pub backend: u32,
        /// CPUs on which the load-time probe entered and left VMX/SVM.
        pub nr_cpus: u32,
        /// [`Features`] bits.
        pub features: u64,
        /// Host paging levels: 4 or 5.
        pub host_paging_levels: u32,
        /// Physical-address width (CPUID 0x80000008 EAX[7:0]).
        pub phys_addr_bits: u32,
        /// VMX: VMCS revision identifier. SVM: SVM revision.
        pub revision: u32,
        /// SVM: number of ASIDs. VMX: zero.
        pub nr_asids: u32,
        /// Raw capability words; see [`CAPS_RAW_VMX`] and [`CAPS_RAW_SVM`].
        pub raw: [u64; 10],
        /// Zero.
        pub reserved: [u64; 6],
    }
}

/// Meaning of [`VmmCaps::raw`] on VMX: the capability MSRs, with the TRUE
/// variants where they exist.
pub const CAPS_RAW_VMX: [&str; 10] = [
    "IA32_VMX_BASIC",
    "PINBASED_CTLS",
    "PROCBASED_CTLS",
    "PROCBASED_CTLS2",
    "EXIT_CTLS",
    "ENTRY_CTLS",
    "IA32_VMX_MISC",
    "IA32_VMX_EPT_VPID_CAP",
    "IA32_VMX_CR0_FIXED0",
    "IA32_VMX_CR4_FIXED0",
];

/// Meaning of [`VmmCaps::raw`] on SVM.
pub const CAPS_RAW_SVM: [&str; 10] = [
    "CPUID 0x8000000A EAX",
    "CPUID 0x8000000A EBX",
    "CPUID 0x8000000A EDX",
    "VM_CR",
    "",
    "",
    "",
    "",
    "",
    "",
];

abi_struct! {
    /// `VMM_CREATE_VM` argument.
    pub struct VmmCreateVm as "vmm_create_vm" {
        /// NUL-terminated name; see [`check_name`].
        pub name: [u8; VMM_NAME_MAX],
        /// [`CreateFlags`].
        pub flags: u32,
        /// The PM timer's port (4 bytes wide, naturally aligned, outside
        /// the other devices' ports), or 0 for [`VMM_PM_PORT_DEFAULT`].
        pub pm_port: u32,
        /// Zero.
        pub reserved: [u32; 6],
    }
}

abi_struct! {
    /// `VMM_OPEN_VM` and `VMM_DESTROY_VM` argument.
    pub struct VmmVmName as "vmm_vm_name" {
        /// NUL-terminated name; see [`check_name`].
        pub name: [u8; VMM_NAME_MAX],
        /// Zero; no flags are defined.
        pub flags: u32,
        /// Zero.
        pub reserved: u32,
    }
}

abi_struct! {
    /// One VM in a `VMM_LIST_VMS` answer.
    pub struct VmmVmEntry as "vmm_vm_entry" {
        /// NUL-terminated name, zero-filled.
        pub name: [u8; VMM_NAME_MAX],
        /// [`CreateFlags`] the VM was created with.
        pub flags: u32,
        /// VM fds open on it.
        pub nr_fds: u32,
        /// Zero.
        pub reserved: [u32; 2],
    }
}

abi_struct! {
    /// `VMM_LIST_VMS` argument.
    pub struct VmmVmList as "vmm_vm_list" {
        /// In: room in `entries`. Out: how many VMs exist (`E2BIG` when that
        /// is more than the room; nothing else is written then).
        pub count: u32,
        /// Zero.
        pub reserved: u32,
        /// User address of an array of `count` [`VmmVmEntry`].
        pub entries: u64,
    }
}

abi_struct! {
    /// `VMM_GET_STATS` result: module-wide object counts, for leak checks.
    pub struct VmmStats as "vmm_stats" {
        /// VMs that have a name (listed by `VMM_LIST_VMS`).
        pub nr_vms: u32,
        /// VM objects alive, including destroyed ones still held by an fd.
        pub nr_vm_objects: u32,
        /// Bytes the module holds in VM allocations.
        pub vm_bytes: u64,
        /// Pages of segment memory the module holds (pages still mapped by
        /// a sequencer after their VM is gone are not counted).
        pub seg_pages: u64,
        /// vCPU objects alive.
        pub nr_vcpu_objects: u64,
        /// Zero.
        pub reserved: [u64; 2],
    }
}

abi_struct! {
    /// `VMM_VM_GET_INFO` result.
    pub struct VmmVmInfo as "vmm_vm_info" {
        /// NUL-terminated name, zero-filled.
        pub name: [u8; VMM_NAME_MAX],
        /// [`CreateFlags`] the VM was created with.
        pub flags: u32,
        /// Width of the guest-physical address space in bits: mappings
        /// must end at or below `1 << guest_phys_bits`.
        pub guest_phys_bits: u32,
        /// vCPUs created so far.
        pub nr_vcpus: u32,
        /// Segments allocated so far.
        pub nr_segments: u32,
        /// Guest-physical mappings in place.
        pub nr_mappings: u32,
        /// Zero.
        pub reserved: u32,
    }
}

const fn fnv1a(mut hash: u64, value: u64) -> u64 {
    let mut i = 0;
    while i < 8 {
        hash ^= (value >> (i * 8)) & 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

const fn fingerprint() -> u64 {
    let mut h = fnv1a(0xcbf2_9ce4_8422_2325, VMM_API_VERSION as u64);
    let mut s = 0;
    while s < STRUCTS.len() {
        h = fnv1a(h, STRUCTS[s].size as u64);
        let mut f = 0;
        while f < STRUCTS[s].fields.len() {
            h = fnv1a(h, STRUCTS[s].fields[f].offset as u64);
            h = fnv1a(h, STRUCTS[s].fields[f].size as u64);
            f += 1;
        }
        s += 1;
    }
    let mut i = 0;
    while i < IOCTLS.len() {
        h = fnv1a(h, IOCTLS[i].1 as u64);
        i += 1;
    }
    h = fnv1a(h, Features::all().bits());
    h = fnv1a(h, CreateFlags::all().bits() as u64);
    let mut c = 0;
    while c < CONSTANTS.len() {
        h = fnv1a(h, CONSTANTS[c].1);
        c += 1;
    }
    h
}

/// A hash of every size, offset, ioctl number, flag mask and constant above. The kernel
/// reports the value it was compiled with in [`VmmVersion`]; the userspace
/// library refuses a module whose value differs from its own.
pub const ABI_FINGERPRINT: u64 = fingerprint();

// Literal sizes: a layout change must be deliberate, in both views at once.
static_assertions::const_assert_eq!(size_of::<VmmVersion>(), 16);
static_assertions::const_assert_eq!(size_of::<VmmCaps>(), 160);
static_assertions::const_assert_eq!(size_of::<VmmCreateVm>(), 96);
static_assertions::const_assert_eq!(size_of::<VmmVmName>(), 72);
static_assertions::const_assert_eq!(size_of::<VmmVmEntry>(), 80);
static_assertions::const_assert_eq!(size_of::<VmmVmList>(), 16);
static_assertions::const_assert_eq!(size_of::<VmmStats>(), 48);
static_assertions::const_assert_eq!(size_of::<VmmVmInfo>(), 88);
static_assertions::const_assert_eq!(size_of::<VmmSegment>(), 48);
static_assertions::const_assert_eq!(size_of::<VmmMap>(), 40);
static_assertions::const_assert_eq!(size_of::<VmmCreateVcpu>(), 32);
static_assertions::const_assert_eq!(size_of::<VmmRegs>(), 24);
static_assertions::const_assert_eq!(size_of::<VmmSegDesc>(), 16);
static_assertions::const_assert_eq!(size_of::<VmmCpuidEntry>(), 32);
static_assertions::const_assert_eq!(size_of::<VmmEntry>(), 32);
static_assertions::const_assert_eq!(size_of::<VmmExit>(), 88);
static_assertions::const_assert_eq!(size_of::<VmmRun>(), 120);
static_assertions::const_assert_eq!(VMM_CREATE_VM, 0x4060_b602);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux_encoding() {
        // _IOR(0xb6, 0, 16 bytes) computed by hand: dir 2, size 16.
        assert_eq!(VMM_GET_VERSION, (2 << 30) | (16 << 16) | (0xb6 << 8));
        assert_eq!(VMM_LIST_VMS >> 30, 3);
        assert_eq!(VMM_CREATE_VM >> 30, 1);
        assert_eq!(ioc_size(VMM_GET_CAPS), size_of::<VmmCaps>());
    }

    #[test]
    fn ioctl_numbers_are_unique() {
        for (i, a) in IOCTLS.iter().enumerate() {
            for b in &IOCTLS[i + 1..] {
                assert_ne!(a.1, b.1, "{} and {}", a.0, b.0);
                assert_ne!(a.1 & 0xff, b.1 & 0xff, "{} and {} share nr", a.0, b.0);
            }
        }
    }

    #[test]
    fn layouts_are_contiguous_and_aligned() {
        for s in STRUCTS {
            let mut end = 0;
            for f in s.fields {
                assert_eq!(f.offset, end, "{}.{} leaves a hole", s.c_name, f.name);
                // Natural alignment of every u32/u64 field.
                let align = if f.size % 8 == 0 {
                    8
                } else if f.size % 4 == 0 {
                    4
                } else {
                    1
                };
                assert_eq!(f.offset % align.min(8), 0, "{}.{}", s.c_name, f.name);
                end = f.offset + f.size;
            }
            assert_eq!(end, s.size, "{} has tail padding", s.c_name);
            assert_eq!(s.size % 8, 0, "{} size not a multiple of 8", s.c_name);
        }
    }

    #[test]
    fn fingerprint_is_sensitive() {
        assert_eq!(ABI_FINGERPRINT, fingerprint());
        assert_ne!(fnv1a(0, 1), fnv1a(0, 2));
        assert_ne!(ABI_FINGERPRINT, 0);
    }

    #[test]
    fn names() {
        let good = make_name(b"vm-0_a.b").unwrap();
        assert_eq!(check_name(&good), Ok(&b"vm-0_a.b"[..]));
        assert_eq!(name_bytes(&good), b"vm-0_a.b");
        let max = [b'x'; VMM_NAME_MAX - 1];
        assert!(make_name(&max).is_ok());
        assert_eq!(make_name(&[b'x'; VMM_NAME_MAX]), Err(NameError::TooLong));
        assert_eq!(make_name(b""), Err(NameError::Empty));
        assert_eq!(make_name(b"a/b"), Err(NameError::BadChar));
        assert_eq!(make_name(b".."), Err(NameError::BadChar));
        assert_eq!(make_name(b"a b"), Err(NameError::BadChar));
        assert_eq!(make_name(b"a\0b"), Err(NameError::BadChar));
        assert_eq!(check_name(&[b'y'; VMM_NAME_MAX]), Err(NameError::TooLong));
        let mut junk = make_name(b"ok").unwrap();
        junk[10] = 1;
        assert_eq!(check_name(&junk), Err(NameError::TrailingGarbage));
        assert_eq!(check_name(&[0; VMM_NAME_MAX]), Err(NameError::Empty));
    }

    #[test]
    fn exit_data_round_trips() {
        let io = VmmExitInout {
            flags: 5,
            port: 0x3f8,
            size: 1,
            value: 0x41,
            gpa: 7,
            count: 9,
            ..VmmExitInout::ZERO
        };
        assert_eq!(VmmExitInout::from_data(&io.to_data()), io);
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let ie = VmmExitInstEmul { bytes, len: 15, ..VmmExitInstEmul::ZERO };
        assert_eq!(VmmExitInstEmul::from_data(&ie.to_data()), ie);
        let mm = VmmExitMmio {
            gpa: 0xfee0_0300,
            size: 4,
            flags: VMM_MMIO_WRITE,
            data: 0xc4500,
            ..VmmExitMmio::ZERO
        };
        assert_eq!(VmmExitMmio::from_data(&mm.to_data()), mm);
        let m = VmmExitMsr { msr: 0xc000_0080, value: u64::MAX, ..VmmExitMsr::ZERO };
        assert_eq!(VmmExitMsr::from_data(&m.to_data()), m);
        let p = VmmExitPaging { gpa: 1 << 40, access: 2, flags: 1, ..VmmExitPaging::ZERO };
        assert_eq!(VmmExitPaging::from_data(&p.to_data()), p);
        let su = VmmExitSuspended { how: 1, vcpu: 3, ..VmmExitSuspended::ZERO };
        assert_eq!(VmmExitSuspended::from_data(&su.to_data()), su);
        let sv = VmmExitSvm {
            exit_code: u64::MAX,
            exit_info1: 1,
            exit_info2: 2,
            exit_int_info: 3,
            ..VmmExitSvm::ZERO
        };
        assert_eq!(VmmExitSvm::from_data(&sv.to_data()), sv);
        let vx = VmmExitVmx {
            exit_reason: 0x8000_0021,
            instruction_error: 7,
            qualification: 3,
            guest_physical: 1 << 40,
            guest_linear: 5,
            intr_info: 0x8000_0b0e,
            intr_error: 2,
            idt_info: 9,
            idt_error: 10,
            instruction_len: 3,
            instruction_info: 12,
            reserved: 0,
        };
        assert_eq!(VmmExitVmx::from_data(&vx.to_data()), vx);
        // The in-memory layout agrees with the packing (little-endian).
        assert_eq!(io.to_data()[0], 5 | (0x3f8 << 32));
    }

    #[test]
    fn backend_and_flags_decode() {
        assert_eq!(Backend::try_from(1), Ok(Backend::Vmx));
        assert_eq!(Backend::try_from(2), Ok(Backend::Svm));
        assert_eq!(Backend::try_from(0), Err(0));
        assert_eq!(CreateFlags::from_bits(1 << 7), None);
        assert_eq!(VmmCreateVm::default(), VmmCreateVm::ZERO);
    }
}
