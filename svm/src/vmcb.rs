// SPDX-License-Identifier: GPL-2.0

//! The VMCB (APM Vol. 2, Appendix B): a 4 KiB page with the control area
//! at offset 0 and the guest state save area at 0x400.
//!
//! Every field's offset is asserted at compile time against the APM, so a
//! misplaced field is a build error in the module and in `cargo test`.
//! Only the legacy (non-SEV-ES) save area is described.

use core::mem::{offset_of, size_of};

/// A segment register as the VMCB holds it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Attributes: type, S, DPL, P, AVL, L, D/B and G packed in 12 bits.
    pub attrib: u16,
    /// Limit, in bytes.
    pub limit: u32,
    /// Base address.
    pub base: u64,
}

/// `Control::nested_ctl` bit 0, NP_ENABLE: nested paging.
pub const NP_ENABLE: u64 = 1;
/// `Control::int_ctl` bit 24, V_INTR_MASKING: the guest's RFLAGS.IF and
/// CR8 mask only virtual interrupts; the host's IF masks physical ones.
pub const V_INTR_MASKING: u32 = 1 << 24;
/// `Control::int_ctl` bits 3:0, V_TPR: the guest's CR8.
pub const V_TPR: u32 = 0xf;
/// `Control::int_ctl` bit 8, V_IRQ: a virtual interrupt is pending (with
/// the VINTR intercept, the interrupt window).
pub const V_IRQ: u32 = 1 << 8;
/// `Control::int_ctl` bits 19:16, V_INTR_PRIO: the virtual interrupt's
/// priority class.
pub const V_INTR_PRIO: u32 = 0xf << 16;
/// `Control::int_ctl` bit 20, V_IGN_TPR: the virtual interrupt ignores
/// V_TPR.
pub const V_IGN_TPR: u32 = 1 << 20;
/// `Control::int_state` bit 0: the guest is in an interrupt shadow (STI,
/// MOV SS).
pub const INT_SHADOW: u32 = 1;

/// The control area (APM Table B-1).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Control {
    /// Intercept vectors: CR reads/writes, DR reads/writes, exceptions,
    /// [`Intercept1`] and [`Intercept2`], and a third (unused) word.
    pub intercepts: [u32; 6],
    _reserved_1: [u32; 9],
    /// PAUSE filter threshold.
    pub pause_filter_thresh: u16,
    /// PAUSE filter count.
    pub pause_filter_count: u16,
    /// Physical address of the I/O permission map (12 KiB).
    pub iopm_base_pa: u64,
    /// Physical address of the MSR permission map (8 KiB).
    pub msrpm_base_pa: u64,
    /// Added to the host TSC for the guest.
    pub tsc_offset: u64,
    /// Guest ASID (never 0).
    pub asid: u32,
    /// A [`TlbControl`] value.
    pub tlb_ctl: u8,
    _reserved_2: [u8; 3],
    /// Virtual interrupt control: V_TPR, V_IRQ, V_INTR_PRIO, V_INTR_MASKING...
    pub int_ctl: u32,
    /// Virtual interrupt vector.
    pub int_vector: u32,
    /// Interrupt shadow (bit 0) and guest interrupt mask (bit 1).
    pub int_state: u32,
    _reserved_3: [u8; 4],
    /// Exit code; see [`ExitCode`](super::exit::ExitCode).
    pub exit_code: u64,
    /// EXITINFO1.
    pub exit_info_1: u64,
    /// EXITINFO2.
    pub exit_info_2: u64,
    /// EXITINTINFO: an event that was being delivered at the exit.
    pub exit_int_info: u32,
    /// Its error code.
    pub exit_int_info_err: u32,
    /// Bit 0 enables nested paging.
    pub nested_ctl: u64,
    /// AVIC APIC backing page address.
    pub avic_vapic_bar: u64,
    /// GHCB guest-physical address (SEV-ES).
    pub ghcb_gpa: u64,
    /// EVENTINJ: an event to inject on entry.
    pub event_inj: u32,
    /// Its error code.
    pub event_inj_err: u32,
    /// Nested page table root (nCR3).
    pub nested_cr3: u64,
    /// LBR virtualization enable and more.
    pub virt_ext: u64,
    /// VMCB clean bits.
    pub clean: u32,
    _reserved_5: u32,
    /// Next sequential RIP (with NRIP-save).
    pub next_rip: u64,
    /// Bytes fetched (with decode assists).
    pub insn_len: u8,
    /// The fetched instruction bytes.
    pub insn_bytes: [u8; 15],
    /// AVIC backing page.
    pub avic_backing_page: u64,
    _reserved_6: [u8; 8],
    /// AVIC logical table.
    pub avic_logical_id: u64,
    /// AVIC physical table.
    pub avic_physical_id: u64,
    _reserved_7: [u8; 8],
    /// VMSA pointer (SEV-ES).
    pub vmsa_pa: u64,
    _reserved_8: [u8; 720],
    /// Reserved for the hypervisor's own use.
    pub software: [u8; 32],
}

/// The guest state save area (APM Table B-2), at VMCB offset 0x400.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Save {
    /// ES.
    pub es: Segment,
    /// CS.
    pub cs: Segment,
    /// SS.
    pub ss: Segment,
    /// DS.
    pub ds: Segment,
    /// FS.
    pub fs: Segment,
    /// GS.
    pub gs: Segment,
    /// GDTR (limit and base only).
    pub gdtr: Segment,
    /// LDTR.
    pub ldtr: Segment,
    /// IDTR (limit and base only).
    pub idtr: Segment,
    /// TR.
    pub tr: Segment,
    _reserved_0xa0: [u8; 43],
    /// Current privilege level.
    pub cpl: u8,
    _reserved_0xcc: [u8; 4],
    /// EFER (SVME must be set).
    pub efer: u64,
    _reserved_0xd8: [u8; 112],
    /// CR4.
    pub cr4: u64,
    /// CR3.
    pub cr3: u64,
    /// CR0.
    pub cr0: u64,
    /// DR7.
    pub dr7: u64,
    /// DR6.
    pub dr6: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// RIP.
    pub rip: u64,
    _reserved_0x180: [u8; 88],
    /// RSP.
    pub rsp: u64,
    /// Supervisor shadow-stack control (CET).
    pub s_cet: u64,
    /// Shadow-stack pointer.
    pub ssp: u64,
    /// Interrupt shadow-stack table address.
    pub isst_addr: u64,
    /// RAX.
    pub rax: u64,
    /// STAR.
    pub star: u64,
    /// LSTAR.
    pub lstar: u64,
    /// CSTAR.
    pub cstar: u64,
    /// SFMASK.
    pub sfmask: u64,
    /// KERNEL_GS_BASE.
    pub kernel_gs_base: u64,
    /// SYSENTER_CS.
    pub sysenter_cs: u64,
    /// SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// CR2.
    pub cr2: u64,
    _reserved_0x248: [u8; 32],
    /// Guest PAT (with nested paging).
    pub g_pat: u64,
    /// DBGCTL.
    pub dbgctl: u64,
    /// Last branch from.
    pub br_from: u64,
    /// Last branch to.
    pub br_to: u64,
    /// Last exception from.
    pub last_excp_from: u64,
    /// Last exception to.
    pub last_excp_to: u64,
    _reserved_0x298: [u8; 72],
    /// Guest SPEC_CTRL.
    pub spec_ctrl: u64,
}

/// A whole VMCB page.
#[repr(C, align(4096))]
#[derive(Clone, Copy, Debug)]
pub struct Vmcb {
    /// Control area.
    pub control: Control,
    /// Guest state.
    pub save: Save,
    _rest: [u8; 4096 - 0x400 - size_of::<Save>()],
}

/// Asserts a field's offset within its struct at compile time.
macro_rules! at {
    ($t:ty, $($f:ident).+, $off:expr) => {
        const _: () = assert!(offset_of!($t, $($f).+) == $off, "VMCB field misplaced");
    };
}

// APM Table B-1, control area.
at!(Control, intercepts, 0x000);
at!(Control, pause_filter_thresh, 0x03c);
at!(Control, pause_filter_count, 0x03e);
at!(Control, iopm_base_pa, 0x040);
at!(Control, msrpm_base_pa, 0x048);
at!(Control, tsc_offset, 0x050);
at!(Control, asid, 0x058);
at!(Control, tlb_ctl, 0x05c);
at!(Control, int_ctl, 0x060);
at!(Control, int_vector, 0x064);
at!(Control, int_state, 0x068);
at!(Control, exit_code, 0x070);
at!(Control, exit_info_1, 0x078);
at!(Control, exit_info_2, 0x080);
at!(Control, exit_int_info, 0x088);
at!(Control, exit_int_info_err, 0x08c);
at!(Control, nested_ctl, 0x090);
at!(Control, avic_vapic_bar, 0x098);
at!(Control, ghcb_gpa, 0x0a0);
at!(Control, event_inj, 0x0a8);
at!(Control, event_inj_err, 0x0ac);
at!(Control, nested_cr3, 0x0b0);
at!(Control, virt_ext, 0x0b8);
at!(Control, clean, 0x0c0);
at!(Control, next_rip, 0x0c8);
at!(Control, insn_len, 0x0d0);
at!(Control, insn_bytes, 0x0d1);
at!(Control, avic_backing_page, 0x0e0);
at!(Control, avic_logical_id, 0x0f0);
at!(Control, avic_physical_id, 0x0f8);
at!(Control, vmsa_pa, 0x108);
at!(Control, software, 0x3e0);
const _: () = assert!(size_of::<Control>() == 0x400);

// APM Table B-2, save area (offsets from 0x400).
at!(Save, es, 0x000);
at!(Save, cs, 0x010);
at!(Save, ss, 0x020);
at!(Save, ds, 0x030);
at!(Save, fs, 0x040);
at!(Save, gs, 0x050);
at!(Save, gdtr, 0x060);
at!(Save, ldtr, 0x070);
at!(Save, idtr, 0x080);
at!(Save, tr, 0x090);
at!(Save, cpl, 0x0cb);
at!(Save, efer, 0x0d0);
at!(Save, cr4, 0x148);
at!(Save, cr3, 0x150);
at!(Save, cr0, 0x158);
at!(Save, dr7, 0x160);
at!(Save, dr6, 0x168);
at!(Save, rflags, 0x170);
at!(Save, rip, 0x178);
at!(Save, rsp, 0x1d8);
at!(Save, rax, 0x1f8);
at!(Save, star, 0x200);
at!(Save, lstar, 0x208);
at!(Save, cstar, 0x210);
at!(Save, sfmask, 0x218);
at!(Save, kernel_gs_base, 0x220);
at!(Save, sysenter_cs, 0x228);
at!(Save, sysenter_esp, 0x230);
at!(Save, sysenter_eip, 0x238);
at!(Save, cr2, 0x240);
at!(Save, g_pat, 0x268);
at!(Save, dbgctl, 0x270);
at!(Save, last_excp_to, 0x290);
at!(Save, spec_ctrl, 0x2e0);
const _: () = assert!(size_of::<Save>() == 744);
at!(Segment, base, 8);
const _: () = assert!(size_of::<Segment>() == 16);

at!(Vmcb, control, 0x000);
at!(Vmcb, save, 0x400);
const _: () = assert!(size_of::<Vmcb>() == 4096);

impl Vmcb {
    /// An all-zero VMCB: no intercepts, every field clear.
    pub const ZERO: Self = Self {
        control: Control {
            intercepts: [0; 6],
            _reserved_1: [0; 9],
            pause_filter_thresh: 0,
            pause_filter_count: 0,
            iopm_base_pa: 0,
            msrpm_base_pa: 0,
            tsc_offset: 0,
            asid: 0,
            tlb_ctl: 0,
            _reserved_2: [0; 3],
            int_ctl: 0,
            int_vector: 0,
            int_state: 0,
            _reserved_3: [0; 4],
            exit_code: 0,
            exit_info_1: 0,
            exit_info_2: 0,
            exit_int_info: 0,
            exit_int_info_err: 0,
            nested_ctl: 0,
            avic_vapic_bar: 0,
            ghcb_gpa: 0,
            event_inj: 0,
            event_inj_err: 0,
            nested_cr3: 0,
            virt_ext: 0,
            clean: 0,
            _reserved_5: 0,
            next_rip: 0,
            insn_len: 0,
            insn_bytes: [0; 15],
            avic_backing_page: 0,
            _reserved_6: [0; 8],
            avic_logical_id: 0,
            avic_physical_id: 0,
            _reserved_7: [0; 8],
            vmsa_pa: 0,
            _reserved_8: [0; 720],
            software: [0; 32],
        },
        save: Save {
            es: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            cs: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            ss: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            ds: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            fs: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            gs: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            gdtr: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            ldtr: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            idtr: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            tr: Segment { selector: 0, attrib: 0, limit: 0, base: 0 },
            _reserved_0xa0: [0; 43],
            cpl: 0,
            _reserved_0xcc: [0; 4],
            efer: 0,
            _reserved_0xd8: [0; 112],
            cr4: 0,
            cr3: 0,
            cr0: 0,
            dr7: 0,
            dr6: 0,
            rflags: 0,
            rip: 0,
            _reserved_0x180: [0; 88],
            rsp: 0,
            s_cet: 0,
            ssp: 0,
            isst_addr: 0,
            rax: 0,
            star: 0,
            lstar: 0,
            cstar: 0,
            sfmask: 0,
            kernel_gs_base: 0,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            cr2: 0,
            _reserved_0x248: [0; 32],
            g_pat: 0,
            dbgctl: 0,
            br_from: 0,
            br_to: 0,
            last_excp_from: 0,
            last_excp_to: 0,
            _reserved_0x298: [0; 72],
            spec_ctrl: 0,
        },
        _rest: [0; 4096 - 0x400 - size_of::<Save>()],
    };

    /// The intercepts of word 3.
    pub fn intercept1(&self) -> Intercept1 {
        Intercept1::from_bits_retain(self.control.intercepts[3])
    }

    /// Sets the intercepts of word 3.
    pub fn set_intercept1(&mut self, i: Intercept1) {
        self.control.intercepts[3] = i.bits();
    }

    /// Sets the intercepts of word 4.
    pub fn set_intercept2(&mut self, i: Intercept2) {
        self.control.intercepts[4] = i.bits();
    }
}

bitflags::bitflags! {
    /// Intercept vector word 3 (VMCB offset 0x0c).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Intercept1: u32 {
        /// Physical INTR.
        const INTR = 1 << 0;
        /// Physical NMI.
        const NMI = 1 << 1;
        /// Physical SMI.
        const SMI = 1 << 2;
        /// Physical INIT.
        const INIT = 1 << 3;
        /// Virtual INTR.
        const VINTR = 1 << 4;
        /// RDTSC.
        const RDTSC = 1 << 14;
        /// RDPMC.
        const RDPMC = 1 << 15;
        /// CPUID.
        const CPUID = 1 << 18;
        /// RSM.
        const RSM = 1 << 19;
        /// IRET.
        const IRET = 1 << 20;
        /// INVD.
        const INVD = 1 << 22;
        /// PAUSE.
        const PAUSE = 1 << 23;
        /// HLT.
        const HLT = 1 << 24;
        /// INVLPGA.
        const INVLPGA = 1 << 26;
        /// IN/OUT, through the I/O permission map.
        const IOIO_PROT = 1 << 27;
        /// RDMSR/WRMSR, through the MSR permission map.
        const MSR_PROT = 1 << 28;
        /// Task switches.
        const TASK_SWITCH = 1 << 29;
        /// Shutdown (triple fault).
        const SHUTDOWN = 1 << 31;
    }
}

bitflags::bitflags! {
    /// Intercept vector word 4 (VMCB offset 0x10).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Intercept2: u32 {
        /// VMRUN: must be set, or VMRUN fails.
        const VMRUN = 1 << 0;
        /// VMMCALL.
        const VMMCALL = 1 << 1;
        /// VMLOAD.
        const VMLOAD = 1 << 2;
        /// VMSAVE.
        const VMSAVE = 1 << 3;
        /// STGI.
        const STGI = 1 << 4;
        /// CLGI.
        const CLGI = 1 << 5;
        /// SKINIT.
        const SKINIT = 1 << 6;
        /// RDTSCP.
        const RDTSCP = 1 << 7;
        /// ICEBP.
        const ICEBP = 1 << 8;
        /// WBINVD.
        const WBINVD = 1 << 9;
        /// MONITOR.
        const MONITOR = 1 << 10;
        /// MWAIT.
        const MWAIT = 1 << 11;
        /// MWAIT when armed.
        const MWAIT_COND = 1 << 12;
        /// XSETBV.
        const XSETBV = 1 << 13;
    }
}

/// What VMRUN does to the TLB (control field `tlb_ctl`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbControl {
    /// Nothing.
    DoNothing = 0,
    /// Flush every ASID's entries (the only flush without flush-by-ASID).
    FlushAll = 1,
    /// Flush this guest's ASID (needs flush-by-ASID).
    FlushAsid = 3,
}
