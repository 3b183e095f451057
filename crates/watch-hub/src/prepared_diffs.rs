//! [`PreparedDiffs`]: each standby's diff from the published snapshot,
//! computed while nothing waits for it, so that a switch publishes without
//! diffing.

use provisioning_provider_api::{ProviderId, ProviderSnapshot, RemoteTopologyEvent, diff_into};

/// A prepared diff is kept only up to this many events, or an eighth of the
/// published view if that is more: a standby that disagrees wholesale with
/// the published view would otherwise hold a second copy of the cluster.
const MIN_KEPT_EVENTS: usize = 1024;

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
        if events.len() <= MIN_KEPT_EVENTS.max(published.len() / 8) {
            self.diffs.push(PreparedDiff {
                provider: provider.clone(),
                basis,
                target,
                events,
            });
        }
        counts
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

#[cfg(test)]
mod tests {
    use provisioning_provider_api::{ClusterNode, diff};

    use super::*;

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
