//! [`ProviderHandle`]: one opened stream of one provider.

use std::fmt;

use provisioning_provider_api::ProviderId;

/// One opened stream of one provider: the provider's id and the generation
/// of the stream, new on every open.
///
/// The controller hands one out with every
/// [`Decision::OpenStream`](crate::Decision::OpenStream); the driver tags the
/// stream's events with it. Events carrying the handle of a stream the
/// controller has since closed (still in flight when it was closed) are
/// ignored, so a stale stream can never revive a provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderHandle {
    id: ProviderId,
    generation: u64,
}

impl ProviderHandle {
    pub(crate) fn new(id: ProviderId, generation: u64) -> Self {
        Self { id, generation }
    }

    /// The provider.
    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    /// The stream's generation: unique within one controller, increasing.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Display for ProviderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.id, self.generation)
    }
}
