//! [`ProviderProbe`]: a backend's preflight check.

use std::future::Future;
use std::pin::Pin;

use provisioning_provider_api::ProviderDescriptor;

use crate::{ProvisioningError, SecretResolver};

/// The future a probe returns.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProvisioningError>> + Send + 'a>>;

/// A preflight check a backend implements: can the descriptor's backend be
/// reached, are the credentials accepted, are the needed permissions granted
/// (e.g. Kubernetes list + watch on the resource)?
///
/// Errors use [`ProvisioningError::BackendUnavailable`] (unreachable,
/// retryable), [`ProvisioningError::PermissionDenied`] (credentials or
/// permissions) or [`ProvisioningError::InvalidConfig`];
/// [`ProviderValidator::preflight`](crate::ProviderValidator::preflight)
/// turns a probe that exceeds its time limit into
/// [`ProvisioningError::Timeout`]. A probe resolves secrets through the
/// given resolver, as a connecting backend does.
///
/// Object-safe without `async-trait`:
///
/// ```
/// use provisioning_provider_api::ProviderDescriptor;
/// use provisioning_registry::{ProbeFuture, ProviderProbe, SecretResolver};
///
/// struct AlwaysUp;
/// impl ProviderProbe for AlwaysUp {
///     fn probe<'a>(&'a self, _: &'a ProviderDescriptor, _: &'a SecretResolver) -> ProbeFuture<'a> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// let _dyn: &dyn ProviderProbe = &AlwaysUp;
/// ```
pub trait ProviderProbe: Send + Sync {
    /// Probes the backend of `descriptor`.
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> ProbeFuture<'a>;
}
