//! [`MeshError`]: why the adapter cannot start.

use cluster_provisioning::ProvisioningError;

use crate::LabelError;

/// Why the adapter or its `NodeServer` cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The local member's labels cannot be used.
    #[error(transparent)]
    Label(#[from] LabelError),
    /// The local member names no cookie reference.
    #[error(
        "member {member}: label {label} is required (a secret reference such as env:RACTOR_COOKIE)"
    )]
    MissingCookie {
        /// The local member.
        member: String,
        /// The label key.
        label: &'static str,
    },
    /// The cookie reference could not be resolved (the message names the
    /// reference, never the value).
    #[error("cookie: {0}")]
    Cookie(ProvisioningError),
    /// The `NodeServer` actor could not be spawned.
    #[error("ractor NodeServer: {0}")]
    NodeServer(String),
    /// The topology stream could not be opened.
    #[error("topology stream: {0}")]
    Topology(ProvisioningError),
}
