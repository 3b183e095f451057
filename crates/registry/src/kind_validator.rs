//! [`KindValidator`]: static checks of a custom provider kind.

use provisioning_provider_api::ProviderDescriptor;

use crate::ProvisioningError;

/// Validation of a custom kind, registered with
/// [`ProviderValidator::with_kind`](crate::ProviderValidator::with_kind).
///
/// The validator has already checked the common fields (id, endpoint URLs,
/// `auth` and `tls` shape) when [`validate`](Self::validate) runs; it checks
/// `watch` (reject unknown keys, as the built-in kinds do) and anything
/// else the kind needs. A descriptor of a kind nobody registered is rejected
/// as an unknown kind (`invalid_config`).
///
/// ```
/// use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind};
/// use provisioning_registry::{KindValidator, ProviderValidator, ProvisioningError};
///
/// struct Zk;
/// impl KindValidator for Zk {
///     fn kind(&self) -> &str { "zookeeper" }
///     fn validate(&self, d: &ProviderDescriptor) -> Result<(), ProvisioningError> {
///         match d.watch.get("path").and_then(|v| v.as_str()) {
///             Some(_) if d.watch.len() == 1 => Ok(()),
///             _ => Err(ProvisioningError::invalid(Some(&d.id), Some("watch.path".into()), "required, and the only key")),
///         }
///     }
/// }
///
/// let validator = ProviderValidator::new().with_kind(std::sync::Arc::new(Zk))?;
/// let d = ProviderDescriptor::new(ProviderId::new("zk")?, ProviderKind::from("zookeeper"), 1)
///     .with_watch("path", "/members");
/// validator.validate(&d)?;
/// assert_eq!(ProviderValidator::new().validate(&d).unwrap_err().code(), "invalid_config");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait KindValidator: Send + Sync {
    /// The kind name this validator is for (the descriptor's `kind`).
    fn kind(&self) -> &str;

    /// Checks a descriptor of this kind.
    fn validate(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError>;

    /// Whether `endpoints` must be non-empty. Default: no.
    fn endpoints_required(&self) -> bool {
        false
    }

    /// What the provider watches, for conflict detection: two descriptors of
    /// this kind with the same endpoint set and equal targets conflict.
    /// `None` (the default) never conflicts.
    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        let _ = descriptor;
        None
    }
}
