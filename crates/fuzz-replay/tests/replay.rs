//! Replays every file of `fuzz/corpus/<target>/` and every recorded crash in
//! `fuzz/artifacts/<target>/` through the target's harness: no input may
//! panic, and seed files named `ok-*` must be accepted and `bad-*` refused,
//! so a decoder that starts accepting garbage or refusing valid input fails
//! here too.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use provisioning_fuzz_replay::{Outcome, TARGETS, run};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for path in files(dir) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) => {
                failures.push(format!("{}: cannot read: {e}", path.display()));
                continue;
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| run(target, &data)));
        match outcome {
            Err(_) => failures.push(format!("{}: panicked", path.display())),
            Ok(None) => failures.push(format!("{target}: unknown target")),
            Ok(Some(outcome)) => {
                if name.starts_with("ok-") && outcome != Outcome::Accepted {
                    failures.push(format!(
                        "{}: expected accepted, got {outcome:?}",
                        path.display()
                    ));
                }
                if name.starts_with("bad-") && outcome == Outcome::Accepted {
                    failures.push(format!(
                        "{}: expected refused, was accepted",
                        path.display()
                    ));
                }
            }
        }
    }
    failures
}

#[test]
fn every_corpus_and_every_recorded_crash_replays_without_a_panic() {
    let root = fuzz_dir();
    let mut failures = Vec::new();
    for target in TARGETS {
        let corpus = root.join("corpus").join(target.name);
        let seeds = files(&corpus);
        let accepted = seeds
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ok-"))
            })
            .count();
        let refused = seeds
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("bad-"))
            })
            .count();
        if accepted == 0 || refused == 0 {
            failures.push(format!(
                "{}: the corpus needs at least one ok-* and one bad-* seed (found {accepted} and {refused})",
                corpus.display()
            ));
        }
        failures.extend(replay(target.name, &corpus));
        failures.extend(replay(
            target.name,
            &root.join("artifacts").join(target.name),
        ));
    }
    assert!(
        failures.is_empty(),
        "replay failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fuzz_target_file_has_a_harness_and_every_harness_a_target_file() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut on_disk: Vec<String> = files(&dir)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    known.sort();
    assert_eq!(on_disk, known, "fuzz/fuzz_targets/*.rs and TARGETS differ");
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &known {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] named {name}"
        );
    }
}

#[test]
fn the_replay_holds_seeds_to_their_names() {
    // The replay is only as good as its panic detection: a harness whose
    // round trip fails must show up as a failure naming the file.
    let dir = tempfile_dir();
    fs::write(dir.join("ok-valid"), br#"{"standby":2}"#).expect("write");
    assert!(replay("policy_json", &dir).is_empty());
    assert_eq!(
        replay("no_such_target", &dir),
        vec!["no_such_target: unknown target".to_owned()]
    );
    fs::write(dir.join("bad-accepted"), br#"{}"#).expect("write");
    let failures = replay("policy_json", &dir);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("bad-accepted"), "{failures:?}");
    let _ = fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fuzz-replay-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}
