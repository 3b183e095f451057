//! The delivery engine: gets every publication to every consumer without
//! the hub ever waiting for one.
//!
//! The rest of the crate sees one door, [`Fanout`]: hand it a publication
//! ([`Fanout::publish`]) and it reaches every consumer queue, the history
//! and the latest-topology channel; [`Fanout::flush`] wakes the consumers of
//! what a transaction has published so far. Consumers are attached through
//! it too. Lanes, wake-ups, batches and the threads behind them (the bridge
//! crew, the notifier, the reclaimer) stay in here.

mod bridge_crew;
mod bridge_target;
mod bridge_work;
mod consumer_cursor;
mod consumer_slot;
mod event_history;
mod fanout;
mod notifier;
mod publication;
mod reclaimer;
mod sync;

pub(crate) use bridge_target::BridgeTarget;
pub(crate) use consumer_cursor::{ConsumerCursor, Delivery, Next};
pub use consumer_slot::{ConsumerKind, ConsumerStats};
pub use event_history::{EventHistory, ResyncNeeded};
pub(crate) use fanout::{Fanout, Retain};
pub(crate) use publication::Publication;
pub(crate) use reclaimer::Retired;

#[cfg(all(test, hub_loom))]
mod loom_models;
#[cfg(test)]
mod test_publications;
