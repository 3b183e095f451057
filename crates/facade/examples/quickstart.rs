//! The seed's "enable provisioning" scenario: two in-memory providers, the
//! primary fails, the service fails over to the standby, the primary heals,
//! and after a cooldown the service fails back. Every event line is printed
//! as it is published (CONTRACTS §3).
//!
//! `cargo run -p cluster-provisioning --example quickstart`

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::api::{ClusterNode, FaultKind, ProviderFault, ProviderId};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two providers watching the same cluster: a primary (higher priority)
    // and a standby whose view differs slightly.
    let primary = InMemoryProvider::new(ProviderId::new("primary")?, 20);
    let standby = InMemoryProvider::new(ProviderId::new("standby")?, 10);
    for (id, port) in [("n1", 4000), ("n2", 4001), ("n3", 4002)] {
        primary
            .handle()
            .add(ClusterNode::new(id, "10.0.0.1", port))?;
        standby
            .handle()
            .add(ClusterNode::new(id, "10.0.0.1", port))?;
    }
    standby
        .handle()
        .add(ClusterNode::new("n4", "10.0.0.2", 4003))?;
    let (primary_backend, standby_backend) = (primary.handle(), standby.handle());

    // Short numbers so the whole story takes a few seconds.
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(FailoverPolicy::tight())
        .with_provider(Arc::new(primary))
        .with_provider(Arc::new(standby))
        .start()?;

    let mut events = service.events()?;
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("{}", event.to_json_line());
        }
    });

    let pause = Duration::from_millis(1500);
    tokio::time::sleep(pause).await;
    eprintln!("-- primary: connections refused");
    primary_backend.fail(ProviderFault::retryable(
        FaultKind::BackendUnavailable,
        "connection refused",
    ));
    tokio::time::sleep(pause).await;
    eprintln!("-- standby: n5 joins");
    standby_backend.add(ClusterNode::new("n5", "10.0.0.2", 4004))?;
    tokio::time::sleep(pause).await;
    eprintln!("-- primary: healed (fail-back after a healthy cooldown)");
    primary_backend.heal();
    tokio::time::sleep(pause * 2).await;

    service.shutdown().await?;
    printer.await?;
    Ok(())
}
