//! [`ShrinkGuard`]: decision 5 — hold a suspicious shrink, publish it after
//! `shrink_confirm` or when a standby agrees, never veto it.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use provisioning_provider_api::{ClusterNode, ProviderSnapshot, RemoteTopologyEvent};

/// A snapshot of the active provider held back as a suspicious shrink.
pub(crate) struct HeldShrink {
    pub(crate) snapshot: ProviderSnapshot,
    /// When the first snapshot of this shrink arrived (the hold's start).
    pub(crate) since: Instant,
    /// When the held snapshot arrived (for the latency metric).
    pub(crate) arrival: Instant,
}

/// The shrink rule and the held snapshot.
pub(crate) struct ShrinkGuard {
    max_ratio: f64,
    confirm: Duration,
    pub(crate) held: Option<HeldShrink>,
}

impl ShrinkGuard {
    pub(crate) fn new(max_ratio: f64, confirm: Duration) -> Self {
        Self {
            max_ratio,
            confirm,
            held: None,
        }
    }

    /// Replaces the numbers; a held shrink keeps its start and is
    /// confirmed `confirm` after it.
    pub(crate) fn set(&mut self, max_ratio: f64, confirm: Duration) {
        self.max_ratio = max_ratio;
        self.confirm = confirm;
    }

    /// When the held shrink is published if nothing else happens.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.held.as_ref().map(|held| held.since + self.confirm)
    }

    /// Whether going from `published` members to a view with `next_len`
    /// members of which `removed` published ones are missing is suspicious:
    /// it empties a non-empty view, or removes more than the ratio.
    pub(crate) fn is_suspicious(&self, published: usize, removed: usize, next_len: usize) -> bool {
        published > 0 && (next_len == 0 || removed as f64 > self.max_ratio * published as f64)
    }
}

/// Published members missing from `next`, by a linear merge over the id-sorted
/// lists.
pub(crate) fn removed_members(published: &[ClusterNode], next: &[ClusterNode]) -> usize {
    let (mut i, mut j, mut removed) = (0, 0, 0);
    while i < published.len() && j < next.len() {
        match published[i].id.cmp(&next[j].id) {
            Ordering::Less => {
                removed += 1;
                i += 1;
            }
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    removed + (published.len() - i)
}

/// Published members missing from the next view, from its diff: leaves minus
/// the leaves that rejoin changed (a changed member is not removed).
pub(crate) fn removed_in_diff(diff: &[RemoteTopologyEvent]) -> usize {
    diff_counts(diff).0
}

/// From a diff between two views: the members of the first missing from the
/// second (see [`removed_in_diff`]), and the size of their symmetric
/// difference as [`disagreement`] counts it (ids in only one view, plus ids
/// whose member changed), without another pass over the views.
pub(crate) fn diff_counts(diff: &[RemoteTopologyEvent]) -> (usize, usize) {
    let leaves_end = diff
        .iter()
        .position(|e| !matches!(e, RemoteTopologyEvent::Leave(_)))
        .unwrap_or(diff.len());
    let joins_end = leaves_end
        + diff[leaves_end..]
            .iter()
            .position(|e| !matches!(e, RemoteTopologyEvent::Join(_)))
            .unwrap_or(diff.len() - leaves_end);
    let (leaves, joins) = (&diff[..leaves_end], &diff[leaves_end..joins_end]);
    let (mut i, mut j, mut rejoined) = (0, 0, 0);
    while i < leaves.len() && j < joins.len() {
        match leaves[i].node_id().cmp(joins[j].node_id()) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                rejoined += 1;
                i += 1;
                j += 1;
            }
        }
    }
    // A member whose only change is its state still differs, as
    // [`disagreement`] counts it; state events follow the joins.
    let restated = diff[joins_end..]
        .iter()
        .take_while(|e| {
            matches!(
                e,
                RemoteTopologyEvent::Serving(_) | RemoteTopologyEvent::Draining(_)
            )
        })
        .count();
    (
        leaves.len() - rejoined,
        leaves.len() + joins.len() - rejoined + restated,
    )
}

/// Size of the symmetric difference between two member lists: ids in only
/// one of them, plus ids in both whose member differs (host, port, labels,
/// incarnation or state).
pub(crate) fn disagreement(published: &[ClusterNode], other: &[ClusterNode]) -> usize {
    let (mut i, mut j, mut count) = (0, 0, 0);
    while i < published.len() && j < other.len() {
        match published[i].id.cmp(&other[j].id) {
            Ordering::Less => {
                count += 1;
                i += 1;
            }
            Ordering::Greater => {
                count += 1;
                j += 1;
            }
            Ordering::Equal => {
                if published[i] != other[j] {
                    count += 1;
                }
                i += 1;
                j += 1;
            }
        }
    }
    count + (published.len() - i) + (other.len() - j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::diff;

    fn view(ids: &[&str]) -> ProviderSnapshot {
        ProviderSnapshot::new(
            ids.iter().map(|id| ClusterNode::new(*id, "h", 1)).collect(),
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn counts_removed_members_by_merge_and_from_the_diff() {
        let a = view(&["a", "b", "c", "d"]);
        let b = ProviderSnapshot::new(
            vec![
                ClusterNode::new("b", "other", 1),
                ClusterNode::new("e", "h", 1),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(removed_members(a.members(), b.members()), 3);
        assert_eq!(removed_in_diff(&diff(&a, &b)), 3, "b changed, not removed");
        assert_eq!(disagreement(a.members(), b.members()), 5);
        assert_eq!(disagreement(a.members(), a.members()), 0);
    }

    #[test]
    fn a_state_change_disagrees_but_removes_nothing() {
        use provisioning_provider_api::MemberState;
        let a = view(&["a", "b"]);
        let b = ProviderSnapshot::new(
            vec![
                ClusterNode::new("a", "h", 1).with_state(MemberState::Draining),
                ClusterNode::new("b", "h", 1),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(diff_counts(&diff(&a, &b)), (0, 1));
        assert_eq!(disagreement(a.members(), b.members()), 1);
    }

    #[test]
    fn suspicious_above_ratio_or_when_emptied() {
        let guard = ShrinkGuard::new(0.5, Duration::from_secs(5));
        assert!(!guard.is_suspicious(4, 2, 2), "exactly half is allowed");
        assert!(guard.is_suspicious(4, 3, 1));
        assert!(guard.is_suspicious(4, 0, 0) || guard.is_suspicious(4, 4, 0));
        assert!(!guard.is_suspicious(0, 0, 0), "empty to empty is no shrink");
        let all = ShrinkGuard::new(1.0, Duration::from_secs(5));
        assert!(
            all.is_suspicious(4, 4, 0),
            "emptying is held even at ratio 1"
        );
        assert!(!all.is_suspicious(4, 4, 1));
    }
}
