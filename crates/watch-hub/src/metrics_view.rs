//! [`MetricsView`]: a copy of every metric as recorded, for tests, the
//! admin API and the Prometheus text.

use std::collections::BTreeMap;
use std::time::Duration;

use provisioning_provider_api::{ProviderHealth, ProviderId, SwitchReason};

use crate::metric_names::LATENCY_BUCKETS;

/// The in-process latency histogram of one provider: counts per bucket of
/// [`LATENCY_BUCKETS`] (the last count is everything above 10 s).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// Observations per bucket (non-cumulative); one more than the buckets.
    pub counts: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of observations in seconds.
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    pub(crate) fn record(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; LATENCY_BUCKETS.len() + 1];
        }
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&upper| seconds <= upper)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

/// What the metrics say about one provider.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ProviderMetricsView {
    /// Last health set.
    pub health: Option<ProviderHealth>,
    /// Whether it is the active provider.
    pub active: bool,
    /// Members in its last view.
    pub members: Option<u64>,
    /// Time since its last snapshot or heartbeat, as last set.
    pub snapshot_age: Option<Duration>,
    /// `Fault`s and `Terminated`s counted.
    pub stream_interruptions: u64,
    /// Shrinks held back.
    pub suppressed_shrinks: u64,
    /// Symmetric difference with the published members, while standby.
    pub disagreement_members: Option<u64>,
    /// Publish-to-every-consumer latency of its snapshots.
    pub snapshot_latency: LatencyHistogram,
    /// Durations of its liveness probes (same buckets).
    pub liveness_probe: LatencyHistogram,
    /// Liveness probes answered late or with an error.
    pub liveness_failures: u64,
}

/// The key of one failover counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct FailoverKey {
    /// `from` label (`none` when no provider was active before).
    pub from: String,
    /// `to` label.
    pub to: String,
    /// `reason` label.
    pub reason: SwitchReason,
}

/// A copy of every metric as recorded, for tests and the admin API.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct MetricsView {
    /// Per provider.
    pub providers: BTreeMap<ProviderId, ProviderMetricsView>,
    /// `provisioning_failovers_total` by label set.
    pub failovers: BTreeMap<FailoverKey, u64>,
    /// `provisioning_unavailable`.
    pub unavailable: bool,
}
