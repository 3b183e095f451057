//! [`Fanout`]: the delivery engine's one door — the state shared between
//! the hub, its handles and the consumers (latest snapshot, retained lines,
//! consumer queues, history) and the threads that deliver it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use provisioning_provider_api::ProviderId;
use tokio::sync::watch;

use super::bridge_crew::BridgeCrew;
use super::bridge_target::BridgeTarget;
use super::bridge_work::BridgeWork;
use super::consumer_cursor::ConsumerCursor;
use super::consumer_slot::{ConsumerKind, ConsumerSlot, ConsumerStats};
use super::event_history::EventHistory;
use super::notifier::Notifier;
use super::publication::Publication;
use super::reclaimer::{Reclaimer, Retired};
use super::sync::thread::JoinHandle;
use crate::error::HubError;
use crate::provisioning_event::ProvisioningEvent;
use crate::provisioning_metrics::ProvisioningMetrics;
use crate::published_snapshot::PublishedSnapshot;

/// Terminations retained for late subscribers, one per provider, at most
/// this many providers (the oldest is forgotten first).
const MAX_RETAINED_TERMINATIONS: usize = 256;

/// How a publication changes what is retained for late subscribers.
pub(crate) enum Retain {
    /// A snapshot publication: the new latest snapshot; ends unavailability.
    Snapshot,
    /// A `terminated` line of this provider.
    Terminated(ProviderId),
    /// A healthy `provider_health` line: forget the provider's termination.
    Recovered(ProviderId),
    /// A `provisioning_unavailable` line.
    Unavailable,
    /// Nothing retained.
    Nothing,
}

/// What a consumer gets on a resync.
pub(crate) struct ResyncBundle {
    /// Retained lines older than the snapshot and newer than what the
    /// consumer had.
    pub(crate) before: Vec<Arc<ProvisioningEvent>>,
    /// The current snapshot line.
    pub(crate) snapshot: Option<Arc<ProvisioningEvent>>,
    /// Retained lines newer than the snapshot.
    pub(crate) after: Vec<Arc<ProvisioningEvent>>,
}

/// Where a consumer resuming from `since` starts.
enum Start {
    /// Every line after `since`, from the history.
    Replay {
        since: u64,
        lines: Vec<Arc<ProvisioningEvent>>,
    },
    /// The history no longer reaches back: resync.
    Resync(ResyncBundle),
}

struct FanoutState {
    latest: Option<Arc<ProvisioningEvent>>,
    terminations: BTreeMap<ProviderId, Arc<ProvisioningEvent>>,
    unavailable: Option<Arc<ProvisioningEvent>>,
    consumers: Vec<Arc<ConsumerSlot>>,
    closed: bool,
}

/// Hands each publication to every consumer and wakes them: at once, or,
/// inside a transaction ([`begin_transaction`](Self::begin_transaction)),
/// at its end or at a [`flush`](Self::flush).
pub(crate) struct Fanout {
    state: Mutex<FanoutState>,
    topology: Mutex<Option<watch::Sender<Option<Arc<PublishedSnapshot>>>>>,
    pub(crate) history: EventHistory,
    pub(crate) metrics: ProvisioningMetrics,
    pub(crate) queue_capacity: usize,
    reclaimer: Reclaimer,
    notifier: Notifier,
    crew: BridgeCrew<BridgeWork>,
}

impl Fanout {
    pub(crate) fn new(
        history: EventHistory,
        metrics: ProvisioningMetrics,
        queue_capacity: usize,
    ) -> Result<Self, HubError> {
        let reclaimer = Reclaimer::start().map_err(|source| HubError::Spawn { source })?;
        let notifier = Notifier::start().map_err(|source| HubError::Spawn { source })?;
        Ok(Self {
            state: Mutex::new(FanoutState {
                latest: None,
                terminations: BTreeMap::new(),
                unavailable: None,
                consumers: Vec::new(),
                closed: false,
            }),
            topology: Mutex::new(Some(watch::Sender::new(None))),
            history,
            metrics,
            queue_capacity,
            reclaimer,
            notifier,
            crew: BridgeCrew::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, FanoutState> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `publication` to every consumer queue, the history and (for a
    /// snapshot) the latest-topology channel, and wakes the consumers
    /// unless a transaction is open. Never waits for a consumer.
    pub(crate) fn publish(
        &self,
        publication: Publication,
        retain: Retain,
        mut retired: Vec<Retired>,
    ) {
        let publication = Arc::new(publication);
        let first = publication.lines().first().cloned();
        let snapshot = first.as_ref().and_then(|line| line.as_snapshot()).cloned();
        let mut evicted = Vec::new();
        let queued = {
            let mut state = self.state();
            if let Some(line) = first {
                match retain {
                    Retain::Snapshot => {
                        if let Some(old) = state.latest.replace(line) {
                            retired.push(Retired::Event(old));
                        }
                        if let Some(old) = state.unavailable.take() {
                            retired.push(Retired::Event(old));
                        }
                    }
                    Retain::Terminated(provider) => {
                        state.terminations.insert(provider, line);
                        if state.terminations.len() > MAX_RETAINED_TERMINATIONS
                            && let Some(oldest) = state
                                .terminations
                                .iter()
                                .min_by_key(|(_, line)| line.seq_no())
                                .map(|(id, _)| id.clone())
                        {
                            state.terminations.remove(&oldest);
                        }
                    }
                    Retain::Recovered(provider) => {
                        state.terminations.remove(&provider);
                    }
                    Retain::Unavailable => {
                        if let Some(old) = state.unavailable.replace(line) {
                            retired.push(Retired::Event(old));
                        }
                    }
                    Retain::Nothing => {}
                }
            }
            // The history changes together with the queues, so a consumer
            // that starts from the history neither misses nor repeats a line.
            self.history.push(publication.clone(), &mut evicted);
            publication.arm(state.consumers.len());
            // A closed slot acknowledges and is forgotten.
            state.consumers.retain(|slot| slot.push(&publication));
            self.notifier.enqueue(state.consumers.iter())
        };

        if let Some(snapshot) = snapshot
            && let Some(sender) = self
                .topology
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
            && let Some(old) = sender.send_replace(Some(snapshot))
        {
            retired.push(Retired::Snapshot(old));
        }
        retired.extend(evicted.into_iter().map(Retired::Publication));
        // Wake-ups last, once every queue has the publication; the
        // consumers' (or the notifier thread's, in a burst) before the
        // reclaimer's.
        if queued {
            self.notifier.flush();
        }
        self.retire(retired);
    }

    /// Opens a transaction: publications are queued, and their consumers
    /// woken once, when the last open transaction ends (or at a
    /// [`flush`](Self::flush)). Several lines published in a row (a health
    /// line, `provider_changed`, the new snapshot) then reach each bridge
    /// in one wake-up, and the first wake-up does not compete with the rest
    /// of the work for the CPU. The reclaimer keeps its first full batch
    /// meanwhile, so its thread is woken after the consumers' wake-ups are
    /// made (or, in a burst, handed to the notifier thread).
    pub(crate) fn begin_transaction(&self) {
        self.notifier.hold();
    }

    /// Ends one [`begin_transaction`](Self::begin_transaction); the last one
    /// wakes the consumers of what was published meanwhile, then hands the
    /// reclaimer the batch it kept. (Should waking panic, the kept batch
    /// goes with the next retirement or flush: the notifier's hold is the
    /// only state.)
    pub(crate) fn end_transaction(&self) {
        self.notifier.release();
        if !self.notifier.holding() {
            self.reclaimer.hand_over();
        }
    }

    /// Wakes the consumers of everything published so far, inside a
    /// transaction too (which stays open), then the reclaimer.
    pub(crate) fn flush(&self) {
        self.notifier.flush_held();
        self.reclaimer.hand_over();
    }

    pub(crate) fn retire(&self, retired: Vec<Retired>) {
        self.reclaimer.retire(retired, self.notifier.holding());
    }

    pub(crate) fn resync_bundle(&self, after_seq: u64) -> ResyncBundle {
        Self::bundle(&self.state(), after_seq)
    }

    fn bundle(state: &FanoutState, after_seq: u64) -> ResyncBundle {
        let snapshot = state.latest.clone();
        let mut retained = Self::retained_of(state);
        // Without a snapshot there is no resync line to reset the consumer,
        // so only lines it has not seen may follow.
        let snapshot_seq = snapshot.as_ref().map_or(after_seq, |line| line.seq_no());
        let split = retained.partition_point(|line| line.seq_no() < snapshot_seq);
        let mut after = retained.split_off(split);
        after.retain(|line| line.seq_no() > snapshot_seq);
        retained.retain(|line| line.seq_no() > after_seq);
        ResyncBundle {
            before: retained,
            snapshot,
            after,
        }
    }

    pub(crate) fn latest(&self) -> Option<Arc<PublishedSnapshot>> {
        self.state()
            .latest
            .as_ref()
            .and_then(|line| line.as_snapshot())
            .cloned()
    }

    pub(crate) fn retained(&self) -> Vec<Arc<ProvisioningEvent>> {
        Self::retained_of(&self.state())
    }

    /// The lines kept for late subscribers, in `seq_no` order.
    fn retained_of(state: &FanoutState) -> Vec<Arc<ProvisioningEvent>> {
        let mut lines: Vec<_> = state
            .terminations
            .values()
            .chain(state.unavailable.iter())
            .cloned()
            .collect();
        lines.sort_by_key(|line| line.seq_no());
        lines
    }

    pub(crate) fn is_unavailable(&self) -> bool {
        self.state().unavailable.is_some()
    }

    pub(crate) fn subscribe_topology(&self) -> watch::Receiver<Option<Arc<PublishedSnapshot>>> {
        match self
            .topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(sender) => sender.subscribe(),
            // Shut down: a receiver whose sender is already gone.
            None => watch::channel(self.latest()).1,
        }
    }

    /// Attaches a bridge, served by the bridge crew (one more crew thread);
    /// it starts with the retained lines and `resync` with the current
    /// snapshot.
    pub(crate) fn attach_bridge(
        self: &Arc<Self>,
        name: String,
        kind: ConsumerKind,
        target: BridgeTarget,
    ) -> Result<(), HubError> {
        let slot = Arc::new(ConsumerSlot::new(name, kind, self.queue_capacity));
        let mut cursor = ConsumerCursor::new(slot.clone(), self.clone());
        cursor.seed(self.add_consumer(slot.clone())?);
        // On failure the cursor was dropped, which closed the slot.
        self.crew
            .join(
                slot.name().to_owned(),
                BridgeWork { target, cursor },
                |link| slot.link_crew(link),
            )
            .map_err(|source| HubError::Spawn { source })
    }

    /// Attaches an event-stream consumer, returned as the cursor its
    /// subscription reads. It starts after `since` when given (from the
    /// history, or with a resync when the history no longer reaches back),
    /// else with the retained lines and `resync` with the current snapshot
    /// — without the retained lines older than that snapshot when
    /// `from_snapshot`.
    pub(crate) fn attach_stream(
        self: &Arc<Self>,
        name: String,
        since: Option<u64>,
        from_snapshot: bool,
    ) -> Result<ConsumerCursor, HubError> {
        let slot = Arc::new(ConsumerSlot::new(
            name,
            ConsumerKind::EventStream,
            self.queue_capacity,
        ));
        let mut cursor = ConsumerCursor::new(slot.clone(), self.clone());
        match since {
            Some(since) => match self.add_consumer_since(slot, since)? {
                Start::Replay { since, lines } => cursor.seed_replay(since, lines),
                Start::Resync(bundle) => cursor.seed(bundle),
            },
            None => {
                let mut bundle = self.add_consumer(slot)?;
                if from_snapshot && bundle.snapshot.is_some() {
                    bundle.before.clear();
                }
                cursor.seed(bundle);
            }
        }
        Ok(cursor)
    }

    /// Registers a consumer slot and returns what it starts with (retained
    /// lines, the current snapshot), taken atomically with the registration
    /// so that no publication is missed or seen twice.
    fn add_consumer(&self, slot: Arc<ConsumerSlot>) -> Result<ResyncBundle, HubError> {
        let mut state = self.state();
        if state.closed {
            return Err(HubError::ShutDown);
        }
        state.consumers.push(slot);
        Ok(Self::bundle(&state, 0))
    }

    /// Registers a consumer that resumes after `since`: the history's lines
    /// after it if the history still holds them, else the resync start.
    fn add_consumer_since(&self, slot: Arc<ConsumerSlot>, since: u64) -> Result<Start, HubError> {
        let mut state = self.state();
        if state.closed {
            return Err(HubError::ShutDown);
        }
        state.consumers.push(slot);
        Ok(match self.history.since(since) {
            Ok(lines) => Start::Replay { since, lines },
            Err(_) => Start::Resync(Self::bundle(&state, 0)),
        })
    }

    pub(crate) fn consumers(&self) -> Vec<ConsumerStats> {
        let slots: Vec<_> = self.state().consumers.clone();
        slots.iter().map(|slot| slot.stats()).collect()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Closes every consumer queue and the topology channel, then waits up to
    /// `timeout` for the threads.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<(), HubError> {
        let workers = self.stop();
        let deadline = Instant::now() + timeout;
        let finished = |worker: JoinHandle<()>| {
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if worker.is_finished() {
                // A bridge's panics are caught per call; a join error would
                // only repeat what was already reported.
                let _ = worker.join();
                true
            } else {
                false
            }
        };
        let mut stuck = Vec::new();
        // Every thread is waited for (and joined if it ends in time).
        let crew_running = workers
            .crew
            .into_iter()
            .map(finished)
            .filter(|done| !done)
            .count();
        if crew_running > 0 {
            // The bridges not yet through their queue: one is inside a call.
            stuck.extend(self.crew.unfinished());
        }
        for (name, worker) in workers.others {
            if !finished(worker) {
                stuck.push(name.to_owned());
            }
        }
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(HubError::ShutdownTimedOut { consumers: stuck })
        }
    }

    /// Closes without waiting (when the hub is dropped).
    pub(crate) fn close(&self) {
        drop(self.stop());
    }

    /// Closes every consumer queue and the topology channel and lets the
    /// threads end; returns them to be joined.
    fn stop(&self) -> Workers {
        let slots = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.consumers)
        };
        for slot in &slots {
            slot.close();
        }
        self.topology
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Workers {
            crew: self.crew.stop(),
            others: [
                ("reclaimer", self.reclaimer.stop()),
                ("notifier", self.notifier.stop()),
            ]
            .into_iter()
            .filter_map(|(name, worker)| Some((name, worker?)))
            .collect(),
        }
    }
}

/// The threads a [`Fanout::stop`] lets end.
struct Workers {
    crew: Vec<JoinHandle<()>>,
    others: Vec<(&'static str, JoinHandle<()>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::test_publications::{pid, snapshot, terminated, unavailable};

    #[test]
    fn resync_bundle_splits_retained_lines_around_the_snapshot() {
        let history = EventHistory::new(16, 1000);
        let fanout = Fanout::new(history, ProvisioningMetrics::new(), 4).unwrap();
        fanout.publish(terminated(1, "a"), Retain::Terminated(pid("a")), Vec::new());
        fanout.publish(snapshot(2, "b"), Retain::Snapshot, Vec::new());
        fanout.publish(terminated(3, "c"), Retain::Terminated(pid("c")), Vec::new());
        fanout.publish(unavailable(4, 7), Retain::Unavailable, Vec::new());

        let seqs =
            |lines: &[Arc<ProvisioningEvent>]| lines.iter().map(|l| l.seq_no()).collect::<Vec<_>>();
        let fresh = fanout.resync_bundle(0);
        assert_eq!(seqs(&fresh.before), [1]);
        assert_eq!(fresh.snapshot.as_ref().map(|s| s.seq_no()), Some(2));
        assert_eq!(seqs(&fresh.after), [3, 4]);
        // A consumer that had seen line 1 does not get it again before the
        // resync; lines after the snapshot always follow it.
        let lagging = fanout.resync_bundle(1);
        assert!(lagging.before.is_empty());
        assert_eq!(seqs(&lagging.after), [3, 4]);
        // The next snapshot ends the unavailability.
        fanout.publish(snapshot(5, "b"), Retain::Snapshot, Vec::new());
        assert!(!fanout.is_unavailable());
        assert_eq!(seqs(&fanout.retained()), [1, 3]);
        fanout.shutdown(std::time::Duration::from_secs(5)).unwrap();
    }
}
