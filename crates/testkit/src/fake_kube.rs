//! A fake Kubernetes API server on loopback HTTP, faithful enough that the
//! unmodified kube client and kube-runtime watcher run against it.
//!
//! It serves Pods (`/api/v1/namespaces/{ns}/pods`) and EndpointSlices
//! (`/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices`):
//!
//! - **list** with `labelSelector` (server-side: `=`, `==`, `!=`, exists,
//!   `!`, `in`, `notin`), `limit` and `continue` pagination over a snapshot
//!   taken at the first page, `metadata.resourceVersion` on the list;
//! - **watch** (`watch=true&resourceVersion=N`): every change after `N` as
//!   one-line JSON events (`ADDED`, `MODIFIED`, `DELETED`; an object moving
//!   out of the selector is `DELETED`, into it `ADDED`), `BOOKMARK`s with
//!   `apiVersion` / `kind` when `allowWatchBookmarks=true`, held open until
//!   `timeoutSeconds`; an expired `N` gets an `ERROR` event with code 410
//!   inside a 200 response (or an HTTP 410, by switch);
//! - `GET /version` and `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`
//!   (answered from the fake's RBAC denials);
//! - a request log ([`FakeKube::requests`]) and switches: expire resource
//!   versions, end or refuse watches, refuse connections, go down, answer a
//!   fixed status (500 / 429 / 403 ...), deny RBAC verbs, answer 404 for the
//!   resources, stall.
//!
//! [`KubeDriver`] drives the conformance suite through it.

mod driver;
mod objects;
mod selector;
mod server;
mod watch_stream;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

pub use driver::{
    DRIVER_BLOCKED_ANNOTATION, DRIVER_PORT_NAME, DRIVER_SELECTOR, DRIVER_SERVICE, KubeDriver,
    KubeDriverMode,
};
pub use objects::{EndpointSpec, ObjectKind, PodBuilder, SliceBuilder, endpoint_slice, pod};
pub use selector::LabelSelector;

/// What a logged request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A list request without `continue` (the start of a list).
    List(ObjectKind),
    /// A list request with `continue` (a further page).
    ListPage(ObjectKind),
    /// A watch request.
    Watch(ObjectKind),
    /// `GET /version`.
    Version,
    /// `POST .../selfsubjectaccessreviews`.
    AccessReview,
    /// Anything else (answered 404).
    Other,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Time since the fake started.
    pub at: Duration,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// What it was.
    pub kind: RequestKind,
    /// The status answered (200 for watches, even when they carry an
    /// `ERROR` event).
    pub status: u16,
    /// The `Authorization` header sent, if any (the fake accepts any).
    pub authorization: Option<String>,
}

/// One stored change, for watches to replay.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) rv: u64,
    pub(crate) kind: ObjectKind,
    pub(crate) namespace: String,
    pub(crate) old: Option<Value>,
    pub(crate) new: Option<Value>,
}

/// A list in progress (`continue`).
#[derive(Debug, Clone)]
pub(crate) struct Continue {
    pub(crate) rv: u64,
    pub(crate) remaining: VecDeque<Value>,
}

/// The fault switches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Switches {
    pub(crate) status: Option<u16>,
    pub(crate) watch_status: Option<u16>,
    pub(crate) denied: BTreeSet<(ObjectKind, String)>,
    pub(crate) not_found: bool,
    pub(crate) refuse: bool,
    pub(crate) stall: bool,
    pub(crate) close_watches: bool,
    pub(crate) gone_http: bool,
    pub(crate) reviews_forbidden: bool,
}

pub(crate) struct State {
    pub(crate) rv: u64,
    pub(crate) objects: BTreeMap<(ObjectKind, String, String), Value>,
    pub(crate) history: VecDeque<Change>,
    /// Resource versions at or below this are expired.
    pub(crate) compacted: u64,
    pub(crate) continues: HashMap<String, Continue>,
    pub(crate) next_continue: u64,
    pub(crate) switches: Switches,
    pub(crate) log: Vec<RequestRecord>,
    /// Bumped to end every open watch; `kill_gone` makes them end with a
    /// 410 `ERROR` event.
    pub(crate) kill_gen: u64,
    pub(crate) kill_gone: bool,
    pub(crate) connections: Vec<AbortHandle>,
    pub(crate) open_watches: usize,
    /// Watches are numbered; those below `stuck_below` are stuck.
    pub(crate) next_watch_id: u64,
    pub(crate) stuck_below: u64,
}

/// Most changes kept for watches to replay; older ones expire (410).
const HISTORY_CAP: usize = 200_000;

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) poke: tokio::sync::watch::Sender<u64>,
    pub(crate) started: Instant,
    pub(crate) bookmark_interval: Duration,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every waiting watch and stalled request.
    pub(crate) fn wake(&self) {
        self.poke.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Builder of a [`FakeKube`].
#[derive(Debug, Clone)]
pub struct FakeKubeBuilder {
    bookmark_interval: Duration,
}

impl FakeKubeBuilder {
    /// How often open watches get a `BOOKMARK` (default 1 s; a real API
    /// server sends one about every minute).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Binds a loopback port and serves.
    pub async fn start(self) -> std::io::Result<FakeKube> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (poke, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rv: 1000,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
                continues: HashMap::new(),
                next_continue: 0,
                switches: Switches::default(),
                log: Vec::new(),
                kill_gen: 0,
                kill_gone: false,
                connections: Vec::new(),
                open_watches: 0,
                next_watch_id: 0,
                stuck_below: 0,
            }),
            poke,
            started: Instant::now(),
            bookmark_interval: self.bookmark_interval,
        });
        let accept = tokio::spawn(server::accept_loop(listener, shared.clone()));
        Ok(FakeKube {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
        })
    }
}

/// The fake API server. Dropping it stops it.
pub struct FakeKube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A set of object changes applied at once (one wake-up for the watches).
pub struct Batch<'a> {
    state: &'a mut State,
}

impl Batch<'_> {
    /// Creates or replaces an object; sets its `resourceVersion`, `uid` and
    /// `namespace`. Returns the new resource version.
    pub fn upsert(&mut self, kind: ObjectKind, namespace: &str, object: Value) -> u64 {
        upsert(self.state, kind, namespace, object)
    }

    /// Deletes an object; `false` when there was none.
    pub fn delete(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> bool {
        delete(self.state, kind, namespace, name)
    }

    /// Names of the objects of `kind` in `namespace`.
    pub fn names(&self, kind: ObjectKind, namespace: &str) -> Vec<String> {
        names(self.state, kind, namespace)
    }

    /// The stored object.
    pub fn get(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<Value> {
        self.state
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.state.rv
    }
}

fn record(state: &mut State, change: Change) {
    state.history.push_back(change);
    while state.history.len() > HISTORY_CAP {
        if let Some(old) = state.history.pop_front() {
            state.compacted = state.compacted.max(old.rv);
        }
    }
}

fn upsert(state: &mut State, kind: ObjectKind, namespace: &str, mut object: Value) -> u64 {
    state.rv += 1;
    let rv = state.rv;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let key = (kind, namespace.to_string(), name.clone());
    let old = state.objects.get(&key).cloned();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), Value::String(namespace.into()));
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let uid = old
            .as_ref()
            .and_then(|o| o.pointer("/metadata/uid").cloned())
            .unwrap_or_else(|| Value::String(format!("uid-{name}-{rv}")));
        meta.insert("uid".into(), uid);
        meta.entry("creationTimestamp")
            .or_insert_with(|| Value::String("2026-01-01T00:00:00Z".into()));
    }
    state.objects.insert(key, object.clone());
    record(
        state,
        Change {
            rv,
            kind,
            namespace: namespace.into(),
            old,
            new: Some(object),
        },
    );
    rv
}

fn delete(state: &mut State, kind: ObjectKind, namespace: &str, name: &str) -> bool {
    let Some(old) = state
        .objects
        .remove(&(kind, namespace.to_string(), name.to_string()))
    else {
        return false;
    };
    state.rv += 1;
    let rv = state.rv;
    record(
        state,
        Change {
            rv,
            kind,
            namespace: namespace.into(),
            old: Some(old),
            new: None,
        },
    );
    true
}

fn names(state: &State, kind: ObjectKind, namespace: &str) -> Vec<String> {
    state
        .objects
        .keys()
        .filter(|(k, ns, _)| *k == kind && ns == namespace)
        .map(|(_, _, name)| name.clone())
        .collect()
}

impl FakeKube {
    /// A builder with the default bookmark interval.
    pub fn builder() -> FakeKubeBuilder {
        FakeKubeBuilder {
            bookmark_interval: Duration::from_secs(1),
        }
    }

    /// Starts a fake with the defaults.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.shared.lock());
        self.shared.wake();
        out
    }

    /// Applies several changes under one lock, then wakes the watches once.
    pub fn batch<T>(&self, f: impl FnOnce(&mut Batch<'_>) -> T) -> T {
        self.change(|state| f(&mut Batch { state }))
    }

    /// Creates or replaces an object. Returns its resource version.
    pub fn upsert(&self, kind: ObjectKind, namespace: &str, object: Value) -> u64 {
        self.change(|s| upsert(s, kind, namespace, object))
    }

    /// Creates or replaces a pod.
    pub fn upsert_pod(&self, namespace: &str, pod: &PodBuilder) -> u64 {
        self.upsert(ObjectKind::Pod, namespace, pod.build())
    }

    /// Creates or replaces an EndpointSlice.
    pub fn upsert_slice(&self, namespace: &str, slice: &SliceBuilder) -> u64 {
        self.upsert(ObjectKind::EndpointSlice, namespace, slice.build())
    }

    /// Deletes an object; `false` when there was none.
    pub fn delete(&self, kind: ObjectKind, namespace: &str, name: &str) -> bool {
        self.change(|s| delete(s, kind, namespace, name))
    }

    /// The stored object.
    pub fn get(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .lock()
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Names of the stored objects of `kind` in `namespace`, sorted.
    pub fn names(&self, kind: ObjectKind, namespace: &str) -> Vec<String> {
        names(&self.shared.lock(), kind, namespace)
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    fn switch(&self, f: impl FnOnce(&mut Switches)) {
        self.change(|s| f(&mut s.switches));
    }

    /// Answers every request with `status` and a `Status` body (500, 503,
    /// 429 with `Retry-After`, 403, 401...), or normally with `None`.
    pub fn set_status(&self, status: Option<u16>) {
        self.switch(|s| s.status = status);
    }

    /// Answers every watch request (only) with `status`, e.g. an HTTP
    /// 410 forever; `None` answers normally.
    pub fn set_watch_status(&self, status: Option<u16>) {
        self.switch(|s| s.watch_status = status);
    }

    /// Denies `verb` (`list`, `watch`, ...) on the resource: 403 naming
    /// the verb, resource, group and namespace, as RBAC answers; and
    /// access reviews answer `allowed: false`.
    pub fn deny(&self, kind: ObjectKind, verb: &str) {
        self.switch(|s| {
            s.denied.insert((kind, verb.to_string()));
        });
    }

    /// Answers access reviews 403 (an identity not allowed to ask).
    pub fn set_reviews_forbidden(&self, on: bool) {
        self.switch(|s| s.reviews_forbidden = on);
    }

    /// Answers 404 for the resources (the API or resource is not served).
    pub fn set_not_found(&self, on: bool) {
        self.switch(|s| s.not_found = on);
    }

    /// Accepts connections and closes them at once, before reading.
    pub fn set_refuse(&self, on: bool) {
        self.switch(|s| s.refuse = on);
    }

    /// Holds every new request unanswered, and every open watch silent,
    /// until switched off.
    pub fn set_stall(&self, on: bool) {
        self.switch(|s| s.stall = on);
    }

    /// Answers every watch with 200 and an at once ended, empty body.
    pub fn set_close_watches(&self, on: bool) {
        self.switch(|s| s.close_watches = on);
    }

    /// Answers an expired resource version with HTTP 410 instead of an
    /// `ERROR` event inside a 200 response.
    pub fn set_gone_http(&self, on: bool) {
        self.switch(|s| s.gone_http = on);
    }

    /// Expires every resource version handed out so far (as a compaction
    /// does): resuming a watch from one, or continuing a list begun before,
    /// gets 410. Open watches end: with a 410 `ERROR` event inside their
    /// 200 response, or — after [`set_gone_http`](Self::set_gone_http) —
    /// cleanly, so that the client's re-watch gets an HTTP 410.
    pub fn expire_resource_versions(&self) {
        self.change(|s| {
            s.rv += 1;
            s.compacted = s.rv;
            s.continues.clear();
            s.kill_gen += 1;
            s.kill_gone = !s.switches.gone_http;
        });
    }

    /// Ends every open watch cleanly (as their timeout would).
    pub fn end_watches(&self) {
        self.change(|s| {
            s.kill_gen += 1;
            s.kill_gone = false;
        });
    }

    /// Makes every watch open now stuck: it stays open but delivers
    /// nothing (no events, no bookmarks) and ignores its `timeoutSeconds`,
    /// while every other request, new watches included, is answered
    /// normally — the blind spot of a healthy API server with a stuck
    /// watch. Ended by [`heal`](Self::heal), [`end_watches`](Self::end_watches)
    /// or the client giving up on the watch.
    pub fn stall_open_watches(&self) {
        self.change(|s| s.stuck_below = s.next_watch_id);
    }

    /// Clears every switch (status, denials, 404, refuse, stall, close,
    /// HTTP 410, stuck watches).
    pub fn heal(&self) {
        self.change(|s| {
            s.switches = Switches::default();
            s.stuck_below = 0;
        });
    }

    /// Number of watches currently open.
    pub fn open_watches(&self) -> usize {
        self.shared.lock().open_watches
    }

    /// Stops listening and drops every connection: clients get "connection
    /// refused" until [`up`](Self::up).
    pub fn down(&self) {
        if let Some(accept) = self
            .accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            accept.abort();
        }
        let connections = std::mem::take(&mut self.shared.lock().connections);
        for c in connections {
            c.abort();
        }
    }

    /// Listens again on the same address after [`down`](Self::down).
    pub async fn up(&self) -> std::io::Result<()> {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let accept = tokio::spawn(server::accept_loop(listener, self.shared.clone()));
        *self.accept.lock().unwrap_or_else(PoisonError::into_inner) = Some(accept);
        Ok(())
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Requests of `kind` so far.
    pub fn count(&self, kind: RequestKind) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.kind == kind)
            .count()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.down();
    }
}

#[cfg(test)]
mod tests {
    //! The fake's protocol, spoken by hand (the Kubernetes backend's tests
    //! speak it through the real kube client).

    use super::*;
    use serde_json::json;
    use std::io::{Read, Write};

    /// Sends `request` on a fresh blocking connection (off the runtime) and
    /// reads until the server closes.
    async fn exchange(addr: SocketAddr, request: String) -> std::io::Result<Vec<u8>> {
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr)?;
            stream.write_all(request.as_bytes())?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw)?;
            Ok(raw)
        })
        .await
        .unwrap()
    }

    /// `GET path` over a fresh connection: status and de-chunked body.
    async fn get(fake: &FakeKube, path: &str) -> (u16, String) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: fake\r\nConnection: close\r\n\r\n");
        let raw = exchange(fake.addr(), request).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            let mut out = String::new();
            let mut rest = body;
            while let Some((size, tail)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                if n == 0 {
                    break;
                }
                out.push_str(&tail[..n]);
                rest = &tail[n + 2..];
            }
            out
        } else {
            body.to_string()
        };
        (status, body)
    }

    fn pods(fake: &FakeKube, n: usize) {
        fake.batch(|b| {
            for i in 0..n {
                let p = pod(format!("p{i}"), format!("10.0.0.{i}")).label("app", "a");
                b.upsert(ObjectKind::Pod, "ns", p.build());
            }
            let other = pod("other", "10.0.1.1").label("app", "b");
            b.upsert(ObjectKind::Pod, "ns", other.build());
        });
    }

    const PODS: &str = "/api/v1/namespaces/ns/pods";

    #[tokio::test]
    async fn list_pages_with_continue_and_server_side_selectors() {
        let fake = FakeKube::start().await.unwrap();
        pods(&fake, 5);
        let (status, body) = get(&fake, &format!("{PODS}?labelSelector=app%3Da&limit=2")).await;
        assert_eq!(status, 200);
        assert!(
            body.starts_with(r#"{"kind":"PodList","apiVersion":"v1","metadata":"#),
            "{body}"
        );
        let page: Value = serde_json::from_str(&body).unwrap();
        let rv = page["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(rv, fake.resource_version().to_string());
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let mut token = page["metadata"]["continue"].as_str().unwrap().to_string();
        // A change between pages does not tear the list: pages come from
        // the snapshot taken at the first one.
        fake.delete(ObjectKind::Pod, "ns", "p4");
        let mut names = vec![];
        loop {
            let (_, body) = get(
                &fake,
                &format!("{PODS}?labelSelector=app%3Da&limit=2&continue={token}"),
            )
            .await;
            let page: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(page["metadata"]["resourceVersion"], json!(rv));
            names.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["metadata"]["name"].clone()),
            );
            match page["metadata"]["continue"].as_str() {
                Some(t) => token = t.to_string(),
                None => break,
            }
        }
        assert_eq!(names, [json!("p2"), json!("p3"), json!("p4")]);
        assert_eq!(fake.count(RequestKind::List(ObjectKind::Pod)), 1);
        assert_eq!(fake.count(RequestKind::ListPage(ObjectKind::Pod)), 2);
        // An expired continue token is 410.
        let (_, body) = get(&fake, &format!("{PODS}?limit=1")).await;
        let page: Value = serde_json::from_str(&body).unwrap();
        let token = page["metadata"]["continue"].as_str().unwrap().to_string();
        fake.expire_resource_versions();
        let (status, body) = get(&fake, &format!("{PODS}?limit=1&continue={token}")).await;
        assert_eq!(status, 410, "{body}");
        assert!(body.contains(r#""reason":"Expired""#), "{body}");
    }

    #[tokio::test]
    async fn watch_replays_changes_with_bookmarks_until_the_timeout() {
        let fake = FakeKube::builder()
            .bookmark_interval(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        pods(&fake, 2);
        let from = fake.resource_version();
        fake.delete(ObjectKind::Pod, "ns", "p0");
        // p1 leaves the selector: DELETED for this watch.
        fake.upsert_pod("ns", &pod("p1", "10.0.0.1").label("app", "c"));
        fake.upsert_pod("ns", &pod("p9", "10.0.0.9").label("app", "a"));
        let started = std::time::Instant::now();
        let (status, body) = get(
            &fake,
            &format!("{PODS}?watch=true&labelSelector=app%3Da&resourceVersion={from}&allowWatchBookmarks=true&timeoutSeconds=1"),
        )
        .await;
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "held until timeoutSeconds"
        );
        assert_eq!(status, 200);
        let events: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(&kinds[..3], ["DELETED", "DELETED", "ADDED"], "{body}");
        assert_eq!(events[2]["object"]["kind"], json!("Pod"));
        assert!(kinds[3..].iter().all(|k| *k == "BOOKMARK"), "{kinds:?}");
        assert!(kinds.len() >= 5, "bookmarks while open: {kinds:?}");
        assert_eq!(events[3]["object"]["apiVersion"], json!("v1"));
    }

    #[tokio::test]
    async fn expired_versions_get_410_in_stream_or_at_http_level() {
        let fake = FakeKube::start().await.unwrap();
        pods(&fake, 1);
        let old = fake.resource_version();
        fake.expire_resource_versions();
        let path = format!("{PODS}?watch=true&resourceVersion={old}&timeoutSeconds=5");
        let (status, body) = get(&fake, &path).await;
        assert_eq!(status, 200);
        let event: Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(event["type"], json!("ERROR"));
        assert_eq!(event["object"]["code"], json!(410));
        fake.set_gone_http(true);
        let (status, _) = get(&fake, &path).await;
        assert_eq!(status, 410);
        // The current version is fine.
        let now = fake.resource_version();
        fake.set_close_watches(true);
        let (status, body) = get(&fake, &format!("{PODS}?watch=true&resourceVersion={now}")).await;
        assert_eq!((status, body.as_str()), (200, ""), "closed at once");
    }

    #[tokio::test]
    async fn switches_answer_statuses_rbac_404_and_refuse() {
        let fake = FakeKube::start().await.unwrap();
        assert_eq!(get(&fake, "/version").await.0, 200);
        fake.set_status(Some(429));
        let (status, body) = get(&fake, "/version").await;
        assert_eq!(status, 429);
        assert!(body.contains("TooManyRequests"));
        fake.heal();
        fake.deny(ObjectKind::EndpointSlice, "list");
        let (status, body) = get(
            &fake,
            "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices",
        )
        .await;
        assert_eq!(status, 403);
        assert!(body.contains(r#"cannot list resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"ns\""#), "{body}");
        fake.set_not_found(true);
        assert_eq!(get(&fake, PODS).await.0, 404);
        fake.heal();
        fake.set_refuse(true);
        let read = exchange(
            fake.addr(),
            "GET /version HTTP/1.1\r\nHost: f\r\n\r\n".to_string(),
        )
        .await;
        assert!(
            read.as_ref().map_or(true, Vec::is_empty),
            "refused: {read:?}"
        );
        fake.heal();
        let log = fake.requests();
        assert!(
            log.iter()
                .any(|r| r.kind == RequestKind::Version && r.status == 429)
        );
    }
}
