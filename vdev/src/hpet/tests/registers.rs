// SPDX-License-Identifier: GPL-2.0

//! The register map: reset values, read-only and reserved bits,
//! capabilities, access sizes, and the write rules of Tn_CONF and the
//! comparator (specification 2.3.4 to 2.3.9).

use super::*;

/// GCAP_ID (2.3.4): REV_ID 1 (7:0), NUM_TIM_CAP 7 (12:8), COUNT_SIZE_CAP
/// (13), LEG_RT_CAP (15), VENDOR_ID 0x8086 (31:16), COUNTER_CLK_PERIOD
/// 10,000,000 fs = 0x989680 (63:32).
const GCAP: u64 = 0x0098_9680_8086_a701;
/// Tn_CONF after reset (2.3.8): PER_INT_CAP (4), SIZE_CAP (5),
/// FSB_INT_DEL_CAP (15), INT_ROUTE_CAP pins 20-23 (63:32); all
/// configuration bits 0.
const TCAP: u64 = 0x00f0_0000_0000_8030;

/// (offset, size, value after reset, what it checks).
const RESET_READS: &[(u64, u8, u64, &str)] = &[
    (0x000, 8, GCAP, "GCAP_ID, whole"),
    (0x000, 4, 0x8086_a701, "GCAP_ID low half"),
    (0x004, 4, 0x0098_9680, "GCAP_ID high half: COUNTER_CLK_PERIOD"),
    (0x000, 1, 0x01, "REV_ID byte"),
    (0x001, 1, 0xa7, "NUM_TIM_CAP 7, COUNT_SIZE_CAP, LEG_RT_CAP byte"),
    (0x002, 2, 0x8086, "VENDOR_ID word"),
    (0x004, 2, 0x9680, "period low word"),
    (0x008, 8, 0, "reserved 0x008"),
    (0x010, 8, 0, "GEN_CONF reset: halted, no legacy routing"),
    (0x018, 8, 0, "reserved 0x018"),
    (0x020, 8, 0, "GINTR_STA reset"),
    (0x028, 8, 0, "reserved 0x028"),
    (0x0e8, 8, 0, "reserved 0x0e8"),
    (0x0f0, 8, 0, "MAIN_CNT reset"),
    (0x0f8, 8, 0, "reserved 0x0f8"),
    (0x100, 8, TCAP, "T0_CONF reset"),
    (0x104, 4, 0x00f0_0000, "T0 INT_ROUTE_CAP: pins 20-23"),
    (0x108, 8, u64::MAX, "T0_COMPARATOR reset: all ones"),
    (0x10c, 4, 0xffff_ffff, "T0_COMPARATOR high half"),
    (0x110, 8, 0, "T0_FSB_ROUTE reset"),
    (0x118, 8, 0, "reserved in timer 0's set"),
    (0x1e0, 8, TCAP, "T7_CONF: the last timer"),
    (0x1e8, 8, u64::MAX, "T7_COMPARATOR"),
    (0x200, 8, 0, "T8_CONF: no such timer"),
    (0x208, 8, 0, "T8_COMPARATOR: no such timer"),
    (0x3f8, 8, 0, "last slot of the block"),
    (0x400, 8, 0, "past the block"),
    (!7, 8, 0, "far past the block"),
    (0x002, 4, 0, "misaligned 4-byte read"),
    (0x004, 8, 0, "misaligned 8-byte read"),
    (0x001, 2, 0, "misaligned 2-byte read"),
    (0x000, 3, 0, "3-byte read"),
    (0x000, 16, 0, "16-byte read"),
    (0x000, 0, 0, "0-byte read"),
];

#[test]
fn reset_values_and_access_sizes() {
    let h = Hpet::new();
    for &(off, size, want, what) in RESET_READS {
        assert_eq!(h.read(off, size, 1_000), want, "{what}: read {size} at {off:#x}");
    }
}

/// (offset, 8-byte value written to a fresh device at time 0, value read
/// back at the same offset, what it checks).
const WRITES: &[(u64, u64, u64, &str)] = &[
    (GCAP_ID, u64::MAX, GCAP, "GCAP_ID is read-only"),
    (GCAP_ID, 0, GCAP, "GCAP_ID is read-only (zeros)"),
    (GEN_CONF, u64::MAX, 0x3, "GEN_CONF: ENABLE_CNF and LEG_RT_CNF only"),
    (GEN_CONF, !0x3, 0, "GEN_CONF: bits 63:2 reserved"),
    (GINTR_STA, u64::MAX, 0, "GINTR_STA: write 1 clears; nothing set"),
    (MAIN_CNT, 0x1234_5678_9abc_def0, 0x1234_5678_9abc_def0, "MAIN_CNT writable while halted"),
    (0x008, u64::MAX, 0, "reserved stays 0"),
    (0x0f8, u64::MAX, 0, "reserved stays 0"),
    (
        0x100,
        u64::MAX,
        0x00f0_0000_0000_c17e,
        "T0_CONF: writable bits 1-3, 6, 8, 14; route 31 refused",
    ),
    (0x100, 0, TCAP, "T0_CONF: capabilities stay"),
    (0x100, route(20), TCAP | route(20), "T0_CONF: pin 20 allowed"),
    (0x100, route(23), TCAP | route(23), "T0_CONF: pin 23 allowed"),
    (0x100, route(19), TCAP, "T0_CONF: pin 19 refused, field keeps 0"),
    (0x100, route(2), TCAP, "T0_CONF: pin 2 refused"),
    (0x100, 1 << 0 | 1 << 7 | 0xffff << 16, TCAP, "T0_CONF: bits 0, 7, 31:16 reserved"),
    (0x100, 0xff << 32, TCAP, "T0_CONF: INT_ROUTE_CAP read-only"),
    (0x108, 0x1122_3344_5566_7788, 0x1122_3344_5566_7788, "T0_COMPARATOR, one-shot"),
    (0x110, 0xfee0_1000_0000_4041, 0xfee0_1000_0000_4041, "T0_FSB_ROUTE"),
    (0x1e8, 42, 42, "T7_COMPARATOR"),
    (0x200, u64::MAX, 0, "T8: no such timer"),
    (0x400, u64::MAX, 0, "past the block"),
];

#[test]
fn writes_keep_read_only_and_reserved_bits() {
    for &(off, v, want, what) in WRITES {
        let mut h = Hpet::new();
        let fx = w8(&mut h, off, v, 0);
        assert_eq!(fx.irqs, NO_IRQ, "{what}");
        assert_eq!(r8(&h, off, 0), want, "{what}");
        // The same through two 4-byte writes, low half first.
        let mut h = Hpet::new();
        let _ = w4(&mut h, off, v & LOW_HALF, 0);
        let _ = w4(&mut h, off + 4, v >> 32, 0);
        assert_eq!(r8(&h, off, 0), want, "{what} (two halves)");
    }
}

#[test]
fn odd_writes_are_dropped() {
    for (off, size) in [(0x108, 1), (0x108, 2), (0x10a, 4), (0x10c, 8), (0x108, 3), (0x108, 16)] {
        let mut h = Hpet::new();
        assert_eq!(h.write(off, size, 0, 0), Effects::NONE);
        assert_eq!(h, Hpet::new(), "write of {size} bytes at {off:#x}");
    }
}

#[test]
fn half_writes_touch_only_their_half() {
    let mut h = Hpet::new();
    let _ = w8(&mut h, timer_fsb(3), 0x1111_2222_3333_4444, 0);
    let _ = w4(&mut h, timer_fsb(3), 0xaaaa_bbbb, 0);
    assert_eq!(r8(&h, timer_fsb(3), 0), 0x1111_2222_aaaa_bbbb, "Tn_FSB_INT_VAL (low)");
    let _ = w4(&mut h, timer_fsb(3) + 4, 0xfee0_0000, 0);
    assert_eq!(r8(&h, timer_fsb(3), 0), 0xfee0_0000_aaaa_bbbb, "Tn_FSB_INT_ADDR (high)");
    // A 4-byte write uses only the low 32 bits of the value.
    let _ = w4(&mut h, MAIN_CNT + 4, 0xdead_0000_0000_0007, 0);
    assert_eq!(r8(&h, MAIN_CNT, 0), 0x7_0000_0000);
}

#[test]
fn route_refusal_keeps_the_previous_pin() {
    let mut h = Hpet::new();
    let conf = timer_conf(5);
    for (write, want, what) in [
        (route(21), 21, "allowed"),
        (route(7), 21, "pin 7 not in INT_ROUTE_CAP: unchanged"),
        (route(0), 21, "pin 0 not in INT_ROUTE_CAP: unchanged"),
        (route(24), 21, "pin 24 not in INT_ROUTE_CAP: unchanged"),
        (route(22) | TN_INT_ENB, 22, "allowed, with other bits"),
        (route(31) | TN_INT_ENB, 22, "refused, other bits still written"),
    ] {
        let _ = w4(&mut h, conf, write, 0);
        let got = r4(&h, conf, 0);
        assert_eq!((got & TN_INT_ROUTE) >> 9, want, "{what}");
        assert_eq!(got & TN_INT_ENB, write & TN_INT_ENB, "{what}: INT_ENB");
    }
}

#[test]
fn mode32_truncates_and_ignores_the_high_half() {
    let mut h = Hpet::new();
    let conf = timer_conf(2);
    let cmp = timer_comparator(2);
    let _ = w8(&mut h, cmp, 0x1234_5678_9abc_def0, 0);
    let _ = w4(&mut h, conf, TN_32MODE, 0);
    assert_eq!(r8(&h, cmp, 0), 0x9abc_def0, "32MODE_CNF cuts the comparator to 32 bits");
    let _ = w4(&mut h, cmp + 4, 0xffff_ffff, 0);
    assert_eq!(r8(&h, cmp, 0), 0x9abc_def0, "high half ignores writes in 32-bit mode");
    let _ = w8(&mut h, cmp, 0xffff_ffff_0000_0001, 0);
    assert_eq!(r8(&h, cmp, 0), 1, "an 8-byte write keeps its low half");
    assert_eq!(r4(&h, cmp + 4, 0), 0, "high half reads 0");
    let _ = w4(&mut h, conf, 0, 0);
    let _ = w4(&mut h, cmp + 4, 0x55, 0);
    assert_eq!(r8(&h, cmp, 0), 0x55_0000_0001, "64-bit again: high half writable");
}

#[test]
fn val_set_clears_after_each_comparator_write() {
    let mut h = Hpet::new();
    let conf = timer_conf(0);
    let cmp = timer_comparator(0);
    let periodic = TN_TYPE_PERIODIC | TN_VAL_SET;
    let _ = w4(&mut h, conf, periodic, 0);
    assert_eq!(r4(&h, conf, 0) & TN_VAL_SET, TN_VAL_SET, "VAL_SET reads back until used");
    let _ = w4(&mut h, cmp, 0x1000, 0);
    assert_eq!(r4(&h, conf, 0) & TN_VAL_SET, 0, "cleared by the comparator write");
    assert_eq!(r8(&h, cmp, 0), 0xffff_ffff_0000_1000, "low half of the accumulator set");
    // Without VAL_SET a periodic write sets only the increment.
    let _ = w4(&mut h, cmp + 4, 0, 0);
    assert_eq!(r8(&h, cmp, 0), 0xffff_ffff_0000_1000, "accumulator untouched");
    // Intel's sequence: VAL_SET, low half, VAL_SET, high half.
    let _ = w4(&mut h, conf, periodic, 0);
    let _ = w4(&mut h, cmp, 0x2000, 0);
    let _ = w4(&mut h, conf, periodic, 0);
    let _ = w4(&mut h, cmp + 4, 0x3, 0);
    assert_eq!(r8(&h, cmp, 0), 0x3_0000_2000);
    // One-shot: every write sets the comparator, VAL_SET or not.
    let _ = w4(&mut h, conf, 0, 0);
    let _ = w8(&mut h, cmp, 77, 0);
    assert_eq!(r8(&h, cmp, 0), 77);
}
