//! [`EventSink`]: forwards every published event to a host runtime's own
//! event bus (the seed's "extend the existing ClusterEvent").

use std::sync::Arc;

use provisioning_watch_hub::wire::ProvisioningEvent;

/// Receives every event the service publishes, in publication order.
///
/// Called from the service's delivery path: keep it cheap and non-blocking
/// (hand the event to a channel). The event is shared, not copied.
pub trait EventSink: Send + Sync {
    /// One published event.
    fn publish(&self, event: Arc<ProvisioningEvent>);
}

impl<F> EventSink for F
where
    F: Fn(Arc<ProvisioningEvent>) + Send + Sync,
{
    fn publish(&self, event: Arc<ProvisioningEvent>) {
        self(event);
    }
}
