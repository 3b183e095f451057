//! [`ProviderRegistry`]: the registered providers, shared by the service,
//! the admin API and the CLI.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use provisioning_provider_api::ProviderDescriptor;

use crate::{
    MemoryProviderStore, ProviderRegistryBuilder, ProviderSet, ProviderStore, ProviderValidator,
    ProvisioningError, SecretResolver,
};

/// The registered providers: a validated [`ProviderSet`] in memory plus the
/// [`ProviderStore`] it is persisted in.
///
/// Cloning is cheap and shares the state. [`register`](Self::register),
/// [`unregister`](Self::unregister), [`enable`](Self::enable) and
/// [`disable`](Self::disable) change the in-memory set (nothing changes on a
/// rejection); [`save`](Self::save) persists it and [`load`](Self::load)
/// replaces it from the store as a whole or not at all.
/// [`update`](Self::update) is the read-modify-write path for operators and
/// the admin API: it holds the store's lock across load, change and save,
/// so concurrent updates from several processes are all kept.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind};
/// use provisioning_registry::{ProviderRegistry, ProviderValidator};
/// // The kinds a registry accepts are the ones its validator knows.
/// let validator = ProviderValidator::new()
///     .with_kind(Arc::new(provisioning_backend_memory::InMemoryKind::new()))
///     .with_kind(Arc::new(provisioning_backend_etcd::EtcdKind::new()));
/// let registry = ProviderRegistry::builder().with_validator(validator).build();
/// registry.register(ProviderDescriptor::new(ProviderId::new("local")?, ProviderKind::InMemory, 0))?;
/// registry.register(
///     ProviderDescriptor::new(ProviderId::new("etcd-a")?, ProviderKind::Etcd, 10)
///         .with_endpoint("http://127.0.0.1:2379")
///         .with_watch("prefix", "/cluster/app/"),
/// )?;
/// let dup = ProviderDescriptor::new(ProviderId::new("other")?, ProviderKind::InMemory, 10);
/// assert_eq!(registry.register(dup).unwrap_err().code(), "duplicate_priority");
/// let ids: Vec<_> = registry.list().into_iter().map(|d| d.id.to_string()).collect();
/// assert_eq!(ids, ["etcd-a", "local"]);
/// registry.save()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ProviderRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    validator: Arc<ProviderValidator>,
    store: Arc<dyn ProviderStore>,
    set: Mutex<ProviderSet>,
    /// Serialises `update` within the process so the in-memory set is
    /// replaced in commit order.
    updating: Mutex<()>,
}

impl Default for ProviderRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderRegistry {
    /// An empty registry with an in-memory store that knows no kind yet
    /// (see [`builder`](Self::builder) and
    /// [`ProviderValidator::with_kind`](crate::ProviderValidator::with_kind)).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the validator and the store.
    pub fn builder() -> ProviderRegistryBuilder {
        ProviderRegistryBuilder::new()
    }

    pub(crate) fn from_parts(
        validator: ProviderValidator,
        store: Option<Arc<dyn ProviderStore>>,
    ) -> Self {
        let validator = Arc::new(validator);
        Self {
            inner: Arc::new(Inner {
                set: Mutex::new(ProviderSet::new(validator.clone())),
                validator,
                store: store.unwrap_or_else(|| Arc::new(MemoryProviderStore::new())),
                updating: Mutex::new(()),
            }),
        }
    }

    fn set(&self) -> MutexGuard<'_, ProviderSet> {
        // Every change to the set is checked first and applied in one step,
        // so a panic elsewhere cannot leave it half-changed.
        self.inner
            .set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a descriptor to the in-memory set after every check.
    pub fn register(&self, descriptor: ProviderDescriptor) -> Result<(), ProvisioningError> {
        self.set().register(descriptor)
    }

    /// Removes a descriptor; `not_found` when the id is unknown.
    pub fn unregister(&self, id: &str) -> Result<ProviderDescriptor, ProvisioningError> {
        self.set().unregister(id)
    }

    /// Enables a descriptor; `not_found` when the id is unknown.
    pub fn enable(&self, id: &str) -> Result<(), ProvisioningError> {
        self.set().set_enabled(id, true).map(drop)
    }

    /// Disables a descriptor; `not_found` when the id is unknown.
    pub fn disable(&self, id: &str) -> Result<(), ProvisioningError> {
        self.set().set_enabled(id, false).map(drop)
    }

    /// The descriptor with this id.
    pub fn get(&self, id: &str) -> Option<ProviderDescriptor> {
        self.set().get(id).cloned()
    }

    /// All descriptors, highest priority first.
    pub fn list(&self) -> Vec<ProviderDescriptor> {
        self.set().list()
    }

    /// A copy of the current set.
    pub fn snapshot(&self) -> ProviderSet {
        self.set().clone()
    }

    /// Number of registered descriptors.
    pub fn len(&self) -> usize {
        self.set().len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.set().is_empty()
    }

    /// Persists the in-memory set (atomically, under the store's lock).
    pub fn save(&self) -> Result<(), ProvisioningError> {
        let descriptors = self.set().descriptors().to_vec();
        self.inner.store.save(&descriptors)
    }

    /// Replaces the in-memory set with the stored one, validated as a
    /// whole; on any error nothing changes.
    pub fn load(&self) -> Result<(), ProvisioningError> {
        let loaded = self.inner.store.load()?;
        let set = ProviderSet::from_descriptors(self.inner.validator.clone(), loaded)?;
        *self.set() = set;
        Ok(())
    }

    /// Read-modify-write of the stored set: takes the store's lock, loads,
    /// lets `change` modify the set, saves if it changed, releases the lock
    /// and makes the result the in-memory set. If `change` or any step
    /// fails, neither the store nor the in-memory set changes.
    ///
    /// The stored set is the base: in-memory changes not yet
    /// [`save`](Self::save)d are replaced. `change` must not call
    /// [`update`](Self::update) on the same registry (it would wait for
    /// itself).
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut ProviderSet) -> Result<T, ProvisioningError>,
    ) -> Result<T, ProvisioningError> {
        let _serial = self
            .inner
            .updating
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut transaction = self.inner.store.transaction()?;
        let loaded = transaction.load()?;
        let mut set = ProviderSet::from_descriptors(self.inner.validator.clone(), loaded)?;
        let before = set.descriptors().to_vec();
        let out = change(&mut set)?;
        if set.descriptors() != before.as_slice() {
            transaction.save(set.descriptors())?;
        }
        drop(transaction);
        *self.set() = set;
        Ok(out)
    }

    /// The validator registrations are checked with.
    pub fn validator(&self) -> &ProviderValidator {
        &self.inner.validator
    }

    /// A [`SecretResolver`] for the store's directory (the current
    /// directory for stores that have none).
    pub fn secret_resolver(&self) -> SecretResolver {
        let dir = self.inner.store.base_dir().map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
        SecretResolver::new(std::path::absolute(&dir).unwrap_or(dir))
    }

    /// The store the set is persisted in.
    pub fn store(&self) -> &Arc<dyn ProviderStore> {
        &self.inner.store
    }
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("providers", &self.set().descriptors().len())
            .field("store", &self.inner.store)
            .finish()
    }
}
