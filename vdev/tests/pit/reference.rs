// SPDX-License-Identifier: GPL-2.0

//! A clock-by-clock 8254, written from the datasheet's mode descriptions
//! ("Mode Definitions", "Operation Common to All Modes", "Read
//! Operations") and independent of the model's closed forms: each counter
//! is stepped at every falling edge of CLK. [`compare_with_reference`]
//! runs random port accesses on both and compares every byte read, every
//! status, every count and every IRQ 0 edge.

use proptest::prelude::*;
use vmm_vdev::pit::regs::{clock_at, time_of};
use vmm_vdev::pit::Pit;
use vmm_vdev::Nanos;

/// One 8254 counter stepped edge by edge.
#[derive(Clone, Debug)]
struct RefCounter {
    control: u8,
    cr: u16,
    has_count: bool,
    write_lsb: Option<u8>,
    read_msb: bool,
    latched: Option<u16>,
    status: Option<u8>,
    null: bool,
    gate: bool,
    /// The gate's rising edge, sampled at the next clock.
    trigger: bool,
    /// The CE holds a count in use (else it shows `idle`).
    loaded: bool,
    idle: u16,
    ce: u32,
    /// The count in use (modes 2 and 3 reload it).
    n: u32,
    out: bool,
    /// Modes 0, 1, 4, 5: terminal count still to come.
    armed: bool,
    /// Modes 4, 5: OUT is low for this one clock.
    strobe: bool,
    /// The CR goes into the CE at the next clock.
    load_next: bool,
    /// Modes 2, 3: the CR goes in at the next reload.
    reload_new: bool,
    /// Rising edges of OUT not yet looked at.
    rises: u32,
}

impl RefCounter {
    fn new(gate: bool) -> RefCounter {
        RefCounter {
            control: 0x30,
            cr: 0,
            has_count: false,
            write_lsb: None,
            read_msb: false,
            latched: None,
            status: None,
            null: true,
            gate,
            trigger: false,
            loaded: false,
            idle: 0,
            ce: 0,
            n: 0,
            out: false,
            armed: false,
            strobe: false,
            load_next: false,
            reload_new: false,
            rises: 0,
        }
    }
    fn mode(&self) -> u8 {
        match (self.control >> 1) & 7 {
            6 => 2,
            7 => 3,
            m => m,
        }
    }
    fn bcd(&self) -> bool {
        self.control & 1 != 0
    }
    fn modulus(&self) -> u32 {
        if self.bcd() {
            10_000
        } else {
            65_536
        }
    }
    fn count(&self) -> u32 {
        let raw = u32::from(self.cr);
        let v = if self.bcd() {
            ((raw >> 12) * 1000 + (raw >> 8 & 15) * 100 + (raw >> 4 & 15) * 10 + (raw & 15))
                % 10_000
        } else {
            raw
        };
        let n = if v == 0 { self.modulus() } else { v };
        if matches!(self.mode(), 2 | 3) {
            n.max(2)
        } else {
            n
        }
    }
    fn display(&self) -> u16 {
        if !self.loaded {
            return self.idle;
        }
        let v = self.ce % self.modulus();
        if self.bcd() {
            (((v / 1000) << 12) | ((v / 100 % 10) << 8) | ((v / 10 % 10) << 4) | (v % 10)) as u16
        } else {
            v as u16
        }
    }
    fn status_byte(&self) -> u8 {
        u8::from(self.out) << 7 | u8::from(self.null) << 6 | self.control
    }
    /// The CR into the CE.
    fn load(&mut self) {
        self.n = self.count();
        self.ce = if self.mode() == 3 { self.n & !1 } else { self.n };
        self.loaded = true;
        self.null = false;
        self.load_next = false;
        self.reload_new = false;
        self.armed = true;
        self.strobe = false;
        self.out = self.mode() != 0 && self.mode() != 1;
    }
    fn reload(&mut self) {
        if self.reload_new {
            self.n = self.count();
            self.null = false;
            self.reload_new = false;
        }
        self.ce = if self.mode() == 3 { self.n & !1 } else { self.n };
    }
    fn halt(&mut self) {
        self.idle = self.display();
        self.loaded = false;
        self.load_next = false;
        self.reload_new = false;
        self.strobe = false;
        self.out = self.mode() != 0;
    }
    /// One falling edge of CLK.
    fn edge(&mut self) {
        let was = self.out;
        self.step();
        if !was && self.out {
            self.rises += 1;
        }
    }
    fn step(&mut self) {
        let mode = self.mode();
        let m = self.modulus();
        if self.strobe {
            self.strobe = false;
            self.out = true;
        }
        let trigger = std::mem::take(&mut self.trigger) && self.has_count;
        match mode {
            0 | 4 | 1 | 5 => {
                let starts = if mode == 0 || mode == 4 { self.load_next } else { trigger };
                if starts {
                    self.load();
                } else if self.loaded && (self.gate || mode == 1 || mode == 5) {
                    self.ce = (self.ce + m - 1) % m;
                    if self.ce == 0 && self.armed {
                        self.armed = false;
                        if mode == 0 || mode == 1 {
                            self.out = true;
                        } else {
                            self.out = false;
                            self.strobe = true;
                        }
                    }
                }
            }
            2 => {
                if self.load_next || trigger {
                    self.load();
                } else if self.loaded && self.gate {
                    if self.ce == 1 {
                        self.reload();
                        self.out = true;
                    } else {
                        self.ce -= 1;
                        self.out = self.ce != 1;
                    }
                }
            }
            _ => {
                if self.load_next || trigger {
                    self.load();
                } else if self.loaded && self.gate {
                    let odd = self.n % 2 == 1;
                    if self.ce == 0 {
                        // Odd count: one clock after expiring while high.
                        self.out = false;
                        self.reload();
                    } else if self.ce <= 2 {
                        if odd && self.out {
                            self.ce = 0;
                        } else {
                            self.out = !self.out;
                            self.reload();
                        }
                    } else {
                        self.ce -= 2;
                    }
                }
            }
        }
    }
    fn program(&mut self, control: u8) {
        let was = self.out;
        self.halt();
        self.control = control & 0x3f;
        self.out = self.mode() != 0;
        self.has_count = false;
        self.write_lsb = None;
        self.read_msb = false;
        self.latched = None;
        self.status = None;
        self.null = true;
        self.trigger = false;
        if !was && self.out {
            self.rises += 1;
        }
    }
    fn write(&mut self, v: u8) {
        let raw = match (self.control >> 4) & 3 {
            1 => u16::from(v),
            2 => u16::from(v) << 8,
            _ => match self.write_lsb.take() {
                Some(lo) => u16::from(lo) | u16::from(v) << 8,
                None => {
                    self.write_lsb = Some(v);
                    if self.mode() == 0 {
                        self.halt();
                    }
                    return;
                }
            },
        };
        self.cr = raw;
        self.has_count = true;
        self.null = true;
        match self.mode() {
            0 => {
                self.halt();
                self.load_next = true;
            }
            4 => self.load_next = true,
            2 | 3 => {
                if !self.loaded {
                    self.load_next = true;
                } else if self.gate {
                    self.reload_new = true;
                }
            }
            _ => {}
        }
    }
    fn read(&mut self) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        let v = self.latched.unwrap_or_else(|| self.display());
        let (byte, last) = match (self.control >> 4) & 3 {
            1 => (v as u8, true),
            2 => ((v >> 8) as u8, true),
            _ => {
                self.read_msb = !self.read_msb;
                if self.read_msb {
                    (v as u8, false)
                } else {
                    ((v >> 8) as u8, true)
                }
            }
        };
        if last {
            self.latched = None;
        }
        byte
    }
    fn set_gate(&mut self, level: bool) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        if level {
            self.trigger = matches!(self.mode(), 1 | 2 | 3 | 5);
        } else if matches!(self.mode(), 2 | 3) {
            self.out = true;
        }
    }
}

/// The whole PIT, edge by edge.
struct RefPit {
    c: [RefCounter; 3],
    speaker: bool,
    /// The last edge processed.
    k: u64,
}

impl RefPit {
    fn new() -> RefPit {
        RefPit {
            c: [RefCounter::new(true), RefCounter::new(true), RefCounter::new(false)],
            speaker: false,
            k: 0,
        }
    }
    fn advance(&mut self, now: Nanos) {
        let k = clock_at(now);
        while self.k < k {
            self.k += 1;
            for c in &mut self.c {
                c.edge();
            }
        }
    }
    fn write(&mut self, port: u16, v: u8, now: Nanos) {
        self.advance(now);
        match port {
            0x40..=0x42 => self.c[usize::from(port - 0x40)].write(v),
            0x43 => {
                let sc = v >> 6;
                if sc == 3 {
                    for (i, c) in self.c.iter_mut().enumerate() {
                        if v & (2 << i) != 0 {
                            if v & 0x20 == 0 && c.latched.is_none() {
                                c.latched = Some(c.display());
                            }
                            if v & 0x10 == 0 && c.status.is_none() {
                                c.status = Some(c.status_byte());
                            }
                        }
                    }
                } else {
                    let c = &mut self.c[usize::from(sc)];
                    if (v >> 4) & 3 == 0 {
                        if c.latched.is_none() {
                            c.latched = Some(c.display());
                        }
                    } else {
                        c.program(v);
                    }
                }
            }
            0x61 => {
                self.speaker = v & 2 != 0;
                self.c[2].set_gate(v & 1 != 0);
            }
            _ => {}
        }
    }
    fn read(&mut self, port: u16, now: Nanos) -> u8 {
        self.advance(now);
        match port {
            0x40..=0x42 => self.c[usize::from(port - 0x40)].read(),
            0x43 => 0,
            0x61 => {
                let c2 = &self.c[2];
                u8::from(c2.gate)
                    | u8::from(self.speaker) << 1
                    | u8::from((self.k / 18) % 2 == 1) << 4
                    | u8::from(c2.out) << 5
            }
            _ => 0xff,
        }
    }
}

#[derive(Clone, Debug)]
pub enum RefOp {
    /// Clocks, then ns within a clock.
    Wait(u64, u64),
    Write(u16, u8),
    Read(u16),
    Program {
        ch: u8,
        mode: u8,
        access: u8,
        bcd: bool,
        count: u16,
    },
}

pub fn ref_op() -> impl Strategy<Value = RefOp> {
    let port = prop_oneof![4 => 0x40u16..=0x42, 2 => Just(0x43u16), 2 => Just(0x61u16)];
    prop_oneof![
        5 => (prop_oneof![0u64..4, 0u64..40, 0u64..400], 0u64..838)
            .prop_map(|(k, ns)| RefOp::Wait(k, ns)),
        4 => (port.clone(), prop_oneof![0u8..8, any::<u8>()]).prop_map(|(p, v)| RefOp::Write(p, v)),
        4 => port.prop_map(RefOp::Read),
        3 => (0u8..3, 0u8..8, 1u8..4, any::<bool>(), prop_oneof![0u16..20, any::<u16>()])
            .prop_map(|(ch, mode, access, bcd, count)| RefOp::Program { ch, mode, access, bcd, count }),
    ]
}

pub fn compare_with_reference(ops: &[RefOp]) {
    let mut pit = Pit::new();
    let mut reference = RefPit::new();
    let mut now: Nanos = 1;
    let mut log = Vec::new();
    for op in ops {
        // IRQ 0: a callback now pulses exactly if counter 0's OUT rose.
        reference.advance(now);
        let rose = std::mem::take(&mut reference.c[0].rises) > 0;
        let fx = pit.timer_expired(now);
        assert_eq!(
            fx.irq0.is_some(),
            rose,
            "IRQ 0 at clock {}; history:\n{}",
            clock_at(now),
            log.join("\n")
        );
        let writes: Vec<(u16, u8)> = match *op {
            RefOp::Wait(k, ns) => {
                now = time_of(clock_at(now) + k) + ns.min(837);
                vec![]
            }
            RefOp::Write(port, v) => vec![(port, v)],
            RefOp::Read(port) => {
                let got = pit.read(port, now);
                let want = reference.read(port, now);
                log.push(format!("read {port:#x} = {want:#04x}"));
                assert_eq!(
                    got,
                    want,
                    "read {port:#x} at clock {}; history:\n{}",
                    clock_at(now),
                    log.join("\n")
                );
                vec![]
            }
            RefOp::Program { ch, mode, access, bcd, count } => {
                let port = 0x40 + u16::from(ch);
                let [lo, hi] = count.to_le_bytes();
                let mut w = vec![(0x43, ch << 6 | access << 4 | mode << 1 | u8::from(bcd))];
                match access {
                    1 => w.push((port, lo)),
                    2 => w.push((port, hi)),
                    _ => w.extend([(port, lo), (port, hi)]),
                }
                w
            }
        };
        for (port, v) in writes {
            log.push(format!("clock {}: write {port:#x} {v:#04x}", clock_at(now)));
            let fx = pit.write(port, v, now);
            reference.write(port, v, now);
            let rose = std::mem::take(&mut reference.c[0].rises) > 0;
            assert_eq!(fx.irq0.is_some(), rose, "IRQ 0 on write; history:\n{}", log.join("\n"));
        }
        // Statuses and counts of all three, through copies.
        reference.advance(now);
        let mut probe = pit;
        let _ = probe.write(0x43, 0xce, now);
        for (i, c) in reference.c.iter().enumerate() {
            let port = 0x40 + i as u16;
            let status = probe.read(port, now);
            let lo = probe.read(port, now);
            let hi = probe.read(port, now);
            let want_status = c.status.unwrap_or_else(|| c.status_byte());
            let want_count = c.latched.unwrap_or_else(|| c.display());
            let access = (c.control >> 4) & 3;
            if c.status.is_none() {
                assert_eq!(
                    status,
                    want_status,
                    "status {i} at clock {}; history:\n{}",
                    clock_at(now),
                    log.join("\n")
                );
            }
            if c.latched.is_none() && c.status.is_none() && access == 3 && !c.read_msb {
                let got = u16::from_le_bytes([lo, hi]);
                assert_eq!(
                    got,
                    want_count,
                    "count {i} at clock {}; history:\n{}",
                    clock_at(now),
                    log.join("\n")
                );
            }
        }
    }
}
