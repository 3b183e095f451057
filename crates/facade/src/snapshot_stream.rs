//! [`SnapshotStream`]: the latest published snapshot as a `futures` stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use provisioning_watch_hub::TopologyReceiver;
use provisioning_watch_hub::wire::PublishedSnapshot;
use tokio_stream::wrappers::WatchStream;

use crate::ProvisioningHandle;

/// The published snapshots, latest only: a reader that polls slowly skips
/// straight to the newest snapshot and never works through a backlog (the
/// hub keeps one slot, overwritten on every publication).
///
/// It first yields the current snapshot when one was published, then each
/// newer one; it ends when the service shuts down. It is a plain
/// [`futures::Stream`]: any executor may poll it.
pub struct SnapshotStream {
    inner: WatchStream<Option<Arc<PublishedSnapshot>>>,
}

impl SnapshotStream {
    pub(crate) fn new(receiver: TopologyReceiver) -> Self {
        Self {
            inner: WatchStream::new(receiver),
        }
    }
}

impl Stream for SnapshotStream {
    type Item = Arc<PublishedSnapshot>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Some(snapshot))) => return Poll::Ready(Some(snapshot)),
                // Nothing published yet: the slot starts empty.
                Poll::Ready(Some(None)) => {}
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream").finish_non_exhaustive()
    }
}

impl ProvisioningHandle {
    /// The published snapshots as a stream that always yields the latest
    /// (see [`SnapshotStream`]); no tokio type is needed to consume it.
    pub fn snapshots(&self) -> SnapshotStream {
        SnapshotStream::new(self.subscribe())
    }
}
