//! `serve` fails back to a recovered primary whose view shares nothing with
//! the standby's (ARCHITECTURE decision 5): the recovered view is a
//! suspicious shrink of what the standby published, and that suspicion
//! holds the fail-back only until the view has stood for `shrink_confirm`.

use std::time::{Duration, Instant};

use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};

use super::admin_server::AdminServer;
use super::http_client::sse;
use super::support::Sandbox;

const COOLDOWN: Duration = Duration::from_secs(1);
const SHRINK_CONFIRM: Duration = Duration::from_secs(1);

#[test]
fn a_recovered_primary_with_a_disjoint_view_is_failed_back_to_after_shrink_confirm() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The fake's accept loop is spawned on this runtime, also on a heal.
    let _context = runtime.enter();
    let consul = runtime.block_on(FakeConsul::start()).expect("fake consul");
    consul.set_instances(
        "app",
        (1..=3)
            .map(|i| FakeInstance::new("app", &format!("app-{i}"), &format!("10.0.0.{i}"), 4000))
            .collect(),
    );

    let sb = Sandbox::new();
    sb.write_store(&format!(
        concat!(
            r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{url}"],"watch":{{"service":"app","wait":"1s"}},"enabled":true}}"#,
            "\n",
            r#"{{"id":"standby","kind":"in_memory","priority":10,"watch":{{"members":[{{"id":"s1","host":"127.0.0.99","port":4999}}]}},"enabled":true}}"#,
            "\n"
        ),
        url = consul.url(),
    ));
    // A tight policy: a short backoff, so the heal is seen within ~0.6 s.
    let policy = sb.path("policy.json");
    std::fs::write(
        &policy,
        r#"{"timeout":"4s","cooldown":"1s","shrink_confirm":"1s","backoff_initial":"200ms","backoff_cap":"500ms"}"#,
    )
    .expect("policy file");
    let policy = policy.display().to_string();
    let server = AdminServer::start_with(&sb, None, &["--policy", &policy]);
    let first = server.wait_for("/topology", |t| t.json()["provider_id"] == "consul-a");
    assert_eq!(
        first.json()["provider_id"],
        "consul-a",
        "{}",
        server.stderr()
    );

    consul.refuse_connections(true).expect("close the port");
    let on_standby = server.wait_for("/topology", |t| t.json()["provider_id"] == "standby");
    let on_standby = on_standby.json();
    assert_eq!(on_standby["provider_id"], "standby", "{}", server.stderr());
    assert_eq!(on_standby["members"][0]["host"], "127.0.0.99");
    let since = on_standby["seq_no"].as_u64().expect("seq_no");

    consul.refuse_connections(false).expect("reopen the port");
    let healed = Instant::now();
    let bound = COOLDOWN + SHRINK_CONFIRM + Duration::from_secs(2);
    let (status, events) = sse(
        &server.base,
        &format!("/events?since={since}"),
        None,
        3 * bound + Duration::from_secs(2),
        |events| {
            events.iter().any(|e| {
                let line = e.json();
                line["type"] == "snapshot" && line["provider_id"] == "consul-a"
            })
        },
    );
    let took = healed.elapsed();
    assert_eq!(status, 200);
    let lines: Vec<serde_json::Value> = events.iter().map(|e| e.json()).collect();
    let change = lines
        .iter()
        .position(|l| l["type"] == "provider_changed")
        .unwrap_or_else(|| panic!("no provider_changed after {took:?}: {lines:#?}"));
    assert_eq!(lines[change]["from_provider_id"], "standby", "{lines:#?}");
    assert_eq!(lines[change]["to_provider_id"], "consul-a", "{lines:#?}");
    assert_eq!(lines[change]["reason"], "priority_restored", "{lines:#?}");
    // The recovered view is published at once with the switch, all of it.
    let snapshot = &lines[change + 1];
    assert_eq!(snapshot["type"], "snapshot", "{lines:#?}");
    assert_eq!(snapshot["hash"], lines[change]["snapshot_hash"]);
    assert_eq!(snapshot["members"].as_array().map(Vec::len), Some(3));
    println!(
        "consul healed -> priority_restored to a disjoint view after {took:?} \
         (bound {bound:?}: cooldown 1 s + shrink_confirm 1 s + 2 s)"
    );
    assert!(took <= bound, "fail-back after {took:?}, bound {bound:?}");

    let run = server.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
}
