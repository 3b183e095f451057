//! SIGHUP while admin writes wait for the store's lock (CONTRACTS §2,
//! §4a rule 7): the reload reads the store after those writes, so a write
//! that was answered stays applied — an added provider keeps running, a
//! removed one does not come back.

use std::time::{Duration, Instant};

use super::admin_server::AdminServer;
use super::http_client::send;
use super::support::{Sandbox, hold_store_lock};

/// How long the other holder keeps the lock: well under the store's 10 s
/// lock timeout, so the writes go through once it is released.
const HELD: Duration = Duration::from_secs(2);

fn line(id: &str, priority: u32) -> String {
    format!(
        r#"{{"id":"{id}","kind":"in_memory","priority":{priority},"watch":{{"members":[{{"id":"n1","host":"127.0.0.1","port":4000}}]}},"enabled":true}}"#
    )
}

#[test]
fn a_sighup_during_writes_keeps_what_they_answered() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{}\n{}\n", line("b", 10), line("gone", 5)));
    let server = AdminServer::start(&sb, None);
    server.wait_for("/topology", |t| t.status == 200);

    // Another holder takes the store's lock as the store does.
    let (_, holder) = hold_store_lock(&sb, HELD);

    let base = server.base.clone();
    let adding =
        std::thread::spawn(move || send("POST", &base, "/providers", None, &line("late", 20)));
    std::thread::sleep(Duration::from_millis(200));
    let base = server.base.clone();
    let removing = std::thread::spawn(move || send("DELETE", &base, "/providers/gone", None, ""));
    std::thread::sleep(Duration::from_millis(200));
    // The store still holds neither write when the signal comes.
    server.signal("HUP");
    holder.join().expect("holder");

    let added = adding.join().expect("add");
    assert_eq!(added.status, 201, "{}", added.body);
    let removed = removing.join().expect("remove");
    assert_eq!(removed.status, 204, "{}", removed.body);
    let started = Instant::now();
    while !server.stderr().contains("SIGHUP: reloaded") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no reload: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "reload answered {:?} after the lock was released",
        started.elapsed()
    );
    let stderr = server.stderr();
    assert!(stderr.contains("SIGHUP: reloaded 2 providers"), "{stderr}");

    assert_eq!(server.provider_ids(), ["late", "b"], "{stderr}");
    let stored = std::fs::read_to_string(sb.store()).expect("store");
    assert!(
        stored.contains(r#""late""#) && !stored.contains(r#""gone""#),
        "{stored}"
    );
    let again = server.call("POST", "/providers", &line("late", 20));
    assert_eq!(again.status, 409, "{}", again.body);
    let metrics = server.call("GET", "/metrics", "").body;
    assert!(metrics.contains(r#"provider="late""#), "{metrics}");
    assert!(!metrics.contains(r#"provider="gone""#), "{metrics}");
}
