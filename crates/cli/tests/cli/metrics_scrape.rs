//! `GET /metrics` follows the running set (CONTRACTS §5): every name from
//! the first scrape, at 0 for every running provider, and a removed
//! provider's series gone within 5 s while the others keep counting.

use std::time::{Duration, Instant};

use cluster_provisioning::hub::metrics::METRIC_NAMES;

use super::admin_server::AdminServer;
use super::support::Sandbox;

/// `a` (priority 20, n1) and `b` (priority 10, n2), and a disabled `c`.
fn three_providers(sb: &Sandbox) {
    sb.write_store(concat!(
        r#"{"id":"a","kind":"in_memory","priority":20,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]},"enabled":true}"#,
        "\n",
        r#"{"id":"b","kind":"in_memory","priority":10,"watch":{"members":[{"id":"n2","host":"127.0.0.1","port":4001}]},"enabled":true}"#,
        "\n",
        r#"{"id":"c","kind":"in_memory","priority":5,"watch":{"members":[]},"enabled":false}"#,
        "\n"
    ));
}

/// `(series, value)` of every sample line.
fn samples(body: &str) -> Vec<(String, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn has_series(samples: &[(String, f64)], name: &str, provider: &str) -> bool {
    let label = format!("provider=\"{provider}\"");
    samples
        .iter()
        .any(|(s, _)| s.starts_with(name) && s.contains(&label))
}

#[test]
fn the_first_scrape_has_every_name_and_a_series_per_running_provider() {
    let sb = Sandbox::new();
    three_providers(&sb);
    let server = AdminServer::start(&sb, None);
    // Right after start: no wait for readiness or for anything to happen.
    let metrics = server.call("GET", "/metrics", "");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    let samples = samples(&metrics.body);
    for name in METRIC_NAMES {
        if name == "provisioning_failovers_total" {
            // Its label sets appear with the first switch.
            continue;
        }
        if name == "provisioning_unavailable" {
            assert!(
                samples.iter().any(|(s, _)| s == name),
                "{name} missing:\n{}",
                metrics.body
            );
            continue;
        }
        for provider in ["a", "b"] {
            assert!(
                has_series(&samples, name, provider),
                "{name}{{provider=\"{provider}\"}} missing from the first scrape:\n{}",
                metrics.body
            );
        }
        assert!(
            !has_series(&samples, name, "c"),
            "disabled c is not running:\n{}",
            metrics.body
        );
    }
    for counter in [
        "provisioning_stream_interruptions_total",
        "provisioning_suppressed_shrinks_total",
    ] {
        assert!(
            samples.contains(&(format!("{counter}{{provider=\"b\"}}"), 0.0)),
            "{counter} starts at 0:\n{}",
            metrics.body
        );
    }
}

#[test]
fn a_removed_providers_series_leave_within_5_s_and_the_others_stay() {
    let sb = Sandbox::new();
    three_providers(&sb);
    let server = AdminServer::start(&sb, None);
    server.wait_for("/readyz", |a| a.status == 200);
    let before = samples(&server.call("GET", "/metrics", "").body);
    assert!(has_series(&before, "provisioning_members", "b"));

    let removed = server.call("DELETE", "/providers/b", "");
    assert_eq!(removed.status, 204, "{removed:?}");
    let started = Instant::now();
    let gone = loop {
        let now = samples(&server.call("GET", "/metrics", "").body);
        let any_b = now.iter().any(|(s, _)| s.contains("provider=\"b\""));
        if !any_b || started.elapsed() > Duration::from_secs(3 * 5 + 2) {
            break (!any_b, now);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    println!("series of a removed provider gone after {took:?} (bound 5 s)");
    assert!(gone.0, "b's series still exported after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for name in [
        "provisioning_members",
        "provisioning_provider_health",
        "provisioning_stream_interruptions_total",
    ] {
        assert!(has_series(&gone.1, name, "a"), "{name} of a kept");
    }
}
