//! Member sources through the fake: readiness, deletion, ports from labels,
//! the union over EndpointSlices and terminating endpoints.

use std::time::Duration;

use provisioning_provider_api::ProviderEvent;
use provisioning_testkit::fake_kube::{EndpointSpec, KubeDriverMode, endpoint_slice, pod};
use serde_json::json;

use crate::support::{NS, draining, driver, fake, ids, open, provider, until};

const WAIT: Duration = Duration::from_secs(10);

fn want(ids: &[&str]) -> Option<Vec<String>> {
    Some(ids.iter().map(|s| s.to_string()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_follow_readiness_deletion_and_the_port_label() {
    let fake = fake().await;
    let provider = provider(
        &driver(&fake, KubeDriverMode::Pods),
        json!({"port_label": "example.com/port", "include_unready": false}),
    );
    let base = |name: &str, ip: &str| {
        pod(name, ip)
            .label("app", "actors")
            .label("example.com/port", "7001")
            .label("zone", "z1")
    };
    fake.upsert_pod(NS, &base("a", "10.0.0.1"));
    fake.upsert_pod(NS, &base("b", "10.0.0.2").ready(false));
    fake.upsert_pod(NS, &base("c", "10.0.0.3").phase("Pending"));
    fake.upsert_pod(NS, &pod("x", "10.0.0.9").label("app", "other"));
    let mut stream = open(&provider);
    let seen = until(&mut stream, WAIT, "ready pods only", |e| {
        ids(e) == want(&["a"])
    })
    .await;
    match seen.last() {
        Some(ProviderEvent::Snapshot(s)) => {
            let m = &s.members()[0];
            assert_eq!((m.host.as_str(), m.port), ("10.0.0.1", 7001));
            // Selector and port labels are left out; the rest travels.
            assert_eq!(m.labels.len(), 1, "{:?}", m.labels);
            assert_eq!(m.labels["zone"], "z1");
        }
        other => panic!("{other:?}"),
    }
    fake.upsert_pod(NS, &base("b", "10.0.0.2"));
    until(&mut stream, WAIT, "b became ready", |e| {
        ids(e) == want(&["a", "b"])
    })
    .await;
    // Being deleted but still ready: a member in its grace period, draining.
    fake.upsert_pod(NS, &base("a", "10.0.0.1").deleting());
    until(&mut stream, WAIT, "a is draining", |e| {
        ids(e) == want(&["a", "b"]) && draining(e) == want(&["a"])
    })
    .await;
    fake.upsert_pod(NS, &base("a", "10.0.0.1").deleting().ready(false));
    until(&mut stream, WAIT, "a is being deleted and unready", |e| {
        ids(e) == want(&["b"])
    })
    .await;
    // A pod leaving the selector is a DELETED for the watch.
    fake.upsert_pod(NS, &base("b", "10.0.0.2").label("app", "retired"));
    until(&mut stream, WAIT, "b left the selector", |e| {
        ids(e) == want(&[])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_are_unioned_and_terminating_endpoints_drain_then_leave() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::EndpointSlices), json!({}));
    let slice = |name: &str| endpoint_slice(name, "actors").port("remoting", 4000);
    let terminating = EndpointSpec {
        terminating: Some(true),
        serving: Some(true),
        ready: Some(false),
        ..EndpointSpec::ready("p3", "10.0.0.3")
    };
    fake.upsert_slice(
        NS,
        &slice("actors-a")
            .endpoint(EndpointSpec::ready("p1", "10.0.0.1"))
            .endpoint(EndpointSpec::ready("p2", "10.0.0.2")),
    );
    fake.upsert_slice(
        NS,
        &slice("actors-b")
            // The same endpoint in two slices (moving) counts once.
            .endpoint(EndpointSpec::ready("p2", "10.0.0.2"))
            .endpoint(terminating.clone()),
    );
    fake.upsert_slice(
        NS,
        &endpoint_slice("unrelated", "other-service")
            .port("remoting", 4000)
            .endpoint(EndpointSpec::ready("z", "10.9.9.9")),
    );
    let mut stream = open(&provider);
    // p3, terminating but still serving, is a member: draining.
    until(&mut stream, WAIT, "the union", |e| {
        ids(e) == want(&["p1", "p2", "p3"]) && draining(e) == want(&["p3"])
    })
    .await;
    // p3 finishes starting in slice b; p1's slice is replaced without it.
    fake.upsert_slice(
        NS,
        &slice("actors-b")
            .endpoint(EndpointSpec::ready("p2", "10.0.0.2"))
            .endpoint(EndpointSpec::ready("p3", "10.0.0.3")),
    );
    until(&mut stream, WAIT, "p3 serving", |e| {
        ids(e) == want(&["p1", "p2", "p3"]) && draining(e) == want(&[])
    })
    .await;
    fake.upsert_slice(
        NS,
        &slice("actors-a")
            .endpoint(EndpointSpec {
                terminating: Some(true),
                serving: Some(false),
                ..EndpointSpec::ready("p1", "10.0.0.1")
            })
            .endpoint(EndpointSpec::ready("p2", "10.0.0.2")),
    );
    until(&mut stream, WAIT, "p1 terminating left", |e| {
        ids(e) == want(&["p2", "p3"])
    })
    .await;
    fake.delete(
        provisioning_testkit::fake_kube::ObjectKind::EndpointSlice,
        NS,
        "actors-b",
    );
    until(&mut stream, WAIT, "slice b gone, p2 still in a", |e| {
        ids(e) == want(&["p2"])
    })
    .await;
}
