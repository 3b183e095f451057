//! One test per rejection of the issue: the code and the descriptor/field
//! named in the message.

use provisioning_registry::{ProviderRegistry, ProvisioningError, descriptor_from_json};

use super::common::{assert_err, d};

const ETCD: &str = r#"{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/cluster/app/"}}"#;
const CONSUL: &str = r#"{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:8500","http://10.0.0.2:8500"],"watch":{"service":"app","dc":"dc1"}}"#;

fn registry_with(lines: &[&str]) -> ProviderRegistry {
    let registry = super::common::registry();
    for line in lines {
        registry.register(d(line)).unwrap();
    }
    registry
}

/// Registers `json` into a registry holding `ETCD` and `CONSUL`; it must be
/// rejected, and nothing must change.
fn reject(json: &str) -> ProvisioningError {
    let registry = registry_with(&[ETCD, CONSUL]);
    let before = registry.list();
    let e = match descriptor_from_json(json) {
        Ok(descriptor) => registry.register(descriptor).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(
        registry.list(),
        before,
        "a rejected registration changed the set"
    );
    e
}

#[test]
fn duplicate_id_is_duplicate_name() {
    let e = reject(r#"{"id":"etcd-a","kind":"in_memory","priority":99}"#);
    assert_err(
        &e,
        "duplicate_name",
        &[r#"provider "etcd-a""#, r#"field "id""#],
    );
}

#[test]
fn duplicate_priority_counts_disabled_providers() {
    let e = reject(r#"{"id":"local","kind":"in_memory","priority":10}"#);
    assert_err(
        &e,
        "duplicate_priority",
        &[
            r#"provider "local""#,
            r#"field "priority""#,
            r#"provider "etcd-a""#,
        ],
    );
    let registry = registry_with(&[ETCD]);
    registry.disable("etcd-a").unwrap();
    let e = registry
        .register(d(r#"{"id":"local","kind":"in_memory","priority":10}"#))
        .unwrap_err();
    assert_eq!(e.code(), "duplicate_priority");
}

#[test]
fn same_kind_endpoints_and_target_is_conflict() {
    // Endpoint order, case and a trailing slash do not make it different.
    let e = reject(
        r#"{"id":"consul-b","kind":"consul","priority":5,"endpoints":["http://10.0.0.2:8500/","HTTP://127.0.0.1:8500"],"watch":{"service":"app","dc":"dc1","passing":false}}"#,
    );
    assert_err(
        &e,
        "conflict",
        &[
            r#"provider "consul-b""#,
            r#"field "watch""#,
            r#"provider "consul-a""#,
        ],
    );
    let e = reject(
        r#"{"id":"etcd-b","kind":"etcd","priority":11,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/cluster/app/","register":{"id":"n1","host":"h","port":1}}}"#,
    );
    assert_err(&e, "conflict", &[r#"provider "etcd-a""#]);
    let k8s = r#"{"id":"k1","kind":"k8s","priority":1,"watch":{"resource":"pods","label_selector":"app=a"}}"#;
    let registry = registry_with(&[k8s]);
    let e = registry
        .register(d(r#"{"id":"k2","kind":"k8s","priority":2,"watch":{"resource":"pods","label_selector":"app=a","include_unready":true}}"#))
        .unwrap_err();
    assert_eq!(e.code(), "conflict");
}

#[test]
fn different_targets_or_endpoints_do_not_conflict() {
    let registry = registry_with(&[ETCD, CONSUL]);
    for line in [
        // another dc
        r#"{"id":"c2","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:8500","http://10.0.0.2:8500"],"watch":{"service":"app","dc":"dc2"}}"#,
        // a subset of the endpoints
        r#"{"id":"c3","kind":"consul","priority":2,"endpoints":["http://127.0.0.1:8500"],"watch":{"service":"app","dc":"dc1"}}"#,
        // another prefix
        r#"{"id":"e2","kind":"etcd","priority":3,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/cluster/other/"}}"#,
        // in_memory never conflicts
        r#"{"id":"m1","kind":"in_memory","priority":4}"#,
        r#"{"id":"m2","kind":"in_memory","priority":5}"#,
    ] {
        registry
            .register(d(line))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert_eq!(registry.len(), 7);
}

#[test]
fn unknown_kind_is_invalid_config() {
    let e = reject(r#"{"id":"zk","kind":"zookeeper","priority":1,"endpoints":["http://h:2181"]}"#);
    assert_err(
        &e,
        "invalid_config",
        &[
            r#"provider "zk""#,
            r#"field "kind""#,
            "unknown kind \"zookeeper\"",
        ],
    );
}

#[test]
fn missing_fields_per_kind() {
    for (json, field) in [
        (r#"{"kind":"etcd","priority":1}"#, "id"),
        (r#"{"id":"x","priority":1}"#, "kind"),
        (r#"{"id":"x","kind":"etcd"}"#, "priority"),
        (
            r#"{"id":"x","kind":"consul","priority":1,"watch":{"service":"s"}}"#,
            "endpoints",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"watch":{"prefix":"/p/"}}"#,
            "endpoints",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["http://h:1"]}"#,
            "watch.service",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"]}"#,
            "watch.prefix",
        ),
        (r#"{"id":"x","kind":"k8s","priority":1}"#, "watch.resource"),
        (
            r#"{"id":"x","kind":"k8s","priority":1,"watch":{"resource":"pods"}}"#,
            "watch.label_selector",
        ),
        (
            r#"{"id":"x","kind":"k8s","priority":1,"watch":{"resource":"endpointslices"}}"#,
            "watch.service",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["http://h:1"],"watch":{"service":"s","register":{"id":"n","name":"s"}}}"#,
            "watch.register.port",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"],"auth":{"username":"env:U"},"watch":{"prefix":"/p/"}}"#,
            "auth.password",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"],"tls":{"cert":"c.pem"},"watch":{"prefix":"/p/"}}"#,
            "tls.key",
        ),
    ] {
        let e = reject(json);
        assert_err(&e, "invalid_config", &[&format!("field \"{field}\"")]);
        assert_eq!(e.field(), Some(field), "{json}");
    }
}

#[test]
fn malformed_fields_per_kind() {
    for (json, field) in [
        (r#"{"id":"Bad_Id","kind":"etcd","priority":1}"#, "id"),
        (r#"{"id":"x","kind":"etcd","priority":-1}"#, "priority"),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"enabled":"yes"}"#,
            "enabled",
        ),
        (
            r#"{"id":"x","kind":"in_memory","priority":1,"endpoints":["http://h:1"]}"#,
            "endpoints",
        ),
        (
            r#"{"id":"x","kind":"in_memory","priority":1,"watch":{"members":[{"id":"n","host":"h","port":70000}]}}"#,
            "watch.members[0].port",
        ),
        (
            r#"{"id":"x","kind":"in_memory","priority":1,"watch":{"members":[{"id":"n","host":"h","port":1},{"id":"n","host":"i","port":2}]}}"#,
            "watch.members",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["http://h:1"],"watch":{"service":"s","wait":"4"}}"#,
            "watch.wait",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["http://h:1"],"watch":{"service":"s","consistency":"eventual"}}"#,
            "watch.consistency",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["http://h:1"],"watch":{"service":"s","id_from":"address"}}"#,
            "watch.id_from",
        ),
        (
            r#"{"id":"x","kind":"k8s","priority":1,"watch":{"resource":"nodes"}}"#,
            "watch.resource",
        ),
        (
            r#"{"id":"x","kind":"k8s","priority":1,"endpoints":["https://a:6443","https://b:6443"],"watch":{"resource":"pods","label_selector":"a=b"}}"#,
            "endpoints",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"],"watch":{"prefix":"cluster"}}"#,
            "watch.prefix",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"],"watch":{"prefix":"/p/","register":{"id":"n","host":"h","port":1,"ttl":"1s"}}}"#,
            "watch.register.ttl",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1","http://H:1/"],"watch":{"prefix":"/p/"}}"#,
            "endpoints[1]",
        ),
    ] {
        let e = reject(json);
        assert_err(&e, "invalid_config", &[&format!("field \"{field}\"")]);
        assert_eq!(e.field(), Some(field), "{json}");
    }
}

#[test]
fn unknown_keys_at_every_level() {
    for (json, field) in [
        (r#"{"id":"x","kind":"etcd","prioirty":1}"#, "prioirty"),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"auth":{"tokn":"env:T"}}"#,
            "auth.tokn",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"tls":{"verfy":false}}"#,
            "tls.verfy",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"],"watch":{"prefix":"/p/","prefx":"/q/"}}"#,
            "watch.prefx",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1"],"watch":{"prefix":"/p/","register":{"id":"n","host":"h","port":1,"lables":{}}}}"#,
            "watch.register.lables",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["http://h:1"],"watch":{"service":"s","register":{"id":"n","name":"s","port":1,"tag":["t"]}}}"#,
            "watch.register.tag",
        ),
        (
            r#"{"id":"x","kind":"in_memory","priority":1,"watch":{"members":[{"id":"n","host":"h","port":1,"zone":"a"}]}}"#,
            "watch.members[0].zone",
        ),
        (
            r#"{"id":"x","kind":"k8s","priority":1,"watch":{"resource":"pods","label_selector":"a=b","namspace":"d"}}"#,
            "watch.namspace",
        ),
    ] {
        let e = reject(json);
        assert_err(
            &e,
            "invalid_config",
            &[&format!("unknown field \"{field}\"")],
        );
        assert_eq!(e.field(), Some(field), "{json}");
    }
}

#[test]
fn endpoint_urls_must_parse_and_be_http() {
    for (json, field, says) in [
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["127.0.0.1:2379"],"watch":{"prefix":"/p/"}}"#,
            "endpoints[0]",
            "not a URL",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://h:1","http://h:99999"],"watch":{"prefix":"/p/"}}"#,
            "endpoints[1]",
            "port",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://bad host:1"],"watch":{"prefix":"/p/"}}"#,
            "endpoints[0]",
            "URL contains",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["ftp://h:1"],"watch":{"service":"s"}}"#,
            "endpoints[0]",
            "scheme \"ftp\" is not http or https",
        ),
        (
            r#"{"id":"x","kind":"consul","priority":1,"endpoints":["unix:///run/consul.sock"],"watch":{"service":"s"}}"#,
            "endpoints[0]",
            "scheme \"unix\"",
        ),
    ] {
        let e = reject(json);
        assert_err(
            &e,
            "invalid_config",
            &[&format!("field \"{field}\""), says, r#"provider "x""#],
        );
    }
}

#[test]
fn inline_secrets_are_rejected_without_echo() {
    for (json, field) in [
        (
            r#"{"id":"x","kind":"etcd","priority":1,"auth":{"token":"hunter2"}}"#,
            "auth.token",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"auth":{"username":"env:U","password":"hunter2"}}"#,
            "auth.password",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"tls":{"cert":"c.pem","key":"hunter2"}}"#,
            "tls.key",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":1,"endpoints":["http://root:hunter2@h:2379"],"watch":{"prefix":"/p/"}}"#,
            "endpoints[0]",
        ),
    ] {
        let e = reject(json);
        assert_err(
            &e,
            "inline_secret",
            &[&format!("field \"{field}\""), "inline secret"],
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    }
}
