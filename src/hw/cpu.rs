// SPDX-License-Identifier: GPL-2.0

//! The local CPU's identification and control registers.
//!
//! # Invariants
//!
//! A [`LocalCpu`] borrows a [`LocalInterruptDisabled`] guard, so it cannot
//! outlive a section with interrupts off, and it is not `Send`: every value
//! it reads describes the CPU the caller is running on.

use crate::x86::{
    cpuid::{xcr0_valid, XFEATURE_AVX, XFEATURE_SSE},
    msr,
    regs::cr4,
    CpuInfo,
};
use core::arch::asm;
use core::marker::PhantomData;
use kernel::ffi::c_int;
use kernel::interrupt::LocalInterruptDisabled;

use super::ffi;

/// The CPU this code runs on, while interrupts are disabled.
pub(crate) struct LocalCpu<'a> {
    _irq: PhantomData<&'a LocalInterruptDisabled>,
}

impl<'a> LocalCpu<'a> {
    /// Borrows the local CPU for as long as interrupts stay off.
    pub(crate) fn new(_irq: &'a LocalInterruptDisabled) -> Self {
        // INVARIANT: the borrow of `_irq` ties `Self` to the section with
        // interrupts disabled.
        Self { _irq: PhantomData }
    }

    /// Live CR0.
    pub(crate) fn cr0(&self) -> u64 {
        // SAFETY: reading CR0 has no side effects.
        unsafe { ffi::vmm_read_cr0() }
    }

    /// Writes `index` = `value`; `false` when the write faulted.
    ///
    /// # Safety
    ///
    /// The MSR must be one the kernel does not cache or rely on while
    /// interrupts are off (virtualization state such as EFER.SVME and
    /// VM_HSAVE_PA, or MSRs only user-mode transitions use), and the caller
    /// must put back the kernel's value before interrupts come back on
    /// unless the kernel expects the new one.
    pub(crate) unsafe fn wrmsr(&self, index: u32, value: u64) -> bool {
        // SAFETY: a faulting WRMSR is caught by the helper's fixup; what the
        // value means is the caller's contract.
        unsafe { ffi::vmm_wrmsr_safe(index, value) == 0 }
    }

    /// Loads the guest's MSRs `msrs` (values `guest`) where they differ
    /// from the host's (`host`, read by the caller), until
    /// [`SwitchedMsrs::restore`]. Only the SYSCALL MSRs and KERNEL_GS_BASE
    /// may be switched: the kernel uses them only on transitions to and
    /// from user mode, which cannot happen while interrupts are off.
    pub(crate) fn switch_msrs<const N: usize>(
        &self,
        msrs: &'static [u32; N],
        host: [u64; N],
        guest: &[u64; N],
    ) -> SwitchedMsrs<'_, 'a, N> {
        for (i, m) in msrs.iter().enumerate() {
            // Anything else is left alone (and `restore` then finds it
            // unchanged).
            if SWITCHABLE.contains(m) && host[i] != guest[i] {
                // SAFETY: a switchable MSR (see above); `restore`, which the
                // guard's owner calls before interrupts come back on, puts
                // the host's value back.
                unsafe { self.wrmsr(*m, guest[i]) };
            }
        }
        SwitchedMsrs { cpu: self, msrs, host }
    }
}

impl CpuInfo for LocalCpu<'_> {
    fn cpuid(&self, leaf: u32, sub: u32) -> [u32; 4] {
        host_cpuid(leaf, sub)
    }

    fn rdmsr(&self, index: u32) -> Option<u64> {
        let mut value = 0u64;
        // SAFETY: `value` is a valid place to write; a faulting RDMSR is
        // caught by the helper's exception-table fixup.
        let r = unsafe { ffi::vmm_rdmsr_safe(index, &mut value) };
        (r == 0).then_some(value)
    }

    fn cr4(&self) -> u64 {
        // SAFETY: reading CR4 has no side effects.
        unsafe { ffi::vmm_read_cr4() }
    }
}

/// The MSRs [`LocalCpu::switch_msrs`] may switch.
const SWITCHABLE: [u32; 5] = [msr::STAR, msr::LSTAR, msr::CSTAR, msr::SFMASK, msr::KERNEL_GS_BASE];

/// Guest values of MSRs that neither the hardware nor the VMCS switches,
/// loaded on this CPU.
pub(crate) struct SwitchedMsrs<'c, 'a, const N: usize> {
    cpu: &'c LocalCpu<'a>,
    msrs: &'static [u32; N],
    host: [u64; N],
}

impl<const N: usize> SwitchedMsrs<'_, '_, N> {
    /// Reads the guest's values back (it writes them without exiting) and
    /// puts the host's back where they differ.
    pub(crate) fn restore(self) -> [u64; N] {
        let mut now = [0u64; N];
        for (i, m) in self.msrs.iter().enumerate() {
            now[i] = self.cpu.rdmsr(*m).unwrap_or(0);
            if now[i] != self.host[i] {
                // SAFETY: puts back the host's value of a switchable MSR.
                unsafe { self.cpu.wrmsr(*m, self.host[i]) };
            }
        }
        now
    }
}

/// Debug registers DR0-DR3, DR6 and DR7, in that order.
type DebugRegs = [u64; 6];

/// The guest's DR0-DR3 and DR6 as they were at the exit.
pub(crate) struct GuestDebug {
    /// DR0-DR3.
    pub(crate) addrs: [u64; 4],
    /// DR6.
    pub(crate) dr6: u64,
}

/// The guest's debug registers and XCR0 loaded on this CPU, around one
/// entry; [`GuestLoaded::restore_host`] puts the host's back.
pub(crate) struct GuestLoaded<'c, 'a> {
    cpu: &'c LocalCpu<'a>,
    host_dr: DebugRegs,
    host_xcr0: Option<u64>,
}

impl LocalCpu<'_> {
    /// Loads the guest's DR0-DR3, its DR6 when given (VT-x does not switch
    /// DR6; SVM does), and its XCR0 when given. An XCR0 that XSETBV would
    /// refuse, or that enables a component the host's lacks, is not loaded
    /// (the guest's XSETBV emulation never lets one through). Every
    /// breakpoint stays disabled: the guest's DR7 is the VMCS's or VMCB's.
    pub(crate) fn load_guest(
        &self,
        dr: &[u64; 4],
        dr6: Option<u64>,
        xcr0: Option<u64>,
    ) -> GuestLoaded<'_, '_> {
        let host_dr = self.debug_regs();
        // SAFETY: DR7 disables every breakpoint before the addresses change
        // and until the host's DR7 is back; DR6 only reports; the XCR0 was
        // checked to be a valid subset of the host's. `restore_host` undoes all of it, and
        // interrupts stay off meanwhile, so the kernel never sees the
        // guest's values.
        let host_xcr0 = unsafe {
            self.disable_breakpoints();
            self.set_breakpoint_addrs(dr);
            if let Some(v) = dr6 {
                self.set_dr6(v);
            }
            xcr0.and_then(|g| {
                let h = self.xcr0();
                xcr0_valid(g, h).then(|| {
                    self.set_xcr0(g);
                    h
                })
            })
        };
        GuestLoaded { cpu: self, host_dr, host_xcr0 }
    }
}

impl GuestLoaded<'_, '_> {
    /// Reads the guest's debug registers and puts the host's debug
    /// registers and XCR0 back.
    pub(crate) fn restore_host(self) -> GuestDebug {
        let c = self.cpu;
        // SAFETY: puts back exactly what `load_guest` found.
        unsafe {
            if let Some(h) = self.host_xcr0 {
                c.set_xcr0(h);
            }
        }
        let d = c.debug_regs();
        // SAFETY: as above.
        unsafe { c.restore_debug_regs(&self.host_dr) };
        GuestDebug { addrs: [d[0], d[1], d[2], d[3]], dr6: d[4] }
    }
}

impl LocalCpu<'_> {
    /// Reads DR0-DR3, DR6 and DR7.
    fn debug_regs(&self) -> DebugRegs {
        let d: DebugRegs;
        // SAFETY: reading debug registers at CPL0 has no side effects.
        unsafe {
            let (a, b, c, e, f, g): (u64, u64, u64, u64, u64, u64);
            asm!("mov {}, dr0", out(reg) a, options(nomem, nostack, preserves_flags));
            asm!("mov {}, dr1", out(reg) b, options(nomem, nostack, preserves_flags));
            asm!("mov {}, dr2", out(reg) c, options(nomem, nostack, preserves_flags));
            asm!("mov {}, dr3", out(reg) e, options(nomem, nostack, preserves_flags));
            asm!("mov {}, dr6", out(reg) f, options(nomem, nostack, preserves_flags));
            asm!("mov {}, dr7", out(reg) g, options(nomem, nostack, preserves_flags));
            d = [a, b, c, e, f, g];
        }
        d
    }

    /// Disables every breakpoint (DR7 = its reset value).
    ///
    /// # Safety
    ///
    /// The host's DR7 must be put back before interrupts come on.
    unsafe fn disable_breakpoints(&self) {
        // SAFETY: a DR7 with no breakpoint enabled cannot trigger #DB; with
        // interrupts off nothing else on this CPU relies on DR7 meanwhile.
        unsafe { asm!("mov dr7, {}", in(reg) 0x400u64, options(nomem, nostack, preserves_flags)) };
    }

    /// Loads DR0-DR3.
    ///
    /// # Safety
    ///
    /// DR7 must disable every breakpoint, and the host's addresses must be
    /// put back before a DR7 that enables any is loaded.
    unsafe fn set_breakpoint_addrs(&self, a: &[u64; 4]) {
        // SAFETY: with DR7 disabling every breakpoint (the contract) the
        // addresses have no effect until a DR7 that enables them is loaded.
        unsafe {
            asm!("mov dr0, {}", in(reg) a[0], options(nomem, nostack, preserves_flags));
            asm!("mov dr1, {}", in(reg) a[1], options(nomem, nostack, preserves_flags));
            asm!("mov dr2, {}", in(reg) a[2], options(nomem, nostack, preserves_flags));
            asm!("mov dr3, {}", in(reg) a[3], options(nomem, nostack, preserves_flags));
        }
    }

    /// Loads DR6 (VT-x does not switch it).
    ///
    /// # Safety
    ///
    /// The host's DR6 must be put back before interrupts come on.
    unsafe fn set_dr6(&self, v: u64) {
        // SAFETY: DR6 only reports debug conditions; with interrupts off no
        // host code reads it before the host's value is restored.
        unsafe { asm!("mov dr6, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
    }

    /// Restores the host's DR0-DR3, DR6 and DR7 saved by [`Self::debug_regs`].
    ///
    /// # Safety
    ///
    /// `d` must be what `debug_regs` read on this CPU in this
    /// interrupts-off section, and DR7 must still disable every breakpoint.
    unsafe fn restore_debug_regs(&self, d: &DebugRegs) {
        // SAFETY: restores exactly the values the host had; DR7 last, so
        // its breakpoints see their own addresses.
        unsafe {
            self.set_breakpoint_addrs(&[d[0], d[1], d[2], d[3]]);
            asm!("mov dr6, {}", in(reg) d[4], options(nomem, nostack, preserves_flags));
            asm!("mov dr7, {}", in(reg) d[5], options(nomem, nostack, preserves_flags));
        }
    }

    /// XCR0.
    pub(crate) fn xcr0(&self) -> u64 {
        // SAFETY: XGETBV(0) is valid whenever CR4.OSXSAVE is set, which the
        // callers check first.
        unsafe { ffi::vmm_xgetbv0() }
    }

    /// Sets XCR0 to `value`.
    ///
    /// # Safety
    ///
    /// `value` must be a subset of the host's XCR0 containing x87, and the
    /// host's value must be put back before interrupts are enabled.
    unsafe fn set_xcr0(&self, value: u64) {
        // SAFETY: a valid subset of the host's features cannot fault; the
        // kernel never observes the guest's value (interrupts are off).
        unsafe { ffi::vmm_xsetbv0(value) };
    }
}

/// The time-stamp counter.
pub(crate) fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC only writes EDX:EAX.
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// CPUID on whatever CPU this runs on. Only for leaves that are the same
/// on every CPU (all of them, apart from APIC ids, which callers replace).
pub(crate) fn host_cpuid(leaf: u32, sub: u32) -> [u32; 4] {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: CPUID only writes the four registers named here; RBX is
    // reserved by LLVM, so it is saved in a scratch register around it.
    unsafe {
        asm!(
            "mov {tmp:r}, rbx",
            "cpuid",
            "xchg {tmp:r}, rbx",
            tmp = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") sub => ecx,
            out("edx") edx,
            options(nostack, preserves_flags),
        );
    }
    [eax, ebx, ecx, edx]
}

/// The host's CPUID for policy code that only needs CPUID (MSR and CR4
/// reads answer "unknown").
pub(crate) struct HostCpuid;

impl CpuInfo for HostCpuid {
    fn cpuid(&self, leaf: u32, sub: u32) -> [u32; 4] {
        host_cpuid(leaf, sub)
    }
    fn rdmsr(&self, _index: u32) -> Option<u64> {
        None
    }
    fn cr4(&self) -> u64 {
        0
    }
}

/// How this host saves FPU state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FpuCaps {
    /// XSAVE/XRSTOR (else FXSAVE/FXRSTOR).
    pub(crate) xsave: bool,
    /// The host's XCR0 (zero without XSAVE).
    pub(crate) host_xcr0: u64,
    /// Where the upper halves of YMM0-15 lie in the XSAVE area (CPUID
    /// 0xD.2 EBX), when the host has AVX.
    ymm_offset: Option<usize>,
}

impl FpuCaps {
    /// Probes the local CPU.
    pub(crate) fn probe(cpu: &LocalCpu<'_>) -> Self {
        let xsave = cpu.cr4() & cr4::OSXSAVE != 0;
        let host_xcr0 = if xsave { cpu.xcr0() } else { 0 };
        let ymm_offset = (host_xcr0 & XFEATURE_AVX != 0)
            .then(|| cpu.cpuid(0xd, 2)[1] as usize)
            .filter(|o| o + 256 <= AREA_BYTES);
        Self { xsave, host_xcr0, ymm_offset }
    }

    /// Components vmm saves: the host's, without AMX tile data (which the
    /// guest may never enable and which would not fit the area).
    fn mask(&self) -> u64 {
        self.host_xcr0 & !(3 << 17)
    }
}

/// A vCPU's FPU/SSE/AVX registers while it is not running: one page in
/// XSAVE (or FXSAVE) layout.
pub(crate) struct FpuArea {
    page: super::mem::HwPages,
    caps: FpuCaps,
}

/// Copies as many bytes as both sides have (no `copy_from_slice`: its
/// length panic trips objtool in 7.3).
fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Bytes of the FPU area (one page).
const AREA_BYTES: usize = 4096;
/// Where XMM0 lies in the FXSAVE/XSAVE legacy region.
const XMM_OFFSET: usize = 160;
/// Where XSTATE_BV lies in the XSAVE header.
const XSTATE_BV: usize = 512;

/// Proof that the guest's FPU state is in the registers (kernel FPU use
/// begun); [`FpuArea::store`] consumes it.
pub(crate) struct FpuLoaded(());

impl FpuArea {
    /// The architectural reset state: FCW 0x37f, MXCSR 0x1f80, everything
    /// else in its initial configuration.
    pub(crate) fn new(caps: FpuCaps) -> kernel::error::Result<Self> {
        let mut page = super::mem::HwPages::new(0)?;
        let b: &mut [u8; AREA_BYTES] = page.as_mut();
        b[0] = 0x7f;
        b[1] = 0x03;
        b[24] = 0x80;
        b[25] = 0x1f;
        Ok(Self { page, caps })
    }

    /// Bits 255:0 of the guest's vector register `n` (0-15), as saved.
    /// Components XSTATE_BV marks as in their initial state read as zero.
    pub(crate) fn vec(&self, n: u8) -> [u8; 32] {
        let b: &[u8; AREA_BYTES] = self.page.as_ref();
        let n = usize::from(n & 15);
        let bv = self.xstate_bv(b);
        let mut v = [0u8; 32];
        if bv & XFEATURE_SSE != 0 {
            copy(&mut v[..16], &b[XMM_OFFSET + 16 * n..]);
        }
        if let Some(o) = self.caps.ymm_offset.filter(|_| bv & XFEATURE_AVX != 0) {
            copy(&mut v[16..], &b[o + 16 * n..]);
        }
        v
    }

    /// Sets bits 127:0 of vector register `n`, and bits 255:128 when `ymm`
    /// (a VEX-encoded write zeroes them for a 128-bit value, which the
    /// emulator passes in `v`).
    pub(crate) fn set_vec(&mut self, n: u8, v: [u8; 32], ymm: bool) {
        let caps = self.caps;
        let b: &mut [u8; AREA_BYTES] = self.page.as_mut();
        let n = usize::from(n & 15);
        let mut bv = XFEATURE_SSE;
        copy(&mut b[XMM_OFFSET + 16 * n..XMM_OFFSET + 16 * n + 16], &v[..16]);
        if let Some(o) = caps.ymm_offset.filter(|_| ymm) {
            copy(&mut b[o + 16 * n..o + 16 * n + 16], &v[16..]);
            bv |= XFEATURE_AVX;
        }
        if caps.xsave {
            // The components now hold values: XRSTOR must load them rather
            // than their initial state.
            let old = u64::from_le_bytes(b[XSTATE_BV..XSTATE_BV + 8].try_into().unwrap_or([0; 8]));
            copy(&mut b[XSTATE_BV..XSTATE_BV + 8], &(old | bv).to_le_bytes());
        }
    }

    fn xstate_bv(&self, b: &[u8; AREA_BYTES]) -> u64 {
        if !self.caps.xsave {
            // FXSAVE: the XMM registers are always there.
            return XFEATURE_SSE;
        }
        u64::from_le_bytes(b[XSTATE_BV..XSTATE_BV + 8].try_into().unwrap_or([0; 8]))
    }

    /// Begins kernel FPU use and loads the guest's registers. Call with
    /// interrupts on.
    pub(crate) fn load(&mut self) -> FpuLoaded {
        let p: *mut u8 = self.page.as_mut::<[u8; 4096]>().as_mut_ptr();
        // SAFETY: kernel_fpu_begin saves the task's FPU state and disables
        // preemption, so the registers are ours until `store`; the area is
        // a page-aligned XSAVE image (64-byte alignment holds) that only
        // XSAVE/FXSAVE of the same layout ever wrote.
        unsafe {
            ffi::vmm_fpu_begin();
            ffi::vmm_fpu_restore(p.cast(), self.caps.mask(), c_int::from(self.caps.xsave));
        }
        FpuLoaded(())
    }

    /// Saves the guest's registers and ends kernel FPU use.
    pub(crate) fn store(&mut self, _loaded: FpuLoaded) {
        let p: *mut u8 = self.page.as_mut::<[u8; 4096]>().as_mut_ptr();
        // SAFETY: `FpuLoaded` proves `load` ran, so kernel FPU use is on;
        // the area is as in `load`. The task's state comes back on return
        // to user mode.
        unsafe {
            ffi::vmm_fpu_save(p.cast(), self.caps.mask(), c_int::from(self.caps.xsave));
            ffi::vmm_fpu_end();
        }
    }
}
