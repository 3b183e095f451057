//! Self-registration through the agent API with a TTL check.

use std::time::Duration;

use provisioning_provider_api::{ClusterProvider, ProviderEvent, StreamOptions};
use provisioning_testkit::fake_consul::CheckStatus;

use crate::{SERVICE, next, setup, until};

const SOON: Duration = Duration::from_secs(8);

#[tokio::test]
async fn registers_passes_the_ttl_check_and_deregisters_on_shutdown() {
    let (consul, provider) = setup(&format!(
        r#""register":{{"id":"self-1","name":"{SERVICE}","address":"127.0.0.9","port":4999,"ttl":"1s","tags":["self"]}}"#
    ))
    .await;
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    // Our own instance appears once its TTL check passes.
    until(
        &mut stream,
        SOON,
        |e| matches!(e, ProviderEvent::Snapshot(s) if s.member("self-1").is_some()),
    )
    .await;
    let me = consul
        .instances(SERVICE)
        .into_iter()
        .find(|i| i.id == "self-1")
        .unwrap_or_else(|| panic!("not registered"));
    assert_eq!((me.address.as_str(), me.port), ("127.0.0.9", 4999));
    assert_eq!(me.checks.get("service:self-1"), Some(&CheckStatus::Passing));

    // Three TTLs later it is still passing: the check is passed in time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = consul
        .instances(SERVICE)
        .into_iter()
        .find(|i| i.id == "self-1")
        .and_then(|i| i.checks.get("service:self-1").copied());
    assert_eq!(status, Some(CheckStatus::Passing));
    let passes = consul
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/agent/check/pass/service:self-1")
        .count();
    assert!(passes >= 6, "{passes} passes in ~3 s with ttl 1 s");

    provider.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(consul.instances(SERVICE).iter().all(|i| i.id != "self-1"));
    // The open stream ended with the provider.
    loop {
        match next(&mut stream, SOON).await {
            ProviderEvent::Terminated(_) => break,
            e => assert!(e.is_liveness(), "{e:?}"),
        }
    }
    assert!(provider.initial_snapshot().is_some());
}

#[tokio::test]
async fn a_forgotten_registration_is_registered_again() {
    let (consul, provider) = setup(&format!(
        r#""register":{{"id":"self-2","name":"{SERVICE}","port":4998,"ttl":"1s"}}"#
    ))
    .await;
    provider.start_registration();
    let registered = || consul.instances(SERVICE).iter().any(|i| i.id == "self-2");
    let deadline = tokio::time::Instant::now() + SOON;
    while !registered() {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The agent restarted and lost it: the next pass fails, then the
    // provider registers again.
    assert!(consul.remove(SERVICE, "self-2"));
    let deadline = tokio::time::Instant::now() + SOON;
    while !registered() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never registered again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    provider.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}
