//! [`HubHandle`]: the shareable side of the hub — attach consumers, read the
//! latest topology, the history and the metrics, from any thread.

use std::sync::Arc;

use tokio::sync::watch;

use crate::bridges::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};
use crate::delivery::EventHistory;
use crate::delivery::{BridgeTarget, ConsumerKind, ConsumerStats, Fanout};
use crate::error::HubError;
use crate::event_subscription::EventSubscription;
use crate::provisioning_event::ProvisioningEvent;
use crate::provisioning_metrics::ProvisioningMetrics;
use crate::published_snapshot::PublishedSnapshot;
use crate::run_id::RunId;

/// The latest-topology receiver: only the newest published snapshot is kept
/// (`tokio::sync::watch`); `None` until the first one.
pub type TopologyReceiver = watch::Receiver<Option<Arc<PublishedSnapshot>>>;

/// A cheap, cloneable handle to a [`ProviderWatchHub`](crate::ProviderWatchHub).
///
/// Everything here is safe to call from a bridge, from inside a bridge call
/// included: no method waits for a consumer and no hub lock is held while a
/// bridge runs.
#[derive(Clone)]
pub struct HubHandle {
    pub(crate) fanout: Arc<Fanout>,
    pub(crate) run_id: RunId,
}

impl HubHandle {
    /// The run id of this hub's run.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Attaches a placement supervisor (adding a thread to the bridge
    /// crew); it first gets `resync` with the current snapshot (if any).
    pub fn attach_placement(
        &self,
        name: impl Into<String>,
        bridge: Arc<dyn PlacementSupervisorBridge>,
    ) -> Result<(), HubError> {
        self.attach(
            name.into(),
            ConsumerKind::Placement,
            BridgeTarget::Placement(bridge),
        )
    }

    /// Attaches a partition manager (adding a thread to the bridge crew).
    pub fn attach_partition(
        &self,
        name: impl Into<String>,
        bridge: Arc<dyn PartitionManagerBridge>,
    ) -> Result<(), HubError> {
        self.attach(
            name.into(),
            ConsumerKind::Partition,
            BridgeTarget::Partition(bridge),
        )
    }

    /// Attaches remoting (adding a thread to the bridge crew).
    pub fn attach_remoting(
        &self,
        name: impl Into<String>,
        bridge: Arc<dyn RemotingBridge>,
    ) -> Result<(), HubError> {
        self.attach(
            name.into(),
            ConsumerKind::Remoting,
            BridgeTarget::Remoting(bridge),
        )
    }

    /// The seed's `attach_consumers`: the three bridges at once, named
    /// `placement`, `partition` and `remoting`.
    pub fn attach_consumers(
        &self,
        placement: Arc<dyn PlacementSupervisorBridge>,
        partition: Arc<dyn PartitionManagerBridge>,
        remoting: Arc<dyn RemotingBridge>,
    ) -> Result<(), HubError> {
        self.attach_placement("placement", placement)?;
        self.attach_partition("partition", partition)?;
        self.attach_remoting("remoting", remoting)
    }

    fn attach(
        &self,
        name: String,
        kind: ConsumerKind,
        target: BridgeTarget,
    ) -> Result<(), HubError> {
        self.fanout.attach_bridge(name, kind, target)
    }

    /// A bounded stream of every event line, starting with the retained
    /// lines, `resync` and the current snapshot.
    pub fn subscribe_events(&self, name: impl Into<String>) -> Result<EventSubscription, HubError> {
        let cursor = self.fanout.attach_stream(name.into(), None, false)?;
        Ok(EventSubscription::new(cursor))
    }

    /// A bounded stream that starts exactly with `resync` and the current
    /// snapshot, then live lines — the admin API's `GET /events` without
    /// `since` (CONTRACTS §4). Unlike
    /// [`subscribe_events`](Self::subscribe_events), retained lines older
    /// than the snapshot are left out (newer ones follow it); before the
    /// first publication it starts with the first live line.
    pub fn subscribe_events_from_snapshot(
        &self,
        name: impl Into<String>,
    ) -> Result<EventSubscription, HubError> {
        let cursor = self.fanout.attach_stream(name.into(), None, true)?;
        Ok(EventSubscription::new(cursor))
    }

    /// A bounded stream that resumes after `since` (the admin API's
    /// `GET /events?since=N`): every line with a greater `seq_no`, from the
    /// history, then live lines; or, when the history no longer holds line
    /// `since + 1` (or `since` is beyond the newest line, e.g. another run's
    /// number), the retained lines, `resync` and the current snapshot, as
    /// [`subscribe_events`](Self::subscribe_events) starts.
    pub fn subscribe_events_since(
        &self,
        name: impl Into<String>,
        since: u64,
    ) -> Result<EventSubscription, HubError> {
        let cursor = self.fanout.attach_stream(name.into(), Some(since), false)?;
        Ok(EventSubscription::new(cursor))
    }

    /// The latest-topology receiver.
    pub fn subscribe_topology(&self) -> TopologyReceiver {
        self.fanout.subscribe_topology()
    }

    /// The latest published snapshot.
    pub fn latest(&self) -> Option<Arc<PublishedSnapshot>> {
        self.fanout.latest()
    }

    /// The lines kept for late subscribers: the last termination of each
    /// provider (until it is healthy again) and an ongoing
    /// `provisioning_unavailable`, in `seq_no` order.
    pub fn retained(&self) -> Vec<Arc<ProvisioningEvent>> {
        self.fanout.retained()
    }

    /// Whether `provisioning_unavailable` is in force (no snapshot since).
    pub fn is_unavailable(&self) -> bool {
        self.fanout.is_unavailable()
    }

    /// The `since` history.
    pub fn history(&self) -> EventHistory {
        self.fanout.history.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> ProvisioningMetrics {
        self.fanout.metrics.clone()
    }

    /// Counters of every attached consumer.
    pub fn consumers(&self) -> Vec<ConsumerStats> {
        self.fanout.consumers()
    }

    /// Whether the hub was shut down.
    pub fn is_shut_down(&self) -> bool {
        self.fanout.is_closed()
    }
}

impl std::fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubHandle")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}
