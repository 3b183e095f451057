//! [`ProvisioningMetrics`]: the metrics of CONTRACTS §5, through the
//! `metrics` facade and as an in-process view.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use provisioning_provider_api::{ProviderHealth, ProviderId, SwitchReason};

use crate::metric_names::{
    ACTIVE_PROVIDER, FAILOVERS_TOTAL, LIVENESS_FAILURES_TOTAL, LIVENESS_PROBE_SECONDS, MEMBERS,
    PROVIDER_DISAGREEMENT_MEMBERS, PROVIDER_HEALTH, SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS,
    STREAM_INTERRUPTIONS_TOTAL, SUPPRESSED_SHRINKS_TOTAL, UNAVAILABLE,
};
use crate::metrics_view::{FailoverKey, MetricsView, ProviderMetricsView};

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
    /// as a histogram with [`LATENCY_BUCKETS`](crate::metrics::LATENCY_BUCKETS). What `GET /metrics` serves.
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
    use crate::metric_names::{LATENCY_BUCKETS, METRIC_NAMES};

    fn pid(id: &str) -> ProviderId {
        ProviderId::new(id).unwrap()
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

    // The Prometheus text, as `render_prometheus` gives it.

    fn samples(text: &str) -> Vec<(&str, f64)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series, value.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_running_provider_has_every_series_at_zero_before_anything_happened() {
        let metrics = ProvisioningMetrics::new();
        metrics.set_running_providers([&pid("a"), &pid("b")]);
        let text = metrics.render_prometheus();
        for name in METRIC_NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
        }
        let samples = samples(&text);
        for name in METRIC_NAMES {
            if name == FAILOVERS_TOTAL {
                assert!(!samples.iter().any(|(s, _)| s.starts_with(name)), "{text}");
                continue;
            }
            if name == UNAVAILABLE {
                assert!(
                    samples.contains(&("provisioning_unavailable", 0.0)),
                    "{text}"
                );
                continue;
            }
            for provider in ["a", "b"] {
                let histogram = [SNAPSHOT_LATENCY_SECONDS, LIVENESS_PROBE_SECONDS];
                let series = if histogram.contains(&name) {
                    format!("{name}_count{{provider=\"{provider}\"}}")
                } else {
                    format!("{name}{{provider=\"{provider}\"}}")
                };
                assert!(
                    samples.contains(&(series.as_str(), 0.0)),
                    "{series} at 0:\n{text}"
                );
            }
        }
    }

    #[test]
    fn a_provider_leaving_the_running_set_leaves_with_all_its_series_and_the_others_keep_counting()
    {
        let metrics = ProvisioningMetrics::new();
        metrics.set_running_providers([&pid("a"), &pid("b")]);
        metrics.record_stream_interruption(&pid("a"));
        metrics.record_stream_interruption(&pid("b"));
        metrics.set_provider_health(&pid("b"), ProviderHealth::Unreachable);
        metrics.record_snapshot_latency(&pid("b"), Duration::from_micros(3));
        metrics.record_failover(Some(&pid("b")), &pid("a"), SwitchReason::Timeout);
        metrics.record_liveness_probe(&pid("b"), Duration::from_millis(2));
        metrics.record_liveness_failure(&pid("b"));
        metrics.set_running_providers([&pid("a")]);
        // A consumer thread's late recording for b brings nothing back, nor
        // does a probe of its stream that was still in flight.
        metrics.record_snapshot_latency(&pid("b"), Duration::from_micros(3));
        metrics.record_liveness_probe(&pid("b"), Duration::from_millis(2));
        metrics.record_liveness_failure(&pid("b"));
        metrics.set_members(&pid("b"), 3);
        let text = metrics.render_prometheus();
        assert!(!text.contains("\"b\""), "b is gone:\n{text}");
        let samples = samples(&text);
        assert!(
            samples.contains(&(
                "provisioning_stream_interruptions_total{provider=\"a\"}",
                1.0
            )),
            "{text}"
        );
        // Leaving and coming back starts from zero, like a new provider.
        metrics.set_running_providers([&pid("a"), &pid("b")]);
        let samples_text = metrics.render_prometheus();
        assert!(
            self::samples(&samples_text).contains(&(
                "provisioning_stream_interruptions_total{provider=\"b\"}",
                0.0
            )),
            "{samples_text}"
        );
    }

    #[test]
    fn latency_is_a_cumulative_histogram_with_the_contract_buckets() {
        let metrics = ProvisioningMetrics::new();
        metrics.record_snapshot_latency(&pid("a"), Duration::from_micros(3));
        metrics.record_snapshot_latency(&pid("a"), Duration::from_secs(20));
        metrics.record_failover(None, &pid("a"), SwitchReason::Recovered);
        let text = metrics.render_prometheus();
        let samples = samples(&text);
        let bucket = |le: &str| {
            let series = format!(
                "provisioning_snapshot_latency_seconds_bucket{{provider=\"a\",le=\"{le}\"}}"
            );
            samples
                .iter()
                .find(|(s, _)| *s == series)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| panic!("{series}:\n{text}"))
        };
        assert_eq!(bucket("0.000001"), 0.0);
        assert_eq!(bucket("0.000005"), 1.0);
        assert_eq!(bucket("10"), 1.0);
        assert_eq!(bucket("+Inf"), 2.0);
        assert!(text.contains("# TYPE provisioning_snapshot_latency_seconds histogram"));
        assert!(samples.contains(&(
            "provisioning_failovers_total{from=\"none\",to=\"a\",reason=\"recovered\"}",
            1.0
        )));
    }

    #[test]
    fn liveness_probes_are_a_histogram_and_failures_a_counter() {
        let metrics = ProvisioningMetrics::new();
        metrics.set_running_providers([&pid("a")]);
        metrics.record_liveness_probe(&pid("a"), Duration::from_millis(3));
        metrics.record_liveness_probe(&pid("a"), Duration::from_millis(1200));
        metrics.record_liveness_failure(&pid("a"));
        let text = metrics.render_prometheus();
        assert!(text.contains("# TYPE provisioning_liveness_probe_seconds histogram"));
        assert!(text.contains("# TYPE provisioning_liveness_failures_total counter"));
        let samples = samples(&text);
        for (series, value) in [
            (
                "provisioning_liveness_probe_seconds_bucket{provider=\"a\",le=\"0.005\"}",
                1.0,
            ),
            (
                "provisioning_liveness_probe_seconds_bucket{provider=\"a\",le=\"2.5\"}",
                2.0,
            ),
            (
                "provisioning_liveness_probe_seconds_count{provider=\"a\"}",
                2.0,
            ),
            ("provisioning_liveness_failures_total{provider=\"a\"}", 1.0),
        ] {
            assert!(
                samples.contains(&(series, value)),
                "{series} {value}:\n{text}"
            );
        }
    }
}
