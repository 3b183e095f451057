//! [`SnapshotDiffer`]: the diff a snapshot publication carries, from the
//! published snapshot to the new one, and the standbys' diffs kept ready
//! for a switch.

use provisioning_provider_api::{ProviderId, ProviderSnapshot, RemoteTopologyEvent, diff_into};

use crate::prepared_diffs::PreparedDiffs;
use crate::published_snapshot::PublishedSnapshot;

/// From this many members on, a snapshot is hashed and diffed in parallel.
const PARALLEL_MEMBERS: usize = 16_384;

/// The hub's diffing: one diff buffer, reused from publication to
/// publication, and the prepared diffs of the standbys.
#[derive(Default)]
pub(crate) struct SnapshotDiffer {
    /// The diff of the publication being made.
    diff: Vec<RemoteTopologyEvent>,
    /// Standbys' diffs from the published snapshot, ready for a switch.
    prepared: PreparedDiffs,
}

impl SnapshotDiffer {
    /// The diff computed so far.
    pub(crate) fn diff(&self) -> &[RemoteTopologyEvent] {
        &self.diff
    }

    /// The diff, for the publisher to drain into the publication.
    pub(crate) fn diff_mut(&mut self) -> &mut Vec<RemoteTopologyEvent> {
        &mut self.diff
    }

    /// Forgets the diff (nothing is published).
    pub(crate) fn clear(&mut self) {
        self.diff.clear();
    }

    /// Diffs `snapshot` against `last` into the buffer.
    pub(crate) fn diff_from(&mut self, last: &PublishedSnapshot, snapshot: &ProviderSnapshot) {
        diff_into(last.snapshot(), snapshot, &mut self.diff);
    }

    /// Fills the diff with the changes from `last` (or from nothing) to
    /// `snapshot` — `provider`'s prepared diff when it has one for them —
    /// and hashes `snapshot`.
    pub(crate) fn fill(
        &mut self,
        last: Option<&PublishedSnapshot>,
        provider: &ProviderId,
        snapshot: &ProviderSnapshot,
    ) {
        // A prepared view was hashed when its diff was prepared; an unhashed
        // one has none, and is hashed below beside its diff.
        if let Some(last) = last
            && snapshot.is_hashed()
        {
            self.diff.clear();
            if self
                .prepared
                .take(provider, last.hash(), snapshot.hash(), &mut self.diff)
            {
                return;
            }
        }
        let (_, diffed) = self.hash_and_diff(last, snapshot);
        if !diffed {
            match last {
                Some(last) => diff_into(last.snapshot(), snapshot, &mut self.diff),
                None => diff_into(&ProviderSnapshot::empty(), snapshot, &mut self.diff),
            }
        }
    }

    /// Hashes `snapshot`; for a large one with a published predecessor, also
    /// diffs it at the same time on a second thread (both are linear scans
    /// over the members; together they dominate a large publication). Returns
    /// the hash and whether the buffer now holds the diff.
    pub(crate) fn hash_and_diff(
        &mut self,
        last: Option<&PublishedSnapshot>,
        snapshot: &ProviderSnapshot,
    ) -> (u64, bool) {
        self.diff.clear();
        let Some(last) = last else {
            return (snapshot.hash(), false);
        };
        if snapshot.is_hashed() || snapshot.len().max(last.members().len()) < PARALLEL_MEMBERS {
            return (snapshot.hash(), false);
        }
        let diff = &mut self.diff;
        std::thread::scope(|scope| {
            let hasher = std::thread::Builder::new()
                .name("watch-hub-hash".into())
                .spawn_scoped(scope, || snapshot.hash());
            diff_into(last.snapshot(), snapshot, diff);
            // Without a second thread (or if it failed), hash here.
            let hash = hasher
                .ok()
                .and_then(|hasher| hasher.join().ok())
                .unwrap_or_else(|| snapshot.hash());
            (hash, true)
        })
    }

    /// `provider`'s diff from `last`, prepared for a switch (see
    /// [`PreparedDiffs::prepare`]): how many published members its view
    /// lacks, and how many members the two disagree on.
    pub(crate) fn prepare(
        &mut self,
        provider: &ProviderId,
        last: &PublishedSnapshot,
        snapshot: &ProviderSnapshot,
    ) -> (usize, usize) {
        self.prepared
            .prepare(provider, last.snapshot(), last.hash(), snapshot)
    }

    /// A snapshot was published: prepared diffs start from the one it
    /// replaced, so they are all stale.
    pub(crate) fn published(&mut self) {
        self.prepared.clear();
    }
}
