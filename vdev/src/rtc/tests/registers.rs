// SPDX-License-Identifier: GPL-2.0

//! Ports, register read/write behaviour and NVRAM, against the data sheet
//! ("Registers", "Register A" to "Register D") and the PC/AT CMOS map.

use super::*;

#[test]
fn index_port_selects_a_byte_and_bit_7_masks_nmi() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let _ = wr(&mut rtc, 0x40, 0xa5, T0);
    // Bit 7 of the index is the NMI mask, not part of the index.
    assert_eq!(rtc.write(PORT_INDEX, 0x80 | 0x40, T0), Effects::NONE);
    assert!(rtc.nmi_disabled());
    assert_eq!(rtc.read(PORT_DATA, T0).0, 0xa5, "index 0x40 despite bit 7");
    assert_eq!(rtc.write(PORT_INDEX, 0x40, T0), Effects::NONE);
    assert!(!rtc.nmi_disabled());
    assert_eq!(rtc.read(PORT_DATA, T0).0, 0xa5);
    // The index stays selected across data accesses (no auto-increment).
    assert_eq!(rtc.read(PORT_DATA, T0).0, 0xa5);
}

#[test]
fn other_ports_read_open_bus_and_ignore_writes() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let before = rtc.snapshot();
    for port in [PORT_INDEX, 0x72, 0x73, 0x61, 0x00, 0xffff] {
        assert_eq!(rtc.read(port, T0 + SEC), (0xff, Effects::NONE), "port {port:#x}");
        if port != PORT_INDEX {
            assert_eq!(rtc.write(port, 0x8b, T0 + SEC), Effects::NONE);
        }
    }
    assert_eq!(rtc.snapshot(), before, "nothing changed, not even the time base");
}

#[test]
fn register_a_stores_dv_and_rs_but_not_uip() {
    // (written, read back) away from any update: DV = 110 (divider reset)
    // reads UIP = 0 whatever is written to bit 7.
    let table: &[(u8, u8)] =
        &[(0x26, 0x26), (0xa6, 0x26), (0x20, 0x20), (0x2f, 0x2f), (0x60, 0x60), (0xff, 0x7f)];
    for &(w, r) in table {
        let mut rtc = Rtc::new(T0, LEAP_DAY);
        let _ = wr(&mut rtc, REG_A, w, T0);
        assert_eq!(rd(&mut rtc, REG_A, T0 + 100 * MS), r, "wrote {w:#04x}");
    }
}

#[test]
fn register_b_reads_back_and_set_going_high_clears_uie() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    for v in 0..=0x7fu8 {
        let _ = wr(&mut rtc, REG_B, v, T0);
        assert_eq!(rd(&mut rtc, REG_B, T0), v, "SET = 0: every bit stored");
    }
    // SET 0 -> 1 clears UIE (data sheet, UIE: "the SET bit going high
    // clears the UIE bit").
    let _ = wr(&mut rtc, REG_B, B_24H, T0);
    let _ = wr(&mut rtc, REG_B, B_SET | B_UIE | B_24H, T0);
    assert_eq!(rd(&mut rtc, REG_B, T0), B_SET | B_24H);
    // With SET already 1 it can be set again, and stays when SET clears.
    let _ = wr(&mut rtc, REG_B, B_SET | B_UIE | B_24H | B_DSE | B_SQWE, T0);
    assert_eq!(rd(&mut rtc, REG_B, T0), B_SET | B_UIE | B_24H | B_DSE | B_SQWE);
    let _ = wr(&mut rtc, REG_B, B_UIE | B_24H, T0);
    assert_eq!(rd(&mut rtc, REG_B, T0), B_UIE | B_24H);
}

#[test]
fn dse_is_stored_but_never_moves_the_clock() {
    // 2024-03-10 01:59:59 UTC: the US spring-forward instant in the
    // chip's newer rules would not apply anyway; nothing jumps.
    let mut rtc = Rtc::new(T0, 1_710_035_999);
    let _ = wr(&mut rtc, REG_B, B_24H | B_DSE, T0);
    assert_eq!(rd(&mut rtc, HOURS, T0 + SEC), 0x02);
    assert_eq!(rtc.wall_clock(T0 + SEC), Some(1_710_036_000));
}

#[test]
fn registers_c_and_d_are_read_only() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let _ = wr(&mut rtc, REG_C, 0xff, T0);
    let _ = wr(&mut rtc, REG_D, 0x00, T0);
    assert_eq!(rd(&mut rtc, REG_C, T0), 0x00);
    // D: VRT always 1, bits 6:0 read 0.
    assert_eq!(rd(&mut rtc, REG_D, T0), D_VRT);
    assert_eq!(rd(&mut rtc, REG_D, T0), D_VRT, "VRT does not clear on read");
}

#[test]
fn alarm_registers_hold_any_byte() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    for (i, index) in [SECONDS_ALARM, MINUTES_ALARM, HOURS_ALARM].into_iter().enumerate() {
        for v in [0x00, 0x59, 0x7f, 0xc0, 0xff, i as u8] {
            let _ = wr(&mut rtc, index, v, T0);
            assert_eq!(rd(&mut rtc, index, T0), v, "alarm {index:#x}");
        }
    }
}

#[test]
fn nvram_bytes_are_plain_memory() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    let nvram = || (0x0eu8..0x80).filter(|&i| i != CENTURY);
    for i in nvram() {
        assert_eq!(wr(&mut rtc, i, i ^ 0x5a, T0), Effects::NONE);
    }
    for i in nvram() {
        assert_eq!(rd(&mut rtc, i, T0 + 10 * SEC), i ^ 0x5a, "byte {i:#x}");
        assert_eq!(rtc.cmos(i), Some(i ^ 0x5a));
    }
    // The shutdown status byte the BIOS reads after a reset.
    let _ = wr(&mut rtc, 0x0f, 0x0a, T0);
    assert_eq!(rtc.cmos(0x0f), Some(0x0a));
}

#[test]
fn the_sequencer_presets_nvram_only() {
    let mut rtc = Rtc::new(T0, LEAP_DAY);
    // Base memory 640 KiB (0x15/0x16) and extended memory (0x30/0x31), as
    // a BIOS reads them.
    for (i, v) in [(0x15u8, 0x80u8), (0x16, 0x02), (0x30, 0x00), (0x31, 0xfc), (0x7f, 1)] {
        assert_eq!(rtc.set_cmos(i, v), Ok(()));
        assert_eq!(rd(&mut rtc, i, T0), v);
        assert_eq!(rtc.cmos(i), Some(v));
    }
    let clock = (0x00..=0x0du8).chain([CENTURY, 0x80, 0xff]);
    for i in clock {
        assert_eq!(rtc.set_cmos(i, 0x55), Err(NotNvram), "index {i:#x}");
        assert_eq!(rtc.cmos(i), None);
    }
    assert_eq!(rd(&mut rtc, REG_A, T0 + 100 * MS), 0x26, "register A untouched");
    assert_eq!(rtc.wall_clock(T0), Some(LEAP_DAY));
}
