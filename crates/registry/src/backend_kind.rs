//! [`BackendKind`]: everything the registry and the service need to know
//! about one provider kind.

use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};

use crate::{ProbeFuture, ProvisioningError, SecretResolver};

/// A provider kind as a plugin: its `watch` schema, its rules for
/// `endpoints` and credentials, what makes two descriptors watch the same
/// thing, its quiet period, how to build its provider and how to probe it.
///
/// The built-in kinds (`in_memory`, `consul`, `k8s`, `etcd`) implement it
/// in their backend crates and are registered by default by the facade; a
/// custom kind registered with
/// [`ProviderValidator::with_kind`](crate::ProviderValidator::with_kind)
/// gets exactly the same treatment: schema validation, conflict checks,
/// `validate --connect` probing and the store round trip. The registry
/// itself knows no kind.
///
/// A kind's schema check compiles without its network client, so a
/// validator for fuzzing or for an offline tool needs no network stack;
/// [`build`](Self::build) then says the client is missing.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_provider_api::{ClusterProvider, ProviderDescriptor, ProviderId, ProviderKind};
/// use provisioning_registry::watch_schema::parse_watch;
/// use provisioning_registry::{BackendKind, BuildContext, ProviderValidator, ProvisioningError};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct ZkWatch { path: String }
///
/// struct Zk;
/// impl BackendKind for Zk {
///     fn name(&self) -> &str { "zookeeper" }
///     fn validate_watch(&self, d: &ProviderDescriptor) -> Result<(), ProvisioningError> {
///         parse_watch::<ZkWatch>(&d.watch).map(drop)
///     }
///     fn build(&self, d: &ProviderDescriptor, _: &BuildContext)
///         -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
///         Err(ProvisioningError::invalid(Some(&d.id), None, "not in this example"))
///     }
/// }
///
/// let validator = ProviderValidator::new().with_kind(Arc::new(Zk));
/// let d = ProviderDescriptor::new(ProviderId::new("zk")?, ProviderKind::from("zookeeper"), 1)
///     .with_watch("path", "/members");
/// validator.validate(&d)?;
/// let e = validator.validate(&d.clone().with_watch("paht", "/x")).unwrap_err();
/// assert_eq!(e.field(), Some("watch.paht"));
/// assert_eq!(ProviderValidator::new().validate(&d).unwrap_err().code(), "invalid_config");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait BackendKind: Send + Sync {
    /// The kind name (the descriptor's `kind`).
    fn name(&self) -> &str;

    /// Whether `endpoints` are required, optional, forbidden or limited to
    /// one. Default: optional.
    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Optional
    }

    /// Whether `auth` and `tls` make sense for this kind. Default: yes.
    fn takes_credentials(&self) -> bool {
        true
    }

    /// Checks the descriptor's `watch` against the kind's schema (reject
    /// unknown keys) and anything else the kind needs. The common fields
    /// (id, endpoint URLs, `auth` and `tls` shape) are checked already.
    /// Errors name `watch.<key>`; the validator adds the provider.
    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError>;

    /// What the provider watches, for conflict detection: two descriptors of
    /// this kind with the same endpoint set and equal targets conflict.
    /// `None` (the default) never conflicts. Called on valid descriptors.
    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        let _ = descriptor;
        None
    }

    /// How long a healthy provider of this descriptor may stay silent (for
    /// the policy rule: a quiet period must stay inside a third of the
    /// failover timeout). Default: none.
    fn quiet_period(
        &self,
        descriptor: &ProviderDescriptor,
    ) -> Result<Option<Duration>, ProvisioningError> {
        let _ = descriptor;
        Ok(None)
    }

    /// Builds the provider of a valid descriptor. Errors carry a stable
    /// code; the caller adds the provider id.
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError>;

    /// The preflight probe of a valid descriptor (reachability, credentials,
    /// permissions), or `None` when the kind has none (the default). See
    /// [`ProviderProbe`](crate::ProviderProbe) for the errors to use.
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> Option<ProbeFuture<'a>> {
        let _ = (descriptor, secrets);
        None
    }
}

/// What a kind accepts in `endpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointRule {
    /// At least one endpoint.
    Required,
    /// Any number, including none.
    Optional,
    /// None at all.
    Forbidden,
    /// None or one; `what` names it in the error (e.g. "the API server URL").
    AtMostOne {
        /// What the one endpoint is.
        what: &'static str,
    },
}

/// What [`BackendKind::build`] may use besides the descriptor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildContext {
    /// Resolves `env:` / `file:` secret references (relative paths against
    /// the store's directory). Backends resolve again on every reconnect.
    pub secrets: SecretResolver,
}

impl BuildContext {
    /// A context resolving secrets with `secrets`.
    pub fn new(secrets: SecretResolver) -> Self {
        Self { secrets }
    }
}

/// The error of [`BackendKind::build`] for a kind compiled without its
/// network client (a validation-only build, e.g. for fuzzing).
pub fn kind_without_client(kind: &str) -> ProvisioningError {
    ProvisioningError::invalid(
        None,
        Some("kind".into()),
        format!("kind {kind} is built without its client (the backend's cargo feature `client`)"),
    )
}
