//! CONTRACTS §4a rule 7: after hand edits, admin calls and SIGHUPs, the
//! providers that run are exactly the enabled descriptors of the set last
//! applied, and `GET /providers` lists exactly that set.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::admin_server::AdminServer;
use super::support::Sandbox;

/// An in-memory descriptor line seeing `n1` and `n2` (every provider here
/// sees the same members, so no view is a suspicious shrink).
fn line(id: &str, priority: u32) -> String {
    format!(
        r#"{{"id":"{id}","kind":"in_memory","priority":{priority},"watch":{{"members":[{{"id":"n1","host":"127.0.0.1","port":4000}},{{"id":"n2","host":"127.0.0.1","port":4001}}]}},"enabled":true}}"#
    )
}

/// `provisioning_active_provider` samples: provider → value.
fn active_gauges(server: &AdminServer) -> Vec<(String, f64)> {
    let text = server.call("GET", "/metrics", "").body;
    text.lines()
        .filter_map(|l| l.strip_prefix("provisioning_active_provider{provider=\""))
        .filter_map(|rest| {
            let (id, value) = rest.split_once("\"} ")?;
            Some((id.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Checks that `/providers` lists exactly `ids` and that what runs agrees
/// with it: the one provider it marks active is the one whose snapshot is
/// published (`/topology`) and the only one the active-provider gauge
/// says 1 for; `gone` is neither listed nor running.
fn assert_agree(server: &AdminServer, step: &str, ids: &[&str], gone: &str) {
    let providers = server.call("GET", "/providers", "").json();
    let listed: Vec<&str> = providers
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(listed, ids, "{step}: {providers}");
    let active: Vec<&str> = providers
        .as_array()
        .expect("array")
        .iter()
        .filter(|p| p["active"] == Value::Bool(true))
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(active.len(), 1, "{step}: {providers}");
    let topology = server.call("GET", "/topology", "").json();
    assert_eq!(
        topology["provider_id"], active[0],
        "{step}: /topology runs another provider than /providers says: {providers}"
    );
    let gauges = active_gauges(server);
    let one: Vec<&str> = gauges
        .iter()
        .filter(|(_, v)| *v == 1.0)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(one, [active[0]], "{step}: {gauges:?}");
    assert!(!listed.contains(&gone), "{step}: {gone} listed");
    assert_ne!(topology["provider_id"], gone, "{step}: {gone} still active");
    println!("{step}: /providers {listed:?}, active {}", active[0]);
}

/// Waits until the published snapshot is not `gone`'s.
fn wait_not_active(server: &AdminServer, gone: &str) -> Duration {
    let started = Instant::now();
    server.wait_for("/topology", |t| t.json()["provider_id"] != gone);
    started.elapsed()
}

#[test]
fn a_provider_removed_by_hand_never_runs_unseen() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{}\n{}\n", line("x", 30), line("b", 10)));
    // A long cooldown: no fail-back comes between the checks, so every
    // switch below is one the set changes force at once.
    let policy = sb.path("policy.json");
    std::fs::write(&policy, r#"{"cooldown":"60s"}"#).expect("policy");
    let policy = policy.display().to_string();
    let server = AdminServer::start_with(&sb, None, &["--policy", &policy]);
    server.wait_for("/topology", |t| {
        t.status == 200 && t.json()["provider_id"] == "x"
    });
    assert_agree(&server, "start", &["x", "b"], "none");

    // A hand edit alone changes nothing that runs: the set last applied
    // still has `x`, and `/providers` says so.
    sb.write_store(&format!("{}\n", line("b", 10)));
    std::thread::sleep(Duration::from_millis(300));
    assert_agree(&server, "hand edit", &["x", "b"], "none");

    // An admin call commits the stored set plus its change, and that set
    // is what runs: `x` leaves (it was active: a switch at once).
    let answer = server.call("POST", "/providers", &line("c", 20));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let took = wait_not_active(&server, "x");
    println!("x left the running set {took:?} after the POST answered");
    let store = std::fs::read_to_string(sb.store()).expect("store");
    assert!(!store.contains(r#""id":"x""#), "{store}");
    assert_agree(&server, "POST", &["c", "b"], "x");

    // SIGHUP applies the same set: nothing reappears.
    server.signal("HUP");
    let started = Instant::now();
    while !server.stderr().contains("SIGHUP: reloaded")
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server.stderr().contains("SIGHUP: reloaded 2 providers"),
        "{}",
        server.stderr()
    );
    assert_agree(&server, "SIGHUP", &["c", "b"], "x");

    // A hand edit that brings `x` back is applied by the next call (a
    // DELETE of `b` here), with everything else of the stored set.
    sb.write_store(&format!(
        "{}\n{}\n{}\n",
        line("x", 30),
        line("c", 20),
        line("b", 10)
    ));
    let answer = server.call("DELETE", "/providers/b", "");
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_agree(&server, "DELETE", &["x", "c"], "b");
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}
