//! Three ractor nodes in one process on loopback, each with its own
//! provisioning service (an in-memory provider standing in for the
//! discovery backend) and the adapter: they form a full mesh, drop a member
//! that leaves, drop a blocked member and take it back when unblocked.
//!
//! `cargo run -p provisioning-ractor --example cluster`

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::api::{ClusterNode, ProviderId};
use cluster_provisioning::memory::{InMemoryHandle, InMemoryProvider};
use cluster_provisioning::registry::SecretResolver;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use provisioning_ractor::{COOKIE_LABEL, MeshConfig, RactorMesh, start_node_server};
use ractor::ActorRef;
use ractor_cluster::NodeServerMessage;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Node {
    id: &'static str,
    server: ActorRef<NodeServerMessage>,
    members: InMemoryHandle,
}

fn member(id: &str, port: u16) -> ClusterNode {
    let mut node = ClusterNode::new(id, "127.0.0.1", port);
    node.labels
        .insert(COOKIE_LABEL.into(), "env:EXAMPLE_RACTOR_COOKIE".into());
    node
}

async fn sessions(server: &ActorRef<NodeServerMessage>) -> Result<Vec<String>, Error> {
    let sessions = ractor::call_t!(server, NodeServerMessage::GetSessions, 1_000)?;
    let mut names: Vec<String> = sessions
        .values()
        .filter_map(|s| s.peer_name.as_ref().map(|n| n.name.clone()))
        .collect();
    names.sort();
    Ok(names)
}

/// Waits until every node reports `expected(node)` sessions; prints them.
async fn settle(step: &str, nodes: &[Node], expected: impl Fn(&str) -> usize) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let mut all = Vec::new();
        for node in nodes {
            all.push((node.id, sessions(&node.server).await?));
        }
        if all.iter().all(|(id, s)| s.len() == expected(id)) {
            println!("{step} ({:?}):", started.elapsed());
            for (id, s) in all {
                println!("  {id} -> {s:?}");
            }
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("{step}: not settled in 10 s: {all:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ports: Vec<u16> = {
        let listeners = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()?;
        listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()?
    };
    let ids = ["n1", "n2", "n3"];
    let everyone: Vec<ClusterNode> = ids
        .iter()
        .zip(&ports)
        .map(|(id, p)| member(id, *p))
        .collect();
    // The cookie is resolved from the reference in the member's labels.
    let secrets = SecretResolver::new(".").with_env(|name| match name {
        "EXAMPLE_RACTOR_COOKIE" => Ok("example-cookie".into()),
        _ => Err(std::env::VarError::NotPresent),
    });

    let mut nodes = Vec::new();
    let mut services = Vec::new();
    for local in &everyone {
        let (server, _) = start_node_server(local, &secrets).await?;
        let provider = InMemoryProvider::new(ProviderId::new("discovery")?, 10);
        for m in &everyone {
            provider.handle().add(m.clone())?;
        }
        let members = provider.handle();
        let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
            .with_failover(FailoverPolicy::tight())
            .with_local_member(local.id.clone())
            .with_provider(Arc::new(provider))
            .start()?;
        let mesh = RactorMesh::new(server.clone(), local, MeshConfig::tight())?;
        tokio::spawn(mesh.run(service.topology_changes()?));
        let id = ids[nodes.len()];
        nodes.push(Node {
            id,
            server,
            members,
        });
        services.push(service);
    }
    settle("full mesh", &nodes, |_| 2).await?;

    // n3 stops and leaves the discovery data.
    let n3 = nodes.pop().ok_or("three nodes")?;
    n3.server.stop(None);
    for node in &nodes {
        node.members.remove("n3");
    }
    settle("n3 left", &nodes, |_| 1).await?;

    // n2 is blocked: n1 closes the session and refuses n2's reconnects.
    for node in &nodes {
        node.members.block("n2");
    }
    settle("n2 blocked", &nodes, |_| 0).await?;
    for node in &nodes {
        node.members.unblock("n2");
    }
    settle("n2 unblocked", &nodes, |_| 1).await?;

    for service in services {
        service.shutdown().await?;
    }
    Ok(())
}
