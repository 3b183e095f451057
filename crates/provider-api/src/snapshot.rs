//! [`ProviderSnapshot`]: one complete view of the members from one provider.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use crate::host_key::HostKey;
use crate::{ClusterNode, MemberSpec, NodeId, ProviderHealth, hash::hash_encoding};

/// Why a member list cannot form a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Two members share an id.
    DuplicateMember(NodeId),
    /// A member has an empty id.
    EmptyId,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateMember(id) => write!(f, "duplicate member id {id:?} in one snapshot"),
            Self::EmptyId => f.write_str("member with an empty id"),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// The hash, computed at most once per snapshot and shared by every reader.
/// Two threads racing compute the same value, so the race is benign.
#[derive(Default)]
struct HashCell {
    value: AtomicU64,
    ready: AtomicBool,
}

impl HashCell {
    fn get(&self) -> Option<u64> {
        self.ready
            .load(Ordering::Acquire)
            .then(|| self.value.load(Ordering::Relaxed))
    }

    fn set(&self, hash: u64) {
        self.value.store(hash, Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
    }
}

/// One complete view of the members from one provider.
///
/// Invariants kept by construction: members sorted by id with no duplicate or
/// empty id; `blocked` sorted without duplicates (it may name non-members).
/// The content hash of CONTRACTS §6 is computed on first use and cached.
/// Members and block list are shared, so a clone is a reference-count bump
/// whatever the size (the hub, the failover path and every consumer pass
/// views around without copying them).
///
/// ```
/// use provisioning_provider_api::{ClusterNode, ProviderSnapshot};
/// let s = ProviderSnapshot::new(vec![ClusterNode::new("n1", "127.0.0.1", 4000)], vec![])?;
/// assert_eq!(format!("{:016x}", s.hash()), "8cd9924dea78c53d");
/// # Ok::<(), provisioning_provider_api::SnapshotError>(())
/// ```
#[derive(Clone)]
pub struct ProviderSnapshot {
    content: Arc<Content>,
    health: ProviderHealth,
    revision: Option<String>,
    last_contact: Option<Duration>,
}

/// What the hash covers, shared by every clone of a snapshot.
struct Content {
    members: Vec<ClusterNode>,
    /// `members[i].host` as [`HostKey`] `i`: the hash and the diff read
    /// short hosts from here, in member order (see [`HostKey`]).
    hosts: Vec<HostKey>,
    blocked: Vec<NodeId>,
    hash: HashCell,
}

impl Content {
    fn new(members: Vec<ClusterNode>, blocked: Vec<NodeId>) -> Arc<Self> {
        let hosts = members.iter().map(|m| HostKey::of(&m.host)).collect();
        Arc::new(Self {
            members,
            hosts,
            blocked,
            hash: HashCell::default(),
        })
    }
}

impl ProviderSnapshot {
    /// Builds a snapshot, sorting members and block list.
    pub fn new(
        mut members: Vec<ClusterNode>,
        mut blocked: Vec<NodeId>,
    ) -> Result<Self, SnapshotError> {
        if !members.is_sorted_by(|a, b| a.id < b.id) {
            members.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        }
        if let Some(pair) = members.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(SnapshotError::DuplicateMember(pair[0].id.clone()));
        }
        if members.first().is_some_and(|m| m.id.as_str().is_empty()) {
            return Err(SnapshotError::EmptyId);
        }
        if !blocked.is_sorted_by(|a, b| a < b) {
            blocked.sort_unstable();
            blocked.dedup();
        }
        Ok(Self {
            content: Content::new(members, blocked),
            health: ProviderHealth::Healthy,
            revision: None,
            last_contact: None,
        })
    }

    /// Builds a snapshot from the stored member schema; `blocked: true`
    /// members go on the block list.
    pub fn from_specs(specs: impl IntoIterator<Item = MemberSpec>) -> Result<Self, SnapshotError> {
        let mut blocked = Vec::new();
        let members = specs
            .into_iter()
            .map(|spec| {
                let (node, is_blocked) = spec.into_node();
                if is_blocked {
                    blocked.push(node.id.clone());
                }
                node
            })
            .collect();
        Self::new(members, blocked)
    }

    /// A snapshot with no members and nothing blocked.
    pub fn empty() -> Self {
        Self {
            content: Content::new(Vec::new(), Vec::new()),
            health: ProviderHealth::Healthy,
            revision: None,
            last_contact: None,
        }
    }

    /// Sets the health the provider reports with this view.
    pub fn with_health(mut self, health: ProviderHealth) -> Self {
        self.health = health;
        self
    }

    /// Sets the backend position (`X-Consul-Index`, `resourceVersion`, etcd
    /// revision), for diagnostics and resume.
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }

    /// Sets the backend's own staleness (Consul `X-Consul-LastContact`).
    pub fn with_last_contact(mut self, last_contact: Duration) -> Self {
        self.last_contact = Some(last_contact);
        self
    }

    /// Members, sorted by id.
    pub fn members(&self) -> &[ClusterNode] {
        &self.content.members
    }

    /// The members' [`HostKey`]s, in member order.
    pub(crate) fn host_keys(&self) -> &[HostKey] {
        &self.content.hosts
    }

    /// Blocked ids, sorted.
    pub fn blocked(&self) -> &[NodeId] {
        &self.content.blocked
    }

    /// The member with this id.
    pub fn member(&self, id: &str) -> Option<&ClusterNode> {
        self.content
            .members
            .binary_search_by(|m| m.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.content.members[i])
    }

    /// Whether `id` is on the block list.
    pub fn is_blocked(&self, id: &str) -> bool {
        self.content
            .blocked
            .binary_search_by(|b| b.as_str().cmp(id))
            .is_ok()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.content.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.content.members.is_empty()
    }

    /// Health reported with this view.
    pub fn health(&self) -> ProviderHealth {
        self.health
    }

    /// Backend position, if the backend has one.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// Backend staleness, if the backend reports one.
    pub fn last_contact(&self) -> Option<Duration> {
        self.last_contact
    }

    /// The content hash of CONTRACTS §6 (computed once, then cached).
    pub fn hash(&self) -> u64 {
        let content = &self.content;
        if let Some(hash) = content.hash.get() {
            return hash;
        }
        let members = content.members.iter().zip(&content.hosts);
        let hash = hash_encoding(
            members.map(|(member, key)| (member, key.host_bytes(&member.host))),
            &content.blocked,
        );
        content.hash.set(hash);
        hash
    }

    /// Whether the hash has been computed already.
    pub fn is_hashed(&self) -> bool {
        self.content.hash.get().is_some()
    }

    /// Whether both views hold the same members and block list (health,
    /// revision and staleness ignored).
    pub fn same_content(&self, other: &Self) -> bool {
        let (a, b) = (&self.content, &other.content);
        if Arc::ptr_eq(a, b) {
            return true;
        }
        match (a.hash.get(), b.hash.get()) {
            (Some(x), Some(y)) if x != y => false,
            _ => a.members == b.members && a.blocked == b.blocked,
        }
    }

    /// Takes the snapshot apart (copies the lists only if a clone still
    /// shares them).
    pub fn into_parts(self) -> (Vec<ClusterNode>, Vec<NodeId>) {
        match Arc::try_unwrap(self.content) {
            Ok(content) => (content.members, content.blocked),
            Err(shared) => (shared.members.clone(), shared.blocked.clone()),
        }
    }
}

impl PartialEq for ProviderSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.same_content(other)
            && self.health == other.health
            && self.revision == other.revision
            && self.last_contact == other.last_contact
    }
}

impl Eq for ProviderSnapshot {}

impl fmt::Debug for ProviderSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSnapshot")
            .field("members", &self.content.members)
            .field("blocked", &self.content.blocked)
            .field("health", &self.health)
            .field("revision", &self.revision)
            .field("last_contact", &self.last_contact)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn sorts_and_rejects_duplicates() {
        let s = ProviderSnapshot::new(
            vec![ClusterNode::new("b", "h", 1), ClusterNode::new("a", "h", 1)],
            vec!["z".into(), "a".into(), "z".into()],
        )
        .unwrap();
        assert_eq!(s.members()[0].id.as_str(), "a");
        assert_eq!(s.blocked(), &[NodeId::from("a"), NodeId::from("z")]);
        let dup = ProviderSnapshot::new(
            vec![ClusterNode::new("a", "h", 1), ClusterNode::new("a", "h", 2)],
            vec![],
        );
        assert_eq!(dup.unwrap_err(), SnapshotError::DuplicateMember("a".into()));
        assert_eq!(
            ProviderSnapshot::new(vec![ClusterNode::new("", "h", 1)], vec![]).unwrap_err(),
            SnapshotError::EmptyId
        );
    }

    #[test]
    fn hash_cached_and_shared_by_clones() {
        let s =
            ProviderSnapshot::new(vec![ClusterNode::new("n1", "127.0.0.1", 4000)], vec![]).unwrap();
        assert!(!s.is_hashed());
        let clone = s.clone();
        let h = s.hash();
        assert!(s.is_hashed());
        // A clone made before hashing shares the computed hash.
        assert!(clone.is_hashed());
        assert_eq!(clone.hash(), h);
    }
}
