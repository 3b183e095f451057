//! `provisioning demo`: the embedded scenario — two in-memory providers, a
//! failure of the primary, failover, fail-back and a metrics summary.

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::api::{
    ClusterNode, FaultKind, ProviderFault, ProviderHealth, ProviderId,
};
use cluster_provisioning::hub::metrics::{LATENCY_BUCKETS, LatencyHistogram, MetricsView};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::registry::ErrorCode;
use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProvisioningHandle, ProvisioningMetrics,
    PublishedSnapshot,
};
use futures::StreamExt;
use serde_json::json;

use crate::cli_error::CliError;
use crate::output::Output;
use crate::shutdown_signals::ShutdownSignals;
use crate::text_table::TextTable;
use crate::watch_command::print_event;

/// How long one step may take before the demo reports a failure.
const STEP_LIMIT: Duration = Duration::from_secs(15);

/// Runs the scenario; about 10 seconds with the tight policy.
pub(crate) async fn run(out: &Output) -> Result<(), CliError> {
    let mut signals = ShutdownSignals::register()?;
    tokio::select! {
        result = scenario(out) => result,
        name = signals.recv() => {
            out.note(&format!("{name}: demo stopped"));
            Ok(())
        }
    }
}

fn id(text: &str) -> Result<ProviderId, CliError> {
    ProviderId::new(text).map_err(|e| CliError::invalid_argument(e.to_string()))
}

fn node(id: &str, host: &str) -> ClusterNode {
    ClusterNode::new(id, host, 4000)
}

fn handle_error(e: impl std::fmt::Display) -> CliError {
    CliError::runtime(ErrorCode::InvalidArgument, format!("demo: {e}"))
}

async fn scenario(out: &Output) -> Result<(), CliError> {
    let policy = FailoverPolicy::tight();
    let primary_id = id("primary")?;
    let standby_id = id("standby")?;
    let primary = InMemoryProvider::new(primary_id.clone(), 20);
    let standby = InMemoryProvider::new(standby_id.clone(), 10);
    let (p, s) = (primary.handle(), standby.handle());
    for (n, host) in [("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("n3", "10.0.0.3")] {
        p.add(node(n, host)).map_err(handle_error)?;
        s.add(node(n, host)).map_err(handle_error)?;
    }
    let metrics = ProvisioningMetrics::new();
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(policy.clone())
        .with_metrics(metrics.clone())
        .with_provider(Arc::new(primary))
        .with_provider(Arc::new(standby))
        .start()?;

    let mut events = service.events()?;
    let printer_out = *out;
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            if print_event(&event, &printer_out).is_err() {
                break;
            }
        }
    });

    let result = steps(&service, out, &policy, &p, &s, &primary_id, &standby_id).await;
    let _ = service.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), printer).await;
    result?;
    summary(&metrics.view(), out);
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "the scenario's cast, passed once from one place"
)]
async fn steps(
    service: &ProvisioningHandle,
    out: &Output,
    policy: &FailoverPolicy,
    p: &cluster_provisioning::memory::InMemoryHandle,
    s: &cluster_provisioning::memory::InMemoryHandle,
    primary_id: &ProviderId,
    standby_id: &ProviderId,
) -> Result<(), CliError> {
    let step = |text: &str| out.text_line(&format!("\n== {text}"));
    step(
        "1. Two in-memory providers watch the same cluster: `primary` (priority 20) \
         and `standby` (priority 10). The primary's snapshot is published:",
    );
    wait_for_active(service, primary_id).await?;
    tokio::time::sleep(Duration::from_millis(2000)).await;

    step("2. Node n4 joins; n2 is blocked (a block list travels with the snapshot):");
    p.add(node("n4", "10.0.0.4")).map_err(handle_error)?;
    s.add(node("n4", "10.0.0.4")).map_err(handle_error)?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    p.block("n2");
    s.block("n2");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    step(
        "3. The primary's backend refuses connections: fast retries, then `unreachable`, \
         and the service fails over to the warm standby at once:",
    );
    p.fail(ProviderFault::retryable(
        FaultKind::BackendUnavailable,
        "connection refused",
    ));
    wait_for_active(service, standby_id).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    out.text_line(
        "   The standby's view has the same hash: consumers get `provider_changed` \
         and no membership churn.",
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;

    step(&format!(
        "4. The primary comes back. Fail-back waits until it has been healthy for a \
         whole cooldown ({} ms here), so a flapping backend cannot cause a switch storm:",
        policy.cooldown.as_millis()
    ));
    p.heal();
    wait_for_active(service, primary_id).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    step("5. Metrics recorded during the run (the admin API exports them to Prometheus):");
    Ok(())
}

/// Waits until `provider` published the latest snapshot.
async fn wait_for_active(
    service: &ProvisioningHandle,
    provider: &ProviderId,
) -> Result<(), CliError> {
    let mut topology = service.subscribe();
    let is_from = |s: &Option<Arc<PublishedSnapshot>>| {
        s.as_ref().is_some_and(|s| s.provider_id() == provider)
    };
    match tokio::time::timeout(STEP_LIMIT, topology.wait_for(is_from)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            "demo: the service stopped",
        )),
        Err(_) => Err(CliError::runtime(
            ErrorCode::Timeout,
            format!(
                "demo: {provider} did not become active within {} s",
                STEP_LIMIT.as_secs()
            ),
        )),
    }
}

/// The upper bound of the bucket holding quantile `q`.
fn quantile(histogram: &LatencyHistogram, q: f64) -> Option<f64> {
    if histogram.count == 0 {
        return None;
    }
    let rank = (q * histogram.count as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, count) in histogram.counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY));
        }
    }
    None
}

fn seconds_text(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".to_owned(),
        Some(s) if s.is_infinite() => "> 10 s".to_owned(),
        Some(s) if s < 1e-3 => format!("≤ {:.1} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("≤ {:.1} ms", s * 1e3),
        Some(s) => format!("≤ {s:.1} s"),
    }
}

fn health_text(health: Option<ProviderHealth>) -> String {
    health.map_or_else(|| "-".to_owned(), |h| h.as_str().to_owned())
}

fn summary(view: &MetricsView, out: &Output) {
    if out.json() {
        let failovers: Vec<_> = view
            .failovers
            .iter()
            .map(|(k, n)| json!({"from": k.from, "to": k.to, "reason": k.reason.as_str(), "count": n}))
            .collect();
        let providers: serde_json::Map<String, serde_json::Value> = view
            .providers
            .iter()
            .map(|(id, p)| {
                (
                    id.to_string(),
                    json!({
                        "health": p.health.map(|h| h.as_str()),
                        "active": p.active,
                        "members": p.members,
                        "stream_interruptions": p.stream_interruptions,
                        "snapshots_delivered": p.snapshot_latency.count,
                        "latency_p50_le_seconds": quantile(&p.snapshot_latency, 0.5),
                        "latency_p99_le_seconds": quantile(&p.snapshot_latency, 0.99),
                    }),
                )
            })
            .collect();
        out.line(
            &json!({"demo_summary": {"failovers": failovers, "providers": providers, "unavailable": view.unavailable}})
                .to_string(),
        );
        return;
    }
    let mut failovers = TextTable::new(&["FROM", "TO", "REASON", "COUNT"]);
    for (key, count) in &view.failovers {
        failovers.row(vec![
            key.from.clone(),
            key.to.clone(),
            key.reason.as_str().to_owned(),
            count.to_string(),
        ]);
    }
    out.line("provisioning_failovers_total:");
    for line in failovers.lines() {
        out.line(&format!("  {line}"));
    }
    let mut providers = TextTable::new(&[
        "",
        "PROVIDER",
        "HEALTH",
        "MEMBERS",
        "INTERRUPTIONS",
        "PUBLISHED",
        "LATENCY p50",
        "p99",
    ]);
    for (id, p) in &view.providers {
        providers.row(vec![
            if p.active { "*" } else { "" }.to_owned(),
            id.to_string(),
            health_text(p.health),
            p.members.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            p.stream_interruptions.to_string(),
            p.snapshot_latency.count.to_string(),
            seconds_text(quantile(&p.snapshot_latency, 0.5)),
            seconds_text(quantile(&p.snapshot_latency, 0.99)),
        ]);
    }
    out.line("providers (* active; latency: provider event -> every consumer has it):");
    for line in providers.lines() {
        out.line(&format!("  {line}"));
    }
    out.line(&format!(
        "provisioning_unavailable: {}",
        u8::from(view.unavailable)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_bucket_bounds() {
        let histogram = LatencyHistogram::default();
        assert_eq!(quantile(&histogram, 0.5), None);
        let mut counts = vec![0; LATENCY_BUCKETS.len() + 1];
        counts[3] = 9; // ≤ 10 µs
        counts[9] = 1; // ≤ 1 ms
        let mut histogram = LatencyHistogram::default();
        histogram.counts = counts;
        histogram.count = 10;
        assert_eq!(quantile(&histogram, 0.5), Some(LATENCY_BUCKETS[3]));
        assert_eq!(quantile(&histogram, 0.99), Some(LATENCY_BUCKETS[9]));
        assert_eq!(seconds_text(Some(1e-5)), "≤ 10.0 µs");
    }
}
