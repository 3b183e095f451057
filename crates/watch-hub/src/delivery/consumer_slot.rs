//! [`ConsumerSlot`]: one consumer's bounded queue, wake-up and counters.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::task::Waker;

use futures::task::AtomicWaker;

use super::bridge_crew::{CrewLink, Wakeup};
use super::publication::Publication;
use super::sync::{AtomicBool, AtomicU64, Mutex, MutexGuard, OnceLock};

/// What kind of consumer a slot feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConsumerKind {
    /// A [`PlacementSupervisorBridge`](crate::PlacementSupervisorBridge).
    Placement,
    /// A [`PartitionManagerBridge`](crate::PartitionManagerBridge).
    Partition,
    /// A [`RemotingBridge`](crate::RemotingBridge).
    Remoting,
    /// An [`EventSubscription`](crate::EventSubscription).
    EventStream,
}

impl ConsumerKind {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placement => "placement",
            Self::Partition => "partition",
            Self::Remoting => "remoting",
            Self::EventStream => "event_stream",
        }
    }
}

/// Counters of one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// The name it was attached with.
    pub name: String,
    /// Its kind.
    pub kind: ConsumerKind,
    /// Lines handed to it (for a bridge: calls made).
    pub delivered: u64,
    /// Resyncs delivered (including the first one on attach).
    pub resyncs: u64,
    /// Queue overflows (each leads to a resync).
    pub overflows: u64,
    /// Panics caught in its bridge calls.
    pub panics: u64,
    /// Publications waiting in its queue.
    pub queued: usize,
}

pub(crate) struct SlotQueue {
    pub(crate) items: VecDeque<Arc<Publication>>,
    pub(crate) resync: bool,
    pub(crate) closed: bool,
}

enum Wake {
    /// A bridge, served by the hub's [`BridgeCrew`](super::bridge_crew::BridgeCrew).
    Crew(OnceLock<CrewLink>),
    Task(AtomicWaker),
}

/// One consumer's bounded queue of publications. The hub pushes without
/// ever waiting for the consumer; on overflow the backlog is dropped and the
/// consumer is flagged for a resync.
pub(crate) struct ConsumerSlot {
    name: String,
    kind: ConsumerKind,
    capacity: usize,
    queue: Mutex<SlotQueue>,
    wake: Wake,
    wake_requested: AtomicBool,
    pub(crate) delivered: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    overflows: AtomicU64,
    pub(crate) panics: AtomicU64,
}

impl ConsumerSlot {
    /// An empty slot; the cursor is seeded with the consumer's start.
    pub(crate) fn new(name: String, kind: ConsumerKind, capacity: usize) -> Self {
        let wake = match kind {
            ConsumerKind::EventStream => Wake::Task(AtomicWaker::new()),
            _ => Wake::Crew(OnceLock::new()),
        };
        Self {
            name,
            kind,
            capacity: capacity.max(1),
            queue: Mutex::new(SlotQueue {
                items: VecDeque::new(),
                resync: false,
                closed: false,
            }),
            wake,
            wake_requested: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            panics: AtomicU64::new(0),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotQueue> {
        // Queue operations never leave it half-changed.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The crew links a bridge's slot to its place in the crew.
    pub(crate) fn link_crew(&self, link: CrewLink) {
        if let Wake::Crew(cell) = &self.wake {
            let _ = cell.set(link);
        }
    }

    /// The subscriber's task registers before it returns `Pending`.
    pub(crate) fn register(&self, waker: &Waker) {
        if let Wake::Task(cell) = &self.wake {
            cell.register(waker);
        }
    }

    /// Marks a wake-up as requested; false when one is pending already.
    pub(crate) fn request_wake(&self) -> bool {
        !self.wake_requested.swap(true, Ordering::AcqRel)
    }

    /// Wakes the consumer: a subscriber's task at once; a bridge is queued
    /// for the crew, which returns the crew thread to unpark once the
    /// caller's other consumers are queued too.
    pub(crate) fn wake(&self) -> Wakeup {
        // A swap, not a store: it synchronises with the publisher whose
        // `request_wake` found a wake-up pending and relies on this one.
        self.wake_requested.swap(false, Ordering::AcqRel);
        match &self.wake {
            Wake::Crew(cell) => cell.get().map_or_else(Wakeup::none, CrewLink::schedule),
            Wake::Task(waker) => {
                waker.wake();
                Wakeup::none()
            }
        }
    }

    /// Enqueues without waiting or waking (the caller wakes once every
    /// queue has its publication); false when the consumer is gone.
    pub(crate) fn push(&self, publication: &Arc<Publication>) -> bool {
        let mut dropped = None;
        {
            let mut queue = self.lock();
            if queue.closed {
                drop(queue);
                publication.ack();
                return false;
            }
            if queue.items.len() >= self.capacity {
                dropped = Some(std::mem::take(&mut queue.items));
                queue.resync = true;
                self.overflows.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    consumer = %self.name,
                    capacity = self.capacity,
                    "watch hub consumer fell behind; it gets a resync"
                );
            }
            queue.items.push_back(publication.clone());
        }
        if let Some(dropped) = dropped {
            for old in dropped {
                old.ack();
            }
        }
        true
    }

    /// Flags a resync (after a panic) and wakes the consumer.
    pub(crate) fn request_resync(&self) {
        self.lock().resync = true;
        self.wake().unpark();
    }

    /// Closes the slot: nothing more is queued; the consumer delivers what
    /// is queued, then ends.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake().unpark();
    }

    /// Closes the slot and drops its backlog (the consumer is gone).
    pub(crate) fn close_and_drain(&self) {
        let dropped = {
            let mut queue = self.lock();
            queue.closed = true;
            std::mem::take(&mut queue.items)
        };
        for old in dropped {
            old.ack();
        }
    }

    pub(crate) fn stats(&self) -> ConsumerStats {
        ConsumerStats {
            name: self.name.clone(),
            kind: self.kind,
            delivered: self.delivered.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            overflows: self.overflows.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            queued: self.lock().items.len(),
        }
    }
}
