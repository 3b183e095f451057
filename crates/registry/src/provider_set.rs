//! [`ProviderSet`]: a validated set of descriptors.

use std::sync::Arc;

use provisioning_provider_api::ProviderDescriptor;

use crate::{ProviderValidator, ProvisioningError};

/// A set of descriptors that always passes [`ProviderValidator`]: every
/// descriptor valid on its own, ids and priorities unique, no conflicts.
///
/// Descriptors keep their stored (insertion) order, so a loaded store is
/// saved back unchanged; [`list`](Self::list) sorts highest priority first.
/// Every change is checked before it is applied: a rejected change leaves
/// the set as it was.
#[derive(Debug, Clone)]
pub struct ProviderSet {
    validator: Arc<ProviderValidator>,
    descriptors: Vec<ProviderDescriptor>,
}

impl ProviderSet {
    /// An empty set.
    pub fn new(validator: Arc<ProviderValidator>) -> Self {
        Self {
            validator,
            descriptors: Vec::new(),
        }
    }

    /// A set of `descriptors`, checked in order.
    pub fn from_descriptors(
        validator: Arc<ProviderValidator>,
        descriptors: Vec<ProviderDescriptor>,
    ) -> Result<Self, ProvisioningError> {
        validator.validate_set(&descriptors).map_err(|(_, e)| e)?;
        Ok(Self {
            validator,
            descriptors,
        })
    }

    /// Adds a descriptor: `duplicate_name`, `duplicate_priority`,
    /// `conflict`, `invalid_config`, `inline_secret` on rejection.
    pub fn register(&mut self, descriptor: ProviderDescriptor) -> Result<(), ProvisioningError> {
        self.validator
            .check_against(&self.descriptors, &descriptor)?;
        self.descriptors.push(descriptor);
        Ok(())
    }

    /// Replaces the descriptor with the same id, keeping its position;
    /// returns the old one. `not_found` when the id is unknown.
    pub fn replace(
        &mut self,
        descriptor: ProviderDescriptor,
    ) -> Result<ProviderDescriptor, ProvisioningError> {
        let at = self.position(descriptor.id.as_str())?;
        let others: Vec<ProviderDescriptor> = self
            .descriptors
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, d)| d.clone())
            .collect();
        self.validator.check_against(&others, &descriptor)?;
        Ok(std::mem::replace(&mut self.descriptors[at], descriptor))
    }

    /// Removes a descriptor; `not_found` when the id is unknown.
    pub fn unregister(&mut self, id: &str) -> Result<ProviderDescriptor, ProvisioningError> {
        let at = self.position(id)?;
        Ok(self.descriptors.remove(at))
    }

    /// Enables or disables a descriptor; returns whether it changed.
    /// `not_found` when the id is unknown.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> Result<bool, ProvisioningError> {
        let at = self.position(id)?;
        let d = &mut self.descriptors[at];
        let changed = d.enabled != enabled;
        d.enabled = enabled;
        Ok(changed)
    }

    /// The descriptor with this id.
    pub fn get(&self, id: &str) -> Option<&ProviderDescriptor> {
        self.descriptors.iter().find(|d| d.id.as_str() == id)
    }

    /// All descriptors, highest priority first.
    pub fn list(&self) -> Vec<ProviderDescriptor> {
        let mut list = self.descriptors.clone();
        list.sort_by_key(|d| std::cmp::Reverse(d.priority));
        list
    }

    /// All descriptors in stored order.
    pub fn descriptors(&self) -> &[ProviderDescriptor] {
        &self.descriptors
    }

    /// Number of descriptors.
    pub fn len(&self) -> usize {
        self.descriptors.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.descriptors.is_empty()
    }

    /// The validator the set checks with.
    pub fn validator(&self) -> &Arc<ProviderValidator> {
        &self.validator
    }

    fn position(&self, id: &str) -> Result<usize, ProvisioningError> {
        self.descriptors
            .iter()
            .position(|d| d.id.as_str() == id)
            .ok_or_else(|| ProvisioningError::provider_not_found(id))
    }
}
