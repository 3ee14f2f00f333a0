// SPDX-License-Identifier: MIT OR Apache-2.0

//! The tests, by subject.

pub mod apic;
pub mod apic_ap;
pub mod apic_events;
pub mod apic_mixed;
pub mod apic_mp;
pub mod apic_random;
pub mod apic_rt;
pub mod apic_smp;
pub mod apic_state;
pub mod apic_storm;
pub mod apic_vm;
pub mod ctl;
pub mod fuzz;
pub mod memory;
pub mod mmio;
pub mod mmio_cases;
pub mod mmio_edges;
pub mod mmio_fuzz;
pub mod module;
pub mod platform;
pub mod platform_bad;
pub mod platform_clock;
pub mod platform_hpet;
pub mod platform_lines;
pub mod platform_pic;
pub mod platform_random;
pub mod platform_state;
pub mod rip;
pub mod run;
pub mod stress;
pub mod vcpu;
pub mod vm;
pub mod vmx;
pub mod xsave;
