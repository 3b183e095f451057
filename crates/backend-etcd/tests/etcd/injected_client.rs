//! An `etcd_client::Client` the program built, handed to the kind: the
//! watch session, the registration lease, the liveness `Status` call and
//! the preflight all use it, and the descriptor's endpoint is never dialled.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{ConnectOptions, GetOptions};
use provisioning_backend_etcd::EtcdKind;
use provisioning_provider_api::*;
use provisioning_registry::{BackendKind, BuildContext, ProviderValidator};
use provisioning_testkit::etcd_cluster::EtcdCluster;

use crate::support::*;

/// A descriptor whose one endpoint is a port nothing listens on, which
/// registers `self-1` with a lease.
async fn descriptor_on_closed_port(id: &str) -> ProviderDescriptor {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let closed = listener.local_addr().expect("addr");
    drop(listener);
    let mut d = descriptor(
        &[format!("http://{closed}")],
        serde_json::json!({
            "prefix": PREFIX,
            "register": {"id": "self-1", "host": "10.9.9.9", "port": 7000, "ttl": "2s"},
        }),
    );
    d.id = ProviderId::new(id).expect("id");
    d
}

async fn injected(endpoints: &[String]) -> etcd_client::Client {
    let options = ConnectOptions::new().with_require_leader(true);
    etcd_client::Client::connect(endpoints, Some(options))
        .await
        .expect("the program's client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_the_lease_and_the_probes_use_the_injected_client() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mut c = client(&endpoints).await;
    c.put(
        format!("{PREFIX}n1"),
        member_json("n1", "10.0.0.1", 4000),
        None,
    )
    .await
    .expect("put");
    let d = descriptor_on_closed_port("etcd-test").await;
    let kind = Arc::new(EtcdKind::new().with_client(injected(&endpoints).await));
    ProviderValidator::new()
        .with_kind(kind.clone())
        .validate(&d)
        .expect("valid as ever");
    let secrets = secrets();
    kind.probe(&d, &secrets)
        .expect("a probe")
        .await
        .expect("the preflight through the injected client");

    let provider = kind
        .build(&d, &BuildContext::new(secrets))
        .expect("provider");
    let started = tokio::time::Instant::now();
    let recorder = Recorder::start(provider.stream(StreamOptions::new(Duration::from_secs(1))));
    recorder
        .wait_for(0, Duration::from_secs(10), |e| {
            matches!(e, ProviderEvent::Snapshot(s)
                if s.member("n1").is_some() && s.member("self-1").is_some())
        })
        .await
        .expect("n1 and the registered self-1");
    println!(
        "n1 and self-1 published {:?} after the stream opened",
        started.elapsed()
    );
    // The registration holds its key with a lease, through the same client.
    let key = c
        .get(
            format!("{PREFIX}self-1"),
            Some(GetOptions::new().with_keys_only()),
        )
        .await
        .expect("get");
    let lease = key.kvs().first().map(|kv| kv.lease());
    assert!(lease.is_some_and(|l| l != 0), "self-1's lease: {lease:?}");
    provider
        .liveness_probe()
        .expect("a liveness probe once connected")
        .await
        .expect("alive");
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_for_one_provider_leaves_the_others_on_their_descriptor() {
    let _serial = serial().await;
    let mut cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mine = descriptor_on_closed_port("etcd-a").await;
    let other = descriptor_on_closed_port("etcd-b").await;
    let kind = EtcdKind::new().with_client_for(
        ProviderId::new("etcd-a").expect("id"),
        injected(&endpoints).await,
    );
    let secrets = secrets();
    kind.probe(&mine, &secrets)
        .expect("a probe")
        .await
        .expect("etcd-a through its client");
    let e = kind
        .probe(&other, &secrets)
        .expect("a probe")
        .await
        .expect_err("etcd-b dials its closed endpoint");
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(format!("{kind:?}").contains("etcd-a"));
    // With etcd gone, etcd-a's error names its client, not the descriptor's
    // endpoint it never dialled.
    cluster.kill(0).expect("kill");
    let e = kind
        .probe(&mine, &secrets)
        .expect("a probe")
        .await
        .expect_err("etcd is down");
    let text = e.to_string();
    assert!(text.contains("via the injected client"), "{text}");
}
