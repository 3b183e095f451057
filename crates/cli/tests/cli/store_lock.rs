//! CONTRACTS §4a rule 6: while another process holds the store's lock, an
//! admin write waits (then answers 503 `store_busy`, having changed
//! nothing) and nothing else does: reads answer at once and a dead backend
//! is still failed over within the refused-connection budget.

use std::time::{Duration, Instant};

use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};

use super::admin_server::AdminServer;
use super::http_client::sse;
use super::support::{Sandbox, consul_line, hold_store_lock};

/// How long the other holder keeps the lock.
const HELD: Duration = Duration::from_secs(20);
/// The store's lock timeout (`FileProviderStore`'s default).
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// A refused connection makes a provider unreachable in well under a second
/// (three errors: at once, after 100 ms, verdict), and the switch follows at
/// once (ARCHITECTURE "Failover rules" 2 and 3).
const SWITCH_BUDGET: Duration = Duration::from_secs(1);
/// A read that does not wait for anything.
const READ_BUDGET: Duration = Duration::from_millis(100);

#[test]
fn a_held_store_lock_delays_only_the_write() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let consul = runtime.block_on(FakeConsul::start()).expect("fake consul");
    consul.upsert(FakeInstance::new("app", "app-1", "127.0.0.1", 4000));
    let sb = Sandbox::new();
    // The in-memory standby sees what Consul sees.
    let standby = r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"app-1","host":"127.0.0.1","port":4000}]},"enabled":true}"#;
    sb.write_store(&format!(
        "{}\n{standby}\n",
        consul_line(consul.addr().port())
    ));
    let server = AdminServer::start(&sb, None);
    let topology = server.wait_for("/topology", |t| {
        t.status == 200 && t.json()["provider_id"] == "consul-a"
    });
    assert_eq!(
        topology.json()["provider_id"],
        "consul-a",
        "{}",
        server.stderr()
    );
    let before = std::fs::read(sb.store()).expect("store");

    // Another holder takes the store's lock exactly as the store does.
    let (locked_at, holder) = hold_store_lock(&sb, HELD);

    // Events from now on.
    let base = server.base.clone();
    let events = std::thread::spawn(move || {
        let mut seen_at = None;
        let (_, events) = sse(&base, "/events", None, Duration::from_secs(15), |events| {
            let done = events
                .iter()
                .any(|e| e.json()["type"] == "provider_changed");
            if done && seen_at.is_none() {
                seen_at = Some(Instant::now());
            }
            done
        });
        (events, seen_at)
    });

    // The write: held by the lock.
    let base = server.base.clone();
    let write = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = super::http_client::send(
            "POST",
            &base,
            "/providers",
            None,
            r#"{"id":"late","kind":"in_memory","priority":5,"watch":{"members":[]}}"#,
        );
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));

    // Reads answer at once meanwhile.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let answer = server.call("GET", "/providers", "");
        let took = started.elapsed();
        assert_eq!(answer.status, 200, "{}", answer.body);
        slowest = slowest.max(took);
    }
    println!("GET /providers while the write waits for the lock: slowest of 10 {slowest:?}");
    assert!(
        slowest < READ_BUDGET,
        "GET /providers took {slowest:?} while a write waited for the store's lock"
    );

    // The active backend dies: the switch is not held up by the write.
    consul.refuse_connections(true).expect("refuse");
    let fault_at = Instant::now();
    let (events, seen_at) = events.join().expect("event reader");
    let changed = events
        .iter()
        .map(|e| e.json())
        .find(|e| e["type"] == "provider_changed")
        .unwrap_or_else(|| panic!("no provider_changed in {events:?}; {}", server.stderr()));
    assert_eq!(changed["from_provider_id"], "consul-a", "{changed}");
    assert_eq!(changed["to_provider_id"], "local", "{changed}");
    let switch = seen_at.expect("seen").saturating_duration_since(fault_at);
    println!(
        "connection refused -> provider_changed on /events: {switch:?} (budget {SWITCH_BUDGET:?})"
    );
    assert!(
        switch < SWITCH_BUDGET,
        "the switch took {switch:?} while a write waited for the store's lock"
    );
    let started = Instant::now();
    let providers = server.call("GET", "/providers", "").json();
    println!("GET /providers after the switch: {:?}", started.elapsed());
    assert_eq!(providers[1]["id"], "local", "{providers}");
    assert_eq!(providers[1]["active"], true, "{providers}");

    // The write gives up after the lock timeout, having changed nothing.
    let (answer, took) = write.join().expect("writer");
    let waited = locked_at.elapsed().min(took);
    println!(
        "POST /providers under a held lock: {} after {took:?}",
        answer.status
    );
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["code"], "store_busy", "{}", answer.body);
    assert!(
        took >= LOCK_TIMEOUT - Duration::from_millis(600)
            && took < LOCK_TIMEOUT * 3 + Duration::from_secs(2),
        "answered after {took:?} ({waited:?} since the lock was taken)"
    );
    assert_eq!(
        std::fs::read(sb.store()).expect("store"),
        before,
        "the store changed"
    );
    let ids: Vec<String> = server
        .call("GET", "/providers", "")
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, ["consul-a", "local"]);

    // Once the lock is free, the same write goes through.
    holder.join().expect("holder");
    let answer = server.call(
        "POST",
        "/providers",
        r#"{"id":"late","kind":"in_memory","priority":5,"watch":{"members":[]}}"#,
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(
        std::fs::read_to_string(sb.store())
            .expect("store")
            .contains(r#""id":"late""#)
    );
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}
