//! [`KubeKind`]: kind `k8s` as a plugin of the registry and the
//! service.

use std::sync::Arc;

use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};

use crate::K8sWatch;

/// Kind `k8s`: at most one endpoint (the API server URL; none means the
/// in-cluster or kubeconfig default), `watch` is [`K8sWatch`], two
/// descriptors with the same endpoint, namespace, resource and selector or
/// service conflict; no quiet period.
///
/// Without the `client` feature the kind validates but does not build or
/// probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_k8s::KubeKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(KubeKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"k","kind":"k8s","priority":1,"watch":{"resource":"pods","label_selector":"app=x"}}"#,
/// )?;
/// validator.validate(&d)?;
/// let e = validator.validate(&d.clone().with_watch("service", "x")).unwrap_err();
/// assert_eq!(e.field(), Some("watch.service"));
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KubeKind {
    _private: (),
}

impl KubeKind {
    /// The kind with the descriptor-built client.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BackendKind for KubeKind {
    fn name(&self) -> &str {
        "k8s"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::AtMostOne {
            what: "the API server URL",
        }
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        K8sWatch::from_params(&descriptor.watch).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        let watch = K8sWatch::from_params(&descriptor.watch).ok()?;
        serde_json::to_string(&watch.target()).ok()
    }

    #[cfg(feature = "client")]
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        crate::KubeProvider::from_descriptor(descriptor.clone(), &context.secrets)
            .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
            .map_err(|e| e.into_provisioning_error(&descriptor.id))
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
        static PROBE: crate::KubeProbe = crate::KubeProbe;
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
