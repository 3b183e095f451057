//! CONTRACTS §4a rule 5 against the running binary: a bounded number of
//! connections below the file limit, header and idle timeouts, request
//! bodies and responses the client stopped taking part in, at most 64
//! event streams, and an event client that stops reading dropped — each
//! with a legitimate request that still works.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};
use serde_json::Value;

use super::admin_server::AdminServer;
use super::http_client::{Answer, send, sse};
use super::support::{BIN, Sandbox};

const ONE_PROVIDER: &str = concat!(
    r#"{"id":"a","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
    "\n"
);

fn address(server: &AdminServer) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

fn code_of(answer: &Answer) -> String {
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {answer:?}"));
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// A keep-alive HTTP/1.1 connection (answers with `Content-Length` only).
struct KeepAlive {
    stream: TcpStream,
    host: String,
}

impl KeepAlive {
    fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Self {
            stream,
            host: addr.to_string(),
        }
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.stream.write_all(head.as_bytes()).expect("write");
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            let n = self.stream.read(&mut byte).expect("read head");
            assert_eq!(n, 1, "closed before the answer: {raw:?}");
            raw.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&raw).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .expect("a Content-Length");
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).expect("read body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// How long until the server closes `stream` (EOF or reset), reading and
/// discarding what comes; `None` when it is still open after `limit`.
fn time_to_close(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 65536];
    while since.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(since.elapsed()),
        }
    }
    None
}

/// Open file descriptors of a process.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn idle_clients_never_starve_a_store_write_or_a_backend_reconnect() {
    const FILE_LIMIT: u64 = 1024;
    const IDLE: usize = 1_100;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _entered = runtime.enter();
    let consul = runtime.block_on(FakeConsul::start()).expect("fake consul");
    consul.set_instances(
        "app",
        vec![FakeInstance::new("app", "c1", "127.0.0.1", 5000)],
    );
    // The backend is down when the service starts.
    consul.refuse_connections(true).expect("refuse");

    let sb = Sandbox::new();
    sb.write_store(&format!(
        "{ONE_PROVIDER}{}\n",
        format_args!(
            r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app"}},"enabled":true}}"#,
            consul.url()
        )
    ));
    // Quick reconnects, so the one measured here happens while the idle
    // connections still hold their slots.
    let policy = sb.path("policy.json");
    std::fs::write(
        &policy,
        r#"{"backoff_initial":"200ms","backoff_cap":"500ms","jitter":0.0}"#,
    )
    .expect("policy");
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={FILE_LIMIT}:{FILE_LIMIT}"))
        .arg("--")
        .arg(BIN)
        .current_dir(sb.dir.path())
        .env_remove("PROVISIONING_STORE")
        .env_remove("PROVISIONING_POLICY")
        .env_remove("RUST_LOG")
        .arg("--store")
        .arg(sb.store())
        .arg("--policy")
        .arg(&policy)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = AdminServer::spawn(command, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    assert!(
        server
            .stderr()
            .contains("at most 896 concurrent connections (open-file limit 1024)"),
        "{}",
        server.stderr()
    );
    let addr = address(&server);
    let pid = server.pid();

    // The operator's connection, open before the flood.
    let mut operator = KeepAlive::open(addr);
    assert_eq!(operator.call("GET", "/healthz", "").status, 200);
    let before = open_files(pid);

    let flood_started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    let mut refused = 0;
    for _ in 0..IDLE {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(stream) => idle.push(stream),
            Err(_) => refused += 1,
        }
    }
    // A newcomer waits in the backlog until idle connections are cut.
    let newcomer = {
        let base = server.base.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let answer = send("GET", &base, "/healthz", None, "");
            (answer.status, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let during = open_files(pid);
    println!(
        "{} idle connections opened in {:?} ({refused} failed); server descriptors: {before} before, {during} during (limit {FILE_LIMIT})",
        idle.len(),
        flood_started.elapsed()
    );
    assert_eq!(refused, 0);
    assert!(
        during >= before + 850,
        "the flood did not reach the server: {during} descriptors"
    );

    // A store write.
    let store_before = std::fs::read_to_string(sb.store()).expect("store");
    let created = operator.call(
        "POST",
        "/providers",
        r#"{"id":"b","kind":"in_memory","priority":5}"#,
    );
    let write_at = flood_started.elapsed();
    assert_eq!(created.status, 201, "{created:?}");
    let store_after = std::fs::read_to_string(sb.store()).expect("store");
    assert!(
        store_after != store_before && store_after.contains(r#""id":"b""#),
        "{store_after}"
    );

    // A backend reconnect.
    consul.refuse_connections(false).expect("listen again");
    let healthy = loop {
        let list = operator.call("GET", "/providers", "").json();
        let consul_view = list
            .as_array()
            .and_then(|l| l.iter().find(|p| p["id"] == "consul-a").cloned())
            .unwrap_or(Value::Null);
        if consul_view["health"] == "healthy" {
            break flood_started.elapsed();
        }
        assert!(
            flood_started.elapsed() < Duration::from_secs(30),
            "consul-a never recovered: {consul_view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "during the flood: store write answered 201 at {write_at:?}, backend healthy again at {healthy:?} after the flood began"
    );
    // Both happened while the idle connections held every slot (the first
    // ones are cut 10 s after their accept).
    assert!(write_at < Duration::from_secs(8), "{write_at:?}");
    assert!(healthy < Duration::from_secs(8), "{healthy:?}");

    let (status, waited) = newcomer.join().expect("newcomer");
    println!("a request sent during the flood was answered {status} after {waited:?}");
    assert_eq!(status, 200);

    drop(idle);
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        !run.stderr.contains("Too many open files"),
        "{}",
        run.stderr
    );
    drop(consul);
}

#[test]
fn request_headers_must_arrive_within_10_s() {
    let sb = Sandbox::new();
    sb.write_store(ONE_PROVIDER);
    let server = AdminServer::start(&sb, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let addr = address(&server);
    let limit = Duration::from_secs(32); // 3 × 10 s + 2 s

    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).expect("connect");
    let slow = std::thread::spawn(move || {
        // Slowloris: one header line a second, never the end of the head.
        let mut stream = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        while started.elapsed() < limit {
            if stream.write_all(b"X-Slow: 1\r\n").is_err() {
                return Some(started.elapsed());
            }
            match stream.read(&mut buf) {
                Ok(_) => return Some(started.elapsed()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    });
    // Meanwhile a legitimate request on a fresh connection is served.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.call("GET", "/healthz", "").status, 200);

    let silent_closed = time_to_close(&mut silent, started, limit);
    let slow_closed = slow.join().expect("slow client");
    println!(
        "no request headers: closed after {silent_closed:?}; one header line a second: closed after {slow_closed:?}"
    );
    for closed in [silent_closed, slow_closed] {
        let closed = closed.expect("still open after 32 s");
        assert!(closed >= Duration::from_millis(9_500), "{closed:?}");
    }
    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_60_s() {
    let sb = Sandbox::new();
    sb.write_store(ONE_PROVIDER);
    let server = AdminServer::start(&sb, None);
    let addr = address(&server);
    let mut client = KeepAlive::open(addr);
    assert_eq!(client.call("GET", "/healthz", "").status, 200);
    // Longer than the first request's 10 s: an idle keep-alive connection
    // gets 60 s.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(client.call("GET", "/healthz", "").status, 200);
    let served = Instant::now();
    let closed = time_to_close(&mut client.stream, served, Duration::from_secs(182))
        .expect("still open after 182 s (3 × 60 s + 2 s)");
    println!("idle keep-alive connection closed {closed:?} after its last answer");
    assert!(closed >= Duration::from_secs(59), "{closed:?}");
    assert_eq!(server.stop().code, Some(0));
}

/// Sends `GET /events` and reads up to the end of the answer's head.
fn open_stream(addr: SocketAddr) -> (u16, TcpStream) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, stream)
}

#[test]
fn the_65th_event_stream_gets_503_until_one_closes() {
    let sb = Sandbox::new();
    sb.write_store(ONE_PROVIDER);
    let server = AdminServer::start(&sb, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let addr = address(&server);
    let mut streams = Vec::new();
    for i in 0..64 {
        let (status, stream) = open_stream(addr);
        assert_eq!(status, 200, "stream {}", i + 1);
        streams.push(stream);
    }
    let refused = server.call("GET", "/events", "");
    assert_eq!(
        (refused.status, code_of(&refused).as_str()),
        (503, "too_many_streams"),
        "{refused:?}"
    );
    // Everything else still answers.
    assert_eq!(server.call("GET", "/providers", "").status, 200);
    assert_eq!(
        server.call("POST", "/failover", r#"{"to":"a"}"#).status,
        200
    );

    let closed = Instant::now();
    drop(streams.pop());
    let freed = loop {
        let (status, events) = sse(&server.base, "/events", None, Duration::from_secs(5), |e| {
            e.len() >= 2
        });
        if status == 200 {
            assert_eq!(events[0].json()["type"], "resync");
            assert_eq!(events[1].json()["type"], "snapshot");
            break closed.elapsed();
        }
        assert_eq!(status, 503);
        assert!(
            closed.elapsed() < Duration::from_secs(47),
            "no slot freed after a stream closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("64 streams open, the 65th refused; a slot was free {freed:?} after one closed");
    drop(streams);
    assert_eq!(server.stop().code, Some(0));
}

/// What a reading `/events` client saw.
#[derive(Debug, Default)]
struct Seen {
    bytes: usize,
    last_id: u64,
    resyncs: usize,
}

/// Reads `/events` until `stop`, tracking ids and resyncs line by line.
fn read_events(mut stream: TcpStream, stop: &AtomicBool, seen: &Mutex<Seen>) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut carry = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(_) => continue,
        };
        carry.extend_from_slice(&buf[..n]);
        let mut seen = seen.lock().unwrap();
        seen.bytes += n;
        let end = carry.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        for line in carry[..end].split(|b| *b == b'\n') {
            if let Some(id) = line.strip_prefix(b"id: ") {
                if let Ok(id) = String::from_utf8_lossy(id).trim().parse::<u64>() {
                    seen.last_id = seen.last_id.max(id);
                }
            } else if line.starts_with(b"data: ")
                && line.windows(15).any(|w| w == br#""type":"resync""#)
            {
                seen.resyncs += 1;
            }
        }
        carry.drain(..end);
    }
}

fn members(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                r#"{{"id":"{prefix}{i:03}","host":"10.0.{}.{}","port":4000,"labels":{{"zone":"zone-{prefix}"}}}}"#,
                i / 250,
                i % 250
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Pins the other provider (switch `i`) and waits until the reading client
/// has the switch's snapshot: the POST's time and the whole time.
fn switch_and_wait(server: &AdminServer, i: usize, seen: &Mutex<Seen>) -> (Duration, Duration) {
    let to = if i.is_multiple_of(2) { "b" } else { "a" };
    let sent = Instant::now();
    let answer = server.call("POST", "/failover", &format!(r#"{{"to":"{to}"}}"#));
    let post = sent.elapsed();
    assert_eq!(answer.status, 200, "{answer:?}");
    let newest = server.call("GET", "/topology", "").json()["seq_no"]
        .as_u64()
        .expect("seq_no");
    while seen.lock().unwrap().last_id < newest {
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "the reading client fell behind: {:?} < {newest}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (post, sent.elapsed())
}

#[test]
fn an_events_client_that_stops_reading_is_dropped_without_slowing_others() {
    let sb = Sandbox::new();
    sb.write_store(&format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"id":"a","kind":"in_memory","priority":20,"watch":{{"members":[{}]}},"enabled":true}}"#,
            members("a", 300)
        ),
        format_args!(
            r#"{{"id":"b","kind":"in_memory","priority":10,"watch":{{"members":[{}]}},"enabled":true}}"#,
            members("b", 300)
        ),
    ));
    let server = AdminServer::start(&sb, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let addr = address(&server);

    let (status, reader) = open_stream(addr);
    assert_eq!(status, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reading = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || read_events(reader, &stop, &seen))
    };
    let median_max = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() - 1])
    };

    // Switch back and forth: each switch is a snapshot and 600 diff lines
    // (about 150 KB) for every stream. The next switch waits until the
    // reading client has the last one. First without a stalled client.
    let baseline: Vec<Duration> = (0..20)
        .map(|i| switch_and_wait(&server, i, &seen).1)
        .collect();
    let (baseline_median, baseline_max) = median_max(baseline);

    let (status, stalled) = open_stream(addr);
    assert_eq!(status, 200);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut delivered = Vec::new();
    let mut dropped_after = None;
    for i in 0..1_000 {
        let (post, whole) = switch_and_wait(&server, i, &seen);
        latencies.push(post);
        delivered.push(whole);
        if server.stderr().contains("stopped reading") {
            dropped_after = Some((i + 1, started.elapsed()));
            break;
        }
    }
    let (switches, took) = dropped_after.expect("the stalled client was never dropped");
    let (post_median, post_max) = median_max(latencies);
    let (delivered_median, delivered_max) = median_max(delivered);
    stop.store(true, Ordering::Relaxed);
    reading.join().expect("reader");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.resyncs, 1, "the reading client got a resync: {seen:?}");

    // The stalled client's connection was closed by the server: reading
    // what the kernel buffered ends in EOF.
    let mut stalled = stalled;
    let mut got = 0usize;
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the stalled stream is still open after {got} bytes")
            }
            Err(_) => break,
        }
    }
    println!(
        "stalled client dropped after {switches} switches ({took:?}); it had {} KB buffered, the reading client got {} KB up to seq_no {}; POST /failover median {post_median:?}, max {post_max:?}; switch fully delivered to the reading client: median {delivered_median:?}, max {delivered_max:?} (without a stalled client: median {baseline_median:?}, max {baseline_max:?})",
        got / 1024,
        seen.bytes / 1024,
        seen.last_id
    );
    assert!(got < seen.bytes, "the stalled client got everything");
    assert_eq!(server.stop().code, Some(0));
}

/// Whether the client socket bound to local `port` is still an
/// established connection (from `/proc/net/tcp`, without reading from it,
/// which would let a blocked server go on).
fn established(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
    })
}

#[test]
fn a_client_that_never_reads_its_pipelined_answers_is_closed_after_30_s() {
    let sb = Sandbox::new();
    sb.write_store(ONE_PROVIDER);
    let server = AdminServer::start(&sb, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let addr = address(&server);

    // A small receive buffer, so the answers fill the sockets soon.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(addr).await.expect("connect")
    });
    let mut stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let port = stream.local_addr().expect("local").port();
    let batch = "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(500);
    let mut sent = 0usize;
    // Pipeline requests until the server stops reading them: its answers
    // fill both sockets and its write blocks.
    let stopped = loop {
        match stream.write(batch.as_bytes()) {
            Ok(n) => sent += n,
            Err(_) => break Instant::now(),
        }
        assert!(sent < 1 << 30, "the server never stopped reading");
    };
    println!(
        "the server stopped reading after about {} pipelined requests",
        sent / (batch.len() / 500)
    );
    // Meanwhile everyone else is served.
    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    let limit = Duration::from_secs(92); // 3 × 30 s + 2 s
    let closed = loop {
        if !established(port) {
            break stopped.elapsed();
        }
        assert!(
            stopped.elapsed() < limit,
            "a client that reads nothing still holds its connection after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("closed {closed:?} after the client's writes blocked");
    // The server's write blocked some seconds before the client's own
    // write timed out (its send buffer filled meanwhile): the bound is 30 s
    // from the server's side, well beyond the 10 s of a request body.
    assert!(closed >= Duration::from_secs(20), "{closed:?}");
    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    drop(stream);
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn a_request_body_that_stops_arriving_is_closed_after_10_s() {
    let sb = Sandbox::new();
    sb.write_store(ONE_PROVIDER);
    let server = AdminServer::start(&sb, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let addr = address(&server);
    let head = move |length: usize| {
        format!(
            "POST /providers HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };

    // A body that arrives slowly, a piece every 3 s (15 s in all), is
    // read to its end: each piece is progress.
    let slow = std::thread::spawn(move || {
        let body = r#"{"id":"slow","kind":"in_memory","priority":7}"#;
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(head(body.len()).as_bytes())
            .expect("write head");
        let started = Instant::now();
        for piece in body.as_bytes().chunks(body.len().div_ceil(6)) {
            std::thread::sleep(Duration::from_secs(3));
            stream.write_all(piece).expect("write piece");
        }
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).expect("answer");
        (
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )
    });

    let mut silent = TcpStream::connect(addr).expect("connect");
    silent
        .write_all(format!("{}{{\"id\":\"x\"", head(65_536)).as_bytes())
        .expect("write");
    let started = Instant::now();
    let limit = Duration::from_secs(32); // 3 × 10 s + 2 s
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    let closed = time_to_close(&mut silent, started, limit)
        .expect("a body that never arrives still holds its connection after 32 s");
    let (answer, took) = slow.join().expect("slow client");
    println!(
        "a body announced as 64 KiB, 8 bytes sent: closed after {closed:?}; a body sent in 6 pieces 3 s apart: {answer:?} after {took:?}"
    );
    assert!(closed >= Duration::from_millis(9_500), "{closed:?}");
    assert_eq!(answer, "HTTP/1.1 201");
    assert_eq!(server.call("GET", "/healthz", "").status, 200);
    assert_eq!(server.stop().code, Some(0));
}
