// SPDX-License-Identifier: GPL-2.0

//! Host tests for the mode definitions. The decoder (and its tests) is
//! `emul::decode`, in `emul/`.

use super::*;
use CpuMode::{Compat16, Compat32, Long64, Protected16, Protected32, Real};

#[test]
fn mode_from_registers() {
    const PE: u64 = 1;
    const LMA: u64 = 1 << 10;
    // (cr0, efer, cs.d, cs.l, rflags.vm)
    let cases = [
        (0, 0, false, false, false, Real),
        (0, 0, true, false, false, Real),
        (0, LMA, true, true, false, Real),
        (PE, 0, false, false, true, Real),
        (PE, 0, false, false, false, Protected16),
        (PE, 0, true, false, false, Protected32),
        (PE, 0, false, true, false, Protected16),
        (PE, LMA, false, false, false, Compat16),
        (PE, LMA, true, false, false, Compat32),
        (PE, LMA, false, true, false, Long64),
        (PE | 1 << 31, LMA, true, true, false, Long64),
    ];
    for (cr0, efer, d, l, vm, want) in cases {
        assert_eq!(
            CpuMode::from_regs(cr0, efer, d, l, vm),
            want,
            "{cr0:#x} {efer:#x} {d} {l} {vm}"
        );
    }
}
