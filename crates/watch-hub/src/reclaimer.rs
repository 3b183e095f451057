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

/// A thread that drops what it is sent.
pub(crate) struct Reclaimer {
    tx: Mutex<Option<mpsc::Sender<Vec<Retired>>>>,
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
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Drops `batch` on the reclaimer thread (inline once stopped).
    pub(crate) fn retire(&self, batch: Vec<Retired>) {
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

    /// Stops the thread; returns it to be joined.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
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
