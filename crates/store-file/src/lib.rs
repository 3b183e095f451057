#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod file_store;
mod fs;
mod fs_lock;
mod jsonl;
mod std_fs;

pub use file_store::FileProviderStore;
pub use fs::Fs;
pub use fs_lock::FsLock;
pub use std_fs::StdFs;
