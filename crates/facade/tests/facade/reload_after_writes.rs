//! A reload from the store follows every change queued before it: a
//! change that was answered is never undone by a reload whose read of the
//! store raced it (CONTRACTS §4a rule 7).

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};

use super::admin_writes::{ids, in_memory, registry, wait_active};
use super::gated_store::GatedStore;

fn metric_ids(service: &ProvisioningHandle) -> Vec<String> {
    let mut ids: Vec<String> = service
        .metrics()
        .view()
        .providers
        .keys()
        .map(ToString::to_string)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_requested_while_writes_wait_for_the_store_keeps_them() {
    let store = Arc::new(GatedStore::with_descriptors(vec![
        in_memory("a", 20),
        in_memory("b", 10),
    ]));
    let service = ClusterProvisioningService::build(registry(&store))
        .with_failover(FailoverPolicy::tight())
        .start()
        .expect("start");
    wait_active(&service, "a").await;

    // An add and a remove wait for the store's lock; a reload is asked for
    // meanwhile (SIGHUP during the writes).
    let gate = store.shut_until_dropped();
    let adding = tokio::spawn({
        let service = service.clone();
        async move { service.add_provider(in_memory("c", 30)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let removing = tokio::spawn({
        let service = service.clone();
        async move { service.remove_provider("b").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reloading = tokio::spawn({
        let service = service.clone();
        async move { service.reload_from_store(None).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(gate);

    adding.await.expect("join").expect("add");
    removing.await.expect("join").expect("remove");
    let applied = reloading.await.expect("join").expect("reload");
    let applied: Vec<String> = applied.iter().map(|d| d.id.to_string()).collect();
    println!("reload applied {applied:?} after the queued add and remove");

    let stored: Vec<String> = store.stored().iter().map(|d| d.id.to_string()).collect();
    assert_eq!(stored, ["a", "c"]);
    assert_eq!(
        ids(&service).await,
        ["c", "a"],
        "the answered writes were undone"
    );
    assert_eq!(metric_ids(&service), ["a", "c"]);
    wait_active(&service, "c").await;
    // The added provider is known to the service: adding it again is a
    // conflict, removing it works.
    let e = service
        .add_provider(in_memory("c", 30))
        .await
        .expect_err("c is already there");
    assert_eq!(e.code(), "duplicate_name");
    service.remove_provider("c").await.expect("remove c");
    assert_eq!(ids(&service).await, ["a"]);
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_an_invalid_store_keeps_the_running_set() {
    let store = Arc::new(GatedStore::with_descriptors(vec![in_memory("a", 20)]));
    let service = ClusterProvisioningService::build(registry(&store))
        .with_failover(FailoverPolicy::tight())
        .start()
        .expect("start");
    wait_active(&service, "a").await;
    // Two descriptors with one id: the stored set is invalid as a whole.
    store.edit(&[in_memory("a", 20), in_memory("a", 10)]);
    let e = service
        .reload_from_store(Some(FailoverPolicy::tight()))
        .await
        .expect_err("an invalid store is refused");
    println!("refused: error[{}]: {e}", e.code());
    assert_eq!(ids(&service).await, ["a"]);
    store.edit(&[in_memory("a", 20), in_memory("d", 40)]);
    let applied = service.reload_from_store(None).await.expect("reload");
    assert_eq!(applied.len(), 2);
    wait_active(&service, "d").await;
    service.shutdown().await.expect("shutdown");
}
