//! SIGHUP re-reads `--token-file`: a rotated token takes effect without a
//! restart; a file that cannot be read or is empty keeps the old token.

use std::time::{Duration, Instant};

use super::admin_server::AdminServer;
use super::support::Sandbox;

const FIRST: &str = "f1rst-t0ken";
const SECOND: &str = "s3cond-t0ken";

/// Waits until stderr holds `needle` `count` times.
fn wait_stderr(server: &AdminServer, needle: &str, count: usize) {
    let started = Instant::now();
    while server.stderr().matches(needle).count() < count {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no {needle:?} ({count}x) on stderr: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_token_file_is_read_again_on_sighup() {
    let sb = Sandbox::new();
    sb.write_store(concat!(
        r#"{"id":"a","kind":"in_memory","priority":1,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        "\n"
    ));
    let server = AdminServer::start(&sb, Some(FIRST));
    let token_file = sb.path("admin-token");
    assert_eq!(server.call_as(Some(FIRST), "GET", "/providers").status, 200);
    assert_eq!(
        server.call_as(Some(SECOND), "GET", "/providers").status,
        401
    );

    std::fs::write(&token_file, format!("{SECOND}\n")).expect("rotate");
    let rotated = Instant::now();
    server.signal("HUP");
    while server.call_as(Some(SECOND), "GET", "/providers").status != 200 {
        assert!(
            rotated.elapsed() < Duration::from_secs(15),
            "the rotated token was never accepted: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "rotated token accepted {:?} after SIGHUP",
        rotated.elapsed()
    );
    wait_stderr(&server, "re-read the admin token", 1);
    assert_eq!(
        server.call_as(Some(FIRST), "GET", "/providers").status,
        401,
        "the old token still works after the rotation"
    );

    // A half-written (empty) or missing file keeps the current token.
    std::fs::write(&token_file, "").expect("empty");
    server.signal("HUP");
    wait_stderr(&server, "the previous admin token is kept", 1);
    assert_eq!(
        server.call_as(Some(SECOND), "GET", "/providers").status,
        200
    );
    std::fs::remove_file(&token_file).expect("remove");
    server.signal("HUP");
    wait_stderr(&server, "the previous admin token is kept", 2);
    assert_eq!(
        server.call_as(Some(SECOND), "GET", "/providers").status,
        200
    );
    assert_eq!(server.call_as(None, "GET", "/providers").status, 401);

    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        !run.stderr.contains(FIRST) && !run.stderr.contains(SECOND),
        "a token was printed: {}",
        run.stderr
    );
    println!("stderr:\n{}", run.stderr);
}
