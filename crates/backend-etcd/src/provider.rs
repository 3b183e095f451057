//! [`EtcdProvider`]: the `ClusterProvider` over an etcd key prefix.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use provisioning_provider_api::{
    ClusterProvider, LivenessCheck, ProviderDescriptor, ProviderSnapshot, ProviderStream,
    StreamOptions,
};
use provisioning_registry::SecretResolver;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::EtcdError;
use crate::client::{InjectedClient, Session};
use crate::config::EtcdConfig;
use crate::liveness::LivenessChannel;
use crate::registration::{self, RegistrationStatus};

/// How long [`EtcdProvider::shutdown`] waits for the lease revoke.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Deadline of each probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the provider, its streams and its registration task.
pub(crate) struct Inner {
    pub(crate) config: EtcdConfig,
    pub(crate) secrets: SecretResolver,
    /// `true` once the provider is shut down or dropped.
    pub(crate) stop: watch::Sender<bool>,
    last_seen: Mutex<Option<ProviderSnapshot>>,
    /// Index of the endpoint the next connection goes to.
    cursor: AtomicUsize,
    registration: Mutex<Option<JoinHandle<()>>>,
    pub(crate) registration_status: Mutex<RegistrationStatus>,
    /// The channel liveness probes use.
    pub(crate) liveness: LivenessChannel,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    pub(crate) fn current_endpoint(&self) -> String {
        let endpoints = &self.config.endpoints;
        let i = self.cursor.load(Ordering::Relaxed) % endpoints.len().max(1);
        endpoints.get(i).cloned().unwrap_or_default()
    }

    /// Moves the next connection to the next endpoint (round robin).
    pub(crate) fn rotate_endpoint(&self) {
        self.cursor.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn remember(&self, snapshot: &ProviderSnapshot) {
        *lock(&self.last_seen) = Some(snapshot.clone());
    }

    pub(crate) fn set_registration_status(&self, update: impl FnOnce(&mut RegistrationStatus)) {
        update(&mut lock(&self.registration_status));
    }
}

/// A cluster provider whose members are the JSON values (CONTRACTS §1
/// member schema) of the keys under an etcd prefix, optionally registering
/// this node under the prefix with a lease kept alive.
///
/// Built with [`from_descriptor`](Self::from_descriptor); streams are opened
/// by the service through [`ClusterProvider::stream`]. Dropping the provider
/// (or calling [`shutdown`](Self::shutdown)) ends its streams with
/// `Terminated(Ended)` and revokes the registration lease.
pub struct EtcdProvider {
    descriptor: ProviderDescriptor,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdProvider")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds an [`EtcdProvider`]; see [`EtcdProvider::builder`].
pub struct EtcdProviderBuilder {
    descriptor: ProviderDescriptor,
    secrets: Option<SecretResolver>,
    client: Option<etcd_client::Client>,
}

impl std::fmt::Debug for EtcdProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdProviderBuilder")
            .field("id", &self.descriptor.id)
            .finish_non_exhaustive()
    }
}

impl EtcdProviderBuilder {
    /// Sets the secret resolver (default: the process environment, relative
    /// `file:` paths against the current directory).
    pub fn with_secrets(mut self, secrets: SecretResolver) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Talks to etcd through `client` instead of a client built from the
    /// descriptor: the watch session, the registration lease and its
    /// keep-alive, the liveness `Status` call and the probe all use clones
    /// of it (one channel). Its endpoints, TLS, credentials and connect
    /// options are its own: the descriptor's `endpoints`, `auth` and `tls`
    /// (and the `ETCDCTL_*` variables) are checked, then unused. Still the
    /// descriptor's: `watch` (the prefix, `register`) and each request's
    /// deadline. The built client requires a leader
    /// (`ConnectOptions::with_require_leader(true)`), so a member cut off
    /// from its cluster fails the watch over to another endpoint; give the
    /// injected client the same option to keep that.
    pub fn with_client(mut self, client: etcd_client::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Validates the descriptor and builds the provider. Nothing connects
    /// yet; the secret resolver resolves the `auth` and `tls.key` references
    /// (and relative `tls` paths) at every connect, so rotated credentials
    /// are picked up.
    pub fn build(self) -> Result<EtcdProvider, EtcdError> {
        let secrets = self
            .secrets
            .unwrap_or_else(|| SecretResolver::new(std::path::PathBuf::from(".")));
        let mut config =
            EtcdConfig::from_descriptor_in(&self.descriptor, &|name| secrets.env_var(name))?;
        config.client = self.client.map(InjectedClient::new);
        // Spread providers over the endpoints; each then sticks to its
        // endpoint until a connection-level failure moves it on.
        let start = rand::random_range(0..config.endpoints.len().max(1));
        let (stop, _) = watch::channel(false);
        Ok(EtcdProvider {
            descriptor: self.descriptor,
            inner: Arc::new(Inner {
                config,
                secrets,
                stop,
                last_seen: Mutex::new(None),
                cursor: AtomicUsize::new(start),
                registration: Mutex::new(None),
                registration_status: Mutex::new(RegistrationStatus::default()),
                liveness: LivenessChannel::default(),
            }),
        })
    }
}

impl EtcdProvider {
    /// A builder for `descriptor`.
    pub fn builder(descriptor: ProviderDescriptor) -> EtcdProviderBuilder {
        EtcdProviderBuilder {
            descriptor,
            secrets: None,
            client: None,
        }
    }

    /// Builds the provider from an `etcd` descriptor (see
    /// [`EtcdProviderBuilder::build`]), resolving secrets through `secrets`.
    pub fn from_descriptor(
        descriptor: ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<Self, EtcdError> {
        Self::builder(descriptor)
            .with_secrets(secrets.clone())
            .build()
    }

    /// The checked configuration.
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.config
    }

    /// The endpoint the next connection of this provider goes to.
    pub fn current_endpoint(&self) -> String {
        self.inner.current_endpoint()
    }

    /// Starts the self-registration of `watch.register`, if configured and
    /// not started yet. Opening the first stream does this too. Must be
    /// called inside a tokio runtime.
    pub fn start_registration(&self) {
        ensure_registration(&self.inner);
    }

    /// The state of the self-registration, if `watch.register` is set.
    pub fn registration_status(&self) -> Option<RegistrationStatus> {
        self.inner.config.registration()?;
        Some(lock(&self.inner.registration_status).clone())
    }

    /// Ends every open stream with `Terminated(Ended)` and revokes the
    /// registration lease (waiting up to 5 s for it, plus `register.drain`
    /// during which the member is announced draining). A revoke that does
    /// not finish in time is logged, not returned: the lease then expires
    /// after its TTL, so shutting down never fails.
    pub async fn shutdown(&self) -> Result<(), EtcdError> {
        self.inner.stop.send_replace(true);
        let task = lock(&self.inner.registration).take();
        if let Some(task) = task {
            // The task drains, then revokes its lease on stop; past the
            // grace period the lease simply expires after its TTL.
            let drain = self
                .inner
                .config
                .registration()
                .map_or(Duration::ZERO, |r| r.drain);
            if tokio::time::timeout(SHUTDOWN_GRACE + drain, task)
                .await
                .is_err()
            {
                tracing::warn!(provider = %self.inner.config.id, "registration revoke timed out");
            }
        }
        Ok(())
    }

    /// Preflight: the prefix can be read through one of the endpoints —
    /// reachable, credentials accepted, read permission on the prefix.
    pub async fn probe(&self) -> Result<(), EtcdError> {
        let config = &self.inner.config;
        let secrets = &self.inner.secrets;
        let mut last = None;
        // One attempt on an injected client: within the preflight's time.
        for endpoint in config.endpoints.iter().take(config.connect_attempts()) {
            let attempt = async {
                let mut session =
                    Session::connect(config, secrets, endpoint, PROBE_TIMEOUT).await?;
                session.check().await
            };
            match attempt.await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_connection_level() => last = Some(e),
                // Credentials or permissions: every endpoint answers alike.
                Err(e) => return Err(e.into_public(&config.id, PROBE_TIMEOUT)),
            }
        }
        Err(match last {
            Some(e) => e.into_public(&config.id, PROBE_TIMEOUT),
            None => EtcdError::invalid(&config.id, "endpoints", "no endpoint"),
        })
    }
}

/// Starts the registration task once (needs a tokio runtime).
pub(crate) fn ensure_registration(inner: &Arc<Inner>) {
    let Some(register) = inner.config.registration().cloned() else {
        return;
    };
    let mut slot = lock(&inner.registration);
    if slot.is_some() || *inner.stop.borrow() {
        return;
    }
    *slot = Some(tokio::spawn(registration::run(inner.clone(), register)));
}

impl ClusterProvider for EtcdProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn shutdown(&self) -> provisioning_provider_api::ProviderShutdown<'_> {
        Box::pin(async move {
            // The inherent method: end the streams and revoke the lease.
            if let Err(e) = EtcdProvider::shutdown(self).await {
                tracing::warn!(provider = %self.inner.config.id, error = %e, "shutdown failed");
            }
        })
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        lock(&self.inner.last_seen).clone()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        // Registration starts here inside a runtime, else on the first poll.
        if tokio::runtime::Handle::try_current().is_ok() {
            ensure_registration(&self.inner);
        }
        crate::stream::open(self.inner.clone(), options)
    }

    fn liveness_probe(&self) -> Option<LivenessCheck> {
        self.inner.liveness.check()
    }
}

impl Drop for EtcdProvider {
    fn drop(&mut self) {
        // Streams end; the registration task revokes its lease and exits.
        self.inner.stop.send_replace(true);
    }
}
