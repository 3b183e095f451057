//! `serve`: every admin route with auth on and off, metrics, events and
//! SIGHUP reloads (CONTRACTS §4).

use std::time::Duration;

use serde_json::Value;

use super::admin_server::AdminServer;
use super::http_client::{send, sse, sse_with};
use super::support::{Sandbox, closed_port, consul_line};

/// `a` (priority 20, n1 127.0.0.1:4000) and `b` (priority 10, n2).
fn two_providers(sb: &Sandbox) {
    sb.write_store(concat!(
        r#"{"id":"a","kind":"in_memory","priority":20,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        "\n",
        r#"{"id":"b","kind":"in_memory","priority":10,"watch":{"members":[{"id":"n2","host":"127.0.0.1","port":4001}]},"enabled":true}"#,
        "\n"
    ));
}

fn error_code(answer: &super::http_client::Answer) -> String {
    let body = answer.json();
    assert!(body["error"].is_string(), "{body}");
    body["code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn every_route_and_status_code_without_auth() {
    let sb = Sandbox::new();
    two_providers(&sb);
    let server = AdminServer::start(&sb, None);

    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    let ready = server.wait_for("/readyz", |a| a.status == 200);
    assert_eq!(ready.status, 200, "{ready:?}");

    let topology = server.call("GET", "/topology", "");
    assert_eq!(topology.status, 200);
    let snapshot = topology.json();
    assert!(snapshot.get("type").is_none(), "{snapshot}");
    assert_eq!(snapshot["provider_id"], "a");
    assert_eq!(snapshot["hash"], "8cd9924dea78c53d");

    let providers = server.call("GET", "/providers", "");
    assert_eq!(providers.status, 200);
    assert!(
        providers
            .body
            .starts_with(r#"[{"id":"a","kind":"in_memory","priority":20,"watch":"#),
        "stored key order first: {}",
        providers.body
    );
    let list = providers.json();
    let a = &list[0];
    for key in [
        "health",
        "active",
        "standby",
        "pinned",
        "consecutive_errors",
        "last_event_age_ms",
        "backoff_until_ms",
    ] {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    assert_eq!(a["active"], true);
    assert_eq!(list[1]["id"], "b");
    assert_eq!(list[1]["standby"], true);

    // POST /providers: 201, 409 duplicate id / priority, 400 invalid.
    let c = r#"{"id":"c","kind":"in_memory","priority":5,"enabled":false}"#;
    let created = server.call("POST", "/providers", c);
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body, c);
    assert!(
        std::fs::read_to_string(sb.store())
            .unwrap()
            .contains(r#""id":"c""#),
        "persisted"
    );
    let dup = server.call("POST", "/providers", c);
    assert_eq!(
        (dup.status, error_code(&dup).as_str()),
        (409, "duplicate_name")
    );
    let prio = server.call(
        "POST",
        "/providers",
        r#"{"id":"d","kind":"in_memory","priority":5}"#,
    );
    assert_eq!(
        (prio.status, error_code(&prio).as_str()),
        (409, "duplicate_priority")
    );
    let bad = server.call(
        "POST",
        "/providers",
        r#"{"id":"d","kind":"in_memory","prioirty":6}"#,
    );
    assert_eq!(
        (bad.status, error_code(&bad).as_str()),
        (400, "invalid_config")
    );
    let not_json = server.call("POST", "/providers", "{");
    assert_eq!(not_json.status, 400);

    // POST /failover: 404 unknown, 409 disabled, 200 pin and unpin.
    let unknown = server.call("POST", "/failover", r#"{"to":"zz"}"#);
    assert_eq!(
        (unknown.status, error_code(&unknown).as_str()),
        (404, "not_found")
    );
    let disabled = server.call("POST", "/failover", r#"{"to":"c"}"#);
    assert_eq!(
        (disabled.status, error_code(&disabled).as_str()),
        (409, "provider_disabled")
    );
    let bad_body = server.call("POST", "/failover", r#"{"too":"b"}"#);
    assert_eq!(bad_body.status, 400);
    let pinned = server.call("POST", "/failover", r#"{"to":"b"}"#);
    assert_eq!(pinned.status, 200, "{pinned:?}");
    let moved = server.wait_for("/topology", |t| t.json()["provider_id"] == "b");
    assert_eq!(moved.json()["provider_id"], "b");
    let unpinned = server.call("POST", "/failover", r#"{"to":null}"#);
    assert_eq!(unpinned.status, 200, "{unpinned:?}");

    // DELETE /providers/{id}: 204, then 404.
    let deleted = server.call("DELETE", "/providers/c", "");
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(
        !std::fs::read_to_string(sb.store())
            .unwrap()
            .contains(r#""id":"c""#)
    );
    let gone = server.call("DELETE", "/providers/c", "");
    assert_eq!(
        (gone.status, error_code(&gone).as_str()),
        (404, "not_found")
    );

    // 413 over 64 KiB, with the JSON error body.
    let big = format!(
        r#"{{"id":"big","kind":"in_memory","priority":77,"watch":{{"pad":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    let too_large = server.call("POST", "/providers", &big);
    assert_eq!(
        (too_large.status, error_code(&too_large).as_str()),
        (413, "payload_too_large")
    );

    let page = server.call("GET", "/", "");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(!page.body.contains("<script"));

    let unknown_route = server.call("GET", "/nope", "");
    assert_eq!(
        (unknown_route.status, error_code(&unknown_route).as_str()),
        (404, "not_found")
    );
    let wrong_method = server.call("PUT", "/failover", "{}");
    assert_eq!(
        (wrong_method.status, error_code(&wrong_method).as_str()),
        (405, "invalid_argument")
    );

    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn not_ready_until_a_snapshot_is_published() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{}\n", consul_line(closed_port())));
    let server = AdminServer::start(&sb, None);
    let ready = server.call("GET", "/readyz", "");
    assert_eq!(ready.status, 503, "{ready:?}");
    let topology = server.call("GET", "/topology", "");
    assert_eq!(
        (topology.status, error_code(&topology).as_str()),
        (503, "not_ready")
    );
    // Backend trouble never makes serve exit.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn every_route_with_auth_on() {
    let sb = Sandbox::new();
    two_providers(&sb);
    let server = AdminServer::start(&sb, Some("s3cr3t-token"));
    // Probes stay open.
    assert_eq!(server.call_as(None, "GET", "/healthz").status, 200);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    assert_eq!(server.call_as(None, "GET", "/readyz").status, 200);
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/topology"),
        ("GET", "/providers"),
        ("POST", "/providers"),
        ("DELETE", "/providers/a"),
        ("POST", "/failover"),
        ("GET", "/events"),
        ("GET", "/metrics"),
    ] {
        for token in [None, Some("wrong"), Some("s3cr3t-tokeX")] {
            let answer = server.call_as(token, method, path);
            assert_eq!(answer.status, 401, "{method} {path} with {token:?}");
            assert_eq!(error_code(&answer), "unauthorized");
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        }
    }
    for path in ["/", "/topology", "/providers", "/metrics"] {
        let answer = server.call("GET", path, "");
        assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    }
    let (status, events) = sse(
        &server.base,
        "/events",
        Some("s3cr3t-token"),
        Duration::from_secs(10),
        |e| !e.is_empty(),
    );
    assert_eq!(status, 200);
    assert!(!events.is_empty());
    assert_eq!(
        server.call("POST", "/failover", r#"{"to":"b"}"#).status,
        200
    );
    assert_eq!(server.call("DELETE", "/providers/b", "").status, 204);
    assert!(
        !server.stderr().contains("s3cr3t-token"),
        "the token is never printed"
    );

    // SIGTERM with an event stream open: the stream ends, the process
    // exits 0.
    let base = server.base.clone();
    let open_stream = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let (status, _) = sse(
            &base,
            "/events",
            Some("s3cr3t-token"),
            Duration::from_secs(30),
            |_| false,
        );
        (status, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    let (status, open_for) = open_stream.join().expect("stream thread");
    assert_eq!(status, 200);
    assert!(
        open_for < Duration::from_secs(10),
        "the stream closed on shutdown after {open_for:?}"
    );
    println!("SIGTERM with an open event stream: exit 0, stream closed after {open_for:?}");
}

/// `name{labels} value` lines and `# TYPE` lines, checked as Prometheus
/// text; returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert_eq!(words.len(), 3, "{line}");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&words[2]),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
        samples.push((series.to_owned(), value));
    }
    samples
}

#[test]
fn metrics_after_a_manual_failover_and_the_event_stream() {
    let sb = Sandbox::new();
    two_providers(&sb);
    let server = AdminServer::start(&sb, None);
    server.wait_for("/readyz", |a| a.status == 200);

    // A live stream opened before the switch.
    let base = server.base.clone();
    let live = std::thread::spawn(move || {
        sse(&base, "/events", None, Duration::from_secs(15), |events| {
            events
                .iter()
                .any(|e| e.json()["type"] == "provider_changed")
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let pinned = server.call("POST", "/failover", r#"{"to":"b"}"#);
    assert_eq!(pinned.status, 200);
    server.wait_for("/topology", |t| t.json()["provider_id"] == "b");

    let metrics = server.call("GET", "/metrics", "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{metrics:?}"
    );
    let samples = parse_prometheus(&metrics.body);
    let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    assert_eq!(
        value(r#"provisioning_failovers_total{from="a",to="b",reason="manual_override"}"#),
        Some(1.0),
        "{}",
        metrics.body
    );
    assert_eq!(
        value(r#"provisioning_active_provider{provider="b"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"provisioning_active_provider{provider="a"}"#),
        Some(0.0)
    );
    assert!(
        metrics
            .body
            .contains("# TYPE provisioning_snapshot_latency_seconds histogram"),
        "latency is a histogram: {}",
        metrics.body
    );
    assert!(
        samples.iter().any(
            |(s, _)| s.starts_with("provisioning_snapshot_latency_seconds_bucket{")
                && s.contains(r#"le="0.000001""#)
        ),
        "{}",
        metrics.body
    );

    // The live stream started with `resync` and the current snapshot, then
    // saw the switch; every line but `resync` has its seq_no as id.
    let (status, events) = live.join().expect("stream thread");
    assert_eq!(status, 200);
    assert_eq!(events[0].json()["type"], "resync", "{events:?}");
    assert_eq!(events[1].json()["type"], "snapshot", "{events:?}");
    assert_eq!(events[0].json()["as_of_seq_no"], events[1].json()["seq_no"]);
    // CONTRACTS §3: a `resync` has no `seq_no` key, so a consumer dropping
    // lines at or below its high-water mark keeps the snapshot it announces.
    assert!(
        events[0].json().get("seq_no").is_none(),
        "resync carries a seq_no: {events:?}"
    );
    assert_eq!(events[0].id, None, "resync has no SSE id: {events:?}");
    let changed = events
        .iter()
        .find(|e| e.json()["type"] == "provider_changed")
        .expect("provider_changed streamed");
    let line = changed.json();
    assert_eq!(line["to_provider_id"], "b");
    assert_eq!(line["reason"], "manual_override");
    assert_eq!(
        changed.id.as_deref(),
        line["seq_no"].to_string().as_str().into()
    );
    assert!(
        events
            .iter()
            .all(|e| !e.fields.iter().any(|f| f == "event"))
    );
    for e in &events {
        let j = e.json();
        if j["type"] == "resync" {
            assert!(e.id.is_none(), "resync has no id");
        } else {
            assert_eq!(e.id.as_deref(), Some(j["seq_no"].to_string().as_str()));
        }
    }

    // ?since=N replays every later line in order, without a resync.
    let since = line["seq_no"].as_u64().unwrap() - 1;
    let (status, replay) = sse(
        &server.base,
        &format!("/events?since={since}"),
        None,
        Duration::from_secs(5),
        |e| e.len() >= 2,
    );
    assert_eq!(status, 200);
    let types: Vec<String> = replay
        .iter()
        .map(|e| e.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(types[0], "provider_changed", "{types:?}");
    assert_eq!(types[1], "snapshot", "{types:?}");
    let seqs: Vec<u64> = replay
        .iter()
        .map(|e| e.json()["seq_no"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs[0], since + 1);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // A reconnecting EventSource's `Last-Event-ID` works like `since`.
    let last_id = since.to_string();
    let (status, resumed) = sse_with(
        &server.base,
        "/events",
        None,
        &[("Last-Event-ID", last_id.as_str())],
        Duration::from_secs(5),
        |e| !e.is_empty(),
    );
    assert_eq!(status, 200);
    assert_eq!(resumed[0].json()["type"], "provider_changed", "{resumed:?}");

    // A since the history cannot serve (another run's number): resync.
    let (status, resync) = sse(
        &server.base,
        "/events?since=999999",
        None,
        Duration::from_secs(5),
        |e| e.len() >= 2,
    );
    assert_eq!(status, 200);
    assert_eq!(resync[0].json()["type"], "resync");
    assert!(resync[0].id.is_none());
    assert_eq!(resync[1].json()["type"], "snapshot");
    assert_eq!(resync[1].json()["provider_id"], "b");
    let (status, _) = sse(
        &server.base,
        "/events?since=x",
        None,
        Duration::from_secs(2),
        |_| true,
    );
    assert_eq!(status, 400);

    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn sighup_reloads_a_valid_store_and_keeps_serving_on_an_invalid_one() {
    let sb = Sandbox::new();
    two_providers(&sb);
    // A short cooldown, so the fail-back to a new higher priority comes
    // within the test's patience.
    let policy = sb.path("policy.json");
    std::fs::write(
        &policy,
        r#"{"cooldown":"1s","timeout":"3s","shrink_confirm":"1s"}"#,
    )
    .unwrap();
    let policy = policy.display().to_string();
    let server = AdminServer::start_with(&sb, None, &["--policy", &policy]);
    server.wait_for("/readyz", |a| a.status == 200);
    assert_eq!(server.provider_ids(), ["a", "b"]);

    // Valid: `a` goes, `z` (priority 30) comes and becomes active. Its
    // view keeps b's member (a view that drops most published members is a
    // suspicious shrink: its fail-back would wait for `shrink_confirm` too).
    sb.write_store(concat!(
        r#"{"id":"z","kind":"in_memory","priority":30,"watch":{"members":[{"id":"n2","host":"127.0.0.1","port":4001},{"id":"n9","host":"127.0.0.1","port":4009}]},"enabled":true}"#,
        "\n",
        r#"{"id":"b","kind":"in_memory","priority":10,"watch":{"members":[{"id":"n2","host":"127.0.0.1","port":4001}]},"enabled":true}"#,
        "\n"
    ));
    server.signal("HUP");
    let moved = server.wait_for("/topology", |t| t.json()["provider_id"] == "z");
    assert_eq!(moved.json()["provider_id"], "z", "{}", server.stderr());
    assert_eq!(server.provider_ids(), ["z", "b"]);
    assert!(
        server.stderr().contains("SIGHUP: reloaded 2 providers"),
        "{}",
        server.stderr()
    );

    // Invalid: reported with its line, the running set is kept.
    sb.write_store("{\"id\":\"z\",\"kind\":\"in_memory\",\"prioirty\":30}\n");
    server.signal("HUP");
    let started = std::time::Instant::now();
    while !server.stderr().contains("reload refused") && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = server.stderr();
    assert!(
        stderr.contains(r#"error[invalid_config]: providers.jsonl:1: unknown field "prioirty" (SIGHUP: reload refused, the running set is kept)"#),
        "{stderr}"
    );
    assert_eq!(server.provider_ids(), ["z", "b"]);
    assert_eq!(
        server.call("GET", "/topology", "").json()["provider_id"],
        "z"
    );
    let health = send("GET", &server.base, "/healthz", None, "");
    assert_eq!(health.status, 200);
    let value: Value = server.call("GET", "/readyz", "").json();
    assert_eq!(value["ready"], true);
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}
