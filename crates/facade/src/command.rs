//! Requests from a [`ProvisioningHandle`](crate::ProvisioningHandle) to the
//! service's driver task.

use provisioning_provider_api::{ProviderDescriptor, ProviderId};
use provisioning_registry::{ProviderRegistry, ProvisioningError};
use tokio::sync::oneshot;

use crate::ProviderView;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ProvisioningError>>;

pub(crate) enum Command {
    Pin(ProviderId, Reply<()>),
    Unpin(Reply<()>),
    Add(Box<ProviderDescriptor>, Reply<()>),
    Remove(String, Reply<ProviderDescriptor>),
    SetEnabled(String, bool, Reply<()>),
    Reload(ProviderRegistry, Reply<()>),
    Providers(Reply<Vec<ProviderView>>),
    Shutdown(Reply<()>),
}
