// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: the six platform devices, each driven by a random list of
//! guest accesses (any port or offset, any size, any value), line
//! operations and timer expiries at random, never decreasing times. Each
//! device's snapshot is taken and restored into a fresh device after the
//! list, and the copy must snapshot the same. Any panic is a finding (the
//! models promise to be total).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vmm_vdev::{
    hpet::Hpet,
    ioapic::Ioapic,
    pic::Pic,
    pit::Pit,
    pmtimer::{PmTimer, Width},
    rtc::Rtc,
    LineOp,
};

#[derive(Arbitrary, Debug)]
enum Op {
    Port { port: u16, write: bool, value: u8 },
    Mmio { ioapic: bool, offset: u16, size: u8, write: bool, value: u64 },
    Line { isa: bool, line: u8, op: u8 },
    Eoi { vector: u8 },
    Intack,
    Expire,
    Wait { ns: u32 },
}

fn op(v: u8) -> LineOp {
    match v % 3 {
        0 => LineOp::Deassert,
        1 => LineOp::Assert,
        _ => LineOp::Pulse,
    }
}

fuzz_target!(|input: (u64, Vec<Op>)| {
    let (start, ops) = input;
    let mut now = start >> 8;
    let mut pic = Pic::new();
    let mut ioapic = Ioapic::new();
    let mut pit = Pit::new();
    let pm = PmTimer::new(Width::Bits24, now);
    let mut rtc = Rtc::new(now, start % 8_000_000_000);
    let mut hpet = Hpet::new();
    for o in ops {
        match o {
            Op::Port { port, write: false, .. } => {
                let _ = pic.read(port);
                let _ = pit.read(port, now);
                let _ = rtc.read(port, now);
                let _ = pm.read(now);
            }
            Op::Port { port, write: true, value } => {
                let _ = pic.write(port, value);
                let _ = pit.write(port, value, now);
                let _ = rtc.write(port, value, now);
            }
            Op::Mmio { ioapic: true, offset, size, write, value } => {
                let off = u64::from(offset % 0x1000);
                if write {
                    let _ = ioapic.write(off, size, value);
                } else {
                    let _ = ioapic.read(off, size);
                }
            }
            Op::Mmio { ioapic: false, offset, size, write, value } => {
                let off = u64::from(offset % 0x400);
                if write {
                    let _ = hpet.write(off, size, value, now);
                } else {
                    let _ = hpet.read(off, size, now);
                }
            }
            Op::Line { isa: true, line, op: v } => {
                let _ = pic.set_irq(line, op(v));
            }
            Op::Line { isa: false, line, op: v } => {
                let _ = ioapic.set_pin(line, op(v));
            }
            Op::Eoi { vector } => {
                let _ = ioapic.eoi(vector);
            }
            Op::Intack => {
                let _ = pic.intack();
            }
            Op::Expire => {
                let _ = pit.timer_expired(now);
                let _ = rtc.timer_expired(now);
                let _ = hpet.timer_expired(now);
            }
            Op::Wait { ns } => now = now.saturating_add(u64::from(ns) * 16),
        }
    }
    let mut p2 = Pic::new();
    let _ = p2.restore(&pic.snapshot()).expect("a PIC's own snapshot restores");
    assert_eq!(p2.snapshot(), pic.snapshot());
    let mut i2 = Ioapic::new();
    i2.restore(&ioapic.snapshot()).expect("an IOAPIC's own snapshot restores");
    assert_eq!(i2.snapshot(), ioapic.snapshot());
    let mut t2 = Pit::new();
    let _ = t2.restore(&pit.snapshot(now), now).expect("a PIT's own snapshot restores");
    assert_eq!(t2.snapshot(now), pit.snapshot(now));
    let mut m2 = PmTimer::new(Width::Bits24, now);
    m2.restore(&pm.snapshot(now), now).expect("a PM timer's own snapshot restores");
    assert_eq!(m2.read(now), pm.read(now));
    let mut r2 = Rtc::new(now, 0);
    let _ = r2.restore(&rtc.snapshot(), now).expect("an RTC's own snapshot restores");
    assert_eq!(r2.snapshot(), rtc.snapshot());
    let mut h2 = Hpet::new();
    let _ = h2.restore(&hpet.snapshot(), now).expect("an HPET's own snapshot restores");
    assert_eq!(h2.snapshot(), hpet.snapshot());
});
