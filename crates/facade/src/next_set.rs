//! [`NextSet`]: a committed provider set on its way to the driver.

use provisioning_failover::FailoverPolicy;
use provisioning_provider_api::ProviderDescriptor;

use crate::provider_builder::Built;

/// A set that passed every check and was persisted (or, on a reload, was
/// read from the store): the driver makes it the running set without any
/// I/O.
pub(crate) struct NextSet {
    /// Every descriptor, disabled ones included.
    pub(crate) descriptors: Vec<ProviderDescriptor>,
    /// The providers of the new and changed descriptors.
    pub(crate) built: Built,
    /// A new policy, applied in place.
    pub(crate) policy: Option<FailoverPolicy>,
}
