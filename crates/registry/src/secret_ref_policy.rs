//! [`SecretRefPolicy`]: which secrets and files a descriptor that arrives
//! from outside (the admin API) may make the service read.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use provisioning_provider_api::{ProviderDescriptor, SecretRef};

use crate::{ProvisioningError, check_bounded_file};

/// What a descriptor sent to `POST /providers` may reference (CONTRACTS
/// §4a rules 3 and 4). Whoever can call the admin API chooses the
/// endpoints, so every secret a descriptor names can be sent to a listener
/// of the caller's choice; the operator decides which ones may leave:
///
/// - `env:NAME` only when `NAME` starts with `PROVISIONING_` or was allowed
///   by name ([`allow_env`](Self::allow_env), the `serve --allow-env` flag);
/// - `file:PATH` only when the path — relative ones against the store's
///   directory — resolves, after `..` and symlinks, inside the secrets
///   directory (`serve --secrets-dir`, default the store's directory). A
///   file that does not exist yet must be named directly inside an existing
///   directory there.
///
/// Anything else is `forbidden_secret_ref`, naming the field and the
/// reference. [`check`](Self::check) also refuses, with
/// `invalid_descriptor`, a named file (`tls.ca`, `tls.cert`, a `file:`
/// secret) that exists but is not a regular file of at most 1 MiB, so the
/// caller learns it at once whichever backend would read it later.
///
/// The store file and `providers add` are the operator's own and are not
/// checked: they keep the rules of CONTRACTS §1.
///
/// ```
/// use provisioning_registry::{SecretRefPolicy, descriptor_from_json};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("token"), "t")?;
/// let policy = SecretRefPolicy::new(dir.path(), dir.path()).allow_env("CONSUL_HTTP_TOKEN");
/// let consul = |token: &str| descriptor_from_json(&format!(
///     r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:18500"],"auth":{{"token":"{token}"}},"watch":{{"service":"app"}}}}"#,
/// ));
/// for allowed in ["env:PROVISIONING_CONSUL_TOKEN", "env:CONSUL_HTTP_TOKEN", "file:token"] {
///     policy.check(&consul(allowed)?)?;
/// }
/// let e = policy.check(&consul("env:HOME")?).unwrap_err();
/// assert_eq!(e.code(), "forbidden_secret_ref");
/// assert_eq!(e.field(), Some("auth.token"));
/// assert_eq!(policy.check(&consul("file:../../etc/passwd")?).unwrap_err().code(), "forbidden_secret_ref");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SecretRefPolicy {
    base_dir: PathBuf,
    secrets_dir: PathBuf,
    allowed_env: BTreeSet<String>,
}

impl SecretRefPolicy {
    /// Variables with this prefix may always be referenced.
    pub const ENV_PREFIX: &'static str = "PROVISIONING_";

    /// A policy where relative paths resolve against `base_dir` (the
    /// store's directory, as for [`SecretResolver`](crate::SecretResolver))
    /// and `file:` secrets must resolve inside `secrets_dir`. Both are made
    /// absolute against the current directory now.
    pub fn new(base_dir: impl Into<PathBuf>, secrets_dir: impl Into<PathBuf>) -> Self {
        let absolute = |dir: PathBuf| std::path::absolute(&dir).unwrap_or(dir);
        Self {
            base_dir: absolute(base_dir.into()),
            secrets_dir: absolute(secrets_dir.into()),
            allowed_env: BTreeSet::new(),
        }
    }

    /// Also allows `env:NAME`.
    pub fn allow_env(mut self, name: impl Into<String>) -> Self {
        self.allowed_env.insert(name.into());
        self
    }

    /// The directory `file:` secrets must resolve inside.
    pub fn secrets_dir(&self) -> &Path {
        &self.secrets_dir
    }

    /// Checks every secret reference of `descriptor`
    /// ([`check_refs`](Self::check_refs)), then every file it names
    /// ([`check_files`](Self::check_files)).
    pub fn check(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        self.check_refs(descriptor)?;
        self.check_files(descriptor)
    }

    /// Rule 3: every secret reference (`auth.token`, `auth.username`,
    /// `auth.password`, `tls.key`) is an allowed variable or a file inside
    /// the secrets directory; else `forbidden_secret_ref`.
    pub fn check_refs(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        for (field, reference) in secret_refs(descriptor) {
            if let Err(reason) = self.allows(reference) {
                return Err(ProvisioningError::ForbiddenSecretRef {
                    provider: Some(descriptor.id.clone()),
                    field: field.to_owned(),
                    reference: reference.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Rule 4, early: every file the descriptor names that exists is a
    /// regular file of at most 1 MiB; else `invalid_descriptor`. Nothing is
    /// read. A missing or unreadable file is left to the backend, which
    /// reports it when it reads the file.
    pub fn check_files(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        let tls = descriptor.tls.as_ref();
        let paths = [
            ("tls.ca", tls.and_then(|t| t.ca.as_deref())),
            ("tls.cert", tls.and_then(|t| t.cert.as_deref())),
        ]
        .into_iter()
        .filter_map(|(field, path)| Some((field, path?)));
        let secrets = secret_refs(descriptor)
            .into_iter()
            .filter_map(|(field, reference)| match reference {
                SecretRef::File(path) => Some((field, &**path)),
                SecretRef::Env(_) => None,
            });
        for (field, path) in paths.chain(secrets) {
            let path = self.path_of(path);
            if let Err(e) = check_bounded_file(&path)
                && e.is_refused()
            {
                return Err(e
                    .into_error(&path)
                    .within(field)
                    .with_provider(&descriptor.id));
            }
        }
        Ok(())
    }

    /// Why `reference` is not allowed, if it is not.
    fn allows(&self, reference: &SecretRef) -> Result<(), String> {
        match reference {
            SecretRef::Env(name) => {
                if name.starts_with(Self::ENV_PREFIX) || self.allowed_env.contains(&**name) {
                    Ok(())
                } else {
                    Err(format!(
                        "only variables named {}* or allowed by the operator (serve --allow-env NAME) may be referenced",
                        Self::ENV_PREFIX
                    ))
                }
            }
            SecretRef::File(path) => {
                let outside = || {
                    "the file must resolve (after `..` and symlinks) inside the secrets directory (serve --secrets-dir)"
                        .to_owned()
                };
                let dir = std::fs::canonicalize(&self.secrets_dir).map_err(|_| {
                    "the secrets directory cannot be resolved, so no file may be referenced"
                        .to_owned()
                })?;
                match resolve(&self.path_of(path)) {
                    // Below it: the directory itself is not a secret.
                    Some(resolved) if resolved.starts_with(&dir) && resolved != dir => Ok(()),
                    _ => Err(outside()),
                }
            }
        }
    }

    fn path_of(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// Every secret reference of a descriptor with its field. The built-in
/// kinds' `watch` schemas hold none.
fn secret_refs(descriptor: &ProviderDescriptor) -> Vec<(&'static str, &SecretRef)> {
    let auth = descriptor.auth.as_ref();
    [
        ("auth.token", auth.and_then(|a| a.token.as_ref())),
        ("auth.username", auth.and_then(|a| a.username.as_ref())),
        ("auth.password", auth.and_then(|a| a.password.as_ref())),
        (
            "tls.key",
            descriptor.tls.as_ref().and_then(|t| t.key.as_ref()),
        ),
    ]
    .into_iter()
    .filter_map(|(field, reference)| Some((field, reference?)))
    .collect()
}

/// Where `path` really is: its canonical form; for a file that does not
/// exist (yet), its canonical parent directory joined with its name. `None`
/// when that cannot be told: a dangling symlink (its target could appear
/// anywhere later), a name that is `..`, a missing parent.
fn resolve(path: &Path) -> Option<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(resolved) => Some(resolved),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(path).is_ok() {
                return None;
            }
            let name = path.file_name()?;
            let parent = std::fs::canonicalize(path.parent()?).ok()?;
            Some(parent.join(name))
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor_from_json;

    fn consul(auth: &str, tls: &str) -> ProviderDescriptor {
        descriptor_from_json(&format!(
            r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:18500"]{auth}{tls},"watch":{{"service":"app"}}}}"#
        ))
        .unwrap()
    }

    fn token(reference: &str) -> ProviderDescriptor {
        consul(&format!(r#","auth":{{"token":"{reference}"}}"#), "")
    }

    struct Dirs {
        _root: tempfile::TempDir,
        store: PathBuf,
        secrets: PathBuf,
        outside: PathBuf,
    }

    /// `root/store` (the store's directory), `root/store/secrets` (the
    /// secrets directory), `root/outside` with a file `victim`.
    fn dirs() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("store");
        let secrets = store.join("secrets");
        let outside = root.path().join("outside");
        for dir in [&secrets, &outside] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(secrets.join("token"), "t").unwrap();
        std::fs::write(outside.join("victim"), "v").unwrap();
        Dirs {
            _root: root,
            store,
            secrets,
            outside,
        }
    }

    fn forbidden(policy: &SecretRefPolicy, d: &ProviderDescriptor) -> ProvisioningError {
        let e = policy.check(d).expect_err("forbidden");
        assert_eq!(e.code(), "forbidden_secret_ref", "{e}");
        e
    }

    #[test]
    fn variables_need_the_prefix_or_an_explicit_allowance() {
        let d = dirs();
        let policy = SecretRefPolicy::new(&d.store, &d.secrets).allow_env("CONSUL_HTTP_TOKEN");
        for allowed in [
            "env:PROVISIONING_X",
            "env:PROVISIONING_",
            "env:CONSUL_HTTP_TOKEN",
        ] {
            policy.check(&token(allowed)).unwrap();
        }
        for refused in [
            "env:HOME",
            "env:PATH",
            "env:provisioning_x",
            "env:XPROVISIONING_X",
            "env:CONSUL_HTTP_TOKEN_FILE",
            "env:AWS_SECRET_ACCESS_KEY",
        ] {
            let e = forbidden(&policy, &token(refused));
            assert_eq!(e.field(), Some("auth.token"));
            assert_eq!(e.provider().map(|p| p.as_str()), Some("c"));
            let text = e.to_string();
            assert!(text.contains(refused), "{text}");
            assert!(
                text.starts_with(r#"provider "c": field "auth.token": secret reference"#),
                "{text}"
            );
        }
        // Without the allowance the same name is refused.
        forbidden(
            &SecretRefPolicy::new(&d.store, &d.secrets),
            &token("env:CONSUL_HTTP_TOKEN"),
        );
    }

    #[test]
    fn every_reference_field_is_checked() {
        let d = dirs();
        let policy = SecretRefPolicy::new(&d.store, &d.secrets);
        let basic = consul(
            r#","auth":{"username":"env:PROVISIONING_U","password":"env:HOME"}"#,
            "",
        );
        assert_eq!(forbidden(&policy, &basic).field(), Some("auth.password"));
        let basic = consul(
            r#","auth":{"username":"env:USER","password":"env:PROVISIONING_P"}"#,
            "",
        );
        assert_eq!(forbidden(&policy, &basic).field(), Some("auth.username"));
        let key = consul("", r#","tls":{"cert":"c.pem","key":"file:/etc/passwd"}"#);
        assert_eq!(forbidden(&policy, &key).field(), Some("tls.key"));
        let key = consul("", r#","tls":{"cert":"c.pem","key":"file:secrets/token"}"#);
        policy.check(&key).unwrap();
    }

    #[test]
    fn files_must_resolve_inside_the_secrets_directory() {
        let d = dirs();
        let policy = SecretRefPolicy::new(&d.store, &d.secrets);
        let abs = |p: &Path| format!("file:{}", p.display());
        // Relative to the store's directory, absolute, not yet created.
        for allowed in [
            "file:secrets/token".to_owned(),
            abs(&d.secrets.join("token")),
            "file:secrets/./token".to_owned(),
            "file:secrets/../secrets/token".to_owned(),
            "file:secrets/rotated-later".to_owned(),
        ] {
            policy
                .check(&token(&allowed))
                .unwrap_or_else(|e| panic!("{allowed}: {e}"));
        }
        std::fs::create_dir(d.store.join("secrets-x")).unwrap();
        std::fs::write(d.store.join("secrets-x").join("token"), "x").unwrap();
        std::os::unix::fs::symlink(d.outside.join("victim"), d.secrets.join("escape")).unwrap();
        std::os::unix::fs::symlink(&d.outside, d.secrets.join("escape-dir")).unwrap();
        std::os::unix::fs::symlink(d.secrets.join("token"), d.secrets.join("inner")).unwrap();
        std::os::unix::fs::symlink(d.outside.join("later"), d.secrets.join("dangling")).unwrap();
        policy.check(&token("file:secrets/inner")).unwrap();
        for refused in [
            "file:../../etc/passwd".to_owned(),
            "file:/etc/passwd".to_owned(),
            "file:secrets/../../outside/victim".to_owned(),
            "file:secrets/..".to_owned(),
            "file:secrets".to_owned(),
            "file:token-beside-the-store".to_owned(),
            "file:secrets/escape".to_owned(),
            "file:secrets/escape-dir/victim".to_owned(),
            "file:secrets/dangling".to_owned(),
            "file:secrets/missing-dir/token".to_owned(),
            abs(&d.outside.join("victim")),
            // A sibling whose name starts like the secrets directory.
            "file:secrets-x/token".to_owned(),
        ] {
            let e = forbidden(&policy, &token(&refused));
            assert!(e.to_string().contains(&refused), "{e}");
        }
    }

    #[test]
    fn the_default_secrets_directory_is_the_store_directory() {
        let d = dirs();
        std::fs::write(d.store.join("beside"), "b").unwrap();
        let policy = SecretRefPolicy::new(&d.store, &d.store);
        policy.check(&token("file:beside")).unwrap();
        policy.check(&token("file:secrets/token")).unwrap();
        forbidden(&policy, &token("file:../outside/victim"));
        // A secrets directory that does not exist allows no file.
        let policy = SecretRefPolicy::new(&d.store, d.store.join("none"));
        forbidden(&policy, &token("file:none/x"));
    }

    #[test]
    fn named_files_must_be_small_regular_files() {
        let d = dirs();
        let policy = SecretRefPolicy::new(&d.store, &d.secrets);
        let fifo = d.secrets.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::fs::write(d.store.join("big.pem"), vec![b'x'; 2 << 20]).unwrap();
        for (tls, field) in [
            (r#"{"ca":"/dev/zero"}"#.to_owned(), "tls.ca"),
            (format!(r#"{{"ca":"{}"}}"#, fifo.display()), "tls.ca"),
            (r#"{"ca":"big.pem"}"#.to_owned(), "tls.ca"),
            (
                r#"{"cert":"secrets","key":"file:secrets/token"}"#.to_owned(),
                "tls.cert",
            ),
            (
                r#"{"cert":"c.pem","key":"file:secrets/fifo"}"#.to_owned(),
                "tls.key",
            ),
        ] {
            let e = policy
                .check(&consul("", &format!(r#","tls":{tls}"#)))
                .expect_err(&tls);
            assert_eq!(e.code(), "invalid_descriptor", "{tls}: {e}");
            assert_eq!(e.field(), Some(field), "{tls}: {e}");
        }
        // Missing files are the backend's to report.
        policy
            .check(&consul("", r#","tls":{"ca":"missing.pem"}"#))
            .unwrap();
    }
}
