// SPDX-License-Identifier: GPL-2.0

//! The virtual local APIC: a pure, total state machine.
//!
//! One [`Vlapic`] models one vCPU's local APIC as the Intel SDM (vol. 3A,
//! chapter "Advanced Programmable Interrupt Controller") and the AMD APM
//! (vol. 2, "Local APIC") describe it. It knows nothing of VMX or SVM, has
//! no clock, touches no other vCPU and never panics: every access, with
//! every value, has a defined outcome, which is a state change, an
//! [`Effects`] value for the caller to act on, or a `#GP` ([`Gp`]). There
//! is no "exit to userspace" outcome.
//!
//! # How the integration layer uses it
//!
//! Each vCPU owns a `Vlapic`, protected by whatever protects that vCPU.
//! Time is the guest TSC, passed in as `now`.
//!
//! - **Guest accesses.** An EPT/NPT fault inside [`Vlapic::mmio_base`]'s
//!   page goes to [`Vlapic::mmio_read`] / [`Vlapic::mmio_write`]; `RDMSR`
//!   and `WRMSR` of `IA32_APIC_BASE`, `IA32_TSC_DEADLINE` and 0x800-0x8FF go
//!   to [`Vlapic::rdmsr`] / [`Vlapic::wrmsr`]. A [`Gp`] is injected as
//!   `#GP(0)`. In x2APIC mode `mmio_base` is `None`: the page is ordinary
//!   guest-physical space again for this vCPU, and no other.
//! - **Effects.** Every mutating call returns [`Effects`]:
//!   - `ipi`: resolve it with [`resolve`] over a [`Bus`] of all vCPUs'
//!     [`Vlapic::endpoint`]s, then [`Vlapic::deliver`] to each target and
//!     kick the ones that are running;
//!   - `eoi`: tell the IOAPIC that this level-triggered vector ended;
//!   - `timer`: arm or cancel this vCPU's host timer, and call
//!     [`Vlapic::timer_expired`] when it fires;
//!   - `mode`: this vCPU's APIC changed mode or moved: rebuild *its* MSR
//!     bitmap and APIC-access mapping (never another vCPU's, and never
//!     while its VMCS/VMCB is in use).
//! - **Before entry.** [`Vlapic::take_events`] applies a pending INIT or
//!   SIPI (the run-state machine) and hands over NMI, SMI and ExtINT
//!   requests; [`Vlapic::pending_interrupt`] gives the vector to inject,
//!   and [`Vlapic::accept_interrupt`] moves it from IRR to ISR once it is
//!   injected.
//! - **Interrupt sources.** The IOAPIC and MSIs build a [`Message`] with
//!   [`Message::from_msi`] and take the same resolve-and-deliver path.
//!   The local pins go through [`Vlapic::set_lint`], the thermal,
//!   performance and CMCI sources through [`Vlapic::fire`].
//! - **APIC virtualization** plugs in through the [`Accel`] hooks: a
//!   hardware path can take posted interrupts and report state that the
//!   guest changed without exiting. [`Soft`] is the model on its own.
//! - **Save and restore.** [`Vlapic::snapshot`] and [`Vlapic::restore`]
//!   carry a versioned [`Snapshot`]; restore checks it and says why it
//!   refuses one.
//!
//! Nothing here allocates.
//!
//! Glossary: APIC = advanced programmable interrupt controller; IRR, ISR,
//! TMR = interrupt-request, in-service and trigger-mode registers; TPR,
//! PPR, APR = task, processor and arbitration priority; LVT = local vector
//! table; ICR = interrupt command register; ESR = error status register;
//! SVR = spurious-interrupt vector register; LDR, DFR = logical
//! destination and destination format registers; DCR = divide
//! configuration register; EOI = end of interrupt; IPI = inter-processor
//! interrupt; SIPI = start-up IPI; BSP = bootstrap processor.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

pub mod ipi;
pub mod regs;
pub mod snapshot;
pub mod timer;

mod access;
mod apic;
mod base;

pub use apic::{x2apic_ldr, Accel, Activity, Events, HwState, Latched, Reset, Soft, Vlapic};
pub use base::Origin;
pub use ipi::{resolve, Bus, CpuSet, Delivery, Dest, Endpoint, Interrupt, Kind, Message};
pub use snapshot::{ImportError, Snapshot};
pub use timer::{TimerAction, TimerMode};

#[cfg(test)]
mod tests;

/// Guest TSC ticks: the model's only notion of time.
pub type Tsc = u64;

/// The guest must take `#GP(0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gp;

/// How the APIC is reached: `IA32_APIC_BASE` bits 11 and 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Globally disabled: no registers, no interrupts.
    Disabled,
    /// xAPIC: registers in an MMIO page.
    XApic,
    /// x2APIC: registers in MSRs 0x800-0x8FF.
    X2Apic,
}

/// What a model of a CPU offers. It is fixed for a vCPU's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// x2APIC mode exists (CPUID.1:ECX[21]).
    pub x2apic: bool,
    /// The timer has a TSC-deadline mode (CPUID.1:ECX[24]).
    pub tsc_deadline: bool,
    /// The LVT has a CMCI entry (Intel); the version register then says
    /// 7 entries, otherwise 6.
    pub cmci: bool,
    /// EOI broadcasts can be suppressed (version bit 24, SVR bit 12).
    pub eoi_suppression: bool,
    /// A performance-monitoring interrupt sets its LVT entry's mask bit
    /// (Intel; KVM does the same for Intel-compatible guests).
    pub perf_automask: bool,
    /// Physical-address width: `IA32_APIC_BASE` bits at and above it are
    /// reserved. 36 to 52.
    pub maxphyaddr: u8,
    /// APIC timer input clock in Hz, before the divider.
    pub bus_hz: u64,
    /// Guest TSC frequency in Hz.
    pub tsc_hz: u64,
    /// Shortest interval at which a periodic timer is delivered, in TSC
    /// ticks (KVM uses 200 µs by default).
    pub min_period: u64,
}

impl Config {
    /// A modern Intel-like APIC: x2APIC, TSC deadline, CMCI, EOI
    /// suppression, a self-masking performance entry; a 1 GHz bus like KVM's and a 2 GHz TSC; periodic
    /// timers no faster than 100 µs.
    pub const DEFAULT: Config = Config {
        x2apic: true,
        tsc_deadline: true,
        cmci: true,
        eoi_suppression: true,
        perf_automask: true,
        maxphyaddr: 46,
        bus_hz: 1_000_000_000,
        tsc_hz: 2_000_000_000,
        min_period: 200_000,
    };

    /// Whether the values make sense: non-zero clocks and a physical
    /// width the architecture allows.
    pub const fn is_valid(&self) -> bool {
        self.bus_hz != 0 && self.tsc_hz != 0 && self.maxphyaddr >= 36 && self.maxphyaddr <= 52
    }
}

/// `IA32_APIC_BASE` changed what the guest sees of this vCPU's APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModeChange {
    /// Mode before the write.
    pub from: Mode,
    /// Mode after it.
    pub to: Mode,
    /// The MMIO page's guest-physical address after it.
    pub base: u64,
}

/// What the caller must do after a call that changed state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct Effects {
    /// An IPI to [`resolve`] and deliver.
    pub ipi: Option<Message>,
    /// A level-triggered vector ended: broadcast its EOI to the IOAPIC.
    pub eoi: Option<u8>,
    /// The host timer's new state.
    pub timer: Option<TimerAction>,
    /// This vCPU's APIC changed mode or moved.
    pub mode: Option<ModeChange>,
    /// Something became pending on this vCPU (an interrupt in IRR, or an
    /// INIT, SIPI, NMI, SMI or ExtINT): wake or kick it.
    pub wake: bool,
}

impl Effects {
    /// No effect.
    pub const NONE: Effects =
        Effects { ipi: None, eoi: None, timer: None, mode: None, wake: false };

    /// Merges `later` into `self`; a later timer or mode change wins.
    pub fn merge(&mut self, later: Effects) {
        self.ipi = later.ipi.or(self.ipi);
        self.eoi = later.eoi.or(self.eoi);
        self.timer = later.timer.or(self.timer);
        self.mode = later.mode.or(self.mode);
        self.wake |= later.wake;
    }
}
