#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod bridges;
mod dedup_bridge;
mod delivery;
mod error;
mod event_line;
mod event_publisher;
mod event_subscription;
mod hub_config;
mod hub_handle;
mod line_payloads;
mod prepared_diffs;
mod prometheus_text;
mod provisioning_event;
mod provisioning_metrics;
mod published_snapshot;
mod run_id;
mod seq_filter;
mod shrink_guard;
mod watch_hub;

pub use bridges::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};
pub use dedup_bridge::DedupBridge;
pub use delivery::{ConsumerKind, ConsumerStats, EventHistory, ResyncNeeded};
pub use error::HubError;
pub use event_line::{EventLine, TerminationReason, TopologyChange};
pub(crate) use event_publisher::ProvisioningEventPublisher;
pub use event_subscription::{EventSubscription, SubscriptionClosed};
pub use hub_config::HubConfig;
pub use hub_handle::{HubHandle, TopologyReceiver};
pub use line_payloads::{
    ChangeEnvelope, HealthLine, ResyncLine, TerminatedLine, TopologyEnvelope, UnavailableLine,
};
pub use provisioning_event::ProvisioningEvent;
pub use provisioning_metrics::{
    ACTIVE_PROVIDER, FAILOVERS_TOTAL, FailoverKey, LATENCY_BUCKETS, LIVENESS_FAILURES_TOTAL,
    LIVENESS_PROBE_SECONDS, LatencyHistogram, MEMBERS, METRIC_NAMES, MetricsView,
    PROVIDER_DISAGREEMENT_MEMBERS, PROVIDER_HEALTH, ProviderMetricsView, ProvisioningMetrics,
    SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS, STREAM_INTERRUPTIONS_TOTAL,
    SUPPRESSED_SHRINKS_TOTAL, UNAVAILABLE,
};
pub use published_snapshot::{PublishedSnapshot, SnapshotEnvelope};
pub use run_id::{RunId, RunIdParseError};
pub use seq_filter::SeqFilter;
pub use watch_hub::{ProviderWatchHub, PublishOutcome};

/// Compile-time proof that the hub can move into the facade's driver task
/// and its handle and subscriptions can go anywhere.
fn _thread_safety() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<ProviderWatchHub>();
    send::<EventSubscription>();
    send_sync::<HubHandle>();
    send_sync::<ProvisioningMetrics>();
    send_sync::<EventHistory>();
    send_sync::<ProvisioningEvent>();
}
