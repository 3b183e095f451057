//! [`Fs`]: the file-system operations the store performs.

use std::fmt;
use std::io;
use std::path::Path;

use crate::FsLock;

/// Every file-system operation of [`FileProviderStore`](crate::FileProviderStore),
/// one method per step, so tests can record a save and replay every prefix
/// of it against a simulated disk (see the crate's crash-consistency tests).
/// [`StdFs`](crate::StdFs) is the real implementation.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Reads at most `max_len + 1` bytes of the file; `None` when it does
    /// not exist.
    fn read(&self, path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>>;

    /// Creates the file with permission bits `mode` and writes `data`,
    /// without syncing. The file must not exist: anything at `path`, a
    /// symlink included, is an error (`AlreadyExists`), never followed or
    /// overwritten.
    fn write_new(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()>;

    /// Makes the file's content durable (fsync).
    fn sync_file(&self, path: &Path) -> io::Result<()>;

    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the directory's entries durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Removes the file; `false` when it did not exist.
    fn remove_file(&self, path: &Path) -> io::Result<bool>;

    /// Takes the exclusive advisory lock on `path` (created with mode 0600
    /// if missing) without waiting; `None` when another holder has it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn FsLock>>>;
}
