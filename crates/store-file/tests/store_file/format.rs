//! The `providers.jsonl` format through the real file system: round trip,
//! lexical rules, every rejection with file, line, field and code, modes,
//! the lock, and loads that are whole or nothing.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use provisioning_registry::{ProviderRegistry, ProviderStore, ProvisioningError};
use provisioning_store_file::FileProviderStore;

use crate::common::{etcd, mem};

fn store_with(content: &[u8]) -> (tempfile::TempDir, FileProviderStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.jsonl");
    std::fs::write(&path, content).unwrap();
    (dir, crate::common::file_store(path))
}

fn load_err(content: &str) -> ProvisioningError {
    store_with(content.as_bytes()).1.load().unwrap_err()
}

const CONTRACT_SORTED: &str = concat!(
    r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"host":"127.0.0.1","id":"n1","port":4000}]},"enabled":true}"#,
    "\n",
    r#"{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:8500"],"auth":{"token":"env:CONSUL_HTTP_TOKEN"},"watch":{"consistency":"default","passing":true,"service":"app","wait":"4s"},"enabled":true}"#,
    "\n",
    r#"{"id":"k8s","kind":"k8s","priority":30,"tls":{"ca":"ca.pem","cert":"c.pem","key":"file:k.pem","verify":false},"watch":{"label_selector":"app=actors","namespace":"default","port_name":"remoting","resource":"pods"},"enabled":false}"#,
    "\n",
    r#"{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:2379"],"auth":{"username":"env:U","password":"file:/run/p"},"watch":{"prefix":"/cluster/app/"},"enabled":true}"#,
    "\n",
);

/// `watch` is a key-ordered map in the contract crate, so the canonical
/// form has `watch` keys sorted at every depth; everything else keeps the
/// stored key order of CONTRACTS §1.
#[test]
fn a_written_file_is_byte_identical_after_load_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::common::file_store(dir.path().join("providers.jsonl"));
    let set = vec![
        mem("local", 0, 5),
        etcd("etcd-a", 10),
        etcd("etcd-b", 20).with_enabled(false),
    ];
    store.save(&set).unwrap();
    let written = std::fs::read(store.path()).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, set);
    store.save(&loaded).unwrap();
    assert_eq!(std::fs::read(store.path()).unwrap(), written);
}

#[test]
fn hand_written_watch_keys_are_written_sorted() {
    let line = r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://h:8500"],"watch":{"service":"app","passing":true},"enabled":true}"#;
    let (_dir, store) = store_with(format!("{line}\n").as_bytes());
    store.save(&store.load().unwrap()).unwrap();
    assert_eq!(
        std::fs::read_to_string(store.path()).unwrap(),
        "{\"id\":\"c\",\"kind\":\"consul\",\"priority\":1,\"endpoints\":[\"http://h:8500\"],\"watch\":{\"passing\":true,\"service\":\"app\"},\"enabled\":true}\n"
    );
}

#[test]
fn a_canonical_file_is_byte_identical_after_load_and_save() {
    let (_dir, store) = store_with(CONTRACT_SORTED.as_bytes());
    let loaded = store.load().unwrap();
    assert_eq!(loaded.len(), 4);
    std::fs::remove_file(store.path()).unwrap();
    store.save(&loaded).unwrap();
    assert_eq!(
        std::fs::read_to_string(store.path()).unwrap(),
        CONTRACT_SORTED
    );
    // And through the registry.
    let registry = ProviderRegistry::builder()
        .with_validator(crate::common::builtin())
        .with_store(Arc::new(store.clone()))
        .build();
    registry.load().unwrap();
    registry.save().unwrap();
    assert_eq!(
        std::fs::read_to_string(store.path()).unwrap(),
        CONTRACT_SORTED
    );
}

#[test]
fn save_writes_key_order_final_newline_enabled_and_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::common::file_store(dir.path().join("providers.jsonl"));
    store.save(&[mem("local", 0, 0).clone()]).unwrap();
    assert_eq!(
        std::fs::read_to_string(store.path()).unwrap(),
        "{\"id\":\"local\",\"kind\":\"in_memory\",\"priority\":0,\"watch\":{\"members\":[]},\"enabled\":true}\n"
    );
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let lock_mode = std::fs::metadata(store.lock_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(lock_mode, 0o600);
    assert!(!store.tmp_path().exists());
}

#[test]
fn missing_empty_and_no_final_newline() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        crate::common::file_store(dir.path().join("none.jsonl"))
            .load()
            .unwrap()
            .is_empty()
    );
    assert!(store_with(b"").1.load().unwrap().is_empty());
    let line = CONTRACT_SORTED.lines().next().unwrap();
    assert_eq!(store_with(line.as_bytes()).1.load().unwrap().len(), 1);
}

#[test]
fn lexical_errors_name_file_and_line() {
    let first = CONTRACT_SORTED.lines().next().unwrap();
    let second = CONTRACT_SORTED.lines().nth(1).unwrap();
    for (content, line, says) in [
        (format!("{first}\n\n{second}\n"), 2, "blank line"),
        (format!("{first}\n   \n"), 2, "blank line"),
        (format!("{first}\r\n{second}\n"), 1, "carriage return"),
        (format!("{first}\n{second}\r\n"), 2, "carriage return"),
        (format!("\u{feff}{first}\n"), 1, "byte-order mark"),
        (format!("{first}\n{second}\n\n"), 3, "blank line"),
    ] {
        let e = load_err(&content);
        assert_eq!(e.code(), "invalid_config");
        assert_eq!(e.line(), Some(line), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("providers.jsonl:{line}: {says}")),
            "{e}"
        );
    }
    let mut bytes = format!("{first}\n").into_bytes();
    bytes.extend_from_slice(b"{\"id\":\"x\xc3\x28\"}\n");
    let e = store_with(&bytes).1.load().unwrap_err();
    assert_eq!(
        e.to_string(),
        "providers.jsonl:2: invalid UTF-8 at column 9"
    );
}

#[test]
fn every_rejection_names_file_line_field_and_code() {
    let first = CONTRACT_SORTED.lines().next().unwrap();
    let etcd_a = r#"{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/cluster/app/"}}"#;
    for (bad, code, message) in [
        (
            r#"{"id":"a","kind":"etcd","prioirty":1}"#,
            "invalid_config",
            r#"unknown field "prioirty""#,
        ),
        (
            r#"{"id":"local","kind":"in_memory","priority":5}"#,
            "duplicate_name",
            r#"provider "local": field "id""#,
        ),
        (
            r#"{"id":"b","kind":"in_memory","priority":0}"#,
            "duplicate_priority",
            r#"provider "b": field "priority": priority 0 is already used by provider "local""#,
        ),
        (
            r#"{"id":"etcd-b","kind":"etcd","priority":11,"endpoints":["http://127.0.0.1:2379/"],"watch":{"prefix":"/cluster/app/"}}"#,
            "conflict",
            r#"provider "etcd-b": field "watch""#,
        ),
        (
            r#"{"id":"x","kind":"zookeeper","priority":3}"#,
            "invalid_config",
            r#"provider "x": field "kind": unknown kind"#,
        ),
        (
            r#"{"id":"x","kind":"consul","priority":3,"endpoints":["http://h:1"]}"#,
            "invalid_config",
            r#"provider "x": field "watch.service": missing"#,
        ),
        (
            r#"{"id":"x","kind":"consul","priority":3,"endpoints":["http://h:1"],"watch":{"service":"a","wait":"soon"}}"#,
            "invalid_config",
            r#"provider "x": field "watch.wait": duration needs"#,
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3,"endpoints":["http://h:1"],"watch":{"prefix":"/p/","register":{"id":"n","host":"h","port":1,"tll":"5s"}}}"#,
            "invalid_config",
            r#"unknown field "watch.register.tll""#,
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3,"auth":{"tokn":"env:T"}}"#,
            "invalid_config",
            r#"unknown field "auth.tokn""#,
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3,"endpoints":["grpc://h:1"],"watch":{"prefix":"/p/"}}"#,
            "invalid_config",
            r#"provider "x": field "endpoints[0]": scheme "grpc" is not http or https"#,
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3,"endpoints":["http//h:1"],"watch":{"prefix":"/p/"}}"#,
            "invalid_config",
            r#"provider "x": field "endpoints[0]": not a URL"#,
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3,"auth":{"token":"hunter2"}}"#,
            "inline_secret",
            r#"field "auth.token": inline secret (value not shown)"#,
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3"#,
            "invalid_config",
            "invalid JSON",
        ),
        (
            r#"["x","etcd",3]"#,
            "invalid_config",
            "expected a JSON object",
        ),
        (
            r#"{"id":"x","kind":"etcd","priority":3,"enabled":1}"#,
            "invalid_config",
            r#"field "enabled": invalid type"#,
        ),
    ] {
        let e = load_err(&format!("{first}\n{etcd_a}\n{bad}\n"));
        assert_eq!(e.code(), code, "{e}");
        assert_eq!(e.line(), Some(3), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("providers.jsonl:3: {message}")),
            "{text:?} does not start with {message:?}"
        );
        assert!(!text.contains("hunter2"));
    }
    // The exact line of CONTRACTS §1.
    let e = load_err(&format!(
        "{first}\n{etcd_a}\n{{\"id\":\"a\",\"kind\":\"etcd\",\"prioirty\":1}}\n"
    ));
    assert_eq!(
        format!("error[{}]: {e}", e.code()),
        r#"error[invalid_config]: providers.jsonl:3: unknown field "prioirty""#
    );
}

#[test]
fn a_bad_line_loads_nothing() {
    let (_dir, store) = store_with(CONTRACT_SORTED.as_bytes());
    let registry = ProviderRegistry::builder()
        .with_validator(crate::common::builtin())
        .with_store(Arc::new(store.clone()))
        .build();
    registry.load().unwrap();
    let mut broken = CONTRACT_SORTED.to_owned();
    broken.push_str("{\"id\":\"zz\"}\n");
    std::fs::write(store.path(), broken).unwrap();
    let e = registry.load().unwrap_err();
    assert_eq!(e.line(), Some(5));
    assert_eq!(registry.len(), 4, "the registry kept its set");
}

#[test]
fn a_held_lock_times_out_and_a_stale_tmp_is_removed_only_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("providers.jsonl");
    let holder = crate::common::file_store(&path);
    let waiter = crate::common::file_store(&path).with_lock_timeout(Duration::from_millis(50));
    std::fs::write(holder.tmp_path(), "garbage").unwrap();
    {
        let _txn = holder.transaction().unwrap();
        let e = waiter.save(&[etcd("e", 1)]).unwrap_err();
        assert_eq!(e.code(), "store_busy");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("providers.jsonl.lock"), "{e}");
        // Loading takes no lock and leaves the .tmp alone.
        assert!(waiter.load().unwrap().is_empty());
        assert!(holder.tmp_path().exists());
    }
    waiter.save(&[etcd("e", 1)]).unwrap();
    assert!(!holder.tmp_path().exists());
    assert_eq!(holder.load().unwrap(), vec![etcd("e", 1)]);
}

#[test]
fn save_refuses_an_invalid_set_and_leaves_the_file() {
    let (_dir, store) = store_with(CONTRACT_SORTED.as_bytes());
    let e = store.save(&[etcd("a", 1), etcd("b", 1)]).unwrap_err();
    assert_eq!(e.code(), "duplicate_priority");
    assert_eq!(
        std::fs::read_to_string(store.path()).unwrap(),
        CONTRACT_SORTED
    );
}

#[test]
fn io_errors_carry_path_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::common::file_store(dir.path().join("missing-dir").join("providers.jsonl"));
    let e = store.save(&[etcd("e", 1)]).unwrap_err();
    assert_eq!(e.code(), "backend_unavailable");
    assert!(e.to_string().contains("missing-dir"), "{e}");
    assert_eq!(
        store.secret_resolver().base_dir(),
        dir.path().join("missing-dir")
    );
    let registry = ProviderRegistry::builder()
        .with_validator(crate::common::builtin())
        .with_store(Arc::new(store))
        .build();
    assert_eq!(
        registry.secret_resolver().base_dir(),
        dir.path().join("missing-dir")
    );
}

struct Zk;

impl provisioning_registry::BackendKind for Zk {
    fn name(&self) -> &str {
        "zookeeper"
    }
    fn validate_watch(
        &self,
        d: &provisioning_provider_api::ProviderDescriptor,
    ) -> Result<(), ProvisioningError> {
        match d.watch.keys().find(|k| k.as_str() != "path") {
            Some(key) => Err(ProvisioningError::UnknownField {
                provider: None,
                field: format!("watch.{key}"),
            }),
            None => Ok(()),
        }
    }
    fn build(
        &self,
        d: &provisioning_provider_api::ProviderDescriptor,
        _: &provisioning_registry::BuildContext,
    ) -> Result<Arc<dyn provisioning_provider_api::ClusterProvider>, ProvisioningError> {
        Err(ProvisioningError::invalid(
            Some(&d.id),
            None,
            "not built in this test",
        ))
    }
}

#[test]
fn custom_kinds_load_with_the_registrys_validator() {
    let line = r#"{"id":"zk","kind":"zookeeper","priority":1,"endpoints":["http://h:2181"],"watch":{"path":"/m"},"enabled":true}"#;
    let (_dir, store) = store_with(format!("{line}\n").as_bytes());
    let e = store.load().unwrap_err();
    assert!(
        e.to_string().starts_with(
            r#"providers.jsonl:1: provider "zk": field "kind": unknown kind "zookeeper""#
        ),
        "{e}"
    );
    let validator = crate::common::builtin().with_kind(Arc::new(Zk));
    let store = store.with_validator(validator);
    assert_eq!(store.load().unwrap().len(), 1);
    std::fs::write(
        store.path(),
        format!(
            "{line}\n{}\n",
            line.replace("\"zk\"", "\"zk2\"")
                .replace("\"priority\":1", "\"priority\":2")
                .replace("path", "pth")
        ),
    )
    .unwrap();
    assert_eq!(
        store.load().unwrap_err().to_string(),
        r#"providers.jsonl:2: unknown field "watch.pth" in provider "zk2""#
    );
}
