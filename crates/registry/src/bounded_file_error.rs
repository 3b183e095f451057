//! [`BoundedFileError`]: why a file a descriptor names was not read.

use std::fmt;
use std::io;
use std::path::Path;

use crate::ProvisioningError;

/// Why [`read_bounded_file`](crate::read_bounded_file) refused or failed.
///
/// Its messages name what the file is, never what it holds.
#[derive(Debug)]
#[non_exhaustive]
pub enum BoundedFileError {
    /// The file cannot be opened or read (missing, permissions, I/O).
    Io(io::Error),
    /// Not a regular file; names what it is (`a FIFO`, `a directory`).
    NotRegular(&'static str),
    /// A regular file larger than the limit.
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

impl BoundedFileError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// Whether the file exists but is not something the service reads: not
    /// a regular file, or too large (`invalid_descriptor`).
    pub fn is_refused(&self) -> bool {
        !matches!(self, Self::Io(_))
    }

    /// The service error for the file at `path`: `invalid_descriptor` for a
    /// refused file, `invalid_config` when it cannot be read. Add the field
    /// and descriptor with [`ProvisioningError::within`] and
    /// [`ProvisioningError::with_provider`].
    pub fn into_error(self, path: &Path) -> ProvisioningError {
        let message = format!("{}: {self}", path.display());
        match self {
            Self::Io(_) => ProvisioningError::invalid(None, None, message),
            Self::NotRegular(_) | Self::TooLarge { .. } => ProvisioningError::InvalidDescriptor {
                provider: None,
                field: None,
                message,
            },
        }
    }
}

impl fmt::Display for BoundedFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read: {e}"),
            Self::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            Self::TooLarge { limit } => write!(f, "is larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for BoundedFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}
