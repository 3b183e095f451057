//! Every exit code of CONTRACTS §2, with its one `error[CODE]` line.

use super::support::{LOCAL_N1, Sandbox, closed_port, consul_line};

#[test]
fn exit_0_for_a_valid_and_for_an_empty_store() {
    let sb = Sandbox::new();
    let run = sb.run(&["validate"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.is_empty(), "{run:?}");
    sb.write_store(&format!("{LOCAL_N1}\n"));
    let run = sb.run(&["validate"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("valid, 1 provider (1 enabled)"),
        "{run:?}"
    );
}

#[test]
fn exit_1_for_a_store_that_cannot_be_read() {
    let sb = Sandbox::new();
    // A directory where the store file should be: reading it fails.
    std::fs::create_dir(sb.store()).unwrap();
    let run = sb.run(&["providers", "list"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.error_line().contains("providers.jsonl"), "{run:?}");
}

#[test]
fn exit_2_for_a_corrupt_store_with_line_number_field_and_code() {
    let sb = Sandbox::new();
    sb.write_store(&format!(
        "{LOCAL_N1}\n{{\"id\":\"b\",\"kind\":\"etcd\",\"prioirty\":1}}\n"
    ));
    for args in [
        &["validate"][..],
        &["providers", "list"],
        &["providers", "list", "--json"],
        &["watch", "--once"],
        &["providers", "remove", "local"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert_eq!(
            run.error_line(),
            r#"error[invalid_config]: providers.jsonl:2: unknown field "prioirty""#,
            "{args:?}"
        );
    }
    // Nothing was rewritten.
    assert!(
        std::fs::read_to_string(sb.store())
            .unwrap()
            .contains("prioirty")
    );
}

#[test]
fn exit_2_for_lexical_faults_naming_the_line() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n\n"));
    let run = sb.run(&["validate"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.error_line()
            .starts_with("error[invalid_config]: providers.jsonl:2: "),
        "{run:?}"
    );
    sb.write_store(&format!("{LOCAL_N1}\r\n"));
    let run = sb.run(&["validate"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.error_line().contains("providers.jsonl:1: "), "{run:?}");
}

#[test]
fn exit_2_for_bad_arguments_a_bad_policy_and_a_validation_failure() {
    let sb = Sandbox::new();
    let run = sb.run(&["providers", "frobnicate"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.error_line().starts_with("error[invalid_argument]: "),
        "{run:?}"
    );

    let run = sb.run(&[
        "providers",
        "add",
        "etcd",
        "--id",
        "e",
        "--priority",
        "high",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.error_line().starts_with("error[invalid_argument]: "),
        "{run:?}"
    );

    std::fs::write(sb.path("policy.json"), r#"{"jitter":0.7}"#).unwrap();
    let policy = sb.path("policy.json");
    let run = sb.run(&["--policy", policy.to_str().unwrap(), "validate"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let line = run.error_line();
    assert!(line.starts_with("error[invalid_config]: "), "{line}");
    assert!(
        line.contains("policy.json") && line.contains("jitter"),
        "{line}"
    );

    // Validation: a consul descriptor without endpoints.
    let run = sb.run(&[
        "providers",
        "add",
        "consul",
        "--id",
        "c",
        "--priority",
        "3",
        "--watch",
        "service=app",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.error_line(),
        r#"error[invalid_config]: provider "c": field "endpoints": required for kind consul"#
    );
    assert!(!sb.store().exists(), "nothing saved on a rejection");
}

#[test]
fn exit_2_when_there_is_no_provider_to_run() {
    let sb = Sandbox::new();
    let run = sb.run(&["watch", "--once"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.error_line().contains("no enabled provider"), "{run:?}");
    sb.write_store(&LOCAL_N1.replace(r#""enabled":true"#, r#""enabled":false"#));
    let run = sb.run(&["watch", "--json", "--once"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn exit_3_when_validate_connect_meets_a_closed_port() {
    let sb = Sandbox::new();
    sb.write_store(&format!("{LOCAL_N1}\n{}\n", consul_line(closed_port())));
    // Without --connect nothing is probed.
    let run = sb.run(&["validate"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = sb.run(&["validate", "--connect"]);
    assert_eq!(run.code, Some(3), "{run:?}");
    let line = run.error_line();
    assert!(line.contains(r#"provider "consul-a""#), "{line}");
    assert!(
        line.starts_with("error[backend_unavailable]: ") || line.starts_with("error[timeout]: "),
        "{line}"
    );
}
