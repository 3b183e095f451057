//! The service built with a registry whose `consul` kind carries a client
//! the program built, bound to the origin the program means it for: the
//! provider at that origin connects through that client (an HTTP proxy and
//! a default token header), not to the descriptor's endpoint directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::consul::{ConsulKind, ConsulOrigin, reqwest};
use cluster_provisioning::registry::descriptor_from_json;
use cluster_provisioning::{ClusterProvisioningService, ProviderRegistry, builtin_validator};
use provisioning_testkit::fake_consul::{FakeAclPolicy, FakeConsul, FakeInstance};

const TOKEN: &str = "tok-facade-3c9a";

fn injected(consul: &FakeConsul) -> reqwest::Client {
    let proxy = reqwest::Proxy::http(consul.url()).expect("proxy");
    let mut token = reqwest::header::HeaderValue::from_static(TOKEN);
    token.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-consul-token", token);
    reqwest::Client::builder()
        .proxy(proxy)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_a_kind_with_an_injected_client() {
    let consul = FakeConsul::start().await.expect("fake consul");
    consul.set_instances(
        "app",
        vec![
            FakeInstance::new("app", "n1", "10.0.0.1", 4000),
            FakeInstance::new("app", "n2", "10.0.0.2", 4000),
        ],
    );
    consul.enable_acl(FakeAclPolicy::none());
    consul.set_token(TOKEN, FakeAclPolicy::all());
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);

    // The program's proxy reaches this name; the client is for it only.
    let endpoint = format!("http://consul.injected.test:{}", closed_addr.port());
    let origin = ConsulOrigin::parse(&endpoint).expect("origin");
    let kind = ConsulKind::new().with_client(origin, injected(&consul));
    let registry = ProviderRegistry::builder()
        .with_validator(builtin_validator().with_kind(Arc::new(kind)))
        .build();
    registry
        .register(
            descriptor_from_json(&format!(
                r#"{{"id":"c","kind":"consul","priority":10,"endpoints":["{endpoint}"],"watch":{{"service":"app","wait":"1s"}}}}"#
            ))
            .expect("descriptor"),
        )
        .expect("registered");
    let service = ClusterProvisioningService::build(registry)
        .start()
        .expect("start");
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
    println!("published after {:?}", started.elapsed());
    assert!(
        consul
            .requests()
            .iter()
            .all(|r| r.token.as_ref().is_some_and(|t| t.matches(TOKEN)))
    );
    service.shutdown().await.expect("shutdown");
}
