//! The event stream of an in-memory provider: one step of the
//! reconnecting-stream kit, driven by the provider's mode.

use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{
    ProviderEvent, ProviderFault, ProviderSnapshot, ProviderStream, ProviderTermination,
    StreamOptions,
};
use provisioning_stream_kit::{ReconnectingStream, StepContext, StreamStep};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::state::{Control, Mode, Shared};

/// The in-memory provider's step: follows the shared state's mode.
struct MemoryStep {
    shared: Arc<Shared>,
    version: watch::Receiver<u64>,
    inbox: mpsc::UnboundedReceiver<Control>,
    heartbeat_interval: Duration,
    /// Content last emitted on this stream.
    last: Option<ProviderSnapshot>,
    /// While failing: when the next failed attempt is due. The step waits
    /// for it by itself, so a change of mode or a control wakes it earlier.
    next_attempt: Option<Instant>,
}

pub(crate) fn open(shared: Arc<Shared>, options: StreamOptions) -> ProviderStream {
    let (version, inbox) = shared.subscribe();
    let mut options = options;
    options.heartbeat_interval = options.heartbeat_interval.max(Duration::from_millis(1));
    // The in-memory backend is deterministic: no jitter.
    options.jitter = 0.0;
    let step = MemoryStep {
        shared,
        version,
        inbox,
        heartbeat_interval: options.heartbeat_interval,
        last: None,
        next_attempt: None,
    };
    ReconnectingStream::new(step, options).into_stream()
}

impl StreamStep for MemoryStep {
    async fn step(&mut self, ctx: &mut StepContext) {
        let mode = self.shared.lock().mode.clone();
        match mode {
            Mode::Normal => self.step_normal(ctx).await,
            Mode::Hung => self.step_hung(ctx).await,
            Mode::Failing(fault) => self.step_failing(ctx, fault).await,
        }
    }
}

impl MemoryStep {
    /// Emits the current view if it differs from what this stream last sent;
    /// otherwise a heartbeat when one is owed.
    fn emit_view(&mut self, ctx: &mut StepContext, heartbeat_if_unchanged: bool) {
        let current = self.shared.snapshot();
        let changed = self
            .last
            .as_ref()
            .is_none_or(|last| !last.same_content(&current));
        if changed {
            self.shared.lock().last_seen = Some(current.clone());
            self.last = Some(current.clone());
            ctx.push_liveness(ProviderEvent::Snapshot(current));
        } else if heartbeat_if_unchanged {
            ctx.push_liveness(ProviderEvent::heartbeat());
        }
    }

    fn on_control(ctx: &mut StepContext, control: Option<Control>) {
        match control {
            Some(Control::Fault(fault)) => {
                ctx.push(ProviderEvent::Fault(fault));
                ctx.owe_liveness();
            }
            Some(Control::Terminate(termination)) => ctx.terminate(termination),
            // The provider and every handle are gone: nothing can change any
            // more; end the stream like a backend that closed it.
            None => ctx.terminate(ProviderTermination::Ended),
        }
    }

    async fn step_normal(&mut self, ctx: &mut StepContext) {
        ctx.succeeded();
        self.next_attempt = None;
        // Mark the current version seen before reading the state, so a change
        // racing with this read wakes the next wait.
        self.version.borrow_and_update();
        if ctx.owes_liveness() {
            self.emit_view(ctx, true);
            return;
        }
        self.emit_view(ctx, false);
        if ctx.has_pending() {
            return;
        }
        let next_heartbeat = ctx.last_liveness() + self.heartbeat_interval;
        tokio::select! {
            biased;
            control = self.inbox.recv() => Self::on_control(ctx, control),
            changed = self.version.changed() => {
                if changed.is_err() {
                    Self::on_control(ctx, None);
                }
            }
            () = sleep_until(next_heartbeat) => ctx.push_liveness(ProviderEvent::heartbeat()),
        }
    }

    async fn step_hung(&mut self, ctx: &mut StepContext) {
        ctx.owe_liveness();
        self.version.borrow_and_update();
        tokio::select! {
            biased;
            // A hung backend delivers nothing, but a termination (the service
            // closing the stream, a connection reset) still ends it.
            control = self.inbox.recv() => {
                if matches!(control, Some(Control::Terminate(_)) | None) {
                    Self::on_control(ctx, control);
                }
            }
            changed = self.version.changed() => {
                if changed.is_err() {
                    Self::on_control(ctx, None);
                }
            }
        }
    }

    async fn step_failing(&mut self, ctx: &mut StepContext, fault: ProviderFault) {
        ctx.owe_liveness();
        self.version.borrow_and_update();
        let due = *self.next_attempt.get_or_insert_with(Instant::now);
        tokio::select! {
            biased;
            control = self.inbox.recv() => Self::on_control(ctx, control),
            changed = self.version.changed() => {
                if changed.is_err() {
                    Self::on_control(ctx, None);
                }
            }
            () = sleep_until(due) => {
                let delay = ctx.count_fault(&fault);
                ctx.push(ProviderEvent::Fault(fault));
                self.next_attempt = Some(Instant::now() + delay.max(Duration::from_millis(1)));
            }
        }
    }
}
