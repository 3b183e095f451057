//! [`Recorder`]: a bridge that records what it receives.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use provisioning_provider_api::{ProviderId, TopologyView};
use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope, TopologyEnvelope};
use provisioning_watch_hub::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};

/// What a [`Recorder`] has seen.
#[derive(Debug, Default)]
pub struct RecorderState {
    /// Every snapshot envelope (placement / partition roles), in order.
    pub snapshots: Vec<SnapshotEnvelope>,
    /// Every `provider_changed` envelope, in order.
    pub changes: Vec<ChangeEnvelope>,
    /// Every remote-topology envelope (remoting role), in order.
    pub topology: Vec<TopologyEnvelope>,
    /// Resyncs received.
    pub resyncs: u64,
    /// Members and block list rebuilt from the remoting events.
    pub view: TopologyView,
    /// Hash of the snapshot the last remoting event belonged to.
    pub view_hash: Option<u64>,
    /// Events that did not fit the rebuilt view, or a `seq_no` that did not
    /// increase: must stay empty.
    pub violations: Vec<String>,
    last_seq_no: u64,
}

/// A bridge for all three roles that records every envelope, rebuilds the
/// member and block sets from the remoting events (strictly: an event that
/// does not fit is a violation) and checks that `seq_no` strictly increases.
#[derive(Debug, Default)]
pub struct Recorder {
    state: Mutex<RecorderState>,
}

impl Recorder {
    /// A new, empty recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The recorded state.
    pub fn state(&self) -> MutexGuard<'_, RecorderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last snapshot received, if any.
    pub fn last_snapshot(&self) -> Option<SnapshotEnvelope> {
        self.state().snapshots.last().cloned()
    }

    /// Hash of the last snapshot received (snapshot roles) or of the view
    /// the remoting events built (remoting role).
    pub fn current_hash(&self) -> Option<u64> {
        let state = self.state();
        state.snapshots.last().map(|s| s.hash()).or(state.view_hash)
    }

    /// Waits (polling every 5 ms) until `check` holds or `limit` passes;
    /// returns the time it took, or `None` on timeout.
    pub async fn wait_for(
        &self,
        limit: Duration,
        check: impl Fn(&RecorderState) -> bool,
    ) -> Option<Duration> {
        let started = Instant::now();
        loop {
            if check(&self.state()) {
                return Some(started.elapsed());
            }
            if started.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the last snapshot came from `provider`.
    pub fn on_provider(&self, provider: &ProviderId) -> bool {
        self.last_snapshot()
            .is_some_and(|s| s.provider_id() == provider)
    }

    fn check_seq(state: &mut RecorderState, seq_no: u64, what: &str) {
        if seq_no <= state.last_seq_no {
            state.violations.push(format!(
                "{what} seq_no {seq_no} after {}",
                state.last_seq_no
            ));
        }
        state.last_seq_no = seq_no;
    }

    fn snapshot(&self, envelope: &SnapshotEnvelope) {
        let mut state = self.state();
        Self::check_seq(&mut state, envelope.seq_no(), "snapshot");
        state.snapshots.push(envelope.clone());
    }

    fn resync_view(&self, envelope: &SnapshotEnvelope) {
        let mut state = self.state();
        state.resyncs += 1;
        // After a resync the high-water mark is the re-sent snapshot's.
        state.last_seq_no = envelope.seq_no();
        state.view = TopologyView::from_snapshot(envelope.snapshot());
        state.view_hash = Some(envelope.hash());
    }
}

impl PlacementSupervisorBridge for Recorder {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.snapshot(envelope);
    }

    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        let mut state = self.state();
        Self::check_seq(&mut state, envelope.seq_no, "provider_changed");
        state.changes.push(envelope.clone());
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        let mut state = self.state();
        state.resyncs += 1;
        state.last_seq_no = envelope.seq_no();
        state.snapshots.push(envelope.clone());
    }
}

impl PartitionManagerBridge for Recorder {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        PlacementSupervisorBridge::apply_snapshot(self, envelope);
    }

    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        PlacementSupervisorBridge::provider_changed(self, envelope);
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        PlacementSupervisorBridge::resync(self, envelope);
    }
}

impl RemotingBridge for Recorder {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        let mut state = self.state();
        Self::check_seq(&mut state, envelope.seq_no, "remote_topology");
        if let Err(e) = state.view.apply(&envelope.event) {
            state
                .violations
                .push(format!("seq_no {}: {e}", envelope.seq_no));
        }
        state.view_hash = Some(envelope.snapshot_hash());
        state.topology.push(envelope.clone());
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.resync_view(envelope);
    }
}
