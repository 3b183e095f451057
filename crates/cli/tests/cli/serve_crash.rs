//! Crash safety of `serve` (issue 14): SIGKILL during `POST /providers` at
//! random points, 200 times. After every kill the store loads and holds
//! either the set before the request or the set after it, and the restarted
//! service serves exactly the stored set.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::admin_server::AdminServer;
use super::support::Sandbox;

const KILLS: usize = 200;

/// xorshift64*: enough to spread the kill points; the seed is printed so a
/// failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The ids in the store, loaded the way an operator would: through the
/// binary's own loader (`providers list --json`), which fails on a corrupt
/// or half-written file.
fn stored_ids(sb: &Sandbox) -> Vec<String> {
    let run = sb.run(&["providers", "list", "--json"]);
    assert_eq!(
        run.code,
        Some(0),
        "the store does not load after a kill: {run:?}\nstore:\n{}",
        std::fs::read_to_string(sb.store()).unwrap_or_default()
    );
    let list: Value = serde_json::from_str(&run.stdout).expect("list --json is JSON");
    let mut ids: Vec<String> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|d| d["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

fn served_ids(server: &AdminServer) -> Vec<String> {
    let answer = server.call("GET", "/providers", "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let mut ids: Vec<String> = answer
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|d| d["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

fn post_bytes(base: &str, body: &str) -> Vec<u8> {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    format!(
        "POST /providers HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn sigkill_during_post_providers_leaves_the_old_or_the_new_set() {
    let sb = Sandbox::new();
    sb.write_store(concat!(
        r#"{"id":"base","kind":"in_memory","priority":1,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        "\n",
    ));
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    println!("kill-point seed {seed:#x}");
    let mut rng = Rng(seed);

    // How long a whole POST takes on this machine: kill points are spread
    // over 0..1.5× that, so some land before, during and after the save.
    let mut expected = stored_ids(&sb);
    let server = AdminServer::start(&sb, None);
    let started = Instant::now();
    let created = server.call(
        "POST",
        "/providers",
        r#"{"id":"warmup","kind":"in_memory","priority":2,"enabled":false}"#,
    );
    let post_took = started.elapsed();
    assert_eq!(created.status, 201, "{created:?}");
    drop(server); // SIGKILL (after the answer)
    expected.push("warmup".to_owned());
    expected.sort();
    assert_eq!(stored_ids(&sb), expected);
    let window_us = (post_took.as_micros() as u64 * 3 / 2).clamp(500, 50_000);
    println!("POST took {post_took:?}; kill points in 0..{window_us} µs");

    let (mut old_kept, mut new_kept, mut mid_save) = (0usize, 0usize, 0usize);
    for i in 0..KILLS {
        let server = AdminServer::start(&sb, None);
        // After a restart the service serves what is stored.
        assert_eq!(served_ids(&server), expected, "restart {i}: served set");

        let id = format!("p{i}");
        let body = format!(
            r#"{{"id":"{id}","kind":"in_memory","priority":{},"enabled":false}}"#,
            100 + i
        );
        let delay = Duration::from_micros(rng.next() % window_us);
        let authority = server
            .base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let mut stream = TcpStream::connect(&authority).expect("connect");
        stream
            .write_all(&post_bytes(&server.base, &body))
            .expect("send");
        std::thread::sleep(delay);
        drop(server); // SIGKILL and reap
        drop(stream);
        // A temporary file left behind: the kill landed inside the save.
        if sb.path("providers.jsonl.tmp").exists() {
            mid_save += 1;
        }

        let after = stored_ids(&sb);
        let mut with_new = expected.clone();
        with_new.push(id);
        with_new.sort();
        if after == expected {
            old_kept += 1;
        } else if after == with_new {
            new_kept += 1;
            expected = with_new;
        } else {
            panic!(
                "kill {i} after {delay:?}: the store holds {after:?}, neither {expected:?} nor {with_new:?}"
            );
        }
    }
    let server = AdminServer::start(&sb, None);
    assert_eq!(served_ids(&server), expected, "final restart: served set");
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    println!(
        "{KILLS} kills: old set kept {old_kept}×, new set kept {new_kept}×, {mid_save} inside the save (temporary file left)"
    );
    assert!(
        old_kept > 0 && new_kept > 0,
        "the kill points should land both before and after the save (old {old_kept}, new {new_kept})"
    );
}
