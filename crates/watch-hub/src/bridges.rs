//! The consumer traits of the seed: [`PlacementSupervisorBridge`],
//! [`PartitionManagerBridge`] and [`RemotingBridge`].
//!
//! Each attached bridge is fed by its own bounded queue and called by the
//! hub's bridge crew (one thread per bridge, one call at a time per
//! bridge), so a bridge may block, sleep or call back into the service
//! without delaying the others; a panic is caught, counted and followed by
//! a resync. Calls come in
//! `seq_no` order; after a resync the snapshot passed keeps its original
//! `seq_no` and no diff follows it.

use crate::line_payloads::{ChangeEnvelope, TopologyEnvelope};
use crate::published_snapshot::SnapshotEnvelope;

/// The placement supervisor's view of the topology.
pub trait PlacementSupervisorBridge: Send + Sync {
    /// A snapshot was published (the whole view, each member with its
    /// incarnation and state; diff events are not sent to this bridge).
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope);

    /// The active provider switched; the new provider's snapshot follows.
    fn provider_changed(&self, envelope: &ChangeEnvelope);

    /// The bridge fell behind (or was just attached, or panicked): forget
    /// what was applied and start again from `envelope` (its `seq_no` is the
    /// new high-water mark). By default, applies it as a snapshot.
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.apply_snapshot(envelope);
    }
}

/// The partition manager's view of the topology.
pub trait PartitionManagerBridge: Send + Sync {
    /// A snapshot was published.
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope);

    /// The active provider switched; the new provider's snapshot follows.
    fn provider_changed(&self, envelope: &ChangeEnvelope);

    /// Start again from `envelope` (see
    /// [`PlacementSupervisorBridge::resync`]). By default, applies it as a
    /// snapshot.
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.apply_snapshot(envelope);
    }
}

/// Remoting's view: the `remote_topology` changes (Join, Leave, Serving,
/// Draining, Unblocked, Blocked) that turn one published snapshot into the
/// next. A restart under the same id is a Leave then a Join; a member about
/// to go is first a Draining carrying the member (take no new work there,
/// hand its work off), then a Leave.
pub trait RemotingBridge: Send + Sync {
    /// One change, in the order of CONTRACTS §3.
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope);

    /// Start again from `envelope`: the changes since the last applied event
    /// were lost, so rebuild the member and block sets from this snapshot.
    /// Required, because no change event can carry that.
    fn resync(&self, envelope: &SnapshotEnvelope);
}

/// Compile-time proof that the bridges are usable as `dyn`.
fn _object_safe(
    _: &dyn PlacementSupervisorBridge,
    _: &dyn PartitionManagerBridge,
    _: &dyn RemotingBridge,
) {
}
