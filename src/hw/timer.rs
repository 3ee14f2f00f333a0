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
//! [`Ticker<T>`] is the same for work that must run in process context
//! (the platform devices: their timers re-arm themselves, which an hrtimer
//! callback cannot do through a guard it would have to cancel).
//!
//! The unsafe parts (the intrusive timer's and work item's container
//! arithmetic) are the kernel crate's `impl_has_hr_timer!` and
//! `impl_has_work!`, expanded here.

use core::ops::Deref;
use kernel::{
    impl_has_hr_timer, new_mutex, new_work,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Release},
        Arc, ArcBorrow, Mutex,
    },
    time::{
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Monotonic,
    },
    workqueue::{self, impl_has_work, Work, WorkItem},
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

/// What a [`Ticker`] does in process context each time it is woken (its
/// timer expired, or someone called [`Ticker::wake`]).
pub(crate) trait OnTick: Send + Sync + 'static {
    /// Runs on a workqueue: may take spinlocks and sleeping locks, must not
    /// block for long. Returns when the next tick is due (an absolute time
    /// on [`now_ns`]'s clock), or `None` for no timer.
    fn tick(&self) -> Option<u64>;
}

/// A `T` whose work runs in process context at a time `T` chooses: a
/// high-resolution timer whose expiry queues a work item, which calls
/// [`OnTick::tick`] and re-arms the timer for the time it returns. Unlike
/// [`Timed`], arming happens only in the work item, so nobody ever cancels
/// the timer from inside its own callback or under a lock the callback
/// takes: the callback takes no lock at all.
///
/// The timer and a queued work item each hold a reference to the ticker:
/// the owner calls [`Ticker::stop`] before it lets go, or the ticker
/// lives on.
#[pin_data]
pub(crate) struct Ticker<T: OnTick> {
    #[pin]
    timer: HrTimer<Self>,
    #[pin]
    work: Work<Self>,
    /// The started timer; taken only by the work item and by `stop`.
    #[pin]
    armed: Mutex<Option<ArcHrTimerHandle<Self>>>,
    /// Set by `stop`: no work runs `tick` and nothing arms the timer again.
    stopped: Atomic<bool>,
    #[pin]
    inner: T,
}

impl_has_hr_timer! {
    impl{T: OnTick} HasHrTimer<Self> for Ticker<T> {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl_has_work! {
    impl{T: OnTick} HasWork<Self> for Ticker<T> { self.work }
}

impl<T: OnTick> HrTimerCallback for Ticker<T> {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, _ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        Arc::from(this).wake();
        HrTimerRestart::NoRestart
    }
}

impl<T: OnTick> WorkItem for Ticker<T> {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        if this.stopped.load(Acquire) {
            return;
        }
        let next = this.inner.tick();
        let mut armed = this.armed.lock();
        if this.stopped.load(Acquire) {
            return;
        }
        // Cancelling waits for a running callback, which takes no lock.
        drop(armed.take());
        if let Some(at) = next {
            let ns = at.saturating_sub(now_ns()).min(MAX_NS);
            *armed = Some(this.clone().start(Delta::from_nanos(ns as i64)));
        }
    }
}

impl<T: OnTick> Ticker<T> {
    /// A `T` with a stopped timer.
    pub(crate) fn new(inner: impl PinInit<T>) -> impl PinInit<Self> {
        pin_init!(Self {
            timer <- HrTimer::new(),
            work <- new_work!("vmm_ticker"),
            armed <- new_mutex!(None, "vmm_ticker_armed"),
            stopped: Atomic::new(false),
            inner <- inner,
        })
    }

    /// Makes the work item run `tick` soon (once, however many wake it
    /// before it runs). Any context, hard interrupts included.
    pub(crate) fn wake(self: &Arc<Self>) {
        if !self.stopped.load(Acquire) {
            // `Err`: queued already, and it will see this wake's change.
            let _ = workqueue::system_highpri().enqueue(self.clone());
        }
    }

    /// Stops the ticker for good: cancels the timer (waiting for a running
    /// callback), and a work item still queued does nothing. Process
    /// context, no spinlock held.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Release);
        drop(self.armed.lock().take());
    }
}

impl<T: OnTick> Deref for Ticker<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

/// Nanoseconds on the monotonic clock (`ktime_get_ns`).
pub(crate) fn now_ns() -> u64 {
    // SAFETY: `ktime_get_ns` may be called from any context but NMI.
    unsafe { super::ffi::vmm_ktime_ns() }
}

/// Seconds since 1970 on the wall clock (`ktime_get_real_seconds`).
pub(crate) fn wall_secs() -> u64 {
    // SAFETY: as for `now_ns`.
    unsafe { super::ffi::vmm_wall_secs() }
}
