//! [`SetChecker`]: incremental uniqueness and conflict checks of a set.

use std::collections::HashMap;

use provisioning_provider_api::{ProviderDescriptor, ProviderId};

use crate::{ProviderValidator, ProvisioningError};

/// Checks descriptors one at a time against the ones added before, in
/// linear time overall: each on its own ([`ProviderValidator::validate`]),
/// then unique id, unique priority and no conflict. A store loader feeds it
/// line by line so the first bad line is the one reported.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_memory::InMemoryKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(InMemoryKind::new()));
/// let mut checker = validator.set_checker();
/// checker.add(&descriptor_from_json(r#"{"id":"a","kind":"in_memory","priority":1}"#)?)?;
/// let e = checker.add(&descriptor_from_json(r#"{"id":"b","kind":"in_memory","priority":1}"#)?).unwrap_err();
/// assert_eq!(e.code(), "duplicate_priority");
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Debug)]
pub struct SetChecker<'a> {
    validator: &'a ProviderValidator,
    ids: HashMap<ProviderId, ()>,
    priorities: HashMap<u32, ProviderId>,
    targets: HashMap<String, ProviderId>,
}

impl<'a> SetChecker<'a> {
    pub(crate) fn new(validator: &'a ProviderValidator) -> Self {
        Self {
            validator,
            ids: HashMap::new(),
            priorities: HashMap::new(),
            targets: HashMap::new(),
        }
    }

    /// Checks `descriptor` and remembers it; on error nothing is
    /// remembered.
    pub fn add(&mut self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        self.validator.validate(descriptor)?;
        let id = &descriptor.id;
        if self.ids.contains_key(id) {
            return Err(ProvisioningError::DuplicateName { id: id.clone() });
        }
        if let Some(existing) = self.priorities.get(&descriptor.priority) {
            return Err(ProvisioningError::DuplicatePriority {
                id: id.clone(),
                priority: descriptor.priority,
                existing: existing.clone(),
            });
        }
        let key = self.validator.conflict_key(descriptor);
        if let Some(existing) = key.as_ref().and_then(|k| self.targets.get(k)) {
            return Err(ProvisioningError::Conflict {
                id: id.clone(),
                existing: existing.clone(),
            });
        }
        self.ids.insert(id.clone(), ());
        self.priorities.insert(descriptor.priority, id.clone());
        if let Some(key) = key {
            self.targets.insert(key, id.clone());
        }
        Ok(())
    }
}
