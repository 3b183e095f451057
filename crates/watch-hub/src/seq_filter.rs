//! [`SeqFilter`]: the high-water mark a consumer keeps to drop duplicates and
//! stale items by `seq_no`.

use crate::provisioning_event::ProvisioningEvent;
use crate::run_id::RunId;

/// The high-water mark of one consumer: accepts an item only if its
/// `seq_no` is above everything accepted before in the same run; a `resync`
/// resets the mark to its `as_of_seq_no` (the re-sent snapshot keeps that
/// number, so it is accepted once more). A new `run_id` starts afresh.
///
/// ```
/// use provisioning_watch_hub::SeqFilter;
/// use provisioning_watch_hub::wire::RunId;
/// let run = RunId::from_u64(7);
/// let mut filter = SeqFilter::new();
/// assert!(filter.accept(run, 3));
/// assert!(!filter.accept(run, 3), "duplicate");
/// assert!(!filter.accept(run, 2), "stale");
/// filter.reset(run, 10);
/// assert!(!filter.accept(run, 10));
/// assert!(filter.accept(run, 11));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqFilter {
    mark: Option<(RunId, u64)>,
}

impl SeqFilter {
    /// A filter that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest `seq_no` accepted (or reset to) and its run.
    pub fn high_water_mark(&self) -> Option<(RunId, u64)> {
        self.mark
    }

    /// Whether to take an item; moves the mark when it does.
    pub fn accept(&mut self, run_id: RunId, seq_no: u64) -> bool {
        match self.mark {
            Some((run, mark)) if run == run_id && seq_no <= mark => false,
            _ => {
                self.mark = Some((run_id, seq_no));
                true
            }
        }
    }

    /// Sets the mark (on `resync`).
    pub fn reset(&mut self, run_id: RunId, seq_no: u64) {
        self.mark = Some((run_id, seq_no));
    }

    /// Applies the rule to an event line: a `resync` resets the mark and is
    /// accepted, and so is the snapshot that follows it with the same
    /// `seq_no`; anything else must be above the mark.
    pub fn accept_event(&mut self, event: &ProvisioningEvent) -> bool {
        match event {
            ProvisioningEvent::Resync(resync) => {
                // One below, so the re-sent snapshot passes once.
                self.reset(resync.run_id, resync.as_of_seq_no.saturating_sub(1));
                true
            }
            other => self.accept(other.run_id(), other.seq_no()),
        }
    }
}
