//! [`InMemoryKind`]: kind `in_memory` as a plugin of the registry and the
//! service.

use std::sync::Arc;

use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{BackendKind, BuildContext, EndpointRule, ProvisioningError};

use crate::{InMemoryProvider, InMemoryWatch};

/// Kind `in_memory`: no endpoints, no credentials, `watch` is
/// [`InMemoryWatch`]; never conflicts, no quiet period, nothing to probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_memory::InMemoryKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(InMemoryKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"local","kind":"in_memory","priority":0,"endpoints":["http://h:1"]}"#,
/// )?;
/// assert_eq!(
///     validator.validate(&d).unwrap_err().to_string(),
///     r#"provider "local": field "endpoints": must be empty for kind in_memory"#,
/// );
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryKind {
    _private: (),
}

impl InMemoryKind {
    /// The kind.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BackendKind for InMemoryKind {
    fn name(&self) -> &str {
        "in_memory"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Forbidden
    }

    fn takes_credentials(&self) -> bool {
        false
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        InMemoryWatch::from_params(&descriptor.watch).map(drop)
    }

    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        _context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        InMemoryProvider::from_descriptor(descriptor.clone())
            .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
            .map_err(|e| ProvisioningError::invalid(None, Some("watch".to_owned()), e.to_string()))
    }
}
