//! [`InjectedClients`]: network clients a program built itself, for a kind
//! to use instead of the ones it would build from descriptors.

use std::collections::BTreeMap;
use std::fmt;

use provisioning_provider_api::ProviderId;

/// The clients a program hands to a kind: one for every provider of the
/// kind, one per provider id, or both (the provider's own wins). A provider
/// with neither gets the client its descriptor describes.
///
/// The backends use it for their `with_client` / `with_client_for` kind
/// builders; `C` is what the backend keeps per client (a `kube::Client`,
/// an `etcd_client::Client`, a `reqwest::Client` with the origin it is
/// bound to), all cheap to clone.
///
/// ```
/// use provisioning_provider_api::ProviderId;
/// use provisioning_registry::InjectedClients;
/// let a = ProviderId::new("a")?;
/// let b = ProviderId::new("b")?;
/// let clients = InjectedClients::new()
///     .with_every("shared")
///     .with_provider(a.clone(), "own");
/// assert_eq!(clients.for_provider(&a), Some(&"own"));
/// assert_eq!(clients.for_provider(&b), Some(&"shared"));
/// assert!(InjectedClients::<&str>::new().for_provider(&a).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct InjectedClients<C> {
    every: Option<C>,
    by_provider: BTreeMap<ProviderId, C>,
}

impl<C> InjectedClients<C> {
    /// None: every provider builds its client from its descriptor.
    pub fn new() -> Self {
        Self {
            every: None,
            by_provider: BTreeMap::new(),
        }
    }

    /// `client` for every provider that has no client of its own.
    pub fn with_every(mut self, client: C) -> Self {
        self.every = Some(client);
        self
    }

    /// `client` for the provider `id` (replaces an earlier one for `id`).
    pub fn with_provider(mut self, id: ProviderId, client: C) -> Self {
        self.by_provider.insert(id, client);
        self
    }

    /// The client the provider `id` uses: its own, else the one for every
    /// provider, else `None` (build one from the descriptor).
    pub fn for_provider(&self, id: &ProviderId) -> Option<&C> {
        self.by_provider.get(id).or(self.every.as_ref())
    }
}

impl<C> Default for InjectedClients<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> fmt::Debug for InjectedClients<C> {
    /// Which providers have a client, never the clients: they may hold
    /// credentials (a default `Authorization` header, say).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InjectedClients")
            .field("every", &self.every.is_some())
            .field("providers", &self.by_provider.keys().collect::<Vec<_>>())
            .finish()
    }
}
