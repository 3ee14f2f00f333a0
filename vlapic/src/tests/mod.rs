// SPDX-License-Identifier: GPL-2.0

//! Host tests of the model.

use super::*;

mod base;
mod delivery;
mod ipi;
mod registers;
mod timer;

#[test]
fn power_up_state() {
    let mut apic = Vlapic::new(Config::DEFAULT, 0, 0, true).unwrap();
    assert_eq!(apic.mode(), Mode::XApic);
    assert_eq!(apic.mmio_base(), Some(regs::DEFAULT_BASE));
    assert_eq!(apic.mmio_read(regs::DEFAULT_BASE + 0xf0, 4, 0), Some(0xff));
}

#[test]
fn mul_div_matches_u128_arithmetic() {
    let samples = [
        0u64,
        1,
        2,
        3,
        7,
        1000,
        1 << 31,
        u32::MAX as u64,
        1 << 32,
        5_000_000_000,
        1 << 63,
        u64::MAX - 1,
        u64::MAX,
    ];
    for &a in &samples {
        for &b in &samples {
            for &c in &samples[1..] {
                let exact = a as u128 * b as u128;
                for up in [false, true] {
                    let want = if up { exact.div_ceil(c as u128) } else { exact / c as u128 };
                    let want = want.min(u64::MAX as u128) as u64;
                    assert_eq!(crate::timer::mul_div(a, b, c, up), want, "{a} * {b} / {c} up={up}");
                }
            }
        }
    }
}

/// A stand-in for posted interrupts: `post` keeps vectors in its own PIR,
/// and `sync` merges the PIR into IRR, as VM entry would.
#[derive(Default)]
struct Posted {
    pir: regs::Bits256,
    syncs: usize,
}

impl Accel for Posted {
    fn post(&mut self, vector: u8, _level: bool) -> bool {
        self.pir.set(vector);
        true
    }
    fn sync(&mut self, state: HwState<'_>) {
        self.syncs += 1;
        for (irr, pir) in state.irr.0.iter_mut().zip(self.pir.0.iter_mut()) {
            *irr |= core::mem::take(pir);
        }
    }
    fn reset(&mut self) {
        self.pir = regs::Bits256::EMPTY;
    }
}

#[test]
fn accel_hooks_take_posted_vectors_and_give_them_back() {
    let mut apic = Vlapic::with_accel(Config::DEFAULT, 0, 0, true, Posted::default()).unwrap();
    let base = regs::DEFAULT_BASE;
    let _ = apic.mmio_write(base + 0xf0, 4, 0x1ff, 0).unwrap();
    let fx = apic.deliver(Interrupt::Fixed { vector: 0x41, level: true });
    assert!(fx.wake);
    assert!(apic.accel().pir.get(0x41), "the hook took the vector");
    // The model sees it only through sync, which every read path runs.
    assert_eq!(apic.pending_interrupt(), Some(0x41));
    assert!(apic.accel().syncs > 0);
    assert!(apic.accept_interrupt(0x41));
    let (irr, isr, tmr) = apic.vectors();
    assert!(!irr.get(0x41) && isr.get(0x41) && tmr.get(0x41));
    assert_eq!(apic.mmio_write(base + 0xb0, 4, 0, 0).unwrap().eoi, Some(0x41));

    // INIT drops what the hardware path holds.
    let _ = apic.deliver(Interrupt::Fixed { vector: 0x50, level: false });
    let _ = apic.deliver(Interrupt::Init);
    let ev = apic.take_events();
    assert_eq!(ev.reset, Some(Reset { wait_for_sipi: false }));
    assert_eq!(apic.pending_interrupt(), None);
}
