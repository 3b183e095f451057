//! A minimal HTTP/1.1 client over std (requests to the server under test).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    /// A header's value (name compared case-insensitively).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// `host:port` of `http://host:port`.
fn authority(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

fn connect(base: &str) -> TcpStream {
    let stream = TcpStream::connect(authority(base)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

fn request_bytes(
    method: &str,
    base: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        authority(base),
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request; reads the whole answer.
pub(crate) fn send(
    method: &str,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    let mut stream = connect(base);
    stream
        .write_all(&request_bytes(
            method,
            base,
            path,
            token,
            &[],
            body.as_bytes(),
        ))
        .expect("write request");
    let mut raw = Vec::new();
    // The server may answer (413) and close before reading a large body.
    let _ = stream.read_to_end(&mut raw);
    parse(&raw)
}

/// One request sent exactly as `request` is written (no header added);
/// reads the whole answer.
pub(crate) fn send_raw(base: &str, request: &[u8]) -> Answer {
    let mut stream = connect(base);
    // The server may answer and close before it has read a body.
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse(&raw)
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body.as_bytes()).0
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Decodes complete chunks; returns the text and the bytes consumed.
fn dechunk(mut raw: &[u8]) -> (String, usize) {
    let total = raw.len();
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.trim(), 16) else {
            break;
        };
        let start = line_end + 2;
        if size == 0 || raw.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        total - raw.len(),
    )
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<String>,
    pub(crate) data: String,
    pub(crate) fields: Vec<String>,
}

impl SseEvent {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

/// Reads SSE events from `path` until `done` says so or `limit` passes.
pub(crate) fn sse(
    base: &str,
    path: &str,
    token: Option<&str>,
    limit: Duration,
    done: impl FnMut(&[SseEvent]) -> bool,
) -> (u16, Vec<SseEvent>) {
    sse_with(base, path, token, &[], limit, done)
}

/// [`sse`] with extra request headers.
pub(crate) fn sse_with(
    base: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    limit: Duration,
    mut done: impl FnMut(&[SseEvent]) -> bool,
) -> (u16, Vec<SseEvent>) {
    let mut stream = connect(base);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    stream
        .write_all(&request_bytes("GET", base, path, token, extra, b""))
        .expect("write request");
    let started = Instant::now();
    let mut raw = Vec::new();
    let mut status = 0;
    let mut events = Vec::new();
    let mut body_start = None;
    let mut buf = [0u8; 8192];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if body_start.is_none()
            && let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&raw[..at]).into_owned();
            status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            body_start = Some(at + 4);
            if status != 200 {
                return (status, events);
            }
        }
        if let Some(start) = body_start {
            let (text, _) = dechunk(&raw[start..]);
            events = parse_events(&text);
            if done(&events) {
                break;
            }
        }
    }
    (status, events)
}

fn parse_events(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        if !text.contains("\n\n") || block.trim().is_empty() {
            continue;
        }
        let mut event = SseEvent {
            id: None,
            data: String::new(),
            fields: Vec::new(),
        };
        for line in block.lines() {
            if line.starts_with(':') {
                continue; // keep-alive comment
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            event.fields.push(name.to_owned());
            match name {
                "id" => event.id = Some(value.to_owned()),
                "data" => event.data.push_str(value),
                _ => {}
            }
        }
        if !event.data.is_empty() {
            events.push(event);
        }
    }
    // The last block may be incomplete: only blocks followed by a blank
    // line count.
    if !text.ends_with("\n\n") && !events.is_empty() && !text.trim_end().is_empty() {
        let last_block = text.rsplit("\n\n").next().unwrap_or("");
        if !last_block.trim().is_empty() {
            events.pop();
        }
    }
    events
}
