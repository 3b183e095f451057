//! [`DedupBridge`]: the default adapter that drops duplicate and stale
//! envelopes by `seq_no` and resets on `resync`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::bridges::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};
use crate::line_payloads::{ChangeEnvelope, TopologyEnvelope};
use crate::published_snapshot::SnapshotEnvelope;
use crate::run_id::RunId;
use crate::seq_filter::SeqFilter;

/// Wraps a bridge so it sees every `seq_no` at most once and never an older
/// one after a newer one (delivery is at-least-once: a bridge fed twice, or
/// by a replay, stays idempotent). A `resync` resets the mark to the
/// re-sent snapshot's `seq_no`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use provisioning_watch_hub::wire::{ChangeEnvelope, PublishedSnapshot, RunId, SnapshotEnvelope};
/// use provisioning_watch_hub::{DedupBridge, PlacementSupervisorBridge};
/// # use provisioning_provider_api::{ProviderId, ProviderSnapshot};
/// struct Count(Mutex<u32>);
/// impl PlacementSupervisorBridge for Count {
///     fn apply_snapshot(&self, _: &SnapshotEnvelope) { *self.0.lock().unwrap() += 1 }
///     fn provider_changed(&self, _: &ChangeEnvelope) {}
/// }
/// let bridge = DedupBridge::new(Count(Mutex::new(0)));
/// let snapshot: SnapshotEnvelope = Arc::new(PublishedSnapshot::new(
///     RunId::from_u64(1), 5, 1, ProviderId::new("a")?, ProviderSnapshot::empty()));
/// bridge.apply_snapshot(&snapshot);
/// bridge.apply_snapshot(&snapshot); // duplicate: dropped
/// assert_eq!(*bridge.inner().0.lock().unwrap(), 1);
/// assert_eq!(bridge.dropped(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DedupBridge<B> {
    inner: B,
    filter: Mutex<SeqFilter>,
    dropped: AtomicU64,
}

impl<B> DedupBridge<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            filter: Mutex::new(SeqFilter::new()),
            dropped: AtomicU64::new(0),
        }
    }

    /// The wrapped bridge.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Envelopes dropped as duplicate or stale.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The current high-water mark.
    pub fn high_water_mark(&self) -> Option<(RunId, u64)> {
        self.filter().high_water_mark()
    }

    fn filter(&self) -> std::sync::MutexGuard<'_, SeqFilter> {
        // A SeqFilter is a plain value; a poisoned lock still holds a valid one.
        self.filter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn accept(&self, run_id: RunId, seq_no: u64) -> bool {
        let accepted = self.filter().accept(run_id, seq_no);
        if !accepted {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        accepted
    }

    fn reset(&self, run_id: RunId, seq_no: u64) {
        self.filter().reset(run_id, seq_no);
    }
}

impl<B: PlacementSupervisorBridge> PlacementSupervisorBridge for DedupBridge<B> {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        if self.accept(envelope.run_id(), envelope.seq_no()) {
            self.inner.apply_snapshot(envelope);
        }
    }

    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        if self.accept(envelope.run_id, envelope.seq_no) {
            self.inner.provider_changed(envelope);
        }
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.reset(envelope.run_id(), envelope.seq_no());
        PlacementSupervisorBridge::resync(&self.inner, envelope);
    }
}

impl<B: PartitionManagerBridge> PartitionManagerBridge for DedupBridge<B> {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        if self.accept(envelope.run_id(), envelope.seq_no()) {
            self.inner.apply_snapshot(envelope);
        }
    }

    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        if self.accept(envelope.run_id, envelope.seq_no) {
            self.inner.provider_changed(envelope);
        }
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.reset(envelope.run_id(), envelope.seq_no());
        PartitionManagerBridge::resync(&self.inner, envelope);
    }
}

impl<B: RemotingBridge> RemotingBridge for DedupBridge<B> {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        if self.accept(envelope.snapshot.run_id(), envelope.seq_no) {
            self.inner.publish_remote_topology(envelope);
        }
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.reset(envelope.run_id(), envelope.seq_no());
        RemotingBridge::resync(&self.inner, envelope);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use provisioning_provider_api::{
        ClusterNode, Incarnation, MemberState, ProviderId, ProviderSnapshot, RemoteTopologyEvent,
        TopologyEventKind,
    };

    use super::*;
    use crate::published_snapshot::PublishedSnapshot;

    #[derive(Default)]
    struct Kinds(Mutex<Vec<TopologyEventKind>>);

    impl RemotingBridge for Kinds {
        fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(envelope.event.kind());
        }

        fn resync(&self, _: &SnapshotEnvelope) {}
    }

    #[test]
    fn lifecycle_changes_pass_once_in_seq_order() {
        let node = ClusterNode::new("n1", "h", 1)
            .with_incarnation(Incarnation::new("u-1").unwrap())
            .with_state(MemberState::Draining);
        let view = ProviderSnapshot::new(vec![node.clone()], vec![]).unwrap();
        let snapshot = Arc::new(PublishedSnapshot::new(
            RunId::from_u64(1),
            4,
            1,
            ProviderId::new("a").unwrap(),
            view,
        ));
        let envelope = |seq_no, event| TopologyEnvelope {
            seq_no,
            event,
            snapshot: snapshot.clone(),
        };
        let draining = envelope(5, RemoteTopologyEvent::Draining(node.clone()));
        let serving = envelope(
            6,
            RemoteTopologyEvent::Serving(node.with_state(MemberState::Serving)),
        );
        let bridge = DedupBridge::new(Kinds::default());
        bridge.publish_remote_topology(&draining);
        bridge.publish_remote_topology(&serving);
        // Redelivered (at-least-once) and stale: dropped.
        bridge.publish_remote_topology(&serving);
        bridge.publish_remote_topology(&draining);
        assert_eq!(
            *bridge.inner().0.lock().unwrap(),
            [TopologyEventKind::Draining, TopologyEventKind::Serving]
        );
        assert_eq!(bridge.dropped(), 2);
        // The seq filter treats their lines as any other.
        let mut filter = SeqFilter::new();
        let line = crate::provisioning_event::ProvisioningEvent::RemoteTopology(draining);
        assert!(filter.accept_event(&line));
        assert!(!filter.accept_event(&line));
    }
}
