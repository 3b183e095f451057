//! [`BridgeWork`]: what a crew lane serves in the hub — a bridge fed from
//! its consumer cursor.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use super::bridge_crew::{LaneWork, Step};
use super::bridge_target::{BridgeTarget, panic_text};
use super::consumer_cursor::{ConsumerCursor, Delivery, Next};

/// A bridge and the cursor over its consumer slot.
pub(crate) struct BridgeWork {
    pub(crate) target: BridgeTarget,
    pub(crate) cursor: ConsumerCursor,
}

impl LaneWork for BridgeWork {
    fn step(&mut self) -> Step {
        match self.cursor.next() {
            Next::Item(delivery) => {
                deliver(&self.target, &mut self.cursor, &delivery);
                Step::Served
            }
            Next::Empty => Step::Empty,
            Next::Closed => Step::Closed,
        }
    }
}

/// One bridge call; a panic is caught, counted, logged and followed by a
/// resync.
fn deliver(target: &BridgeTarget, cursor: &mut ConsumerCursor, delivery: &Delivery) {
    let is_resync = matches!(delivery, Delivery::Resync(_));
    let seq_no = match delivery {
        Delivery::Line(line) | Delivery::Resync(line) => line.seq_no(),
    };
    // Every line is offered to every bridge; `called` tells the lines a
    // bridge takes from those it is not called for.
    let span = call_spans_reach_anyone().then(|| {
        tracing::debug_span!(
            "bridge_call",
            consumer = cursor.slot.name(),
            seq_no,
            resync = is_resync,
            called = tracing::field::Empty,
        )
        .entered()
    });
    match catch_unwind(AssertUnwindSafe(|| target.deliver(delivery))) {
        Ok(called) => {
            if let Some(span) = &span {
                span.record("called", called);
            }
            if called {
                cursor.slot.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(panic) => {
            cursor.slot.panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                consumer = cursor.slot.name(),
                seq_no,
                panic = panic_text(&*panic),
                "watch hub bridge panicked; it gets a resync"
            );
            // A resync that panics is not retried, or a bridge that always
            // panics would spin.
            if !is_resync {
                cursor.force_resync();
            }
        }
    }
}

/// Whether a `bridge_call` span can reach anyone: a `tracing` subscriber
/// that takes `debug`, or a `log` logger at `debug` (where `tracing` writes
/// spans when no subscriber is set and its `log` feature is on).
///
/// A span nobody takes still costs, with that feature and no subscriber:
/// creating, entering, recording, leaving and dropping it each ask `log`
/// whether to write. A switch offers every bridge each of its lines, so on
/// the bridge threads that cost came to about as much as the calls.
fn call_spans_reach_anyone() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    (STATIC_MAX_LEVEL >= LevelFilter::DEBUG && LevelFilter::current() >= LevelFilter::DEBUG)
        || log::max_level() >= log::LevelFilter::Debug
}
