//! The runnable proof: three processes form a full ractor mesh through the
//! service, drop a killed member when its lease expires, take it back when
//! it restarts, keep the mesh without reconnecting through an etcd outage
//! (failover to the static list) and after etcd returns (fail-back).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use provisioning_testkit::etcd_cluster::EtcdCluster;

use super::node_process::{NodeProcess, Reports, wait_for};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// 3x the bound + 2 s.
fn margin(bound: Duration) -> Duration {
    bound * 3 + Duration::from_secs(2)
}

fn name(id: &str) -> String {
    format!("{id}@127.0.0.1")
}

/// Whether `node` reports sessions with exactly `peers`.
fn sessions_are(reports: &Reports, node: &str, peers: &[&str]) -> bool {
    let want: Vec<String> = peers.iter().map(|p| name(p)).collect();
    reports.latest(node).is_some_and(|r| r.sessions == want)
}

fn full_mesh(reports: &Reports, nodes: &[&str]) -> bool {
    nodes.iter().all(|node| {
        let peers: Vec<&str> = nodes.iter().copied().filter(|p| p != node).collect();
        sessions_are(reports, node, &peers)
    })
}

fn provider_is(reports: &Reports, provider: &str) -> bool {
    NODES
        .iter()
        .all(|n| reports.latest(n).and_then(|r| r.provider).as_deref() == Some(provider))
}

fn free_ports() -> Vec<u16> {
    let listeners: Vec<_> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

/// Every report of `nodes` since `since` showed the full mesh, and no node
/// started a connect: the mesh stayed, with no reconnect.
fn mesh_held(reports: &Reports, since: Instant, connects: &[u64]) {
    for (node, before) in NODES.iter().zip(connects) {
        let peers: Vec<String> = NODES
            .iter()
            .filter(|p| *p != node)
            .map(|p| name(p))
            .collect();
        for report in reports.since(node, since) {
            assert_eq!(report.sessions, peers, "{node} lost a session: {report:?}");
            assert_eq!(report.connects, *before, "{node} reconnected: {report:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_keep_a_full_mesh_through_kills_and_an_etcd_outage() {
    let mut etcd = EtcdCluster::start(1).await.expect("etcd");
    let endpoint = etcd.endpoint(0);
    let ports = free_ports();
    let members = NODES
        .iter()
        .zip(&ports)
        .map(|(id, port)| format!("{id}={port}"))
        .collect::<Vec<_>>()
        .join(",");
    let reports = Reports::default();

    // 1. Full mesh.
    let bound = Duration::from_secs(1);
    let mut nodes: Vec<NodeProcess> = NODES
        .iter()
        .map(|id| NodeProcess::spawn(id, &endpoint, &members, &reports))
        .collect();
    let took = wait_for("full mesh at start", margin(bound), &reports, |r| {
        full_mesh(r, &NODES)
            && provider_is(r, "etcd")
            && NODES.iter().all(|n| reports_published(r, n).len() == 3)
    })
    .await;
    println!("spawn -> full mesh of 3 processes, all on etcd: {took:?} (bound {bound:?})");
    for node in &nodes {
        print_start_figures(&reports, node);
    }

    // 2. n3 killed: its lease expires (ttl 2 s), the Leave arrives, the
    // others drop its session and keep it dropped.
    let n3 = nodes.pop().expect("n3");
    let killed = n3.kill().await;
    wait_for("n3's sessions dropped", margin(bound), &reports, |r| {
        sessions_are(r, "n1", &["n2"]) && sessions_are(r, "n2", &["n1"])
    })
    .await;
    let dropped = killed.elapsed();
    let lease_bound = Duration::from_secs(3);
    wait_for(
        "n3 left the published members",
        margin(lease_bound),
        &reports,
        |r| {
            ["n1", "n2"]
                .iter()
                .all(|n| reports_published(r, n) == ["n1", "n2"])
        },
    )
    .await;
    let left = killed.elapsed();
    println!(
        "kill -> the others' sessions to it gone: {dropped:?}; kill -> its Leave published (lease ttl 2 s): {left:?}"
    );
    // After the Leave, the survivors neither keep nor retry a session to it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sessions_are(&reports, "n1", &["n2"]) && sessions_are(&reports, "n2", &["n1"]));

    // 3. n3 restarts: reconnected.
    let n3 = NodeProcess::spawn("n3", &endpoint, &members, &reports);
    let took = wait_for("n3 reconnected", margin(bound), &reports, |r| {
        full_mesh(r, &NODES) && NODES.iter().all(|n| reports_published(r, n).len() == 3)
    })
    .await;
    println!("restart -> full mesh again: {took:?}");
    print_start_figures(&reports, &n3);
    nodes.push(n3);

    // 4. etcd killed: failover to the static list, the mesh stays, nobody
    // reconnects. The counts are taken once the restart's connects are
    // over: the mesh can be full while a node's dial to a peer that
    // dialled it first is still under way (a few mesh ticks).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connects: Vec<u64> = NODES
        .iter()
        .map(|n| reports.latest(n).map_or(0, |r| r.connects))
        .collect();
    let outage = Instant::now();
    etcd.kill(0).expect("kill etcd");
    let failover_bound = Duration::from_secs(3);
    let took = wait_for(
        "failover to the static list",
        margin(failover_bound),
        &reports,
        |r| provider_is(r, "static"),
    )
    .await;
    println!("etcd killed -> every node on the static list: {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    mesh_held(&reports, outage, &connects);

    // 5. etcd back: fail-back after the cooldown, the mesh still formed.
    let back = Instant::now();
    etcd.restart(0).await.expect("restart etcd");
    let failback_bound = Duration::from_secs(4);
    let took = wait_for("fail-back to etcd", margin(failback_bound), &reports, |r| {
        provider_is(r, "etcd")
            && full_mesh(r, &NODES)
            && NODES.iter().all(|n| reports_published(r, n).len() == 3)
    })
    .await;
    println!("etcd restarted -> every node back on etcd with the full mesh: {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    mesh_held(&reports, back, &connects);
    drop(nodes);
}

fn reports_published(reports: &Reports, node: &str) -> Vec<String> {
    reports
        .latest(node)
        .map(|r| r.published)
        .unwrap_or_default()
}

/// From the process's start: when it first published itself (its
/// registration came back through etcd's watch), when it first had both
/// sessions with the full member list, and the difference.
fn print_start_figures(reports: &Reports, node: &NodeProcess) {
    let seen = reports.since(&node.id, node.started);
    let registered = seen
        .iter()
        .find(|r| r.published.contains(&node.id))
        .map(|r| r.at.duration_since(node.started));
    let meshed = seen
        .iter()
        .find(|r| r.sessions.len() == 2 && r.published.len() == 3)
        .map(|r| r.at.duration_since(node.started));
    let after = registered.zip(meshed).map(|(r, m)| m.saturating_sub(r));
    println!(
        "{}: start -> registered and published {registered:?}; start -> full mesh {meshed:?}; registration -> full mesh {after:?}",
        node.id
    );
}
