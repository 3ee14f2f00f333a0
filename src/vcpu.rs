// SPDX-License-Identifier: GPL-2.0

//! vCPUs: the vCPU fd, register and CPUID ioctls, and the run loop with
//! the exit handling common to both backends.
//!
//! Lifetime: the VM holds every vCPU (`Arc<Vcpu>`); a vCPU fd holds the VM
//! and its vCPU, so a vCPU fd keeps the VM's memory alive. A vCPU knows
//! nothing of its VM except what each call passes in, so no reference
//! cycle exists.
//!
//! Submodules: [`guest`] reaches guest memory through the guest's page
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

use core::sync::atomic::{fence, Ordering};
use kernel::{
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, Mutex,
    },
};

mod fd;
mod guest;
mod io;

pub(crate) use fd::install_fd;

use crate::abi::{write_arg, write_array, UserArg};
use crate::backend::{AnyVcpu, Entry, Event, HwExit, IoExit, VcpuHw, EFER_VALID};
use crate::hw::{self, cpu::FpuArea};
use crate::svm_vcpu::SvmVcpu;
use crate::vmx_vcpu::VmxVcpu;
use crate::uapi::{self, exit, reg, ExitData, VmmExit};
use crate::vm::{Shared, Vm};
use crate::x86::{
    cpuid::{self, TableEntry},
    insn::{CpuMode, Op},
    msr::{self, Gp, MsrClass, Mtrr},
    paging::PagingRegs,
};

/// An instruction waiting for the sequencer's answer.
#[derive(Clone, Copy, Debug)]
enum Pending {
    None,
    /// Port I/O; `elem` is the guest-physical address of a string
    /// element, `gla` its linear address.
    Io { io: IoExit, elem: Option<u64> },
    Rdmsr { next_rip: u64 },
    Wrmsr { next_rip: u64 },
}

/// Everything about a vCPU that the run loop changes.
pub(crate) struct VcpuState {
    hw: AnyVcpu,
    fpu: FpuArea,
    /// Guest XCR0.
    xcr0: u64,
    cpuid: KVec<TableEntry>,
    pending: Pending,
    mtrr: Mtrr,
    tsc_aux: u64,
}

/// IA32_APIC_BASE as the guest reads it: 0xfee00000, enabled, BSP on
/// vCPU 0.
fn apic_base(id: u32) -> u64 {
    0xfee0_0000 | (1 << 11) | if id == 0 { 1 << 8 } else { 0 }
}

/// One vCPU.
pub(crate) struct Vcpu {
    pub(crate) id: u32,
    #[allow(dead_code)]
    shared: Arc<Shared>,
    state: Pin<KBox<Mutex<VcpuState>>>,
    running: Atomic<bool>,
    kick: Atomic<bool>,
    /// The CPU this vCPU is in the guest on, or -1.
    in_guest: Atomic<i32>,
}

impl Vcpu {
    /// Creates vCPU `id` in the reset state.
    pub(crate) fn new(shared: &Arc<Shared>, id: u32) -> Result<Arc<Self>> {
        let mut hw = match (&shared.svm, &shared.vmx) {
            (Some(cpus), _) => AnyVcpu::Svm(SvmVcpu::new(cpus)?),
            (None, Some(cpus)) => AnyVcpu::Vmx(KBox::new(VmxVcpu::new(cpus)?, GFP_KERNEL)?),
            (None, None) => return Err(EOPNOTSUPP),
        };
        // RDX at reset holds the processor signature.
        hw.set(reg::RDX, u64::from(hw::cpu::host_cpuid(1, 0)[0]))?;
        let st = VcpuState {
            hw,
            fpu: FpuArea::new(shared.fpu)?,
            xcr0: 1,
            cpuid: KVec::new(),
            pending: Pending::None,
            mtrr: Mtrr::new(shared.caps.phys_addr_bits as u8),
            tsc_aux: 0,
        };
        let state = KBox::pin_init(kernel::new_mutex!(st), GFP_KERNEL)?;
        let v = Arc::new(
            Vcpu {
                id,
                shared: shared.clone(),
                state,
                running: Atomic::new(false),
                kick: Atomic::new(false),
                in_guest: Atomic::new(-1),
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

    /// Interrupts the vCPU's CPU if it is in the guest. The caller changed
    /// some state the vCPU checks before entering (and fenced after it).
    pub(crate) fn poke(&self) {
        fence(Ordering::SeqCst);
        let cpu = self.in_guest.load(Acquire);
        if cpu >= 0 {
            hw::kick_cpu(cpu);
        }
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
        let descs: KVec<uapi::VmmSegDesc> = if set { read_array(req.descs, n)? } else { KVec::new() };
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

    // --- running ------------------------------------------------------------

    fn run(&self, vm: &Vm, arg: UserArg) -> Result<isize> {
        let mut run: uapi::VmmRun = arg.read()?;
        let e = &run.entry;
        if e.flags != 0 || e.reserved != [0; 2] {
            return Err(EINVAL);
        }
        if self.running.cmpxchg(false, true, Acquire).is_err() {
            return Err(EBUSY);
        }
        let result = (|| {
            let mut st = self.state.lock();
            st.complete(vm, &run.entry)?;
            self.run_loop(vm, &mut st)
        })();
        self.running.store(false, Release);
        run.exit = result?;
        run.exit.vcpu = self.id;
        write_arg(arg.0, &run)?;
        Ok(0)
    }

    fn run_loop(&self, vm: &Vm, st: &mut VcpuState) -> Result<VmmExit> {
        loop {
            if vm.is_destroyed() {
                return Err(ENXIO);
            }
            if let Some(e) = vm.suspended_exit() {
                return Ok(e);
            }
            if self.kick.xchg(false, Acquire) {
                return Ok(VmmExit { reason: exit::KICKED, rip: st.rip(), ..VmmExit::ZERO });
            }
            if hw::signal_pending() {
                return Err(EINTR);
            }
            hw::cond_resched();
            let (root, generation) = vm.nested();
            let xcr0 = st.guest_xcr0(self.shared.fpu.host_xcr0);
            let fpu = st.fpu.load();
            let mut arrive = |cpu: u32| {
                self.in_guest.store(cpu as i32, Release);
                fence(Ordering::SeqCst);
                !self.kick.load(Acquire) && !vm.must_not_enter(generation)
            };
            let mut depart = || self.in_guest.store(-1, Release);
            let entry = Entry {
                root,
                generation,
                cpu_flushed: vm.cpu_flushed(),
                xcr0,
                arrive: &mut arrive,
                depart: &mut depart,
            };
            let hx = st.hw.enter(&self.shared, entry);
            st.fpu.store(fpu);
            if let Some(exit) = self.handle(vm, st, hx?)? {
                return Ok(exit);
            }
        }
    }

    /// Deals with one exit: `Some` goes to userspace, `None` re-enters.
    fn handle(&self, vm: &Vm, st: &mut VcpuState, hx: HwExit) -> Result<Option<VmmExit>> {
        let rip = st.rip();
        let out = |reason, data: [u64; 8]| Ok(Some(VmmExit { reason, rip, data, ..VmmExit::ZERO }));
        match hx {
            HwExit::Continue => Ok(None),
            HwExit::Fault(e) => {
                st.hw.inject(e);
                Ok(None)
            }
            HwExit::Hlt => match st.skip(vm, Op::Hlt)? {
                Ok(()) => Ok(Some(VmmExit { reason: exit::HLT, rip: st.rip(), ..VmmExit::ZERO })),
                Err(e) => Ok(Some(e)),
            },
            HwExit::Cpuid => {
                let leaf = st.gpr(reg::RAX) as u32;
                let sub = st.gpr(reg::RCX) as u32;
                let r = st.cpuid(leaf, sub, self.id, vm.nr_vcpus());
                if let Err(e) = st.skip(vm, Op::Cpuid)? {
                    return Ok(Some(e));
                }
                for (id, v) in [reg::RAX, reg::RBX, reg::RCX, reg::RDX].into_iter().zip(r) {
                    st.hw.set(id, u64::from(v))?;
                }
                Ok(None)
            }
            HwExit::Msr { write } => self.msr(vm, st, write),
            HwExit::Xsetbv => st.xsetbv(vm, self.shared.fpu.host_xcr0),
            HwExit::Shutdown => {
                vm.suspend(uapi::VMM_SUSPEND_TRIPLE_FAULT, self.id);
                Ok(vm.suspended_exit())
            }
            HwExit::NestedFault { gpa, access } => {
                let flags = if vm.is_mapped(gpa) { uapi::VMM_PAGING_PROTECTION } else { uapi::VMM_PAGING_UNMAPPED };
                let p = uapi::VmmExitPaging { gpa, access, flags, ..uapi::VmmExitPaging::ZERO };
                out(exit::PAGING, p.to_data())
            }
            HwExit::Unhandled { reason, data } => out(reason, data),
            HwExit::Io(io) => st.io(vm, io),
        }
    }

    fn msr(&self, vm: &Vm, st: &mut VcpuState, write: bool) -> Result<Option<VmmExit>> {
        let index = st.gpr(reg::RCX) as u32;
        let next_rip = match st.next_rip(vm, if write { Op::Wrmsr } else { Op::Rdmsr })? {
            Ok(n) => n,
            Err(e) => return Ok(Some(e)),
        };
        let rip = st.rip();
        if msr::classify(index) == MsrClass::User {
            let value = if write { st.edx_eax() } else { 0 };
            st.pending = if write { Pending::Wrmsr { next_rip } } else { Pending::Rdmsr { next_rip } };
            let m = uapi::VmmExitMsr { msr: index, value, ..uapi::VmmExitMsr::ZERO };
            let reason = if write { exit::WRMSR } else { exit::RDMSR };
            return Ok(Some(VmmExit { reason, rip, data: m.to_data(), ..VmmExit::ZERO }));
        }
        let done = if write {
            st.wrmsr(self.id, index, st.edx_eax())
        } else {
            st.rdmsr(self.id, index).map(|v| st.set_edx_eax(v))
        };
        match done {
            Ok(()) => st.hw.set(reg::RIP, next_rip)?,
            Err(Gp) => st.hw.inject(Event::GP0),
        }
        Ok(None)
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
        let _ = self.hw.set(reg::RAX, v & 0xffff_ffff);
        let _ = self.hw.set(reg::RDX, v >> 32);
    }

    fn cs_access(&self) -> u32 {
        self.hw.get_desc(reg::CS).map_or(0, |d| d.access)
    }

    fn mode(&self) -> CpuMode {
        let a = self.cs_access();
        CpuMode::from_regs(
            self.gpr(reg::CR0),
            self.gpr(reg::EFER),
            a & uapi::access::DB != 0,
            a & uapi::access::L != 0,
            self.gpr(reg::RFLAGS) & (1 << 17) != 0,
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
        let osxsave = self.gpr(reg::CR4) & (1 << 18) != 0;
        (host != 0 && osxsave && self.xcr0 != host).then_some(self.xcr0)
    }

    fn cpuid(&self, leaf: u32, sub: u32, id: u32, nr: u32) -> [u32; 4] {
        let guest = cpuid::Guest { vcpu_id: id, nr_vcpus: nr, cr4: self.gpr(reg::CR4), xcr0: self.xcr0 };
        if self.cpuid.is_empty() {
            cpuid::default_answer(&hw::cpu::HostCpuid, leaf, sub, &guest)
        } else {
            cpuid::table_answer_live(&self.cpuid, leaf, sub, &guest)
        }
    }

    /// The MSRs `msr::classify` leaves to the kernel.
    fn rdmsr(&self, id: u32, index: u32) -> Result<u64, Gp> {
        match index {
            msr::EFER => Ok(self.hw.efer()),
            msr::PAT => Ok(self.hw.pat()),
            msr::TSC => Ok(hw::cpu::rdtsc().wrapping_add(self.hw.tsc_offset())),
            msr::TSC_AUX => Ok(self.tsc_aux),
            // No local APIC is offered (CPUID hides it); the base reads as
            // the architectural default, BSP for vCPU 0.
            msr::APIC_BASE => Ok(apic_base(id)),
            // Fast strings; no BTS, no PEBS.
            msr::MISC_ENABLE => Ok(1 | (1 << 11) | (1 << 12)),
            msr::PLATFORM_ID | msr::BIOS_SIGN_ID => Ok(0),
            _ => self.hw.direct_msr(index).map_or_else(|| self.mtrr.read(index).ok_or(Gp), Ok),
        }
    }

    fn wrmsr(&mut self, id: u32, index: u32, v: u64) -> Result<(), Gp> {
        match index {
            msr::EFER => {
                let pg = self.gpr(reg::CR0) & (1 << 31) != 0;
                let allowed = msr::efer_allowed(hw::cpu::host_cpuid(0x8000_0001, 0)[3]) & EFER_VALID;
                let new = msr::efer_write_ok(self.hw.efer(), v, pg, allowed)?;
                self.hw.set_efer(new);
            }
            msr::PAT if msr::pat_valid(v) => self.hw.set_pat(v),
            msr::TSC => self.hw.set_tsc_offset(v.wrapping_sub(hw::cpu::rdtsc())),
            msr::TSC_AUX if v >> 32 == 0 => self.tsc_aux = v,
            msr::APIC_BASE if v == apic_base(id) => {}
            msr::MISC_ENABLE if v == 1 | (1 << 11) | (1 << 12) => {}
            // Writing the microcode signature is how its read is armed.
            msr::BIOS_SIGN_ID => {}
            _ if msr::is_mtrr(index) => self.mtrr.write(index, v)?,
            _ => return self.hw.set_direct_msr(index, v).ok_or(Gp),
        }
        Ok(())
    }

    fn xsetbv(&mut self, vm: &Vm, host: u64) -> Result<Option<VmmExit>> {
        if self.gpr(reg::CR4) & (1 << 18) == 0 || host == 0 {
            self.hw.inject(Event::UD);
            return Ok(None);
        }
        let v = self.edx_eax();
        let allowed = cpuid::guest_xcr0_allowed(host);
        let ok = self.hw.cpl() == 0
            && self.gpr(reg::RCX) as u32 == 0
            && v & 1 != 0
            && (v & 4 == 0 || v & 2 != 0)
            && v & !allowed == 0;
        if !ok {
            self.hw.inject(Event::GP0);
            return Ok(None);
        }
        if let Err(e) = self.skip(vm, Op::Xsetbv)? {
            return Ok(Some(e));
        }
        self.xcr0 = v;
        Ok(None)
    }
}
