//! The admin HTTP API (CONTRACTS §4 and the safety rules of §4a) as an axum
//! [`Router`](axum::Router) a runtime mounts on its own server, behind the
//! cargo feature `admin`. The `provisioning serve` command serves exactly
//! this router.
//!
//! Every route (`/`, `/healthz`, `/readyz`, `/topology`, `/providers`,
//! `/providers/{id}`, `/failover`, `/events`, `/metrics`) sits behind the
//! checks of §4a rule 2 and the token, in this order, all before a body is
//! read or a handler runs: `Host` and `Origin` must name this listener
//! (403), the token (401, except `/healthz` and `/readyz`), a JSON body for
//! a `POST` (415), the body limit (413). Descriptors sent to `POST
//! /providers` may reference only the secrets the [`AdminConfig`]'s
//! [`SecretRefPolicy`](crate::registry::SecretRefPolicy) allows (rule 3).
//! Connection limits and timeouts (rule 5) belong to the server: a server
//! that inserts a [`ConnectionHandle`] into each request's extensions gives
//! the site check the local address the client reached, and lets `/events`
//! close a stalled connection.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cluster_provisioning::admin::{self, AdminConfig};
//! use cluster_provisioning::registry::SecretRefPolicy;
//! let handle = cluster_provisioning::ClusterProvisioningService::build(
//!     cluster_provisioning::builtin_registry(),
//! )
//! .start()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = AdminConfig::new(listener.local_addr()?, SecretRefPolicy::new(".", "./secrets"));
//! let app: axum::Router = admin::router(handle.clone(), config);
//! # drop((app, listener));
//! # handle.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod admin_api;
mod admin_config;
mod api_error;
mod bearer_token;
mod connection_handle;
mod event_stream;
mod event_text;
mod provider_view_json;
mod request_guard;
mod routes;
mod stall_check;
mod status_page;
mod utc_timestamp;

pub use admin_api::AdminApi;
pub use admin_config::AdminConfig;
pub use bearer_token::BearerToken;
pub use connection_handle::ConnectionHandle;
pub use event_text::EventText;
pub use utc_timestamp::UtcTimestamp;

use crate::ProvisioningHandle;

/// The admin API of `handle` as configured by `config`. Use
/// [`AdminApi::new`] + [`AdminApi::router`] instead to keep the API for a
/// token reload.
pub fn router(handle: ProvisioningHandle, config: AdminConfig) -> axum::Router {
    AdminApi::new(handle, config).router()
}
