//! [`Incarnation`]: one life of a member (CONTRACTS §1, "Member lifecycle").

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

/// Why a string is not a valid [`Incarnation`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncarnationError {
    /// The incarnation is empty (a member without one has `None`, never "").
    Empty,
    /// The incarnation is longer than 128 bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The incarnation holds a character outside printable ASCII
    /// (`' '..='~'`).
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

impl fmt::Display for IncarnationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("incarnation is empty"),
            Self::TooLong { len } => write!(f, "incarnation is {len} bytes long (at most 128)"),
            Self::InvalidChar { ch, at } => write!(
                f,
                "incarnation has {ch:?} at byte {at} (allowed: printable ASCII)"
            ),
        }
    }
}

impl core::error::Error for IncarnationError {}

/// One life of a member: 1–128 bytes of printable ASCII. A member that
/// restarts under the same id comes back with a different incarnation, so the
/// restart is a `leave` then a `join` even when host, port and labels are the
/// same.
///
/// ```
/// use provisioning_provider_api::Incarnation;
/// assert!(Incarnation::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").is_ok());
/// assert!(Incarnation::new("").is_err());
/// assert!(Incarnation::new("tab\there").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct Incarnation(Box<str>);

impl Incarnation {
    /// The longest incarnation, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates and wraps `incarnation`.
    pub fn new(incarnation: impl Into<String>) -> Result<Self, IncarnationError> {
        let incarnation: String = incarnation.into();
        Self::check(&incarnation)?;
        Ok(Self(incarnation.into_boxed_str()))
    }

    /// Checks `incarnation` against the grammar without allocating.
    pub fn check(incarnation: &str) -> Result<(), IncarnationError> {
        if incarnation.is_empty() {
            return Err(IncarnationError::Empty);
        }
        if let Some((at, ch)) = incarnation
            .char_indices()
            .find(|(_, ch)| !matches!(ch, ' '..='~'))
        {
            return Err(IncarnationError::InvalidChar { ch, at });
        }
        if incarnation.len() > Self::MAX_LEN {
            return Err(IncarnationError::TooLong {
                len: incarnation.len(),
            });
        }
        Ok(())
    }

    /// The incarnation as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// At most the last 8 characters, for one-line displays (a Pod uid or a
    /// revision differs from the previous life at its end).
    pub fn short(&self) -> &str {
        // Printable ASCII: every byte is a character boundary.
        &self.0[self.0.len().saturating_sub(8)..]
    }
}

impl TryFrom<String> for Incarnation {
    type Error = IncarnationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for Incarnation {
    type Error = IncarnationError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Incarnation> for String {
    fn from(value: Incarnation) -> Self {
        value.0.into()
    }
}

impl AsRef<str> for Incarnation {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnation_grammar() {
        assert!(Incarnation::new("1").is_ok());
        assert!(Incarnation::new(" ~ a-Z 9").is_ok());
        assert_eq!(Incarnation::new(""), Err(IncarnationError::Empty));
        assert_eq!(
            Incarnation::new("ab\u{7f}"),
            Err(IncarnationError::InvalidChar {
                ch: '\u{7f}',
                at: 2
            })
        );
        assert_eq!(
            Incarnation::new("é"),
            Err(IncarnationError::InvalidChar { ch: 'é', at: 0 })
        );
        assert!(Incarnation::new("a".repeat(128)).is_ok());
        assert_eq!(
            Incarnation::new("a".repeat(129)),
            Err(IncarnationError::TooLong { len: 129 })
        );
    }

    #[test]
    fn short_keeps_the_last_eight_characters() {
        let uid = Incarnation::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").unwrap();
        assert_eq!(uid.short(), "c3d2e1f0");
        assert_eq!(Incarnation::new("41").unwrap().short(), "41");
    }
}
