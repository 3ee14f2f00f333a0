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

/// [`VmmApicState::version`]: the layout below.
pub const VMM_APIC_STATE_VERSION: u32 = 1;

abi_struct! {
    /// `VMM_VCPU_GET_APIC` / `VMM_VCPU_SET_APIC` argument: the whole state
    /// of one local APIC. Times are guest TSC values. `SET` checks every
    /// field against what the guest could have produced and refuses
    /// (`EINVAL`) a state it could not, changing nothing.
    pub struct VmmApicState as "vmm_apic_state" {
        /// [`VMM_APIC_STATE_VERSION`].
        pub version: u32,
        /// The x2APIC ID (the vCPU id).
        pub initial_id: u32,
        /// Guest TSC when the state was taken.
        pub taken_at: u64,
        /// `IA32_APIC_BASE`.
        pub apic_base: u64,
        /// ICR (x2APIC layout; xAPIC keeps the destination in 63:56).
        pub icr: u64,
        /// When the timer's count was `timer_count`.
        pub timer_start: u64,
        /// `IA32_TSC_DEADLINE`.
        pub tsc_deadline: u64,
        /// The timer's next expiry, 0 for none.
        pub timer_next: u64,
        /// The vCPU id.
        pub index: u32,
        /// xAPIC ID register bits 31:24.
        pub xapic_id: u32,
        /// TPR.
        pub tpr: u32,
        /// LDR as the guest reads it.
        pub ldr: u32,
        /// DFR.
        pub dfr: u32,
        /// SVR.
        pub svr: u32,
        /// ISR, vectors 0-255, 32 per word.
        pub isr: [u32; 8],
        /// TMR.
        pub tmr: [u32; 8],
        /// IRR.
        pub irr: [u32; 8],
        /// ESR as the guest reads it.
        pub esr: u32,
        /// Errors not yet latched into the ESR.
        pub esr_pending: u32,
        /// LVT: CMCI, timer, thermal, performance, LINT0, LINT1, error.
        pub lvt: [u32; 7],
        /// Timer initial count.
        pub timer_initial: u32,
        /// Timer divide configuration.
        pub timer_dcr: u32,
        /// The count at `timer_start` (0: not counting).
        pub timer_count: u32,
        /// LINT0 (bit 0) and LINT1 (bit 1) input levels.
        pub lint: u32,
        /// 0: running; 1: waiting for SIPI.
        pub activity: u32,
        /// Latched INIT (bit 0), NMI (1), SMI (2), ExtINT (3).
        pub latched: u32,
        /// Latched SIPI vector, or 0x100 for none.
        pub sipi: u32,
        /// Zero.
        pub reserved: [u32; 4],
    }
}

/// [`VmmRunState::state`]: the vCPU runs guest code.
pub const VMM_RUN_STATE_RUNNING: u32 = 0;
/// [`VmmRunState::state`]: the vCPU executed HLT and waits for an
/// interrupt.
pub const VMM_RUN_STATE_HALTED: u32 = 1;
/// [`VmmRunState::state`]: the vCPU waits for SIPI (an application
/// processor after INIT).
pub const VMM_RUN_STATE_WAIT_SIPI: u32 = 2;
/// [`VmmRunState::flags`]: an NMI waits until the guest can take it.
pub const VMM_RUN_STATE_NMI_PENDING: u32 = 1 << 0;

abi_struct! {
    /// `VMM_VCPU_GET_RUN_STATE` / `VMM_VCPU_SET_RUN_STATE` argument.
    pub struct VmmRunState as "vmm_run_state" {
        /// `VMM_RUN_STATE_*`.
        pub state: u32,
        /// `VMM_RUN_STATE_NMI_PENDING`.
        pub flags: u32,
        /// Zero.
        pub reserved: [u64; 3],
    }
}
