//! The adapter against real `NodeServer`s in one process, each node with
//! its own service over its own in-memory provider, so a test can make the
//! nodes disagree: a Leave closes a session whose peer is still alive and
//! keeps trying, a block closes it and refuses the blocked node's
//! reconnects, an unblock reconnects.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::api::{ClusterNode, ProviderId};
use cluster_provisioning::memory::{InMemoryHandle, InMemoryProvider};
use cluster_provisioning::registry::SecretResolver;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};
use provisioning_ractor::{COOKIE_LABEL, MeshConfig, MeshStats, RactorMesh, start_node_server};
use ractor::ActorRef;
use ractor_cluster::NodeServerMessage;

const IDS: [&str; 3] = ["n1", "n2", "n3"];

struct Node {
    server: ActorRef<NodeServerMessage>,
    members: InMemoryHandle,
    service: ProvisioningHandle,
    stats: Arc<MeshStats>,
}

fn member(id: &str, port: u16) -> ClusterNode {
    let mut node = ClusterNode::new(id, "127.0.0.1", port);
    node.labels
        .insert(COOKIE_LABEL.into(), "env:TEST_RACTOR_COOKIE".into());
    node
}

async fn start_nodes() -> Vec<Node> {
    let listeners: Vec<_> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a loopback port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect();
    drop(listeners);
    let everyone: Vec<ClusterNode> = IDS
        .iter()
        .zip(&ports)
        .map(|(id, p)| member(id, *p))
        .collect();
    let secrets = SecretResolver::new(".").with_env(|name| match name {
        "TEST_RACTOR_COOKIE" => Ok("test-cookie".into()),
        _ => Err(std::env::VarError::NotPresent),
    });
    let mut nodes = Vec::new();
    for local in &everyone {
        let (server, _) = start_node_server(local, &secrets)
            .await
            .expect("NodeServer");
        let provider = InMemoryProvider::new(ProviderId::new("discovery").expect("id"), 10);
        for m in &everyone {
            provider.handle().add(m.clone()).expect("member");
        }
        let members = provider.handle();
        let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
            .with_failover(FailoverPolicy::tight())
            .with_local_member(local.id.clone())
            .with_provider(Arc::new(provider))
            .start()
            .expect("service");
        let mesh = RactorMesh::new(server.clone(), local, MeshConfig::tight()).expect("mesh");
        let stats = mesh.stats();
        tokio::spawn(mesh.run(service.topology_changes().expect("stream")));
        nodes.push(Node {
            server,
            members,
            service,
            stats,
        });
    }
    nodes
}

async fn sessions(node: &Node) -> Vec<String> {
    let sessions =
        ractor::call_t!(node.server, NodeServerMessage::GetSessions, 1_000).expect("sessions");
    let mut names: Vec<String> = sessions
        .values()
        .filter_map(|s| s.peer_name.as_ref().map(|n| n.name.clone()))
        .map(|name| name.trim_end_matches("@127.0.0.1").to_owned())
        .collect();
    names.sort();
    names
}

/// Polls until every node has the sessions `want` gives it (peer ids);
/// returns how long that took. 1 s bound, margin 3x + 2 s.
async fn settle(step: &str, nodes: &[Node], want: impl Fn(usize) -> Vec<&'static str>) -> Duration {
    let margin = Duration::from_secs(5);
    let started = Instant::now();
    loop {
        let mut all = Vec::new();
        for node in nodes {
            all.push(sessions(node).await);
        }
        if all.iter().enumerate().all(|(i, s)| *s == want(i)) {
            println!("{step}: {:?}", started.elapsed());
            return started.elapsed();
        }
        assert!(
            started.elapsed() < margin,
            "{step}: not within {margin:?}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long a refused peer's session may be seen: it is closed as soon as
/// it authenticates (the adapter is woken by the `NodeServer`'s event).
const REFUSED_WITHIN: Duration = Duration::from_millis(250);

/// For `hold`, no session of `node` with `peer` lasts longer than
/// [`REFUSED_WITHIN`]; returns how many times one was seen (reconnects
/// that were refused).
async fn refused(node: &Node, peer: &str, hold: Duration) -> usize {
    let started = Instant::now();
    let mut since: Option<Instant> = None;
    let mut seen = 0;
    let mut longest = Duration::ZERO;
    while started.elapsed() < hold {
        let now = sessions(node).await;
        if now.iter().any(|p| p == peer) {
            let first = *since.get_or_insert_with(|| {
                seen += 1;
                Instant::now()
            });
            longest = longest.max(first.elapsed());
            assert!(
                first.elapsed() <= REFUSED_WITHIN,
                "a session with {peer} stayed {:?}: {now:?}",
                first.elapsed()
            );
        } else {
            since = None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("{peer}: {seen} reconnects seen and closed, longest seen {longest:?}");
    seen
}

fn others(i: usize) -> Vec<&'static str> {
    IDS.iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, id)| *id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_closes_a_live_session_and_a_block_refuses_reconnects() {
    let nodes = start_nodes().await;
    settle("full mesh", &nodes, others).await;

    // n3 leaves the lists of n1 and n2 while it keeps running and still
    // lists them: they close its session and every reconnect it makes.
    for node in &nodes[..2] {
        assert!(node.members.remove("n3"));
    }
    settle("n3 left n1's and n2's view", &nodes, |i| match i {
        0 => vec!["n2"],
        1 => vec!["n1"],
        _ => vec![],
    })
    .await;
    // An attempt whose session was closed before n3 saw it counts as in
    // flight until the connect timeout: n3's next try follows within it.
    let tries = nodes[2].stats.connects();
    let hold = MeshConfig::tight().connect_timeout + Duration::from_secs(1);
    refused(&nodes[0], "n3", hold).await;
    assert!(
        nodes[2].stats.connects() > tries,
        "n3 did not try to reconnect, so the refusal was not exercised"
    );

    // It comes back: reconnected.
    let n3 = nodes[2]
        .members
        .snapshot()
        .members()
        .iter()
        .find(|m| m.id.as_str() == "n3")
        .cloned()
        .expect("n3 in its own list");
    for node in &nodes[..2] {
        node.members.add(n3.clone()).expect("n3 back");
    }
    settle("n3 back", &nodes, others).await;

    // n2 blocked in n1's and n3's view only (n2 has not heard and keeps
    // connecting): they close its sessions and every reconnect; then an
    // unblock reconnects it.
    for node in [&nodes[0], &nodes[2]] {
        node.members.block("n2");
    }
    settle("n2 blocked", &nodes, |i| match i {
        0 => vec!["n3"],
        1 => vec![],
        _ => vec!["n1"],
    })
    .await;
    let tries = nodes[1].stats.connects();
    let seen = refused(&nodes[0], "n2", hold).await;
    assert!(
        nodes[1].stats.connects() > tries,
        "n2 did not try to reconnect, so the refusal was not exercised"
    );
    println!(
        "n2 blocked: {} reconnects by n2, {seen} seen by n1 before it closed them",
        nodes[1].stats.connects() - tries
    );
    for node in [&nodes[0], &nodes[2]] {
        node.members.unblock("n2");
    }
    settle("n2 unblocked", &nodes, others).await;

    for node in nodes {
        node.service.shutdown().await.expect("shutdown");
        node.server.stop(None);
    }
}
