//! [`StoreConfig`]: the store and policy files a command works on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cluster_provisioning::api::ProviderDescriptor;
use cluster_provisioning::failover::PolicyWarning;
use cluster_provisioning::registry::SecretResolver;
use cluster_provisioning::{FailoverPolicy, ProviderRegistry};
use provisioning_store_file::FileProviderStore;

use crate::cli_error::CliError;

/// Largest policy file read.
const MAX_POLICY_BYTES: u64 = 64 << 10;

/// The store (`--store`) and the policy (`--policy`) of one invocation.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    store: PathBuf,
    policy: Option<PathBuf>,
}

impl StoreConfig {
    /// The files named on the command line.
    pub(crate) fn new(store: PathBuf, policy: Option<PathBuf>) -> Self {
        Self { store, policy }
    }

    /// The store's file name as messages show it.
    pub(crate) fn store_name(&self) -> String {
        self.store.display().to_string()
    }

    /// A registry over the file store, not loaded yet; it and the store
    /// validate through the built-in kinds.
    pub(crate) fn registry(&self) -> ProviderRegistry {
        let validator = cluster_provisioning::builtin_validator();
        let store = FileProviderStore::new(&self.store).with_validator(validator.clone());
        ProviderRegistry::builder()
            .with_validator(validator)
            .with_store(Arc::new(store))
            .build()
    }

    /// A registry over the file store, loaded and validated as a whole.
    pub(crate) fn load_registry(&self) -> Result<ProviderRegistry, CliError> {
        let registry = self.registry();
        registry.load()?;
        Ok(registry)
    }

    /// The directory relative `file:` secret references resolve against.
    pub(crate) fn secrets_dir(&self) -> PathBuf {
        match self.store.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// A secret resolver for the store's directory.
    pub(crate) fn secret_resolver(&self) -> SecretResolver {
        SecretResolver::new(self.secrets_dir())
    }

    /// What the policy is, for messages.
    pub(crate) fn policy_name(&self) -> String {
        match &self.policy {
            Some(path) => path.display().to_string(),
            None => "built-in defaults".to_owned(),
        }
    }

    /// The policy: the file's, or the defaults. A missing, unreadable or
    /// invalid file is `invalid_config` (exit 2) naming the file and key.
    pub(crate) fn load_policy(&self) -> Result<FailoverPolicy, CliError> {
        let Some(path) = &self.policy else {
            return Ok(FailoverPolicy::default());
        };
        let name = path.display();
        let text = read_small(path, MAX_POLICY_BYTES)
            .map_err(|e| CliError::invalid_config(format!("{name}: cannot read: {e}")))?;
        FailoverPolicy::from_json(&text).map_err(|e| match e.key() {
            Some(key) => CliError::invalid_config(format!("{name}: field \"{key}\": {e}")),
            None => CliError::invalid_config(format!("{name}: {e}")),
        })
    }

    /// Checks `policy` against the providers' quiet periods (ARCHITECTURE
    /// "Failover rules" 9, as the service does on start); returns the
    /// warnings (none for the built-in defaults).
    pub(crate) fn check_policy(
        &self,
        policy: &FailoverPolicy,
        descriptors: &[ProviderDescriptor],
    ) -> Result<Vec<PolicyWarning>, CliError> {
        let quiet = cluster_provisioning::builtin_validator()
            .quiet_periods(descriptors)
            .map_err(CliError::from)?;
        let warnings = policy.validate(&quiet).map_err(|e| {
            let field = e
                .key()
                .map(|k| format!("field \"{k}\": "))
                .unwrap_or_default();
            CliError::invalid_config(format!("{}: {field}{e}", self.policy_name()))
        })?;
        // A warning about a built-in default (one standby with a single
        // provider) is not about anything the operator chose.
        Ok(if self.policy.is_some() {
            warnings
        } else {
            Vec::new()
        })
    }
}

/// Reads a text file of at most `limit` bytes.
pub(crate) fn read_small(path: &Path, limit: u64) -> std::io::Result<String> {
    // The bounded reader of descriptor-named files: a FIFO or a device given
    // as `--token-file` (re-read on SIGHUP) or `--policy` is refused at once
    // instead of hanging the command.
    let bytes =
        cluster_provisioning::registry::read_file_at_most(path, limit).map_err(|e| match e {
            cluster_provisioning::registry::BoundedFileError::Io(e) => e,
            refused => std::io::Error::new(std::io::ErrorKind::InvalidData, refused.to_string()),
        })?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_small_refuses_a_fifo_and_a_large_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("token");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        let e = read_small(&fifo, 4096).unwrap_err();
        println!("FIFO refused after {:?}", started.elapsed());
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let large = dir.path().join("large");
        std::fs::write(&large, vec![b'a'; 4097]).unwrap();
        assert!(read_small(&large, 4096).is_err());
        std::fs::write(&large, "secret\n").unwrap();
        assert_eq!(read_small(&large, 4096).unwrap(), "secret\n");
    }

    #[test]
    fn policy_errors_name_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        std::fs::write(&path, r#"{"cooldwn":"1s"}"#).unwrap();
        let config = StoreConfig::new(dir.path().join("p.jsonl"), Some(path));
        let e = config.load_policy().unwrap_err();
        assert_eq!(e.code(), "invalid_config");
        assert!(e.to_string().contains("policy.json"), "{e}");
        assert!(e.to_string().contains("cooldwn"), "{e}");
        let missing = StoreConfig::new("p.jsonl".into(), Some(dir.path().join("none.json")));
        assert_eq!(
            missing.load_policy().unwrap_err().exit(),
            crate::cli_error::Exit::InvalidInput
        );
    }

    #[test]
    fn secrets_resolve_next_to_the_store() {
        let config = StoreConfig::new("providers.jsonl".into(), None);
        assert_eq!(config.secrets_dir(), PathBuf::from("."));
        let config = StoreConfig::new("/etc/p/providers.jsonl".into(), None);
        assert_eq!(config.secrets_dir(), PathBuf::from("/etc/p"));
    }
}
