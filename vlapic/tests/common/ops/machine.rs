// SPDX-License-Identifier: GPL-2.0

//! The [`Machine`] that plays operations, acts on their effects as the
//! integration layer must, and checks the invariants after each one.

use vmm_vlapic::regs::{Bits256, Lvt};
use vmm_vlapic::{
    resolve, x2apic_ldr, Config, Delivery, Effects, Endpoint, Events, Gp, Latched, Message, Mode,
    Origin, Snapshot, TimerAction, Tsc, Vlapic,
};

use super::input::*;

/// What a call returned, for comparing two machines op by op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// `mmio_read`.
    Read(Option<u64>),
    /// `mmio_write`.
    Write(Option<Effects>),
    /// `rdmsr`.
    Rdmsr(Result<u64, Gp>),
    /// `wrmsr` or `set_apic_base`.
    Wrmsr(Result<Effects, Gp>),
    /// A message resolved.
    Resolved(Delivery),
    /// `deliver` to a vCPU.
    Delivered(usize, Effects),
    /// `timer_expired` on a vCPU.
    Expired(usize, Effects),
    /// Any other call's effects.
    Fx(Effects),
    /// `take_events`.
    Events(Events),
    /// `pending_interrupt`.
    Pending(Option<u8>),
    /// `accept_interrupt`.
    Accepted(bool),
    /// `snapshot`.
    Snapshot(Box<Snapshot>, Effects),
    /// `restore`.
    Restored(Effects),
    /// Time now.
    Now(Tsc),
}

/// How far the interpreter got, to show that random runs reach deep states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Interrupts moved from IRR to ISR.
    pub accepted: u64,
    /// EOIs that ended an in-service vector.
    pub eois: u64,
    /// Level-triggered EOIs reported for the IOAPIC.
    pub eoi_broadcasts: u64,
    /// Interrupts delivered after `resolve`.
    pub delivered: u64,
    /// Timer expiries that signalled something.
    pub timer_fires: u64,
    /// Mode changes and moves.
    pub mode_changes: u64,
    /// INITs and SIPIs applied by `take_events`.
    pub resets: u64,
    /// vCPUs in x2APIC mode after an op (summed over ops).
    pub x2apic: u64,
}

/// What an op may do to the ISR of the vCPU it acts on (all others' ISRs
/// must not change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IsrRule {
    /// Nothing.
    Same,
    /// `accept_interrupt` of this vector: it is added.
    Added(u8),
    /// EOI: the highest in-service vector is removed (SDM "EOI Register").
    Eoi,
    /// INIT: everything is cleared.
    Reset,
    /// `IA32_APIC_BASE` write: depends on the mode change.
    Base(Mode),
}

/// A machine of vCPUs with the integration layer's bookkeeping.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The configuration of every vCPU.
    pub cfg: Config,
    /// The APICs, indexed by vCPU.
    pub cpus: Vec<Vlapic>,
    /// Guest TSC.
    pub now: Tsc,
    /// x2APIC IDs given at creation.
    ids: Vec<u32>,
    /// Host timers, as the effects armed them.
    armed: Vec<Option<Tsc>>,
    /// Mode and page address, as the effects reported them.
    mode: Vec<(Mode, u64)>,
    /// Vectors accepted and not seen leaving the ISR since.
    accepted: Vec<Bits256>,
    /// vCPUs told to wake during the current op.
    woken: Vec<bool>,
    /// What the current op returned.
    out: Vec<Out>,
    /// Ops run (to rotate sampled MSRs).
    steps: u64,
    /// How deep the run got.
    pub stats: Stats,
}

impl Machine {
    /// Builds the machine `setup` describes: each vCPU created, then
    /// optionally software-enabled with LINT0 ExtINT and LINT1 NMI (as
    /// firmware does), then moved to its mode by the host.
    pub fn new(setup: &Setup) -> Machine {
        let cfg = config(setup.config);
        let n = 2 + setup.cpus as usize % 4;
        let ids: Vec<u32> = (0..n).map(|i| apic_id(setup.ids, i)).collect();
        let now = match setup.time % 8 {
            0 | 1 => 0,
            2 | 3 => setup.tsc % (1 << 32),
            4..=6 => setup.tsc % (1 << 62),
            _ => u64::MAX - setup.tsc % (1 << 40),
        };
        let cpus = (0..n)
            .map(|i| Vlapic::new(cfg, i as u16, ids[i], i == 0).expect("valid config"))
            .collect();
        let mut m = Machine {
            cfg,
            cpus,
            now,
            ids,
            armed: vec![None; n],
            mode: vec![(Mode::XApic, DEFAULT_BASE); n],
            accepted: vec![Bits256::EMPTY; n],
            woken: vec![false; n],
            out: Vec::new(),
            steps: 0,
            stats: Stats::default(),
        };
        for i in 0..n {
            let b = setup.modes[i];
            if b & 0x18 != 0x18 {
                m.mmio_write(i, SVR, 0x1ff);
                if b & 0x20 == 0 {
                    m.mmio_write(i, 0x350, 0x700);
                    m.mmio_write(i, 0x360, 0x400);
                }
                if b & 0x40 == 0 {
                    m.mmio_write(i, 0x320, 0xec | (b as u64 >> 7) << 17);
                }
            }
            let bsp = if i == 0 { BASE_BSP } else { 0 };
            let to = match b & 7 {
                5 | 6 if cfg.x2apic => DEFAULT_BASE | BASE_EN | BASE_EXTD | bsp,
                7 => DEFAULT_BASE | bsp,
                _ => continue,
            };
            let fx = m.cpus[i].set_apic_base(to, Origin::Host).expect("legal setup");
            m.effects(i, fx, 0);
        }
        m.out.clear();
        m.woken.fill(false);
        m
    }

    fn cpu(&self, cpu: u8) -> usize {
        cpu as usize % self.cpus.len()
    }

    /// vCPU `c`'s APIC page address (whatever the mode).
    fn page(&self, c: usize) -> u64 {
        self.cpus[c].apic_base() & !0xfff
    }

    /// A 4-byte MMIO write at page offset `off`, effects acted on.
    fn mmio_write(&mut self, c: usize, off: u16, value: u64) -> Option<Effects> {
        let gpa = self.page(c) + off as u64;
        let r = self.cpus[c].mmio_write(gpa, 4, value, self.now);
        self.out.push(Out::Write(r));
        if let Some(fx) = r {
            self.effects(c, fx, 0);
        }
        r
    }

    /// A `WRMSR`, effects acted on.
    fn wrmsr(&mut self, c: usize, msr: u32, value: u64) -> Result<Effects, Gp> {
        let r = self.cpus[c].wrmsr(msr, value, self.now);
        self.out.push(Out::Wrmsr(r));
        if let Ok(fx) = r {
            self.effects(c, fx, 0);
        }
        r
    }

    /// Acts on what vCPU `c` asked for, as the integration layer must.
    fn effects(&mut self, c: usize, fx: Effects, depth: u32) {
        assert!(depth < 4, "effects keep causing effects: {fx:?}");
        if let Some(t) = fx.timer {
            self.armed[c] = match t {
                TimerAction::Arm(t) => Some(t),
                TimerAction::Disarm => None,
            };
        }
        if let Some(mc) = fx.mode {
            assert_eq!(
                mc.from, self.mode[c].0,
                "vCPU {c}: ModeChange.from is not the mode it was in"
            );
            self.mode[c] = (mc.to, mc.base);
            self.stats.mode_changes += 1;
        }
        if fx.eoi.is_some() {
            self.stats.eoi_broadcasts += 1;
        }
        if fx.wake {
            self.woken[c] = true;
        }
        if let Some(msg) = fx.ipi {
            self.send(msg, Some(c), depth + 1);
        }
    }

    /// Resolves `msg` over the bus and delivers it to every target.
    fn send(&mut self, msg: Message, source: Option<usize>, depth: u32) {
        let bus: Vec<Option<Endpoint>> = self.cpus.iter_mut().map(|v| Some(v.endpoint())).collect();
        let d = resolve(&msg, source, &bus[..]);
        self.out.push(Out::Resolved(d));
        for t in d.targets.iter() {
            assert!(t < self.cpus.len(), "resolve picked vCPU {t} of {}", self.cpus.len());
            let fx = self.cpus[t].deliver(d.interrupt);
            self.out.push(Out::Delivered(t, fx));
            self.stats.delivered += 1;
            self.effects(t, fx, depth);
        }
    }

    /// Fires every timer that is due now, as often as it stays due.
    fn settle(&mut self) {
        for _ in 0..8 {
            let now = self.now;
            let due: Vec<usize> =
                (0..self.cpus.len()).filter(|&i| self.armed[i].is_some_and(|t| t <= now)).collect();
            if due.is_empty() {
                return;
            }
            for i in due {
                let fx = self.cpus[i].timer_expired(now);
                assert!(fx.timer.is_some(), "timer_expired must say what the host timer does");
                if fx != (Effects { timer: fx.timer, ..Effects::NONE }) {
                    self.stats.timer_fires += 1;
                }
                self.out.push(Out::Expired(i, fx));
                self.effects(i, fx, 0);
            }
        }
        panic!(
            "at TSC {:#x} a timer stays due however often it is serviced: {:?}",
            self.now, self.armed
        );
    }

    /// Moves time forward by `ticks`, firing timers at their armed times
    /// (at most 64 expiries on the way; the rest coalesce at the end, as
    /// when the host runs late).
    fn advance(&mut self, ticks: u64) {
        let target = self.now.saturating_add(ticks);
        for _ in 0..64 {
            let next = self.armed.iter().flatten().copied().filter(|&t| t <= target).min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.settle();
        }
        self.now = target;
        self.settle();
    }

    /// `IA32_APIC_BASE` writes the SDM allows ("x2APIC State Transitions";
    /// reserved bits: 0-7, 9, EXTD without x2APIC, MAXPHYADDR and up). The
    /// host may set any valid state.
    fn base_write_legal(&self, c: usize, value: u64, origin: Origin) -> bool {
        let mut reserved = 0x2ff | (!0u64 << self.cfg.maxphyaddr);
        if !self.cfg.x2apic {
            reserved |= BASE_EXTD;
        }
        if value & reserved != 0 {
            return false;
        }
        let to = match (value & BASE_EN != 0, value & BASE_EXTD != 0) {
            (false, false) => Mode::Disabled,
            (false, true) => return false,
            (true, false) => Mode::XApic,
            (true, true) => Mode::X2Apic,
        };
        let from = self.cpus[c].mode();
        origin == Origin::Host
            || from == to
            || matches!(
                (from, to),
                (Mode::XApic, Mode::X2Apic)
                    | (Mode::XApic, Mode::Disabled)
                    | (Mode::X2Apic, Mode::Disabled)
                    | (Mode::Disabled, Mode::XApic)
            )
    }

    /// Runs `op`, acting on its effects and firing due timers, and asserts
    /// what it must have done. Returns everything the calls returned.
    pub fn step(&mut self, op: &Op) -> Vec<Out> {
        self.out.clear();
        self.woken.fill(false);
        self.steps += 1;
        let before: Vec<(Bits256, Bits256, Latched)> = self
            .cpus
            .iter_mut()
            .map(|v| {
                let (irr, isr, _) = v.vectors();
                (irr, isr, v.latched())
            })
            .collect();
        let now = self.now;
        // The vCPU the op acts on, whether the guest on it is running (so
        // that it needs no wake-up), and what the op may do to its ISR.
        let mut acting: Option<(usize, bool)> = None;
        let mut rule = IsrRule::Same;
        match *op {
            Op::MmioRead { cpu, off, size } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let gpa = self.page(c).wrapping_add_signed(off.0 as i64);
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let r = self.cpus[c].mmio_read(gpa, size.0 as usize, now);
                if mode != Mode::XApic {
                    assert_eq!(r, None, "vCPU {c}: MMIO read in {mode:?} mode");
                }
                if r.is_none() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused MMIO read changed state");
                }
                self.out.push(Out::Read(r));
            }
            Op::MmioWrite { cpu, off, size, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let page = self.page(c);
                let gpa = page.wrapping_add_signed(off.0 as i64);
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let r = self.cpus[c].mmio_write(gpa, size.0 as usize, value.0, now);
                if mode != Mode::XApic {
                    assert_eq!(r, None, "vCPU {c}: MMIO write in {mode:?} mode");
                }
                if r.is_none() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused MMIO write changed state");
                }
                if r.is_some() && gpa == page + EOI as u64 && size.0 == 4 {
                    rule = IsrRule::Eoi;
                }
                self.out.push(Out::Write(r));
                if let Some(fx) = r {
                    self.effects(c, fx, 0);
                }
            }
            Op::Rdmsr { cpu, msr } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let r = self.cpus[c].rdmsr(msr.0, now);
                assert_eq!(self.cpus[c], old, "vCPU {c}: RDMSR {:#x} changed state", msr.0);
                let known = msr.0 == MSR_APIC_BASE
                    || (msr.0 == MSR_TSC_DEADLINE && self.cfg.tsc_deadline)
                    || ((0x800..=0x8ff).contains(&msr.0) && mode == Mode::X2Apic);
                if !known {
                    assert_eq!(r, Err(Gp), "vCPU {c}: RDMSR {:#x} in {mode:?} mode", msr.0);
                }
                self.out.push(Out::Rdmsr(r));
            }
            Op::Wrmsr { cpu, msr, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let mode = self.cpus[c].mode();
                let old = self.cpus[c].clone();
                let legal_base = self.base_write_legal(c, value.0, Origin::Guest);
                let r = self.cpus[c].wrmsr(msr.0, value.0, now);
                if r.is_err() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: WRMSR {:#x} #GP changed state", msr.0);
                }
                match msr.0 {
                    MSR_APIC_BASE => {
                        assert_eq!(
                            r.is_ok(),
                            legal_base,
                            "vCPU {c}: WRMSR APIC_BASE {:#x} from {mode:?}",
                            value.0
                        );
                        rule = IsrRule::Base(mode);
                    }
                    MSR_TSC_DEADLINE => assert_eq!(r.is_ok(), self.cfg.tsc_deadline),
                    0x800..=0x8ff if mode != Mode::X2Apic => {
                        assert_eq!(r, Err(Gp), "vCPU {c}: WRMSR {:#x} in {mode:?} mode", msr.0)
                    }
                    0x80b if r.is_ok() => rule = IsrRule::Eoi,
                    0x800..=0x8ff => {}
                    _ => assert_eq!(r, Err(Gp), "vCPU {c}: WRMSR of unknown MSR {:#x}", msr.0),
                }
                self.out.push(Out::Wrmsr(r));
                if let Ok(fx) = r {
                    self.effects(c, fx, 0);
                }
            }
            Op::RegRead { cpu, reg } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                if self.cpus[c].mode() == Mode::X2Apic {
                    let r = self.cpus[c].rdmsr(0x800 + reg.0 as u32, now);
                    self.out.push(Out::Rdmsr(r));
                } else {
                    let gpa = self.page(c) + ((reg.0 as u64) << 4);
                    let r = self.cpus[c].mmio_read(gpa, 4, now);
                    self.out.push(Out::Read(r));
                }
            }
            Op::RegWrite { cpu, write: RegVal(slot, value) } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let off = (slot as u16) << 4;
                let ok = if self.cpus[c].mode() == Mode::X2Apic {
                    let v = if off == ICR_LOW { value } else { value & 0xffff_ffff };
                    self.wrmsr(c, 0x800 + slot as u32, v).is_ok()
                } else {
                    self.mmio_write(c, off, value & 0xffff_ffff).is_some()
                };
                if ok && off == EOI {
                    rule = IsrRule::Eoi;
                }
            }
            Op::Ipi { cpu, icr } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                match self.cpus[c].mode() {
                    Mode::X2Apic => {
                        let _ = self.wrmsr(c, 0x830, icr.0);
                    }
                    Mode::XApic => {
                        self.mmio_write(c, ICR_HIGH, ((icr.0 >> 32) & 0xff) << 24);
                        self.mmio_write(c, ICR_LOW, icr.0 & 0xffff_ffff);
                    }
                    Mode::Disabled => {}
                }
            }
            Op::Eoi { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                match self.cpus[c].mode() {
                    Mode::X2Apic => {
                        let r = self.wrmsr(c, 0x80b, 0);
                        assert!(r.is_ok(), "vCPU {c}: WRMSR EOI of 0 must not #GP");
                        rule = IsrRule::Eoi;
                    }
                    Mode::XApic => {
                        assert!(self.mmio_write(c, EOI, 0).is_some());
                        rule = IsrRule::Eoi;
                    }
                    Mode::Disabled => {}
                }
            }
            Op::Transition { cpu, to, moved } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let mode = self.cpus[c].mode();
                let mut addr = self.page(c);
                if moved {
                    addr = if addr == DEFAULT_BASE { 0xfed0_0000 } else { DEFAULT_BASE };
                }
                let bits = match to {
                    ModeSel::Disabled => 0,
                    ModeSel::XApic => BASE_EN,
                    ModeSel::X2Apic => BASE_EN | BASE_EXTD,
                };
                let value = addr | bits | (self.cpus[c].apic_base() & BASE_BSP);
                let legal = self.base_write_legal(c, value, Origin::Guest);
                let old = self.cpus[c].clone();
                let r = self.wrmsr(c, MSR_APIC_BASE, value);
                assert_eq!(r.is_ok(), legal, "vCPU {c}: WRMSR APIC_BASE {value:#x} from {mode:?}");
                if r.is_err() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a #GP on APIC_BASE changed state");
                }
                rule = IsrRule::Base(mode);
            }
            Op::SetApicBase { cpu, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let mode = self.cpus[c].mode();
                let legal = self.base_write_legal(c, value.0, Origin::Host);
                let old = self.cpus[c].clone();
                let r = self.cpus[c].set_apic_base(value.0, Origin::Host);
                assert_eq!(
                    r.is_ok(),
                    legal,
                    "vCPU {c}: host APIC_BASE {:#x} from {mode:?}",
                    value.0
                );
                if r.is_err() {
                    assert_eq!(self.cpus[c], old, "vCPU {c}: a refused APIC_BASE changed state");
                }
                self.out.push(Out::Wrmsr(r));
                if let Ok(fx) = r {
                    self.effects(c, fx, 0);
                }
                rule = IsrRule::Base(mode);
            }
            Op::Deadline { cpu, at } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                let value = if at.0 == 0 { 0 } else { now.saturating_add_signed(at.0) };
                let r = self.wrmsr(c, MSR_TSC_DEADLINE, value);
                assert_eq!(r.is_ok(), self.cfg.tsc_deadline);
            }
            Op::Deliver { cpu, irq } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].deliver(irq.into());
                self.out.push(Out::Delivered(c, fx));
                self.effects(c, fx, 0);
            }
            Op::Msi { dest, logical, data, x2apic_format } => {
                match Message::from_msi(dest.0, logical, data.0, x2apic_format) {
                    Some(msg) => self.send(msg, None, 0),
                    None => self.out.push(Out::Fx(Effects::NONE)),
                }
            }
            Op::Advance { ticks } => self.advance(ticks.0),
            Op::RunToTimer => {
                if let Some(t) = self.armed.iter().flatten().copied().min() {
                    self.advance(t.saturating_sub(now));
                }
            }
            Op::TimerExpired { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].timer_expired(now);
                self.out.push(Out::Expired(c, fx));
                self.effects(c, fx, 0);
            }
            Op::TakeEvents { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let ev = self.cpus[c].take_events();
                if ev.reset.is_some() {
                    rule = IsrRule::Reset;
                }
                if ev.reset.is_some() || ev.start.is_some() {
                    self.stats.resets += 1;
                }
                assert_eq!(
                    self.cpus[c].latched(),
                    Latched::default(),
                    "vCPU {c}: take_events left requests"
                );
                self.out.push(Out::Events(ev));
                self.effects(c, ev.effects, 0);
            }
            Op::Accept { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let p = self.cpus[c].pending_interrupt();
                self.out.push(Out::Pending(p));
                if let Some(v) = p {
                    let ok = self.cpus[c].accept_interrupt(v);
                    assert!(ok, "vCPU {c}: accept_interrupt({v:#x}) refused the pending vector");
                    self.out.push(Out::Accepted(ok));
                    self.accepted[c].set(v);
                    self.stats.accepted += 1;
                    rule = IsrRule::Added(v);
                }
            }
            Op::AcceptVector { cpu, vector } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let p = self.cpus[c].pending_interrupt();
                let old = self.cpus[c].clone();
                let ok = self.cpus[c].accept_interrupt(vector);
                assert_eq!(
                    ok,
                    p == Some(vector),
                    "vCPU {c}: accept_interrupt({vector:#x}) with {p:?} pending"
                );
                if ok {
                    self.accepted[c].set(vector);
                    self.stats.accepted += 1;
                    rule = IsrRule::Added(vector);
                } else {
                    assert_eq!(
                        self.cpus[c], old,
                        "vCPU {c}: a refused accept_interrupt changed state"
                    );
                }
                self.out.push(Out::Accepted(ok));
            }
            Op::SetLint { cpu, pin, asserted } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].set_lint(pin % 4, asserted);
                self.out.push(Out::Fx(fx));
                self.effects(c, fx, 0);
            }
            Op::Fire { cpu, lvt } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let fx = self.cpus[c].fire(Lvt::ALL[lvt as usize % 7]);
                self.out.push(Out::Fx(fx));
                self.effects(c, fx, 0);
            }
            Op::SetTpr { cpu, value } => {
                let c = self.cpu(cpu);
                acting = Some((c, true));
                self.cpus[c].set_tpr(value);
            }
            Op::Snapshot { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let (snap, fx) = self.cpus[c].snapshot(now);
                self.out.push(Out::Snapshot(Box::new(snap), fx));
                self.effects(c, fx, 0);
            }
            Op::Restore { cpu } => {
                let c = self.cpu(cpu);
                acting = Some((c, false));
                let (snap, fx) = self.cpus[c].snapshot(now);
                self.out.push(Out::Snapshot(Box::new(snap), fx));
                self.effects(c, fx, 0);
                let (v, rfx) = Vlapic::restore(self.cfg, &snap).unwrap_or_else(|e| {
                    panic!("vCPU {c}: restore refused its own snapshot: {e}\n{snap:#x?}")
                });
                self.cpus[c] = v;
                self.restored(c, rfx);
                self.out.push(Out::Restored(rfx));
            }
        }
        self.settle();
        self.after_step(&before, acting, rule);
        std::mem::take(&mut self.out)
    }

    /// Takes over the effects of a restore into vCPU `c`, which (by the
    /// API's definition) report a change from the power-up xAPIC mode.
    fn restored(&mut self, c: usize, rfx: Effects) {
        let mc = rfx.mode.expect("restore reports the mode");
        assert_eq!(mc.from, Mode::XApic);
        assert_eq!(
            (mc.to, mc.base),
            self.mode[c],
            "vCPU {c}: restore reports another mode or page"
        );
        let t = rfx.timer.expect("restore reports the timer");
        let armed = match t {
            TimerAction::Arm(t) => Some(t),
            TimerAction::Disarm => None,
        };
        assert_eq!(armed, self.armed[c], "vCPU {c}: restore arms another timer than was armed");
        assert_eq!(rfx.ipi, None);
        assert_eq!(rfx.eoi, None);
    }

    /// What every op must have left true, beyond [`Machine::check`]: ISRs
    /// change only as the op allows, and anything that became pending on a
    /// vCPU not already running was signalled with `wake`.
    fn after_step(
        &mut self,
        before: &[(Bits256, Bits256, Latched)],
        acting: Option<(usize, bool)>,
        rule: IsrRule,
    ) {
        for (i, (irr0, isr0, lat0)) in before.iter().enumerate() {
            let (irr, isr, _) = self.cpus[i].vectors();
            let lat = self.cpus[i].latched();
            let here = acting.map(|(c, _)| c) == Some(i);
            let rule = if here { rule } else { IsrRule::Same };
            let highest = isr0.highest();
            match rule {
                IsrRule::Same => assert_eq!(isr, *isr0, "vCPU {i}: ISR changed"),
                IsrRule::Added(v) => {
                    let mut want = *isr0;
                    want.set(v);
                    assert_eq!(isr, want, "vCPU {i}: accepting {v:#x} did not just add it to ISR");
                    assert!(!irr.get(v), "vCPU {i}: accepted {v:#x} still in IRR");
                }
                IsrRule::Eoi => {
                    let mut want = *isr0;
                    if let Some(v) = highest {
                        want.clear(v);
                        self.stats.eois += 1;
                    }
                    assert_eq!(
                        isr, want,
                        "vCPU {i}: EOI did not end exactly the highest in-service vector"
                    );
                }
                IsrRule::Reset => assert!(isr.is_empty(), "vCPU {i}: INIT left ISR {isr:x?}"),
                IsrRule::Base(from) => {
                    let to = self.cpus[i].mode();
                    match (from, to) {
                        (a, b) if a == b => assert_eq!(isr, *isr0, "vCPU {i}: ISR changed"),
                        (Mode::XApic, Mode::X2Apic) => {
                            assert_eq!(isr, *isr0, "vCPU {i}: entering x2APIC mode changed ISR")
                        }
                        (_, Mode::Disabled) => {
                            assert!(isr.is_empty(), "vCPU {i}: disabling left ISR")
                        }
                        _ => assert!(subset(&isr, isr0), "vCPU {i}: a mode change added to ISR"),
                    }
                }
            }
            let running = acting == Some((i, true));
            let gained = !subset(&irr, irr0)
                || (lat.init && !lat0.init)
                || (lat.nmi && !lat0.nmi)
                || (lat.smi && !lat0.smi)
                || (lat.extint && !lat0.extint)
                || (lat.sipi.is_some() && lat0.sipi.is_none());
            if gained && !running {
                assert!(self.woken[i], "vCPU {i}: something became pending without a wake-up");
            }
        }
    }

    /// Asserts the invariants that hold after every op, for every vCPU,
    /// through the public API; the probes run on copies and must not change
    /// them.
    pub fn check(&mut self) {
        for i in 0..self.cpus.len() {
            self.check_cpu(i);
            if self.cpus[i].mode() == Mode::X2Apic {
                self.stats.x2apic += 1;
            }
        }
    }

    fn check_cpu(&mut self, i: usize) {
        let now = self.now;
        let cfg = self.cfg;
        let id = self.ids[i];
        let sample = 0x800 + ((self.steps * 37 + i as u64 * 11) % 0x100) as u32;
        let mut v = self.cpus[i].clone();
        let mode = v.mode();
        let (irr, isr, tmr) = v.vectors();
        for (name, bits) in [("IRR", irr), ("ISR", isr), ("TMR", tmr)] {
            assert!(!bits.has_illegal(), "vCPU {i}: {name} holds a vector below 16: {bits:x?}");
        }

        // SDM "Processor Priority Register" and "Arbitration Priority
        // Register".
        let tpr = v.tpr();
        let isrv = isr.highest().unwrap_or(0);
        let irrv = irr.highest().unwrap_or(0);
        let ppr = if tpr >> 4 >= isrv >> 4 { tpr } else { isrv & 0xf0 };
        assert_eq!(v.ppr(), ppr, "vCPU {i}: PPR with TPR {tpr:#x}, ISRV {isrv:#x}");
        let apr = if tpr >> 4 >= irrv >> 4 && tpr >> 4 > isrv >> 4 {
            tpr
        } else {
            (tpr & 0xf0).max(isrv & 0xf0).max(irrv & 0xf0)
        };
        assert_eq!(v.apr(), apr, "vCPU {i}: APR with TPR {tpr:#x}, ISRV {isrv:#x}, IRRV {irrv:#x}");
        let pending = irr.highest().filter(|&x| x >> 4 > ppr >> 4);
        assert_eq!(v.pending_interrupt(), pending, "vCPU {i}: pending interrupt with PPR {ppr:#x}");

        // Every in-service vector was accepted, and not ended since.
        assert!(
            subset(&isr, &self.accepted[i]),
            "vCPU {i}: ISR {isr:x?} holds a vector that was never accepted (accepted: {:x?})",
            self.accepted[i]
        );
        self.accepted[i] = intersect(&self.accepted[i], &isr);

        // The mode and page the effects reported are the real ones.
        assert_eq!(
            self.mode[i],
            (mode, v.apic_base() & !0xfff),
            "vCPU {i}: mode effects missed a change"
        );

        let ep = v.endpoint();
        match mode {
            Mode::X2Apic => {
                let ldr = ((id >> 4) << 16) | (1 << (id & 15));
                assert_eq!(x2apic_ldr(id), ldr);
                assert_eq!(v.rdmsr(0x80d, now), Ok(ldr as u64), "vCPU {i}: x2APIC LDR");
                assert_eq!(v.rdmsr(0x802, now), Ok(id as u64), "vCPU {i}: x2APIC ID");
                assert_eq!((ep.id, ep.ldr), (id, ldr), "vCPU {i}: endpoint in x2APIC mode");
                assert_eq!(v.rdmsr(0x808, now), Ok(tpr as u64), "vCPU {i}: TPR MSR");
                assert_eq!(v.rdmsr(0x80a, now), Ok(ppr as u64), "vCPU {i}: PPR MSR");
                for w in 0..8u32 {
                    assert_eq!(
                        v.rdmsr(0x810 + w, now),
                        Ok(isr.0[w as usize] as u64),
                        "vCPU {i}: ISR MSR {w}"
                    );
                    assert_eq!(
                        v.rdmsr(0x818 + w, now),
                        Ok(tmr.0[w as usize] as u64),
                        "vCPU {i}: TMR MSR {w}"
                    );
                    assert_eq!(
                        v.rdmsr(0x820 + w, now),
                        Ok(irr.0[w as usize] as u64),
                        "vCPU {i}: IRR MSR {w}"
                    );
                }
                let page = v.apic_base() & !0xfff;
                assert_eq!(v.mmio_base(), None);
                for gpa in [page + 0x20, page + 0x80, DEFAULT_BASE + 0x20] {
                    assert_eq!(
                        v.mmio_read(gpa, 4, now),
                        None,
                        "vCPU {i}: MMIO read in x2APIC mode"
                    );
                    assert_eq!(
                        v.mmio_write(gpa, 4, 0xff, now),
                        None,
                        "vCPU {i}: MMIO write in x2APIC mode"
                    );
                }
            }
            Mode::XApic => {
                let page = v.mmio_base().expect("xAPIC mode has a page");
                assert_eq!(page, v.apic_base() & !0xfff);
                let rd = |v: &mut Vlapic, off: u64| {
                    v.mmio_read(page + off, 4, now).expect("in the page")
                };
                assert_eq!(rd(&mut v, 0x20) >> 24, ep.id as u64, "vCPU {i}: xAPIC ID");
                assert_eq!(rd(&mut v, 0xd0), ep.ldr as u64, "vCPU {i}: xAPIC LDR");
                assert_eq!(rd(&mut v, 0x80), tpr as u64, "vCPU {i}: TPR register");
                assert_eq!(rd(&mut v, 0x90), apr as u64, "vCPU {i}: APR register");
                assert_eq!(rd(&mut v, 0xa0), ppr as u64, "vCPU {i}: PPR register");
                for w in 0..8usize {
                    let off = 0x10 * w as u64;
                    assert_eq!(rd(&mut v, 0x100 + off), isr.0[w] as u64, "vCPU {i}: ISR word {w}");
                    assert_eq!(rd(&mut v, 0x180 + off), tmr.0[w] as u64, "vCPU {i}: TMR word {w}");
                    assert_eq!(rd(&mut v, 0x200 + off), irr.0[w] as u64, "vCPU {i}: IRR word {w}");
                }
            }
            Mode::Disabled => {
                assert_eq!(v.mmio_base(), None);
                assert_eq!(v.mmio_read(DEFAULT_BASE + 0x20, 4, now), None);
                assert!(
                    irr.is_empty() && isr.is_empty(),
                    "vCPU {i}: a disabled APIC holds vectors"
                );
                assert_eq!(
                    v.latched(),
                    Latched::default(),
                    "vCPU {i}: a disabled APIC holds requests"
                );
            }
        }
        if mode != Mode::X2Apic {
            for msr in [0x802, 0x808, 0x80a, 0x80b, 0x80d, 0x830, 0x83f, sample] {
                assert_eq!(v.rdmsr(msr, now), Err(Gp), "vCPU {i}: RDMSR {msr:#x} in {mode:?} mode");
                assert_eq!(
                    v.wrmsr(msr, 0, now),
                    Err(Gp),
                    "vCPU {i}: WRMSR {msr:#x} in {mode:?} mode"
                );
            }
        }
        assert_eq!(v, self.cpus[i], "vCPU {i}: reading registers changed state");

        // Every snapshot restores, to the same state; and the timer the
        // effects armed is the one the model holds.
        let (snap, fx) = v.snapshot(now);
        let (mut r, _) = Vlapic::restore(cfg, &snap)
            .unwrap_or_else(|e| panic!("vCPU {i}: restore refused a snapshot: {e}\n{snap:#x?}"));
        assert_eq!(r.snapshot(now).0, snap, "vCPU {i}: snapshot of the restored APIC differs");
        if self.armed[i].is_none_or(|t| t > now) {
            assert_eq!(fx, Effects::NONE, "vCPU {i}: snapshot serviced a timer that was not due");
            let next = (snap.timer_next != 0).then_some(snap.timer_next);
            assert_eq!(
                self.armed[i], next,
                "vCPU {i}: timer effects missed a change (armed vs. model)"
            );
        }
    }

    /// Snapshots every vCPU now (acting on the effects).
    pub fn snapshots(&mut self) -> Vec<Snapshot> {
        let now = self.now;
        (0..self.cpus.len())
            .map(|i| {
                let (snap, fx) = self.cpus[i].snapshot(now);
                self.effects(i, fx, 0);
                snap
            })
            .collect()
    }

    /// A second machine restored from snapshots of every vCPU, with the
    /// same clock and bookkeeping.
    pub fn fork(&mut self) -> Machine {
        let snaps = self.snapshots();
        let mut b = self.clone();
        b.out.clear();
        for (i, snap) in snaps.iter().enumerate() {
            let (v, rfx) = Vlapic::restore(self.cfg, snap).unwrap_or_else(|e| {
                panic!("vCPU {i}: restore refused a snapshot: {e}\n{snap:#x?}")
            });
            b.cpus[i] = v;
            b.restored(i, rfx);
        }
        b
    }
}

/// Whether every bit of `a` is in `b`.
fn subset(a: &Bits256, b: &Bits256) -> bool {
    a.0.iter().zip(b.0).all(|(x, y)| x & !y == 0)
}

fn intersect(a: &Bits256, b: &Bits256) -> Bits256 {
    let mut out = *a;
    for (o, y) in out.0.iter_mut().zip(b.0) {
        *o &= y;
    }
    out
}

/// Plays `ops` on the machine `setup` describes, checking after every op.
/// With `split`, forks a restored copy before op `split` (clamped to the
/// end) and asserts that from there both machines return the same values
/// and effects for every op, and end with the same snapshots. Returns how
/// deep the run got.
pub fn run(setup: &Setup, ops: &[Op], split: Option<usize>) -> Stats {
    let mut a = Machine::new(setup);
    a.check();
    let split = split.map(|s| s.min(ops.len()));
    let mut b: Option<Machine> = None;
    for (k, op) in ops.iter().enumerate() {
        if split == Some(k) {
            b = Some(a.fork());
        }
        let out = a.step(op);
        a.check();
        if let Some(b) = &mut b {
            let out_b = b.step(op);
            b.check();
            assert_eq!(out, out_b, "op {k} ({op:?}) went differently after snapshot and restore");
        }
    }
    if split == Some(ops.len()) {
        b = Some(a.fork());
    }
    if let Some(mut b) = b {
        assert_eq!(a.now, b.now);
        assert_eq!(
            a.snapshots(),
            b.snapshots(),
            "final snapshots differ after snapshot and restore"
        );
    }
    a.stats
}
