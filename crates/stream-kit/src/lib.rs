#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod reconnecting_stream;
mod resync_pacer;
mod retry_schedule;
mod step_context;

pub use reconnecting_stream::{ReconnectingStream, StreamStep};
pub use retry_schedule::RetrySchedule;
pub use step_context::StepContext;
