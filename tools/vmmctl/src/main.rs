// SPDX-License-Identifier: MIT OR Apache-2.0

//! `vmmctl`: inspect the vmm module and manage VMs by name.

use std::process::ExitCode;

use libvmm::uapi::{Backend, CreateFlags, Features, CAPS_RAW_SVM, CAPS_RAW_VMX};
use libvmm::Vmm;

const USAGE: &str = "\
usage: vmmctl caps
       vmmctl list
       vmmctl create NAME [--destroy-on-close]
       vmmctl destroy NAME";

fn caps(vmm: &Vmm) -> std::io::Result<()> {
    let v = vmm.version()?;
    let c = vmm.caps()?;
    let backend = Backend::try_from(c.backend);
    println!("api version:    {} (ABI {:#018x})", v.api_version, v.abi_fingerprint);
    match backend {
        Ok(Backend::Vmx) => {
            println!("backend:        VMX (Intel VT-x), VMCS revision {:#x}", c.revision)
        }
        Ok(Backend::Svm) => {
            println!("backend:        SVM (AMD-V), revision {}, {} ASIDs", c.revision, c.nr_asids)
        }
        Err(other) => println!("backend:        unknown ({other})"),
    }
    println!("cpus:           {}", c.nr_cpus);
    println!("host paging:    {}-level", c.host_paging_levels);
    println!("phys addr bits: {}", c.phys_addr_bits);
    let features = Features::from_bits_retain(c.features);
    println!("features:");
    for (name, _) in features.iter_names() {
        println!("  {}", name.to_ascii_lowercase());
    }
    let labels = if backend == Ok(Backend::Svm) { &CAPS_RAW_SVM } else { &CAPS_RAW_VMX };
    println!("raw:");
    for (label, value) in labels.iter().zip(c.raw) {
        if !label.is_empty() {
            println!("  {label:<24} {value:#018x}");
        }
    }
    Ok(())
}

fn list(vmm: &Vmm) -> std::io::Result<()> {
    let vms = vmm.list_vms()?;
    println!("{:<32} {:>4}  FLAGS", "NAME", "FDS");
    for vm in vms {
        let flags =
            if vm.flags.contains(CreateFlags::DESTROY_ON_CLOSE) { "destroy-on-close" } else { "-" };
        println!("{:<32} {:>4}  {}", vm.name, vm.nr_fds, flags);
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let open = || Vmm::open().map_err(|e| format!("{}: {e}", libvmm::VMM_DEVICE));
    let r = match args.as_slice() {
        ["caps"] => caps(&open()?),
        ["list"] => list(&open()?),
        ["create", name, rest @ ..] => {
            let flags = match rest {
                [] => CreateFlags::empty(),
                ["--destroy-on-close"] => CreateFlags::DESTROY_ON_CLOSE,
                _ => return Err(USAGE.into()),
            };
            // The returned fd closes as vmmctl exits; without the flag the
            // VM lives on, named, until `vmmctl destroy`.
            open()?.create_vm(name, flags).map(|_| println!("created {name}"))
        }
        ["destroy", name] => open()?.destroy_vm(name).map(|()| println!("destroyed {name}")),
        _ => return Err(USAGE.into()),
    };
    r.map_err(|e| format!("vmmctl {}: {e}", args.join(" ")))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}
