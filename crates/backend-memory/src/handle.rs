//! [`InMemoryHandle`]: changes the members of an in-memory provider at run
//! time and scripts its failures.

use std::sync::Arc;

use provisioning_provider_api::{
    ClusterNode, MemberSpec, NodeId, ProviderFault, ProviderSnapshot, ProviderTermination,
};

use crate::state::{Control, Mode, Shared};

/// A member change the handle refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Member ids must be non-empty.
    #[error("member id is empty")]
    EmptyId,
}

/// Cloneable control of an [`InMemoryProvider`](crate::InMemoryProvider):
/// membership changes are seen by every open stream at once; failures are
/// scripted to look like a real backend's (refused, hung, terminated).
#[derive(Debug, Clone)]
pub struct InMemoryHandle {
    pub(crate) shared: Arc<Shared>,
}

impl InMemoryHandle {
    /// Adds a member, or replaces the member with the same id (a change is a
    /// leave followed by a join for consumers).
    pub fn upsert(&self, node: ClusterNode) -> Result<(), HandleError> {
        if node.id.as_str().is_empty() {
            return Err(HandleError::EmptyId);
        }
        self.shared.update(|s| {
            s.members.insert(node.id.clone(), node);
        });
        Ok(())
    }

    /// Adds a member (same as [`upsert`](Self::upsert)).
    pub fn add(&self, node: ClusterNode) -> Result<(), HandleError> {
        self.upsert(node)
    }

    /// Changes a member's host, port or labels (same as
    /// [`upsert`](Self::upsert)).
    pub fn change(&self, node: ClusterNode) -> Result<(), HandleError> {
        self.upsert(node)
    }

    /// Removes a member; returns whether it was there.
    pub fn remove(&self, id: &str) -> bool {
        let mut removed = false;
        self.shared
            .update(|s| removed = s.members.remove(id).is_some());
        removed
    }

    /// Puts an id on the block list.
    pub fn block(&self, id: impl Into<NodeId>) {
        let id = id.into();
        self.shared.update(|s| {
            s.blocked.insert(id);
        });
    }

    /// Takes an id off the block list.
    pub fn unblock(&self, id: &str) {
        self.shared.update(|s| {
            s.blocked.remove(id);
        });
    }

    /// Replaces the whole view with `specs` (member schema of CONTRACTS §1).
    pub fn set_members(&self, specs: Vec<MemberSpec>) -> Result<(), HandleError> {
        if specs.iter().any(|s| s.id.as_str().is_empty()) {
            return Err(HandleError::EmptyId);
        }
        self.shared.update(|s| {
            s.members.clear();
            s.blocked.clear();
            for spec in specs {
                let (node, is_blocked) = spec.into_node();
                if is_blocked {
                    s.blocked.insert(node.id.clone());
                }
                s.members.insert(node.id.clone(), node);
            }
        });
        Ok(())
    }

    /// The current view.
    pub fn snapshot(&self) -> ProviderSnapshot {
        self.shared.snapshot()
    }

    /// Reports one fault on every open stream; a retryable one is followed
    /// by recovery (a heartbeat or snapshot) at once. Returns how many open
    /// streams got it.
    pub fn inject_fault(&self, fault: ProviderFault) -> usize {
        self.shared.broadcast(Control::Fault(fault))
    }

    /// Makes every attempt fail with `fault` until [`heal`](Self::heal): open
    /// streams report it on the retry schedule of their
    /// [`StreamOptions`](provisioning_provider_api::StreamOptions) (at once,
    /// after 100 ms, then backoff) and deliver nothing else, like a backend
    /// that refuses connections.
    pub fn fail(&self, fault: ProviderFault) {
        self.shared.update(|s| s.mode = Mode::Failing(fault));
    }

    /// Makes the backend silent (no snapshot, heartbeat or fault) until
    /// [`heal`](Self::heal), like a hung connection.
    pub fn hang(&self) {
        self.shared.update(|s| s.mode = Mode::Hung);
    }

    /// Ends a [`fail`](Self::fail) or [`hang`](Self::hang); open streams
    /// deliver the current view (or a heartbeat when it is unchanged) at once.
    pub fn heal(&self) {
        self.shared.update(|s| s.mode = Mode::Normal);
    }

    /// Ends every open stream with `termination`. Streams opened later work
    /// normally. Returns how many streams were ended.
    pub fn terminate(&self, termination: ProviderTermination) -> usize {
        self.shared.broadcast(Control::Terminate(termination))
    }
}
