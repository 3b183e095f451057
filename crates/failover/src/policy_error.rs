//! [`PolicyError`]: why a failover policy is rejected.

use std::time::Duration;

use provisioning_provider_api::{ProviderId, format_duration};

use crate::policy::known_keys;

/// Why a failover policy was rejected. Every message names the key and the
/// numbers that conflict; [`code`](Self::code) is always `invalid_config`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not JSON.
    #[error("policy is not valid JSON: {message}")]
    Syntax {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The JSON is not an object.
    #[error("policy must be a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead.
        found: &'static str,
    },
    /// A key the format does not have (typos happen).
    #[error("unknown policy key {key:?} (known keys: {})", known_keys())]
    UnknownKey {
        /// The unknown key.
        key: String,
    },
    /// A key with a value of the wrong type or form.
    #[error("policy key {key:?}: {message}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// `max_errors` is 0.
    #[error("max_errors 0 must be at least 1")]
    MaxErrorsZero,
    /// `backoff_initial > backoff_cap`.
    #[error(
        "backoff_initial {} is above backoff_cap {}",
        format_duration(*.initial),
        format_duration(*.cap)
    )]
    BackoffInitialAboveCap {
        /// `backoff_initial`.
        initial: Duration,
        /// `backoff_cap`.
        cap: Duration,
    },
    /// `backoff_factor` below 1 or not finite.
    #[error("backoff_factor {factor} must be a finite number of at least 1")]
    BackoffFactorBelowOne {
        /// `backoff_factor`.
        factor: f64,
    },
    /// `jitter` outside `[0, 0.5)`.
    #[error("jitter {jitter} must be at least 0 and below 0.5")]
    JitterOutOfRange {
        /// `jitter`.
        jitter: f64,
    },
    /// `shrink_confirm ≥ timeout`.
    #[error(
        "shrink_confirm {} must be below timeout {}",
        format_duration(*.shrink_confirm),
        format_duration(*.timeout)
    )]
    ShrinkConfirmNotBelowTimeout {
        /// `shrink_confirm`.
        shrink_confirm: Duration,
        /// `timeout`.
        timeout: Duration,
    },
    /// `max_shrink_ratio` outside (0, 1].
    #[error("max_shrink_ratio {ratio} must be above 0 and at most 1")]
    ShrinkRatioOutOfRange {
        /// `max_shrink_ratio`.
        ratio: f64,
    },
    /// `liveness_timeout` below 100 ms.
    #[error(
        "liveness_timeout {} must be at least 100ms",
        format_duration(*.liveness_timeout)
    )]
    LivenessTimeoutTooShort {
        /// `liveness_timeout`.
        liveness_timeout: Duration,
    },
    /// `liveness_timeout` above a third of `timeout`: a probe allowed that
    /// long could not fail `max_errors` times before the no-response
    /// timeout, so it would detect nothing sooner.
    #[error(
        "liveness_timeout {} must be at most timeout {} / 3 = {}",
        format_duration(*.liveness_timeout),
        format_duration(*.timeout),
        format_duration(*.timeout / 3)
    )]
    LivenessTimeoutAboveThirdOfTimeout {
        /// `liveness_timeout`.
        liveness_timeout: Duration,
        /// `timeout`.
        timeout: Duration,
    },
    /// A provider's quiet period does not fit three times into the timeout.
    #[error(
        "timeout {} must exceed 3 × the quiet period of provider {provider} ({} × 3 = {})",
        format_duration(*.timeout),
        format_duration(*.quiet_period),
        format_duration(.quiet_period.saturating_mul(3))
    )]
    TimeoutBelowQuietPeriod {
        /// `timeout`.
        timeout: Duration,
        /// The provider whose backend is quiet too long.
        provider: ProviderId,
        /// Its quiet period (Consul: `wait × 17/16`).
        quiet_period: Duration,
    },
}

impl PolicyError {
    /// The stable error code (ARCHITECTURE "Error kinds").
    pub fn code(&self) -> &'static str {
        "invalid_config"
    }

    /// The policy key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Syntax { .. } | Self::NotAnObject { .. } => None,
            Self::UnknownKey { key } => Some(key),
            Self::InvalidValue { key, .. } => Some(key),
            Self::MaxErrorsZero => Some("max_errors"),
            Self::BackoffInitialAboveCap { .. } => Some("backoff_initial"),
            Self::BackoffFactorBelowOne { .. } => Some("backoff_factor"),
            Self::JitterOutOfRange { .. } => Some("jitter"),
            Self::ShrinkConfirmNotBelowTimeout { .. } => Some("shrink_confirm"),
            Self::ShrinkRatioOutOfRange { .. } => Some("max_shrink_ratio"),
            Self::TimeoutBelowQuietPeriod { .. } => Some("timeout"),
            Self::LivenessTimeoutTooShort { .. }
            | Self::LivenessTimeoutAboveThirdOfTimeout { .. } => Some("liveness_timeout"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_codes() {
        let e = PolicyError::BackoffInitialAboveCap {
            initial: Duration::from_secs(40),
            cap: Duration::from_secs(30),
        };
        assert_eq!(e.key(), Some("backoff_initial"));
        assert_eq!(e.code(), "invalid_config");
        assert_eq!(
            e.to_string(),
            "backoff_initial 40s is above backoff_cap 30s"
        );
        let e = PolicyError::Syntax {
            message: "eof".into(),
        };
        assert_eq!(e.key(), None);
    }
}
