//! [`ProviderStore`]: where the descriptor set is persisted.

use std::fmt;
use std::path::Path;

use provisioning_provider_api::ProviderDescriptor;

use crate::{ProvisioningError, StoreTransaction};

/// Loads and saves the whole descriptor set atomically.
///
/// A reader sees the old set or the new one, never a mix. `load` returns a
/// set that passed the store's own checks in stored order; the registry
/// validates it again. [`transaction`](Self::transaction) holds the store's
/// exclusive lock (across processes for a file store) until the transaction
/// is dropped, so a read-modify-write through
/// [`ProviderRegistry::update`](crate::ProviderRegistry::update) loses no
/// concurrent update.
pub trait ProviderStore: Send + Sync + fmt::Debug {
    /// The stored set, in stored order. A store that does not exist yet is
    /// an empty set.
    fn load(&self) -> Result<Vec<ProviderDescriptor>, ProvisioningError>;

    /// Replaces the stored set atomically (taking the lock for the write).
    fn save(&self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError>;

    /// Takes the store's exclusive lock; load and save through the returned
    /// transaction, drop it to release the lock.
    fn transaction(&self) -> Result<Box<dyn StoreTransaction + '_>, ProvisioningError>;

    /// The directory relative `file:` secret references are resolved
    /// against, for stores that live in one.
    fn base_dir(&self) -> Option<&Path> {
        None
    }
}
