//! [`ConsulKind`]: kind `consul` as a plugin of the registry and the
//! service.

use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};

use crate::ConsulWatch;

/// Kind `consul`: endpoints required, `watch` is [`ConsulWatch`], two
/// descriptors with the same endpoints, service, dc, ns, tag and filter
/// conflict, the quiet period is `wait × 17/16`.
///
/// Without the `client` feature the kind validates but does not build or
/// probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_consul::ConsulKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(ConsulKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:8500"],"watch":{"service":"app","wait":"4s"}}"#,
/// )?;
/// validator.validate(&d)?;
/// let quiet = validator.quiet_periods(&[d])?;
/// assert_eq!(quiet[0].1, Some(std::time::Duration::from_millis(4250)));
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConsulKind {
    _private: (),
}

impl ConsulKind {
    /// The kind with the descriptor-built client.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BackendKind for ConsulKind {
    fn name(&self) -> &str {
        "consul"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Required
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        ConsulWatch::from_params(&descriptor.watch).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        let watch = ConsulWatch::from_params(&descriptor.watch).ok()?;
        serde_json::to_string(&watch.target()).ok()
    }

    fn quiet_period(
        &self,
        descriptor: &ProviderDescriptor,
    ) -> Result<Option<Duration>, ProvisioningError> {
        ConsulWatch::from_params(&descriptor.watch).map(|w| Some(w.quiet_period()))
    }

    #[cfg(feature = "client")]
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        crate::ConsulProvider::from_descriptor(descriptor.clone(), &context.secrets)
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
        static PROBE: crate::ConsulProbe = crate::ConsulProbe;
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
