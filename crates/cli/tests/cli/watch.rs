//! `watch`: the service on the store, its event lines and its signals.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{LOCAL_N1, Sandbox, closed_port, consul_line, finish, signal};

#[test]
fn once_json_prints_exactly_one_snapshot_with_the_golden_hash() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n"));
    let run = sb.run(&["watch", "--json", "--once"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{run:?}");
    let line: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["type"], "snapshot");
    // CONTRACTS §6 golden vector: n1 127.0.0.1:4000.
    assert_eq!(line["hash"], "8cd9924dea78c53d");
    assert_eq!(line["provider_id"], "local");
    assert!(line["seq_no"].as_u64().is_some_and(|n| n >= 1), "{line}");
    assert_eq!(line["epoch"], 1);
    assert_eq!(line["run_id"].as_str().map(str::len), Some(16));
    assert_eq!(
        line["members"],
        serde_json::json!([{"id":"n1","host":"127.0.0.1","port":4000,"labels":{}}])
    );
    println!("watch --json --once took {:?}", run.took);
}

#[test]
fn once_exits_3_when_no_snapshot_comes_in_time() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{}\n", consul_line(closed_port())));
    let run = sb.run(&["watch", "--json", "--once", "--timeout", "1500ms"]);
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(
        run.stderr.lines().last(),
        Some("error[timeout]: no snapshot was published within 1500ms"),
        "{run:?}"
    );
    let run = sb.run(&["watch", "--once", "--timeout", "soon"]);
    assert_eq!(run.code, Some(2), "{run:?}");
}

fn follow_until_signal(sig: &str, json: bool) {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n"));
    let args: &[&str] = if json {
        &["--json", "watch"]
    } else {
        &["watch"]
    };
    let started = Instant::now();
    let mut child = sb.command(args).spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    let seen = started.elapsed();
    signal(&child, sig);
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        rest
    });
    let run = finish(child, started, Duration::from_secs(20));
    let _ = rest.join();
    assert_eq!(run.code, Some(0), "{sig}: {run:?}");
    if json {
        let line: Value = serde_json::from_str(first.trim()).expect("a JSON line");
        assert!(line["type"].is_string(), "{line}");
    } else {
        // `2026-11-27T09:40:01.123Z  #  1 e1  snapshot   local ...`
        let stamp = first.split_whitespace().next().unwrap_or_default();
        assert!(stamp.len() == 24 && stamp.ends_with('Z'), "{first:?}");
        assert!(first.contains(" e1 "), "{first:?}");
    }
    println!(
        "{sig}: first line after {seen:?}, exit 0 after {:?}",
        run.took
    );
}

#[test]
fn sigterm_stops_watch_cleanly() {
    follow_until_signal("TERM", true);
}

#[test]
fn sigint_stops_watch_cleanly() {
    follow_until_signal("INT", false);
}

#[test]
fn follow_json_prints_contract_lines_in_seq_order_until_the_timeout() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n"));
    let run = sb.run(&["--json", "watch", "--timeout", "1s"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    // CONTRACTS §3: every line but `resync` has a seq_no; `resync` (sent
    // when the subscription starts after the first publication) has no
    // `seq_no` key at all, and every other line's seq_no is greater than all
    // before.
    for line in &lines {
        let numbered = line["seq_no"].as_u64().is_some();
        let resync = line["type"] == "resync";
        assert!(numbered != resync, "seq_no on the wrong lines: {line}");
        assert!(!resync || line.get("seq_no").is_none(), "{line}");
    }
    let seqs: Vec<u64> = lines
        .iter()
        .filter(|l| l["type"] != "resync")
        .filter_map(|l| l["seq_no"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    for (i, line) in lines.iter().enumerate() {
        if line["type"] == "resync" {
            let next = lines
                .get(i + 1)
                .expect("resync is followed by its snapshot");
            assert_eq!(next["type"], "snapshot");
            assert_eq!(line["as_of_seq_no"], next["seq_no"]);
        }
    }
    let run_ids: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["run_id"].as_str()).collect();
    assert_eq!(run_ids.len(), 1, "one run");
    let snapshot = lines
        .iter()
        .position(|l| l["type"] == "snapshot")
        .expect("a snapshot line");
    assert_eq!(lines[snapshot]["hash"], "8cd9924dea78c53d");
    // The first snapshot of a run is followed by a join per member.
    let join = &lines[snapshot + 1];
    assert_eq!(join["type"], "remote_topology");
    assert_eq!(join["event"], "join");
    assert_eq!(join["node_id"], "n1");
    assert_eq!(join["snapshot_hash"], "8cd9924dea78c53d");
    assert!(run.took >= Duration::from_secs(1), "{:?}", run.took);
}
