//! The Prometheus text exposition (format 0.0.4) of a [`MetricsView`]: what
//! `GET /metrics` serves.
//!
//! Rendered from the in-process view rather than from a `metrics` recorder,
//! so the exposition follows the running set exactly: a provider joins it
//! with every series at 0 and leaves it with all of them (CONTRACTS §5),
//! with no exporter idle timeout to tune.

use std::fmt::Write as _;

use crate::metric_names::{
    ACTIVE_PROVIDER, FAILOVERS_TOTAL, LATENCY_BUCKETS, LIVENESS_FAILURES_TOTAL,
    LIVENESS_PROBE_SECONDS, MEMBERS, PROVIDER_DISAGREEMENT_MEMBERS, PROVIDER_HEALTH,
    SNAPSHOT_AGE_SECONDS, SNAPSHOT_LATENCY_SECONDS, STREAM_INTERRUPTIONS_TOTAL,
    SUPPRESSED_SHRINKS_TOTAL, UNAVAILABLE,
};
use crate::metrics_view::{LatencyHistogram, MetricsView, ProviderMetricsView};

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
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(super::escape("plain"), "plain");
    }
}
