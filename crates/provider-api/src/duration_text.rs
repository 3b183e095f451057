//! Duration strings of the stored formats: `250ms`, `4s`, `1m`, `2h`
//! (CONTRACTS §1 `watch`, §7 policy).

use alloc::string::String;
use core::fmt;
use core::time::Duration;

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationError {
    /// Empty string.
    Empty,
    /// No unit, or an unknown one (`ms`, `s`, `m`, `h` are known).
    BadUnit,
    /// The number part is not a non-negative decimal integer.
    BadNumber,
    /// Too large to represent.
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty duration",
            Self::BadUnit => "duration needs a unit: ms, s, m or h (e.g. 250ms, 4s, 1m)",
            Self::BadNumber => "duration needs a whole non-negative number before its unit",
            Self::Overflow => "duration too large",
        })
    }
}

impl core::error::Error for DurationError {}

/// Parses `<digits><unit>` with unit `ms`, `s`, `m` or `h`.
///
/// ```
/// use core::time::Duration;
/// use provisioning_provider_api::parse_duration;
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
/// assert!(parse_duration("4").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or(DurationError::BadUnit)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(DurationError::BadNumber);
    }
    let n: u64 = digits.parse().map_err(|_| DurationError::Overflow)?;
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::BadUnit),
    };
    n.checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or(DurationError::Overflow)
}

/// Formats a duration in the largest unit that represents it exactly
/// (`1m`, `4s`, `250ms`); sub-millisecond parts are dropped.
///
/// ```
/// use core::time::Duration;
/// use provisioning_provider_api::format_duration;
/// assert_eq!(format_duration(Duration::from_secs(15)), "15s");
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    let (n, unit) = if ms == 0 {
        (0, "s")
    } else if ms.is_multiple_of(3_600_000) {
        (ms / 3_600_000, "h")
    } else if ms.is_multiple_of(60_000) {
        (ms / 60_000, "m")
    } else if ms.is_multiple_of(1_000) {
        (ms / 1_000, "s")
    } else {
        (ms, "ms")
    };
    alloc::format!("{n}{unit}")
}

/// serde adapter for `Duration` fields stored as duration strings:
/// `#[serde(with = "provisioning_provider_api::duration_text")]`.
#[cfg(feature = "serde")]
pub mod serde_text {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a duration string.
    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*value))
    }

    /// Deserializes from a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(|e| serde::de::Error::custom(alloc::format!("{e}: {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            "0s", "1ms", "250ms", "1500ms", "4s", "15s", "1m", "90s", "2h",
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{text}");
        }
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("s"), Err(DurationError::BadNumber));
        assert_eq!(parse_duration("5x"), Err(DurationError::BadUnit));
        assert_eq!(parse_duration("-5s"), Err(DurationError::BadNumber));
        assert_eq!(parse_duration("1.5s"), Err(DurationError::BadUnit));
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow)
        );
    }
}
