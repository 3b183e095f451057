//! A `reqwest::Client` the program built, handed to the kind bound to an
//! origin: every request (watch, probe, liveness, self-registration) of a
//! provider at that origin goes through it; a provider elsewhere never gets
//! it, and an answer from another origin (a redirect followed) is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use provisioning_backend_consul::{ConsulKind, ConsulOrigin, ConsulProvider, reqwest};
use provisioning_provider_api::{
    ClusterProvider, FaultKind, ProviderDescriptor, ProviderEvent, ProviderId, StreamOptions,
};
use provisioning_registry::{BackendKind, BuildContext, ProviderValidator, SecretResolver};
use provisioning_testkit::fake_consul::{FakeAclPolicy, FakeConsul, FakeInstance};

use crate::{SERVICE, next, until};

/// A name that resolves nowhere (`.test` is reserved): only a client that
/// sends it elsewhere reaches anything.
const HOST: &str = "consul.injected.test";
const TOKEN: &str = "tok-injected-7d1e";
const SOON: Duration = Duration::from_secs(8);

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    drop(listener);
    port
}

/// A fake that answers only requests carrying [`TOKEN`].
async fn fake() -> FakeConsul {
    let consul = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
    consul.set_instances(
        SERVICE,
        (1..=2)
            .map(|i| {
                FakeInstance::new(SERVICE, &format!("n{i}"), &format!("127.0.0.{i}"), 4000 + i)
            })
            .collect(),
    );
    consul.enable_acl(FakeAclPolicy::none());
    consul.set_token(TOKEN, FakeAclPolicy::all());
    consul
}

/// The program's client: it sends [`TOKEN`] as a default header and every
/// request through an HTTP proxy, which is the fake (it reads the path of
/// the absolute URL a proxy is sent).
fn injected(fake: SocketAddr) -> reqwest::Client {
    let mut token = reqwest::header::HeaderValue::from_static(TOKEN);
    token.set_sensitive(true);
    let headers = reqwest::header::HeaderMap::from_iter([(
        reqwest::header::HeaderName::from_static("x-consul-token"),
        token,
    )]);
    reqwest::Client::builder()
        .default_headers(headers)
        .proxy(reqwest::Proxy::http(format!("http://{fake}")).unwrap_or_else(|e| panic!("{e}")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A descriptor whose endpoint is [`HOST`] on a closed port, with no token
/// and a self-registration.
async fn descriptor(id: &str) -> ProviderDescriptor {
    let port = closed_port().await;
    let json = format!(
        r#"{{"id":"{id}","kind":"consul","priority":20,"endpoints":["http://{HOST}:{port}"],"watch":{{"service":"{SERVICE}","wait":"1s","register":{{"id":"self-1","name":"{SERVICE}","address":"127.0.0.9","port":4999,"ttl":"2s"}}}}}}"#
    );
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// The origin of the descriptor's first endpoint: the server the program
/// means its client for.
fn origin_of(d: &ProviderDescriptor) -> ConsulOrigin {
    let url = reqwest::Url::parse(&d.endpoints[0]).unwrap_or_else(|e| panic!("{e}"));
    let origin = format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    );
    ConsulOrigin::parse(&origin).unwrap_or_else(|e| panic!("{e}"))
}

fn secrets() -> SecretResolver {
    SecretResolver::new(std::env::temp_dir())
}

#[tokio::test]
async fn every_request_goes_through_the_injected_client() {
    let consul = fake().await;
    let d = descriptor("consul-a").await;
    let kind = Arc::new(ConsulKind::new().with_client(origin_of(&d), injected(consul.addr())));
    // Registered over the built-in name, the descriptor validates as ever.
    ProviderValidator::new()
        .with_kind(kind.clone())
        .validate(&d)
        .unwrap_or_else(|e| panic!("{e}"));

    let secrets = secrets();
    let probe = kind
        .probe(&d, &secrets)
        .unwrap_or_else(|| panic!("a probe"));
    probe.await.unwrap_or_else(|e| panic!("probe: {e}"));

    let provider = kind
        .build(&d, &BuildContext::new(secrets))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    let event = until(
        &mut stream,
        SOON,
        |e| matches!(e, ProviderEvent::Snapshot(s) if s.member("self-1").is_some()),
    )
    .await;
    let ProviderEvent::Snapshot(snapshot) = event else {
        unreachable!()
    };
    let ids: Vec<&str> = snapshot.members().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2", "self-1"]);
    let liveness = provider
        .liveness_probe()
        .unwrap_or_else(|| panic!("a liveness probe"));
    liveness.await.unwrap_or_else(|e| panic!("liveness: {e:?}"));

    let requests = consul.requests();
    let paths: std::collections::BTreeSet<&str> =
        requests.iter().map(|r| r.path.as_str()).collect();
    println!("{} requests: {paths:?}", requests.len());
    for path in [
        "/v1/status/leader",
        "/v1/catalog/services",
        "/v1/health/service/app",
        "/v1/agent/service/register",
    ] {
        assert!(paths.contains(path), "{path} not requested: {paths:?}");
    }
    // Every one carried the injected client's default header.
    assert!(
        requests
            .iter()
            .all(|r| r.token.as_ref().is_some_and(|t| t.matches(TOKEN))),
        "{requests:#?}"
    );
    provider.shutdown().await;
}

#[tokio::test]
async fn a_client_for_one_provider_leaves_the_others_on_their_descriptor() {
    let consul = fake().await;
    let mine = descriptor("consul-a").await;
    let other = descriptor("consul-b").await;
    let id = ProviderId::new("consul-a").unwrap_or_else(|e| panic!("{e}"));
    let kind = ConsulKind::new().with_client_for(id, origin_of(&mine), injected(consul.addr()));
    let secrets = secrets();
    let probe = |d| kind.probe(d, &secrets).unwrap_or_else(|| panic!("a probe"));
    probe(&mine)
        .await
        .unwrap_or_else(|e| panic!("consul-a: {e}"));
    // consul-b connects to its descriptor's endpoint, which resolves nowhere.
    let e = probe(&other)
        .await
        .err()
        .unwrap_or_else(|| panic!("consul-b reached the fake"));
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    // The secret the client carries is never in the kind's Debug.
    let text = format!("{kind:?}");
    assert!(!text.contains(TOKEN) && text.contains("consul-a"), "{text}");
}

/// A client that sends [`TOKEN`] as a default header, straight to the URL
/// requested (no proxy), following redirects as reqwest does by default.
fn with_default_token() -> reqwest::Client {
    let headers = reqwest::header::HeaderMap::from_iter([(
        reqwest::header::HeaderName::from_static("x-consul-token"),
        reqwest::header::HeaderValue::from_static(TOKEN),
    )]);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A `consul` descriptor `id` for `endpoints` (a JSON array) with extra
/// top-level keys.
fn at(id: &str, endpoints: &str, extra: &str) -> ProviderDescriptor {
    let json = format!(
        r#"{{"id":"{id}","kind":"consul","priority":20,"endpoints":{endpoints}{extra},"watch":{{"service":"{SERVICE}","wait":"1s"}}}}"#
    );
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[tokio::test]
async fn a_descriptor_elsewhere_never_gets_the_injected_client() {
    let consul = fake().await;
    let attacker = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
    attacker.set_instances(
        SERVICE,
        vec![FakeInstance::new(SERVICE, "x1", "127.0.0.66", 4066)],
    );
    let origin = ConsulOrigin::parse(&consul.url()).unwrap_or_else(|e| panic!("{e}"));
    let id = ProviderId::new("consul-a").unwrap_or_else(|e| panic!("{e}"));
    // For every provider and for the id itself: an id deleted and used again
    // by another descriptor is no guarantee.
    let kind = ConsulKind::new()
        .with_client(origin.clone(), with_default_token())
        .with_client_for(id, origin, with_default_token());
    let secrets = secrets();
    let probe = |d| kind.probe(d, &secrets).unwrap_or_else(|| panic!("a probe"));

    // At the bound origin: through the client, its header accepted.
    let home = at("consul-a", &format!(r#"["{}"]"#, consul.url()), "");
    probe(&home).await.unwrap_or_else(|e| panic!("home: {e}"));
    let requests = consul.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.token.as_ref().is_some_and(|t| t.matches(TOKEN))),
        "{requests:#?}"
    );

    // Elsewhere (another port), alone or among endpoints at the origin:
    // the descriptor's own client, without the program's header.
    for (id, endpoints) in [
        ("consul-a", format!(r#"["{}"]"#, attacker.url())),
        (
            "consul-b",
            format!(r#"["{}","{}"]"#, attacker.url(), consul.url()),
        ),
    ] {
        let d = at(id, &endpoints, "");
        kind.probe(&d, &secrets)
            .unwrap_or_else(|| panic!("a probe"))
            .await
            .unwrap_or_else(|e| panic!("{id} {endpoints}: {e}"));
        let requests = attacker.requests();
        println!(
            "{id} {endpoints}: {} requests at the other port",
            requests.len()
        );
        assert!(!requests.is_empty(), "{id}: nothing requested there");
        assert!(
            requests.iter().all(|r| r.token.is_none()),
            "{id}: the program's token left for {endpoints}"
        );
        attacker.clear_requests();
    }
}

#[tokio::test]
async fn the_descriptor_token_goes_as_a_bearer_token_through_an_injected_client() {
    let consul = fake().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("token"), TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let d = at(
        "consul-a",
        &format!(r#"["{}"]"#, consul.url()),
        r#","auth":{"token":"file:token"}"#,
    );
    let provider = ConsulProvider::builder(d)
        .with_secrets(SecretResolver::new(dir.path()))
        .with_env(|_| None)
        .with_client(
            ConsulOrigin::parse(&consul.url()).unwrap_or_else(|e| panic!("{e}")),
            reqwest::Client::new(),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    provider
        .probe()
        .await
        .unwrap_or_else(|e| panic!("probe: {e}"));
    assert!(
        consul
            .requests()
            .iter()
            .all(|r| r.token.as_ref().is_some_and(|t| t.matches(TOKEN)))
    );
}

/// A listener that answers every request with a 307 to the same path and
/// query at `to`.
async fn redirector(to: SocketAddr) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let target = text.split(' ').nth(1).unwrap_or("/");
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{to}{target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_redirect_to_another_listener_gets_no_token_and_no_trust() {
    // The other listener answers anyone: only the provider's refusal keeps
    // its answer out.
    let elsewhere = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
    elsewhere.set_instances(
        SERVICE,
        vec![FakeInstance::new(SERVICE, "x1", "127.0.0.66", 4066)],
    );
    let home = redirector(elsewhere.addr()).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("token"), TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let d = at(
        "consul-a",
        &format!(r#"["http://{home}"]"#),
        r#","auth":{"token":"file:token"}"#,
    );
    let provider = ConsulProvider::builder(d)
        .with_secrets(SecretResolver::new(dir.path()))
        .with_env(|_| None)
        .with_client(
            ConsulOrigin::parse(&format!("http://{home}")).unwrap_or_else(|e| panic!("{e}")),
            // reqwest's default policy: up to 10 redirects, anywhere.
            reqwest::Client::new(),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    let event = next(&mut stream, SOON).await;
    let ProviderEvent::Fault(fault) = event else {
        panic!("the redirected answer was taken: {event:?}")
    };
    println!("{fault:?}");
    assert_eq!(
        (fault.kind, fault.permanent),
        (FaultKind::InvalidConfig, true)
    );
    assert!(
        fault.detail.contains("consul-a") && fault.detail.contains("redirect"),
        "{}",
        fault.detail
    );
    let e = provider
        .probe()
        .await
        .err()
        .unwrap_or_else(|| panic!("the probe took the redirected answer"));
    assert_eq!(e.code(), "invalid_config", "{e}");
    let requests = elsewhere.requests();
    println!("{} requests reached the other listener", requests.len());
    assert!(!requests.is_empty(), "the redirect was not followed");
    assert!(
        requests.iter().all(|r| r.token.is_none()),
        "the token followed the redirect"
    );
}
