//! Numbering and order of the published lines (CONTRACTS §3).

use std::time::Instant;

use provisioning_provider_api::{ProviderHealth, ProviderTermination, SwitchReason, format_hash};
use provisioning_watch_hub::wire::{ProvisioningEvent, RunId};
use provisioning_watch_hub::{HubConfig, HubError, ProviderWatchHub, PublishOutcome};

use super::support::{drain, pid, types, view};

fn hub() -> ProviderWatchHub {
    ProviderWatchHub::new(HubConfig::new().with_run_id(RunId::from_u64(0x5d41_402a_bc4b_2a76)))
        .expect("hub")
}

#[test]
fn first_activation_publishes_snapshot_joins_and_blocked_without_provider_changed() {
    let mut hub = hub();
    let mut events = hub.handle().subscribe_events("test").expect("subscribe");
    let outcome = hub
        .activate(pid("consul-a"), view(&["n2", "n1"], &["x"]), Instant::now())
        .expect("first activation");
    assert_eq!(outcome, PublishOutcome::Published { seq_no: 1 });
    let lines = drain(&mut events);
    assert_eq!(
        types(&lines),
        [
            "snapshot",
            "remote_topology",
            "remote_topology",
            "remote_topology"
        ]
    );
    let json: Vec<String> = lines.iter().map(|l| l.to_json_line()).collect();
    assert!(json[1].contains(r#""seq_no":2,"epoch":1,"event":"join","node_id":"n1""#));
    assert!(json[2].contains(r#""event":"join","node_id":"n2""#));
    assert!(
        json[3].contains(r#""seq_no":4,"epoch":1,"event":"blocked","node_id":"x","provider_id""#)
    );
    let hash = format_hash(hub.latest().expect("latest").hash()).to_string();
    assert!(
        json.iter()
            .skip(1)
            .all(|line| line.contains(&format!(r#""snapshot_hash":"{hash}""#)))
    );
    assert!(matches!(
        hub.activate(pid("consul-a"), view(&[], &[]), Instant::now()),
        Err(HubError::AlreadyActivated)
    ));
}

#[test]
fn switch_emits_provider_changed_then_snapshot_then_diff_from_the_previous_provider() {
    let mut hub = hub();
    let now = Instant::now();
    hub.activate(pid("consul-a"), view(&["n1", "n2"], &["n9"]), now)
        .expect("activate");
    let mut events = hub.handle().subscribe_events("test").expect("subscribe");
    drain(&mut events);
    let next = view(&["n2", "n3"], &[]);
    let next_hash = next.hash();
    let outcome = hub.switch(None, pid("etcd-a"), SwitchReason::Timeout, next, now);
    assert_eq!(outcome, PublishOutcome::Published { seq_no: 6 });
    assert_eq!(hub.epoch(), 2);
    let lines = drain(&mut events);
    assert_eq!(
        types(&lines),
        [
            "provider_changed",
            "snapshot",
            "remote_topology",
            "remote_topology",
            "remote_topology"
        ]
    );
    let ProvisioningEvent::ProviderChanged(change) = &*lines[0] else {
        panic!("provider_changed first");
    };
    assert_eq!(change.seq_no, 5);
    assert_eq!(change.epoch, 2);
    assert_eq!(
        change.from_provider_id,
        Some(pid("consul-a")),
        "defaults to the last active"
    );
    assert_eq!(change.snapshot_hash, next_hash);
    let kinds: Vec<String> = lines[2..]
        .iter()
        .map(|line| match &**line {
            ProvisioningEvent::RemoteTopology(e) => {
                format!("{}:{}", e.event.kind(), e.event.node_id())
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["leave:n1", "join:n3", "unblocked:n9"]);
    assert!(lines.iter().all(|line| line.epoch() == 2));
}

#[test]
fn unchanged_hash_publishes_nothing_and_other_providers_are_not_published() {
    let mut hub = hub();
    let now = Instant::now();
    hub.activate(pid("a"), view(&["n1"], &[]), now)
        .expect("activate");
    assert_eq!(
        hub.publish_active(pid("a"), view(&["n1"], &[]), now),
        PublishOutcome::Unchanged
    );
    assert_eq!(
        hub.publish_active(pid("b"), view(&["n1", "n2"], &[]), now),
        PublishOutcome::NotActive
    );
    assert_eq!(hub.last_seq_no(), 2);
    // Health, revision and provider id are not hashed.
    let degraded = view(&["n1"], &[])
        .with_health(ProviderHealth::Degraded)
        .with_revision("9");
    assert_eq!(
        hub.publish_active(pid("a"), degraded, now),
        PublishOutcome::Unchanged
    );
}

#[test]
fn seq_no_strictly_increases_across_all_line_types_within_one_run() {
    let mut hub = hub();
    let now = Instant::now();
    let mut events = hub.handle().subscribe_events("test").expect("subscribe");
    hub.activate(pid("a"), view(&["n1"], &[]), now)
        .expect("activate");
    hub.provider_health(pid("a"), ProviderHealth::Degraded, Some("timeout"), "slow");
    hub.publish_active(pid("a"), view(&["n1", "n2"], &[]), now);
    hub.unavailable(1_764_230_400_000);
    hub.terminated(pid("a"), &ProviderTermination::Ended);
    hub.switch(
        None,
        pid("b"),
        SwitchReason::Recovered,
        view(&["n2"], &[]),
        now,
    );
    let lines = drain(&mut events);
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq_no()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs.first(), Some(&1));
    assert_eq!(seqs.last(), Some(&hub.last_seq_no()));
    assert!(lines.iter().all(|l| l.run_id() == hub.run_id()));
    let change = lines
        .iter()
        .find_map(|l| match &**l {
            ProvisioningEvent::ProviderChanged(c) => Some(c.clone()),
            _ => None,
        })
        .expect("provider_changed");
    assert_eq!(
        change.from_provider_id,
        Some(pid("a")),
        "recovery names the last active"
    );
    assert_eq!(change.reason, SwitchReason::Recovered);
}

#[test]
fn history_replays_since_n_and_asks_for_a_resync_once_evicted() {
    let mut hub = ProviderWatchHub::new(HubConfig::new().with_history(3, 1000)).expect("hub");
    let now = Instant::now();
    hub.activate(pid("a"), view(&["n1"], &[]), now)
        .expect("activate"); // 1, 2
    hub.publish_active(pid("a"), view(&["n1", "n2"], &[]), now); // 3, 4
    hub.provider_health(pid("a"), ProviderHealth::Healthy, None, ""); // 5
    let history = hub.handle().history();
    let since = |n| -> Vec<u64> {
        history
            .since(n)
            .expect("held")
            .iter()
            .map(|l| l.seq_no())
            .collect()
    };
    assert_eq!(since(0), [1, 2, 3, 4, 5]);
    assert_eq!(since(3), [4, 5]);
    hub.provider_health(pid("a"), ProviderHealth::Degraded, Some("timeout"), ""); // 6
    assert_eq!(history.len(), 3, "counted in publications, not lines");
    assert!(
        history.since(1).is_err(),
        "line 2 was evicted with its snapshot"
    );
    assert_eq!(since(2), [3, 4, 5, 6]);
    assert!(history.since(99).is_err(), "another run's number");
}

#[test]
fn a_subscriber_resumes_after_since_from_the_history_or_resyncs() {
    let mut hub = ProviderWatchHub::new(HubConfig::new().with_history(3, 1000)).expect("hub");
    let now = Instant::now();
    hub.activate(pid("a"), view(&["n1"], &[]), now)
        .expect("activate"); // 1, 2
    hub.publish_active(pid("a"), view(&["n1", "n2"], &[]), now); // 3, 4
    hub.provider_health(pid("a"), ProviderHealth::Degraded, Some("timeout"), ""); // 5
    let handle = hub.handle();
    let mut resumed = handle.subscribe_events_since("sse", 3).expect("subscribe");
    hub.provider_health(pid("a"), ProviderHealth::Healthy, None, ""); // 6: evicts 1, 2
    let seqs: Vec<u64> = drain(&mut resumed).iter().map(|l| l.seq_no()).collect();
    assert_eq!(seqs, [4, 5, 6], "history, then live, nothing twice");

    let mut too_old = handle
        .subscribe_events_since("sse-old", 1)
        .expect("subscribe");
    assert_eq!(types(&drain(&mut too_old)), ["resync", "snapshot"]);
    let mut other_run = handle
        .subscribe_events_since("sse-other", 500)
        .expect("subscribe");
    assert_eq!(types(&drain(&mut other_run)), ["resync", "snapshot"]);
    let mut current = handle
        .subscribe_events_since("sse-now", 6)
        .expect("subscribe");
    assert!(
        drain(&mut current).is_empty(),
        "nothing after the newest line yet"
    );
}

/// The lines of: activate `a` with `first`, publish `second` from `a`
/// (when given), then switch to `b` with `standby`; `prepare` runs just
/// before the publication (or the switch) and may prepare `b`'s diff.
fn switch_lines(
    first: &provisioning_provider_api::ProviderSnapshot,
    second: Option<&provisioning_provider_api::ProviderSnapshot>,
    standby: &provisioning_provider_api::ProviderSnapshot,
    prepare: impl Fn(&mut ProviderWatchHub),
) -> Vec<String> {
    let mut hub = hub();
    let mut events = hub.handle().subscribe_events("test").expect("subscribe");
    let now = Instant::now();
    hub.activate(pid("a"), first.clone(), now)
        .expect("activate");
    prepare(&mut hub);
    if let Some(second) = second {
        hub.publish_active(pid("a"), second.clone(), now);
    }
    hub.switch(
        Some(pid("a")),
        pid("b"),
        SwitchReason::HealthDegraded,
        standby.clone(),
        now,
    );
    drain(&mut events)
        .iter()
        .map(|l| l.to_json_line())
        .collect()
}

#[test]
fn a_switch_to_a_prepared_standby_publishes_what_a_diff_at_switch_time_publishes() {
    let first = view(&["n1", "n2", "n3"], &["x"]);
    let standby = view(&["n2", "n3", "n4"], &[]);
    let cold = switch_lines(&first, None, &standby, |_| {});
    let warm = switch_lines(&first, None, &standby, |hub| {
        assert!(!hub.assess_candidate(&pid("b"), &standby));
    });
    assert!(
        cold.iter()
            .any(|l| l.contains(r#""event":"join","node_id":"n4""#))
    );
    assert!(
        cold.iter()
            .any(|l| l.contains(r#""event":"leave","node_id":"n1""#))
    );
    assert_eq!(warm, cold);
    // A publication in between makes the prepared diff stale: the switch
    // diffs from the snapshot published last, not the one prepared from.
    let second = view(&["n1", "n2", "n3", "n5"], &["x"]);
    let cold = switch_lines(&first, Some(&second), &standby, |_| {});
    let stale = switch_lines(&first, Some(&second), &standby, |hub| {
        hub.assess_candidate(&pid("b"), &standby);
    });
    assert!(
        cold.iter()
            .any(|l| l.contains(r#""event":"leave","node_id":"n5""#))
    );
    assert_eq!(stale, cold);
}

#[test]
fn assessing_a_standby_answers_as_assessing_the_same_view_of_the_active_provider() {
    let mut hub = hub();
    let all: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let ids = |n: usize| all[..n].iter().map(String::as_str).collect::<Vec<_>>();
    assert!(!hub.assess_candidate(&pid("b"), &view(&ids(2), &[])));
    hub.activate(pid("a"), view(&ids(10), &[]), Instant::now())
        .expect("activate");
    // The active provider's view is judged without a kept diff; a
    // standby's through the diff kept for a switch: one answer.
    for (n, expected) in [
        (0, true),
        (1, true),
        (4, true),
        (5, false),
        (6, false),
        (10, false),
    ] {
        let candidate = view(&ids(n), &[]);
        assert_eq!(hub.assess_candidate(&pid("a"), &candidate), expected, "{n}");
        assert_eq!(hub.assess_candidate(&pid("b"), &candidate), expected, "{n}");
    }
    assert!(hub.assess_candidate(&pid("b"), &view(&ids(4), &[])));
    assert!(!hub.assess_candidate(&pid("b"), &view(&ids(6), &[])));
}
