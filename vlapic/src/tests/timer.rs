// SPDX-License-Identifier: GPL-2.0

//! The APIC timer in one-shot, periodic and TSC-deadline modes with every divide value, against the SDM.
//!
//! SDM vol. 3A, "APIC Timer" and "TSC-Deadline Mode". The bus clock is
//! 100 MHz and the TSC 1 GHz, so one count lasts 10 TSC ticks times the
//! divisor; every expected expiry and count below follows from that.

extern crate std;
use crate::regs::{BASE_EXTD, DEFAULT_BASE};
use crate::{Config, Effects, Origin, TimerAction, Tsc, Vlapic};
use std::format;

const CFG: Config =
    Config { bus_hz: 100_000_000, tsc_hz: 1_000_000_000, min_period: 0, ..Config::DEFAULT };
/// TSC ticks per bus clock.
const TICKS: u64 = 10;
/// (divide configuration, divisor): SDM "Divide Configuration Register",
/// bits 3, 1 and 0.
const DIVIDE: [(u32, u64); 8] = [
    (0b0000, 2),
    (0b0001, 4),
    (0b0010, 8),
    (0b0011, 16),
    (0b1000, 32),
    (0b1001, 64),
    (0b1010, 128),
    (0b1011, 1),
];

const EOI: u64 = 0xb0;
const SVR: u64 = 0xf0;
const LVT_TIMER: u64 = 0x320;
const INITIAL: u64 = 0x380;
const CURRENT: u64 = 0x390;
const DCR: u64 = 0x3e0;
const TSC_DEADLINE: u32 = 0x6e0;

const VEC: u8 = 0xec;
const ONESHOT: u32 = VEC as u32;
const PERIODIC: u32 = 1 << 17 | VEC as u32;
const DEADLINE: u32 = 2 << 17 | VEC as u32;
const MASKED: u32 = 1 << 16;

const DISARM: Option<TimerAction> = Some(TimerAction::Disarm);

fn arm(t: Tsc) -> Option<TimerAction> {
    Some(TimerAction::Arm(t))
}

fn timer(t: Option<TimerAction>) -> Effects {
    Effects { timer: t, ..Effects::NONE }
}

fn timer_wake(t: Option<TimerAction>) -> Effects {
    Effects { timer: t, wake: true, ..Effects::NONE }
}

/// A software-enabled xAPIC.
fn apic(cfg: Config) -> Vlapic {
    let mut a = Vlapic::new(cfg, 0, 0, true).unwrap();
    let _ = w(&mut a, SVR, 0x1ff, 0);
    a
}

fn w(a: &mut Vlapic, off: u64, v: u32, now: Tsc) -> Effects {
    a.mmio_write(DEFAULT_BASE + off, 4, v as u64, now).expect("xAPIC page")
}

fn r(a: &mut Vlapic, off: u64, now: Tsc) -> u32 {
    a.mmio_read(DEFAULT_BASE + off, 4, now).expect("xAPIC page") as u32
}

/// Whether the timer vector is in IRR; if so, services it (accept, EOI)
/// so that the next interrupt is seen afresh.
fn take_fire(a: &mut Vlapic) -> bool {
    let fired = a.vectors().0.get(VEC);
    if fired {
        assert!(a.accept_interrupt(VEC));
        let _ = w(a, EOI, 0, 0);
    }
    fired
}

#[test]
fn oneshot_counts_down_with_every_divisor() {
    for (dcr, div) in DIVIDE {
        let mut a = apic(CFG);
        let tick = TICKS * div;
        let t0 = 1_000 + div;
        let n = 1000u32;
        let end = t0 + n as u64 * tick;
        assert_eq!(w(&mut a, DCR, dcr, 0), Effects::NONE, "/{div}: nothing counting yet");
        assert_eq!(r(&mut a, DCR, 0), dcr);
        let _ = w(&mut a, LVT_TIMER, ONESHOT, 0);
        assert_eq!(w(&mut a, INITIAL, n, t0), timer(arm(end)), "/{div}");
        assert_eq!(r(&mut a, INITIAL, t0), n);
        for k in [0u64, 1, 2, 499, 998, 999] {
            assert_eq!(r(&mut a, CURRENT, t0 + k * tick), n - k as u32, "/{div} at count {k}");
            assert_eq!(
                r(&mut a, CURRENT, t0 + k * tick + tick - 1),
                n - k as u32,
                "/{div} just before count {k}+1"
            );
        }
        assert_eq!(r(&mut a, CURRENT, end), 0);
        assert_eq!(r(&mut a, CURRENT, end + 12_345), 0);
        // Early: nothing, and the host timer stays where it was.
        assert_eq!(a.timer_expired(end - 1), timer(arm(end)), "/{div}");
        assert!(!take_fire(&mut a));
        assert_eq!(a.timer_expired(end), timer_wake(DISARM), "/{div}");
        assert!(take_fire(&mut a));
        // One-shot: nothing more, ever.
        assert_eq!(a.timer_expired(end + 10 * tick), timer(DISARM), "/{div}");
        assert!(!take_fire(&mut a));
        assert_eq!(r(&mut a, CURRENT, end + 1), 0);
        assert_eq!(r(&mut a, INITIAL, end + 1), n, "the initial count is kept");
    }
}

#[test]
fn periodic_reloads_with_every_divisor() {
    for (dcr, div) in DIVIDE {
        let mut a = apic(CFG);
        let tick = TICKS * div;
        let (t0, n) = (777, 500u32);
        let p = n as u64 * tick;
        let _ = w(&mut a, DCR, dcr, 0);
        let _ = w(&mut a, LVT_TIMER, PERIODIC, 0);
        assert_eq!(w(&mut a, INITIAL, n, t0), timer(arm(t0 + p)), "/{div}");
        assert_eq!(r(&mut a, CURRENT, t0 + p - 1), 1, "/{div}");
        assert_eq!(r(&mut a, CURRENT, t0 + p + 3 * tick), n - 3, "/{div}: reloaded");
        assert_eq!(r(&mut a, CURRENT, t0 + 2 * p + (n as u64 - 1) * tick), 1, "/{div}");
        assert_eq!(a.timer_expired(t0 + p), timer_wake(arm(t0 + 2 * p)), "/{div}");
        assert!(take_fire(&mut a));
        // Early: no interrupt, same expiry.
        assert_eq!(a.timer_expired(t0 + 2 * p - 1), timer(arm(t0 + 2 * p)), "/{div}");
        assert!(!take_fire(&mut a));
        // Late by more than two periods: one interrupt, next expiry the
        // first period boundary after now.
        assert_eq!(a.timer_expired(t0 + 4 * p + 7), timer_wake(arm(t0 + 5 * p)), "/{div}");
        assert!(take_fire(&mut a));
        assert_eq!(
            r(&mut a, CURRENT, t0 + 4 * p + tick),
            n - 1,
            "/{div}: the count is not disturbed"
        );
    }
}

#[test]
fn periodic_expiry_is_clamped_to_min_period() {
    let mut a = apic(Config { min_period: 5_000, ..CFG });
    let _ = w(&mut a, DCR, 0b1011, 0); // divide by 1: 10 ticks a count
    let _ = w(&mut a, LVT_TIMER, PERIODIC, 0);
    assert_eq!(w(&mut a, INITIAL, 100, 0), timer(arm(1_000)));
    // Natural next expiry 2_000; no sooner than now + 5_000.
    assert_eq!(a.timer_expired(1_000), timer_wake(arm(6_000)));
    assert!(take_fire(&mut a));
    assert_eq!(r(&mut a, CURRENT, 6_500), 50, "the count runs at the real rate");
    assert_eq!(a.timer_expired(6_000), timer_wake(arm(11_000)));
    assert_eq!(a.timer_expired(1_000_300), timer_wake(arm(1_005_300)));
    // A period longer than the minimum is not touched. (The expiry due at
    // 1_005_300 is delivered by the write.)
    assert_eq!(w(&mut a, INITIAL, 1_000, 2_000_000), timer_wake(arm(2_010_000)));
    assert_eq!(a.timer_expired(2_010_000), timer_wake(arm(2_020_000)));
}

#[test]
fn masked_timer_counts_and_rearms() {
    // Divide configuration after reset: 0, divide by 2, 20 ticks a count.
    let mut a = apic(CFG);
    let _ = w(&mut a, LVT_TIMER, MASKED | PERIODIC, 0);
    assert_eq!(w(&mut a, INITIAL, 100, 0), timer(arm(2_000)));
    assert_eq!(a.timer_expired(2_000), timer(arm(4_000)), "no interrupt, but re-armed");
    assert!(!take_fire(&mut a));
    assert_eq!(r(&mut a, CURRENT, 2_500), 75);
    let fx = w(&mut a, LVT_TIMER, PERIODIC, 3_000);
    assert!(
        matches!(fx.timer, None | Some(TimerAction::Arm(4_000))),
        "unmasking leaves the expiry: {fx:?}"
    );
    assert_eq!(a.timer_expired(4_000), timer_wake(arm(6_000)));
    assert!(take_fire(&mut a));

    let mut a = apic(CFG);
    let _ = w(&mut a, LVT_TIMER, MASKED | ONESHOT, 0);
    assert_eq!(w(&mut a, INITIAL, 100, 0), timer(arm(2_000)));
    assert_eq!(a.timer_expired(2_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    assert_eq!(r(&mut a, CURRENT, 2_000), 0);

    // Software-disabled: the LVT stays masked, the timer counts on.
    let mut a = apic(CFG);
    let _ = w(&mut a, SVR, 0xff, 0);
    let _ = w(&mut a, LVT_TIMER, PERIODIC, 0);
    assert_eq!(r(&mut a, LVT_TIMER, 0), MASKED | PERIODIC);
    assert_eq!(w(&mut a, INITIAL, 100, 0), timer(arm(2_000)));
    assert_eq!(r(&mut a, CURRENT, 1_000), 50);
    assert_eq!(a.timer_expired(2_000), timer(arm(4_000)));
    assert!(!take_fire(&mut a));
}

#[test]
fn a_mode_change_disarms_the_timer() {
    // SDM "TSC-Deadline Mode": "A write to the LVT Timer Register that
    // changes the timer mode disarms the local APIC timer." Divide by 2:
    // 20 ticks a count; 1000 counts end at 20_000.
    let mut a = apic(CFG);
    let _ = w(&mut a, LVT_TIMER, ONESHOT, 0);
    assert_eq!(w(&mut a, INITIAL, 1000, 0), timer(arm(20_000)));
    // Masking and unmasking (no mode change) leaves the count alone.
    assert_eq!(w(&mut a, LVT_TIMER, MASKED | ONESHOT, 1_000).timer, None);
    assert_eq!(w(&mut a, LVT_TIMER, ONESHOT, 2_000).timer, None);
    assert_eq!(r(&mut a, CURRENT, 6_000), 700);
    // One-shot to periodic: stopped; the initial count register keeps its
    // value, and the old expiry fires nothing.
    assert_eq!(w(&mut a, LVT_TIMER, PERIODIC, 6_007).timer, DISARM);
    assert_eq!(r(&mut a, CURRENT, 6_007), 0);
    assert_eq!(r(&mut a, INITIAL, 6_007), 1000);
    assert_eq!(a.timer_expired(20_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    // A new initial count starts it in the new mode: periodic reloads.
    assert_eq!(w(&mut a, INITIAL, 1000, 30_000), timer(arm(50_000)));
    assert_eq!(a.timer_expired(50_000), timer_wake(arm(70_000)));
    assert!(take_fire(&mut a));
    assert_eq!(r(&mut a, CURRENT, 50_200), 990);
    // Periodic to one-shot: stopped again.
    assert_eq!(w(&mut a, LVT_TIMER, ONESHOT, 55_000).timer, DISARM);
    assert_eq!(r(&mut a, CURRENT, 55_000), 0);
    assert_eq!(a.timer_expired(70_000), timer(DISARM));
    assert!(!take_fire(&mut a));
}

#[test]
fn tsc_deadline_transitions_disarm_and_clear() {
    let mut a = apic(CFG);
    let _ = w(&mut a, LVT_TIMER, ONESHOT, 0);
    assert_eq!(w(&mut a, INITIAL, 1000, 0), timer(arm(20_000)));
    // Outside TSC-deadline mode the MSR reads 0 and ignores writes.
    assert_eq!(a.rdmsr(TSC_DEADLINE, 10), Ok(0));
    assert_eq!(a.wrmsr(TSC_DEADLINE, 5_000, 10), Ok(Effects::NONE));
    assert_eq!(a.rdmsr(TSC_DEADLINE, 10), Ok(0));
    // One-shot -> TSC-deadline: disarmed.
    assert_eq!(w(&mut a, LVT_TIMER, DEADLINE, 100), timer(DISARM));
    assert_eq!(r(&mut a, CURRENT, 100), 0);
    assert_eq!(a.rdmsr(TSC_DEADLINE, 100), Ok(0));
    assert_eq!(a.timer_expired(20_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    // Initial-count writes are ignored; the current count reads 0.
    let initial = r(&mut a, INITIAL, 200);
    assert_eq!(w(&mut a, INITIAL, 777, 200), Effects::NONE);
    assert_eq!(r(&mut a, INITIAL, 200), initial);
    assert_eq!(r(&mut a, CURRENT, 300), 0);
    // Armed by the MSR.
    assert_eq!(a.wrmsr(TSC_DEADLINE, 9_000, 300), Ok(timer(arm(9_000))));
    assert_eq!(a.rdmsr(TSC_DEADLINE, 300), Ok(9_000));
    assert_eq!(r(&mut a, CURRENT, 400), 0);
    // Masking is not a mode change.
    let fx = w(&mut a, LVT_TIMER, MASKED | DEADLINE, 400);
    assert!(matches!(fx.timer, None | Some(TimerAction::Arm(9_000))), "{fx:?}");
    assert_eq!(a.rdmsr(TSC_DEADLINE, 400), Ok(9_000));
    let _ = w(&mut a, LVT_TIMER, DEADLINE, 450);
    // TSC-deadline -> periodic: disarmed, MSR cleared, not counting.
    assert_eq!(w(&mut a, LVT_TIMER, PERIODIC, 500), timer(DISARM));
    assert_eq!(a.rdmsr(TSC_DEADLINE, 500), Ok(0));
    assert_eq!(r(&mut a, CURRENT, 600), 0);
    assert_eq!(a.timer_expired(9_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    // Back to TSC-deadline: the old deadline is gone.
    let fx = w(&mut a, LVT_TIMER, DEADLINE, 700);
    assert!(matches!(fx.timer, None | DISARM), "{fx:?}");
    assert_eq!(a.rdmsr(TSC_DEADLINE, 700), Ok(0));
    // Periodic counting -> TSC-deadline: disarmed too.
    let _ = w(&mut a, LVT_TIMER, PERIODIC, 800);
    assert_eq!(w(&mut a, INITIAL, 10, 800), timer(arm(1_000)));
    assert_eq!(w(&mut a, LVT_TIMER, DEADLINE, 900), timer(DISARM));
    assert_eq!(a.timer_expired(1_000), timer(DISARM));
    assert!(!take_fire(&mut a));
}

#[test]
fn tsc_deadline_fires_once_and_clears() {
    let mut a = apic(CFG);
    let _ = w(&mut a, LVT_TIMER, DEADLINE, 0);
    assert_eq!(a.wrmsr(TSC_DEADLINE, 50_000, 10), Ok(timer(arm(50_000))));
    assert_eq!(a.timer_expired(49_999), timer(arm(50_000)));
    assert!(!take_fire(&mut a));
    assert_eq!(a.rdmsr(TSC_DEADLINE, 49_999), Ok(50_000));
    assert_eq!(a.timer_expired(50_000), timer_wake(DISARM));
    assert!(take_fire(&mut a));
    assert_eq!(a.rdmsr(TSC_DEADLINE, 50_001), Ok(0), "cleared by firing");
    assert_eq!(a.timer_expired(60_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    // Writing 0 disarms.
    assert_eq!(a.wrmsr(TSC_DEADLINE, 70_000, 65_000), Ok(timer(arm(70_000))));
    assert_eq!(a.wrmsr(TSC_DEADLINE, 0, 66_000), Ok(timer(DISARM)));
    assert_eq!(a.timer_expired(70_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    // A deadline already past: armed for it, fires at once.
    assert_eq!(a.wrmsr(TSC_DEADLINE, 100, 80_000), Ok(timer(arm(100))));
    assert_eq!(a.timer_expired(80_000), timer_wake(DISARM));
    assert!(take_fire(&mut a));
    // A rewrite moves the deadline.
    assert_eq!(a.wrmsr(TSC_DEADLINE, 95_000, 81_000), Ok(timer(arm(95_000))));
    assert_eq!(a.wrmsr(TSC_DEADLINE, 85_000, 82_000), Ok(timer(arm(85_000))));
    assert_eq!(a.timer_expired(85_000), timer_wake(DISARM));
    assert!(take_fire(&mut a));
    // Masked: no interrupt, but it still disarms and clears.
    let _ = w(&mut a, LVT_TIMER, MASKED | DEADLINE, 86_000);
    assert_eq!(a.wrmsr(TSC_DEADLINE, 90_000, 86_000), Ok(timer(arm(90_000))));
    assert_eq!(a.timer_expired(90_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    assert_eq!(a.rdmsr(TSC_DEADLINE, 90_000), Ok(0));
}

#[test]
fn divide_change_mid_count_continues_from_the_current_count() {
    for periodic in [false, true] {
        for (old_dcr, old) in DIVIDE {
            for (new_dcr, new) in DIVIDE {
                let what = format!("periodic {periodic}, /{old} -> /{new}");
                let mut a = apic(CFG);
                let _ = w(&mut a, DCR, old_dcr, 0);
                let _ = w(&mut a, LVT_TIMER, if periodic { PERIODIC } else { ONESHOT }, 0);
                assert_eq!(w(&mut a, INITIAL, 1000, 0), timer(arm(1000 * TICKS * old)), "{what}");
                let t1 = 400 * TICKS * old;
                let end = t1 + 600 * TICKS * new;
                assert_eq!(w(&mut a, DCR, new_dcr, t1), timer(arm(end)), "{what}");
                assert_eq!(r(&mut a, CURRENT, t1), 600, "{what}");
                assert_eq!(r(&mut a, CURRENT, t1 + 100 * TICKS * new), 500, "{what}");
                let next = if periodic { arm(end + 1000 * TICKS * new) } else { DISARM };
                assert_eq!(a.timer_expired(end), timer_wake(next), "{what}");
                assert!(take_fire(&mut a));
            }
        }
    }
}

#[test]
fn initial_count_writes_start_restart_and_stop() {
    // Divide by 2: 20 ticks a count.
    let mut a = apic(CFG);
    let _ = w(&mut a, LVT_TIMER, ONESHOT, 0);
    assert_eq!(w(&mut a, INITIAL, 1000, 0), timer(arm(20_000)));
    // "A write of 0 to the initial-count register effectively stops the
    // local APIC timer."
    assert_eq!(w(&mut a, INITIAL, 0, 500), timer(DISARM));
    assert_eq!(r(&mut a, CURRENT, 600), 0);
    assert_eq!(a.timer_expired(20_000), timer(DISARM));
    assert!(!take_fire(&mut a));
    // A new initial count restarts from it, at once.
    assert_eq!(w(&mut a, INITIAL, 200, 21_000), timer(arm(25_000)));
    assert_eq!(w(&mut a, INITIAL, 300, 22_000), timer(arm(28_000)));
    assert_eq!(r(&mut a, CURRENT, 22_020), 299);
    // The host timer still set for the old expiry: nothing, same new expiry.
    assert_eq!(a.timer_expired(25_000), timer(arm(28_000)));
    assert!(!take_fire(&mut a));
    // An expiry the host timer has not reported yet is delivered before a
    // write changes the timer.
    let fx = w(&mut a, INITIAL, 50, 28_500);
    assert_eq!(fx, timer_wake(arm(29_500)));
    assert!(take_fire(&mut a));
    assert_eq!(a.timer_expired(29_500), timer_wake(DISARM));
    assert!(take_fire(&mut a));
}

#[test]
fn x2apic_timer_through_msrs() {
    let mut a = apic(CFG);
    assert!(a.set_apic_base(a.apic_base() | BASE_EXTD, Origin::Guest).is_ok());
    assert_eq!(a.wrmsr(0x83e, 0b1011, 0), Ok(Effects::NONE));
    let fx = a.wrmsr(0x832, PERIODIC as u64, 0).unwrap();
    assert!(matches!(fx.timer, None | DISARM), "nothing counting: {fx:?}");
    assert_eq!(a.wrmsr(0x838, 100, 50), Ok(timer(arm(1_050))));
    assert_eq!(a.rdmsr(0x839, 550), Ok(50));
    assert!(a.wrmsr(0x839, 1, 600).is_err(), "the current count is read-only");
    assert_eq!(a.timer_expired(1_050), timer_wake(arm(2_050)));
    assert!(a.vectors().0.get(VEC));
}

#[test]
fn no_tsc_deadline_mode_without_the_cpuid_bit() {
    // CPUID.01H:ECX.TSC_Deadline = 0: LVT timer bit 18 is reserved and
    // IA32_TSC_DEADLINE does not exist.
    let mut a = apic(Config { tsc_deadline: false, ..CFG });
    assert!(a.rdmsr(TSC_DEADLINE, 0).is_err());
    assert!(a.wrmsr(TSC_DEADLINE, 1_000, 0).is_err());
    let _ = w(&mut a, LVT_TIMER, DEADLINE, 0);
    assert_eq!(r(&mut a, LVT_TIMER, 0), ONESHOT, "bit 18 does not stick");
    assert_eq!(w(&mut a, INITIAL, 100, 0), timer(arm(2_000)), "still a counting timer");
}
