// SPDX-License-Identifier: GPL-2.0

//! The platform devices a PC guest expects beside its local APICs, as
//! pure, total state machines: the I/O APIC ([`ioapic`]), the two 8259
//! PICs ([`pic`]), the 8254 PIT with port 0x61 ([`pit`]), the ACPI PM
//! timer ([`pmtimer`]), the MC146818 RTC with its CMOS ([`rtc`]) and the
//! HPET ([`hpet`]).
//!
//! [`lines`] keeps which sources hold each interrupt line up.
//!
//! One crate for the six: they share the vocabulary of [`common`] (time,
//! timer requests, interrupt-line operations, snapshot errors), the
//! kernel links them as one unit, and none is large. Each device lives in
//! its own module and knows nothing of the others; the integration layer
//! wires their outputs to each other's inputs (an ISA line to a PIC input
//! and an IOAPIC pin, the PIC's INTR to the BSP's LINT0, the IOAPIC's
//! messages to the local APICs).
//!
//! # What every device here promises
//!
//! - **Total.** Every access (any port or offset, any size, any value) and
//!   every call has a defined outcome; nothing panics, nothing allocates.
//! - **Decisions, not actions.** A call returns what the caller must do:
//!   raise or lower a line, deliver a message, arm or cancel a host timer.
//! - **No clock of its own.** Time is passed in as [`Nanos`], nanoseconds
//!   of one monotonic clock the caller owns (per VM). A device asks for a
//!   timer with [`TimerAction`] and is told it expired through its
//!   `timer_expired(now)`; a late or early call is harmless (the device
//!   looks at `now`, not at how it was called).
//! - **Snapshots.** Each device has a versioned, plain-integer snapshot,
//!   checked field by field on restore; a refused snapshot changes nothing.
//!
//! Glossary: IOAPIC = I/O advanced programmable interrupt controller;
//! IRR = interrupt request register; ISR = in-service register; IMR =
//! interrupt mask register; ICW/OCW = initialisation/operation command
//! word; ELCR = edge/level control register; PIT = programmable interval
//! timer; RTC = real-time clock; CMOS = the RTC's battery-backed RAM; HPET
//! = high precision event timer; FSB = front-side bus (HPET MSI delivery);
//! PM = ACPI power management; BCD = binary-coded decimal.

#![cfg_attr(not(kernel), no_std)]
#![forbid(unsafe_code)]

pub mod common;
pub mod hpet;
pub mod ioapic;
pub mod lines;
pub mod pic;
pub mod pit;
pub mod pmtimer;
pub mod rtc;

pub use common::{mul_div, ImportError, LineOp, Msi, Nanos, TimerAction, NANOS_PER_SEC};
