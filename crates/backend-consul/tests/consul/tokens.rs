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

/// A loopback listener that records every request head and answers each
/// with `response`.
fn recording_listener(response: String) -> (u16, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_str(&line);
                line.clear();
            }
            let _ = reader.into_inner().write_all(response.as_bytes());
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_redirect_never_takes_the_token_to_another_host() {
    let (elsewhere, seen_elsewhere) = recording_listener(
        "HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
            .to_owned(),
    );
    let (redirecting, seen_redirecting) = recording_listener(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:{elsewhere}/v1/health/service/{SERVICE}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ));
    let d: ProviderDescriptor = serde_json::from_str(&format!(
        r#"{{"id":"consul-a","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:{redirecting}"],"auth":{{"token":"env:TEST_CONSUL_TOKEN"}},"watch":{{"service":"{SERVICE}","wait":"1s"}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = ConsulProvider::builder(d)
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
    // A fault (the 307) without the fix, a snapshot from the target with it.
    let event = next(&mut stream, SOON).await;
    drop(stream);
    let lock = |seen: &std::sync::Mutex<String>| {
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    };
    assert!(
        lock(&seen_redirecting).contains(ALPHA),
        "the configured endpoint gets the token"
    );
    let elsewhere_saw = lock(&seen_elsewhere);
    assert!(
        !elsewhere_saw.contains(ALPHA),
        "the redirect target got the token: {elsewhere_saw}"
    );
    assert!(matches!(event, ProviderEvent::Fault(_)), "{event:?}");
}
