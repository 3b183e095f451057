//! Against a real 3-member cluster: a leader killed during 500 puts, two
//! members killed (fault, not a hang) and restored, compaction while the
//! client's member is down.

use std::time::Duration;

use etcd_client::{Client, DeleteOptions};
use provisioning_provider_api::*;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use tokio::time::Instant;

use crate::support::*;

const HEARTBEAT: Duration = Duration::from_secs(1);

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// Puts until it succeeds (a put may fail while the leader changes).
async fn put_retrying(c: &mut Client, id: &str, port: u16) -> u32 {
    let mut failures = 0;
    loop {
        match c
            .put(key(id), member_json(id, "10.0.0.1", port), None)
            .await
        {
            Ok(_) => return failures,
            Err(_) if failures < 200 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("put {id} keeps failing: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_during_500_puts_every_snapshot_is_a_real_revision() {
    let _serial = serial().await;
    let mut cluster = EtcdCluster::start(3).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mut writer = client(&endpoints).await;
    let provider = provider(&endpoints);
    let recorder = Recorder::start(provider.stream(StreamOptions::new(HEARTBEAT)));
    recorder
        .wait_for(0, Duration::from_secs(5), |e| {
            matches!(e, ProviderEvent::Snapshot(_))
        })
        .await
        .expect("first snapshot");

    let started = Instant::now();
    let mut put_failures = 0;
    let mut killed = None;
    for i in 0..500u16 {
        if i == 150 {
            let leader = cluster.leader_index().await.expect("a leader");
            cluster.kill(leader).expect("kill leader");
            killed = Some((leader, Instant::now()));
            // etcd-client's balancer keeps picking a dead endpoint: the
            // writer goes on through the live ones (the provider rotates by
            // itself).
            let live: Vec<String> = (0..3)
                .filter(|i| cluster.is_running(*i))
                .map(|i| cluster.endpoint(i))
                .collect();
            writer = client(&live).await;
        }
        put_failures += put_retrying(&mut writer, &format!("n{:02}", i % 40), 5000 + i).await;
    }
    let writes_took = started.elapsed();
    let live: Vec<String> = (0..3)
        .filter(|i| cluster.is_running(*i))
        .map(|i| cluster.endpoint(i))
        .collect();
    let mut truth_client = client(&live).await;
    let truth = truth_at(&mut truth_client, 0).await;
    let (_, last) = recorder
        .wait_for(
            0,
            Duration::from_secs(15),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.same_content(&truth)),
        )
        .await
        .expect("the final snapshot equals the truth");
    let converged = last.at.saturating_duration_since(started + writes_took);

    // Every published snapshot is the prefix's content at its revision.
    let snapshots = recorder.snapshots();
    for s in &snapshots {
        let revision: i64 = s
            .revision()
            .expect("revision set")
            .parse()
            .expect("numeric revision");
        let at = truth_at(&mut truth_client, revision).await;
        assert!(
            s.same_content(&at),
            "snapshot at revision {revision} differs from etcd's content then"
        );
    }
    let revisions: Vec<i64> = snapshots
        .iter()
        .filter_map(|s| s.revision()?.parse().ok())
        .collect();
    let faults = recorder
        .all()
        .iter()
        .filter(|s| matches!(s.event, ProviderEvent::Fault(_)))
        .count();
    let (leader, _) = killed.expect("leader killed");
    println!(
        "500 puts (leader m{leader} killed at put 150) in {writes_took:?}, {put_failures} failed \
         put attempts; {} snapshots checked against etcd history (revisions {}..={}), {faults} \
         faults; final snapshot {converged:?} after the last put",
        snapshots.len(),
        revisions.first().copied().unwrap_or_default(),
        revisions.last().copied().unwrap_or_default(),
    );
    assert!(
        !recorder
            .all()
            .iter()
            .any(|s| matches!(s.event, ProviderEvent::Terminated(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_killed_fault_in_bounded_time_then_recovery() {
    let _serial = serial().await;
    let mut cluster = EtcdCluster::start(3).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mut writer = client(&endpoints).await;
    writer
        .put(key("n1"), member_json("n1", "10.0.0.1", 4001), None)
        .await
        .unwrap();
    let provider = provider(&endpoints);
    let recorder = Recorder::start(provider.stream(StreamOptions::new(HEARTBEAT)));
    recorder
        .wait_for(0, Duration::from_secs(5), |e| {
            matches!(e, ProviderEvent::Snapshot(_))
        })
        .await
        .expect("first snapshot");

    // Kill the two members the provider is not attached to: the one left
    // answers but has no leader — the case that must not hang.
    let attached = endpoints
        .iter()
        .position(|e| *e == provider.current_endpoint())
        .expect("attached endpoint");
    let others: Vec<usize> = (0..3).filter(|i| *i != attached).collect();
    let mark = recorder.len();
    let killed_at = Instant::now();
    for i in &others {
        cluster.kill(*i).expect("kill");
    }
    let (_, fault) = recorder
        .wait_for(mark, Duration::from_secs(15), |e| {
            matches!(e, ProviderEvent::Fault(_))
        })
        .await
        .expect("a fault, not a hang");
    let to_fault = fault.at.saturating_duration_since(killed_at);
    let ProviderEvent::Fault(f) = &fault.event else {
        unreachable!()
    };
    assert!(!f.permanent, "{f}");
    assert!(
        to_fault <= Duration::from_secs(5),
        "fault after {to_fault:?}: {f}"
    );

    // Restore: liveness again, and new changes flow.
    let mark = recorder.len();
    let restored_at = Instant::now();
    for i in &others {
        cluster.restart(*i).await.expect("restart");
    }
    cluster
        .wait_healthy(Duration::from_secs(20))
        .await
        .expect("healthy again");
    let healthy_after = restored_at.elapsed();
    // The relist finds the same content: a heartbeat, no new snapshot.
    let (i, _) = recorder
        .wait_for(mark, Duration::from_secs(15), |e| {
            matches!(e, ProviderEvent::Heartbeat(_))
        })
        .await
        .expect("liveness after the restore");
    assert!(
        !recorder.all()[..=i]
            .iter()
            .skip(mark)
            .any(|s| matches!(s.event, ProviderEvent::Snapshot(_))),
        "unchanged content after a relist must not be a snapshot"
    );
    put_retrying(&mut writer, "n2", 4002).await;
    let (_, recovered) = recorder
        .wait_for(
            mark,
            Duration::from_secs(15),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.member("n2").is_some()),
        )
        .await
        .expect("recovered with the new member");
    println!(
        "2 of 3 killed: first fault after {to_fault:?} ({f}); restored: cluster healthy after \
         {healthy_after:?}, provider snapshot with the new member {:?} after the restart",
        recovered.at.saturating_duration_since(restored_at)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_past_the_client_while_its_member_is_down_relists_the_right_set() {
    let _serial = serial().await;
    let mut cluster = EtcdCluster::start(3).await.expect("etcd");
    let mut writer = client(&cluster.endpoints()).await;
    for (id, port) in [("n1", 4001), ("n2", 4002), ("n3", 4003)] {
        writer
            .put(key(id), member_json(id, "10.0.0.1", port), None)
            .await
            .unwrap();
    }
    // The provider is attached to member 0 only.
    let provider = provider(&[cluster.endpoint(0)]);
    let recorder = Recorder::start(provider.stream(StreamOptions::new(HEARTBEAT)));
    let (_, first) = recorder
        .wait_for(0, Duration::from_secs(5), |e| {
            matches!(e, ProviderEvent::Snapshot(_))
        })
        .await
        .expect("first snapshot");
    let ProviderEvent::Snapshot(first) = first.event else {
        unreachable!()
    };
    let position: i64 = first.revision().unwrap().parse().unwrap();
    assert_eq!(first.len(), 3);

    cluster.kill(0).expect("kill the client's member");
    // Changes the provider cannot see, then compaction beyond its position.
    let mut survivors = client(&[cluster.endpoint(1), cluster.endpoint(2)]).await;
    put_retrying(&mut survivors, "n4", 4004).await;
    survivors
        .delete(key("n1"), Some(DeleteOptions::new()))
        .await
        .unwrap();
    put_retrying(&mut survivors, "n2", 5002).await;
    let revision = cluster.revision().await.expect("revision");
    assert!(revision > position + 2);
    cluster.compact(revision).await.expect("compact");
    let truth = truth_at(&mut survivors, 0).await;

    let mark = recorder.len();
    let restarted_at = Instant::now();
    cluster.restart(0).await.expect("restart");
    let (_, relisted) = recorder
        .wait_for(
            mark,
            Duration::from_secs(20),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.same_content(&truth)),
        )
        .await
        .expect("relisted with the right set");
    let ProviderEvent::Snapshot(s) = &relisted.event else {
        unreachable!()
    };
    let at: i64 = s.revision().unwrap().parse().unwrap();
    assert!(at >= revision, "relisted at {at}, compacted at {revision}");
    // Nothing in between showed a set that never existed.
    for snapshot in recorder.snapshots() {
        assert!(
            snapshot.same_content(&first) || snapshot.same_content(&truth),
            "unexpected intermediate view {snapshot:?}"
        );
    }
    println!(
        "compaction: client at revision {position}, compacted at {revision}; relisted {:?} after \
         the restart, {} members",
        relisted.at.saturating_duration_since(restarted_at),
        s.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_going_back_is_a_resync_and_a_new_cluster_ends_the_stream() {
    let _serial = serial().await;
    let mut cluster = EtcdCluster::start(1).await.expect("etcd");
    let mut c = client(&cluster.endpoints()).await;
    for port in 4001..4011 {
        c.put(key("n1"), member_json("n1", "10.0.0.1", port), None)
            .await
            .unwrap();
    }
    let provider = provider(&cluster.endpoints());
    let recorder = Recorder::start(provider.stream(StreamOptions::new(HEARTBEAT)));
    recorder
        .wait_for(
            0,
            Duration::from_secs(5),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.revision() == Some("11")),
        )
        .await
        .expect("snapshot at revision 11");

    // Same cluster, data gone (a restore from an old backup): the revision
    // goes back; a resync notice, then the new content, and the stream goes on.
    let mark = recorder.len();
    cluster.wipe().await.expect("wipe");
    let mut c = client(&cluster.endpoints()).await;
    c.put(key("n2"), member_json("n2", "10.0.0.2", 4002), None)
        .await
        .unwrap();
    let (_, resync) = recorder
        .wait_for(
            mark,
            Duration::from_secs(10),
            |e| matches!(e, ProviderEvent::Fault(f) if f.is_resync()),
        )
        .await
        .expect("a resync notice");
    println!("wiped: {:?}", resync.event);
    recorder
        .wait_for(
            mark,
            Duration::from_secs(10),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.len() == 1 && s.member("n2").is_some()),
        )
        .await
        .expect("the new content");

    // Another cluster behind the same endpoint: revisions are not
    // comparable, the stream ends (not permanently: the service reopens).
    let mark = recorder.len();
    cluster.recreate().await.expect("recreate");
    let (_, end) = recorder
        .wait_for(mark, Duration::from_secs(10), |e| {
            matches!(e, ProviderEvent::Terminated(_))
        })
        .await
        .expect("terminated");
    match &end.event {
        ProviderEvent::Terminated(t @ ProviderTermination::Errored { reason, .. }) => {
            assert!(!t.is_permanent());
            assert!(reason.contains("another etcd cluster"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A new stream reads the new cluster.
    let mut stream = provider.stream(StreamOptions::new(HEARTBEAT));
    match tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut stream),
    )
    .await
    {
        Ok(Some(ProviderEvent::Snapshot(s))) => assert!(s.is_empty(), "{s:?}"),
        other => panic!("expected the new cluster's (empty) view, got {other:?}"),
    }
}
