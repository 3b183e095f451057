//! CONTRACTS §4a rules 1 and 2 against the running binary: no listening
//! beyond loopback without a token, and no request a web page could send
//! (a foreign `Origin`, a rebound `Host`, a body that is not JSON) changes
//! anything — while the same requests from the operator's own tools work.

use serde_json::Value;

use super::admin_server::AdminServer;
use super::http_client::{Answer, send_raw};
use super::support::{Sandbox, closed_port};

const TWO_PROVIDERS: &str = concat!(
    r#"{"id":"a","kind":"in_memory","priority":20,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
    "\n",
    r#"{"id":"b","kind":"in_memory","priority":10,"watch":{"members":[{"id":"n2","host":"127.0.0.1","port":4001}]},"enabled":true}"#,
    "\n",
);

const NEW_PROVIDER: &str = r#"{"id":"c","kind":"in_memory","priority":5}"#;

/// Method, path, headers, body, expected status and code.
type Attempt<'a> = (&'a str, &'a str, Headers<'a>, &'a str, u16, &'a str);

/// Headers, expected status and code.
type Case<'a> = (Headers<'a>, u16, &'a str);

type Headers<'a> = Vec<(&'a str, &'a str)>;

/// `host:port` of the server.
fn authority(server: &AdminServer) -> String {
    server
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

fn port(server: &AdminServer) -> u16 {
    authority(server)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// A request with exactly these headers (`Host` included when given).
fn request(
    server: &AdminServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    send_raw(&server.base, text.as_bytes())
}

fn code_of(answer: &Answer) -> String {
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {answer:?}"));
    assert!(body["error"].is_string(), "{body}");
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// Providers (id, pinned), the served provider and the store's bytes.
fn observable(server: &AdminServer, store: &std::path::Path) -> (String, String, Vec<u8>) {
    let list = server.call("GET", "/providers", "");
    assert_eq!(list.status, 200, "{list:?}");
    let providers = list
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| format!("{}:{}", p["id"], p["pinned"]))
        .collect::<Vec<_>>()
        .join(",");
    let topology = server.call("GET", "/topology", "").json();
    (
        providers,
        topology["provider_id"].to_string(),
        std::fs::read(store).expect("store"),
    )
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let sb = Sandbox::new();
    sb.write_store(TWO_PROVIDERS);
    let port = closed_port();
    // 192.0.2.1 (TEST-NET-1) is no address of this host: binding it would
    // fail with another error, so the refusal comes before any bind.
    for listen in [
        format!("0.0.0.0:{port}"),
        format!("[::]:{port}"),
        format!("192.0.2.1:{port}"),
    ] {
        let run = sb.run(&["serve", "--listen", &listen]);
        assert_eq!(run.code, Some(2), "--listen {listen}: {run:?}");
        let line = run.error_line();
        assert!(
            line.starts_with("error[insecure_listen]: ") && line.contains("--token-file"),
            "--listen {listen}: {line}"
        );
        assert_eq!(run.stdout, "", "nothing was served: {run:?}");
        println!("--listen {listen}: refused in {:?}: {line}", run.took);
    }
    // Nothing listens on the port afterwards.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // Positive controls: loopback without a token, any address with one.
    let local = AdminServer::start(&sb, None);
    assert_eq!(local.call("GET", "/providers", "").status, 200);
    assert_eq!(local.stop().code, Some(0));

    let token_path = sb.path("admin-token");
    std::fs::write(&token_path, "wide-0pen-t0ken\n").expect("token file");
    let token_arg = token_path.display().to_string();
    let wide = AdminServer::spawn(
        sb.command(&["serve", "--listen", "0.0.0.0:0", "--token-file", &token_arg]),
        Some("wide-0pen-t0ken"),
    );
    assert!(wide.base.starts_with("http://0.0.0.0:"), "{}", wide.base);
    assert_eq!(wide.call("GET", "/providers", "").status, 200);
    assert_eq!(wide.call_as(None, "GET", "/providers").status, 401);
    assert_eq!(wide.stop().code, Some(0));
}

#[test]
fn cross_site_requests_are_refused_and_change_nothing() {
    let sb = Sandbox::new();
    sb.write_store(TWO_PROVIDERS);
    let server = AdminServer::start(&sb, None);
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let host = authority(&server);
    let port = port(&server);
    let before = observable(&server, &sb.store());
    assert!(before.1.contains('a'), "a serves: {before:?}");

    let other_port = format!("http://localhost:{}", port.wrapping_add(1));
    let evil_host = format!("evil.example:{port}");
    let json = ("Content-Type", "application/json");
    let to_b = r#"{"to":"b"}"#;
    let attempts: Vec<Attempt<'_>> = vec![
        // What a page can send without a preflight: a text/plain POST.
        (
            "POST",
            "/providers",
            vec![
                ("Host", &host),
                ("Content-Type", "text/plain"),
                ("Origin", "https://evil.example"),
            ],
            NEW_PROVIDER,
            403,
            "forbidden_origin",
        ),
        (
            "POST",
            "/providers",
            vec![("Host", &host), ("Content-Type", "text/plain")],
            NEW_PROVIDER,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/failover",
            vec![("Host", &host), ("Content-Type", "text/plain")],
            to_b,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/failover",
            vec![
                ("Host", &host),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            to_b,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/failover",
            vec![
                ("Host", &host),
                ("Content-Type", "multipart/form-data; boundary=x"),
            ],
            to_b,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/failover",
            vec![("Host", &host)],
            to_b,
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/providers",
            vec![("Host", &host), json, ("Origin", "null")],
            NEW_PROVIDER,
            403,
            "forbidden_origin",
        ),
        (
            "POST",
            "/failover",
            vec![("Host", &host), json, ("Origin", &other_port)],
            to_b,
            403,
            "forbidden_origin",
        ),
        (
            "DELETE",
            "/providers/a",
            vec![("Host", &host), ("Origin", "http://evil.example")],
            "",
            403,
            "forbidden_origin",
        ),
        (
            "GET",
            "/providers",
            vec![("Host", &host), ("Origin", "http://evil.example")],
            "",
            403,
            "forbidden_origin",
        ),
        (
            "GET",
            "/events",
            vec![("Host", &host), ("Origin", "null")],
            "",
            403,
            "forbidden_origin",
        ),
        // DNS rebinding: the page's own name, resolved to 127.0.0.1.
        (
            "POST",
            "/failover",
            vec![("Host", &evil_host), json],
            to_b,
            403,
            "forbidden_host",
        ),
        (
            "GET",
            "/healthz",
            vec![("Host", &evil_host)],
            "",
            403,
            "forbidden_host",
        ),
        (
            "GET",
            "/readyz",
            vec![("Host", "evil.example")],
            "",
            403,
            "forbidden_host",
        ),
        (
            "GET",
            "/topology",
            vec![("Host", "localhost.evil.example")],
            "",
            403,
            "forbidden_host",
        ),
    ];
    for (method, path, headers, body, status, code) in &attempts {
        let answer = request(&server, method, path, headers, body);
        assert_eq!(
            (answer.status, code_of(&answer).as_str()),
            (*status, *code),
            "{method} {path} {headers:?}"
        );
    }
    println!("{} cross-site attempts refused", attempts.len());
    assert_eq!(
        observable(&server, &sb.store()),
        before,
        "a refused request changed the providers, the pin, the served provider or the store"
    );

    // Positive controls: the operator's tools and same-origin requests.
    let local_origin = format!("http://localhost:{port}");
    let created = request(
        &server,
        "POST",
        "/providers",
        &[
            ("Host", &format!("localhost:{port}")),
            ("Content-Type", "application/json; charset=utf-8"),
            ("Origin", &local_origin),
        ],
        NEW_PROVIDER,
    );
    assert_eq!(created.status, 201, "{created:?}");
    assert!(
        std::fs::read_to_string(sb.store())
            .expect("store")
            .contains(r#""id":"c""#)
    );
    let ip_origin = format!("http://127.0.0.1:{port}");
    let pinned = request(
        &server,
        "POST",
        "/failover",
        &[("Host", &host), json, ("Origin", &ip_origin)],
        to_b,
    );
    assert_eq!(pinned.status, 200, "{pinned:?}");
    let v6_origin = format!("http://[::1]:{port}");
    let removed = request(
        &server,
        "DELETE",
        "/providers/c",
        &[("Host", "[::1]"), ("Origin", &v6_origin)],
        "",
    );
    assert_eq!(removed.status, 204, "{removed:?}");
    for host in ["localhost", "127.0.0.2:1", "[::1]:9", host.as_str()] {
        let answer = request(&server, "GET", "/healthz", &[("Host", host)], "");
        assert_eq!(answer.status, 200, "Host {host}: {answer:?}");
    }
    let served = server.wait_for("/topology", |a| a.body.contains(r#""provider_id":"b""#));
    assert!(served.body.contains(r#""provider_id":"b""#), "{served:?}");
    assert_eq!(server.stop().code, Some(0));
}

#[test]
fn with_a_token_the_site_checks_come_first_and_the_media_type_after_it() {
    const TOKEN: &str = "0rigin-t0ken";
    let sb = Sandbox::new();
    sb.write_store(TWO_PROVIDERS);
    let server = AdminServer::start(&sb, Some(TOKEN));
    assert_eq!(server.wait_for("/readyz", |a| a.status == 200).status, 200);
    let host = authority(&server);
    let bearer = format!("Bearer {TOKEN}");
    let store_before = std::fs::read(sb.store()).expect("store");
    let cases: Vec<Case<'_>> = vec![
        // A page is refused as a page, token or not.
        (
            vec![
                ("Host", &host),
                ("Content-Type", "application/json"),
                ("Origin", "https://evil.example"),
            ],
            403,
            "forbidden_origin",
        ),
        (
            vec![
                ("Host", &host),
                ("Content-Type", "application/json"),
                ("Origin", "https://evil.example"),
                ("Authorization", &bearer),
            ],
            403,
            "forbidden_origin",
        ),
        // Without the token nothing more is told.
        (vec![("Host", &host)], 401, "unauthorized"),
        (
            vec![("Host", &host), ("Content-Type", "text/plain")],
            401,
            "unauthorized",
        ),
        (
            vec![
                ("Host", &host),
                ("Content-Type", "text/plain"),
                ("Authorization", &bearer),
            ],
            415,
            "unsupported_media_type",
        ),
    ];
    for (headers, status, code) in &cases {
        let answer = request(&server, "POST", "/providers", headers, NEW_PROVIDER);
        assert_eq!(
            (answer.status, code_of(&answer).as_str()),
            (*status, *code),
            "{headers:?}"
        );
    }
    let probe = request(&server, "GET", "/healthz", &[("Host", "evil.example")], "");
    assert_eq!(
        (probe.status, code_of(&probe).as_str()),
        (403, "forbidden_host")
    );
    assert_eq!(std::fs::read(sb.store()).expect("store"), store_before);

    // Positive control.
    let created = request(
        &server,
        "POST",
        "/providers",
        &[
            ("Host", &host),
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        NEW_PROVIDER,
    );
    assert_eq!(created.status, 201, "{created:?}");
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stderr.contains(TOKEN));
}
