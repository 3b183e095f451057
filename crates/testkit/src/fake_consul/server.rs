//! The fake's HTTP side: routing and Consul's answer semantics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Inner;
use super::health_query::health;
use super::state::{
    FakeAclPolicy, FakeFailure, FakeInstance, LoggedRequest, RedactedToken, TtlCheck,
};

pub(super) type Answer = Response<Full<Bytes>>;

pub(super) fn text(status: StatusCode, body: &str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json_answer(value: &Value) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Percent-decoding of a query component (`+` is a space).
fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-decoding of a path (`+` stays).
fn decode_path(s: &str) -> String {
    decode_component(&s.replace('+', "%2B"))
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode_component(k), decode_component(v)),
            None => (decode_component(pair), String::new()),
        })
        .collect()
}

/// Go's `time.ParseDuration` for the forms Consul users send.
pub(super) fn parse_go_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    Some(Duration::from_secs_f64(total))
}

pub(super) fn param<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(super) fn flag(query: &[(String, String)], key: &str) -> bool {
    match param(query, key) {
        None => false,
        Some(v) => !matches!(v, "false" | "0" | "f" | "F" | "FALSE" | "False"),
    }
}

/// The token of an `Authorization: Bearer <token>` header, read as Consul
/// reads it: the scheme without case, the first word after it.
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, value) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    value.split(' ').find(|word| !word.is_empty())
}

pub(super) async fn handle(
    inner: Arc<Inner>,
    request: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let method = request.method().clone();
    let path = decode_path(request.uri().path());
    let query = parse_query(request.uri().query());
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let token = header("X-Consul-Token")
        .or_else(|| header("Authorization").and_then(bearer))
        .map(str::to_owned)
        .or_else(|| param(&query, "token").map(str::to_owned));
    let slot = inner.with_state(|s| {
        s.log.push(LoggedRequest {
            received: Instant::now(),
            method: method.to_string(),
            path: path.clone(),
            // `?token=` is a secret too: the log keeps it redacted only.
            query: query
                .iter()
                .map(|(k, v)| {
                    let v = if k == "token" {
                        "[redacted]"
                    } else {
                        v.as_str()
                    };
                    (k.clone(), v.to_owned())
                })
                .collect(),
            token: token.as_deref().map(RedactedToken::new),
            status: None,
        });
        s.log.len() - 1
    });
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let answer = route(&inner, &method, &path, &query, token.as_deref(), &body).await;
    inner.with_state(|s| {
        if let Some(entry) = s.log.get_mut(slot) {
            entry.status = Some(answer.status().as_u16());
        }
    });
    Ok(answer)
}

async fn route(
    inner: &Arc<Inner>,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    token: Option<&str>,
    body: &Bytes,
) -> Answer {
    if let Some(answer) = switched_on_failure(inner).await {
        return answer;
    }
    let Ok(policy) = inner.with_state(|s| s.policy(token)) else {
        return text(StatusCode::FORBIDDEN, "ACL not found");
    };
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(4, '/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["v1", "status", "leader"]) => {
            json_answer(&Value::String(inner.with_state(|s| s.leader.clone())))
        }
        (&Method::GET, ["v1", "catalog", "services"]) => catalog_services(inner, query, &policy),
        (&Method::GET, ["v1", "health", "service", service]) => {
            health(inner, service, query, policy.may_read(service)).await
        }
        (&Method::PUT, ["v1", "agent", "service", rest]) => {
            if !policy.agent_write {
                return text(StatusCode::FORBIDDEN, "Permission denied");
            }
            if *rest == "register" {
                register(inner, body)
            } else if let Some(id) = rest.strip_prefix("deregister/") {
                deregister(inner, id)
            } else {
                text(StatusCode::NOT_FOUND, "404 page not found")
            }
        }
        (&Method::PUT, ["v1", "agent", "check", rest]) => {
            if !policy.agent_write {
                return text(StatusCode::FORBIDDEN, "Permission denied");
            }
            match rest.strip_prefix("pass/") {
                Some(check) => pass(inner, check),
                None => text(StatusCode::NOT_FOUND, "404 page not found"),
            }
        }
        (_, ["v1", ..]) if method != Method::GET && method != Method::PUT => text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed"),
        ),
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// The answer of a switched-on failure, which every route gives alike
/// (`Hang` holds until the failure changes); `None` without one.
async fn switched_on_failure(inner: &Arc<Inner>) -> Option<Answer> {
    loop {
        let failure = inner.with_state(|s| s.failure);
        match failure {
            FakeFailure::ServerError => {
                return Some(text(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader"));
            }
            FakeFailure::TooManyRequests => {
                return Some(text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Your IP is issuing too many concurrent connections, please rate limit your calls\n",
                ));
            }
            FakeFailure::Forbidden => {
                return Some(text(StatusCode::FORBIDDEN, "Permission denied"));
            }
            FakeFailure::Hang => {
                let mut changes = inner.changes.subscribe();
                changes.borrow_and_update();
                if inner.with_state(|s| s.failure) == FakeFailure::Hang {
                    let _ = changes.changed().await;
                }
            }
            FakeFailure::None | FakeFailure::TruncatedJson => return None,
        }
    }
}

/// `/v1/catalog/services`: the services this token may read, with their
/// tags.
fn catalog_services(
    inner: &Arc<Inner>,
    query: &[(String, String)],
    policy: &FakeAclPolicy,
) -> Answer {
    if let Some(dc) = param(query, "dc").filter(|dc| *dc != "dc1") {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("No path to datacenter {dc:?}"),
        );
    }
    let services = inner.with_state(|s| {
        let mut map = serde_json::Map::new();
        for (name, svc) in &s.services {
            if svc.instances.is_empty() || !policy.may_read(name) {
                continue;
            }
            let mut tags: Vec<String> = svc
                .instances
                .values()
                .flat_map(|i| i.tags.iter().cloned())
                .collect();
            tags.sort();
            tags.dedup();
            map.insert(name.clone(), json!(tags));
        }
        Value::Object(map)
    });
    json_answer(&services)
}

fn register(inner: &Arc<Inner>, body: &Bytes) -> Answer {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return text(StatusCode::BAD_REQUEST, "Request decode failed");
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let name = s("Name");
    if name.is_empty() {
        return text(StatusCode::BAD_REQUEST, "Missing service name");
    }
    let id = Some(s("ID"))
        .filter(|i| !i.is_empty())
        .unwrap_or(name.clone());
    let port = v.get("Port").and_then(Value::as_u64).unwrap_or(0);
    let Ok(port) = u16::try_from(port) else {
        return text(StatusCode::BAD_REQUEST, "Invalid port");
    };
    let mut instance =
        FakeInstance::new(&name, &id, &s("Address"), port).with_node("fake-agent", "127.0.0.1");
    instance.checks.clear();
    if let Some(tags) = v.get("Tags").and_then(Value::as_array) {
        instance.tags = tags
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(meta) = v.get("Meta").and_then(Value::as_object) {
        for (k, val) in meta {
            if let Some(val) = val.as_str() {
                instance.meta.insert(k.clone(), val.to_owned());
            }
        }
    }
    let mut ttl_check = None;
    if let Some(check) = v.get("Check").filter(|c| c.is_object()) {
        let check_id = check
            .get("CheckID")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map_or_else(|| format!("service:{id}"), str::to_owned);
        let ttl = check
            .get("TTL")
            .and_then(Value::as_str)
            .and_then(parse_go_duration);
        let status = match check.get("Status").and_then(Value::as_str) {
            Some("passing") => super::CheckStatus::Passing,
            Some("warning") => super::CheckStatus::Warning,
            // Consul starts a TTL check critical unless told otherwise.
            _ => super::CheckStatus::Critical,
        };
        instance.checks.insert(check_id.clone(), status);
        if let Some(ttl) = ttl {
            ttl_check = Some((check_id, ttl));
        }
    }
    inner.with_state(|st| {
        if let Some((check_id, ttl)) = ttl_check {
            st.ttl_checks.insert(
                check_id,
                TtlCheck {
                    service: name.clone(),
                    instance: id.clone(),
                    ttl,
                    generation: 0,
                },
            );
        }
        let instance = st.admit(instance);
        st.services
            .entry(name.clone())
            .or_default()
            .instances
            .insert(id.clone(), instance);
        st.bump(&name);
    });
    inner.changed();
    text(StatusCode::OK, "")
}

fn deregister(inner: &Arc<Inner>, id: &str) -> Answer {
    let found = inner.with_state(|st| {
        let service = st
            .services
            .iter()
            .find(|(_, svc)| svc.instances.contains_key(id))
            .map(|(name, _)| name.clone());
        match service {
            Some(name) => {
                if let Some(svc) = st.services.get_mut(&name) {
                    svc.instances.remove(id);
                }
                st.ttl_checks.retain(|_, c| c.instance != id);
                st.bump(&name);
                true
            }
            None => false,
        }
    });
    if !found {
        return text(
            StatusCode::NOT_FOUND,
            &format!(
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            ),
        );
    }
    inner.changed();
    text(StatusCode::OK, "")
}

fn pass(inner: &Arc<Inner>, check_id: &str) -> Answer {
    let armed = inner.with_state(|st| {
        let check = st.ttl_checks.get_mut(check_id)?;
        check.generation += 1;
        let (service, instance, ttl, generation) = (
            check.service.clone(),
            check.instance.clone(),
            check.ttl,
            check.generation,
        );
        let changed = st
            .services
            .get_mut(&service)
            .and_then(|s| s.instances.get_mut(&instance))
            .and_then(|i| i.checks.get_mut(check_id))
            .map(|status| std::mem::replace(status, super::CheckStatus::Passing))
            .is_some_and(|old| old != super::CheckStatus::Passing);
        if changed {
            st.bump(&service);
        }
        Some((ttl, generation, changed))
    });
    let Some((ttl, generation, changed)) = armed else {
        return text(
            StatusCode::NOT_FOUND,
            &format!(
                "Unknown check ID {check_id:?}. Ensure that the check ID is passed, not the check name."
            ),
        );
    };
    if changed {
        inner.changed();
    }
    // The TTL expires unless passed again in time.
    let inner2 = inner.clone();
    let check_id = check_id.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(ttl).await;
        let expired = inner2.with_state(|st| {
            let check = st.ttl_checks.get(&check_id)?;
            if check.generation != generation {
                return None;
            }
            let service = check.service.clone();
            let instance = check.instance.clone();
            let status = st
                .services
                .get_mut(&service)?
                .instances
                .get_mut(&instance)?
                .checks
                .get_mut(&check_id)?;
            *status = super::CheckStatus::Critical;
            st.bump(&service);
            Some(())
        });
        if expired.is_some() {
            inner2.changed();
        }
    });
    text(StatusCode::OK, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("4s"), Some(Duration::from_secs(4)));
        assert_eq!(
            parse_go_duration("1500ms"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("4"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn bearer_tokens_read_as_consul_reads_them() {
        assert_eq!(bearer("Bearer t1"), Some("t1"));
        assert_eq!(bearer("bearer  t2 extra"), Some("t2"));
        assert_eq!(bearer("Basic dTpw"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearert3"), None);
    }

    #[test]
    fn queries_decode() {
        let q = parse_query(Some("passing&tag=a+b&filter=x%20%3D%3D%20%22y%22"));
        assert_eq!(q[0], ("passing".into(), String::new()));
        assert_eq!(q[1], ("tag".into(), "a b".into()));
        assert_eq!(q[2], ("filter".into(), "x == \"y\"".into()));
        assert_eq!(
            decode_path("/v1/health/service/my%20app"),
            "/v1/health/service/my app"
        );
    }
}
