// SPDX-License-Identifier: GPL-2.0

//! `IA32_APIC_BASE` (MSR 0x1B): every transition between disabled, xAPIC
//! and x2APIC, from the guest and from the host, legal and illegal,
//! against the SDM's state diagram ("x2APIC State Transitions") and bit
//! layout ("Local APIC Status and Location"); the effects reported, the
//! register reset on disable, relocation, and that it is all per vCPU.

use crate::regs::{DEFAULT_BASE, MSR_APIC_BASE};
use crate::{Config, Effects, Gp, Interrupt, Mode, ModeChange, Origin, TimerAction, Vlapic};

const BSP: u64 = 1 << 8;
const EXTD: u64 = 1 << 10;
const EN: u64 = 1 << 11;
/// Another page, below 2^36 so that every MAXPHYADDR allows it.
const MOVED: u64 = 0xc_dead_b000;
const ID: u32 = 0x0000_0123;

/// The modes and the EN/EXTD bits that select them.
const MODES: [(Mode, u64); 3] = [(Mode::Disabled, 0), (Mode::XApic, EN), (Mode::X2Apic, EN | EXTD)];

/// The SDM state diagram: may the guest go from `MODES[from]` to
/// `MODES[to]`? The host may set any valid state.
const GUEST: [[bool; 3]; 3] = [
    [true, true, false], // disabled: stay, or enable in xAPIC mode
    [true, true, true],  // xAPIC: anywhere
    [true, false, true], // x2APIC: stay or disable, never back to xAPIC
];

/// Index into [`MODES`] of the mode a value selects; EN = 0, EXTD = 1 is
/// not a state.
fn mode_of(value: u64) -> Option<usize> {
    MODES.iter().position(|(_, bits)| value & (EN | EXTD) == *bits)
}

fn addr(cfg: &Config, value: u64) -> u64 {
    value & !0xfff & ((1 << cfg.maxphyaddr) - 1)
}

/// The MSR's value after writing `value` over `old`, or #GP.
fn expect(cfg: &Config, old: u64, value: u64, origin: Origin) -> Result<u64, Gp> {
    // Bits 0-7 and 9, EXTD without x2APIC support, bits >= MAXPHYADDR.
    let reserved = 0xff | 1 << 9 | if cfg.x2apic { 0 } else { EXTD } | !0 << cfg.maxphyaddr;
    if value & reserved != 0 {
        return Err(Gp);
    }
    let to = mode_of(value).ok_or(Gp)?;
    if origin == Origin::Guest && !GUEST[mode_of(old).unwrap()][to] {
        return Err(Gp);
    }
    Ok(match origin {
        Origin::Guest => (value & !BSP) | (old & BSP),
        Origin::Host => value,
    })
}

/// Register state that differs from power-up: (xAPIC offset, value).
const STATE: [(u64, u64); 8] = [
    (0x0f0, 0x1ff),
    (0x080, 0x40),
    (0x020, 0x7700_0000),
    (0x0d0, 0x0100_0000),
    (0x0e0, 0x0fff_ffff),
    (0x320, 0x2_00e0),
    (0x3e0, 0xb),
    (0x380, 100_000),
];

/// An APIC in `MODES[from]`, reached the guest's way, with [`STATE`], a
/// vector in service and one requested, and the timer armed.
fn apic_in(cfg: Config, from: usize, bsp: bool) -> Vlapic {
    let mut a = Vlapic::new(cfg, 1, ID, bsp).unwrap();
    for (off, val) in STATE {
        let _ = a.mmio_write(DEFAULT_BASE + off, 4, val, 0).unwrap();
    }
    let _ = a.deliver(Interrupt::Fixed { vector: 0x80, level: true });
    assert!(a.accept_interrupt(0x80));
    let _ = a.deliver(Interrupt::Fixed { vector: 0x90, level: false });
    if from != 1 {
        let _ = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | MODES[from].1, 0).unwrap();
    }
    a
}

/// Writes `value` from `origin` to an APIC in `MODES[from]` and checks the
/// outcome against [`expect`]: the value, the mode, the MMIO page and the
/// effects, or #GP with nothing changed.
fn check(cfg: Config, from: usize, bsp: bool, value: u64, origin: Origin) {
    let mut a = apic_in(cfg, from, bsp);
    let before = a.clone();
    let old = a.apic_base();
    let got = match origin {
        Origin::Guest => a.wrmsr(MSR_APIC_BASE, value, 0),
        Origin::Host => a.set_apic_base(value, Origin::Host),
    };
    let ctx = (from, bsp, value, origin, cfg.x2apic, cfg.maxphyaddr);
    let new = match expect(&cfg, old, value, origin) {
        Err(Gp) => {
            assert_eq!(got, Err(Gp), "{ctx:x?}");
            assert!(a == before, "#GP changed state {ctx:x?}");
            return;
        }
        Ok(new) => new,
    };
    let fx = got.unwrap_or_else(|_| panic!("unexpected #GP {ctx:x?}"));
    let (from, to) = (MODES[from].0, MODES[mode_of(new).unwrap()].0);
    let base = addr(&cfg, new);
    assert_eq!(a.rdmsr(MSR_APIC_BASE, 0), Ok(new), "{ctx:x?}");
    assert_eq!(a.mode(), to, "{ctx:x?}");
    assert_eq!(a.mmio_base(), (to == Mode::XApic).then_some(base), "{ctx:x?}");
    let moved = from != to || base != addr(&cfg, old);
    let want = Effects {
        mode: moved.then_some(ModeChange { from, to, base }),
        // The registers start over (and the armed timer stops) on disabling
        // and on the host's move from x2APIC back to xAPIC.
        timer: ((to == Mode::Disabled && from != Mode::Disabled)
            || (from, to) == (Mode::X2Apic, Mode::XApic))
            .then_some(TimerAction::Disarm),
        ..Effects::NONE
    };
    assert_eq!(fx, want, "{ctx:x?}");
    if to == Mode::XApic {
        assert!(a.mmio_read(base + 0x30, 4, 0).is_some(), "{ctx:x?}");
        if base != DEFAULT_BASE {
            assert_eq!(
                a.mmio_read(DEFAULT_BASE + 0x30, 4, 0),
                None,
                "old page still answers {ctx:x?}"
            );
        }
    }
}

const NO_X2APIC: Config = Config { x2apic: false, ..Config::DEFAULT };

/// The modes an APIC of `cfg` can be in.
fn modes(cfg: &Config) -> impl Iterator<Item = usize> {
    let x2apic = cfg.x2apic;
    (0..3).filter(move |m| *m != 2 || x2apic)
}

#[test]
fn every_transition_from_every_mode() {
    for cfg in [Config::DEFAULT, NO_X2APIC] {
        for origin in [Origin::Guest, Origin::Host] {
            for from in modes(&cfg) {
                for bsp in [false, true] {
                    for to in [0, EN, EXTD, EN | EXTD] {
                        for flip in [0, BSP] {
                            for page in [DEFAULT_BASE, MOVED] {
                                let own = if bsp { BSP } else { 0 };
                                check(cfg, from, bsp, page | to | (own ^ flip), origin);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_state_diagram() {
    // (from, to: EN/EXTD bits, guest may)
    const DIAGRAM: [(usize, u64, bool); 12] = [
        (0, 0, true),
        (0, EN, true),
        (0, EN | EXTD, false),
        (0, EXTD, false),
        (1, 0, true),
        (1, EN, true),
        (1, EN | EXTD, true),
        (1, EXTD, false),
        (2, 0, true),
        (2, EN, false),
        (2, EN | EXTD, true),
        (2, EXTD, false),
    ];
    for (from, to, ok) in DIAGRAM {
        let mut a = apic_in(Config::DEFAULT, from, true);
        let got = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | BSP | to, 0);
        assert_eq!(got.is_ok(), ok, "guest {from} -> {to:#x}");
        // The host may set any state but EN = 0, EXTD = 1.
        let mut a = apic_in(Config::DEFAULT, from, true);
        let got = a.set_apic_base(DEFAULT_BASE | BSP | to, Origin::Host);
        assert_eq!(got.is_ok(), to != EXTD, "host {from} -> {to:#x}");
    }
}

#[test]
fn reserved_bits_gp_from_every_mode() {
    for maxphyaddr in [36, 46, 52] {
        for x2apic in [true, false] {
            let cfg = Config { maxphyaddr, x2apic, ..Config::DEFAULT };
            for from in modes(&cfg) {
                for to in modes(&cfg).filter(|to| GUEST[from][*to]) {
                    for bit in (0..64).filter(|b| ![8, 10, 11].contains(b)) {
                        let value = DEFAULT_BASE | MODES[to].1 | BSP | 1 << bit;
                        let reserved = bit < 8 || bit == 9 || bit >= maxphyaddr as u32;
                        let old = apic_in(cfg, from, true).apic_base();
                        assert_eq!(
                            expect(&cfg, old, value, Origin::Guest).is_err(),
                            reserved,
                            "bit {bit}"
                        );
                        check(cfg, from, true, value, Origin::Guest);
                        check(cfg, from, true, value, Origin::Host);
                    }
                }
            }
        }
    }
}

#[test]
fn extd_needs_x2apic_support() {
    for from in [0, 1] {
        for origin in [Origin::Guest, Origin::Host] {
            let mut a = apic_in(NO_X2APIC, from, true);
            let before = a.clone();
            assert_eq!(a.set_apic_base(DEFAULT_BASE | BSP | EN | EXTD, origin), Err(Gp));
            assert!(a == before);
            assert_eq!(a.rdmsr(0x802, 0), Err(Gp));
        }
    }
}

#[test]
fn bsp_is_read_only_for_the_guest() {
    for bsp in [false, true] {
        for (from, (_, bits)) in MODES.iter().enumerate() {
            let own = if bsp { BSP } else { 0 };
            let mut a = apic_in(Config::DEFAULT, from, bsp);
            let value = DEFAULT_BASE | bits;
            let fx = a.wrmsr(MSR_APIC_BASE, value | (own ^ BSP), 0).unwrap();
            assert_eq!(
                (fx, a.apic_base()),
                (Effects::NONE, value | own),
                "guest, bsp {bsp}, mode {from}"
            );
            let fx = a.set_apic_base(value | (own ^ BSP), Origin::Host).unwrap();
            assert_eq!(
                (fx, a.apic_base()),
                (Effects::NONE, value | (own ^ BSP)),
                "host, bsp {bsp}, mode {from}"
            );
        }
    }
}

/// xAPIC registers at power-up (SDM "Local APIC State After Power-Up or
/// Reset"), for [`Config::DEFAULT`]; `None` for reserved slots.
fn power_up(slot: usize) -> Option<u32> {
    Some(match slot {
        0x02 => (ID & 0xff) << 24,
        0x03 => 0x0106_0014,
        0x08..=0x0d | 0x10..=0x28 | 0x30 | 0x31 | 0x38 | 0x39 | 0x3e => 0,
        0x0e => u32::MAX,
        0x0f => 0xff,
        0x2f | 0x32..=0x37 => 1 << 16,
        _ => return None,
    })
}

#[test]
fn disabling_resets_registers_and_disarms_the_timer() {
    for from in [1, 2] {
        let mut a = apic_in(Config::DEFAULT, from, false);
        let fx = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE, 0).unwrap();
        let change = ModeChange { from: MODES[from].0, to: Mode::Disabled, base: DEFAULT_BASE };
        assert_eq!(
            fx,
            Effects { mode: Some(change), timer: Some(TimerAction::Disarm), ..Effects::NONE }
        );
        let fx = a.wrmsr(MSR_APIC_BASE, DEFAULT_BASE | EN, 0).unwrap();
        let change = ModeChange { from: Mode::Disabled, to: Mode::XApic, base: DEFAULT_BASE };
        assert_eq!(fx, Effects { mode: Some(change), ..Effects::NONE });
        for slot in 0..0x40 {
            if let Some(want) = power_up(slot) {
                let got = a.mmio_read(DEFAULT_BASE + slot as u64 * 16, 4, 0);
                assert_eq!(got, Some(want as u64), "slot {slot:#x} after disable from mode {from}");
            }
        }
        assert_eq!(a.pending_interrupt(), None);
        assert_eq!(
            a.timer_expired(u64::MAX),
            Effects { timer: Some(TimerAction::Disarm), ..Effects::NONE }
        );
    }
}

#[test]
fn relocation_moves_the_mmio_page() {
    let mut a = apic_in(Config::DEFAULT, 1, true);
    let tpr = |a: &mut Vlapic, page: u64| a.mmio_read(page + 0x80, 4, 0);
    // (new value, mode, page that answers, page that does not)
    let steps: [(u64, Mode, Option<u64>, u64); 6] = [
        (MOVED | EN, Mode::XApic, Some(MOVED), DEFAULT_BASE),
        (DEFAULT_BASE | EN, Mode::XApic, Some(DEFAULT_BASE), MOVED),
        (MOVED | EN | EXTD, Mode::X2Apic, None, MOVED),
        (DEFAULT_BASE | EN | EXTD, Mode::X2Apic, None, DEFAULT_BASE),
        (MOVED, Mode::Disabled, None, MOVED),
        (MOVED | EN, Mode::XApic, Some(MOVED), DEFAULT_BASE),
    ];
    for (i, (value, mode, live, dead)) in steps.into_iter().enumerate() {
        let from = a.mode();
        let fx = a.wrmsr(MSR_APIC_BASE, value, 0).unwrap();
        assert_eq!(fx.mode, Some(ModeChange { from, to: mode, base: value & !0xfff }), "step {i}");
        assert_eq!((a.mode(), a.mmio_base()), (mode, live), "step {i}");
        assert_eq!(tpr(&mut a, dead), None, "step {i}");
        assert_eq!(a.mmio_write(dead + 0x80, 4, 0x10, 0), None, "step {i}");
        if let Some(page) = live {
            assert!(tpr(&mut a, page).is_some(), "step {i}");
        }
    }
    // Still the relocated page: TPR is back at its reset value after the
    // disable, and writes there land.
    let _ = a.mmio_write(MOVED + 0x80, 4, 0x20, 0).unwrap();
    assert_eq!(tpr(&mut a, MOVED), Some(0x20));
}

#[test]
fn transitions_are_per_vcpu() {
    // illumos bug 13861: x2APIC mode was global, so one vCPU's switch
    // changed how every other vCPU's APIC was reached.
    let mut a = apic_in(Config::DEFAULT, 1, true);
    let mut b = Vlapic::new(Config::DEFAULT, 2, 0x44, false).unwrap();
    let b0 = b.clone();
    let steps = [
        DEFAULT_BASE | BSP | EN | EXTD,
        MOVED | BSP | EN | EXTD,
        MOVED | BSP,
        MOVED | BSP | EN,
        DEFAULT_BASE | BSP,
    ];
    for value in steps {
        let _ = a.wrmsr(MSR_APIC_BASE, value, 0).unwrap();
        assert_eq!(a.apic_base(), value);
        assert!(b == b0, "vCPU b changed after a wrote {value:#x}");
        assert_eq!((b.mode(), b.mmio_base()), (Mode::XApic, Some(DEFAULT_BASE)));
        assert_eq!(b.mmio_read(DEFAULT_BASE + 0x20, 4, 0), Some(0x4400_0000));
        assert_eq!(b.rdmsr(0x802, 0), Err(Gp));
        assert_eq!(b.mmio_read(MOVED + 0x20, 4, 0), None);
    }
}
