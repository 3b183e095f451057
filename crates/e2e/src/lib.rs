//! Shared pieces of the end-to-end tests, harnesses and benches: a recording
//! bridge that rebuilds the topology from events and checks it against every
//! snapshot, and helpers to wait for conditions with a printed measurement.

#![forbid(unsafe_code)]

mod recorder;

pub use recorder::{Recorder, RecorderState};
