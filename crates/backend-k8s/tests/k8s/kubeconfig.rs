//! The client from a kubeconfig (no `endpoints`): the child process reads
//! `KUBECONFIG` (the environment cannot be changed safely inside a
//! multi-threaded test process, so the parent starts the test binary again
//! with it set).

use std::time::Duration;

use futures::StreamExt;
use provisioning_backend_k8s::KubeProvider;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor, ProviderEvent};
use provisioning_testkit::fake_kube::{ObjectKind, RequestKind, pod};
use serde_json::json;

use crate::support::{fake, options, secrets};

const CHILD: &str = "K8S_KUBECONFIG_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubeconfig_gives_server_namespace_and_token() {
    let fake = fake().await;
    fake.upsert_pod(
        "team-a",
        &pod("p1", "10.0.0.1")
            .label("app", "actors")
            .port("remoting", 4000),
    );
    let dir = std::env::temp_dir().join(format!("k8s-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: fake\n    user: tester\n    namespace: team-a\nusers:\n- name: tester\n  user:\n    token: kc-token\n",
        fake.url()
    );
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    let exe = std::env::current_exe().expect("test binary");
    let child_path = path.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "kubeconfig::child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("KUBECONFIG", &child_path)
            .output()
    })
    .await
    .expect("join")
    .expect("run the child");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "the child ran: {stdout}");
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.kind == RequestKind::List(ObjectKind::Pod))
        .collect();
    assert!(!lists.is_empty(), "the child listed through the fake");
    assert_eq!(
        lists[0].path, "/api/v1/namespaces/team-a/pods",
        "the context's namespace"
    );
    assert_eq!(lists[0].authorization.as_deref(), Some("Bearer kc-token"));
}

/// Runs only inside the parent's child process (passes trivially
/// otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let descriptor: ProviderDescriptor = serde_json::from_value(json!({
        "id": "k8s", "kind": "k8s", "priority": 1,
        "watch": {"resource": "pods", "label_selector": "app=actors"},
    }))
    .expect("descriptor");
    let provider = KubeProvider::from_descriptor(descriptor, &secrets()).expect("provider");
    let mut stream = provider.stream(options());
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(ProviderEvent::Snapshot(s))) => {
            assert_eq!(s.len(), 1, "{s:?}");
            assert_eq!(s.members()[0].id.as_str(), "p1");
        }
        other => panic!("{other:?}"),
    }
}
