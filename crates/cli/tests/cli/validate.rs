//! `validate` and `validate --connect`.

use serde_json::Value;

use super::support::{LOCAL_N1, Sandbox};

#[test]
fn connect_passes_when_every_backend_answers() {
    let sb = Sandbox::new();
    // An in-memory provider needs no network: nothing to probe.
    sb.write_store(&format!("{LOCAL_N1}\n"));
    let run = sb.run(&["validate", "--connect"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("local"), "{run:?}");
    let run = sb.run(&["--json", "validate", "--connect"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["valid"], Value::Bool(true));
    assert_eq!(report["providers"], 1);
}

#[test]
fn connect_resolves_secrets_and_reports_a_missing_one() {
    let sb = Sandbox::new();
    let port = super::support::closed_port();
    sb.write_store(&format!(
        r#"{{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:{port}"],"auth":{{"token":"file:missing-token"}},"watch":{{"prefix":"/c/"}},"enabled":true}}"#
    ));
    // Secrets are not resolved without --connect.
    assert_eq!(sb.run(&["validate"]).code, Some(0));
    let run = sb.run(&["validate", "--connect"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    let line = run.error_line();
    assert!(line.starts_with("error[invalid_config]: "), "{line}");
    assert!(
        line.contains("etcd-a") && line.contains("file:missing-token"),
        "{line}"
    );
}

#[test]
fn a_disabled_backend_is_not_probed() {
    let sb = Sandbox::new();
    let port = super::support::closed_port();
    sb.write_store(&format!(
        "{LOCAL_N1}\n{}\n",
        super::support::consul_line(port).replace(r#""enabled":true"#, r#""enabled":false"#)
    ));
    let run = sb.run(&["validate", "--connect"]);
    assert_eq!(run.code, Some(0), "{run:?}");
}
