//! [`PreparedDiffs`]: each standby's diff from the published snapshot,
//! computed while nothing waits for it, so that a switch publishes without
//! diffing.

use provisioning_provider_api::{
    ClusterNode, ProviderId, ProviderSnapshot, RemoteTopologyEvent, diff_into,
};

/// A prepared diff is kept only up to this many events, or an eighth of the
/// published view if that is more: a standby that disagrees wholesale with
/// the published view would otherwise hold a second copy of the cluster.
const MIN_KEPT_EVENTS: usize = 1024;

/// Whether a diff of `events` events from a published view of `published`
/// members is small enough to keep.
pub(crate) fn worth_keeping(events: usize, published: usize) -> bool {
    events <= MIN_KEPT_EVENTS.max(published / 8)
}

/// One standby's diff from the published snapshot.
struct PreparedDiff {
    provider: ProviderId,
    /// Hash of the published snapshot the diff starts from.
    basis: u64,
    /// Hash of the standby's snapshot it leads to.
    target: u64,
    events: Vec<RemoteTopologyEvent>,
}

/// At most one prepared diff per provider, all starting from the same
/// published snapshot: a publication makes them all stale, and
/// [`clear`](Self::clear) drops them.
#[derive(Default)]
pub(crate) struct PreparedDiffs {
    diffs: Vec<PreparedDiff>,
}

impl PreparedDiffs {
    /// Diffs `snapshot` (the latest view of `provider`) against `published`
    /// (whose hash is `basis`) unless that is done already, and keeps it if
    /// it is small enough; returns how many published members the view
    /// lacks (a member that changed is not missing) and how many members the
    /// two disagree on (`shrink_guard::diff_counts`).
    pub(crate) fn prepare(
        &mut self,
        provider: &ProviderId,
        published: &ProviderSnapshot,
        basis: u64,
        snapshot: &ProviderSnapshot,
    ) -> (usize, usize) {
        let target = snapshot.hash();
        let index = self.diffs.iter().position(|d| &d.provider == provider);
        if let Some(i) = index {
            let prepared = &self.diffs[i];
            if prepared.basis == basis && prepared.target == target {
                return crate::shrink_guard::diff_counts(&prepared.events);
            }
        }
        let mut events = match index {
            Some(i) => {
                let mut old = self.diffs.swap_remove(i).events;
                old.clear();
                old
            }
            None => Vec::new(),
        };
        diff_into(published, snapshot, &mut events);
        let counts = crate::shrink_guard::diff_counts(&events);
        if worth_keeping(events.len(), published.len()) {
            self.diffs.push(PreparedDiff {
                provider: provider.clone(),
                basis,
                target,
                events,
            });
        }
        counts
    }

    /// Keeps, for `provider`, the way back from a switch: `forward` is the
    /// diff just published from `before` (whose hash is `target`) to the
    /// snapshot whose hash is `basis`. If `provider`'s view is still
    /// `before`, assessing it finds its diff here, built from the switch's
    /// own diff (its size times a lookup) rather than by a merge of both
    /// views. Call after [`clear`](Self::clear).
    pub(crate) fn keep_reversed(
        &mut self,
        provider: &ProviderId,
        basis: u64,
        target: u64,
        forward: &[RemoteTopologyEvent],
        before: &ProviderSnapshot,
    ) {
        if !worth_keeping(forward.len(), before.len()) {
            return;
        }
        let Some(events) = reversed(forward, before) else {
            return;
        };
        self.diffs.retain(|d| &d.provider != provider);
        self.diffs.push(PreparedDiff {
            provider: provider.clone(),
            basis,
            target,
            events,
        });
    }

    /// Moves the diff from `basis` to `target` prepared for `provider` into
    /// `out` (which must be empty); false when there is none.
    pub(crate) fn take(
        &mut self,
        provider: &ProviderId,
        basis: u64,
        target: u64,
        out: &mut Vec<RemoteTopologyEvent>,
    ) -> bool {
        let Some(i) = self
            .diffs
            .iter()
            .position(|d| &d.provider == provider && d.basis == basis && d.target == target)
        else {
            return false;
        };
        debug_assert!(out.is_empty());
        *out = self.diffs.swap_remove(i).events;
        true
    }

    /// Drops every prepared diff (the published snapshot changed).
    pub(crate) fn clear(&mut self) {
        self.diffs.clear();
    }

    /// How many diffs are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.diffs.len()
    }
}

/// The diff from `after` back to `before`, given `forward`, the diff from
/// `before` to `after` (in the contract's order: leave, join, serving,
/// draining, unblocked, blocked, each sorted by id). A leave comes back as
/// a join of `before`'s member, a join as a leave, serving and draining
/// swap (with `before`'s member), and so do blocked and unblocked; each
/// group stays sorted by id. `None` if a member `forward` names is not in
/// `before` (`forward` is then not its diff).
fn reversed(
    forward: &[RemoteTopologyEvent],
    before: &ProviderSnapshot,
) -> Option<Vec<RemoteTopologyEvent>> {
    let member = |id: &str| -> Option<ClusterNode> {
        let members = before.members();
        members
            .binary_search_by(|m| m.id.as_str().cmp(id))
            .ok()
            .map(|i| members[i].clone())
    };
    let mut leaves = Vec::new();
    let mut joins = Vec::new();
    let mut serving = Vec::new();
    let mut draining = Vec::new();
    let mut unblocked = Vec::new();
    let mut blocked = Vec::new();
    for event in forward {
        match event {
            RemoteTopologyEvent::Leave(id) => {
                joins.push(RemoteTopologyEvent::Join(member(id.as_str())?));
            }
            RemoteTopologyEvent::Join(m) => leaves.push(RemoteTopologyEvent::Leave(m.id.clone())),
            RemoteTopologyEvent::Serving(m) => {
                draining.push(RemoteTopologyEvent::Draining(member(m.id.as_str())?));
            }
            RemoteTopologyEvent::Draining(m) => {
                serving.push(RemoteTopologyEvent::Serving(member(m.id.as_str())?));
            }
            RemoteTopologyEvent::Blocked(id) => {
                unblocked.push(RemoteTopologyEvent::Unblocked(id.clone()))
            }
            RemoteTopologyEvent::Unblocked(id) => {
                blocked.push(RemoteTopologyEvent::Blocked(id.clone()))
            }
        }
    }
    let mut events = leaves;
    events.extend(joins);
    events.extend(serving);
    events.extend(draining);
    events.extend(unblocked);
    events.extend(blocked);
    Some(events)
}

#[cfg(test)]
mod tests {
    use provisioning_provider_api::{ClusterNode, MemberState, NodeId, diff};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A random view over ids `m00`..`m39`: each present or not, on one of
    /// two ports, serving or draining; ids `m00`..`m39` blocked or not.
    fn random_view(rng: &mut StdRng) -> ProviderSnapshot {
        let mut members = Vec::new();
        let mut blocked = Vec::new();
        for i in 0..40 {
            let id = format!("m{i:02}");
            if rng.random_bool(0.7) {
                let mut node = ClusterNode::new(id.as_str(), "10.0.0.1", rng.random_range(1..3));
                if rng.random_bool(0.3) {
                    node.state = MemberState::Draining;
                }
                members.push(node);
            }
            if rng.random_bool(0.2) {
                blocked.push(NodeId::new(id.as_str()));
            }
        }
        ProviderSnapshot::new(members, blocked).expect("valid view")
    }

    #[test]
    fn the_reversed_diff_is_the_diff_back() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut nonempty = 0;
        for _ in 0..2_000 {
            let (before, after) = (random_view(&mut rng), random_view(&mut rng));
            let forward = diff(&before, &after);
            nonempty += usize::from(!forward.is_empty());
            assert_eq!(
                reversed(&forward, &before),
                Some(diff(&after, &before)),
                "{before:?} -> {after:?}"
            );
        }
        // Every kind of event was exercised, not only empty diffs.
        assert!(nonempty > 1_900, "{nonempty}");
    }

    #[test]
    fn a_switch_keeps_the_way_back_for_the_provider_it_left() {
        let before = view(&[("a", 1), ("b", 1), ("c", 1)]);
        let after = view(&[("a", 1), ("b", 2), ("d", 1)]);
        let forward = diff(&before, &after);
        let mut prepared = PreparedDiffs::default();
        prepared.keep_reversed(&pid("old"), after.hash(), before.hash(), &forward, &before);
        // Assessing the provider left, whose view is still `before`, takes
        // the kept diff: the counts of the diff back.
        assert_eq!(
            prepared.prepare(&pid("old"), &after, after.hash(), &before),
            crate::shrink_guard::diff_counts(&diff(&after, &before))
        );
        let mut out = Vec::new();
        assert!(prepared.take(&pid("old"), after.hash(), before.hash(), &mut out));
        assert_eq!(out, diff(&after, &before));
    }

    fn view(ids: &[(&str, u16)]) -> ProviderSnapshot {
        ProviderSnapshot::new(
            ids.iter()
                .map(|(id, port)| ClusterNode::new(*id, "10.0.0.1", *port))
                .collect(),
            vec![],
        )
        .expect("valid view")
    }

    fn pid(id: &str) -> ProviderId {
        ProviderId::new(id).expect("valid id")
    }

    #[test]
    fn a_prepared_diff_is_the_diff_and_is_taken_once_for_its_basis_and_target() {
        let published = view(&[("a", 1), ("b", 1), ("c", 1)]);
        let standby = view(&[("a", 1), ("b", 2), ("d", 1)]);
        let mut prepared = PreparedDiffs::default();
        // `c` is gone; `b` changed and is not missing; they disagree on
        // `b`, `c` and `d`.
        assert_eq!(
            prepared.prepare(&pid("s"), &published, published.hash(), &standby),
            (1, 3)
        );
        // Asked again, the kept diff answers the same.
        assert_eq!(
            prepared.prepare(&pid("s"), &published, published.hash(), &standby),
            (1, 3)
        );
        let mut out = Vec::new();
        assert!(!prepared.take(&pid("s"), published.hash() ^ 1, standby.hash(), &mut out));
        assert!(!prepared.take(&pid("other"), published.hash(), standby.hash(), &mut out));
        assert!(out.is_empty());
        assert!(prepared.take(&pid("s"), published.hash(), standby.hash(), &mut out));
        assert_eq!(out, diff(&published, &standby));
        let mut again = Vec::new();
        assert!(!prepared.take(&pid("s"), published.hash(), standby.hash(), &mut again));
    }

    #[test]
    fn a_new_view_replaces_the_providers_prepared_diff() {
        let published = view(&[("a", 1), ("b", 1)]);
        let first = view(&[("a", 1)]);
        let second = view(&[("a", 1), ("b", 1), ("c", 1)]);
        let mut prepared = PreparedDiffs::default();
        prepared.prepare(&pid("s"), &published, published.hash(), &first);
        assert_eq!(
            prepared.prepare(&pid("s"), &published, published.hash(), &second),
            (0, 1)
        );
        assert_eq!(prepared.len(), 1);
        let mut out = Vec::new();
        assert!(!prepared.take(&pid("s"), published.hash(), first.hash(), &mut out));
        assert!(prepared.take(&pid("s"), published.hash(), second.hash(), &mut out));
        assert_eq!(out, diff(&published, &second));
    }

    #[test]
    fn a_diff_larger_than_the_bound_is_not_kept() {
        let ids: Vec<String> = (0..3 * MIN_KEPT_EVENTS)
            .map(|i| format!("n{i:05}"))
            .collect();
        let published = ProviderSnapshot::new(
            ids.iter()
                .map(|id| ClusterNode::new(id.as_str(), "10.0.0.1", 1))
                .collect(),
            vec![],
        )
        .expect("valid view");
        // Every member moved: a leave and a join each.
        let moved = ProviderSnapshot::new(
            ids.iter()
                .map(|id| ClusterNode::new(id.as_str(), "10.0.0.1", 2))
                .collect(),
            vec![],
        )
        .expect("valid view");
        let mut prepared = PreparedDiffs::default();
        assert_eq!(
            prepared.prepare(&pid("s"), &published, published.hash(), &moved),
            (0, 3 * MIN_KEPT_EVENTS)
        );
        assert_eq!(prepared.len(), 0);
        prepared.clear();
    }
}
