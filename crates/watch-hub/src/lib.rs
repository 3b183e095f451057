#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

// How the files outside `delivery/` depend on each other. Each file
// imports (`use crate::...`, tests included) only from layers below its
// own, so there are no cycles; the `module_dependencies` test reads this
// list and checks every import against it. `delivery/` counts as one file:
// its own files may import each other.
//
// 1. run_id, error, metric_names, shrink_guard, publish_outcome
// 2. published_snapshot, metrics_view, prepared_diffs
// 3. line_payloads, prometheus_text, snapshot_differ
// 4. provisioning_event, provisioning_metrics, bridges
// 5. event_line, seq_filter, hub_config, delivery
// 6. dedup_bridge, event_publisher, event_subscription
// 7. hub_handle
// 8. watch_hub
// 9. metrics, wire (the public modules: re-exports only)

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
mod metric_names;
pub mod metrics;
mod metrics_view;
mod prepared_diffs;
mod prometheus_text;
mod provisioning_event;
mod provisioning_metrics;
mod publish_outcome;
mod published_snapshot;
mod run_id;
mod seq_filter;
mod shrink_guard;
mod snapshot_differ;
mod watch_hub;
pub mod wire;

pub use bridges::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};
pub use dedup_bridge::DedupBridge;
pub use delivery::{ConsumerKind, ConsumerStats, EventHistory, ResyncNeeded};
pub use error::HubError;
pub use event_subscription::{EventSubscription, SubscriptionClosed};
pub use hub_config::HubConfig;
pub use hub_handle::{HubHandle, TopologyReceiver};
pub use publish_outcome::PublishOutcome;
pub use seq_filter::SeqFilter;
pub use watch_hub::ProviderWatchHub;

/// Compile-time proof that the hub can move into the facade's driver task
/// and its handle and subscriptions can go anywhere.
fn _thread_safety() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<ProviderWatchHub>();
    send::<EventSubscription>();
    send_sync::<HubHandle>();
    send_sync::<metrics::ProvisioningMetrics>();
    send_sync::<EventHistory>();
    send_sync::<wire::ProvisioningEvent>();
}
