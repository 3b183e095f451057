//! Integration tests of the registry crate: every rejection with its code
//! and field, the registry operations, preflight, and the descriptor serde
//! format.

mod common {
    use std::sync::Arc;

    use provisioning_provider_api::ProviderDescriptor;
    use provisioning_registry::{
        ProviderRegistry, ProviderValidator, ProvisioningError, descriptor_from_json,
    };

    /// A validator that knows the four built-in kinds (schemas only).
    pub(crate) fn builtin() -> ProviderValidator {
        ProviderValidator::new()
            .with_kind(Arc::new(provisioning_backend_memory::InMemoryKind::new()))
            .with_kind(Arc::new(provisioning_backend_consul::ConsulKind::new()))
            .with_kind(Arc::new(provisioning_backend_k8s::KubeKind::new()))
            .with_kind(Arc::new(provisioning_backend_etcd::EtcdKind::new()))
    }

    /// An in-memory registry over [`builtin`].
    pub(crate) fn registry() -> ProviderRegistry {
        ProviderRegistry::builder()
            .with_validator(builtin())
            .build()
    }

    /// Parses a descriptor that must be well-formed JSON of the schema.
    pub(crate) fn d(json: &str) -> ProviderDescriptor {
        descriptor_from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// Asserts code and message of an error.
    pub(crate) fn assert_err(e: &ProvisioningError, code: &str, contains: &[&str]) {
        let text = e.to_string();
        assert_eq!(e.code(), code, "{text}");
        for part in contains {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }
    }
}

#[path = "registry/descriptor_serde.rs"]
mod descriptor_serde;
#[path = "registry/preflight.rs"]
mod preflight;
#[path = "registry/preflight_probe_calls.rs"]
mod preflight_probe_calls;
#[path = "registry/registry_ops.rs"]
mod registry_ops;
#[path = "registry/rejections.rs"]
mod rejections;
