#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod backend_kind;
mod bounded_file;
mod bounded_file_error;
mod descriptor_json;
mod endpoint;
mod error;
mod error_code;
mod injected_clients;
mod memory_store;
mod probe;
mod provider_set;
mod registry;
mod registry_builder;
mod secret;
mod secret_ref_policy;
mod secret_resolver;
mod set_checker;
mod store;
mod store_transaction;
mod validator;
pub mod watch_schema;

pub use backend_kind::{BackendKind, BuildContext, EndpointRule, kind_without_client};
pub use bounded_file::{
    MAX_DESCRIPTOR_FILE_BYTES, check_bounded_file, read_bounded_file, read_file_at_most,
};
pub use bounded_file_error::BoundedFileError;
pub use descriptor_json::{descriptor_from_json, descriptor_to_json};
pub use error::ProvisioningError;
pub use error_code::ErrorCode;
pub use injected_clients::InjectedClients;
pub use memory_store::MemoryProviderStore;
pub use probe::{ProbeFuture, ProviderProbe};
pub use provider_set::ProviderSet;
pub use registry::ProviderRegistry;
pub use registry_builder::ProviderRegistryBuilder;
pub use secret::Secret;
pub use secret_ref_policy::SecretRefPolicy;
pub use secret_resolver::SecretResolver;
pub use set_checker::SetChecker;
pub use store::ProviderStore;
pub use store_transaction::StoreTransaction;
pub use validator::ProviderValidator;

/// Compile-time proof that the extension traits are usable as `dyn`.
fn _object_safe(
    _: &dyn ProviderStore,
    _: &dyn StoreTransaction,
    _: &dyn ProviderProbe,
    _: &dyn BackendKind,
) {
}
