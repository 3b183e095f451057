//! [`AdminApi`]: what every admin API handler shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use crate::ProvisioningHandle;
use crate::registry::{ProvisioningError, SecretRefPolicy};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::request_guard::RequestGuard;
use super::{AdminConfig, BearerToken};

/// Most `GET /events` streams open at once (CONTRACTS §4a rule 5).
pub(crate) const MAX_EVENT_STREAMS: usize = 64;

/// The running service, the token (if any), the secret-reference policy and
/// the event-stream slots. Cloned per request; the clone shares everything.
/// The service runs for the server's whole life (a SIGHUP changes its set
/// and policy in place); the token can be replaced (SIGHUP re-reads
/// `--token-file`).
#[derive(Clone, Debug)]
pub struct AdminApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: ProvisioningHandle,
    token: RwLock<Option<Arc<BearerToken>>>,
    streams: Arc<Semaphore>,
    secret_refs: SecretRefPolicy,
    listen: SocketAddr,
}

impl AdminApi {
    /// The API of `handle` as `config` says.
    pub fn new(handle: ProvisioningHandle, config: AdminConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                handle,
                token: RwLock::new(config.token.map(Arc::new)),
                streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
                secret_refs: config.secret_refs,
                listen: config.listen,
            }),
        }
    }

    /// The routes, sharing this API's state (a later
    /// [`reload_token`](Self::reload_token) applies to them).
    pub fn router(&self) -> axum::Router {
        super::routes::router(self.clone(), RequestGuard::new(self.inner.listen))
    }

    /// The address the API is configured to be reached at.
    pub(crate) fn listen(&self) -> SocketAddr {
        self.inner.listen
    }

    /// The running service (a cheap clone of its handle).
    pub fn handle(&self) -> ProvisioningHandle {
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

    /// Reads the token's file again (on SIGHUP, say): `Ok(Some(path))`
    /// when the new token applies, `Ok(None)` when the token came from no
    /// file (or auth is off: nothing to re-read). A file that cannot be read
    /// or holds no token is an error and keeps the old token: a half-written
    /// file must not lock the operator out, nor switch auth off.
    pub fn reload_token(&self) -> Result<Option<PathBuf>, ProvisioningError> {
        let Some(path) = self.token().and_then(|t| t.source().map(ToOwned::to_owned)) else {
            return Ok(None);
        };
        let token = BearerToken::load(&path)?;
        *self
            .inner
            .token
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(token));
        Ok(Some(path))
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
