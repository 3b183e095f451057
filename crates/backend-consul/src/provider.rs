//! [`ConsulProvider`]: the [`ClusterProvider`] over Consul's health API.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use provisioning_provider_api::{
    ClusterProvider, LivenessCheck, ProviderDescriptor, ProviderSnapshot, ProviderStream,
    StreamOptions,
};
use provisioning_registry::{ProvisioningError, SecretResolver};

use crate::ConsulWatch;
use tokio::sync::watch;

use crate::client::Client;
use crate::config::{ConsulConfig, EnvLookup, process_env};
use crate::mapping::MemberMapping;
use crate::registration::Registration;
use crate::{ConsulError, ConsulOrigin};

/// State shared by the provider and its streams.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) mapping: MemberMapping,
    last_seen: Mutex<Option<ProviderSnapshot>>,
    /// Bumped by [`ConsulProvider::close`]: every stream open at that
    /// moment ends.
    pub(crate) close: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn remember(&self, snapshot: &ProviderSnapshot) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
    }
}

/// A cluster provider whose members are the instances of one Consul
/// service, watched with blocking queries on `/v1/health/service/<service>`.
///
/// Built from a `consul` descriptor (CONTRACTS §1; the `watch` keys are
/// [`ConsulWatch`]'s). Secrets are references, resolved by the given
/// [`SecretResolver`] on every request, so a rotated token is used on the
/// next reconnect. The `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_SSL`,
/// `CONSUL_HTTP_TOKEN(_FILE)`, `CONSUL_CACERT`, `CONSUL_CLIENT_CERT/KEY` and
/// `CONSUL_HTTP_SSL_VERIFY` variables fill the fields the descriptor leaves
/// out; the credentials among them only when every endpoint is
/// `CONSUL_HTTP_ADDR` (same scheme, host and port).
///
/// A stream ends (one `Terminated(Ended)`, then nothing) when
/// [`close`](Self::close) or [`shutdown`](Self::shutdown) is called — the
/// service stopping the provider. Consul itself never ends a watch: a
/// deregistered service is an empty list, a deleted token a permanent
/// `permission_denied` fault that heals when a valid token is read again.
pub struct ConsulProvider {
    descriptor: ProviderDescriptor,
    shared: Arc<Shared>,
    registration: Option<Registration>,
}

impl std::fmt::Debug for ConsulProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulProvider")
            .field("id", &self.descriptor.id)
            .field("config", self.shared.client.config())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ConsulProvider`]; see [`ConsulProvider::builder`].
pub struct ConsulProviderBuilder {
    descriptor: ProviderDescriptor,
    secrets: Option<SecretResolver>,
    env: EnvLookup,
    client: Option<(ConsulOrigin, reqwest::Client)>,
}

impl std::fmt::Debug for ConsulProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulProviderBuilder")
            .field("id", &self.descriptor.id)
            .finish_non_exhaustive()
    }
}

impl ConsulProviderBuilder {
    /// Sets the secret resolver (default: the process environment, relative
    /// `file:` paths against the current directory).
    pub fn with_secrets(mut self, secrets: SecretResolver) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Replaces the lookup of the `CONSUL_HTTP_*` variables (tests, or a
    /// host with its own configuration source). `None` means unset.
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Sends every request (watch, probe, liveness, self-registration)
    /// through `client` instead of a client built from the descriptor, when
    /// every endpoint of the descriptor is at `origin` (same scheme, host
    /// and port). What the program put in the client (a default header, a
    /// client certificate) is for that server only: a descriptor with an
    /// endpoint elsewhere gets the client it describes, as without this
    /// call, and a warning naming the provider is logged.
    ///
    /// The client's: TLS (the descriptor's `tls` and the `CONSUL_CACERT` /
    /// `CONSUL_CLIENT_*` / `CONSUL_HTTP_SSL_VERIFY` variables are checked,
    /// then unused), connect timeout, proxy, default headers, user agent and
    /// redirect policy. Still the descriptor's: the endpoints (the URLs
    /// requested, in the same order of failover), the `auth` token (sent as
    /// `Authorization: Bearer`, which reqwest drops on a redirect to another
    /// host) or basic credentials, read again for each request, the `watch`
    /// and each request's deadline. An answer that comes from another
    /// origin than the one asked (a redirect followed) is refused with a
    /// permanent `invalid_config` fault.
    pub fn with_client(mut self, origin: ConsulOrigin, client: reqwest::Client) -> Self {
        self.client = Some((origin, client));
        self
    }

    /// Validates the descriptor and builds the provider. Nothing connects
    /// yet.
    pub fn build(self) -> Result<ConsulProvider, ConsulError> {
        let secrets = self
            .secrets
            .unwrap_or_else(|| SecretResolver::new(std::path::PathBuf::from(".")));
        let config = ConsulConfig::resolve(&self.descriptor, &secrets, &self.env)?;
        let mapping = MemberMapping::from_watch(&config.watch);
        let registration = config.watch.register.clone().map(Registration::new);
        let client = Client::new(config, secrets, self.client).map_err(|(field, message)| {
            ConsulError::Config(ProvisioningError::invalid(
                Some(&self.descriptor.id),
                Some(field.to_owned()),
                message,
            ))
        })?;
        let (close, _) = watch::channel(0);
        Ok(ConsulProvider {
            descriptor: self.descriptor,
            shared: Arc::new(Shared {
                client,
                mapping,
                last_seen: Mutex::new(None),
                close,
            }),
            registration,
        })
    }
}

impl ConsulProvider {
    /// A builder for `descriptor`.
    pub fn builder(descriptor: ProviderDescriptor) -> ConsulProviderBuilder {
        ConsulProviderBuilder {
            descriptor,
            secrets: None,
            env: process_env(),
            client: None,
        }
    }

    /// Builds the provider from a `consul` descriptor, resolving secrets
    /// with `secrets` and the `CONSUL_HTTP_*` variables from the process
    /// environment.
    pub fn from_descriptor(
        descriptor: ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<Self, ConsulError> {
        Self::builder(descriptor)
            .with_secrets(secrets.clone())
            .build()
    }

    /// The quiet period of a `consul` descriptor, `wait × 17/16`, for
    /// policy validation (the no-response timeout must be at least three
    /// times it) without building a provider.
    pub fn quiet_period_of(descriptor: &ProviderDescriptor) -> Result<Duration, ConsulError> {
        Ok(ConsulWatch::from_descriptor(descriptor)?.quiet_period())
    }

    /// How long a healthy blocking query may stay silent: `wait × 17/16`.
    pub fn quiet_period(&self) -> Duration {
        self.shared.client.config().quiet_period()
    }

    /// The typed `watch` this provider runs.
    pub fn watch(&self) -> &ConsulWatch {
        &self.shared.client.config().watch
    }

    /// Ends every stream open now: each yields `Terminated(Ended)` and
    /// then ends. Streams opened later run normally.
    pub fn close(&self) {
        self.shared.close.send_modify(|generation| *generation += 1);
    }

    /// Ends open streams and, with self-registration, stops passing the
    /// TTL check and deregisters this node from the agent.
    pub async fn shutdown(&self) -> Result<(), ConsulError> {
        self.close();
        if let Some(registration) = &self.registration {
            registration
                .stop(&self.shared.client)
                .await
                .map_err(|e| e.into_consul_error(&self.descriptor.id))?;
        }
        Ok(())
    }

    /// Starts self-registration (`watch.register`) if configured and not
    /// running: register through the agent with a TTL check, then pass it
    /// every third of the TTL, re-registering when the agent forgot it.
    /// Opening a stream starts it too. Needs a tokio runtime.
    pub fn start_registration(&self) {
        if let Some(registration) = &self.registration {
            registration.start(self.shared.clone());
        }
    }

    /// Preflight: Consul reachable with a leader (`/v1/status/leader`), the
    /// token allowed to read the service, the service registered.
    pub async fn probe(&self) -> Result<(), ConsulError> {
        crate::probe::probe(&self.shared.client).await
    }
}

impl Drop for ConsulProvider {
    fn drop(&mut self) {
        // Without a runtime to deregister on, stop passing: the TTL check
        // turns critical and Consul removes the instance after
        // DeregisterCriticalServiceAfter.
        if let Some(registration) = &self.registration {
            registration.abort();
        }
    }
}

impl ClusterProvider for ConsulProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn shutdown(&self) -> provisioning_provider_api::ProviderShutdown<'_> {
        Box::pin(async move {
            // The inherent method: close the streams and deregister.
            if let Err(e) = ConsulProvider::shutdown(self).await {
                tracing::warn!(provider = %self.descriptor.id, error = %e, "deregistration on shutdown failed");
            }
        })
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        self.shared
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        self.start_registration();
        crate::stream::open(self.shared.clone(), options)
    }

    fn liveness_probe(&self) -> Option<LivenessCheck> {
        Some(crate::liveness::check(self.shared.clone()))
    }
}
