//! The fake's `/v1/health/service/<name>` endpoint: the query's parameters
//! checked as Consul checks them, the blocking wait on the service index,
//! the entries that pass the filters, and the answer with Consul's headers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until};

use super::Inner;
use super::filter::Filter;
use super::server::{Answer, flag, param, parse_go_duration, text};
use super::state::{FakeFailure, FakeInstance};

/// Consul's cap on `wait`, and its default when `index` comes without one.
const MAX_WAIT: Duration = Duration::from_secs(600);
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// The parameters of one health query.
struct HealthQuery {
    stale: bool,
    consistent: bool,
    index: u64,
    wait: Duration,
    filter: Option<Filter>,
    passing: bool,
    /// Lower-cased: Consul matches tags without case.
    tags: Vec<String>,
}

impl HealthQuery {
    /// Reads the query, refused as Consul refuses it.
    fn parse(query: &[(String, String)]) -> Result<Self, Box<Answer>> {
        let stale = param(query, "stale").is_some();
        let consistent = param(query, "consistent").is_some();
        if stale && consistent {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        if let Some(dc) = param(query, "dc").filter(|dc| *dc != "dc1") {
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("No path to datacenter {dc:?}"),
            ));
        }
        let index = match param(query, "index") {
            None => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| refuse(StatusCode::BAD_REQUEST, "Invalid index"))?,
        };
        let wait = match param(query, "wait") {
            None => DEFAULT_WAIT,
            Some(v) => parse_go_duration(v)
                .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "Invalid wait time"))?
                .min(MAX_WAIT),
        };
        let filter = match param(query, "filter") {
            None => None,
            Some(f) => Some(Filter::parse(f).map_err(|e| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("Failed to create boolean expression evaluator: {e}"),
                )
            })?),
        };
        let tags = query
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.to_lowercase())
            .collect();
        Ok(Self {
            stale,
            consistent,
            index,
            wait,
            filter,
            passing: flag(query, "passing"),
            tags,
        })
    }

    fn selects(&self, instance: &FakeInstance) -> bool {
        (!self.passing || instance.all_passing())
            && self
                .tags
                .iter()
                .all(|t| instance.tags.iter().any(|x| x.to_lowercase() == *t))
            && self.filter.as_ref().is_none_or(|f| f.matches(instance))
    }

    fn consistency(&self) -> &'static str {
        if self.stale {
            "stale"
        } else if self.consistent {
            "consistent"
        } else {
            "leader"
        }
    }
}

/// A refusal of the query (boxed: an answer is large next to a query).
fn refuse(status: StatusCode, message: &str) -> Box<Answer> {
    Box::new(text(status, message))
}

/// What the state says about one answer besides its entries.
struct AnswerMeta {
    index: u64,
    leader_headers: bool,
    last_contact: Duration,
    truncate: bool,
}

pub(super) async fn health(
    inner: &Arc<Inner>,
    service: &str,
    query: &[(String, String)],
    may_read: bool,
) -> Answer {
    let query = match HealthQuery::parse(query) {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    if query.index > 0 {
        block(inner, service, query.index, query.wait).await;
    }
    let (entries, meta) = inner.with_state(|s| {
        let entries: Vec<Value> = s
            .services
            .get(service)
            .map(|svc| {
                svc.instances
                    .values()
                    .filter(|i| query.selects(i))
                    .map(entry_json)
                    .collect()
            })
            .unwrap_or_default();
        let meta = AnswerMeta {
            index: if s.index_zero {
                0
            } else {
                s.service_index(service)
            },
            leader_headers: s.leader_headers,
            last_contact: s.last_contact,
            truncate: s.failure == FakeFailure::TruncatedJson,
        };
        (entries, meta)
    });
    let filtered = !may_read && !entries.is_empty();
    let entries = if may_read { entries } else { Vec::new() };
    answer(entries, &meta, query.consistency(), filtered)
}

/// Blocking: holds while the service index has not passed `index`, up to
/// `wait` plus up to wait/16 of jitter (Consul spreads wake-ups).
async fn block(inner: &Arc<Inner>, service: &str, index: u64, wait: Duration) {
    let jitter = wait.mul_f64(rand::random::<f64>() / 16.0);
    let deadline = Instant::now() + wait + jitter;
    let mut changes = inner.changes.subscribe();
    loop {
        changes.borrow_and_update();
        if inner.with_state(|s| s.service_index(service)) > index {
            break;
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = sleep_until(deadline) => break,
        }
    }
}

/// The JSON array of `entries` with Consul's headers.
fn answer(
    entries: Vec<Value>,
    meta: &AnswerMeta,
    consistency: &'static str,
    filtered: bool,
) -> Answer {
    let mut body = Value::Array(entries).to_string().into_bytes();
    if meta.truncate {
        body.truncate(body.len() / 2);
    }
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    let value =
        |v: String| HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("0"));
    h.insert("Content-Type", HeaderValue::from_static("application/json"));
    h.insert("X-Consul-Index", value(meta.index.to_string()));
    h.insert(
        "X-Consul-Effective-Consistency",
        HeaderValue::from_static(consistency),
    );
    if meta.leader_headers {
        h.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
        h.insert(
            "X-Consul-LastContact",
            value(meta.last_contact.as_millis().to_string()),
        );
    }
    if filtered {
        h.insert(
            "X-Consul-Results-Filtered-By-ACLs",
            HeaderValue::from_static("true"),
        );
    }
    r
}

fn entry_json(i: &FakeInstance) -> Value {
    let mut checks = vec![json!({
        "Node": i.node, "CheckID": "serfHealth", "Name": "Serf Health Status",
        "Status": i.node_check.as_str(), "Notes": "", "Output": "Agent alive and reachable",
        "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
        "CreateIndex": 1, "ModifyIndex": 1
    })];
    for (id, status) in &i.checks {
        checks.push(json!({
            "Node": i.node, "CheckID": id, "Name": format!("Service '{}' check", i.service),
            "Status": status.as_str(), "Notes": "", "Output": "",
            "ServiceID": i.id, "ServiceName": i.service, "ServiceTags": i.tags, "Type": "ttl",
            "CreateIndex": 1, "ModifyIndex": 1
        }));
    }
    json!({
        "Node": {
            "ID": "", "Node": i.node, "Address": i.node_address, "Datacenter": "dc1",
            "TaggedAddresses": {"lan": i.node_address, "wan": i.node_address},
            "Meta": {"consul-network-segment": ""}, "CreateIndex": 1, "ModifyIndex": 1
        },
        "Service": {
            "ID": i.id, "Service": i.service, "Tags": i.tags, "Address": i.address,
            "Meta": i.meta, "Port": i.port, "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": false, "Proxy": {}, "Connect": {},
            "CreateIndex": i.create_index, "ModifyIndex": i.create_index
        },
        "Checks": checks
    })
}
