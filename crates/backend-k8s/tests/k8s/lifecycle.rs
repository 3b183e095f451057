//! Member lifecycle through the fake API server (CONTRACTS §1 "Member
//! lifecycle"): a Pod recreated under the same name is a new life (its uid),
//! and a terminating endpoint that still serves is announced `draining`
//! before it leaves. Each test asserts the exact `remote_topology` lines.

use std::time::Duration;

use provisioning_provider_api::{
    ClusterNode, Incarnation, MemberState, ProviderEvent, ProviderSnapshot, format_hash,
};
use provisioning_testkit::change_lines;
use provisioning_testkit::fake_kube::{
    EndpointSpec, KubeDriverMode, ObjectKind, endpoint_slice, pod,
};
use serde_json::json;

use crate::support::{NS, driver, fake, open, provider, until};

const WAIT: Duration = Duration::from_secs(10);

fn snapshot_of(events: &[ProviderEvent]) -> ProviderSnapshot {
    match events.last() {
        Some(ProviderEvent::Snapshot(s)) => s.clone(),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn incarnation(event: &ProviderEvent, id: &str) -> Option<String> {
    match event {
        ProviderEvent::Snapshot(s) => s
            .member(id)
            .and_then(|m| m.incarnation.clone())
            .map(String::from),
        _ => None,
    }
}

fn hash_of(members: Vec<ClusterNode>) -> String {
    let snapshot = ProviderSnapshot::new(members, vec![]).expect("snapshot");
    format_hash(snapshot.hash()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_recreated_under_its_name_is_a_leave_then_a_join() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    let p1 = pod("p1", "10.0.0.1")
        .label("app", "actors")
        .port("remoting", 4000);
    fake.upsert_pod(NS, &p1);
    let uid = |fake: &provisioning_testkit::fake_kube::FakeKube| {
        fake.get(ObjectKind::Pod, NS, "p1")
            .and_then(|o| {
                o.pointer("/metadata/uid")
                    .and_then(|u| u.as_str().map(str::to_owned))
            })
            .expect("the fake gives every object a uid")
    };
    let first_uid = uid(&fake);
    let mut stream = open(&provider);
    let before = snapshot_of(
        &until(&mut stream, WAIT, "p1 with its uid", |e| {
            incarnation(e, "p1").as_deref() == Some(first_uid.as_str())
        })
        .await,
    );

    // Deleted and created again at once, same name, same IP, same port: only
    // the uid tells the two pods apart.
    fake.batch(|b| {
        b.delete(ObjectKind::Pod, NS, "p1");
        b.upsert(ObjectKind::Pod, NS, p1.build());
    });
    let second_uid = uid(&fake);
    assert_ne!(first_uid, second_uid);
    let after = snapshot_of(
        &until(&mut stream, WAIT, "p1 with its new uid", |e| {
            incarnation(e, "p1").as_deref() == Some(second_uid.as_str())
        })
        .await,
    );
    let hash = hash_of(vec![
        ClusterNode::new("p1", "10.0.0.1", 4000)
            .with_incarnation(Incarnation::new(second_uid.clone()).expect("uid")),
    ]);
    assert_eq!(
        change_lines(&before, &after),
        [
            format!(r#"{{"event":"leave","node_id":"p1","snapshot_hash":"{hash}"}}"#),
            format!(
                r#"{{"event":"join","node_id":"p1","member":{{"id":"p1","host":"10.0.0.1","port":4000,"labels":{{}},"incarnation":"{second_uid}"}},"snapshot_hash":"{hash}"}}"#
            ),
        ]
    );
    println!("k8s pod restart: uid {first_uid} -> {second_uid}, lines = leave, join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_serving_endpoint_drains_then_leaves() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::EndpointSlices), json!({}));
    let slice = || endpoint_slice("actors-a", "actors").port("remoting", 4000);
    let p1 = || EndpointSpec::ready("p1", "10.0.0.1").with_target_uid("uid-p1");
    let p2 = || EndpointSpec::ready("p2", "10.0.0.2").with_target_uid("uid-p2");
    fake.upsert_slice(NS, &slice().endpoint(p1()).endpoint(p2()));
    let mut stream = open(&provider);
    let serving = snapshot_of(
        &until(
            &mut stream,
            WAIT,
            "p1 and p2",
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.len() == 2),
        )
        .await,
    );

    fake.upsert_slice(
        NS,
        &slice().endpoint(p1().terminating_serving()).endpoint(p2()),
    );
    let draining = snapshot_of(
        &until(&mut stream, WAIT, "p1 draining", |e| {
            matches!(e, ProviderEvent::Snapshot(s)
                if s.member("p1").is_some_and(|m| m.state == MemberState::Draining))
        })
        .await,
    );
    let p1_node = ClusterNode::new("p1", "10.0.0.1", 4000)
        .with_incarnation(Incarnation::new("uid-p1").expect("uid"));
    let p2_node = ClusterNode::new("p2", "10.0.0.2", 4000)
        .with_incarnation(Incarnation::new("uid-p2").expect("uid"));
    let hash = hash_of(vec![
        p1_node.clone().with_state(MemberState::Draining),
        p2_node.clone(),
    ]);
    assert_eq!(
        change_lines(&serving, &draining),
        [format!(
            r#"{{"event":"draining","node_id":"p1","member":{{"id":"p1","host":"10.0.0.1","port":4000,"labels":{{}},"incarnation":"uid-p1","state":"draining"}},"snapshot_hash":"{hash}"}}"#
        )]
    );

    // The pod is gone: its endpoint is removed from the slice.
    fake.upsert_slice(NS, &slice().endpoint(p2()));
    let gone = snapshot_of(
        &until(
            &mut stream,
            WAIT,
            "p1 gone",
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.member("p1").is_none()),
        )
        .await,
    );
    let hash = hash_of(vec![p2_node]);
    assert_eq!(
        change_lines(&draining, &gone),
        [format!(
            r#"{{"event":"leave","node_id":"p1","snapshot_hash":"{hash}"}}"#
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_that_is_still_ready_drains_then_leaves() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    let p1 = || {
        pod("p1", "10.0.0.1")
            .label("app", "actors")
            .port("remoting", 4000)
    };
    fake.upsert_pod(NS, &p1());
    let mut stream = open(&provider);
    let serving = snapshot_of(
        &until(
            &mut stream,
            WAIT,
            "p1",
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.len() == 1),
        )
        .await,
    );
    fake.upsert_pod(NS, &p1().deleting());
    let draining = snapshot_of(
        &until(&mut stream, WAIT, "p1 draining", |e| {
            matches!(e, ProviderEvent::Snapshot(s)
                if s.member("p1").is_some_and(|m| m.state == MemberState::Draining))
        })
        .await,
    );
    let kinds: Vec<_> = provisioning_provider_api::diff(&serving, &draining)
        .iter()
        .map(|e| e.kind().as_str())
        .collect();
    assert_eq!(kinds, ["draining"]);
    fake.delete(ObjectKind::Pod, NS, "p1");
    let gone = snapshot_of(
        &until(
            &mut stream,
            WAIT,
            "p1 gone",
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.is_empty()),
        )
        .await,
    );
    let kinds: Vec<_> = provisioning_provider_api::diff(&draining, &gone)
        .iter()
        .map(|e| e.kind().as_str())
        .collect();
    assert_eq!(kinds, ["leave"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_serving_in_one_slice_and_draining_in_another_is_serving() {
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::EndpointSlices), json!({}));
    let slice = |name: &str| endpoint_slice(name, "actors").port("remoting", 4000);
    // The old slice (first by name) still shows p1 terminating; the new one
    // shows it ready.
    fake.upsert_slice(
        NS,
        &slice("actors-a").endpoint(EndpointSpec::ready("p1", "10.0.0.1").terminating_serving()),
    );
    fake.upsert_slice(
        NS,
        &slice("actors-b").endpoint(EndpointSpec::ready("p1", "10.0.0.1")),
    );
    let mut stream = open(&provider);
    let seen = snapshot_of(
        &until(
            &mut stream,
            WAIT,
            "p1 from both slices",
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.len() == 1),
        )
        .await,
    );
    assert_eq!(
        seen.member("p1").map(|m| m.state),
        Some(MemberState::Serving)
    );
}
