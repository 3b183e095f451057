//! Member lifecycle against real etcd (CONTRACTS §1 "Member lifecycle"): a
//! key deleted and put again is a new life of the member, so the change is
//! a `leave` then a `join` even when the value is the same; a registration
//! with `drain` is announced draining before it leaves.

use std::time::Duration;

use provisioning_provider_api::*;
use provisioning_testkit::change_lines;
use provisioning_testkit::etcd_cluster::EtcdCluster;

use crate::support::*;

fn incarnation_of(event: &ProviderEvent, id: &str) -> Option<String> {
    match event {
        ProviderEvent::Snapshot(s) => s
            .member(id)
            .and_then(|m| m.incarnation.clone())
            .map(String::from),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_deleted_and_put_again_is_a_leave_then_a_join() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mut c = client(&endpoints).await;
    let key = format!("{PREFIX}n1");
    let value = member_json("n1", "10.0.0.1", 4000);
    let first = c
        .put(key.as_str(), value.as_str(), None)
        .await
        .expect("put");
    let first_rev = first.header().expect("header").revision().to_string();

    let provider = provider(&endpoints);
    let recorder = Recorder::start(provider.stream(StreamOptions::new(Duration::from_secs(1))));
    let (at, seen) = recorder
        .wait_for(0, Duration::from_secs(5), |e| {
            incarnation_of(e, "n1").as_deref() == Some(first_rev.as_str())
        })
        .await
        .expect("n1 with its create_revision as incarnation");
    let ProviderEvent::Snapshot(before) = seen.event else {
        unreachable!()
    };

    // The same value again, right after the delete: only the key's creation
    // tells the two lives apart.
    c.delete(key.as_str(), None).await.expect("delete");
    let second = c
        .put(key.as_str(), value.as_str(), None)
        .await
        .expect("put");
    let second_rev = second.header().expect("header").revision().to_string();
    assert_ne!(first_rev, second_rev);
    let (_, seen) = recorder
        .wait_for(at + 1, Duration::from_secs(5), |e| {
            incarnation_of(e, "n1").as_deref() == Some(second_rev.as_str())
        })
        .await
        .expect("n1 with its new create_revision");
    let ProviderEvent::Snapshot(after) = seen.event else {
        unreachable!()
    };

    let expected = ProviderSnapshot::new(
        vec![
            ClusterNode::new("n1", "10.0.0.1", 4000)
                .with_incarnation(Incarnation::new(second_rev.clone()).expect("incarnation")),
        ],
        vec![],
    )
    .expect("snapshot");
    let hash = format_hash(expected.hash());
    assert_eq!(
        change_lines(&before, &after),
        [
            format!(r#"{{"event":"leave","node_id":"n1","snapshot_hash":"{hash}"}}"#),
            format!(
                r#"{{"event":"join","node_id":"n1","member":{{"id":"n1","host":"10.0.0.1","port":4000,"labels":{{}},"incarnation":"{second_rev}"}},"snapshot_hash":"{hash}"}}"#
            ),
        ]
    );
    println!("etcd restart: incarnation {first_rev} -> {second_rev}, lines = leave, join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_value_names_incarnation_and_state_when_it_has_them() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mut c = client(&endpoints).await;
    let key = format!("{PREFIX}n1");
    let serving = serde_json::json!({"id": "n1", "host": "h", "port": 1, "incarnation": "boot-7"});
    c.put(key.as_str(), serving.to_string(), None)
        .await
        .expect("put");
    let provider = provider(&endpoints);
    let recorder = Recorder::start(provider.stream(StreamOptions::new(Duration::from_secs(1))));
    let (at, seen) = recorder
        .wait_for(0, Duration::from_secs(5), |e| {
            incarnation_of(e, "n1").as_deref() == Some("boot-7")
        })
        .await
        .expect("the value's own incarnation");
    let ProviderEvent::Snapshot(before) = seen.event else {
        unreachable!()
    };
    let draining = serde_json::json!({"id": "n1", "host": "h", "port": 1,
                                      "incarnation": "boot-7", "state": "draining"});
    c.put(key.as_str(), draining.to_string(), None)
        .await
        .expect("put");
    let (_, seen) = recorder
        .wait_for(at + 1, Duration::from_secs(5), |e| {
            matches!(e, ProviderEvent::Snapshot(s)
                if s.member("n1").is_some_and(|m| m.state == MemberState::Draining))
        })
        .await
        .expect("n1 draining");
    let ProviderEvent::Snapshot(after) = seen.event else {
        unreachable!()
    };
    let kinds: Vec<_> = diff(&before, &after).iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [TopologyEventKind::Draining]);
}

/// `register.drain`: on shutdown the value is rewritten draining and the
/// lease kept for the drain period; a second service sees `draining`, then,
/// at least `drain - 100 ms` later, `leave`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_registration_is_seen_draining_for_the_drain_before_it_leaves() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let drain = Duration::from_millis(1500);
    let watch = serde_json::json!({
        "prefix": PREFIX,
        "register": {"id": "self", "host": "10.9.9.9", "port": 7000, "ttl": "2s",
                     "drain": "1500ms"},
    });
    let leaving = provisioning_backend_etcd::EtcdProvider::from_descriptor(
        descriptor(&endpoints, watch),
        &secrets(),
    )
    .expect("descriptor");
    leaving.start_registration();
    // A second service watching the same prefix.
    let peer = provider(&endpoints);
    let recorder = Recorder::start(peer.stream(StreamOptions::new(Duration::from_secs(1))));
    let (at, seen) = recorder
        .wait_for(0, Duration::from_secs(5), |e| {
            matches!(e, ProviderEvent::Snapshot(s)
                if s.member("self").is_some_and(|m| m.state == MemberState::Serving))
        })
        .await
        .expect("the registered member, serving");
    let ProviderEvent::Snapshot(serving) = seen.event else {
        unreachable!()
    };

    let shutdown_started = tokio::time::Instant::now();
    leaving.shutdown().await.expect("shutdown");
    let shutdown_took = shutdown_started.elapsed();
    let bound = drain * 3 + Duration::from_secs(2);
    let (at, draining_seen) = recorder
        .wait_for(at + 1, bound, |e| {
            matches!(e, ProviderEvent::Snapshot(s)
                if s.member("self").is_some_and(|m| m.state == MemberState::Draining))
        })
        .await
        .expect("the member announced draining");
    let (_, left_seen) = recorder
        .wait_for(
            at + 1,
            bound,
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.member("self").is_none()),
        )
        .await
        .expect("the member gone");
    let (ProviderEvent::Snapshot(draining), ProviderEvent::Snapshot(left)) =
        (draining_seen.event, left_seen.event)
    else {
        unreachable!()
    };
    let kinds = |a: &ProviderSnapshot, b: &ProviderSnapshot| -> Vec<TopologyEventKind> {
        diff(a, b).iter().map(|e| e.kind()).collect()
    };
    // Same key, same create_revision: a state change, not a restart.
    assert_eq!(kinds(&serving, &draining), [TopologyEventKind::Draining]);
    assert_eq!(kinds(&draining, &left), [TopologyEventKind::Leave]);
    let announced = left_seen.at - draining_seen.at;
    println!(
        "etcd graceful leave: draining seen {announced:?} before leave (drain {drain:?}, \
         shutdown took {shutdown_took:?})"
    );
    assert!(
        announced >= drain - Duration::from_millis(100),
        "draining only {announced:?} before leave (drain {drain:?})"
    );
    assert!(
        announced <= bound,
        "leave {announced:?} after draining (bound {bound:?})"
    );
}
