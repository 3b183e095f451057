#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod mapping;
mod probe;
mod provider;
mod stream;
mod watch_guard;

pub use config::{DEFAULT_IDLE_TIMEOUT, KubeResource, KubeWatchConfig, LIST_PAGE_SIZE};
pub use error::KubeError;
pub use mapping::{MappedMember, MemberMapping, ObjectMembers, pod_members, slice_members};
pub use probe::KubeProbe;
pub use provider::KubeProvider;
