// SPDX-License-Identifier: MIT OR Apache-2.0

//! The ioctl numbers, and the tables of every struct, ioctl and constant
//! that the fingerprint and the C header check cover.

use super::*;

// --- ioctl numbers: /dev/vmm ---------------------------------------------

/// Read the interface version. Always available.
pub const VMM_GET_VERSION: u32 = ior::<VmmVersion>(0x00);
/// Read the capabilities found at load.
pub const VMM_GET_CAPS: u32 = ior::<VmmCaps>(0x01);
/// Create a VM; returns a VM fd.
pub const VMM_CREATE_VM: u32 = iow::<VmmCreateVm>(0x02);
/// Open an existing VM by name; returns a VM fd.
pub const VMM_OPEN_VM: u32 = iow::<VmmVmName>(0x03);
/// Destroy a VM by name.
pub const VMM_DESTROY_VM: u32 = iow::<VmmVmName>(0x04);
/// List VMs.
pub const VMM_LIST_VMS: u32 = iowr::<VmmVmList>(0x05);
/// Read module-wide object counts.
pub const VMM_GET_STATS: u32 = ior::<VmmStats>(0x06);

// --- ioctl numbers: VM fd -------------------------------------------------

/// Read the VM's name, flags and sizes.
pub const VMM_VM_GET_INFO: u32 = ior::<VmmVmInfo>(0x40);
/// Allocate a memory segment.
pub const VMM_VM_ALLOC_SEG: u32 = iowr::<VmmSegment>(0x41);
/// Map (part of) a segment at a guest-physical range.
pub const VMM_VM_MAP: u32 = iow::<VmmMap>(0x42);
/// Remove one guest-physical mapping.
pub const VMM_VM_UNMAP: u32 = iow::<VmmMap>(0x43);
/// Create a vCPU; returns a vCPU fd.
pub const VMM_VM_CREATE_VCPU: u32 = iow::<VmmCreateVcpu>(0x44);
/// Suspend the VM: every vCPU leaves the guest and returns `SUSPENDED`.
pub const VMM_VM_SUSPEND: u32 = io(0x45);
/// Deliver a message-signalled interrupt to the VM's local APICs.
pub const VMM_VM_MSI: u32 = iow::<VmmMsi>(0x46);
/// Raise, lower or pulse an ISA IRQ or IOAPIC pin; set an ISA line's
/// trigger mode.
pub const VMM_VM_IRQ_LINE: u32 = iow::<VmmIrqLine>(0x47);
/// Read one platform device's state.
pub const VMM_VM_GET_DEVICE: u32 = iowr::<VmmDeviceState>(0x48);
/// Replace one platform device's state.
pub const VMM_VM_SET_DEVICE: u32 = iow::<VmmDeviceState>(0x49);

// --- ioctl numbers: vCPU fd -----------------------------------------------

/// Complete the last exit, run the vCPU, and report the next exit.
pub const VMM_VCPU_RUN: u32 = iowr::<VmmRun>(0x80);
/// Read a batch of registers.
pub const VMM_VCPU_GET_REGS: u32 = iow::<VmmRegs>(0x81);
/// Write a batch of registers.
pub const VMM_VCPU_SET_REGS: u32 = iow::<VmmRegs>(0x82);
/// Read a batch of segment descriptors, GDTR and IDTR.
pub const VMM_VCPU_GET_DESCS: u32 = iow::<VmmDescs>(0x83);
/// Write a batch of segment descriptors, GDTR and IDTR.
pub const VMM_VCPU_SET_DESCS: u32 = iow::<VmmDescs>(0x84);
/// Replace the vCPU's CPUID table (or return to the default).
pub const VMM_VCPU_SET_CPUID: u32 = iow::<VmmCpuid>(0x85);
/// Read the vCPU's CPUID table.
pub const VMM_VCPU_GET_CPUID: u32 = iowr::<VmmCpuid>(0x86);
/// Make a running vCPU leave the guest (its `VMM_VCPU_RUN` returns a
/// `KICKED` exit); a vCPU not running leaves at its next entry.
pub const VMM_VCPU_KICK: u32 = io(0x87);
/// Read a per-vCPU option.
pub const VMM_VCPU_GET_OPTION: u32 = iowr::<VmmOption>(0x88);
/// Write a per-vCPU option.
pub const VMM_VCPU_SET_OPTION: u32 = iow::<VmmOption>(0x89);
/// Raise an event on the vCPU: a fixed interrupt, an NMI, a LINT pulse or
/// an exception.
pub const VMM_VCPU_EVENT: u32 = iow::<VmmEvent>(0x8a);
/// Read the vCPU's local APIC state.
pub const VMM_VCPU_GET_APIC: u32 = ior::<VmmApicState>(0x8b);
/// Replace the vCPU's local APIC state.
pub const VMM_VCPU_SET_APIC: u32 = iow::<VmmApicState>(0x8c);
/// Read the vCPU's run state.
pub const VMM_VCPU_GET_RUN_STATE: u32 = ior::<VmmRunState>(0x8d);
/// Set the vCPU's run state.
pub const VMM_VCPU_SET_RUN_STATE: u32 = iow::<VmmRunState>(0x8e);

/// Every ABI struct, for the fingerprint and the C header check.
pub const STRUCTS: &[StructLayout] = &[
    VmmVersion::LAYOUT,
    VmmCaps::LAYOUT,
    VmmCreateVm::LAYOUT,
    VmmVmName::LAYOUT,
    VmmVmEntry::LAYOUT,
    VmmVmList::LAYOUT,
    VmmStats::LAYOUT,
    VmmVmInfo::LAYOUT,
    VmmSegment::LAYOUT,
    VmmMap::LAYOUT,
    VmmCreateVcpu::LAYOUT,
    VmmRegs::LAYOUT,
    VmmSegDesc::LAYOUT,
    VmmDescs::LAYOUT,
    VmmCpuidEntry::LAYOUT,
    VmmCpuid::LAYOUT,
    VmmEntry::LAYOUT,
    VmmExitInout::LAYOUT,
    VmmExitPaging::LAYOUT,
    VmmExitSuspended::LAYOUT,
    VmmExitMsr::LAYOUT,
    VmmExitSvm::LAYOUT,
    VmmExitVmx::LAYOUT,
    VmmExitInstEmul::LAYOUT,
    VmmExitMmio::LAYOUT,
    VmmExit::LAYOUT,
    VmmRun::LAYOUT,
    VmmOption::LAYOUT,
    VmmEvent::LAYOUT,
    VmmMsi::LAYOUT,
    VmmIrqLine::LAYOUT,
    VmmApicState::LAYOUT,
    VmmRunState::LAYOUT,
    VmmDeviceState::LAYOUT,
    VmmIoapicState::LAYOUT,
    VmmPicChipState::LAYOUT,
    VmmPicState::LAYOUT,
    VmmPitCounterState::LAYOUT,
    VmmPitState::LAYOUT,
    VmmPmTimerState::LAYOUT,
    VmmRtcState::LAYOUT,
    VmmHpetState::LAYOUT,
];

/// Every ioctl, by its name in `vmm.h`.
pub const IOCTLS: &[(&str, u32)] = &[
    ("VMM_GET_VERSION", VMM_GET_VERSION),
    ("VMM_GET_CAPS", VMM_GET_CAPS),
    ("VMM_CREATE_VM", VMM_CREATE_VM),
    ("VMM_OPEN_VM", VMM_OPEN_VM),
    ("VMM_DESTROY_VM", VMM_DESTROY_VM),
    ("VMM_LIST_VMS", VMM_LIST_VMS),
    ("VMM_GET_STATS", VMM_GET_STATS),
    ("VMM_VM_GET_INFO", VMM_VM_GET_INFO),
    ("VMM_VM_ALLOC_SEG", VMM_VM_ALLOC_SEG),
    ("VMM_VM_MAP", VMM_VM_MAP),
    ("VMM_VM_UNMAP", VMM_VM_UNMAP),
    ("VMM_VM_CREATE_VCPU", VMM_VM_CREATE_VCPU),
    ("VMM_VM_SUSPEND", VMM_VM_SUSPEND),
    ("VMM_VM_MSI", VMM_VM_MSI),
    ("VMM_VM_IRQ_LINE", VMM_VM_IRQ_LINE),
    ("VMM_VM_GET_DEVICE", VMM_VM_GET_DEVICE),
    ("VMM_VM_SET_DEVICE", VMM_VM_SET_DEVICE),
    ("VMM_VCPU_RUN", VMM_VCPU_RUN),
    ("VMM_VCPU_GET_REGS", VMM_VCPU_GET_REGS),
    ("VMM_VCPU_SET_REGS", VMM_VCPU_SET_REGS),
    ("VMM_VCPU_GET_DESCS", VMM_VCPU_GET_DESCS),
    ("VMM_VCPU_SET_DESCS", VMM_VCPU_SET_DESCS),
    ("VMM_VCPU_SET_CPUID", VMM_VCPU_SET_CPUID),
    ("VMM_VCPU_GET_CPUID", VMM_VCPU_GET_CPUID),
    ("VMM_VCPU_KICK", VMM_VCPU_KICK),
    ("VMM_VCPU_GET_OPTION", VMM_VCPU_GET_OPTION),
    ("VMM_VCPU_SET_OPTION", VMM_VCPU_SET_OPTION),
    ("VMM_VCPU_EVENT", VMM_VCPU_EVENT),
    ("VMM_VCPU_GET_APIC", VMM_VCPU_GET_APIC),
    ("VMM_VCPU_SET_APIC", VMM_VCPU_SET_APIC),
    ("VMM_VCPU_GET_RUN_STATE", VMM_VCPU_GET_RUN_STATE),
    ("VMM_VCPU_SET_RUN_STATE", VMM_VCPU_SET_RUN_STATE),
];

/// Every other constant of the ABI, by its name in `vmm.h`.
pub const CONSTANTS: &[(&str, u64)] = &[
    ("VMM_API_VERSION", VMM_API_VERSION as u64),
    ("VMM_IOC_MAGIC", VMM_IOC_MAGIC as u64),
    ("VMM_NAME_MAX", VMM_NAME_MAX as u64),
    ("VMM_MAX_VMS", VMM_MAX_VMS as u64),
    ("VMM_BACKEND_VMX", Backend::Vmx as u64),
    ("VMM_BACKEND_SVM", Backend::Svm as u64),
    ("VMM_CREATE_DESTROY_ON_CLOSE", CreateFlags::DESTROY_ON_CLOSE.bits() as u64),
    ("VMM_CREATE_NO_PIC", CreateFlags::NO_PIC.bits() as u64),
    ("VMM_CREATE_NO_PIT", CreateFlags::NO_PIT.bits() as u64),
    ("VMM_CREATE_NO_RTC", CreateFlags::NO_RTC.bits() as u64),
    ("VMM_CREATE_NO_HPET", CreateFlags::NO_HPET.bits() as u64),
    ("VMM_CREATE_NO_IOAPIC", CreateFlags::NO_IOAPIC.bits() as u64),
    ("VMM_CREATE_NO_PM_TIMER", CreateFlags::NO_PM_TIMER.bits() as u64),
    ("VMM_PM_PORT_DEFAULT", VMM_PM_PORT_DEFAULT as u64),
    ("VMM_IRQ_ISA", VMM_IRQ_ISA as u64),
    ("VMM_IRQ_IOAPIC", VMM_IRQ_IOAPIC as u64),
    ("VMM_LINE_DEASSERT", VMM_LINE_DEASSERT as u64),
    ("VMM_LINE_ASSERT", VMM_LINE_ASSERT as u64),
    ("VMM_LINE_PULSE", VMM_LINE_PULSE as u64),
    ("VMM_LINE_SET_EDGE", VMM_LINE_SET_EDGE as u64),
    ("VMM_LINE_SET_LEVEL", VMM_LINE_SET_LEVEL as u64),
    ("VMM_ISA_IRQS", VMM_ISA_IRQS as u64),
    ("VMM_IOAPIC_PINS", VMM_IOAPIC_PINS as u64),
    ("VMM_MAX_SEGMENTS", VMM_MAX_SEGMENTS as u64),
    ("VMM_MAX_MAPPINGS", VMM_MAX_MAPPINGS as u64),
    ("VMM_MAX_VM_MEMORY", VMM_MAX_VM_MEMORY),
    ("VMM_SEG_MMAP_SHIFT", VMM_SEG_MMAP_SHIFT as u64),
    ("VMM_SEG_SYSMEM", SegKind::SysMem as u64),
    ("VMM_SEG_ROM", SegKind::Rom as u64),
    ("VMM_PROT_READ", Prot::READ.bits() as u64),
    ("VMM_PROT_WRITE", Prot::WRITE.bits() as u64),
    ("VMM_PROT_EXEC", Prot::EXEC.bits() as u64),
    ("VMM_MAX_VCPUS", VMM_MAX_VCPUS as u64),
    ("VMM_MAX_REGS", VMM_MAX_REGS as u64),
    ("VMM_MAX_CPUID", VMM_MAX_CPUID as u64),
    ("VMM_CPUID_INDEXED", VMM_CPUID_INDEXED as u64),
    ("VMM_REG_RAX", reg::RAX as u64),
    ("VMM_REG_RCX", reg::RCX as u64),
    ("VMM_REG_RDX", reg::RDX as u64),
    ("VMM_REG_RBX", reg::RBX as u64),
    ("VMM_REG_RSP", reg::RSP as u64),
    ("VMM_REG_RBP", reg::RBP as u64),
    ("VMM_REG_RSI", reg::RSI as u64),
    ("VMM_REG_RDI", reg::RDI as u64),
    ("VMM_REG_R8", reg::R8 as u64),
    ("VMM_REG_R15", reg::R15 as u64),
    ("VMM_REG_RIP", reg::RIP as u64),
    ("VMM_REG_RFLAGS", reg::RFLAGS as u64),
    ("VMM_REG_CR0", reg::CR0 as u64),
    ("VMM_REG_CR2", reg::CR2 as u64),
    ("VMM_REG_CR3", reg::CR3 as u64),
    ("VMM_REG_CR4", reg::CR4 as u64),
    ("VMM_REG_EFER", reg::EFER as u64),
    ("VMM_REG_DR6", reg::DR6 as u64),
    ("VMM_REG_DR7", reg::DR7 as u64),
    ("VMM_REG_ES", reg::ES as u64),
    ("VMM_REG_CS", reg::CS as u64),
    ("VMM_REG_SS", reg::SS as u64),
    ("VMM_REG_DS", reg::DS as u64),
    ("VMM_REG_FS", reg::FS as u64),
    ("VMM_REG_GS", reg::GS as u64),
    ("VMM_REG_LDTR", reg::LDTR as u64),
    ("VMM_REG_TR", reg::TR as u64),
    ("VMM_REG_GDTR", reg::GDTR as u64),
    ("VMM_REG_IDTR", reg::IDTR as u64),
    ("VMM_ACCESS_RIGHTS_VALID", access::VALID as u64),
    ("VMM_ACCESS_RIGHTS_UNUSABLE", access::UNUSABLE as u64),
    ("VMM_ENTRY_RUN", VMM_ENTRY_RUN as u64),
    ("VMM_ENTRY_COMPLETE", VMM_ENTRY_COMPLETE as u64),
    ("VMM_ENTRY_INJECT_GP", VMM_ENTRY_INJECT_GP as u64),
    ("VMM_EXIT_INOUT", exit::INOUT as u64),
    ("VMM_EXIT_HLT", exit::HLT as u64),
    ("VMM_EXIT_PAGING", exit::PAGING as u64),
    ("VMM_EXIT_SUSPENDED", exit::SUSPENDED as u64),
    ("VMM_EXIT_RDMSR", exit::RDMSR as u64),
    ("VMM_EXIT_WRMSR", exit::WRMSR as u64),
    ("VMM_EXIT_SVM", exit::SVM as u64),
    ("VMM_EXIT_VMX", exit::VMX as u64),
    ("VMM_EXIT_INST_EMUL", exit::INST_EMUL as u64),
    ("VMM_EXIT_KICKED", exit::KICKED as u64),
    ("VMM_EXIT_MMIO", exit::MMIO as u64),
    ("VMM_MMIO_WRITE", VMM_MMIO_WRITE as u64),
    ("VMM_INST_EMUL_GPA", VMM_INST_EMUL_GPA as u64),
    ("VMM_INOUT_IN", VMM_INOUT_IN as u64),
    ("VMM_INOUT_STRING", VMM_INOUT_STRING as u64),
    ("VMM_INOUT_REP", VMM_INOUT_REP as u64),
    ("VMM_ACCESS_READ", VMM_ACCESS_READ as u64),
    ("VMM_ACCESS_WRITE", VMM_ACCESS_WRITE as u64),
    ("VMM_ACCESS_EXEC", VMM_ACCESS_EXEC as u64),
    ("VMM_PAGING_UNMAPPED", VMM_PAGING_UNMAPPED as u64),
    ("VMM_PAGING_PROTECTION", VMM_PAGING_PROTECTION as u64),
    ("VMM_SUSPEND_TRIPLE_FAULT", VMM_SUSPEND_TRIPLE_FAULT as u64),
    ("VMM_SUSPEND_USER", VMM_SUSPEND_USER as u64),
    ("VMM_SUSPEND_HALT", VMM_SUSPEND_HALT as u64),
    ("VMM_OPTION_HLT_EXIT", VMM_OPTION_HLT_EXIT as u64),
    ("VMM_EVENT_FIXED", VMM_EVENT_FIXED as u64),
    ("VMM_EVENT_NMI", VMM_EVENT_NMI as u64),
    ("VMM_EVENT_LINT", VMM_EVENT_LINT as u64),
    ("VMM_EVENT_EXCEPTION", VMM_EVENT_EXCEPTION as u64),
    ("VMM_EVENT_LEVEL", VMM_EVENT_LEVEL as u64),
    ("VMM_EVENT_DEASSERT", VMM_EVENT_DEASSERT as u64),
    ("VMM_EVENT_ERROR_CODE", VMM_EVENT_ERROR_CODE as u64),
    ("VMM_APIC_STATE_VERSION", VMM_APIC_STATE_VERSION as u64),
    ("VMM_RUN_STATE_RUNNING", VMM_RUN_STATE_RUNNING as u64),
    ("VMM_RUN_STATE_HALTED", VMM_RUN_STATE_HALTED as u64),
    ("VMM_RUN_STATE_WAIT_SIPI", VMM_RUN_STATE_WAIT_SIPI as u64),
    ("VMM_RUN_STATE_NMI_PENDING", VMM_RUN_STATE_NMI_PENDING as u64),
    ("VMM_DEVICE_IOAPIC", VMM_DEVICE_IOAPIC as u64),
    ("VMM_DEVICE_PIC", VMM_DEVICE_PIC as u64),
    ("VMM_DEVICE_PIT", VMM_DEVICE_PIT as u64),
    ("VMM_DEVICE_PM_TIMER", VMM_DEVICE_PM_TIMER as u64),
    ("VMM_DEVICE_RTC", VMM_DEVICE_RTC as u64),
    ("VMM_DEVICE_HPET", VMM_DEVICE_HPET as u64),
    ("VMM_IOAPIC_STATE_VERSION", VMM_IOAPIC_STATE_VERSION as u64),
    ("VMM_PIC_STATE_VERSION", VMM_PIC_STATE_VERSION as u64),
    ("VMM_PIT_STATE_VERSION", VMM_PIT_STATE_VERSION as u64),
    ("VMM_PM_TIMER_STATE_VERSION", VMM_PM_TIMER_STATE_VERSION as u64),
    ("VMM_RTC_STATE_VERSION", VMM_RTC_STATE_VERSION as u64),
    ("VMM_HPET_STATE_VERSION", VMM_HPET_STATE_VERSION as u64),
    ("VMM_HPET_TIMERS", VMM_HPET_TIMERS as u64),
    ("VMM_CMOS_SIZE", VMM_CMOS_SIZE as u64),
];
