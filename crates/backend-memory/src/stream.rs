//! The event stream of an in-memory provider.

use std::collections::VecDeque;
use std::sync::Arc;

use provisioning_provider_api::{ProviderEvent, ProviderSnapshot, ProviderStream, StreamOptions};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::state::{Control, Mode, Shared};

/// State of one open stream, unfolded into a `Stream` by [`open`].
struct StreamState {
    shared: Arc<Shared>,
    version: watch::Receiver<u64>,
    inbox: mpsc::UnboundedReceiver<Control>,
    options: StreamOptions,
    /// Content last emitted on this stream.
    last: Option<ProviderSnapshot>,
    pending: VecDeque<ProviderEvent>,
    next_heartbeat: Instant,
    /// After a fault, hang or failure: the next normal step must prove
    /// liveness at once (snapshot if changed, else heartbeat).
    owe_liveness: bool,
    /// Consecutive failed attempts while failing, and when the next is due.
    failed_attempts: u32,
    next_attempt: Option<Instant>,
    done: bool,
}

pub(crate) fn open(shared: Arc<Shared>, options: StreamOptions) -> ProviderStream {
    let (version, inbox) = shared.subscribe();
    let mut options = options;
    options.heartbeat_interval = options
        .heartbeat_interval
        .max(std::time::Duration::from_millis(1));
    let interval = options.heartbeat_interval;
    let state = StreamState {
        shared,
        version,
        inbox,
        options,
        last: None,
        pending: VecDeque::new(),
        next_heartbeat: Instant::now() + interval,
        owe_liveness: true,
        failed_attempts: 0,
        next_attempt: None,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        let event = st.next_event().await?;
        Some((event, st))
    }))
}

impl StreamState {
    async fn next_event(&mut self) -> Option<ProviderEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            let mode = self.shared.lock().mode.clone();
            match mode {
                Mode::Normal => self.step_normal().await,
                Mode::Hung => self.step_hung().await,
                Mode::Failing(fault) => self.step_failing(fault).await,
            }
        }
    }

    /// Emits the current view if it differs from what this stream last sent;
    /// otherwise a heartbeat when one is owed.
    fn emit_view(&mut self, heartbeat_if_unchanged: bool) {
        let current = self.shared.snapshot();
        let changed = self
            .last
            .as_ref()
            .is_none_or(|last| !last.same_content(&current));
        if changed {
            self.shared.lock().last_seen = Some(current.clone());
            self.last = Some(current.clone());
            self.pending.push_back(ProviderEvent::Snapshot(current));
        } else if heartbeat_if_unchanged {
            self.pending.push_back(ProviderEvent::heartbeat());
        } else {
            return;
        }
        self.next_heartbeat = Instant::now() + self.options.heartbeat_interval;
    }

    fn on_control(&mut self, control: Option<Control>) {
        match control {
            Some(Control::Fault(fault)) => {
                self.pending.push_back(ProviderEvent::Fault(fault));
                self.owe_liveness = true;
            }
            Some(Control::Terminate(termination)) => {
                self.pending
                    .push_back(ProviderEvent::Terminated(termination));
                self.done = true;
            }
            // The provider and every handle are gone: nothing can change any
            // more; end the stream like a backend that closed it.
            None => {
                self.pending.push_back(ProviderEvent::Terminated(
                    provisioning_provider_api::ProviderTermination::Ended,
                ));
                self.done = true;
            }
        }
    }

    async fn step_normal(&mut self) {
        self.failed_attempts = 0;
        self.next_attempt = None;
        // Mark the current version seen before reading the state, so a change
        // racing with this read wakes the next wait.
        self.version.borrow_and_update();
        if self.owe_liveness {
            self.owe_liveness = false;
            self.emit_view(true);
            return;
        }
        self.emit_view(false);
        if !self.pending.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            control = self.inbox.recv() => self.on_control(control),
            changed = self.version.changed() => {
                if changed.is_err() {
                    self.on_control(None);
                }
            }
            () = sleep_until(self.next_heartbeat) => {
                self.pending.push_back(ProviderEvent::heartbeat());
                self.next_heartbeat = Instant::now() + self.options.heartbeat_interval;
            }
        }
    }

    async fn step_hung(&mut self) {
        self.owe_liveness = true;
        self.version.borrow_and_update();
        tokio::select! {
            biased;
            // A hung backend delivers nothing, but a termination (the service
            // closing the stream, a connection reset) still ends it.
            control = self.inbox.recv() => {
                if matches!(control, Some(Control::Terminate(_)) | None) {
                    self.on_control(control);
                }
            }
            changed = self.version.changed() => {
                if changed.is_err() {
                    self.on_control(None);
                }
            }
        }
    }

    async fn step_failing(&mut self, fault: provisioning_provider_api::ProviderFault) {
        self.owe_liveness = true;
        self.version.borrow_and_update();
        let due = *self.next_attempt.get_or_insert_with(Instant::now);
        tokio::select! {
            biased;
            control = self.inbox.recv() => self.on_control(control),
            changed = self.version.changed() => {
                if changed.is_err() {
                    self.on_control(None);
                }
            }
            () = sleep_until(due) => {
                self.pending.push_back(ProviderEvent::Fault(fault));
                self.failed_attempts += 1;
                let delay = self.options.retry_delay(self.failed_attempts);
                // The in-memory backend is deterministic: no jitter.
                self.next_attempt = Some(Instant::now() + delay.max(std::time::Duration::from_millis(1)));
            }
        }
    }
}
