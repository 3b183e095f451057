//! Changes to the provider set are persisted off the driver task
//! (CONTRACTS §4a rule 6), and what a change commits is what runs (rule 7).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::api::{FaultKind, ProviderDescriptor, ProviderFault};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::registry::descriptor_from_json;
use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};

use super::gated_store::GatedStore;

/// Bound for anything that must not wait for the store: a tight policy
/// switches within about 100 ms; 3 × 1 s + 2 s of margin.
const PROMPT: Duration = Duration::from_secs(5);

/// An in-memory descriptor seeing `n1` and `n2`.
pub(crate) fn in_memory(id: &str, priority: u32) -> ProviderDescriptor {
    descriptor_from_json(&format!(
        r#"{{"id":"{id}","kind":"in_memory","priority":{priority},"watch":{{"members":[{{"id":"n1","host":"127.0.0.1","port":4000}},{{"id":"n2","host":"127.0.0.1","port":4001}}]}}}}"#
    ))
    .expect("descriptor")
}

/// Waits until `provider` is published.
pub(crate) async fn wait_active(service: &ProvisioningHandle, provider: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if service
            .topology()
            .is_some_and(|t| t.provider_id().as_str() == provider)
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{provider} not active after 10 s");
}

pub(crate) async fn ids(service: &ProvisioningHandle) -> Vec<String> {
    service
        .providers()
        .await
        .expect("providers")
        .iter()
        .map(|v| v.descriptor.id.to_string())
        .collect()
}

pub(crate) fn registry(store: &Arc<GatedStore>) -> ProviderRegistry {
    let registry = ProviderRegistry::builder()
        .with_validator(cluster_provisioning::builtin_validator())
        .with_store(store.clone())
        .build();
    registry.load().expect("load");
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_for_the_store_holds_up_no_event_read_or_switch() {
    let store = Arc::new(GatedStore::with_descriptors(vec![
        in_memory("a", 20),
        in_memory("b", 10),
    ]));
    let a = InMemoryProvider::from_descriptor(in_memory("a", 20)).expect("a");
    let backend_a = a.handle();
    let service = ClusterProvisioningService::build(registry(&store))
        .with_failover(FailoverPolicy::tight())
        .with_provider(Arc::new(a))
        .start()
        .expect("start");
    wait_active(&service, "a").await;

    let gate = store.shut_until_dropped();
    let adding = tokio::spawn({
        let service = service.clone();
        async move { service.add_provider(in_memory("c", 5)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !adding.is_finished(),
        "the write did not wait for the store"
    );

    let started = Instant::now();
    let listed = tokio::time::timeout(PROMPT, ids(&service))
        .await
        .expect("providers() waited for the store");
    println!(
        "providers() while a write waits for the store: {:?}",
        started.elapsed()
    );
    assert_eq!(listed, ["a", "b"]);

    backend_a.fail(ProviderFault::retryable(
        FaultKind::BackendUnavailable,
        "connection refused",
    ));
    let took = tokio::time::timeout(PROMPT, wait_active(&service, "b"))
        .await
        .expect("the switch waited for the store");
    println!("refused -> switch while a write waits for the store: {took:?}");
    assert!(
        !adding.is_finished(),
        "the write finished with the store shut"
    );
    assert_eq!(store.saves(), 0);

    drop(gate);
    adding.await.expect("join").expect("add");
    assert_eq!(ids(&service).await, ["a", "b", "c"]);
    assert_eq!(store.saves(), 1, "one change, one save");
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_runs_exactly_the_set_it_commits() {
    let store = Arc::new(GatedStore::with_descriptors(vec![
        in_memory("x", 30),
        in_memory("b", 10),
    ]));
    let service = ClusterProvisioningService::build(registry(&store))
        .with_failover(FailoverPolicy::tight())
        .start()
        .expect("start");
    wait_active(&service, "x").await;

    // Removed by hand: nothing runs differently until a change is applied.
    store.edit(&[in_memory("b", 10)]);
    assert_eq!(ids(&service).await, ["x", "b"]);

    // The change commits the stored set plus itself; `x` stops with it.
    service.add_provider(in_memory("c", 20)).await.expect("add");
    assert_eq!(ids(&service).await, ["c", "b"]);
    let started = Instant::now();
    while service
        .topology()
        .is_some_and(|t| t.provider_id().as_str() == "x")
        && started.elapsed() < PROMPT
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let published = service.topology().expect("topology");
    assert_ne!(published.provider_id().as_str(), "x", "x still runs unseen");
    let views = service.providers().await.expect("providers");
    let active: Vec<&str> = views
        .iter()
        .filter(|v| v.active)
        .map(|v| v.descriptor.id.as_str())
        .collect();
    assert_eq!(active, [published.provider_id().as_str()]);
    let metrics = service.metrics().view();
    assert!(
        !metrics.providers.keys().any(|id| id.as_str() == "x"),
        "x still has metrics: {:?}",
        metrics.providers.keys()
    );
    let stored: Vec<String> = store.stored().iter().map(|d| d.id.to_string()).collect();
    assert_eq!(stored, ["b", "c"]);

    // A reload is reconciled the same way.
    let next = ProviderRegistry::builder()
        .with_validator(cluster_provisioning::builtin_validator())
        .with_store(store.clone())
        .build();
    next.register(in_memory("c", 20)).expect("c");
    service.reload(next).await.expect("reload");
    assert_eq!(ids(&service).await, ["c"]);
    wait_active(&service, "c").await;
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_that_cannot_run_is_never_written() {
    let store = Arc::new(GatedStore::with_descriptors(vec![in_memory("a", 20)]));
    let service = ClusterProvisioningService::build(registry(&store))
        .with_failover(FailoverPolicy::tight())
        .start()
        .expect("start");
    wait_active(&service, "a").await;
    // Added by hand: a valid descriptor whose provider cannot be built (no
    // Consul backend in this build, or, with one, a CA file that does not
    // exist).
    let custom = descriptor_from_json(
        r#"{"id":"odd","kind":"consul","priority":7,"endpoints":["https://127.0.0.1:1"],"tls":{"ca":"/nonexistent/ca.pem"},"watch":{"service":"app","wait":"100ms"}}"#,
    )
    .expect("descriptor");
    store.edit(&[in_memory("a", 20), custom]);
    let e = service
        .add_provider(in_memory("c", 5))
        .await
        .expect_err("a stored provider cannot be built");
    println!("refused: error[{}]: {e}", e.code());
    assert_eq!(store.saves(), 0, "written although the set cannot run");
    assert_eq!(ids(&service).await, ["a"]);
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_pending_at_shutdown_commits_nothing() {
    let store = Arc::new(GatedStore::with_descriptors(vec![in_memory("a", 20)]));
    let service = ClusterProvisioningService::build(registry(&store))
        .with_failover(FailoverPolicy::tight())
        .start()
        .expect("start");
    wait_active(&service, "a").await;
    let gate = store.shut_until_dropped();
    let adding = tokio::spawn({
        let service = service.clone();
        async move { service.add_provider(in_memory("c", 5)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    tokio::time::timeout(PROMPT, service.shutdown())
        .await
        .expect("shutdown waited for the store")
        .expect("shutdown");
    println!(
        "shutdown with a write waiting for the store: {:?}",
        started.elapsed()
    );
    let e = adding.await.expect("join").expect_err("stopped");
    println!("the pending write's caller: error[{}]: {e}", e.code());
    assert_eq!(e.code(), "provisioning_unavailable");
    // The caller cannot tell from "stopped" whether its change was saved:
    // the write may have passed the stop check just before.
    assert!(e.to_string().contains("unknown"), "{e}");
    drop(gate);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.saves(), 0);
    assert_eq!(store.stored(), vec![in_memory("a", 20)]);
}
