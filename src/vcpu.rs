// SPDX-License-Identifier: GPL-2.0

//! vCPUs: the vCPU fd, register and CPUID ioctls, and the run loop with
//! the exit handling common to both backends.
//!
//! Lifetime: the VM holds every vCPU (`Arc<Vcpu>`); a vCPU fd holds the VM
//! and its vCPU, so a vCPU fd keeps the VM's memory alive. A vCPU knows
//! nothing of its VM except what each call passes in, so no reference
//! cycle exists.
//!
//! Submodules: [`exits`] is the run loop and the exits common to both
//! backends; [`guest`] reaches guest memory through the guest's page
//! tables and decodes the instruction at RIP; [`io`] handles port I/O exits
//! and completions; [`fd`] is the vCPU file descriptor.
//!
//! Lock order: `state` may be held while taking the VM's `vcpus` and
//! `mem` locks (the run loop suspends the VM, reads the nested table), so
//! neither of those is ever held while a vCPU's `state` is taken.
//!
//! Concurrency: `state` is locked by every ioctl that touches the vCPU,
//! and by `VMM_VCPU_RUN` for as long as it runs, so register ioctls wait
//! for a running vCPU to return. `running` turns a second concurrent run
//! into `EBUSY`. `kick` and `in_guest` are lock-free, for kicks from any
//! thread.

use kernel::{
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, Mutex,
    },
};

mod apic_io;
mod exits;
mod fd;
mod guest;
mod intr;
mod io;
mod lapic;
mod mmio;

pub(crate) use apic_io::{deliver_msi, msi};

pub(crate) use fd::install_fd;

use crate::backend::{AnyVcpu, IoExit, VcpuHw};
use crate::hw::abi::{write_arg, write_array, UserArg};
use crate::hw::{
    self,
    cpu::FpuArea,
    timer::{Armed, Timed},
};
use crate::uapi::{self, reg};
use crate::vlapic::{self, Vlapic};
use crate::vm::{Shared, Vm};
use crate::x86::{
    cpuid::TableEntry,
    insn::CpuMode,
    msr::Mtrr,
    paging::PagingRegs,
    regs::{cr4, rflags},
};
use lapic::Lapic;

/// An instruction waiting for the sequencer's answer.
#[derive(Clone, Copy, Debug)]
enum Pending {
    None,
    /// Port I/O; for a string instruction, its element.
    Io {
        io: IoExit,
        elem: Option<StringElem>,
    },
    /// An MMIO instruction with a read to answer or writes to deliver
    /// (`VcpuState::mmio`).
    Mmio,
    Rdmsr {
        next_rip: u64,
    },
    Wrmsr {
        next_rip: u64,
    },
}

/// The element a string I/O exit moves.
#[derive(Clone, Copy, Debug)]
struct StringElem {
    /// Its guest-physical address.
    gpa: u64,
    /// The instruction's address size: 2, 4 or 8.
    addr_size: u8,
}

/// Everything about a vCPU that the run loop changes. Guarded by
/// `Vcpu::state`.
pub(crate) struct VcpuState {
    hw: AnyVcpu,
    fpu: FpuArea,
    /// Guest XCR0.
    xcr0: u64,
    cpuid: KVec<TableEntry>,
    pending: Pending,
    /// The instruction of `Pending::Mmio` (`None` otherwise).
    mmio: Option<mmio::MmioInsn>,
    mtrr: Mtrr,
    tsc_aux: u64,
    /// The host timer of the APIC timer, while armed.
    timer: Option<Armed<Lapic>>,
    /// The guest executed HLT and waits for an interrupt (in-kernel HLT).
    halted: bool,
    /// `VMM_OPTION_HLT_EXIT`: HLT exits to the sequencer instead.
    hlt_exit: bool,
    /// An NMI waits for the guest to unblock NMIs.
    nmi_pending: bool,
    /// The TPR as last given to the backend's CR8 view: a different value
    /// there is one the guest wrote through CR8.
    tpr_seen: u8,
}

/// One vCPU.
pub(crate) struct Vcpu {
    /// Immutable.
    pub(crate) id: u32,
    /// The module-wide state (FPU caps, counters). Immutable.
    shared: Arc<Shared>,
    /// Locked by every ioctl on the vCPU, and by a run for as long as it
    /// runs.
    state: Pin<KBox<Mutex<VcpuState>>>,
    /// A `VMM_VCPU_RUN` is in progress. Lock-free.
    running: Atomic<bool>,
    /// A `KICKED` exit is due. Lock-free: set by any thread.
    kick: Atomic<bool>,
    /// The local APIC, the host timer and the wake-up machinery, shared
    /// with whoever raises interrupts (see `lapic`).
    lapic: Arc<Timed<Lapic>>,
    /// Halted with interrupts off, or waiting for SIPI: only an NMI, INIT
    /// or SIPI can wake it. Written by the vCPU's thread; read by any
    /// vCPU that halts, to tell whether the whole VM is stuck.
    dead: Atomic<bool>,
}

impl Vcpu {
    /// Creates vCPU `id` in the reset state.
    pub(crate) fn new(shared: &Arc<Shared>, id: u32) -> Result<Arc<Self>> {
        let mut hw = shared.backend.create_vcpu()?;
        // RDX at reset holds the processor signature.
        hw.set(reg::RDX, u64::from(hw::cpu::host_cpuid(1, 0)[0]))?;
        let st = VcpuState {
            hw,
            fpu: FpuArea::new(shared.fpu)?,
            xcr0: 1,
            cpuid: KVec::new(),
            pending: Pending::None,
            mmio: None,
            mtrr: Mtrr::new(shared.caps.phys_addr_bits as u8),
            tsc_aux: 0,
            timer: None,
            halted: false,
            hlt_exit: false,
            nmi_pending: false,
            tpr_seen: 0,
        };
        let cfg = apic_config(shared);
        let mut apic = Vlapic::new(cfg, id as u16, id, id == 0).ok_or(EINVAL)?;
        if id != 0 {
            // An application processor waits for INIT and SIPI.
            apic.set_activity(vlapic::Activity::WaitForSipi);
        }
        let lapic = Arc::pin_init(Timed::new(Lapic::new(apic)), GFP_KERNEL)?;
        let state = KBox::pin_init(kernel::new_mutex!(st), GFP_KERNEL)?;
        let v = Arc::new(
            Vcpu {
                id,
                shared: shared.clone(),
                state,
                running: Atomic::new(false),
                kick: Atomic::new(false),
                lapic,
                // An application processor starts waiting for SIPI.
                dead: Atomic::new(id != 0),
            },
            GFP_KERNEL,
        )?;
        shared.nr_vcpu_objects.add(1, Relaxed);
        Ok(v)
    }

    /// Whether a `VMM_VCPU_RUN` is in progress.
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Acquire)
    }

    /// Makes the vCPU leave the guest soon with a `KICKED` exit: now if it
    /// is in it, else at its next entry. Never waits.
    pub(crate) fn kick(&self) {
        self.kick.store(true, Release);
        self.poke();
    }

    /// Makes the vCPU re-check its state before it enters again: wakes it
    /// if it sleeps (HLT, wait-for-SIPI), interrupts its CPU if it is in
    /// the guest. The caller changed some state the vCPU checks.
    pub(crate) fn poke(&self) {
        self.lapic.notify();
    }

    fn ioctl(&self, vm: &Vm, cmd: u32, arg: usize) -> Result<isize> {
        if vm.is_destroyed() {
            return Err(ENXIO);
        }
        let arg = UserArg(arg);
        match cmd {
            uapi::VMM_VCPU_RUN => self.run(vm, arg),
            uapi::VMM_VCPU_GET_REGS => self.regs(arg, false),
            uapi::VMM_VCPU_SET_REGS => self.regs(arg, true),
            uapi::VMM_VCPU_GET_DESCS => self.descs(arg, false),
            uapi::VMM_VCPU_SET_DESCS => self.descs(arg, true),
            uapi::VMM_VCPU_SET_CPUID => self.set_cpuid(arg),
            uapi::VMM_VCPU_GET_CPUID => self.get_cpuid(arg),
            uapi::VMM_VCPU_KICK => {
                self.kick();
                Ok(0)
            }
            uapi::VMM_VCPU_GET_OPTION => self.option(arg, false),
            uapi::VMM_VCPU_SET_OPTION => self.option(arg, true),
            uapi::VMM_VCPU_EVENT => {
                let e: uapi::VmmEvent = arg.read()?;
                self.event(&e).map(|()| 0)
            }
            uapi::VMM_VCPU_GET_APIC => self.get_apic(vm, arg),
            uapi::VMM_VCPU_SET_APIC => self.set_apic(vm, arg),
            uapi::VMM_VCPU_GET_RUN_STATE => self.get_run_state(arg),
            uapi::VMM_VCPU_SET_RUN_STATE => self.set_run_state(arg),
            _ => Err(ENOTTY),
        }
    }

    // --- registers ----------------------------------------------------------

    fn regs(&self, arg: UserArg, set: bool) -> Result<isize> {
        let req: uapi::VmmRegs = arg.read()?;
        if req.flags != 0 || req.count == 0 || req.count > uapi::VMM_MAX_REGS {
            return Err(EINVAL);
        }
        let n = req.count as usize;
        let ids: KVec<u32> = read_array(req.ids, n)?;
        // User memory is read before the lock: the mm's lock nests outside
        // the VM's locks (mmap).
        let values: KVec<u64> = if set { read_array(req.values, n)? } else { KVec::new() };
        let mut st = self.state.lock();
        if ids.iter().any(|id| st.hw.get(*id).is_none()) {
            return Err(EINVAL);
        }
        if set {
            // All or nothing: apply to a copy of the registers' old values
            // and roll back on the first refusal.
            let old: KVec<u64> = collect(ids.iter().map(|id| st.hw.get(*id).unwrap_or(0)))?;
            for (i, (id, v)) in ids.iter().zip(values.iter()).enumerate() {
                if let Err(e) = st.hw.set(*id, *v) {
                    for (id, v) in ids.iter().zip(old.iter()).take(i).rev() {
                        let _ = st.hw.set(*id, *v);
                    }
                    return Err(e);
                }
            }
            Ok(0)
        } else {
            let values = collect(ids.iter().map(|id| st.hw.get(*id).unwrap_or(0)))?;
            drop(st);
            write_array(req.values as usize, &values)?;
            Ok(0)
        }
    }

    fn descs(&self, arg: UserArg, set: bool) -> Result<isize> {
        let req: uapi::VmmDescs = arg.read()?;
        if req.flags != 0 || req.count == 0 || req.count > uapi::VMM_MAX_REGS {
            return Err(EINVAL);
        }
        let n = req.count as usize;
        let ids: KVec<u32> = read_array(req.ids, n)?;
        let descs: KVec<uapi::VmmSegDesc> =
            if set { read_array(req.descs, n)? } else { KVec::new() };
        let mut st = self.state.lock();
        if ids.iter().any(|id| st.hw.get_desc(*id).is_none()) {
            return Err(EINVAL);
        }
        if set {
            let old = collect(ids.iter().map(|id| st.hw.get_desc(*id).unwrap_or_default()))?;
            for (i, (id, d)) in ids.iter().zip(descs.iter()).enumerate() {
                if let Err(e) = st.hw.set_desc(*id, d) {
                    for (id, d) in ids.iter().zip(old.iter()).take(i).rev() {
                        let _ = st.hw.set_desc(*id, d);
                    }
                    return Err(e);
                }
            }
            Ok(0)
        } else {
            let descs = collect(ids.iter().map(|id| st.hw.get_desc(*id).unwrap_or_default()))?;
            drop(st);
            write_array(req.descs as usize, &descs)?;
            Ok(0)
        }
    }

    fn set_cpuid(&self, arg: UserArg) -> Result<isize> {
        let req: uapi::VmmCpuid = arg.read()?;
        if req.flags != 0 || req.count > uapi::VMM_MAX_CPUID {
            return Err(EINVAL);
        }
        let raw: KVec<uapi::VmmCpuidEntry> = read_array(req.entries, req.count as usize)?;
        let mut table = KVec::with_capacity(raw.len(), GFP_KERNEL)?;
        for e in raw.iter() {
            if e.flags & !uapi::VMM_CPUID_INDEXED != 0 || e.reserved != 0 {
                return Err(EINVAL);
            }
            table.push(
                TableEntry {
                    function: e.function,
                    index: e.index,
                    indexed: e.flags & uapi::VMM_CPUID_INDEXED != 0,
                    regs: [e.eax, e.ebx, e.ecx, e.edx],
                },
                GFP_KERNEL,
            )?;
        }
        self.state.lock().cpuid = table;
        Ok(0)
    }

    fn get_cpuid(&self, arg: UserArg) -> Result<isize> {
        let mut req: uapi::VmmCpuid = arg.read()?;
        if req.flags != 0 {
            return Err(EINVAL);
        }
        let st = self.state.lock();
        let out = collect(st.cpuid.iter().map(|e| uapi::VmmCpuidEntry {
            function: e.function,
            index: e.index,
            flags: if e.indexed { uapi::VMM_CPUID_INDEXED } else { 0 },
            eax: e.regs[0],
            ebx: e.regs[1],
            ecx: e.regs[2],
            edx: e.regs[3],
            reserved: 0,
        }))?;
        drop(st);
        let room = req.count as usize;
        req.count = out.len() as u32;
        if out.len() > room {
            write_arg(arg.0, &req)?;
            return Err(E2BIG);
        }
        write_array(req.entries as usize, &out)?;
        write_arg(arg.0, &req)?;
        Ok(0)
    }
}

/// The APIC every vCPU of this host gets: x2APIC and TSC-deadline, a
/// 1 GHz timer clock (as KVM's), the host's TSC rate and physical width.
/// The CMCI entry exists on Intel only.
fn apic_config(shared: &Shared) -> vlapic::Config {
    let tsc_hz = u64::from(hw::tsc_khz()).max(1) * 1000;
    vlapic::Config {
        cmci: matches!(shared.backend, crate::backend::Backend::Vmx(_)),
        eoi_suppression: false,
        maxphyaddr: (shared.caps.phys_addr_bits as u8).clamp(36, 52),
        tsc_hz,
        // Periodic timers no faster than 100 µs.
        min_period: tsc_hz / 10_000,
        ..vlapic::Config::DEFAULT
    }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        self.shared.nr_vcpu_objects.fetch_sub(1, Relaxed);
    }
}

fn collect<T>(it: impl Iterator<Item = T>) -> Result<KVec<T>> {
    let mut v = KVec::new();
    for x in it {
        v.push(x, GFP_KERNEL)?;
    }
    Ok(v)
}

/// Copies `n` values of `T` from user address `addr`.
fn read_array<T: kernel::transmute::FromBytes>(addr: u64, n: usize) -> Result<KVec<T>> {
    let mut r = kernel::uaccess::UserSlice::new(
        kernel::uaccess::UserPtr::from_addr(addr as usize),
        n.checked_mul(size_of::<T>()).ok_or(EINVAL)?,
    )
    .reader();
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(r.read::<T>()?, GFP_KERNEL)?;
    }
    Ok(v)
}

impl VcpuState {
    fn gpr(&self, id: u32) -> u64 {
        self.hw.get(id).unwrap_or(0)
    }

    fn rip(&self) -> u64 {
        self.gpr(reg::RIP)
    }

    fn edx_eax(&self) -> u64 {
        (self.gpr(reg::RDX) << 32) | (self.gpr(reg::RAX) & 0xffff_ffff)
    }

    fn set_edx_eax(&mut self, v: u64) {
        // General registers take any value.
        let _ = self.hw.set(reg::RAX, v & 0xffff_ffff);
        let _ = self.hw.set(reg::RDX, v >> 32);
    }

    fn mode(&self) -> CpuMode {
        let a = self.hw.get_desc(reg::CS).map_or(0, |d| d.access);
        CpuMode::from_regs(
            self.gpr(reg::CR0),
            self.gpr(reg::EFER),
            a & uapi::access::DB != 0,
            a & uapi::access::L != 0,
            self.gpr(reg::RFLAGS) & rflags::VM != 0,
        )
    }

    fn paging(&self) -> PagingRegs {
        PagingRegs {
            cr0: self.gpr(reg::CR0),
            cr3: self.gpr(reg::CR3),
            cr4: self.gpr(reg::CR4),
            efer: self.gpr(reg::EFER),
            phys_bits: 52,
        }
    }

    /// The guest's XCR0 when it must be loaded for the guest.
    fn guest_xcr0(&self, host: u64) -> Option<u64> {
        let osxsave = self.gpr(reg::CR4) & cr4::OSXSAVE != 0;
        (host != 0 && osxsave && self.xcr0 != host).then_some(self.xcr0)
    }
}
