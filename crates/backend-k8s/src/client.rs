//! Client construction: kubeconfig, in-cluster configuration, or the
//! descriptor's `endpoints` with a bearer token that is re-read on every
//! (re)connect.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use kube::Client;
use kube::client::ClientBuilder;
use provisioning_provider_api::{ProviderDescriptor, SecretRef};
use provisioning_registry::{ProvisioningError, SecretResolver, read_bounded_file};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tower::{Layer, Service};

use crate::response_limit_layer::ResponseLimitLayer;
use crate::watch_guard::WatchGuard;
use crate::{KubeError, KubeWatchConfig, MAX_RESPONSE_BYTES};

/// Where in-cluster pods find their namespace.
const IN_CLUSTER_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// How long establishing a TCP/TLS connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Extra time a response may stay silent beyond the watch timeout before the
/// connection is dropped (a watch ends after its `timeoutSeconds`; a list or
/// a re-watch that hangs must not hang forever).
const READ_SLACK: Duration = Duration::from_secs(10);

/// An explicit API server from the descriptor.
#[derive(Clone)]
struct Endpoint {
    url: http::Uri,
    token: Option<SecretRef>,
    ca: Option<PathBuf>,
    verify: bool,
}

/// Builds clients for one provider. Every call to [`connect`](Self::connect)
/// reads the configuration and secrets again, so rotated tokens and
/// refreshed kubeconfigs are picked up on reconnect.
#[derive(Clone)]
pub(crate) struct Connector {
    endpoint: Option<Endpoint>,
    namespace: Option<String>,
    read_timeout: Duration,
    secrets: SecretResolver,
    /// A client the program built, used instead of `endpoint` (or the
    /// kubeconfig) whenever set.
    injected: Option<Client>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field(
                "endpoint",
                &self.endpoint.as_ref().map(|e| e.url.to_string()),
            )
            .field("namespace", &self.namespace)
            .field("injected", &self.injected.is_some())
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// The DER certificates of a `tls.ca` bundle (a relative path is
    /// relative to the store's directory). Read here, bounded, rather than
    /// handed to kube as a path: kube re-reads such a file on its own
    /// schedule with no size or file-type limit. A new connection reads it
    /// again, so a rotated CA is picked up on reconnect.
    fn read_ca(&self, ca: &std::path::Path) -> Result<Vec<Vec<u8>>, KubeError> {
        let path = self.secrets.base_dir().join(ca);
        let bad = |why: &dyn std::fmt::Display| KubeError::Config {
            message: format!("tls.ca {}: {why}", path.display()),
        };
        let pem = read_bounded_file(&path).map_err(|e| bad(&e))?;
        // The parser's errors can quote the file's bytes: not shown.
        let certs = CertificateDer::pem_slice_iter(&pem)
            .map(|cert| cert.map(|der| der.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad(&"not a PEM certificate bundle"))?;
        if certs.is_empty() {
            return Err(bad(&"holds no PEM certificate"));
        }
        Ok(certs)
    }
}

/// A connected client and the namespace it watches.
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) namespace: String,
}

impl Connector {
    /// Checks the descriptor's `endpoints`, `auth` and `tls`.
    pub(crate) fn new(
        descriptor: &ProviderDescriptor,
        watch: &KubeWatchConfig,
        secrets: SecretResolver,
    ) -> Result<Self, KubeError> {
        let id = &descriptor.id;
        let bad = |field: &str, message: &str| {
            KubeError::Invalid(ProvisioningError::invalid(
                Some(id),
                Some(field.to_string()),
                message,
            ))
        };
        let endpoint = match descriptor.endpoints.as_slice() {
            [] => {
                if descriptor.auth.is_some() {
                    return Err(bad(
                        "auth",
                        "needs `endpoints` (kubeconfig and in-cluster configuration bring their own credentials)",
                    ));
                }
                if descriptor.tls.is_some() {
                    return Err(bad("tls", "needs `endpoints`"));
                }
                None
            }
            [url] => {
                let uri: http::Uri = url
                    .parse()
                    .map_err(|e| bad("endpoints[0]", &format!("not a URL: {e}")))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(bad(
                        "endpoints[0]",
                        "must be an http or https URL with a host",
                    ));
                }
                let token = match &descriptor.auth {
                    None => None,
                    Some(auth) if auth.token.is_some() && auth.username.is_none() => {
                        auth.token.clone()
                    }
                    Some(_) => {
                        return Err(bad(
                            "auth",
                            "only `token` is supported (API servers no longer accept basic auth)",
                        ));
                    }
                };
                let (ca, verify) = match &descriptor.tls {
                    None => (None, true),
                    Some(tls) => {
                        if tls.cert.is_some() || tls.key.is_some() {
                            return Err(bad(
                                "tls.cert",
                                "client certificates are not supported; use a token (or a kubeconfig)",
                            ));
                        }
                        (tls.ca.clone().map(PathBuf::from), tls.verify)
                    }
                };
                Some(Endpoint {
                    url: uri,
                    token,
                    ca,
                    verify,
                })
            }
            _ => {
                return Err(bad(
                    "endpoints",
                    "takes one URL: the API server or its load balancer",
                ));
            }
        };
        let watch_timeout = Duration::from_secs(u64::from(watch.watch_timeout_secs()));
        Ok(Self {
            endpoint,
            namespace: watch.namespace.clone(),
            read_timeout: watch_timeout + READ_SLACK,
            secrets,
            injected: None,
        })
    }

    /// Connects through `client` from now on (the descriptor's endpoint,
    /// token and TLS stay checked, and unused).
    pub(crate) fn with_injected(mut self, client: Client) -> Self {
        self.injected = Some(client);
        self
    }

    /// Reads the configuration and secrets now and builds a client, with the
    /// watch guard under it when given.
    pub(crate) async fn connect(&self, guard: Option<WatchGuard>) -> Result<Connection, KubeError> {
        if let Some(client) = &self.injected {
            return Ok(self.over_injected(client, guard));
        }
        let mut config = match &self.endpoint {
            None => kube::Config::infer().await.map_err(|e| KubeError::Config {
                message: format!("no kubeconfig and no in-cluster configuration: {e}"),
            })?,
            Some(endpoint) => {
                let mut config = kube::Config::new(endpoint.url.clone());
                config.default_namespace = std::fs::read_to_string(IN_CLUSTER_NAMESPACE)
                    .ok()
                    .map(|ns| ns.trim().to_string())
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or_else(|| "default".into());
                if let Some(reference) = &endpoint.token {
                    let token = self.secrets.resolve(reference)?;
                    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                        .map_err(|_| KubeError::Config {
                            message: format!("secret {reference}: not a valid header value"),
                        })?;
                    value.set_sensitive(true);
                    config.headers.push((AUTHORIZATION, value));
                }
                if let Some(ca) = &endpoint.ca {
                    config.root_cert = Some(self.read_ca(ca)?);
                }
                config.accept_invalid_certs = !endpoint.verify;
                config
            }
        };
        // Our own backoff spaces retries; kube's retry layer would hide
        // 429/503 from it.
        config.default_retry = false;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(self.read_timeout);
        config.reset_reader_on_write = true;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        // kube builds its TLS configuration with rustls' process-wide
        // provider. A program that also enables aws-lc-rs (a runtime with
        // ractor_cluster, say) has two and rustls picks neither: make ours,
        // ring, the default unless the program chose one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = ClientBuilder::try_from(config).map_err(|e| KubeError::Config {
            message: format!("cannot build the client: {e}"),
        })?;
        // Every answer is read with a bound, the probe's included.
        let limit = ResponseLimitLayer::new(MAX_RESPONSE_BYTES);
        let client = match guard {
            Some(guard) => builder.with_layer(&guard).with_layer(&limit).build(),
            None => builder.with_layer(&limit).build(),
        };
        Ok(Connection { client, namespace })
    }

    /// A client whose requests go through `injected` (its base URL, TLS,
    /// credentials, timeouts and tower layers), under the provider's own
    /// layers: the watch guard and the response limit still see every
    /// answer. The namespace is the watch's, else the injected client's
    /// default.
    fn over_injected(&self, injected: &Client, guard: Option<WatchGuard>) -> Connection {
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| injected.default_namespace().to_owned());
        let forward = InjectedService(injected.clone());
        let limit = ResponseLimitLayer::new(MAX_RESPONSE_BYTES);
        let client = match guard {
            Some(guard) => Client::new(limit.layer(guard.layer(forward)), namespace.clone()),
            None => Client::new(limit.layer(forward), namespace.clone()),
        };
        Connection { client, namespace }
    }
}

/// Sends each request through a client the program built. kube's
/// `Client` is not itself a tower service; its `send` is the way in.
#[derive(Clone)]
struct InjectedService(Client);

impl Service<Request<kube::client::Body>> for InjectedService {
    type Response = Response<kube::client::Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The injected client buffers and waits for readiness in `send`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(dir: &std::path::Path, ca: &str) -> Connector {
        let descriptor: ProviderDescriptor = serde_json::from_str(&format!(
            r#"{{"id":"k","kind":"k8s","priority":1,"endpoints":["https://127.0.0.1:6443"],"tls":{{"ca":"{ca}"}},"watch":{{"label_selector":"app=a"}}}}"#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        Connector::new(
            &descriptor,
            &KubeWatchConfig::pods("app=a"),
            SecretResolver::new(dir),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_ca_bundle_is_read_bounded_and_relative_to_the_store() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, data: &[u8]| {
            std::fs::write(dir.path().join(name), data).unwrap_or_else(|e| panic!("{e}"))
        };
        write(
            "ca.pem",
            b"-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n",
        );
        let c = connector(dir.path(), "ca.pem");
        let certs = c
            .read_ca(std::path::Path::new("ca.pem"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(certs, vec![vec![0, 1, 2, 3]]);

        write("big.pem", &vec![b'x'; 2 << 20]);
        write("garbage.pem", b"-----BEGIN CERTIFICATE-----\ncnry!!\n");
        write("empty.pem", b"no pem here: cnry");
        let fifo = dir.path().join("ca.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        for (ca, why) in [
            ("big.pem", "larger than"),
            ("ca.fifo", "is a FIFO"),
            ("/dev/zero", "is a character device"),
            ("garbage.pem", "not a PEM certificate bundle"),
            ("empty.pem", "holds no PEM certificate"),
        ] {
            let started = std::time::Instant::now();
            let e = c
                .read_ca(std::path::Path::new(ca))
                .err()
                .unwrap_or_else(|| panic!("accepted {ca}"));
            println!("{ca}: {e} after {:?}", started.elapsed());
            let text = e.to_string();
            assert!(text.contains(why), "{ca}: {text}");
            assert!(!text.contains("cnry"), "{ca}: {text}");
        }
    }
}
