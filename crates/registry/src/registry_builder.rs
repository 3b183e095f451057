//! [`ProviderRegistryBuilder`].

use std::sync::Arc;

use crate::{ProviderRegistry, ProviderStore, ProviderValidator};

/// Builds a [`ProviderRegistry`]: `ProviderRegistry::builder()
/// .with_validator(..).with_store(..).build()`.
#[derive(Debug, Default)]
pub struct ProviderRegistryBuilder {
    validator: ProviderValidator,
    store: Option<Arc<dyn ProviderStore>>,
}

impl ProviderRegistryBuilder {
    /// No kind, in-memory store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates with `validator` (the kinds it knows, probes).
    pub fn with_validator(mut self, validator: ProviderValidator) -> Self {
        self.validator = validator;
        self
    }

    /// Persists in `store`.
    pub fn with_store(mut self, store: Arc<dyn ProviderStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The registry, empty until [`ProviderRegistry::load`] or
    /// [`ProviderRegistry::register`].
    pub fn build(self) -> ProviderRegistry {
        ProviderRegistry::from_parts(self.validator, self.store)
    }
}
