//! The HTTP side of the fake API server: routing, list, watch, version and
//! access reviews, and the switches.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::watch_stream::watch;
use super::{Continue, ObjectKind, RequestKind, RequestRecord, Shared, State};
use crate::fake_kube::LabelSelector;

pub(super) type Body = BoxBody<Bytes, Infallible>;

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if shared.lock().switches.refuse {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn_shared = shared.clone();
        let task = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = conn_shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let mut state = shared.lock();
        state.connections.retain(|c| !c.is_finished());
        state.connections.push(task.abort_handle());
    }
}

pub(super) fn full(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

pub(super) fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

pub(super) fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = full(status, status_body(code, reason, message));
    if code == 429 {
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("1"),
        );
    }
    response
}

fn reason_of(code: u16) -> &'static str {
    match code {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        410 => "Expired",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

enum Route {
    Resource(ObjectKind, String),
    Version,
    AccessReview,
    Other,
}

fn route(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["version"]) => Route::Version,
        (
            &Method::POST,
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => Route::AccessReview,
        (&Method::GET, ["api", "v1", "namespaces", ns, "pods"]) => {
            Route::Resource(ObjectKind::Pod, (*ns).to_string())
        }
        (
            &Method::GET,
            [
                "apis",
                "discovery.k8s.io",
                "v1",
                "namespaces",
                ns,
                "endpointslices",
            ],
        ) => Route::Resource(ObjectKind::EndpointSlice, (*ns).to_string()),
        _ => Route::Other,
    }
}

async fn wait_unstalled(shared: &Shared) {
    let mut poke = shared.poke.subscribe();
    loop {
        if !shared.lock().switches.stall {
            return;
        }
        if poke.changed().await.is_err() {
            return;
        }
    }
}

fn forbidden_message(kind: ObjectKind, verb: &str, namespace: &str) -> String {
    format!(
        "{} is forbidden: User \"system:serviceaccount:test:fake\" cannot {verb} resource \"{}\" in API group \"{}\" in the namespace \"{namespace}\"",
        kind.plural(),
        kind.plural(),
        kind.group()
    )
}

/// What a request asks for, as the request log records it.
fn request_kind(route: &Route, query: &BTreeMap<String, String>) -> RequestKind {
    match route {
        Route::Resource(k, _) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            RequestKind::Watch(*k)
        }
        Route::Resource(k, _) if query.get("continue").is_some_and(|c| !c.is_empty()) => {
            RequestKind::ListPage(*k)
        }
        Route::Resource(k, _) => RequestKind::List(*k),
        Route::Version => RequestKind::Version,
        Route::AccessReview => RequestKind::AccessReview,
        Route::Other => RequestKind::Other,
    }
}

/// `GET /version`.
fn version() -> Response<Body> {
    full(
        StatusCode::OK,
        json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
            "compiler": "gc", "platform": "linux/amd64",
        }),
    )
}

/// The answer to every watch while the `watch_status` switch is on.
fn watch_status_response(code: u16) -> Response<Body> {
    let message = if code == 410 {
        "too old resource version".to_string()
    } else {
        format!("the fake API server answers watches {code}")
    };
    status_response(code, reason_of(code), &message)
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let query = parse_query(req.uri().query());
    let method = req.method().to_string();
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = req.uri().path().to_string();
    let route = route(req.method(), req.uri().path());
    let kind = request_kind(&route, &query);
    wait_unstalled(&shared).await;
    let body = match route {
        Route::AccessReview => req.into_body().collect().await.ok().map(|b| b.to_bytes()),
        _ => None,
    };
    let mut state = shared.lock();
    let answer = |state: &mut State, response: Response<Body>| {
        let status = response.status().as_u16();
        state.log.push(RequestRecord {
            at: shared.started.elapsed(),
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            kind,
            status,
            authorization: authorization.clone(),
        });
        response
    };
    if let Some(code) = state.switches.status {
        let message = format!("the fake API server answers {code}");
        let response = status_response(code, reason_of(code), &message);
        return answer(&mut state, response);
    }
    let response = match (&route, kind) {
        (Route::Version, _) => version(),
        (Route::AccessReview, _) if state.switches.reviews_forbidden => status_response(
            403,
            "Forbidden",
            "selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"system:serviceaccount:test:fake\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope",
        ),
        (Route::AccessReview, _) => access_review(&state, body),
        (Route::Other, _) => status_response(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
        (Route::Resource(k, ns), _) if state.switches.not_found => status_response(
            404,
            "NotFound",
            &format!(
                "the server could not find the requested resource ({} in {ns})",
                k.plural()
            ),
        ),
        (Route::Resource(_, _), RequestKind::Watch(_)) if state.switches.watch_status.is_some() => {
            watch_status_response(state.switches.watch_status.unwrap_or(500))
        }
        (Route::Resource(k, ns), RequestKind::Watch(_)) => {
            if state.switches.denied.contains(&(*k, "watch".to_string())) {
                status_response(403, "Forbidden", &forbidden_message(*k, "watch", ns))
            } else {
                let response = watch(&shared, &mut state, *k, ns, &query);
                return answer(&mut state, response);
            }
        }
        (Route::Resource(k, ns), _) => {
            if state.switches.denied.contains(&(*k, "list".to_string())) {
                status_response(403, "Forbidden", &forbidden_message(*k, "list", ns))
            } else {
                list(&mut state, *k, ns, &query)
            }
        }
    };
    answer(&mut state, response)
}

fn access_review(state: &State, body: Option<Bytes>) -> Response<Body> {
    let Some(review) = body.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
        return status_response(400, "BadRequest", "cannot decode the review");
    };
    let attrs = review
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(Value::Null);
    let text = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let resource = text("resource");
    let verb = text("verb");
    let kind = match resource.as_str() {
        "pods" => Some(ObjectKind::Pod),
        "endpointslices" => Some(ObjectKind::EndpointSlice),
        _ => None,
    };
    let allowed = kind.is_some_and(|k| !state.switches.denied.contains(&(k, verb.clone())));
    let mut status = json!({"allowed": allowed});
    if !allowed {
        status["reason"] = json!(format!("no RBAC rule allows {verb} on {resource}"));
    }
    full(
        StatusCode::CREATED,
        json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": review.get("spec").cloned().unwrap_or(json!({})),
            "status": status,
        }),
    )
}

pub(super) fn selector(query: &BTreeMap<String, String>) -> Result<LabelSelector, String> {
    LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
}

pub(super) fn with_type(kind: ObjectKind, mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), json!(kind.api_version()));
        map.insert("kind".into(), json!(kind.kind()));
    }
    object
}

fn list(
    state: &mut State,
    kind: ObjectKind,
    ns: &str,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let selector = match selector(query) {
        Ok(s) => s,
        Err(e) => return status_response(400, "BadRequest", &e),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let (rv, mut items) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => match state.continues.remove(token) {
            Some(c) if c.rv > state.compacted => (c.rv, c.remaining),
            _ => {
                return status_response(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                );
            }
        },
        None => {
            let items: VecDeque<Value> = state
                .objects
                .iter()
                .filter(|((k, n, _), o)| *k == kind && n == ns && selector.matches(o))
                .map(|(_, o)| o.clone())
                .collect();
            (state.rv, items)
        }
    };
    let page: Vec<Value> = match limit {
        Some(limit) if items.len() > limit => items.drain(..limit).collect(),
        _ => items.drain(..).collect(),
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if !items.is_empty() {
        state.next_continue += 1;
        let token = format!("c{}-{rv}", state.next_continue);
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(items.len());
        state.continues.insert(
            token,
            Continue {
                rv,
                remaining: items,
            },
        );
    }
    // The API server writes `kind`, `apiVersion`, `metadata`, then `items`
    // (a JSON object map here would sort the keys).
    let body = format!(
        r#"{{"kind":"{}List","apiVersion":"{}","metadata":{},"items":{}}}"#,
        kind.kind(),
        kind.api_version(),
        metadata,
        Value::Array(page),
    );
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
