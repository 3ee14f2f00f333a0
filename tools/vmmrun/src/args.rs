// SPDX-License-Identifier: MIT OR Apache-2.0

//! The command line.

use libvmm::setup::Mode;
use libvmm::uapi::VMM_MAX_VM_MEMORY;

use crate::boot::MIN_RAM;
use crate::uart;

/// Guest-physical addresses are below this (52 bits, the architectural
/// limit).
pub const MAX_GPA: u64 = 1 << 52;

/// The usage text.
pub const USAGE: &str = "\
usage: vmmrun [-v] [--mem MiB] [--mode real|32|64] [--entry ADDR] [--load ADDR]
              [--max-exits N] [--uart-mmio ADDR] FILE

Runs FILE on one vCPU of a new VM, with a 16550 at port 0x3f8 on stdout.
FILE is a multiboot (v1) image (started in 32-bit mode, EAX=0x2badb002,
EBX=multiboot info), an ELF (PT_LOADs at their physical addresses; 64-bit
mode for ELF64, 32-bit for ELF32), or a flat binary loaded at --load
(default 0x100000, or 0x7c00 with --mode real) and started in 64-bit mode.
A data access outside RAM is MMIO: it goes to the device there (--uart-mmio),
or to nothing, which reads all ones and drops writes (-v reports each).

  --mem MiB        guest RAM at address 0 (default 64)
  --mode M         first mode: real, 32 or 64 (ELF and flat images)
  --entry ADDR     start here instead of the image's entry point
  --load ADDR      where a flat binary goes
  --max-exits N    stop (status 5) instead of resuming after the N-th exit (N >= 1)
  --uart-mmio ADDR a second 16550 on stdout, memory-mapped at guest-physical
                   ADDR (outside RAM; below 4 GiB a 32-bit guest without paging
                   and a 64-bit one on vmmrun's page tables reach it): register
                   N at ADDR+N (reg-shift 0), 1-byte accesses only, as Linux's
                   earlycon=uart8250,mmio,ADDR uses it; a wider access reads
                   all ones and writes nothing. The 16550 at port 0x3f8 stays.
  -v               report unhandled ports, MSRs and MMIO accesses, and the layout

Exit status: the low byte of an OUT to port 0x501; 0 when the guest halts;
1 vmmrun error; 2 triple fault or suspend; 3 unhandled guest-physical
access (an instruction fetch outside RAM); 4 unhandled exit; 5 --max-exits
reached.";

/// Default RAM size in MiB.
pub const DEFAULT_MEM_MIB: u64 = 64;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// RAM in MiB.
    pub mem_mib: u64,
    /// `--mode`, if given.
    pub mode: Option<Mode>,
    /// `--entry`, if given.
    pub entry: Option<u64>,
    /// `--load`, if given.
    pub load: Option<u64>,
    /// `--max-exits`, if given.
    pub max_exits: Option<u64>,
    /// `--uart-mmio`: the MMIO 16550's base address, if given.
    pub uart_mmio: Option<u64>,
    /// `-v`.
    pub verbose: bool,
    /// The image.
    pub file: String,
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-h` / `--help`.
    Help,
    /// Run an image.
    Run(Args),
}

/// Parses a number: decimal, or hex with `0x`.
fn number(opt: &str, s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{opt}: not a number: {s:?}"))
}

fn mode(s: &str) -> Result<Mode, String> {
    match s {
        "real" | "16" => Ok(Mode::Real),
        "32" => Ok(Mode::Protected32),
        "64" => Ok(Mode::Long64),
        _ => Err(format!("--mode: {s:?} is not real, 32 or 64")),
    }
}

/// Parses the arguments after the program name.
pub fn parse(argv: &[String]) -> Result<Command, String> {
    let mut a = Args {
        mem_mib: DEFAULT_MEM_MIB,
        mode: None,
        entry: None,
        load: None,
        max_exits: None,
        uart_mmio: None,
        verbose: false,
        file: String::new(),
    };
    let mut file = None;
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().ok_or_else(|| format!("{opt} needs a value")),
            }
        };
        match opt {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--verbose" => a.verbose = true,
            "--mem" => a.mem_mib = number(opt, &value()?)?,
            "--mode" => a.mode = Some(mode(&value()?)?),
            "--entry" => a.entry = Some(number(opt, &value()?)?),
            "--load" => a.load = Some(number(opt, &value()?)?),
            "--max-exits" => match number(opt, &value()?)? {
                0 => return Err("--max-exits: N must be at least 1".into()),
                n => a.max_exits = Some(n),
            },
            "--uart-mmio" => a.uart_mmio = Some(number(opt, &value()?)?),
            "--" => {
                file = it.next().cloned();
                if it.next().is_some() {
                    return Err("one FILE only".into());
                }
            }
            o if o.starts_with('-') && o.len() > 1 => return Err(format!("unknown option {o}")),
            _ if file.is_some() => return Err("one FILE only".into()),
            _ => file = Some(arg.clone()),
        }
    }
    a.file = file.ok_or("no FILE given")?;
    let max_mib = VMM_MAX_VM_MEMORY >> 20;
    if !(MIN_RAM >> 20..=max_mib).contains(&a.mem_mib) {
        return Err(format!("--mem: {} MiB is not in 1..={max_mib}", a.mem_mib));
    }
    if let Some(base) = a.uart_mmio {
        // RAM is one segment at 0: a UART inside it would never see an access.
        let ram = a.mem_mib << 20;
        if base < ram {
            return Err(format!("--uart-mmio: {base:#x} is inside RAM (0-{:#x}, --mem)", ram - 1));
        }
        if base > MAX_GPA - u64::from(uart::REGS) {
            return Err(format!("--uart-mmio: {base:#x} is not below 2^52 with its 8 registers"));
        }
    }
    Ok(Command::Run(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn run(args: &[&str]) -> Args {
        match p(args) {
            Ok(Command::Run(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let a = run(&["hello.elf"]);
        assert_eq!(a.file, "hello.elf");
        assert_eq!(a.mem_mib, 64);
        assert_eq!(
            (a.mode, a.entry, a.load, a.max_exits, a.uart_mmio, a.verbose),
            (None, None, None, None, None, false)
        );
    }

    #[test]
    fn every_option_in_both_spellings() {
        let a = run(&[
            "--mem",
            "16",
            "--mode",
            "real",
            "--entry=0x7c00",
            "--load",
            "0X7C00",
            "--max-exits=100",
            "--uart-mmio",
            "0xd0000000",
            "-v",
            "x.bin",
        ]);
        assert_eq!(a.mem_mib, 16);
        assert_eq!(a.mode, Some(Mode::Real));
        assert_eq!((a.entry, a.load, a.max_exits), (Some(0x7c00), Some(0x7c00), Some(100)));
        assert_eq!(a.uart_mmio, Some(0xd000_0000));
        assert!(a.verbose);
        assert_eq!(run(&["--uart-mmio=1048576", "--mem=1", "f"]).uart_mmio, Some(0x10_0000));
        assert_eq!(run(&["--mode=32", "f"]).mode, Some(Mode::Protected32));
        assert_eq!(run(&["--mode", "64", "f"]).mode, Some(Mode::Long64));
        assert_eq!(run(&["--", "-odd-name"]).file, "-odd-name");
    }

    #[test]
    fn mistakes_are_reported() {
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert!(p(&[]).unwrap_err().contains("no FILE"));
        assert!(p(&["a", "b"]).unwrap_err().contains("one FILE"));
        assert!(p(&["--mem"]).unwrap_err().contains("needs a value"));
        assert!(p(&["--mem", "lots", "f"]).unwrap_err().contains("not a number"));
        assert!(p(&["--mem", "0", "f"]).unwrap_err().contains("--mem"));
        assert!(p(&["--mem", "16385", "f"]).unwrap_err().contains("--mem"));
        assert!(p(&["--mode", "16bit", "f"]).unwrap_err().contains("--mode"));
        assert!(p(&["--max-exits", "0", "f"]).unwrap_err().contains("at least 1"));
        assert!(p(&["--frobnicate", "f"]).unwrap_err().contains("unknown option"));
        assert!(p(&["--uart-mmio", "f"]).unwrap_err().contains("not a number"));
        let e = p(&["--uart-mmio", "0x3ffffff", "f"]).unwrap_err();
        assert!(e.contains("inside RAM (0-0x3ffffff, --mem)"), "{e}");
        assert!(p(&["--uart-mmio", "0x4000000", "f"]).is_ok(), "right above 64 MiB");
        assert!(p(&["--uart-mmio", "0x4000000", "--mem", "65", "f"]).is_err());
        assert!(p(&["--uart-mmio", "0xffffffffffff8", "f"]).is_ok(), "ends at 2^52");
        assert!(p(&["--uart-mmio", "0xffffffffffff9", "f"]).unwrap_err().contains("2^52"));
        assert!(p(&["--uart-mmio", "0xffffffffffffffff", "f"]).is_err());
    }
}
