//! Bounded reads (CONTRACTS §4a rule 4), against the running binary: a
//! descriptor sent to `POST /providers` whose `tls.ca`, `tls.cert` or
//! `file:` secret is a FIFO, a device, a directory or a file over 1 MiB is
//! refused with 400 `invalid_descriptor` within a second, whichever backend
//! would read it, while `GET /healthz` keeps answering; a real CA bundle is
//! still accepted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admin_server::AdminServer;
use super::http_client::send;
use super::support::{LOCAL_N1, Sandbox, closed_port};

/// The contract's bound.
const POLICY: Duration = Duration::from_secs(1);
/// What the test allows: three times the bound plus 2 s.
const MARGIN: Duration = Duration::from_secs(5);

/// A self-signed CA certificate (P-256, valid until 2126).
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUWZ/GyqHTwrevJMJw+lFQSzU5NMgwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUcHJvdmlzaW9uaW5nLXRlc3QtY2EwIBcNMjYxMjA1MjIwMTI2
WhgPMjEyNjExMTEyMjAxMjZaMB8xHTAbBgNVBAMMFHByb3Zpc2lvbmluZy10ZXN0
LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyuqQmePd+AvN02TwWoNqXkEX
4BAe5MNxkR2QgObB4dELpXONfH17RdReAKbscpJDqv9H+WTdvcaTFHM5nf3XTKNT
MFEwHQYDVR0OBBYEFBOGs178kVsC/vR8lSSjp2T15T6AMB8GA1UdIwQYMBaAFBOG
s178kVsC/vR8lSSjp2T15T6AMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SQAwRgIhAMIYaW7fAsVgpRa9ycyAqi64k+WA9+iug9r7JhKd1KCUAiEAzIrLPrjO
bUdcvEUBvYa9K2m6QN2D8ZqgV+hdO5FytSM=
-----END CERTIFICATE-----
";

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `GET /healthz` every 20 ms on its own thread: (answers, non-200s,
/// slowest answer).
struct HealthProbe {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<(usize, usize, Duration)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthProbe {
    fn start(base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new((0, 0, Duration::ZERO)));
        let (base, stop2, stats2) = (base.to_owned(), stop.clone(), stats.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = send("GET", &base, "/healthz", None, "");
                let took = started.elapsed();
                let mut stats = stats2.lock().expect("stats");
                stats.0 += 1;
                if answer.status != 200 {
                    stats.1 += 1;
                }
                stats.2 = stats.2.max(took);
                drop(stats);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            stop,
            stats,
            thread: Some(thread),
        }
    }

    /// Stops after at least `min` answers.
    fn finish(mut self, min: usize) -> (usize, usize, Duration) {
        let started = Instant::now();
        while self.stats.lock().expect("stats").0 < min && started.elapsed() < MARGIN {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("probe thread");
        }
        *self.stats.lock().expect("stats")
    }
}

#[test]
fn fifos_devices_and_large_files_are_refused_within_a_second_while_healthz_answers() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n"));
    mkfifo(&sb.path("ca.fifo"));
    mkfifo(&sb.path("token.fifo"));
    std::fs::write(sb.path("big.pem"), vec![b'A'; 2 << 20]).expect("big");
    std::fs::write(sb.path("ca.pem"), CA_PEM).expect("ca");
    std::fs::create_dir(sb.path("certs")).expect("dir");
    let server = AdminServer::start(&sb, None);
    let store_before = std::fs::read(sb.store()).expect("store");
    let probe = HealthProbe::start(&server.base);
    let https = format!("https://127.0.0.1:{}", closed_port());
    let consul = |id: &str, priority: u32, extra: &str| {
        format!(
            r#"{{"id":"{id}","kind":"consul","priority":{priority},"endpoints":["{https}"]{extra},"watch":{{"service":"svc-{id}"}}}}"#
        )
    };
    let fifo = sb.path("ca.fifo").display().to_string();
    let cases = [
        (
            "consul tls.ca FIFO",
            consul("c1", 11, &format!(r#","tls":{{"ca":"{fifo}"}}"#)),
            "tls.ca",
        ),
        (
            "consul tls.ca 2 MiB",
            consul("c2", 12, r#","tls":{"ca":"big.pem"}"#),
            "tls.ca",
        ),
        (
            "consul tls.ca /dev/zero",
            consul("c3", 13, r#","tls":{"ca":"/dev/zero"}"#),
            "tls.ca",
        ),
        (
            "consul tls.ca directory",
            consul("c4", 14, r#","tls":{"ca":"certs"}"#),
            "tls.ca",
        ),
        (
            "consul tls.cert /dev/zero",
            consul(
                "c5",
                15,
                r#","tls":{"cert":"/dev/zero","key":"file:ca.pem"}"#,
            ),
            "tls.cert",
        ),
        (
            "consul file: secret FIFO",
            consul("c6", 16, r#","auth":{"token":"file:token.fifo"}"#),
            "auth.token",
        ),
        (
            "k8s tls.ca FIFO (read only when it connects)",
            format!(
                r#"{{"id":"k","kind":"k8s","priority":90,"endpoints":["{https}"],"tls":{{"ca":"ca.fifo"}},"watch":{{"label_selector":"app=a"}}}}"#
            ),
            "tls.ca",
        ),
        (
            "etcd tls.ca /dev/zero (read only when it connects)",
            format!(
                r#"{{"id":"e","kind":"etcd","priority":91,"endpoints":["{https}"],"tls":{{"ca":"/dev/zero"}},"watch":{{"prefix":"/a/"}}}}"#
            ),
            "tls.ca",
        ),
    ];
    let mut slowest = Duration::ZERO;
    for (what, body, field) in &cases {
        let started = Instant::now();
        let answer = server.call("POST", "/providers", body);
        let took = started.elapsed();
        slowest = slowest.max(took);
        println!("{what}: {} in {took:?}: {}", answer.status, answer.body);
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
        let json = answer.json();
        assert_eq!(json["code"], "invalid_descriptor", "{what}: {answer:?}");
        let message = json["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("field \"{field}\"")),
            "{what}: {message}"
        );
        assert!(
            !message.contains("AAAA"),
            "{what}: content quoted: {message}"
        );
        assert!(took < MARGIN, "{what} took {took:?} (policy {POLICY:?})");
    }
    assert_eq!(std::fs::read(sb.store()).expect("store"), store_before);

    // Positive control: a real CA bundle, by relative path.
    let started = Instant::now();
    let good = server.call(
        "POST",
        "/providers",
        &consul("good", 17, r#","tls":{"ca":"ca.pem"}"#),
    );
    println!(
        "consul tls.ca ca.pem: {} in {:?}",
        good.status,
        started.elapsed()
    );
    assert_eq!(good.status, 201, "{good:?}");
    assert!(
        std::fs::read_to_string(sb.store())
            .expect("store")
            .contains("\"good\"")
    );

    let (answers, failures, slowest_health) = probe.finish(10);
    println!(
        "refusals: slowest {slowest:?} (policy {POLICY:?}, margin {MARGIN:?}); /healthz meanwhile: {answers} answers, {failures} not 200, slowest {slowest_health:?}"
    );
    assert!(
        answers >= 10 && failures == 0,
        "{answers} answers, {failures} failed"
    );
    assert!(slowest_health < MARGIN, "/healthz took {slowest_health:?}");
    assert_eq!(server.stop().code, Some(0));
}
