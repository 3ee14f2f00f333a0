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
#define VMM_API_VERSION		1
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
	__u32 reserved[7];		/* zero */
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
	__u64 reserved[4];	/* zero */
};

/* VMM_VM_GET_INFO result. */
struct vmm_vm_info {
	char name[VMM_NAME_MAX];	/* NUL-terminated, zero-filled name */
	__u32 flags;			/* VMM_CREATE_* the VM was created with */
	__u32 reserved[3];		/* zero */
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

#endif /* _UAPI_VMM_H */
