//! `providers add|list|remove|enable|disable` against the file store.

use serde_json::Value;

use super::support::Sandbox;

#[test]
fn add_then_list_json_round_trips_in_stored_key_order() {
    let sb = Sandbox::new();
    let run = sb.run(&[
        "providers",
        "add",
        "in_memory",
        "--id",
        "local",
        "--priority",
        "0",
        "--watch",
        r#"members:=[{"id":"n1","host":"127.0.0.1","port":4000}]"#,
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = sb.run(&[
        "providers",
        "add",
        "consul",
        "--id",
        "consul-a",
        "--priority",
        "20",
        "--endpoint",
        "http://127.0.0.1:8500",
        "--auth-token",
        "env:CONSUL_HTTP_TOKEN",
        "--watch",
        "service=app",
        "--watch",
        "passing:=true",
        "--watch",
        "wait=4s",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("added consul-a"), "{run:?}");

    let stored = std::fs::read_to_string(sb.store()).unwrap();
    assert_eq!(
        stored,
        concat!(
            // Keys inside `watch` are written sorted (the store's choice;
            // CONTRACTS §1 fixes the order of the top-level keys).
            r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"host":"127.0.0.1","id":"n1","port":4000}]},"enabled":true}"#,
            "\n",
            r#"{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:8500"],"auth":{"token":"env:CONSUL_HTTP_TOKEN"},"watch":{"passing":true,"service":"app","wait":"4s"},"enabled":true}"#,
            "\n"
        )
    );

    let run = sb.run(&["providers", "list", "--json"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1, "one JSON array: {run:?}");
    let listed: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let ids: Vec<&str> = listed.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["consul-a", "local"], "highest priority first");
    // Each listed object is exactly the stored line.
    let mut lines: Vec<&str> = stored.lines().collect();
    lines.reverse();
    let array = run.stdout.trim_end();
    assert_eq!(array, format!("[{}]", lines.join(",")));
    assert!(listed.iter().all(|d| d["enabled"] == Value::Bool(true)));
}

#[test]
fn list_marks_the_preferred_provider_and_aligns_columns() {
    let sb = Sandbox::new();
    for (id, priority) in [("low", "1"), ("high", "9")] {
        let run = sb.run(&[
            "providers",
            "add",
            "in_memory",
            "--id",
            id,
            "--priority",
            priority,
        ]);
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    let run = sb.run(&["providers", "disable", "high"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = sb.run(&["providers", "list"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].contains("ID") && lines[0].contains("PRIORITY"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("high") && lines[1].contains(" no"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with('*') && lines[2].contains("low"),
        "{lines:?}"
    );
    let column = |line: &str| line.find("in_memory");
    assert_eq!(column(lines[1]), column(lines[2]), "{lines:?}");
}

#[test]
fn remove_enable_disable_are_saved_and_unknown_ids_exit_2() {
    let sb = Sandbox::new();
    let run = sb.run(&[
        "providers",
        "add",
        "in_memory",
        "--id",
        "a",
        "--priority",
        "1",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = sb.run(&["providers", "disable", "a"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        std::fs::read_to_string(sb.store())
            .unwrap()
            .contains(r#""enabled":false"#)
    );
    let run = sb.run(&["--json", "providers", "enable", "a"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        r#"{"changed":true,"enabled":true,"id":"a"}"#
    );
    let run = sb.run(&["providers", "remove", "nope"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.error_line(),
        r#"error[not_found]: provider "nope" not found"#
    );
    let run = sb.run(&["providers", "remove", "a"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(std::fs::read_to_string(sb.store()).unwrap(), "");
}

#[test]
fn duplicates_and_inline_secrets_are_rejected_with_their_codes() {
    let sb = Sandbox::new();
    let add = |id: &str, priority: &str| {
        sb.run(&[
            "providers",
            "add",
            "in_memory",
            "--id",
            id,
            "--priority",
            priority,
        ])
    };
    assert_eq!(add("a", "1").code, Some(0));
    let run = add("a", "2");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.error_line().starts_with("error[duplicate_name]: "),
        "{run:?}"
    );
    let run = add("b", "1");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.error_line().starts_with("error[duplicate_priority]: "),
        "{run:?}"
    );
    let run = sb.run(&[
        "providers",
        "add",
        "etcd",
        "--id",
        "e",
        "--priority",
        "5",
        "--endpoint",
        "http://127.0.0.1:2379",
        "--auth-token",
        "hunter2",
        "--watch",
        "prefix=/c/",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let line = run.error_line();
    assert!(line.starts_with("error[inline_secret]: "), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
    let run = sb.run(&[
        "providers",
        "add",
        "etcd",
        "--id",
        "e",
        "--priority",
        "5",
        "--endpoint",
        "http://127.0.0.1:2379",
        "--watch",
        "prefx=/c/",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.error_line().contains("watch.prefx"), "{run:?}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let sb = Sandbox::new();
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["providers", "--help"],
        &["providers", "list", "--help"],
        &["providers", "add", "--help"],
        &["providers", "remove", "--help"],
        &["providers", "enable", "--help"],
        &["providers", "disable", "--help"],
        &["watch", "--help"],
        &["demo", "--help"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, Some(0), "{args:?}: {run:?}");
        assert!(run.stdout.contains("Example"), "{args:?}: {}", run.stdout);
    }
}

#[test]
fn add_checks_the_policy_against_the_new_set() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("policy.json"), r#"{"timeout":"6s"}"#).unwrap();
    let policy = sb.path("policy.json").display().to_string();
    let run = sb.run(&[
        "--policy",
        &policy,
        "providers",
        "add",
        "consul",
        "--id",
        "consul-a",
        "--priority",
        "20",
        "--endpoint",
        "http://127.0.0.1:8500",
        "--watch",
        "service=app",
        "--watch",
        "wait=4s",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let line = run.error_line();
    assert!(line.starts_with("error[invalid_config]: "), "{line}");
    assert!(
        line.contains("timeout") && line.contains("consul-a"),
        "{line}"
    );
    assert!(!sb.store().exists(), "nothing saved");
    // The same descriptor passes with the default policy (15 s timeout).
    let run = sb.run(&[
        "providers",
        "add",
        "consul",
        "--id",
        "consul-a",
        "--priority",
        "20",
        "--endpoint",
        "http://127.0.0.1:8500",
        "--watch",
        "service=app",
        "--watch",
        "wait=4s",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
}
