//! [`ProviderFactory`]: builds a [`ClusterProvider`] from a descriptor, one
//! factory per kind. Built-in kinds come with the crate (behind cargo
//! features for the network backends); custom kinds are registered by the
//! user.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use provisioning_backend_memory::InMemoryProvider;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor, ProviderKind};
use provisioning_registry::{ProviderProbe, ProvisioningError, SecretResolver};

/// What a factory may use besides the descriptor.
#[derive(Debug, Clone)]
pub struct FactoryContext {
    /// Resolves `env:` / `file:` secret references (relative paths against
    /// the store's directory). Backends resolve again on every reconnect.
    pub secrets: SecretResolver,
}

/// Builds providers of one kind.
pub trait ProviderFactory: Send + Sync {
    /// Builds a provider. Errors carry the descriptor id and a stable code.
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &FactoryContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError>;
}

impl<F> ProviderFactory for F
where
    F: Fn(
            &ProviderDescriptor,
            &FactoryContext,
        ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError>
        + Send
        + Sync,
{
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &FactoryContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        self(descriptor, context)
    }
}

/// The factories (and preflight probes) by kind.
#[derive(Clone)]
pub struct ProviderFactories {
    by_kind: BTreeMap<String, Arc<dyn ProviderFactory>>,
    probes: BTreeMap<String, Arc<dyn ProviderProbe>>,
}

impl fmt::Debug for ProviderFactories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_kind.keys()).finish()
    }
}

impl Default for ProviderFactories {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ProviderFactories {
    /// The built-in kinds compiled into this build: `in_memory` always, and
    /// `consul`, `k8s`, `etcd` with their cargo features.
    pub fn builtin() -> Self {
        let mut by_kind: BTreeMap<String, Arc<dyn ProviderFactory>> = BTreeMap::new();
        #[cfg_attr(
            not(any(feature = "consul", feature = "k8s", feature = "etcd")),
            expect(unused_mut, reason = "only network backends have probes")
        )]
        let mut probes: BTreeMap<String, Arc<dyn ProviderProbe>> = BTreeMap::new();
        by_kind.insert(
            ProviderKind::InMemory.as_str().into(),
            Arc::new(build_in_memory),
        );
        #[cfg(feature = "consul")]
        {
            by_kind.insert(ProviderKind::Consul.as_str().into(), Arc::new(build_consul));
            probes.insert(
                ProviderKind::Consul.as_str().into(),
                Arc::new(provisioning_backend_consul::ConsulProbe),
            );
        }
        #[cfg(feature = "k8s")]
        {
            by_kind.insert(ProviderKind::K8s.as_str().into(), Arc::new(build_k8s));
            probes.insert(
                ProviderKind::K8s.as_str().into(),
                Arc::new(provisioning_backend_k8s::KubeProbe),
            );
        }
        #[cfg(feature = "etcd")]
        {
            by_kind.insert(ProviderKind::Etcd.as_str().into(), Arc::new(build_etcd));
            probes.insert(
                ProviderKind::Etcd.as_str().into(),
                Arc::new(provisioning_backend_etcd::EtcdProbe),
            );
        }
        Self { by_kind, probes }
    }

    /// Registers (or replaces) the preflight probe of `kind`.
    pub fn register_probe(&mut self, kind: impl Into<String>, probe: Arc<dyn ProviderProbe>) {
        self.probes.insert(kind.into(), probe);
    }

    /// The preflight probes by kind (reachability, credentials,
    /// permissions), for `ProviderValidator::with_probe`.
    pub fn probes(&self) -> impl Iterator<Item = (ProviderKind, Arc<dyn ProviderProbe>)> + '_ {
        self.probes
            .iter()
            .map(|(kind, probe)| (ProviderKind::from(kind.as_str()), probe.clone()))
    }

    /// Registers (or replaces) the factory of `kind`.
    pub fn register(&mut self, kind: impl Into<String>, factory: Arc<dyn ProviderFactory>) {
        self.by_kind.insert(kind.into(), factory);
    }

    /// Whether a factory exists for `kind`.
    pub fn knows(&self, kind: &ProviderKind) -> bool {
        self.by_kind.contains_key(kind.as_str())
    }

    /// The kinds with a factory.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.by_kind.keys().map(String::as_str)
    }

    /// Builds the provider of `descriptor`.
    pub fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &FactoryContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        let factory = self.by_kind.get(descriptor.kind.as_str()).ok_or_else(|| {
            ProvisioningError::invalid(
                Some(&descriptor.id),
                Some("kind".to_owned()),
                format!(
                    "no backend for kind {:?} in this build (known: {})",
                    descriptor.kind.as_str(),
                    self.kinds().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        factory.build(descriptor, context)
    }
}

fn build_in_memory(
    descriptor: &ProviderDescriptor,
    _context: &FactoryContext,
) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
    InMemoryProvider::from_descriptor(descriptor.clone())
        .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
        .map_err(|e| {
            ProvisioningError::invalid(
                Some(&descriptor.id),
                Some("watch".to_owned()),
                e.to_string(),
            )
        })
}

#[cfg(feature = "consul")]
fn build_consul(
    descriptor: &ProviderDescriptor,
    context: &FactoryContext,
) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
    provisioning_backend_consul::ConsulProvider::from_descriptor(
        descriptor.clone(),
        &context.secrets,
    )
    .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
    .map_err(|e| ProvisioningError::from(e).with_provider(&descriptor.id))
}

#[cfg(feature = "k8s")]
fn build_k8s(
    descriptor: &ProviderDescriptor,
    context: &FactoryContext,
) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
    provisioning_backend_k8s::KubeProvider::from_descriptor(descriptor.clone(), &context.secrets)
        .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
        .map_err(|e| e.into_provisioning_error(&descriptor.id))
}

#[cfg(feature = "etcd")]
fn build_etcd(
    descriptor: &ProviderDescriptor,
    context: &FactoryContext,
) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
    provisioning_backend_etcd::EtcdProvider::from_descriptor(descriptor.clone(), &context.secrets)
        .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
        .map_err(|e| ProvisioningError::from(e).with_provider(&descriptor.id))
}
