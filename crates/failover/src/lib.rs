#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod controller;
mod controller_error;
mod decision;
mod failure_reason;
mod jitter_rng;
mod policy;
mod policy_error;
mod policy_warning;
mod provider_condition;
mod provider_handle;
mod provider_state;
mod provider_status;

pub use controller::{DEFAULT_STARTUP_GRACE, FailoverController};
pub use controller_error::ControllerError;
pub use decision::Decision;
pub use failure_reason::FailureReason;
pub use policy::FailoverPolicy;
pub use policy_error::PolicyError;
pub use policy_warning::PolicyWarning;
pub use provider_condition::ProviderCondition;
pub use provider_handle::ProviderHandle;
pub use provider_status::ProviderStatus;
