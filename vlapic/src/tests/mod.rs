// SPDX-License-Identifier: GPL-2.0

//! Host tests of the model.

use super::*;

#[test]
fn power_up_state() {
    let mut apic = Vlapic::new(Config::DEFAULT, 0, 0, true).unwrap();
    assert_eq!(apic.mode(), Mode::XApic);
    assert_eq!(apic.mmio_base(), Some(regs::DEFAULT_BASE));
    assert_eq!(apic.mmio_read(regs::DEFAULT_BASE + 0xf0, 4, 0), Some(0xff));
}
