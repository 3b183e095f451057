//! Tokens: sent as `X-Consul-Token`, re-read on every reconnect, taken from
//! `CONSUL_HTTP_*` when the descriptor has none, never printed.

use std::time::Duration;

use provisioning_backend_consul::ConsulProvider;
use provisioning_provider_api::{
    ClusterProvider, FaultKind, ProviderDescriptor, ProviderEvent, StreamOptions,
};
use provisioning_registry::SecretResolver;
use provisioning_testkit::fake_consul::{FakeAclPolicy, FakeConsul, FakeInstance};

use crate::{SERVICE, descriptor, next, provider, until};

const ALPHA: &str = "tok-alpha-5f0c1e7d";
const BRAVO: &str = "tok-bravo-9a3b2c4d";
const SOON: Duration = Duration::from_secs(8);

async fn fake_with_acl() -> FakeConsul {
    let consul = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
    consul.set_instances(
        SERVICE,
        vec![FakeInstance::new(SERVICE, "n1", "127.0.0.1", 4001)],
    );
    consul.enable_acl(FakeAclPolicy::none());
    consul
}

fn assert_no_secret(text: &str) {
    assert!(
        !text.contains(ALPHA) && !text.contains(BRAVO),
        "a token leaked: {text}"
    );
}

#[tokio::test]
async fn rotated_token_file_is_read_again_on_reconnect() {
    let consul = fake_with_acl().await;
    consul.set_token(ALPHA, FakeAclPolicy::all());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("token"), format!("{ALPHA}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let p = provider(
        descriptor(&consul, "", r#","auth":{"token":"file:token"}"#),
        SecretResolver::new(dir.path()),
    );
    assert_no_secret(&format!("{p:?}"));
    let mut stream = p.stream(StreamOptions::new(Duration::from_millis(1500)));
    assert!(matches!(
        next(&mut stream, SOON).await,
        ProviderEvent::Snapshot(_)
    ));

    // The token is revoked: Consul answers 403 "ACL not found".
    consul.delete_token(ALPHA);
    let fault = until(&mut stream, SOON, |e| matches!(e, ProviderEvent::Fault(_))).await;
    let ProviderEvent::Fault(fault) = fault else {
        unreachable!()
    };
    assert_eq!(
        (fault.kind, fault.permanent),
        (FaultKind::PermissionDenied, true),
        "{fault}"
    );
    assert!(fault.detail.contains("ACL not found"), "{fault}");
    assert_no_secret(&fault.to_string());

    // The operator rotates the file; the next attempt reads it.
    consul.set_token(BRAVO, FakeAclPolicy::all());
    std::fs::write(dir.path().join("token"), BRAVO).unwrap_or_else(|e| panic!("{e}"));
    until(&mut stream, SOON, |e| e.is_liveness()).await;

    let log = consul.requests();
    let health: Vec<_> = log.iter().filter(|r| r.is_health(SERVICE)).collect();
    assert!(
        health
            .first()
            .and_then(|r| r.token.as_ref())
            .is_some_and(|t| t.matches(ALPHA))
    );
    assert!(
        health
            .last()
            .and_then(|r| r.token.as_ref())
            .is_some_and(|t| t.matches(BRAVO))
    );
    assert_no_secret(&format!("{log:?}"));
}

#[tokio::test]
async fn results_filtered_by_acls_are_a_permanent_fault_not_an_empty_view() {
    let consul = fake_with_acl().await;
    consul.set_token(ALPHA, FakeAclPolicy::read(&["other"]));
    let p = ConsulProvider::builder(descriptor(
        &consul,
        "",
        r#","auth":{"token":"env:TEST_CONSUL_TOKEN"}"#,
    ))
    .with_secrets(SecretResolver::new(".").with_env(|name| {
        if name == "TEST_CONSUL_TOKEN" {
            Ok(ALPHA.to_owned())
        } else {
            Err(std::env::VarError::NotPresent)
        }
    }))
    .with_env(|_| None)
    .build()
    .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = p.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Fault(f) => {
            assert_eq!(
                (f.kind, f.permanent),
                (FaultKind::PermissionDenied, true),
                "{f}"
            );
            assert!(f.detail.contains("filtered the results by ACLs"), "{f}");
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    consul.set_token(ALPHA, FakeAclPolicy::read(&[SERVICE]));
    match until(&mut stream, SOON, |e| e.is_liveness()).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn consul_http_variables_fill_address_and_token() {
    let consul = fake_with_acl().await;
    consul.set_token(BRAVO, FakeAclPolicy::all());
    let d: ProviderDescriptor = serde_json::from_str(&format!(
        r#"{{"id":"consul-env","kind":"consul","priority":1,"watch":{{"service":"{SERVICE}","wait":"1s"}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = consul.addr().to_string();
    let env = move |name: &str| match name {
        "CONSUL_HTTP_ADDR" => Some(addr.clone()),
        "CONSUL_HTTP_TOKEN" => Some(BRAVO.to_owned()),
        _ => None,
    };
    let env2 = env.clone();
    let p = ConsulProvider::builder(d)
        .with_secrets(
            SecretResolver::new(".")
                .with_env(move |name| env2(name).ok_or(std::env::VarError::NotPresent)),
        )
        .with_env(env)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = p.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 1),
        other => panic!("{other:?}"),
    }
    let log = consul.requests();
    assert!(
        log.iter()
            .all(|r| r.token.as_ref().is_some_and(|t| t.matches(BRAVO)))
    );
    assert_no_secret(&format!("{p:?} {log:?}"));
}
