/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * vmm.h - the ioctl ABI of /dev/vmm and of VM file descriptors, for C users.
 *
 * uapi/src/lib.rs is the source of truth. This header is checked against it
 * by `cargo test -p vmm-uapi` (test c_header): every struct size, field
 * offset and size, ioctl number, constant and feature bit must match, and
 * nothing may be defined here that lib.rs does not have. Change the two
 * files together.
 *
 * Rules every ioctl follows: unknown commands fail with ENOTTY; unknown
 * flags and non-zero reserved fields fail with EINVAL; unreadable or
 * unwritable user memory fails with EFAULT.
 */
#ifndef _UAPI_VMM_H
#define _UAPI_VMM_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Interface version; bumped on any incompatible change. */
#define VMM_API_VERSION		4
/* ioctl "type" byte shared by all vmm ioctls. */
#define VMM_IOC_MAGIC		0xb6
/* Size of a VM name buffer, including the terminating NUL. */
#define VMM_NAME_MAX		64
/* Most VMs that may exist at once; one more fails with ENOSPC. */
#define VMM_MAX_VMS		256

/* Values of vmm_caps.backend. */
#define VMM_BACKEND_VMX		1	/* Intel VT-x */
#define VMM_BACKEND_SVM		2	/* AMD-V */

/* Flags of vmm_create_vm.flags (also reported in vmm_vm_entry/vmm_vm_info). */
#define VMM_CREATE_DESTROY_ON_CLOSE	(1U << 0) /* destroy on last VM fd close */
#define VMM_CREATE_NO_PIC		(1U << 1) /* no in-kernel 8259 PICs */
#define VMM_CREATE_NO_PIT		(1U << 2) /* no in-kernel 8254 PIT */
#define VMM_CREATE_NO_RTC		(1U << 3) /* no in-kernel RTC/CMOS */
#define VMM_CREATE_NO_HPET		(1U << 4) /* no in-kernel HPET */
#define VMM_CREATE_NO_IOAPIC		(1U << 5) /* no in-kernel IOAPIC */
#define VMM_CREATE_NO_PM_TIMER		(1U << 6) /* no in-kernel PM timer */
#define VMM_PM_PORT_DEFAULT		0x408	  /* pm_port 0 means this */

/*
 * Bits of vmm_caps.features. Bits 0-15 are vendor-neutral, 16-39 VMX-only,
 * 40-63 SVM-only.
 */
#define VMM_FEATURE_NESTED_PAGING	(1ULL << 0)  /* EPT or NPT */
#define VMM_FEATURE_TAGGED_TLB		(1ULL << 1)  /* VPID or ASID */
#define VMM_FEATURE_UNRESTRICTED_GUEST	(1ULL << 2)  /* real/unpaged mode runs directly */
#define VMM_FEATURE_NPT_2M		(1ULL << 3)  /* nested paging maps 2 MiB pages */
#define VMM_FEATURE_NPT_1G		(1ULL << 4)  /* nested paging maps 1 GiB pages */
#define VMM_FEATURE_HOST_LA57		(1ULL << 5)  /* host uses 5-level paging */
#define VMM_FEATURE_FLUSH_L1D		(1ULL << 6)  /* IA32_FLUSH_CMD available */

#define VMM_FEATURE_VMX_TRUE_CTLS	(1ULL << 16) /* TRUE capability MSRs */
#define VMM_FEATURE_VMX_MSR_BITMAP	(1ULL << 17) /* MSR bitmaps */
#define VMM_FEATURE_VMX_TPR_SHADOW	(1ULL << 18) /* TPR shadow */
#define VMM_FEATURE_VMX_APIC_ACCESS	(1ULL << 19) /* virtualize APIC accesses */
#define VMM_FEATURE_VMX_X2APIC_MODE	(1ULL << 20) /* virtualize x2APIC mode */
#define VMM_FEATURE_VMX_APIC_REG_VIRT	(1ULL << 21) /* APIC-register virtualization */
#define VMM_FEATURE_VMX_VINTR_DELIVERY	(1ULL << 22) /* virtual-interrupt delivery */
#define VMM_FEATURE_VMX_POSTED_INTR	(1ULL << 23) /* posted interrupts */
#define VMM_FEATURE_VMX_PREEMPT_TIMER	(1ULL << 24) /* VMX-preemption timer */
#define VMM_FEATURE_VMX_MTF		(1ULL << 25) /* monitor trap flag */
#define VMM_FEATURE_VMX_PLE		(1ULL << 26) /* PAUSE-loop exiting */
#define VMM_FEATURE_VMX_EPT_AD		(1ULL << 27) /* EPT accessed/dirty flags */
#define VMM_FEATURE_VMX_INVEPT_SINGLE	(1ULL << 28) /* INVEPT single-context */
#define VMM_FEATURE_VMX_INVEPT_ALL	(1ULL << 29) /* INVEPT all-context */
#define VMM_FEATURE_VMX_INVVPID		(1ULL << 30) /* INVVPID */
#define VMM_FEATURE_VMX_ACK_INTR_ON_EXIT (1ULL << 31) /* ack interrupt on exit */
#define VMM_FEATURE_VMX_VMCS_SHADOW	(1ULL << 32) /* VMCS shadowing */
#define VMM_FEATURE_VMX_EPT_5LEVEL	(1ULL << 33) /* 5-level EPT */

#define VMM_FEATURE_SVM_NRIPS		(1ULL << 40) /* next-RIP save */
#define VMM_FEATURE_SVM_DECODE_ASSISTS	(1ULL << 41) /* decode assists */
#define VMM_FEATURE_SVM_VMCB_CLEAN	(1ULL << 42) /* VMCB clean bits */
#define VMM_FEATURE_SVM_FLUSH_BY_ASID	(1ULL << 43) /* flush by ASID */
#define VMM_FEATURE_SVM_AVIC		(1ULL << 44) /* AVIC */
#define VMM_FEATURE_SVM_X2AVIC		(1ULL << 45) /* x2AVIC */
#define VMM_FEATURE_SVM_VGIF		(1ULL << 46) /* virtual GIF */
#define VMM_FEATURE_SVM_LBRV		(1ULL << 47) /* LBR virtualization */
#define VMM_FEATURE_SVM_PAUSE_FILTER	(1ULL << 48) /* PAUSE filter */
#define VMM_FEATURE_SVM_TSC_SCALE	(1ULL << 49) /* TSC ratio MSR */
#define VMM_FEATURE_SVM_V_VMSAVE_VMLOAD	(1ULL << 50) /* VMSAVE/VMLOAD virtualization */

/* VMM_GET_VERSION result. */
struct vmm_version {
	__u32 api_version;	/* VMM_API_VERSION of the module */
	__u32 flags;		/* zero; reserved */
	__u64 abi_fingerprint;	/* hash of the ABI the module was built with */
};

/* VMM_GET_CAPS result: what the module found at load. */
struct vmm_caps {
	__u32 backend;		/* VMM_BACKEND_* */
	__u32 nr_cpus;		/* CPUs where the load-time probe succeeded */
	__u64 features;		/* VMM_FEATURE_* bits */
	__u32 host_paging_levels; /* 4 or 5 */
	__u32 phys_addr_bits;	/* physical-address width */
	__u32 revision;		/* VMX: VMCS revision id; SVM: SVM revision */
	__u32 nr_asids;		/* SVM: number of ASIDs; VMX: zero */
	__u64 raw[10];		/* raw capability words (backend-specific) */
	__u64 reserved[6];	/* zero */
};

/* VMM_CREATE_VM argument. */
struct vmm_create_vm {
	char name[VMM_NAME_MAX];	/* NUL-terminated, zero-filled name */
	__u32 flags;			/* VMM_CREATE_* */
	__u32 pm_port;			/* PM timer port, 0: VMM_PM_PORT_DEFAULT */
	__u32 reserved[6];		/* zero */
};

/* VMM_OPEN_VM and VMM_DESTROY_VM argument. */
struct vmm_vm_name {
	char name[VMM_NAME_MAX];	/* NUL-terminated, zero-filled name */
	__u32 flags;			/* zero; no flags defined */
	__u32 reserved;			/* zero */
};

/* One VM in a VMM_LIST_VMS answer. */
struct vmm_vm_entry {
	char name[VMM_NAME_MAX];	/* NUL-terminated, zero-filled name */
	__u32 flags;			/* VMM_CREATE_* the VM was created with */
	__u32 nr_fds;			/* VM fds open on it */
	__u32 reserved[2];		/* zero */
};

/* VMM_LIST_VMS argument. */
struct vmm_vm_list {
	__u32 count;	/* in: room in entries; out: VMs that exist (E2BIG if more) */
	__u32 reserved;	/* zero */
	__u64 entries;	/* user address of struct vmm_vm_entry[count] */
};

/* VMM_GET_STATS result: module-wide object counts. */
struct vmm_stats {
	__u32 nr_vms;		/* VMs that have a name */
	__u32 nr_vm_objects;	/* VM objects alive, incl. destroyed but held */
	__u64 vm_bytes;		/* bytes held in VM allocations */
	__u64 seg_pages;	/* pages of segment memory held */
	__u64 nr_vcpu_objects;	/* vCPU objects alive */
	__u64 reserved[2];	/* zero */
};

/* VMM_VM_GET_INFO result. */
struct vmm_vm_info {
	char name[VMM_NAME_MAX];	/* NUL-terminated, zero-filled name */
	__u32 flags;			/* VMM_CREATE_* the VM was created with */
	__u32 guest_phys_bits;		/* mappings end at or below 1 << this */
	__u32 nr_vcpus;			/* vCPUs created */
	__u32 nr_segments;		/* segments allocated */
	__u32 nr_mappings;		/* guest-physical mappings in place */
	__u32 reserved;			/* zero */
};

/*
 * Guest memory. Segments are kernel-owned, zero-filled and live until the VM
 * is destroyed; mmap the VM fd at vmm_segment.mmap_offset to reach one. Pages
 * a sequencer still maps outlive the VM until munmap.
 */
#define VMM_MAX_SEGMENTS	32		/* one more: ENOSPC */
#define VMM_MAX_MAPPINGS	64		/* one more: ENOSPC */
#define VMM_MAX_VM_MEMORY	(16ULL << 30)	/* per-VM segment bytes */
#define VMM_SEG_MMAP_SHIFT	36		/* mmap offset = id << this */

#define VMM_SEG_SYSMEM		1	/* guest RAM */
#define VMM_SEG_ROM		2	/* device memory the guest cannot write */

#define VMM_PROT_READ		(1U << 0)
#define VMM_PROT_WRITE		(1U << 1)	/* requires READ; not for ROM */
#define VMM_PROT_EXEC		(1U << 2)	/* requires READ */

/* VMM_VM_ALLOC_SEG argument. */
struct vmm_segment {
	__u32 kind;		/* in: VMM_SEG_* */
	__u32 id;		/* out: segment id */
	__u64 len;		/* in: non-zero multiple of 4096 */
	__u64 mmap_offset;	/* out: mmap offset of the segment */
	__u32 flags;		/* zero */
	__u32 reserved;		/* zero */
	__u64 reserved2[2];	/* zero */
};

/* VMM_VM_MAP / VMM_VM_UNMAP argument (unmap: gpa and len only). */
struct vmm_map {
	__u64 gpa;		/* first guest-physical address, 4 KiB-aligned */
	__u64 len;		/* bytes, 4 KiB-aligned, non-zero */
	__u64 seg_offset;	/* offset into the segment, 4 KiB-aligned */
	__u32 seg_id;		/* from VMM_VM_ALLOC_SEG */
	__u32 prot;		/* VMM_PROT_* */
	__u32 flags;		/* zero */
	__u32 reserved;		/* zero */
};

/* vCPUs. */
#define VMM_MAX_VCPUS		64	/* ids 0 .. VMM_MAX_VCPUS - 1 */
#define VMM_MAX_REGS		64	/* registers per GET/SET_REGS or _DESCS */
#define VMM_MAX_CPUID		256	/* entries in a CPUID table */

/* VMM_VM_CREATE_VCPU argument; returns a vCPU fd. */
struct vmm_create_vcpu {
	__u32 id;		/* 0 .. VMM_MAX_VCPUS - 1, once each */
	__u32 flags;		/* zero */
	__u64 reserved[3];	/* zero */
};

/* Register ids: general registers in encoding order, then the rest. */
#define VMM_REG_RAX	0
#define VMM_REG_RCX	1
#define VMM_REG_RDX	2
#define VMM_REG_RBX	3
#define VMM_REG_RSP	4
#define VMM_REG_RBP	5
#define VMM_REG_RSI	6
#define VMM_REG_RDI	7
#define VMM_REG_R8	8	/* R9..R15 are 9..15 */
#define VMM_REG_R15	15
#define VMM_REG_RIP	16
#define VMM_REG_RFLAGS	17
#define VMM_REG_CR0	18
#define VMM_REG_CR2	19
#define VMM_REG_CR3	20
#define VMM_REG_CR4	21
#define VMM_REG_EFER	22
#define VMM_REG_DR6	23
#define VMM_REG_DR7	24
/* Selectors (VMM_VCPU_*_REGS) and descriptors (VMM_VCPU_*_DESCS). */
#define VMM_REG_ES	32
#define VMM_REG_CS	33
#define VMM_REG_SS	34
#define VMM_REG_DS	35
#define VMM_REG_FS	36
#define VMM_REG_GS	37
#define VMM_REG_LDTR	38
#define VMM_REG_TR	39
#define VMM_REG_GDTR	40	/* descriptor only */
#define VMM_REG_IDTR	41	/* descriptor only */

/* vmm_seg_desc.access: VMX access-rights layout. */
#define VMM_ACCESS_RIGHTS_VALID		0x1f0ffU	/* bits that may be set */
#define VMM_ACCESS_RIGHTS_UNUSABLE	(1U << 16)	/* null selector loaded */

/* VMM_VCPU_GET_REGS / VMM_VCPU_SET_REGS argument. */
struct vmm_regs {
	__u32 count;	/* 1 .. VMM_MAX_REGS */
	__u32 flags;	/* zero */
	__u64 ids;	/* user address of __u32 ids[count] */
	__u64 values;	/* user address of __u64 values[count] */
};

/* A descriptor's hidden part, or GDTR/IDTR. */
struct vmm_seg_desc {
	__u64 base;
	__u32 limit;	/* bytes, scaled by G */
	__u32 access;	/* VMX access rights; zero for GDTR/IDTR */
};

/* VMM_VCPU_GET_DESCS / VMM_VCPU_SET_DESCS argument. */
struct vmm_descs {
	__u32 count;	/* 1 .. VMM_MAX_REGS */
	__u32 flags;	/* zero */
	__u64 ids;	/* user address of __u32 ids[count]: ES .. IDTR */
	__u64 descs;	/* user address of struct vmm_seg_desc descs[count] */
};

#define VMM_CPUID_INDEXED	(1U << 0)	/* index (ECX) selects the entry */

struct vmm_cpuid_entry {
	__u32 function;	/* EAX in */
	__u32 index;	/* ECX in, with VMM_CPUID_INDEXED */
	__u32 flags;	/* VMM_CPUID_INDEXED or zero */
	__u32 eax, ebx, ecx, edx;
	__u32 reserved;	/* zero */
};

/* VMM_VCPU_SET_CPUID (count 0: back to default) / VMM_VCPU_GET_CPUID. */
struct vmm_cpuid {
	__u32 count;	/* set: entries; get: in room, out entries (E2BIG) */
	__u32 flags;	/* zero */
	__u64 entries;	/* user address of struct vmm_cpuid_entry[count] */
};

/* The run protocol: vmm_entry completes the previous exit. */
#define VMM_ENTRY_RUN		0	/* abandon a pending instruction */
#define VMM_ENTRY_COMPLETE	1	/* complete INOUT/RDMSR/WRMSR; value for IN/RDMSR */
#define VMM_ENTRY_INJECT_GP	2	/* pending RDMSR/WRMSR raises #GP(0) */

struct vmm_entry {
	__u32 cmd;		/* VMM_ENTRY_* */
	__u32 flags;		/* zero */
	__u64 value;		/* IN / RDMSR result */
	__u64 reserved[2];	/* zero */
};

#define VMM_EXIT_INOUT		1	/* struct vmm_exit_inout; needs completion */
#define VMM_EXIT_HLT		2	/* RIP is past the HLT */
#define VMM_EXIT_PAGING		3	/* struct vmm_exit_paging */
#define VMM_EXIT_SUSPENDED	4	/* struct vmm_exit_suspended */
#define VMM_EXIT_RDMSR		5	/* struct vmm_exit_msr; needs completion */
#define VMM_EXIT_WRMSR		6	/* struct vmm_exit_msr; needs completion */
#define VMM_EXIT_SVM		7	/* struct vmm_exit_svm */
#define VMM_EXIT_VMX		8	/* struct vmm_exit_vmx */
#define VMM_EXIT_INST_EMUL	9	/* struct vmm_exit_inst_emul */
#define VMM_EXIT_KICKED		10	/* VMM_VCPU_KICK; nothing pending */
#define VMM_EXIT_MMIO		11	/* struct vmm_exit_mmio; a read needs completion */

#define VMM_INOUT_IN		(1U << 0)
#define VMM_INOUT_STRING	(1U << 1)
#define VMM_INOUT_REP		(1U << 2)

struct vmm_exit_inout {
	__u32 flags;		/* VMM_INOUT_* */
	__u32 port;
	__u32 size;		/* 1, 2 or 4 */
	__u32 reserved;
	__u64 value;		/* OUT data */
	__u64 gpa;		/* string: element address */
	__u64 count;		/* string with REP: elements left */
	__u64 reserved2[3];
};

#define VMM_ACCESS_READ		(1U << 0)
#define VMM_ACCESS_WRITE	(1U << 1)
#define VMM_ACCESS_EXEC		(1U << 2)
#define VMM_PAGING_UNMAPPED	(1U << 0)
#define VMM_PAGING_PROTECTION	(1U << 1)

struct vmm_exit_paging {
	__u64 gpa;
	__u32 access;		/* VMM_ACCESS_* */
	__u32 flags;		/* VMM_PAGING_* */
	__u64 reserved[6];
};

#define VMM_SUSPEND_TRIPLE_FAULT	1
#define VMM_SUSPEND_USER		2
#define VMM_SUSPEND_HALT		3	/* every vCPU halted, interrupts off */

struct vmm_exit_suspended {
	__u32 how;		/* VMM_SUSPEND_* */
	__u32 vcpu;		/* which vCPU triple-faulted */
	__u64 reserved[7];
};

struct vmm_exit_msr {
	__u32 msr;
	__u32 reserved;
	__u64 value;		/* WRMSR value */
	__u64 reserved2[6];
};

struct vmm_exit_svm {
	__u64 exit_code, exit_info1, exit_info2, exit_int_info;
	__u64 reserved[4];
};

struct vmm_exit_vmx {
	__u32 exit_reason;	/* bit 31: VM-entry failure */
	__u32 instruction_error;	/* VMLAUNCH/VMRESUME failed */
	__u64 qualification;
	__u64 guest_physical;
	__u64 guest_linear;
	__u32 intr_info, intr_error;
	__u32 idt_info, idt_error;
	__u32 instruction_len, instruction_info;
	__u64 reserved;
};

#define VMM_INST_EMUL_GPA	(1U << 0)

struct vmm_exit_inst_emul {
	__u8 bytes[16];
	__u32 len;
	__u32 flags;		/* VMM_INST_EMUL_* */
	__u64 gpa;		/* with VMM_INST_EMUL_GPA: the MMIO access */
	__u64 reserved[4];
};

#define VMM_MMIO_WRITE		(1U << 0)

struct vmm_exit_mmio {
	__u64 gpa;
	__u32 size;		/* 1, 2, 4 or 8 */
	__u32 flags;		/* VMM_MMIO_* */
	__u64 data;		/* write: the value */
	__u64 reserved[5];
};

struct vmm_exit {
	__u32 reason;		/* VMM_EXIT_* */
	__u32 vcpu;
	__u64 rip;
	__u32 inst_len;		/* zero when unknown */
	__u32 reserved;
	__u64 data[8];		/* read as the struct vmm_exit_* of the reason */
};

/* VMM_VCPU_RUN argument. */
struct vmm_run {
	struct vmm_entry entry;	/* in */
	struct vmm_exit exit;	/* out */
};

/* ioctls on /dev/vmm. */
#define VMM_GET_VERSION	_IOR(VMM_IOC_MAGIC, 0x00, struct vmm_version)
#define VMM_GET_CAPS	_IOR(VMM_IOC_MAGIC, 0x01, struct vmm_caps)
#define VMM_CREATE_VM	_IOW(VMM_IOC_MAGIC, 0x02, struct vmm_create_vm)	/* returns a VM fd */
#define VMM_OPEN_VM	_IOW(VMM_IOC_MAGIC, 0x03, struct vmm_vm_name)	/* returns a VM fd */
#define VMM_DESTROY_VM	_IOW(VMM_IOC_MAGIC, 0x04, struct vmm_vm_name)
#define VMM_LIST_VMS	_IOWR(VMM_IOC_MAGIC, 0x05, struct vmm_vm_list)
#define VMM_GET_STATS	_IOR(VMM_IOC_MAGIC, 0x06, struct vmm_stats)

/* ioctls on a VM fd. */
#define VMM_VM_GET_INFO	_IOR(VMM_IOC_MAGIC, 0x40, struct vmm_vm_info)
#define VMM_VM_ALLOC_SEG _IOWR(VMM_IOC_MAGIC, 0x41, struct vmm_segment)
#define VMM_VM_MAP	_IOW(VMM_IOC_MAGIC, 0x42, struct vmm_map)
#define VMM_VM_UNMAP	_IOW(VMM_IOC_MAGIC, 0x43, struct vmm_map)
#define VMM_VM_CREATE_VCPU _IOW(VMM_IOC_MAGIC, 0x44, struct vmm_create_vcpu) /* returns a vCPU fd */
#define VMM_VM_SUSPEND	_IO(VMM_IOC_MAGIC, 0x45)

/* ioctls on a vCPU fd. */
#define VMM_VCPU_RUN	_IOWR(VMM_IOC_MAGIC, 0x80, struct vmm_run)
#define VMM_VCPU_GET_REGS _IOW(VMM_IOC_MAGIC, 0x81, struct vmm_regs)
#define VMM_VCPU_SET_REGS _IOW(VMM_IOC_MAGIC, 0x82, struct vmm_regs)
#define VMM_VCPU_GET_DESCS _IOW(VMM_IOC_MAGIC, 0x83, struct vmm_descs)
#define VMM_VCPU_SET_DESCS _IOW(VMM_IOC_MAGIC, 0x84, struct vmm_descs)
#define VMM_VCPU_SET_CPUID _IOW(VMM_IOC_MAGIC, 0x85, struct vmm_cpuid)
#define VMM_VCPU_GET_CPUID _IOWR(VMM_IOC_MAGIC, 0x86, struct vmm_cpuid)
#define VMM_VCPU_KICK	_IO(VMM_IOC_MAGIC, 0x87)

/* The in-kernel local APIC. */
#define VMM_OPTION_HLT_EXIT	1	/* HLT exits to the sequencer (0 or 1) */

struct vmm_option {
	__u32 option;		/* VMM_OPTION_* */
	__u32 reserved;		/* zero */
	__u64 value;		/* set: in; get: out */
};

#define VMM_EVENT_FIXED		0	/* fixed interrupt, vector 16..255 */
#define VMM_EVENT_NMI		1	/* NMI */
#define VMM_EVENT_LINT		2	/* pulse LINT<vector> (0 or 1) */
#define VMM_EVENT_EXCEPTION	3	/* exception, vector 0..31 but 2 */
#define VMM_EVENT_LEVEL		(1U << 0)	/* level (FIXED); hold (LINT) */
#define VMM_EVENT_DEASSERT	(1U << 1)	/* release a held LINT pin */
#define VMM_EVENT_ERROR_CODE	(1U << 2)	/* the exception pushes error */

struct vmm_event {
	__u32 kind;		/* VMM_EVENT_* */
	__u32 vector;		/* vector, or LINT pin */
	__u32 flags;		/* VMM_EVENT_LEVEL, _DEASSERT, _ERROR_CODE */
	__u32 error;		/* error code, or zero */
};

struct vmm_msi {
	__u64 address;		/* 0xfeexxxxx */
	__u32 data;		/* bits 15:0 */
	__u32 flags;		/* zero */
};

/* VMM_VM_IRQ_LINE: interrupt lines of the in-kernel PIC and IOAPIC. */
#define VMM_IRQ_ISA		1	/* ISA IRQ 0-15: PIC input and IOAPIC pin */
#define VMM_IRQ_IOAPIC		2	/* IOAPIC pin 0-23 */
#define VMM_LINE_DEASSERT	0
#define VMM_LINE_ASSERT		1
#define VMM_LINE_PULSE		2	/* assert, then deassert */
#define VMM_LINE_SET_EDGE	3	/* ISA: the PIC's ELCR bit clear */
#define VMM_LINE_SET_LEVEL	4	/* ISA: the PIC's ELCR bit set */
#define VMM_ISA_IRQS		16
#define VMM_IOAPIC_PINS		24

struct vmm_irq_line {
	__u32 kind;		/* VMM_IRQ_ISA or VMM_IRQ_IOAPIC */
	__u32 line;		/* IRQ or pin */
	__u32 op;		/* VMM_LINE_* */
	__u32 flags;		/* zero */
};

#define VMM_APIC_STATE_VERSION	1

/* The whole state of one local APIC; times are guest TSC values. */
struct vmm_apic_state {
	__u32 version;		/* VMM_APIC_STATE_VERSION */
	__u32 initial_id;	/* x2APIC ID (the vCPU id) */
	__u64 taken_at;		/* guest TSC when taken */
	__u64 apic_base;	/* IA32_APIC_BASE */
	__u64 icr;		/* x2APIC layout */
	__u64 timer_start;	/* when the count was timer_count */
	__u64 tsc_deadline;	/* IA32_TSC_DEADLINE */
	__u64 timer_next;	/* next expiry, 0 for none */
	__u32 index;		/* the vCPU id */
	__u32 xapic_id;		/* xAPIC ID bits 31:24 */
	__u32 tpr;
	__u32 ldr;
	__u32 dfr;
	__u32 svr;
	__u32 isr[8];
	__u32 tmr[8];
	__u32 irr[8];
	__u32 esr;
	__u32 esr_pending;	/* errors not yet latched */
	__u32 lvt[7];		/* CMCI, timer, thermal, perf, LINT0, LINT1, error */
	__u32 timer_initial;
	__u32 timer_dcr;
	__u32 timer_count;	/* count at timer_start, 0: not counting */
	__u32 lint;		/* LINT0 bit 0, LINT1 bit 1 levels */
	__u32 activity;		/* 0 running, 1 waiting for SIPI */
	__u32 latched;		/* INIT 1, NMI 2, SMI 4, ExtINT 8 */
	__u32 sipi;		/* latched SIPI vector, 0x100 for none */
	__u32 reserved[4];	/* zero */
};

#define VMM_RUN_STATE_RUNNING	0
#define VMM_RUN_STATE_HALTED	1	/* after HLT, waiting for an interrupt */
#define VMM_RUN_STATE_WAIT_SIPI	2	/* after INIT, waiting for SIPI */
#define VMM_RUN_STATE_NMI_PENDING	(1U << 0)

struct vmm_run_state {
	__u32 state;		/* VMM_RUN_STATE_* */
	__u32 flags;		/* VMM_RUN_STATE_NMI_PENDING */
	__u64 reserved[3];	/* zero */
};

/*
 * VMM_VM_GET_DEVICE / VMM_VM_SET_DEVICE: one platform device's state. Each
 * state struct mirrors the device model's snapshot; version is the model's
 * snapshot version. Times are ns of the host's CLOCK_MONOTONIC (absolute:
 * a state restores on the host boot that took it).
 */
#define VMM_DEVICE_IOAPIC	1	/* struct vmm_ioapic_state */
#define VMM_DEVICE_PIC		2	/* struct vmm_pic_state */
#define VMM_DEVICE_PIT		3	/* struct vmm_pit_state */
#define VMM_DEVICE_PM_TIMER	4	/* struct vmm_pm_timer_state */
#define VMM_DEVICE_RTC		5	/* struct vmm_rtc_state */
#define VMM_DEVICE_HPET		6	/* struct vmm_hpet_state */
#define VMM_IOAPIC_STATE_VERSION	1
#define VMM_PIC_STATE_VERSION		1
#define VMM_PIT_STATE_VERSION		1
#define VMM_PM_TIMER_STATE_VERSION	1
#define VMM_RTC_STATE_VERSION		1
#define VMM_HPET_STATE_VERSION		1
#define VMM_HPET_TIMERS		8
#define VMM_CMOS_SIZE		128

struct vmm_device_state {
	__u32 device;		/* VMM_DEVICE_* */
	__u32 size;		/* bytes at data: the device's state struct */
	__u32 flags;		/* zero */
	__u32 reserved;		/* zero */
	__u64 data;		/* user address of the state struct */
};

struct vmm_ioapic_state {
	__u32 version;		/* VMM_IOAPIC_STATE_VERSION */
	__u32 id;		/* IOAPICID bits 27:24 */
	__u32 ioregsel;
	__u32 lines;		/* input levels, bit n for pin n */
	__u64 rte[VMM_IOAPIC_PINS];	/* as the guest reads them */
};

/* One 8259; flags are 0 or 1. */
struct vmm_pic_chip_state {
	__u32 irr;
	__u32 isr;
	__u32 imr;
	__u32 lines;		/* input levels */
	__u32 elcr;		/* bit set: level-triggered */
	__u32 lowest_priority;	/* 0-7 */
	__u32 vector_base;	/* ICW2, bits 2:0 clear */
	__u32 init;		/* 0 reset, 1 ready, 2-4 waiting for ICW2-4 */
	__u32 icw1;		/* IC4 bit 0, SNGL bit 1 */
	__u32 read_isr;		/* reads return the ISR (1) or IRR (0) */
	__u32 poll;
	__u32 special_mask;
	__u32 auto_eoi;
	__u32 rotate_on_aeoi;
	__u32 sfnm;
	__u32 reserved;		/* zero */
};

struct vmm_pic_state {
	__u32 version;		/* VMM_PIC_STATE_VERSION */
	__u32 reserved;		/* zero */
	struct vmm_pic_chip_state master;
	struct vmm_pic_chip_state slave;
};

/* One 8254 counter; flags are 0 or 1; times are PIT clock edges. */
struct vmm_pit_counter_state {
	__u32 control;		/* control word bits 5:0 */
	__u32 count_register;
	__u32 has_count;
	__u32 write_lsb;	/* LSB awaiting its MSB, or 0x100 */
	__u32 read_msb;
	__u32 latched_count;	/* or 0x10000 */
	__u32 latched_status;	/* or 0x100 */
	__u32 null_count;
	__u32 gate;
	__u32 count;		/* count of the current cycle, 0 when idle */
	__u32 phase;		/* mode 3: the cycle's starting phase */
	__u32 run;		/* 0 idle, 1 counting, 2 paused by the gate */
	__u32 strobed;
	__u32 load_low_half;
	__u32 load_cycle_end;
	__u32 reserved;		/* zero */
	__u64 run_value;	/* idle: CE; counting: start edge; paused: edges */
	__u64 paused_since;	/* paused: last edge before the gate fell */
	__u64 load_at;		/* edge the count register loads at, or 0 */
};

struct vmm_pit_state {
	__u32 version;		/* VMM_PIT_STATE_VERSION */
	__u32 speaker;		/* port 0x61 bit 1 */
	__u64 taken_at;		/* ns */
	__u64 irq_next;		/* edge of counter 0's next OUT rise, or 0 */
	__u64 deadline;		/* ns the host timer fires for it, or 0 */
	struct vmm_pit_counter_state counters[3];
};

struct vmm_pm_timer_state {
	__u32 version;		/* VMM_PM_TIMER_STATE_VERSION */
	__u32 width;		/* 24 or 32 */
	__u64 origin;		/* ns */
	__u32 count;		/* the count at origin */
	__u32 reserved;		/* zero */
};

struct vmm_rtc_state {
	__u32 version;		/* VMM_RTC_STATE_VERSION */
	__u32 index;		/* port 0x70 bits 6:0 */
	__u64 synced;		/* ns up to which updates were applied */
	__u64 divider_age;	/* ns */
	__u64 secs;		/* clock 0: seconds since 1970, else 0 */
	__u32 nmi_disabled;	/* port 0x70 bit 7 */
	__u32 reg_a;		/* without UIP */
	__u32 reg_b;
	__u32 flags;		/* register C's PF, AF, UF */
	__u32 alarm[3];		/* seconds, minutes, hours */
	__u32 clock;		/* 0 counting secs, 1 holding held */
	__u8 held[8];		/* clock 1: the time bytes, else 0 */
	__u8 cmos[VMM_CMOS_SIZE];	/* clock registers' slots 0 */
};

struct vmm_hpet_state {
	__u32 version;		/* VMM_HPET_STATE_VERSION */
	__u32 reserved;		/* zero */
	__u64 config;		/* GEN_CONF */
	__u64 status;		/* GINTR_STA */
	__u64 counter;		/* at base_ns if running, else its value */
	__u64 base_ns;		/* 0 if halted */
	__u64 checked;		/* count up to which matches were worked out */
	__u64 timer_conf[VMM_HPET_TIMERS];
	__u64 timer_comparator[VMM_HPET_TIMERS];
	__u64 timer_period[VMM_HPET_TIMERS];
	__u64 timer_fsb[VMM_HPET_TIMERS];
};

#define VMM_VM_MSI		_IOW(VMM_IOC_MAGIC, 0x46, struct vmm_msi)
#define VMM_VM_IRQ_LINE		_IOW(VMM_IOC_MAGIC, 0x47, struct vmm_irq_line)
#define VMM_VM_GET_DEVICE	_IOWR(VMM_IOC_MAGIC, 0x48, struct vmm_device_state)
#define VMM_VM_SET_DEVICE	_IOW(VMM_IOC_MAGIC, 0x49, struct vmm_device_state)
#define VMM_VCPU_GET_OPTION	_IOWR(VMM_IOC_MAGIC, 0x88, struct vmm_option)
#define VMM_VCPU_SET_OPTION	_IOW(VMM_IOC_MAGIC, 0x89, struct vmm_option)
#define VMM_VCPU_EVENT		_IOW(VMM_IOC_MAGIC, 0x8a, struct vmm_event)
#define VMM_VCPU_GET_APIC	_IOR(VMM_IOC_MAGIC, 0x8b, struct vmm_apic_state)
#define VMM_VCPU_SET_APIC	_IOW(VMM_IOC_MAGIC, 0x8c, struct vmm_apic_state)
#define VMM_VCPU_GET_RUN_STATE	_IOR(VMM_IOC_MAGIC, 0x8d, struct vmm_run_state)
#define VMM_VCPU_SET_RUN_STATE	_IOW(VMM_IOC_MAGIC, 0x8e, struct vmm_run_state)

#endif /* _UAPI_VMM_H */
