//! [`SecretResolver`]: turns `env:` / `file:` references into values.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use provisioning_provider_api::SecretRef;

use crate::{ProvisioningError, Secret, read_bounded_file};

type EnvLookup = Arc<dyn Fn(&str) -> Result<String, std::env::VarError> + Send + Sync>;

/// Resolves [`SecretRef`]s: `env:NAME` reads the environment variable,
/// `file:PATH` reads the file (a relative path is relative to the store's
/// directory, [`base_dir`](Self::base_dir)) without its trailing newline.
///
/// Nothing is cached: a backend calls [`resolve`](Self::resolve) when it
/// connects and again on every reconnect, so rotated tokens and expiring
/// service-account tokens keep working. Errors name the reference, never a
/// value; an empty value is an error.
///
/// ```
/// use provisioning_provider_api::SecretRef;
/// use provisioning_registry::SecretResolver;
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("token"), "s3cr3t\n")?;
/// let resolver = SecretResolver::new(dir.path());
/// let secret = resolver.resolve(&SecretRef::parse("file:token")?)?;
/// assert_eq!(secret.expose(), "s3cr3t");
/// assert_eq!(format!("{secret:?}"), "[redacted]");
/// let missing = resolver.resolve(&SecretRef::parse("env:SURELY_NOT_SET_1234")?).unwrap_err();
/// assert_eq!(missing.code(), "invalid_config");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SecretResolver {
    base_dir: PathBuf,
    env: EnvLookup,
}

impl SecretResolver {
    /// A resolver reading the process environment, with relative `file:`
    /// paths resolved against `base_dir` (the store's directory).
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_dir: base_dir.into(),
            env: Arc::new(|name| std::env::var(name)),
        }
    }

    /// Replaces the environment lookup (tests, or a host runtime with its
    /// own configuration source). `Err(VarError::NotPresent)` means unset.
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Result<String, std::env::VarError> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// An environment variable as this resolver sees it (`None` when unset
    /// or not UTF-8): backends read their own variables (`ETCDCTL_*`)
    /// through the same lookup as `env:` references.
    pub fn env_var(&self, name: &str) -> Option<String> {
        (self.env)(name).ok()
    }

    /// The directory relative `file:` paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The path a `file:` reference reads.
    pub fn path_of(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Reads the secret now.
    pub fn resolve(&self, reference: &SecretRef) -> Result<Secret, ProvisioningError> {
        let fail = |reason: String| ProvisioningError::SecretUnavailable {
            reference: reference.clone(),
            reason,
        };
        let value = match reference {
            SecretRef::Env(name) => match (self.env)(name) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(fail("environment variable is not set".into()));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(fail("environment variable is not valid UTF-8".into()));
                }
            },
            SecretRef::File(path) => {
                let path = self.path_of(path);
                // A FIFO, a device or an oversized file is the descriptor's
                // fault (`invalid_descriptor`), not a secret that is missing.
                let bytes = read_bounded_file(&path).map_err(|e| {
                    if e.is_refused() {
                        ProvisioningError::InvalidDescriptor {
                            provider: None,
                            field: None,
                            message: format!("secret {reference}: {}: {e}", path.display()),
                        }
                    } else {
                        fail(format!("{}: {e}", path.display()))
                    }
                })?;
                let mut text = String::from_utf8(bytes)
                    .map_err(|_| fail(format!("{} is not valid UTF-8", path.display())))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                text
            }
        };
        if value.is_empty() {
            return Err(fail("the value is empty".into()));
        }
        Ok(Secret::new(value))
    }
}

impl fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretResolver")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    fn resolver(dir: &Path) -> SecretResolver {
        SecretResolver::new(dir).with_env(|name| match name {
            "TOKEN" => Ok("t0k3n".into()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        })
    }

    fn r(text: &str) -> SecretRef {
        SecretRef::parse(text).unwrap()
    }

    #[test]
    fn env_references() {
        let dir = tempfile::tempdir().unwrap();
        let res = resolver(dir.path());
        assert_eq!(res.resolve(&r("env:TOKEN")).unwrap().expose(), "t0k3n");
        let e = res.resolve(&r("env:MISSING")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret env:MISSING: environment variable is not set"
        );
        assert_eq!(e.code(), "invalid_config");
        let e = res.resolve(&r("env:EMPTY")).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn file_references_are_relative_to_the_store_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let res = resolver(dir.path());
        let path = dir.path().join("tok");
        std::fs::write(&path, "first\r\n").unwrap();
        assert_eq!(res.resolve(&r("file:tok")).unwrap().expose(), "first");
        // Rotation: the next resolve sees the new content.
        std::fs::write(&path, "second").unwrap();
        assert_eq!(res.resolve(&r("file:tok")).unwrap().expose(), "second");
        let abs = format!("file:{}", path.display());
        assert_eq!(res.resolve(&r(&abs)).unwrap().expose(), "second");
        // Only one trailing newline goes.
        std::fs::write(&path, "x\n\n").unwrap();
        assert_eq!(res.resolve(&r("file:tok")).unwrap().expose(), "x\n");
    }

    #[test]
    fn unreadable_files_are_clear_errors_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let res = resolver(dir.path());
        let e = res.resolve(&r("file:nope")).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("secret file:nope: "), "{text}");
        assert!(text.contains(": cannot read: "), "{text}");
        assert!(text.contains("nope"));
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe, b's']).unwrap();
        let e = res.resolve(&r("file:bin")).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        assert!(res.resolve(&r("file:empty")).is_err());
    }

    #[test]
    fn fifo_device_and_oversized_secret_files_are_invalid_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let res = resolver(dir.path());
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        std::fs::write(dir.path().join("big"), vec![b'k'; (1 << 20) + 1]).unwrap();
        for reference in ["file:fifo", "file:/dev/zero", "file:big"] {
            let e = res.resolve(&r(reference)).unwrap_err();
            assert_eq!(e.code(), "invalid_descriptor", "{reference}: {e}");
            assert!(
                e.to_string().starts_with(&format!("secret {reference}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn debug_never_shows_values() {
        let dir = tempfile::tempdir().unwrap();
        let res = resolver(dir.path());
        let s = res.resolve(&r("env:TOKEN")).unwrap();
        assert!(!format!("{s:?} {s} {res:?}").contains("t0k3n"));
    }
}
