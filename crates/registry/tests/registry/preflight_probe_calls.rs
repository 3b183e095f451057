//! Which probes preflight calls and how often, checked with mockall: every
//! enabled descriptor whose kind has a probe exactly once, a disabled one
//! never, and a failing probe surfaces as an error with its code that names
//! the provider (the other probes still run once). `provisioning validate
//! --connect` runs this preflight with its own probes.

use std::sync::Arc;
use std::time::Duration;

use mockall::mock;
use provisioning_provider_api::{ProviderDescriptor, ProviderKind};
use provisioning_registry::{
    ProbeFuture, ProviderProbe, ProviderValidator, ProvisioningError, SecretResolver,
};

use super::common::d;

// The answers are made before the call returns, so the future borrows
// nothing: `'static` satisfies the trait and lets mockall store them.
mock! {
    Probe {}
    impl ProviderProbe for Probe {
        fn probe<'a>(
            &'a self,
            descriptor: &'a ProviderDescriptor,
            secrets: &'a SecretResolver,
        ) -> ProbeFuture<'static>;
    }
}

fn etcd(id: &str, priority: u32) -> ProviderDescriptor {
    d(&format!(
        r#"{{"id":"{id}","kind":"etcd","priority":{priority},"endpoints":["http://127.0.0.1:2379"],"watch":{{"prefix":"/{id}/"}}}}"#
    ))
}

fn consul(id: &str, priority: u32) -> ProviderDescriptor {
    d(&format!(
        r#"{{"id":"{id}","kind":"consul","priority":{priority},"endpoints":["http://127.0.0.1:8500"],"watch":{{"service":"{id}"}}}}"#
    ))
}

/// Enabled etcd `a`, disabled etcd `b`, enabled consul `c`, and an
/// in-memory `m` (no probe for its kind).
fn set() -> Vec<ProviderDescriptor> {
    vec![
        etcd("a", 1),
        etcd("b", 2).with_enabled(false),
        consul("c", 3),
        d(r#"{"id":"m","kind":"in_memory","priority":4}"#),
    ]
}

fn is(id: &'static str) -> impl Fn(&ProviderDescriptor, &SecretResolver) -> bool + Send {
    move |descriptor, _| descriptor.id.as_str() == id
}

fn answer(result: Result<(), ProvisioningError>) -> ProbeFuture<'static> {
    Box::pin(std::future::ready(result))
}

fn unreachable() -> Result<(), ProvisioningError> {
    Err(ProvisioningError::BackendUnavailable {
        provider: None,
        detail: "connection refused".into(),
    })
}

/// The etcd probe: `a` once with `a_answers`, `b` never.
fn etcd_probe(a_answers: fn() -> Result<(), ProvisioningError>) -> MockProbe {
    let mut probe = MockProbe::new();
    probe
        .expect_probe()
        .withf(is("a"))
        .times(1)
        .returning(move |_, _| answer(a_answers()));
    probe.expect_probe().withf(is("b")).never();
    probe
}

/// The consul probe: `c` once, answering fine.
fn consul_probe() -> MockProbe {
    let mut probe = MockProbe::new();
    probe
        .expect_probe()
        .withf(is("c"))
        .times(1)
        .returning(|_, _| answer(Ok(())));
    probe
}

fn validator(etcd: &Arc<MockProbe>, consul: &Arc<MockProbe>) -> ProviderValidator {
    super::common::builtin()
        .with_probe(ProviderKind::Etcd, etcd.clone())
        .with_probe(ProviderKind::Consul, consul.clone())
}

fn secrets() -> SecretResolver {
    SecretResolver::new("/nonexistent").with_env(|_| Err(std::env::VarError::NotPresent))
}

/// Takes a probe back from the validator (dropped by then) to verify it.
fn verify(probe: Arc<MockProbe>, name: &str) {
    Arc::try_unwrap(probe)
        .ok()
        .unwrap_or_else(|| panic!("the {name} probe is still shared"))
        .checkpoint();
}

#[tokio::test]
async fn each_enabled_provider_is_probed_once_and_a_disabled_one_never() {
    let etcd = Arc::new(etcd_probe(|| Ok(())));
    let consul = Arc::new(consul_probe());
    let probed = validator(&etcd, &consul)
        .preflight(&set(), &secrets(), Duration::from_secs(5))
        .await
        .expect("every probe answers");
    let ids: Vec<&str> = probed.iter().map(|id| id.as_str()).collect();
    assert_eq!(ids, ["c", "a"], "highest priority first");
    verify(etcd, "etcd");
    verify(consul, "consul");
}

#[tokio::test]
async fn a_failing_probe_is_surfaced_with_its_code_and_provider() {
    let etcd = Arc::new(etcd_probe(unreachable));
    let consul = Arc::new(consul_probe());
    let e = validator(&etcd, &consul)
        .preflight(&set(), &secrets(), Duration::from_secs(5))
        .await
        .expect_err("a is unreachable");
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert_eq!(e.provider().map(|p| p.as_str()), Some("a"), "{e}");
    assert_eq!(
        e.to_string(),
        r#"provider "a": backend unavailable: connection refused"#
    );
    // Every other enabled provider was still probed, once.
    verify(etcd, "etcd");
    verify(consul, "consul");
}
