//! [`Notifier`]: wakes consumers off the publishing path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::consumer_slot::ConsumerSlot;

/// Waking an idle thread costs about 8 µs on the target machines (FLOORS.md;
/// p99 75 µs), so waking eleven consumers one by one would cost the hub more
/// than hashing a 1k-member snapshot. The hub instead hands the slots to
/// wake to this thread with a single wake-up (none while it is still busy
/// with the previous batch), and the notifier wakes them.
///
/// Wake-ups are also batched in time: after waking consumers the notifier
/// waits [`COALESCE`] before it wakes them again, and the hub does not
/// signal it meanwhile. A burst of publications then costs the hub no
/// wake-up at all and each consumer one wake-up per window, instead of a
/// context switch per publication on every consumer; a publication that
/// follows a quiet spell is passed on at once.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The shortest time between two rounds of wake-ups.
const COALESCE: Duration = Duration::from_micros(100);

struct Shared {
    pending: Mutex<Vec<Arc<ConsumerSlot>>>,
    thread: OnceLock<Thread>,
    stop: AtomicBool,
    /// Set while the notifier waits out [`COALESCE`]: it looks at the
    /// pending list when the window ends, so it needs no signal.
    coalescing: AtomicBool,
}

impl Notifier {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
            coalescing: AtomicBool::new(false),
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
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = pending.len();
        pending.extend(slots.filter(|slot| slot.request_wake()).cloned());
        pending.len() > before
    }

    /// Wakes the notifier: nothing while it waits out a window, else one
    /// atomic swap unless it is parked.
    pub(crate) fn signal(&self) {
        if self.shared.coalescing.load(Ordering::SeqCst) {
            return;
        }
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
    fn run(&self) {
        let mut batch = Vec::new();
        loop {
            std::mem::swap(
                &mut batch,
                &mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner),
            );
            if batch.is_empty() {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::park();
                continue;
            }
            for slot in batch.drain(..) {
                slot.wake();
            }
            // Wait out the window; the pending list is read right after
            // `coalescing` is cleared, so nothing queued meanwhile is missed.
            self.coalescing.store(true, Ordering::SeqCst);
            let until = Instant::now() + COALESCE;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                std::thread::park_timeout(left);
            }
            self.coalescing.store(false, Ordering::SeqCst);
        }
    }
}
