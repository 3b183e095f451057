//! [`EventHistory`]: the bounded history behind `GET /events?since=N`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::publication::Publication;
use crate::provisioning_event::ProvisioningEvent;

/// The history no longer holds the line after `since`: send `resync` and the
/// current snapshot instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event history does not hold seq_no {wanted} (holds {oldest:?}..={newest:?})")]
#[non_exhaustive]
pub struct ResyncNeeded {
    /// The first `seq_no` that was asked for (`since + 1`).
    pub wanted: u64,
    /// The oldest `seq_no` held, if any.
    pub oldest: Option<u64>,
    /// The newest `seq_no` published, if any.
    pub newest: Option<u64>,
}

/// The last publications, bounded in publications (a snapshot line with its
/// diff events counts once) and in the members their snapshot lines hold;
/// the newest publication is always kept. Cloning shares the history.
#[derive(Clone)]
pub struct EventHistory {
    inner: Arc<Mutex<Ring>>,
}

struct Ring {
    publications: VecDeque<Arc<Publication>>,
    members: usize,
    max_publications: usize,
    max_members: usize,
}

impl EventHistory {
    pub(crate) fn new(max_publications: usize, max_members: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Ring {
                publications: VecDeque::with_capacity(max_publications.min(4096)),
                members: 0,
                max_publications: max_publications.max(1),
                max_members,
            })),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // Appends and evictions leave the ring consistent at every step.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends; evicted publications go to `evicted` (dropped by the caller
    /// off the hot path).
    pub(crate) fn push(&self, publication: Arc<Publication>, evicted: &mut Vec<Arc<Publication>>) {
        let mut ring = self.ring();
        ring.members += publication.members();
        ring.publications.push_back(publication);
        while ring.publications.len() > 1
            && (ring.publications.len() > ring.max_publications || ring.members > ring.max_members)
        {
            if let Some(old) = ring.publications.pop_front() {
                ring.members -= old.members();
                evicted.push(old);
            }
        }
    }

    /// Every line with a `seq_no` greater than `since`, in order, if the
    /// history still holds line `since + 1` (or nothing was published after
    /// `since`); a `since` beyond the newest line (another run's number) also
    /// needs a resync.
    pub fn since(&self, since: u64) -> Result<Vec<Arc<ProvisioningEvent>>, ResyncNeeded> {
        let ring = self.ring();
        let oldest = ring.publications.front().map(|p| p.first_seq());
        let newest = ring.publications.back().map(|p| p.last_seq());
        let wanted = since.saturating_add(1);
        let error = ResyncNeeded {
            wanted,
            oldest,
            newest,
        };
        match (oldest, newest) {
            (None, _) | (_, None) => {
                if since == 0 {
                    Ok(Vec::new())
                } else {
                    Err(error)
                }
            }
            (Some(oldest), Some(newest)) => {
                if since > newest || wanted < oldest {
                    return Err(error);
                }
                let start = ring.publications.partition_point(|p| p.last_seq() <= since);
                Ok(ring
                    .publications
                    .range(start..)
                    .flat_map(|p| p.lines().iter())
                    .filter(|line| line.seq_no() > since)
                    .cloned()
                    .collect())
            }
        }
    }

    /// The oldest `seq_no` held.
    pub fn oldest_seq_no(&self) -> Option<u64> {
        self.ring().publications.front().map(|p| p.first_seq())
    }

    /// Publications held.
    pub fn len(&self) -> usize {
        self.ring().publications.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.ring().publications.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_payloads::UnavailableLine;
    use crate::run_id::RunId;

    fn line(seq_no: u64) -> Arc<Publication> {
        Arc::new(Publication::new(vec![Arc::new(
            ProvisioningEvent::ProvisioningUnavailable(UnavailableLine {
                run_id: RunId::from_u64(1),
                seq_no,
                epoch: 1,
                since_ms: 0,
            }),
        )]))
    }

    #[test]
    fn replays_from_since_and_asks_for_resync_when_evicted() {
        let history = EventHistory::new(3, 1000);
        assert_eq!(history.since(0).unwrap().len(), 0);
        assert!(history.since(5).is_err(), "nothing published yet");
        let mut evicted = Vec::new();
        for seq in 1..=5 {
            history.push(line(seq), &mut evicted);
        }
        assert_eq!(evicted.len(), 2);
        assert_eq!(history.len(), 3);
        let seqs = |since| -> Vec<u64> {
            history
                .since(since)
                .unwrap()
                .iter()
                .map(|l| l.seq_no())
                .collect()
        };
        assert_eq!(seqs(2), vec![3, 4, 5]);
        assert_eq!(seqs(4), vec![5]);
        assert_eq!(seqs(5), Vec::<u64>::new());
        let err = history.since(1).unwrap_err();
        assert_eq!(err.wanted, 2);
        assert_eq!(err.oldest, Some(3));
        assert!(history.since(0).is_err(), "line 1 is gone");
        assert!(history.since(6).is_err(), "beyond the newest line");
    }
}
