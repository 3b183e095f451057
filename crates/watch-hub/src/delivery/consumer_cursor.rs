//! [`ConsumerCursor`]: turns a consumer's queue into the ordered lines it
//! must see, applying the resync rule of CONTRACTS §3.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::consumer_slot::ConsumerSlot;
use super::fanout::{Fanout, ResyncBundle};
use super::publication::Publication;
use crate::provisioning_event::ProvisioningEvent;

/// What a consumer gets next.
pub(crate) enum Delivery {
    /// A published line.
    Line(Arc<ProvisioningEvent>),
    /// `resync` followed by this snapshot line (a fresh start).
    Resync(Arc<ProvisioningEvent>),
}

pub(crate) enum Next {
    Item(Delivery),
    Empty,
    Closed,
}

/// The consumer side of a [`ConsumerSlot`]: hands out lines in `seq_no`
/// order, one publication at a time, and acknowledges each publication once
/// the consumer asks for the next item (so the latency metric covers the
/// consumer's own work).
pub(crate) struct ConsumerCursor {
    pub(crate) slot: Arc<ConsumerSlot>,
    fanout: Arc<Fanout>,
    /// The highest `seq_no` handed out (the resync's snapshot after a resync).
    last_seq: u64,
    current: Option<(Arc<Publication>, usize)>,
    pending: VecDeque<Delivery>,
}

enum Popped {
    Resync,
    Item(Arc<Publication>),
    Empty,
    Closed,
}

impl ConsumerCursor {
    pub(crate) fn new(slot: Arc<ConsumerSlot>, fanout: Arc<Fanout>) -> Self {
        Self {
            slot,
            fanout,
            last_seq: 0,
            current: None,
            pending: VecDeque::new(),
        }
    }

    pub(crate) fn next(&mut self) -> Next {
        loop {
            if let Some(delivery) = self.pending.pop_front() {
                return Next::Item(delivery);
            }
            if let Some((publication, index)) = &mut self.current {
                if let Some(line) = publication.lines().get(*index) {
                    let line = line.clone();
                    *index += 1;
                    self.last_seq = line.seq_no();
                    return Next::Item(Delivery::Line(line));
                }
                publication.ack();
                self.current = None;
            }
            let popped = {
                let mut queue = self.slot.lock();
                if queue.resync && !queue.closed {
                    queue.resync = false;
                    Popped::Resync
                } else if let Some(publication) = queue.items.pop_front() {
                    Popped::Item(publication)
                } else if queue.closed {
                    Popped::Closed
                } else {
                    Popped::Empty
                }
            };
            match popped {
                Popped::Closed => return Next::Closed,
                Popped::Empty => return Next::Empty,
                Popped::Resync => self.begin_resync(),
                Popped::Item(publication) => {
                    if publication.first_seq() <= self.last_seq {
                        // Covered by a resync already delivered.
                        publication.ack();
                    } else {
                        self.current = Some((publication, 0));
                    }
                }
            }
        }
    }

    /// Queues the retained lines the consumer has not seen, `resync` with the
    /// current snapshot, and the retained lines newer than that snapshot.
    fn begin_resync(&mut self) {
        let bundle = self.fanout.resync_bundle(self.last_seq);
        self.seed(bundle);
    }

    /// Queues what a resync (or the attach) hands out first.
    pub(crate) fn seed(&mut self, bundle: ResyncBundle) {
        self.pending
            .extend(bundle.before.into_iter().map(Delivery::Line));
        let mut last = self.last_seq;
        if let Some(snapshot) = bundle.snapshot {
            last = snapshot.seq_no();
            self.slot.resyncs.fetch_add(1, Ordering::Relaxed);
            self.pending.push_back(Delivery::Resync(snapshot));
        }
        for line in bundle.after {
            last = last.max(line.seq_no());
            self.pending.push_back(Delivery::Line(line));
        }
        if let Some(Delivery::Line(line)) = self.pending.back() {
            last = last.max(line.seq_no());
        }
        self.last_seq = last;
    }

    /// Queues the history's lines after `since` (a resumed consumer).
    pub(crate) fn seed_replay(&mut self, since: u64, lines: Vec<Arc<ProvisioningEvent>>) {
        self.last_seq = lines.last().map_or(since, |line| line.seq_no());
        self.pending.extend(lines.into_iter().map(Delivery::Line));
    }

    /// The subscriber's task registers before it returns `Pending`.
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.slot.register(waker);
    }

    /// Counts one line handed to the consumer.
    pub(crate) fn count_delivered(&self) {
        self.slot.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// The consumer's counters.
    pub(crate) fn stats(&self) -> super::ConsumerStats {
        self.slot.stats()
    }

    /// After a failed delivery: drop what is in flight and start again from
    /// the current snapshot.
    pub(crate) fn force_resync(&mut self) {
        if let Some((publication, _)) = self.current.take() {
            publication.ack();
        }
        self.pending.clear();
        self.slot.request_resync();
    }
}

impl Drop for ConsumerCursor {
    fn drop(&mut self) {
        if let Some((publication, _)) = self.current.take() {
            publication.ack();
        }
        self.slot.close_and_drain();
    }
}
