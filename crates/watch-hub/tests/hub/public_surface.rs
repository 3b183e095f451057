//! The crate's public surface, listed: a name added to or removed from the
//! root is a visible decision (this list changes with it).

// Compile-time half: every listed name is public at the root.
#[allow(
    unused_imports,
    reason = "the import itself is the check: each name must resolve"
)]
use provisioning_watch_hub::{
    ACTIVE_PROVIDER, ChangeEnvelope, ConsumerKind, ConsumerStats, DedupBridge, EventHistory,
    EventLine, EventSubscription, FAILOVERS_TOTAL, FailoverKey, HealthLine, HubConfig, HubError,
    HubHandle, LATENCY_BUCKETS, LatencyHistogram, MEMBERS, METRIC_NAMES, MetricsView,
    PROVIDER_DISAGREEMENT_MEMBERS, PROVIDER_HEALTH, PartitionManagerBridge,
    PlacementSupervisorBridge, ProviderMetricsView, ProviderWatchHub, ProvisioningEvent,
    ProvisioningMetrics, PublishOutcome, PublishedSnapshot, RemotingBridge, ResyncLine,
    ResyncNeeded, RunId, RunIdParseError, SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS,
    STREAM_INTERRUPTIONS_TOTAL, SUPPRESSED_SHRINKS_TOTAL, SeqFilter, SnapshotEnvelope,
    SubscriptionClosed, TerminatedLine, TerminationReason, TopologyChange, TopologyEnvelope,
    TopologyReceiver, UNAVAILABLE, UnavailableLine,
};

/// The names above, in order.
const SURFACE: &[&str] = &[
    "ACTIVE_PROVIDER",
    "ChangeEnvelope",
    "ConsumerKind",
    "ConsumerStats",
    "DedupBridge",
    "EventHistory",
    "EventLine",
    "EventSubscription",
    "FAILOVERS_TOTAL",
    "FailoverKey",
    "HealthLine",
    "HubConfig",
    "HubError",
    "HubHandle",
    "LATENCY_BUCKETS",
    "LatencyHistogram",
    "LIVENESS_FAILURES_TOTAL",
    "LIVENESS_PROBE_SECONDS",
    "MEMBERS",
    "METRIC_NAMES",
    "MetricsView",
    "PROVIDER_DISAGREEMENT_MEMBERS",
    "PROVIDER_HEALTH",
    "PartitionManagerBridge",
    "PlacementSupervisorBridge",
    "ProviderMetricsView",
    "ProviderWatchHub",
    "ProvisioningEvent",
    "ProvisioningMetrics",
    "PublishOutcome",
    "PublishedSnapshot",
    "RemotingBridge",
    "ResyncLine",
    "ResyncNeeded",
    "RunId",
    "RunIdParseError",
    "SNAPSHOT_AGE_SECONDS",
    "SNAPSHOT_LATENCY_SECONDS",
    "STREAM_INTERRUPTIONS_TOTAL",
    "SUPPRESSED_SHRINKS_TOTAL",
    "SeqFilter",
    "SnapshotEnvelope",
    "SubscriptionClosed",
    "TerminatedLine",
    "TerminationReason",
    "TopologyChange",
    "TopologyEnvelope",
    "TopologyReceiver",
    "UNAVAILABLE",
    "UnavailableLine",
];

/// The names `lib.rs` makes public (`pub use` and `pub mod`), sorted.
fn declared() -> Vec<String> {
    let lib = include_str!("../../src/lib.rs");
    let mut names = Vec::new();
    let mut rest = lib;
    while let Some(at) = rest.find("\npub ") {
        rest = &rest[at + 1..];
        let end = rest.find(';').unwrap_or(rest.len());
        let item = &rest[..end];
        if let Some(path) = item.strip_prefix("pub use ") {
            let list = match (path.find('{'), path.rfind('}')) {
                (Some(open), Some(close)) => &path[open + 1..close],
                _ => path.rsplit("::").next().unwrap_or(path),
            };
            names.extend(
                list.split(',')
                    .map(|name| name.trim().rsplit(" as ").next().unwrap_or("").trim())
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned),
            );
        } else if let Some(module) = item.strip_prefix("pub mod ") {
            names.push(module.trim().to_owned());
        }
        rest = &rest[end..];
    }
    names.sort_by_key(|name| name.to_lowercase());
    names
}

#[test]
fn the_public_surface_is_exactly_the_listed_names() {
    let mut listed: Vec<String> = SURFACE.iter().map(|s| (*s).to_owned()).collect();
    listed.sort_by_key(|name| name.to_lowercase());
    let declared = declared();
    println!("{} public names at the root", declared.len());
    assert_eq!(
        declared, listed,
        "the crate root's public names changed: update this list (and the docs) on purpose"
    );
}
