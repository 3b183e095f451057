//! Real etcd members on loopback ports, for testing the etcd provider
//! against the real server: [`EtcdCluster`].
//!
//! - 1 or 3 members (any number works) on free `127.0.0.1` ports, with
//!   throw-away data directories (on `/dev/shm` when it exists, so fsync is
//!   cheap; `ETCD_TEST_DIR` overrides), heartbeat 100 ms and election timeout
//!   1 s (the floors for these 2-core machines are 100 ms / 500 ms).
//! - [`kill`](EtcdCluster::kill) is a SIGKILL, [`restart`](EtcdCluster::restart)
//!   starts the member again on the same data directory,
//!   [`compact`](EtcdCluster::compact) compacts the key space,
//!   [`recreate`](EtcdCluster::recreate) replaces the whole cluster by a new
//!   one (new cluster id) on the same ports, [`wipe`](EtcdCluster::wipe)
//!   restarts the same cluster with no data (revisions go backwards).
//! - [`start_on`](EtcdCluster::start_on) runs one member per host of a
//!   [`NetHosts`], for partition tests.
//! - [`start_tls`](EtcdCluster::start_tls) adds an `https` client URL per
//!   member (optionally requiring client certificates).
//! - Nothing is left behind: dropping the handle kills every member and
//!   removes the directories, also while a test panics. Each member runs
//!   under a tiny `sh` watchdog that SIGKILLs it when the test process goes
//!   away without dropping the handle (killed, aborted) and removes its
//!   data: it waits on a pipe from this process and acts on its end-of-file.
//!
//! The binary is `$ETCD_BIN`, else `/usr/bin/etcd` (Debian's `etcd-server`);
//! when neither exists, [`EtcdCluster::start`] fails with a one-line message
//! saying so. Tests must never skip silently.
//!
//! Cluster operations use etcd's JSON gateway (`/v3/...` on the client
//! port) over a minimal HTTP/1.0 client, so this module needs no gRPC stack
//! (and no `protoc`) and third-party providers can use it as is.
//!
//! Tests that use it must run serially (one process-wide lock in the test
//! binary): they share the machine's two cores and timing matters.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::net_hosts::NetHosts;

mod gateway;

/// Heartbeat interval of every member, in milliseconds.
pub const HEARTBEAT_MS: u64 = 100;
/// Election timeout of every member, in milliseconds.
pub const ELECTION_TIMEOUT_MS: u64 = 1000;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_CLUSTER: AtomicU64 = AtomicU64::new(0);

/// Why the harness could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdClusterError(pub String);

impl fmt::Display for EtcdClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "etcd harness: {}", self.0)
    }
}

impl std::error::Error for EtcdClusterError {}

fn err(message: impl Into<String>) -> EtcdClusterError {
    EtcdClusterError(message.into())
}

/// Client TLS for the members: each serves an extra `https://127.0.0.1`
/// client URL with this certificate, next to the plain one the harness uses
/// for its own operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// Server certificate (PEM), valid for `127.0.0.1`.
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA
    /// (`--client-cert-auth`).
    pub client_ca_file: Option<PathBuf>,
}

/// One member's fixed identity and its running process, if any.
#[derive(Debug)]
struct Member {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
    /// The network namespace the member runs in ([`NetHosts`]), if any.
    netns: Option<String>,
    tls_port: Option<u16>,
    data_dir: PathBuf,
    log: PathBuf,
    process: Option<Running>,
}

/// A running member: the watchdog shell, and the pipe whose end makes it
/// SIGKILL etcd.
#[derive(Debug)]
struct Running {
    watchdog: Child,
    lifeline: Option<ChildStdin>,
}

impl Running {
    /// SIGKILLs etcd through the watchdog (keeping its data) and reaps the
    /// watchdog.
    fn kill(mut self) {
        if let Some(mut lifeline) = self.lifeline.take() {
            // Ignored on error: the watchdog then sees end-of-file, which
            // also kills etcd (and removes the data, which Drop does anyway).
            let _ = lifeline.write_all(b"keep\n");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    // Last resort, only if `sh` misbehaves: end the
                    // watchdog itself.
                    let _ = self.watchdog.kill();
                    let _ = self.watchdog.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// Real etcd members on loopback, killed and removed on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    bin: PathBuf,
    root: PathBuf,
    token: String,
    generation: u32,
    tls: Option<EtcdTls>,
    members: Vec<Member>,
}

/// The etcd binary: `$ETCD_BIN`, else `/usr/bin/etcd`.
pub fn etcd_binary() -> Result<PathBuf, EtcdClusterError> {
    let bin = std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    checked_binary(bin)
}

fn checked_binary(bin: PathBuf) -> Result<PathBuf, EtcdClusterError> {
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(err(format!(
            "etcd binary not found at {} (set ETCD_BIN, or `apt-get install etcd-server`)",
            bin.display()
        )))
    }
}

fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ETCD_TEST_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// `count` distinct free loopback ports (bound together, then released).
fn free_ports(count: usize) -> Result<Vec<u16>, EtcdClusterError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("cannot bind a loopback port: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("cannot read a bound port: {e}")))
}

impl EtcdCluster {
    /// Starts `members` members of [`etcd_binary`] and waits until the
    /// cluster has a leader.
    pub async fn start(members: usize) -> Result<Self, EtcdClusterError> {
        Self::start_with(etcd_binary()?, members).await
    }

    /// [`start`](Self::start) with an explicit etcd binary.
    pub async fn start_with(bin: PathBuf, members: usize) -> Result<Self, EtcdClusterError> {
        Self::start_inner(bin, members, None).await
    }

    /// [`start`](Self::start) with client TLS on an extra URL per member
    /// ([`tls_endpoint`](Self::tls_endpoint)).
    pub async fn start_tls(members: usize, tls: EtcdTls) -> Result<Self, EtcdClusterError> {
        Self::start_inner(etcd_binary()?, members, Some(tls)).await
    }

    /// Starts one member per host of `hosts`, each inside its host's
    /// network namespace: peer traffic on the peer network, client traffic
    /// (and [`endpoint`](Self::endpoint)) on the host's client address.
    pub async fn start_on(hosts: &NetHosts) -> Result<Self, EtcdClusterError> {
        let mut cluster = Self::prepare(etcd_binary()?, hosts.len(), None)?;
        for (i, member) in cluster.members.iter_mut().enumerate() {
            member.client = SocketAddr::from((hosts.client_addr(i), 2379));
            member.peer = SocketAddr::from((hosts.peer_addr(i), 2380));
            member.netns = Some(hosts.namespace(i));
        }
        cluster.launch_all().await?;
        Ok(cluster)
    }

    async fn start_inner(
        bin: PathBuf,
        members: usize,
        tls: Option<EtcdTls>,
    ) -> Result<Self, EtcdClusterError> {
        if members == 0 {
            return Err(err("a cluster needs at least one member"));
        }
        let bin = checked_binary(bin)?;
        // A port taken between probing and binding is retried with new ones.
        let mut last = None;
        for _ in 0..3 {
            let mut cluster = Self::prepare(bin.clone(), members, tls.clone())?;
            match cluster.launch_all().await {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| err("could not start")))
    }

    fn prepare(
        bin: PathBuf,
        members: usize,
        tls: Option<EtcdTls>,
    ) -> Result<Self, EtcdClusterError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let n = NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed);
        let root = scratch_root().join(format!("etcd-test-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&root)
            .map_err(|e| err(format!("cannot create {}: {e}", root.display())))?;
        let per_member = if tls.is_some() { 3 } else { 2 };
        let ports = free_ports(members * per_member)?;
        let members = (0..members)
            .map(|i| Member {
                name: format!("m{i}"),
                client: SocketAddr::from(([127, 0, 0, 1], ports[per_member * i])),
                peer: SocketAddr::from(([127, 0, 0, 1], ports[per_member * i + 1])),
                netns: None,
                tls_port: tls.as_ref().map(|_| ports[per_member * i + 2]),
                data_dir: root.join(format!("m{i}.etcd")),
                log: root.join(format!("m{i}.log")),
                process: None,
            })
            .collect();
        Ok(Self {
            bin,
            token: format!("cp-test-{}-{n}-{nanos}", std::process::id()),
            root,
            generation: 0,
            tls,
            members,
        })
    }

    async fn launch_all(&mut self) -> Result<(), EtcdClusterError> {
        for i in 0..self.members.len() {
            self.spawn(i)?;
        }
        for i in 0..self.members.len() {
            self.wait_port(i).await?;
        }
        self.wait_healthy(START_TIMEOUT).await
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) -> Result<(), EtcdClusterError> {
        let initial_cluster = self.initial_cluster();
        let token = format!("{}-g{}", self.token, self.generation);
        let bin = self.bin.clone();
        let root = self.root.clone();
        let tls = self.tls.clone();
        let member = self.member_mut(i)?;
        if member.process.is_some() {
            return Err(err(format!("member {i} is already running")));
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .map_err(|e| err(format!("cannot open {}: {e}", member.log.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| err(format!("cannot clone a log handle: {e}")))?;
        let mut client = format!("http://{}", member.client);
        if let Some(port) = member.tls_port {
            client.push_str(&format!(",https://127.0.0.1:{port}"));
        }
        let peer = format!("http://{}", member.peer);
        // The watchdog: run etcd in the background and wait for a line on
        // stdin, then SIGKILL it. `keep` is this handle killing the member
        // (data kept for a restart); end-of-file means this process died
        // without cleaning up, so the watchdog removes the member's data and
        // log too, and the cluster directory once it is empty.
        let script = r#"bin="$1"; data="$2"; log="$3"; root="$4"; shift 4
"$bin" "$@" </dev/null & pid=$!
read -r cmd
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
if [ "$cmd" != keep ]; then rm -rf "$data" "$log"; rmdir "$root" 2>/dev/null; fi
exit 0"#;
        let mut command = match &member.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, "sh"]);
                command
            }
            None => Command::new("sh"),
        };
        command
            .arg("-c")
            .arg(script)
            .arg("etcd-watchdog")
            .arg(&bin)
            .arg(&member.data_dir)
            .arg(&member.log)
            .arg(&root)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string()])
            .args(["--election-timeout", &ELECTION_TIMEOUT_MS.to_string()])
            // As etcd 3.5 does by default: a member coming back from a
            // partition with a higher term does not depose a working leader.
            .arg("--pre-vote")
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        if let Some(tls) = &tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert_file)
                .arg("--key-file")
                .arg(&tls.key_file);
            if let Some(ca) = &tls.client_ca_file {
                command
                    .arg("--client-cert-auth")
                    .arg("--trusted-ca-file")
                    .arg(ca);
            }
        }
        let mut watchdog = command
            .spawn()
            .map_err(|e| err(format!("cannot start {}: {e}", bin.display())))?;
        let lifeline = watchdog.stdin.take();
        member.process = Some(Running { watchdog, lifeline });
        Ok(())
    }

    fn member(&self, i: usize) -> Result<&Member, EtcdClusterError> {
        self.members
            .get(i)
            .ok_or_else(|| err(format!("no member {i}")))
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut Member, EtcdClusterError> {
        self.members
            .get_mut(i)
            .ok_or_else(|| err(format!("no member {i}")))
    }

    /// Waits until member `i`'s client port accepts connections (or its
    /// process died: then the log tail is in the error).
    async fn wait_port(&mut self, i: usize) -> Result<(), EtcdClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let member = self.member_mut(i)?;
            let addr = member.client;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if let Some(running) = member.process.as_mut()
                && let Ok(Some(status)) = running.watchdog.try_wait()
            {
                member.process = None;
                return Err(err(format!(
                    "member {i} exited ({status}) while starting: {}",
                    self.log_tail(i)
                )));
            }
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "member {i} did not open its client port: {}",
                    self.log_tail(i)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of member `i`'s log, for error messages.
    pub fn log_tail(&self, i: usize) -> String {
        let Ok(member) = self.member(i) else {
            return String::new();
        };
        let text = fs::read_to_string(&member.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// The throw-away directory holding data directories and logs (removed
    /// on drop).
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members (never, once started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Client URL of member `i` (`http://127.0.0.1:PORT`, or the host's
    /// client address on [`NetHosts`]).
    pub fn endpoint(&self, i: usize) -> String {
        self.members
            .get(i)
            .map(|m| format!("http://{}", m.client))
            .unwrap_or_default()
    }

    /// The `https` client URL of member `i`, when started with
    /// [`start_tls`](Self::start_tls).
    pub fn tls_endpoint(&self, i: usize) -> Option<String> {
        let port = self.members.get(i)?.tls_port?;
        Some(format!("https://127.0.0.1:{port}"))
    }

    /// Client URLs of every member, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Whether member `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| m.process.is_some())
    }

    /// SIGKILLs member `i` and waits until it is gone.
    pub fn kill(&mut self, i: usize) -> Result<(), EtcdClusterError> {
        let running = self
            .member_mut(i)?
            .process
            .take()
            .ok_or_else(|| err(format!("member {i} is not running")))?;
        running.kill();
        Ok(())
    }

    /// Sends `SIGSTOP` to member `i`'s etcd (`resume` sends `SIGCONT`): it
    /// keeps its sockets open, the kernel keeps accepting connections and
    /// requests, and nothing answers — a hung server. A paused member is
    /// still killed by [`kill`](Self::kill) and on drop.
    pub fn pause(&mut self, i: usize) -> Result<(), EtcdClusterError> {
        self.signal(i, "-STOP")
    }

    /// Sends `SIGCONT` to member `i`'s etcd after [`pause`](Self::pause).
    pub fn resume(&mut self, i: usize) -> Result<(), EtcdClusterError> {
        self.signal(i, "-CONT")
    }

    /// Signals the etcd process of member `i`: the one child of its
    /// watchdog shell, found by the watchdog's pid (never by name).
    fn signal(&mut self, i: usize, signal: &str) -> Result<(), EtcdClusterError> {
        let running = self
            .member_mut(i)?
            .process
            .as_ref()
            .ok_or_else(|| err(format!("member {i} is not running")))?;
        let shell = running.watchdog.id();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .map_err(|e| err(format!("children of watchdog {shell}: {e}")))?;
        let pid = children
            .split_whitespace()
            .next()
            .ok_or_else(|| err(format!("watchdog {shell} has no etcd child")))?;
        let status = Command::new("kill")
            .args([signal, pid])
            .status()
            .map_err(|e| err(format!("kill {signal} {pid}: {e}")))?;
        if !status.success() {
            return Err(err(format!("kill {signal} {pid}: {status}")));
        }
        Ok(())
    }

    /// Starts member `i` again on its data directory and waits until its
    /// client port accepts connections (not for a leader: a lone member of
    /// a 3-member cluster has none).
    pub async fn restart(&mut self, i: usize) -> Result<(), EtcdClusterError> {
        self.spawn(i)?;
        self.wait_port(i).await
    }

    /// Replaces the cluster by a brand-new one on the same ports: every
    /// member is killed, the data is wiped, and the members start with a new
    /// cluster token, hence a new cluster id and revisions from 1.
    pub async fn recreate(&mut self) -> Result<(), EtcdClusterError> {
        self.wipe_and_start(true).await
    }

    /// Wipes the data and starts the same cluster again (same cluster id,
    /// revisions from 1): to clients this looks like a restore from an old
    /// backup, the revision goes backwards.
    pub async fn wipe(&mut self) -> Result<(), EtcdClusterError> {
        self.wipe_and_start(false).await
    }

    async fn wipe_and_start(&mut self, new_identity: bool) -> Result<(), EtcdClusterError> {
        for i in 0..self.members.len() {
            if let Some(running) = self.members[i].process.take() {
                running.kill();
            }
            let dir = &self.members[i].data_dir;
            if dir.exists() {
                fs::remove_dir_all(dir)
                    .map_err(|e| err(format!("cannot remove {}: {e}", dir.display())))?;
            }
        }
        if new_identity {
            self.generation += 1;
        }
        self.launch_all().await
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(running) = member.process.take() {
                running.kill();
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}
