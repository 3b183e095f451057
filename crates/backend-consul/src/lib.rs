#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod mapping;
mod probe;
mod provider;
mod registration;
mod watch;

pub use client::{
    CheckInfo, DecodeError, HealthAnswer, HealthEntry, NodeInfo, QueryMeta, ServiceInfo,
    decode_health, decode_meta,
};
pub use error::ConsulError;
pub use mapping::{MappingError, MemberMapping, TAG_LABEL_PREFIX};
pub use probe::ConsulProbe;
pub use provider::{ConsulProvider, ConsulProviderBuilder};
