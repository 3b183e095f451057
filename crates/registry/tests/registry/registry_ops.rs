//! Registry operations: ordering, lookups, enable/disable/unregister, load
//! and save through a store, read-modify-write, custom kinds, error codes.

use std::sync::Arc;

use provisioning_provider_api::{ClusterProvider, ProviderDescriptor, ProviderId, ProviderKind};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ErrorCode, MemoryProviderStore, ProviderRegistry,
    ProviderStore, ProviderValidator, ProvisioningError,
};

use super::common::d;

fn mem(id: &str, priority: u32) -> ProviderDescriptor {
    ProviderDescriptor::new(
        ProviderId::new(id).unwrap(),
        ProviderKind::InMemory,
        priority,
    )
}

#[test]
fn list_is_highest_priority_first_and_store_order_is_kept() {
    let store = Arc::new(MemoryProviderStore::new());
    let registry = ProviderRegistry::builder()
        .with_validator(super::common::builtin())
        .with_store(store.clone())
        .build();
    for (id, p) in [("b", 5), ("a", 50), ("c", 0)] {
        registry.register(mem(id, p)).unwrap();
    }
    let listed: Vec<String> = registry.list().iter().map(|d| d.id.to_string()).collect();
    assert_eq!(listed, ["a", "b", "c"]);
    registry.save().unwrap();
    let stored: Vec<String> = store
        .load()
        .unwrap()
        .iter()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(stored, ["b", "a", "c"]);
}

#[test]
fn enable_disable_unregister_and_not_found() {
    let registry = super::common::registry();
    registry.register(mem("a", 1)).unwrap();
    registry.disable("a").unwrap();
    assert!(!registry.get("a").unwrap().enabled);
    registry.enable("a").unwrap();
    assert!(registry.get("a").unwrap().enabled);
    for e in [
        registry.enable("nope").unwrap_err(),
        registry.disable("nope").unwrap_err(),
        registry.unregister("nope").unwrap_err(),
    ] {
        assert_eq!(e.code(), "not_found");
        assert_eq!(e.to_string(), r#"provider "nope" not found"#);
    }
    assert_eq!(registry.unregister("a").unwrap().id.as_str(), "a");
    assert!(registry.is_empty());
    assert!(registry.get("a").is_none());
}

#[test]
fn load_replaces_the_whole_set_or_nothing() {
    let bad = vec![mem("a", 1), mem("b", 1)];
    let store = Arc::new(MemoryProviderStore::with_descriptors(bad));
    let registry = ProviderRegistry::builder()
        .with_validator(super::common::builtin())
        .with_store(store.clone())
        .build();
    registry.register(mem("keep", 7)).unwrap();
    let e = registry.load().unwrap_err();
    assert_eq!(e.code(), "duplicate_priority");
    assert_eq!(registry.list(), vec![mem("keep", 7)]);
    store.save(&[mem("x", 3)]).unwrap();
    registry.load().unwrap();
    assert_eq!(registry.list(), vec![mem("x", 3)]);
}

#[test]
fn update_is_read_modify_write_of_the_store() {
    let store = Arc::new(MemoryProviderStore::with_descriptors(vec![mem("a", 1)]));
    let registry = ProviderRegistry::builder()
        .with_validator(super::common::builtin())
        .with_store(store.clone())
        .build();
    // The clone shares state (the facade and the admin API hold clones).
    let clone = registry.clone();
    clone.update(|set| set.register(mem("b", 2))).unwrap();
    assert_eq!(store.load().unwrap(), vec![mem("a", 1), mem("b", 2)]);
    assert_eq!(registry.len(), 2);
    // A failing change leaves store and memory alone.
    let e = registry
        .update(|set| {
            set.unregister("a")?;
            set.register(mem("c", 2))
        })
        .unwrap_err();
    assert_eq!(e.code(), "duplicate_priority");
    assert_eq!(store.load().unwrap().len(), 2);
    assert_eq!(registry.len(), 2);
    let changed = registry.update(|set| set.set_enabled("a", false)).unwrap();
    assert!(changed);
    assert!(!store.load().unwrap()[0].enabled);
}

struct Zk;

impl BackendKind for Zk {
    fn name(&self) -> &str {
        "zookeeper"
    }
    fn validate_watch(&self, d: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        for key in d.watch.keys() {
            if key != "path" {
                return Err(ProvisioningError::UnknownField {
                    provider: Some(d.id.clone()),
                    field: format!("watch.{key}"),
                });
            }
        }
        Ok(())
    }
    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Required
    }
    fn conflict_target(&self, d: &ProviderDescriptor) -> Option<String> {
        d.watch
            .get("path")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
    fn build(
        &self,
        d: &ProviderDescriptor,
        _: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        Err(ProvisioningError::invalid(
            Some(&d.id),
            None,
            "not built in this test",
        ))
    }
}

#[test]
fn custom_kinds_are_validated_by_their_kind() {
    let validator = ProviderValidator::new().with_kind(Arc::new(Zk));
    let registry = ProviderRegistry::builder()
        .with_validator(validator)
        .build();
    let zk = r#"{"id":"zk","kind":"zookeeper","priority":1,"endpoints":["http://h:2181"],"watch":{"path":"/m"}}"#;
    registry.register(d(zk)).unwrap();
    let e = registry
        .register(d(
            r#"{"id":"zk2","kind":"zookeeper","priority":2,"watch":{"path":"/m"}}"#,
        ))
        .unwrap_err();
    assert_eq!(e.field(), Some("endpoints"));
    let e = registry
        .register(d(r#"{"id":"zk2","kind":"zookeeper","priority":2,"endpoints":["http://h:2181"],"watch":{"path":"/m"}}"#))
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
    let e = registry
        .register(d(r#"{"id":"zk3","kind":"zookeeper","priority":3,"endpoints":["zk://h:2181"],"watch":{"path":"/n"}}"#))
        .unwrap_err();
    assert_eq!(e.field(), Some("endpoints[0]"));
    let e = registry
        .register(d(r#"{"id":"zk4","kind":"zookeeper","priority":4,"endpoints":["http://h:2181"],"watch":{"pth":"/n"}}"#))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unknown field "watch.pth" in provider "zk4""#
    );
    // A kind nobody registered is refused, naming the kinds that are.
    let e = registry
        .register(d(r#"{"id":"e","kind":"etcd","priority":5,"endpoints":["http://h:2379"],"watch":{"prefix":"/a/"}}"#))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"provider "e": field "kind": unknown kind "etcd": expected zookeeper"#
    );
}

#[test]
fn every_error_kind_has_a_variant_with_its_code() {
    let id = ProviderId::new("p").unwrap();
    let errors = vec![
        ProvisioningError::invalid(None, None, "m"),
        ProvisioningError::DuplicateName { id: id.clone() },
        ProvisioningError::DuplicatePriority {
            id: id.clone(),
            priority: 1,
            existing: id.clone(),
        },
        ProvisioningError::Conflict {
            id: id.clone(),
            existing: id.clone(),
        },
        ProvisioningError::InlineSecret {
            provider: None,
            field: "auth.token".into(),
        },
        ProvisioningError::BackendUnavailable {
            provider: None,
            detail: "refused".into(),
        },
        ProvisioningError::Timeout {
            provider: None,
            operation: "x".into(),
            after: std::time::Duration::from_secs(1),
        },
        ProvisioningError::PermissionDenied {
            provider: None,
            detail: "403".into(),
        },
        ProvisioningError::IndexRollback {
            provider: None,
            detail: "index".into(),
        },
        ProvisioningError::ProviderUnhealthy {
            provider: id.clone(),
            detail: "d".into(),
        },
        ProvisioningError::ProvisioningUnavailable { detail: "d".into() },
        ProvisioningError::InvalidArgument {
            message: "m".into(),
        },
        ProvisioningError::Unauthorized { detail: "d".into() },
        ProvisioningError::provider_not_found("p"),
        ProvisioningError::ProviderDisabled { id },
        ProvisioningError::NotReady { detail: "d".into() },
        ProvisioningError::PayloadTooLarge { limit: 65536 },
        ProvisioningError::ForbiddenSecretRef {
            provider: None,
            field: "auth.token".into(),
            reference: provisioning_provider_api::SecretRef::Env("HOME".into()),
            reason: "r".into(),
        },
        ProvisioningError::InvalidDescriptor {
            provider: None,
            field: Some("tls.ca".into()),
            message: "m".into(),
        },
        ProvisioningError::StoreBusy {
            lock: "providers.jsonl.lock".into(),
            waited: std::time::Duration::from_secs(10),
        },
    ];
    let codes: Vec<ErrorCode> = errors.iter().map(ProvisioningError::error_code).collect();
    // The admin API's own refusals (CONTRACTS §4a rules 1, 2 and 5) are
    // answered by the HTTP layer and never travel as a `ProvisioningError`.
    let http_only = [
        ErrorCode::InsecureListen,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::ForbiddenOrigin,
        ErrorCode::ForbiddenHost,
        ErrorCode::TooManyStreams,
    ];
    let expected: Vec<ErrorCode> = ErrorCode::ALL
        .into_iter()
        .filter(|code| !http_only.contains(code))
        .collect();
    assert_eq!(codes, expected);
    let retryable: Vec<&str> = errors
        .iter()
        .filter(|e| e.is_retryable())
        .map(|e| e.code())
        .collect();
    assert_eq!(
        retryable,
        [
            "backend_unavailable",
            "timeout",
            "index_rollback",
            "provider_unhealthy",
            "provisioning_unavailable",
            "not_ready",
            "store_busy"
        ]
    );
}

#[test]
fn consul_quiet_period_is_wait_times_17_16() {
    let consul = d(
        r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://h:8500"],"watch":{"service":"s","wait":"4700ms"}}"#,
    );
    let watch = provisioning_backend_consul::ConsulWatch::from_descriptor(&consul).unwrap();
    assert_eq!(
        watch.quiet_period(),
        std::time::Duration::from_micros(4_993_750)
    );
}
