//! Secrets stay where the operator put them (CONTRACTS §4a rule 3), against
//! the running binary: a descriptor sent to `POST /providers` may reference
//! only `env:PROVISIONING_*`, the variables named by `--allow-env` and
//! files inside `--secrets-dir`; the environment's Consul credentials go
//! only to `CONSUL_HTTP_ADDR`. Loopback listeners stand in for the caller's
//! exfiltration endpoint and record every request head they receive.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admin_server::AdminServer;
use super::http_client::Answer;
use super::support::{LOCAL_N1, Sandbox, closed_port};

/// The binary's `$HOME` in these tests, so a leak is recognisable.
const HOME_CANARY: &str = "cnry-home-1b2d3f5a";
/// Content of a file outside the secrets directory.
const VICTIM_CANARY: &str = "cnry-victim-7c9e0a2b";
const PREFIXED: &str = "cnry-prefixed-4d6f8a0c";
const FLAGGED: &str = "cnry-flagged-2e4a6c8e";
const IN_FILE: &str = "cnry-in-file-9b1d3f5a";
const AMBIENT: &str = "cnry-ambient-5a7c9e1b";

/// A loopback HTTP server answering like a Consul agent with an empty
/// service (slowly, to keep the watch loops quiet), recording every
/// request head.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<String>>,
}

impl Recorder {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(String::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(stream);
                    let mut head = String::new();
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    record.lock().expect("record").push_str(&head);
                    std::thread::sleep(Duration::from_millis(200));
                    let body = if head.contains("/v1/status/leader") {
                        "\"127.0.0.1:8300\""
                    } else {
                        "[]"
                    };
                    let _ = reader.into_inner().write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 7\r\nX-Consul-KnownLeader: true\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    );
                });
            }
        });
        Self { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> String {
        self.seen.lock().expect("seen").clone()
    }

    /// Whether a request carried `X-Consul-Token: token`.
    fn got_token(&self, token: &str) -> bool {
        self.seen()
            .lines()
            .any(|l| l.to_ascii_lowercase() == format!("x-consul-token: {token}"))
    }
}

fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check().then(|| started.elapsed())
}

/// A consul descriptor to `endpoint`, watching its own service.
fn consul(id: &str, priority: u32, endpoint: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{id}","kind":"consul","priority":{priority},"endpoints":["{endpoint}"]{extra},"watch":{{"service":"svc-{id}","wait":"1s"}}}}"#
    )
}

fn token(reference: &str) -> String {
    format!(r#","auth":{{"token":"{reference}"}}"#)
}

fn code(answer: &Answer) -> String {
    answer.json()["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn env_home_and_escaping_files_are_refused_and_the_listener_hears_nothing() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n"));
    let outside = tempfile::tempdir().expect("outside");
    let victim = outside.path().join("victim");
    std::fs::write(&victim, VICTIM_CANARY).expect("victim");
    std::os::unix::fs::symlink(&victim, sb.path("escape")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), sb.path("escape-dir")).expect("symlink");
    std::fs::write(sb.path("token"), format!("{IN_FILE}\n")).expect("token");
    let listener = Recorder::start();
    let server = AdminServer::start_serving(
        &sb,
        None,
        &["--allow-env", "OPERATOR_TOKEN"],
        &[
            ("HOME", HOME_CANARY),
            ("PROVISIONING_CONSUL_TOKEN", PREFIXED),
            ("OPERATOR_TOKEN", FLAGGED),
            ("CONSUL_HTTP_TOKEN", AMBIENT),
        ],
    );
    let store_before = std::fs::read(sb.store()).expect("store");
    let providers_before = server.provider_ids();
    let url = listener.url();
    let victim_ref = format!("file:{}", victim.display());

    let refused = [
        ("auth.token", token("env:HOME"), "env:HOME"),
        ("auth.token", token("env:PATH"), "env:PATH"),
        (
            "auth.token",
            token("env:CONSUL_HTTP_TOKEN"),
            "env:CONSUL_HTTP_TOKEN",
        ),
        (
            "auth.token",
            token("file:../../etc/passwd"),
            "file:../../etc/passwd",
        ),
        ("auth.token", token("file:/etc/passwd"), "file:/etc/passwd"),
        ("auth.token", token(&victim_ref), victim_ref.as_str()),
        ("auth.token", token("file:escape"), "file:escape"),
        (
            "auth.token",
            token("file:escape-dir/victim"),
            "file:escape-dir/victim",
        ),
        (
            "auth.password",
            r#","auth":{"username":"env:PROVISIONING_CONSUL_TOKEN","password":"env:HOME"}"#
                .to_owned(),
            "env:HOME",
        ),
        (
            "tls.key",
            r#","tls":{"cert":"cert.pem","key":"file:/etc/hostname"}"#.to_owned(),
            "file:/etc/hostname",
        ),
    ];
    for (i, (field, extra, reference)) in refused.iter().enumerate() {
        let body = consul(&format!("evil-{i}"), 100 + i as u32, &url, extra);
        let answer = server.call("POST", "/providers", &body);
        println!("{reference} in {field}: {} {}", answer.status, answer.body);
        assert_eq!(answer.status, 400, "{reference}: {answer:?}");
        assert_eq!(code(&answer), "forbidden_secret_ref", "{reference}");
        let message = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(&format!("field \"{field}\"")), "{message}");
        assert!(message.contains(reference), "{message}");
        for canary in [HOME_CANARY, VICTIM_CANARY, AMBIENT] {
            assert!(!answer.body.contains(canary), "{canary} in {answer:?}");
        }
        assert_eq!(
            std::fs::read(sb.store()).expect("store"),
            store_before,
            "{reference}: the store changed"
        );
    }
    assert_eq!(server.provider_ids(), providers_before);
    // Nothing was started, so nothing connects: give a provider that slipped
    // through time to dial.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(listener.seen(), "", "the listener was contacted");

    // Positive controls: what the operator allowed still works, and is sent.
    for (i, (reference, value)) in [
        ("env:PROVISIONING_CONSUL_TOKEN", PREFIXED),
        ("env:OPERATOR_TOKEN", FLAGGED),
        ("file:token", IN_FILE),
    ]
    .into_iter()
    .enumerate()
    {
        let body = consul(&format!("ok-{i}"), 200 + i as u32, &url, &token(reference));
        let answer = server.call("POST", "/providers", &body);
        assert_eq!(answer.status, 201, "{reference}: {answer:?}");
        let took = wait_until(Duration::from_secs(15), || listener.got_token(value));
        println!("{reference}: 201, its value reached the listener after {took:?}");
        assert!(
            took.is_some(),
            "{reference} was never sent: {}",
            listener.seen()
        );
    }
    let seen = listener.seen();
    for canary in [HOME_CANARY, VICTIM_CANARY, AMBIENT] {
        assert!(!seen.contains(canary), "{canary} reached the listener");
    }
    assert!(!server.stderr().contains(HOME_CANARY));
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn the_secrets_directory_is_the_flag_s_when_given() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n"));
    std::fs::create_dir(sb.path("secrets")).expect("secrets dir");
    std::fs::write(sb.path("secrets/token"), IN_FILE).expect("token");
    std::fs::write(sb.path("beside"), VICTIM_CANARY).expect("beside");
    std::os::unix::fs::symlink("../beside", sb.path("secrets/link")).expect("symlink");
    let listener = Recorder::start();
    let secrets = sb.path("secrets").display().to_string();
    let server = AdminServer::start_serving(&sb, None, &["--secrets-dir", &secrets], &[]);
    let url = listener.url();
    for (i, reference) in ["file:beside", "file:secrets/link", "file:secrets/../beside"]
        .into_iter()
        .enumerate()
    {
        let answer = server.call(
            "POST",
            "/providers",
            &consul(&format!("out-{i}"), 10 + i as u32, &url, &token(reference)),
        );
        assert_eq!(answer.status, 400, "{reference}: {answer:?}");
        assert_eq!(code(&answer), "forbidden_secret_ref");
    }
    let absolute = format!("file:{secrets}/token");
    for (i, reference) in ["file:secrets/token", absolute.as_str()]
        .into_iter()
        .enumerate()
    {
        let answer = server.call(
            "POST",
            "/providers",
            &consul(&format!("in-{i}"), 20 + i as u32, &url, &token(reference)),
        );
        assert_eq!(answer.status, 201, "{reference}: {answer:?}");
    }
    let took = wait_until(Duration::from_secs(15), || listener.got_token(IN_FILE));
    println!("file:secrets/token reached the listener after {took:?}");
    assert!(took.is_some(), "{}", listener.seen());
    assert!(!listener.seen().contains(VICTIM_CANARY));
    assert_eq!(server.stop().code, Some(0));

    // A secrets directory that is not one is refused before anything runs.
    let run = sb.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--secrets-dir",
        "/surely/not/here",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.error_line()
            .starts_with("error[invalid_argument]: --secrets-dir"),
        "{run:?}"
    );
}

#[test]
fn the_ambient_consul_token_goes_only_to_consul_http_addr() {
    let sb = Sandbox::new();
    let ambient = Recorder::start();
    let other = Recorder::start();
    // The operator's own store line to the other listener: no token either.
    sb.write_store(&format!(
        "{LOCAL_N1}\n{}\n",
        consul("from-store", 30, &other.url(), "").replace("}}", r#"},"enabled":true}"#)
    ));
    let addr = format!("127.0.0.1:{}", ambient.port);
    let server = AdminServer::start_serving(
        &sb,
        None,
        &[],
        &[
            ("CONSUL_HTTP_ADDR", addr.as_str()),
            ("CONSUL_HTTP_TOKEN", AMBIENT),
        ],
    );
    let to_other = server.call(
        "POST",
        "/providers",
        &consul("to-other", 40, &other.url(), ""),
    );
    assert_eq!(to_other.status, 201, "{to_other:?}");
    let to_ambient = server.call(
        "POST",
        "/providers",
        &consul("to-ambient", 50, &ambient.url(), ""),
    );
    assert_eq!(to_ambient.status, 201, "{to_ambient:?}");
    let took = wait_until(Duration::from_secs(15), || ambient.got_token(AMBIENT));
    println!("CONSUL_HTTP_ADDR received CONSUL_HTTP_TOKEN after {took:?}");
    assert!(took.is_some(), "{}", ambient.seen());
    let both = wait_until(Duration::from_secs(15), || {
        let seen = other.seen();
        seen.contains("svc-from-store") && seen.contains("svc-to-other")
    });
    assert!(
        both.is_some(),
        "the other listener was not watched: {}",
        other.seen()
    );
    // Let more requests through before looking.
    std::thread::sleep(Duration::from_secs(2));
    let seen = other.seen();
    println!(
        "the other listener received {} requests, none with the token",
        seen.matches("GET ").count()
    );
    assert!(!seen.contains(AMBIENT), "the ambient token left: {seen}");
    assert!(
        server.stderr().contains("not CONSUL_HTTP_ADDR"),
        "the operator is told: {}",
        server.stderr()
    );
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn consul_http_ssl_verify_false_is_a_warning() {
    let sb = Sandbox::new();
    sb.write_store(&format!(
        "{}\n",
        consul(
            "tls-off",
            1,
            &format!("https://127.0.0.1:{}", closed_port()),
            ""
        )
        .replace("}}", r#"},"enabled":true}"#)
    ));
    let run = |verify: Option<&str>| {
        let mut cmd = sb.command(&["validate", "--connect"]);
        if let Some(value) = verify {
            cmd.env("CONSUL_HTTP_SSL_VERIFY", value);
        }
        super::support::run_with_limit(cmd, Duration::from_secs(60))
    };
    let off = run(Some("false"));
    assert_eq!(off.code, Some(3), "{off:?}");
    let warning = off
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("CONSUL_HTTP_SSL_VERIFY=false"))
        .unwrap_or_else(|| panic!("no warning: {}", off.stderr));
    println!("{warning}");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("not verified"), "{warning}");
    for quiet in [run(Some("true")), run(None)] {
        assert_eq!(quiet.code, Some(3), "{quiet:?}");
        assert!(!quiet.stderr.contains("not verified"), "{quiet:?}");
    }
}
