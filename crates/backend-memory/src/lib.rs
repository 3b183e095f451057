#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod handle;
mod provider;
mod state;
mod stream;
mod topology_stream_provider;

pub use error::InMemoryError;
pub use handle::{HandleError, InMemoryHandle};
pub use provider::InMemoryProvider;
pub use topology_stream_provider::TopologyStreamProvider;
