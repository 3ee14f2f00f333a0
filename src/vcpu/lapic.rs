// SPDX-License-Identifier: GPL-2.0

//! One vCPU's in-kernel local APIC, and how its vCPU sleeps and is woken.
//!
//! [`Lapic`] is shared (`Arc`) between the vCPU and everything that can
//! raise something on it: other vCPUs (IPIs), the host timer (hard
//! interrupt context), and ioctls from any thread. It lives beside the
//! vCPU's `state` mutex, not inside it, because the vCPU's thread holds
//! that mutex for as long as a run lasts, sleeping in HLT included.
//!
//! # Locking
//!
//! - `state` (a spinlock taken with interrupts off, so that the timer
//!   callback may take it too) guards the [`Vlapic`], `timer_due` and the
//!   queued exception. It is a leaf lock: nothing else is taken under it,
//!   and no code holding it sleeps, allocates or cancels the timer. Two
//!   vCPUs' `state` locks are never held together.
//! - `in_guest` and `request` are lock-free.
//!
//! # Waking
//!
//! Whoever changes something the vCPU must look at before it next enters
//! (an interrupt in IRR, a latched INIT, a due timer, a kick, a suspension)
//! calls [`Lapic::notify`]: it sets `request`, wakes the vCPU if it sleeps
//! and interrupts its CPU if it is in the guest. The vCPU clears `request`
//! before it looks at its APIC, and checks it again with interrupts off
//! just before entry (`in_guest` published), so an event that arrives
//! after the look either stops the entry or interrupts the guest: none is
//! lost (the race bhyve fixed, ../shared/seeds). A sleeper checks its wake
//! condition and `request` under `state`, and `notify` takes `state` once
//! after setting `request`, so a wake-up cannot fall between the check and
//! the sleep.

use core::sync::atomic::{fence, Ordering};
use kernel::{
    new_condvar, new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Release},
        CondVar, SpinLockIrq,
    },
};

use crate::backend::Event;
use crate::hw::{self, timer::OnExpiry};
use crate::vlapic::Vlapic;

/// What `Lapic::state` guards.
pub(crate) struct ApicState {
    /// The APIC model.
    pub(crate) apic: Vlapic,
    /// The host timer fired: the vCPU calls `Vlapic::timer_expired`.
    pub(crate) timer_due: bool,
    /// An exception the sequencer queued (`VMM_VCPU_EVENT`), for the next
    /// entry.
    pub(crate) exception: Option<Event>,
}

impl ApicState {
    /// Whether INIT, SIPI, NMI or SMI is latched.
    pub(crate) fn latched(&self) -> bool {
        let l = self.apic.latched();
        l.init || l.sipi.is_some() || l.nmi || l.smi
    }
}

/// One vCPU's local APIC and wake-up machinery.
#[pin_data]
pub(crate) struct Lapic {
    #[pin]
    state: SpinLockIrq<ApicState>,
    /// Where the vCPU sleeps (HLT, wait-for-SIPI).
    #[pin]
    wake: CondVar,
    /// The CPU the vCPU is in the guest on, or -1. Written by the vCPU's
    /// thread with interrupts off around each entry.
    pub(crate) in_guest: Atomic<i32>,
    /// Something changed that the vCPU must look at before it enters.
    pub(crate) request: Atomic<bool>,
}

impl Lapic {
    /// A vCPU's APIC around `apic`.
    pub(crate) fn new(apic: Vlapic) -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_spinlock_irq!(
                ApicState { apic, timer_due: false, exception: None },
                "vmm_apic"
            ),
            wake <- new_condvar!("vmm_vcpu_wake"),
            in_guest: Atomic::new(-1),
            request: Atomic::new(false),
        })
    }

    /// Runs `f` on the APIC state, locked. `f` must be short: it runs with
    /// interrupts off.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut ApicState) -> R) -> R {
        f(&mut self.state.lock())
    }

    /// Makes the vCPU look at its state before it next enters: wakes it if
    /// it sleeps, interrupts its CPU if it is in the guest. Any context.
    pub(crate) fn notify(&self) {
        self.request.store(true, Release);
        fence(Ordering::SeqCst);
        // Orders this after a sleeper's check of `request`, or before it.
        drop(self.state.lock());
        self.wake.notify_all();
        let cpu = self.in_guest.load(Acquire);
        if cpu >= 0 {
            hw::kick_cpu(cpu);
        }
    }

    /// Sleeps until `ready` holds, `request` is set, or a signal arrives.
    /// Returns `false` for the signal. The vCPU's thread only.
    pub(crate) fn sleep_until(&self, mut ready: impl FnMut(&mut ApicState) -> bool) -> bool {
        let mut g = self.state.lock();
        loop {
            if self.request.load(Acquire) || ready(&mut g) {
                return true;
            }
            if self.wake.wait_interruptible(&mut g) {
                return false;
            }
        }
    }
}

impl OnExpiry for Lapic {
    fn expired(&self) {
        self.state.lock().timer_due = true;
        self.notify();
    }
}
