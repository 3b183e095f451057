//! SIGHUP (CONTRACTS §2): a policy change applies in place — same run, no
//! `resync`, `/readyz` stays 200, new timings apply from then on — and a
//! reload that cannot be applied keeps the running set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::admin_server::AdminServer;
use super::http_client::{send, sse};
use super::support::{Sandbox, closed_port};

/// An in-memory descriptor line seeing `n1` (all providers here agree).
fn line(id: &str, priority: u32) -> String {
    format!(
        r#"{{"id":"{id}","kind":"in_memory","priority":{priority},"watch":{{"members":[{{"id":"n1","host":"127.0.0.1","port":4000}}]}},"enabled":true}}"#
    )
}

/// Waits until stderr holds `needle` `times` times.
fn wait_stderr(server: &AdminServer, needle: &str, times: usize) -> String {
    let started = Instant::now();
    loop {
        let stderr = server.stderr();
        if stderr.matches(needle).count() >= times || started.elapsed() > Duration::from_secs(15) {
            return stderr;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_policy_change_applies_in_place() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{}\n", line("b", 10)));
    let policy = sb.path("policy.json");
    std::fs::write(&policy, r#"{"cooldown":"60s"}"#).expect("policy");
    let policy_arg = policy.display().to_string();
    let server = AdminServer::start_with(&sb, None, &["--policy", &policy_arg]);
    let first = server.wait_for("/topology", |t| t.status == 200).json();
    let run = first["run_id"].as_str().expect("run_id").to_owned();

    // A higher-priority provider joins: under the 60 s cooldown it must be
    // healthy for a whole minute before the service fails back to it.
    sb.write_store(&format!("{}\n{}\n", line("a", 20), line("b", 10)));
    server.signal("HUP");
    let stderr = wait_stderr(&server, "SIGHUP: reloaded 2 providers", 1);
    assert!(stderr.contains("SIGHUP: reloaded 2 providers"), "{stderr}");
    std::thread::sleep(Duration::from_secs(2));
    let providers = server.call("GET", "/providers", "").json();
    assert_eq!(providers[0]["id"], "a", "{providers}");
    assert_eq!(providers[0]["standby"], true, "{providers}");
    assert_eq!(
        server.call("GET", "/topology", "").json()["provider_id"],
        "b"
    );
    let last_seq = server.call("GET", "/topology", "").json()["seq_no"]
        .as_u64()
        .expect("seq_no");

    // Readiness polled every 10 ms and the event stream followed from
    // before the reload to after its effect.
    let polling = Arc::new(AtomicBool::new(true));
    let poller = {
        let base = server.base.clone();
        let polling = polling.clone();
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while polling.load(Ordering::Acquire) {
                answers.push(send("GET", &base, "/readyz", None, "").status);
                std::thread::sleep(Duration::from_millis(10));
            }
            answers
        })
    };
    let events = {
        let base = server.base.clone();
        std::thread::spawn(move || {
            sse(
                &base,
                &format!("/events?since={last_seq}"),
                None,
                Duration::from_secs(15),
                |events| {
                    events
                        .iter()
                        .any(|e| e.json()["type"] == "provider_changed")
                },
            )
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // The cooldown drops to 1 s: `a` has been healthy longer than that, so
    // the fail-back comes at once, in the same run.
    std::fs::write(&policy, r#"{"cooldown":"1s"}"#).expect("policy");
    let hup = Instant::now();
    server.signal("HUP");
    let moved = server.wait_for("/topology", |t| t.json()["provider_id"] == "a");
    let took = hup.elapsed();
    assert_eq!(moved.json()["provider_id"], "a", "{}", server.stderr());
    println!("SIGHUP with cooldown 60s -> 1s: failed back to the higher priority after {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(moved.json()["run_id"], run.as_str(), "a new run");
    std::thread::sleep(Duration::from_millis(500));
    polling.store(false, Ordering::Release);
    let answers = poller.join().expect("poller");
    let not_ready = answers.iter().filter(|s| **s != 200).count();
    println!(
        "/readyz polled {} times across the reload: {not_ready} not 200",
        answers.len()
    );
    assert!(answers.len() > 20, "{answers:?}");
    assert_eq!(not_ready, 0, "{answers:?}");

    let (status, events) = events.join().expect("events");
    assert_eq!(status, 200);
    let lines: Vec<serde_json::Value> = events.iter().map(|e| e.json()).collect();
    assert!(
        lines.iter().all(|l| l["type"] != "resync"),
        "a resync: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| l["run_id"] == run.as_str()),
        "{lines:?}"
    );
    let changed = lines
        .iter()
        .find(|l| l["type"] == "provider_changed")
        .expect("provider_changed");
    assert_eq!(changed["from_provider_id"], "b", "{changed}");
    assert_eq!(changed["to_provider_id"], "a", "{changed}");
    assert_eq!(changed["reason"], "priority_restored", "{changed}");
    let stderr = server.stderr();
    assert!(stderr.contains("applied in place"), "{stderr}");
    assert!(!stderr.contains("restarted"), "{stderr}");
    let stopped = server.stop();
    assert_eq!(stopped.code, Some(0), "{stopped:?}");
}

#[test]
fn a_reload_that_cannot_be_applied_keeps_the_running_set() {
    let sb = Sandbox::new();
    let store = format!("{}\n{}\n", line("a", 20), line("b", 10));
    sb.write_store(&store);
    let policy = sb.path("policy.json");
    std::fs::write(&policy, r#"{"cooldown":"2s"}"#).expect("policy");
    let policy_arg = policy.display().to_string();
    let server = AdminServer::start_with(&sb, None, &["--policy", &policy_arg]);
    let first = server
        .wait_for("/topology", |t| {
            t.status == 200 && t.json()["provider_id"] == "a"
        })
        .json();
    let run = first["run_id"].as_str().expect("run_id").to_owned();
    let kept = |server: &AdminServer, step: &str| {
        assert_eq!(server.provider_ids(), ["a", "b"], "{step}");
        let providers = server.call("GET", "/providers", "").json();
        assert_eq!(providers[0]["active"], true, "{step}: {providers}");
        assert_eq!(providers[1]["standby"], true, "{step}: {providers}");
        let topology = server.call("GET", "/topology", "").json();
        assert_eq!(topology["provider_id"], "a", "{step}");
        assert_eq!(topology["run_id"], run.as_str(), "{step}");
        assert_eq!(
            send("GET", &server.base, "/readyz", None, "").status,
            200,
            "{step}"
        );
    };

    // A bad policy: refused before anything is touched.
    std::fs::write(&policy, r#"{"jitter":0.9}"#).expect("policy");
    server.signal("HUP");
    let stderr = wait_stderr(&server, "reload refused", 1);
    assert!(stderr.contains("jitter"), "{stderr}");
    kept(&server, "bad policy");

    // A set that cannot be built: `b` would go and `c` come, but `c`'s CA
    // file does not exist. Nothing of it is applied.
    std::fs::write(&policy, r#"{"cooldown":"2s"}"#).expect("policy");
    let unbuildable = format!(
        r#"{{"id":"c","kind":"consul","priority":30,"endpoints":["https://127.0.0.1:{}"],"tls":{{"ca":"missing-ca.pem"}},"watch":{{"service":"app"}},"enabled":true}}"#,
        closed_port()
    );
    sb.write_store(&format!("{}\n{unbuildable}\n", line("a", 20)));
    server.signal("HUP");
    let stderr = wait_stderr(&server, "reload refused", 2);
    assert_eq!(stderr.matches("reload refused").count(), 2, "{stderr}");
    assert!(stderr.contains("tls.ca"), "{stderr}");
    kept(&server, "unbuildable set");

    // The same set with a valid policy change is refused whole too: the
    // policy stays as it was.
    std::fs::write(&policy, r#"{"cooldown":"1s"}"#).expect("policy");
    server.signal("HUP");
    let stderr = wait_stderr(&server, "reload refused", 3);
    assert_eq!(stderr.matches("reload refused").count(), 3, "{stderr}");
    kept(&server, "unbuildable set with a new policy");

    // Fixed: applies.
    sb.write_store(&store);
    server.signal("HUP");
    let stderr = wait_stderr(&server, "applied in place", 1);
    assert!(stderr.contains("applied in place"), "{stderr}");
    kept(&server, "valid again");
    let stopped = server.stop();
    assert_eq!(stopped.code, Some(0), "{stopped:?}");
}
