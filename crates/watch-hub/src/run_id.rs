//! [`RunId`]: the identity of one run of the service (CONTRACTS §3 `run_id`).

use std::fmt;
use std::str::FromStr;

/// The identity of one run of the service: 16 lower-case hex digits on every
/// event line, new on every start, so a consumer can tell a restart (where
/// `seq_no` starts again at 1) from a replay.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u64);

impl RunId {
    /// A random run id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A run id with this value (tests, or a host runtime that numbers its
    /// runs itself).
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }

    /// The numeric value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

/// A string that is not 16 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run id must be 16 lower-case hex digits, got {0:?}")]
pub struct RunIdParseError(pub String);

impl FromStr for RunId {
    type Err = RunIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let well_formed = s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(RunIdParseError(s.to_owned()));
        }
        u64::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| RunIdParseError(s.to_owned()))
    }
}

impl serde::Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_sixteen_hex_digits_and_parses_back() {
        let id = RunId::from_u64(0x5d41_402a_bc4b_2a76);
        assert_eq!(id.to_string(), "5d41402abc4b2a76");
        assert_eq!("5d41402abc4b2a76".parse::<RunId>(), Ok(id));
        assert_eq!(RunId::from_u64(1).to_string(), "0000000000000001");
        assert!("5D41402ABC4B2A76".parse::<RunId>().is_err());
        assert!("5d41".parse::<RunId>().is_err());
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(RunId::random(), RunId::random());
    }
}
