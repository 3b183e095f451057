//! A fake Consul HTTP API on loopback for testing the Consul provider.
//!
//! It follows Consul's documented behaviour where the provider depends on
//! it:
//!
//! - `GET /v1/health/service/<service>` with `passing`, `tag` (repeatable,
//!   case-insensitive), `filter` (a subset of go-bexpr, see below), `dc`
//!   (only `dc1` exists; others answer 500 "No path to datacenter"),
//!   `ns`, `stale` / `consistent` (both: 400), `index` + `wait` blocking
//!   queries (`wait` as Go durations, default 5 min, capped at 10 min; the
//!   answer is held until the service's index passes `index` or `wait` plus
//!   up to `wait/16` of jitter elapses), headers `X-Consul-Index`,
//!   `X-Consul-KnownLeader`, `X-Consul-LastContact`,
//!   `X-Consul-Effective-Consistency`, and
//!   `X-Consul-Results-Filtered-By-ACLs` when ACLs hid instances;
//! - one index per service that moves with every write to it (instances,
//!   checks), the raft index for a service never written, never below 1;
//! - `GET /v1/status/leader`, `GET /v1/catalog/services`;
//! - the agent API for self-registration: `PUT /v1/agent/service/register`
//!   (a TTL check starts `critical`), `PUT /v1/agent/check/pass/<id>` (the
//!   check turns `critical` again when its TTL passes without another
//!   pass), `PUT /v1/agent/service/deregister/<id>`;
//! - ACLs (off by default): an unknown token gets 403 "ACL not found"; a
//!   known token that may not read a service gets an empty list flagged as
//!   filtered.
//!
//! Switches inject faults: [`FakeFailure`] (500, 429, 403, hang, truncated
//! JSON), [`FakeConsul::refuse_connections`], an index rollback
//! ([`FakeConsul::rollback_index`]), index 0
//! ([`FakeConsul::set_index_zero`]), missing leader headers and a stale
//! `LastContact`. Every request is logged ([`FakeConsul::requests`]) with
//! its token redacted. [`FakeConsulDriver`] runs the conformance suite on
//! it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance, FakeFailure};
//! let consul = FakeConsul::start().await?;
//! consul.upsert(FakeInstance::new("app", "app-1", "10.0.0.1", 4000));
//! consul.set_failure(FakeFailure::ServerError);
//! consul.set_failure(FakeFailure::None);
//! println!("{} requests so far at {}", consul.requests().len(), consul.url());
//! # Ok(()) }
//! ```

mod driver;
mod filter;
mod health_query;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

pub use driver::FakeConsulDriver;
pub use state::{
    CheckStatus, FakeAclPolicy, FakeFailure, FakeInstance, LoggedRequest, RedactedToken,
};

use state::{Acl, State};

/// What the server tasks share.
#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Bumped on every change, waking held blocking queries.
    changes: watch::Sender<u64>,
}

impl Inner {
    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[derive(Debug, Default)]
struct Tasks {
    accept: Option<JoinHandle<()>>,
    connections: Vec<AbortHandle>,
}

/// A fake Consul agent on `127.0.0.1:<ephemeral port>`. Dropping it stops
/// the server and closes every connection.
#[derive(Debug)]
pub struct FakeConsul {
    inner: Arc<Inner>,
    addr: SocketAddr,
    tasks: Arc<Mutex<Tasks>>,
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Rebinding the same port after refusing connections.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn spawn_accept(
    inner: Arc<Inner>,
    listener: TcpListener,
    tasks: Arc<Mutex<Tasks>>,
) -> JoinHandle<()> {
    let tasks_for_loop = tasks.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let inner = inner.clone();
            let conn = tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| server::handle(inner.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            let mut t = tasks_for_loop
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            t.connections.retain(|c| !c.is_finished());
            t.connections.push(conn.abort_handle());
        }
    })
}

impl FakeConsul {
    /// Starts the fake on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let (changes, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changes,
        });
        let tasks = Arc::new(Mutex::new(Tasks::default()));
        let accept = spawn_accept(inner.clone(), listener, tasks.clone());
        tasks.lock().unwrap_or_else(PoisonError::into_inner).accept = Some(accept);
        Ok(Self { inner, addr, tasks })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn write(&self, service: &str, f: impl FnOnce(&mut State) -> bool) -> bool {
        let changed = self.inner.with_state(|s| {
            let changed = f(s);
            if changed {
                s.bump(service);
            }
            changed
        });
        if changed {
            self.inner.changed();
        }
        changed
    }

    /// Replaces every instance of `service` (one index bump).
    pub fn set_instances(&self, service: &str, instances: Vec<FakeInstance>) {
        self.write(service, |s| {
            let instances: Vec<FakeInstance> = instances.into_iter().map(|i| s.admit(i)).collect();
            let svc = s.services.entry(service.to_owned()).or_default();
            svc.instances = instances.into_iter().map(|i| (i.id.clone(), i)).collect();
            let kept: Vec<String> = svc.instances.keys().cloned().collect();
            s.ttl_checks
                .retain(|_, c| c.service != service || kept.contains(&c.instance));
            true
        });
    }

    /// Adds or replaces an instance (by service and id).
    pub fn upsert(&self, instance: FakeInstance) {
        let service = instance.service.clone();
        self.write(&service, |s| {
            let instance = s.admit(instance);
            s.services
                .entry(instance.service.clone())
                .or_default()
                .instances
                .insert(instance.id.clone(), instance);
            true
        });
    }

    /// Removes an instance with its checks (as an agent that lost it);
    /// `false` when there was none.
    pub fn remove(&self, service: &str, id: &str) -> bool {
        self.write(service, |s| {
            let removed = s
                .services
                .get_mut(service)
                .is_some_and(|svc| svc.instances.remove(id).is_some());
            if removed {
                s.ttl_checks
                    .retain(|_, c| !(c.service == service && c.instance == id));
            }
            removed
        })
    }

    /// Changes an instance in place; `false` when there is none.
    pub fn update(&self, service: &str, id: &str, f: impl FnOnce(&mut FakeInstance)) -> bool {
        self.write(service, |s| {
            match s
                .services
                .get_mut(service)
                .and_then(|svc| svc.instances.get_mut(id))
            {
                Some(i) => {
                    f(i);
                    true
                }
                None => false,
            }
        })
    }

    /// Sets every service check of an instance.
    pub fn set_check_status(&self, service: &str, id: &str, status: CheckStatus) -> bool {
        self.update(service, id, |i| {
            for s in i.checks.values_mut() {
                *s = status;
            }
        })
    }

    /// The instances of `service`, by id.
    pub fn instances(&self, service: &str) -> Vec<FakeInstance> {
        self.inner.with_state(|s| {
            s.services
                .get(service)
                .map(|svc| svc.instances.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// A write that changes nothing the query returns (an unrelated field):
    /// the index moves, the content does not.
    pub fn touch(&self, service: &str) {
        self.write(service, |_| true);
    }

    /// The `X-Consul-Index` a health query for `service` gets now.
    pub fn index(&self, service: &str) -> u64 {
        self.inner.with_state(|s| s.service_index(service))
    }

    /// Moves the index of `service` (and the raft index) back to `to`, as
    /// a restore from a snapshot does. Held queries see it when their
    /// `wait` ends; the next write moves on from `to`.
    pub fn rollback_index(&self, service: &str, to: u64) {
        self.inner.with_state(|s| {
            s.index = to;
            s.services.entry(service.to_owned()).or_default().index = to;
        });
        self.inner.changed();
    }

    /// Answers every request this way until changed back to
    /// [`FakeFailure::None`].
    pub fn set_failure(&self, failure: FakeFailure) {
        self.inner.with_state(|s| s.failure = failure);
        self.inner.changed();
    }

    /// Reports `X-Consul-Index: 0` while on (the real index still moves and
    /// blocking still compares against it).
    pub fn set_index_zero(&self, on: bool) {
        self.inner.with_state(|s| s.index_zero = on);
        self.inner.changed();
    }

    /// Sends `X-Consul-KnownLeader` / `X-Consul-LastContact` (on by
    /// default; off like the streaming backend).
    pub fn set_leader_headers(&self, on: bool) {
        self.inner.with_state(|s| s.leader_headers = on);
    }

    /// The `X-Consul-LastContact` reported (0 by default).
    pub fn set_last_contact(&self, last_contact: Duration) {
        self.inner.with_state(|s| s.last_contact = last_contact);
    }

    /// The leader `/v1/status/leader` reports; empty: no leader.
    pub fn set_leader(&self, leader: &str) {
        self.inner.with_state(|s| s.leader = leader.to_owned());
    }

    /// Turns ACLs on with the anonymous token's policy.
    pub fn enable_acl(&self, anonymous: FakeAclPolicy) {
        self.inner.with_state(|s| {
            s.acl = Some(Acl {
                anonymous,
                tokens: Default::default(),
            });
        });
    }

    /// Adds or replaces a token (ACLs must be on).
    pub fn set_token(&self, token: &str, policy: FakeAclPolicy) {
        self.inner.with_state(|s| {
            if let Some(acl) = &mut s.acl {
                acl.tokens.insert(token.to_owned(), policy);
            }
        });
    }

    /// Deletes a token: its requests get 403 "ACL not found".
    pub fn delete_token(&self, token: &str) {
        self.inner.with_state(|s| {
            if let Some(acl) = &mut s.acl {
                acl.tokens.remove(token);
            }
        });
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.inner.with_state(|s| s.log.clone())
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.inner.with_state(|s| s.log.clear());
    }

    /// While on, the port is closed (connections are refused) and every
    /// open connection is closed; off listens on the same port again.
    pub fn refuse_connections(&self, on: bool) -> std::io::Result<()> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if on {
            if let Some(accept) = tasks.accept.take() {
                accept.abort();
            }
            for conn in tasks.connections.drain(..) {
                conn.abort();
            }
        } else if tasks.accept.is_none() {
            let listener = bind(self.addr)?;
            tasks.accept = Some(spawn_accept(
                self.inner.clone(),
                listener,
                self.tasks.clone(),
            ));
        }
        Ok(())
    }
}

impl Drop for FakeConsul {
    fn drop(&mut self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(accept) = tasks.accept.take() {
            accept.abort();
        }
        for conn in tasks.connections.drain(..) {
            conn.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Instant;

    /// One raw HTTP/1.1 request on a fresh connection; returns the answer.
    async fn raw(addr: SocketAddr, target: &str, headers: &str) -> String {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: consul\r\nConnection: close\r\n{headers}\r\n");
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
            s.write_all(request.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap_or_else(|e| panic!("{e}"));
            out
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_queries_hold_until_change_or_wait() {
        let consul = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
        consul.upsert(FakeInstance::new("app", "a1", "10.0.0.1", 1));
        let index = consul.index("app");

        // No change: held for wait (+ at most wait/16).
        let t = Instant::now();
        let answer = raw(
            consul.addr(),
            &format!("/v1/health/service/app?index={index}&wait=400ms"),
            "",
        )
        .await;
        let held = t.elapsed();
        assert!(held >= Duration::from_millis(400), "{held:?}");
        assert!(held < Duration::from_millis(400 + 25 + 300), "{held:?}");
        // hyper writes header names in lower case.
        assert!(
            answer.contains(&format!("x-consul-index: {index}")),
            "{answer}"
        );

        // A change releases the held query at once with the new index.
        let addr = consul.addr();
        let held = tokio::spawn(async move {
            let t = Instant::now();
            let a = raw(
                addr,
                &format!("/v1/health/service/app?index={index}&wait=10s"),
                "",
            )
            .await;
            (t.elapsed(), a)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        consul.upsert(FakeInstance::new("app", "a2", "10.0.0.2", 2));
        let (took, answer) = held.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(answer.contains("\"a2\""), "{answer}");

        // Bad parameters are Consul's 400s.
        let a = raw(consul.addr(), "/v1/health/service/app?stale&consistent", "").await;
        assert!(a.starts_with("HTTP/1.1 400"), "{a}");
        let a = raw(consul.addr(), "/v1/health/service/app?index=1&wait=4", "").await;
        assert!(
            a.starts_with("HTTP/1.1 400") && a.contains("Invalid wait time"),
            "{a}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_request_log_never_shows_tokens() {
        let consul = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
        raw(consul.addr(), "/v1/status/leader?token=query-secret-1", "").await;
        raw(
            consul.addr(),
            "/v1/status/leader",
            "X-Consul-Token: header-secret-2\r\n",
        )
        .await;
        raw(
            consul.addr(),
            "/v1/status/leader",
            "Authorization: Bearer bearer-secret-3\r\n",
        )
        .await;
        let log = consul.requests();
        assert_eq!(log.len(), 3);
        assert!(
            log[1]
                .token
                .as_ref()
                .is_some_and(|t| t.matches("header-secret-2"))
        );
        assert!(
            log[2]
                .token
                .as_ref()
                .is_some_and(|t| t.matches("bearer-secret-3"))
        );
        let printed = format!("{log:?}");
        assert!(
            !printed.contains("secret-1")
                && !printed.contains("secret-2")
                && !printed.contains("secret-3"),
            "{printed}"
        );
    }
}
