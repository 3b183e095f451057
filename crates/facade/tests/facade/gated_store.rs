//! A store whose lock can be held shut, as another process holding the
//! file store's lock would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use cluster_provisioning::api::ProviderDescriptor;
use cluster_provisioning::registry::{
    MemoryProviderStore, ProviderStore, ProvisioningError, StoreTransaction,
};

/// A [`MemoryProviderStore`] whose transactions wait while the gate is
/// shut, counting saves.
#[derive(Debug, Default)]
pub(crate) struct GatedStore {
    inner: MemoryProviderStore,
    shut: Mutex<bool>,
    opened: Condvar,
    saves: Arc<AtomicUsize>,
}

impl GatedStore {
    pub(crate) fn with_descriptors(descriptors: Vec<ProviderDescriptor>) -> Self {
        Self {
            inner: MemoryProviderStore::with_descriptors(descriptors),
            ..Self::default()
        }
    }

    /// Transactions wait from now on.
    fn shut(&self) {
        *self.shut.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Shuts the gate until the returned guard is dropped (also when a
    /// failing assertion unwinds, so nothing is left waiting).
    pub(crate) fn shut_until_dropped(self: &Arc<Self>) -> OpenOnDrop {
        self.shut();
        OpenOnDrop(self.clone())
    }

    /// Waiting transactions go on.
    pub(crate) fn open(&self) {
        *self.shut.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.opened.notify_all();
    }

    /// Saves through transactions so far.
    pub(crate) fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// Replaces the stored set behind the service's back (a hand edit).
    pub(crate) fn edit(&self, descriptors: &[ProviderDescriptor]) {
        self.inner.save(descriptors).expect("memory save");
    }

    /// The stored set.
    pub(crate) fn stored(&self) -> Vec<ProviderDescriptor> {
        self.inner.load().expect("memory load")
    }
}

/// Opens the gate when dropped.
pub(crate) struct OpenOnDrop(Arc<GatedStore>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

struct Counted<'a> {
    inner: Box<dyn StoreTransaction + 'a>,
    saves: Arc<AtomicUsize>,
}

impl StoreTransaction for Counted<'_> {
    fn load(&mut self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        self.inner.load()
    }

    fn save(&mut self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(descriptors)
    }
}

impl ProviderStore for GatedStore {
    fn load(&self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        self.inner.load()
    }

    fn save(&self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        self.inner.save(descriptors)
    }

    fn transaction(&self) -> Result<Box<dyn StoreTransaction + '_>, ProvisioningError> {
        let mut shut = self.shut.lock().unwrap_or_else(PoisonError::into_inner);
        while *shut {
            shut = self
                .opened
                .wait(shut)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(shut);
        Ok(Box::new(Counted {
            inner: self.inner.transaction()?,
            saves: self.saves.clone(),
        }))
    }
}
