// SPDX-License-Identifier: GPL-2.0

//! The interrupt lines between the devices: which sources hold each ISA
//! IRQ and each IOAPIC pin up, and what the PIC and IOAPIC see when one of
//! them acts.
//!
//! A line's level is the OR of its sources' (a wired-OR bus; KVM keeps one
//! bit per source the same way): a source that lowers a line another
//! holds up changes nothing, and a pulse on a line held up makes no edge.
//! ISA IRQ `n` drives PIC input `n` and the IOAPIC pin [`pin_of`] gives,
//! so an IOAPIC pin is up while its own sources or its ISA IRQ's hold it.

use super::LineOp;

/// ISA IRQs.
pub const ISA_IRQS: usize = 16;
/// IOAPIC pins.
pub const PINS: usize = 24;

/// Who drives a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The sequencer (`VMM_VM_IRQ_LINE`).
    Sequencer,
    /// The PIT's channel 0.
    Pit,
    /// The RTC.
    Rtc,
    /// HPET comparator `n` (0-7).
    Hpet(usize),
}

impl Source {
    /// The source's bit in a line's mask.
    pub const fn bit(self) -> u16 {
        match self {
            Source::Sequencer => 1,
            Source::Pit => 2,
            Source::Rtc => 4,
            Source::Hpet(n) => 8 << if n < 7 { n } else { 7 },
        }
    }
}

/// The bit of a level a restored IOAPIC or PIC state brought, whose
/// source is not known: the first source that lowers or pulses the line
/// takes it down with its own.
const RESTORED: u16 = 1 << 15;

/// The IOAPIC pin ISA IRQ `irq` drives: IRQ 0 drives pin 2 (the interrupt
/// source override firmware describes), IRQ 2 (the PICs' cascade) none,
/// the others the pin of their number.
pub const fn pin_of(irq: usize) -> Option<usize> {
    match irq {
        0 => Some(2),
        2 => None,
        i if i < ISA_IRQS => Some(i),
        _ => None,
    }
}

/// The ISA IRQ that drives IOAPIC pin `pin`, if any.
pub const fn isa_of(pin: usize) -> Option<usize> {
    match pin {
        2 => Some(0),
        0 => None,
        p if p < ISA_IRQS => Some(p),
        _ => None,
    }
}

/// What an operation on a line asks of the interrupt controllers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Change {
    /// The PIC input (the ISA IRQ) and what it does.
    pub pic: Option<(u8, LineOp)>,
    /// The IOAPIC pin and what it does.
    pub ioapic: Option<(u8, LineOp)>,
}

/// The sources holding each line up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lines {
    isa: [u16; ISA_IRQS],
    pin: [u16; PINS],
}

/// Applies `op` from the source with bit `src` to a line whose sources
/// are `mask`; returns what the line itself does (`None`: nothing).
fn drive(mask: &mut u16, src: u16, op: LineOp) -> Option<LineOp> {
    let was = *mask != 0;
    match op {
        LineOp::Assert => {
            *mask |= src;
            (!was).then_some(LineOp::Assert)
        }
        LineOp::Deassert => {
            *mask &= !(src | RESTORED);
            (was && *mask == 0).then_some(LineOp::Deassert)
        }
        LineOp::Pulse => {
            *mask &= !(src | RESTORED);
            (*mask == 0).then_some(LineOp::Pulse)
        }
    }
}

impl Lines {
    /// Every line down.
    pub const fn new() -> Lines {
        Lines { isa: [0; ISA_IRQS], pin: [0; PINS] }
    }

    /// Whether ISA IRQ `irq` is up.
    pub fn isa_level(&self, irq: usize) -> bool {
        self.isa.get(irq).is_some_and(|m| *m != 0)
    }

    /// Whether IOAPIC pin `pin` is up: held directly, or through its ISA
    /// IRQ.
    pub fn pin_level(&self, pin: usize) -> bool {
        self.pin.get(pin).is_some_and(|m| *m != 0) || isa_of(pin).is_some_and(|i| self.isa_level(i))
    }

    /// `op` from `src` on ISA IRQ `irq`; out of range does nothing.
    pub fn isa(&mut self, irq: usize, src: Source, op: LineOp) -> Change {
        let pin = pin_of(irq);
        let pin_was = pin.map(|p| self.pin_level(p));
        if op != LineOp::Assert {
            // A restored level on the pin is this line's too.
            if let Some(m) = pin.and_then(|p| self.pin.get_mut(p)) {
                *m &= !RESTORED;
            }
        }
        let Some(mask) = self.isa.get_mut(irq) else { return Change::default() };
        let Some(line) = drive(mask, src.bit(), op) else { return Change::default() };
        Change {
            pic: Some((irq as u8, line)),
            ioapic: pin.zip(pin_was).and_then(|(p, was)| self.pin_change(p, was, line)),
        }
    }

    /// `op` from `src` on IOAPIC pin `pin` directly; out of range does
    /// nothing.
    pub fn pin(&mut self, pin: usize, src: Source, op: LineOp) -> Change {
        let was = self.pin_level(pin);
        if op != LineOp::Assert {
            if let Some(m) = isa_of(pin).and_then(|i| self.isa.get_mut(i)) {
                *m &= !RESTORED;
            }
        }
        let Some(mask) = self.pin.get_mut(pin) else { return Change::default() };
        let ioapic = drive(mask, src.bit(), op).and_then(|line| self.pin_change(pin, was, line));
        Change { pic: None, ioapic }
    }

    /// What pin `p`, which was at level `was`, does after `line` acted on
    /// one of its inputs: its combined level changed, or a pulse went by
    /// while it is low.
    fn pin_change(&self, p: usize, was: bool, line: LineOp) -> Option<(u8, LineOp)> {
        let op = match (was, self.pin_level(p), line) {
            (false, true, _) => LineOp::Assert,
            (true, false, _) => LineOp::Deassert,
            (false, false, LineOp::Pulse) => LineOp::Pulse,
            _ => return None,
        };
        Some((p as u8, op))
    }

    /// A restored IOAPIC state holds pin `pin` at `level`: a line it holds
    /// up is held by an unknown source until any source lowers it; one it
    /// holds down has no source.
    pub fn adopt_pin(&mut self, pin: usize, level: bool) {
        if level == self.pin_level(pin) {
            return;
        }
        if level {
            if let Some(m) = self.pin.get_mut(pin) {
                *m |= RESTORED;
            }
        } else {
            if let Some(m) = self.pin.get_mut(pin) {
                *m = 0;
            }
            if let Some(m) = isa_of(pin).and_then(|i| self.isa.get_mut(i)) {
                *m = 0;
            }
        }
    }

    /// A restored PIC state holds ISA IRQ `irq` at `level`, as
    /// [`Lines::adopt_pin`].
    pub fn adopt_isa(&mut self, irq: usize, level: bool) {
        if let Some(m) = self.isa.get_mut(irq) {
            if level && *m == 0 {
                *m = RESTORED;
            } else if !level {
                *m = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineOp::*;

    #[test]
    fn isa_irqs_map_to_pins_as_a_pc_with_an_irq0_override() {
        assert_eq!(pin_of(0), Some(2));
        assert_eq!(pin_of(2), None);
        assert_eq!(pin_of(8), Some(8));
        assert_eq!(pin_of(16), None);
        assert_eq!(isa_of(2), Some(0));
        assert_eq!(isa_of(0), None);
        assert_eq!(isa_of(20), None);
        for irq in 0..ISA_IRQS {
            if let Some(p) = pin_of(irq) {
                assert_eq!(isa_of(p), Some(irq));
            }
        }
    }

    #[test]
    fn a_line_is_the_or_of_its_sources() {
        let mut l = Lines::new();
        let c = l.isa(8, Source::Rtc, Assert);
        assert_eq!(c, Change { pic: Some((8, Assert)), ioapic: Some((8, Assert)) });
        // The sequencer asserts too: no change; the RTC lets go: still up.
        assert_eq!(l.isa(8, Source::Sequencer, Assert), Change::default());
        assert_eq!(l.isa(8, Source::Rtc, Deassert), Change::default());
        assert!(l.isa_level(8) && l.pin_level(8));
        // A pulse while it is held up makes no edge.
        assert_eq!(l.isa(8, Source::Rtc, Pulse), Change::default());
        let c = l.isa(8, Source::Sequencer, Deassert);
        assert_eq!(c, Change { pic: Some((8, Deassert)), ioapic: Some((8, Deassert)) });
        // Down, a pulse is an edge on both.
        let c = l.isa(0, Source::Pit, Pulse);
        assert_eq!(c, Change { pic: Some((0, Pulse)), ioapic: Some((2, Pulse)) });
        assert!(!l.isa_level(0) && !l.pin_level(2));
    }

    #[test]
    fn a_pin_counts_its_isa_irq_and_its_own_sources() {
        let mut l = Lines::new();
        assert_eq!(l.pin(2, Source::Hpet(0), Assert).ioapic, Some((2, Assert)));
        // IRQ 0 rises on the PIC only: pin 2 is up already.
        assert_eq!(
            l.isa(0, Source::Sequencer, Assert),
            Change { pic: Some((0, Assert)), ioapic: None }
        );
        assert_eq!(l.pin(2, Source::Hpet(0), Deassert).ioapic, None);
        assert_eq!(l.isa(0, Source::Sequencer, Deassert).ioapic, Some((2, Deassert)));
        // Two comparators on one pin.
        l.pin(20, Source::Hpet(1), Assert);
        l.pin(20, Source::Hpet(2), Assert);
        assert_eq!(l.pin(20, Source::Hpet(1), Deassert).ioapic, None);
        assert_eq!(l.pin(20, Source::Hpet(2), Deassert).ioapic, Some((20, Deassert)));
        // The cascade IRQ reaches the PIC only; out of range does nothing.
        assert_eq!(
            l.isa(2, Source::Sequencer, Pulse),
            Change { pic: Some((2, Pulse)), ioapic: None }
        );
        assert_eq!(l.isa(16, Source::Sequencer, Assert), Change::default());
        assert_eq!(l.pin(24, Source::Sequencer, Assert), Change::default());
        assert_eq!(l, Lines::new());
    }

    #[test]
    fn restored_levels_are_adopted() {
        let mut l = Lines::new();
        l.adopt_pin(9, true);
        assert!(l.pin_level(9));
        // Any source that lowers it takes the restored level down.
        assert_eq!(l.pin(9, Source::Hpet(3), Deassert).ioapic, Some((9, Deassert)));
        l.adopt_isa(8, true);
        l.isa(8, Source::Rtc, Assert);
        assert_eq!(l.isa(8, Source::Sequencer, Deassert), Change::default(), "the RTC holds it");
        assert_eq!(l.isa(8, Source::Rtc, Deassert).pic, Some((8, Deassert)));
        // Restored on both the PIC and the IOAPIC: the RTC's lowering
        // takes down both.
        l.adopt_isa(8, false);
        l.adopt_pin(8, true);
        l.adopt_isa(8, true);
        assert_eq!(
            l.isa(8, Source::Rtc, Deassert),
            Change { pic: Some((8, Deassert)), ioapic: Some((8, Deassert)) }
        );
        l.isa(5, Source::Rtc, Assert);
        l.adopt_pin(5, false);
        assert!(!l.pin_level(5) && !l.isa_level(5));
        l.adopt_isa(4, true);
        assert!(l.isa_level(4) && l.pin_level(4));
        l.adopt_isa(4, false);
        assert_eq!(l, Lines::new());
    }
}
