//! [`AdminState`]: what every admin API handler shares.

use std::sync::{Arc, PoisonError, RwLock};

use cluster_provisioning::ProvisioningHandle;
use cluster_provisioning::registry::SecretRefPolicy;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::bearer_token::BearerToken;

/// Most `GET /events` streams open at once (CONTRACTS §4a rule 5).
pub(crate) const MAX_EVENT_STREAMS: usize = 64;

/// The running service, the token (if any), the secret-reference policy and
/// the event-stream slots. Cloned per request; the clone shares everything.
/// The service runs for the server's whole life (a SIGHUP changes its set
/// and policy in place); the token can be replaced (SIGHUP re-reads
/// `--token-file`).
#[derive(Clone, Debug)]
pub(crate) struct AdminState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: ProvisioningHandle,
    token: RwLock<Option<Arc<BearerToken>>>,
    streams: Arc<Semaphore>,
    secret_refs: SecretRefPolicy,
}

impl AdminState {
    /// The state of one server.
    pub(crate) fn new(
        handle: ProvisioningHandle,
        token: Option<BearerToken>,
        secret_refs: SecretRefPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                handle,
                token: RwLock::new(token.map(Arc::new)),
                streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
                secret_refs,
            }),
        }
    }

    /// The running service (a cheap clone of its handle).
    pub(crate) fn handle(&self) -> ProvisioningHandle {
        self.inner.handle.clone()
    }

    /// The required token; `None` when auth is off.
    pub(crate) fn token(&self) -> Option<Arc<BearerToken>> {
        self.inner
            .token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGHUP: reads `--token-file` again. A file that cannot be read or
    /// holds no token keeps the old token (said on stderr): a half-written
    /// file must not lock the operator out, nor switch auth off. Without
    /// `--token-file` there is nothing to re-read (auth stays off).
    pub(crate) fn reload_token(&self) {
        let Some(path) = self.token().and_then(|t| t.source().map(ToOwned::to_owned)) else {
            return;
        };
        match BearerToken::load(&path) {
            Ok(token) => {
                *self
                    .inner
                    .token
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(token));
                eprintln!("SIGHUP: re-read the admin token from {}", path.display());
            }
            Err(e) => eprintln!("{e} (SIGHUP: the previous admin token is kept)"),
        }
    }

    /// One of the event-stream slots, or `None` when all are taken; the
    /// slot is free again when the permit is dropped.
    pub(crate) fn event_stream_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.streams.clone().try_acquire_owned().ok()
    }

    /// What a descriptor sent to `POST /providers` may reference.
    pub(crate) fn secret_refs(&self) -> &SecretRefPolicy {
        &self.inner.secret_refs
    }
}
