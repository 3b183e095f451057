//! The preflight probe: leader, token may read the service, service known.

use provisioning_backend_consul::ConsulProbe;
use provisioning_registry::{ProviderProbe, SecretResolver};
use provisioning_testkit::fake_consul::{FakeAclPolicy, FakeFailure};

use crate::{descriptor, setup};

#[tokio::test]
async fn probe_passes_on_a_healthy_cluster() {
    let (consul, provider) = setup("").await;
    provider.probe().await.unwrap_or_else(|e| panic!("{e}"));
    // Through the registry's trait too.
    let secrets = SecretResolver::new(std::env::temp_dir());
    let d = descriptor(&consul, "", "");
    ConsulProbe
        .probe(&d, &secrets)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<_> = consul.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&"/v1/status/leader".to_owned()), "{paths:?}");
    assert!(
        paths.contains(&"/v1/catalog/services".to_owned()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn probe_reports_each_failure_with_its_code() {
    let (consul, provider) = setup("").await;

    consul.set_leader("");
    let e = provider
        .probe()
        .await
        .err()
        .unwrap_or_else(|| panic!("no leader passed"));
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(e.to_string().contains("no cluster leader"), "{e}");
    consul.set_leader("127.0.0.1:8300");

    consul.set_failure(FakeFailure::Forbidden);
    let e = provider
        .probe()
        .await
        .err()
        .unwrap_or_else(|| panic!("403 passed"));
    assert_eq!(e.code(), "permission_denied", "{e}");
    assert!(!e.is_retryable());
    consul.set_failure(FakeFailure::None);

    consul.enable_acl(FakeAclPolicy::read(&["other"]));
    let e = provider
        .probe()
        .await
        .err()
        .unwrap_or_else(|| panic!("filtered passed"));
    assert_eq!(e.code(), "permission_denied", "{e}");
    assert!(
        e.to_string().contains("may not read service \"app\""),
        "{e}"
    );
    consul.enable_acl(FakeAclPolicy::all());

    consul.set_instances(crate::SERVICE, Vec::new());
    let e = provider
        .probe()
        .await
        .err()
        .unwrap_or_else(|| panic!("unknown service passed"));
    assert_eq!(e.code(), "invalid_config", "{e}");
    assert!(e.to_string().contains("watch.service"), "{e}");

    consul
        .refuse_connections(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let e = provider
        .probe()
        .await
        .err()
        .unwrap_or_else(|| panic!("refused passed"));
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(e.is_retryable());
}
