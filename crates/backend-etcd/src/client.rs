//! The wire protocol: one [`Session`] is one etcd client attached to one
//! endpoint, with every unary call bounded by a deadline; [`SessionWatch`]
//! is the prefix watch on it. Member values are decoded by the
//! network-free [`decode_member`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, KeyValue, KvClient, LeaseClient,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, WatchOptions, WatchStream,
};
use provisioning_provider_api::MemberSpec;
use provisioning_registry::{SecretResolver, read_bounded_file};

use crate::config::EtcdConfig;
use crate::decode::decode_member_created_at;
use crate::error::ClientError;

/// Largest response accepted (a 100k-member prefix fits).
const MAX_MESSAGE: usize = 64 << 20;
/// HTTP/2 keep-alive: etcd's default `--grpc-keepalive-min-time` is 5 s, so
/// ping no more often than that.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One key under the prefix, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: Vec<u8>,
    pub(crate) mod_revision: i64,
    /// The member, or why the value is not one.
    pub(crate) member: Result<MemberSpec, String>,
}

/// The prefix's content at one revision.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) revision: i64,
    pub(crate) cluster_id: u64,
    pub(crate) entries: Vec<Entry>,
}

/// A change delivered by the watch.
#[derive(Debug)]
pub(crate) enum Change {
    Put(Entry),
    Delete {
        key: Vec<u8>,
    },
    /// An event that cannot be interpreted (unknown type, no key).
    Bad {
        key: String,
        reason: String,
    },
}

/// One message of the watch stream, interpreted.
#[derive(Debug)]
pub(crate) enum WatchMessage {
    /// The watch was created (its first message).
    Created,
    /// A progress notification: alive, nothing new. Never a resume point.
    Progress,
    /// Changes, in order, and the revision of the last one.
    Changes { changes: Vec<Change>, revision: i64 },
}

/// A client the program built ([`EtcdProviderBuilder::with_client`]),
/// shared by every session of the provider. Two configurations are equal
/// only with the same injected client.
///
/// [`EtcdProviderBuilder::with_client`]: crate::EtcdProviderBuilder::with_client
#[derive(Clone)]
pub(crate) struct InjectedClient(Arc<Client>);

impl InjectedClient {
    pub(crate) fn new(client: Client) -> Self {
        Self(Arc::new(client))
    }
}

impl PartialEq for InjectedClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for InjectedClient {}

/// What a session of an injected client names as its endpoint in errors:
/// the client chooses among its own endpoints.
const INJECTED_ENDPOINT: &str = "the injected client";

/// A connected client on one endpoint.
pub(crate) struct Session {
    client: Client,
    kv: KvClient,
    endpoint: String,
    timeout: Duration,
    prefix: Vec<u8>,
}

impl Session {
    /// Connects to `endpoint`, resolving secrets now (they are re-read on
    /// every reconnect). With credentials this authenticates, so a rejected
    /// password shows here. With an injected client this is a clone of it
    /// whatever `endpoint` is: its channel reconnects on its own.
    pub(crate) async fn connect(
        config: &EtcdConfig,
        secrets: &SecretResolver,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        if let Some(InjectedClient(client)) = &config.client {
            return Ok(Self::on(
                Client::clone(client),
                INJECTED_ENDPOINT,
                config,
                timeout,
            ));
        }
        let mut options = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)
            .with_auto_token_refresh(true);
        if let Some(credentials) = &config.credentials {
            let resolve = |r| {
                secrets
                    .resolve(r)
                    .map(|secret| secret.expose().to_owned())
                    .map_err(|e| ClientError::Config(e.to_string()))
            };
            let (username, password) = if credentials.joined {
                // etcdctl's `name:password` in one variable.
                let joined = resolve(&credentials.username)?;
                match joined.split_once(':') {
                    Some((name, password)) => (name.to_owned(), password.to_owned()),
                    None => {
                        return Err(ClientError::Config(
                            "ETCDCTL_USER holds no `:password` and ETCDCTL_PASSWORD is not set"
                                .to_owned(),
                        ));
                    }
                }
            } else {
                (
                    resolve(&credentials.username)?,
                    resolve(&credentials.password)?,
                )
            };
            options = options.with_user(username, password);
        }
        if config.https {
            options = options.with_tls(tls_options(config, secrets)?);
        }
        let client = bounded(
            "connect",
            endpoint,
            timeout,
            Client::connect([endpoint], Some(options)),
        )
        .await?;
        Ok(Self::on(client, endpoint, config, timeout))
    }

    fn on(client: Client, endpoint: &str, config: &EtcdConfig, timeout: Duration) -> Self {
        let kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
        Self {
            client,
            kv,
            endpoint: endpoint.to_owned(),
            timeout,
            prefix: config.prefix().as_bytes().to_vec(),
        }
    }

    /// A maintenance client on this session's channel (for `Status`).
    pub(crate) fn maintenance(&self) -> etcd_client::MaintenanceClient {
        self.client.maintenance_client()
    }

    /// The endpoint this session is attached to.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Reads every key under the prefix (a linearizable read).
    pub(crate) async fn list(&mut self) -> Result<Listing, ClientError> {
        let mut kv = self.kv.clone();
        let prefix = self.prefix.clone();
        let response = bounded("list", &self.endpoint, self.timeout, async move {
            kv.get(prefix, Some(GetOptions::new().with_prefix())).await
        })
        .await?;
        let header = response.header().ok_or_else(|| ClientError::NoHeader {
            op: "list",
            endpoint: self.endpoint.clone(),
        })?;
        Ok(Listing {
            revision: header.revision(),
            cluster_id: header.cluster_id(),
            entries: response
                .kvs()
                .iter()
                .map(|kv| decode(&self.prefix, kv))
                .collect(),
        })
    }

    /// A cheap linearizable request that needs read permission on the
    /// prefix and a leader: returns the cluster id and current revision.
    pub(crate) async fn check(&mut self) -> Result<(u64, i64), ClientError> {
        let mut kv = self.kv.clone();
        let prefix = self.prefix.clone();
        let response = bounded("check", &self.endpoint, self.timeout, async move {
            kv.get(
                prefix,
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
        })
        .await?;
        let header = response.header().ok_or_else(|| ClientError::NoHeader {
            op: "check",
            endpoint: self.endpoint.clone(),
        })?;
        Ok((header.cluster_id(), header.revision()))
    }

    /// Watches the prefix from `start_revision`, with progress
    /// notifications on.
    pub(crate) async fn watch(&mut self, start_revision: i64) -> Result<SessionWatch, ClientError> {
        let mut watch = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE);
        let prefix = self.prefix.clone();
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start_revision)
            .with_progress_notify();
        let stream = bounded("watch", &self.endpoint, self.timeout, async move {
            watch.watch(prefix, Some(options)).await
        })
        .await?;
        Ok(SessionWatch {
            stream,
            endpoint: self.endpoint.clone(),
            prefix: self.prefix.clone(),
        })
    }

    /// Grants a lease of `ttl` (whole seconds, at least 2); the lease id
    /// and the TTL the server granted.
    pub(crate) async fn grant(&mut self, ttl: Duration) -> Result<(i64, Duration), ClientError> {
        let mut lease = self.lease();
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(2);
        let response = bounded("lease grant", &self.endpoint, self.timeout, async move {
            lease.grant(secs, None).await
        })
        .await?;
        let granted = u64::try_from(response.ttl()).unwrap_or(0);
        Ok((response.id(), Duration::from_secs(granted)))
    }

    /// Puts `value` under `key`, attached to `lease`.
    pub(crate) async fn put_with_lease(
        &mut self,
        key: &str,
        value: Vec<u8>,
        lease: i64,
    ) -> Result<(), ClientError> {
        let mut kv = self.kv.clone();
        let key = key.to_owned();
        bounded("put", &self.endpoint, self.timeout, async move {
            kv.put(key, value, Some(PutOptions::new().with_lease(lease)))
                .await
        })
        .await
        .map(|_| ())
    }

    /// The lease `key` is attached to (0 = none), or `None` if it is absent.
    pub(crate) async fn lease_of(&mut self, key: &str) -> Result<Option<i64>, ClientError> {
        let mut kv = self.kv.clone();
        let key = key.to_owned();
        let response = bounded("get", &self.endpoint, self.timeout, async move {
            kv.get(key, Some(GetOptions::new().with_keys_only())).await
        })
        .await?;
        Ok(response.kvs().first().map(KeyValue::lease))
    }

    /// Opens the keep-alive stream of `lease`.
    pub(crate) async fn keep_alive(
        &mut self,
        lease: i64,
    ) -> Result<(LeaseKeeper, LeaseKeepAliveStream), ClientError> {
        let mut client = self.lease();
        bounded(
            "lease keep-alive",
            &self.endpoint,
            self.timeout,
            async move { client.keep_alive(lease).await },
        )
        .await
    }

    /// Revokes `lease` (its keys go with it).
    pub(crate) async fn revoke(&mut self, lease: i64) -> Result<(), ClientError> {
        let mut client = self.lease();
        bounded("lease revoke", &self.endpoint, self.timeout, async move {
            client.revoke(lease).await
        })
        .await
        .map(|_| ())
    }

    /// A request error of this session.
    pub(crate) fn error(&self, op: &'static str, source: etcd_client::Error) -> ClientError {
        ClientError::Request {
            op,
            endpoint: self.endpoint.clone(),
            source,
        }
    }

    fn lease(&self) -> LeaseClient {
        self.client.lease_client()
    }
}

/// The prefix watch of a session.
pub(crate) struct SessionWatch {
    stream: WatchStream,
    endpoint: String,
    prefix: Vec<u8>,
}

impl SessionWatch {
    /// Asks the server for a progress notification.
    pub(crate) async fn request_progress(&mut self) -> Result<(), ClientError> {
        self.stream
            .request_progress()
            .await
            .map_err(|source| ClientError::Request {
                op: "watch progress request",
                endpoint: self.endpoint.clone(),
                source,
            })
    }

    /// The next message. Cancel-safe: it only awaits the response stream.
    pub(crate) async fn next(&mut self) -> Result<WatchMessage, ClientError> {
        let response = match self.stream.message().await {
            Ok(Some(response)) => response,
            Ok(None) => {
                return Err(ClientError::WatchClosed {
                    endpoint: self.endpoint.clone(),
                });
            }
            Err(source) => {
                return Err(ClientError::Request {
                    op: "watch",
                    endpoint: self.endpoint.clone(),
                    source,
                });
            }
        };
        if response.canceled() {
            return Err(if response.compact_revision() > 0 {
                ClientError::Compacted {
                    endpoint: self.endpoint.clone(),
                    compact_revision: response.compact_revision(),
                }
            } else {
                ClientError::WatchCanceled {
                    endpoint: self.endpoint.clone(),
                    reason: response.cancel_reason().to_owned(),
                }
            });
        }
        if response.created() {
            return Ok(WatchMessage::Created);
        }
        if response.events().is_empty() {
            return Ok(WatchMessage::Progress);
        }
        let mut revision = 0;
        let changes = response
            .events()
            .iter()
            .map(|event| {
                let Some(kv) = event.kv() else {
                    return Change::Bad {
                        key: String::new(),
                        reason: "watch event without a key-value".into(),
                    };
                };
                revision = revision.max(kv.mod_revision());
                // The raw type: `Event::event_type` panics on unknown values.
                match event.0.r#type {
                    0 => Change::Put(decode(&self.prefix, kv)),
                    1 => Change::Delete {
                        key: kv.key().to_vec(),
                    },
                    other => Change::Bad {
                        key: String::from_utf8_lossy(kv.key()).into_owned(),
                        reason: format!("unknown watch event type {other}"),
                    },
                }
            })
            .collect();
        Ok(WatchMessage::Changes { changes, revision })
    }
}

/// Runs `call` with a deadline, naming the operation and endpoint on error.
async fn bounded<T>(
    op: &'static str,
    endpoint: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ClientError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(ClientError::Request {
            op,
            endpoint: endpoint.to_owned(),
            source,
        }),
        Err(_) => Err(ClientError::Timeout {
            op,
            endpoint: endpoint.to_owned(),
            timeout_ms: timeout.as_millis(),
        }),
    }
}

fn tls_options(config: &EtcdConfig, secrets: &SecretResolver) -> Result<TlsOptions, ClientError> {
    let mut tls = TlsOptions::new();
    // Bounded: a FIFO or a device named here would block the reader.
    let read = |path: &str| {
        let path = secrets.path_of(path);
        read_bounded_file(&path)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))
    };
    match config.tls.as_ref().and_then(|t| t.ca.as_deref()) {
        Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => tls = tls.with_webpki_roots(),
    }
    if let Some((cert, key)) = config.tls.as_ref().and_then(|t| t.identity.as_ref()) {
        let key = secrets
            .resolve(key)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        tls = tls.identity(Identity::from_pem(read(cert)?, key.expose()));
    }
    Ok(tls)
}

/// Decodes one key-value under the prefix into a member: the value follows
/// the member schema of CONTRACTS §1 and its id equals the key's last path
/// segment; the key's `create_revision` is the incarnation unless the value
/// names one.
pub(crate) fn decode(prefix: &[u8], kv: &KeyValue) -> Entry {
    Entry {
        key: kv.key().to_vec(),
        mod_revision: kv.mod_revision(),
        member: decode_member_created_at(prefix, kv.key(), kv.value(), kv.create_revision()),
    }
}
