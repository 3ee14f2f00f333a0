// SPDX-License-Identifier: GPL-2.0

//! One case through the emulator, and the comparison with the host.

use crate::common::TestCpu;
use crate::gen::{Case, Env, AF, CF, DF, OF, PF, SF, ZF};
use std::fmt::Write as _;
use vmm_emul::{decode, emulate, Config, CpuMode, Error, Memory, Step};
use vmm_emul_native::{
    host::{FLAGS_FIXED, FLAGS_IN_MASK},
    Regs,
};

/// The data area at its host address; anything else stops.
struct BufMem {
    base: u64,
    data: Vec<u8>,
    /// The [`Memory::check`] calls: (address, length, write).
    checks: Vec<(u64, usize, bool)>,
}

/// Why [`BufMem`] stopped: an access outside the data area, or a port.
#[derive(Debug)]
#[expect(dead_code, reason = "the fields are read only through Debug, in failure messages")]
enum Outside {
    Mem { la: u64, len: usize },
    Port(u16),
}

impl BufMem {
    fn range(&self, la: u64, len: usize) -> Result<core::ops::Range<usize>, Error<Outside>> {
        let bad = Error::Stop(Outside::Mem { la, len });
        let off = usize::try_from(la.wrapping_sub(self.base)).map_err(|_| bad)?;
        match off.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok(off..end),
            _ => Err(Error::Stop(Outside::Mem { la, len })),
        }
    }
}

impl Memory for BufMem {
    type Stop = Outside;

    fn read(&mut self, la: u64, buf: &mut [u8], _write: bool) -> Result<(), Error<Outside>> {
        let r = self.range(la, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }

    fn write(&mut self, la: u64, data: &[u8]) -> Result<(), Error<Outside>> {
        let r = self.range(la, data.len())?;
        self.data[r].copy_from_slice(data);
        Ok(())
    }

    fn check(&mut self, la: u64, len: usize, write: bool) -> Result<(), Error<Outside>> {
        self.range(la, len)?;
        self.checks.push((la, len, write));
        Ok(())
    }

    fn cmpxchg(&mut self, la: u64, old: &[u8], new: &[u8]) -> Result<bool, Error<Outside>> {
        let r = self.range(la, old.len())?;
        if self.data[r.clone()] != *old {
            return Ok(false);
        }
        self.data[r].copy_from_slice(new);
        Ok(true)
    }

    fn port_in(&mut self, port: u16, _buf: &mut [u8]) -> Result<(), Error<Outside>> {
        Err(Error::Stop(Outside::Port(port)))
    }

    fn port_out(&mut self, port: u16, _data: &[u8]) -> Result<(), Error<Outside>> {
        Err(Error::Stop(Outside::Port(port)))
    }
}

/// The state the emulator left.
pub struct Outcome {
    pub regs: Regs,
    pub rip: u64,
    pub data: Vec<u8>,
    /// The [`Memory::check`] calls it made: (address, length, write).
    pub checks: Vec<(u64, usize, bool)>,
}

/// The input RFLAGS as both sides see it.
pub fn input_flags(case: &Case) -> u64 {
    (case.regs.rflags & FLAGS_IN_MASK) | FLAGS_FIXED
}

/// Runs `case` through the decoder and the emulator (again after every
/// [`Step::Partial`], as the guest would).
pub fn emulate_case(case: &Case, env: Env) -> Result<Outcome, String> {
    let insn = decode(&case.bytes, CpuMode::Long64).map_err(|e| format!("decode: {:?}", e.kind))?;
    if usize::from(insn.len) != case.bytes.len() {
        return Err(format!("decode: length {} of {}", insn.len, case.bytes.len()));
    }
    let mut cpu = TestCpu::long();
    cpu.gpr = case.regs.gpr;
    cpu.rflags = input_flags(case);
    cpu.rip = env.insn;
    cpu.vec = case.regs.vec;
    let mut mem = BufMem { base: env.data, data: case.data.clone(), checks: Vec::new() };
    let cfg = Config { rep_budget: case.budget, ..Config::default() };
    let mut rounds = 0;
    loop {
        match emulate(&insn, &mut cpu, &mut mem, &cfg) {
            Ok(Step::Done) => break,
            Ok(Step::Partial) => {
                if cpu.rip != env.insn {
                    return Err(format!("partial step moved RIP to {:#x}", cpu.rip));
                }
                rounds += 1;
                if rounds > 10_000 {
                    return Err("too many partial steps".into());
                }
            }
            Err(e) => return Err(format!("emulate: {e:?} (insn {insn:?})")),
        }
    }
    Ok(Outcome {
        regs: Regs { gpr: cpu.gpr, rflags: cpu.rflags, vec: cpu.vec },
        rip: cpu.rip,
        data: mem.data,
        checks: mem.checks,
    })
}

const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// Names of the flags set in `f`.
pub fn flag_names(f: u64) -> String {
    let mut s = String::new();
    for (bit, n) in
        [(CF, "CF"), (PF, "PF"), (AF, "AF"), (ZF, "ZF"), (SF, "SF"), (DF, "DF"), (OF, "OF")]
    {
        if f & bit != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(n);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

/// The differences between the host's result and the emulator's, or
/// `None` when they agree on everything `case` compares.
pub fn compare(
    case: &Case,
    env: Env,
    native: &Regs,
    ndata: &[u8],
    emu: &Result<Outcome, String>,
) -> Option<String> {
    let mut diff = String::new();
    match emu {
        Err(e) => {
            let _ = writeln!(diff, "  emulator failed: {e}");
        }
        Ok(o) => {
            for (i, name) in GPR_NAMES.iter().enumerate() {
                if native.gpr[i] != o.regs.gpr[i] {
                    let _ = writeln!(
                        diff,
                        "  {name:<4} initial {:#018x}  host {:#018x}  emulator {:#018x}",
                        case.regs.gpr[i], native.gpr[i], o.regs.gpr[i]
                    );
                }
            }
            let fin = input_flags(case);
            let bad = (native.rflags ^ o.regs.rflags) & case.defined;
            let other = (o.regs.rflags ^ fin) & !(case.defined | case.undefined);
            if bad != 0 || other != 0 {
                let _ = writeln!(
                    diff,
                    "  flags initial [{}] host [{}] emulator [{}]; differ in defined [{}], emulator changed unaffected bits {:#x}",
                    flag_names(fin),
                    flag_names(native.rflags),
                    flag_names(o.regs.rflags),
                    flag_names(bad),
                    other
                );
            }
            let len = case.bytes.len() as u64;
            if o.rip != env.insn + len {
                let _ =
                    writeln!(diff, "  emulator RIP {:#x}, expected {:#x}", o.rip, env.insn + len);
            }
            for i in 0..16 {
                if native.vec[i] != o.regs.vec[i] {
                    let _ = writeln!(
                        diff,
                        "  ymm{i}\n    initial  {}\n    host     {}\n    emulator {}",
                        hex(&case.regs.vec[i]),
                        hex(&native.vec[i]),
                        hex(&o.regs.vec[i])
                    );
                }
            }
            let mut shown = 0;
            if ndata != o.data.as_slice() {
                for (i, ((a, b), c)) in ndata.iter().zip(&o.data).zip(&case.data).enumerate() {
                    if a != b {
                        if shown < 32 {
                            let _ = writeln!(
                                diff,
                                "  mem {:#x}: initial {c:02x} host {a:02x} emulator {b:02x}",
                                env.data + i as u64
                            );
                        }
                        shown += 1;
                    }
                }
            }
            if shown > 32 {
                let _ = writeln!(diff, "  ... {} bytes of memory differ", shown);
            }
            if case.check_only {
                // Nothing changes on the host either, and the emulator
                // checked the operand's byte (flushing it has no effect to
                // compare).
                let want = case.target.map(|t| vec![(t, 1, false)]).unwrap_or_default();
                if o.checks != want {
                    let _ =
                        writeln!(diff, "  emulator checked {:x?}, expected {want:x?}", o.checks);
                }
                if native.gpr != case.regs.gpr
                    || native.vec != case.regs.vec
                    || ndata != case.data.as_slice()
                {
                    let _ = writeln!(diff, "  the host changed registers or memory");
                }
                if native.rflags != fin {
                    let _ = writeln!(
                        diff,
                        "  host flags [{}], initial [{}]",
                        flag_names(native.rflags),
                        flag_names(fin)
                    );
                }
            }
        }
    }
    if diff.is_empty() {
        return None;
    }
    let mut msg = format!("{}: bytes [{}]\n", case.name, hex(&case.bytes));
    if let Ok(insn) = decode(&case.bytes, CpuMode::Long64) {
        let _ = writeln!(
            msg,
            "  decoded {:?} {:?} size {} addr {} lock {} rep {:?}",
            insn.op, insn.operands, insn.op_size, insn.addr_size, insn.lock, insn.rep
        );
    }
    let _ = writeln!(
        msg,
        "  rip {:#x} data {:#x}..{:#x}",
        env.insn,
        env.data,
        env.data + case.data.len() as u64
    );
    let _ = write!(msg, "  initial:");
    for (i, name) in GPR_NAMES.iter().enumerate() {
        if i % 4 == 0 {
            msg.push_str("\n   ");
        }
        let _ = write!(msg, " {name:<3}={:#018x}", case.regs.gpr[i]);
    }
    let _ = writeln!(msg, "\n   rflags [{}]", flag_names(input_flags(case)));
    msg.push_str(&diff);
    Some(msg)
}
