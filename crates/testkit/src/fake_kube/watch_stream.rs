//! The fake API server's watch: where a watch starts (the requested
//! resource version, or the current state), and the task that feeds it
//! changes, bookmarks and the end.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until};

use super::server::{Body, selector, status_body, status_response, with_type};
use super::{ObjectKind, Shared, State};
use crate::fake_kube::LabelSelector;

/// A watch without `timeoutSeconds` is held this long (the API server picks
/// 30–60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn gone_event(rv: u64, compacted: u64) -> Value {
    json!({
        "type": "ERROR",
        "object": status_body(410, "Expired", &format!("too old resource version: {rv} ({compacted})")),
    })
}

/// The events after `after` a watch of `kind` in `ns` with `selector` must
/// see, and the resource version reached.
fn events_since(
    state: &State,
    kind: ObjectKind,
    ns: &str,
    selector: &LabelSelector,
    after: u64,
) -> (Vec<Value>, u64) {
    let start = state.history.partition_point(|c| c.rv <= after);
    let mut out = Vec::new();
    for change in state.history.iter().skip(start) {
        if change.kind != kind || change.namespace != ns {
            continue;
        }
        let was = change.old.as_ref().is_some_and(|o| selector.matches(o));
        let is = change.new.as_ref().is_some_and(|o| selector.matches(o));
        let (kind_text, object) = match (was, is, &change.new, &change.old) {
            (true, true, Some(new), _) => ("MODIFIED", new.clone()),
            (false, true, Some(new), _) => ("ADDED", new.clone()),
            (true, false, Some(new), _) => ("DELETED", new.clone()),
            (true, false, None, Some(old)) => {
                let mut old = old.clone();
                if let Some(meta) = old.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), json!(change.rv.to_string()));
                }
                ("DELETED", old)
            }
            _ => continue,
        };
        out.push(json!({"type": kind_text, "object": with_type(kind, object)}));
    }
    (out, state.rv)
}

/// A watch of `kind` in `ns`: the events since the requested resource
/// version (or synthetic `ADDED` events for the current state), then every
/// change as it happens, bookmarks if asked for, until the timeout.
pub(super) fn watch(
    shared: &Arc<Shared>,
    state: &mut State,
    kind: ObjectKind,
    ns: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let selector = match selector(query) {
        Ok(s) => s,
        Err(e) => return status_response(400, "BadRequest", &e),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let requested = query.get("resourceVersion").cloned().unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let body = BodyExt::boxed(StreamBody::new(frames));
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if state.switches.close_watches {
        drop(tx);
        return response;
    }
    let (after, initial) = match start(state, kind, ns, &selector, &requested) {
        Start::From(after, initial) => (after, initial),
        Start::Gone(initial) => {
            let lines: Vec<Bytes> = initial.iter().map(line).collect();
            tokio::spawn(async move {
                for l in lines {
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
            });
            return response;
        }
        Start::Refused(refusal) => return refusal,
    };
    state.open_watches += 1;
    let feed = Feed {
        id: state.next_watch_id,
        generation: state.kill_gen,
        kind,
        ns: ns.to_string(),
        selector,
        bookmarks,
        deadline: Instant::now() + timeout,
        last: after,
        pending: initial.iter().map(line).collect(),
    };
    state.next_watch_id += 1;
    tokio::spawn(feed.run(shared.clone(), tx));
    response
}

/// Where a watch starts.
enum Start {
    /// After this resource version, with these events first.
    From(u64, Vec<Value>),
    /// The version is compacted away: these events (the `410` one), then
    /// the end.
    Gone(Vec<Value>),
    /// Refused with this answer.
    Refused(Response<Body>),
}

/// Where a watch from `requested` starts.
fn start(
    state: &State,
    kind: ObjectKind,
    ns: &str,
    selector: &LabelSelector,
    requested: &str,
) -> Start {
    match requested {
        "" | "0" => {
            // Synthetic ADDED events for the current state.
            let mut initial = Vec::new();
            for ((k, n, _), o) in &state.objects {
                if *k == kind && n == ns && selector.matches(o) {
                    initial.push(json!({"type": "ADDED", "object": with_type(kind, o.clone())}));
                }
            }
            Start::From(state.rv, initial)
        }
        text => match text.parse::<u64>() {
            Ok(rv) if rv < state.compacted => {
                if state.switches.gone_http {
                    return Start::Refused(status_response(
                        410,
                        "Expired",
                        &format!("too old resource version: {rv} ({})", state.compacted),
                    ));
                }
                Start::Gone(vec![gone_event(rv, state.compacted)])
            }
            Ok(rv) => Start::From(rv, Vec::new()),
            Err(_) => Start::Refused(status_response(
                400,
                "BadRequest",
                &format!("invalid resourceVersion {text:?}"),
            )),
        },
    }
}

/// One open watch's task: what it has sent up to, and what it still owes.
struct Feed {
    id: u64,
    /// The kill generation it was opened in: a kill ends it.
    generation: u64,
    kind: ObjectKind,
    ns: String,
    selector: LabelSelector,
    bookmarks: bool,
    deadline: Instant,
    last: u64,
    pending: Vec<Bytes>,
}

impl Feed {
    async fn run(mut self, shared: Arc<Shared>, tx: tokio::sync::mpsc::Sender<Bytes>) {
        let mut poke = shared.poke.subscribe();
        let mut next_bookmark = Instant::now() + shared.bookmark_interval;
        let mut bookmark_due = false;
        'outer: loop {
            let (end, stuck) = self.collect(&shared, &mut bookmark_due);
            for l in self.pending.drain(..) {
                if tx.send(l).await.is_err() {
                    break 'outer;
                }
            }
            if end {
                break;
            }
            tokio::select! {
                changed = poke.changed() => if changed.is_err() { break; },
                () = sleep_until(self.deadline), if !stuck => break,
                () = sleep_until(next_bookmark) => {
                    bookmark_due = true;
                    next_bookmark = Instant::now() + shared.bookmark_interval;
                }
                () = tx.closed() => break,
            }
        }
        shared.lock().open_watches -= 1;
    }

    /// Queues what the watch owes now: the `410` event after a kill that
    /// says so, else the events since the last one sent and a due bookmark
    /// (none while stalled or stuck: the bookmark stays due). Returns
    /// whether the watch ends, and whether it is stuck.
    fn collect(&mut self, shared: &Shared, bookmark_due: &mut bool) -> (bool, bool) {
        let state = shared.lock();
        let stuck = self.id < state.stuck_below;
        if state.kill_gen != self.generation {
            if state.kill_gone {
                self.pending
                    .push(line(&gone_event(self.last, state.compacted)));
            }
            return (true, stuck);
        }
        if state.switches.stall || stuck {
            return (false, stuck);
        }
        let (events, reached) =
            events_since(&state, self.kind, &self.ns, &self.selector, self.last);
        self.pending.extend(events.iter().map(line));
        self.last = reached;
        if *bookmark_due && self.bookmarks {
            self.pending.push(line(&json!({
                "type": "BOOKMARK",
                "object": {
                    "kind": self.kind.kind(),
                    "apiVersion": self.kind.api_version(),
                    "metadata": {"resourceVersion": self.last.to_string()},
                },
            })));
        }
        *bookmark_due = false;
        (false, stuck)
    }
}
