//! How often the service writes the provider store, checked with mockall:
//! exactly one save per admin change made through the handle, none for a
//! refused change, none for a read.
//!
//! Counted where the set reaches the store (`StoreTransaction::save` and
//! `ProviderStore::save`), whatever task or thread of the service writes it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cluster_provisioning::api::{ProviderDescriptor, ProviderId, ProviderKind};
use cluster_provisioning::registry::{ProviderStore, StoreTransaction, descriptor_from_json};
use cluster_provisioning::{ClusterProvisioningService, ProviderRegistry, ProvisioningError};
use mockall::mock;

mock! {
    Store {}
    impl ProviderStore for Store {
        fn load(&self) -> Result<Vec<ProviderDescriptor>, ProvisioningError>;
        fn save(&self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError>;
        // The transactions handed out borrow nothing from the store, and
        // mockall can only store answers that are `'static`.
        fn transaction(&self) -> Result<Box<dyn StoreTransaction + 'static>, ProvisioningError>;
    }
}

// `ProviderStore` requires `Debug`, which mockall does not derive.
impl std::fmt::Debug for MockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockStore")
    }
}

mock! {
    Transaction {}
    impl StoreTransaction for Transaction {
        fn load(&mut self) -> Result<Vec<ProviderDescriptor>, ProvisioningError>;
        fn save(&mut self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError>;
    }
}

/// What the store holds, shared by the mocks' answers.
type Disk = Arc<Mutex<Vec<ProviderDescriptor>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A mock that panicked on an unexpected call poisons its lock; the test
    // has failed then, and the later checks still read the state.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every transaction the store opens hands its calls to this one mock, so
/// that the test can count the saves of each admin change, whichever
/// transaction made them, and verify them before the next change.
struct SharedTransaction(Arc<Mutex<MockTransaction>>);

impl StoreTransaction for SharedTransaction {
    fn load(&mut self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        lock(&self.0).load()
    }

    fn save(&mut self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        lock(&self.0).save(descriptors)
    }
}

struct Harness {
    disk: Disk,
    transaction: Arc<Mutex<MockTransaction>>,
}

impl Harness {
    /// A store holding `initial`: loads answer what it holds, transactions
    /// go to the shared transaction mock, and `ProviderStore::save` is never
    /// called (the service writes through transactions only).
    fn new(initial: Vec<ProviderDescriptor>) -> (Self, MockStore) {
        let disk: Disk = Arc::new(Mutex::new(initial));
        let transaction = Arc::new(Mutex::new(MockTransaction::new()));
        let mut store = MockStore::new();
        let read = disk.clone();
        store
            .expect_load()
            .returning(move || Ok(lock(&read).clone()));
        store.expect_save().never();
        let shared = transaction.clone();
        store
            .expect_transaction()
            .returning(move || Ok(Box::new(SharedTransaction(shared.clone()))));
        let harness = Self { disk, transaction };
        harness.expect_saves(0, |_| true);
        (harness, store)
    }

    /// The next step must save `count` times, each a set `what` accepts.
    fn expect_saves(
        &self,
        count: usize,
        what: impl Fn(&[ProviderDescriptor]) -> bool + Send + 'static,
    ) {
        let mut transaction = lock(&self.transaction);
        let read = self.disk.clone();
        transaction
            .expect_load()
            .returning(move || Ok(lock(&read).clone()));
        let write = self.disk.clone();
        transaction
            .expect_save()
            .withf(move |set| what(set))
            .times(count)
            .returning(move |set| {
                *lock(&write) = set.to_vec();
                Ok(())
            });
    }

    /// Verifies the step's saves (mockall names the expectation and the
    /// count on failure) and clears them for the next step.
    fn verify(&self, step: &str) {
        println!("checked the saves of: {step}");
        lock(&self.transaction).checkpoint();
    }
}

fn in_memory(id: &str, priority: u32, member: &str) -> ProviderDescriptor {
    descriptor_from_json(&format!(
        r#"{{"id":"{id}","kind":"in_memory","priority":{priority},"watch":{{"members":[{{"id":"{member}","host":"127.0.0.1","port":4000}}]}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{id}: {e}"))
}

fn find<'a>(set: &'a [ProviderDescriptor], id: &str) -> Option<&'a ProviderDescriptor> {
    set.iter().find(|d| d.id.as_str() == id)
}

fn assert_refused(result: Result<impl std::fmt::Debug, ProvisioningError>, code: &str) {
    match result {
        Err(e) => assert_eq!(e.code(), code, "{e}"),
        Ok(v) => panic!("expected {code}, got Ok({v:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_admin_change_saves_once_and_refusals_and_reads_save_nothing() {
    let (h, store) = Harness::new(vec![in_memory("primary", 20, "n1")]);
    let registry = ProviderRegistry::builder()
        .with_validator(cluster_provisioning::builtin_validator())
        .with_store(Arc::new(store))
        .build();
    registry.load().expect("load the store");
    let service = ClusterProvisioningService::build(registry)
        .start()
        .expect("start");
    h.verify("start");

    // Reads.
    h.expect_saves(0, |_| true);
    let mut topology = service.subscribe();
    tokio::time::timeout(Duration::from_secs(5), topology.wait_for(|s| s.is_some()))
        .await
        .expect("a first snapshot within 5 s")
        .expect("topology channel open");
    assert!(service.topology().is_some());
    let views = service.providers().await.expect("providers");
    assert_eq!(views.len(), 1);
    h.verify("providers() and topology()");

    // One change, one save.
    h.expect_saves(1, |set| {
        set.len() == 2 && find(set, "extra").is_some_and(|d| d.enabled)
    });
    service
        .add_provider(in_memory("extra", 10, "n2"))
        .await
        .expect("add extra");
    h.verify("add_provider");

    // Refused changes.
    h.expect_saves(0, |_| true);
    assert_refused(
        service.add_provider(in_memory("extra", 11, "n3")).await,
        "duplicate_name",
    );
    assert_refused(
        service.add_provider(in_memory("other", 10, "n3")).await,
        "duplicate_priority",
    );
    let no_endpoints = ProviderDescriptor::new(
        ProviderId::new("consul-a").expect("id"),
        ProviderKind::Consul,
        30,
    );
    assert_refused(service.add_provider(no_endpoints).await, "invalid_config");
    assert_refused(service.remove_provider("nope").await, "not_found");
    assert_refused(service.disable("nope").await, "not_found");
    assert_refused(service.enable("nope").await, "not_found");
    h.verify("refused changes");

    h.expect_saves(1, |set| {
        set.len() == 2 && find(set, "extra").is_some_and(|d| !d.enabled)
    });
    service.disable("extra").await.expect("disable extra");
    h.verify("disable");

    h.expect_saves(1, |set| {
        set.len() == 2 && find(set, "extra").is_some_and(|d| d.enabled)
    });
    service.enable("extra").await.expect("enable extra");
    h.verify("enable");

    h.expect_saves(1, |set| set.len() == 1 && find(set, "extra").is_none());
    let removed = service
        .remove_provider("extra")
        .await
        .expect("remove extra");
    assert_eq!(removed.id.as_str(), "extra");
    h.verify("remove_provider");

    h.expect_saves(0, |_| true);
    let views = service.providers().await.expect("providers");
    assert_eq!(views.len(), 1);
    service.shutdown().await.expect("shutdown");
    h.verify("providers() and shutdown");
    let stored: Vec<String> = lock(&h.disk).iter().map(|d| d.id.to_string()).collect();
    assert_eq!(stored, ["primary"]);
}
