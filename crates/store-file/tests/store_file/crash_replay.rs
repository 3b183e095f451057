//! Crash consistency by replay: record the `Fs` operations of a save, then
//! for every prefix of them and every way a power loss can treat data and
//! directory entries that were not yet fsynced, the store must load exactly
//! the old or the new set — and the new one once the save has returned.
//! Deliberately broken writers run through the same harness and must fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::ProviderStore;
use provisioning_store_file::{FileProviderStore, Fs};

use crate::common::{new_set, old_set};
use crate::sim_fs::{LostData, Op, RecordingFs, SimFs};

const DIR: &str = "/store";

fn store_path() -> PathBuf {
    Path::new(DIR).join("providers.jsonl")
}

fn tmp_path() -> PathBuf {
    Path::new(DIR).join("providers.jsonl.tmp")
}

fn store_on(fs: Arc<dyn Fs>) -> FileProviderStore {
    crate::common::file_store(store_path()).with_fs(fs)
}

fn encoded(set: &[ProviderDescriptor]) -> Vec<u8> {
    store_on(Arc::new(SimFs::default()))
        .encode(set)
        .expect("encode")
}

type Writer = fn(&Arc<dyn Fs>, &[ProviderDescriptor]) -> std::io::Result<()>;

/// The store's own save.
fn store_save(fs: &Arc<dyn Fs>, set: &[ProviderDescriptor]) -> std::io::Result<()> {
    store_on(fs.clone())
        .save(set)
        .map_err(std::io::Error::other)
}

/// Broken: overwrites the file in place.
fn in_place(fs: &Arc<dyn Fs>, set: &[ProviderDescriptor]) -> std::io::Result<()> {
    fs.write_new(&store_path(), &encoded(set), 0o600)?;
    fs.sync_file(&store_path())
}

/// Broken: renames before the data is durable.
fn rename_without_fsync(fs: &Arc<dyn Fs>, set: &[ProviderDescriptor]) -> std::io::Result<()> {
    fs.write_new(&tmp_path(), &encoded(set), 0o600)?;
    fs.rename(&tmp_path(), &store_path())?;
    fs.sync_dir(Path::new(DIR))
}

/// Broken: returns before the rename is durable.
fn no_directory_fsync(fs: &Arc<dyn Fs>, set: &[ProviderDescriptor]) -> std::io::Result<()> {
    fs.write_new(&tmp_path(), &encoded(set), 0o600)?;
    fs.sync_file(&tmp_path())?;
    fs.rename(&tmp_path(), &store_path())
}

/// Runs the harness; returns the number of crash states checked, or the
/// first violation.
fn check_writer(
    initial: &[(PathBuf, Vec<u8>)],
    old: &[ProviderDescriptor],
    new: &[ProviderDescriptor],
    writer: Writer,
) -> Result<usize, String> {
    let files: Vec<(&Path, &[u8])> = initial
        .iter()
        .map(|(p, d)| (p.as_path(), d.as_slice()))
        .collect();
    let recorder = Arc::new(RecordingFs::new(Arc::new(SimFs::with_files(&files))));
    let recorder_fs: Arc<dyn Fs> = recorder.clone();
    writer(&recorder_fs, new).map_err(|e| format!("the writer failed without a crash: {e}"))?;
    let ops = recorder.ops();
    let mut states = 0;
    for k in 0..=ops.len() {
        let sim = SimFs::with_files(&files);
        for op in &ops[..k] {
            sim.apply(op);
        }
        for lost in [LostData::Durable, LostData::Empty, LostData::Torn] {
            for dir_survives in [false, true] {
                states += 1;
                let crashed = Arc::new(sim.crash(lost, dir_survives));
                let store = store_on(crashed.clone());
                let context = || {
                    format!(
                        "crash after {k} of {} ops {:?}, data {lost:?}, directory changes survive: {dir_survives}",
                        ops.len(),
                        op_names(&ops[..k])
                    )
                };
                let loaded = store
                    .load()
                    .map_err(|e| format!("{}: load failed: {e}", context()))?;
                let finished = k == ops.len();
                if finished && loaded != new {
                    return Err(format!(
                        "{}: the save returned but the set is not the new one",
                        context()
                    ));
                }
                if loaded != old && loaded != new {
                    return Err(format!(
                        "{}: loaded neither the old nor the new set ({} providers)",
                        context(),
                        loaded.len()
                    ));
                }
                // Recovery: the next save works on whatever the crash left.
                store
                    .save(new)
                    .map_err(|e| format!("{}: save after the crash failed: {e}", context()))?;
                if crashed.exists(&tmp_path()) || store.load().ok().as_deref() != Some(new) {
                    return Err(format!("{}: the next save did not recover", context()));
                }
            }
        }
    }
    Ok(states)
}

fn op_names(ops: &[Op]) -> Vec<&'static str> {
    ops.iter()
        .map(|op| match op {
            Op::WriteNew(..) => "write",
            Op::SyncFile(..) => "fsync",
            Op::Rename(..) => "rename",
            Op::SyncDir(..) => "fsync_dir",
            Op::Remove(..) => "remove",
        })
        .collect()
}

fn initial_with_old() -> Vec<(PathBuf, Vec<u8>)> {
    vec![(store_path(), encoded(&old_set()))]
}

#[test]
fn every_crash_point_of_a_save_loads_old_or_new() {
    let states = check_writer(&initial_with_old(), &old_set(), &new_set(), store_save)
        .unwrap_or_else(|e| panic!("{e}"));
    // 5 operations -> 6 prefixes x 6 crash variants.
    assert_eq!(states, 36);
}

#[test]
fn crash_points_from_a_missing_file_and_with_a_stale_tmp() {
    check_writer(&[], &[], &new_set(), store_save).unwrap_or_else(|e| panic!("{e}"));
    let mut initial = initial_with_old();
    initial.push((tmp_path(), b"{\"id\":\"half-writ".to_vec()));
    check_writer(&initial, &old_set(), &new_set(), store_save).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn save_performs_the_durable_sequence() {
    let recorder = Arc::new(RecordingFs::new(Arc::new(SimFs::default())));
    store_on(recorder.clone()).save(&new_set()).unwrap();
    assert_eq!(
        op_names(&recorder.ops()),
        ["remove", "write", "fsync", "rename", "fsync_dir"]
    );
    let paths: Vec<String> = recorder
        .ops()
        .iter()
        .map(|op| match op {
            Op::WriteNew(p, _) | Op::SyncFile(p) | Op::SyncDir(p) | Op::Remove(p) => {
                p.display().to_string()
            }
            Op::Rename(from, to) => format!("{} -> {}", from.display(), to.display()),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/store/providers.jsonl.tmp",
            "/store/providers.jsonl.tmp",
            "/store/providers.jsonl.tmp",
            "/store/providers.jsonl.tmp -> /store/providers.jsonl",
            "/store",
        ]
    );
}

#[test]
fn the_harness_catches_an_in_place_writer() {
    let e = check_writer(&initial_with_old(), &old_set(), &new_set(), in_place).unwrap_err();
    assert!(e.contains("crash after 1 of 2 ops"), "{e}");
}

#[test]
fn the_harness_catches_a_rename_before_fsync() {
    let e = check_writer(
        &initial_with_old(),
        &old_set(),
        &new_set(),
        rename_without_fsync,
    )
    .unwrap_err();
    assert!(e.contains("[\"write\", \"rename\"]"), "{e}");
}

#[test]
fn the_harness_catches_a_missing_directory_fsync() {
    let e = check_writer(
        &initial_with_old(),
        &old_set(),
        &new_set(),
        no_directory_fsync,
    )
    .unwrap_err();
    assert!(
        e.contains("the save returned but the set is not the new one"),
        "{e}"
    );
}
