//! The scenarios of the facade issue, one test each.

use std::time::Duration;

use cluster_provisioning::ClusterProvisioningService;
use provisioning_e2e::Recorder;
use provisioning_provider_api::{
    FaultKind, ProviderDescriptor, ProviderFault, ProviderId, SwitchReason, TopologyEventKind,
};
use provisioning_watch_hub::wire::ProvisioningEvent;

use super::harness::{Harness, changed, node};

fn refused() -> ProviderFault {
    ProviderFault::retryable(FaultKind::BackendUnavailable, "connection refused")
}

fn is_change_to(to: &ProviderId, reason: SwitchReason) -> impl Fn(&ProvisioningEvent) -> bool + '_ {
    move |e| changed(e).is_some_and(|c| &c.to_provider_id == to && c.reason == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_first_snapshot_failover_and_fail_back() {
    let mut h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    let took = h.all_bridges_hold(&h.primary.snapshot(), limit).await;
    println!("first snapshot at every bridge after {took:?}");
    assert!(took.is_some(), "first snapshot did not reach every bridge");
    assert!(h.placement.on_provider(&h.primary_id));

    // Refused connections: unreachable within ~100 ms, switch at once.
    h.primary.fail(refused());
    let standby_id = h.standby_id.clone();
    let (event, took) = h
        .next_event(
            Harness::margin(Duration::from_secs(1)),
            is_change_to(&standby_id, SwitchReason::HealthDegraded),
        )
        .await
        .expect("provider_changed to the standby");
    println!("refused primary -> provider_changed(health_degraded) after {took:?}");
    let change = changed(&event).unwrap();
    assert_eq!(change.from_provider_id.as_ref(), Some(&h.primary_id));
    assert_eq!(change.epoch, 2);
    assert_eq!(change.snapshot_hash, h.standby.snapshot().hash());
    let took = h.all_bridges_hold(&h.standby.snapshot(), limit).await;
    println!("standby snapshot at every bridge {took:?} later");
    assert!(
        took.is_some(),
        "standby snapshot did not reach every bridge"
    );

    // Heal: fail-back only after a continuous healthy cooldown.
    h.primary.heal();
    let primary_id = h.primary_id.clone();
    let bound = h.policy.cooldown + h.policy.backoff_cap;
    let (_, took) = h
        .next_event(
            Harness::margin(bound),
            is_change_to(&primary_id, SwitchReason::PriorityRestored),
        )
        .await
        .expect("fail-back with priority_restored");
    println!(
        "heal -> fail-back after {took:?} (cooldown {:?})",
        h.policy.cooldown
    );
    assert!(
        took >= h.policy.cooldown - Duration::from_millis(50),
        "fail-back before a cooldown: {took:?}"
    );
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    let reasons: Vec<_> = h
        .placement
        .state()
        .changes
        .iter()
        .map(|c| c.reason)
        .collect();
    assert_eq!(
        reasons,
        [SwitchReason::HealthDegraded, SwitchReason::PriorityRestored]
    );
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_is_detected_by_the_no_response_timeout() {
    let mut h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    h.primary.hang();
    let standby_id = h.standby_id.clone();
    let timeout = h.policy.timeout;
    let (_, took) = h
        .next_event(
            Harness::margin(timeout),
            is_change_to(&standby_id, SwitchReason::Timeout),
        )
        .await
        .expect("provider_changed(timeout)");
    println!("hang -> provider_changed(timeout) after {took:?} (timeout {timeout:?})");
    // The last heartbeat came at most one interval (timeout / 3) before the hang.
    assert!(
        took >= timeout - timeout / 3 - Duration::from_millis(50),
        "switched before the timeout: {took:?}"
    );
    assert!(
        h.all_bridges_hold(&h.standby.snapshot(), limit)
            .await
            .is_some()
    );
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_down_then_recovered() {
    let mut h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    // The standby first, so the primary's failure finds nothing to switch to.
    h.standby.fail(refused());
    let standby_id = h.standby_id.clone();
    h.next_event(limit, |e| {
        matches!(e, ProvisioningEvent::ProviderHealth(line) if line.provider_id == standby_id && line.health == provisioning_provider_api::ProviderHealth::Unreachable)
    })
    .await
    .expect("standby unreachable");
    h.primary.fail(refused());
    let (_, took) = h
        .next_event(limit, |e| {
            matches!(e, ProvisioningEvent::ProvisioningUnavailable(_))
        })
        .await
        .expect("provisioning_unavailable");
    println!("both refused -> provisioning_unavailable after {took:?}");
    assert!(h.service.is_unavailable());
    // The last snapshot stays.
    assert_eq!(
        h.service.topology().map(|t| t.hash()),
        Some(h.primary.snapshot().hash())
    );

    h.standby.heal();
    let standby_id = h.standby_id.clone();
    let (event, took) = h
        .next_event(
            Harness::margin(h.policy.backoff_cap),
            is_change_to(&standby_id, SwitchReason::Recovered),
        )
        .await
        .expect("provider_changed(recovered)");
    println!("standby healed -> provider_changed(recovered) after {took:?}");
    assert_eq!(
        changed(&event).unwrap().from_provider_id.as_ref(),
        Some(&h.primary_id)
    );
    assert!(
        h.all_bridges_hold(&h.standby.snapshot(), limit)
            .await
            .is_some()
    );
    assert!(!h.service.is_unavailable());
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_and_unpin() {
    let mut h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    h.service.pin(&h.standby_id).await.unwrap();
    let standby_id = h.standby_id.clone();
    let (_, took) = h
        .next_event(
            limit,
            is_change_to(&standby_id, SwitchReason::ManualOverride),
        )
        .await
        .expect("provider_changed(manual_override)");
    println!("pin -> manual_override after {took:?}");
    assert!(
        h.all_bridges_hold(&h.standby.snapshot(), limit)
            .await
            .is_some()
    );
    let views = h.service.providers().await.unwrap();
    let pinned: Vec<_> = views
        .iter()
        .filter(|v| v.pinned)
        .map(|v| v.descriptor.id.as_str())
        .collect();
    assert_eq!(pinned, ["standby"]);

    h.service.unpin().await.unwrap();
    let primary_id = h.primary_id.clone();
    let (_, took) = h
        .next_event(
            Harness::margin(h.policy.cooldown),
            is_change_to(&primary_id, SwitchReason::PriorityRestored),
        )
        .await
        .expect("back to the primary after unpin");
    println!("unpin -> priority_restored after {took:?}");
    let unknown = h
        .service
        .pin(&ProviderId::new("nope").unwrap())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), "not_found");
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_active_provider_switches_with_reason_removed() {
    let mut h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    let removed = h.service.remove_provider("primary").await.unwrap();
    assert_eq!(removed.id, h.primary_id);
    let standby_id = h.standby_id.clone();
    let (_, took) = h
        .next_event(limit, is_change_to(&standby_id, SwitchReason::Removed))
        .await
        .expect("provider_changed(removed)");
    println!("remove active -> provider_changed(removed) after {took:?}");
    assert!(
        h.all_bridges_hold(&h.standby.snapshot(), limit)
            .await
            .is_some()
    );
    let ids: Vec<_> = h
        .service
        .providers()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.descriptor.id)
        .collect();
    assert_eq!(ids, [h.standby_id.clone()]);
    assert_eq!(
        h.service
            .remove_provider("primary")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_replaces_a_valid_set_and_refuses_an_invalid_one() {
    let mut h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );

    // Invalid: a Consul provider whose quiet period (4 s × 17/16) does not fit
    // a third of the tight policy's 1.5 s timeout.
    let invalid = cluster_provisioning::builtin_registry();
    for d in h.service.providers().await.unwrap() {
        invalid.register(d.descriptor).unwrap();
    }
    let consul: ProviderDescriptor = serde_json_descriptor(
        r#"{"id":"consul-a","kind":"consul","priority":40,"endpoints":["http://127.0.0.1:8500"],"watch":{"service":"app","wait":"4s"}}"#,
    );
    invalid.register(consul).unwrap();
    let err = h.service.reload(invalid).await.unwrap_err();
    println!("invalid reload refused: error[{}]: {err}", err.code());
    assert_eq!(err.code(), "invalid_config");
    let ids: Vec<_> = h
        .service
        .providers()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.descriptor.id.to_string())
        .collect();
    assert_eq!(
        ids,
        ["primary", "standby"],
        "an invalid set must change nothing"
    );

    // Valid: the standby stays, the primary goes, a new in-memory provider
    // with a higher priority comes from its descriptor.
    let valid = cluster_provisioning::builtin_registry();
    valid
        .register(
            h.service
                .providers()
                .await
                .unwrap()
                .into_iter()
                .find(|v| v.descriptor.id == h.standby_id)
                .unwrap()
                .descriptor,
        )
        .unwrap();
    valid
        .register(serde_json_descriptor(
            r#"{"id":"third","kind":"in_memory","priority":30,"watch":{"members":[{"id":"p1","host":"127.0.0.1","port":4000},{"id":"s1","host":"127.0.0.1","port":5000},{"id":"t1","host":"10.0.0.9","port":4000}]}}"#,
        ))
        .unwrap();
    h.service.reload(valid).await.unwrap();
    let ids: Vec<_> = h
        .service
        .providers()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.descriptor.id.to_string())
        .collect();
    assert_eq!(ids, ["third", "standby"]);
    let (event, took) = h
        .next_event(Harness::margin(h.policy.cooldown), |e| {
            changed(e).is_some_and(|c| c.to_provider_id.as_str() == "third")
        })
        .await
        .expect("the new set becomes active");
    println!(
        "valid reload -> {:?} to third after {took:?}",
        changed(&event).unwrap().reason
    );
    let third = h.placement.wait_for(limit, |s| {
        s.snapshots
            .last()
            .is_some_and(|l| l.provider_id().as_str() == "third" && l.members().len() == 3)
    });
    assert!(
        third.await.is_some(),
        "the new provider's view did not reach placement"
    );
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

/// A named action at the backend and the one event kind it must cause.
type Step<'a> = (&'a str, Box<dyn Fn() + 'a>, TopologyEventKind);

fn serde_json_descriptor(json: &str) -> ProviderDescriptor {
    provisioning_registry::descriptor_from_json(json).expect("valid descriptor json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_blocked_unblocked_reach_remoting() {
    let h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    let steps: [Step<'_>; 4] = [
        (
            "join p4",
            Box::new(|| h.primary.add(node("p4", 4010)).unwrap()),
            TopologyEventKind::Join,
        ),
        (
            "leave p2",
            Box::new(|| assert!(h.primary.remove("p2"))),
            TopologyEventKind::Leave,
        ),
        (
            "block p1",
            Box::new(|| h.primary.block("p1")),
            TopologyEventKind::Blocked,
        ),
        (
            "unblock p1",
            Box::new(|| h.primary.unblock("p1")),
            TopologyEventKind::Unblocked,
        ),
    ];
    for (what, act, kind) in steps {
        let before = h.remoting.state().topology.len();
        act();
        let expected = h.primary.snapshot();
        let took = h.all_bridges_hold(&expected, limit).await;
        println!("{what}: every bridge holds the new view after {took:?}");
        assert!(took.is_some(), "{what} not delivered");
        let state = h.remoting.state();
        let kinds: Vec<_> = state.topology[before..]
            .iter()
            .map(|e| e.event.kind())
            .collect();
        assert_eq!(kinds, [kind], "{what}");
    }
    // Every join carried its member; the rebuilt view equals the truth.
    assert!(h.remoting.state().view.matches(&h.primary.snapshot()));
    h.assert_no_violations();
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_no_task_or_thread_running() {
    let h = Harness::start().await;
    let limit = Harness::margin(Duration::from_secs(1));
    assert!(
        h.all_bridges_hold(&h.primary.snapshot(), limit)
            .await
            .is_some()
    );
    assert!(!h.service.is_stopped());
    h.service.shutdown().await.unwrap();
    assert!(
        h.service.is_stopped(),
        "tasks or consumer threads still running after shutdown"
    );
    // Requests after shutdown fail with a clear code instead of hanging.
    let err = h.service.unpin().await.unwrap_err();
    assert_eq!(err.code(), "provisioning_unavailable");
    // A second shutdown is harmless.
    h.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_path_wraps_an_existing_topology_stream() {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let recorder = Recorder::new();
    let service = ClusterProvisioningService::from_topology_stream(tokio_stream_from(rx))
        .with_placement("placement", recorder.clone())
        .start()
        .unwrap();
    tx.send(vec![node("a", 1), node("b", 2)]).await.unwrap();
    let took = recorder
        .wait_for(Duration::from_secs(5), |s| {
            s.snapshots.last().is_some_and(|l| l.members().len() == 2)
        })
        .await;
    println!("migration path: first two-member view after {took:?}");
    assert!(took.is_some());
    assert_eq!(
        recorder.last_snapshot().unwrap().provider_id().as_str(),
        "topology"
    );
    service.shutdown().await.unwrap();
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
