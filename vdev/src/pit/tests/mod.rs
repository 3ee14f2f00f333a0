// SPDX-License-Identifier: GPL-2.0

//! Host tests of the PIT against the Intel 8254 datasheet (231164), the
//! PC's port 0x61, and the sequences Linux uses (`arch/x86/kernel/tsc.c`
//! `pit_calibrate_tsc` and `quick_pit_calibrate`, `drivers/clocksource/
//! i8253.c`). Counts and OUT are observed through the ports, mostly with
//! the read-back command, at the middle of a clock (edges are 838.1 ns
//! apart; [`mid`] is 400 ns after one).
//!
//! This file: the clock, the port map, the control word, access modes and
//! flip-flops, the latch and read-back commands, null count, totality.

mod irq;
mod modes;
mod snapshot;

use super::super::common::NANOS_PER_SEC;
use super::regs::*;
use super::*;

/// The clock edge most tests start from (about 0.84 s into the VM).
const W: u64 = 1_000_000;

/// A time strictly between edges `k` and `k + 1`.
fn mid(k: u64) -> Nanos {
    time_of(k) + 400
}

/// A programming control word.
fn cw(ch: u8, access: u8, mode: u8, bcd: bool) -> u8 {
    ch << CW_SELECT_SHIFT | access << CW_ACCESS_SHIFT | mode << CW_MODE_SHIFT | u8::from(bcd)
}

/// Counter `ch`'s data port.
fn port(ch: u8) -> u16 {
    PORT_COUNTER0 + u16::from(ch)
}

/// Programs `ch` (two-byte access) and writes `count`, all at `mid(k)`;
/// returns the effects of the last write.
fn start(p: &mut Pit, ch: u8, mode: u8, bcd: bool, count: u16, k: u64) -> Effects {
    let _ = p.write(PORT_CONTROL, cw(ch, ACCESS_WORD, mode, bcd), mid(k));
    load(p, ch, count, k)
}

/// Writes a two-byte count to `ch` at `mid(k)`.
fn load(p: &mut Pit, ch: u8, count: u16, k: u64) -> Effects {
    let [lo, hi] = count.to_le_bytes();
    let _ = p.write(port(ch), lo, mid(k));
    p.write(port(ch), hi, mid(k))
}

/// Read-back of `ch`'s count and status at `mid(k)`, read in the order
/// the datasheet gives (status, LSB, MSB).
fn readback(p: &mut Pit, ch: u8, k: u64) -> (u16, u8) {
    let _ = p.write(PORT_CONTROL, 0xc0 | 2 << ch, mid(k));
    let status = p.read(port(ch), mid(k));
    let lo = p.read(port(ch), mid(k));
    let hi = p.read(port(ch), mid(k));
    (u16::from_le_bytes([lo, hi]), status)
}

/// Checks `(clocks after w, count, OUT)` rows at the middle of each clock.
fn expect_seq(p: &mut Pit, ch: u8, w: u64, rows: &[(u64, u16, bool)], what: &str) {
    for &(dk, count, out) in rows {
        let (c, s) = readback(p, ch, w + dk);
        assert_eq!(
            (c, s & STATUS_OUT != 0),
            (count, out),
            "{what}: {dk} clocks after the write, count {c:#06x}, status {s:#04x}"
        );
    }
}

#[test]
fn the_clock_is_105_88_mhz_on_one_grid() {
    // 1 s holds 1_193_181.8 clocks; 88 µs exactly 105.
    assert_eq!(clock_at(NANOS_PER_SEC), 1_193_181);
    assert_eq!(clock_at(88_000), 105);
    assert_eq!(time_of(105), 88_000);
    assert_eq!(time_of(1), 839, "838.095 ns, rounded up");
    assert_eq!(time_of(1_193_182), 1_000_000_153);
    for k in [1u64, 2, 104, 105, 106, W, 1 << 40, u64::MAX / 100_000] {
        assert_eq!(clock_at(time_of(k)), k, "edge {k}");
        assert_eq!(clock_at(time_of(k) - 1), k - 1, "just before edge {k}");
        assert!(mid(k) < time_of(k + 1));
    }
    assert_eq!(time_of(u64::MAX), u64::MAX, "saturates");
    assert_eq!(clock_at(u64::MAX), 22_010_319_633_403_442);
}

#[test]
fn control_words_decode_as_the_datasheet_lays_them_out() {
    use Channel::*;
    // (byte, command): SC bits 7:6, RW 5:4, M 3:1, BCD 0.
    let rows = [
        (0x34, Command::Program { channel: C0, control: 0x34 }),
        (0x36, Command::Program { channel: C0, control: 0x36 }),
        (0x54, Command::Program { channel: C1, control: 0x14 }),
        (0xb0, Command::Program { channel: C2, control: 0x30 }),
        (0xbd, Command::Program { channel: C2, control: 0x3d }),
        (0x00, Command::Latch { channel: C0 }),
        (0x4f, Command::Latch { channel: C1 }),
        (0x80, Command::Latch { channel: C2 }),
        (0xc2, Command::ReadBack { count: true, status: true, select: 0x02 }),
        (0xe4, Command::ReadBack { count: false, status: true, select: 0x04 }),
        (0xd8, Command::ReadBack { count: true, status: false, select: 0x08 }),
        (0xff, Command::ReadBack { count: false, status: false, select: 0x0e }),
    ];
    for (byte, cmd) in rows {
        assert_eq!(Command::decode(byte), cmd, "{byte:#04x}");
    }
    // M: 6 and 7 are modes 2 and 3.
    let modes = [
        Mode::TerminalCount,
        Mode::OneShot,
        Mode::RateGenerator,
        Mode::SquareWave,
        Mode::SoftwareStrobe,
        Mode::HardwareStrobe,
        Mode::RateGenerator,
        Mode::SquareWave,
    ];
    for (m, mode) in (0u8..).zip(modes) {
        assert_eq!(Mode::from_control(m << 1), mode, "M = {m}");
    }
}

#[test]
fn power_up_state() {
    let mut p = Pit::new();
    // Mode 0, RW = 3, no count: OUT low, null count.
    for ch in 0..3 {
        assert_eq!(readback(&mut p, ch, W), (0, 0x70), "counter {ch}");
    }
    assert_eq!(p.read(PORT_SYSTEM_B, mid(W)) & !SYSB_REFRESH, 0, "gate 2, speaker, OUT 2 low");
    assert_eq!(p.timer_expired(mid(W)), Effects { irq0: None, timer: Some(TimerAction::Disarm) });
}

#[test]
fn unknown_ports_and_the_control_port_read_fixed_values() {
    let mut p = Pit::new();
    assert_eq!(p.read(PORT_CONTROL, 0), 0);
    for port in [0x3f, 0x44, 0x47, 0x60, 0x62, 0x00, 0xffff] {
        assert_eq!(p.read(port, 0), OPEN_BUS, "{port:#x}");
        assert_eq!(p.write(port, 0x5a, 0), Effects::NONE, "{port:#x}");
    }
    assert_eq!(p, Pit::new(), "nothing changed");
}

#[test]
fn port_61_gate_speaker_out2_and_refresh() {
    let mut p = Pit::new();
    // Bits 0 and 1 are kept; 2, 3, 6, 7 are not modelled and read 0.
    for (value, kept) in [(0xff, 0x03), (0x01, 0x01), (0x02, 0x02), (0xfc, 0x00)] {
        let _ = p.write(PORT_SYSTEM_B, value, mid(0));
        assert_eq!(p.read(PORT_SYSTEM_B, mid(0)), kept, "wrote {value:#04x}");
    }
    // The refresh toggle flips every 18 clocks (15.085 µs).
    let rows =
        [(0, 0), (17, 0), (18, SYSB_REFRESH), (35, SYSB_REFRESH), (36, 0), (54, SYSB_REFRESH)];
    for (k, bit) in rows {
        assert_eq!(p.read(PORT_SYSTEM_B, time_of(k)) & SYSB_REFRESH, bit, "edge {k}");
        assert_eq!(p.read(PORT_SYSTEM_B, mid(k)) & SYSB_REFRESH, bit, "mid {k}");
    }
    assert_eq!(time_of(18), 15_086, "15.085 µs");
    // Bit 5 follows counter 2's OUT: mode 0 with count 2, gate high.
    let _ = p.write(PORT_SYSTEM_B, SYSB_GATE2, mid(W));
    let _ = start(&mut p, 2, 0, false, 2, W);
    for (dk, out) in [(0, 0), (1, 0), (2, 0), (3, SYSB_OUT2), (9, SYSB_OUT2)] {
        assert_eq!(p.read(PORT_SYSTEM_B, mid(W + dk)) & SYSB_OUT2, out, "+{dk}");
    }
}

#[test]
fn access_modes_lsb_msb_and_word() {
    let mut p = Pit::new();
    // Mode 2 so the count is easy to predict: it reads n at the load edge.
    let latch = cw(1, ACCESS_LATCH, 0, false);
    // LSB only: the MSB is written as 0; a read gives the LSB, and one
    // read releases a latch.
    let _ = p.write(PORT_CONTROL, cw(1, ACCESS_LSB, 2, false), mid(W));
    let _ = p.write(port(1), 0x34, mid(W));
    let _ = p.write(PORT_CONTROL, latch, mid(W + 1));
    assert_eq!(p.read(port(1), mid(W + 2)), 0x34, "latched at the load edge");
    assert_eq!(p.read(port(1), mid(W + 2)), 0x33, "live");
    assert_eq!(p.read(port(1), mid(W + 2)), 0x33, "live, no flip-flop");
    // MSB only: the LSB is written as 0; reads give the MSB.
    let _ = p.write(PORT_CONTROL, cw(1, ACCESS_MSB, 2, false), mid(W + 10));
    let _ = p.write(port(1), 0x12, mid(W + 10));
    let _ = p.write(PORT_CONTROL, latch, mid(W + 11));
    assert_eq!(p.read(port(1), mid(W + 11)), 0x12, "latched 0x1200");
    assert_eq!(p.read(port(1), mid(W + 12)), 0x11, "live 0x11ff");
    // Word: the write flip-flop takes LSB then MSB.
    let _ = p.write(PORT_CONTROL, cw(1, ACCESS_WORD, 2, false), mid(W + 20));
    let _ = p.write(port(1), 0x78, mid(W + 20));
    assert_eq!(readback(&mut p, 1, W + 21).1 & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
    let _ = p.write(port(1), 0x56, mid(W + 21));
    assert_eq!(readback(&mut p, 1, W + 22).0, 0x5678);
    // The read flip-flop alternates LSB and MSB of the live count.
    let v = 0x5678 - 2;
    assert_eq!(p.read(port(1), mid(W + 24)), (v & 0xff) as u8);
    assert_eq!(p.read(port(1), mid(W + 24)), (v >> 8) as u8);
}

#[test]
fn read_and_write_flip_flops_are_separate() {
    // Datasheet "Read Operations": reads and writes of one counter may be
    // interleaved (read LSB, write LSB, read MSB, write MSB). Mode 0 also
    // stops counting once the first byte of a new count is written.
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 0, false, 0x1234, W);
    assert_eq!(p.read(port(1), mid(W + 3)), 0x32, "LSB of 0x1232");
    let _ = p.write(port(1), 0x78, mid(W + 3));
    assert_eq!(p.read(port(1), mid(W + 40)), 0x12, "MSB of the stopped 0x1232");
    // Null count rises with the second byte only (datasheet note).
    assert_eq!(readback(&mut p, 1, W + 40), (0x1232, 0x30), "stopped, OUT low");
    let _ = p.write(port(1), 0x56, mid(W + 41));
    assert_eq!(readback(&mut p, 1, W + 42).0, 0x5678, "new count loaded at the next edge");
}

#[test]
fn counter_latch_command() {
    let mut p = Pit::new();
    let _ = start(&mut p, 1, 2, false, 1000, W);
    let latch = cw(1, ACCESS_LATCH, 0, false);
    // Latched at W+11 (count 990); a second latch before reading is
    // ignored; the count stays latched until both bytes are read.
    let _ = p.write(PORT_CONTROL, latch, mid(W + 11));
    let _ = p.write(PORT_CONTROL, latch, mid(W + 21));
    assert_eq!(p.read(port(1), mid(W + 30)), (990 & 0xff) as u8);
    assert_eq!(p.read(port(1), mid(W + 31)), (990 >> 8) as u8);
    // Released: the next reads follow the counter again.
    assert_eq!(p.read(port(1), mid(W + 41)), (960 & 0xff) as u8);
    assert_eq!(p.read(port(1), mid(W + 41)), (960 >> 8) as u8);
    // A control word discards a latched count.
    let _ = p.write(PORT_CONTROL, latch, mid(W + 50));
    let _ = start(&mut p, 1, 2, false, 500, W + 51);
    assert_eq!(readback(&mut p, 1, W + 52).0, 500);
    // The latch command does not reprogram: status still says mode 2.
    assert_eq!(readback(&mut p, 1, W + 53).1, 0x80 | 0x34);
}

#[test]
fn read_back_command_follows_the_datasheet_example() {
    // Datasheet table "Read-Back Command Example", issued with no reads in
    // between, then read out: what each command latched (or not).
    let mut p = Pit::new();
    let _ = p.write(PORT_SYSTEM_B, SYSB_GATE2, mid(W));
    let _ = start(&mut p, 0, 2, false, 50_000, W);
    let _ = start(&mut p, 1, 2, false, 50_000, W);
    let _ = start(&mut p, 2, 2, false, 50_000, W);
    let cmds = [
        (0xc2, 10), // count and status of counter 0
        (0xe4, 20), // status of counter 1
        (0xec, 30), // status of counters 2 and 1: only 2's is latched
        (0xd8, 40), // count of counter 2
        (0xc4, 50), // count and status of counter 1: only the count
        (0xe2, 60), // status of counter 0: ignored, already latched
    ];
    for (cmd, dk) in cmds {
        let _ = p.write(PORT_CONTROL, cmd, mid(W + dk));
    }
    // Counting since W+1 from 50_000: at W+dk the count is 50_001 - dk.
    let expect = [(0, 10), (1, 50), (2, 40)];
    for (ch, dk) in expect {
        let k = W + 1000;
        assert_eq!(p.read(port(ch), mid(k)), 0xb4, "counter {ch}: status (OUT high, mode 2)");
        let lo = p.read(port(ch), mid(k));
        let hi = p.read(port(ch), mid(k));
        assert_eq!(u16::from_le_bytes([lo, hi]), 50_001 - dk as u16, "counter {ch}");
        // Then the live count again (status latched once only).
        let lo = p.read(port(ch), mid(k));
        let hi = p.read(port(ch), mid(k));
        assert_eq!(u16::from_le_bytes([lo, hi]), 50_001 - 1000, "counter {ch} live");
    }
}

#[test]
fn status_byte_null_count_and_mode_as_written() {
    let mut p = Pit::new();
    // Mode 6 is mode 2, but the status repeats the control word's bits.
    let _ = p.write(PORT_CONTROL, 0x7c, mid(W));
    assert_eq!(readback(&mut p, 1, W).1, 0x80 | 0x40 | 0x3c, "OUT high, null count");
    let _ = load(&mut p, 1, 100, W + 1);
    assert_eq!(readback(&mut p, 1, W + 1).1, 0xc0 | 0x3c, "written, not loaded yet");
    assert_eq!(readback(&mut p, 1, W + 2), (100, 0x80 | 0x3c), "loaded at edge W+2");
    // A new count while counting: null until the end of the period.
    let _ = load(&mut p, 1, 60, W + 10);
    assert_eq!(readback(&mut p, 1, W + 101).1 & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
    assert_eq!(readback(&mut p, 1, W + 102), (60, 0x80 | 0x3c));
    // BCD shows in bit 0.
    let _ = p.write(PORT_CONTROL, cw(1, ACCESS_LSB, 3, true), mid(W + 200));
    assert_eq!(readback(&mut p, 1, W + 200).1, 0x80 | 0x40 | 0x17);
}

#[test]
fn every_access_is_total() {
    // Every port near ours, every value, interleaved with reads, at times
    // up to the end of the clock: nothing panics, reads stay bytes.
    let mut p = Pit::new();
    let ports = [0x40u16, 0x41, 0x42, 0x43, 0x61, 0x44, 0x60, 0xffff];
    let mut t: Nanos = 0;
    for v in 0..=255u8 {
        for &port in &ports {
            t += 397;
            let _ = p.write(port, v, t);
            let _ = p.read(port, t);
            let _ = p.read(0x40 + u16::from(v % 4), t);
            let _ = p.timer_expired(t);
        }
    }
    for t in [u64::MAX - 1_000_000, u64::MAX - 1, u64::MAX] {
        for v in [0x30u8, 0x34, 0x36, 0x38, 0xb0, 0xb2, 0xbe, 0x00, 0xff, 0xc2] {
            let _ = p.write(PORT_CONTROL, v, t);
            let _ = p.write(0x40, 0, t);
            let _ = p.write(0x40, 0, t);
            let _ = p.write(0x61, v, t);
            let _ = p.write(0x42, 1, t);
            let _ = p.read(0x40, t);
            let _ = p.read(0x42, t);
            let _ = p.timer_expired(t);
        }
    }
    // And a clock that goes backwards gives some answer too.
    let _ = p.write(PORT_CONTROL, 0x34, 1_000);
    let _ = p.read(0x40, 0);
    let _ = p.timer_expired(0);
}
