//! The query parameters reach Consul encoded and take effect.

use std::time::Duration;

use provisioning_provider_api::{ClusterProvider, FaultKind, ProviderEvent, StreamOptions};
use provisioning_testkit::fake_consul::FakeInstance;

use crate::{SERVICE, next, setup};

const SOON: Duration = Duration::from_secs(8);

#[tokio::test]
async fn tag_filter_dc_ns_and_consistency_are_sent_and_applied() {
    let (consul, provider) = setup(
        r#""tag":"blue green","filter":"Service.Meta.zone == \"eu-1\"","dc":"dc1","ns":"team a","consistency":"consistent""#,
    )
    .await;
    consul.upsert(
        FakeInstance::new(SERVICE, "match", "10.0.0.9", 9)
            .with_tag("Blue Green")
            .with_meta("zone", "eu-1"),
    );
    consul.upsert(
        FakeInstance::new(SERVICE, "wrong-zone", "10.0.0.8", 8)
            .with_tag("blue green")
            .with_meta("zone", "us-1"),
    );
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => {
            let ids: Vec<_> = s.members().iter().map(|m| m.id.as_str()).collect();
            // Tags match case-insensitively, as in Consul.
            assert_eq!(ids, ["match"]);
            let m = s.member("match").unwrap_or_else(|| unreachable!());
            assert_eq!(m.labels.get("zone").map(String::as_str), Some("eu-1"));
            assert!(m.labels.contains_key("tag:Blue Green"));
        }
        other => panic!("{other:?}"),
    }
    let log = consul.requests();
    let first = log
        .iter()
        .find(|r| r.is_health(SERVICE))
        .unwrap_or_else(|| panic!("no query"));
    assert_eq!(first.param("tag"), Some("blue green"));
    assert_eq!(
        first.param("filter"),
        Some(r#"Service.Meta.zone == "eu-1""#)
    );
    assert_eq!(first.param("dc"), Some("dc1"));
    assert_eq!(first.param("ns"), Some("team a"));
    assert_eq!(first.param("consistent"), Some(""));
    assert_eq!(first.param("passing"), Some("true"));
    assert_eq!(first.param("index"), None, "the first query does not block");
}

#[tokio::test]
async fn an_unknown_datacenter_is_consuls_500() {
    let (_consul, provider) = setup(r#""dc":"dc9""#).await;
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Fault(f) => {
            assert_eq!(
                (f.kind, f.permanent),
                (FaultKind::BackendUnavailable, false),
                "{f}"
            );
            assert!(f.detail.contains("No path to datacenter"), "{f}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_filter_consul_rejects_is_a_permanent_configuration_fault() {
    let (_consul, provider) = setup(r#""filter":"Service.Nope ==""#).await;
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Fault(f) => {
            assert_eq!(
                (f.kind, f.permanent),
                (FaultKind::InvalidConfig, true),
                "{f}"
            );
            assert!(
                f.detail
                    .starts_with("HTTP 400: Failed to create boolean expression evaluator"),
                "{f}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(provider.initial_snapshot().is_none());
}
