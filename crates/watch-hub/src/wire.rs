//! The event lines of CONTRACTS §3, as consumers receive them.
//!
//! [`ProvisioningEvent`] is one line as the hub publishes it (what an
//! [`EventSubscription`](crate::EventSubscription) yields; it serialises to
//! the exact JSON line); [`EventLine`] is the owned, `Deserialize` side for
//! readers of `watch --json` or `/events`. The envelopes are what bridges
//! are called with: [`SnapshotEnvelope`] (a shared [`PublishedSnapshot`]),
//! [`ChangeEnvelope`] and [`TopologyEnvelope`]. Every line carries the
//! run's [`RunId`].

pub use crate::event_line::{EventLine, TerminationReason, TopologyChange};
pub use crate::line_payloads::{
    ChangeEnvelope, HealthLine, ResyncLine, TerminatedLine, TopologyEnvelope, UnavailableLine,
};
pub use crate::provisioning_event::ProvisioningEvent;
pub use crate::published_snapshot::{PublishedSnapshot, SnapshotEnvelope};
pub use crate::run_id::{RunId, RunIdParseError};
