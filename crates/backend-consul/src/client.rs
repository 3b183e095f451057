//! The wire protocol: a thin Consul HTTP client and the pure decoder of
//! `/v1/health/service` answers ([`decode_health`]).
//!
//! The decoder is a plain function from status, headers and body bytes to a
//! typed answer, so it is tested (and fuzzed) without a network.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use provisioning_registry::{ConsulConsistency, ConsulRegistration, ConsulWatch, SecretResolver};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use crate::config::{ConsulConfig, Credentials};
use crate::error::Error;

/// Extra time on top of a blocking query's `wait × 17/16` before the
/// request is abandoned as hung.
pub(crate) const TIMEOUT_SLACK: Duration = Duration::from_secs(1);

/// Timeout of non-blocking requests (probe, agent API).
const SHORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer read (a 100,000-instance service is about 70 MB with
/// its checks; anything larger is not a health answer).
const MAX_BODY: usize = 128 << 20;

/// Longest error message kept from a Consul error body.
const MAX_MESSAGE: usize = 200;

/// The answer metadata Consul sends in headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryMeta {
    /// `X-Consul-Index` (required): the position to block on next.
    pub index: u64,
    /// `X-Consul-KnownLeader` (optional; absent on the streaming backend).
    pub known_leader: Option<bool>,
    /// `X-Consul-LastContact` (optional): how stale the answering server is.
    pub last_contact: Option<Duration>,
    /// `X-Consul-Results-Filtered-By-ACLs: true`: the token may not see
    /// some of the results, so the list is not the whole truth.
    pub filtered_by_acls: bool,
}

/// One entry of a `/v1/health/service` answer: a service instance with its
/// node and checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct HealthEntry {
    /// The node the instance runs on.
    #[serde(rename = "Node")]
    pub node: NodeInfo,
    /// The service instance.
    #[serde(rename = "Service")]
    pub service: ServiceInfo,
    /// The node's and the instance's checks.
    #[serde(rename = "Checks", default, deserialize_with = "null_default")]
    pub checks: Vec<CheckInfo>,
}

/// The `Node` of a [`HealthEntry`] (only the fields the provider uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Node name (`Node.Node`).
    #[serde(rename = "Node")]
    pub name: String,
    /// Node address (`Node.Address`).
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Datacenter.
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
}

/// The `Service` of a [`HealthEntry`] (only the fields the provider uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// Instance id (`Service.ID`).
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service", default)]
    pub name: String,
    /// Tags (`null` is read as empty).
    #[serde(rename = "Tags", default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Instance address; empty means "the node's address".
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Service meta (`null` is read as empty).
    #[serde(rename = "Meta", default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Port.
    #[serde(rename = "Port", default)]
    pub port: u16,
}

/// One check of a [`HealthEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CheckInfo {
    /// Check id.
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    /// `passing`, `warning`, `critical` or `maintenance`.
    #[serde(rename = "Status", default)]
    pub status: String,
    /// The instance the check belongs to; empty for a node check.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A decoded `/v1/health/service` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthAnswer {
    /// Header metadata.
    pub meta: QueryMeta,
    /// The entries, in Consul's order.
    pub entries: Vec<HealthEntry>,
}

/// Why an answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Consul answered an error status; `message` is its (shortened) body.
    #[error("HTTP {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Consul's message.
        message: String,
    },
    /// A successful answer without `X-Consul-Index`.
    #[error("X-Consul-Index header missing")]
    MissingIndex,
    /// A header that cannot be parsed.
    #[error("header {name}: cannot parse {value:?}")]
    BadHeader {
        /// Header name.
        name: &'static str,
        /// Its value (shortened).
        value: String,
    },
    /// The body is not the expected JSON.
    #[error("body: {0}")]
    Body(String),
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Status { status, message } => Self::Status { status, message },
            other => Self::Malformed(other.to_string()),
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The error message of a non-2xx answer: Consul sends plain text.
fn status_error(status: u16, body: &[u8]) -> DecodeError {
    let text = String::from_utf8_lossy(body);
    let message = if text.trim().is_empty() {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_owned()
    } else {
        shorten(&text, MAX_MESSAGE)
    };
    DecodeError::Status { status, message }
}

/// Reads the blocking-query headers of a 2xx answer.
pub fn decode_meta(headers: &HeaderMap) -> Result<QueryMeta, DecodeError> {
    fn text<'h>(
        headers: &'h HeaderMap,
        name: &'static str,
    ) -> Result<Option<&'h str>, DecodeError> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim()))
                .map_err(|_| DecodeError::BadHeader {
                    name,
                    value: shorten(&String::from_utf8_lossy(v.as_bytes()), 40),
                }),
        }
    }
    let bad = |name: &'static str, value: &str| DecodeError::BadHeader {
        name,
        value: shorten(value, 40),
    };
    let index = match text(headers, "X-Consul-Index")? {
        None => return Err(DecodeError::MissingIndex),
        Some(v) => v.parse::<u64>().map_err(|_| bad("X-Consul-Index", v))?,
    };
    let known_leader = match text(headers, "X-Consul-KnownLeader")? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => return Err(bad("X-Consul-KnownLeader", v)),
    };
    let last_contact = match text(headers, "X-Consul-LastContact")? {
        None => None,
        Some(v) => Some(Duration::from_millis(
            v.parse::<u64>()
                .map_err(|_| bad("X-Consul-LastContact", v))?,
        )),
    };
    let filtered_by_acls = text(headers, "X-Consul-Results-Filtered-By-ACLs")? == Some("true");
    Ok(QueryMeta {
        index,
        known_leader,
        last_contact,
        filtered_by_acls,
    })
}

/// Decodes a `/v1/health/service` answer from its status, headers and body.
///
/// A pure function: no I/O, no panics on any input.
///
/// ```
/// use provisioning_backend_consul::decode_health;
/// use reqwest::header::{HeaderMap, HeaderValue};
/// let mut headers = HeaderMap::new();
/// headers.insert("X-Consul-Index", HeaderValue::from_static("42"));
/// let body = br#"[{"Node":{"Node":"n1","Address":"10.0.0.1"},
///                 "Service":{"ID":"app-1","Service":"app","Address":"","Port":4000},
///                 "Checks":[]}]"#;
/// let answer = decode_health(200, &headers, body)?;
/// assert_eq!(answer.meta.index, 42);
/// assert_eq!(answer.entries[0].node.address, "10.0.0.1");
/// assert!(decode_health(200, &HeaderMap::new(), body).is_err());
/// # Ok::<(), provisioning_backend_consul::DecodeError>(())
/// ```
pub fn decode_health(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HealthAnswer, DecodeError> {
    if !(200..300).contains(&status) {
        return Err(status_error(status, body));
    }
    let meta = decode_meta(headers)?;
    let entries: Vec<HealthEntry> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?;
    Ok(HealthAnswer { meta, entries })
}

/// Formats a duration the way Consul's `wait` parameter (Go's
/// `time.ParseDuration`) reads it.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis().max(1);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The URL of a health-service query. `index == 0` asks without blocking.
pub(crate) fn health_url(base: &Url, watch: &ConsulWatch, index: u64, wait: Duration) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty()
            .extend(["v1", "health", "service", watch.service.as_str()]);
    }
    {
        let mut q = url.query_pairs_mut();
        if watch.passing {
            q.append_pair("passing", "true");
        }
        if let Some(tag) = &watch.tag {
            q.append_pair("tag", tag);
        }
        if let Some(filter) = &watch.filter {
            q.append_pair("filter", filter);
        }
        if let Some(dc) = &watch.dc {
            q.append_pair("dc", dc);
        }
        if let Some(ns) = &watch.ns {
            q.append_pair("ns", ns);
        }
        match watch.consistency {
            ConsulConsistency::Stale => {
                q.append_key_only("stale");
            }
            ConsulConsistency::Consistent => {
                q.append_key_only("consistent");
            }
            _ => {}
        }
        if index > 0 {
            q.append_pair("index", &index.to_string());
            q.append_pair("wait", &go_duration(wait));
        }
    }
    url
}

fn endpoint_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// The request timeout of a blocking query: above the server's longest
/// hold (`wait × 17/16`) plus slack.
pub(crate) fn blocking_timeout(wait: Duration) -> Duration {
    wait * 17 / 16 + TIMEOUT_SLACK
}

/// Joins an error and its sources: reqwest's top-level message alone
/// ("error sending request") hides the cause ("connection refused").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// Whether a rustls error is in the chain. rustls errors travel inside
/// (possibly nested) `io::Error`s, whose `source()` skips the wrapped
/// error itself, so those are opened with `get_ref`.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    fn is_rustls(mut e: &(dyn std::error::Error + 'static)) -> bool {
        loop {
            if e.downcast_ref::<rustls::Error>().is_some() {
                return true;
            }
            match e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(inner) => e = inner,
                None => return false,
            }
        }
    }
    let mut current = Some(error);
    while let Some(e) = current {
        if is_rustls(e) {
            return true;
        }
        current = e.source();
    }
    false
}

/// A thin Consul HTTP client bound to one provider's configuration.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    config: ConsulConfig,
    secrets: SecretResolver,
    /// The endpoint in use; advanced on connection errors.
    current: AtomicUsize,
}

impl Client {
    /// Builds the HTTP client; an error names the descriptor field at fault.
    pub(crate) fn new(
        config: ConsulConfig,
        secrets: SecretResolver,
    ) -> Result<Self, (&'static str, String)> {
        if config.endpoints.is_empty() {
            return Err(("endpoints", "no endpoint to connect to".into()));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "provisioning-backend-consul/",
                env!("CARGO_PKG_VERSION")
            ))
            .danger_accept_invalid_certs(!config.tls.verify);
        if let Some(pem) = &config.tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ("tls.ca", format!("not a PEM certificate bundle: {e}")))?;
            // A bundle without certificates would silently trust nothing
            // extra; the operator meant something else.
            if certs.is_empty() {
                return Err(("tls.ca", "holds no PEM certificate".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &config.tls.identity_pem {
            // The message of a bad key is about its format, never its bytes.
            let identity = reqwest::Identity::from_pem(pem).map_err(|_| {
                (
                    "tls.cert",
                    "`cert` and `key` are not a PEM certificate chain and private key".into(),
                )
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| ("tls", format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Self {
            http,
            config,
            secrets,
            current: AtomicUsize::new(0),
        })
    }

    pub(crate) fn config(&self) -> &ConsulConfig {
        &self.config
    }

    /// The endpoint in use (`ConsulConfig::resolve` guarantees one).
    fn base(&self) -> &Url {
        let endpoints = &self.config.endpoints;
        let i = self.current.load(Ordering::Relaxed) % endpoints.len().max(1);
        &endpoints[i]
    }

    /// Moves to the next endpoint after a connection failure.
    fn rotate(&self) {
        if self.config.endpoints.len() > 1 {
            self.current.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends one request and reads the whole answer. The token is read now,
    /// so a rotated token is used by the next request.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(u16, HeaderMap, Bytes), Error> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .timeout(timeout);
        match &self.config.credentials {
            Credentials::None => {}
            Credentials::Token(reference) => {
                let token = self
                    .secrets
                    .resolve(reference)
                    .map_err(|e| Error::Token(e.to_string()))?;
                let mut value = HeaderValue::from_str(token.expose())
                    .map_err(|_| Error::Token(format!("{reference}: not a valid header value")))?;
                value.set_sensitive(true);
                request = request.header("X-Consul-Token", value);
            }
            Credentials::Basic(user, password) => {
                let user = self
                    .secrets
                    .resolve(user)
                    .map_err(|e| Error::Token(e.to_string()))?;
                let password = self
                    .secrets
                    .resolve(password)
                    .map_err(|e| Error::Token(e.to_string()))?;
                request = request.basic_auth(user.expose(), Some(password.expose()));
            }
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let what = format!("{method} {}", url.path());
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                return Error::Timeout(timeout);
            }
            // reqwest names the full URL; the path is enough and shorter.
            let chain = error_chain(&e).replace(&format!(" for url ({url})"), "");
            if is_tls_failure(&e) {
                Error::Tls(format!("{what}: {chain}"))
            } else {
                Error::Connect(format!("{what}: {chain}"))
            }
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if e.is_connect() || e.is_timeout() {
                    self.rotate();
                }
                return Err(fail(e));
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let too_large = || Error::Malformed(format!("{what}: answer larger than {MAX_BODY} bytes"));
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, Bytes::from(body)))
    }

    /// One health-service query; `index == 0` returns at once, otherwise the
    /// server holds it until the index passes `index` or `wait` elapses.
    pub(crate) async fn health(&self, index: u64, wait: Duration) -> Result<HealthAnswer, Error> {
        let url = health_url(self.base(), &self.config.watch, index, wait);
        let (status, headers, body) = self
            .send(Method::GET, url, None, blocking_timeout(wait))
            .await?;
        Ok(decode_health(status, &headers, &body)?)
    }

    /// `GET /v1/status/leader`: the leader's address, empty without one.
    pub(crate) async fn leader(&self) -> Result<String, Error> {
        let url = endpoint_url(self.base(), &["v1", "status", "leader"]);
        let (status, _, body) = self.send(Method::GET, url, None, SHORT_TIMEOUT).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &body).into());
        }
        serde_json::from_slice::<String>(&body)
            .map_err(|e| Error::Malformed(format!("/v1/status/leader: {e}")))
    }

    /// `GET /v1/catalog/services`: the service names the token may see.
    pub(crate) async fn services(&self) -> Result<BTreeMap<String, serde_json::Value>, Error> {
        let mut url = endpoint_url(self.base(), &["v1", "catalog", "services"]);
        if let Some(dc) = &self.config.watch.dc {
            url.query_pairs_mut().append_pair("dc", dc);
        }
        if let Some(ns) = &self.config.watch.ns {
            url.query_pairs_mut().append_pair("ns", ns);
        }
        let (status, _, body) = self.send(Method::GET, url, None, SHORT_TIMEOUT).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &body).into());
        }
        serde_json::from_slice(&body)
            .map_err(|e| Error::Malformed(format!("/v1/catalog/services: {e}")))
    }

    async fn agent_put(&self, segments: &[&str], body: Option<Vec<u8>>) -> Result<(), Error> {
        let url = endpoint_url(self.base(), segments);
        let (status, _, body) = self.send(Method::PUT, url, body, SHORT_TIMEOUT).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &body).into());
        }
        Ok(())
    }

    /// `PUT /v1/agent/service/register` with a TTL check
    /// (`service:<id>`), passed at once.
    pub(crate) async fn register(&self, registration: &ConsulRegistration) -> Result<(), Error> {
        let ttl = go_duration(registration.ttl);
        // Consul removes an instance whose check stays critical this long;
        // a crashed process is then cleaned up without an operator.
        let deregister_after = go_duration(registration.ttl * 6 + Duration::from_secs(60));
        let mut body = serde_json::json!({
            "ID": registration.id,
            "Name": registration.name,
            "Port": registration.port,
            "Tags": registration.tags,
            "Check": {
                "CheckID": check_id(registration),
                "TTL": ttl,
                "DeregisterCriticalServiceAfter": deregister_after,
            },
        });
        if let (Some(address), Some(map)) = (&registration.address, body.as_object_mut()) {
            map.insert("Address".into(), address.clone().into());
        }
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| Error::Malformed(format!("registration: {e}")))?;
        self.agent_put(&["v1", "agent", "service", "register"], Some(bytes))
            .await
    }

    /// `PUT /v1/agent/check/pass/service:<id>`.
    pub(crate) async fn pass(&self, registration: &ConsulRegistration) -> Result<(), Error> {
        self.agent_put(
            &["v1", "agent", "check", "pass", &check_id(registration)],
            None,
        )
        .await
    }

    /// `PUT /v1/agent/service/deregister/<id>`.
    pub(crate) async fn deregister(&self, registration: &ConsulRegistration) -> Result<(), Error> {
        self.agent_put(
            &["v1", "agent", "service", "deregister", &registration.id],
            None,
        )
        .await
    }
}

/// The TTL check's id: Consul's own name for a service's single check.
pub(crate) fn check_id(registration: &ConsulRegistration) -> String {
    format!("service:{}", registration.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const BODY: &[u8] = br#"[
      {"Node":{"ID":"x","Node":"node-1","Address":"10.0.0.1","Datacenter":"dc1","Meta":null},
       "Service":{"ID":"app-1","Service":"app","Tags":null,"Address":"","Meta":null,"Port":4001,"Weights":{"Passing":1}},
       "Checks":[{"CheckID":"serfHealth","Status":"passing","ServiceID":""},
                 {"CheckID":"service:app-1","Status":"passing","ServiceID":"app-1"}]},
      {"Node":{"Node":"node-2","Address":"10.0.0.2"},
       "Service":{"ID":"app-2","Service":"app","Tags":["a","b"],"Address":"192.168.0.2","Meta":{"zone":"eu"},"Port":4002},
       "Checks":null}
    ]"#;

    #[test]
    fn decodes_entries_and_headers() {
        let h = headers(&[
            ("X-Consul-Index", "57"),
            ("X-Consul-KnownLeader", "true"),
            ("X-Consul-LastContact", "12"),
        ]);
        let a = decode_health(200, &h, BODY).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.meta,
            QueryMeta {
                index: 57,
                known_leader: Some(true),
                last_contact: Some(Duration::from_millis(12)),
                filtered_by_acls: false,
            }
        );
        assert_eq!(a.entries.len(), 2);
        assert!(a.entries[0].service.tags.is_empty());
        assert_eq!(a.entries[0].checks.len(), 2);
        assert_eq!(a.entries[1].service.meta["zone"], "eu");
        assert!(a.entries[1].checks.is_empty());
    }

    #[test]
    fn leader_headers_are_optional_index_is_not() {
        let a = decode_health(200, &headers(&[("X-Consul-Index", "3")]), b"[]")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.meta.known_leader, None);
        assert_eq!(a.meta.last_contact, None);
        assert_eq!(
            decode_health(200, &headers(&[]), b"[]"),
            Err(DecodeError::MissingIndex)
        );
        for (name, value) in [
            ("X-Consul-Index", "-1"),
            ("X-Consul-Index", "abc"),
            ("X-Consul-LastContact", "1.5"),
            ("X-Consul-KnownLeader", "yes"),
        ] {
            let mut h = headers(&[("X-Consul-Index", "3")]);
            h.insert(name, HeaderValue::from_static(value));
            assert!(
                matches!(
                    decode_health(200, &h, b"[]"),
                    Err(DecodeError::BadHeader { .. })
                ),
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn bodies_that_are_not_answers_are_errors() {
        let h = headers(&[("X-Consul-Index", "3")]);
        for body in [
            &b""[..],
            b"[",
            b"{}",
            b"null",
            b"[{\"Node\":{}}]",
            &BODY[..BODY.len() / 2],
            br#"[{"Node":{"Node":"n"},"Service":{"ID":"a","Port":70000}}]"#,
        ] {
            assert!(
                matches!(decode_health(200, &h, body), Err(DecodeError::Body(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_statuses_carry_consul_message() {
        let e = decode_health(403, &HeaderMap::new(), b"Permission denied\n");
        assert_eq!(
            e,
            Err(DecodeError::Status {
                status: 403,
                message: "Permission denied".into()
            })
        );
        let e = decode_health(500, &HeaderMap::new(), b"");
        assert_eq!(
            e,
            Err(DecodeError::Status {
                status: 500,
                message: "Internal Server Error".into()
            })
        );
        let long = "x".repeat(1000);
        match decode_health(429, &HeaderMap::new(), long.as_bytes()) {
            Err(DecodeError::Status { message, .. }) => assert!(message.len() < 300),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn query_urls_encode_every_parameter() {
        let params = serde_json::from_str(
            r#"{"service":"my app/x","tag":"v1 & more","filter":"Service.Meta.zone == \"eu\"",
                "dc":"dc 2","ns":"team","consistency":"stale","wait":"1500ms"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let watch = ConsulWatch::from_params(&params).unwrap_or_else(|e| panic!("{e}"));
        let base = Url::parse("http://127.0.0.1:8500/").unwrap_or_else(|e| panic!("{e}"));
        let url = health_url(&base, &watch, 0, watch.wait);
        assert_eq!(url.path(), "/v1/health/service/my%20app%2Fx");
        assert_eq!(
            url.query(),
            Some(
                "passing=true&tag=v1+%26+more&filter=Service.Meta.zone+%3D%3D+%22eu%22&dc=dc+2&ns=team&stale"
            )
        );
        let url = health_url(&base, &watch, 42, watch.wait);
        assert!(
            url.query()
                .is_some_and(|q| q.ends_with("&stale&index=42&wait=1500ms"))
        );
        let prefixed = Url::parse("https://proxy/consul").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            health_url(&prefixed, &watch, 0, watch.wait).path(),
            "/consul/v1/health/service/my%20app%2Fx"
        );
    }

    proptest::proptest! {
        /// The decoder is total: any status, header bytes and body give a
        /// value or an error, never a panic.
        #[test]
        fn decoder_never_panics(
            status in 0u16..1000,
            index in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            contact in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&index) {
                h.insert("X-Consul-Index", v);
            }
            if let Ok(v) = HeaderValue::from_bytes(&contact) {
                h.insert("X-Consul-LastContact", v);
            }
            let _ = decode_health(status, &h, &body);
        }

        /// Every prefix of a valid answer decodes or fails cleanly, and only
        /// the whole body decodes to the whole answer.
        #[test]
        fn truncated_bodies_fail_cleanly(cut in 0usize..BODY.len()) {
            let h = headers(&[("X-Consul-Index", "9")]);
            let whole = decode_health(200, &h, BODY).map(|a| a.entries.len());
            proptest::prop_assert_eq!(whole, Ok(2));
            let part = decode_health(200, &h, &BODY[..cut]);
            proptest::prop_assert!(part.is_err() || cut == BODY.len());
        }
    }

    #[test]
    fn timeouts_exceed_the_longest_hold() {
        assert_eq!(go_duration(Duration::from_secs(4)), "4s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        let wait = Duration::from_secs(4);
        assert!(blocking_timeout(wait) > wait * 17 / 16);
    }
}
