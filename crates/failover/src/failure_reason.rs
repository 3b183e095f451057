//! [`FailureReason`]: a failure the driver saw outside the stream's items.

use provisioning_provider_api::{ProviderEvent, ProviderFault, ProviderTermination};

/// A failure of a provider's stream that the driver observed itself (the
/// seed's `record_failure(handle, reason)`): building the stream failed, its
/// task panicked, it ended without a `Terminated` item. Recorded exactly like
/// the matching [`ProviderEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// A non-terminal error; the stream goes on.
    Fault(ProviderFault),
    /// The stream is gone.
    Terminated(ProviderTermination),
}

impl FailureReason {
    /// The provider event this failure stands for.
    pub fn into_event(self) -> ProviderEvent {
        match self {
            Self::Fault(fault) => ProviderEvent::Fault(fault),
            Self::Terminated(termination) => ProviderEvent::Terminated(termination),
        }
    }
}

impl From<ProviderFault> for FailureReason {
    fn from(fault: ProviderFault) -> Self {
        Self::Fault(fault)
    }
}

impl From<ProviderTermination> for FailureReason {
    fn from(termination: ProviderTermination) -> Self {
        Self::Terminated(termination)
    }
}
