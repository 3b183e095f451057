//! The Prometheus text exposition (format 0.0.4) of a [`MetricsView`]: what
//! `GET /metrics` serves.
//!
//! Rendered from the in-process view rather than from a `metrics` recorder,
//! so the exposition follows the running set exactly: a provider joins it
//! with every series at 0 and leaves it with all of them (CONTRACTS §5),
//! with no exporter idle timeout to tune.

use std::fmt::Write as _;

use crate::provisioning_metrics::{
    ACTIVE_PROVIDER, FAILOVERS_TOTAL, LATENCY_BUCKETS, LIVENESS_FAILURES_TOTAL,
    LIVENESS_PROBE_SECONDS, LatencyHistogram, MEMBERS, MetricsView, PROVIDER_DISAGREEMENT_MEMBERS,
    PROVIDER_HEALTH, ProviderMetricsView, SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS,
    STREAM_INTERRUPTIONS_TOTAL, SUPPRESSED_SHRINKS_TOTAL, UNAVAILABLE,
};

/// One provider-labelled series: name, type, help and how to read its value.
struct PerProvider {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&ProviderMetricsView) -> f64,
}

const PER_PROVIDER: [PerProvider; 8] = [
    PerProvider {
        name: STREAM_INTERRUPTIONS_TOTAL,
        kind: "counter",
        help: "Faults and terminations of the provider's stream.",
        value: |p| p.stream_interruptions as f64,
    },
    PerProvider {
        name: PROVIDER_HEALTH,
        kind: "gauge",
        help: "Health: 0 healthy, 1 degraded, 2 unreachable.",
        value: |p| p.health.map_or(0.0, |h| h.gauge_value()),
    },
    PerProvider {
        name: ACTIVE_PROVIDER,
        kind: "gauge",
        help: "1 for the active provider, 0 for the others.",
        value: |p| if p.active { 1.0 } else { 0.0 },
    },
    PerProvider {
        name: MEMBERS,
        kind: "gauge",
        help: "Members in the provider's last view.",
        value: |p| p.members.unwrap_or(0) as f64,
    },
    PerProvider {
        name: SNAPSHOT_AGE_SECONDS,
        kind: "gauge",
        help: "Time since the provider's last snapshot or heartbeat.",
        value: |p| p.snapshot_age.map_or(0.0, |age| age.as_secs_f64()),
    },
    PerProvider {
        name: SUPPRESSED_SHRINKS_TOTAL,
        kind: "counter",
        help: "Suspicious shrinks held back.",
        value: |p| p.suppressed_shrinks as f64,
    },
    PerProvider {
        name: LIVENESS_FAILURES_TOTAL,
        kind: "counter",
        help: "Liveness probes answered late or with an error.",
        value: |p| p.liveness_failures as f64,
    },
    PerProvider {
        name: PROVIDER_DISAGREEMENT_MEMBERS,
        kind: "gauge",
        help: "Symmetric difference between the provider's members and the published ones.",
        value: |p| {
            if p.active {
                0.0
            } else {
                p.disagreement_members.unwrap_or(0) as f64
            }
        },
    },
];

/// `view` in the Prometheus text format: every name of CONTRACTS §5, with a
/// series per provider of the view (`provisioning_failovers_total` only for
/// the label sets that occurred).
pub(crate) fn render(view: &MetricsView) -> String {
    let mut out = String::with_capacity(1024 + view.providers.len() * 1536);
    header(
        &mut out,
        SNAPSHOT_LATENCY_SECONDS,
        "histogram",
        "From a provider event arriving to every consumer having it.",
    );
    for (id, provider) in &view.providers {
        histogram(
            &mut out,
            SNAPSHOT_LATENCY_SECONDS,
            id.as_str(),
            &provider.snapshot_latency,
        );
    }
    header(
        &mut out,
        LIVENESS_PROBE_SECONDS,
        "histogram",
        "Duration of each liveness probe, answered or not.",
    );
    for (id, provider) in &view.providers {
        histogram(
            &mut out,
            LIVENESS_PROBE_SECONDS,
            id.as_str(),
            &provider.liveness_probe,
        );
    }
    header(
        &mut out,
        FAILOVERS_TOTAL,
        "counter",
        "Provider switches by from, to and reason.",
    );
    for (key, count) in &view.failovers {
        let _ = writeln!(
            out,
            "{FAILOVERS_TOTAL}{{from=\"{}\",to=\"{}\",reason=\"{}\"}} {count}",
            escape(&key.from),
            escape(&key.to),
            key.reason.as_str()
        );
    }
    for series in &PER_PROVIDER {
        header(&mut out, series.name, series.kind, series.help);
        for (id, provider) in &view.providers {
            let _ = writeln!(
                out,
                "{}{{provider=\"{}\"}} {}",
                series.name,
                escape(id.as_str()),
                (series.value)(provider)
            );
        }
    }
    header(
        &mut out,
        UNAVAILABLE,
        "gauge",
        "1 while no provider is usable.",
    );
    let _ = writeln!(
        out,
        "{UNAVAILABLE} {}",
        if view.unavailable { 1 } else { 0 }
    );
    out
}

/// One provider's histogram series with the [`LATENCY_BUCKETS`] bounds.
fn histogram(out: &mut String, name: &str, provider: &str, values: &LatencyHistogram) {
    let label = escape(provider);
    let mut cumulative = 0;
    for (i, upper) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += values.counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{provider=\"{label}\",le=\"{upper}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{provider=\"{label}\",le=\"+Inf\"}} {}",
        values.count
    );
    let _ = writeln!(
        out,
        "{name}_sum{{provider=\"{label}\"}} {}",
        values.sum_seconds
    );
    let _ = writeln!(out, "{name}_count{{provider=\"{label}\"}} {}", values.count);
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and line feeds escaped as the format asks.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
        .into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use provisioning_provider_api::{ProviderHealth, ProviderId, SwitchReason};

    use crate::ProvisioningMetrics;
    use crate::provisioning_metrics::METRIC_NAMES;

    fn pid(id: &str) -> ProviderId {
        ProviderId::new(id).unwrap()
    }

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
            if name == crate::FAILOVERS_TOTAL {
                assert!(!samples.iter().any(|(s, _)| s.starts_with(name)), "{text}");
                continue;
            }
            if name == crate::UNAVAILABLE {
                assert!(
                    samples.contains(&("provisioning_unavailable", 0.0)),
                    "{text}"
                );
                continue;
            }
            for provider in ["a", "b"] {
                let histogram = [
                    crate::SNAPSHOT_LATENCY_SECONDS,
                    crate::LIVENESS_PROBE_SECONDS,
                ];
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

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(super::escape("plain"), "plain");
    }
}
