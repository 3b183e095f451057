//! [`EventSubscription`]: a bounded stream of event lines for one subscriber.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use crate::delivery::{ConsumerCursor, ConsumerStats, Delivery, Next};
use crate::line_payloads::ResyncLine;
use crate::provisioning_event::ProvisioningEvent;

/// A bounded stream of event lines (CONTRACTS §3) for one subscriber.
///
/// It starts with the retained lines (terminations, an ongoing
/// `provisioning_unavailable`), `resync` and the current snapshot, then
/// follows live. Its queue holds at most the hub's queue capacity in
/// publications; a subscriber that falls further behind gets `resync` and
/// the current snapshot again. The stream ends when the hub shuts down;
/// dropping it detaches it.
pub struct EventSubscription {
    cursor: ConsumerCursor,
    snapshot_after_resync: Option<Arc<ProvisioningEvent>>,
}

impl EventSubscription {
    pub(crate) fn new(cursor: ConsumerCursor) -> Self {
        Self {
            cursor,
            snapshot_after_resync: None,
        }
    }

    /// The next line if one is ready: `Ok(None)` when nothing is queued,
    /// `Err(Closed)` once the hub shut down.
    pub fn try_next(&mut self) -> Result<Option<Arc<ProvisioningEvent>>, SubscriptionClosed> {
        if let Some(line) = self.snapshot_after_resync.take() {
            return Ok(Some(line));
        }
        match self.cursor.next() {
            Next::Item(delivery) => Ok(Some(self.take(delivery))),
            Next::Empty => Ok(None),
            Next::Closed => Err(SubscriptionClosed),
        }
    }

    /// The next line; `None` once the hub shut down.
    pub async fn recv(&mut self) -> Option<Arc<ProvisioningEvent>> {
        futures::StreamExt::next(self).await
    }

    /// This subscriber's counters.
    pub fn stats(&self) -> ConsumerStats {
        self.cursor.stats()
    }

    fn take(&mut self, delivery: Delivery) -> Arc<ProvisioningEvent> {
        self.cursor.count_delivered();
        match delivery {
            Delivery::Line(line) => line,
            Delivery::Resync(snapshot) => {
                let resync = match snapshot.as_snapshot() {
                    Some(published) => ResyncLine::for_snapshot(published),
                    None => ResyncLine {
                        run_id: snapshot.run_id(),
                        epoch: snapshot.epoch(),
                        as_of_seq_no: snapshot.seq_no(),
                    },
                };
                self.snapshot_after_resync = Some(snapshot);
                Arc::new(ProvisioningEvent::Resync(resync))
            }
        }
    }
}

/// The hub shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the watch hub shut down")]
pub struct SubscriptionClosed;

impl Stream for EventSubscription {
    type Item = Arc<ProvisioningEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(line) = this.snapshot_after_resync.take() {
            return Poll::Ready(Some(line));
        }
        // Register, then look again, so a push between the first look and
        // the registration is not missed.
        for registered in [false, true] {
            match this.cursor.next() {
                Next::Item(delivery) => return Poll::Ready(Some(this.take(delivery))),
                Next::Closed => return Poll::Ready(None),
                Next::Empty if !registered => this.cursor.register(cx.waker()),
                Next::Empty => {}
            }
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubscription")
            .field("stats", &self.stats())
            .finish()
    }
}
