//! [`RosterKind`]: a custom provider kind, registered the way a user
//! registers one, to show that custom kinds get everything built-in kinds
//! get.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use provisioning_backend_memory::{InMemoryHandle, InMemoryProvider};
use provisioning_provider_api::{
    ClusterProvider, MemberSpec, ProviderDescriptor, ProviderId, ProviderKind, ProviderSnapshot,
};
use provisioning_registry::watch_schema::{non_empty, parse_watch, watch_error};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};
use serde::Deserialize;

use crate::RosterProvider;

/// How long the probe waits for one endpoint's TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `watch` of kind `roster`: a named group and its initial members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterWatch {
    group: String,
    #[serde(default)]
    members: Vec<MemberSpec>,
}

impl RosterWatch {
    fn parse(descriptor: &ProviderDescriptor) -> Result<Self, ProvisioningError> {
        let watch: Self = parse_watch(&descriptor.watch)?;
        non_empty("group", Some(&watch.group))?;
        if watch.group.contains('/') {
            return Err(watch_error("group", "must not contain '/'"));
        }
        ProviderSnapshot::from_specs(watch.members.iter().cloned())
            .map_err(|e| watch_error("members", e.to_string()))?;
        Ok(watch)
    }
}

/// Kind `roster`: `watch` is `{"group": "<name>", "members": [...]}` (a
/// group name without `/`, and the initial members); endpoints are
/// optional, and the probe checks that each one accepts a TCP connection;
/// two descriptors with the same endpoints and group conflict.
///
/// The provider it builds is an in-memory view the test changes through
/// [`handle`](Self::handle), so it runs through the conformance suite with
/// [`InMemoryDriver`](crate::InMemoryDriver).
#[derive(Debug, Default)]
pub struct RosterKind {
    handles: Mutex<BTreeMap<ProviderId, InMemoryHandle>>,
    probes: AtomicUsize,
}

impl RosterKind {
    /// The kind name.
    pub const NAME: &'static str = "roster";

    /// A kind with no provider built yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The handle of the provider last built for `id`.
    pub fn handle(&self, id: &str) -> Option<InMemoryHandle> {
        let handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        handles
            .iter()
            .find(|(key, _)| key.as_str() == id)
            .map(|(_, handle)| handle.clone())
    }

    /// How many probes ran.
    pub fn probes(&self) -> usize {
        self.probes.load(Ordering::Relaxed)
    }
}

impl BackendKind for RosterKind {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Optional
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        RosterWatch::parse(descriptor).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        RosterWatch::parse(descriptor).ok().map(|w| w.group)
    }

    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        _context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        let watch = RosterWatch::parse(descriptor)?;
        let inner = InMemoryProvider::new(descriptor.id.clone(), descriptor.priority);
        inner
            .handle()
            .set_members(watch.members)
            .map_err(|e| watch_error("members", e.to_string()))?;
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(descriptor.id.clone(), inner.handle());
        Ok(Arc::new(RosterProvider::new(descriptor.clone(), inner)))
    }

    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        _secrets: &'a SecretResolver,
    ) -> Option<ProbeFuture<'a>> {
        Some(Box::pin(async move {
            self.probes.fetch_add(1, Ordering::Relaxed);
            for endpoint in &descriptor.endpoints {
                connect(endpoint).await?;
            }
            Ok(())
        }))
    }
}

/// One TCP handshake with the host and port of `endpoint`.
async fn connect(endpoint: &str) -> Result<(), ProvisioningError> {
    let unavailable = |detail: String| ProvisioningError::BackendUnavailable {
        provider: None,
        detail,
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| ProvisioningError::invalid(None, Some("endpoints".into()), format!("{e}")))?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unavailable(format!("{endpoint}: {e}"))),
        Err(_) => Err(unavailable(format!(
            "{endpoint}: no answer within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

/// The kind as a [`ProviderKind`].
pub fn roster_kind() -> ProviderKind {
    ProviderKind::from(RosterKind::NAME)
}
