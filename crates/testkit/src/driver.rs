//! [`ConformanceDriver`]: how the suite changes a backend's membership and
//! injects faults, whatever the backend.

use std::fmt;
use std::future::Future;

use provisioning_provider_api::{MemberSpec, NodeId};

/// A membership change at the backend (the ground truth the provider
/// watches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Replace everything with these members (block flags included).
    Reset(Vec<MemberSpec>),
    /// Add a member or change an existing one.
    Upsert(MemberSpec),
    /// Remove a member.
    Remove(NodeId),
    /// Put a member on the block list.
    Block(NodeId),
    /// Take a member off the block list.
    Unblock(NodeId),
    /// The member's process restarts: it goes away and comes back under the
    /// same id, address and labels, as a new life (whatever the backend
    /// does on a real restart: a key deleted and put again, a
    /// deregistration and a registration, a Pod recreated).
    Restart(NodeId),
}

/// A fault injected at the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// The backend fails in a way a retry can cure (refused, 5xx, 429...)
    /// until [`Heal`](Self::Heal).
    Retryable,
    /// The backend fails in a way no retry cures (credentials rejected,
    /// permission revoked) until [`Heal`](Self::Heal).
    Permanent,
    /// The backend ends the provider's stream.
    Terminate,
    /// Undo the current fault.
    Heal,
}

/// A driver operation that failed (the test setup, not the provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError(pub String);

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "driver: {}", self.0)
    }
}

impl std::error::Error for DriverError {}

/// Optional behaviour a backend can express. Mandatory cases ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Member labels travel from the backend to the snapshot unchanged.
    pub labels: bool,
    /// The block list may name ids that are not members.
    pub block_non_members: bool,
    /// `initial_snapshot()` returns the last view a stream delivered.
    pub initial_snapshot: bool,
    /// A restart under the same id ([`MembershipChange::Restart`]) yields a
    /// new incarnation.
    pub incarnations: bool,
    /// A member can be reported draining before it leaves (an
    /// [`Upsert`](MembershipChange::Upsert) of a member whose `state` is
    /// `Draining`).
    pub draining: bool,
}

impl Capabilities {
    /// No optional capability.
    pub fn none() -> Self {
        Self::default()
    }

    /// Every optional capability.
    pub fn all() -> Self {
        Self {
            labels: true,
            block_non_members: true,
            initial_snapshot: true,
            incarnations: true,
            draining: true,
        }
    }

    /// Sets `labels`.
    pub fn with_labels(mut self, on: bool) -> Self {
        self.labels = on;
        self
    }

    /// Sets `block_non_members`.
    pub fn with_block_non_members(mut self, on: bool) -> Self {
        self.block_non_members = on;
        self
    }

    /// Sets `initial_snapshot`.
    pub fn with_initial_snapshot(mut self, on: bool) -> Self {
        self.initial_snapshot = on;
        self
    }

    /// Sets `incarnations`.
    pub fn with_incarnations(mut self, on: bool) -> Self {
        self.incarnations = on;
        self
    }

    /// Sets `draining`.
    pub fn with_draining(mut self, on: bool) -> Self {
        self.draining = on;
        self
    }
}

/// Changes a backend's membership and injects faults for the conformance
/// suite. One implementation per backend: the in-memory handle, the fake
/// Consul and Kubernetes servers, a real etcd.
pub trait ConformanceDriver: Send + Sync {
    /// The optional behaviour this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Applies a membership change at the backend.
    fn apply(
        &self,
        change: MembershipChange,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Injects or heals a fault at the backend.
    fn inject(&self, fault: InjectedFault) -> impl Future<Output = Result<(), DriverError>> + Send;
}
