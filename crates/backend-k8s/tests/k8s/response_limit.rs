//! Answers over the response limit (`MAX_RESPONSE_BYTES`): a list answer
//! and a watch line, served by the fake API server to the unmodified kube
//! client over loopback, become retryable faults naming the request, and
//! the stream recovers once the object is fixed.

use std::time::Duration;

use provisioning_backend_k8s::MAX_RESPONSE_BYTES;
use provisioning_provider_api::{FaultKind, ProviderEvent};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriverMode, ObjectKind, PodBuilder, pod};
use serde_json::json;
use tokio::time::Instant;

use crate::support::{NS, driver, fake, ids, open, provider, until};

/// Generous: the fake serializes a 64 MiB object per request, in a debug
/// build, on a shared 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

fn member(name: &str, ip: &str) -> PodBuilder {
    pod(name, ip).label("app", "actors").port("remoting", 4000)
}

/// A pod whose JSON alone is over the limit (one annotation just past it).
fn oversized(name: &str) -> PodBuilder {
    member(name, "10.0.0.9").annotation("filler", "x".repeat(MAX_RESPONSE_BYTES + 1))
}

fn too_large_fault(event: &ProviderEvent) -> Option<String> {
    match event {
        ProviderEvent::Fault(f) if f.kind == FaultKind::MalformedResponse => {
            assert!(!f.permanent, "{f}");
            Some(f.detail.clone())
        }
        _ => None,
    }
}

fn fix(fake: &FakeKube, name: &str) {
    fake.upsert(ObjectKind::Pod, NS, member(name, "10.0.0.9").build());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_answer_over_the_limit_is_a_fault_naming_the_list() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    fake.upsert(ObjectKind::Pod, NS, member("p1", "10.0.0.1").build());
    fake.upsert(ObjectKind::Pod, NS, oversized("big").build());
    let mut stream = open(&provider);
    let started = Instant::now();
    let seen = until(&mut stream, WAIT, "a fault for the list", |e| {
        too_large_fault(e).is_some()
    })
    .await;
    let took = started.elapsed();
    let detail = seen.last().and_then(too_large_fault).unwrap_or_default();
    println!("oversized list: fault after {took:?}: {detail}");
    assert!(
        detail.contains(&format!("list GET /api/v1/namespaces/{NS}/pods"))
            && detail.contains(&format!("answer larger than {MAX_RESPONSE_BYTES} bytes")),
        "{detail}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, ProviderEvent::Snapshot(_))),
        "nothing is published from an answer over the limit: {:?}",
        seen.iter().filter_map(ids).collect::<Vec<_>>()
    );
    // Retryable: once the object shrinks, the next relist succeeds.
    fix(&fake, "big");
    until(&mut stream, WAIT, "the view after the fix", |e| {
        ids(e) == Some(vec!["big".into(), "p1".into()])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_line_over_the_limit_is_a_fault_naming_the_watch() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    fake.upsert(ObjectKind::Pod, NS, member("p1", "10.0.0.1").build());
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "the first snapshot", |e| {
        ids(e) == Some(vec!["p1".into()])
    })
    .await;

    // The watcher's next request after its list is the watch from the
    // list's version, so the change arrives as one ADDED line of it.
    let started = Instant::now();
    fake.upsert(ObjectKind::Pod, NS, oversized("big").build());
    let seen = until(&mut stream, WAIT, "a fault for the watch line", |e| {
        too_large_fault(e).is_some()
    })
    .await;
    let took = started.elapsed();
    let detail = seen.last().and_then(too_large_fault).unwrap_or_default();
    println!("oversized watch line: fault after {took:?}: {detail}");
    assert!(
        detail.contains(&format!("watch GET /api/v1/namespaces/{NS}/pods"))
            && detail.contains(&format!(
                "a watch line longer than {MAX_RESPONSE_BYTES} bytes"
            )),
        "{detail}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| ids(e).is_some_and(|ids| ids.contains(&"big".to_string()))),
        "the oversized pod was published"
    );
    fix(&fake, "big");
    until(&mut stream, WAIT, "the view after the fix", |e| {
        ids(e) == Some(vec!["big".into(), "p1".into()])
    })
    .await;
}
