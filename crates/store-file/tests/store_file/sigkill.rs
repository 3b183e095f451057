//! Process-level crash test: a child process saves two sets alternately in
//! a loop and is killed with SIGKILL at random moments; after every kill
//! the store loads and equals one of the two sets.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use provisioning_registry::ProviderStore;

use crate::common::{CHILD_ENV, Rng, new_set, old_set, spawn_child, test_name, wait_for_line};

const KILLS: usize = 200;

/// Child mode: save old and new alternately forever; say `ready` after the
/// first save.
fn save_forever(path: &Path) -> ! {
    let store = crate::common::file_store(path);
    let sets = [old_set(), new_set()];
    let mut stdout = std::io::stdout();
    for i in 0usize.. {
        if let Err(e) = store.save(&sets[i % 2]) {
            eprintln!("child save failed: {e}");
            std::process::exit(3);
        }
        if i == 0 {
            let _ = writeln!(stdout, "ready");
            let _ = stdout.flush();
        }
    }
    unreachable!("the loop above never ends")
}

#[test]
fn sigkill_at_random_points_during_saves_leaves_old_or_new() {
    if let Ok(mode) = std::env::var(CHILD_ENV)
        && let Some(path) = mode.strip_prefix("save_forever:")
    {
        save_forever(Path::new(path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.jsonl");
    let store = crate::common::file_store(&path);
    // Kill within a few saves' time after the child's first save, however
    // fast or slow fsync is on this disk, so kills land in both saves.
    let mut save_cost = Duration::ZERO;
    for set in [new_set(), old_set(), new_set(), old_set()] {
        let t = Instant::now();
        store.save(&set).unwrap();
        save_cost = save_cost.max(t.elapsed());
    }
    let window_us = (save_cost.as_micros() as u64 * 4).max(3_000);
    let (old, new) = (old_set(), new_set());
    let (mut rng, seed) = Rng::from_time();
    let name = test_name(
        module_path!(),
        "sigkill_at_random_points_during_saves_leaves_old_or_new",
    );
    let started = Instant::now();
    let (mut saw_old, mut saw_new, mut stale_tmp) = (0, 0, 0);
    for kill in 0..KILLS {
        let (mut child, mut out) =
            spawn_child(&name, &format!("save_forever:{}", path.display()), false);
        wait_for_line(&mut out, "ready");
        std::thread::sleep(Duration::from_micros(rng.below(window_us)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "kill {kill} (seed {seed}): child was not killed by SIGKILL: {status}"
        );
        if store.tmp_path().exists() {
            stale_tmp += 1;
        }
        let loaded = store
            .load()
            .unwrap_or_else(|e| panic!("kill {kill} (seed {seed}): load failed: {e}"));
        if loaded == old {
            saw_old += 1;
        } else if loaded == new {
            saw_new += 1;
        } else {
            panic!("kill {kill} (seed {seed}): loaded neither set: {loaded:?}");
        }
    }
    eprintln!(
        "{KILLS} SIGKILLs in {:?} (kill window {window_us} µs, save {save_cost:?}): old {saw_old}, new {saw_new}, stale .tmp left {stale_tmp} times (seed {seed})",
        started.elapsed()
    );
    assert_eq!(saw_old + saw_new, KILLS);
    // The kills landed inside saves, not only between them.
    assert!(
        saw_old > 0 && saw_new > 0,
        "all kills saw one set (seed {seed})"
    );
    // The next save under the lock removes a stale .tmp.
    store.save(&new).unwrap();
    assert!(!store.tmp_path().exists());
}
