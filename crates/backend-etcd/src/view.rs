//! [`PrefixView`]: the prefix's keys as last listed and watched, and the
//! snapshot they form.

use std::collections::{BTreeMap, BTreeSet};

use provisioning_provider_api::{FaultKind, ProviderFault, ProviderSnapshot};

use crate::client::{Change, Entry};

/// One key: its last modification and what its value decoded to.
#[derive(Debug, Clone)]
struct Slot {
    mod_revision: i64,
    member: Result<provisioning_provider_api::MemberSpec, String>,
}

/// Every key under the prefix, at `revision`.
#[derive(Debug, Default)]
pub(crate) struct PrefixView {
    slots: BTreeMap<Vec<u8>, Slot>,
    /// Bad keys already reported, with the modification they were reported
    /// at, so a bad value is reported once, not on every relist. Bounded by
    /// the number of keys.
    reported: BTreeMap<Vec<u8>, i64>,
    revision: i64,
}

impl PrefixView {
    /// The revision the view is at (0 before the first list).
    pub(crate) fn revision(&self) -> i64 {
        self.revision
    }

    /// Replaces everything with a fresh listing.
    pub(crate) fn replace(&mut self, entries: Vec<Entry>, revision: i64) {
        self.slots = entries
            .into_iter()
            .map(|e| {
                (
                    e.key,
                    Slot {
                        mod_revision: e.mod_revision,
                        member: e.member,
                    },
                )
            })
            .collect();
        self.revision = revision;
    }

    /// Applies watched changes; returns faults for events that cannot be
    /// interpreted.
    pub(crate) fn apply(&mut self, changes: Vec<Change>, revision: i64) -> Vec<ProviderFault> {
        let mut faults = Vec::new();
        for change in changes {
            match change {
                Change::Put(entry) => {
                    self.slots.insert(
                        entry.key,
                        Slot {
                            mod_revision: entry.mod_revision,
                            member: entry.member,
                        },
                    );
                }
                Change::Delete { key } => {
                    self.slots.remove(&key);
                }
                Change::Bad { key, reason } => faults.push(ProviderFault::retryable(
                    FaultKind::MalformedResponse,
                    format!("key {key:?}: {reason}"),
                )),
            }
        }
        self.revision = self.revision.max(revision);
        faults
    }

    /// The snapshot of the good keys, and a fault for each bad key (bad
    /// value, id/key mismatch, duplicate id) not reported before. Bad keys
    /// are left out of the snapshot.
    pub(crate) fn snapshot(&mut self) -> (Option<ProviderSnapshot>, Vec<ProviderFault>) {
        let mut faults = Vec::new();
        let mut reported = BTreeMap::new();
        let mut ids = BTreeSet::new();
        let mut specs = Vec::with_capacity(self.slots.len());
        for (key, slot) in &self.slots {
            let problem = match &slot.member {
                Ok(spec) if ids.insert(spec.id.clone()) => {
                    specs.push(spec.clone());
                    continue;
                }
                Ok(spec) => format!(
                    "duplicate member id {:?} (an earlier key has it)",
                    spec.id.as_str()
                ),
                Err(reason) => reason.clone(),
            };
            if self.reported.get(key) != Some(&slot.mod_revision) {
                faults.push(ProviderFault::retryable(
                    FaultKind::MalformedResponse,
                    format!("key {:?} left out: {problem}", String::from_utf8_lossy(key)),
                ));
            }
            reported.insert(key.clone(), slot.mod_revision);
        }
        self.reported = reported;
        match ProviderSnapshot::from_specs(specs) {
            Ok(snapshot) => (
                Some(snapshot.with_revision(self.revision.to_string())),
                faults,
            ),
            Err(e) => {
                faults.push(ProviderFault::retryable(
                    FaultKind::MalformedResponse,
                    e.to_string(),
                ));
                (None, faults)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_member;

    fn entry(key: &str, rev: i64, value: &str) -> Entry {
        Entry {
            key: key.as_bytes().to_vec(),
            mod_revision: rev,
            member: decode_member(b"/p/", key.as_bytes(), value.as_bytes()),
        }
    }

    #[test]
    fn bad_keys_are_left_out_and_reported_once() {
        let mut view = PrefixView::default();
        view.replace(
            vec![
                entry("/p/a/n1", 2, r#"{"id":"n1","host":"h","port":1}"#),
                entry("/p/b/n1", 3, r#"{"id":"n1","host":"h","port":2}"#),
                entry("/p/n2", 4, r#"{"id":"nX","host":"h","port":1}"#),
                entry("/p/n3", 5, "{"),
            ],
            5,
        );
        let (snapshot, faults) = view.snapshot();
        let snapshot = snapshot.unwrap();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot.revision(), Some("5"));
        assert_eq!(faults.len(), 3, "{faults:?}");
        assert!(
            faults
                .iter()
                .all(|f| f.kind == FaultKind::MalformedResponse && !f.permanent)
        );
        assert!(faults[0].detail.contains("/p/b/n1"), "{}", faults[0].detail);
        assert!(faults[1].detail.contains("/p/n2"), "{}", faults[1].detail);
        // Relisting the same content reports nothing new.
        assert!(view.snapshot().1.is_empty());
        // A new bad value at the same key is reported again.
        let faults = view.apply(
            vec![
                Change::Put(entry("/p/n3", 6, "[]")),
                Change::Delete {
                    key: b"/p/b/n1".to_vec(),
                },
            ],
            6,
        );
        assert!(faults.is_empty());
        let (snapshot, faults) = view.snapshot();
        assert_eq!(snapshot.unwrap().revision(), Some("6"));
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert!(faults[0].detail.contains("/p/n3"));
    }
}
