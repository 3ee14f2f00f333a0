// SPDX-License-Identifier: MIT OR Apache-2.0

//! Safe wrappers for the vmm ioctls, in the style of rust-vmm `kvm-ioctls`.
//!
//! [`Vmm`] is an open `/dev/vmm`; [`VmFd`] is a VM file descriptor. Opening
//! `/dev/vmm` checks the interface version and the ABI fingerprint, so a
//! module built from other ABI definitions is refused up front instead of
//! misreading structs later.
//!
//! | ioctl | method | fd |
//! |---|---|---|
//! | `VMM_GET_VERSION` | [`Vmm::version`] | /dev/vmm |
//! | `VMM_GET_CAPS` | [`Vmm::caps`] | /dev/vmm |
//! | `VMM_CREATE_VM` | [`Vmm::create_vm`] | /dev/vmm |
//! | `VMM_OPEN_VM` | [`Vmm::open_vm`] | /dev/vmm |
//! | `VMM_DESTROY_VM` | [`Vmm::destroy_vm`] | /dev/vmm |
//! | `VMM_LIST_VMS` | [`Vmm::list_vms`] | /dev/vmm |
//! | `VMM_GET_STATS` | [`Vmm::stats`] | /dev/vmm |
//! | `VMM_VM_GET_INFO` | [`VmFd::info`] | VM fd |
//! | `VMM_VM_ALLOC_SEG` | [`VmFd::alloc_segment`] | VM fd |
//! | `VMM_VM_MAP` / `VMM_VM_UNMAP` | [`VmFd::map`] / [`VmFd::unmap`] | VM fd |
//! | `mmap` | [`VmFd::mmap_segment`] | VM fd |
//! | `VMM_VM_CREATE_VCPU` | [`VmFd::create_vcpu`] | VM fd |
//! | `VMM_VM_SUSPEND` | [`VmFd::suspend`] | VM fd |
//! | `VMM_VCPU_RUN` | [`VcpuFd::run`] | vCPU fd |
//! | `VMM_VCPU_GET_REGS` / `SET_REGS` | [`VcpuFd::get_regs`] / [`VcpuFd::set_regs`] | vCPU fd |
//! | `VMM_VCPU_GET_DESCS` / `SET_DESCS` | [`VcpuFd::get_descs`] / [`VcpuFd::set_descs`] | vCPU fd |
//! | `VMM_VCPU_SET_CPUID` / `GET_CPUID` | [`VcpuFd::set_cpuid`] / [`VcpuFd::cpuid`] | vCPU fd |
//! | `VMM_VCPU_KICK` | [`VcpuFd::kick`] | vCPU fd |
//! | `VMM_VM_GET_DEVICE` / `SET_DEVICE` | [`VmFd::get_device`] / [`VmFd::set_device`] | VM fd |
//!
//! [`setup::setup_vcpu`] combines `mmap` writes, `SET_REGS` and `SET_DESCS`
//! to start a vCPU in real, 32-bit protected or 64-bit long mode.

pub mod setup;
pub mod sys;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use uapi::*;
pub use vmm_uapi as uapi;

/// Path of the control device.
pub const VMM_DEVICE: &str = "/dev/vmm";

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn name_buf(name: &str) -> io::Result<[u8; VMM_NAME_MAX]> {
    make_name(name.as_bytes()).map_err(|e| invalid(&format!("bad VM name {name:?}: {e:?}")))
}

/// A VM as `VMM_LIST_VMS` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmEntry {
    /// The VM's name.
    pub name: String,
    /// The flags it was created with.
    pub flags: CreateFlags,
    /// VM fds open on it.
    pub nr_fds: u32,
}

/// An open `/dev/vmm`.
#[derive(Debug)]
pub struct Vmm {
    file: File,
}

impl Vmm {
    /// Opens [`VMM_DEVICE`] and checks that the module speaks our ABI.
    pub fn open() -> io::Result<Self> {
        Self::open_path(VMM_DEVICE)
    }

    /// Opens a control device at `path` and checks its ABI.
    pub fn open_path(path: &str) -> io::Result<Self> {
        let vmm = Self::open_unchecked(path)?;
        let v = vmm.version()?;
        if v.api_version != VMM_API_VERSION || v.abi_fingerprint != ABI_FINGERPRINT {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "vmm module speaks API {} (ABI {:#x}); this library speaks {} ({:#x})",
                    v.api_version, v.abi_fingerprint, VMM_API_VERSION, ABI_FINGERPRINT
                ),
            ));
        }
        Ok(vmm)
    }

    /// Opens the control device without the ABI check (tests of the check
    /// itself need this).
    pub fn open_unchecked(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self { file })
    }

    /// `VMM_GET_VERSION`.
    pub fn version(&self) -> io::Result<VmmVersion> {
        let mut v = VmmVersion::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_GET_VERSION, &mut v)?;
        Ok(v)
    }

    /// `VMM_GET_CAPS`.
    pub fn caps(&self) -> io::Result<VmmCaps> {
        let mut c = VmmCaps::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_GET_CAPS, &mut c)?;
        Ok(c)
    }

    /// `VMM_GET_STATS`.
    pub fn stats(&self) -> io::Result<VmmStats> {
        let mut s = VmmStats::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_GET_STATS, &mut s)?;
        Ok(s)
    }

    /// `VMM_CREATE_VM`: creates VM `name` and returns a VM fd for it.
    pub fn create_vm(&self, name: &str, flags: CreateFlags) -> io::Result<VmFd> {
        self.create_vm_pm(name, flags, 0)
    }

    /// `VMM_CREATE_VM` with the PM timer at `pm_port` (0: the default).
    pub fn create_vm_pm(&self, name: &str, flags: CreateFlags, pm_port: u32) -> io::Result<VmFd> {
        let mut arg = VmmCreateVm {
            name: name_buf(name)?,
            flags: flags.bits(),
            pm_port,
            ..VmmCreateVm::ZERO
        };
        let fd = sys::ioctl_ptr(self.as_fd(), VMM_CREATE_VM, &mut arg)?;
        Ok(VmFd { fd: sys::adopt_fd(fd) })
    }

    /// `VMM_OPEN_VM`: returns a new VM fd for existing VM `name`.
    pub fn open_vm(&self, name: &str) -> io::Result<VmFd> {
        let mut arg = VmmVmName { name: name_buf(name)?, ..VmmVmName::ZERO };
        let fd = sys::ioctl_ptr(self.as_fd(), VMM_OPEN_VM, &mut arg)?;
        Ok(VmFd { fd: sys::adopt_fd(fd) })
    }

    /// `VMM_DESTROY_VM`: destroys VM `name`. Open VM fds on it then fail
    /// with `ENXIO`; its memory goes when the last of them closes.
    pub fn destroy_vm(&self, name: &str) -> io::Result<()> {
        let mut arg = VmmVmName { name: name_buf(name)?, ..VmmVmName::ZERO };
        sys::ioctl_ptr(self.as_fd(), VMM_DESTROY_VM, &mut arg).map(drop)
    }

    /// `VMM_LIST_VMS`, retrying if VMs appear between sizing and reading.
    pub fn list_vms(&self) -> io::Result<Vec<VmEntry>> {
        let mut room = 16u32;
        loop {
            let mut entries = vec![VmmVmEntry::ZERO; room as usize];
            let mut arg =
                VmmVmList { count: room, entries: entries.as_mut_ptr() as u64, ..VmmVmList::ZERO };
            match sys::ioctl_ptr(self.as_fd(), VMM_LIST_VMS, &mut arg) {
                Ok(_) => {
                    entries.truncate(arg.count as usize);
                    return Ok(entries
                        .iter()
                        .map(|e| VmEntry {
                            name: String::from_utf8_lossy(name_bytes(&e.name)).into_owned(),
                            flags: CreateFlags::from_bits_retain(e.flags),
                            nr_fds: e.nr_fds,
                        })
                        .collect());
                }
                Err(e) if e.raw_os_error() == Some(libc::E2BIG) => room = arg.count.max(room + 1),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Vmm {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// A VM file descriptor. Closing it drops this handle's reference; a VM
/// created with [`CreateFlags::DESTROY_ON_CLOSE`] is destroyed when its last
/// VM fd closes.
#[derive(Debug)]
pub struct VmFd {
    fd: OwnedFd,
}

impl VmFd {
    /// `VMM_VM_GET_INFO`.
    pub fn info(&self) -> io::Result<VmmVmInfo> {
        let mut i = VmmVmInfo::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_VM_GET_INFO, &mut i)?;
        Ok(i)
    }

    /// The VM's name, from [`Self::info`].
    pub fn name(&self) -> io::Result<String> {
        Ok(String::from_utf8_lossy(name_bytes(&self.info()?.name)).into_owned())
    }
}

/// A segment as `VMM_VM_ALLOC_SEG` returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its id.
    pub id: u32,
    /// Its length in bytes.
    pub len: u64,
    /// Where to mmap the VM fd to reach it.
    pub mmap_offset: u64,
}

impl VmFd {
    /// `VMM_VM_ALLOC_SEG`: a zero-filled segment of `len` bytes.
    pub fn alloc_segment(&self, kind: SegKind, len: u64) -> io::Result<Segment> {
        let mut a = VmmSegment { kind: kind as u32, len, ..VmmSegment::ZERO };
        sys::ioctl_ptr(self.as_fd(), VMM_VM_ALLOC_SEG, &mut a)?;
        Ok(Segment { id: a.id, len: a.len, mmap_offset: a.mmap_offset })
    }

    /// `VMM_VM_MAP`: maps `len` bytes of `seg` from `seg_offset` at `gpa`.
    pub fn map(
        &self,
        gpa: u64,
        seg: &Segment,
        seg_offset: u64,
        len: u64,
        prot: Prot,
    ) -> io::Result<()> {
        let mut a =
            VmmMap { gpa, len, seg_offset, seg_id: seg.id, prot: prot.bits(), ..VmmMap::ZERO };
        sys::ioctl_ptr(self.as_fd(), VMM_VM_MAP, &mut a).map(drop)
    }

    /// `VMM_VM_UNMAP`: removes the mapping at exactly `gpa`..`gpa + len`.
    pub fn unmap(&self, gpa: u64, len: u64) -> io::Result<()> {
        let mut a = VmmMap { gpa, len, ..VmmMap::ZERO };
        sys::ioctl_ptr(self.as_fd(), VMM_VM_UNMAP, &mut a).map(drop)
    }

    /// Maps the whole of `seg` into this process, shared with the guest.
    pub fn mmap_segment(&self, seg: &Segment) -> io::Result<sys::Mapping> {
        let len = usize::try_from(seg.len).map_err(|_| invalid("segment too large"))?;
        sys::Mapping::new(self.as_fd(), seg.mmap_offset, len)
    }

    /// Allocates a RAM segment of `len` bytes, maps it read-write-execute
    /// at `gpa` and into this process.
    pub fn add_ram(&self, gpa: u64, len: u64) -> io::Result<(Segment, sys::Mapping)> {
        let seg = self.alloc_segment(SegKind::SysMem, len)?;
        self.map(gpa, &seg, 0, len, Prot::all())?;
        let m = self.mmap_segment(&seg)?;
        Ok((seg, m))
    }

    /// `VMM_VM_CREATE_VCPU`.
    pub fn create_vcpu(&self, id: u32) -> io::Result<VcpuFd> {
        let mut a = VmmCreateVcpu { id, ..VmmCreateVcpu::ZERO };
        let fd = sys::ioctl_ptr(self.as_fd(), VMM_VM_CREATE_VCPU, &mut a)?;
        Ok(VcpuFd { fd: sys::adopt_fd(fd), id })
    }

    /// `VMM_VM_SUSPEND`.
    pub fn suspend(&self) -> io::Result<()> {
        sys::ioctl_none(self.as_fd(), VMM_VM_SUSPEND).map(drop)
    }

    /// Delivers a message-signalled interrupt (`address` 0xFEExxxxx,
    /// `data` bits 15:0) to the VM's local APICs.
    pub fn msi(&self, address: u64, data: u32) -> io::Result<()> {
        let mut a = VmmMsi { address, data, flags: 0 };
        sys::ioctl_ptr(self.as_fd(), VMM_VM_MSI, &mut a).map(drop)
    }

    /// `VMM_VM_IRQ_LINE`: `op` (`VMM_LINE_*`) on ISA IRQ `line`
    /// (`kind` `VMM_IRQ_ISA`) or IOAPIC pin `line` (`VMM_IRQ_IOAPIC`).
    pub fn irq_line(&self, kind: u32, line: u32, op: u32) -> io::Result<()> {
        let mut a = VmmIrqLine { kind, line, op, flags: 0 };
        sys::ioctl_ptr(self.as_fd(), VMM_VM_IRQ_LINE, &mut a).map(drop)
    }

    /// `VMM_VM_GET_DEVICE`: the state of the platform device `T` is for.
    pub fn get_device<T: DeviceState>(&self) -> io::Result<T> {
        let mut state = T::ZERO;
        self.device_ioctl(VMM_VM_GET_DEVICE, &raw mut state)?;
        Ok(state)
    }

    /// `VMM_VM_SET_DEVICE`: replaces the state of the platform device `T`
    /// is for (checked by the kernel; refused, it changes nothing).
    pub fn set_device<T: DeviceState>(&self, state: &T) -> io::Result<()> {
        let mut copy = *state;
        self.device_ioctl(VMM_VM_SET_DEVICE, &raw mut copy)
    }

    fn device_ioctl<T: DeviceState>(&self, cmd: u32, state: *mut T) -> io::Result<()> {
        // The kernel moves exactly `size` bytes at `data`: one `T`, plain
        // integers, which we own for the call.
        let mut a = VmmDeviceState {
            device: T::DEVICE,
            size: size_of::<T>() as u32,
            data: state as u64,
            ..VmmDeviceState::ZERO
        };
        sys::ioctl_ptr(self.as_fd(), cmd, &mut a).map(drop)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A platform device's state struct (`VmmIoapicState`, ...), for
/// [`VmFd::get_device`] and [`VmFd::set_device`]. Sealed: only the ABI's
/// state structs, which are plain integers, implement it.
pub trait DeviceState: Copy + sealed::Sealed {
    /// The device's `VMM_DEVICE_*`.
    const DEVICE: u32;
    /// The all-zero value.
    const ZERO: Self;
}

macro_rules! device_state {
    ($($t:ty => $dev:expr),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl DeviceState for $t {
            const DEVICE: u32 = $dev;
            const ZERO: Self = <$t>::ZERO;
        }
    )*};
}

device_state!(
    VmmIoapicState => VMM_DEVICE_IOAPIC,
    VmmPicState => VMM_DEVICE_PIC,
    VmmPitState => VMM_DEVICE_PIT,
    VmmPmTimerState => VMM_DEVICE_PM_TIMER,
    VmmRtcState => VMM_DEVICE_RTC,
    VmmHpetState => VMM_DEVICE_HPET,
);

impl AsFd for VmFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An exit, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Port I/O; complete it with [`VcpuFd::complete`].
    Inout(VmmExitInout),
    /// HLT; RIP is past it.
    Hlt,
    /// A nested page fault.
    Paging(VmmExitPaging),
    /// The VM is suspended.
    Suspended(VmmExitSuspended),
    /// RDMSR of an MSR left to userspace; complete it.
    Rdmsr(u32),
    /// WRMSR (msr, value) left to userspace; complete it.
    Wrmsr(u32, u64),
    /// An SVM exit the kernel does not handle.
    Svm(VmmExitSvm),
    /// A VMX exit the kernel does not handle, or a failed VM entry.
    Vmx(VmmExitVmx),
    /// An instruction the kernel could not decode.
    InstEmul(VmmExitInstEmul),
    /// `VMM_VCPU_KICK`.
    Kicked,
    /// An MMIO access for the sequencer. Complete a read with
    /// [`VcpuFd::complete`] and the value read; a write needs nothing (the
    /// next [`VcpuFd::run`] goes on).
    Mmio(VmmExitMmio),
    /// A reason this library does not know (raw exit kept).
    Other(VmmExit),
}

impl Exit {
    /// Decodes a raw exit.
    pub fn decode(e: &VmmExit) -> Self {
        match e.reason {
            exit::INOUT => Self::Inout(VmmExitInout::from_data(&e.data)),
            exit::HLT => Self::Hlt,
            exit::PAGING => Self::Paging(VmmExitPaging::from_data(&e.data)),
            exit::SUSPENDED => Self::Suspended(VmmExitSuspended::from_data(&e.data)),
            exit::RDMSR => Self::Rdmsr(VmmExitMsr::from_data(&e.data).msr),
            exit::WRMSR => {
                let m = VmmExitMsr::from_data(&e.data);
                Self::Wrmsr(m.msr, m.value)
            }
            exit::SVM => Self::Svm(VmmExitSvm::from_data(&e.data)),
            exit::VMX => Self::Vmx(VmmExitVmx::from_data(&e.data)),
            exit::INST_EMUL => Self::InstEmul(VmmExitInstEmul::from_data(&e.data)),
            exit::KICKED => Self::Kicked,
            exit::MMIO => Self::Mmio(VmmExitMmio::from_data(&e.data)),
            _ => Self::Other(*e),
        }
    }
}

/// A vCPU file descriptor.
#[derive(Debug)]
pub struct VcpuFd {
    fd: OwnedFd,
    id: u32,
}

impl VcpuFd {
    /// The vCPU's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// `VMM_VCPU_RUN` with an explicit entry; returns the raw exit.
    pub fn run_entry(&self, entry: VmmEntry) -> io::Result<VmmExit> {
        let mut r = VmmRun { entry, exit: VmmExit::ZERO };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_RUN, &mut r)?;
        Ok(r.exit)
    }

    /// Runs with no completion (a pending instruction is abandoned).
    pub fn run(&self) -> io::Result<VmmExit> {
        self.run_entry(VmmEntry::ZERO)
    }

    /// Completes the pending exit with `value` and runs.
    pub fn complete(&self, value: u64) -> io::Result<VmmExit> {
        self.run_entry(VmmEntry { cmd: VMM_ENTRY_COMPLETE, value, ..VmmEntry::ZERO })
    }

    /// `VMM_VCPU_GET_REGS`.
    pub fn get_regs(&self, ids: &[u32]) -> io::Result<Vec<u64>> {
        let mut values = vec![0u64; ids.len()];
        let mut a = VmmRegs {
            count: ids.len() as u32,
            ids: ids.as_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            ..VmmRegs::ZERO
        };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_GET_REGS, &mut a)?;
        Ok(values)
    }

    /// One register.
    pub fn get_reg(&self, id: u32) -> io::Result<u64> {
        Ok(self.get_regs(&[id])?[0])
    }

    /// `VMM_VCPU_SET_REGS`.
    pub fn set_regs(&self, regs: &[(u32, u64)]) -> io::Result<()> {
        let ids: Vec<u32> = regs.iter().map(|r| r.0).collect();
        let values: Vec<u64> = regs.iter().map(|r| r.1).collect();
        let mut a = VmmRegs {
            count: regs.len() as u32,
            ids: ids.as_ptr() as u64,
            values: values.as_ptr() as u64,
            ..VmmRegs::ZERO
        };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_SET_REGS, &mut a).map(drop)
    }

    /// `VMM_VCPU_GET_DESCS`.
    pub fn get_descs(&self, ids: &[u32]) -> io::Result<Vec<VmmSegDesc>> {
        let mut descs = vec![VmmSegDesc::ZERO; ids.len()];
        let mut a = VmmDescs {
            count: ids.len() as u32,
            ids: ids.as_ptr() as u64,
            descs: descs.as_mut_ptr() as u64,
            ..VmmDescs::ZERO
        };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_GET_DESCS, &mut a)?;
        Ok(descs)
    }

    /// `VMM_VCPU_SET_DESCS`.
    pub fn set_descs(&self, descs: &[(u32, VmmSegDesc)]) -> io::Result<()> {
        let ids: Vec<u32> = descs.iter().map(|d| d.0).collect();
        let vals: Vec<VmmSegDesc> = descs.iter().map(|d| d.1).collect();
        let mut a = VmmDescs {
            count: descs.len() as u32,
            ids: ids.as_ptr() as u64,
            descs: vals.as_ptr() as u64,
            ..VmmDescs::ZERO
        };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_SET_DESCS, &mut a).map(drop)
    }

    /// `VMM_VCPU_SET_CPUID`; an empty table restores the default.
    pub fn set_cpuid(&self, entries: &[VmmCpuidEntry]) -> io::Result<()> {
        let mut a = VmmCpuid {
            count: entries.len() as u32,
            entries: entries.as_ptr() as u64,
            ..VmmCpuid::ZERO
        };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_SET_CPUID, &mut a).map(drop)
    }

    /// `VMM_VCPU_GET_CPUID`: the table (empty: the default is in use).
    pub fn cpuid(&self) -> io::Result<Vec<VmmCpuidEntry>> {
        let mut room = 16u32;
        loop {
            let mut v = vec![VmmCpuidEntry::ZERO; room as usize];
            let mut a = VmmCpuid { count: room, entries: v.as_mut_ptr() as u64, ..VmmCpuid::ZERO };
            match sys::ioctl_ptr(self.as_fd(), VMM_VCPU_GET_CPUID, &mut a) {
                Ok(_) => {
                    v.truncate(a.count as usize);
                    return Ok(v);
                }
                Err(e) if e.raw_os_error() == Some(libc::E2BIG) => room = a.count.max(room + 1),
                Err(e) => return Err(e),
            }
        }
    }

    /// `VMM_VCPU_KICK`.
    pub fn kick(&self) -> io::Result<()> {
        sys::ioctl_none(self.as_fd(), VMM_VCPU_KICK).map(drop)
    }

    /// Reads a per-vCPU option (`VMM_OPTION_*`).
    pub fn option(&self, option: u32) -> io::Result<u64> {
        let mut a = VmmOption { option, reserved: 0, value: 0 };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_GET_OPTION, &mut a)?;
        Ok(a.value)
    }

    /// Writes a per-vCPU option (`VMM_OPTION_*`).
    pub fn set_option(&self, option: u32, value: u64) -> io::Result<()> {
        let mut a = VmmOption { option, reserved: 0, value };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_SET_OPTION, &mut a).map(drop)
    }

    /// The vCPU's local APIC state.
    pub fn apic_state(&self) -> io::Result<VmmApicState> {
        let mut a = VmmApicState::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_GET_APIC, &mut a)?;
        Ok(a)
    }

    /// Replaces the vCPU's local APIC state (checked by the kernel).
    pub fn set_apic_state(&self, state: &VmmApicState) -> io::Result<()> {
        let mut a = *state;
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_SET_APIC, &mut a).map(drop)
    }

    /// The vCPU's run state (`VMM_RUN_STATE_*`) and flags.
    pub fn run_state(&self) -> io::Result<VmmRunState> {
        let mut a = VmmRunState::ZERO;
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_GET_RUN_STATE, &mut a)?;
        Ok(a)
    }

    /// Sets the vCPU's run state (`VMM_RUN_STATE_*`) and flags.
    pub fn set_run_state(&self, state: u32, flags: u32) -> io::Result<()> {
        let mut a = VmmRunState { state, flags, reserved: [0; 3] };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_SET_RUN_STATE, &mut a).map(drop)
    }

    /// Raises an event on the vCPU (`VMM_EVENT_*`): see `VmmEvent`.
    pub fn event(&self, kind: u32, vector: u32, flags: u32, error: u32) -> io::Result<()> {
        let mut a = VmmEvent { kind, vector, flags, error };
        sys::ioctl_ptr(self.as_fd(), VMM_VCPU_EVENT, &mut a).map(drop)
    }
}

impl AsFd for VcpuFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_the_kernel() {
        assert!(name_buf("ok-name").is_ok());
        assert!(name_buf("").is_err());
        assert!(name_buf(&"x".repeat(VMM_NAME_MAX)).is_err());
        assert!(name_buf("bad/name").is_err());
    }

    #[test]
    fn missing_device_is_an_error_not_a_panic() {
        let e = Vmm::open_path("/nonexistent/vmm").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
