//! The in-memory provider against the shared conformance suite, and its
//! scripted failure modes.

use std::time::Duration;

use futures::StreamExt;
use provisioning_backend_memory::{InMemoryProvider, TopologyStreamProvider};
use provisioning_provider_api::*;
use provisioning_testkit::*;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn conformance_in_memory() {
    let provider = InMemoryProvider::new(ProviderId::new("mem").unwrap(), 0);
    let driver = InMemoryDriver::new(provider.handle());
    let report = run_conformance(
        &provider,
        &driver,
        &SuiteConfig::new(Duration::from_secs(5)),
    )
    .await;
    let executed = report.assert_conformant();
    assert_eq!(executed, MANDATORY_CASES.len() + OPTIONAL_CASES.len());
}

fn descriptor(json: &str) -> ProviderDescriptor {
    serde_json::from_str(json).unwrap()
}

#[test]
fn descriptor_members_are_parsed_and_checked() {
    let ok = InMemoryProvider::from_descriptor(descriptor(
        r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"h","port":1,"blocked":true}]}}"#,
    ))
    .unwrap();
    let s = ok.handle().snapshot();
    assert!(s.is_blocked("n1"));

    let unknown = InMemoryProvider::from_descriptor(descriptor(
        r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"memebrs":[]}}"#,
    ))
    .unwrap_err();
    assert!(unknown.to_string().contains("watch.memebrs"), "{unknown}");
    assert_eq!(unknown.code(), "invalid_config");

    let bad_port = InMemoryProvider::from_descriptor(descriptor(
        r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"h","port":70000}]}}"#,
    ))
    .unwrap_err();
    assert!(bad_port.to_string().contains("watch.members"), "{bad_port}");

    let dup = InMemoryProvider::from_descriptor(descriptor(
        r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"h","port":1},{"id":"n1","host":"h","port":2}]}}"#,
    ))
    .unwrap_err();
    assert!(
        dup.to_string().contains("duplicate member id \"n1\""),
        "{dup}"
    );

    let wrong =
        InMemoryProvider::from_descriptor(descriptor(r#"{"id":"e","kind":"etcd","priority":0}"#));
    assert!(wrong.is_err());
}

#[tokio::test(start_paused = true)]
async fn refused_connection_reaches_max_errors_within_200ms() {
    // Rule 2: the first max_errors − 1 retries come at once and after 100 ms.
    let provider = InMemoryProvider::new(ProviderId::new("mem").unwrap(), 0);
    let handle = provider.handle();
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(5)));
    assert!(matches!(
        stream.next().await,
        Some(ProviderEvent::Snapshot(_))
    ));
    let start = Instant::now();
    handle.fail(ProviderFault::retryable(
        FaultKind::BackendUnavailable,
        "refused",
    ));
    let mut faults = 0;
    while faults < 3 {
        match stream.next().await {
            Some(ProviderEvent::Fault(f)) => {
                assert!(!f.permanent);
                faults += 1;
            }
            other => panic!("expected faults, got {other:?}"),
        }
    }
    let took = start.elapsed();
    assert!(took <= Duration::from_millis(200), "3 faults took {took:?}");
    // Then the policy backoff spaces attempts (2 s).
    let before = Instant::now();
    assert!(matches!(stream.next().await, Some(ProviderEvent::Fault(_))));
    assert_eq!(before.elapsed(), Duration::from_secs(2));
    // Healing yields liveness at once.
    handle.heal();
    assert!(stream.next().await.is_some_and(|e| e.is_liveness()));
}

#[tokio::test(start_paused = true)]
async fn hang_is_silence_and_heal_resumes() {
    let provider = InMemoryProvider::new(ProviderId::new("mem").unwrap(), 0);
    let handle = provider.handle();
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    assert!(matches!(
        stream.next().await,
        Some(ProviderEvent::Snapshot(_))
    ));
    handle.hang();
    handle.add(ClusterNode::new("n1", "h", 1)).unwrap();
    let silent = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
    assert!(
        silent.is_err(),
        "a hung provider must be silent, got {silent:?}"
    );
    handle.heal();
    match stream.next().await {
        Some(ProviderEvent::Snapshot(s)) => assert_eq!(s.len(), 1),
        other => panic!("expected the changed view after heal, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn one_shot_fault_is_followed_by_recovery() {
    let provider = InMemoryProvider::new(ProviderId::new("mem").unwrap(), 0);
    let handle = provider.handle();
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    assert!(matches!(
        stream.next().await,
        Some(ProviderEvent::Snapshot(_))
    ));
    assert_eq!(
        handle.inject_fault(ProviderFault::resync("index went back")),
        1
    );
    assert!(matches!(stream.next().await, Some(ProviderEvent::Fault(f)) if f.is_resync()));
    let at = Instant::now();
    assert_eq!(stream.next().await, Some(ProviderEvent::heartbeat()));
    assert_eq!(at.elapsed(), Duration::ZERO, "recovery must be immediate");
}

#[tokio::test(start_paused = true)]
async fn topology_stream_adapter_forwards_views() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<ClusterNode>>(4);
    let source = tokio_stream::wrappers::ReceiverStream::new(rx);
    let provider = TopologyStreamProvider::spawn(
        ProviderDescriptor::new(
            ProviderId::new("legacy").unwrap(),
            ProviderKind::InMemory,
            0,
        ),
        source,
    );
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    assert!(matches!(stream.next().await, Some(ProviderEvent::Snapshot(s)) if s.is_empty()));
    tx.send(vec![
        ClusterNode::new("b", "h", 2),
        ClusterNode::new("a", "h", 1),
    ])
    .await
    .unwrap();
    match stream.next().await {
        Some(ProviderEvent::Snapshot(s)) => assert_eq!(s.members()[0].id.as_str(), "a"),
        other => panic!("{other:?}"),
    }
    tx.send(vec![
        ClusterNode::new("a", "h", 1),
        ClusterNode::new("a", "h", 2),
    ])
    .await
    .unwrap();
    assert!(
        matches!(stream.next().await, Some(ProviderEvent::Fault(f)) if f.kind == FaultKind::MalformedResponse)
    );
    drop(tx);
    loop {
        match stream.next().await {
            Some(ProviderEvent::Terminated(ProviderTermination::Ended)) => break,
            Some(e) if e.is_liveness() => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(stream.next().await, None);
    assert!(provider.initial_snapshot().is_some_and(|s| s.len() == 2));
}

/// A provider that drops heartbeats and re-sends unchanged snapshots: the
/// suite must catch it, proving the suite can fail.
struct Broken(InMemoryProvider);

impl ClusterProvider for Broken {
    fn descriptor(&self) -> &ProviderDescriptor {
        self.0.descriptor()
    }
    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        None
    }
    fn stream(&self, options: StreamOptions) -> ProviderStream {
        let handle = self.0.handle();
        Box::pin(self.0.stream(options).map(move |event| match event {
            ProviderEvent::Heartbeat(_) => ProviderEvent::Snapshot(handle.snapshot()),
            other => other,
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn conformance_catches_a_broken_provider() {
    let inner = InMemoryProvider::new(ProviderId::new("broken").unwrap(), 0);
    let driver = InMemoryDriver::new(inner.handle());
    let provider = Broken(inner);
    let report = run_conformance(
        &provider,
        &driver,
        &SuiteConfig::new(Duration::from_secs(5)),
    )
    .await;
    println!("{report}");
    let failed: Vec<_> = report
        .failures()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(
        failed.contains(&"unchanged_view_yields_heartbeat"),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"initial_snapshot_is_last_seen"),
        "{failed:?}"
    );
}
