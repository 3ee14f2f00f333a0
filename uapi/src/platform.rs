// SPDX-License-Identifier: MIT OR Apache-2.0

//! The in-kernel platform devices' ioctls: interrupt lines the sequencer
//! raises and lowers, and the ISA lines' trigger modes.

use super::*;

/// [`VmmIrqLine::kind`]: an ISA IRQ, 0-15. It drives the PIC input of that
/// number and the IOAPIC pin it maps to (IRQ 0 to pin 2, IRQ 2 to none,
/// every other IRQ to the pin of its number), as bhyve's `VM_ISA_*_IRQ` do.
pub const VMM_IRQ_ISA: u32 = 1;
/// [`VmmIrqLine::kind`]: an IOAPIC pin, 0-23.
pub const VMM_IRQ_IOAPIC: u32 = 2;

/// [`VmmIrqLine::op`]: lower the line.
pub const VMM_LINE_DEASSERT: u32 = 0;
/// [`VmmIrqLine::op`]: raise the line and keep it up.
pub const VMM_LINE_ASSERT: u32 = 1;
/// [`VmmIrqLine::op`]: raise the line and lower it at once (an edge).
pub const VMM_LINE_PULSE: u32 = 2;
/// [`VmmIrqLine::op`], ISA only: the PIC treats the line as
/// edge-triggered (its ELCR bit clear). The IOAPIC's trigger mode is the
/// guest's to program.
pub const VMM_LINE_SET_EDGE: u32 = 3;
/// [`VmmIrqLine::op`], ISA only: the PIC treats the line as
/// level-triggered (its ELCR bit set; refused for IRQ 0, 1, 2, 8 and 13,
/// which are always edge-triggered).
pub const VMM_LINE_SET_LEVEL: u32 = 4;

/// Number of ISA IRQs.
pub const VMM_ISA_IRQS: u32 = 16;
/// Number of IOAPIC pins.
pub const VMM_IOAPIC_PINS: u32 = 24;

/// The PM timer's port when [`VmmCreateVm::pm_port`] is 0 (bhyve's).
pub const VMM_PM_PORT_DEFAULT: u32 = 0x408;

abi_struct! {
    /// `VMM_VM_IRQ_LINE` argument: an operation on an interrupt line.
    pub struct VmmIrqLine as "vmm_irq_line" {
        /// `VMM_IRQ_ISA` or `VMM_IRQ_IOAPIC`.
        pub kind: u32,
        /// The IRQ (0-15) or pin (0-23).
        pub line: u32,
        /// `VMM_LINE_*`.
        pub op: u32,
        /// Zero.
        pub flags: u32,
    }
}
