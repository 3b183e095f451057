//! The admin surface against hostile requests (issue 14): loopback by
//! default, every non-probe route refused without the token before any body
//! is read, malformed bodies answered 400 with a code and no change to the
//! running set or the store, and a store file only its owner can read.
//! (The per-route 401 matrix and the 64 KiB limit are in `serve.rs`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;

use super::admin_server::AdminServer;
use super::http_client::Answer;
use super::support::{Sandbox, run_with_limit};

const TOKEN: &str = "adm1n-t0ken-canary";

fn one_provider(sb: &Sandbox) {
    sb.write_store(concat!(
        r#"{"id":"a","kind":"in_memory","priority":20,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        "\n",
    ));
}

/// One request with raw bytes as the body (the shared client sends text
/// only) and arbitrary extra headers; reads the whole answer.
fn raw(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer and close before it has read a large body.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn code_of(answer: &Answer) -> String {
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {answer:?}"));
    assert!(body["error"].is_string(), "{body}");
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// What the admin API says is configured (ids, priorities, enabled) and
/// the served topology hash.
fn observable_state(server: &AdminServer) -> (Vec<(String, u64, bool)>, String) {
    let providers = server.call("GET", "/providers", "");
    assert_eq!(providers.status, 200, "{providers:?}");
    let list = providers.json();
    let set = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["priority"].as_u64().unwrap_or(u64::MAX),
                p["enabled"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let topology = server.call("GET", "/topology", "");
    (set, topology.json()["hash"].to_string())
}

#[test]
fn malformed_bodies_get_400_with_a_code_and_change_nothing() {
    let sb = Sandbox::new();
    one_provider(&sb);
    let server = AdminServer::start(&sb, Some(TOKEN));
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let store_before = std::fs::read(sb.store()).expect("store");
    let state_before = observable_state(&server);

    let nested = "[".repeat(60_000);
    let provider_bodies: Vec<&[u8]> = vec![
        b"",
        b"{",
        b"null",
        b"[]",
        b"\"a\"",
        b"42",
        b"{}",
        b"\xff\xfe\x00",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":5}trailing",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":5,\"priority\":6}",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":1e400}",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":-5}",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":4294967296}",
        b"{\"id\":\"../../etc/passwd\",\"kind\":\"in_memory\",\"priority\":5}",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":5,\"enabled\":\"yes\"}",
        b"{\"id\":\"b\",\"kind\":\"rm -rf\",\"priority\":5}",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":5,\"watch\":{\"members\":[{\"id\":\"x\",\"host\":\"h\",\"port\":65536}]}}",
        b"{\"id\":\"b\",\"kind\":\"consul\",\"priority\":5,\"endpoints\":[\"http://127.0.0.1:8500\"],\"auth\":{\"token\":\"inline-secret\"},\"watch\":{\"service\":\"s\"}}",
        b"{\"id\":\"b\",\"kind\":\"in_memory\",\"priority\":5,\"id\":\"c\"}",
        b"{\"id\":\"b\\u0000\",\"kind\":\"in_memory\",\"priority\":5}",
        nested.as_bytes(),
    ];
    for body in provider_bodies {
        let answer = raw(
            &server.base,
            "POST",
            "/providers",
            &[
                ("Authorization", &bearer()),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        assert_eq!(answer.status, 400, "POST /providers {shown:?}: {answer:?}");
        let code = code_of(&answer);
        assert!(
            ["invalid_argument", "invalid_config", "inline_secret"].contains(&code.as_str()),
            "POST /providers {shown:?}: code {code:?}"
        );
    }

    let failover_bodies: Vec<&[u8]> = vec![
        b"",
        b"{",
        b"null",
        b"[]",
        b"{\"to\":1}",
        b"{\"to\":[\"a\"]}",
        b"{\"to\":\"a\",\"extra\":true}",
        b"{\"TO\":\"a\"}",
        b"\xff",
        nested.as_bytes(),
    ];
    for body in failover_bodies {
        let answer = raw(
            &server.base,
            "POST",
            "/failover",
            &[
                ("Authorization", &bearer()),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        assert_eq!(answer.status, 400, "POST /failover {shown:?}: {answer:?}");
        assert_eq!(
            code_of(&answer),
            "invalid_argument",
            "POST /failover {shown:?}"
        );
    }

    // A body over the limit is refused whatever it holds, and nothing is
    // read past the limit.
    let huge = vec![b'{'; 4 * 1024 * 1024];
    let answer = raw(
        &server.base,
        "POST",
        "/providers",
        &[
            ("Authorization", &bearer()),
            ("Content-Type", "application/json"),
        ],
        &huge,
    );
    assert_eq!(
        (answer.status, code_of(&answer).as_str()),
        (413, "payload_too_large")
    );

    assert_eq!(
        observable_state(&server),
        state_before,
        "the running set changed"
    );
    assert_eq!(
        std::fs::read(sb.store()).expect("store"),
        store_before,
        "the store changed"
    );
    // The service is still fine, and a valid body still works afterwards.
    let ok = server.call(
        "POST",
        "/providers",
        r#"{"id":"b","kind":"in_memory","priority":5}"#,
    );
    assert_eq!(ok.status, 201, "{ok:?}");
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Method, path, extra headers, body.
type Attempt<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8]);

#[test]
fn without_the_token_nothing_is_read_or_changed() {
    let sb = Sandbox::new();
    one_provider(&sb);
    let server = AdminServer::start(&sb, Some(TOKEN));
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let store_before = std::fs::read(sb.store()).expect("store");
    let valid = br#"{"id":"b","kind":"in_memory","priority":5}"#;
    let huge = vec![b'x'; 1024 * 1024];
    let basic = format!("Basic {TOKEN}");
    let lower = format!("bearer{TOKEN}");
    let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let longer = format!("Bearer {TOKEN}x");
    let in_query = format!("/providers?token={TOKEN}");
    let attempts: Vec<Attempt<'_>> = vec![
        ("POST", "/providers", vec![], valid),
        ("POST", "/providers", vec![], &huge),
        ("POST", "/providers", vec![], b"{"),
        ("POST", &in_query, vec![], valid),
        ("POST", "/providers", vec![("Authorization", &basic)], valid),
        ("POST", "/providers", vec![("Authorization", &lower)], valid),
        (
            "POST",
            "/providers",
            vec![("Authorization", &prefix)],
            valid,
        ),
        (
            "POST",
            "/providers",
            vec![("Authorization", &longer)],
            valid,
        ),
        (
            "POST",
            "/providers",
            vec![("Authorization", "Bearer ")],
            valid,
        ),
        ("POST", "/providers", vec![("X-Token", TOKEN)], valid),
        ("DELETE", "/providers/a", vec![], b""),
        ("POST", "/failover", vec![], br#"{"to":null}"#),
        ("GET", "/providers", vec![], b""),
        ("GET", "/topology", vec![], b""),
        ("GET", "/metrics", vec![], b""),
        ("GET", "/events", vec![], b""),
        ("GET", "/", vec![], b""),
        ("GET", "/nope", vec![], b""),
    ];
    for (method, path, headers, body) in attempts {
        let answer = raw(&server.base, method, path, &headers, body);
        assert_eq!(
            (answer.status, code_of(&answer).as_str()),
            (401, "unauthorized"),
            "{method} {path} {headers:?}"
        );
        assert!(!answer.body.contains(TOKEN), "the answer echoes the token");
    }
    assert_eq!(
        std::fs::read(sb.store()).expect("store"),
        store_before,
        "the store changed"
    );
    let list = server.call("GET", "/providers", "").json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    // Probes stay open without the token.
    assert_eq!(raw(&server.base, "GET", "/healthz", &[], b"").status, 200);
    assert_eq!(raw(&server.base, "GET", "/readyz", &[], b"").status, 200);
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stderr.contains(TOKEN), "the token is never printed");
}

#[test]
fn serve_listens_on_loopback_by_default() {
    let sb = Sandbox::new();
    one_provider(&sb);
    // Without --listen: either it serves on 127.0.0.1:9464 or (when another
    // process holds that port) it fails naming that address; both show the
    // default, and neither binds a public interface.
    let mut child = sb.command(&["serve"]).spawn().expect("spawn serve");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            first.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&first).into_owned());
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    super::support::signal(&child, "TERM");
    let run = super::support::finish(child, std::time::Instant::now(), Duration::from_secs(15));
    let said = format!("{first}\n{}", run.stderr);
    assert!(
        said.contains("127.0.0.1:9464"),
        "the default address is loopback 127.0.0.1:9464: {said}"
    );
    assert!(!said.contains("0.0.0.0"), "{said}");
}

#[test]
fn the_store_file_is_readable_by_its_owner_only() {
    let sb = Sandbox::new();
    let added = run_with_limit(
        sb.command(&[
            "providers",
            "add",
            "in_memory",
            "--id",
            "a",
            "--priority",
            "1",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(added.code, Some(0), "{added:?}");
    let mode = std::fs::metadata(sb.store())
        .expect("store")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "store written by the CLI has mode {mode:o}");

    // A store an operator created world-readable is tightened by the next
    // save through the admin API.
    std::fs::set_permissions(sb.store(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let server = AdminServer::start(&sb, None);
    let created = server.call(
        "POST",
        "/providers",
        r#"{"id":"b","kind":"in_memory","priority":5}"#,
    );
    assert_eq!(created.status, 201, "{created:?}");
    let mode = std::fs::metadata(sb.store())
        .expect("store")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "store written by serve has mode {mode:o}");
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn tls_verification_is_off_only_with_an_explicit_false() {
    let sb = Sandbox::new();
    one_provider(&sb);
    let server = AdminServer::start(&sb, None);
    let consul = |id: &str, priority: u32, tls: &str| {
        format!(
            r#"{{"id":"{id}","kind":"consul","priority":{priority},"endpoints":["https://127.0.0.1:8501"],"tls":{tls},"watch":{{"service":"app-{id}"}},"enabled":false}}"#
        )
    };
    for (i, tls) in [
        r#"{"verify":"false"}"#,
        r#"{"verify":0}"#,
        r#"{"verify":null}"#,
        r#"{"verify":"no"}"#,
        r#"{"verfy":false}"#,
        r#"{"insecure":true}"#,
        r#"false"#,
    ]
    .into_iter()
    .enumerate()
    {
        let answer = server.call(
            "POST",
            "/providers",
            &consul(&format!("c{i}"), 40 + i as u32, tls),
        );
        assert_eq!(answer.status, 400, "tls {tls}: {answer:?}");
    }
    // etcd's client cannot switch verification off at all.
    let etcd = server.call(
        "POST",
        "/providers",
        r#"{"id":"e","kind":"etcd","priority":60,"endpoints":["https://127.0.0.1:2379"],"tls":{"verify":false},"watch":{"prefix":"/a/"},"enabled":false}"#,
    );
    assert_eq!(etcd.status, 400, "{etcd:?}");

    // Omitted: on, and stored without the key; explicit false: stored.
    assert_eq!(
        server
            .call("POST", "/providers", &consul("on", 70, "{}"))
            .status,
        201
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/providers",
                &consul("off", 71, r#"{"verify":false}"#)
            )
            .status,
        201
    );
    let stored = std::fs::read_to_string(sb.store()).expect("store");
    let line = |id: &str| {
        stored
            .lines()
            .find(|l| l.contains(&format!(r#""id":"{id}""#)))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(!line("on").contains("verify"), "{stored}");
    assert!(line("off").contains(r#""verify":false"#), "{stored}");
    assert_eq!(server.stop().code, Some(0));
}
