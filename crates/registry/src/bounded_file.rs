//! [`read_bounded_file`]: the one way the service reads a file a descriptor
//! names (`tls.ca`, `tls.cert`, `file:` secrets).

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::path::Path;

use crate::BoundedFileError;

/// Largest file a descriptor may name (CONTRACTS §4a rule 4): a CA bundle,
/// a certificate chain or a private key fits many times over.
pub const MAX_DESCRIPTOR_FILE_BYTES: u64 = 1 << 20;

/// Reads a file a descriptor names: it must be a regular file of at most
/// [`MAX_DESCRIPTOR_FILE_BYTES`]. Anything else is refused at once, without
/// reading a byte: a FIFO (which would block the reader until someone
/// writes), a device (`/dev/zero` never ends), a directory, a socket, a
/// larger file.
///
/// The file is opened non-blocking (so opening a FIFO without a writer
/// returns at once) and without becoming a controlling terminal; the
/// opened handle is what gets checked, so a path swapped after the check
/// cannot slip a FIFO in; and at most one byte over the limit is read, so a
/// file that grows meanwhile is still refused in bounded time.
///
/// ```
/// use provisioning_registry::{read_bounded_file, BoundedFileError};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("ca.pem"), "-----BEGIN CERTIFICATE-----\n")?;
/// assert!(read_bounded_file(&dir.path().join("ca.pem"))?.starts_with(b"-----BEGIN"));
/// let e = read_bounded_file(dir.path()).unwrap_err();
/// assert!(matches!(e, BoundedFileError::NotRegular("a directory")));
/// assert_eq!(e.into_error(dir.path()).code(), "invalid_descriptor");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_bounded_file(path: &Path) -> Result<Vec<u8>, BoundedFileError> {
    read_file_at_most(path, MAX_DESCRIPTOR_FILE_BYTES)
}

/// [`read_bounded_file`] with another limit: for the operator's own small
/// files (a token file, a policy file) that a signal makes the service read
/// again, where a FIFO must not hang the reader either.
pub fn read_file_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedFileError> {
    let (file, len) = open_regular(path, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(BoundedFileError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(BoundedFileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// The checks of [`read_bounded_file`] without reading the content: the
/// file opens, is regular and is not larger than the limit.
pub fn check_bounded_file(path: &Path) -> Result<(), BoundedFileError> {
    open_regular(path, MAX_DESCRIPTOR_FILE_BYTES).map(drop)
}

/// Opens `path` for reading if it is a regular file of at most `limit`
/// bytes; returns the handle and its length.
fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), BoundedFileError> {
    // A socket cannot be opened at all (ENXIO) and would read as an I/O
    // error; `stat` (which opens nothing) names it first.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(BoundedFileError::NotRegular(describe(&meta.file_type())));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    nonblocking(&mut options);
    let file = options.open(path).map_err(BoundedFileError::Io)?;
    let meta = file.metadata().map_err(BoundedFileError::Io)?;
    if !meta.is_file() {
        return Err(BoundedFileError::NotRegular(describe(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(BoundedFileError::TooLarge { limit });
    }
    Ok((file, meta.len()))
}

#[cfg(unix)]
fn nonblocking(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
}

#[cfg(not(unix))]
fn nonblocking(_: &mut OpenOptions) {}

#[cfg(unix)]
fn describe(kind: &FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn describe(kind: &FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The contract's policy is "within a second"; the test allows three
    /// times that plus 2 s (a loaded machine), far below "never".
    const MARGIN: Duration = Duration::from_secs(5);

    /// Reads on another thread, so a read that blocks fails the test
    /// instead of hanging it.
    fn refused(path: &Path) -> (BoundedFileError, Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_path_buf();
        let started = Instant::now();
        std::thread::spawn(move || {
            let _ = tx.send(read_bounded_file(&owned));
        });
        let result = rx
            .recv_timeout(MARGIN)
            .unwrap_or_else(|_| panic!("{} still blocked after {MARGIN:?}", path.display()));
        let took = started.elapsed();
        let e = result.expect_err("refused");
        println!("{}: {e} after {took:?}", path.display());
        (e, took)
    }

    #[test]
    fn regular_files_up_to_the_limit_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact");
        let data = vec![b'x'; MAX_DESCRIPTOR_FILE_BYTES as usize];
        std::fs::write(&path, &data).unwrap();
        assert_eq!(read_bounded_file(&path).unwrap(), data);
        check_bounded_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        assert!(read_bounded_file(&path).unwrap().is_empty());
    }

    #[test]
    fn a_larger_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 2 << 20]).unwrap();
        let (e, _) = refused(&path);
        assert!(matches!(e, BoundedFileError::TooLarge { limit } if limit == 1 << 20));
        assert!(e.is_refused());
        // One byte over is already too large.
        std::fs::write(&path, vec![b'x'; (1 << 20) + 1]).unwrap();
        assert!(matches!(
            refused(&path).0,
            BoundedFileError::TooLarge { .. }
        ));
        let e = refused(&path).0.into_error(&path);
        assert_eq!(e.code(), "invalid_descriptor");
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Without a writer, a blocking open or read of the FIFO never returns.
        assert!(matches!(
            refused(&fifo).0,
            BoundedFileError::NotRegular("a FIFO")
        ));
        assert!(check_bounded_file(&fifo).is_err());
        // Through a symlink too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            refused(&link).0,
            BoundedFileError::NotRegular("a FIFO")
        ));
        for (path, what) in [
            ("/dev/zero", "a character device"),
            ("/dev/null", "a character device"),
        ] {
            let (e, _) = refused(Path::new(path));
            assert!(
                matches!(e, BoundedFileError::NotRegular(w) if w == what),
                "{e}"
            );
        }
        let (e, _) = refused(dir.path());
        let e = e.into_error(dir.path());
        assert_eq!(e.code(), "invalid_descriptor");
        assert!(
            e.to_string()
                .ends_with("is a directory, not a regular file"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_is_named_not_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(
            refused(&path).0,
            BoundedFileError::NotRegular("a socket")
        ));
    }

    #[test]
    fn a_missing_file_is_an_io_error_not_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let e = read_bounded_file(&path).unwrap_err();
        assert!(e.is_not_found() && !e.is_refused(), "{e}");
        assert_eq!(e.into_error(&path).code(), "invalid_config");
    }

    #[test]
    fn messages_never_carry_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut data = b"cnry-content-3f9d ".repeat(70_000);
        data.truncate((2 << 20) - 1);
        std::fs::write(&path, &data).unwrap();
        let e = read_bounded_file(&path).unwrap_err().into_error(&path);
        assert!(!e.to_string().contains("cnry"), "{e}");
    }
}
