// SPDX-License-Identifier: GPL-2.0

//! The local CPU's identification and control registers.
//!
//! # Invariants
//!
//! A [`LocalCpu`] borrows a [`LocalInterruptDisabled`] guard, so it cannot
//! outlive a section with interrupts off, and it is not `Send`: every value
//! it reads describes the CPU the caller is running on.

use crate::x86::CpuInfo;
use core::arch::asm;
use core::marker::PhantomData;
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
    pub(crate) fn wrmsr(&self, index: u32, value: u64) -> bool {
        // Callers write only virtualization state (EFER.SVME, VM_HSAVE_PA),
        // which the kernel does not cache.
        // SAFETY: a faulting WRMSR is caught by the helper's fixup.
        unsafe { ffi::vmm_wrmsr_safe(index, value) == 0 }
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

/// Debug registers DR0-DR3, DR6 and DR7, in that order.
pub(crate) type DebugRegs = [u64; 6];

impl LocalCpu<'_> {
    /// Reads DR0-DR3, DR6 and DR7.
    pub(crate) fn debug_regs(&self) -> DebugRegs {
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
    pub(crate) fn disable_breakpoints(&self) {
        // SAFETY: a DR7 with no breakpoint enabled cannot trigger #DB; with
        // interrupts off nothing else on this CPU relies on DR7 meanwhile.
        unsafe { asm!("mov dr7, {}", in(reg) 0x400u64, options(nomem, nostack, preserves_flags)) };
    }

    /// Loads DR0-DR3 (addresses only; DR7 must have them disabled).
    pub(crate) fn set_breakpoint_addrs(&self, a: &[u64; 4]) {
        // SAFETY: with DR7 disabling every breakpoint (the caller's
        // contract, checked by the window code's ordering) the addresses
        // have no effect until a DR7 that enables them is loaded.
        unsafe {
            asm!("mov dr0, {}", in(reg) a[0], options(nomem, nostack, preserves_flags));
            asm!("mov dr1, {}", in(reg) a[1], options(nomem, nostack, preserves_flags));
            asm!("mov dr2, {}", in(reg) a[2], options(nomem, nostack, preserves_flags));
            asm!("mov dr3, {}", in(reg) a[3], options(nomem, nostack, preserves_flags));
        }
    }

    /// Loads DR6 (VT-x does not switch it).
    pub(crate) fn set_dr6(&self, v: u64) {
        // SAFETY: DR6 only reports debug conditions; with interrupts off no
        // host code reads it before the host's value is restored.
        unsafe { asm!("mov dr6, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
    }

    /// Restores the host's DR0-DR3, DR6 and DR7 saved by [`Self::debug_regs`].
    pub(crate) fn restore_debug_regs(&self, d: &DebugRegs) {
        self.set_breakpoint_addrs(&[d[0], d[1], d[2], d[3]]);
        // SAFETY: restores exactly the values the host had; DR7 last, so
        // its breakpoints see their own addresses.
        unsafe {
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

    /// Sets XCR0 to `value`, which must be a subset of the host's XCR0
    /// containing x87 (the caller validated it); the host's value must be
    /// put back before interrupts are enabled.
    pub(crate) fn set_xcr0(&self, value: u64) {
        // SAFETY: a valid subset of the host's features cannot fault; the
        // kernel never observes the guest's value (interrupts are off).
        unsafe { ffi::vmm_xsetbv0(value) };
    }
}

/// The time-stamp counter.
pub(crate) fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC only writes EDX:EAX.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
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
}

impl FpuCaps {
    /// Probes the local CPU.
    pub(crate) fn probe(cpu: &LocalCpu<'_>) -> Self {
        const CR4_OSXSAVE: u64 = 1 << 18;
        let xsave = cpu.cr4() & CR4_OSXSAVE != 0;
        Self { xsave, host_xcr0: if xsave { cpu.xcr0() } else { 0 } }
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

/// Proof that the guest's FPU state is in the registers (kernel FPU use
/// begun); [`FpuArea::store`] consumes it.
pub(crate) struct FpuLoaded(());

impl FpuArea {
    /// The architectural reset state: FCW 0x37f, MXCSR 0x1f80, everything
    /// else in its initial configuration.
    pub(crate) fn new(caps: FpuCaps) -> kernel::error::Result<Self> {
        let mut page = super::mem::HwPages::new(0)?;
        let b: &mut [u8; 4096] = page.as_mut();
        b[0] = 0x7f;
        b[1] = 0x03;
        b[24] = 0x80;
        b[25] = 0x1f;
        Ok(Self { page, caps })
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
            ffi::vmm_fpu_restore(p.cast(), self.caps.mask(), self.caps.xsave as _);
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
            ffi::vmm_fpu_save(p.cast(), self.caps.mask(), self.caps.xsave as _);
            ffi::vmm_fpu_end();
        }
    }
}
