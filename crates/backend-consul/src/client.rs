//! The wire protocol: a thin Consul HTTP client over reqwest. Answers are
//! decoded by the network-free [`decode_health`](crate::decode_health).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use provisioning_registry::SecretResolver;

use crate::{ConsulConsistency, ConsulRegistration, ConsulWatch};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::ConsulOrigin;
use crate::config::{ConsulConfig, Credentials, same_origin};
use crate::decode::HealthAnswer;
use crate::decode::{decode_health, status_error};
use crate::error::Error;

/// Extra time on top of a blocking query's `wait × 17/16` before the
/// request is abandoned as hung.
pub(crate) const TIMEOUT_SLACK: Duration = Duration::from_secs(1);

/// Timeout of non-blocking requests (probe, agent API).
const SHORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Consul's own token header.
const X_CONSUL_TOKEN: HeaderName = HeaderName::from_static("x-consul-token");

/// Largest answer read (a 100,000-instance service is about 70 MB with
/// its checks; anything larger is not a health answer).
const MAX_BODY: usize = 128 << 20;

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

/// `scheme://host:port` of `url`, for messages.
fn origin_of(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
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

/// The descriptor's HTTP client, unbuilt: its TLS material parsed (an
/// error names the field), its timeouts and redirect policy set.
fn http_builder(config: &ConsulConfig) -> Result<reqwest::ClientBuilder, (&'static str, String)> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!(
            "provisioning-backend-consul/",
            env!("CARGO_PKG_VERSION")
        ))
        // A token goes to the configured endpoint only: reqwest keeps
        // custom headers such as X-Consul-Token across a redirect to
        // another host, and Consul's API never redirects.
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!config.tls.verify);
    if let Some(pem) = &config.tls.ca_pem {
        // The parser's message can quote the file's bytes; the file
        // may be anything the descriptor named.
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|_| ("tls.ca", "not a PEM certificate bundle".into()))?;
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
    Ok(builder)
}

/// A thin Consul HTTP client bound to one provider's configuration.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `http` is a client the program built: the provider's token goes as
    /// `Authorization: Bearer`, which reqwest drops on a redirect to
    /// another host (it keeps `X-Consul-Token`).
    injected: bool,
    config: ConsulConfig,
    secrets: SecretResolver,
    /// The endpoint in use; advanced on connection errors.
    current: AtomicUsize,
}

impl std::fmt::Debug for Client {
    /// Without the HTTP client: its Debug prints its default headers,
    /// which may hold a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("injected", &self.injected)
            .field("config", &self.config)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the HTTP client, or takes `injected` (a client the program
    /// built, bound to an origin: its TLS, proxy, timeouts, headers and
    /// redirect policy are its own) when every endpoint has that origin.
    /// Otherwise the injected client is not used — what the program put in
    /// it belongs to its origin, not to wherever a descriptor points — and
    /// the provider runs on the client its descriptor describes. The
    /// descriptor's TLS material is checked either way, so a descriptor
    /// valid with one client is valid with the other. An error names the
    /// descriptor field at fault.
    pub(crate) fn new(
        config: ConsulConfig,
        secrets: SecretResolver,
        injected: Option<(ConsulOrigin, reqwest::Client)>,
    ) -> Result<Self, (&'static str, String)> {
        if config.endpoints.is_empty() {
            return Err(("endpoints", "no endpoint to connect to".into()));
        }
        let builder = http_builder(&config)?;
        let injected = injected.and_then(|(origin, http)| {
            if config.endpoints.iter().all(|url| origin.contains(url)) {
                return Some(http);
            }
            tracing::warn!(
                provider = %config.provider,
                %origin,
                "injected client not used: the descriptor's endpoints are not all at the origin it is bound to; the provider uses the client its descriptor describes"
            );
            None
        });
        let (http, injected) = match injected {
            Some(http) => (http, true),
            None => (
                builder
                    .build()
                    .map_err(|e| ("tls", format!("HTTP client: {}", error_chain(&e))))?,
                false,
            ),
        };
        Ok(Self {
            http,
            injected,
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
                // With an injected client the token goes as a bearer token,
                // which Consul reads too: reqwest drops `Authorization` on a
                // redirect to another host, whatever the client's policy,
                // and keeps `X-Consul-Token`.
                let (name, value) = if self.injected {
                    (AUTHORIZATION, format!("Bearer {}", token.expose()))
                } else {
                    (X_CONSUL_TOKEN, token.expose().to_owned())
                };
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| Error::Token(format!("{reference}: not a valid header value")))?;
                value.set_sensitive(true);
                request = request.header(name, value);
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
        // An injected client may follow a redirect: an answer from another
        // origin is not this provider's Consul speaking.
        if !same_origin(response.url(), &url) {
            return Err(Error::Redirected {
                provider: self.config.provider.clone(),
                requested: origin_of(&url),
                answered: origin_of(response.url()),
            });
        }
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

    fn client_at(endpoints: &str, origin: &str, http: reqwest::Client) -> Client {
        let json = format!(
            r#"{{"id":"c","kind":"consul","priority":1,"endpoints":{endpoints},"watch":{{"service":"app"}}}}"#
        );
        let d: provisioning_provider_api::ProviderDescriptor =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        let secrets = SecretResolver::new(std::env::temp_dir());
        let env: crate::config::EnvLookup = std::sync::Arc::new(|_| None);
        let config = ConsulConfig::resolve(&d, &secrets, &env).unwrap_or_else(|e| panic!("{e}"));
        let origin = ConsulOrigin::parse(origin).unwrap_or_else(|e| panic!("{e}"));
        Client::new(config, secrets, Some((origin, http))).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn debug_never_shows_the_http_client() {
        // Not marked sensitive: a program need not know to.
        let headers = HeaderMap::from_iter([(
            X_CONSUL_TOKEN,
            HeaderValue::from_static("cnry-default-header"),
        )]);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let client = client_at(
            r#"["http://127.0.0.1:8500"]"#,
            "http://127.0.0.1:8500",
            http,
        );
        let text = format!("{client:?}");
        println!("{text}");
        assert!(client.injected, "{text}");
        assert!(!text.contains("cnry"), "{text}");
    }

    #[test]
    fn an_injected_client_is_used_only_at_its_origin() {
        for (endpoints, used) in [
            (r#"["http://127.0.0.1:8500"]"#, true),
            (
                r#"["http://127.0.0.1:8500/","http://127.0.0.1:8500/x"]"#,
                true,
            ),
            (r#"["http://127.0.0.1:18500"]"#, false),
            (r#"["https://127.0.0.1:8500"]"#, false),
            (r#"["http://localhost:8500"]"#, false),
            (
                r#"["http://127.0.0.1:8500","http://127.0.0.1:18500"]"#,
                false,
            ),
        ] {
            let client = client_at(endpoints, "http://127.0.0.1:8500", reqwest::Client::new());
            assert_eq!(client.injected, used, "{endpoints}");
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
