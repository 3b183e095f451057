//! [`Reclaimer`]: drops retired snapshots off the publishing path.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::publication::Publication;
use provisioning_provider_api::ProviderSnapshot;

use crate::{ProvisioningEvent, PublishedSnapshot};

/// Something the hub no longer needs. Freeing a 100k-member snapshot costs
/// milliseconds, so the last reference the hub drops is dropped on the
/// reclaimer's thread instead.
#[allow(
    dead_code,
    reason = "the values are held only to be dropped on the reclaimer thread"
)]
pub(crate) enum Retired {
    Publication(Arc<Publication>),
    Event(Arc<ProvisioningEvent>),
    Snapshot(Arc<PublishedSnapshot>),
    View(Box<ProviderSnapshot>),
}

impl Retired {
    /// Whether dropping this frees it (no other holder right now). A holder
    /// dropping its reference at the same moment only means that, rarely,
    /// the hub frees inline.
    fn is_last(&self) -> bool {
        match self {
            Self::Publication(p) => Arc::strong_count(p) == 1,
            Self::Event(e) => Arc::strong_count(e) == 1,
            Self::Snapshot(s) => Arc::strong_count(s) == 1,
            Self::View(_) => true,
        }
    }

    /// Roughly how much freeing it costs, in members.
    fn weight(&self) -> usize {
        1 + match self {
            Self::Publication(p) => p.members() + p.lines().len(),
            Self::Event(e) => e.as_snapshot().map_or(0, |s| s.members().len()),
            Self::Snapshot(s) => s.members().len(),
            Self::View(v) => v.len(),
        }
    }
}

/// Items gathered before the reclaimer thread is woken: one wake-up per
/// batch instead of one per publication.
const BATCH_WEIGHT: usize = 32_768;
const BATCH_ITEMS: usize = 64;

#[derive(Default)]
struct Pending {
    items: Vec<Retired>,
    weight: usize,
}

/// A thread that drops what it is sent.
pub(crate) struct Reclaimer {
    tx: Mutex<Option<mpsc::Sender<Vec<Retired>>>>,
    pending: Mutex<Pending>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reclaimer {
    pub(crate) fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Vec<Retired>>();
        let thread = std::thread::Builder::new()
            .name("watch-hub-reclaim".into())
            .spawn(move || {
                while let Ok(batch) = rx.recv() {
                    drop(batch);
                }
            })?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            pending: Mutex::new(Pending::default()),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Drops what someone else still holds at once (a reference count
    /// decrement) and hands the rest, in batches, to the reclaimer thread.
    pub(crate) fn retire(&self, retired: Vec<Retired>) {
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for item in retired {
                if item.is_last() {
                    pending.weight += item.weight();
                    pending.items.push(item);
                }
            }
            if pending.weight < BATCH_WEIGHT && pending.items.len() < BATCH_ITEMS {
                return;
            }
            pending.weight = 0;
            std::mem::take(&mut pending.items)
        };
        self.send(batch);
    }

    fn send(&self, batch: Vec<Retired>) {
        if batch.is_empty() {
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        match tx.as_ref() {
            Some(tx) => {
                // A send fails only when the thread is gone; the batch then
                // comes back and is dropped here.
                let _ = tx.send(batch);
            }
            None => drop(batch),
        }
    }

    /// Stops the thread after the pending batch; returns it to be joined.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        let batch = std::mem::take(
            &mut self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .items,
        );
        self.send(batch);
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
