//! [`BearerToken`]: the admin token from `--token-file`, compared in
//! constant time.

use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::registry::{BoundedFileError, ProvisioningError, read_file_at_most};

/// Largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// The token every request but `/healthz` and `/readyz` must present as
/// `Authorization: Bearer <token>`. Never printed.
#[derive(Clone)]
pub struct BearerToken {
    token: Vec<u8>,
    /// The file it was read from (re-read on SIGHUP).
    source: Option<PathBuf>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

impl BearerToken {
    /// The file's content without a trailing newline; an unreadable or
    /// empty file, or anything but a regular file of at most 4 KiB, is
    /// `invalid_config`.
    pub fn load(path: &Path) -> Result<Self, ProvisioningError> {
        let name = path.display();
        let invalid = |message: String| {
            ProvisioningError::invalid(None, None, format!("--token-file {name}: {message}"))
        };
        let bytes = read_file_at_most(path, MAX_TOKEN_BYTES).map_err(|e| match e {
            BoundedFileError::Io(e) => invalid(e.to_string()),
            refused => invalid(refused.to_string()),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("not valid UTF-8".into()))?;
        let token = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if token.is_empty() {
            return Err(invalid("the token is empty".into()));
        }
        Ok(Self {
            token: token.as_bytes().to_vec(),
            source: Some(path.to_path_buf()),
        })
    }

    /// A token from text (never re-read).
    pub fn new(token: &str) -> Self {
        Self {
            token: token.as_bytes().to_vec(),
            source: None,
        }
    }

    /// The file the token was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Whether an `Authorization` header value carries this token. The
    /// comparison takes the same time wherever the first difference is.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
        else {
            return false;
        };
        // `subtle` keeps the optimizer from turning the comparison into an
        // early exit; only the length (the token file owner's choice) is not
        // hidden.
        presented.ct_eq(&self.token).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let token = BearerToken::new("s3cr3t");
        assert!(token.accepts(Some(b"Bearer s3cr3t")));
        assert!(!token.accepts(Some(b"Bearer s3cr3u")));
        assert!(!token.accepts(Some(b"Bearer s3cr3")));
        assert!(!token.accepts(Some(b"Basic s3cr3t")));
        assert!(!token.accepts(None));
        assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
    }

    #[test]
    fn the_file_loses_its_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc \n").unwrap();
        let token = BearerToken::load(&path).unwrap();
        assert!(token.accepts(Some(b"Bearer abc ")));
        std::fs::write(&path, "\n").unwrap();
        assert!(BearerToken::load(&path).is_err());
    }
}
