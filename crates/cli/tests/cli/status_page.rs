//! `GET /` in headless Chromium: the provider pinned by `POST /failover`
//! shows as active.

use std::process::Command;
use std::time::Duration;

use super::admin_server::AdminServer;
use super::support::{Sandbox, run_with_limit};

/// Debian's Chromium, or a failure with the one line that fixes it.
fn chromium() -> &'static str {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(candidate).exists() {
            return candidate;
        }
    }
    panic!("chromium is missing: install it with `apt-get install -y chromium` (Debian)");
}

#[test]
fn the_status_page_shows_the_pinned_provider_as_active_in_chromium() {
    let browser = chromium();
    let sb = Sandbox::new();
    sb.write_store(concat!(
        r#"{"id":"a","kind":"in_memory","priority":20,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        "\n",
        r#"{"id":"b","kind":"in_memory","priority":10,"watch":{"members":[{"id":"n2","host":"127.0.0.1","port":4001,"labels":{"zone":"<b>"}}]},"enabled":true}"#,
        "\n"
    ));
    let server = AdminServer::start(&sb, None);
    server.wait_for("/readyz", |a| a.status == 200);
    assert_eq!(
        server.call("POST", "/failover", r#"{"to":"b"}"#).status,
        200
    );
    server.wait_for("/topology", |t| t.json()["provider_id"] == "b");

    let profile = sb.path("chromium-profile");
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("{}/", server.base))
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "chromium failed: {}", run.stderr);
    let dom = run.stdout;
    println!("chromium rendered the page in {:?}", run.took);

    let row = |id: &str| -> String {
        let marker = format!("data-provider=\"{id}\"");
        let at = dom
            .find(&marker)
            .unwrap_or_else(|| panic!("no row for {id}: {dom}"));
        let start = dom[..at].rfind("<tr").expect("row start");
        let end = at + dom[at..].find("</tr>").expect("row end");
        dom[start..end].to_owned()
    };
    let b = row("b");
    assert!(b.contains(r#"class="active""#), "{b}");
    assert!(b.contains("active · pinned"), "{b}");
    let a = row("a");
    assert!(!a.contains(r#"class="active""#), "{a}");
    assert!(
        a.contains("standby") || a.contains("<td class=\"role\">-</td>"),
        "{a}"
    );
    assert!(
        dom.contains(r#"<code id="active-provider">b</code>"#),
        "{dom}"
    );
    // Members of the pinned provider, with the label escaped, and the
    // switch among the last events.
    assert!(dom.contains("zone=&lt;b&gt;"), "{dom}");
    assert!(
        dom.contains("SWITCH     a -&gt; b  reason manual_override") || dom.contains("a -&gt; b"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "no scripts");
    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}
