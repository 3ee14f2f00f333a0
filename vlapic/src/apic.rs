// SPDX-License-Identifier: GPL-2.0

//! The APIC's state, its priorities, and how interrupts are accepted,
//! serviced and ended.

use super::ipi::{Endpoint, Interrupt};
use super::regs::*;
use super::timer::{Clock, Timer, TimerMode};
use super::{Config, Effects, Mode, Tsc};

/// Hooks for APIC virtualization (APICv, AVIC). The model calls them; the
/// defaults do nothing, which is [`Soft`]: the model alone.
pub trait Accel {
    /// A fixed interrupt for `vector` is being accepted (`level`: its TMR
    /// bit). Return `true` if the hardware path takes it (for example, by
    /// posting it to a posted-interrupt descriptor that VM entry merges
    /// into the virtual IRR). The model then leaves its own IRR alone and
    /// learns of the vector through [`Accel::sync`]. Its TMR bit is set
    /// either way.
    fn post(&mut self, vector: u8, level: bool) -> bool {
        let _ = (vector, level);
        false
    }

    /// Brings into `state` what the hardware changed without an exit
    /// (posted vectors merged into IRR, vectors it moved to ISR or ended,
    /// the TPR). Called before the model reads any of them.
    fn sync(&mut self, state: HwState<'_>) {
        let _ = state;
    }

    /// The APIC's registers were reset (INIT, global disable): drop any
    /// vectors and priorities the hardware path still holds.
    fn reset(&mut self) {}
}

/// The parts of the APIC that virtualization hardware updates by itself.
pub struct HwState<'a> {
    /// Interrupt requests.
    pub irr: &'a mut Bits256,
    /// In service.
    pub isr: &'a mut Bits256,
    /// Task priority.
    pub tpr: &'a mut u8,
}

/// No APIC virtualization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Soft;

impl Accel for Soft {}

/// Where the vCPU is in the INIT/SIPI state machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activity {
    /// Executing (or halted: that is the CPU's business, not the APIC's).
    #[default]
    Running,
    /// After INIT on an application processor: only INIT and SIPI matter.
    WaitForSipi,
}

/// Requests latched by the APIC for the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Latched {
    /// INIT received.
    pub init: bool,
    /// SIPI received (only latched while INIT is pending or the vCPU waits).
    pub sipi: Option<u8>,
    /// NMI received.
    pub nmi: bool,
    /// SMI received.
    pub smi: bool,
    /// ExtINT requested: ask the 8259 for the vector.
    pub extint: bool,
}

/// The CPU registers an INIT puts into their INIT state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reset {
    /// `false` for the BSP, which starts at the reset vector; `true` for
    /// an application processor, which now waits for SIPI.
    pub wait_for_sipi: bool,
}

/// What [`Vlapic::take_events`] hands to the run loop, in the order to
/// apply it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Events {
    /// INIT: put the vCPU's registers into their INIT state.
    pub reset: Option<Reset>,
    /// SIPI: start in real mode at CS = `vector << 8`, IP = 0.
    pub start: Option<u8>,
    /// Inject an NMI.
    pub nmi: bool,
    /// Enter SMM (or drop it if the vCPU has none).
    pub smi: bool,
    /// Ask the 8259 for a vector and inject it.
    pub extint: bool,
    /// Effects of the INIT (the timer is cancelled).
    pub effects: Effects,
}

/// One vCPU's local APIC. See the [crate] documentation for how it is
/// driven.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vlapic<A: Accel = Soft> {
    pub(crate) cfg: Config,
    /// This vCPU's index on the bus (the self shorthands).
    pub(crate) index: u16,
    /// The x2APIC ID; the xAPIC ID after reset is its low byte.
    pub(crate) initial_id: u32,
    /// `IA32_APIC_BASE`.
    pub(crate) base: u64,
    /// The xAPIC ID register's ID (bits 31:24).
    pub(crate) xapic_id: u8,
    pub(crate) tpr: u8,
    /// xAPIC LDR (x2APIC: derived from the ID, not stored).
    pub(crate) ldr: u32,
    pub(crate) dfr: u32,
    pub(crate) svr: u32,
    pub(crate) isr: Bits256,
    pub(crate) tmr: Bits256,
    pub(crate) irr: Bits256,
    /// ESR as last latched by a write to it.
    pub(crate) esr: u32,
    /// Errors seen since that write.
    pub(crate) esr_pending: u32,
    pub(crate) lvt: [u32; 7],
    /// ICR: low half, and the destination in bits 63:32 (x2APIC) or 63:56
    /// (xAPIC).
    pub(crate) icr: u64,
    pub(crate) timer: Timer,
    /// LINT0 and LINT1 input levels, for edge detection.
    pub(crate) lint: [bool; 2],
    pub(crate) activity: Activity,
    pub(crate) latched: Latched,
    pub(crate) accel: A,
}

impl Vlapic<Soft> {
    /// A vCPU's APIC after power-up: xAPIC mode at the default base.
    /// `index` is the vCPU's place on the bus, `id` its x2APIC ID (the
    /// xAPIC ID is its low byte). Returns `None` for an invalid
    /// [`Config`].
    pub fn new(cfg: Config, index: u16, id: u32, bsp: bool) -> Option<Self> {
        Self::with_accel(cfg, index, id, bsp, Soft)
    }
}

impl<A: Accel> Vlapic<A> {
    /// Like [`Vlapic::new`], with APIC virtualization hooks.
    pub fn with_accel(cfg: Config, index: u16, id: u32, bsp: bool, accel: A) -> Option<Self> {
        if !cfg.is_valid() {
            return None;
        }
        let mut apic = Vlapic {
            cfg,
            index,
            initial_id: id,
            base: DEFAULT_BASE | BASE_EN | if bsp { BASE_BSP } else { 0 },
            xapic_id: id as u8,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: Bits256::EMPTY,
            tmr: Bits256::EMPTY,
            irr: Bits256::EMPTY,
            esr: 0,
            esr_pending: 0,
            lvt: [0; 7],
            icr: 0,
            timer: Timer::default(),
            lint: [false; 2],
            activity: Activity::Running,
            latched: Latched::default(),
            accel,
        };
        apic.reset_registers();
        Some(apic)
    }

    /// The configuration this APIC was built with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The hooks.
    pub fn accel(&mut self) -> &mut A {
        &mut self.accel
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        match (self.base & BASE_EN != 0, self.base & BASE_EXTD != 0) {
            (false, _) => Mode::Disabled,
            (true, false) => Mode::XApic,
            (true, true) => Mode::X2Apic,
        }
    }

    /// Whether the SVR has software-enabled the APIC.
    pub fn sw_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// The ID other APICs address it by in its current mode.
    pub fn id(&self) -> u32 {
        match self.mode() {
            Mode::X2Apic => self.initial_id,
            _ => u32::from(self.xapic_id),
        }
    }

    /// The logical destination register as the mode defines it.
    pub fn ldr(&self) -> u32 {
        match self.mode() {
            Mode::X2Apic => x2apic_ldr(self.initial_id),
            _ => self.ldr,
        }
    }

    /// Where the vCPU is in the INIT/SIPI state machine.
    pub fn activity(&self) -> Activity {
        self.activity
    }

    /// Moves the vCPU into or out of wait-for-SIPI, as a sequencer that
    /// restores a saved run state does.
    pub fn set_activity(&mut self, activity: Activity) {
        self.activity = activity;
    }

    /// Latched INIT/SIPI/NMI/SMI/ExtINT requests (a level ExtINT on a
    /// LINT pin is not latched; `take_events` reports it).
    pub fn latched(&self) -> Latched {
        self.latched
    }

    /// Whether the 8259 has an interrupt for this vCPU: an ExtINT message
    /// is latched, or a LINT pin with an unmasked ExtINT entry is asserted.
    /// [`Vlapic::take_events`] hands it over as `extint`.
    pub fn extint_pending(&self) -> bool {
        self.latched.extint || self.extint_asserted()
    }

    /// The IRR, ISR and TMR, after syncing with the hooks.
    pub fn vectors(&mut self) -> (Bits256, Bits256, Bits256) {
        self.sync();
        (self.irr, self.isr, self.tmr)
    }

    /// What the bus needs to know of this APIC.
    pub fn endpoint(&mut self) -> Endpoint {
        self.sync();
        Endpoint {
            mode: self.mode(),
            id: self.id(),
            ldr: self.ldr(),
            dfr: self.dfr,
            apr: self.apr(),
            sw_enabled: self.sw_enabled(),
        }
    }

    pub(crate) fn clock(&self) -> Clock {
        Clock { bus_hz: self.cfg.bus_hz, tsc_hz: self.cfg.tsc_hz, min_period: self.cfg.min_period }
    }

    pub(crate) fn timer_mode(&self) -> TimerMode {
        TimerMode::from_lvt(self.lvt[Lvt::Timer as usize])
    }

    pub(crate) fn sync(&mut self) {
        self.accel.sync(HwState { irr: &mut self.irr, isr: &mut self.isr, tpr: &mut self.tpr });
    }

    /// Registers to their power-up values, except the APIC ID, the base
    /// MSR and the run state. Used for power-up, INIT and global disable.
    pub(crate) fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = DFR_RESET;
        self.svr = SVR_RESET;
        self.isr = Bits256::EMPTY;
        self.tmr = Bits256::EMPTY;
        self.irr = Bits256::EMPTY;
        self.esr = 0;
        self.esr_pending = 0;
        self.lvt = [LVT_RESET; 7];
        self.icr = 0;
        self.timer = Timer::default();
        // Otherwise the next sync would bring stale vectors back.
        self.accel.reset();
    }

    /// The version register.
    pub fn version(&self) -> u32 {
        let max_lvt: u32 = if self.cfg.cmci { 6 } else { 5 };
        VERSION | max_lvt << 16 | if self.cfg.eoi_suppression { 1 << 24 } else { 0 }
    }

    /// The processor priority: the TPR, or the in-service class if that is
    /// higher.
    pub fn ppr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xf0
        }
    }

    /// The arbitration priority (SDM "Arbitration Priority Register").
    pub fn apr(&self) -> u8 {
        let irrv = self.irr.highest().unwrap_or(0);
        let isrv = self.isr.highest().unwrap_or(0);
        if self.tpr >> 4 >= irrv >> 4 && self.tpr >> 4 > isrv >> 4 {
            self.tpr
        } else {
            (self.tpr & 0xf0).max(isrv & 0xf0).max(irrv & 0xf0)
        }
    }

    /// The TPR (CR8 is its bits 7:4).
    pub fn tpr(&mut self) -> u8 {
        self.sync();
        self.tpr
    }

    /// Sets the TPR, as a write of CR8 (`value << 4`) or of the register.
    pub fn set_tpr(&mut self, value: u8) {
        self.sync();
        self.tpr = value;
    }

    /// The vector to inject next: the highest one in IRR whose priority
    /// class is above the PPR's.
    pub fn pending_interrupt(&mut self) -> Option<u8> {
        self.sync();
        let vector = self.irr.highest()?;
        (vector >> 4 > self.ppr() >> 4).then_some(vector)
    }

    /// The highest vector in IRR, whether or not the priorities let it in.
    pub fn highest_request(&mut self) -> Option<u8> {
        self.sync();
        self.irr.highest()
    }

    /// The CPU took `vector` (from [`Vlapic::pending_interrupt`]): move it
    /// from IRR to ISR. Returns `false`, changing nothing, if `vector` is
    /// not the one pending.
    pub fn accept_interrupt(&mut self, vector: u8) -> bool {
        if self.pending_interrupt() != Some(vector) {
            return false;
        }
        self.irr.clear(vector);
        self.isr.set(vector);
        true
    }

    /// Whether the 8259 may interrupt through this APIC: it is disabled
    /// (the pin goes straight to the CPU), or LINT0 is unmasked ExtINT.
    pub fn accepts_pic_interrupt(&self) -> bool {
        let lint0 = self.lvt[Lvt::Lint0 as usize];
        self.mode() == Mode::Disabled || (lint0 & LVT_MASKED == 0 && (lint0 >> 8) & 7 == 7)
    }

    /// EOI: ends the highest in-service vector. A level-triggered one is
    /// broadcast to the IOAPIC unless the SVR suppresses it; a LINT pin's
    /// remote IRR for it is cleared. With nothing in service it does
    /// nothing.
    pub(crate) fn eoi(&mut self) -> Effects {
        self.sync();
        let Some(vector) = self.isr.highest() else { return Effects::NONE };
        self.isr.clear(vector);
        let mut fx = Effects::NONE;
        if self.tmr.get(vector) {
            for pin in [Lvt::Lint0, Lvt::Lint1] {
                let lvt = &mut self.lvt[pin as usize];
                if *lvt & LVT_REMOTE_IRR != 0 && (*lvt & LVT_VECTOR) as u8 == vector {
                    *lvt &= !LVT_REMOTE_IRR;
                    // Still asserted: the level interrupt comes again.
                    if self.lint[pin as usize - Lvt::Lint0 as usize] {
                        fx.merge(self.fire(pin));
                    }
                }
            }
            if self.svr & SVR_SUPPRESS_EOI == 0 {
                fx.eoi = Some(vector);
            }
        }
        fx
    }

    /// Records an APIC error; the error LVT fires unless masked.
    pub(crate) fn error(&mut self, bits: u32) -> Effects {
        self.esr_pending |= bits;
        let lvt = self.lvt[Lvt::Error as usize];
        if lvt & LVT_MASKED != 0 {
            return Effects::NONE;
        }
        let vector = (lvt & LVT_VECTOR) as u8;
        if vector < 16 {
            // The error's own vector is illegal: record that, once, and
            // stop there.
            self.esr_pending |= ESR_RECEIVE_ILLEGAL;
            return Effects::NONE;
        }
        self.accept_fixed(vector, false)
    }

    /// Puts a fixed vector into IRR (or hands it to the hooks).
    fn accept_fixed(&mut self, vector: u8, level: bool) -> Effects {
        if vector < 16 {
            return self.error(ESR_RECEIVE_ILLEGAL);
        }
        self.tmr.put(vector, level);
        if !self.accel.post(vector, level) {
            self.irr.set(vector);
        }
        Effects { wake: true, ..Effects::NONE }
    }

    /// A local source signals through its LVT entry: the timer, thermal
    /// sensor, performance counters or CMCI (the LINT pins go through
    /// [`Vlapic::set_lint`] and errors are the APIC's own). Nothing
    /// happens when the entry is masked, the APIC disabled, or the mode
    /// reserved for that entry.
    pub fn fire(&mut self, which: Lvt) -> Effects {
        if self.mode() == Mode::Disabled || (which == Lvt::Cmci && !self.cfg.cmci) {
            return Effects::NONE;
        }
        let lvt = self.lvt[which as usize];
        if lvt & LVT_MASKED != 0 {
            return Effects::NONE;
        }
        let vector = (lvt & LVT_VECTOR) as u8;
        // The timer and error entries have no delivery-mode field.
        let mode = if matches!(which, Lvt::Timer | Lvt::Error) { 0 } else { (lvt >> 8) & 7 };
        let level = matches!(which, Lvt::Lint0 | Lvt::Lint1) && lvt & LVT_LEVEL != 0 && mode == 0;
        let pin = matches!(which, Lvt::Lint0 | Lvt::Lint1);
        if which == Lvt::Perf && self.cfg.perf_automask {
            // Intel: a performance-monitoring interrupt masks its entry.
            self.lvt[which as usize] |= LVT_MASKED;
        }
        let latched = &mut self.latched;
        match mode {
            0 => {
                if level {
                    self.lvt[which as usize] |= LVT_REMOTE_IRR;
                }
                return self.accept_fixed(vector, level);
            }
            2 => latched.smi = true,
            4 => latched.nmi = true,
            // INIT and ExtINT exist only for the LINT pins. ExtINT is
            // level-sensitive: `take_events` reports it while the pin is
            // asserted, so nothing is latched here.
            5 if pin => {
                latched.init = true;
                latched.sipi = None;
            }
            7 if pin => {}
            _ => return Effects::NONE,
        }
        Effects { wake: true, ..Effects::NONE }
    }

    /// Whether a LINT pin with an unmasked ExtINT entry is asserted: the
    /// 8259's INTR reaches the CPU through the APIC.
    fn extint_asserted(&self) -> bool {
        self.mode() != Mode::Disabled
            && [Lvt::Lint0, Lvt::Lint1].iter().zip(self.lint).any(|(which, asserted)| {
                let lvt = self.lvt[*which as usize];
                asserted && lvt & LVT_MASKED == 0 && (lvt >> 8) & 7 == 7
            })
    }

    /// The LINT0 (`pin` 0) or LINT1 (`pin` 1) input changes level
    /// (`asserted`, polarity already applied). An edge-triggered entry
    /// fires on the rising edge. A level-triggered fixed entry fires while
    /// asserted and its remote IRR is clear; the EOI for its vector clears
    /// the remote IRR.
    pub fn set_lint(&mut self, pin: u8, asserted: bool) -> Effects {
        let (slot, which) = match pin {
            0 => (0, Lvt::Lint0),
            1 => (1, Lvt::Lint1),
            _ => return Effects::NONE,
        };
        let was = core::mem::replace(&mut self.lint[slot], asserted);
        let lvt = self.lvt[which as usize];
        let mode = (lvt >> 8) & 7;
        let level = lvt & LVT_LEVEL != 0 && mode == 0;
        let fire = if mode == 7 {
            // ExtINT is level-sensitive (see `extint_asserted`).
            return Effects { wake: asserted && lvt & LVT_MASKED == 0, ..Effects::NONE };
        } else if level {
            asserted && lvt & LVT_REMOTE_IRR == 0
        } else {
            asserted && !was
        };
        if fire {
            self.fire(which)
        } else {
            Effects::NONE
        }
    }

    /// An interrupt arrives from the bus (an IPI, the IOAPIC or an MSI).
    /// A disabled APIC takes nothing; a software-disabled one takes NMI,
    /// SMI, INIT and SIPI but drops fixed interrupts. A vector below 16
    /// sets ESR "receive illegal vector". SIPI counts only while INIT is
    /// pending or the vCPU waits for it, and only the first one counts.
    pub fn deliver(&mut self, irq: Interrupt) -> Effects {
        if self.mode() == Mode::Disabled {
            return Effects::NONE;
        }
        let sw_enabled = self.sw_enabled();
        let latched = &mut self.latched;
        match irq {
            // A software-disabled APIC takes only NMI, SMI, INIT and SIPI.
            Interrupt::Fixed { .. } | Interrupt::ExtInt if !sw_enabled => return Effects::NONE,
            Interrupt::Fixed { vector, level } => return self.accept_fixed(vector, level),
            Interrupt::Nmi => latched.nmi = true,
            Interrupt::Smi => latched.smi = true,
            Interrupt::ExtInt => latched.extint = true,
            Interrupt::Init => {
                latched.init = true;
                latched.sipi = None;
            }
            Interrupt::Sipi(vector) => {
                let waiting = latched.init || self.activity == Activity::WaitForSipi;
                if !waiting || latched.sipi.is_some() {
                    return Effects::NONE;
                }
                latched.sipi = Some(vector);
            }
        }
        Effects { wake: true, ..Effects::NONE }
    }

    /// Hands the latched requests to the run loop. A pending INIT resets
    /// the APIC's registers (keeping its ID, mode and base) and moves an
    /// application processor to wait-for-SIPI; a pending SIPI then starts
    /// it. NMI, SMI and ExtINT requests are handed over and cleared.
    pub fn take_events(&mut self) -> Events {
        let latched = core::mem::take(&mut self.latched);
        let extint = latched.extint || self.extint_asserted();
        let mut ev = Events { nmi: latched.nmi, smi: latched.smi, extint, ..Events::default() };
        if latched.init {
            self.reset_registers();
            let bsp = self.base & BASE_BSP != 0;
            self.activity = if bsp { Activity::Running } else { Activity::WaitForSipi };
            ev.reset = Some(Reset { wait_for_sipi: !bsp });
            ev.effects.timer = Some(super::TimerAction::Disarm);
            // An INIT overrides whatever else was pending.
            ev.nmi = false;
            ev.smi = false;
            ev.extint = false;
        }
        if let Some(vector) = latched.sipi {
            if self.activity == Activity::WaitForSipi {
                self.activity = Activity::Running;
                ev.start = Some(vector);
            }
        }
        ev
    }

    /// Services the timer if it is due at `now`: fires the timer LVT and
    /// re-arms. Returns the host timer's new state either way.
    pub fn timer_expired(&mut self, now: Tsc) -> Effects {
        let mut fx = self.service_timer(now);
        fx.timer = Some(self.timer.action());
        fx
    }

    /// Fires a due expiry, if any, so that a write that changes the timer
    /// starts from an up-to-date state.
    pub(crate) fn service_timer(&mut self, now: Tsc) -> Effects {
        let clock = self.clock();
        if self.timer.expire(self.timer_mode(), &clock, now) {
            let mut fx = self.fire(Lvt::Timer);
            fx.timer = Some(self.timer.action());
            fx
        } else {
            Effects::NONE
        }
    }

    /// The timer's current count at `now`.
    pub fn current_count(&self, now: Tsc) -> u32 {
        self.timer.current(self.timer_mode(), &self.clock(), now)
    }
}

/// The x2APIC logical ID: cluster `id >> 4` in bits 31:16, and bit
/// `id & 15` set in bits 15:0.
pub const fn x2apic_ldr(id: u32) -> u32 {
    ((id >> 4) << 16) | (1 << (id & 0xf))
}
