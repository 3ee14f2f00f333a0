// SPDX-License-Identifier: MIT OR Apache-2.0

//! The in-kernel local APIC's ioctls: per-vCPU options, events the
//! sequencer raises (fixed interrupts, NMIs, LINT pulses, exceptions) and
//! MSIs.

use super::*;

/// [`VmmOption::option`]: HLT exits to the sequencer (`VMM_EXIT_HLT`)
/// instead of blocking in the kernel until the vCPU has something to do.
/// Value 0 (the default) or 1.
pub const VMM_OPTION_HLT_EXIT: u32 = 1;

abi_struct! {
    /// `VMM_VCPU_GET_OPTION` / `VMM_VCPU_SET_OPTION` argument.
    pub struct VmmOption as "vmm_option" {
        /// `VMM_OPTION_*`.
        pub option: u32,
        /// Zero.
        pub reserved: u32,
        /// Set: the new value. Get: out, the current value.
        pub value: u64,
    }
}

/// [`VmmEvent::kind`]: a fixed interrupt at the vCPU's local APIC, as if
/// the bus delivered it (vector 16 to 255; [`VMM_EVENT_LEVEL`] for a
/// level-triggered one).
pub const VMM_EVENT_FIXED: u32 = 0;
/// [`VmmEvent::kind`]: an NMI at the vCPU's local APIC.
pub const VMM_EVENT_NMI: u32 = 1;
/// [`VmmEvent::kind`]: a pulse on LINT0 (`vector` 0) or LINT1 (1): the
/// pin is asserted, and deasserted again unless [`VMM_EVENT_LEVEL`] says
/// it stays asserted (a second event with `VMM_EVENT_DEASSERT` ends it).
pub const VMM_EVENT_LINT: u32 = 2;
/// [`VmmEvent::kind`]: an exception (vector 0 to 31 but 2) for the next
/// entry, with `error` pushed when [`VMM_EVENT_ERROR_CODE`] is set.
pub const VMM_EVENT_EXCEPTION: u32 = 3;

/// [`VmmEvent::flags`]: level-triggered (FIXED) or held asserted (LINT).
pub const VMM_EVENT_LEVEL: u32 = 1 << 0;
/// [`VmmEvent::flags`]: deassert a LINT pin held by `VMM_EVENT_LEVEL`.
pub const VMM_EVENT_DEASSERT: u32 = 1 << 1;
/// [`VmmEvent::flags`]: the exception pushes `error`.
pub const VMM_EVENT_ERROR_CODE: u32 = 1 << 2;

abi_struct! {
    /// `VMM_VCPU_EVENT` argument: an event for one vCPU.
    pub struct VmmEvent as "vmm_event" {
        /// `VMM_EVENT_*` kind.
        pub kind: u32,
        /// Vector (FIXED, EXCEPTION) or pin (LINT); zero for NMI.
        pub vector: u32,
        /// `VMM_EVENT_LEVEL`, `VMM_EVENT_DEASSERT`, `VMM_EVENT_ERROR_CODE`.
        pub flags: u32,
        /// Error code of an exception with `VMM_EVENT_ERROR_CODE`, else 0.
        pub error: u32,
    }
}

abi_struct! {
    /// `VMM_VM_MSI` argument: a message-signalled interrupt, delivered as
    /// the chipset would (address 0xFEExxxxx, Intel format).
    pub struct VmmMsi as "vmm_msi" {
        /// The MSI address.
        pub address: u64,
        /// The MSI data (bits 15:0 used).
        pub data: u32,
        /// Zero.
        pub flags: u32,
    }
}
