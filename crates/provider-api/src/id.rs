//! Identifiers: [`ProviderId`] and [`NodeId`].

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use crate::inline_str::InlineStr;

/// Why a string is not a valid [`ProviderId`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than 63 bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id contains a character outside `[a-z0-9._-]` or does not start
    /// with `[a-z0-9]`.
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
}

impl fmt::Display for ProviderIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("provider id is empty"),
            Self::TooLong { len } => write!(f, "provider id is {len} bytes long (at most 63)"),
            Self::InvalidChar { ch, at } => write!(
                f,
                "provider id has {ch:?} at byte {at} (allowed: [a-z0-9][a-z0-9._-]*)"
            ),
        }
    }
}

impl core::error::Error for ProviderIdError {}

/// The id of a registered provider: 1–63 bytes of `[a-z0-9][a-z0-9._-]*`.
///
/// ```
/// use provisioning_provider_api::ProviderId;
/// assert!(ProviderId::new("consul-a").is_ok());
/// assert!(ProviderId::new("Consul").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub struct ProviderId(Box<str>);

impl ProviderId {
    /// Validates and wraps `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, ProviderIdError> {
        let id: String = id.into();
        Self::check(&id)?;
        Ok(Self(id.into_boxed_str()))
    }

    /// Checks `id` against the grammar without allocating.
    pub fn check(id: &str) -> Result<(), ProviderIdError> {
        if id.is_empty() {
            return Err(ProviderIdError::Empty);
        }
        if id.len() > 63 {
            return Err(ProviderIdError::TooLong { len: id.len() });
        }
        for (at, ch) in id.char_indices() {
            let ok = ch.is_ascii_lowercase()
                || ch.is_ascii_digit()
                || (at > 0 && matches!(ch, '.' | '_' | '-'));
            if !ok {
                return Err(ProviderIdError::InvalidChar { ch, at });
            }
        }
        Ok(())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderId {
    type Error = ProviderIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for ProviderId {
    type Error = ProviderIdError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ProviderId> for String {
    fn from(value: ProviderId) -> Self {
        value.0.into()
    }
}

impl AsRef<str> for ProviderId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a cluster member. Any non-empty string; ordered by bytes, which
/// is the order of snapshots, diffs and the hash (CONTRACTS §3, §6).
///
/// An id of up to 22 bytes is held inside the `NodeId` (24 bytes, a
/// `String`'s size on 64-bit targets), so a snapshot's members carry their
/// ids with them; a longer one has a heap allocation of its own. Serialized
/// as a plain string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(InlineStr);

impl NodeId {
    /// Wraps `id`. Emptiness is checked where a snapshot is built.
    pub fn new(id: impl Into<String>) -> Self {
        Self(InlineStr::from(id.into()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The id's bytes (what the hash encodes), without `as_str`'s UTF-8 check
    /// of an inline id.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl From<&str> for NodeId {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for NodeId {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl core::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_id_grammar() {
        assert!(ProviderId::new("a").is_ok());
        assert!(ProviderId::new("etcd-a.b_c9").is_ok());
        assert_eq!(ProviderId::new(""), Err(ProviderIdError::Empty));
        assert_eq!(
            ProviderId::new("-a"),
            Err(ProviderIdError::InvalidChar { ch: '-', at: 0 })
        );
        assert_eq!(
            ProviderId::new("aB"),
            Err(ProviderIdError::InvalidChar { ch: 'B', at: 1 })
        );
        let long = "a".repeat(64);
        assert_eq!(
            ProviderId::new(long),
            Err(ProviderIdError::TooLong { len: 64 })
        );
        assert!(ProviderId::new("a".repeat(63)).is_ok());
    }
}
