//! Provider registry, validation, the ProviderStore trait, ProvisioningError and secret resolution.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
