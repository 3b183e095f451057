//! The metrics of CONTRACTS §5: their names, the recorder the hub and the
//! facade write to ([`ProvisioningMetrics`]) and the in-process copy it keeps
//! ([`MetricsView`], rendered for `GET /metrics` by
//! [`ProvisioningMetrics::render_prometheus`]).

pub use crate::metric_names::{
    ACTIVE_PROVIDER, FAILOVERS_TOTAL, LATENCY_BUCKETS, LIVENESS_FAILURES_TOTAL,
    LIVENESS_PROBE_SECONDS, MEMBERS, METRIC_NAMES, PROVIDER_DISAGREEMENT_MEMBERS, PROVIDER_HEALTH,
    SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS, STREAM_INTERRUPTIONS_TOTAL,
    SUPPRESSED_SHRINKS_TOTAL, UNAVAILABLE,
};
pub use crate::metrics_view::{FailoverKey, LatencyHistogram, MetricsView, ProviderMetricsView};
pub use crate::provisioning_metrics::ProvisioningMetrics;
