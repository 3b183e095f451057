//! A `reqwest::Client` the program built, handed to the kind: every request
//! (watch, probe, liveness, self-registration) goes through it, and the
//! descriptor's endpoint is only the URL requested.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use provisioning_backend_consul::ConsulKind;
use provisioning_backend_consul::reqwest;
use provisioning_provider_api::{ProviderDescriptor, ProviderEvent, ProviderId, StreamOptions};
use provisioning_registry::{BackendKind, BuildContext, ProviderValidator, SecretResolver};
use provisioning_testkit::fake_consul::{FakeAclPolicy, FakeConsul, FakeInstance};

use crate::{SERVICE, until};

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

fn secrets() -> SecretResolver {
    SecretResolver::new(std::env::temp_dir())
}

#[tokio::test]
async fn every_request_goes_through_the_injected_client() {
    let consul = fake().await;
    let d = descriptor("consul-a").await;
    let kind = Arc::new(ConsulKind::new().with_client(injected(consul.addr())));
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
    let kind = ConsulKind::new().with_client_for(id, injected(consul.addr()));
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
