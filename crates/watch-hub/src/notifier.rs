//! [`Notifier`]: wakes consumers off the publishing path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};

use crate::consumer_slot::ConsumerSlot;

/// Waking an idle thread costs about 8 µs on the target machines (FLOORS.md;
/// p99 75 µs), so waking eleven consumers one by one would cost the hub more
/// than hashing a 1k-member snapshot. The hub instead hands the slots to
/// wake to this thread with a single wake-up (none while it is still busy
/// with the previous batch), and the notifier wakes them.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    pending: Mutex<Vec<Arc<ConsumerSlot>>>,
    thread: OnceLock<Thread>,
    stop: AtomicBool,
}

impl Notifier {
    pub(crate) fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            thread: OnceLock::new(),
            stop: AtomicBool::new(false),
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

    /// Wakes the notifier: one atomic swap unless it is parked.
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
        }
    }
}
