//! A custom kind registered by a user gets what the built-in kinds get:
//! its own schema errors, conflict checks, the store round trip, the
//! preflight probe `validate --connect` runs, building through the service,
//! and the conformance suite.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::api::{ProviderDescriptor, ProviderId};
use cluster_provisioning::registry::{
    BuildContext, ProviderStore, ProviderValidator, SecretResolver, descriptor_from_json,
};
use cluster_provisioning::{ClusterProvisioningService, ProviderRegistry, builtin_validator};
use provisioning_store_file::FileProviderStore;
use provisioning_testkit::{
    InMemoryDriver, MANDATORY_CASES, OPTIONAL_CASES, RosterKind, SuiteConfig, member,
    run_conformance,
};

fn roster(id: &str, priority: u32, group: &str, endpoints: &[String]) -> ProviderDescriptor {
    let endpoints: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
    let endpoints = format!("[{}]", endpoints.join(","));
    descriptor_from_json(&format!(
        r#"{{"id":"{id}","kind":"roster","priority":{priority},"endpoints":{endpoints},"watch":{{"group":"{group}","members":[{{"id":"n1","host":"10.0.0.1","port":4000}}]}}}}"#
    ))
    .expect("descriptor")
}

fn validator(kind: &Arc<RosterKind>) -> ProviderValidator {
    builtin_validator().with_kind(kind.clone())
}

#[test]
fn its_own_schema_errors_and_conflicts() {
    let kind = Arc::new(RosterKind::new());
    let validator = validator(&kind);
    // Unknown without the registration, like any unregistered kind.
    let plain = builtin_validator()
        .validate(&roster("r", 1, "app", &[]))
        .unwrap_err();
    assert_eq!(plain.code(), "invalid_config");
    assert_eq!(plain.field(), Some("kind"), "{plain}");

    validator
        .validate(&roster("r", 1, "app", &[]))
        .expect("valid");
    let typo =
        descriptor_from_json(r#"{"id":"r","kind":"roster","priority":1,"watch":{"grup":"app"}}"#)
            .expect("descriptor");
    assert_eq!(
        validator.validate(&typo).unwrap_err().to_string(),
        r#"unknown field "watch.grup" in provider "r""#
    );
    let e = validator.validate(&roster("r", 1, "a/b", &[])).unwrap_err();
    assert_eq!(e.field(), Some("watch.group"), "{e}");
    assert_eq!(e.code(), "invalid_config");
    // Common rules apply to it as to a built-in kind.
    let e = validator
        .validate(&roster("r", 1, "app", &["ftp://h:1".to_owned()]))
        .unwrap_err();
    assert_eq!(e.field(), Some("endpoints[0]"), "{e}");
    // Same group, same endpoints: a conflict; another group is fine.
    let first = roster("r1", 1, "app", &["http://127.0.0.1:1".to_owned()]);
    let same = roster("r2", 2, "app", &["http://127.0.0.1:1/".to_owned()]);
    let other = roster("r3", 3, "web", &["http://127.0.0.1:1".to_owned()]);
    let e = validator
        .check_against(std::slice::from_ref(&first), &same)
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
    validator
        .check_against(&[first], &other)
        .expect("another group");
}

#[test]
fn it_is_stored_and_reloaded() {
    let kind = Arc::new(RosterKind::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("providers.jsonl");
    let registry_over = |validator: ProviderValidator| {
        let store = FileProviderStore::new(&path).with_validator(validator.clone());
        ProviderRegistry::builder()
            .with_validator(validator)
            .with_store(Arc::new(store))
            .build()
    };
    let registry = registry_over(validator(&kind));
    let d = roster("r", 7, "app", &["http://127.0.0.1:9".to_owned()]);
    registry
        .update(|set| set.register(d.clone()))
        .expect("stored");
    let again = registry_over(validator(&kind));
    again.load().expect("reloaded");
    assert_eq!(again.list(), vec![d]);
    // A store read without the kind refuses the line, naming it.
    let e = FileProviderStore::new(&path)
        .with_validator(builtin_validator())
        .load()
        .unwrap_err();
    assert_eq!(e.line(), Some(1), "{e}");
    assert!(e.to_string().contains(r#"unknown kind "roster""#), "{e}");
}

#[tokio::test]
async fn validate_connect_probes_it() {
    let kind = Arc::new(RosterKind::new());
    let validator = validator(&kind);
    let secrets = SecretResolver::new("/nonexistent");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let up = format!("http://{}", listener.local_addr().expect("addr"));
    // The preflight `provisioning validate --connect` runs.
    let probed = validator
        .preflight(
            &[roster("r", 1, "app", &[up])],
            &secrets,
            Duration::from_secs(5),
        )
        .await
        .expect("reachable");
    assert_eq!(probed, [ProviderId::new("r").expect("id")]);
    assert_eq!(kind.probes(), 1);
    drop(listener);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let down = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let e = validator
        .preflight(
            &[roster("r", 1, "app", &[down])],
            &secrets,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert_eq!(e.provider().map(ProviderId::as_str), Some("r"));
    assert_eq!(kind.probes(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_builds_and_runs_it() {
    let kind = Arc::new(RosterKind::new());
    let registry = ProviderRegistry::builder()
        .with_validator(validator(&kind))
        .build();
    registry
        .register(roster("r", 10, "app", &[]))
        .expect("registered");
    let service = ClusterProvisioningService::build(registry)
        .start()
        .expect("start");
    let handle = kind.handle("r").expect("built through the kind");
    handle
        .upsert(member("n2", "10.0.0.2", 4000).into_node().0)
        .expect("n2");
    let started = Instant::now();
    loop {
        let ids: Vec<String> = service
            .topology()
            .map(|s| s.members().iter().map(|m| m.id.to_string()).collect())
            .unwrap_or_default();
        if ids == ["n1", "n2"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "published: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(start_paused = true)]
async fn it_passes_the_conformance_suite() {
    let kind = Arc::new(RosterKind::new());
    let validator = validator(&kind);
    let d = roster("r", 1, "app", &[]);
    let provider = validator
        .build(&d, &BuildContext::new(SecretResolver::new("/nonexistent")))
        .expect("built");
    assert_eq!(provider.descriptor().kind.as_str(), "roster");
    let driver = InMemoryDriver::new(kind.handle("r").expect("handle"));
    let report = run_conformance(
        provider.as_ref(),
        &driver,
        &SuiteConfig::new(Duration::from_secs(5)),
    )
    .await;
    let executed = report.assert_conformant();
    assert_eq!(executed, MANDATORY_CASES.len() + OPTIONAL_CASES.len());
}
