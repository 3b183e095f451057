//! The built-in provider kinds of this build, registered by default.

use std::sync::Arc;

use provisioning_backend_memory::InMemoryKind;
use provisioning_registry::{BackendKind, ProviderRegistry, ProviderValidator};

/// The kinds compiled into this build: `in_memory` always, and `consul`,
/// `k8s`, `etcd` with their cargo features. They are ordinary
/// [`BackendKind`]s: a custom kind is registered next to them the same way.
///
/// ```
/// let names: Vec<String> = cluster_provisioning::builtin_kinds()
///     .iter()
///     .map(|k| k.name().to_owned())
///     .collect();
/// assert!(names.contains(&"in_memory".to_owned()));
/// ```
pub fn builtin_kinds() -> Vec<Arc<dyn BackendKind>> {
    #[cfg_attr(
        not(any(feature = "consul", feature = "k8s", feature = "etcd")),
        expect(unused_mut, reason = "only the network kinds are optional")
    )]
    let mut kinds: Vec<Arc<dyn BackendKind>> = vec![Arc::new(InMemoryKind::new())];
    #[cfg(feature = "consul")]
    kinds.push(Arc::new(provisioning_backend_consul::ConsulKind::new()));
    #[cfg(feature = "k8s")]
    kinds.push(Arc::new(provisioning_backend_k8s::KubeKind::new()));
    #[cfg(feature = "etcd")]
    kinds.push(Arc::new(provisioning_backend_etcd::EtcdKind::new()));
    kinds
}

/// A validator that knows [`builtin_kinds`]; add custom kinds with
/// [`ProviderValidator::with_kind`].
pub fn builtin_validator() -> ProviderValidator {
    ProviderValidator::new().with_kinds(builtin_kinds())
}

/// An in-memory registry that knows [`builtin_kinds`].
pub fn builtin_registry() -> ProviderRegistry {
    ProviderRegistry::builder()
        .with_validator(builtin_validator())
        .build()
}
