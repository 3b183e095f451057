//! Secrets never leak (issue 14): canary secret values for every backend
//! (Consul token from the environment, Kubernetes token from a file that is
//! rotated mid-run, etcd username and password from the environment) and
//! for the admin token, TRACE-level logging, and every command that touches
//! them — `validate`, `validate --connect`, `providers list`, an inline
//! secret refused by `providers add` and by `POST /providers`, `watch`, and
//! `serve` through connect, failure, reconnect and a SIGHUP reload against
//! fake backends that succeed, answer 500 and drop connections. Every output
//! (stdout, stderr, the admin API's `/providers`, `/topology`, `/events`,
//! `/metrics`, the status page, error bodies, every file written next to the
//! store) is searched: no canary appears. The fakes record what they
//! received, so the test also proves the secrets were really used.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http_client::{send, sse};
use super::support::{Run, Sandbox, finish, run_with_limit, signal};

const CONSUL_TOKEN: &str = "cnry-consul-7f3a91d0";
const K8S_TOKEN: &str = "cnry-k8s-b2c4d6e8";
const K8S_TOKEN_ROTATED: &str = "cnry-k8s-rotated-13579";
const ETCD_USER: &str = "cnry-etcd-user-5e8f";
const ETCD_PASS: &str = "cnry-etcd-pass-9a1b";
const ADMIN_TOKEN: &str = "cnry-admin-0c2e4a6b";
const INLINE: &str = "cnry-inline-d4d4d4";

const CANARIES: &[&str] = &[
    CONSUL_TOKEN,
    K8S_TOKEN,
    K8S_TOKEN_ROTATED,
    ETCD_USER,
    ETCD_PASS,
    ADMIN_TOKEN,
    INLINE,
];

/// How a fake backend answers its n-th request.
type Answer = fn(usize, &str) -> Option<String>;

/// A loopback HTTP/1.1 server that records every request head and answers
/// through `answer` (`None`: drop the connection unanswered).
struct FakeBackend {
    port: u16,
    seen: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBackend {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let n = count.fetch_add(1, Ordering::Relaxed);
                        let seen = seen2.clone();
                        std::thread::spawn(move || serve_one(stream, n, answer, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> String {
        self.seen.lock().expect("seen").clone()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(stream: TcpStream, n: usize, answer: Answer, seen: &Mutex<String>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let end = line == "\r\n";
                head.push_str(&line);
                if end {
                    break;
                }
            }
        }
    }
    seen.lock().expect("seen").push_str(&head);
    // Pace the backend so TRACE logs stay small.
    std::thread::sleep(Duration::from_millis(150));
    let mut stream = reader.into_inner();
    if let Some(response) = answer(n, &head) {
        let _ = stream.write_all(response.as_bytes());
    }
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// Consul: a good answer, then a 500, then a dropped connection, in turn.
fn consul_answer(n: usize, _head: &str) -> Option<String> {
    match n % 3 {
        0 => Some(http(
            "200 OK",
            &format!(
                "X-Consul-Index: {}\r\nX-Consul-KnownLeader: true\r\nX-Consul-LastContact: 0\r\n",
                n + 1
            ),
            r#"[{"Node":{"Node":"n1","Address":"127.0.0.1"},"Service":{"ID":"app-1","Service":"app","Address":"","Port":4100},"Checks":[]}]"#,
        )),
        1 => Some(http(
            "500 Internal Server Error",
            "",
            "rpc error: no leader",
        )),
        _ => None,
    }
}

/// Kubernetes: lists succeed (an empty pod list), watches fail with a 500
/// or a dropped connection.
fn k8s_answer(n: usize, head: &str) -> Option<String> {
    if head.contains("watch=true") || head.contains("watch=1") {
        return n.is_multiple_of(2).then(|| {
            http(
                "500 Internal Server Error",
                "",
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: leader changed","code":500}"#,
            )
        });
    }
    Some(http(
        "200 OK",
        "",
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}"#,
    ))
}

/// etcd speaks gRPC: every connection is dropped (connect failures and
/// reconnects).
fn etcd_answer(_n: usize, _head: &str) -> Option<String> {
    None
}

/// A process whose stdout and stderr are collected in full.
struct Collected {
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Collected {
    fn spawn(mut cmd: std::process::Command) -> Self {
        let mut child = cmd.spawn().expect("spawn");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, err) = (stdout.clone(), stderr.clone());
        let mut out_pipe = child.stdout.take().expect("stdout");
        let mut err_pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || pump(&mut out_pipe, &out));
        std::thread::spawn(move || pump(&mut err_pipe, &err));
        Self {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout").clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }
}

impl Drop for Collected {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pump(pipe: &mut impl Read, into: &Mutex<String>) {
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => into
                .lock()
                .expect("sink")
                .push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

fn with_secrets(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let mut cmd = sb.command(args);
    cmd.env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .env("CANARY_CONSUL", CONSUL_TOKEN)
        .env("CANARY_ETCD_USER", ETCD_USER)
        .env("CANARY_ETCD_PASS", ETCD_PASS);
    cmd
}

fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

#[test]
fn canary_secrets_never_appear_in_any_output() {
    let sb = Sandbox::new();
    let consul = FakeBackend::start(consul_answer);
    let k8s = FakeBackend::start(k8s_answer);
    let etcd = FakeBackend::start(etcd_answer);
    std::fs::write(sb.path("k8s-token"), format!("{K8S_TOKEN}\n")).expect("k8s token");
    std::fs::write(sb.path("admin-token"), format!("{ADMIN_TOKEN}\n")).expect("admin token");
    sb.write_store(&format!(
        concat!(
            r#"{{"id":"local","kind":"in_memory","priority":0,"watch":{{"members":[{{"id":"n1","host":"127.0.0.1","port":4000}}]}},"enabled":true}}"#,
            "\n",
            r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{consul}"],"auth":{{"token":"env:CANARY_CONSUL"}},"watch":{{"service":"app","wait":"1s"}},"enabled":true}}"#,
            "\n",
            r#"{{"id":"k8s","kind":"k8s","priority":30,"endpoints":["{k8s}"],"auth":{{"token":"file:k8s-token"}},"watch":{{"namespace":"default","resource":"pods","label_selector":"app=actors"}},"enabled":true}}"#,
            "\n",
            r#"{{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["{etcd}"],"auth":{{"username":"env:CANARY_ETCD_USER","password":"env:CANARY_ETCD_PASS"}},"watch":{{"prefix":"/cluster/app/"}},"enabled":true}}"#,
            "\n",
        ),
        consul = consul.url(),
        k8s = k8s.url(),
        etcd = etcd.url(),
    ));

    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut record_run = |name: &str, run: &Run| {
        outputs.push((format!("{name} stdout"), run.stdout.clone()));
        outputs.push((format!("{name} stderr"), run.stderr.clone()));
    };
    let limit = Duration::from_secs(60);

    let validate = run_with_limit(with_secrets(&sb, &["validate"]), limit);
    assert_eq!(validate.code, Some(0), "{validate:?}");
    record_run("validate", &validate);
    let connect = run_with_limit(with_secrets(&sb, &["validate", "--connect"]), limit);
    assert!(matches!(connect.code, Some(0 | 3)), "{connect:?}");
    record_run("validate --connect", &connect);
    for args in [
        &["providers", "list"][..],
        &["providers", "list", "--json"][..],
    ] {
        let run = run_with_limit(with_secrets(&sb, args), limit);
        assert_eq!(run.code, Some(0), "{run:?}");
        record_run(&args.join(" "), &run);
    }
    let inline = run_with_limit(
        with_secrets(
            &sb,
            &[
                "providers",
                "add",
                "consul",
                "--id",
                "consul-b",
                "--priority",
                "21",
                "--endpoint",
                &consul.url(),
                "--auth-token",
                INLINE,
                "--watch",
                "service=app",
            ],
        ),
        limit,
    );
    assert_eq!(
        inline.code,
        Some(2),
        "an inline secret is refused: {inline:?}"
    );
    assert!(inline.stderr.contains("inline_secret"), "{inline:?}");
    record_run("providers add (inline secret)", &inline);
    let watch = run_with_limit(
        with_secrets(&sb, &["watch", "--json", "--once", "--timeout", "10s"]),
        limit,
    );
    assert_eq!(watch.code, Some(0), "{watch:?}");
    record_run("watch --once", &watch);

    // serve: connect, failures, reconnects, a rotated token, a reload.
    let serve = Collected::spawn(with_secrets(
        &sb,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            "admin-token",
        ],
    ));
    assert!(
        wait_until(Duration::from_secs(30), || serve
            .stdout()
            .contains("http://")),
        "serve did not start: {}",
        serve.stderr()
    );
    let first_line = serve.stdout();
    let base = first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .trim_end_matches('/')
        .to_owned();
    // Every backend was reached with its secret.
    assert!(
        wait_until(Duration::from_secs(20), || consul
            .seen()
            .contains(CONSUL_TOKEN)),
        "Consul never received the token: {}",
        consul.seen()
    );
    assert!(
        wait_until(Duration::from_secs(20), || k8s.seen().contains(K8S_TOKEN)),
        "Kubernetes never received the token: {}",
        k8s.seen()
    );
    assert!(
        wait_until(Duration::from_secs(20), || etcd
            .seen()
            .contains("PRI * HTTP/2.0")),
        "etcd was never dialled: {:?}",
        etcd.seen()
    );
    // Rotate the Kubernetes token: the next reconnect reads the new one.
    std::fs::write(sb.path("k8s-token"), format!("{K8S_TOKEN_ROTATED}\n")).expect("rotate");
    assert!(
        wait_until(Duration::from_secs(30), || k8s
            .seen()
            .contains(K8S_TOKEN_ROTATED)),
        "the rotated token was never used"
    );

    let token = Some(ADMIN_TOKEN);
    let mut answers = Vec::new();
    for path in [
        "/providers",
        "/providers/consul-a",
        "/topology",
        "/metrics",
        "/",
        "/readyz",
    ] {
        answers.push((
            format!("GET {path}"),
            send("GET", &base, path, token, "").body,
        ));
    }
    let leaky = format!(
        r#"{{"id":"consul-c","kind":"consul","priority":22,"endpoints":["{}"],"auth":{{"token":"{INLINE}"}},"watch":{{"service":"app"}}}}"#,
        consul.url()
    );
    let refused = send("POST", &base, "/providers", token, &leaky);
    assert_eq!(refused.status, 400, "{refused:?}");
    answers.push(("POST /providers (inline secret)".into(), refused.body));
    let wrong = send("GET", &base, "/providers", Some(INLINE), "");
    assert_eq!(wrong.status, 401);
    answers.push(("GET /providers (wrong token)".into(), wrong.body));
    signal(serve.child.as_ref().expect("running"), "HUP");
    let (status, events) = sse(&base, "/events", token, Duration::from_secs(4), |_| false);
    assert_eq!(status, 200);
    assert!(!events.is_empty(), "no events");
    answers.push((
        "GET /events".into(),
        events
            .iter()
            .map(|e| e.data.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    ));
    answers.push((
        "GET /metrics (after)".into(),
        send("GET", &base, "/metrics", token, "").body,
    ));

    let mut serve = serve;
    let child = serve.child.take().expect("running");
    signal(&child, "TERM");
    let run = finish(child, Instant::now(), Duration::from_secs(20));
    assert_eq!(run.code, Some(0), "serve exit: {}", serve.stderr());
    // TRACE logging was on: the logs are not empty, so the search means
    // something.
    let serve_log = serve.stderr();
    assert!(
        serve_log.len() > 1000,
        "TRACE logs expected, got {} bytes",
        serve_log.len()
    );
    outputs.push(("serve stdout".into(), serve.stdout()));
    outputs.push(("serve stderr".into(), serve_log));
    outputs.extend(answers);

    // Files next to the store (the store, its lock, any temporary file);
    // the two secret files themselves excepted.
    for entry in std::fs::read_dir(sb.dir.path()).expect("sandbox").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "k8s-token" || name == "admin-token" || !entry.path().is_file() {
            continue;
        }
        let text =
            String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default()).into_owned();
        outputs.push((format!("file {name}"), text));
    }

    let mut leaks = Vec::new();
    for (name, text) in &outputs {
        for canary in CANARIES {
            if let Some(at) = text.find(canary) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(120)
                    .map_or(0, |(i, _)| i);
                let to = (at + canary.len() + 80).min(text.len());
                let to = (to..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(text.len());
                leaks.push(format!("{canary} in {name}: …{}…", &text[from..to]));
            }
        }
    }
    let searched: usize = outputs.iter().map(|(_, t)| t.len()).sum();
    println!(
        "searched {} outputs, {searched} bytes, for {} canaries",
        outputs.len(),
        CANARIES.len()
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
