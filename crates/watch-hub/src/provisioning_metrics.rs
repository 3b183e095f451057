//! [`ProvisioningMetrics`]: the metrics of CONTRACTS §5, through the
//! `metrics` facade and as an in-process view.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use provisioning_provider_api::{ProviderHealth, ProviderId, SwitchReason};

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
    fn record(&mut self, seconds: f64) {
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

/// The metrics of CONTRACTS §5.
///
/// Every recording goes to the `metrics` facade (whatever recorder the
/// process installed — or the thread's local recorder at that moment) and to
/// an in-process [`MetricsView`]. Cloning shares the view. Memory is bounded
/// by the number of providers (and, for failovers, their pairs × reasons);
/// [`forget_provider`](Self::forget_provider) drops a removed provider.
///
/// The hub records what passes through it (latency, failovers, health,
/// active provider, members, unavailable, suppressed shrinks, disagreement,
/// terminations); the facade records what only it sees: stream faults
/// ([`record_stream_interruption`](Self::record_stream_interruption)) and
/// snapshot age ([`set_snapshot_age`](Self::set_snapshot_age)).
#[derive(Debug, Clone, Default)]
pub struct ProvisioningMetrics {
    view: Arc<Mutex<Recorded>>,
}

/// The view, and the running set once the facade has named one.
#[derive(Debug, Default)]
struct Recorded {
    view: MetricsView,
    /// `None` until [`ProvisioningMetrics::set_running_providers`] is first
    /// called (a hub used without the facade records every provider); then
    /// a recording for a provider outside the set — a late one from a
    /// consumer thread after the provider left — is not kept, so it cannot
    /// bring the provider's series back or carry values into its next life.
    running: Option<std::collections::BTreeSet<ProviderId>>,
}

impl std::ops::Deref for Recorded {
    type Target = MetricsView;

    fn deref(&self) -> &MetricsView {
        &self.view
    }
}

impl std::ops::DerefMut for Recorded {
    fn deref_mut(&mut self) -> &mut MetricsView {
        &mut self.view
    }
}

impl ProvisioningMetrics {
    /// Metrics with an empty view.
    pub fn new() -> Self {
        Self::default()
    }

    fn view_mut(&self) -> MutexGuard<'_, Recorded> {
        // The view holds plain counters: a panic elsewhere cannot leave it
        // half-updated in a way worth refusing to read.
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The provider's entry, created on first use; `None` for a provider
    /// outside the running set (see [`Recorded::running`]).
    fn provider_mut<'a>(
        recorded: &'a mut Recorded,
        provider: &ProviderId,
    ) -> Option<&'a mut ProviderMetricsView> {
        if recorded
            .running
            .as_ref()
            .is_some_and(|running| !running.contains(provider))
        {
            return None;
        }
        let view = &mut recorded.view;
        // Look up first: the entry API would clone the id on every call.
        if !view.providers.contains_key(provider) {
            view.providers
                .insert(provider.clone(), ProviderMetricsView::default());
        }
        view.providers.get_mut(provider)
    }

    /// A copy of the current values.
    pub fn view(&self) -> MetricsView {
        self.view_mut().view.clone()
    }

    /// The current values in the Prometheus text format (0.0.4): every
    /// name of CONTRACTS §5, a series per provider of the running set (see
    /// [`set_running_providers`](Self::set_running_providers)), the latency
    /// as a histogram with [`LATENCY_BUCKETS`]. What `GET /metrics` serves.
    pub fn render_prometheus(&self) -> String {
        crate::prometheus_text::render(&self.view_mut())
    }

    /// A handle to the latency histogram of `provider` in the current
    /// recorder, to record from another thread (the consumer that acknowledges
    /// a publication last).
    pub(crate) fn latency_recorder(&self, provider: &ProviderId) -> LatencyRecorder {
        LatencyRecorder {
            histogram: metrics::histogram!(SNAPSHOT_LATENCY_SECONDS, "provider" => provider.to_string()),
            provider: provider.clone(),
            metrics: self.clone(),
        }
    }

    /// `provisioning_snapshot_latency_seconds{provider}`.
    pub fn record_snapshot_latency(&self, provider: &ProviderId, latency: Duration) {
        metrics::histogram!(SNAPSHOT_LATENCY_SECONDS, "provider" => provider.to_string())
            .record(latency.as_secs_f64());
        self.view_latency(provider, latency);
    }

    fn view_latency(&self, provider: &ProviderId, latency: Duration) {
        let mut view = self.view_mut();
        if let Some(p) = Self::provider_mut(&mut view, provider) {
            p.snapshot_latency.record(latency.as_secs_f64());
        }
    }

    /// `provisioning_failovers_total{from,to,reason}` +1 (`from` is `none`
    /// when nothing was active before).
    pub fn record_failover(
        &self,
        from: Option<&ProviderId>,
        to: &ProviderId,
        reason: SwitchReason,
    ) {
        let from = from.map_or_else(|| "none".to_owned(), ProviderId::to_string);
        metrics::counter!(
            FAILOVERS_TOTAL,
            "from" => from.clone(),
            "to" => to.to_string(),
            "reason" => reason.as_str()
        )
        .increment(1);
        let key = FailoverKey {
            from,
            to: to.to_string(),
            reason,
        };
        *self.view_mut().failovers.entry(key).or_default() += 1;
    }

    /// `provisioning_stream_interruptions_total{provider}` +1: one per
    /// `Fault` (the facade calls this) or `Terminated` (the hub does).
    pub fn record_stream_interruption(&self, provider: &ProviderId) {
        metrics::counter!(STREAM_INTERRUPTIONS_TOTAL, "provider" => provider.to_string())
            .increment(1);
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.stream_interruptions += 1;
        }
    }

    /// `provisioning_liveness_probe_seconds{provider}`: one probe's duration
    /// (the facade's stream tasks record it).
    pub fn record_liveness_probe(&self, provider: &ProviderId, took: Duration) {
        metrics::histogram!(LIVENESS_PROBE_SECONDS, "provider" => provider.to_string())
            .record(took.as_secs_f64());
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.liveness_probe.record(took.as_secs_f64());
        }
    }

    /// `provisioning_liveness_failures_total{provider}` +1.
    pub fn record_liveness_failure(&self, provider: &ProviderId) {
        metrics::counter!(LIVENESS_FAILURES_TOTAL, "provider" => provider.to_string()).increment(1);
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.liveness_failures += 1;
        }
    }

    /// `provisioning_provider_health{provider}` = 0, 1 or 2.
    pub fn set_provider_health(&self, provider: &ProviderId, health: ProviderHealth) {
        metrics::gauge!(PROVIDER_HEALTH, "provider" => provider.to_string())
            .set(health.gauge_value());
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.health = Some(health);
        }
    }

    /// `provisioning_active_provider{provider}`: 1 for `active`, 0 for every
    /// other provider the metrics know.
    pub fn set_active_provider(&self, active: Option<&ProviderId>) {
        let mut view = self.view_mut();
        if let Some(active) = active {
            let _ = Self::provider_mut(&mut view, active);
        }
        for (id, provider) in &mut view.providers {
            let is_active = Some(id) == active;
            provider.active = is_active;
            metrics::gauge!(ACTIVE_PROVIDER, "provider" => id.to_string()).set(if is_active {
                1.0
            } else {
                0.0
            });
        }
    }

    /// `provisioning_members{provider}`.
    pub fn set_members(&self, provider: &ProviderId, members: usize) {
        metrics::gauge!(MEMBERS, "provider" => provider.to_string()).set(members as f64);
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.members = Some(members as u64);
        }
    }

    /// `provisioning_snapshot_age_seconds{provider}` (the facade's clock).
    pub fn set_snapshot_age(&self, provider: &ProviderId, age: Duration) {
        metrics::gauge!(SNAPSHOT_AGE_SECONDS, "provider" => provider.to_string())
            .set(age.as_secs_f64());
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.snapshot_age = Some(age);
        }
    }

    /// `provisioning_unavailable` = 1 or 0.
    pub fn set_unavailable(&self, unavailable: bool) {
        metrics::gauge!(UNAVAILABLE).set(if unavailable { 1.0 } else { 0.0 });
        self.view_mut().unavailable = unavailable;
    }

    /// `provisioning_suppressed_shrinks_total{provider}` +1.
    pub fn record_suppressed_shrink(&self, provider: &ProviderId) {
        metrics::counter!(SUPPRESSED_SHRINKS_TOTAL, "provider" => provider.to_string())
            .increment(1);
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.suppressed_shrinks += 1;
        }
    }

    /// `provisioning_provider_disagreement_members{provider}`.
    pub fn set_disagreement(&self, provider: &ProviderId, members: usize) {
        metrics::gauge!(PROVIDER_DISAGREEMENT_MEMBERS, "provider" => provider.to_string())
            .set(members as f64);
        if let Some(p) = Self::provider_mut(&mut self.view_mut(), provider) {
            p.disagreement_members = Some(members as u64);
        }
    }

    /// Makes `running` the running set (CONTRACTS §5: the enabled
    /// descriptors of the set last applied). A provider new to the set gets
    /// every provider-labelled series at 0 — in the view and through the
    /// `metrics` facade — so alerts and `rate()` work before anything
    /// happened to it; a provider no longer in it is
    /// [forgotten](Self::forget_provider). Values of providers that stay are
    /// kept. The facade calls this whenever the set may have changed.
    pub fn set_running_providers<'a>(&self, running: impl IntoIterator<Item = &'a ProviderId>) {
        let running: std::collections::BTreeSet<&ProviderId> = running.into_iter().collect();
        let mut view = self.view_mut();
        let gone: Vec<ProviderId> = view
            .providers
            .keys()
            .filter(|id| !running.contains(id))
            .cloned()
            .collect();
        for id in gone {
            Self::forget_in(&mut view, &id);
        }
        view.running = Some(running.iter().map(|id| (*id).clone()).collect());
        for id in running {
            if view.providers.contains_key(id) {
                continue;
            }
            let label = id.to_string();
            metrics::counter!(STREAM_INTERRUPTIONS_TOTAL, "provider" => label.clone()).increment(0);
            metrics::counter!(SUPPRESSED_SHRINKS_TOTAL, "provider" => label.clone()).increment(0);
            metrics::counter!(LIVENESS_FAILURES_TOTAL, "provider" => label.clone()).increment(0);
            for gauge in [
                PROVIDER_HEALTH,
                ACTIVE_PROVIDER,
                MEMBERS,
                SNAPSHOT_AGE_SECONDS,
                PROVIDER_DISAGREEMENT_MEMBERS,
            ] {
                metrics::gauge!(gauge, "provider" => label.clone()).set(0.0);
            }
            view.providers
                .insert(id.clone(), ProviderMetricsView::default());
        }
        let unavailable = view.unavailable;
        drop(view);
        metrics::gauge!(UNAVAILABLE).set(if unavailable { 1.0 } else { 0.0 });
    }

    /// Drops a removed provider from the view, so that its series leave
    /// `/metrics` (through [`render_prometheus`](Self::render_prometheus)).
    /// Series already handed to another `metrics` recorder keep their last
    /// values there until that exporter's own idle timeout removes them.
    pub fn forget_provider(&self, provider: &ProviderId) {
        let mut recorded = self.view_mut();
        if let Some(running) = recorded.running.as_mut() {
            running.remove(provider);
        }
        Self::forget_in(&mut recorded, provider);
    }

    fn forget_in(view: &mut MetricsView, provider: &ProviderId) {
        view.providers.remove(provider);
        let name = provider.as_str();
        view.failovers
            .retain(|key, _| key.from != name && key.to != name);
    }
}

/// Records one provider's snapshot latency from any thread, into the
/// recorder that was current where it was created.
#[derive(Clone)]
pub(crate) struct LatencyRecorder {
    histogram: metrics::Histogram,
    provider: ProviderId,
    metrics: ProvisioningMetrics,
}

impl LatencyRecorder {
    pub(crate) fn record(&self, latency: Duration) {
        self.histogram.record(latency.as_secs_f64());
        self.metrics.view_latency(&self.provider, latency);
    }
}

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

    #[test]
    fn view_counts_latency_in_buckets_and_active_flags() {
        let metrics = ProvisioningMetrics::new();
        let a = ProviderId::new("a").unwrap();
        let b = ProviderId::new("b").unwrap();
        metrics.record_snapshot_latency(&a, Duration::from_micros(3));
        metrics.record_snapshot_latency(&a, Duration::from_secs(20));
        metrics.set_members(&b, 3);
        metrics.set_active_provider(Some(&a));
        let view = metrics.view();
        let latency = &view.providers[&a].snapshot_latency;
        assert_eq!(latency.count, 2);
        assert_eq!(latency.counts[2], 1, "3 µs falls in the 5 µs bucket");
        assert_eq!(
            latency.counts[LATENCY_BUCKETS.len()],
            1,
            "20 s is above 10 s"
        );
        assert!(view.providers[&a].active);
        assert!(!view.providers[&b].active);
        metrics.forget_provider(&b);
        assert!(!metrics.view().providers.contains_key(&b));
    }
}
