//! Cross-process read-modify-write: N processes released together each add
//! a distinct provider through `ProviderRegistry::update`, with a delay
//! between reading and writing. With the advisory lock every addition
//! survives; without it (a test-only switch) updates are lost.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioning_registry::{ProviderRegistry, ProviderStore};

use crate::common::{CHILD_ENV, etcd, mem, spawn_child, test_name, wait_for_line};

const PROCESSES: u32 = 6;
const DELAY: Duration = Duration::from_millis(100);

/// Child mode `add:<locked>:<index>:<path>`: wait for the barrier on stdin,
/// then add provider `p<index>` with a delay between load and save.
fn add_one(locked: bool, index: u32, path: &Path) {
    let mut store = crate::common::file_store(path).with_lock_timeout(Duration::from_secs(30));
    if !locked {
        store = store.unlocked_for_tests();
    }
    let registry = ProviderRegistry::builder()
        .with_validator(crate::common::builtin())
        .with_store(Arc::new(store))
        .build();
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut go = [0u8; 1];
    let _ = std::io::stdin().read_exact(&mut go);
    let result = registry.update(|set| {
        std::thread::sleep(DELAY);
        set.register(etcd(&format!("p{index}"), 100 + index))
    });
    match result {
        Ok(()) => println!("done ok"),
        Err(e) => println!("done error[{}]: {e}", e.code()),
    }
}

fn child_mode() -> Option<(bool, u32, String)> {
    let mode = std::env::var(CHILD_ENV).ok()?;
    let rest = mode.strip_prefix("add:")?;
    let mut parts = rest.splitn(3, ':');
    let locked = parts.next()? == "locked";
    let index = parts.next()?.parse().ok()?;
    Some((locked, index, parts.next()?.to_owned()))
}

/// Runs the race; returns the providers saved and the children's reports.
fn race(locked: bool, test: &str) -> (usize, Vec<String>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.jsonl");
    let store = crate::common::file_store(&path);
    store.save(&[mem("base", 0, 1)]).unwrap();
    let lock = if locked { "locked" } else { "unlocked" };
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|i| spawn_child(test, &format!("add:{lock}:{i}:{}", path.display()), true))
        .collect();
    for (_, out) in &mut children {
        wait_for_line(out, "ready");
    }
    let started = Instant::now();
    // The barrier: every child is blocked on stdin; release them together.
    for (child, _) in &mut children {
        child.stdin.as_mut().unwrap().write_all(b"g").unwrap();
    }
    let mut reports = Vec::new();
    for (mut child, mut out) in children {
        reports.push(wait_for_line(&mut out, "done"));
        assert!(child.wait().unwrap().success());
    }
    let elapsed = started.elapsed();
    let saved = match store.load() {
        Ok(saved) => saved.len() - 1,
        // Only possible without the lock (writers sharing the .tmp file).
        Err(e) if !locked => {
            reports.push(format!("store unreadable after the race: {e}"));
            0
        }
        Err(e) => panic!("store unreadable after the race: {e}"),
    };
    (saved, reports, elapsed)
}

#[test]
fn concurrent_updates_under_the_lock_all_survive() {
    if let Some((locked, index, path)) = child_mode() {
        return add_one(locked, index, Path::new(&path));
    }
    let name = test_name(
        module_path!(),
        "concurrent_updates_under_the_lock_all_survive",
    );
    let (saved, reports, elapsed) = race(true, &name);
    eprintln!("locked: {saved}/{PROCESSES} saved in {elapsed:?}");
    assert!(reports.iter().all(|r| r == "done ok"), "{reports:?}");
    assert_eq!(saved, PROCESSES as usize, "{reports:?}");
    // Serialised: each update held the lock across its delay.
    assert!(elapsed >= DELAY * PROCESSES, "{elapsed:?}");
}

#[test]
fn without_the_lock_concurrent_updates_are_lost() {
    if let Some((locked, index, path)) = child_mode() {
        return add_one(locked, index, Path::new(&path));
    }
    let name = test_name(
        module_path!(),
        "without_the_lock_concurrent_updates_are_lost",
    );
    let (saved, reports, elapsed) = race(false, &name);
    eprintln!("unlocked: {saved}/{PROCESSES} saved in {elapsed:?}; {reports:?}");
    assert!(
        saved < PROCESSES as usize,
        "no update was lost: {reports:?}"
    );
}
