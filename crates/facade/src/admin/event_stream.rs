//! `GET /events`: event lines as Server-Sent Events, with `?since=N`
//! replay from the hub's history (CONTRACTS §4), at most
//! [`MAX_EVENT_STREAMS`] at once, and a client that stops reading dropped
//! (§4a rule 5).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::ProvisioningEvent;
use crate::hub::EventSubscription;
use crate::registry::ErrorCode;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::AdminApi;
use super::admin_api::MAX_EVENT_STREAMS;
use super::api_error::ApiError;
use super::connection_handle::ConnectionHandle;
use super::stall_check::StallCheck;

/// How often a stream is checked for a stalled client.
const STALL_CHECK_EVERY: Duration = Duration::from_millis(250);

/// A client whose queue overflowed and that then left lines waiting in it
/// for this long, taking nothing, has stopped reading.
const STALLED_AFTER: Duration = Duration::from_secs(1);

/// One line as an SSE event: `data:` the line, `id:` its `seq_no` (none on
/// `resync`), no `event:` field.
fn sse_event(line: &ProvisioningEvent) -> Event {
    let event = Event::default().data(line.to_json_line());
    if line.type_name() == "resync" {
        event
    } else {
        event.id(line.seq_no().to_string())
    }
}

/// Drops what a `since` consumer already has: lines at or below its
/// high-water mark, and a `resync` that re-sends a snapshot it has (a
/// `resync` beyond the mark is passed on with its snapshot).
#[derive(Debug)]
pub(crate) struct SinceFilter {
    high_water: u64,
}

impl SinceFilter {
    /// A consumer that has every line up to `high_water`.
    pub(crate) fn new(high_water: u64) -> Self {
        Self { high_water }
    }

    /// Whether to send `line`, updating the mark.
    pub(crate) fn accept(&mut self, line: &ProvisioningEvent) -> bool {
        let seq_no = line.seq_no();
        if line.type_name() == "resync" {
            if seq_no <= self.high_water {
                return false;
            }
            // The re-sent snapshot carries `as_of_seq_no`: let it through.
            self.high_water = seq_no - 1;
            return true;
        }
        if seq_no <= self.high_water {
            return false;
        }
        self.high_water = seq_no;
        true
    }
}

/// `GET /events[?since=N]`.
pub(crate) async fn events(
    State(state): State<AdminApi>,
    connection: Option<Extension<ConnectionHandle>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Held by the stream: the slot is free when the stream ends, its
    // connection closes, or its client stopped reading.
    let slot = state.event_stream_slot().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TooManyStreams,
            format!("{MAX_EVENT_STREAMS} event streams are open already; retry later"),
        )
    })?;
    // A reconnecting EventSource sends the last id it saw as
    // `Last-Event-ID`: the same as `?since=`, which wins when both are set.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| ("Last-Event-ID", v));
    let asked = query
        .get("since")
        .map(|v| ("since", v.as_str()))
        .or(last_event_id);
    let since = match asked {
        None | Some((_, "")) => None,
        Some((name, text)) => Some(text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("{name} {text:?}: expected a seq_no (u64)"))
        })?),
    };
    let handle = state.handle();
    // Subscribe before reading the history, so nothing published in
    // between is missed; the filter drops what both deliver. Without a
    // replay the stream starts exactly with `resync` + the snapshot.
    let live = handle
        .hub()
        .subscribe_events_from_snapshot("events")
        .map_err(|e| {
            ApiError::from(crate::ProvisioningError::ProvisioningUnavailable {
                detail: format!("event stream: {e}"),
            })
        })?;
    let live = watch_overflow(live, connection.map(|Extension(c)| c), slot);
    let lines: BoxStream<'static, Arc<ProvisioningEvent>> = match since {
        None => live.boxed(),
        Some(since) => match handle.hub().history().since(since) {
            Ok(replay) => {
                let mut filter = SinceFilter::new(since);
                let replay: Vec<_> = replay.into_iter().filter(|l| filter.accept(l)).collect();
                stream::iter(replay)
                    .chain(live.filter(move |line| {
                        let keep = filter.accept(line);
                        async move { keep }
                    }))
                    .boxed()
            }
            // The history no longer holds line since + 1: the subscription
            // starts with `resync` and the current snapshot.
            Err(_) => live.boxed(),
        },
    };
    let events = lines.map(move |line| Ok::<_, Infallible>(sse_event(&line)));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The live subscription, when its consumer last took a line, and its
/// stream slot (given back when the consumer stalls).
struct Watched {
    live: EventSubscription,
    last_taken: Instant,
    slot: Option<OwnedSemaphorePermit>,
}

/// The live subscription as a stream whose client is dropped once it
/// stopped reading: the hub's bounded queue for it overflowed and nothing
/// was taken since (its socket is full, so the response is not polled and
/// would never see the overflow's `resync` itself). A client that reads,
/// only slower than the hub publishes, takes lines and gets the `resync`
/// of CONTRACTS §3 instead. The hub never waits for a subscriber, so nobody
/// else is slowed meanwhile; a dropped client may reconnect with
/// `Last-Event-ID`. A server that inserts no [`ConnectionHandle`] cannot
/// close the connection from here: the stalled stream then gives its slot
/// back, so 64 clients that stopped reading never lock everyone else out
/// (the connection itself is left to the server's own limits).
fn watch_overflow(
    live: EventSubscription,
    connection: Option<ConnectionHandle>,
    slot: OwnedSemaphorePermit,
) -> BoxStream<'static, Arc<ProvisioningEvent>> {
    let watched = Arc::new(Mutex::new(Watched {
        live,
        last_taken: Instant::now(),
        slot: Some(slot),
    }));
    tokio::spawn(drop_when_stalled(Arc::downgrade(&watched), connection));
    stream::poll_fn(move |cx| {
        let mut watched = watched.lock().unwrap_or_else(PoisonError::into_inner);
        let next = watched.live.poll_next_unpin(cx);
        if next.is_ready() {
            watched.last_taken = Instant::now();
        }
        next
    })
    .boxed()
}

/// Gives the slot back and closes `connection` once its subscription
/// stalled; ends with the stream.
async fn drop_when_stalled(watched: Weak<Mutex<Watched>>, connection: Option<ConnectionHandle>) {
    let mut every = tokio::time::interval(STALL_CHECK_EVERY);
    let mut check = StallCheck::new(STALLED_AFTER);
    loop {
        every.tick().await;
        let Some(watched) = watched.upgrade() else {
            return;
        };
        let mut watched = watched.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = watched.live.stats();
        if check.stalled(
            stats.overflows,
            stats.queued,
            watched.last_taken,
            Instant::now(),
        ) {
            tracing::warn!(
                "admin API: an /events client stopped reading and its queue is full; dropped"
            );
            watched.slot = None;
            if let Some(connection) = &connection {
                connection.close();
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublishedSnapshot;
    use crate::api::{ProviderId, ProviderSnapshot};
    use crate::hub::wire::{ResyncLine, RunId};

    fn snapshot(seq_no: u64) -> Arc<PublishedSnapshot> {
        Arc::new(PublishedSnapshot::new(
            RunId::from_u64(1),
            seq_no,
            1,
            ProviderId::new("p").unwrap(),
            ProviderSnapshot::empty(),
        ))
    }

    fn line(seq_no: u64) -> ProvisioningEvent {
        ProvisioningEvent::Snapshot(snapshot(seq_no))
    }

    fn resync(as_of: u64) -> ProvisioningEvent {
        ProvisioningEvent::Resync(ResyncLine::for_snapshot(&snapshot(as_of)))
    }

    #[test]
    fn since_filter_drops_duplicates_and_old_resyncs() {
        let mut f = SinceFilter::new(3);
        assert!(!f.accept(&line(3)));
        assert!(f.accept(&line(4)));
        assert!(!f.accept(&line(4)), "delivered twice: once");
        assert!(!f.accept(&resync(4)), "a snapshot the consumer has");
        assert!(f.accept(&line(5)));
        assert!(f.accept(&resync(9)), "fell behind: resync passes");
        assert!(f.accept(&line(9)), "and so does its snapshot");
        assert!(!f.accept(&line(8)));
    }
}
