// SPDX-License-Identifier: GPL-2.0

//! `IA32_APIC_BASE`: enabling, disabling, x2APIC mode and relocation.
//!
//! The SDM's state diagram ("x2APIC State Transitions"): from reset the
//! APIC is in xAPIC mode. xAPIC may go to x2APIC or to disabled; x2APIC
//! only to disabled; disabled only to xAPIC. EN = 0 with EXTD = 1 is not
//! a state. Everything else is `#GP`, as are reserved bits (0-7, 9, EXTD
//! without x2APIC support, and bits at or above MAXPHYADDR). The BSP flag
//! is read-only: a write keeps its old value whatever the guest wrote.

use super::regs::*;
use super::{Accel, Effects, Gp, Mode, ModeChange, Vlapic};

/// Who is writing `IA32_APIC_BASE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The guest's `WRMSR`: the state diagram applies.
    Guest,
    /// The VMM restoring or setting up state: any valid state may be set
    /// directly, the BSP flag included.
    Host,
}

impl<A: Accel> Vlapic<A> {
    /// `IA32_APIC_BASE` as `RDMSR` reads it.
    pub fn apic_base(&self) -> u64 {
        self.base
    }

    /// Bits of `IA32_APIC_BASE` that must be zero.
    pub fn apic_base_reserved(&self) -> u64 {
        let addr_limit = !0u64 << self.cfg.maxphyaddr;
        let extd = if self.cfg.x2apic { 0 } else { BASE_EXTD };
        // Bits 0-7 and 9; bit 8 is the BSP flag.
        addr_limit | 0x2ff | extd
    }

    /// A write of `IA32_APIC_BASE`. On a change of mode the registers
    /// follow the SDM: disabling resets them to power-up values (and
    /// cancels the timer); entering x2APIC mode switches the ID to the
    /// 32-bit x2APIC ID and derives the LDR from it. The returned
    /// [`ModeChange`] tells the integration layer to reconfigure this
    /// vCPU's MSR intercepts and APIC-access page.
    pub fn set_apic_base(&mut self, value: u64, origin: Origin) -> Result<Effects, Gp> {
        if value & self.apic_base_reserved() != 0 {
            return Err(Gp);
        }
        let value = match origin {
            Origin::Guest => (value & !BASE_BSP) | (self.base & BASE_BSP),
            Origin::Host => value,
        };
        let from = self.mode();
        let to = mode_of(value).ok_or(Gp)?;
        let legal = match (from, to) {
            (a, b) if a == b => true,
            (Mode::XApic, Mode::X2Apic) | (Mode::XApic, Mode::Disabled) => true,
            (Mode::X2Apic, Mode::Disabled) | (Mode::Disabled, Mode::XApic) => true,
            _ => origin == Origin::Host,
        };
        if !legal {
            return Err(Gp);
        }
        let moved = (value ^ self.base) & !0xfff != 0;
        self.base = value;
        let mut fx = Effects::NONE;
        if from != to {
            self.sync();
            // Disabling, and leaving x2APIC mode other than by disabling
            // (which only the host may do), start the registers over from
            // power-up values. A disabled APIC's registers are already
            // there.
            let reset = to == Mode::Disabled || from == Mode::X2Apic;
            if reset {
                self.reset_registers();
                fx.timer = Some(super::TimerAction::Disarm);
            }
            match to {
                Mode::Disabled => {
                    self.xapic_id = self.initial_id as u8;
                    self.latched = Default::default();
                    self.lint = [false; 2];
                }
                // The ICR's destination moves to bits 63:32, and the LDR
                // now follows from the ID.
                Mode::X2Apic => {
                    self.icr &= u64::from(u32::MAX);
                    self.ldr = 0;
                }
                Mode::XApic => self.xapic_id = self.initial_id as u8,
            }
        }
        if from != to || moved {
            fx.mode =
                Some(ModeChange { from, to, base: value & !0xfff & !self.apic_base_reserved() });
        }
        Ok(fx)
    }

    /// The xAPIC page's guest-physical address, if this vCPU's APIC is in
    /// xAPIC mode. In any other mode there is no MMIO page.
    pub fn mmio_base(&self) -> Option<u64> {
        (self.mode() == Mode::XApic).then_some(self.base & !0xfff & !self.apic_base_reserved())
    }
}

/// The mode a base value selects, or `None` for EN = 0, EXTD = 1.
const fn mode_of(value: u64) -> Option<Mode> {
    match (value & BASE_EN != 0, value & BASE_EXTD != 0) {
        (false, false) => Some(Mode::Disabled),
        (false, true) => None,
        (true, false) => Some(Mode::XApic),
        (true, true) => Some(Mode::X2Apic),
    }
}
