// SPDX-License-Identifier: GPL-2.0

//! A shared interpreter of random operations on a small machine of virtual
//! local APICs, used by the property tests (`tests/prop.rs`) and by the
//! cargo-fuzz target (`fuzz/fuzz_targets/ops.rs`), which both include this
//! file as a module.
//!
//! An [`Op`] is one thing that a guest, a device or the integration layer
//! does to one vCPU's APIC. A [`Machine`] holds 2-5 [`Vlapic`]s and a guest
//! TSC that only goes forward, and acts on every [`Effects`] the way the
//! crate documentation says the integration layer must: IPIs are resolved
//! over the bus of all vCPUs and delivered, host timers are armed, and
//! `timer_expired` is called at the armed times. [`Machine::step`] asserts
//! what each op must (or must not) have done; [`Machine::check`] asserts,
//! from the public API alone, invariants that hold after every op. [`run`]
//! plays a sequence, optionally forks a second machine from snapshots part
//! way through, and asserts that both then behave identically.
//!
//! The fields of an op are raw draws shaped by `decode` functions that
//! favour real registers, aligned 4-byte accesses and meaningful values
//! (LVT, ICR, SVR, timer counts, legal `IA32_APIC_BASE` values). The
//! fuzzer's `Arbitrary` (only under `cfg(fuzzing)`) and the proptest
//! strategies (only outside it) both go through them, so both see the same
//! shapes of values, and a printed op list is valid Rust for a regression
//! test.
//!
//! Every includer declares it `pub mod`, so that what one test binary
//! does not use is not dead code there; `doc(hidden)` says that it is a
//! test helper, not an API to document.

#![doc(hidden)]

mod input;
mod machine;

pub use input::*;
pub use machine::*;

/// The proptest strategies.
#[cfg(not(fuzzing))]
pub mod strategy {
    use super::*;
    use proptest::prelude::*;

    /// A [`Setup`], any draw.
    pub fn setup() -> impl Strategy<Value = Setup> {
        (any::<(u8, u8, u8)>(), any::<[u8; 5]>(), any::<(u8, u64)>()).prop_map(
            |((cpus, config, ids), modes, (time, tsc))| Setup {
                cpus,
                config,
                ids,
                modes,
                time,
                tsc,
            },
        )
    }

    fn irq() -> impl Strategy<Value = Irq> {
        prop_oneof![
            6 => (any::<u8>(), any::<bool>()).prop_map(|(vector, level)| Irq::Fixed { vector, level }),
            1 => Just(Irq::Smi),
            1 => Just(Irq::Nmi),
            1 => Just(Irq::Init),
            1 => any::<u8>().prop_map(Irq::Sipi),
            1 => Just(Irq::ExtInt),
        ]
    }

    fn mode() -> impl Strategy<Value = ModeSel> {
        prop_oneof![1 => Just(ModeSel::Disabled), 2 => Just(ModeSel::XApic), 3 => Just(ModeSel::X2Apic)]
    }

    /// One [`Op`], weighted towards the ones that move interrupts along.
    pub fn op() -> impl Strategy<Value = Op> {
        let cpu = || any::<u8>();
        prop_oneof![
            2 => (cpu(), Off::strategy(), Width::strategy())
                .prop_map(|(cpu, off, size)| Op::MmioRead { cpu, off, size }),
            6 => (cpu(), Off::strategy(), Width::strategy(), Val::strategy())
                .prop_map(|(cpu, off, size, value)| Op::MmioWrite { cpu, off, size, value }),
            2 => (cpu(), Msr::strategy()).prop_map(|(cpu, msr)| Op::Rdmsr { cpu, msr }),
            3 => (cpu(), Msr::strategy(), Val::strategy())
                .prop_map(|(cpu, msr, value)| Op::Wrmsr { cpu, msr, value }),
            2 => (cpu(), RegSel::strategy()).prop_map(|(cpu, reg)| Op::RegRead { cpu, reg }),
            14 => (cpu(), RegVal::strategy()).prop_map(|(cpu, write)| Op::RegWrite { cpu, write }),
            8 => (cpu(), Icr::strategy()).prop_map(|(cpu, icr)| Op::Ipi { cpu, icr }),
            10 => cpu().prop_map(|cpu| Op::Eoi { cpu }),
            2 => (cpu(), mode(), any::<bool>())
                .prop_map(|(cpu, to, moved)| Op::Transition { cpu, to, moved }),
            1 => (cpu(), Base::strategy()).prop_map(|(cpu, value)| Op::SetApicBase { cpu, value }),
            3 => (cpu(), Rel::strategy()).prop_map(|(cpu, at)| Op::Deadline { cpu, at }),
            10 => (cpu(), irq()).prop_map(|(cpu, irq)| Op::Deliver { cpu, irq }),
            4 => (Dest::strategy(), any::<bool>(), MsiData::strategy(), any::<bool>()).prop_map(
                |(dest, logical, data, x2apic_format)| Op::Msi { dest, logical, data, x2apic_format }
            ),
            5 => Ticks::strategy().prop_map(|ticks| Op::Advance { ticks }),
            3 => Just(Op::RunToTimer),
            1 => cpu().prop_map(|cpu| Op::TimerExpired { cpu }),
            5 => cpu().prop_map(|cpu| Op::TakeEvents { cpu }),
            16 => cpu().prop_map(|cpu| Op::Accept { cpu }),
            1 => (cpu(), any::<u8>()).prop_map(|(cpu, vector)| Op::AcceptVector { cpu, vector }),
            3 => (cpu(), 0..4u8, any::<bool>())
                .prop_map(|(cpu, pin, asserted)| Op::SetLint { cpu, pin, asserted }),
            3 => (cpu(), 0..7u8).prop_map(|(cpu, lvt)| Op::Fire { cpu, lvt }),
            2 => (cpu(), prop_oneof![Just(0u8), any::<u8>()])
                .prop_map(|(cpu, value)| Op::SetTpr { cpu, value }),
            1 => cpu().prop_map(|cpu| Op::Snapshot { cpu }),
            1 => cpu().prop_map(|cpu| Op::Restore { cpu }),
        ]
    }

    /// Up to `max` ops.
    pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(op(), 0..=max)
    }
}
