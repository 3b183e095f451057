#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod probe;
mod provider;
mod registration;
mod stream;
mod view;

pub use client::decode_member;
pub use config::EtcdConfig;
pub use error::EtcdError;
pub use probe::EtcdProbe;
pub use provider::EtcdProvider;
pub use registration::RegistrationStatus;
