//! [`Reclaimer`]: drops retired snapshots off the publishing path.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use super::publication::Publication;
use super::sync::thread::{self, JoinHandle};
use provisioning_provider_api::ProviderSnapshot;

use crate::provisioning_event::ProvisioningEvent;
use crate::published_snapshot::PublishedSnapshot;

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
/// Batches waiting for the reclaimer thread before the hub frees inline.
const QUEUED_BATCHES: usize = 4;

#[derive(Default)]
struct Pending {
    items: Vec<Retired>,
    weight: usize,
    /// A full batch kept while the hub holds its wake-ups (see
    /// [`Reclaimer::retire`]).
    ready: Option<Vec<Retired>>,
}

/// A thread that drops what it is sent.
pub(crate) struct Reclaimer {
    tx: Mutex<Option<mpsc::SyncSender<Vec<Retired>>>>,
    pending: Mutex<Pending>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Reclaimer {
    pub(crate) fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Vec<Retired>>(QUEUED_BATCHES);
        let thread = thread::spawn("watch-hub-reclaim".into(), move || {
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
    ///
    /// While `holding` (the hub holds its consumers' wake-ups until the
    /// driver's step ends), the first batch that fills is kept until
    /// [`hand_over`](Self::hand_over), so that the reclaimer thread is not
    /// woken, and does not take a vCPU, before the consumers of what the
    /// step published. Only one is kept: a second one sends both, so what
    /// waits is bounded by the channel as before.
    pub(crate) fn retire(&self, retired: Vec<Retired>, holding: bool) {
        let batches = {
            let mut pending = self.pending();
            for item in retired {
                if item.is_last() {
                    pending.weight += item.weight();
                    pending.items.push(item);
                }
            }
            let full = pending.weight >= BATCH_WEIGHT || pending.items.len() >= BATCH_ITEMS;
            let batch = full.then(|| {
                pending.weight = 0;
                std::mem::take(&mut pending.items)
            });
            match (batch, pending.ready.take()) {
                (Some(batch), None) if holding => {
                    pending.ready = Some(batch);
                    return;
                }
                (batch, ready) => [ready, batch],
            }
        };
        batches
            .into_iter()
            .flatten()
            .for_each(|batch| self.send(batch));
    }

    /// Sends the kept batch, if any (the consumers have been woken).
    pub(crate) fn hand_over(&self) {
        let ready = self.pending().ready.take();
        if let Some(batch) = ready {
            self.send(batch);
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, batch: Vec<Retired>) {
        if batch.is_empty() {
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let rejected = match tx.as_ref() {
            // Full: the reclaimer is behind, so the hub frees this batch
            // itself, which bounds the memory waiting to be freed and slows
            // publishing to the rate memory can be freed. Disconnected: the
            // thread is gone.
            Some(tx) => tx.try_send(batch).err().map(|e| match e {
                mpsc::TrySendError::Full(batch) | mpsc::TrySendError::Disconnected(batch) => batch,
            }),
            None => Some(batch),
        };
        drop(tx);
        drop(rejected);
    }

    /// Stops the thread after the pending batch; returns it to be joined.
    pub(crate) fn stop(&self) -> Option<JoinHandle<()>> {
        let (ready, batch) = {
            let mut pending = self.pending();
            (pending.ready.take(), std::mem::take(&mut pending.items))
        };
        ready.into_iter().for_each(|batch| self.send(batch));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_id::RunId;
    use provisioning_provider_api::ProviderId;
    use std::time::{Duration, Instant};

    fn snapshot() -> Arc<PublishedSnapshot> {
        Arc::new(PublishedSnapshot::new(
            RunId::from_u64(1),
            1,
            1,
            ProviderId::new("a").unwrap(),
            ProviderSnapshot::empty(),
        ))
    }

    fn gone_within(weak: &std::sync::Weak<PublishedSnapshot>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while weak.strong_count() > 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    #[test]
    fn batches_what_it_owns_and_frees_it_on_its_thread_or_at_stop() {
        let reclaimer = Reclaimer::start().unwrap();
        let shared = snapshot();
        let kept = shared.clone();
        reclaimer.retire(vec![Retired::Snapshot(shared)], false);
        assert_eq!(
            Arc::strong_count(&kept),
            1,
            "a shared item is only released"
        );

        let owned = snapshot();
        let weak = Arc::downgrade(&owned);
        reclaimer.retire(vec![Retired::Snapshot(owned)], false);
        assert_eq!(weak.strong_count(), 1, "held in the pending batch");
        // A full batch goes to the thread.
        reclaimer.retire(
            (0..BATCH_ITEMS)
                .map(|_| Retired::Snapshot(snapshot()))
                .collect(),
            false,
        );
        assert!(gone_within(&weak, Duration::from_secs(2)));

        let owned = snapshot();
        let weak = Arc::downgrade(&owned);
        reclaimer.retire(vec![Retired::Snapshot(owned)], false);
        let thread = reclaimer.stop().expect("the thread");
        thread.join().unwrap();
        assert_eq!(weak.strong_count(), 0, "the pending batch is freed at stop");
        // After the stop, retiring frees inline.
        let owned = snapshot();
        let weak = Arc::downgrade(&owned);
        reclaimer.retire(
            (0..BATCH_ITEMS)
                .map(|_| Retired::Snapshot(snapshot()))
                .collect(),
            false,
        );
        reclaimer.retire(vec![Retired::Snapshot(owned)], false);
        reclaimer.retire(
            (0..BATCH_ITEMS)
                .map(|_| Retired::Snapshot(snapshot()))
                .collect(),
            false,
        );
        assert_eq!(weak.strong_count(), 0);
    }

    #[test]
    fn while_holding_the_first_full_batch_waits_for_the_hand_over() {
        let reclaimer = Reclaimer::start().unwrap();
        let full_batch = |first: Arc<PublishedSnapshot>| -> Vec<Retired> {
            std::iter::once(Retired::Snapshot(first))
                .chain((1..BATCH_ITEMS).map(|_| Retired::Snapshot(snapshot())))
                .collect()
        };
        let owned = snapshot();
        let weak = Arc::downgrade(&owned);
        reclaimer.retire(full_batch(owned), true);
        assert!(reclaimer.pending().ready.is_some(), "kept while holding");
        assert_eq!(weak.strong_count(), 1);
        reclaimer.hand_over();
        assert!(reclaimer.pending().ready.is_none());
        assert!(gone_within(&weak, Duration::from_secs(2)));

        // A second full batch while holding sends both.
        let (first, second) = (snapshot(), snapshot());
        let (weak_first, weak_second) = (Arc::downgrade(&first), Arc::downgrade(&second));
        reclaimer.retire(full_batch(first), true);
        assert_eq!(weak_first.strong_count(), 1);
        reclaimer.retire(full_batch(second), true);
        assert!(
            reclaimer.pending().ready.is_none(),
            "one batch at most is kept"
        );
        assert!(gone_within(&weak_first, Duration::from_secs(2)));
        assert!(gone_within(&weak_second, Duration::from_secs(2)));

        // A retirement after the hub stopped holding sends a kept batch.
        let owned = snapshot();
        let weak = Arc::downgrade(&owned);
        reclaimer.retire(full_batch(owned), true);
        reclaimer.retire(Vec::new(), false);
        assert!(gone_within(&weak, Duration::from_secs(2)));

        // A kept batch is freed at stop.
        let owned = snapshot();
        let weak = Arc::downgrade(&owned);
        reclaimer.retire(full_batch(owned), true);
        reclaimer.stop().expect("the thread").join().unwrap();
        assert_eq!(weak.strong_count(), 0, "freed at stop");
    }
}
