//! [`StepContext`]: what a stream step reports to the kit.

use std::collections::VecDeque;
use std::time::Duration;

use provisioning_provider_api::{ProviderEvent, ProviderFault, ProviderTermination, StreamOptions};
use tokio::time::Instant;

use crate::RetrySchedule;
use crate::resync_pacer::ResyncPacer;

/// Floor of the resync pacing's cap, whatever interval the service asks for.
const MIN_RESYNC_CAP: Duration = Duration::from_millis(50);

/// The part of a provider stream every backend shares, handed to each
/// [`StreamStep::step`](crate::StreamStep::step): the queue of events to
/// yield, the owed liveness, the retry schedule and the end of the stream.
#[derive(Debug)]
pub struct StepContext {
    options: StreamOptions,
    schedule: RetrySchedule,
    resyncs: ResyncPacer,
    pending: VecDeque<ProviderEvent>,
    /// When the next step may start (after a fault, or a paced relist).
    retry_at: Option<Instant>,
    /// After a fault or a (re)sync, the next step must prove liveness at once
    /// (a snapshot if changed, else a heartbeat).
    owe_liveness: bool,
    /// When the last snapshot or heartbeat was queued.
    last_liveness: Instant,
    done: bool,
}

impl StepContext {
    /// A context for a stream opened now with `options`: liveness owed, no
    /// fault counted.
    pub fn new(options: StreamOptions) -> Self {
        Self {
            schedule: RetrySchedule::new(&options),
            // Below half the heartbeat interval: each relist yields the
            // liveness a watch would.
            resyncs: ResyncPacer::new(
                (options.heartbeat_interval / 2).max(MIN_RESYNC_CAP),
                Instant::now(),
            ),
            options,
            pending: VecDeque::new(),
            retry_at: None,
            owe_liveness: true,
            last_liveness: Instant::now(),
            done: false,
        }
    }

    /// The options the stream was opened with.
    pub fn options(&self) -> &StreamOptions {
        &self.options
    }

    /// Queues `event` as it is (a resync notice, a fault that is not a
    /// failed attempt, a termination notice of the backend's own).
    pub fn push(&mut self, event: ProviderEvent) {
        self.pending.push_back(event);
    }

    /// Queues a snapshot or heartbeat: the liveness owed is paid.
    pub fn push_liveness(&mut self, event: ProviderEvent) {
        self.last_liveness = Instant::now();
        self.owe_liveness = false;
        self.pending.push_back(event);
    }

    /// Whether the next step must prove liveness at once.
    pub fn owes_liveness(&self) -> bool {
        self.owe_liveness
    }

    /// The next step must prove liveness at once.
    pub fn owe_liveness(&mut self) {
        self.owe_liveness = true;
    }

    /// When the last snapshot or heartbeat was queued (the stream's opening
    /// before the first).
    pub fn last_liveness(&self) -> Instant {
        self.last_liveness
    }

    /// A failed attempt: counts `fault`, queues it, owes liveness, and holds
    /// the next step back by the retry schedule. Returns that delay.
    pub fn fault(&mut self, fault: ProviderFault) -> Duration {
        let delay = self.count_fault(&fault);
        self.retry_at = Some(Instant::now() + delay);
        self.owe_liveness = true;
        self.pending.push_back(ProviderEvent::Fault(fault));
        delay
    }

    /// The watch ended in a resync (`fault` is a resync notice): queues it
    /// and holds the relist back by the resync pacing (at once the first
    /// time, then a short backoff and a token bucket; see the crate docs).
    pub fn resync(&mut self, fault: ProviderFault) {
        let at = self.resyncs.on_resync(Instant::now());
        self.retry_at = Some(at);
        self.pending.push_back(ProviderEvent::Fault(fault));
    }

    /// Counts `fault` on the retry schedule and returns the delay before
    /// the next attempt, for a step that waits by itself (and may be woken
    /// earlier); nothing is queued.
    pub fn count_fault(&mut self, fault: &ProviderFault) -> Duration {
        self.schedule.on_fault(fault)
    }

    /// Holds the next step back until `at` (a backend's own pacing).
    pub fn retry_at(&mut self, at: Instant) {
        self.retry_at = Some(at);
    }

    /// The next step starts at once, whatever the schedule said.
    pub fn retry_now(&mut self) {
        self.retry_at = None;
    }

    /// An attempt succeeded (the watch delivered): the next fault starts
    /// the schedule again, the next resync relists at once if the bucket
    /// allows.
    pub fn succeeded(&mut self) {
        self.schedule.reset();
        self.resyncs.on_delivery();
    }

    /// Consecutive faults since the last success.
    pub fn failures(&self) -> u32 {
        self.schedule.failures()
    }

    /// A fresh retry schedule seeded from this stream's, for a retry loop
    /// of its own (see [`RetrySchedule::fork`]).
    pub fn fork_schedule(&mut self) -> RetrySchedule {
        self.schedule.fork()
    }

    /// Ends the stream once what is queued has been yielded, with
    /// `termination` last.
    pub fn terminate(&mut self, termination: ProviderTermination) {
        self.pending
            .push_back(ProviderEvent::Terminated(termination));
        self.done = true;
    }

    /// Whether the stream ends after the queued events.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether events are queued.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(crate) fn pop(&mut self) -> Option<ProviderEvent> {
        self.pending.pop_front()
    }

    pub(crate) fn take_retry_at(&mut self) -> Option<Instant> {
        self.retry_at.take()
    }
}
