//! One cluster node for the runnable proof: a ractor `NodeServer`, the
//! provisioning service with two providers — etcd (priority 20, this node
//! registering itself with a lease) and a static in-memory list (priority
//! 10) — and the adapter between them. Prints one JSON line per change of
//! its sessions, active provider, published members or connect and
//! disconnect counts (and one a second regardless):
//! `{"node","ms","sessions","provider","connects","disconnects"}`.
//!
//! Usage: `provisioning-ractor-node --id ID --etcd URL --members ID=PORT,...`
//! with the cookie in `RACTOR_COOKIE` (referenced, never passed as an
//! argument). Every member runs on 127.0.0.1.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cluster_provisioning::api::{ClusterNode, ProviderDescriptor};
use cluster_provisioning::registry::SecretResolver;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use provisioning_ractor::{COOKIE_LABEL, MeshConfig, RactorMesh, start_node_server};
use ractor_cluster::NodeServerMessage;

const HOST: &str = "127.0.0.1";
const COOKIE_REF: &str = "env:RACTOR_COOKIE";
const PREFIX: &str = "/ractor-proof/members/";

struct Args {
    id: String,
    etcd: String,
    members: BTreeMap<String, u16>,
}

fn parse_args() -> Result<Args, String> {
    let mut id = None;
    let mut etcd = None;
    let mut members = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--id" => id = Some(value),
            "--etcd" => etcd = Some(value),
            "--members" => {
                for entry in value.split(',') {
                    let (member, port) = entry
                        .split_once('=')
                        .ok_or_else(|| format!("--members: {entry:?} is not ID=PORT"))?;
                    let port = port
                        .parse::<u16>()
                        .map_err(|e| format!("--members: {entry:?}: {e}"))?;
                    members.insert(member.to_owned(), port);
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    if !members.contains_key(&id) {
        return Err(format!("--members does not list --id {id}"));
    }
    Ok(Args {
        id,
        etcd: etcd.ok_or("--etcd is required")?,
        members,
    })
}

fn member(id: &str, port: u16) -> ClusterNode {
    let mut node = ClusterNode::new(id, HOST, port);
    node.labels.insert(COOKIE_LABEL.into(), COOKIE_REF.into());
    node
}

fn descriptors(args: &Args) -> Result<Vec<ProviderDescriptor>, String> {
    let port = args.members[&args.id];
    let static_members: Vec<_> = args
        .members
        .iter()
        .map(|(id, port)| {
            serde_json::json!({"id": id, "host": HOST, "port": port,
                "labels": {COOKIE_LABEL: COOKIE_REF}})
        })
        .collect();
    let etcd = serde_json::json!({
        "id": "etcd", "kind": "etcd", "priority": 20, "endpoints": [args.etcd],
        "watch": {"prefix": PREFIX, "register": {"id": args.id, "host": HOST, "port": port,
            "ttl": "2s", "labels": {COOKIE_LABEL: COOKIE_REF}}}
    });
    let fallback = serde_json::json!({
        "id": "static", "kind": "in_memory", "priority": 10,
        "watch": {"members": static_members}
    });
    [etcd, fallback]
        .into_iter()
        .map(|d| serde_json::from_value(d).map_err(|e| format!("descriptor: {e}")))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error[invalid_argument]: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error[runtime]: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let local = member(&args.id, args.members[&args.id]);
    let secrets = SecretResolver::new(".");
    let (server, _server_task) = start_node_server(&local, &secrets)
        .await
        .map_err(|e| e.to_string())?;
    let registry = cluster_provisioning::builtin_registry();
    for descriptor in descriptors(&args)? {
        registry.register(descriptor).map_err(|e| e.to_string())?;
    }
    let service = ClusterProvisioningService::build(registry)
        .with_failover(FailoverPolicy::tight())
        .with_local_member(local.id.clone())
        .start()
        .map_err(|e| e.to_string())?;
    let config = MeshConfig::tight();
    let mesh = RactorMesh::new(server.clone(), &local, config).map_err(|e| e.to_string())?;
    let stats = mesh.stats();
    let changes = service.topology_changes().map_err(|e| e.to_string())?;
    tokio::spawn(mesh.run(changes));

    let mut last = serde_json::Value::Null;
    let mut last_print = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sessions = match ractor::call_t!(server, NodeServerMessage::GetSessions, 1_000) {
            Ok(sessions) => sessions,
            Err(e) => return Err(format!("NodeServer: {e}")),
        };
        let mut names: Vec<String> = sessions
            .values()
            .filter_map(|s| s.peer_name.as_ref().map(|n| n.name.clone()))
            .collect();
        names.sort();
        let topology = service.topology();
        let provider = topology
            .as_ref()
            .map(|t| t.provider_id().as_str().to_owned());
        let published: Vec<String> = topology
            .map(|t| {
                t.members()
                    .iter()
                    .map(|m| m.id.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        // The counts are part of the state: a connect is reported when it
        // is made, not with the next change of something else.
        let (connects, disconnects) = (stats.connects(), stats.disconnects());
        let state = serde_json::json!({
            "sessions": names,
            "provider": provider,
            "published": published,
            "connects": connects,
            "disconnects": disconnects,
        });
        if state != last || last_print.elapsed() >= Duration::from_secs(1) {
            // The line is the state with who and when.
            let mut line = state.clone();
            if let Some(fields) = line.as_object_mut() {
                fields.insert("node".into(), args.id.clone().into());
                fields.insert("ms".into(), (started.elapsed().as_millis() as u64).into());
            }
            println!("{line}");
            last = state;
            last_print = Instant::now();
        }
    }
}
