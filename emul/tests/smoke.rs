// SPDX-License-Identifier: GPL-2.0
//! A first end-to-end check: decode and run a few instructions.

pub mod common;
use common::{FlatMem, TestCpu};
use vmm_emul::{decode, emulate, Config, CpuMode, Step};

#[test]
fn add_to_memory() {
    let mut cpu = TestCpu::long();
    let mut mem = FlatMem::new();
    cpu.gpr[0] = 5; // rax
    cpu.gpr[3] = 0x2000; // rbx
    mem.poke_u64(0x2008, 7, 8);
    // add qword ptr [rbx+8], rax
    let insn = decode(&[0x48, 0x01, 0x43, 0x08], CpuMode::Long64).unwrap();
    assert_eq!(insn.len, 4);
    assert_eq!(emulate(&insn, &mut cpu, &mut mem, &Config::default()), Ok(Step::Done));
    assert_eq!(mem.peek_u64(0x2008, 8), 12);
    assert_eq!(cpu.rip, 0x1004);
}
