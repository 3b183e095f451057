//! [`MeshStats`]: what the adapter did, for tests and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one adapter.
#[derive(Debug, Default)]
pub struct MeshStats {
    connects: AtomicU64,
    disconnects: AtomicU64,
    reconciles: AtomicU64,
}

impl MeshStats {
    /// Connect attempts started.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Sessions the adapter closed.
    pub fn disconnects(&self) -> u64 {
        self.disconnects.load(Ordering::Relaxed)
    }

    /// Reconcile passes run.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn disconnected(&self) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reconciled(&self) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
    }
}
