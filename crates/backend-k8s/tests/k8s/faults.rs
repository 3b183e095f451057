//! Fault tests through the fake: relists, 410s, watches closed at once, the
//! API server going down, 403 with the RBAC rule, stalls, token rotation.

use std::time::Duration;

use futures::StreamExt;
use provisioning_provider_api::{FaultKind, ProviderEvent};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriverMode, ObjectKind, RequestKind, pod};
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::support::{NS, driver, fake, ids, open, provider, until};

fn add_pods(fake: &FakeKube, names: impl IntoIterator<Item = usize>) {
    fake.batch(|b| {
        for i in names {
            let p = pod(
                format!("p{i:03}"),
                format!("10.0.{}.{}", i / 200, i % 200 + 1),
            )
            .label("app", "actors")
            .port("remoting", 4000);
            b.upsert(ObjectKind::Pod, NS, p.build());
        }
    });
}

fn names(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    range.into_iter().map(|i| format!("p{i:03}")).collect()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_deleted_while_no_watch_was_open_disappear_after_the_relist() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..3);
    let mut stream = open(&provider);
    let seen = until(&mut stream, WAIT, "first snapshot", |e| {
        ids(e) == Some(names(0..3))
    })
    .await;
    // The revision is the resourceVersion reached.
    let rv = fake.resource_version().to_string();
    assert!(
        matches!(seen.last(), Some(ProviderEvent::Snapshot(s)) if s.revision() == Some(rv.as_str())),
        "{seen:?}"
    );

    // The API server goes down: every connection drops, no watch is open.
    fake.down();
    let deadline = Instant::now() + WAIT;
    while fake.open_watches() > 0 {
        assert!(Instant::now() < deadline, "watches still open");
        sleep(Duration::from_millis(10)).await;
    }
    let seen = until(&mut stream, WAIT, "a fault while down", |e| {
        matches!(e, ProviderEvent::Fault(_))
    })
    .await;
    match seen.last() {
        Some(ProviderEvent::Fault(f)) => {
            assert_eq!(f.kind, FaultKind::BackendUnavailable, "{f}");
            assert!(!f.permanent);
        }
        other => panic!("{other:?}"),
    }
    // Deleted while nothing watched: no DELETED event can reach the client.
    fake.delete(ObjectKind::Pod, NS, "p001");
    let lists_before = fake.count(RequestKind::List(ObjectKind::Pod));
    fake.up().await.expect("listen again");
    let seen = until(&mut stream, WAIT, "the relisted view", |e| {
        ids(e) == Some(vec!["p000".into(), "p002".into()])
    })
    .await;
    let rv = fake.resource_version().to_string();
    assert!(
        matches!(seen.last(), Some(ProviderEvent::Snapshot(s)) if s.revision() == Some(rv.as_str())),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|e| matches!(e, ProviderEvent::Fault(f) if !f.permanent) || e.is_liveness()),
        "{seen:#?}"
    );
    assert!(fake.count(RequestKind::List(ObjectKind::Pod)) > lists_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_down_gives_retryable_faults_with_backoff_then_recovers() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..2);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| e.is_liveness()).await;
    fake.down();
    // Rule 2: the first faults come fast, then the backoff spaces them.
    let started = Instant::now();
    let mut faults = Vec::new();
    while faults.len() < 4 {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(ProviderEvent::Fault(f))) => {
                assert!(!f.permanent, "{f}");
                faults.push(started.elapsed());
            }
            Ok(Some(e)) if e.is_liveness() => {}
            other => panic!("expected faults, got {other:?}"),
        }
    }
    assert!(
        faults[2] < Duration::from_secs(1),
        "three faults took {faults:?}"
    );
    assert!(
        faults[3] - faults[2] >= Duration::from_millis(350),
        "the fourth attempt must wait for the backoff: {faults:?}"
    );
    fake.up().await.expect("listen again");
    until(&mut stream, WAIT, "recovery", |e| e.is_liveness()).await;
    // And it stays healthy: heartbeats keep coming.
    until(&mut stream, Duration::from_secs(3), "a heartbeat", |e| {
        matches!(e, ProviderEvent::Heartbeat(_))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_410_event_relists_without_losing_or_duplicating_members() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..50);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| {
        ids(e) == Some(names(0..50))
    })
    .await;
    assert_eq!(fake.count(RequestKind::List(ObjectKind::Pod)), 1);

    fake.expire_resource_versions();
    // Changes right after the expiry: only a relist can show them.
    fake.delete(ObjectKind::Pod, NS, "p000");
    add_pods(&fake, 50..52);
    let seen = until(&mut stream, WAIT, "the relisted view", |e| {
        ids(e) == Some(names(1..52))
    })
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, ProviderEvent::Fault(f) if f.is_resync())),
        "a resync notice: {seen:#?}"
    );
    let last = seen.last().and_then(ids).unwrap_or_default();
    let mut unique = last.clone();
    unique.dedup();
    assert_eq!(unique.len(), last.len());
    assert_eq!(
        fake.count(RequestKind::List(ObjectKind::Pod)),
        2,
        "one relist"
    );
    // Later events still flow on the new watch.
    fake.delete(ObjectKind::Pod, NS, "p051");
    until(&mut stream, WAIT, "an event after the relist", |e| {
        ids(e) == Some(names(1..51))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_410_at_http_level_relists_and_a_permanent_410_does_not_loop() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..5);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| {
        ids(e) == Some(names(0..5))
    })
    .await;

    // Expiry with HTTP-level 410: the watch ends cleanly, the re-watch from
    // the old version is answered 410 (kube-runtime alone would retry the
    // watch from the same version forever).
    fake.set_gone_http(true);
    fake.expire_resource_versions();
    fake.delete(ObjectKind::Pod, NS, "p004");
    until(&mut stream, WAIT, "the relisted view", |e| {
        ids(e) == Some(names(0..4))
    })
    .await;
    assert_eq!(fake.count(RequestKind::List(ObjectKind::Pod)), 2);

    // A server answering every watch 410 forever: bounded relists.
    fake.clear_requests();
    fake.set_watch_status(Some(410));
    fake.end_watches();
    let window = Duration::from_secs(5);
    let until_at = Instant::now() + window;
    let mut resyncs = 0;
    while let Ok(Some(event)) = tokio::time::timeout_at(until_at, stream.next()).await {
        if matches!(&event, ProviderEvent::Fault(f) if f.is_resync()) {
            resyncs += 1;
        }
    }
    let lists = fake.count(RequestKind::List(ObjectKind::Pod));
    let watches = fake.count(RequestKind::Watch(ObjectKind::Pod));
    println!("410 forever for {window:?}: {lists} lists, {watches} watches, {resyncs} resyncs");
    assert!(resyncs >= 2, "the resyncs are reported");
    assert!(
        lists <= 8 && watches <= 9,
        "{lists} lists, {watches} watches in {window:?}"
    );
    fake.heal();
    until(&mut stream, WAIT, "recovery", |e| e.is_liveness()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_closed_at_once_get_a_bounded_request_rate() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..3);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| {
        ids(e) == Some(names(0..3))
    })
    .await;

    fake.clear_requests();
    fake.set_close_watches(true);
    fake.end_watches();
    let window = Duration::from_secs(5);
    let end = Instant::now() + window;
    let mut faults = 0;
    while let Ok(Some(event)) = tokio::time::timeout_at(end, stream.next()).await {
        match event {
            ProviderEvent::Fault(f) => {
                assert!(!f.permanent, "{f}");
                faults += 1;
            }
            ProviderEvent::Terminated(t) => panic!("{t:?}"),
            _ => {}
        }
    }
    let log = fake.requests();
    let watches: Vec<_> = log
        .iter()
        .filter(|r| r.kind == RequestKind::Watch(ObjectKind::Pod))
        .map(|r| r.at)
        .collect();
    let lists = fake.count(RequestKind::List(ObjectKind::Pod));
    println!(
        "watches closed at once for {window:?}: {} watch requests at {watches:?}, {lists} lists, {faults} faults",
        watches.len()
    );
    // Unguarded, kube-runtime re-watches in a tight loop (thousands per
    // second on loopback). Guarded: at once, 100 ms, 0.5 s, 1 s, 2 s, 2 s...
    assert!(watches.len() <= 10, "{} watch requests", watches.len());
    assert!(watches.len() >= 3, "the watcher keeps trying: {watches:?}");
    assert_eq!(lists, 0, "a closed watch is resumed, not relisted");
    assert!(faults >= 1, "the streak is reported");

    // Changes still arrive once watches stay open again.
    fake.heal();
    fake.delete(ObjectKind::Pod, NS, "p000");
    until(&mut stream, WAIT, "the change after healing", |e| {
        ids(e) == Some(names(1..3))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_is_a_permanent_fault_naming_the_rbac_rule() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..2);
    fake.deny(ObjectKind::Pod, "list");
    let mut stream = open(&provider);
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(ProviderEvent::Fault(f))) => {
            assert!(f.permanent, "{f}");
            assert_eq!(f.kind, FaultKind::PermissionDenied);
            assert!(
                f.detail.contains(
                    r#"apiGroups [""], resources ["pods"], verbs ["list"] in namespace "apps""#
                ),
                "{}",
                f.detail
            );
        }
        other => panic!("the first item must be the fault: {other:?}"),
    }
    // Permission granted: the stream recovers by itself.
    fake.heal();
    until(&mut stream, WAIT, "the view", |e| {
        ids(e) == Some(names(0..2))
    })
    .await;

    // Watch revoked (list still allowed): the rule names `watch`.
    let slices = driver(&fake, KubeDriverMode::EndpointSlices);
    let slice_provider = crate::support::provider(&slices, json!({}));
    fake.deny(ObjectKind::EndpointSlice, "watch");
    let mut stream = open(&slice_provider);
    let seen = until(&mut stream, WAIT, "the watch denial", |e| {
        matches!(e, ProviderEvent::Fault(_))
    })
    .await;
    match seen.last() {
        Some(ProviderEvent::Fault(f)) => {
            assert!(f.permanent);
            assert!(
                f.detail.contains(
                    r#"apiGroups ["discovery.k8s.io"], resources ["endpointslices"], verbs ["watch"]"#
                ),
                "{}",
                f.detail
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_are_retryable() {
    for status in [500, 429, 503] {
        let fake = fake().await;
        let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
        add_pods(&fake, 0..1);
        fake.set_status(Some(status));
        let mut stream = open(&provider);
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(ProviderEvent::Fault(f))) => {
                assert!(!f.permanent, "{status}: {f}");
                assert_eq!(f.kind, FaultKind::BackendUnavailable, "{status}: {f}");
                assert!(f.detail.contains(&status.to_string()), "{}", f.detail);
            }
            other => panic!("{status}: {other:?}"),
        }
        fake.heal();
        until(&mut stream, WAIT, "recovery", |e| {
            ids(e) == Some(names(0..1))
        })
        .await;
    }
    // Connections accepted and closed at once (a crashing proxy).
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    add_pods(&fake, 0..1);
    fake.set_refuse(true);
    let mut stream = open(&provider);
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(ProviderEvent::Fault(f))) => {
            assert!(!f.permanent, "{f}");
            assert_eq!(f.kind, FaultKind::BackendUnavailable, "{f}");
        }
        other => panic!("refused: {other:?}"),
    }
    fake.heal();
    until(&mut stream, WAIT, "recovery", |e| {
        ids(e) == Some(names(0..1))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_api_server_times_out_and_recovers() {
    let fake = fake().await;
    let provider = provider(
        &driver(&fake, KubeDriverMode::Pods),
        json!({"idle_timeout": "2s"}),
    );
    add_pods(&fake, 0..2);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| {
        ids(e) == Some(names(0..2))
    })
    .await;
    fake.set_stall(true);
    let seen = until(
        &mut stream,
        WAIT,
        "a timeout fault",
        |e| matches!(e, ProviderEvent::Fault(f) if f.kind == FaultKind::Timeout),
    )
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, ProviderEvent::Snapshot(_))),
        "{seen:#?}"
    );
    fake.set_stall(false);
    fake.delete(ObjectKind::Pod, NS, "p000");
    until(&mut stream, Duration::from_secs(20), "recovery", |e| {
        ids(e) == Some(names(1..2))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_reread_on_reconnect() {
    let fake = fake().await;
    let dir = std::env::temp_dir().join(format!("k8s-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token = dir.join("token");
    std::fs::write(&token, "first\n").expect("write token");
    let driver = driver(&fake, KubeDriverMode::Pods);
    let mut descriptor = driver.descriptor("k8s", json!({})).expect("descriptor");
    // A relative reference: resolved against the resolver's base directory.
    descriptor.auth = Some(provisioning_provider_api::ProviderAuth::token(
        provisioning_provider_api::SecretRef::parse("file:token").expect("reference"),
    ));
    let secrets = provisioning_registry::SecretResolver::new(&dir);
    let provider = provisioning_backend_k8s::KubeProvider::from_descriptor(descriptor, &secrets)
        .expect("provider");
    add_pods(&fake, 0..1);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| e.is_liveness()).await;
    let auth = |fake: &FakeKube| fake.requests().last().and_then(|r| r.authorization.clone());
    assert_eq!(auth(&fake).as_deref(), Some("Bearer first"));
    // The token rotates; the next reconnect (after any failure) uses it.
    std::fs::write(&token, "second\n").expect("rotate token");
    fake.clear_requests();
    fake.set_status(Some(401));
    fake.end_watches();
    until(&mut stream, WAIT, "the 401", |e| {
        matches!(e, ProviderEvent::Fault(f) if f.kind == FaultKind::PermissionDenied && f.permanent)
    })
    .await;
    fake.heal();
    until(&mut stream, WAIT, "recovery", |e| e.is_liveness()).await;
    assert_eq!(auth(&fake).as_deref(), Some("Bearer second"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_watch_on_a_healthy_server_is_replaced_within_the_idle_timeout() {
    let fake = fake().await;
    let provider = provider(
        &driver(&fake, KubeDriverMode::Pods),
        json!({"idle_timeout": "2s"}),
    );
    add_pods(&fake, 0..3);
    let mut stream = open(&provider);
    until(&mut stream, WAIT, "first snapshot", |e| {
        ids(e) == Some(names(0..3))
    })
    .await;
    // Let the first watch pass its 2 s timeout once, so the stuck one below
    // is a resumed watch (no relist involved). The stream is pulled
    // meanwhile: like kube-runtime's watcher, it only works when polled.
    let end = Instant::now() + Duration::from_millis(2500);
    while let Ok(Some(event)) = tokio::time::timeout_at(end, stream.next()).await {
        assert!(event.is_liveness(), "{event:?}");
    }
    let lists = fake.count(RequestKind::List(ObjectKind::Pod));

    fake.stall_open_watches();
    let stuck_at = Instant::now();
    fake.delete(ObjectKind::Pod, NS, "p000");
    let seen = until(&mut stream, Duration::from_secs(15), "the change", |e| {
        ids(e) == Some(names(1..3))
    })
    .await;
    let took = stuck_at.elapsed();
    let heartbeats = seen
        .iter()
        .filter(|e| matches!(e, ProviderEvent::Heartbeat(_)))
        .count();
    println!("stuck watch: change seen after {took:?}, {heartbeats} heartbeats meanwhile");

    // The blind spot: the API server answers, so the provider heartbeats
    // while the stuck watch hides the change...
    assert!(heartbeats >= 2, "{seen:#?}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    // ...bounded by the watch's idle timeout: 2 s + kube-runtime's 5 s.
    assert!(took <= Duration::from_secs(9), "{took:?}");
    assert_eq!(
        fake.count(RequestKind::List(ObjectKind::Pod)),
        lists,
        "the stuck watch is replaced by a resumed watch, not a relist"
    );
}
