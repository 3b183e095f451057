//! [`SecretRef`]: where a secret lives, never the secret itself.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

/// Why a string is not a secret reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretRefError {
    /// The value is not of the form `env:NAME` or `file:PATH`: it looks like
    /// an inline secret. The value itself is deliberately not kept.
    Inline,
    /// `env:` with an empty or malformed variable name.
    BadEnvName,
    /// `file:` with an empty path.
    EmptyPath,
}

impl SecretRefError {
    /// The stable error code (ARCHITECTURE "Error kinds").
    pub fn code(self) -> &'static str {
        match self {
            Self::Inline => "inline_secret",
            Self::BadEnvName | Self::EmptyPath => "invalid_config",
        }
    }
}

impl fmt::Display for SecretRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline => f.write_str(
                "inline secret (value not shown): expected a reference `env:NAME` or `file:PATH`",
            ),
            Self::BadEnvName => {
                f.write_str("`env:` needs a variable name of [A-Za-z_][A-Za-z0-9_]*")
            }
            Self::EmptyPath => f.write_str("`file:` needs a path"),
        }
    }
}

impl core::error::Error for SecretRefError {}

/// A reference to a secret: `env:NAME` (an environment variable) or
/// `file:PATH` (a file's content without a trailing newline; a relative
/// path is relative to the store's directory). Resolution happens in std
/// crates when a backend connects, never here.
///
/// ```
/// use provisioning_provider_api::{SecretRef, SecretRefError};
/// assert_eq!(SecretRef::parse("env:CONSUL_HTTP_TOKEN").unwrap().to_string(), "env:CONSUL_HTTP_TOKEN");
/// assert_eq!(SecretRef::parse("s3cr3t"), Err(SecretRefError::Inline));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
pub enum SecretRef {
    /// `env:NAME`.
    Env(Box<str>),
    /// `file:PATH`.
    File(Box<str>),
}

impl SecretRef {
    /// Parses a reference. Anything else is [`SecretRefError::Inline`].
    pub fn parse(value: &str) -> Result<Self, SecretRefError> {
        if let Some(name) = value.strip_prefix("env:") {
            let mut chars = name.chars();
            let first_ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(SecretRefError::BadEnvName);
            }
            Ok(Self::Env(name.into()))
        } else if let Some(path) = value.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SecretRefError::EmptyPath);
            }
            Ok(Self::File(path.into()))
        } else {
            Err(SecretRefError::Inline)
        }
    }
}

impl TryFrom<String> for SecretRef {
    type Error = SecretRefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SecretRef> for String {
    fn from(value: SecretRef) -> Self {
        alloc::format!("{value}")
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{path}"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A reference is not a secret; showing it helps operators.
        write!(f, "SecretRef({self})")
    }
}
