//! One test per fault switch of the fake: what the provider emits, and
//! that the same stream recovers without a restart.

use std::time::Duration;

use provisioning_provider_api::{
    ClusterProvider, FaultKind, ProviderEvent, ProviderFault, StreamOptions,
};
use provisioning_testkit::fake_consul::{CheckStatus, FakeFailure, FakeInstance};
use tokio::time::Instant;

use crate::{SERVICE, next, setup, until};

const HEARTBEAT: Duration = Duration::from_millis(1500);
const SOON: Duration = Duration::from_secs(8);

fn options() -> StreamOptions {
    StreamOptions::new(HEARTBEAT)
}

fn is_fault(event: &ProviderEvent) -> Option<&ProviderFault> {
    match event {
        ProviderEvent::Fault(f) => Some(f),
        _ => None,
    }
}

/// Opens a stream and consumes its first snapshot.
async fn opened(
    provider: &provisioning_backend_consul::ConsulProvider,
) -> provisioning_provider_api::ProviderStream {
    let mut stream = provider.stream(options());
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 3),
        other => panic!("first item: {other:?}"),
    }
    stream
}

/// Waits for the first fault and returns it; only liveness may precede it.
async fn first_fault(stream: &mut provisioning_provider_api::ProviderStream) -> ProviderFault {
    loop {
        match next(stream, SOON).await {
            ProviderEvent::Fault(f) => return f,
            e if e.is_liveness() => {}
            other => panic!("expected a fault, got {other:?}"),
        }
    }
}

/// After healing, the same stream proves liveness again.
async fn recovers(stream: &mut provisioning_provider_api::ProviderStream) {
    until(stream, Duration::from_secs(10), |e| {
        assert!(
            !matches!(e, ProviderEvent::Terminated(_)),
            "terminated instead of recovering"
        );
        e.is_liveness()
    })
    .await;
}

async fn failure_switch(failure: FakeFailure, kind: FaultKind, permanent: bool, detail: &str) {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    consul.set_failure(failure);
    let fault = first_fault(&mut stream).await;
    assert_eq!(fault.kind, kind, "{fault}");
    assert_eq!(fault.permanent, permanent, "{fault}");
    assert!(fault.detail.contains(detail), "{fault}");
    consul.set_failure(FakeFailure::None);
    recovers(&mut stream).await;
    // And changes flow again.
    consul.upsert(FakeInstance::new(SERVICE, "n4", "127.0.0.4", 4004));
    match until(&mut stream, SOON, |e| {
        matches!(e, ProviderEvent::Snapshot(_))
    })
    .await
    {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 4),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn server_error_500_is_retryable_and_recovers() {
    failure_switch(
        FakeFailure::ServerError,
        FaultKind::BackendUnavailable,
        false,
        "HTTP 500: No cluster leader",
    )
    .await;
}

#[tokio::test]
async fn too_many_requests_429_is_retryable_and_recovers() {
    failure_switch(
        FakeFailure::TooManyRequests,
        FaultKind::BackendUnavailable,
        false,
        "HTTP 429",
    )
    .await;
}

#[tokio::test]
async fn forbidden_403_is_permanent_with_a_clear_message_and_recovers() {
    failure_switch(
        FakeFailure::Forbidden,
        FaultKind::PermissionDenied,
        true,
        "HTTP 403: Permission denied (the ACL token is missing, unknown or may not read the service)",
    )
    .await;
}

#[tokio::test]
async fn truncated_json_is_malformed_and_recovers() {
    failure_switch(
        FakeFailure::TruncatedJson,
        FaultKind::MalformedResponse,
        false,
        "malformed answer: body:",
    )
    .await;
}

#[tokio::test]
async fn hang_is_a_timeout_after_the_quiet_period_and_recovers() {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    consul.set_failure(FakeFailure::Hang);
    let start = Instant::now();
    let fault = first_fault(&mut stream).await;
    let took = start.elapsed();
    println!("hang reported as a timeout after {took:?}");
    assert_eq!(
        (fault.kind, fault.permanent),
        (FaultKind::Timeout, false),
        "{fault}"
    );
    // wait 1 s: timeout = 1 s × 17/16 + 1 s slack, after at most one
    // blocking round that had already started.
    assert!(took >= Duration::from_millis(2000), "{took:?}");
    assert!(took <= Duration::from_millis(4500), "{took:?}");
    consul.set_failure(FakeFailure::None);
    recovers(&mut stream).await;
}

#[tokio::test]
async fn refused_connections_reach_three_faults_fast_then_recover() {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    consul
        .refuse_connections(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let mut faults = Vec::new();
    while faults.len() < 3 {
        let event = next(&mut stream, SOON).await;
        if let Some(f) = is_fault(&event) {
            faults.push(f.clone());
        }
    }
    // Rule 2: the first fault, a retry at once, one after 100 ms.
    let took = start.elapsed();
    println!("3 faults after refusal in {took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    for f in &faults {
        assert_eq!(
            (f.kind, f.permanent),
            (FaultKind::BackendUnavailable, false),
            "{f}"
        );
    }
    assert!(
        faults
            .iter()
            .any(|f| f.detail.contains("onnection refused")),
        "{faults:?}"
    );
    consul
        .refuse_connections(false)
        .unwrap_or_else(|e| panic!("{e}"));
    recovers(&mut stream).await;
}

#[tokio::test]
async fn index_rollback_is_a_resync_then_normal_blocking() {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    let before = consul.index(SERVICE);
    consul.rollback_index(SERVICE, 2);
    // The held query returns after its wait with index 2: a resync notice,
    // not an error, then the unchanged view as a heartbeat.
    let fault = until(&mut stream, SOON, |e| is_fault(e).is_some()).await;
    let fault = is_fault(&fault).cloned().unwrap_or_else(|| unreachable!());
    assert!(fault.is_resync(), "{fault}");
    assert!(
        fault.detail.contains(&format!("from {before} to 2")),
        "{fault}"
    );
    assert!(matches!(
        next(&mut stream, SOON).await,
        ProviderEvent::Heartbeat(_)
    ));
    consul.clear_requests();
    consul.upsert(FakeInstance::new(SERVICE, "n4", "127.0.0.4", 4004));
    match until(&mut stream, SOON, |e| {
        !matches!(e, ProviderEvent::Heartbeat(_))
    })
    .await
    {
        ProviderEvent::Snapshot(s) => {
            assert_eq!(s.len(), 4);
            assert_eq!(s.revision(), Some("3"));
        }
        other => panic!("{other:?}"),
    }
    // It blocks on the new, lower index.
    let asked: Vec<_> = consul.requests().iter().filter_map(|r| r.index()).collect();
    assert!(asked.contains(&2), "{asked:?}");
}

#[tokio::test]
async fn index_zero_is_used_as_one_and_the_loop_is_rate_limited() {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    consul.clear_requests();
    consul.set_index_zero(true);
    let start = Instant::now();
    let mut resyncs = 0;
    let mut heartbeats = 0;
    while start.elapsed() < Duration::from_secs(2) {
        match next(&mut stream, SOON).await {
            ProviderEvent::Heartbeat(_) => heartbeats += 1,
            ProviderEvent::Fault(f) if f.is_resync() => resyncs += 1,
            other => panic!("{other:?}"),
        }
    }
    consul.set_index_zero(false);
    let requests: Vec<_> = consul
        .requests()
        .into_iter()
        .filter(|r| r.is_health(SERVICE) && r.received < start + Duration::from_secs(2))
        .collect();
    println!(
        "index 0 for 2 s: {} requests, {heartbeats} heartbeats, {resyncs} resyncs",
        requests.len()
    );
    // Never asks with index 0 (which would not block).
    assert!(requests.iter().all(|r| r.index() != Some(0)));
    assert!(requests.iter().filter(|r| r.index() == Some(1)).count() >= 3);
    // Token bucket: burst 5, then 5 per second.
    assert!(requests.len() <= 17, "{} requests", requests.len());
    assert!(resyncs <= 1, "{resyncs}");
    assert!(heartbeats >= 3);
    consul.upsert(FakeInstance::new(SERVICE, "n4", "127.0.0.4", 4004));
    match until(&mut stream, SOON, |e| {
        matches!(e, ProviderEvent::Snapshot(_))
    })
    .await
    {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 4),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn missing_leader_headers_are_tolerated() {
    let (consul, provider) = setup("").await;
    consul.set_leader_headers(false);
    let mut stream = provider.stream(options());
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.last_contact(), None),
        other => panic!("{other:?}"),
    }
    match next(&mut stream, SOON).await {
        ProviderEvent::Heartbeat(h) => assert_eq!(h.last_contact, None),
        other => panic!("{other:?}"),
    }
    consul.set_leader_headers(true);
    match next(&mut stream, SOON).await {
        ProviderEvent::Heartbeat(h) => assert_eq!(h.last_contact, Some(Duration::ZERO)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stale_last_contact_travels_in_heartbeats_and_snapshots() {
    let (consul, provider) = setup(r#""consistency":"stale""#).await;
    let mut stream = opened(&provider).await;
    consul.set_last_contact(Duration::from_secs(12));
    match until(&mut stream, SOON, |e| {
        matches!(e, ProviderEvent::Heartbeat(h) if h.last_contact.is_some_and(|d| !d.is_zero()))
    })
    .await
    {
        ProviderEvent::Heartbeat(h) => assert_eq!(h.last_contact, Some(Duration::from_secs(12))),
        _ => unreachable!(),
    }
    consul.upsert(FakeInstance::new(SERVICE, "n4", "127.0.0.4", 4004));
    match until(&mut stream, SOON, |e| {
        matches!(e, ProviderEvent::Snapshot(_))
    })
    .await
    {
        ProviderEvent::Snapshot(s) => {
            assert_eq!(s.last_contact(), Some(Duration::from_secs(12)));
            assert_eq!(provider.initial_snapshot().map(|s| s.len()), Some(4));
        }
        _ => unreachable!(),
    }
    let stale = consul
        .requests()
        .iter()
        .filter(|r| r.is_health(SERVICE))
        .all(|r| r.param("stale") == Some(""));
    assert!(stale, "every query asks ?stale");
}

#[tokio::test]
async fn unchanged_content_under_a_new_index_is_a_heartbeat() {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    let start = Instant::now();
    consul.touch(SERVICE);
    // Returned at once (new index), not after the 1 s wait.
    assert!(matches!(
        next(&mut stream, SOON).await,
        ProviderEvent::Heartbeat(_)
    ));
    assert!(start.elapsed() < Duration::from_millis(900));
}

#[tokio::test]
async fn passing_filter_follows_check_status() {
    let (consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    consul.set_check_status(SERVICE, "n2", CheckStatus::Critical);
    match until(&mut stream, SOON, |e| {
        matches!(e, ProviderEvent::Snapshot(_))
    })
    .await
    {
        ProviderEvent::Snapshot(s) => assert!(s.member("n2").is_none() && s.len() == 2),
        _ => unreachable!(),
    }
    consul.set_check_status(SERVICE, "n2", CheckStatus::Passing);
    match until(&mut stream, SOON, |e| {
        matches!(e, ProviderEvent::Snapshot(_))
    })
    .await
    {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 3),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn close_ends_open_streams_once_and_new_streams_work() {
    let (_consul, provider) = setup("").await;
    let mut stream = opened(&provider).await;
    provider.close();
    assert_eq!(
        next(&mut stream, SOON).await,
        ProviderEvent::Terminated(provisioning_provider_api::ProviderTermination::Ended)
    );
    assert!(futures::StreamExt::next(&mut stream).await.is_none());
    let _again = opened(&provider).await;
}

#[tokio::test]
async fn a_refusing_endpoint_fails_over_to_the_next_one() {
    let (up, _) = setup("").await;
    let down = provisioning_testkit::fake_consul::FakeConsul::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    down.refuse_connections(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let json = format!(
        r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}","{}"],"watch":{{"service":"{SERVICE}","wait":"1s"}}}}"#,
        down.url(),
        up.url()
    );
    let provider = crate::provider(
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}")),
        provisioning_registry::SecretResolver::new(std::env::temp_dir()),
    );
    let mut stream = provider.stream(options());
    let first = next(&mut stream, SOON).await;
    let fault = is_fault(&first).unwrap_or_else(|| panic!("{first:?}"));
    assert_eq!(fault.kind, FaultKind::BackendUnavailable, "{fault}");
    // The retry (at once) goes to the second endpoint.
    let start = Instant::now();
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 3),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_millis(900));
}
