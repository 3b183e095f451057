//! [`FileProviderStore`]: `providers.jsonl` with atomic replace and an
//! advisory lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{
    ProviderStore, ProviderValidator, ProvisioningError, SecretResolver, StoreTransaction,
};

use crate::jsonl::{decode, encode};
use crate::{Fs, FsLock, StdFs};

/// Largest store file accepted (about 100 000 descriptors).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Permission bits of the store and its lock file.
const FILE_MODE: u32 = 0o600;

/// The descriptor set in a JSON Lines file (CONTRACTS §1).
///
/// - **Load** reads `providers.jsonl` (missing = empty set), checks every
///   line (lexical rules, schema, per-kind `watch`, uniqueness, conflicts)
///   and fails on the first bad one with `providers.jsonl:LINE: ...`, the
///   field and the code. Nothing is ever partly loaded. Load takes no lock:
///   the file is only ever replaced whole.
/// - **Save** takes the advisory lock `providers.jsonl.lock`, removes a
///   stale `providers.jsonl.tmp` left by a crashed writer, writes the new
///   set to `providers.jsonl.tmp` (mode 0600), fsyncs it, renames it over
///   `providers.jsonl` and fsyncs the directory. After a crash at any point
///   the file holds the old set or the new one. The temporary file is
///   created exclusively and never through a symlink: a stale one (a
///   symlink planted beside the store included) is unlinked under the lock,
///   never followed; one that appears between that removal and the creation
///   fails the save (`backend_unavailable`, retryable) with nothing written.
/// - **Transactions** hold the lock across load and save, serialising
///   read-modify-write across processes
///   ([`ProviderRegistry::update`](provisioning_registry::ProviderRegistry::update)).
///
/// Lock waits and fsyncs block the calling thread (about a millisecond per
/// save); call from `spawn_blocking` in async code.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_memory::InMemoryKind;
/// use provisioning_registry::{ProviderRegistry, ProviderStore, ProviderValidator, descriptor_from_json};
/// use provisioning_store_file::FileProviderStore;
///
/// let validator = ProviderValidator::new().with_kind(Arc::new(InMemoryKind::new()));
/// let dir = tempfile::tempdir()?;
/// let store = Arc::new(
///     FileProviderStore::new(dir.path().join("providers.jsonl")).with_validator(validator.clone()),
/// );
/// let registry = ProviderRegistry::builder()
///     .with_validator(validator)
///     .with_store(store.clone())
///     .build();
/// registry.update(|set| set.register(descriptor_from_json(
///     r#"{"id":"local","kind":"in_memory","priority":0}"#,
/// )?))?;
/// assert_eq!(
///     std::fs::read_to_string(store.path())?,
///     "{\"id\":\"local\",\"kind\":\"in_memory\",\"priority\":0,\"enabled\":true}\n",
/// );
/// std::fs::write(store.path(), "{\"id\":\"a\",\"kind\":\"etcd\",\"prioirty\":1}\n")?;
/// let err = store.load().unwrap_err();
/// assert_eq!(format!("error[{}]: {err}", err.code()),
///     r#"error[invalid_config]: providers.jsonl:1: unknown field "prioirty""#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileProviderStore {
    path: PathBuf,
    tmp_path: PathBuf,
    lock_path: PathBuf,
    dir: PathBuf,
    secret_dir: PathBuf,
    file_name: String,
    fs: Arc<dyn Fs>,
    validator: Arc<ProviderValidator>,
    lock_timeout: Duration,
    locking: bool,
}

impl FileProviderStore {
    /// A store at `path` (conventionally `providers.jsonl`) on the real file
    /// system, waiting up to 10 s for the lock. It knows no kind until
    /// [`with_validator`](Self::with_validator) gives it the registry's.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let with_suffix = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Secrets resolve against the directory as it was when the store
        // was opened, even if the process changes directory later.
        let secret_dir = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self {
            tmp_path: with_suffix(".tmp"),
            lock_path: with_suffix(".lock"),
            dir,
            secret_dir,
            file_name,
            path,
            fs: Arc::new(StdFs),
            validator: Arc::new(ProviderValidator::new()),
            lock_timeout: Duration::from_secs(10),
            locking: true,
        }
    }

    /// Performs all file operations through `fs`.
    pub fn with_fs(mut self, fs: Arc<dyn Fs>) -> Self {
        self.fs = fs;
        self
    }

    /// Validates with `validator`, which knows the kinds the file may hold;
    /// use the registry's. Without one the store knows no kind and refuses
    /// every line (`invalid_config`, naming the kind).
    pub fn with_validator(mut self, validator: impl Into<Arc<ProviderValidator>>) -> Self {
        self.validator = validator.into();
        self
    }

    /// How long a save or transaction waits for the lock before failing
    /// with `store_busy` (default 10 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a save or transaction waits for the lock before failing
    /// with `store_busy`.
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// Test-only: skips the advisory lock, so concurrent writers can lose
    /// updates. Exists to prove the concurrency tests can fail; never use it
    /// otherwise.
    #[doc(hidden)]
    pub fn unlocked_for_tests(mut self) -> Self {
        self.locking = false;
        self
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file a save writes first.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// The advisory lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The directory holding the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A [`SecretResolver`] for this store: relative `file:` references
    /// resolve against the store's directory (made absolute when the store
    /// was created).
    pub fn secret_resolver(&self) -> SecretResolver {
        SecretResolver::new(&self.secret_dir)
    }

    /// Decodes file content under this store's rules and name.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        decode(bytes, &self.file_name, &self.validator)
    }

    /// Encodes a set as the file content a save writes (validated first).
    pub fn encode(&self, descriptors: &[ProviderDescriptor]) -> Result<Vec<u8>, ProvisioningError> {
        encode(descriptors, &self.validator)
    }

    fn read(&self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        let bytes = self
            .fs
            .read(&self.path, MAX_FILE_BYTES)
            .map_err(|e| ProvisioningError::io("read", &self.path, e))?;
        match bytes {
            None => Ok(Vec::new()),
            Some(bytes) if bytes.len() as u64 > MAX_FILE_BYTES => Err(ProvisioningError::invalid(
                None,
                None,
                format!("{}: larger than {MAX_FILE_BYTES} bytes", self.file_name),
            )),
            Some(bytes) => self.decode(&bytes),
        }
    }

    /// Writes the set; the caller holds the lock.
    fn write(&self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        let bytes = self.encode(descriptors)?;
        let fs = &self.fs;
        let tmp = &self.tmp_path;
        if fs.remove_file(tmp).map_err(io("remove", tmp))? {
            tracing::warn!(path = %tmp.display(), "removed a stale temporary file left by an interrupted save");
        }
        let written = fs
            .write_new(tmp, &bytes, FILE_MODE)
            .map_err(io("write", tmp))
            .and_then(|()| fs.sync_file(tmp).map_err(io("fsync", tmp)))
            .and_then(|()| fs.rename(tmp, &self.path).map_err(io("rename", tmp)));
        if let Err(e) = written {
            // Still under the lock: nobody else can be writing it.
            let _ = fs.remove_file(tmp);
            return Err(e);
        }
        fs.sync_dir(&self.dir).map_err(io("fsync", &self.dir))
    }

    fn lock(&self) -> Result<Option<Box<dyn FsLock>>, ProvisioningError> {
        if !self.locking {
            return Ok(None);
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let held = self
                .fs
                .try_lock(&self.lock_path)
                .map_err(|e| ProvisioningError::io("lock", &self.lock_path, e))?;
            if let Some(lock) = held {
                return Ok(Some(lock));
            }
            if started.elapsed() >= self.lock_timeout {
                return Err(ProvisioningError::StoreBusy {
                    lock: self.lock_path.clone(),
                    waited: self.lock_timeout,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Maps an I/O error of `op` on `path`.
fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ProvisioningError + 'a {
    move |e| ProvisioningError::io(op, path, e)
}

/// A [`FileProviderStore`] opened under its lock.
struct FileTransaction<'a> {
    store: &'a FileProviderStore,
    _lock: Option<Box<dyn FsLock>>,
}

impl StoreTransaction for FileTransaction<'_> {
    fn load(&mut self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        self.store.read()
    }

    fn save(&mut self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        self.store.write(descriptors)
    }
}

impl ProviderStore for FileProviderStore {
    fn load(&self) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        self.read()
    }

    fn save(&self, descriptors: &[ProviderDescriptor]) -> Result<(), ProvisioningError> {
        let _lock = self.lock()?;
        self.write(descriptors)
    }

    fn transaction(&self) -> Result<Box<dyn StoreTransaction + '_>, ProvisioningError> {
        Ok(Box::new(FileTransaction {
            store: self,
            _lock: self.lock()?,
        }))
    }

    fn base_dir(&self) -> Option<&Path> {
        Some(&self.secret_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_and_directory_follow_the_path() {
        let store = FileProviderStore::new("providers.jsonl");
        assert_eq!(store.tmp_path(), Path::new("providers.jsonl.tmp"));
        assert_eq!(store.lock_path(), Path::new("providers.jsonl.lock"));
        assert_eq!(store.dir(), Path::new("."));
        assert!(store.secret_resolver().base_dir().is_absolute());
        let store = FileProviderStore::new("/etc/prov/p.jsonl");
        assert_eq!(store.dir(), Path::new("/etc/prov"));
        assert_eq!(store.base_dir(), Some(Path::new("/etc/prov")));
        assert_eq!(store.tmp_path(), Path::new("/etc/prov/p.jsonl.tmp"));
    }
}
