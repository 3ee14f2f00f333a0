// SPDX-License-Identifier: GPL-2.0

//! A VM's vCPUs by id: what interrupt delivery needs, shared between the
//! VM and its platform devices (whose timer work delivers interrupts
//! without holding the VM).

use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, SetOnce,
    },
};

use crate::uapi;
use crate::vcpu::Vcpu;

/// The vCPUs of one VM, for lock-free lookup from any context.
pub(crate) struct Cpus {
    /// vCPUs by id. Filled once per id (under the VM's `vcpus` lock),
    /// never emptied while the VM lives.
    slots: KVec<SetOnce<Arc<Vcpu>>>,
    /// Some vCPU's APIC ID differs from its index (the guest wrote an
    /// xAPIC ID register): IPIs are then resolved over every vCPU.
    renamed: Atomic<bool>,
}

impl Cpus {
    /// Room for `VMM_MAX_VCPUS`, none present.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let mut slots = KVec::with_capacity(uapi::VMM_MAX_VCPUS as usize, GFP_KERNEL)?;
        for _ in 0..uapi::VMM_MAX_VCPUS {
            slots.push(SetOnce::new(), GFP_KERNEL)?;
        }
        Ok(Arc::new(Self { slots, renamed: Atomic::new(false) }, GFP_KERNEL)?)
    }

    /// Publishes vCPU `id` (once).
    pub(crate) fn add(&self, id: u32, vcpu: Arc<Vcpu>) {
        if let Some(slot) = self.slots.get(id as usize) {
            slot.populate(vcpu);
        }
    }

    /// vCPU `id`, if it exists. Lock-free.
    pub(crate) fn get(&self, id: usize) -> Option<&Arc<Vcpu>> {
        self.slots.get(id)?.as_ref()
    }

    /// Every vCPU that exists, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Vcpu>> {
        self.slots.iter().filter_map(|s| s.as_ref())
    }

    /// A guest gave some vCPU an APIC ID other than its index.
    pub(crate) fn set_renamed(&self) {
        self.renamed.store(true, Relaxed);
    }

    /// Whether a guest ever gave a vCPU an APIC ID other than its index.
    pub(crate) fn renamed(&self) -> bool {
        self.renamed.load(Relaxed)
    }
}
