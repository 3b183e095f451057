//! The preflight probe and descriptor checks.

use provisioning_backend_k8s::{KubeProbe, KubeProvider};
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::ProviderProbe;
use provisioning_testkit::fake_kube::{KubeDriverMode, ObjectKind, RequestKind};
use serde_json::json;

use crate::support::{driver, fake, secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_then_names_the_missing_rbac_rule_then_reports_unreachable() {
    let fake = fake().await;
    let driver = driver(&fake, KubeDriverMode::Pods);
    let descriptor = driver.descriptor("k8s", json!({})).expect("descriptor");
    let secrets = secrets();
    KubeProbe
        .probe(&descriptor, &secrets)
        .await
        .expect("list and watch allowed");
    assert_eq!(fake.count(RequestKind::Version), 1);
    assert_eq!(
        fake.count(RequestKind::AccessReview),
        2,
        "list and watch asked"
    );

    fake.deny(ObjectKind::Pod, "watch");
    let e = KubeProbe.probe(&descriptor, &secrets).await.unwrap_err();
    assert_eq!(e.code(), "permission_denied", "{e}");
    let text = e.to_string();
    assert!(
        text.contains(r#"apiGroups [""], resources ["pods"], verbs ["watch"] in namespace "apps""#),
        "{text}"
    );
    assert!(
        !text.contains(r#"verbs ["list"]"#),
        "only the missing rule: {text}"
    );
    assert!(text.contains("k8s"), "names the provider: {text}");

    // Where access reviews are forbidden, a one-item list checks `list`.
    fake.heal();
    fake.set_reviews_forbidden(true);
    KubeProbe
        .probe(&descriptor, &secrets)
        .await
        .expect("list allowed, reviews forbidden");
    fake.deny(ObjectKind::Pod, "list");
    let e = KubeProbe.probe(&descriptor, &secrets).await.unwrap_err();
    assert_eq!(e.code(), "permission_denied", "{e}");
    assert!(e.to_string().contains(r#"verbs ["list"]"#), "{e}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.kind == RequestKind::List(ObjectKind::Pod)
                && r.query.get("limit").map(String::as_str) == Some("1")),
        "the fallback list"
    );

    fake.heal();
    fake.down();
    let e = KubeProbe.probe(&descriptor, &secrets).await.unwrap_err();
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(e.is_retryable());
}

fn descriptor(json: serde_json::Value) -> ProviderDescriptor {
    serde_json::from_value(json).expect("descriptor json")
}

#[test]
fn descriptor_errors_name_the_field() {
    let secrets = secrets();
    let build = |json| KubeProvider::from_descriptor(descriptor(json), &secrets).unwrap_err();
    let watch = json!({"resource": "pods", "label_selector": "app=a"});
    for (json, field) in [
        (
            json!({"id": "k", "kind": "k8s", "priority": 1, "watch": {"resource": "pods"}}),
            "watch.label_selector",
        ),
        (
            json!({"id": "k", "kind": "k8s", "priority": 1, "watch": {"resource": "pods", "label_selector": "a", "labelselector": "b"}}),
            "watch.labelselector",
        ),
        (
            json!({"id": "k", "kind": "etcd", "priority": 1, "watch": watch}),
            "kind",
        ),
        (
            json!({"id": "k", "kind": "k8s", "priority": 1, "endpoints": ["http://a", "http://b"], "watch": watch}),
            "endpoints",
        ),
        (
            json!({"id": "k", "kind": "k8s", "priority": 1, "endpoints": ["ftp://a"], "watch": watch}),
            "endpoints[0]",
        ),
        (
            json!({"id": "k", "kind": "k8s", "priority": 1, "endpoints": ["https://a"], "auth": {"username": "env:U", "password": "env:P"}, "watch": watch}),
            "auth",
        ),
        (
            json!({"id": "k", "kind": "k8s", "priority": 1, "auth": {"token": "env:T"}, "watch": watch}),
            "auth",
        ),
    ] {
        let e = build(json.clone());
        assert_eq!(e.code(), "invalid_config", "{json}: {e}");
        match e {
            provisioning_backend_k8s::KubeError::Invalid(p) => {
                assert_eq!(p.field(), Some(field), "{json}: {p}");
                assert_eq!(p.provider().map(|p| p.as_str()), Some("k"), "{p}");
            }
            other => panic!("{json}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_reach_the_client() {
    let secrets = secrets();
    let base = json!({"id": "k", "kind": "k8s", "priority": 1, "endpoints": ["https://127.0.0.1:9"],
        "watch": {"namespace": "apps", "resource": "pods", "label_selector": "app=a"}});
    // A CA file that cannot be read is a configuration error, not an outage.
    let mut missing_ca = base.clone();
    missing_ca["tls"] = json!({"ca": "/nonexistent/ca.pem"});
    let e = KubeProbe
        .probe(&descriptor(missing_ca), &secrets)
        .await
        .unwrap_err();
    println!("missing CA: {e}");
    assert_eq!(e.code(), "invalid_config", "{e}");
    // Nothing listens on port 9: unreachable, retryable.
    let mut no_verify = base;
    no_verify["tls"] = json!({"verify": false});
    let e = KubeProbe
        .probe(&descriptor(no_verify), &secrets)
        .await
        .unwrap_err();
    println!("nothing listening: {e}");
    assert_eq!(e.code(), "backend_unavailable", "{e}");
}
