// SPDX-License-Identifier: GPL-2.0

//! Host tests of the PIC pair, against the Intel 8259A datasheet and the
//! programming sequences of Linux (`arch/x86/kernel/i8259.c`) and SeaBIOS
//! (`src/hw/pic.c`). Internal state is read through the snapshot; what
//! the guest sees is read through the ports.

use super::super::common::{ImportError, LineOp};
use super::*;

const M_CMD: u16 = MASTER_CMD;
const M_DATA: u16 = MASTER_DATA;
const S_CMD: u16 = SLAVE_CMD;
const S_DATA: u16 = SLAVE_DATA;

/// OCW2 non-specific EOI.
const EOI: u8 = 0x20;
/// OCW2 specific EOI for input 0 (add the input).
const SEOI: u8 = 0x60;
/// OCW3: read IRR / read ISR / poll.
const READ_IRR: u8 = 0x0a;
const READ_ISR: u8 = 0x0b;
const POLL: u8 = 0x0c;

const UP: Effects = Effects { intr: Some(true) };
const DOWN: Effects = Effects { intr: Some(false) };

/// Writes `seq` in order; returns the merged effects.
fn out(pic: &mut Pic, seq: &[(u16, u8)]) -> Effects {
    let mut fx = Effects::NONE;
    for &(port, value) in seq {
        fx.merge(pic.write(port, value));
    }
    fx
}

/// A read that must have no effect.
fn inb(pic: &mut Pic, port: u16) -> u8 {
    let (v, fx) = pic.read(port);
    assert_eq!(fx, Effects::NONE, "read of {port:#x} had an effect");
    v
}

fn pulse(pic: &mut Pic, irq: u8) -> Effects {
    pic.set_irq(irq, LineOp::Pulse)
}

fn isr(pic: &Pic) -> (u8, u8) {
    let s = pic.snapshot();
    (s.master.isr, s.slave.isr)
}

/// Linux `init_8259A(auto_eoi)` on x86-64 (vectors 0x30 and 0x38), then
/// the cached masks it restores at boot (all masked but the cascade).
fn linux(auto_eoi: bool) -> Pic {
    let mut pic = Pic::new();
    let icw4 = if auto_eoi { 0x03 } else { 0x01 };
    let fx = out(
        &mut pic,
        &[
            (M_DATA, 0xff),
            (S_DATA, 0xff),
            (M_CMD, 0x11),
            (M_DATA, 0x30),
            (M_DATA, 0x04),
            (M_DATA, icw4),
            (S_CMD, 0x11),
            (S_DATA, 0x38),
            (S_DATA, 0x02),
            (S_DATA, 0x01),
            (M_DATA, 0xfb),
            (S_DATA, 0xff),
        ],
    );
    assert_eq!(fx, Effects::NONE);
    pic
}

/// [`linux`] with every input unmasked.
fn linux_open(auto_eoi: bool) -> Pic {
    let mut pic = linux(auto_eoi);
    let _ = out(&mut pic, &[(M_DATA, 0), (S_DATA, 0)]);
    pic
}

#[test]
fn ports_after_reset() {
    // Reset: IRR, IMR, ELCR 0; ports that are not the device's float high.
    let cases: [(u16, u8); 14] = [
        (0x20, 0),
        (0x21, 0),
        (0xa0, 0),
        (0xa1, 0),
        (0x4d0, 0),
        (0x4d1, 0),
        (0x00, 0xff),
        (0x1f, 0xff),
        (0x22, 0xff),
        (0x9f, 0xff),
        (0xa2, 0xff),
        (0x4cf, 0xff),
        (0x4d2, 0xff),
        (0xffff, 0xff),
    ];
    let mut pic = Pic::new();
    for (port, want) in cases {
        assert_eq!(inb(&mut pic, port), want, "port {port:#x}");
    }
    // Writes elsewhere change nothing, whatever the value.
    let mut pic = linux_open(false);
    let before = pic.snapshot();
    for (port, _) in cases.iter().skip(6) {
        for value in [0x00, 0x11, 0xff] {
            assert_eq!(pic.write(*port, value), Effects::NONE);
        }
    }
    assert_eq!(pic.snapshot(), before);
}

#[test]
fn elcr_fixed_edge_inputs() {
    // PIIX/ICH: IRQ 0, 1, 2, 8 and 13 are always edge.
    let level_capable: [bool; 16] = [
        false, false, false, true, true, true, true, true, //
        false, true, true, true, true, false, true, true,
    ];
    for (irq, &capable) in level_capable.iter().enumerate() {
        let mut pic = Pic::new();
        let port = if irq < 8 { ELCR_MASTER } else { ELCR_SLAVE };
        let b = 1u8 << (irq % 8);
        let _ = pic.write(port, b);
        assert_eq!(inb(&mut pic, port), if capable { b } else { 0 }, "IRQ {irq}");
    }
    let mut pic = Pic::new();
    let _ = out(&mut pic, &[(ELCR_MASTER, 0xff), (ELCR_SLAVE, 0xff)]);
    assert_eq!((inb(&mut pic, ELCR_MASTER), inb(&mut pic, ELCR_SLAVE)), (0xf8, 0xde));
}

#[test]
fn icw_sequence_length() {
    // Datasheet "Initialization Sequence": ICW3 only without SNGL, ICW4
    // only with IC4; LTIM, ADI and A7-A5 change nothing here.
    let cases: [(u8, usize, &str); 7] = [
        (0x11, 3, "cascade, IC4"),
        (0x13, 2, "single, IC4"),
        (0x10, 2, "cascade, no ICW4"),
        (0x12, 1, "single, no ICW4"),
        (0x19, 3, "LTIM ignored"),
        (0x15, 3, "ADI ignored"),
        (0xf1, 3, "A7-A5 ignored"),
    ];
    for (icw1, icws, what) in cases {
        let mut pic = linux(false);
        let _ = pic.write(M_CMD, icw1);
        let mut seq = [0x48u8, 0x04, 0x01].into_iter();
        for _ in 0..icws {
            assert!(!pic.intr(), "{what}: INT held low during initialisation");
            let _ = pic.write(M_DATA, seq.next().unwrap_or(0));
            assert_eq!(inb(&mut pic, M_DATA), 0, "{what}: ICWs do not touch the IMR");
        }
        // The sequence is over: the next data write is OCW1.
        let _ = pic.write(M_DATA, 0x5a);
        assert_eq!(inb(&mut pic, M_DATA), 0x5a, "{what}");
        assert_eq!(pulse(&mut pic, 0), UP, "{what}");
        assert_eq!(pic.intack(), (0x48, DOWN), "{what}: ICW2 bits 2:0 dropped");
        // Edge-triggered whatever LTIM says: acknowledge consumed it.
        let _ = pic.write(M_CMD, EOI);
        assert!(!pic.intr(), "{what}");
    }
}

#[test]
fn icw1_initial_state() {
    // Datasheet, after ICW1: edge sense reset, IMR cleared, IR7 lowest,
    // special mask off, IRR selected; ICW4 functions cleared without IC4.
    let mut pic = linux_open(true);
    let _ = out(
        &mut pic,
        &[
            (M_CMD, READ_ISR),
            (M_CMD, 0x68), // special mask mode on
            (M_CMD, 0x80), // rotate in AEOI on
            (M_CMD, 0xc3), // IR3 lowest
            (ELCR_MASTER, 0x20),
            (M_DATA, 0xaa),
        ],
    );
    let _ = pic.set_irq(5, LineOp::Assert);
    let _ = pulse(&mut pic, 4);
    let _ = pic.set_irq(6, LineOp::Assert);
    let m = pic.snapshot().master;
    assert_eq!(
        (m.irr, m.imr, m.lowest_priority, m.special_mask, m.read_isr),
        (0x70, 0xaa, 3, 1, 1)
    );

    let _ = pic.write(M_CMD, 0x11);
    let m = pic.snapshot().master;
    assert_eq!(m.imr, 0, "IMR cleared");
    assert_eq!(m.lowest_priority, 7, "IR7 lowest");
    assert_eq!((m.special_mask, m.read_isr, m.poll), (0, 0, 0));
    assert_eq!(m.irr, 0x20, "edge requests dropped, level request kept");
    assert_eq!(m.lines, 0x60, "line levels are the inputs'");
    assert_eq!((m.auto_eoi, m.rotate_on_aeoi), (1, 1), "kept until ICW4");
    assert_eq!(m.init, 2);
    assert_eq!(inb(&mut pic, M_CMD), 0x20, "command port reads the IRR");
    // IRQ 6 stays high: edge sense needs a new rising edge.
    let _ = out(&mut pic, &[(M_DATA, 0x30), (M_DATA, 0x04), (M_DATA, 0x01)]);
    let m = pic.snapshot().master;
    assert_eq!((m.init, m.auto_eoi), (1, 0), "ICW4 0x01: normal EOI");
    assert_eq!(pic.intack().0, 0x35);
    assert_eq!(pic.write(M_CMD, EOI), UP, "level IRQ 5 is still high");
    assert_eq!(pic.set_irq(5, LineOp::Deassert), DOWN, "IRQ 6 did not rise again: no request");
    // ICW1 without IC4 clears AEOI and SFNM at once.
    let mut pic = linux(true);
    let _ = pic.write(M_CMD, 0x10);
    assert_eq!(pic.snapshot().master.auto_eoi, 0);
}

#[test]
fn linux_init_and_eoi() {
    for auto_eoi in [false, true] {
        let mut pic = linux(auto_eoi);
        assert_eq!((inb(&mut pic, M_DATA), inb(&mut pic, S_DATA)), (0xfb, 0xff));
        // Linux's legacy-PIC probe: write a mask, read it back.
        let _ = pic.write(M_DATA, 0xfa);
        assert_eq!(inb(&mut pic, M_DATA), 0xfa);

        // IRQ 0 (PIT) on the master: vector 0x30.
        assert_eq!(pulse(&mut pic, 0), UP);
        assert_eq!(pic.intack(), (0x30, DOWN));
        // i8259A_irq_real: OCW3 read ISR, read, back to IRR.
        let _ = pic.write(M_CMD, READ_ISR);
        assert_eq!(inb(&mut pic, M_CMD), if auto_eoi { 0 } else { 1 }, "AEOI={auto_eoi}");
        let _ = pic.write(M_CMD, READ_IRR);
        // mask_and_ack_8259A: mask, specific EOI.
        let _ = out(&mut pic, &[(M_DATA, 0xfb), (M_CMD, SEOI)]);
        assert_eq!(isr(&pic), (0, 0));

        // IRQ 8 (RTC) through the slave: vector 0x38.
        let _ = pic.write(S_DATA, 0xfe);
        assert_eq!(pulse(&mut pic, 8), UP);
        assert_eq!(pic.intack(), (0x38, DOWN));
        assert_eq!(isr(&pic), if auto_eoi { (0, 1) } else { (0x04, 1) }, "slave ICW4 is 0x01");
        // Slave specific EOI, then the master's for the cascade input.
        let _ = out(&mut pic, &[(S_CMD, SEOI), (M_CMD, SEOI + 2)]);
        assert_eq!(isr(&pic), (0, 0));
        assert!(!pic.intr());
    }
}

#[test]
fn seabios_pic_setup() {
    // SeaBIOS pic_reset(0x08, 0x70): the two chips interleaved.
    let mut pic = Pic::new();
    let _ = out(
        &mut pic,
        &[
            (M_CMD, 0x11),
            (S_CMD, 0x11),
            (M_DATA, 0x08),
            (S_DATA, 0x70),
            (M_DATA, 0x04),
            (S_DATA, 0x02),
            (M_DATA, 0x01),
            (S_DATA, 0x01),
            (M_DATA, 0xfb),
            (S_DATA, 0xff),
        ],
    );
    assert_eq!((inb(&mut pic, M_DATA), inb(&mut pic, S_DATA)), (0xfb, 0xff));
    // enable_hwirq(1): keyboard at 0x09; pic_eoi1 is a non-specific EOI.
    let _ = pic.write(M_DATA, 0xf9);
    assert_eq!(pulse(&mut pic, 1), UP);
    assert_eq!(pic.intack(), (0x09, DOWN));
    let _ = pic.write(M_CMD, EOI);
    assert_eq!(isr(&pic), (0, 0));
    // enable_hwirq(14): disk at 0x76; pic_eoi2 ends the slave, then the master.
    let _ = pic.write(S_DATA, 0xbf);
    assert_eq!(pulse(&mut pic, 14), UP);
    assert_eq!(pic.intack(), (0x76, DOWN));
    assert_eq!(isr(&pic), (0x04, 0x40));
    let _ = out(&mut pic, &[(S_CMD, EOI), (M_CMD, EOI)]);
    assert_eq!(isr(&pic), (0, 0));
}

#[test]
fn masking() {
    // OCW1: a masked request stays in IRR and raises nothing.
    let mut pic = linux(false);
    assert_eq!(pulse(&mut pic, 3), Effects::NONE);
    assert_eq!(inb(&mut pic, M_CMD), 0x08, "IRR holds the masked request");
    assert_eq!(pic.write(M_DATA, 0xf3), UP, "unmasking raises INTR");
    assert_eq!(pic.write(M_DATA, 0xfb), DOWN, "masking lowers it");
    assert_eq!(pic.intack(), (0x37, Effects::NONE), "nothing to acknowledge: IR7");
    assert_eq!(isr(&pic), (0, 0));
    assert_eq!(pic.write(M_DATA, 0xf3), UP);
    assert_eq!(pic.intack(), (0x33, DOWN));
}

#[test]
fn fully_nested_priority() {
    // Fixed priority: IR0 highest, IR7 lowest; an in-service level blocks
    // itself and lower levels, not higher ones.
    let mut pic = linux_open(false);
    let _ = pulse(&mut pic, 5);
    let _ = pulse(&mut pic, 3);
    assert_eq!(pic.intack(), (0x33, DOWN), "IR3 before IR5; IR5 blocked by IS3");
    assert_eq!(pulse(&mut pic, 1), UP, "IR1 nests above IS3");
    assert_eq!(pic.intack(), (0x31, DOWN));
    assert_eq!(isr(&pic).0, 0x0a);
    assert_eq!(pic.write(M_CMD, EOI), Effects::NONE, "clears IS1; IS3 still blocks IR5");
    assert_eq!(isr(&pic).0, 0x08);
    assert_eq!(pic.write(M_CMD, EOI), UP);
    assert_eq!(pic.intack(), (0x35, DOWN));
}

#[test]
fn priority_order_by_lowest() {
    // OCW2 set priority (110): the named input becomes lowest. With AEOI
    // nothing stays in service, so the acknowledges come in priority order.
    let cases: [(Option<u8>, [u8; 7]); 4] = [
        (None, [0, 1, 3, 4, 5, 6, 7]),
        (Some(0xc7), [0, 1, 3, 4, 5, 6, 7]),
        (Some(0xc4), [5, 6, 7, 0, 1, 3, 4]),
        (Some(0xc0), [1, 3, 4, 5, 6, 7, 0]),
    ];
    for (cmd, order) in cases {
        let mut pic = linux_open(true);
        if let Some(cmd) = cmd {
            let _ = pic.write(M_CMD, cmd);
        }
        for irq in [0, 1, 3, 4, 5, 6, 7] {
            let _ = pulse(&mut pic, irq);
        }
        for pin in order {
            assert_eq!(pic.intack().0, 0x30 | pin, "{cmd:x?}");
        }
        assert!(!pic.intr());
    }
}

#[test]
fn eoi_commands() {
    // IR3 in service, IR3 and IR6 requested again. Each OCW2 EOI form:
    // the ISR after it and the next vector (rotation makes IR3 lowest).
    let cases: [(u8, u8, u8, &str); 7] = [
        (0x20, 0x00, 0x33, "non-specific EOI"),
        (0x63, 0x00, 0x33, "specific EOI 3"),
        (0x65, 0x08, 0x37, "specific EOI 5: IS3 stays, nothing passes it"),
        (0xa0, 0x00, 0x36, "rotate on non-specific EOI"),
        (0xe3, 0x00, 0x36, "rotate on specific EOI 3"),
        (0x40, 0x08, 0x37, "no operation"),
        (0xc5, 0x08, 0x36, "set priority: IR5 lowest, so IR6 ranks above IS3"),
    ];
    for (cmd, isr_after, next, what) in cases {
        let mut pic = linux_open(false);
        let _ = pulse(&mut pic, 3);
        assert_eq!(pic.intack().0, 0x33);
        let _ = pulse(&mut pic, 3);
        let _ = pulse(&mut pic, 6);
        let _ = pic.write(M_CMD, cmd);
        assert_eq!(isr(&pic).0, isr_after, "{what}");
        assert_eq!(pic.intack().0, next, "{what}");
    }
}

#[test]
fn rotate_in_auto_eoi() {
    // OCW2 100 / 000: in AEOI mode each acknowledged input becomes lowest.
    for (cmd, second) in [(0x80u8, 0x35u8), (0x00, 0x30)] {
        let mut pic = linux_open(true);
        let _ = pic.write(M_CMD, cmd);
        let _ = pulse(&mut pic, 0);
        let _ = pulse(&mut pic, 5);
        assert_eq!(pic.intack().0, 0x30);
        let _ = pulse(&mut pic, 0);
        assert_eq!(pic.intack().0, second, "OCW2 {cmd:#x}");
        assert_eq!(isr(&pic), (0, 0), "AEOI sets no ISR bit");
        let lowest = pic.snapshot().master.lowest_priority;
        assert_eq!(lowest, if cmd == 0x80 { second & 7 } else { 7 });
    }
}

#[test]
fn non_specific_eoi_follows_rotation() {
    // IS1 and IS6 set. A non-specific EOI clears the highest-priority one,
    // which depends on the lowest-priority input.
    for (lowest, isr_after) in [(7u8, 0x40u8), (0, 0x40), (3, 0x02), (6, 0x40), (1, 0x02)] {
        let mut pic = linux_open(false);
        let _ = pulse(&mut pic, 6);
        let _ = pic.intack();
        let _ = pulse(&mut pic, 1);
        let _ = pic.intack();
        assert_eq!(isr(&pic).0, 0x42);
        let _ = out(&mut pic, &[(M_CMD, 0xc0 | lowest), (M_CMD, EOI)]);
        assert_eq!(isr(&pic).0, isr_after, "lowest {lowest}");
    }
}

#[test]
fn spurious_irq7() {
    // A level request that goes away before the acknowledge: the master's
    // IR7 vector, and no ISR bit (how Linux tells it from a real IRQ 7).
    let mut pic = linux_open(false);
    let _ = pic.write(ELCR_MASTER, 0x20);
    assert_eq!(pic.set_irq(5, LineOp::Assert), UP);
    assert_eq!(pic.set_irq(5, LineOp::Deassert), DOWN);
    assert_eq!(pic.intack(), (0x37, Effects::NONE));
    assert_eq!(isr(&pic), (0, 0));
    // A real IRQ 7 sets IS7.
    assert_eq!(pulse(&mut pic, 7), UP);
    assert_eq!(pic.intack(), (0x37, DOWN));
    assert_eq!(isr(&pic), (0x80, 0));
}

#[test]
fn spurious_irq15() {
    // Master IR2 latched, then the slave's request went away (its line
    // dropped, or it was masked): the slave's IR7 vector; the master
    // acknowledged IR2, the slave nothing.
    for mask_it in [false, true] {
        let mut pic = linux_open(false);
        let _ = pic.write(ELCR_SLAVE, 0x04);
        assert_eq!(pic.set_irq(10, LineOp::Assert), UP);
        assert_eq!(inb(&mut pic, M_CMD), 0x04, "master IRR2 from the slave");
        let fx = if mask_it { pic.write(S_DATA, 0x04) } else { pic.set_irq(10, LineOp::Deassert) };
        assert_eq!(fx, Effects::NONE, "master IR2 stays latched");
        assert!(pic.intr());
        assert_eq!(pic.intack(), (0x3f, DOWN));
        assert_eq!(isr(&pic), (0x04, 0));
    }
}

#[test]
fn cascade_nesting() {
    // Without SFNM the in-service cascade input blocks further slave
    // requests until the master's EOI; with it (ICW4 bit 4 on the master)
    // a higher slave request nests.
    for sfnm in [false, true] {
        let mut pic = linux_open(false);
        if sfnm {
            let _ = out(
                &mut pic,
                &[(M_CMD, 0x11), (M_DATA, 0x30), (M_DATA, 0x04), (M_DATA, 0x11), (M_DATA, 0)],
            );
        }
        let _ = pulse(&mut pic, 12);
        assert_eq!(pic.intack().0, 0x3c);
        assert_eq!(isr(&pic), (0x04, 0x10));
        let fx = pulse(&mut pic, 9);
        if sfnm {
            assert_eq!(fx, UP, "SFNM: IR9 above IS12 passes the master's IS2");
        } else {
            assert_eq!(fx, Effects::NONE, "blocked by master IS2");
            assert_eq!(inb(&mut pic, M_CMD), 0x04, "but latched in master IRR2");
            assert_eq!(pic.write(M_CMD, SEOI + 2), UP);
        }
        assert_eq!(pic.intack(), (0x39, DOWN));
        assert_eq!(isr(&pic), (0x04, 0x12));
        // A lower slave request waits for the slave's EOIs.
        assert_eq!(pulse(&mut pic, 15), Effects::NONE);
        let _ = out(&mut pic, &[(S_CMD, EOI), (S_CMD, EOI)]);
        if !sfnm {
            assert!(!pic.intr(), "master IS2 blocks");
        }
        assert_eq!(pic.write(M_CMD, EOI), if sfnm { Effects::NONE } else { UP });
        assert_eq!(pic.intack().0, 0x3f);
        assert_eq!(isr(&pic), (0x04, 0x80), "a real IRQ 15");
    }
}

#[test]
fn poll_mode() {
    // OCW3 P: the next read is the poll word, 0x80 | input, and
    // acknowledges it; with nothing pending it is 0.
    let mut pic = linux_open(false);
    assert_eq!(pulse(&mut pic, 4), UP);
    let _ = pic.write(M_CMD, POLL);
    assert_eq!(pic.read(M_CMD), (0x84, DOWN));
    assert_eq!(isr(&pic).0, 0x10);
    assert_eq!(inb(&mut pic, M_CMD), 0, "poll lasts one read; IRR is back");
    let _ = out(&mut pic, &[(M_CMD, EOI), (M_CMD, POLL)]);
    assert_eq!(inb(&mut pic, M_DATA), 0, "either port; nothing pending");
    assert_eq!(inb(&mut pic, M_DATA), 0, "the IMR again");

    // Polling a cascade: the master answers IR2, the slave its input; no
    // spurious IRQ 15 afterwards.
    assert_eq!(pulse(&mut pic, 11), UP);
    let _ = pic.write(M_CMD, POLL);
    assert_eq!(pic.read(M_CMD), (0x82, DOWN));
    let _ = pic.write(S_CMD, POLL);
    assert_eq!(pic.read(S_DATA), (0x83, Effects::NONE));
    assert_eq!(isr(&pic), (0x04, 0x08));
    let _ = out(&mut pic, &[(S_CMD, EOI), (M_CMD, EOI)]);
    assert_eq!(isr(&pic), (0, 0));
    assert!(!pic.intr());
    assert_eq!(inb(&mut pic, M_CMD), 0, "master IRR2 clear");

    // Poll with AEOI acknowledges without an ISR bit.
    let mut pic = linux_open(true);
    let _ = pulse(&mut pic, 6);
    let _ = pic.write(M_CMD, POLL | READ_ISR);
    assert_eq!(pic.read(M_DATA).0, 0x86);
    assert_eq!(inb(&mut pic, M_CMD), 0, "RR/RIS latched with P: reads the ISR, empty");
}

#[test]
fn ocw3_read_select() {
    // RR=1 selects by RIS; RR=0 keeps the selection.
    let mut pic = linux_open(false);
    let _ = pulse(&mut pic, 1);
    let _ = pic.intack();
    let _ = pulse(&mut pic, 4);
    let steps: [(u8, u8); 5] =
        [(READ_ISR, 0x02), (0x08, 0x02), (READ_IRR, 0x10), (0x09, 0x10), (READ_ISR, 0x02)];
    for (ocw3, want) in steps {
        let _ = pic.write(M_CMD, ocw3);
        assert_eq!(inb(&mut pic, M_CMD), want, "OCW3 {ocw3:#x}");
    }
}

#[test]
fn special_mask_mode() {
    // SMM: a masked in-service level no longer blocks; unmasked ones still
    // do; a non-specific EOI passes over masked ISR bits.
    let mut pic = linux_open(false);
    let _ = pulse(&mut pic, 3);
    assert_eq!(pic.intack().0, 0x33);
    assert_eq!(pulse(&mut pic, 5), Effects::NONE);
    assert_eq!(pic.write(M_CMD, 0x68), Effects::NONE, "IS3 unmasked: still blocks");
    assert_eq!(pic.write(M_DATA, 0x08), UP, "IS3 masked: IR5 passes");
    assert_eq!(pic.intack(), (0x35, DOWN));
    assert_eq!(isr(&pic).0, 0x28);
    let _ = pic.write(M_CMD, EOI);
    assert_eq!(isr(&pic).0, 0x08, "EOI skipped masked IS3");
    assert_eq!(pic.snapshot().master.special_mask, 1);
    let _ = out(&mut pic, &[(M_CMD, 0x48), (M_CMD, EOI)]);
    assert_eq!(isr(&pic).0, 0, "SMM off: EOI clears IS3");
    assert_eq!(pic.snapshot().master.special_mask, 0);
}

#[test]
fn level_triggered_inputs() {
    // ELCR level: the request follows the line; acknowledging does not
    // consume it; EOI with the line still high brings it back.
    let mut pic = linux_open(false);
    let _ = pic.write(ELCR_MASTER, 0x20);
    assert_eq!(pic.set_irq(5, LineOp::Assert), UP);
    assert_eq!(pic.set_irq(5, LineOp::Assert), Effects::NONE);
    assert_eq!(pic.intack(), (0x35, DOWN));
    assert_eq!(inb(&mut pic, M_CMD), 0x20, "IRR still set");
    assert_eq!(pic.write(M_CMD, EOI), UP);
    assert_eq!(pic.set_irq(5, LineOp::Deassert), DOWN);
    assert_eq!(inb(&mut pic, M_CMD), 0);
    assert_eq!(pulse(&mut pic, 5), Effects::NONE, "a pulse leaves a level input low");
    assert_eq!(inb(&mut pic, M_CMD), 0);
    // An input switched to level while its line is high requests at once.
    let _ = pic.set_irq(6, LineOp::Assert);
    assert_eq!(pic.intack().0, 0x36);
    let _ = pic.write(M_CMD, EOI);
    assert_eq!(pic.write(ELCR_MASTER, 0x60), UP);
    assert_eq!(pic.write(ELCR_MASTER, 0x20), Effects::NONE, "back to edge: request kept");
}

#[test]
fn edge_triggered_inputs() {
    // Edge: a rising edge latches IRR, which survives the line dropping.
    let mut pic = linux_open(false);
    assert_eq!(pic.set_irq(3, LineOp::Assert), UP);
    assert_eq!(pic.set_irq(3, LineOp::Deassert), Effects::NONE, "latched");
    assert_eq!(pic.intack(), (0x33, DOWN));
    let _ = pic.write(M_CMD, EOI);
    let _ = pic.set_irq(3, LineOp::Assert);
    let _ = pic.intack();
    let _ = pic.write(M_CMD, EOI);
    assert_eq!(pic.set_irq(3, LineOp::Assert), Effects::NONE, "no edge: still high");
    assert_eq!(pulse(&mut pic, 3), Effects::NONE, "a pulse on a high line: no edge");
    assert_eq!(pic.snapshot().master.lines & 0x08, 0, "and the line ends low");
    assert_eq!(pic.set_irq(3, LineOp::Assert), UP);
}

#[test]
fn uninitialised_and_reset() {
    // Before ICW1, and between ICW1 and the last ICW, INT stays low.
    let mut pic = Pic::new();
    assert_eq!(pulse(&mut pic, 1), Effects::NONE);
    assert_eq!(inb(&mut pic, M_CMD), 0x02, "IRR still latches");
    let before = pic.snapshot();
    assert_eq!(pic.intack(), (0x07, Effects::NONE));
    assert_eq!(pic.snapshot(), before, "a spurious acknowledge changes nothing");
    let _ = out(&mut pic, &[(M_CMD, 0x11), (M_DATA, 0x30)]);
    let _ = pulse(&mut pic, 1);
    assert_eq!(out(&mut pic, &[(M_DATA, 0x04)]), Effects::NONE);
    assert_eq!(pic.write(M_DATA, 0x01), UP, "the last ICW releases INT");

    // Platform reset: back to power-up, lines kept.
    let mut pic = linux_open(false);
    let _ = pic.set_irq(4, LineOp::Assert);
    let _ = pic.set_irq(9, LineOp::Assert);
    assert_eq!(pic.reset(), DOWN);
    let mut fresh = Pic::new();
    let _ = fresh.set_irq(4, LineOp::Assert);
    let _ = fresh.set_irq(9, LineOp::Assert);
    let mut want = fresh.snapshot();
    want.master.irr = 0;
    want.slave.irr = 0;
    assert_eq!(pic.snapshot(), want);
}

#[test]
fn inputs_that_do_not_exist() {
    // IRQ 2 is the cascade; there is no IRQ 16 and up.
    let mut pic = linux_open(false);
    let before = pic.snapshot();
    for irq in [2u8, 16, 17, 100, 255] {
        for op in [LineOp::Assert, LineOp::Pulse, LineOp::Deassert] {
            assert_eq!(pic.set_irq(irq, op), Effects::NONE, "IRQ {irq}");
        }
    }
    assert_eq!(pic.snapshot(), before);
}

#[test]
fn command_decoding() {
    // Datasheet: D4 = 1 is ICW1; else D3 = 1 is OCW3; else OCW2 by R, SL, EOI.
    let cases: [(u8, Command); 12] = [
        (0x11, Command::Icw1(0x11)),
        (0xff, Command::Icw1(0xff)),
        (
            0x0b,
            Command::Ocw3(Ocw3 { read: Some(ReadSelect::Isr), poll: false, special_mask: None }),
        ),
        (0x8c, Command::Ocw3(Ocw3 { read: None, poll: true, special_mask: None })),
        (0x48, Command::Ocw3(Ocw3 { read: None, poll: false, special_mask: Some(false) })),
        (0x00, Command::Ocw2(Ocw2::RotateAeoiClear)),
        (0x20, Command::Ocw2(Ocw2::NonSpecificEoi)),
        (0x47, Command::Ocw2(Ocw2::Nop)),
        (0x65, Command::Ocw2(Ocw2::SpecificEoi(5))),
        (0x80, Command::Ocw2(Ocw2::RotateAeoiSet)),
        (0xa0, Command::Ocw2(Ocw2::RotateNonSpecificEoi)),
        (0xe6, Command::Ocw2(Ocw2::RotateSpecificEoi(6))),
    ];
    for (byte, want) in cases {
        assert_eq!(Command::decode(byte), want, "{byte:#x}");
    }
    assert_eq!(Ocw2::decode(0xc1), Ocw2::SetPriority(1));
}

#[test]
fn snapshot_round_trip() {
    let mut pic = linux_open(false);
    let _ = out(&mut pic, &[(ELCR_SLAVE, 0x0c), (M_CMD, 0xc4), (S_CMD, READ_ISR), (M_CMD, POLL)]);
    let _ = pic.set_irq(10, LineOp::Assert);
    let _ = pulse(&mut pic, 6);
    let snap = pic.snapshot();
    let mut copy = Pic::new();
    assert_eq!(copy.restore(&snap), Ok(UP));
    assert_eq!(copy, pic);
    assert_eq!(copy.snapshot(), snap);
    assert_eq!(Pic::new().restore(&Pic::new().snapshot()), Ok(DOWN));
}

#[test]
fn restore_refuses() {
    type Edit = fn(&mut Snapshot);
    let cases: [(Edit, &str); 22] = [
        (|s| s.master.elcr = 0x04, "master.elcr"),
        (|s| s.slave.elcr = 0x01, "slave.elcr"),
        (|s| s.slave.elcr = 0x20, "slave.elcr"),
        (|s| s.master.elcr = 0x08, "master.irr"),
        (|s| s.master.lowest_priority = 8, "master.lowest_priority"),
        (|s| s.slave.vector_base = 0x39, "slave.vector_base"),
        (|s| s.master.init = 5, "master.init"),
        (|s| s.master.icw1 = 0x04, "master.icw1"),
        (|s| (s.slave.init, s.slave.icw1) = (3, 3), "slave.init"),
        (|s| (s.slave.init, s.slave.icw1) = (4, 0), "slave.init"),
        (|s| (s.master.init, s.master.isr) = (0, 0), "master.icw1"),
        (|s| (s.master.init, s.master.icw1) = (0, 0), "master.vector_base"),
        (|s| (s.slave.init, s.slave.icw1, s.slave.vector_base) = (0, 0, 0), "slave.isr"),
        (|s| s.master.auto_eoi = 2, "master.auto_eoi"),
        (|s| (s.master.icw1, s.master.auto_eoi) = (0, 1), "master.auto_eoi"),
        (|s| (s.master.icw1, s.master.sfnm) = (0, 1), "master.sfnm"),
        (|s| s.slave.read_isr = 2, "slave.read_isr"),
        (|s| s.slave.poll = 3, "slave.poll"),
        (|s| s.master.special_mask = 0xff, "master.special_mask"),
        (|s| s.master.rotate_on_aeoi = 2, "master.rotate_on_aeoi"),
        (|s| s.slave.sfnm = 2, "slave.sfnm"),
        (|s| s.master.lines ^= 0x04, "master.lines"),
    ];
    let mut base = linux_open(false);
    let _ = out(&mut base, &[(ELCR_SLAVE, 0x08)]);
    let _ = base.set_irq(3, LineOp::Assert);
    assert_eq!(base.intack().0, 0x33);
    let _ = base.set_irq(11, LineOp::Assert);
    assert_eq!(base.intack().0, 0x3b, "IR2 nests above IS3");
    let good = base.snapshot();
    assert_eq!((good.master.isr, good.slave.isr, good.master.lines), (0x0c, 0x08, 0x08));
    for (edit, field) in cases {
        let mut snap = good;
        edit(&mut snap);
        let mut pic = linux(true);
        let before = pic;
        assert_eq!(pic.restore(&snap), Err(ImportError::Invalid { field }), "{field}");
        assert_eq!(pic, before, "{field}: refused, unchanged");
    }
    let mut pic = Pic::new();
    let snap = Snapshot { version: 2, ..good };
    assert_eq!(pic.restore(&snap), Err(ImportError::Version { found: 2 }));
    assert_eq!(pic, Pic::new());
}

#[test]
fn effects_merge() {
    let mut fx = Effects::NONE;
    fx.merge(UP);
    fx.merge(Effects::NONE);
    assert_eq!(fx, UP);
    fx.merge(DOWN);
    assert_eq!(fx, DOWN);
}

#[test]
fn slave_auto_eoi_back_to_back() {
    // Both chips in AEOI, two slave requests: the slave's INT falls during
    // the first acknowledge and rises again, which latches master IR2 anew,
    // so the second request is delivered without any EOI.
    let mut pic = Pic::new();
    let _ = out(
        &mut pic,
        &[
            (M_CMD, 0x11),
            (M_DATA, 0x30),
            (M_DATA, 0x04),
            (M_DATA, 0x03),
            (S_CMD, 0x11),
            (S_DATA, 0x38),
            (S_DATA, 0x02),
            (S_DATA, 0x03),
            (M_DATA, 0),
            (S_DATA, 0),
        ],
    );
    let _ = pulse(&mut pic, 9);
    assert_eq!(pulse(&mut pic, 10), Effects::NONE, "INTR already up");
    assert_eq!(pic.intack(), (0x39, Effects::NONE), "IR10 keeps INTR up");
    assert_eq!(pic.intack(), (0x3a, DOWN));
    assert_eq!(isr(&pic), (0, 0));
    assert_eq!(pic.intack(), (0x37, Effects::NONE));
}
