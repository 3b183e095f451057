//! [`Notifier`]: wakes consumers off the publishing path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::consumer_slot::ConsumerSlot;

/// While publications keep coming, the notifier looks for work this soon
/// after it last found some instead of being signalled ...
const POLL: Duration = Duration::from_micros(100);
/// ... and, finding none, twice as late each time up to this.
const POLL_MAX: Duration = Duration::from_micros(400);
/// How long after its last work the notifier keeps polling before it sleeps
/// until the hub signals it.
const HOT: Duration = Duration::from_millis(50);

/// Waking an idle thread costs about 8 µs on the target machines (FLOORS.md;
/// p99 75 µs), and the woken thread may take the waker's core on the spot:
/// waking eleven consumers from the hub would cost it more than hashing a
/// 1k-member snapshot, and on two cores a large publication's consumers
/// could keep it off the CPU for milliseconds. So the hub only queues the
/// consumers to wake, and this thread wakes them.
///
/// While publications keep coming (for [`HOT`] after the last one) the
/// notifier polls the queue, every [`POLL`] after finding work and backing
/// off to [`POLL_MAX`], so the hub makes no system call at all and each
/// consumer is woken at most once per poll, however many publications
/// arrived (wake-ups batched in bursts). After a quiet spell it sleeps, and
/// the first publication costs the hub one `unpark`. Polling costs about
/// 2,500 short wake-ups a second while hot, none otherwise.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    pending: Mutex<Vec<Arc<ConsumerSlot>>>,
    thread: OnceLock<Thread>,
    stop: AtomicBool,
    /// Set while the notifier sleeps until signalled (not while it polls).
    asleep: AtomicBool,
}

impl Notifier {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
            asleep: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("watch-hub-notify".into())
            .spawn(move || worker.run())?;
        let _ = shared.thread.set(thread.thread().clone());
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `slots` to be woken; true when the notifier must be signalled.
    pub(crate) fn enqueue<'a>(&self, slots: impl Iterator<Item = &'a Arc<ConsumerSlot>>) -> bool {
        let mut pending = self.shared.pending();
        let before = pending.len();
        pending.extend(slots.filter(|slot| slot.request_wake()).cloned());
        pending.len() > before
    }

    /// Wakes the notifier at once, whether it sleeps or waits between
    /// polls: a publication must not wait for the next poll (up to
    /// [`POLL_MAX`]) — that delay, not the hand-off, dominated the latency
    /// from a provider event to the last consumer. While the notifier is
    /// running, `unpark` is a single atomic store and no system call.
    pub(crate) fn signal(&self) {
        if let Some(thread) = self.shared.thread.get() {
            thread.unpark();
        }
    }

    /// Stops the thread after the pending wake-ups; returns it to be joined.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.shared.thread.get() {
            thread.unpark();
        }
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConsumerSlot>>> {
        // A list of slots to wake; a panic elsewhere cannot leave it invalid.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut batch = Vec::new();
        let mut hot_until = Instant::now();
        let mut poll = POLL;
        loop {
            std::mem::swap(&mut batch, &mut *self.pending());
            if !batch.is_empty() {
                for slot in batch.drain(..) {
                    slot.wake();
                }
                hot_until = Instant::now() + HOT;
                poll = POLL;
                std::thread::park_timeout(poll);
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if Instant::now() < hot_until {
                poll = (poll * 2).min(POLL_MAX);
                std::thread::park_timeout(poll);
                continue;
            }
            // Sleep until signalled. Announce it first, then look once more:
            // the hub queues before it reads `asleep`, so either this look
            // finds its slots or the hub sees `asleep` and unparks.
            self.asleep.store(true, Ordering::SeqCst);
            if self.pending().is_empty() && !self.stop.load(Ordering::SeqCst) {
                std::thread::park();
            }
            self.asleep.store(false, Ordering::SeqCst);
        }
    }
}
