//! The in-process half of the canary test (the CLI half is
//! `crates/cli/tests/cli/secrets_canary.rs`): every backend built from a
//! descriptor whose secrets resolve to canary values, then its `Debug`, the
//! descriptor's `Debug`, the resolved secrets' `Debug` and `Display`, the
//! errors of a failed resolution and the message of a panic that formats
//! all of them — no canary appears anywhere.

use std::panic::{AssertUnwindSafe, catch_unwind};

use provisioning_backend_consul::ConsulProvider;
use provisioning_backend_etcd::EtcdProvider;
use provisioning_backend_k8s::KubeProvider;
use provisioning_provider_api::SecretRef;
use provisioning_registry::{SecretResolver, descriptor_from_json};

const CONSUL_TOKEN: &str = "cnry-dbg-consul-41c2";
const K8S_TOKEN: &str = "cnry-dbg-k8s-93ad";
const ETCD_USER: &str = "cnry-dbg-etcd-user-07be";
const ETCD_PASS: &str = "cnry-dbg-etcd-pass-5f10";
const CANARIES: &[&str] = &[CONSUL_TOKEN, K8S_TOKEN, ETCD_USER, ETCD_PASS];

fn resolver() -> SecretResolver {
    SecretResolver::new("/nonexistent").with_env(|name| match name {
        "DBG_CONSUL" => Ok(CONSUL_TOKEN.to_owned()),
        "DBG_K8S" => Ok(K8S_TOKEN.to_owned()),
        "DBG_ETCD_USER" => Ok(ETCD_USER.to_owned()),
        "DBG_ETCD_PASS" => Ok(ETCD_PASS.to_owned()),
        // A variable whose *name* is fine but whose value is not UTF-8.
        "DBG_BAD" => Err(std::env::VarError::NotUnicode(CONSUL_TOKEN.into())),
        _ => Err(std::env::VarError::NotPresent),
    })
}

fn assert_clean(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(
            !text.contains(canary),
            "{canary} leaked through {what}: {text}"
        );
    }
}

#[test]
fn debug_errors_and_panic_messages_never_show_secret_values() {
    let secrets = resolver();
    let consul = descriptor_from_json(
        r#"{"id":"consul-a","kind":"consul","priority":20,"endpoints":["http://127.0.0.1:8500"],"auth":{"token":"env:DBG_CONSUL"},"watch":{"service":"app"}}"#,
    )
    .expect("consul descriptor");
    let k8s = descriptor_from_json(
        r#"{"id":"k8s","kind":"k8s","priority":30,"endpoints":["https://127.0.0.1:6443"],"auth":{"token":"env:DBG_K8S"},"watch":{"namespace":"default","resource":"pods","label_selector":"app=actors"}}"#,
    )
    .expect("k8s descriptor");
    let etcd = descriptor_from_json(
        r#"{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:2379"],"auth":{"username":"env:DBG_ETCD_USER","password":"env:DBG_ETCD_PASS"},"watch":{"prefix":"/cluster/app/"}}"#,
    )
    .expect("etcd descriptor");

    let consul_provider =
        ConsulProvider::from_descriptor(consul.clone(), &secrets).expect("consul provider");
    let k8s_provider = KubeProvider::from_descriptor(k8s.clone(), &secrets).expect("k8s provider");
    let etcd_provider =
        EtcdProvider::from_descriptor(etcd.clone(), &secrets).expect("etcd provider");

    let resolved: Vec<_> = [
        "env:DBG_CONSUL",
        "env:DBG_K8S",
        "env:DBG_ETCD_USER",
        "env:DBG_ETCD_PASS",
    ]
    .iter()
    .map(|r| {
        let reference = SecretRef::parse(r).expect("reference");
        secrets.resolve(&reference).expect("resolves")
    })
    .collect();
    // The canaries really are what the resolver hands out.
    let exposed: Vec<&str> = resolved.iter().map(|s| s.expose()).collect();
    assert_eq!(exposed, CANARIES);

    let failed = secrets
        .resolve(&SecretRef::parse("env:DBG_BAD").expect("reference"))
        .expect_err("not UTF-8");

    let everything = format!(
        "{consul:?}\n{k8s:?}\n{etcd:?}\n{consul_provider:?}\n{k8s_provider:?}\n{etcd_provider:?}\n{:?}\n{:?}\n{}\n{failed}\n{failed:?}",
        etcd_provider.config(),
        resolved,
        resolved
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
    assert_clean("Debug / Display / errors", &everything);
    assert!(
        everything.contains("env:DBG_CONSUL"),
        "references stay visible: {everything}"
    );

    let panic = catch_unwind(AssertUnwindSafe(|| {
        panic!("backend state at the panic: {consul_provider:?} {k8s_provider:?} {etcd_provider:?} {resolved:?}")
    }))
    .expect_err("panicked");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(message.contains("backend state"), "{message}");
    assert_clean("a panic message", &message);
}
