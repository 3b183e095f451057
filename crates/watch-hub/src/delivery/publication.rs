//! [`Publication`]: what the hub hands to every consumer queue at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::provisioning_event::ProvisioningEvent;
use crate::provisioning_metrics::LatencyRecorder;

/// One publication: a snapshot line with its diff events, or one other line.
/// Queues, the history and the resync rule all count in publications.
pub(crate) struct Publication {
    lines: Vec<Arc<ProvisioningEvent>>,
    latency: Option<LatencyAck>,
}

/// Counts the consumers that still have to take a snapshot publication; the
/// last one records the latency from the provider event's arrival.
struct LatencyAck {
    pending: AtomicUsize,
    arrival: Instant,
    recorder: LatencyRecorder,
}

impl Publication {
    /// A publication without latency accounting. `lines` is never empty.
    pub(crate) fn new(lines: Vec<Arc<ProvisioningEvent>>) -> Self {
        debug_assert!(!lines.is_empty());
        Self {
            lines,
            latency: None,
        }
    }

    /// A snapshot publication whose latency is recorded once every consumer
    /// took it.
    pub(crate) fn with_latency(
        lines: Vec<Arc<ProvisioningEvent>>,
        arrival: Instant,
        recorder: LatencyRecorder,
    ) -> Self {
        Self {
            lines,
            latency: Some(LatencyAck {
                pending: AtomicUsize::new(0),
                arrival,
                recorder,
            }),
        }
    }

    pub(crate) fn lines(&self) -> &[Arc<ProvisioningEvent>] {
        &self.lines
    }

    pub(crate) fn first_seq(&self) -> u64 {
        self.lines.first().map_or(0, |line| line.seq_no())
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.lines.last().map_or(0, |line| line.seq_no())
    }

    /// Members held by the snapshot line, for the history's memory bound.
    pub(crate) fn members(&self) -> usize {
        self.lines
            .first()
            .and_then(|line| line.as_snapshot())
            .map_or(0, |snapshot| snapshot.members().len())
    }

    /// Sets how many consumers will acknowledge; with none, records at once.
    pub(crate) fn arm(&self, consumers: usize) {
        if let Some(ack) = &self.latency {
            if consumers == 0 {
                ack.recorder
                    .record(Instant::now().saturating_duration_since(ack.arrival));
            } else {
                ack.pending.store(consumers, Ordering::Release);
            }
        }
    }

    /// One consumer has it (delivered, or dropped in favour of a resync).
    pub(crate) fn ack(&self) {
        if let Some(ack) = &self.latency
            && ack.pending.fetch_sub(1, Ordering::AcqRel) == 1
        {
            ack.recorder
                .record(Instant::now().saturating_duration_since(ack.arrival));
        }
    }
}
