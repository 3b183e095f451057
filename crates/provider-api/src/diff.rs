//! [`diff`]: the events that turn one snapshot into another, by a linear merge
//! over the id-sorted lists (BENCHMARKS.md floors: 8–60× cheaper than hashing sets).

use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::host_key::HostKey;
use crate::{ClusterNode, MemberState, ProviderSnapshot, RemoteTopologyEvent};

/// The events that turn `prev` into `next`, in the order of CONTRACTS §3:
/// every `Leave`, then every `Join`, `Serving`, `Draining`, `Unblocked` and
/// `Blocked`, each group sorted by node id. A member whose host, port, labels
/// or incarnation changed is a `Leave` followed (in the join group) by a
/// `Join`; one whose only change is its state is a `Serving` or `Draining`
/// carrying the member.
///
/// ```
/// use provisioning_provider_api::{diff, ClusterNode, ProviderSnapshot, RemoteTopologyEvent};
/// let a = ProviderSnapshot::new(vec![ClusterNode::new("n1", "h", 1)], vec![])?;
/// let b = ProviderSnapshot::new(vec![ClusterNode::new("n2", "h", 1)], vec!["n1".into()])?;
/// let events = diff(&a, &b);
/// assert_eq!(events.len(), 3);
/// assert!(matches!(events[0], RemoteTopologyEvent::Leave(_)));
/// # Ok::<(), provisioning_provider_api::SnapshotError>(())
/// ```
pub fn diff(prev: &ProviderSnapshot, next: &ProviderSnapshot) -> Vec<RemoteTopologyEvent> {
    let mut out = Vec::new();
    diff_into(prev, next, &mut out);
    out
}

/// [`diff`] appending into `out`, so a caller can reuse its buffer.
pub fn diff_into(
    prev: &ProviderSnapshot,
    next: &ProviderSnapshot,
    out: &mut Vec<RemoteTopologyEvent>,
) {
    let (old, new) = (prev.members(), next.members());
    let (old_hosts, new_hosts) = (prev.host_keys(), next.host_keys());
    // Indices into `new` of members that join, turn serving or turn
    // draining; leaves are pushed directly.
    let mut joins: Vec<usize> = Vec::new();
    let mut serving: Vec<usize> = Vec::new();
    let mut draining: Vec<usize> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].id.cmp(&new[j].id) {
            Ordering::Less => {
                out.push(RemoteTopologyEvent::Leave(old[i].id.clone()));
                i += 1;
            }
            Ordering::Greater => {
                joins.push(j);
                j += 1;
            }
            Ordering::Equal => {
                if !same_life_of_one_id((&old[i], &old_hosts[i]), (&new[j], &new_hosts[j])) {
                    out.push(RemoteTopologyEvent::Leave(old[i].id.clone()));
                    joins.push(j);
                } else if old[i].state != new[j].state {
                    match new[j].state {
                        MemberState::Serving => serving.push(j),
                        MemberState::Draining => draining.push(j),
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.extend(
        old[i..]
            .iter()
            .map(|m| RemoteTopologyEvent::Leave(m.id.clone())),
    );
    joins.extend(j..new.len());
    out.extend(
        joins
            .into_iter()
            .map(|k| RemoteTopologyEvent::Join(new[k].clone())),
    );
    out.extend(
        serving
            .into_iter()
            .map(|k| RemoteTopologyEvent::Serving(new[k].clone())),
    );
    out.extend(
        draining
            .into_iter()
            .map(|k| RemoteTopologyEvent::Draining(new[k].clone())),
    );

    let (old, new) = (prev.blocked(), next.blocked());
    let mut blocked: Vec<usize> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].cmp(&new[j]) {
            Ordering::Less => {
                out.push(RemoteTopologyEvent::Unblocked(old[i].clone()));
                i += 1;
            }
            Ordering::Greater => {
                blocked.push(j);
                j += 1;
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    out.extend(
        old[i..]
            .iter()
            .map(|id| RemoteTopologyEvent::Unblocked(id.clone())),
    );
    blocked.extend(j..new.len());
    out.extend(
        blocked
            .into_iter()
            .map(|k| RemoteTopologyEvent::Blocked(new[k].clone())),
    );
}

/// [`ClusterNode::same_life`] of two members the merge has just found to
/// have the same id: the id is not compared a second time, the port comes
/// first, and short hosts are compared by the [`HostKey`]s their snapshots
/// keep in member order. The diff spends most of its time in this comparison
/// (one per member of a view).
fn same_life_of_one_id(
    (old, old_host): (&ClusterNode, &HostKey),
    (new, new_host): (&ClusterNode, &HostKey),
) -> bool {
    debug_assert!(old.id == new.id);
    old.port == new.port
        && old_host.same_host(new_host, &old.host, &new.host)
        && old.incarnation == new.incarnation
        && old.labels == new.labels
}
