// SPDX-License-Identifier: GPL-2.0

//! Every mode's count and OUT, clock by clock, against the datasheet's
//! "Mode Definitions" and waveforms; BCD; counts written while counting;
//! the gate; Linux's TSC calibrations on counter 2.
//!
//! Rows are `(clocks after the write at mid(W), count, OUT)`. The count
//! written at `mid(W)` is loaded at edge `W + 1` ("on the next CLK pulse";
//! that pulse does not count).

use super::*;

/// Counter 2's gate through port 0x61 (speaker off).
fn gate(p: &mut Pit, high: bool, k: u64) {
    let _ = p.write(PORT_SYSTEM_B, u8::from(high), mid(k));
}

#[test]
fn mode0_interrupt_on_terminal_count() {
    // OUT low from the control word, high N + 1 clocks after the count is
    // written, and high from then on while the count wraps to FFFF.
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 0, false, 3, W);
    let rows = [
        (0, 0x0000, false), // not loaded yet: the CE as it was
        (1, 3, false),
        (2, 2, false),
        (3, 1, false),
        (4, 0, true),
        (5, 0xffff, true),
        (6, 0xfffe, true),
        (65_540, 0, true), // wrapped once: no second terminal count
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 0, N = 3");
}

#[test]
fn mode1_hardware_retriggerable_one_shot() {
    // Counter 2, gate low. Armed by the count; each gate rising edge loads
    // it at the next clock and takes OUT low until zero. The gate level
    // does not stop counting.
    let mut p = Pit::new();
    let _ = start(&mut p, 2, 1, false, 3, W);
    expect_seq(&mut p, 2, W, &[(0, 0, true), (9, 0, true)], "mode 1 before a trigger");
    gate(&mut p, true, W + 10);
    let rows = [
        (10, 0, true),
        (11, 3, false),
        (12, 2, false),
        (13, 1, false),
        (14, 0, true),
        (15, 0xffff, true),
    ];
    expect_seq(&mut p, 2, W, &rows, "mode 1, triggered at W+10");
    gate(&mut p, false, W + 20);
    expect_seq(&mut p, 2, W, &[(20, 0xfffa, true), (21, 0xfff9, true)], "gate low");
    gate(&mut p, true, W + 21);
    let rows = [(22, 3, false), (24, 1, false), (25, 0, true)];
    expect_seq(&mut p, 2, W, &rows, "retriggered at W+21");
    // Retriggered before zero: the one-shot starts over.
    gate(&mut p, false, W + 30);
    gate(&mut p, true, W + 30);
    expect_seq(&mut p, 2, W, &[(31, 3, false), (32, 2, false)], "triggered at W+30");
    gate(&mut p, false, W + 32);
    gate(&mut p, true, W + 32);
    let rows = [(33, 3, false), (35, 1, false), (36, 0, true)];
    expect_seq(&mut p, 2, W, &rows, "retriggered while low");
}

#[test]
fn mode2_rate_generator() {
    // OUT low for one clock when the count reaches 1, then reload.
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 2, false, 4, W);
    let rows = [
        (0, 0, true),
        (1, 4, true),
        (2, 3, true),
        (3, 2, true),
        (4, 1, false),
        (5, 4, true),
        (8, 1, false),
        (9, 4, true),
        (4_000_001, 4, true),
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 2, N = 4");
}

#[test]
fn mode3_square_wave_even_and_odd() {
    // Even N: N/2 clocks high, N/2 low, decrementing by two.
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 3, false, 6, W);
    let rows = [
        (1, 6, true),
        (2, 4, true),
        (3, 2, true),
        (4, 6, false),
        (5, 4, false),
        (6, 2, false),
        (7, 6, true),
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 3, N = 6");
    // Odd N: N - 1 loaded; (N + 1)/2 clocks high (down to 0), (N - 1)/2
    // low.
    let _ = start(&mut p, 1, 3, false, 5, W + 100);
    let rows = [
        (101, 4, true),
        (102, 2, true),
        (103, 0, true),
        (104, 4, false),
        (105, 2, false),
        (106, 4, true),
        (108, 0, true),
        (109, 4, false),
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 3, N = 5");
}

#[test]
fn mode4_software_triggered_strobe() {
    // OUT high; low for the one clock at zero, N + 1 clocks after the
    // write; no second strobe when the count wraps.
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 4, false, 3, W);
    let rows = [
        (0, 0, true),
        (1, 3, true),
        (2, 2, true),
        (3, 1, true),
        (4, 0, false),
        (5, 0xffff, true),
        (6, 0xfffe, true),
        (65_540, 0, true),
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 4, N = 3");
}

#[test]
fn mode5_hardware_triggered_strobe() {
    let mut p = Pit::new();
    let _ = start(&mut p, 2, 5, false, 3, W);
    gate(&mut p, true, W + 10);
    let rows = [
        (10, 0, true),
        (11, 3, true),
        (12, 2, true),
        (13, 1, true),
        (14, 0, false),
        (15, 0xffff, true),
    ];
    expect_seq(&mut p, 2, W, &rows, "mode 5, triggered at W+10");
    // Retriggerable: a new edge restarts the count.
    gate(&mut p, false, W + 20);
    gate(&mut p, true, W + 20);
    expect_seq(&mut p, 2, W, &[(21, 3, true), (24, 0, false), (25, 0xffff, true)], "again");
}

#[test]
fn modes_6_and_7_are_2_and_3() {
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 6, false, 4, W);
    let rows = [(1, 4, true), (4, 1, false), (5, 4, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 6");
    let _ = start(&mut p, 1, 7, false, 6, W + 10);
    let rows = [(11, 6, true), (13, 2, true), (14, 6, false), (17, 6, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 7");
}

#[test]
fn bcd_counting() {
    let mut p = Pit::new();
    // Decades borrow: 12, 11, 10, 09.
    let _ = start(&mut p, 1, 0, true, 0x0012, W);
    let rows = [
        (1, 0x0012, false),
        (2, 0x0011, false),
        (3, 0x0010, false),
        (4, 0x0009, false),
        (13, 0x0000, true),
        (14, 0x9999, true),
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 0 BCD 12");
    // Count 0 is 10^4 in BCD.
    let _ = start(&mut p, 1, 2, true, 0, W + 100);
    let rows =
        [(101, 0x0000, true), (102, 0x9999, true), (10_100, 0x0001, false), (10_101, 0x0000, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 2 BCD 0 = 10000");
    // Square wave in BCD: 15 is odd.
    let _ = start(&mut p, 1, 3, true, 0x0015, W + 20_000);
    let rows = [(20_001, 0x0014, true), (20_008, 0x0000, true), (20_009, 0x0014, false)];
    expect_seq(&mut p, 1, W, &rows, "mode 3 BCD 15");
    // A nibble above 9 weighs what it says: 0x1A is 20.
    let _ = start(&mut p, 1, 0, true, 0x001a, W + 30_000);
    expect_seq(&mut p, 1, W, &[(30_001, 0x0020, false)], "mode 0 BCD 0x1A");
}

#[test]
fn count_zero_is_65536_and_one_is_two_in_periodic_modes() {
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 2, false, 0, W);
    let rows = [(1, 0x0000, true), (2, 0xffff, true), (65_536, 1, false), (65_537, 0, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 2, N = 0");
    // Below the datasheet's minimum of 2: runs as 2.
    let _ = start(&mut p, 1, 2, false, 1, W + 100_000);
    let rows = [(100_001, 2, true), (100_002, 1, false), (100_003, 2, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 2, N = 1");
    let _ = start(&mut p, 1, 3, false, 1, W + 200_000);
    let rows = [(200_001, 2, true), (200_002, 2, false), (200_003, 2, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 3, N = 1");
}

#[test]
fn new_counts_while_counting() {
    let mut p = Pit::new();
    // Mode 2: the current period ends first (W+101), then 50 per period.
    let _ = start(&mut p, 1, 2, false, 100, W);
    let _ = load(&mut p, 1, 50, W + 30);
    let rows = [(31, 70, true), (100, 1, false), (101, 50, true), (150, 1, false), (151, 50, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 2, 50 written at W+30");
    // Mode 3, written in the high half: the half ends (W+51), and the new
    // count starts with its low half.
    let _ = start(&mut p, 1, 3, false, 100, W + 1000);
    let _ = load(&mut p, 1, 40, W + 1010);
    let rows = [
        (1050, 2, true),
        (1051, 40, false),
        (1052, 38, false),
        (1070, 2, false),
        (1071, 40, true),
        (1091, 40, false),
    ];
    expect_seq(&mut p, 1, W, &rows, "mode 3, 40 written in the high half");
    // Mode 3, written in the low half: the period ends (W+2101), and the
    // new count starts high.
    let _ = start(&mut p, 1, 3, false, 100, W + 2000);
    let _ = load(&mut p, 1, 40, W + 2060);
    let rows = [(2100, 2, false), (2101, 40, true), (2121, 40, false), (2141, 40, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 3, 40 written in the low half");
    // Mode 4: reloads at the next clock.
    let _ = start(&mut p, 1, 4, false, 100, W + 3000);
    let _ = load(&mut p, 1, 10, W + 3050);
    let rows = [(3050, 51, true), (3051, 10, true), (3061, 0, false), (3062, 0xffff, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 4, 10 written at W+3050");
    // Mode 0: OUT low at once, the new count at the next clock.
    let _ = start(&mut p, 1, 0, false, 5, W + 4000);
    expect_seq(&mut p, 1, W, &[(4006, 0, true)], "mode 0 reached zero");
    let _ = load(&mut p, 1, 3, W + 4010);
    let rows = [(4010, 0xfffc, false), (4011, 3, false), (4014, 0, true)];
    expect_seq(&mut p, 1, W, &rows, "mode 0, 3 written at W+4010");
}

#[test]
fn the_gate_stops_restarts_and_triggers() {
    let mut p = Pit::new();
    // Mode 0: the gate low suspends counting; high resumes it.
    gate(&mut p, true, W);
    let _ = start(&mut p, 2, 0, false, 10, W);
    gate(&mut p, false, W + 3);
    expect_seq(&mut p, 2, W, &[(3, 8, false), (20, 8, false)], "mode 0 gate low");
    gate(&mut p, true, W + 20);
    expect_seq(&mut p, 2, W, &[(21, 7, false), (27, 1, false), (28, 0, true)], "resumed");
    // Mode 0 with the gate low: loaded at the next clock, then waits.
    gate(&mut p, false, W + 100);
    let _ = start(&mut p, 2, 0, false, 10, W + 100);
    expect_seq(&mut p, 2, W, &[(101, 10, false), (500, 10, false)], "loaded, gate low");
    gate(&mut p, true, W + 500);
    expect_seq(&mut p, 2, W, &[(501, 9, false), (510, 0, true)], "counting");
    // Mode 2: the gate low forces OUT high at once and stops; its rising
    // edge reloads at the next clock.
    let _ = start(&mut p, 2, 2, false, 4, W + 1000);
    expect_seq(&mut p, 2, W, &[(1004, 1, false)], "mode 2 at 1");
    gate(&mut p, false, W + 1004);
    expect_seq(&mut p, 2, W, &[(1004, 1, true), (1008, 1, true)], "mode 2 gate low");
    gate(&mut p, true, W + 1010);
    let rows = [(1010, 1, true), (1011, 4, true), (1014, 1, false), (1015, 4, true)];
    expect_seq(&mut p, 2, W, &rows, "mode 2 restarted");
    // Mode 3 likewise, from its low half.
    let _ = start(&mut p, 2, 3, false, 6, W + 2000);
    expect_seq(&mut p, 2, W, &[(2005, 4, false)], "mode 3 low half");
    gate(&mut p, false, W + 2005);
    expect_seq(&mut p, 2, W, &[(2005, 4, true), (2009, 4, true)], "mode 3 gate low");
    gate(&mut p, true, W + 2009);
    expect_seq(&mut p, 2, W, &[(2010, 6, true), (2013, 6, false)], "mode 3 restarted");
    // Mode 4: counting suspended, no effect on OUT.
    let _ = start(&mut p, 2, 4, false, 5, W + 3000);
    gate(&mut p, false, W + 3002);
    expect_seq(&mut p, 2, W, &[(3002, 4, true), (3100, 4, true)], "mode 4 gate low");
    gate(&mut p, true, W + 3100);
    expect_seq(&mut p, 2, W, &[(3104, 0, false), (3105, 0xffff, true)], "mode 4 resumed");
}

#[test]
fn gate_edge_cases() {
    // A trigger sets a flip-flop sampled at the next clock (datasheet,
    // "Gate"): a count written after it, before that clock, is loaded.
    let mut p = Pit::new();
    let _ = p.write(PORT_CONTROL, cw(2, ACCESS_WORD, 1, false), mid(W));
    let _ = p.write(port(2), 7, mid(W));
    gate(&mut p, true, W);
    let _ = p.write(port(2), 0, mid(W));
    expect_seq(&mut p, 2, W, &[(1, 7, false), (7, 1, false), (8, 0, true)], "mode 1");
    // Mode 4: OUT low for one clock at zero even if the gate falls in it
    // ("GATE has no effect on OUT"), and no second strobe on resuming.
    let _ = start(&mut p, 2, 4, false, 3, W + 100);
    gate(&mut p, false, W + 104);
    expect_seq(&mut p, 2, W, &[(104, 0, false), (105, 0, true), (110, 0, true)], "mode 4");
    gate(&mut p, true, W + 110);
    expect_seq(&mut p, 2, W, &[(110, 0, true), (111, 0xffff, true)], "mode 4 resumed");
    // Mode 2: a gate low before the first count is loaded does not stop
    // the load ("loaded on the next CLK pulse"), only the counting.
    let _ = start(&mut p, 2, 2, false, 5, W + 200);
    gate(&mut p, false, W + 200);
    expect_seq(&mut p, 2, W, &[(201, 5, true), (209, 5, true)], "mode 2 loaded, gate low");
    let status = readback(&mut p, 2, W + 209).1;
    assert_eq!(status & STATUS_NULL_COUNT, 0, "loaded");
    gate(&mut p, true, W + 210);
    expect_seq(&mut p, 2, W, &[(211, 5, true), (215, 1, false), (216, 5, true)], "mode 2 on");
}

#[test]
fn linux_pit_calibrate_tsc() {
    // tsc.c pit_calibrate_tsc(CAL_LATCH, CAL_MS = 10): gate high, speaker
    // off; counter 2 mode 0 with 1193182 / 100 = 11931; poll port 0x61
    // bit 5 until OUT 2 rises.
    const LATCH: u16 = 11_931;
    let mut p = Pit::new();
    let t = mid(W);
    let v = p.read(PORT_SYSTEM_B, t);
    let _ = p.write(PORT_SYSTEM_B, (v & !0x02) | 0x01, t);
    let _ = p.write(PORT_CONTROL, 0xb0, t);
    let _ = p.write(PORT_COUNTER2, (LATCH & 0xff) as u8, t);
    let _ = p.write(PORT_COUNTER2, (LATCH >> 8) as u8, t);
    let rise = time_of(W + 1 + u64::from(LATCH));
    for (now, set) in [(t, false), (t + 5_000_000, false), (rise - 1, false), (rise, true)] {
        assert_eq!(p.read(PORT_SYSTEM_B, now) & 0x20 != 0, set, "at {now}");
    }
    // 11932 clocks after the write: 10.0000 ms of the 105/88 MHz clock.
    assert_eq!(rise - t, 9_999_752);
    assert_eq!(p.read(PORT_SYSTEM_B, rise) & 0x03, 0x01, "gate on, speaker off");
}

#[test]
fn linux_quick_pit_calibrate() {
    // tsc.c quick_pit_calibrate: counter 2 mode 0 from 0xffff, then
    // pit_verify_msb() pairs of unlatched reads (LSB ignored, MSB
    // compared); each MSB lasts 256 clocks.
    let mut p = Pit::new();
    let t = mid(W);
    let v = p.read(PORT_SYSTEM_B, t);
    let _ = p.write(PORT_SYSTEM_B, (v & !0x02) | 0x01, t);
    let _ = p.write(PORT_CONTROL, 0xb0, t);
    let _ = p.write(PORT_COUNTER2, 0xff, t);
    let _ = p.write(PORT_COUNTER2, 0xff, t);
    let verify_msb = |p: &mut Pit, k: u64| {
        let _ = p.read(PORT_COUNTER2, mid(k));
        p.read(PORT_COUNTER2, mid(k))
    };
    let _ = verify_msb(&mut p, W);
    for i in 0..=48u8 {
        let first = W + 1 + 256 * u64::from(i);
        assert_eq!(verify_msb(&mut p, first), 0xff - i, "first clock of MSB {:#x}", 0xff - i);
        assert_eq!(verify_msb(&mut p, first + 255), 0xff - i, "last clock of it");
    }
}
