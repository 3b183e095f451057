//! [`EtcdKind`]: kind `etcd` as a plugin of the registry and the
//! service.

use std::sync::Arc;

use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};

use crate::EtcdWatch;

/// Kind `etcd`: endpoints required, `watch` is [`EtcdWatch`], two
/// descriptors with the same endpoints and prefix conflict; no quiet period
/// (the watch stream is answered at once).
///
/// Without the `client` feature the kind validates but does not build or
/// probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_etcd::EtcdKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(EtcdKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/app/"}}"#,
/// )?;
/// validator.validate(&d)?;
/// let other = descriptor_from_json(
///     r#"{"id":"f","kind":"etcd","priority":2,"endpoints":["http://127.0.0.1:2379/"],"watch":{"prefix":"/app/"}}"#,
/// )?;
/// assert_eq!(validator.check_against(&[d], &other).unwrap_err().code(), "conflict");
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EtcdKind {
    _private: (),
}

impl EtcdKind {
    /// The kind with the descriptor-built client.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BackendKind for EtcdKind {
    fn name(&self) -> &str {
        "etcd"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Required
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        EtcdWatch::from_params(&descriptor.watch).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        EtcdWatch::from_params(&descriptor.watch)
            .ok()
            .map(|w| w.prefix)
    }

    #[cfg(feature = "client")]
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        crate::EtcdProvider::from_descriptor(descriptor.clone(), &context.secrets)
            .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
            .map_err(ProvisioningError::from)
    }

    #[cfg(not(feature = "client"))]
    fn build(
        &self,
        _descriptor: &ProviderDescriptor,
        _context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        Err(provisioning_registry::kind_without_client(self.name()))
    }

    #[cfg(feature = "client")]
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> Option<ProbeFuture<'a>> {
        use provisioning_registry::ProviderProbe;
        static PROBE: crate::EtcdProbe = crate::EtcdProbe;
        Some(PROBE.probe(descriptor, secrets))
    }

    #[cfg(not(feature = "client"))]
    fn probe<'a>(
        &'a self,
        _descriptor: &'a ProviderDescriptor,
        _secrets: &'a SecretResolver,
    ) -> Option<ProbeFuture<'a>> {
        // Nothing can be reached without the client: say so rather than
        // let a preflight pass unprobed.
        Some(Box::pin(async move {
            Err(provisioning_registry::kind_without_client(self.name()))
        }))
    }
}
