//! Member lifecycle through the fake Consul (CONTRACTS §1 "Member
//! lifecycle"): a deregister and a register of the same service ID is a new
//! life of the member (a new `Service.CreateIndex`), so it is a `leave` then
//! a `join` even when everything else is the same.

use std::time::Duration;

use provisioning_provider_api::{
    ClusterNode, ClusterProvider, Incarnation, ProviderEvent, ProviderSnapshot, StreamOptions,
    format_hash,
};
use provisioning_registry::SecretResolver;
use provisioning_testkit::change_lines;
use provisioning_testkit::fake_consul::FakeConsul;

use crate::{SERVICE, descriptor, provider, until};

const SOON: Duration = Duration::from_secs(8);

async fn agent(consul: &FakeConsul, path: &str, body: Option<&str>) {
    let request = reqwest::Client::new().put(format!("{}/v1/agent/service/{path}", consul.url()));
    let request = match body {
        Some(body) => request.body(body.to_owned()),
        None => request,
    };
    let response = request.send().await.expect("agent request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

fn create_index(event: &ProviderEvent, id: &str) -> Option<String> {
    match event {
        ProviderEvent::Snapshot(s) => s
            .member(id)
            .and_then(|m| m.incarnation.clone())
            .map(String::from),
        _ => None,
    }
}

fn snapshot(event: ProviderEvent) -> ProviderSnapshot {
    match event {
        ProviderEvent::Snapshot(s) => s,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_deregister_and_register_of_the_same_id_is_a_leave_then_a_join() {
    let consul = FakeConsul::start().await.expect("fake consul");
    let registration =
        format!(r#"{{"Name":"{SERVICE}","ID":"n1","Address":"10.0.0.1","Port":4000}}"#);
    agent(&consul, "register", Some(&registration)).await;
    let first = consul.instances(SERVICE)[0].create_index.to_string();
    let provider = provider(
        descriptor(&consul, "", ""),
        SecretResolver::new(std::env::temp_dir()),
    );
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    let before = snapshot(
        until(&mut stream, SOON, |e| {
            create_index(e, "n1").as_deref() == Some(first.as_str())
        })
        .await,
    );

    agent(&consul, "deregister/n1", None).await;
    agent(&consul, "register", Some(&registration)).await;
    let second = consul.instances(SERVICE)[0].create_index.to_string();
    assert_ne!(first, second, "a new registration gets a new CreateIndex");
    let after = snapshot(
        until(&mut stream, SOON, |e| {
            create_index(e, "n1").as_deref() == Some(second.as_str())
        })
        .await,
    );
    let expected = ProviderSnapshot::new(
        vec![
            ClusterNode::new("n1", "10.0.0.1", 4000)
                .with_incarnation(Incarnation::new(second.clone()).expect("index")),
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
                r#"{{"event":"join","node_id":"n1","member":{{"id":"n1","host":"10.0.0.1","port":4000,"labels":{{}},"incarnation":"{second}"}},"snapshot_hash":"{hash}"}}"#
            ),
        ]
    );
    println!("consul re-registration: CreateIndex {first} -> {second}, lines = leave, join");

    // Registering again over a live instance updates it in place: same life.
    agent(&consul, "register", Some(&registration)).await;
    assert_eq!(
        consul.instances(SERVICE)[0].create_index.to_string(),
        second
    );
}
