//! [`StoreTransaction`]: load and save under a store's lock.

use provisioning_provider_api::ProviderDescriptor;

use crate::ProvisioningError;

/// A store opened under its exclusive lock
/// ([`ProviderStore::transaction`](crate::ProviderStore::transaction)). The
/// lock is released when the transaction is dropped.
pub trait StoreTransaction {
    /// The stored set, in stored order.
    fn load(&mut self) -> Result<Vec<ProviderDescriptor>, ProvisioningError>;

    /// Replaces the stored set atomically, still under the lock.
    fn save(&mut self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError>;
}
