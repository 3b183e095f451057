//! The metric names of CONTRACTS §5 and the latency buckets.

/// `provisioning_snapshot_latency_seconds` (histogram, `provider`).
pub const SNAPSHOT_LATENCY_SECONDS: &str = "provisioning_snapshot_latency_seconds";
/// `provisioning_failovers_total` (counter, `from`, `to`, `reason`).
pub const FAILOVERS_TOTAL: &str = "provisioning_failovers_total";
/// `provisioning_stream_interruptions_total` (counter, `provider`).
pub const STREAM_INTERRUPTIONS_TOTAL: &str = "provisioning_stream_interruptions_total";
/// `provisioning_provider_health` (gauge, `provider`: 0, 1, 2).
pub const PROVIDER_HEALTH: &str = "provisioning_provider_health";
/// `provisioning_active_provider` (gauge, `provider`: 1 active, 0 others).
pub const ACTIVE_PROVIDER: &str = "provisioning_active_provider";
/// `provisioning_members` (gauge, `provider`).
pub const MEMBERS: &str = "provisioning_members";
/// `provisioning_snapshot_age_seconds` (gauge, `provider`).
pub const SNAPSHOT_AGE_SECONDS: &str = "provisioning_snapshot_age_seconds";
/// `provisioning_unavailable` (gauge, 1 while no provider is usable).
pub const UNAVAILABLE: &str = "provisioning_unavailable";
/// `provisioning_suppressed_shrinks_total` (counter, `provider`).
pub const SUPPRESSED_SHRINKS_TOTAL: &str = "provisioning_suppressed_shrinks_total";
/// `provisioning_provider_disagreement_members` (gauge, `provider`).
pub const PROVIDER_DISAGREEMENT_MEMBERS: &str = "provisioning_provider_disagreement_members";

/// `provisioning_liveness_probe_seconds` (histogram, `provider`): how long
/// each liveness probe took, answered or not.
pub const LIVENESS_PROBE_SECONDS: &str = "provisioning_liveness_probe_seconds";
/// `provisioning_liveness_failures_total` (counter, `provider`): liveness
/// probes answered late or with an error.
pub const LIVENESS_FAILURES_TOTAL: &str = "provisioning_liveness_failures_total";

/// Every metric name of CONTRACTS §5.
pub const METRIC_NAMES: [&str; 12] = [
    SNAPSHOT_LATENCY_SECONDS,
    FAILOVERS_TOTAL,
    STREAM_INTERRUPTIONS_TOTAL,
    PROVIDER_HEALTH,
    ACTIVE_PROVIDER,
    MEMBERS,
    SNAPSHOT_AGE_SECONDS,
    UNAVAILABLE,
    SUPPRESSED_SHRINKS_TOTAL,
    PROVIDER_DISAGREEMENT_MEMBERS,
    LIVENESS_PROBE_SECONDS,
    LIVENESS_FAILURES_TOTAL,
];

/// Upper bounds (seconds) of the `provisioning_snapshot_latency_seconds`
/// buckets: 1 µs to 10 s in ×2.5 / ×2 steps (1, 2.5, 5 per decade). Configure
/// the exporter with them, e.g. metrics-exporter-prometheus
/// `set_buckets_for_metric(Matcher::Full(SNAPSHOT_LATENCY_SECONDS.into()), &LATENCY_BUCKETS)`,
/// so the metric is exported as a histogram, not a summary.
pub const LATENCY_BUCKETS: [f64; 22] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_span_one_microsecond_to_ten_seconds_in_small_steps() {
        assert_eq!(LATENCY_BUCKETS[0], 1e-6);
        assert_eq!(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1], 10.0);
        for pair in LATENCY_BUCKETS.windows(2) {
            let step = pair[1] / pair[0];
            assert!(
                (step - 2.0).abs() < 1e-9 || (step - 2.5).abs() < 1e-9,
                "{pair:?}"
            );
        }
    }
}
