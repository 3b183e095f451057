//! [`LatestBridge`]: the churn run's consumer for all three bridge roles,
//! keeping only the latest state and checking every event against it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use provisioning_provider_api::{ProviderId, TopologyView};

use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope, TopologyEnvelope};
use provisioning_watch_hub::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};

/// A bridge for all three roles that keeps only the latest state: the last
/// snapshot's hash and provider, and the member set rebuilt from remoting
/// events. Checks `seq_no` order and that every event fits.
#[derive(Debug, Default)]
pub struct LatestBridge {
    state: Mutex<LatestState>,
}

/// What a [`LatestBridge`] holds.
#[derive(Debug, Default)]
pub struct LatestState {
    /// Hash of the last snapshot (snapshot roles).
    pub hash: Option<u64>,
    /// Provider of the last snapshot.
    pub provider: Option<ProviderId>,
    /// The set rebuilt from remoting events.
    pub view: TopologyView,
    /// Hash of the snapshot the last remoting event belonged to.
    pub view_hash: Option<u64>,
    /// Envelopes received.
    pub received: u64,
    /// The first violations (at most 32 kept), and how many in all.
    pub violations: Vec<String>,
    /// Number of violations.
    pub violation_count: u64,
    last_seq_no: u64,
}

impl LatestState {
    fn seq(&mut self, seq_no: u64, what: &str) {
        self.received += 1;
        if seq_no <= self.last_seq_no {
            self.violation(format!("{what} seq_no {seq_no} after {}", self.last_seq_no));
        }
        self.last_seq_no = seq_no;
    }

    fn violation(&mut self, v: String) {
        self.violation_count += 1;
        if self.violations.len() < 32 {
            self.violations.push(v);
        }
    }
}

impl LatestBridge {
    /// A new bridge.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Its state.
    pub fn state(&self) -> MutexGuard<'_, LatestState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self, e: &SnapshotEnvelope) {
        let mut s = self.state();
        s.seq(e.seq_no(), "snapshot");
        s.hash = Some(e.hash());
        s.provider = Some(e.provider_id().clone());
    }

    fn resynced(&self, e: &SnapshotEnvelope) {
        let mut s = self.state();
        s.last_seq_no = e.seq_no();
        s.hash = Some(e.hash());
        s.provider = Some(e.provider_id().clone());
        s.view = TopologyView::from_snapshot(e.snapshot());
        s.view_hash = Some(e.hash());
    }
}

impl PlacementSupervisorBridge for LatestBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.snapshot(envelope);
    }
    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        self.state().seq(envelope.seq_no, "provider_changed");
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.resynced(envelope);
    }
}

impl PartitionManagerBridge for LatestBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.snapshot(envelope);
    }
    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        self.state().seq(envelope.seq_no, "provider_changed");
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.resynced(envelope);
    }
}

impl RemotingBridge for LatestBridge {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        let mut s = self.state();
        s.seq(envelope.seq_no, "remote_topology");
        if let Err(e) = s.view.apply(&envelope.event) {
            s.violation(format!("seq_no {}: {e}", envelope.seq_no));
        }
        s.view_hash = Some(envelope.snapshot_hash());
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.resynced(envelope);
    }
}
