// SPDX-License-Identifier: GPL-2.0

//! VMs, the registry of named VMs, and the VM file descriptor.
//!
//! Lifetime rules:
//! - A VM is *named* from `VMM_CREATE_VM` until `VMM_DESTROY_VM` or, with
//!   `DESTROY_ON_CLOSE`, until its last VM fd closes. While named it sits in
//!   [`Shared::vms`], whose entry holds a reference on the module, so
//!   unloading is refused (`delete_module` fails with `EWOULDBLOCK`) while
//!   any VM exists.
//! - Each VM fd holds an `Arc<Vm>`. A destroyed VM stays allocated until its
//!   last fd closes; every ioctl on it then fails with `ENXIO`.
//! - The registry holds `Arc<Vm>` and each `Vm` holds `Arc<Shared>`; the
//!   cycle is broken when the VM is unlinked, which must happen before the
//!   module can unload (the module reference above).

use core::sync::atomic::{fence, Ordering};
use kernel::{
    mm::virt::{flags, VmaNew},
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc, ArcBorrow, Mutex,
    },
};

use crate::backend::Backend;
use crate::hw::abi::{write_arg, UserArg};
use crate::hw::timer::Ticker;
use crate::hw::{
    cpu::FpuCaps,
    file::{self, AnonFile},
    mem::PAGE,
    ModuleRef,
};
use crate::mem::VmMem;
use crate::platform::Platform;
use crate::uapi::{self, CreateFlags, VmmCaps, VmmExit, VMM_NAME_MAX};
use crate::vcpu::Vcpu;

mod cpus;
use crate::vmspace::{gen::Generation, pte::PageSize};
pub(crate) use cpus::Cpus;

/// Module-wide state, shared by `/dev/vmm` opens and VMs.
#[pin_data]
pub(crate) struct Shared {
    /// What the load-time probe found. Immutable.
    pub(crate) caps: VmmCaps,
    /// Named VMs, in creation order. This lock also serialises every change
    /// of [`Vm::nr_fds`] and [`Vm::destroyed`].
    #[pin]
    pub(crate) vms: Mutex<KVec<Named>>,
    /// VM objects alive, named or not. Atomic; changed on create and drop.
    pub(crate) nr_vm_objects: Atomic<u32>,
    /// Bytes held in VM objects. Atomic; changed on create and drop.
    pub(crate) vm_bytes: Atomic<u64>,
    /// Pages of segment memory and nested tables held by VMs.
    pub(crate) seg_pages: Atomic<u64>,
    /// vCPU objects alive.
    pub(crate) nr_vcpu_objects: Atomic<u64>,
    /// The hardware backend. Immutable.
    pub(crate) backend: Backend,
    /// How guest FPU state is saved on this host. Immutable.
    pub(crate) fpu: FpuCaps,
}

/// A named VM: a registry entry.
pub(crate) struct Named {
    /// The VM.
    pub(crate) vm: Arc<Vm>,
    /// The module stays loaded while the VM is named.
    _module: ModuleRef,
}

impl Shared {
    /// Creates the shared state for a module that found `caps`.
    pub(crate) fn new(caps: VmmCaps, backend: Backend, fpu: FpuCaps) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                caps,
                vms <- kernel::new_mutex!(KVec::new()),
                nr_vm_objects: Atomic::new(0),
                vm_bytes: Atomic::new(0),
                seg_pages: Atomic::new(0),
                nr_vcpu_objects: Atomic::new(0),
                backend,
                fpu,
            }),
            GFP_KERNEL,
        )
    }
}

/// One virtual machine.
pub(crate) struct Vm {
    /// Zero-filled, NUL-terminated name. Immutable.
    name: [u8; VMM_NAME_MAX],
    /// Creation flags. Immutable.
    flags: CreateFlags,
    /// The module-wide state, for the registry and counters. Immutable.
    shared: Arc<Shared>,
    /// VM fds open on this VM. Read anywhere; written under `shared.vms`.
    nr_fds: Atomic<u32>,
    /// vCPU fds open on this VM. Written under `shared.vms`.
    nr_vcpu_fds: Atomic<u32>,
    /// Set once, under `shared.vms`, when the VM loses its name.
    destroyed: Atomic<bool>,
    /// Segments, mappings and the nested page table.
    mem: Pin<KBox<Mutex<VmMem>>>,
    /// vCPUs in creation order; the lock serialises creation.
    vcpus: Pin<KBox<Mutex<KVec<Arc<Vcpu>>>>>,
    /// vCPUs by id, for lock-free lookup from any context (IPIs, device
    /// interrupts). Filled once per id under `vcpus`.
    cpus: Arc<Cpus>,
    /// The platform devices (their own lock; see `platform`). Stopped when
    /// the VM is destroyed.
    platform: Arc<Ticker<Platform>>,
    /// Zero, or a suspension: `how | vcpu << 32`.
    suspended: Atomic<u64>,
    /// The nested table's generation and root, readable without the memory
    /// lock (every entry reads them). Written under it.
    generation: Atomic<u64>,
    root: Atomic<u64>,
    /// Per host CPU: the generation its TLB last caught up with (see
    /// `backend::Entry::cpu_flushed`).
    cpu_flushed: KVec<Atomic<u64>>,
}

/// What a VM object costs, for `VMM_GET_STATS`.
const VM_BYTES: u64 = core::mem::size_of::<Vm>() as u64;

impl Vm {
    /// Allocates a VM with one (about to be installed) fd.
    fn new(
        shared: &Arc<Shared>,
        name: [u8; VMM_NAME_MAX],
        flags: CreateFlags,
        pm_port: u16,
    ) -> Result<Arc<Self>> {
        let c = &shared.caps;
        let large = if c.features & uapi::Features::NPT_1G.bits() != 0 {
            &[PageSize::Size2M, PageSize::Size1G][..]
        } else {
            &[PageSize::Size2M][..]
        };
        let format = shared.backend.nested_format();
        let mem = VmMem::new(c.host_paging_levels, c.phys_addr_bits, large, format)?;
        let root = mem.root();
        let nr_cpus = crate::hw::nr_cpu_ids() as usize;
        let mut cpu_flushed = KVec::with_capacity(nr_cpus, GFP_KERNEL)?;
        for _ in 0..nr_cpus {
            cpu_flushed.push(Atomic::new(0u64), GFP_KERNEL)?;
        }
        let cpus = Cpus::new()?;
        let platform = Platform::new(cpus.clone(), flags, pm_port)?;
        let vm = Arc::new(
            Vm {
                name,
                flags,
                shared: shared.clone(),
                nr_fds: Atomic::new(1),
                nr_vcpu_fds: Atomic::new(0),
                destroyed: Atomic::new(false),
                mem: KBox::pin_init(kernel::new_mutex!(mem), GFP_KERNEL)?,
                vcpus: KBox::pin_init(kernel::new_mutex!(KVec::new()), GFP_KERNEL)?,
                cpus,
                platform,
                suspended: Atomic::new(0),
                generation: Atomic::new(0),
                root: Atomic::new(root),
                cpu_flushed,
            },
            GFP_KERNEL,
        )?;
        shared.nr_vm_objects.add(1, Relaxed);
        shared.vm_bytes.add(VM_BYTES, Relaxed);
        shared.seg_pages.add(vm.mem.lock().nr_pages(), Relaxed);
        Ok(vm)
    }

    /// The registry entry for `VMM_LIST_VMS`.
    pub(crate) fn entry(&self) -> uapi::VmmVmEntry {
        uapi::VmmVmEntry {
            name: self.name,
            flags: self.flags.bits(),
            nr_fds: self.nr_fds.load(Relaxed),
            ..uapi::VmmVmEntry::ZERO
        }
    }

    /// Handles an ioctl on a VM fd.
    fn vm_ioctl(self: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        if self.destroyed.load(Relaxed) {
            return Err(ENXIO);
        }
        match cmd {
            uapi::VMM_VM_GET_INFO => {
                let (nr_segments, nr_mappings) = self.mem.lock().counts();
                let guest_phys_bits = self.mem.lock().gpa_bits();
                let nr_vcpus = self.nr_vcpus();
                let info = uapi::VmmVmInfo {
                    name: self.name,
                    flags: self.flags.bits(),
                    guest_phys_bits,
                    nr_vcpus,
                    nr_segments,
                    nr_mappings,
                    ..uapi::VmmVmInfo::ZERO
                };
                write_arg(arg, &info)?;
                Ok(0)
            }
            uapi::VMM_VM_ALLOC_SEG => {
                let mut req: uapi::VmmSegment = UserArg(arg).read()?;
                let mut mem = self.mem.lock();
                let before = mem.nr_pages();
                mem.alloc_segment(&mut req)?;
                self.shared.seg_pages.add(mem.nr_pages() - before, Relaxed);
                drop(mem);
                write_arg(arg, &req)?;
                Ok(0)
            }
            uapi::VMM_VM_MAP => {
                let req: uapi::VmmMap = UserArg(arg).read()?;
                let mut mem = self.mem.lock();
                let before = mem.nr_pages();
                let r = mem.map(&req);
                self.shared.seg_pages.add(mem.nr_pages() - before, Relaxed);
                r.map(|()| 0)
            }
            uapi::VMM_VM_UNMAP => {
                let req: uapi::VmmMap = UserArg(arg).read()?;
                let mut mem = self.mem.lock();
                mem.unmap(&req)?;
                self.generation.store(mem.generation.get(), Release);
                drop(mem);
                // Running vCPUs leave the guest and flush before re-entry.
                self.poke_all();
                Ok(0)
            }
            uapi::VMM_VM_CREATE_VCPU => {
                let req: uapi::VmmCreateVcpu = UserArg(arg).read()?;
                if req.flags != 0 || req.reserved != [0; 3] || req.id >= uapi::VMM_MAX_VCPUS {
                    return Err(EINVAL);
                }
                let mut vcpus = self.vcpus.lock();
                if vcpus.iter().any(|v| v.id == req.id) {
                    return Err(EEXIST);
                }
                let vcpu = Vcpu::new(&self.shared, req.id)?;
                vcpus.push(vcpu.clone(), GFP_KERNEL)?;
                let fd = crate::vcpu::install_fd(self.into(), vcpu.clone()).inspect_err(|_| {
                    drop(vcpus.pop());
                })?;
                self.cpus.add(req.id, vcpu);
                Ok(fd)
            }
            uapi::VMM_VM_SUSPEND => {
                self.suspend(uapi::VMM_SUSPEND_USER, 0);
                Ok(0)
            }
            uapi::VMM_VM_MSI => {
                let m: uapi::VmmMsi = UserArg(arg).read()?;
                crate::vcpu::msi(&self, &m).map(|()| 0)
            }
            uapi::VMM_VM_IRQ_LINE => {
                let l: uapi::VmmIrqLine = UserArg(arg).read()?;
                Platform::irq_line(&self.platform, &l).map(|()| 0)
            }
            uapi::VMM_VM_GET_DEVICE => self.platform.get_state(UserArg(arg)).map(|()| 0),
            uapi::VMM_VM_SET_DEVICE => {
                Platform::set_state(&self.platform, UserArg(arg)).map(|()| 0)
            }
            _ => Err(ENOTTY),
        }
    }

    /// Gives back the memory of a destroyed VM once no vCPU runs: its
    /// segments (a sequencer's mmap keeps its own references, so mapped
    /// pages go at munmap) and its nested tables. The VM object itself
    /// lives on until its last fd or mapping goes.
    fn release_memory(&self) {
        // The devices' timer holds the platform: it stops for good.
        self.platform.stop();
        self.poke_all();
        // Every run sees `destroyed` before it could enter again, and the
        // poke ends any guest entry in progress: this wait is short.
        // Not under the `vcpus` lock: a running vCPU may need it to finish.
        let nr = self.nr_vcpus() as usize;
        for i in 0..nr {
            let Some(v) = self.vcpus.lock().get(i).cloned() else { break };
            while v.is_running() {
                crate::hw::cond_resched();
                core::hint::spin_loop();
            }
        }
        let mut mem = self.mem.lock();
        let pages = mem.nr_pages();
        self.root.store(0, Release);
        mem.release();
        self.shared.seg_pages.fetch_sub(pages - mem.nr_pages(), Relaxed);
    }

    /// Whether the VM lost its name (its fds then fail with `ENXIO`).
    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Acquire)
    }

    /// Makes every vCPU in the guest leave it; each then re-checks the
    /// VM's state (destroyed, suspended, a new address-space generation)
    /// before entering again. Unlike a kick, no exit reaches userspace.
    fn poke_all(&self) {
        self.vcpus.lock().iter().for_each(|v| v.poke());
    }

    /// Suspends the VM (the first suspension sticks) and kicks every vCPU.
    pub(crate) fn suspend(&self, how: u32, vcpu: u32) {
        let _ = self.suspended.cmpxchg(0, u64::from(how) | (u64::from(vcpu) << 32), Relaxed);
        fence(Ordering::SeqCst);
        self.poke_all();
    }

    /// The `SUSPENDED` exit, if the VM is suspended.
    pub(crate) fn suspended_exit(&self) -> Option<VmmExit> {
        let s = self.suspended.load(Relaxed);
        (s != 0).then(|| {
            let d = uapi::VmmExitSuspended {
                how: s as u32,
                vcpu: (s >> 32) as u32,
                ..uapi::VmmExitSuspended::ZERO
            };
            VmmExit {
                reason: uapi::exit::SUSPENDED,
                data: uapi::ExitData::to_data(&d),
                ..VmmExit::ZERO
            }
        })
    }

    /// The nested table's root and generation, for a vCPU entry.
    pub(crate) fn nested(&self) -> (u64, Generation) {
        (self.root.load(Acquire), Generation::at(self.generation.load(Acquire)))
    }

    /// The per-CPU flush records of the nested table.
    pub(crate) fn cpu_flushed(&self) -> &[Atomic<u64>] {
        &self.cpu_flushed
    }

    /// Whether a vCPU about to enter with `seen` must not: the VM went, was
    /// suspended, or its address space changed since (the vCPU has
    /// published that it is in the guest, so later changes poke it).
    pub(crate) fn must_not_enter(&self, seen: Generation) -> bool {
        self.is_destroyed()
            || self.suspended.load(Relaxed) != 0
            || self.generation.load(Acquire) != seen.get()
    }

    /// Whether any mapping covers `gpa`.
    pub(crate) fn is_mapped(&self, gpa: u64) -> bool {
        self.mem.lock().mapping(gpa).is_some()
    }

    /// Runs `f` on the VM's memory, locked.
    pub(crate) fn with_mem<R>(&self, f: impl FnOnce(&VmMem) -> R) -> R {
        f(&self.mem.lock())
    }

    /// The platform devices.
    pub(crate) fn platform(&self) -> &Arc<Ticker<Platform>> {
        &self.platform
    }

    /// The vCPUs by id (interrupt delivery).
    pub(crate) fn cpus(&self) -> &Cpus {
        &self.cpus
    }

    /// Whether every vCPU waits for something only an NMI, INIT or SIPI
    /// could bring, and none is on its way: the VM can never run again.
    pub(crate) fn all_stuck(&self) -> bool {
        let mut any = false;
        for v in self.cpus.iter() {
            if !v.is_stuck() {
                return false;
            }
            any = true;
        }
        any
    }

    /// vCPUs created.
    pub(crate) fn nr_vcpus(&self) -> u32 {
        self.vcpus.lock().len() as u32
    }

    /// `mmap` of a VM fd: inserts a segment's pages.
    fn vm_mmap(&self, vma: &VmaNew) -> Result {
        if self.destroyed.load(Relaxed) {
            return Err(ENXIO);
        }
        if vma.flags() & flags::MAYSHARE == 0 {
            return Err(EINVAL);
        }
        let offset = (file::vma_pgoff(vma) as u64).checked_mul(PAGE).ok_or(EINVAL)?;
        // Segments never grow, and guest RAM has no place in a core dump.
        vma.set_dontexpand();
        vma.set_dontdump();
        let len = (vma.end() - vma.start()) as u64;
        self.mem.lock().mmap(vma, offset, len)
    }

    /// The last reference to one VM fd went away.
    fn close_fd(self: &Arc<Self>) {
        self.fd_closed(&self.nr_fds);
    }

    /// A vCPU fd was opened: like a VM fd, it keeps a destroy-on-close VM.
    /// Lock-free: the caller's VM fd is open (its ioctl is running), so no
    /// close can find both counts at zero meanwhile.
    pub(crate) fn vcpu_fd_opened(&self) {
        self.nr_vcpu_fds.add(1, Relaxed);
    }

    /// A vCPU fd was released.
    pub(crate) fn vcpu_fd_closed(self: &Arc<Self>) {
        self.fd_closed(&self.nr_vcpu_fds);
    }

    /// One fd counted in `counter` closed; a destroy-on-close VM goes when
    /// no VM or vCPU fd is left.
    fn fd_closed(self: &Arc<Self>, counter: &Atomic<u32>) {
        let mut vms = self.shared.vms.lock();
        counter.fetch_sub(1, Relaxed);
        let left = self.nr_fds.load(Relaxed) + self.nr_vcpu_fds.load(Relaxed);
        if left == 0 && self.flags.contains(CreateFlags::DESTROY_ON_CLOSE) {
            let unlinked = unlink(&mut vms, self);
            drop(vms);
            if unlinked {
                self.release_memory();
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Already stopped if the VM was destroyed; not if its creation
        // failed after this object existed.
        self.platform.stop();
        self.shared.seg_pages.fetch_sub(self.mem.lock().nr_pages(), Relaxed);
        self.shared.nr_vm_objects.fetch_sub(1, Relaxed);
        self.shared.vm_bytes.fetch_sub(VM_BYTES, Relaxed);
    }
}

/// Removes `vm` from the registry, which drops its module reference (the
/// caller's file holds another), and marks it destroyed. Returns whether it
/// was still named.
fn unlink(vms: &mut KVec<Named>, vm: &Arc<Vm>) -> bool {
    let Some(i) = vms.iter().position(|n| Arc::ptr_eq(&n.vm, vm)) else {
        return false;
    };
    vm.destroyed.store(true, Release);
    fence(Ordering::SeqCst);
    // vCPUs in the guest leave it and see the VM gone.
    vm.poke_all();
    // `i` is in bounds, so removal cannot fail.
    drop(vms.remove(i));
    true
}

fn find<'a>(vms: &'a KVec<Named>, name: &[u8; VMM_NAME_MAX]) -> Option<&'a Arc<Vm>> {
    vms.iter().map(|n| &n.vm).find(|v| &v.name == name)
}

/// `VMM_CREATE_VM`: names a new VM and returns an fd for it.
pub(crate) fn create(shared: &Arc<Shared>, arg: UserArg) -> Result<isize> {
    let req: uapi::VmmCreateVm = arg.read()?;
    let flags = CreateFlags::from_bits(req.flags).ok_or(EINVAL)?;
    if req.reserved != [0; 6] {
        return Err(EINVAL);
    }
    let pm_port = crate::platform::check_pm_port(flags, req.pm_port)?;
    uapi::check_name(&req.name).map_err(|_| EINVAL)?;

    let mut vms = shared.vms.lock();
    if find(&vms, &req.name).is_some() {
        return Err(EEXIST);
    }
    if vms.len() >= uapi::VMM_MAX_VMS as usize {
        return Err(ENOSPC);
    }
    let vm = Vm::new(shared, req.name, flags, pm_port)?;
    vms.push(Named { vm: vm.clone(), _module: ModuleRef::get() }, GFP_KERNEL)?;
    // The registry lock stays held until the fd exists, so nobody sees the
    // VM before its first fd is counted; a racing close of the new fd waits
    // for the lock and then finds the VM in its final state.
    file::install(vm).inspect_err(|_| drop(vms.pop()))
}

/// Reads a `VmmVmName` argument and checks its reserved fields and name.
fn read_name(arg: UserArg) -> Result<[u8; VMM_NAME_MAX]> {
    let req: uapi::VmmVmName = arg.read()?;
    if req.flags != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    uapi::check_name(&req.name).map_err(|_| EINVAL)?;
    Ok(req.name)
}

/// `VMM_OPEN_VM`: a new fd for an existing VM.
pub(crate) fn open(shared: &Arc<Shared>, arg: UserArg) -> Result<isize> {
    let name = read_name(arg)?;
    let vms = shared.vms.lock();
    let vm = find(&vms, &name).ok_or(ENOENT)?.clone();
    vm.nr_fds.add(1, Relaxed);
    file::install(vm.clone()).inspect_err(|_| {
        vm.nr_fds.fetch_sub(1, Relaxed);
    })
}

/// `VMM_DESTROY_VM`: takes a VM's name away. Its fds then fail with ENXIO.
pub(crate) fn destroy(shared: &Arc<Shared>, arg: UserArg) -> Result<isize> {
    let name = read_name(arg)?;
    let mut vms = shared.vms.lock();
    let vm = find(&vms, &name).ok_or(ENOENT)?.clone();
    let unlinked = unlink(&mut vms, &vm);
    drop(vms);
    if unlinked {
        vm.release_memory();
    }
    Ok(0)
}

// --- the VM file descriptor -----------------------------------------------

impl AnonFile for Vm {
    const NAME: &'static CStr = c"vmm-vm";
    const MMAP: bool = true;

    fn ioctl(this: ArcBorrow<'_, Self>, cmd: u32, arg: usize) -> Result<isize> {
        this.vm_ioctl(cmd, arg)
    }

    fn mmap(this: ArcBorrow<'_, Self>, vma: &VmaNew) -> Result {
        this.vm_mmap(vma)
    }

    fn release(this: Arc<Self>) {
        this.close_fd();
    }
}
