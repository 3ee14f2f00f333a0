// SPDX-License-Identifier: GPL-2.0

//! VMX operation: VMXON regions and the window in which VMX is on.
//!
//! # Invariants
//!
//! - A [`VmxonRegion`] owns one zeroed page whose first four bytes hold the
//!   VMCS revision identifier, and belongs to exactly one CPU (`cpu`).
//! - A [`VmxWindow`] exists only while the CPU it was opened on is in VMX
//!   root operation that this module entered, with CR4.VMXE set by us and
//!   interrupts disabled (it borrows the [`LocalCpu`], which borrows the
//!   interrupts-off guard). Dropping it executes VMXOFF and restores CR4
//!   before interrupts can come back on.
//! - A [`VmcsRegion`] owns one zeroed page stamped with the revision
//!   identifier. It is current on a CPU only while a [`CurrentVmcs`]
//!   borrows it exclusively, inside a window; dropping the [`CurrentVmcs`]
//!   executes VMCLEAR, so no VMCS is ever active outside a window, and a
//!   region is never current on two CPUs.
//! - [`CurrentVmcs::run`] enters the guest; its caller guarantees that
//!   every physical address in the VMCS (bitmaps, virtual-APIC page, EPT
//!   root) names memory that outlives the entry (the backend's invariant).

use core::{cell::Cell, marker::PhantomData};
use kernel::{
    page::Page,
    prelude::*,
    sync::atomic::{Acquire, Relaxed},
};

use super::{cpu::LocalCpu, ffi, mem::HwPages, WindowError, OPEN_WINDOWS, SHUTTING_DOWN};
use crate::vmx::{caps::VmxCaps, vmcs};
use crate::x86::{msr, regs::cr4::VMXE, CpuInfo};
pub(crate) use ffi::VmxHost;

/// The 4 KiB VMXON region of one CPU.
pub(crate) struct VmxonRegion {
    _page: Page,
    pa: u64,
    cpu: u32,
}

impl VmxonRegion {
    /// Allocates CPU `cpu`'s region, stamped with `revision`.
    pub(crate) fn new(cpu: u32, revision: u32) -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let rev = revision.to_le_bytes();
        // SAFETY: `rev` is four readable bytes, and bytes 0..4 lie inside
        // the page.
        unsafe { page.write_raw(rev.as_ptr(), 0, rev.len())? };
        // SAFETY: `page.as_ptr()` is a valid `struct page` that `page` owns.
        let pa = unsafe { ffi::vmm_page_to_phys(page.as_ptr().cast()) };
        // INVARIANT: the page is zeroed but for the revision identifier, and
        // is dedicated to `cpu`.
        Ok(Self { _page: page, pa, cpu })
    }
}

/// This CPU is in VMX root operation for as long as the value lives.
pub(crate) struct VmxWindow<'a> {
    cr4: u64,
    cpu: &'a LocalCpu<'a>,
}

impl<'a> VmxWindow<'a> {
    /// Sets CR4.VMXE and executes VMXON with `region`.
    pub(crate) fn enter(
        cpu: &'a LocalCpu<'a>,
        this_cpu: u32,
        region: &'a VmxonRegion,
        caps: &VmxCaps,
    ) -> Result<Self, WindowError> {
        if SHUTTING_DOWN.load(Acquire) {
            return Err(WindowError::ShuttingDown);
        }
        if region.cpu != this_cpu {
            return Err(WindowError::WrongCpu);
        }
        let cr4 = cpu.cr4();
        if cr4 & VMXE != 0 {
            return Err(WindowError::InUse);
        }
        if !caps.cr_fixed_ok(cpu.cr0(), cr4 | VMXE) {
            return Err(WindowError::FixedBits);
        }
        OPEN_WINDOWS.add(1, Relaxed);
        // Interrupts are off (the `LocalCpu` invariant), so no kernel code on
        // this CPU writes CR4 from its shadow before the window closes.
        // SAFETY: only VMXE differs from the live value, as the helper needs.
        unsafe { ffi::vmm_write_cr4_raw(cr4 | VMXE) };
        // `region` is this CPU's own (checked above) and outlives the window;
        // faults and VMfail come back as error codes.
        // SAFETY: `region.pa` is a page-aligned VMXON region with the revision.
        match unsafe { ffi::vmm_vmxon(region.pa) } {
            0 => Ok(Self { cr4, cpu }),
            r => {
                // SAFETY: restores the value the kernel's shadow holds.
                unsafe { ffi::vmm_write_cr4_raw(cr4) };
                OPEN_WINDOWS.fetch_sub(1, Relaxed);
                Err(WindowError::Failed(if r == EFAULT.to_errno() {
                    "VMXON faulted"
                } else {
                    "VMXON failed"
                }))
            }
        }
    }
}

impl Drop for VmxWindow<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this CPU is in VMX root operation
        // that we entered; a fault or VMfail comes back as an error code.
        let r = unsafe { ffi::vmm_vmxoff() };
        // SAFETY: restores the CR4 value the kernel's shadow holds, with
        // interrupts still off.
        unsafe { ffi::vmm_write_cr4_raw(self.cr4) };
        OPEN_WINDOWS.fetch_sub(1, Relaxed);
        if r != 0 {
            pr_err!("VMXOFF failed ({r}); VMX state on this CPU is suspect\n");
        }
    }
}

/// Why a VMX instruction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VmFail {
    /// VMfailInvalid: no current VMCS (or a bad pointer).
    Invalid,
    /// VMfailValid, with the VM-instruction error number (SDM 31.4).
    Valid(u32),
    /// The instruction faulted.
    Fault,
}

impl VmFail {
    fn from_code(code: i32, error: impl FnOnce() -> u32) -> Result<(), Self> {
        match code {
            0 => Ok(()),
            ffi::VMFAIL_INVALID => Err(Self::Invalid),
            ffi::VMFAIL_VALID => Err(Self::Valid(error())),
            _ => Err(Self::Fault),
        }
    }
}

/// One vCPU's VMCS region.
pub(crate) struct VmcsRegion {
    page: HwPages,
}

impl VmcsRegion {
    /// A zeroed region stamped with `revision` (bit 31 clear: an ordinary
    /// VMCS, not a shadow one).
    pub(crate) fn new(revision: u32) -> Result<Self> {
        let mut page = HwPages::new(0)?;
        let words: &mut [u32; 1024] = page.as_mut();
        words[0] = revision & 0x7fff_ffff;
        Ok(Self { page })
    }
}

/// INVEPT and INVVPID extents (SDM 31.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// One EPTP (INVEPT) or one VPID (INVVPID).
    Single,
    /// Every context.
    All,
}

impl<'a> VmxWindow<'a> {
    /// The CPU the window is open on.
    pub(crate) fn cpu(&self) -> &LocalCpu<'a> {
        self.cpu
    }

    /// Makes `region` this CPU's current VMCS with a clear launch state
    /// (VMCLEAR, then VMPTRLD). Dropping the result executes VMCLEAR.
    pub(crate) fn load<'w>(
        &'w self,
        region: &'w mut VmcsRegion,
    ) -> Result<CurrentVmcs<'w>, VmFail> {
        let pa = region.page.phys();
        // SAFETY: in VMX operation (type invariant); `pa` is a VMCS region
        // the caller borrows exclusively, stamped with the revision.
        VmFail::from_code(unsafe { ffi::vmm_vmclear(pa) }, || 0)?;
        // SAFETY: as above; the region is clear, so it may become current.
        VmFail::from_code(unsafe { ffi::vmm_vmptrld(pa) }, || 0)?;
        Ok(CurrentVmcs { pa, failed: Cell::new(None), _region: PhantomData })
    }

    /// INVEPT of the guest-physical and combined mappings of `eptp`
    /// (`Single`) or of every EPTP (`All`), on this CPU.
    pub(crate) fn invept(&self, extent: Extent, eptp: u64) -> Result<(), VmFail> {
        let kind = if extent == Extent::Single { 1 } else { 2 };
        // SAFETY: in VMX operation; the descriptor is built by the helper;
        // a bad type or EPTP gives VMfail, not undefined behaviour.
        VmFail::from_code(unsafe { ffi::vmm_invept(kind, eptp) }, || 0)
    }

    /// INVVPID of the linear and combined mappings of `vpid` (`Single`) or
    /// of every VPID but 0 (`All`), on this CPU.
    pub(crate) fn invvpid(&self, extent: Extent, vpid: u16) -> Result<(), VmFail> {
        let kind = if extent == Extent::Single { 1 } else { 2 };
        // SAFETY: as for INVEPT.
        VmFail::from_code(unsafe { ffi::vmm_invvpid(kind, vpid, 0) }, || 0)
    }
}

/// The CPU's current VMCS, inside a window.
pub(crate) struct CurrentVmcs<'w> {
    pa: u64,
    /// The first VMREAD or VMWRITE that failed: the field and why.
    failed: Cell<Option<(u32, VmFail)>>,
    _region: PhantomData<&'w mut VmcsRegion>,
}

impl CurrentVmcs<'_> {
    fn note(&self, encoding: u32, code: i32) {
        if code != 0 && self.failed.get().is_none() {
            let why =
                VmFail::from_code(code, || self.instruction_error()).err().unwrap_or(VmFail::Fault);
            self.failed.set(Some((encoding, why)));
        }
    }

    /// The VM-instruction error field.
    pub(crate) fn instruction_error(&self) -> u32 {
        let mut v = 0;
        // SAFETY: a VMCS is current (type invariant); `v` is writable.
        let _ =
            unsafe { ffi::vmm_vmread(u64::from(vmcs::VM_INSTRUCTION_ERROR.encoding()), &mut v) };
        v as u32
    }

    /// The first field access that failed since the VMCS became current.
    pub(crate) fn failure(&self) -> Option<(u32, VmFail)> {
        self.failed.get()
    }

    /// Enters the guest once: VMLAUNCH, or VMRESUME when `launched`.
    /// `gprs` holds the guest's general registers by number (RSP is in the
    /// VMCS) and `cr2` its CR2; both are updated at the exit.
    ///
    /// Every physical address in the VMCS must name memory that outlives
    /// the call: the caller's (the backend's) invariant.
    pub(crate) fn run(
        &mut self,
        gprs: &mut [u64; 16],
        cr2: &mut u64,
        launched: bool,
    ) -> Result<(), VmFail> {
        // SAFETY: VMX operation with interrupts off and this VMCS current
        // (type invariants); its host-state fields were written from this
        // CPU's live state and HOST_RSP/HOST_RIP are written by the routine
        // itself, so an exit returns into it; the guest's pointers are the
        // caller's contract. The routine restores every callee-saved
        // register and leaves interrupts masked.
        let code = unsafe { ffi::vmm_vmx_run(gprs.as_mut_ptr(), cr2, i32::from(launched)) };
        VmFail::from_code(code, || self.instruction_error())
    }
}

impl vmcs::Vmcs for CurrentVmcs<'_> {
    fn vmread(&self, encoding: u32) -> u64 {
        let mut v = 0;
        // SAFETY: a VMCS is current (type invariant); a bad encoding gives
        // VMfail, which is recorded.
        let code = unsafe { ffi::vmm_vmread(u64::from(encoding), &mut v) };
        self.note(encoding, code);
        v
    }

    fn vmwrite(&mut self, encoding: u32, value: u64) {
        // SAFETY: as for `vmread`. Fields holding physical addresses are
        // written only by the backend, whose invariant covers them.
        let code = unsafe { ffi::vmm_vmwrite(u64::from(encoding), value) };
        self.note(encoding, code);
    }
}

impl Drop for CurrentVmcs<'_> {
    fn drop(&mut self) {
        // SAFETY: in VMX operation; the region is this one, exclusively
        // borrowed; VMCLEAR writes its state back and makes it not current.
        let r = unsafe { ffi::vmm_vmclear(self.pa) };
        if r != 0 {
            pr_err!("VMCLEAR failed ({r})\n");
        }
    }
}

impl LocalCpu<'_> {
    /// The host state a VMX entry needs, read from this CPU.
    pub(crate) fn vmx_host(&self) -> VmxHost {
        let mut h = VmxHost::default();
        // SAFETY: interrupts are off (the `LocalCpu` invariant), so the
        // values describe this CPU until the matching restore; `h` is a
        // writable `struct vmm_vmx_host`.
        unsafe { ffi::vmm_vmx_host_save(&mut h) };
        h
    }

    /// Puts back what a VM exit changed and the VMCS does not restore.
    pub(crate) fn vmx_host_restore(&self, h: &VmxHost) {
        // SAFETY: `h` was read on this CPU by `vmx_host` within the same
        // interrupts-off section; restoring it returns the CPU to the
        // kernel's view.
        unsafe { ffi::vmm_vmx_host_restore(h) };
    }

    /// Re-raises an NMI that a VM exit consumed.
    pub(crate) fn self_nmi(&self) {
        // SAFETY: a self-IPI with the NMI vector is what the host would
        // have received; it is handled when NMIs are unblocked.
        unsafe { ffi::vmm_self_nmi() };
    }
}

/// The `l1d_flush` module parameter: `Some(true)` to flush before every
/// VMX entry, `Some(false)` not to, `None` when the value is invalid.
pub(crate) fn l1d_flush_param() -> Option<bool> {
    // SAFETY: reads a module parameter fixed at load.
    match unsafe { ffi::vmm_l1d_flush_mode() } {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// How the L1 data cache is flushed before a VMX entry.
pub(crate) enum L1dFlush {
    /// Not at all.
    Off,
    /// IA32_FLUSH_CMD.L1D_FLUSH.
    Msr,
    /// By reading a buffer twice the size of the L1D (64 KiB), as CPUs
    /// without the MSR need.
    Software(HwPages),
}

impl L1dFlush {
    /// The flush for `on`, using the MSR when `has_msr`.
    pub(crate) fn new(on: bool, has_msr: bool) -> Result<Self> {
        Ok(match (on, has_msr) {
            (false, _) => Self::Off,
            (true, true) => Self::Msr,
            (true, false) => Self::Software(HwPages::new(4)?),
        })
    }

    /// Flushes this CPU's L1D, right before an entry.
    pub(crate) fn flush(&self, cpu: &LocalCpu<'_>) {
        match self {
            Self::Off => {}
            Self::Msr => {
                // SAFETY: L1D_FLUSH only writes back and invalidates the
                // L1D; no state the kernel relies on changes.
                let _ = unsafe { cpu.wrmsr(msr::FLUSH_CMD, 1) };
            }
            Self::Software(buf) => {
                let lines: &[[u64; 8]; 1024] = buf.as_ref();
                for line in lines.iter() {
                    // SAFETY: reading owned memory; volatile keeps the
                    // loads that displace the cache.
                    let _ = unsafe { core::ptr::read_volatile(&line[0]) };
                }
            }
        }
    }
}
