//! `watch --json` over an `in_memory` store whose member restarts with a new
//! incarnation, then drains, then leaves (CONTRACTS §1 "Member lifecycle",
//! §3, §6): the `remote_topology` lines are exactly `leave`, `join`,
//! `draining`, `leave`, each carrying the §6 golden hash of the view it
//! leads to.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::{Sandbox, finish, signal};

const WAIT: Duration = Duration::from_secs(20);

/// The store with one `in_memory` provider whose only member is `n1`
/// 127.0.0.1:4000 with `extra` merged in.
fn store(members: &[Value]) -> String {
    format!(
        "{}\n",
        json!({"id": "local", "kind": "in_memory", "priority": 0,
               "watch": {"members": members}, "enabled": true})
    )
}

fn n1(extra: Value) -> Value {
    let mut member = json!({"id": "n1", "host": "127.0.0.1", "port": 4000});
    if let (Some(m), Some(extra)) = (member.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    member
}

/// Reads lines until one satisfies `want`; every line read is kept.
fn read_until(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<Value>,
    raw: &mut Vec<String>,
    what: &str,
    want: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}; saw {seen:#?}"));
        let value: Value = serde_json::from_str(&line).expect("every line is JSON");
        let done = want(&value);
        seen.push(value);
        raw.push(line);
        if done {
            return;
        }
    }
}

fn topology(event: &str, hash: &str) -> impl Fn(&Value) -> bool {
    let (event, hash) = (event.to_owned(), hash.to_owned());
    move |line| {
        line["type"] == "remote_topology" && line["event"] == event && line["snapshot_hash"] == hash
    }
}

#[test]
fn watch_json_shows_a_restart_as_leave_join_then_draining_then_leave() {
    let sb = Sandbox::new();
    // An emptied view is held as a suspicious shrink until confirmed.
    std::fs::write(sb.path("policy.json"), r#"{"shrink_confirm":"1s"}"#).expect("policy");
    let policy = sb.path("policy.json");
    let policy = policy.to_str().expect("utf-8 path");
    sb.write_store(&store(&[n1(json!({}))]));
    let started = Instant::now();
    let mut child = sb
        .command(&["--json", "--policy", policy, "watch"])
        .spawn()
        .expect("spawn");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut raw = Vec::new();
    // §6 golden vectors: v1 n1 127.0.0.1:4000, then the two v2 rows, then
    // the empty view.
    read_until(
        &lines,
        &mut seen,
        &mut raw,
        "the first join",
        topology("join", "8cd9924dea78c53d"),
    );
    let first = seen.len();

    let steps = [
        (
            n1(json!({"incarnation": "u-1"})),
            "join",
            "a8d9b2af5d51e335",
        ),
        (
            n1(json!({"incarnation": "u-1", "state": "draining"})),
            "draining",
            "f5d24982c47543d6",
        ),
    ];
    for (member, event, hash) in steps {
        sb.write_store(&store(&[member]));
        signal(&child, "HUP");
        read_until(&lines, &mut seen, &mut raw, event, topology(event, hash));
    }
    sb.write_store(&store(&[]));
    signal(&child, "HUP");
    read_until(
        &lines,
        &mut seen,
        &mut raw,
        "the last leave",
        topology("leave", "c77b3abb6f87acd9"),
    );
    let took = started.elapsed();
    signal(&child, "TERM");
    let run = finish(child, started, WAIT);
    let _ = reader.join();
    assert_eq!(run.code, Some(0), "{run:?}");

    let changes: Vec<Value> = seen[first..]
        .iter()
        .filter(|l| l["type"] == "remote_topology")
        .map(|l| {
            let mut change = json!({
                "event": l["event"], "node_id": l["node_id"], "snapshot_hash": l["snapshot_hash"],
            });
            if let Some(member) = l.get("member") {
                change["member"] = member.clone();
            }
            change
        })
        .collect();
    let member = |extra: Value| {
        let mut m = n1(extra);
        m["labels"] = json!({});
        m
    };
    assert_eq!(
        changes,
        [
            json!({"event": "leave", "node_id": "n1", "snapshot_hash": "a8d9b2af5d51e335"}),
            json!({"event": "join", "node_id": "n1", "snapshot_hash": "a8d9b2af5d51e335",
                   "member": member(json!({"incarnation": "u-1"}))}),
            json!({"event": "draining", "node_id": "n1", "snapshot_hash": "f5d24982c47543d6",
                   "member": member(json!({"incarnation": "u-1", "state": "draining"}))}),
            json!({"event": "leave", "node_id": "n1", "snapshot_hash": "c77b3abb6f87acd9"}),
        ],
        "all lines: {seen:#?}"
    );
    // The member object keeps the contract's key order on the wire.
    let draining = raw
        .iter()
        .find(|l| l.contains(r#""event":"draining""#))
        .expect("the draining line");
    assert!(
        draining.contains(
            r#""member":{"id":"n1","host":"127.0.0.1","port":4000,"labels":{},"incarnation":"u-1","state":"draining"}"#
        ),
        "{draining}"
    );
    println!(
        "watch --json lifecycle: {} lines, restart/draining/leave seen within {took:?}",
        seen.len()
    );
}
