// SPDX-License-Identifier: GPL-2.0

//! A one-shot host timer embedded in a shared object.
//!
//! [`Timed<T>`] is a `T` with a high-resolution timer beside it; when the
//! timer expires, [`OnExpiry::expired`] runs on the `T`, in hard-interrupt
//! context. Arming it hands back an [`Armed`] guard that holds a reference
//! to the object; dropping the guard cancels the timer and waits for a
//! callback that is running, so it must never be dropped while holding a
//! lock the callback takes.
//!
//! The unsafe part (the intrusive timer's container arithmetic) is the
//! kernel crate's `impl_has_hr_timer!`, expanded here.

use core::ops::Deref;
use kernel::{
    impl_has_hr_timer,
    prelude::*,
    sync::{Arc, ArcBorrow},
    time::{
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Monotonic,
    },
};

/// What a [`Timed`] object does when its timer expires.
pub(crate) trait OnExpiry: Send + Sync + 'static {
    /// Runs in hard-interrupt context: it may take only spinlocks that are
    /// taken with interrupts off everywhere, and must not sleep or
    /// allocate.
    fn expired(&self);
}

/// A `T` with a one-shot host timer.
#[pin_data]
pub(crate) struct Timed<T> {
    #[pin]
    timer: HrTimer<Self>,
    #[pin]
    inner: T,
}

impl_has_hr_timer! {
    impl{T: OnExpiry} HasHrTimer<Self> for Timed<T> {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl<T: OnExpiry> HrTimerCallback for Timed<T> {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, _ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        this.inner.expired();
        HrTimerRestart::NoRestart
    }
}

/// A started timer. Dropping it cancels the timer (waiting for a running
/// callback to finish).
pub(crate) struct Armed<T: OnExpiry> {
    _handle: ArcHrTimerHandle<Timed<T>>,
}

/// Longest delay the timer takes; later expiries are clamped to it and the
/// owner re-arms when it fires early.
const MAX_NS: u64 = i64::MAX as u64 / 2;

impl<T: OnExpiry> Timed<T> {
    /// A `T` with a stopped timer.
    pub(crate) fn new(inner: impl PinInit<T>) -> impl PinInit<Self> {
        pin_init!(Self { timer <- HrTimer::new(), inner <- inner })
    }

    /// Starts the timer to expire `ns` nanoseconds from now. `armed` is
    /// the guard of the previous start, which is cancelled first.
    pub(crate) fn arm(self: &Arc<Self>, armed: &mut Option<Armed<T>>, ns: u64) {
        drop(armed.take());
        let delta = Delta::from_nanos(ns.min(MAX_NS) as i64);
        *armed = Some(Armed { _handle: self.clone().start(delta) });
    }
}

impl<T> Deref for Timed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}
