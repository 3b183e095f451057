//! Integration tests of `FileProviderStore`: the file format, crash
//! consistency by replaying recorded file operations, SIGKILLs of real
//! processes, cross-process concurrency, and a fuzzed loader.

#[path = "store_file/common.rs"]
mod common;
#[path = "store_file/concurrency.rs"]
mod concurrency;
#[path = "store_file/crash_replay.rs"]
mod crash_replay;
#[path = "store_file/format.rs"]
mod format;
#[path = "store_file/fuzz.rs"]
mod fuzz;
#[path = "store_file/sigkill.rs"]
mod sigkill;
#[path = "store_file/sim_fs.rs"]
mod sim_fs;
#[path = "store_file/tmp_symlink.rs"]
mod tmp_symlink;
