//! A `kube::Client` the program built, with a tower layer of its own,
//! handed to the kind: the watch, the liveness probe and the preflight go
//! through it, and the descriptor's endpoint is never dialled.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use provisioning_backend_k8s::KubeKind;
use provisioning_backend_k8s::kube;
use provisioning_provider_api::{ProviderDescriptor, ProviderEvent, ProviderId};
use provisioning_registry::{BackendKind, BuildContext, ProviderValidator};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriverMode, RequestKind, pod};
use serde_json::json;

use crate::support::{NS, driver, fake, ids, options, secrets, until};

const WAIT: Duration = Duration::from_secs(10);

/// Counts the requests that pass through it.
#[derive(Clone)]
struct Counting(Arc<AtomicUsize>);

impl<S> tower::Layer<S> for Counting {
    type Service = CountingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountingService {
            inner,
            count: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct CountingService<S> {
    inner: S,
    count: Arc<AtomicUsize>,
}

impl<S, R> tower::Service<R> for CountingService<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

/// The program's client: the fake's URL, `namespace` as its default, and
/// the counting layer.
fn injected(fake: &FakeKube, namespace: &str, count: &Arc<AtomicUsize>) -> kube::Client {
    let url = fake.url().parse().expect("the fake's URL");
    let mut config = kube::Config::new(url);
    config.default_namespace = namespace.to_owned();
    // One rustls provider for the process, as the provider's own client
    // makes sure of.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube::client::ClientBuilder::try_from(config)
        .expect("client config")
        .with_layer(&Counting(count.clone()))
        .build()
}

/// A descriptor whose one endpoint is a port nothing listens on, with no
/// `namespace` in its `watch` (the injected client's default applies).
async fn descriptor(fake: &Arc<FakeKube>, id: &str) -> ProviderDescriptor {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let closed = listener.local_addr().expect("addr");
    drop(listener);
    let mut watch = driver(fake, KubeDriverMode::Pods).watch_json();
    if let Some(w) = watch.as_object_mut() {
        w.remove("namespace");
    }
    serde_json::from_value(json!({
        "id": id, "kind": "k8s", "priority": 0,
        "endpoints": [format!("http://{closed}")],
        "watch": watch,
    }))
    .expect("descriptor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_and_the_probes_go_through_the_injected_client() {
    let fake = fake().await;
    for (name, ip) in [("p1", "10.0.0.1"), ("p2", "10.0.0.2")] {
        fake.upsert_pod(
            NS,
            &pod(name, ip).label("app", "actors").port("remoting", 4000),
        );
    }
    // A pod outside the selector, written last: the list's
    // resourceVersion is then above every member's, and only the
    // provider's watch guard (which reads it from the list answer) can put
    // it in the snapshot.
    let listed_at = fake.upsert_pod(NS, &pod("other", "10.0.0.9").label("app", "web"));
    let count = Arc::new(AtomicUsize::new(0));
    let d = descriptor(&fake, "k8s").await;
    let kind = Arc::new(KubeKind::new().with_client(injected(&fake, NS, &count)));
    ProviderValidator::new()
        .with_kind(kind.clone())
        .validate(&d)
        .expect("valid as ever");

    let secrets = secrets();
    kind.probe(&d, &secrets)
        .expect("a probe")
        .await
        .expect("the preflight through the injected client");
    assert_eq!(fake.count(RequestKind::Version), 1);
    let after_probe = count.load(Ordering::SeqCst);
    assert!(after_probe >= 3, "version and two reviews: {after_probe}");

    let provider = kind
        .build(&d, &BuildContext::new(secrets))
        .expect("provider");
    let mut stream = provider.stream(options());
    let seen = until(&mut stream, WAIT, "both pods", |e| {
        ids(e).is_some_and(|ids| ids == ["p1", "p2"])
    })
    .await;
    let Some(ProviderEvent::Snapshot(snapshot)) = seen.last() else {
        unreachable!()
    };
    // The provider's own layers sit on top of the injected client.
    assert_eq!(snapshot.revision(), Some(listed_at.to_string().as_str()));
    provider
        .liveness_probe()
        .expect("a liveness probe once connected")
        .await
        .expect("alive");
    let total = count.load(Ordering::SeqCst);
    println!("{total} requests through the injected client's layer");
    assert!(
        total >= after_probe + 2,
        "the list and the liveness /version after the probe: {total}"
    );
    assert_eq!(fake.count(RequestKind::Version), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_for_one_provider_leaves_the_others_on_their_descriptor() {
    let fake = fake().await;
    let count = Arc::new(AtomicUsize::new(0));
    let mine = descriptor(&fake, "k8s-a").await;
    let other = descriptor(&fake, "k8s-b").await;
    let kind = KubeKind::new().with_client_for(
        ProviderId::new("k8s-a").expect("id"),
        injected(&fake, NS, &count),
    );
    let secrets = secrets();
    kind.probe(&mine, &secrets)
        .expect("a probe")
        .await
        .expect("k8s-a through its client");
    let e = kind
        .probe(&other, &secrets)
        .expect("a probe")
        .await
        .expect_err("k8s-b dials its closed endpoint");
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(format!("{kind:?}").contains("k8s-a"));
}
