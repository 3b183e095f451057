//! [`StdFs`]: the real file system.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::{Fs, FsLock};

/// [`Fs`] on the operating system's file system (std only; the lock is
/// `flock`-style through [`File::try_lock`], released when the file closes,
/// also when the process dies).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdLock {
    _file: File,
}

impl FsLock for StdLock {}

impl Fs for StdFs {
    fn read(&self, path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    fn write_new(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        // Exclusive creation (O_EXCL, plus O_NOFOLLOW where there is one):
        // whatever sits at `path` — a leftover file, or a symlink planted
        // beside the store to redirect the write — makes this fail instead
        // of being written through.
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        with_mode(&mut options, mode);
        no_follow(&mut options);
        let mut file = options.open(path)?;
        // The umask may have taken bits away; the store's mode is exact.
        set_mode(&file, mode)?;
        file.write_all(data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        // fsync flushes the inode's data whichever descriptor asks.
        File::open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // Directories cannot be opened for syncing everywhere; where they
        // can (Unix), the rename is not durable without this.
        if cfg!(unix) {
            File::open(dir)?.sync_all()
        } else {
            Ok(())
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<bool> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn FsLock>>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        with_mode(&mut options, 0o600);
        let file = options.open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(StdLock { _file: file }))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(unix)]
fn with_mode(options: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(mode);
}

#[cfg(not(unix))]
fn with_mode(_: &mut OpenOptions, _: u32) {}

#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW);
}

#[cfg(not(unix))]
fn no_follow(_: &mut OpenOptions) {}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &File, _: u32) -> io::Result<()> {
    Ok(())
}
