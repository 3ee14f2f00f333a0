// SPDX-License-Identifier: GPL-2.0

//! The VM-execution, exit and entry controls vmm runs every guest with,
//! resolved against the capability MSRs (SDM Vol. 3D, Appendix A.3-A.5).
//!
//! Each control word is decided once, at load, by [`negotiate`]: what vmm
//! needs (required), what it uses when present (optional), and what must
//! stay off (forbidden). [`Allowed::resolve`] is the one place must-be-one
//! and must-be-zero bits are applied, TRUE controls included (the probe
//! reads the TRUE MSRs when IA32_VMX_BASIC[55] says they exist, which lets
//! vmm clear default-one bits such as CR3-load exiting).

use super::caps::{
    Allowed, EntryCtls, ExitCtls, PinBased, ProcBased, ProcBased2, Unavailable, VmxCaps,
};

/// The control words of every vCPU's VMCS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controls {
    /// Pin-based controls.
    pub pin: PinBased,
    /// Primary processor-based controls.
    pub proc: ProcBased,
    /// Secondary processor-based controls.
    pub proc2: ProcBased2,
    /// VM-exit controls.
    pub exit: ExitCtls,
    /// VM-entry controls, without IA-32e mode guest (which follows the
    /// guest's EFER.LMA at each entry).
    pub entry: EntryCtls,
}

/// The longest stay in the guest, in TSC ticks, when the preemption timer
/// exists: an exit at least this often, whatever the guest does with its
/// interrupt flag. A host interrupt makes the guest exit anyway; the slice
/// is a backstop (Bochs 2.7 leaves external interrupts masked for a guest
/// entered with RFLAGS.IF clear, see `Documentation/testing.rst`), and it
/// costs one exit per 2^22 ticks (about 1 ms at 4 GHz).
pub const TIME_SLICE_TSC: u64 = 1 << 22;

/// The exception bitmap: #DB (1) and #AC (17). A guest can otherwise make
/// the CPU loop forever delivering one of them without a VM exit, hanging
/// the host CPU (CVE-2015-8104, CVE-2015-5307); intercepted, each delivery
/// exits and the backend re-injects it unchanged.
pub const EXCEPTION_BITMAP: u32 = 1 << 1 | 1 << 17;

impl Controls {
    /// The CPU tracks the guest's NMI blocking (virtual NMIs), so an
    /// NMI-window exit exists.
    pub fn virtual_nmis(&self) -> bool {
        self.pin.contains(PinBased::VIRTUAL_NMIS)
    }

    /// The preemption timer is on.
    pub fn preemption_timer(&self) -> bool {
        self.pin.contains(PinBased::PREEMPT_TIMER)
    }

    /// The preemption-timer value for [`TIME_SLICE_TSC`]: the timer counts
    /// down once every 2^`IA32_VMX_MISC[4:0]` TSC ticks.
    pub fn time_slice(misc: u64) -> u32 {
        (TIME_SLICE_TSC >> (misc & 0x1f)) as u32
    }

    /// Unrestricted guest is on: real mode and protected mode without
    /// paging run directly.
    pub fn unrestricted_guest(&self) -> bool {
        self.proc2.contains(ProcBased2::UNRESTRICTED_GUEST)
    }

    /// VPIDs tag the guest's TLB entries.
    pub fn vpid(&self) -> bool {
        self.proc2.contains(ProcBased2::VPID)
    }
}

/// One control word: `required` bits the CPU must allow, `optional` bits
/// used when allowed, `forbidden` bits that must stay clear; every other
/// bit is left at the CPU's default (its must-be-one value).
fn word(
    a: &Allowed,
    required: u32,
    optional: u32,
    forbidden: u32,
    what: &'static str,
) -> Result<u32, Unavailable> {
    a.resolve(required, optional, forbidden).map_err(|_| Unavailable::Missing(what))
}

/// Decides the controls for `caps`, or names what is missing.
///
/// - Pin-based: external interrupts and NMIs exit (the host takes them);
///   the VMX-preemption timer, when present, bounds every stay in the
///   guest to a time slice ([`TIME_SLICE_TSC`]); virtual NMIs, when
///   present, make the CPU track the guest's NMI blocking and give an
///   NMI-window exit.
/// - Primary: HLT, port I/O (bitmaps), MSRs (bitmaps), MWAIT, MONITOR and
///   RDPMC exit; a TPR shadow keeps the guest's CR8 off the host's TPR;
///   TSC offsetting. Interrupt-window and NMI-window exiting are set per
///   entry by the backend, not here. CR3 and CR8 accesses, INVLPG, RDTSC and MOV DR run
///   in the guest (EPT and a per-vCPU debug-register switch make that
///   safe).
/// - Secondary: EPT; VPID, unrestricted guest, RDTSCP and INVPCID when
///   available. No APIC virtualization yet (the vlapic issue).
/// - Exit: 64-bit host; EFER and PAT saved and loaded; interrupts are not
///   acknowledged on exit, so a host interrupt stays pending in the local
///   APIC until the window closes and is taken through the host's IDT.
/// - Entry: EFER and PAT loaded.
pub fn negotiate(caps: &VmxCaps) -> Result<Controls, Unavailable> {
    let pin = word(
        &caps.pin,
        (PinBased::EXT_INTR_EXITING | PinBased::NMI_EXITING).bits(),
        (PinBased::PREEMPT_TIMER | PinBased::VIRTUAL_NMIS).bits(),
        PinBased::POSTED_INTR.bits(),
        "VT-x lacks external-interrupt or NMI exiting",
    )?;
    let proc = word(
        &caps.proc,
        (ProcBased::HLT_EXITING
            | ProcBased::IO_BITMAPS
            | ProcBased::MSR_BITMAPS
            | ProcBased::SECONDARY
            | ProcBased::TPR_SHADOW
            | ProcBased::TSC_OFFSETTING
            | ProcBased::MWAIT_EXITING
            | ProcBased::MONITOR_EXITING
            | ProcBased::RDPMC_EXITING)
            .bits(),
        0,
        (ProcBased::INTR_WINDOW
            | ProcBased::INVLPG_EXITING
            | ProcBased::RDTSC_EXITING
            | ProcBased::CR3_LOAD
            | ProcBased::CR3_STORE
            | ProcBased::CR8_LOAD
            | ProcBased::CR8_STORE
            | ProcBased::NMI_WINDOW
            | ProcBased::MOV_DR
            | ProcBased::UNCOND_IO
            | ProcBased::MTF
            | ProcBased::PAUSE_EXITING)
            .bits(),
        "VT-x lacks a required primary control (HLT, I/O or MSR bitmaps, TPR shadow, TSC offsetting, MWAIT, MONITOR or RDPMC exiting)",
    )?;
    let proc2 = word(
        &caps.proc2,
        ProcBased2::EPT.bits(),
        (ProcBased2::VPID
            | ProcBased2::UNRESTRICTED_GUEST
            | ProcBased2::RDTSCP
            | ProcBased2::INVPCID)
            .bits(),
        (ProcBased2::APIC_ACCESS
            | ProcBased2::DESC_TABLE
            | ProcBased2::X2APIC_MODE
            | ProcBased2::WBINVD_EXITING
            | ProcBased2::APIC_REG_VIRT
            | ProcBased2::VINTR_DELIVERY
            | ProcBased2::PLE
            | ProcBased2::VMFUNC
            | ProcBased2::VMCS_SHADOW
            | ProcBased2::PML
            | ProcBased2::XSAVES)
            .bits(),
        "VT-x lacks EPT in the secondary controls",
    )?;
    let exit = word(
        &caps.exit,
        (ExitCtls::HOST_64
            | ExitCtls::SAVE_EFER
            | ExitCtls::LOAD_EFER
            | ExitCtls::SAVE_PAT
            | ExitCtls::LOAD_PAT)
            .bits(),
        0,
        (ExitCtls::ACK_INTR | ExitCtls::LOAD_PERF_GLOBAL).bits(),
        "VT-x lacks a required exit control (64-bit host, EFER and PAT save/load)",
    )?;
    let entry = word(
        &caps.entry,
        (EntryCtls::LOAD_EFER | EntryCtls::LOAD_PAT).bits(),
        0,
        (EntryCtls::IA32E_GUEST
            | EntryCtls::ENTRY_TO_SMM
            | EntryCtls::DEACTIVATE_DUAL_MONITOR
            | EntryCtls::LOAD_PERF_GLOBAL)
            .bits(),
        "VT-x lacks a required entry control (EFER and PAT load)",
    )?;
    Ok(Controls {
        pin: PinBased::from_bits_retain(pin),
        proc: ProcBased::from_bits_retain(proc),
        proc2: ProcBased2::from_bits_retain(proc2),
        exit: ExitCtls::from_bits_retain(exit),
        entry: EntryCtls::from_bits_retain(entry),
    })
}
