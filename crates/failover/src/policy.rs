//! [`FailoverPolicy`]: the numbers of ARCHITECTURE "Failover rules", in the
//! JSON format of CONTRACTS §7, with the validation of rule 9.

use std::time::Duration;

use provisioning_provider_api::{ProviderId, StreamOptions, duration_serde, parse_duration};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{PolicyError, PolicyWarning};

/// The keys of the policy object, in the order they are written.
const KEYS: [&str; 13] = [
    "timeout",
    "max_errors",
    "snapshot_delay",
    "backoff_initial",
    "backoff_factor",
    "backoff_cap",
    "jitter",
    "cooldown",
    "standby",
    "max_shrink_ratio",
    "shrink_confirm",
    "liveness_interval",
    "liveness_timeout",
];

/// The shortest `liveness_timeout` (rule 9): a probe needs a round trip
/// and a loaded machine's scheduling delay, well below that it only
/// measures noise.
pub(crate) const MIN_LIVENESS_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest healthy period a fail-back can demand after repeated
/// flapping (rule 4's cap).
pub(crate) const PENALTY_CAP: Duration = Duration::from_secs(300);

/// The failover policy: health thresholds, backoff, cooldown and standby
/// count (CONTRACTS §7).
///
/// Every key of the JSON form is optional and defaults to the seed's value;
/// unknown keys are errors. [`from_json`](Self::from_json) and the
/// [`Deserialize`] impl both check the rules that need no provider
/// (ARCHITECTURE "Failover rules" 9); [`validate`](Self::validate) adds
/// the ones that do.
///
/// ```
/// use std::time::Duration;
/// use provisioning_failover::FailoverPolicy;
///
/// let policy = FailoverPolicy::from_json(r#"{"cooldown":"30s","standby":2}"#)?;
/// assert_eq!(policy.cooldown, Duration::from_secs(30));
/// assert_eq!(policy.timeout, Duration::from_secs(15)); // default
/// assert!(FailoverPolicy::from_json(r#"{"cooldwn":"30s"}"#).is_err());
/// # Ok::<(), provisioning_failover::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct FailoverPolicy {
    /// No-response timeout: a provider silent (no snapshot, no heartbeat) for
    /// this long is `Unreachable`. Default 15 s.
    #[serde(with = "duration_serde")]
    pub timeout: Duration,
    /// Consecutive retryable faults that make a provider `Unreachable`.
    /// Default 3.
    pub max_errors: u32,
    /// Backend staleness above which a provider is `Degraded`. Default 10 s.
    #[serde(with = "duration_serde")]
    pub snapshot_delay: Duration,
    /// First backoff delay after a verdict. Default 2 s.
    #[serde(with = "duration_serde")]
    pub backoff_initial: Duration,
    /// Backoff growth factor. Default 2.0.
    pub backoff_factor: f64,
    /// Backoff cap. Default 30 s.
    #[serde(with = "duration_serde")]
    pub backoff_cap: Duration,
    /// Jitter fraction (±) applied to backoff delays. Default 0.2.
    pub jitter: f64,
    /// Cooldown between switches, and the healthy period a fail-back needs.
    /// Default 10 s.
    #[serde(with = "duration_serde")]
    pub cooldown: Duration,
    /// Number of warm lower-priority standbys. Default 1.
    pub standby: u32,
    /// Shrink-guard ratio (used by the watch hub). Default 0.5.
    pub max_shrink_ratio: f64,
    /// Shrink-guard confirmation time (used by the watch hub). Default 5 s.
    #[serde(with = "duration_serde")]
    pub shrink_confirm: Duration,
    /// How often every running network provider is probed for liveness
    /// over its watch's transport; `0s` turns probing off. Default 1 s.
    #[serde(with = "duration_serde")]
    pub liveness_interval: Duration,
    /// A probe answered later than this is a retryable fault (so a backend
    /// that accepts and then answers nothing is left after about
    /// `max_errors × liveness_timeout`). Default 1 s.
    #[serde(with = "duration_serde")]
    pub liveness_timeout: Duration,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            max_errors: 3,
            snapshot_delay: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(2),
            backoff_factor: 2.0,
            backoff_cap: Duration::from_secs(30),
            jitter: 0.2,
            cooldown: Duration::from_secs(10),
            standby: 1,
            max_shrink_ratio: 0.5,
            shrink_confirm: Duration::from_secs(5),
            liveness_interval: Duration::from_secs(1),
            liveness_timeout: Duration::from_secs(1),
        }
    }
}

impl FailoverPolicy {
    /// Short numbers for tests and demos: timeout 1.5 s, snapshot delay 1 s,
    /// backoff 100 ms ×2 capped at 1 s, cooldown 1 s, shrink confirm 500 ms,
    /// liveness probes every 500 ms with a 500 ms timeout (a third of the
    /// timeout, the most rule 9 allows); the rest as the defaults.
    pub fn tight() -> Self {
        Self {
            timeout: Duration::from_millis(1500),
            snapshot_delay: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            cooldown: Duration::from_secs(1),
            shrink_confirm: Duration::from_millis(500),
            liveness_interval: Duration::from_millis(500),
            liveness_timeout: Duration::from_millis(500),
            ..Self::default()
        }
    }

    /// Parses the JSON form (CONTRACTS §7) and checks the rules that need
    /// no provider. Errors name the key and the numbers.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            message: e.to_string(),
        })?;
        Self::from_value(&value)
    }

    /// The JSON form, keys in contract order.
    pub fn to_json(&self) -> String {
        // Serializing plain numbers and strings into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Builds a policy from an already parsed JSON value; see
    /// [`from_json`](Self::from_json).
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let map = match value {
            Value::Object(map) => map,
            other => {
                return Err(PolicyError::NotAnObject {
                    found: json_type(other),
                });
            }
        };
        let mut policy = Self::default();
        for (key, value) in map {
            policy.set_key(key, value)?;
        }
        policy.check()?;
        Ok(policy)
    }

    fn set_key(&mut self, key: &str, value: &Value) -> Result<(), PolicyError> {
        match key {
            "timeout" => self.timeout = duration_value("timeout", value)?,
            "max_errors" => self.max_errors = count_value("max_errors", value)?,
            "snapshot_delay" => self.snapshot_delay = duration_value("snapshot_delay", value)?,
            "backoff_initial" => self.backoff_initial = duration_value("backoff_initial", value)?,
            "backoff_factor" => self.backoff_factor = number_value("backoff_factor", value)?,
            "backoff_cap" => self.backoff_cap = duration_value("backoff_cap", value)?,
            "jitter" => self.jitter = number_value("jitter", value)?,
            "cooldown" => self.cooldown = duration_value("cooldown", value)?,
            "standby" => self.standby = count_value("standby", value)?,
            "max_shrink_ratio" => self.max_shrink_ratio = number_value("max_shrink_ratio", value)?,
            "shrink_confirm" => self.shrink_confirm = duration_value("shrink_confirm", value)?,
            "liveness_interval" => {
                self.liveness_interval = duration_value("liveness_interval", value)?;
            }
            "liveness_timeout" => {
                self.liveness_timeout = duration_value("liveness_timeout", value)?;
            }
            other => {
                return Err(PolicyError::UnknownKey {
                    key: other.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Checks the rules of ARCHITECTURE "Failover rules" 9 that need no
    /// provider: `backoff_initial ≤ backoff_cap`, `0 ≤ jitter < 0.5`,
    /// `shrink_confirm < timeout`, `max_shrink_ratio` in (0, 1],
    /// `max_errors ≥ 1`, `100 ms ≤ liveness_timeout ≤ timeout / 3` (checked
    /// with probing off too, so turning it on later cannot fail); and,
    /// beyond rule 9, a finite `backoff_factor ≥ 1`
    /// (a shrinking backoff is a configuration mistake).
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.max_errors < 1 {
            return Err(PolicyError::MaxErrorsZero);
        }
        if self.backoff_initial > self.backoff_cap {
            return Err(PolicyError::BackoffInitialAboveCap {
                initial: self.backoff_initial,
                cap: self.backoff_cap,
            });
        }
        if !(self.backoff_factor.is_finite() && self.backoff_factor >= 1.0) {
            return Err(PolicyError::BackoffFactorBelowOne {
                factor: self.backoff_factor,
            });
        }
        if !(self.jitter.is_finite() && (0.0..0.5).contains(&self.jitter)) {
            return Err(PolicyError::JitterOutOfRange {
                jitter: self.jitter,
            });
        }
        if self.shrink_confirm >= self.timeout {
            return Err(PolicyError::ShrinkConfirmNotBelowTimeout {
                shrink_confirm: self.shrink_confirm,
                timeout: self.timeout,
            });
        }
        if !(self.max_shrink_ratio > 0.0 && self.max_shrink_ratio <= 1.0) {
            return Err(PolicyError::ShrinkRatioOutOfRange {
                ratio: self.max_shrink_ratio,
            });
        }
        if self.liveness_timeout < MIN_LIVENESS_TIMEOUT {
            return Err(PolicyError::LivenessTimeoutTooShort {
                liveness_timeout: self.liveness_timeout,
            });
        }
        if self.liveness_timeout > self.timeout / 3 {
            return Err(PolicyError::LivenessTimeoutAboveThirdOfTimeout {
                liveness_timeout: self.liveness_timeout,
                timeout: self.timeout,
            });
        }
        Ok(())
    }

    /// Checks every rule of ARCHITECTURE "Failover rules" 9 against the
    /// providers that will run: each with its quiet period, if its backend
    /// has one (see [`consul_quiet_period`](Self::consul_quiet_period)).
    ///
    /// A quiet period `q` is rejected when `3 × q ≥ timeout` (CONTRACTS
    /// §1: the quiet period must stay inside a third of the timeout).
    /// `standby` above the number of providers − 1 is only a warning.
    ///
    /// ```
    /// use std::time::Duration;
    /// use provisioning_failover::FailoverPolicy;
    /// use provisioning_provider_api::ProviderId;
    ///
    /// let policy = FailoverPolicy::default();
    /// let consul = ProviderId::new("consul-a").unwrap();
    /// let ok = FailoverPolicy::consul_quiet_period(Duration::from_millis(4700));
    /// assert!(policy.validate(&[(consul.clone(), Some(ok))]).is_ok());
    /// let too_long = FailoverPolicy::consul_quiet_period(Duration::from_millis(4800));
    /// let err = policy.validate(&[(consul, Some(too_long))]).unwrap_err();
    /// assert!(err.to_string().contains("consul-a"));
    /// ```
    pub fn validate(
        &self,
        providers: &[(ProviderId, Option<Duration>)],
    ) -> Result<Vec<PolicyWarning>, PolicyError> {
        self.check()?;
        for (id, quiet) in providers {
            let Some(quiet) = *quiet else { continue };
            let too_long = quiet.checked_mul(3).is_none_or(|t| t >= self.timeout);
            if too_long {
                return Err(PolicyError::TimeoutBelowQuietPeriod {
                    timeout: self.timeout,
                    provider: id.clone(),
                    quiet_period: quiet,
                });
            }
        }
        let mut warnings = Vec::new();
        let count = providers.len();
        if count > 0 && u64::from(self.standby) > (count as u64).saturating_sub(1) {
            warnings.push(PolicyWarning::StandbyAboveProviders {
                standby: self.standby,
                providers: count,
            });
        }
        Ok(warnings)
    }

    /// The quiet period of a Consul blocking query with `wait`: the server
    /// adds up to `wait / 16` of jitter, so `wait × 17 / 16`.
    pub fn consul_quiet_period(wait: Duration) -> Duration {
        wait.checked_mul(17).map_or(Duration::MAX, |d| d / 16)
    }

    /// What the service tells each provider when it opens a stream: a
    /// heartbeat every third of the timeout, this policy's retry numbers
    /// (rule 2's fast retries come from [`StreamOptions::retry_delay`]) and
    /// its liveness probe numbers.
    pub fn stream_options(&self) -> StreamOptions {
        StreamOptions::new(self.timeout / 3)
            .with_max_errors(self.max_errors)
            .with_liveness(self.liveness_interval, self.liveness_timeout)
            .with_backoff(
                self.backoff_initial,
                self.backoff_factor,
                self.backoff_cap,
                self.jitter,
            )
    }

    /// The backoff after verdict number `verdict` (0 = the first) of a
    /// provider, given a uniform random number in `[0, 1)` for the jitter:
    /// `backoff_initial × backoff_factor^verdict`, capped at `backoff_cap`,
    /// then ± `jitter`. The same schedule the provider's stream follows after
    /// its fast retries.
    pub fn backoff_delay(&self, verdict: u32, unit_random: f64) -> Duration {
        self.stream_options()
            .retry_delay_jittered(self.max_errors.saturating_add(verdict), unit_random)
    }

    /// The continuous healthy period a fail-back to a provider needs after
    /// `penalty` deaths soon after being failed back to: the cooldown,
    /// doubled per penalty, capped at 5 minutes (never below the cooldown).
    pub fn fail_back_period(&self, penalty: u32) -> Duration {
        let doubled = 1u32
            .checked_shl(penalty)
            .and_then(|m| self.cooldown.checked_mul(m))
            .unwrap_or(Duration::MAX);
        doubled.min(PENALTY_CAP).max(self.cooldown)
    }

    /// Sets `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `max_errors`.
    pub fn with_max_errors(mut self, max_errors: u32) -> Self {
        self.max_errors = max_errors;
        self
    }

    /// Sets `snapshot_delay`.
    pub fn with_snapshot_delay(mut self, snapshot_delay: Duration) -> Self {
        self.snapshot_delay = snapshot_delay;
        self
    }

    /// Sets the backoff schedule: first delay, growth factor, cap.
    pub fn with_backoff(mut self, initial: Duration, factor: f64, cap: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_factor = factor;
        self.backoff_cap = cap;
        self
    }

    /// Sets `jitter`.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets `cooldown`.
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets `standby`.
    pub fn with_standby(mut self, standby: u32) -> Self {
        self.standby = standby;
        self
    }

    /// Sets the shrink guard's ratio and confirmation time.
    pub fn with_shrink_guard(mut self, max_shrink_ratio: f64, shrink_confirm: Duration) -> Self {
        self.max_shrink_ratio = max_shrink_ratio;
        self.shrink_confirm = shrink_confirm;
        self
    }

    /// Sets the liveness probe period (`Duration::ZERO` turns probing off)
    /// and the time a probe may take before it counts as a fault.
    pub fn with_liveness(mut self, interval: Duration, timeout: Duration) -> Self {
        self.liveness_interval = interval;
        self.liveness_timeout = timeout;
        self
    }

    /// Checks the policy built with the `with_*` methods.
    pub fn build(self) -> Result<Self, PolicyError> {
        self.check()?;
        Ok(self)
    }
}

impl<'de> Deserialize<'de> for FailoverPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(serde::de::Error::custom)
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn duration_value(key: &'static str, value: &Value) -> Result<Duration, PolicyError> {
    let Value::String(text) = value else {
        return Err(PolicyError::InvalidValue {
            key,
            message: format!(
                "expected a duration string like \"15s\", found {}",
                json_type(value)
            ),
        });
    };
    parse_duration(text).map_err(|e| PolicyError::InvalidValue {
        key,
        message: format!("{e}: {text:?}"),
    })
}

fn count_value(key: &'static str, value: &Value) -> Result<u32, PolicyError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| PolicyError::InvalidValue {
            key,
            message: format!(
                "expected a whole number from 0 to {}, found {value}",
                u32::MAX
            ),
        })
}

fn number_value(key: &'static str, value: &Value) -> Result<f64, PolicyError> {
    value.as_f64().ok_or_else(|| PolicyError::InvalidValue {
        key,
        message: format!("expected a number, found {}", json_type(value)),
    })
}

/// The known keys, for error messages.
pub(crate) fn known_keys() -> String {
    KEYS.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_LINE: &str = r#"{"timeout":"15s","max_errors":3,"snapshot_delay":"10s","backoff_initial":"2s","backoff_factor":2.0,"backoff_cap":"30s","jitter":0.2,"cooldown":"10s","standby":1,"max_shrink_ratio":0.5,"shrink_confirm":"5s","liveness_interval":"1s","liveness_timeout":"1s"}"#;

    fn id(s: &str) -> ProviderId {
        ProviderId::new(s).expect("valid test id")
    }

    #[test]
    fn defaults_are_the_contract_line() {
        assert_eq!(FailoverPolicy::default().to_json(), CONTRACT_LINE);
        assert_eq!(
            FailoverPolicy::from_json(CONTRACT_LINE),
            Ok(FailoverPolicy::default())
        );
        assert_eq!(
            FailoverPolicy::from_json("{}"),
            Ok(FailoverPolicy::default())
        );
        assert_eq!(known_keys().split(", ").count(), KEYS.len());
        for key in KEYS {
            assert!(CONTRACT_LINE.contains(&format!("\"{key}\":")), "{key}");
        }
    }

    #[test]
    fn every_key_is_optional_and_round_trips() {
        let tight = FailoverPolicy::tight();
        assert_eq!(
            FailoverPolicy::from_json(&tight.to_json()),
            Ok(tight.clone())
        );
        let via_serde: FailoverPolicy =
            serde_json::from_str(&tight.to_json()).expect("serde path accepts its own output");
        assert_eq!(via_serde, tight);
        let p = FailoverPolicy::from_json(r#"{"backoff_factor":3,"standby":0}"#)
            .expect("integers are numbers");
        assert_eq!(p.backoff_factor, 3.0);
        assert_eq!(p.standby, 0);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = FailoverPolicy::from_json(r#"{"cooldwn":"1s"}"#).unwrap_err();
        assert_eq!(
            err,
            PolicyError::UnknownKey {
                key: "cooldwn".into()
            }
        );
        assert!(err.to_string().contains("cooldwn"), "{err}");
        assert!(err.to_string().contains("cooldown"), "{err}");

        let err = FailoverPolicy::from_json(r#"{"timeout":"15"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("policy key \"timeout\""),
            "{err}"
        );
        let err = FailoverPolicy::from_json(r#"{"timeout":15}"#).unwrap_err();
        assert!(err.to_string().contains("found a number"), "{err}");
        let err = FailoverPolicy::from_json(r#"{"max_errors":-1}"#).unwrap_err();
        assert!(err.to_string().contains("max_errors"), "{err}");
        let err = FailoverPolicy::from_json(r#"{"jitter":"0.1"}"#).unwrap_err();
        assert!(err.to_string().contains("jitter"), "{err}");
        assert!(matches!(
            FailoverPolicy::from_json("[1]"),
            Err(PolicyError::NotAnObject { found: "an array" })
        ));
        assert!(matches!(
            FailoverPolicy::from_json("{"),
            Err(PolicyError::Syntax { .. })
        ));
        let serde_err = serde_json::from_str::<FailoverPolicy>(r#"{"timeout":"1x"}"#).unwrap_err();
        assert!(serde_err.to_string().contains("timeout"), "{serde_err}");
    }

    #[test]
    fn rule_9_rejections_say_which_numbers_conflict() {
        let cases: [(&str, &[&str]); 7] = [
            (
                r#"{"backoff_initial":"40s"}"#,
                &["backoff_initial 40s", "backoff_cap 30s"],
            ),
            (r#"{"jitter":0.5}"#, &["jitter 0.5"]),
            (r#"{"jitter":-0.1}"#, &["jitter -0.1"]),
            (
                r#"{"shrink_confirm":"15s"}"#,
                &["shrink_confirm 15s", "timeout 15s"],
            ),
            (r#"{"max_shrink_ratio":0}"#, &["max_shrink_ratio 0"]),
            (r#"{"max_shrink_ratio":1.5}"#, &["max_shrink_ratio 1.5"]),
            (r#"{"max_errors":0}"#, &["max_errors 0"]),
        ];
        for (json, needles) in cases {
            let err = FailoverPolicy::from_json(json).unwrap_err();
            assert_eq!(err.code(), "invalid_config");
            for needle in needles {
                assert!(err.to_string().contains(needle), "{json}: {err}");
            }
        }
        assert!(FailoverPolicy::from_json(r#"{"max_shrink_ratio":1}"#).is_ok());
        assert!(FailoverPolicy::from_json(r#"{"jitter":0.49}"#).is_ok());
        let err = FailoverPolicy::from_json(r#"{"backoff_factor":0.5}"#).unwrap_err();
        assert!(err.to_string().contains("backoff_factor 0.5"), "{err}");
    }

    #[test]
    fn rule_9_quiet_periods_against_the_timeout() {
        let policy = FailoverPolicy::default();
        let q = FailoverPolicy::consul_quiet_period;
        assert_eq!(q(Duration::from_secs(4)), Duration::from_millis(4250));
        // CONTRACTS §1: with the default 15 s timeout, wait may be at most 4.7 s.
        let ok = [(id("consul-a"), Some(q(Duration::from_millis(4700))))];
        assert!(policy.validate(&ok).is_ok());
        let bad = [
            (id("etcd-a"), None),
            (id("consul-a"), Some(q(Duration::from_millis(4800)))),
        ];
        let err = policy.validate(&bad).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("consul-a"), "{text}");
        assert!(text.contains("timeout 15s"), "{text}");
        assert!(text.contains("5100ms"), "{text}");
        // Exactly a third is rejected: the quiet period must stay inside it.
        let edge = [(id("consul-a"), Some(Duration::from_secs(5)))];
        assert!(policy.validate(&edge).is_err());
    }

    #[test]
    fn rule_9_standby_above_providers_is_only_a_warning() {
        let policy = FailoverPolicy::default().with_standby(3);
        let providers = [(id("a"), None), (id("b"), None)];
        let warnings = policy
            .validate(&providers)
            .expect("a warning, not an error");
        assert_eq!(
            warnings,
            vec![PolicyWarning::StandbyAboveProviders {
                standby: 3,
                providers: 2
            }]
        );
        assert!(warnings[0].to_string().contains("standby 3"));
        assert_eq!(policy.validate(&[]), Ok(vec![]));
        let fits = FailoverPolicy::default().with_standby(1);
        assert_eq!(fits.validate(&providers), Ok(vec![]));
    }

    #[test]
    fn stream_options_carry_the_policy_numbers() {
        let o = FailoverPolicy::default().stream_options();
        assert_eq!(o.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(o.max_errors, 3);
        assert_eq!(o.retry_delay(1), Duration::ZERO);
        assert_eq!(o.retry_delay(2), Duration::from_millis(100));
        assert_eq!(o.retry_delay(3), Duration::from_secs(2));
        let p = FailoverPolicy::default();
        assert_eq!(p.backoff_delay(0, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff_delay(1, 0.5), Duration::from_secs(4));
        assert_eq!(p.backoff_delay(9, 0.5), Duration::from_secs(30));
        assert_eq!(p.backoff_delay(0, 0.0), Duration::from_millis(1600));
    }

    #[test]
    fn rule_9_liveness_timeout_between_100ms_and_a_third_of_the_timeout() {
        let short = FailoverPolicy::from_json(r#"{"liveness_timeout":"99ms"}"#).unwrap_err();
        assert_eq!(
            short,
            PolicyError::LivenessTimeoutTooShort {
                liveness_timeout: Duration::from_millis(99)
            }
        );
        assert_eq!(short.key(), Some("liveness_timeout"));
        assert!(
            short.to_string().contains("liveness_timeout 99ms"),
            "{short}"
        );
        let long = FailoverPolicy::from_json(r#"{"liveness_timeout":"5001ms"}"#).unwrap_err();
        assert_eq!(long.key(), Some("liveness_timeout"));
        assert!(
            long.to_string()
                .contains("liveness_timeout 5001ms must be at most timeout 15s / 3 = 5s"),
            "{long}"
        );
        // Both edges are allowed.
        for edge in ["100ms", "5s"] {
            let json = format!(r#"{{"liveness_timeout":"{edge}"}}"#);
            assert!(FailoverPolicy::from_json(&json).is_ok(), "{edge}");
        }
        // A shorter timeout takes the default probe timeout with it: the
        // error says which key to change.
        let err =
            FailoverPolicy::from_json(r#"{"timeout":"2s","shrink_confirm":"1s"}"#).unwrap_err();
        assert_eq!(err.key(), Some("liveness_timeout"), "{err}");
        assert!(err.to_string().contains("timeout 2s / 3 = 666ms"), "{err}");
        assert!(
            FailoverPolicy::from_json(
                r#"{"timeout":"2s","shrink_confirm":"1s","liveness_timeout":"600ms"}"#
            )
            .is_ok()
        );
        // Probing off still checks the timeout, so turning it on cannot fail.
        assert!(
            FailoverPolicy::from_json(r#"{"liveness_interval":"0s","liveness_timeout":"50ms"}"#)
                .is_err()
        );
        let err = FailoverPolicy::from_json(r#"{"liveness_interval":1}"#).unwrap_err();
        assert_eq!(err.key(), Some("liveness_interval"), "{err}");
        let err = FailoverPolicy::default()
            .with_liveness(Duration::from_secs(1), Duration::from_millis(10))
            .build()
            .unwrap_err();
        assert_eq!(err.key(), Some("liveness_timeout"), "{err}");
    }

    #[test]
    fn liveness_keys_reach_the_stream_options_and_0s_turns_probing_off() {
        let o = FailoverPolicy::default().stream_options();
        assert_eq!(o.liveness_interval, Duration::from_secs(1));
        assert_eq!(o.liveness_timeout, Duration::from_secs(1));
        let off = FailoverPolicy::from_json(r#"{"liveness_interval":"0s"}"#).expect("off");
        assert_eq!(off.liveness_interval, Duration::ZERO);
        assert!(off.to_json().contains(r#""liveness_interval":"0s""#));
        assert_eq!(FailoverPolicy::from_json(&off.to_json()), Ok(off.clone()));
        assert_eq!(off.stream_options().liveness_interval, Duration::ZERO);
        let p = FailoverPolicy::from_json(
            r#"{"liveness_interval":"250ms","liveness_timeout":"400ms"}"#,
        )
        .expect("valid");
        assert_eq!(
            (p.liveness_interval, p.liveness_timeout),
            (Duration::from_millis(250), Duration::from_millis(400))
        );
        let tight = FailoverPolicy::tight();
        assert!(tight.liveness_timeout <= tight.timeout / 3);
    }

    #[test]
    fn fail_back_period_doubles_and_caps() {
        let p = FailoverPolicy::default();
        assert_eq!(p.fail_back_period(0), Duration::from_secs(10));
        assert_eq!(p.fail_back_period(1), Duration::from_secs(20));
        assert_eq!(p.fail_back_period(4), Duration::from_secs(160));
        assert_eq!(p.fail_back_period(5), PENALTY_CAP);
        assert_eq!(p.fail_back_period(40), PENALTY_CAP);
        let long = p.with_cooldown(Duration::from_secs(600));
        assert_eq!(long.fail_back_period(3), Duration::from_secs(600));
    }

    #[test]
    fn builders_check_on_build() {
        let p = FailoverPolicy::default()
            .with_timeout(Duration::from_secs(20))
            .with_max_errors(5)
            .with_snapshot_delay(Duration::from_secs(3))
            .with_backoff(Duration::from_secs(1), 3.0, Duration::from_secs(9))
            .with_jitter(0.1)
            .with_cooldown(Duration::from_secs(7))
            .with_standby(2)
            .with_shrink_guard(0.3, Duration::from_secs(2))
            .with_liveness(Duration::from_millis(500), Duration::from_millis(300))
            .build()
            .expect("valid");
        assert_eq!(FailoverPolicy::from_json(&p.to_json()), Ok(p.clone()));
        assert!(p.with_jitter(0.7).build().is_err());
    }
}
