// SPDX-License-Identifier: GPL-2.0

//! The VM's in-kernel platform devices: the IOAPIC, the two 8259 PICs, the
//! 8254 PIT (with port 0x61), the ACPI PM timer, the RTC and the HPET, as
//! the pure models of `vdev` drive them, and the interrupt lines between
//! them and the local APICs.
//!
//! # Wiring
//!
//! - An ISA IRQ goes to the PIC input of its number and to the IOAPIC pin
//!   it maps to (IRQ 0 to pin 2, the cascade IRQ 2 to none, the others to
//!   the pin of their number), as on a PC with an ACPI MADT interrupt
//!   override for IRQ 0. A line's level is the OR of its sources'.
//! - The PIT's channel 0 drives ISA IRQ 0 and the RTC ISA IRQ 8; the HPET's
//!   comparators drive IOAPIC pins, ISA IRQs 0 and 8 (legacy replacement)
//!   or MSIs.
//! - The PIC's INTR output drives vCPU 0's LINT0 (an ExtINT entry there
//!   makes the vCPU ask the PIC for the vector, [`Platform::intack`]).
//! - The IOAPIC's deliveries are MSIs to the local APICs, the router that
//!   `VMM_VM_MSI` and IPIs use; a local APIC's EOI of a level-triggered
//!   vector comes back to the IOAPIC ([`Platform::eoi`]).
//!
//! # Locking and contexts
//!
//! One spinlock, taken with interrupts off, guards every device model
//! (`Platform::chipset`): accesses to these devices are rare enough that
//! one lock costs nothing measurable, and an interrupt crossing from one
//! device to another (PIT to PIC and IOAPIC) then needs no lock order. It
//! is a leaf: what a device asks of the local APICs is collected in an
//! [`Out`] and done after the lock is released (the APIC locks are leaves
//! too). Every entry point except [`Platform::tick`] may run with
//! interrupts off (a vCPU completing an exit in its entry window): no
//! sleeping, no allocation, no user memory.
//!
//! Time is `hw::timer::now_ns`. The devices' timers share one host timer:
//! a device's request updates its deadline, and [`Platform::tick`], run by
//! the VM's [`Ticker`] in process context, fires what is due and returns
//! the earliest deadline left.

use kernel::{
    new_spinlock_irq,
    prelude::*,
    sync::{Arc, SpinLockIrq},
};

use crate::hw::timer::{now_ns, wall_secs, OnTick, Ticker};
use crate::uapi::{self, CreateFlags};
use crate::vcpu::deliver_msi;
use crate::vdev::{
    hpet::{self, Hpet},
    ioapic::{self, Ioapic},
    lines::{self, Change, Lines, Source},
    pic::{self, Pic},
    pit::{self, Pit},
    pmtimer::{PmTimer, Width},
    rtc::{self, Rtc},
    LineOp, Msi, Nanos, TimerAction,
};
use crate::vm::Cpus;

mod ports;
mod state;

/// Where the IOAPIC's registers are.
pub(crate) const IOAPIC_BASE: u64 = 0xfec0_0000;
/// Bytes the IOAPIC claims.
const IOAPIC_SIZE: u64 = 0x1000;
/// Where the HPET's registers are.
pub(crate) const HPET_BASE: u64 = 0xfed0_0000;
/// Bytes the HPET claims (its register block).
const HPET_SIZE: u64 = 0x400;

/// The devices with a timer, as indexes into `Chipset::deadline`.
#[derive(Clone, Copy)]
enum Timer {
    Pit = 0,
    Rtc = 1,
    Hpet = 2,
}

/// What `Platform::chipset` guards: the models and their timers'
/// deadlines. A device left out at VM creation is `None`.
struct Chipset {
    pic: Option<Pic>,
    ioapic: Option<Ioapic>,
    pit: Option<Pit>,
    pm: Option<PmTimer>,
    rtc: Option<Rtc>,
    hpet: Option<Hpet>,
    /// When each device's timer is due (`Timer` order).
    deadline: [Option<Nanos>; 3],
    /// The HPET's legacy replacement routing is on: it drives ISA IRQs 0
    /// and 8, and the PIT's and RTC's interrupts go nowhere.
    legacy: bool,
    /// Which sources hold each ISA IRQ and IOAPIC pin up.
    lines: Lines,
}

/// Most MSIs one chipset operation sends: every IOAPIC pin (an EOI), and
/// every HPET comparator.
const MAX_MSIS: usize = 32;

/// What a chipset operation leaves for after the lock: interrupts for the
/// local APICs, and whether the host timer must be looked at again.
struct Out {
    msis: [Msi; MAX_MSIS],
    nr_msis: usize,
    /// The PIC's INTR output changed to this level.
    intr: Option<bool>,
    /// A device asked for its timer: wake the ticker.
    rearm: bool,
}

impl Out {
    const NONE: Out =
        Out { msis: [Msi { addr: 0, data: 0 }; MAX_MSIS], nr_msis: 0, intr: None, rearm: false };

    fn msi(&mut self, m: Msi) {
        if let Some(slot) = self.msis.get_mut(self.nr_msis) {
            *slot = m;
            self.nr_msis += 1;
        }
    }

    fn ioapic(&mut self, fx: &ioapic::Effects) {
        for (_, m) in fx.iter() {
            self.msi(m);
        }
    }

    fn pic(&mut self, fx: pic::Effects) {
        self.intr = fx.intr.or(self.intr);
    }
}

impl Chipset {
    /// `op` from `src` on ISA IRQ `irq` (0-15): its PIC input and its
    /// IOAPIC pin.
    fn isa(&mut self, irq: u8, src: Source, op: LineOp, out: &mut Out) {
        let c = self.lines.isa(usize::from(irq), src, op);
        self.apply(c, out);
    }

    /// `op` from `src` on IOAPIC pin `pin` (0-23) directly.
    fn pin(&mut self, pin: u8, src: Source, op: LineOp, out: &mut Out) {
        let c = self.lines.pin(usize::from(pin), src, op);
        self.apply(c, out);
    }

    /// Tells the PIC and the IOAPIC what a line operation did to them.
    fn apply(&mut self, c: Change, out: &mut Out) {
        if let (Some((irq, op)), Some(p)) = (c.pic, &mut self.pic) {
            out.pic(p.set_irq(irq, op));
        }
        if let (Some((pin, op)), Some(io)) = (c.ioapic, &mut self.ioapic) {
            out.ioapic(&io.set_pin(pin, op));
        }
    }

    /// After an IOAPIC state was restored: the sources follow its levels.
    fn adopt_ioapic_lines(&mut self) {
        let Some(io) = &self.ioapic else { return };
        for p in 0..lines::PINS {
            self.lines.adopt_pin(p, io.line(p as u8));
        }
    }

    /// After a PIC state was restored: the ISA sources follow its input
    /// levels (`levels`, master then slave).
    fn adopt_pic_lines(&mut self, levels: u16) {
        for i in 0..lines::ISA_IRQS {
            self.lines.adopt_isa(i, levels & (1 << i) != 0);
        }
    }

    /// Records a device's timer request.
    fn timer(&mut self, which: Timer, t: Option<TimerAction>, out: &mut Out) {
        match t {
            None => {}
            Some(TimerAction::Disarm) => self.deadline[which as usize] = None,
            Some(TimerAction::Arm(at)) => {
                self.deadline[which as usize] = Some(at);
                out.rearm = true;
            }
        }
    }

    fn pit_fx(&mut self, fx: pit::Effects, out: &mut Out) {
        if let Some(op) = fx.irq0.filter(|_| !self.legacy) {
            self.isa(0, Source::Pit, op, out);
        }
        self.timer(Timer::Pit, fx.timer, out);
    }

    fn rtc_fx(&mut self, fx: rtc::Effects, out: &mut Out) {
        if let Some(op) = fx.irq8.filter(|_| !self.legacy) {
            self.isa(8, Source::Rtc, op, out);
        }
        self.timer(Timer::Rtc, fx.timer, out);
    }

    fn hpet_fx(&mut self, fx: hpet::Effects, out: &mut Out) {
        if let Some(on) = fx.legacy {
            self.legacy = on;
        }
        for (n, irq) in fx.irqs.iter().enumerate() {
            let src = Source::Hpet(n);
            match *irq {
                Some(hpet::Irq::Ioapic { pin, op }) => self.pin(pin, src, op, out),
                Some(hpet::Irq::Isa { irq, op }) => self.isa(irq, src, op, out),
                Some(hpet::Irq::Msi(m)) => out.msi(m),
                None => {}
            }
        }
        self.timer(Timer::Hpet, fx.timer, out);
    }

    /// Fires every timer due at `now`.
    fn expire(&mut self, now: Nanos, out: &mut Out) {
        let due = |d: Option<Nanos>| d.is_some_and(|t| t <= now);
        if due(self.deadline[Timer::Pit as usize]) {
            self.deadline[Timer::Pit as usize] = None;
            if let Some(fx) = self.pit.as_mut().map(|p| p.timer_expired(now)) {
                self.pit_fx(fx, out);
            }
        }
        if due(self.deadline[Timer::Rtc as usize]) {
            self.deadline[Timer::Rtc as usize] = None;
            if let Some(fx) = self.rtc.as_mut().map(|r| r.timer_expired(now)) {
                self.rtc_fx(fx, out);
            }
        }
        if due(self.deadline[Timer::Hpet as usize]) {
            self.deadline[Timer::Hpet as usize] = None;
            if let Some(fx) = self.hpet.as_mut().map(|h| h.timer_expired(now)) {
                self.hpet_fx(fx, out);
            }
        }
    }
}

/// One VM's platform devices. Lives in a [`Ticker`], which runs
/// [`Platform::tick`] for the devices' timers.
#[pin_data]
pub(crate) struct Platform {
    /// Every device model. See the module documentation.
    #[pin]
    chipset: SpinLockIrq<Chipset>,
    /// The vCPUs, for the interrupts the devices raise. Immutable.
    cpus: Arc<Cpus>,
    /// The PM timer's port. Immutable.
    pm_port: u16,
    /// The devices the VM was created without. Immutable: which ports the
    /// platform claims is known without the lock.
    absent: CreateFlags,
}

impl Platform {
    /// The devices `flags` does not leave out; the PM timer at `pm_port`.
    pub(crate) fn new(
        cpus: Arc<Cpus>,
        flags: CreateFlags,
        pm_port: u16,
    ) -> Result<Arc<Ticker<Platform>>> {
        let now = now_ns();
        let has = |f: CreateFlags| !flags.contains(f);
        let chipset = Chipset {
            pic: has(CreateFlags::NO_PIC).then(Pic::new),
            ioapic: has(CreateFlags::NO_IOAPIC).then(Ioapic::new),
            pit: has(CreateFlags::NO_PIT).then(Pit::new),
            pm: has(CreateFlags::NO_PM_TIMER).then(|| PmTimer::new(Width::Bits24, now)),
            rtc: has(CreateFlags::NO_RTC).then(|| Rtc::new(now, wall_secs())),
            hpet: has(CreateFlags::NO_HPET).then(Hpet::new),
            deadline: [None; 3],
            legacy: false,
            lines: Lines::new(),
        };
        Arc::pin_init(
            Ticker::new(pin_init!(Platform {
                chipset <- new_spinlock_irq!(chipset, "vmm_chipset"),
                cpus,
                pm_port,
                absent: flags,
            })),
            GFP_KERNEL,
        )
    }

    /// Runs `f` on the chipset, then carries out what it asked for.
    /// `ticker`: this platform's, to wake for a timer request.
    fn with(&self, ticker: Option<&Arc<Ticker<Platform>>>, f: impl FnOnce(&mut Chipset, &mut Out)) {
        let mut out = Out::NONE;
        f(&mut self.chipset.lock(), &mut out);
        self.send(&out);
        if out.rearm {
            if let Some(t) = ticker {
                t.wake();
            }
        }
    }

    /// Delivers what a chipset operation raised. Any context.
    fn send(&self, out: &Out) {
        for m in out.msis.iter().take(out.nr_msis) {
            deliver_msi(&self.cpus, m.addr, m.data);
        }
        if let (Some(level), Some(bsp)) = (out.intr, self.cpus.get(0)) {
            bsp.set_lint0(level);
        }
    }

    /// Whether a device the VM has sits at `gpa`. Lock-free: the
    /// sequencer's MMIO exits cost nothing here.
    fn claims_mmio(&self, gpa: u64) -> bool {
        let has = |f: CreateFlags| !self.absent.contains(f);
        (has(CreateFlags::NO_IOAPIC) && offset(gpa, IOAPIC_BASE, IOAPIC_SIZE).is_some())
            || (has(CreateFlags::NO_HPET) && offset(gpa, HPET_BASE, HPET_SIZE).is_some())
    }

    /// An MMIO read of `buf.len()` bytes at `gpa`; `false` if no device
    /// claims it.
    pub(crate) fn mmio_read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        if !self.claims_mmio(gpa) {
            return false;
        }
        let size = buf.len().min(8) as u8;
        let now = now_ns();
        let v = {
            let mut c = self.chipset.lock();
            if let (Some(off), Some(io)) = (offset(gpa, IOAPIC_BASE, IOAPIC_SIZE), &c.ioapic) {
                io.read(off, size)
            } else if let (Some(off), Some(h)) = (offset(gpa, HPET_BASE, HPET_SIZE), &mut c.hpet) {
                h.read(off, size, now)
            } else {
                return false;
            }
        };
        for (i, b) in buf.iter_mut().enumerate() {
            *b = v.checked_shr(8 * i as u32).unwrap_or(0) as u8;
        }
        true
    }

    /// An MMIO write of `data` at `gpa`; `false` if no device claims it.
    pub(crate) fn mmio_write(this: &Arc<Ticker<Platform>>, gpa: u64, data: &[u8]) -> bool {
        if !this.claims_mmio(gpa) {
            return false;
        }
        let size = data.len().min(8) as u8;
        let value = data.iter().take(8).rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
        let now = now_ns();
        let mut claimed = false;
        this.with(Some(this), |c, out| {
            if let (Some(off), Some(io)) = (offset(gpa, IOAPIC_BASE, IOAPIC_SIZE), &mut c.ioapic) {
                out.ioapic(&io.write(off, size, value));
                claimed = true;
            } else if let (Some(off), Some(h)) = (offset(gpa, HPET_BASE, HPET_SIZE), &mut c.hpet) {
                let fx = h.write(off, size, value, now);
                c.hpet_fx(fx, out);
                claimed = true;
            }
        });
        claimed
    }

    /// A local APIC's EOI of level-triggered `vector`.
    pub(crate) fn eoi(&self, vector: u8) {
        self.with(None, |c, out| {
            if let Some(io) = &mut c.ioapic {
                out.ioapic(&io.eoi(vector));
            }
        });
    }

    /// vCPU 0 acknowledges the PIC's interrupt (ExtINT): the vector, or
    /// `None` without a PIC.
    pub(crate) fn intack(&self) -> Option<u8> {
        let mut vector = None;
        self.with(None, |c, out| {
            if let Some(p) = &mut c.pic {
                let (v, fx) = p.intack();
                out.pic(fx);
                vector = Some(v);
            }
        });
        vector
    }

    /// `VMM_VM_IRQ_LINE`.
    pub(crate) fn irq_line(this: &Arc<Ticker<Platform>>, req: &uapi::VmmIrqLine) -> Result {
        if req.flags != 0 {
            return Err(EINVAL);
        }
        let op = match req.op {
            uapi::VMM_LINE_DEASSERT => Some(LineOp::Deassert),
            uapi::VMM_LINE_ASSERT => Some(LineOp::Assert),
            uapi::VMM_LINE_PULSE => Some(LineOp::Pulse),
            uapi::VMM_LINE_SET_EDGE | uapi::VMM_LINE_SET_LEVEL => None,
            _ => return Err(EINVAL),
        };
        let mut r = Ok(());
        match req.kind {
            uapi::VMM_IRQ_ISA if req.line < uapi::VMM_ISA_IRQS => {
                let irq = req.line as u8;
                this.with(None, |c, out| match op {
                    _ if c.pic.is_none() && c.ioapic.is_none() => r = Err(ENODEV),
                    Some(op) => c.isa(irq, Source::Sequencer, op, out),
                    None => {
                        let level = req.op == uapi::VMM_LINE_SET_LEVEL;
                        r = match &mut c.pic {
                            Some(p) => set_trigger(p, irq, level, out),
                            None => Err(ENODEV),
                        };
                    }
                });
            }
            uapi::VMM_IRQ_IOAPIC if req.line < uapi::VMM_IOAPIC_PINS => {
                let op = op.ok_or(EINVAL)?;
                this.with(None, |c, out| match c.ioapic {
                    Some(_) => c.pin(req.line as u8, Source::Sequencer, op, out),
                    None => r = Err(ENODEV),
                });
            }
            _ => return Err(EINVAL),
        }
        r
    }
}

impl OnTick for Platform {
    fn tick(&self) -> Option<u64> {
        let mut next = None;
        self.with(None, |c, out| {
            c.expire(now_ns(), out);
            next = c.deadline.iter().flatten().min().copied();
        });
        next
    }
}

/// Sets ISA IRQ `irq`'s bit in the PIC's ELCR (`level`) or clears it, as
/// the guest would through ports 0x4D0 and 0x4D1. `EINVAL` for the IRQs
/// whose bit is fixed at edge (0, 1, 2, 8, 13).
fn set_trigger(p: &mut Pic, irq: u8, level: bool, out: &mut Out) -> Result {
    let port = 0x4d0 + u16::from(irq >> 3);
    let bit = 1u8 << (irq & 7);
    let (old, fx) = p.read(port);
    out.pic(fx);
    let new = if level { old | bit } else { old & !bit };
    out.pic(p.write(port, new));
    let (now, fx) = p.read(port);
    out.pic(fx);
    if now & bit == new & bit {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// The PM timer's port for a `VMM_CREATE_VM` asking for `pm_port`: 0 is
/// the default; otherwise 4-byte aligned, below 0x10000 and clear of the
/// other devices' ports. `EINVAL` for anything else, or for a port without
/// the PM timer.
pub(crate) fn check_pm_port(flags: CreateFlags, pm_port: u32) -> Result<u16> {
    if pm_port == 0 {
        return Ok(uapi::VMM_PM_PORT_DEFAULT as u16);
    }
    let clash = |p: u32| matches!(p, 0x20..=0x21 | 0x40..=0x43 | 0x61 | 0x70..=0x71 | 0xa0..=0xa1 | 0x4d0..=0x4d1);
    if flags.contains(CreateFlags::NO_PM_TIMER)
        || pm_port % 4 != 0
        || pm_port > 0xfffc
        || (pm_port..pm_port + 4).any(clash)
    {
        return Err(EINVAL);
    }
    Ok(pm_port as u16)
}

/// `gpa`'s offset in `[base, base + size)`.
fn offset(gpa: u64, base: u64, size: u64) -> Option<u64> {
    gpa.checked_sub(base).filter(|o| *o < size)
}
