//! The service's spans exported through OpenTelemetry: `tracing` spans go
//! through `tracing-opentelemetry` to the SDK's tracer, whose exporter
//! prints each finished span to stdout. A collector's OTLP exporter plugs
//! in at the same place, with the batch processor (`with_batch_exporter`):
//! the simple one used here exports on the thread that closes the span.
//!
//! Two in-memory providers; a member joins (a publication), then the primary
//! refuses connections and the service fails over to the standby. Printed:
//! the `provider_stream` spans (with `reconnects`), the `failover_decision`
//! spans, a `publication` span per snapshot (`run_id`, `seq_no`, `epoch`,
//! `members`, `hash`), and a `bridge_call` span per call of the placement
//! bridge and a `consumer_call` span per event handed to the event sink.
//! Ends by itself after about three seconds.
//!
//! `cargo run -p cluster-provisioning --example opentelemetry_stdout`
//! (`RUST_LOG=info` shows what an exporter at `info` gets: the two stream
//! spans and the switch).

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::api::{ClusterNode, FaultKind, ProviderFault, ProviderId};
use cluster_provisioning::hub::wire::{ChangeEnvelope, SnapshotEnvelope};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, PlacementSupervisorBridge, ProvisioningEvent,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

/// A placement supervisor that places nothing: its calls are traced.
struct Placement;

impl PlacementSupervisorBridge for Placement {
    fn apply_snapshot(&self, _: &SnapshotEnvelope) {}
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Each span is exported when it ends.
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let tracer = provider.tracer("cluster-provisioning-example");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug"));
    let subscriber = Registry::default()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing::subscriber::set_global_default(subscriber)?;

    let primary = InMemoryProvider::new(ProviderId::new("primary")?, 20);
    let standby = InMemoryProvider::new(ProviderId::new("standby")?, 10);
    for backend in [primary.handle(), standby.handle()] {
        backend.add(ClusterNode::new("n1", "10.0.0.1", 4000))?;
        backend.add(ClusterNode::new("n2", "10.0.0.2", 4000))?;
    }
    let (primary_backend, standby_backend) = (primary.handle(), standby.handle());
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(FailoverPolicy::tight())
        .with_placement("placement", Arc::new(Placement))
        .with_event_sink(Arc::new(|_: Arc<ProvisioningEvent>| {}))
        .with_provider(Arc::new(primary))
        .with_provider(Arc::new(standby))
        .start()?;

    let pause = Duration::from_millis(800);
    tokio::time::sleep(pause).await;
    // A publication: n3 joins on both providers.
    for backend in [&primary_backend, &standby_backend] {
        backend.add(ClusterNode::new("n3", "10.0.0.3", 4000))?;
    }
    tokio::time::sleep(pause).await;
    // A failover: the primary refuses connections.
    primary_backend.fail(ProviderFault::retryable(
        FaultKind::BackendUnavailable,
        "connection refused",
    ));
    tokio::time::sleep(pause).await;

    // Stopping ends the stream spans; shutting the provider down flushes.
    service.shutdown().await?;
    provider.shutdown()?;
    Ok(())
}
