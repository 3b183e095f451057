//! The crate's public surface, listed: a name added to or removed from the
//! root, `metrics` or `wire` is a visible decision (these lists change with
//! it).

// Compile-time half: every listed name is public where it is listed.
#[allow(
    unused_imports,
    reason = "the import itself is the check: each name must resolve"
)]
use provisioning_watch_hub::metrics::{
    ACTIVE_PROVIDER, FAILOVERS_TOTAL, FailoverKey, LATENCY_BUCKETS, LIVENESS_FAILURES_TOTAL,
    LIVENESS_PROBE_SECONDS, LatencyHistogram, MEMBERS, METRIC_NAMES, MetricsView,
    PROVIDER_DISAGREEMENT_MEMBERS, PROVIDER_HEALTH, ProviderMetricsView, ProvisioningMetrics,
    SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS, STREAM_INTERRUPTIONS_TOTAL,
    SUPPRESSED_SHRINKS_TOTAL, UNAVAILABLE,
};
#[allow(
    unused_imports,
    reason = "the import itself is the check: each name must resolve"
)]
use provisioning_watch_hub::wire::{
    ChangeEnvelope, EventLine, HealthLine, ProvisioningEvent, PublishedSnapshot, ResyncLine, RunId,
    RunIdParseError, SnapshotEnvelope, TerminatedLine, TerminationReason, TopologyChange,
    TopologyEnvelope, UnavailableLine,
};
#[allow(
    unused_imports,
    reason = "the import itself is the check: each name must resolve"
)]
use provisioning_watch_hub::{
    ConsumerKind, ConsumerStats, DedupBridge, EventHistory, EventSubscription, HubConfig, HubError,
    HubHandle, PartitionManagerBridge, PlacementSupervisorBridge, ProviderWatchHub, PublishOutcome,
    RemotingBridge, ResyncNeeded, SeqFilter, SubscriptionClosed, TopologyReceiver, metrics, wire,
};

/// The root: the hub, its handle and settings, the bridges, the
/// subscription types, and the two modules.
const ROOT: &[&str] = &[
    "ConsumerKind",
    "ConsumerStats",
    "DedupBridge",
    "EventHistory",
    "EventSubscription",
    "HubConfig",
    "HubError",
    "HubHandle",
    "metrics",
    "PartitionManagerBridge",
    "PlacementSupervisorBridge",
    "ProviderWatchHub",
    "PublishOutcome",
    "RemotingBridge",
    "ResyncNeeded",
    "SeqFilter",
    "SubscriptionClosed",
    "TopologyReceiver",
    "wire",
];

/// `metrics`: the metric names and the recorder with its view.
const METRICS: &[&str] = &[
    "ACTIVE_PROVIDER",
    "FAILOVERS_TOTAL",
    "FailoverKey",
    "LATENCY_BUCKETS",
    "LatencyHistogram",
    "LIVENESS_FAILURES_TOTAL",
    "LIVENESS_PROBE_SECONDS",
    "MEMBERS",
    "METRIC_NAMES",
    "MetricsView",
    "PROVIDER_DISAGREEMENT_MEMBERS",
    "PROVIDER_HEALTH",
    "ProviderMetricsView",
    "ProvisioningMetrics",
    "SNAPSHOT_AGE_SECONDS",
    "SNAPSHOT_LATENCY_SECONDS",
    "STREAM_INTERRUPTIONS_TOTAL",
    "SUPPRESSED_SHRINKS_TOTAL",
    "UNAVAILABLE",
];

/// `wire`: the event lines, their payloads and envelopes.
const WIRE: &[&str] = &[
    "ChangeEnvelope",
    "EventLine",
    "HealthLine",
    "ProvisioningEvent",
    "PublishedSnapshot",
    "ResyncLine",
    "RunId",
    "RunIdParseError",
    "SnapshotEnvelope",
    "TerminatedLine",
    "TerminationReason",
    "TopologyChange",
    "TopologyEnvelope",
    "UnavailableLine",
];

/// The names a module file makes public (`pub use` and `pub mod`), sorted.
fn declared(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
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
        } else {
            // Any other public item at this level would bypass the list.
            names.push(format!(
                "<not a re-export: {}>",
                item.lines().next().unwrap_or("")
            ));
        }
        rest = &rest[end..];
    }
    names.sort_by_key(|name| name.to_lowercase());
    names
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    names.sort_by_key(|name| name.to_lowercase());
    names
}

#[test]
fn the_public_surface_is_exactly_the_listed_names() {
    for (module, source, listed) in [
        ("the crate root", include_str!("../../src/lib.rs"), ROOT),
        ("metrics", include_str!("../../src/metrics.rs"), METRICS),
        ("wire", include_str!("../../src/wire.rs"), WIRE),
    ] {
        let declared = declared(source);
        println!("{}: {} public names", module, declared.len());
        assert_eq!(
            declared,
            sorted(listed),
            "the public names of {module} changed: update this list (and the docs) on purpose"
        );
    }
}
