//! [`InMemoryDriver`]: the conformance driver of the in-memory view.

use std::sync::atomic::{AtomicU64, Ordering};

use provisioning_backend_memory::{HandleError, InMemoryHandle};
use provisioning_provider_api::{FaultKind, Incarnation, ProviderFault, ProviderTermination};

use crate::{Capabilities, ConformanceDriver, DriverError, InjectedFault, MembershipChange};

/// The conformance driver of any provider whose view an [`InMemoryHandle`]
/// controls: the in-memory provider itself, and custom kinds built on it
/// (see [`RosterKind`](crate::RosterKind)).
#[derive(Debug)]
pub struct InMemoryDriver {
    handle: InMemoryHandle,
    lives: AtomicU64,
}

impl InMemoryDriver {
    /// Drives the view behind `handle`.
    pub fn new(handle: InMemoryHandle) -> Self {
        Self {
            handle,
            lives: AtomicU64::new(0),
        }
    }
}

impl ConformanceDriver for InMemoryDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    async fn apply(&self, change: MembershipChange) -> Result<(), DriverError> {
        let err = |e: HandleError| DriverError(e.to_string());
        match change {
            MembershipChange::Reset(specs) => self.handle.set_members(specs).map_err(err),
            MembershipChange::Upsert(spec) => {
                let (node, blocked) = spec.into_node();
                let id = node.id.clone();
                self.handle.upsert(node).map_err(err)?;
                if blocked {
                    self.handle.block(id);
                } else {
                    self.handle.unblock(id.as_str());
                }
                Ok(())
            }
            MembershipChange::Remove(id) => {
                self.handle.remove(id.as_str());
                Ok(())
            }
            MembershipChange::Block(id) => {
                self.handle.block(id);
                Ok(())
            }
            MembershipChange::Unblock(id) => {
                self.handle.unblock(id.as_str());
                Ok(())
            }
            // What a restarted process writes into an in-memory view: the
            // same member with the incarnation of its new life.
            MembershipChange::Restart(id) => {
                let snapshot = self.handle.snapshot();
                let mut node = snapshot
                    .member(id.as_str())
                    .cloned()
                    .ok_or_else(|| DriverError(format!("no member {id}")))?;
                let life = self.lives.fetch_add(1, Ordering::Relaxed) + 1;
                let incarnation = Incarnation::new(format!("life-{life}"))
                    .map_err(|e| DriverError(e.to_string()))?;
                node.incarnation = Some(incarnation);
                self.handle.upsert(node).map_err(err)
            }
        }
    }

    async fn inject(&self, fault: InjectedFault) -> Result<(), DriverError> {
        match fault {
            InjectedFault::Retryable => self.handle.fail(ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                "connection refused",
            )),
            InjectedFault::Permanent => self.handle.fail(ProviderFault::permanent(
                FaultKind::PermissionDenied,
                "403 forbidden",
            )),
            InjectedFault::Terminate => {
                self.handle.terminate(ProviderTermination::Ended);
            }
            InjectedFault::Heal => self.handle.heal(),
        }
        Ok(())
    }
}
