//! A simulated disk with explicit durability, and a recorder of `Fs`
//! operations, for crash-consistency replay.
//!
//! Model: the directory has a volatile and a durable entry table; each inode
//! has volatile and durable content. `sync_file` makes an inode's content
//! durable, `sync_dir` the entry table. A crash picks, for every inode
//! changed since its last fsync, what survived (the old durable content,
//! nothing, or a torn prefix of the new data), and whether the directory
//! changes since the last directory fsync survived.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use provisioning_store_file::{Fs, FsLock};

#[derive(Debug, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    dirty: bool,
}

#[derive(Debug, Clone, Default)]
struct Disk {
    inodes: Vec<Inode>,
    dir: BTreeMap<PathBuf, usize>,
    durable_dir: BTreeMap<PathBuf, usize>,
}

/// What un-fsynced file content looks like after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LostData {
    /// The content as of the last fsync.
    Durable,
    /// Truncated to nothing (metadata committed, data not).
    Empty,
    /// The first half of the newest data.
    Torn,
}

/// One recorded file operation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    WriteNew(PathBuf, Vec<u8>),
    SyncFile(PathBuf),
    Rename(PathBuf, PathBuf),
    SyncDir(PathBuf),
    Remove(PathBuf),
}

/// The simulated disk.
#[derive(Debug, Default)]
pub(crate) struct SimFs {
    disk: Mutex<Disk>,
}

#[derive(Debug)]
struct NoLock;
impl FsLock for NoLock {}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

impl SimFs {
    /// A disk whose files are all durable.
    pub(crate) fn with_files(files: &[(&Path, &[u8])]) -> Self {
        let fs = Self::default();
        for (path, data) in files {
            fs.write_new(path, data, 0o600).expect("sim write");
            fs.sync_file(path).expect("sim sync");
        }
        {
            let mut disk = fs.disk.lock().expect("sim disk");
            disk.durable_dir = disk.dir.clone();
        }
        fs
    }

    /// Applies a recorded operation (errors are ignored: the recording
    /// already saw their outcome).
    pub(crate) fn apply(&self, op: &Op) {
        let _ = match op {
            Op::WriteNew(p, data) => self.write_new(p, data, 0o600),
            Op::SyncFile(p) => self.sync_file(p),
            Op::Rename(from, to) => self.rename(from, to),
            Op::SyncDir(dir) => self.sync_dir(dir),
            Op::Remove(p) => self.remove_file(p).map(drop),
        };
    }

    /// The disk after a power loss.
    pub(crate) fn crash(&self, lost: LostData, dir_survives: bool) -> SimFs {
        let disk = self.disk.lock().expect("sim disk");
        let inodes = disk
            .inodes
            .iter()
            .map(|inode| {
                let content = if !inode.dirty {
                    inode.data.clone()
                } else {
                    match lost {
                        LostData::Durable => inode.durable.clone(),
                        LostData::Empty => Vec::new(),
                        LostData::Torn => inode.data[..inode.data.len() / 2].to_vec(),
                    }
                };
                Inode {
                    data: content.clone(),
                    durable: content,
                    dirty: false,
                }
            })
            .collect();
        let dir = if dir_survives {
            disk.dir.clone()
        } else {
            disk.durable_dir.clone()
        };
        SimFs {
            disk: Mutex::new(Disk {
                inodes,
                durable_dir: dir.clone(),
                dir,
            }),
        }
    }

    /// Whether `path` exists.
    pub(crate) fn exists(&self, path: &Path) -> bool {
        self.disk.lock().expect("sim disk").dir.contains_key(path)
    }
}

impl Fs for SimFs {
    fn read(&self, path: &Path, _max_len: u64) -> io::Result<Option<Vec<u8>>> {
        let disk = self.disk.lock().expect("sim disk");
        Ok(disk.dir.get(path).map(|&i| disk.inodes[i].data.clone()))
    }

    fn write_new(&self, path: &Path, data: &[u8], _mode: u32) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("sim disk");
        match disk.dir.get(path).copied() {
            Some(i) => {
                let inode = &mut disk.inodes[i];
                inode.data = data.to_vec();
                inode.dirty = true;
            }
            None => {
                disk.inodes.push(Inode {
                    data: data.to_vec(),
                    durable: Vec::new(),
                    dirty: true,
                });
                let i = disk.inodes.len() - 1;
                disk.dir.insert(path.to_path_buf(), i);
            }
        }
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("sim disk");
        let i = *disk.dir.get(path).ok_or_else(|| not_found(path))?;
        let inode = &mut disk.inodes[i];
        inode.durable = inode.data.clone();
        inode.dirty = false;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("sim disk");
        let i = disk.dir.remove(from).ok_or_else(|| not_found(from))?;
        disk.dir.insert(to.to_path_buf(), i);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().expect("sim disk");
        disk.durable_dir = disk.dir.clone();
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<bool> {
        Ok(self
            .disk
            .lock()
            .expect("sim disk")
            .dir
            .remove(path)
            .is_some())
    }

    fn try_lock(&self, _path: &Path) -> io::Result<Option<Box<dyn FsLock>>> {
        Ok(Some(Box::new(NoLock)))
    }
}

/// Records every state-changing operation, then forwards it.
#[derive(Debug)]
pub(crate) struct RecordingFs {
    inner: Arc<dyn Fs>,
    ops: Mutex<Vec<Op>>,
}

impl RecordingFs {
    pub(crate) fn new(inner: Arc<dyn Fs>) -> Self {
        Self {
            inner,
            ops: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn ops(&self) -> Vec<Op> {
        self.ops.lock().expect("recorder").clone()
    }

    fn record(&self, op: Op) {
        self.ops.lock().expect("recorder").push(op);
    }
}

impl Fs for RecordingFs {
    fn read(&self, path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(path, max_len)
    }

    fn write_new(&self, path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
        self.record(Op::WriteNew(path.to_path_buf(), data.to_vec()));
        self.inner.write_new(path, data, mode)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.record(Op::SyncFile(path.to_path_buf()));
        self.inner.sync_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record(Op::Rename(from.to_path_buf(), to.to_path_buf()));
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.record(Op::SyncDir(dir.to_path_buf()));
        self.inner.sync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<bool> {
        self.record(Op::Remove(path.to_path_buf()));
        self.inner.remove_file(path)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn FsLock>>> {
        self.inner.try_lock(path)
    }
}
