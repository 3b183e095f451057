//! Shared pieces of the end-to-end tests, harnesses and benches: a recording
//! bridge that rebuilds the topology from events and checks it against every
//! snapshot, and helpers to wait for conditions with a printed measurement.

#![forbid(unsafe_code)]

pub mod chaos_matrix;
pub mod chaos_observer;
pub mod chaos_proxy;
pub mod chaos_target;
mod recorder;
pub mod soak_churn;
mod timing;

pub use recorder::{Recorder, RecorderState};
pub use timing::{
    Percentiles, ResultRow, SignalBridge, SignalBridges, fmt_bytes, fmt_duration, load_average,
    peak_rss_bytes, rss_bytes,
};
