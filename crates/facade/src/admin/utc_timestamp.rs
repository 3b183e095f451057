//! [`UtcTimestamp`]: RFC 3339 UTC time with milliseconds, without a date
//! library.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time printed as `2026-11-27T09:40:01.123Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTimestamp(Duration);

impl UtcTimestamp {
    /// Now (the Unix epoch if the clock is set before it).
    pub fn now() -> Self {
        Self(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }

    /// Milliseconds since the Unix epoch.
    pub fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
}

impl fmt::Display for UtcTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            self.0.subsec_millis()
        )
    }
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian;
/// H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            UtcTimestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        // The contract's example `since_ms`.
        assert_eq!(
            UtcTimestamp::from_millis(1_764_230_400_000).to_string(),
            "2025-11-27T08:00:00.000Z"
        );
        assert_eq!(
            UtcTimestamp::from_millis(951_782_400_123).to_string(),
            "2000-02-29T00:00:00.123Z"
        );
    }
}
