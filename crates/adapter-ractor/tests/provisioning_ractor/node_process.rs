//! One `provisioning-ractor-node` child process and what it reports.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One report line of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) at: Instant,
    pub(crate) sessions: Vec<String>,
    pub(crate) provider: Option<String>,
    pub(crate) published: Vec<String>,
    pub(crate) connects: u64,
}

/// Every report of every node, in arrival order per node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reports(Arc<Mutex<BTreeMap<String, Vec<Report>>>>);

impl Reports {
    pub(crate) fn latest(&self, node: &str) -> Option<Report> {
        self.lock().get(node).and_then(|r| r.last().cloned())
    }

    /// The reports of `node` that arrived at or after `since`.
    pub(crate) fn since(&self, node: &str, since: Instant) -> Vec<Report> {
        self.lock()
            .get(node)
            .map(|r| r.iter().filter(|r| r.at >= since).cloned().collect())
            .unwrap_or_default()
    }

    fn push(&self, node: &str, report: Report) {
        self.lock().entry(node.to_owned()).or_default().push(report);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Report>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running node, killed on drop.
pub(crate) struct NodeProcess {
    pub(crate) id: String,
    pub(crate) started: Instant,
    child: Child,
}

impl NodeProcess {
    pub(crate) fn spawn(id: &str, etcd: &str, members: &str, reports: &Reports) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_provisioning-ractor-node"))
            .args(["--id", id, "--etcd", etcd, "--members", members])
            .env("RACTOR_COOKIE", "proof-cookie")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning node {id}: {e}"));
        let started = Instant::now();
        let stdout = child.stdout.take().expect("piped stdout");
        let reports = reports.clone();
        let node = id.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                    panic!("node {node} printed a line that is not JSON: {line}");
                };
                let strings = |key: &str| -> Vec<String> {
                    value[key]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|s| s.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                reports.push(
                    &node,
                    Report {
                        at: Instant::now(),
                        sessions: strings("sessions"),
                        provider: value["provider"].as_str().map(str::to_owned),
                        published: strings("published"),
                        connects: value["connects"].as_u64().unwrap_or(0),
                    },
                );
            }
        });
        Self {
            id: id.to_owned(),
            started,
            child,
        }
    }

    /// SIGKILL, and wait until the process is gone.
    pub(crate) async fn kill(mut self) -> Instant {
        let at = Instant::now();
        self.child.kill().await.expect("kill node");
        at
    }
}

/// Polls `done` every 10 ms until it holds; panics with `what` and the
/// latest reports after `margin`. Returns how long it took.
pub(crate) async fn wait_for(
    what: &str,
    margin: Duration,
    reports: &Reports,
    mut done: impl FnMut(&Reports) -> bool,
) -> Duration {
    let started = Instant::now();
    while !done(reports) {
        assert!(
            started.elapsed() < margin,
            "{what}: not within {margin:?}; latest reports: {:#?}",
            ["n1", "n2", "n3"].map(|n| reports.latest(n))
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}
