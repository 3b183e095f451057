#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod handle;
mod in_memory_watch;
mod kind;
mod provider;
mod state;
mod stream;
mod topology_stream_provider;

pub use error::InMemoryError;
pub use handle::{HandleError, InMemoryHandle};
pub use in_memory_watch::InMemoryWatch;
pub use kind::InMemoryKind;
pub use provider::InMemoryProvider;
pub use topology_stream_provider::TopologyStreamProvider;
