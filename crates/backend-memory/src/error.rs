//! [`InMemoryError`].

use thiserror::Error;

/// Why an in-memory provider cannot be built from its descriptor.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InMemoryError {
    /// The descriptor is not of kind `in_memory`.
    #[error("provider {id}: kind is {kind:?}, expected \"in_memory\"")]
    WrongKind {
        /// Provider id.
        id: String,
        /// The kind found.
        kind: String,
    },
    /// A `watch` key this backend does not know.
    #[error("provider {id}: unknown field \"watch.{key}\" (known: members)")]
    UnknownWatchKey {
        /// Provider id.
        id: String,
        /// The unknown key.
        key: String,
    },
    /// `watch.members` does not follow the member schema of CONTRACTS §1.
    #[error("provider {id}: watch.members: {message}")]
    BadMembers {
        /// Provider id.
        id: String,
        /// What is wrong (serde's message, or the duplicate id).
        message: String,
    },
}

impl InMemoryError {
    /// The stable error code (always `invalid_config`).
    pub fn code(&self) -> &'static str {
        "invalid_config"
    }
}
