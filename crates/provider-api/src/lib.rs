#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod descriptor;
mod diff;
mod duration_text;
mod event;
mod hash;
mod health;
mod host_key;
mod id;
mod incarnation;
mod inline_str;
mod jitter_rng;
mod kind;
mod member_state;
mod node;
mod provider;
mod secret_ref;
mod snapshot;
mod switch_reason;
mod topology_event;
mod topology_view;
mod watch_value;

pub use descriptor::{ProviderAuth, ProviderDescriptor, TlsSettings};
pub use diff::{diff, diff_into};
#[cfg(feature = "serde")]
pub use duration_text::serde_text as duration_serde;
pub use duration_text::{DurationError, format_duration, parse_duration};
pub use event::{FaultKind, Heartbeat, ProviderEvent, ProviderFault, ProviderTermination};
pub use hash::{HashHex, format_hash, snapshot_hash, snapshot_hash_input};
pub use health::ProviderHealth;
pub use id::{NodeId, ProviderId, ProviderIdError};
pub use incarnation::{Incarnation, IncarnationError};
pub use jitter_rng::JitterRng;
pub use kind::ProviderKind;
pub use member_state::MemberState;
pub use node::{ClusterNode, Labels, MemberSpec};
pub use provider::{
    ClusterProvider, LivenessCheck, ProviderShutdown, ProviderStream, StreamOptions,
};
pub use secret_ref::{SecretRef, SecretRefError};
pub use snapshot::{ProviderSnapshot, SnapshotError};
pub use switch_reason::SwitchReason;
pub use topology_event::{RemoteTopologyEvent, TopologyEventKind};
pub use topology_view::{ApplyError, TopologyView};
pub use watch_value::{WatchParams, WatchValue};

/// Compile-time proof that the provider trait is usable as `dyn`.
fn _object_safe(_: &dyn ClusterProvider) {}
