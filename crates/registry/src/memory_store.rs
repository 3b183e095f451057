//! [`MemoryProviderStore`]: a store that keeps the set in memory.

use std::sync::{Mutex, MutexGuard, PoisonError};

use provisioning_provider_api::ProviderDescriptor;

use crate::{ProviderStore, ProvisioningError, StoreTransaction};

/// Keeps the descriptor set in memory: the default store of a
/// [`ProviderRegistry`](crate::ProviderRegistry) built without one, and a
/// test double. Its lock serialises transactions within the process.
#[derive(Debug, Default)]
pub struct MemoryProviderStore {
    set: Mutex<Vec<ProviderDescriptor>>,
}

impl MemoryProviderStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `descriptors`.
    pub fn with_descriptors(descriptors: Vec<ProviderDescriptor>) -> Self {
        Self {
            set: Mutex::new(descriptors),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ProviderDescriptor>> {
        // A panic elsewhere never leaves the Vec half-written: assignments
        // replace it whole.
        self.set.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct MemoryTransaction<'a>(MutexGuard<'a, Vec<ProviderDescriptor>>);

impl StoreTransaction for MemoryTransaction<'_> {
    fn load(&mut self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        Ok(self.0.clone())
    }

    fn save(&mut self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        *self.0 = descriptors.to_vec();
        Ok(())
    }
}

impl ProviderStore for MemoryProviderStore {
    fn load(&self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        Ok(self.lock().clone())
    }

    fn save(&self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        *self.lock() = descriptors.to_vec();
        Ok(())
    }

    fn transaction(&self) -> Result<Box<dyn StoreTransaction + '_>, ProvisioningError> {
        Ok(Box::new(MemoryTransaction(self.lock())))
    }
}
