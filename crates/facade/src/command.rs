//! Requests to the service's driver task, from a
//! [`ProvisioningHandle`](crate::ProvisioningHandle) (reads, pins, shutdown)
//! and from the persister task (committed sets).

use provisioning_provider_api::ProviderId;
use provisioning_registry::ProvisioningError;
use tokio::sync::oneshot;

use crate::ProviderView;
use crate::next_set::NextSet;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ProvisioningError>>;

pub(crate) enum Command {
    Pin(ProviderId, Reply<()>),
    Unpin(Reply<()>),
    /// Makes a committed set the running set (from the persister only).
    Apply(Box<NextSet>, Reply<()>),
    Providers(Reply<Vec<ProviderView>>),
    Shutdown(Reply<()>),
}
