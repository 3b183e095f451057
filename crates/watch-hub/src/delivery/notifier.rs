//! [`Notifier`]: wakes consumers — at once after a quiet spell, batched on
//! its own thread while publications keep coming.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::bridge_crew::Wakeup;
use super::consumer_slot::ConsumerSlot;
use super::sync::thread::{self, JoinHandle, Thread};
use super::sync::{self, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, OnceLock};

/// A flush within this long of the previous one is part of a burst.
#[cfg(not(hub_loom))]
const BURST: Duration = Duration::from_millis(1);
/// While a burst lasts, the notifier thread looks for work this often ...
const POLL: Duration = Duration::from_micros(100);
/// ... until it found none for this long; then it sleeps until signalled.
#[cfg(not(hub_loom))]
const LINGER: Duration = Duration::from_millis(2);

// The model checker needs a clock it can replay: every flush after the
// first is a burst, and the thread looks once more after work, then sleeps.
#[cfg(hub_loom)]
const BURST: Duration = Duration::from_secs(3600);
#[cfg(hub_loom)]
const LINGER: Duration = Duration::ZERO;

/// Something the notifier wakes: a consumer slot in the hub.
pub(crate) trait Wake: Send + Sync + 'static {
    /// Marks a wake-up as requested; false when one is pending already.
    fn request_wake(&self) -> bool;
    /// Wakes it, or returns the thread to unpark once every consumer of
    /// the flush is woken.
    fn wake(&self) -> Wakeup;
}

impl Wake for ConsumerSlot {
    fn request_wake(&self) -> bool {
        ConsumerSlot::request_wake(self)
    }

    fn wake(&self) -> Wakeup {
        ConsumerSlot::wake(self)
    }
}

/// Waking an idle thread costs about 8 µs on the target machines (BENCHMARKS.md;
/// p99 75 µs), and the woken thread may take the waker's core on the spot.
/// Two situations want opposite things:
///
/// - **A publication after a quiet spell** (the usual case: a member joins,
///   a provider fails, a switch) wants its consumers woken now. The
///   publisher wakes them itself when it flushes: one hop from the
///   publication to each consumer, a few wake-ups paid once.
/// - **A burst** (flushes less than [`BURST`] apart: a rolling restart, a
///   replay, a benchmark) must not pay a context switch per consumer per
///   publication, or on two cores the consumers would keep the publisher
///   off the CPU. The publisher only queues; this thread polls every
///   [`POLL`] and wakes each queued consumer once per poll, however many
///   publications arrived in between (consumers take them as a batch). A
///   publication in a burst waits at most [`POLL`] for its wake-up, and the
///   publisher makes no system call unless the thread is asleep.
///
/// A flush covers every publication made since the previous one: one per
/// publication, or one per transaction of the hub (a batch here) — the
/// service driver publishes a health line, a `provider_changed` and the new
/// snapshot from one provider event, and wakes the consumers once.
pub(crate) struct Notifier<S: Wake = ConsumerSlot> {
    shared: Arc<Shared<S>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The notifier's epoch for [`last_flush`](Self::last_flush).
    origin: Instant,
    /// Nanoseconds after `origin` of the last flush (0: none yet).
    last_flush: AtomicU64,
    /// Open wake batches: while any is open, flushes are deferred.
    batches: AtomicUsize,
    /// Consumers to wake that were queued while a batch was open.
    held: Mutex<Vec<Arc<S>>>,
}

struct Shared<S: Wake> {
    pending: Mutex<Vec<Arc<S>>>,
    thread: OnceLock<Thread>,
    stop: AtomicBool,
    /// Set while the notifier sleeps until signalled (not while it polls).
    asleep: AtomicBool,
}

impl<S: Wake> Notifier<S> {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
            asleep: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = thread::spawn("watch-hub-notify".into(), move || worker.run())?;
        let _ = shared.thread.set(thread.thread().clone());
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
            origin: Instant::now(),
            last_flush: AtomicU64::new(0),
            batches: AtomicUsize::new(0),
            held: Mutex::new(Vec::new()),
        })
    }

    /// Queues `slots` to be woken by the next flush; true when one was
    /// queued that was not already waiting for a wake-up.
    /// Inside an open batch they are held back, so that not even the
    /// notifier thread's polling wakes them before the batch closes.
    pub(crate) fn enqueue<'a>(&self, slots: impl Iterator<Item = &'a Arc<S>>) -> bool {
        let held = self.batches.load(Ordering::Acquire) > 0;
        // A batch that does not hold, for the model checker to catch.
        let held = held && !sync::mutation("hold_ignored");
        let mut queue = if held {
            lock(&self.held)
        } else {
            self.shared.pending()
        };
        let before = queue.len();
        queue.extend(slots.filter(|slot| slot.request_wake()).cloned());
        queue.len() > before
    }

    /// Wakes what is queued: at once on the caller's thread after a quiet
    /// spell, through the notifier thread during a burst. Inside an open
    /// batch, does nothing: what it queued is held until the batch closes.
    pub(crate) fn flush(&self) {
        // `enqueue` put the slots in `held` before this check, so a batch
        // closed meanwhile on another thread either saw them (and flushed)
        // or closed before this load, which then sees no batch.
        if self.batches.load(Ordering::Acquire) > 0 {
            return;
        }
        // What batches held back joins the queue now.
        let held = std::mem::take(&mut *lock(&self.held));
        self.shared.pending().extend(held);
        self.wake_pending();
    }

    /// Wakes what open batches held back so far, at once; what is queued
    /// later is held again until the batches close.
    pub(crate) fn flush_held(&self) {
        let held = std::mem::take(&mut *lock(&self.held));
        if held.is_empty() {
            return;
        }
        self.shared.pending().extend(held);
        self.wake_pending();
    }

    /// Wakes the queue: at once after a quiet spell, through the notifier
    /// thread during a burst.
    fn wake_pending(&self) {
        let now = self.now_nanos();
        let previous = self.last_flush.swap(now, Ordering::AcqRel);
        let in_burst = previous != 0 && now.saturating_sub(previous) < BURST.as_nanos() as u64;
        if in_burst {
            // Queued before reading `asleep`: either the notifier's last
            // look finds the slots or it announced its sleep and is woken.
            if self.shared.asleep.load(Ordering::SeqCst) {
                self.unpark();
            }
            return;
        }
        let batch = std::mem::take(&mut *self.shared.pending());
        wake_all(batch.iter());
    }

    /// Whether a [`hold`](Self::hold) is open (read by the thread that holds
    /// and releases, the hub's owner).
    pub(crate) fn holding(&self) -> bool {
        self.batches.load(Ordering::Acquire) > 0
    }

    /// Defers flushes until [`release`](Self::release).
    pub(crate) fn hold(&self) {
        self.batches.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends one [`hold`](Self::hold); the last one flushes what was held.
    pub(crate) fn release(&self) {
        if self.batches.fetch_sub(1, Ordering::AcqRel) == 1 && !lock(&self.held).is_empty() {
            self.flush();
        }
    }

    /// Stops the thread after the pending wake-ups; returns it to be joined.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.unpark();
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn unpark(&self) {
        if let Some(thread) = self.shared.thread.get() {
            thread.unpark();
        }
    }

    fn now_nanos(&self) -> u64 {
        // Never 0 (that means "no flush yet"); u64 nanoseconds last 584 years.
        (self.origin.elapsed().as_nanos() as u64).max(1)
    }
}

/// Wakes every slot, then unparks the threads their wake-ups need: a crew
/// thread starts once every bridge of the flush is queued (see
/// [`Wakeup`]).
fn wake_all<'a, S: Wake>(slots: impl Iterator<Item = &'a Arc<S>>) {
    // Only the wake-ups with a thread to unpark are kept: no allocation
    // for a flush whose bridges were queued already.
    let wakeups: Vec<Wakeup> = slots
        .map(|slot| slot.wake())
        .filter(|wakeup| !wakeup.is_none())
        .collect();
    for wakeup in wakeups {
        wakeup.unpark();
    }
}

fn lock<S>(list: &Mutex<Vec<Arc<S>>>) -> MutexGuard<'_, Vec<Arc<S>>> {
    // A list of slots to wake; a panic elsewhere cannot leave it invalid.
    list.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Wake> Shared<S> {
    fn pending(&self) -> MutexGuard<'_, Vec<Arc<S>>> {
        lock(&self.pending)
    }

    fn run(&self) {
        let mut batch = Vec::new();
        let mut linger_until = Instant::now();
        loop {
            std::mem::swap(&mut batch, &mut *self.pending());
            if !batch.is_empty() {
                wake_all(batch.iter());
                batch.clear();
                linger_until = Instant::now() + LINGER;
                thread::park_timeout(POLL);
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if Instant::now() < linger_until {
                thread::park_timeout(POLL);
                continue;
            }
            // Sleep until signalled. Announce it first, then look once more:
            // the publisher queues before it reads `asleep`, so either this
            // look finds its slots or the publisher sees `asleep` and
            // unparks.
            // The negative control `sleep_race` announces the sleep after
            // the last look: the lost wake-up this order prevents.
            let race = sync::mutation("sleep_race");
            if !race {
                self.asleep.store(true, Ordering::SeqCst);
            }
            if self.pending().is_empty() && !self.stop.load(Ordering::SeqCst) {
                if race {
                    self.asleep.store(true, Ordering::SeqCst);
                }
                thread::park();
            }
            self.asleep.store(false, Ordering::SeqCst);
            // Woken for a burst: keep polling for a while.
            linger_until = Instant::now() + LINGER;
        }
    }
}
