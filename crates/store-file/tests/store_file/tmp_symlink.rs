//! The temporary file cannot be redirected: a symlink planted as
//! `providers.jsonl.tmp` (by anyone who can write beside the store) is
//! never written through. A stale one is unlinked under the lock and the
//! save goes on; one planted after that removal fails the save, typed, with
//! nothing written anywhere.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use provisioning_registry::ProviderStore;
use provisioning_store_file::{Fs, FsLock, StdFs};

use crate::common::etcd;

const VICTIM: &str = "the victim's own content\n";

struct Planted {
    dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
    victim: std::path::PathBuf,
}

/// A store directory and, outside it, a victim file.
fn planted() -> Planted {
    let dir = tempfile::tempdir().expect("store dir");
    let outside = tempfile::tempdir().expect("outside");
    let victim = outside.path().join("victim");
    std::fs::write(&victim, VICTIM).expect("victim");
    Planted {
        dir,
        _outside: outside,
        victim,
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn write_new_never_follows_a_symlink_nor_reuses_a_file() {
    let p = planted();
    let tmp = p.dir.path().join("providers.jsonl.tmp");
    std::os::unix::fs::symlink(&p.victim, &tmp).expect("plant");
    let e = StdFs
        .write_new(&tmp, b"written", 0o600)
        .expect_err("a symlink at the path");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    assert_eq!(std::fs::read_to_string(&p.victim).expect("victim"), VICTIM);
    // A dangling symlink would otherwise create its target.
    let dangling = p.dir.path().join("dangling");
    let target = p.dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &dangling).expect("plant");
    assert!(StdFs.write_new(&dangling, b"x", 0o600).is_err());
    assert!(!target.exists());
    // A leftover regular file is not reused either.
    let file = p.dir.path().join("left-over");
    std::fs::write(&file, "old").expect("left over");
    assert!(StdFs.write_new(&file, b"new", 0o600).is_err());
    assert_eq!(std::fs::read_to_string(&file).expect("file"), "old");
}

#[test]
fn a_planted_tmp_symlink_is_removed_under_the_lock_and_the_save_goes_on() {
    let p = planted();
    let store = crate::common::file_store(p.dir.path().join("providers.jsonl"));
    std::os::unix::fs::symlink(&p.victim, store.tmp_path()).expect("plant");
    store.save(&[etcd("e", 1)]).expect("save");
    assert_eq!(std::fs::read_to_string(&p.victim).expect("victim"), VICTIM);
    assert!(!store.tmp_path().exists() && !is_symlink(store.tmp_path()));
    assert!(!is_symlink(store.path()), "the store is a regular file");
    assert_eq!(store.load().expect("load"), vec![etcd("e", 1)]);
}

/// The real file system, with a symlink planted as the temporary file right
/// after the store removed the stale one: the window an attacker would race.
struct RacingFs {
    victim: std::path::PathBuf,
    planted: AtomicBool,
}

impl fmt::Debug for RacingFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RacingFs")
    }
}

impl Fs for RacingFs {
    fn read(&self, path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>> {
        StdFs.read(path, max_len)
    }

    fn write_new(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        StdFs.write_new(path, data, mode)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFs.sync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<bool> {
        let removed = StdFs.remove_file(path)?;
        if path.to_string_lossy().ends_with(".tmp") && !self.planted.swap(true, Ordering::SeqCst) {
            std::os::unix::fs::symlink(&self.victim, path)?;
        }
        Ok(removed)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn FsLock>>> {
        StdFs.try_lock(path)
    }
}

#[test]
fn a_symlink_planted_after_the_stale_removal_fails_the_save_typed() {
    let p = planted();
    let path = p.dir.path().join("providers.jsonl");
    crate::common::file_store(&path)
        .save(&[etcd("old", 1)])
        .expect("first save");
    let before = std::fs::read(&path).expect("store");
    let store = crate::common::file_store(&path).with_fs(Arc::new(RacingFs {
        victim: p.victim.clone(),
        planted: AtomicBool::new(false),
    }));
    let e = store.save(&[etcd("new", 2)]).expect_err("refused");
    println!("{}: {e}", e.code());
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().starts_with("write "), "{e}");
    assert!(e.to_string().contains("providers.jsonl.tmp"), "{e}");
    assert_eq!(std::fs::read_to_string(&p.victim).expect("victim"), VICTIM);
    assert_eq!(
        std::fs::read(&path).expect("store"),
        before,
        "the store kept its set"
    );
    // The next save (nobody racing) removes the planted link and succeeds.
    crate::common::file_store(&path)
        .save(&[etcd("new", 2)])
        .expect("save");
    assert_eq!(std::fs::read_to_string(&p.victim).expect("victim"), VICTIM);
}
