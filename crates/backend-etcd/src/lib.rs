#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod provider;
mod registration;
mod stream;
mod view;

pub use config::{EnvFileSecrets, EtcdConfig, Registration, SecretSource};
pub use error::EtcdError;
pub use provider::EtcdProvider;
pub use registration::RegistrationStatus;
