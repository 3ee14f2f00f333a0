// SPDX-License-Identifier: MIT OR Apache-2.0

//! `vmmrun`: a minimal sequencer. It loads a multiboot, ELF or flat image
//! into a new VM's RAM, starts one vCPU on it, and serves port I/O (a 16550
//! at 0x3f8 on stdout and an exit port at 0x501) and MMIO (with
//! `--uart-mmio ADDR`, a second 16550 on stdout at guest-physical ADDR).
//! See [`args::USAGE`].
//!
//! - [`args`]: the command line;
//! - [`loader`]: image formats, parsed without side effects;
//! - [`boot`]: the memory layout, and writing the image into RAM;
//! - [`uart`]: the 16550;
//! - [`bus`], [`mmio`]: the port-I/O bus and the MMIO bus;
//! - [`run`]: the run loop.

mod args;
mod boot;
mod bus;
mod loader;
mod mmio;
mod run;
mod uart;

use std::io;
use std::process::ExitCode;

use libvmm::setup::setup_vcpu;
use libvmm::uapi::CreateFlags;
use libvmm::Vmm;

use args::Command;
use run::Outcome;

/// The MMIO UART's name in reports.
const UART_MMIO: &str = "uart-mmio";

/// Creates the VM, loads the image and runs it.
fn vmmrun(a: &args::Args) -> Result<Outcome, String> {
    let file = std::fs::read(&a.file).map_err(|e| format!("{}: {e}", a.file))?;
    let vmm = Vmm::open().map_err(|e| format!("{}: {e}", libvmm::VMM_DEVICE))?;
    let name = format!("vmmrun-{}", std::process::id());
    // Destroyed when vmmrun exits, however it exits.
    let vm = vmm
        .create_vm(&name, CreateFlags::DESTROY_ON_CLOSE)
        .map_err(|e| format!("create VM {name}: {e}"))?;
    let ram_len = a.mem_mib << 20;
    let (_seg, mut ram) =
        vm.add_ram(0, ram_len).map_err(|e| format!("{} MiB of RAM: {e}", a.mem_mib))?;
    let boot = boot::prepare(a, &file, &mut ram).map_err(|e| format!("{}: {e}", a.file))?;
    if a.verbose {
        eprintln!(
            "vmmrun: {} as {:?}, {:?} mode at {:#x}, stack {:#x}, scratch {:#x}, VM {name}",
            a.file, boot.format, boot.mode, boot.entry, boot.stack, boot.scratch
        );
    }
    let vcpu = vm.create_vcpu(0).map_err(|e| format!("create vCPU: {e}"))?;
    setup_vcpu(&vcpu, &ram, 0, boot.mode, boot.entry, boot.stack, boot.scratch)
        .map_err(|e| format!("set up vCPU: {e}"))?;
    if !boot.regs.is_empty() {
        vcpu.set_regs(&boot.regs).map_err(|e| format!("set registers: {e}"))?;
    }
    let mut bus = bus::Bus::new(io::stdout(), a.verbose);
    let mut mmio = mmio::MmioBus::new();
    if let Some(base) = a.uart_mmio {
        // Both UARTs write to stdout, each flushing per byte.
        let dev = Box::new(uart::Serial::new(io::stdout()));
        mmio.add(base, uart::REGS.into(), UART_MMIO, dev)?;
    }
    if a.verbose {
        for (range, name) in mmio.regions() {
            eprintln!("vmmrun: MMIO {:#x}-{:#x}: {name}", range.start, range.end - 1);
        }
    }
    let v = run::VmVcpu { vm: &vm, vcpu: &vcpu };
    let outcome = run::run(&v, &mut bus, &mut mmio, a.max_exits, a.verbose);
    if a.verbose {
        let ports: Vec<String> = bus.unmapped().map(|p| format!("{p:#x}")).collect();
        if !ports.is_empty() {
            eprintln!("vmmrun: ports without a device: {}", ports.join(" "));
        }
    }
    Ok(outcome)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let a = match args::parse(&argv) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vmmrun: {e}\n{}", args::USAGE);
            return ExitCode::from(1);
        }
    };
    match vmmrun(&a) {
        Ok(outcome) => {
            if let Some(m) = outcome.message() {
                eprintln!("vmmrun: {m}");
            } else if a.verbose {
                eprintln!("vmmrun: guest wrote {} to the exit port", outcome.status());
            }
            ExitCode::from(outcome.status())
        }
        Err(e) => {
            eprintln!("vmmrun: {e}");
            ExitCode::from(1)
        }
    }
}
