// SPDX-License-Identifier: GPL-2.0

//! Interrupt acceptance, priorities, EOI, errors, the LVT sources and MSIs on one APIC, against the SDM.
//!
//! SDM vol. 3A: "Interrupt Acceptance for Fixed Interrupts", "Task
//! Priority Register", "Processor Priority Register", "Arbitration Priority
//! Register", "Signaling Interrupt Servicing Completion" (EOI and its
//! suppression), "Error Handling", "Local Vector Table", "Local APIC State
//! After It Has Been Software Disabled", "Message Signalled Interrupts".
//! Expected values are written out by hand in the tables.

extern crate std;
use crate::ipi::{resolve, Dest, Endpoint, Interrupt, Kind, Message};
use crate::regs::{Bits256, Lvt, DEFAULT_BASE};
use crate::{Config, Effects, Latched, Mode, Origin, Reset, Vlapic};
use std::{format, vec::Vec};

const TPR: u64 = 0x80;
const APR: u64 = 0x90;
const PPR: u64 = 0xa0;
const EOI: u64 = 0xb0;
const LDR: u64 = 0xd0;
const SVR: u64 = 0xf0;
const ESR: u64 = 0x280;
const ICR_LO: u64 = 0x300;
const CMCI: u64 = 0x2f0;
const THERMAL: u64 = 0x330;
const PERF: u64 = 0x340;
const LINT0: u64 = 0x350;
const LINT1: u64 = 0x360;
const ERROR: u64 = 0x370;

const REMOTE_IRR: u32 = 1 << 14;
const MASKED: u32 = 1 << 16;

fn apic_with(cfg: Config) -> Vlapic {
    let mut a = Vlapic::new(cfg, 0, 0, true).unwrap();
    let _ = w(&mut a, SVR, 0x1ff);
    a
}

/// A software-enabled xAPIC, the BSP.
fn apic() -> Vlapic {
    apic_with(Config::DEFAULT)
}

fn w(a: &mut Vlapic, off: u64, v: u32) -> Effects {
    a.mmio_write(DEFAULT_BASE + off, 4, v as u64, 0).expect("xAPIC page")
}

fn r(a: &mut Vlapic, off: u64) -> u32 {
    a.mmio_read(DEFAULT_BASE + off, 4, 0).expect("xAPIC page") as u32
}

/// ESR as the guest reads it: write, then read.
fn esr(a: &mut Vlapic) -> u32 {
    let _ = w(a, ESR, 0);
    r(a, ESR)
}

fn fixed(vector: u8) -> Interrupt {
    Interrupt::Fixed { vector, level: false }
}

fn bits(vectors: &[u8]) -> Bits256 {
    let mut b = Bits256::EMPTY;
    vectors.iter().for_each(|&v| b.set(v));
    b
}

/// Puts `isr` in service (ascending, with TPR 0), `irr` pending, then sets
/// the TPR.
fn setup(a: &mut Vlapic, tpr: u8, irr: &[u8], isr: &[u8]) {
    for &v in isr {
        let _ = a.deliver(fixed(v));
        assert!(a.accept_interrupt(v), "put {v:#x} in service");
    }
    for &v in irr {
        let _ = a.deliver(fixed(v));
    }
    let _ = w(a, TPR, tpr as u32);
}

#[test]
fn ppr_is_tpr_or_isr_class() {
    // (TPR, ISR, PPR): PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4]:0.
    let table: [(u8, &[u8], u8); 8] = [
        (0x00, &[], 0x00),
        (0x35, &[], 0x35),
        (0x35, &[0x31], 0x35),
        (0x35, &[0x41], 0x40),
        (0x4f, &[0x41, 0x62], 0x60),
        (0x70, &[0x41, 0x62], 0x70),
        (0xff, &[0xfe], 0xff),
        (0x10, &[0x2f], 0x20),
    ];
    for (tpr, isr, ppr) in table {
        let mut a = apic();
        setup(&mut a, tpr, &[], isr);
        assert_eq!(r(&mut a, PPR), ppr as u32, "TPR {tpr:#x} ISR {isr:x?}");
        assert_eq!(a.ppr(), ppr);
    }
}

#[test]
fn apr_follows_tpr_irr_isr() {
    // (TPR, IRR, ISR, APR): APR = TPR if TPR[7:4] >= IRRV[7:4] and
    // TPR[7:4] > ISRV[7:4]; else the highest of the three classes, :0.
    let table: [(u8, &[u8], &[u8], u8); 9] = [
        (0x00, &[], &[], 0x00),
        (0x25, &[], &[], 0x25),
        (0x25, &[0x21], &[], 0x25),
        (0x25, &[0x31], &[], 0x30),
        (0x25, &[], &[0x21], 0x20),
        (0x25, &[0x51], &[0x41], 0x50),
        (0x75, &[0x51], &[0x41], 0x75),
        (0x05, &[0x31], &[0x61], 0x60),
        (0x05, &[0x91], &[0x61], 0x90),
    ];
    for (tpr, irr, isr, apr) in table {
        let mut a = apic();
        setup(&mut a, tpr, irr, isr);
        assert_eq!(r(&mut a, APR), apr as u32, "TPR {tpr:#x} IRR {irr:x?} ISR {isr:x?}");
        assert_eq!(a.endpoint().apr, apr);
    }
}

#[test]
fn pending_interrupt_needs_a_class_above_ppr() {
    /// (TPR, IRR, ISR, pending).
    type Case = (u8, &'static [u8], &'static [u8], Option<u8>);
    let table: [Case; 10] = [
        (0x00, &[], &[], None),
        (0x00, &[0x30], &[], Some(0x30)),
        (0x30, &[0x30], &[], None),
        (0x3f, &[0x3f], &[], None),
        (0x2f, &[0x30], &[], Some(0x30)),
        (0x00, &[0x30, 0x80], &[], Some(0x80)),
        (0x00, &[0x45], &[0x41], None),
        (0x00, &[0x51], &[0x41], Some(0x51)),
        (0x60, &[0x51, 0x71], &[], Some(0x71)),
        (0x70, &[0x51, 0x71], &[], None),
    ];
    for (tpr, irr, isr, pending) in table {
        let mut a = apic();
        setup(&mut a, tpr, irr, isr);
        assert_eq!(a.pending_interrupt(), pending, "TPR {tpr:#x} IRR {irr:x?} ISR {isr:x?}");
        // Only the pending vector can be accepted.
        for v in irr.iter().copied().filter(|v| Some(*v) != pending) {
            assert!(!a.accept_interrupt(v), "{v:#x} is not deliverable");
        }
        let (i, s, _) = a.vectors();
        assert_eq!((i, s), (bits(irr), bits(isr)), "a refused accept changes nothing");
        if let Some(v) = pending {
            assert!(a.accept_interrupt(v));
            let rest: Vec<u8> = irr.iter().copied().filter(|x| *x != v).collect();
            let mut in_service = isr.to_vec();
            in_service.push(v);
            let (i, s, _) = a.vectors();
            assert_eq!((i, s), (bits(&rest), bits(&in_service)));
            // Its class is above the TPR's, so it now sets the PPR.
            assert_eq!(r(&mut a, PPR), (v & 0xf0) as u32);
        }
    }
}

#[test]
fn eoi_ends_the_highest_in_service_vector() {
    let mut a = apic();
    setup(&mut a, 0, &[0x35], &[0x41, 0x62, 0x93]);
    for (left, ppr) in [(&[0x41u8, 0x62][..], 0x60), (&[0x41], 0x40), (&[], 0x00)] {
        assert_eq!(w(&mut a, EOI, 0), Effects::NONE, "edge vectors broadcast nothing");
        let (irr, isr, _) = a.vectors();
        assert_eq!((irr, isr), (bits(&[0x35]), bits(left)));
        assert_eq!(r(&mut a, PPR), ppr);
    }
    // Nothing in service: nothing happens.
    assert_eq!(w(&mut a, EOI, 0), Effects::NONE);
    assert_eq!(a.vectors().0, bits(&[0x35]));
}

#[test]
fn eoi_broadcast_only_for_level_vectors_unless_suppressed() {
    // (level, SVR bit 12 written, EOI suppression supported, broadcast).
    let table = [
        (false, false, true, false),
        (true, false, true, true),
        (true, true, true, false),
        (false, true, true, false),
        // Without support, SVR bit 12 is reserved and does not stick.
        (true, true, false, true),
    ];
    for (level, suppress, supported, broadcast) in table {
        let mut a = apic_with(Config { eoi_suppression: supported, ..Config::DEFAULT });
        assert_eq!((r(&mut a, 0x30) >> 24) & 1, supported as u32, "version bit 24");
        let svr = 0x1ff | if suppress { 1 << 12 } else { 0 };
        let _ = w(&mut a, SVR, svr);
        assert_eq!(r(&mut a, SVR), if supported { svr } else { 0x1ff });
        let _ = a.deliver(Interrupt::Fixed { vector: 0x61, level });
        assert_eq!(a.vectors().2, if level { bits(&[0x61]) } else { Bits256::EMPTY }, "TMR");
        assert!(a.accept_interrupt(0x61));
        let fx = w(&mut a, EOI, 0);
        let want = Effects { eoi: broadcast.then_some(0x61), ..Effects::NONE };
        assert_eq!(fx, want, "level {level} suppress {suppress} supported {supported}");
        assert!(a.vectors().1.is_empty());
    }
    // The TMR bit follows the latest acceptance: level, then edge.
    let mut a = apic();
    let _ = a.deliver(Interrupt::Fixed { vector: 0x61, level: true });
    let _ = a.deliver(Interrupt::Fixed { vector: 0x61, level: false });
    assert!(a.accept_interrupt(0x61));
    assert_eq!(w(&mut a, EOI, 0).eoi, None);
}

#[test]
fn esr_is_latched_by_a_write() {
    let mut a = apic();
    // Fixed self IPI with vector 5: ESR bit 5 (send illegal vector),
    // nothing sent.
    let fx = w(&mut a, ICR_LO, 0x4_0005);
    assert_eq!(fx, Effects::NONE);
    assert_eq!(r(&mut a, ESR), 0, "not visible before a write to the ESR");
    assert_eq!(esr(&mut a), 1 << 5);
    assert_eq!(esr(&mut a), 0, "the next write clears it");
    // (ICR low, ESR): vector < 16 matters only for fixed and lowest priority.
    for (icr, want) in [
        (0x0000f, 1 << 5),
        (0x0010e, 1 << 5),
        (0x8_0010, 0),
        (0x00405, 0),
        (0x00205, 0),
        (0x00600, 0),
    ] {
        let fx = w(&mut a, ICR_LO, icr);
        assert_eq!(fx.ipi.is_some(), want == 0, "ICR {icr:#x}");
        assert_eq!(esr(&mut a), want, "ICR {icr:#x}");
    }
    // Received illegal vector: bit 6, not accepted.
    let fx = a.deliver(fixed(7));
    assert!(!fx.wake);
    assert!(a.vectors().0.is_empty());
    assert_eq!(esr(&mut a), 1 << 6);
    // Locally generated illegal vector (LVT): bit 6.
    let _ = w(&mut a, THERMAL, 0x05);
    let _ = a.fire(Lvt::Thermal);
    assert!(a.vectors().0.is_empty());
    assert_eq!(esr(&mut a), 1 << 6);
    // Reserved register, read or write: bit 7.
    let _ = r(&mut a, 0x40);
    assert_eq!(esr(&mut a), 1 << 7);
    let _ = w(&mut a, 0x50, 1);
    assert_eq!(esr(&mut a), 1 << 7);
    // Errors accumulate until the write.
    let _ = w(&mut a, ICR_LO, 0x4_0001);
    let _ = a.deliver(fixed(1));
    assert_eq!(esr(&mut a), 0x60);
}

#[test]
fn error_lvt_fires_on_errors() {
    // (error LVT, IRR after the error, ESR).
    for (lvt, irr, want_esr) in
        [(0xee, Some(0xee), 0x20), (MASKED | 0xee, None, 0x20), (0x03, None, 0x60)]
    {
        let mut a = apic();
        let _ = w(&mut a, ERROR, lvt);
        let fx = w(&mut a, ICR_LO, 0x4_0005);
        assert_eq!(fx.wake, irr.is_some(), "LVT {lvt:#x}");
        assert_eq!(a.vectors().0, bits(&irr.into_iter().collect::<Vec<_>>()), "LVT {lvt:#x}");
        assert_eq!(a.pending_interrupt(), irr);
        assert_eq!(esr(&mut a), want_esr, "LVT {lvt:#x}");
    }
}

#[test]
fn x2apic_esr_takes_only_zero() {
    let mut a = apic();
    assert!(a.set_apic_base(a.apic_base() | crate::regs::BASE_EXTD, Origin::Guest).is_ok());
    assert!(a.wrmsr(0x830, 0x4_0005, 0).is_ok());
    assert!(a.wrmsr(0x828, 1, 0).is_err(), "non-zero ESR write is #GP");
    assert_eq!(a.rdmsr(0x828, 0), Ok(0));
    assert!(a.wrmsr(0x828, 0, 0).is_ok());
    assert_eq!(a.rdmsr(0x828, 0), Ok(1 << 5));
}

#[test]
fn lint_edge_fires_on_rising_edges() {
    let mut a = apic();
    let _ = w(&mut a, LINT0, 0x31);
    let fx = a.set_lint(0, true);
    assert!(fx.wake);
    assert_eq!(a.vectors(), (bits(&[0x31]), Bits256::EMPTY, Bits256::EMPTY));
    assert!(a.accept_interrupt(0x31));
    // Held high: no new edge.
    assert_eq!(a.set_lint(0, true), Effects::NONE);
    assert_eq!(a.set_lint(0, false), Effects::NONE);
    assert!(a.vectors().0.is_empty());
    assert_eq!(r(&mut a, LINT0) & REMOTE_IRR, 0);
    assert_eq!(w(&mut a, EOI, 0), Effects::NONE);
    assert!(a.set_lint(0, true).wake);
    assert_eq!(a.vectors().0, bits(&[0x31]));
}

#[test]
fn lint_level_uses_remote_irr() {
    for suppress in [false, true] {
        let mut a = apic();
        let _ = w(&mut a, SVR, 0x1ff | (suppress as u32) << 12);
        let _ = w(&mut a, LINT1, 0x8032);
        assert!(a.set_lint(1, true).wake);
        assert_eq!(a.vectors(), (bits(&[0x32]), Bits256::EMPTY, bits(&[0x32])), "level: TMR set");
        assert_eq!(r(&mut a, LINT1), 0x8032 | REMOTE_IRR, "accepted: remote IRR");
        assert!(a.accept_interrupt(0x32));
        // Still asserted, remote IRR set: nothing more.
        assert_eq!(a.set_lint(1, true), Effects::NONE);
        assert!(a.vectors().0.is_empty());
        // EOI clears remote IRR; the pin is still asserted, so it comes again.
        let fx = w(&mut a, EOI, 0);
        assert_eq!(fx.eoi, (!suppress).then_some(0x32), "suppress {suppress}");
        assert!(fx.wake);
        assert_eq!(a.vectors().0, bits(&[0x32]));
        assert_eq!(r(&mut a, LINT1), 0x8032 | REMOTE_IRR);
        assert!(a.accept_interrupt(0x32));
        // De-asserted before the EOI: remote IRR clears and nothing follows.
        assert_eq!(a.set_lint(1, false), Effects::NONE);
        let fx = w(&mut a, EOI, 0);
        assert_eq!(fx, Effects { eoi: (!suppress).then_some(0x32), ..Effects::NONE });
        assert_eq!(r(&mut a, LINT1), 0x8032);
        assert_eq!(a.vectors(), (Bits256::EMPTY, Bits256::EMPTY, bits(&[0x32])));
    }
}

#[test]
fn lint_level_asserted_while_masked_fires_on_unmask() {
    let mut a = apic();
    let _ = w(&mut a, LINT0, MASKED | 0x8033);
    assert_eq!(a.set_lint(0, true), Effects::NONE);
    assert!(a.vectors().0.is_empty());
    assert!(w(&mut a, LINT0, 0x8033).wake);
    assert_eq!(a.vectors().0, bits(&[0x33]));
    assert_eq!(r(&mut a, LINT0), 0x8033 | REMOTE_IRR);
}

/// What an LVT source produced.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Got {
    Irr,
    Smi,
    Nmi,
    Init,
    ExtInt,
    Nothing,
}

fn observe(a: &mut Vlapic, vector: u8) -> Got {
    let irr = a.vectors().0;
    let l = a.latched();
    match (irr == bits(&[vector]), l) {
        (true, l) if l == Latched::default() => Got::Irr,
        (false, _) if !irr.is_empty() => panic!("unexpected IRR {irr:x?}"),
        (false, l) if l == Latched { smi: true, ..Latched::default() } => Got::Smi,
        (false, l) if l == Latched { nmi: true, ..Latched::default() } => Got::Nmi,
        (false, l) if l == Latched { init: true, ..Latched::default() } => Got::Init,
        (false, l) if l == Latched { extint: true, ..Latched::default() } => Got::ExtInt,
        (false, l) if l == Latched::default() => Got::Nothing,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn lvt_delivery_modes() {
    // SDM "Local Vector Table", delivery mode: 000 fixed, 010 SMI, 100 NMI,
    // 101 INIT and 111 ExtINT ("not supported for the LVT CMCI register,
    // the LVT thermal monitor register, or the LVT performance counter
    // register"); all others reserved.
    let sources = [
        (Lvt::Cmci, CMCI),
        (Lvt::Thermal, THERMAL),
        (Lvt::Perf, PERF),
        (Lvt::Lint0, LINT0),
        (Lvt::Lint1, LINT1),
    ];
    let mut bad = Vec::new();
    for (src, off) in sources {
        let pin = matches!(src, Lvt::Lint0 | Lvt::Lint1);
        for mode in 0..8u32 {
            let want = match mode {
                0 => Got::Irr,
                2 => Got::Smi,
                4 => Got::Nmi,
                5 if pin => Got::Init,
                7 if pin => Got::ExtInt,
                _ => Got::Nothing,
            };
            let mut a = apic();
            let _ = w(&mut a, off, mode << 8 | 0x66);
            let fx = if pin { a.set_lint(((off - LINT0) / 0x10) as u8, true) } else { a.fire(src) };
            // ExtINT on a pin is level-sensitive: not latched, but reported
            // by take_events while the pin is asserted.
            let got = if pin && mode == 7 {
                assert_eq!(a.latched(), Latched::default());
                if a.take_events().extint {
                    Got::ExtInt
                } else {
                    Got::Nothing
                }
            } else {
                observe(&mut a, 0x66)
            };
            assert_eq!(fx.wake, got != Got::Nothing, "{src:?} mode {mode}");
            if got != want {
                bad.push(format!("{src:?} delivery mode {mode:03b}: {got:?}, SDM: {want:?}"));
            }
            // Masked: nothing, whatever the mode.
            let mut a = apic();
            let _ = w(&mut a, off, MASKED | mode << 8 | 0x66);
            let fx = if pin { a.set_lint(((off - LINT0) / 0x10) as u8, true) } else { a.fire(src) };
            assert_eq!(
                (fx, observe(&mut a, 0x66)),
                (Effects::NONE, Got::Nothing),
                "{src:?} masked mode {mode}"
            );
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn lvt_sources_reach_the_cpu_through_take_events() {
    let mut a = apic();
    let _ = w(&mut a, LINT1, 0x400);
    let _ = w(&mut a, THERMAL, 0x200);
    let _ = a.set_lint(1, true);
    let _ = a.fire(Lvt::Thermal);
    let ev = a.take_events();
    assert!(ev.nmi && ev.smi && !ev.extint && ev.reset.is_none());
    assert_eq!(a.take_events(), Default::default(), "handed over once");
    // INIT through LINT0 on the BSP: reset, no wait for SIPI.
    let _ = w(&mut a, LINT0, 0x500);
    let _ = a.set_lint(0, true);
    assert_eq!(a.take_events().reset, Some(Reset { wait_for_sipi: false }));
    assert_eq!(r(&mut a, SVR), 0xff, "INIT reset the registers");
}

#[test]
fn lint_nmi_is_edge_even_with_the_level_bit() {
    // "When the delivery mode is NMI, SMI, or INIT, the trigger mode is
    // always edge sensitive."
    let mut a = apic();
    let _ = w(&mut a, LINT1, 0x8400);
    assert!(a.set_lint(1, true).wake);
    assert!(a.take_events().nmi);
    assert_eq!(a.set_lint(1, true), Effects::NONE);
    assert!(!a.take_events().nmi);
    assert_eq!(r(&mut a, LINT1) & REMOTE_IRR, 0);
}

#[test]
fn lint0_extint_is_level_sensitive() {
    // SDM "Local Vector Table", trigger mode: "When the delivery mode is
    // ExtINT, the trigger mode is always level sensitive." While the 8259
    // holds LINT0 asserted, the CPU keeps being asked for an INTA cycle.
    let mut a = apic();
    let _ = w(&mut a, LINT0, 0x700);
    assert!(a.set_lint(0, true).wake);
    assert!(a.take_events().extint);
    assert!(a.take_events().extint, "LINT0 still asserted: ExtINT still requested");
    let _ = a.set_lint(0, false);
    assert!(!a.take_events().extint);
}

#[test]
fn perf_lvt_masks_itself_when_it_fires() {
    // SDM "Local Vector Table", mask: "When the local APIC handles a
    // performance-monitoring counters interrupt, it automatically sets the
    // mask flag in the corresponding LVT entry."
    let mut a = apic();
    let _ = w(&mut a, PERF, 0x400);
    let _ = a.fire(Lvt::Perf);
    assert!(a.take_events().nmi);
    assert_eq!(r(&mut a, PERF), MASKED | 0x400);
    assert_eq!(a.fire(Lvt::Perf), Effects::NONE);
}

#[test]
fn accepts_pic_interrupt_when_disabled_or_lint0_extint() {
    // (how to set up, LINT0, expected).
    enum S {
        Enabled,
        SwDisabled,
        HwDisabled,
        X2,
    }
    let table = [
        (S::Enabled, None, false),
        (S::Enabled, Some(0x700), true),
        (S::Enabled, Some(0xa700), true),
        (S::Enabled, Some(MASKED | 0x700), false),
        (S::Enabled, Some(0x0031), false),
        (S::Enabled, Some(0x0400), false),
        (S::SwDisabled, Some(0x700), false),
        (S::HwDisabled, None, true),
        (S::X2, Some(0x700), true),
        (S::X2, Some(0x400), false),
    ];
    for (n, (setup, lint0, want)) in table.into_iter().enumerate() {
        let mut a = apic();
        if let Some(v) = lint0 {
            let _ = w(&mut a, LINT0, v);
        }
        match setup {
            S::Enabled => {}
            S::SwDisabled => {
                let _ = w(&mut a, SVR, 0xff);
            }
            S::HwDisabled => assert!(a.set_apic_base(DEFAULT_BASE, Origin::Guest).is_ok()),
            S::X2 => {
                assert!(a
                    .set_apic_base(a.apic_base() | crate::regs::BASE_EXTD, Origin::Guest)
                    .is_ok());
                if let Some(v) = lint0 {
                    assert!(a.wrmsr(0x835, v as u64, 0).is_ok());
                }
            }
        }
        assert_eq!(a.accepts_pic_interrupt(), want, "case {n}");
    }
}

#[test]
fn enabled_sw_disabled_and_disabled_receivers() {
    // SDM "Local APIC State After It Has Been Software Disabled": INIT,
    // NMI, SMI and SIPI are taken normally; fixed interrupts are not. A
    // globally disabled APIC takes nothing.
    let irqs = [
        (Interrupt::Fixed { vector: 0x40, level: false }, Latched::default()),
        (Interrupt::Nmi, Latched { nmi: true, ..Latched::default() }),
        (Interrupt::Smi, Latched { smi: true, ..Latched::default() }),
        (Interrupt::Init, Latched { init: true, ..Latched::default() }),
    ];
    for (irq, latched) in irqs {
        for state in 0..3 {
            let mut a = apic();
            match state {
                1 => {
                    let _ = w(&mut a, SVR, 0xff);
                }
                2 => assert!(a.set_apic_base(DEFAULT_BASE, Origin::Guest).is_ok()),
                _ => {}
            }
            let fx = a.deliver(irq);
            let fixed = matches!(irq, Interrupt::Fixed { .. });
            let taken = match state {
                0 => true,
                1 => !fixed,
                _ => false,
            };
            assert_eq!(fx, Effects { wake: taken, ..Effects::NONE }, "{irq:?} state {state}");
            let want_irr = if taken && fixed { bits(&[0x40]) } else { Bits256::EMPTY };
            assert_eq!(a.vectors().0, want_irr, "{irq:?} state {state}");
            assert_eq!(
                a.latched(),
                if taken { latched } else { Latched::default() },
                "{irq:?} state {state}"
            );
        }
    }
    // SIPI to a software-disabled AP waiting for it.
    let mut a = Vlapic::new(Config::DEFAULT, 1, 1, false).unwrap();
    let _ = a.deliver(Interrupt::Init);
    let _ = a.take_events();
    assert!(!a.sw_enabled());
    assert!(a.deliver(Interrupt::Sipi(0x12)).wake);
    assert_eq!(a.take_events().start, Some(0x12));
}

#[test]
fn sw_disabled_apic_drops_extint() {
    // ExtINT is not among the messages a software-disabled APIC "will
    // respond normally to" (INIT, NMI, SMI, SIPI).
    let mut a = apic();
    let _ = w(&mut a, SVR, 0xff);
    assert_eq!(a.deliver(Interrupt::ExtInt), Effects::NONE);
    assert_eq!(a.latched(), Latched::default());
}

#[test]
fn msi_decoding() {
    // (data, Kind): data bits 7:0 vector, 10:8 delivery mode, 14 level
    // (ignored), 15 trigger mode. Modes 011 and 110 are reserved.
    let f = |vector, level| Some(Kind::Interrupt(Interrupt::Fixed { vector, level }));
    let lp = |vector, level| Some(Kind::LowestPriority { vector, level });
    let table = [
        (0x0041, f(0x41, false)),
        (0x4041, f(0x41, false)),
        (0x8041, f(0x41, true)),
        (0xc0ff, f(0xff, true)),
        (0x0141, lp(0x41, false)),
        (0x8141, lp(0x41, true)),
        (0x0200, Some(Kind::Interrupt(Interrupt::Smi))),
        (0x0400, Some(Kind::Interrupt(Interrupt::Nmi))),
        (0x0500, Some(Kind::Interrupt(Interrupt::Init))),
        (0x0700, Some(Kind::Interrupt(Interrupt::ExtInt))),
        (0x0300, None),
        (0x0600, None),
    ];
    for (data, kind) in table {
        for (dest, logical, x2) in
            [(3, false, false), (0xff, true, false), (0x1_0002, true, true), (0x105, false, true)]
        {
            let want = kind.map(|kind| Message {
                kind,
                dest: if logical { Dest::Logical(dest) } else { Dest::Physical(dest) },
                x2apic_format: x2,
            });
            assert_eq!(
                Message::from_msi(dest, logical, data, x2),
                want,
                "data {data:#x} dest {dest:#x}"
            );
        }
    }
}

#[test]
fn msi_end_to_end() {
    // Three flat xAPICs, logical IDs 1, 2, 4; TPRs 0x20, 0x10, 0x30.
    let mut bus: Vec<Vlapic> = (0..3)
        .map(|i| {
            let mut a = Vlapic::new(Config::DEFAULT, i as u16, i, i == 0).unwrap();
            let _ = w(&mut a, SVR, 0x1ff);
            let _ = w(&mut a, LDR, 1 << (24 + i));
            let _ = w(&mut a, TPR, [0x20, 0x10, 0x30][i as usize]);
            a
        })
        .collect();
    /// An xAPIC-format MSI through the bus; returns the targets.
    fn send(bus: &mut [Vlapic], dest: u32, logical: bool, data: u32) -> Vec<usize> {
        let msg = Message::from_msi(dest, logical, data, false).unwrap();
        let eps: Vec<Option<Endpoint>> = bus.iter_mut().map(|a| Some(a.endpoint())).collect();
        let d = resolve(&msg, None, &eps[..]);
        for t in d.targets.iter() {
            let _ = bus[t].deliver(d.interrupt);
        }
        d.targets.iter().collect()
    }
    // Level-triggered fixed to logical 0x06: cpus 1 and 2, TMR set, EOI broadcast.
    assert_eq!(send(&mut bus, 0x06, true, 0x8055), [1, 2]);
    for (i, a) in bus.iter_mut().enumerate() {
        let want = if i == 0 { Bits256::EMPTY } else { bits(&[0x55]) };
        assert_eq!(a.vectors(), (want, Bits256::EMPTY, want), "cpu {i}");
    }
    assert!(bus[1].accept_interrupt(0x55));
    assert_eq!(w(&mut bus[1], EOI, 0).eoi, Some(0x55));
    // Lowest priority, level, to everyone (physical 0xff): cpu 1 (TPR 0x10)
    // now has nothing pending; cpu 2 still has 0x55 in IRR.
    assert_eq!(send(&mut bus, 0xff, false, 0x8156), [1]);
    assert_eq!(bus[1].vectors().2, bits(&[0x55, 0x56]));
    // NMI, physical broadcast: all three.
    assert_eq!(send(&mut bus, 0xff, false, 0x0400), [0, 1, 2]);
    assert!(bus.iter().all(|a| a.latched().nmi));
    // ExtINT to cpu 0: handed to the run loop.
    assert_eq!(send(&mut bus, 0, false, 0x0700), [0]);
    assert!(bus[0].take_events().extint);
    // A vector below 16: the receiver's ESR bit 6, and its error LVT fires.
    let _ = w(&mut bus[2], ERROR, 0xe0);
    assert_eq!(send(&mut bus, 2, false, 0x0005), [2]);
    assert_eq!(bus[2].vectors().0, bits(&[0x55, 0xe0]));
    assert_eq!(esr(&mut bus[2]), 1 << 6);
    // A globally disabled APIC is not on the bus.
    assert!(bus[0].set_apic_base(DEFAULT_BASE, Origin::Guest).is_ok());
    assert_eq!(bus[0].mode(), Mode::Disabled);
    assert_eq!(send(&mut bus, 0, false, 0x0400), Vec::<usize>::new());
    assert_eq!(bus[0].latched(), Latched::default());
}
