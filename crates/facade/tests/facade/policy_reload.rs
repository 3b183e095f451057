//! A policy reload applies in place: the same run, and no verdict that
//! only the change of numbers would cause.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::api::ProviderHealth;
use cluster_provisioning::registry::MemoryProviderStore;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProviderRegistry};

use super::admin_writes::{in_memory, wait_active};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_timeout_applies_without_declaring_a_healthy_provider_dead() {
    let store = Arc::new(MemoryProviderStore::with_descriptors(vec![in_memory(
        "a", 20,
    )]));
    let registry = ProviderRegistry::builder()
        .with_validator(cluster_provisioning::builtin_validator())
        .with_store(store)
        .build();
    registry.load().expect("load");
    // Default policy: the stream heartbeats every 5 s (a third of 15 s).
    let service = ClusterProvisioningService::build(registry.clone())
        .start()
        .expect("start");
    wait_active(&service, "a").await;
    let run = service.run_id();
    // Silent for longer than the new timeout allows, yet healthy.
    let started = Instant::now();
    loop {
        let views = service.providers().await.expect("providers");
        if views[0]
            .last_event_age
            .is_some_and(|age| age >= Duration::from_secs(2))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{views:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 15 s -> 1.5 s.
    service
        .reload_with_policy(registry, FailoverPolicy::tight())
        .await
        .expect("reload");
    let watched = Instant::now();
    let mut samples = 0;
    while watched.elapsed() < Duration::from_secs(4) {
        let views = service.providers().await.expect("providers");
        assert_eq!(
            views[0].health,
            Some(ProviderHealth::Healthy),
            "after {:?}: {views:?}",
            watched.elapsed()
        );
        assert!(!service.is_unavailable(), "after {:?}", watched.elapsed());
        samples += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("healthy in {samples} samples over 4 s after the timeout went from 15 s to 1.5 s");
    assert_eq!(service.run_id(), run);
    service.shutdown().await.expect("shutdown");
}
