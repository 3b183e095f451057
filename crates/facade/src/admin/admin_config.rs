//! [`AdminConfig`]: what an admin API needs besides the service.

use std::net::SocketAddr;

use super::BearerToken;
use crate::registry::SecretRefPolicy;

/// The listener address the API is reached at (for the `Host` and `Origin`
/// checks), the token (none: auth off, which CONTRACTS §4a rule 1 allows
/// only on loopback — the caller's listener decides), and what descriptors
/// from `POST /providers` may reference.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) token: Option<BearerToken>,
    pub(crate) secret_refs: SecretRefPolicy,
}

impl AdminConfig {
    /// An API reached at `listen`, without a token.
    pub fn new(listen: SocketAddr, secret_refs: SecretRefPolicy) -> Self {
        Self {
            listen,
            token: None,
            secret_refs,
        }
    }

    /// Requires `Authorization: Bearer <token>` on every route but
    /// `/healthz` and `/readyz`.
    pub fn with_token(mut self, token: BearerToken) -> Self {
        self.token = Some(token);
        self
    }
}
