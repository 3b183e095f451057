//! Shared helpers: descriptors, child processes, a seeded generator.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use std::path::PathBuf;
use std::sync::Arc;

use provisioning_backend_consul::ConsulKind;
use provisioning_backend_etcd::EtcdKind;
use provisioning_backend_memory::InMemoryKind;
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProviderValidator, descriptor_from_json};
use provisioning_store_file::FileProviderStore;

/// A validator that knows the kinds the tests store.
pub(crate) fn builtin() -> ProviderValidator {
    ProviderValidator::new()
        .with_kind(Arc::new(InMemoryKind::new()))
        .with_kind(Arc::new(ConsulKind::new()))
        .with_kind(Arc::new(EtcdKind::new()))
        .with_kind(Arc::new(provisioning_backend_k8s::KubeKind::new()))
}

/// A file store at `path` validating with [`builtin`].
pub(crate) fn file_store(path: impl Into<PathBuf>) -> FileProviderStore {
    FileProviderStore::new(path).with_validator(builtin())
}

/// A valid descriptor from JSON.
pub(crate) fn d(json: &str) -> ProviderDescriptor {
    descriptor_from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// An in-memory provider with `members` members (to make files bigger).
pub(crate) fn mem(id: &str, priority: u32, members: usize) -> ProviderDescriptor {
    let members: Vec<String> = (0..members)
        .map(|i| {
            format!(
                r#"{{"id":"{id}-n{i}","host":"10.0.{}.{}","port":4000,"labels":{{"zone":"z{}"}}}}"#,
                i / 250,
                i % 250,
                i % 3
            )
        })
        .collect();
    d(&format!(
        r#"{{"id":"{id}","kind":"in_memory","priority":{priority},"watch":{{"members":[{}]}}}}"#,
        members.join(",")
    ))
}

/// An etcd provider with its own prefix.
pub(crate) fn etcd(id: &str, priority: u32) -> ProviderDescriptor {
    d(&format!(
        r#"{{"id":"{id}","kind":"etcd","priority":{priority},"endpoints":["http://127.0.0.1:2379"],"auth":{{"token":"env:ETCD_TOKEN"}},"watch":{{"prefix":"/{id}/"}}}}"#
    ))
}

/// The old and the new set of the crash tests: different sizes, so a torn
/// or mixed file cannot pass for either.
pub(crate) fn old_set() -> Vec<ProviderDescriptor> {
    vec![etcd("etcd-a", 10), mem("local", 0, 20)]
}

pub(crate) fn new_set() -> Vec<ProviderDescriptor> {
    vec![etcd("etcd-a", 10), mem("local", 0, 60), etcd("etcd-b", 20)]
}

/// xorshift64*: deterministic per seed, printed on failure.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn from_time() -> (Self, u64) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        (Self(seed), seed)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Env var that turns a re-executed test binary into a child process.
pub(crate) const CHILD_ENV: &str = "PROVISIONING_STORE_FILE_TEST_CHILD";

/// Re-executes this test binary running only `test` (its path without the
/// crate name), in child mode `mode`.
pub(crate) fn spawn_child(test: &str, mode: &str, stdin: bool) -> (Child, BufReader<ChildStdout>) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (child, stdout)
}

/// Reads child output lines until one contains `prefix`; returns the line
/// from there.
pub(crate) fn wait_for_line(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "child ended before printing {prefix:?}");
        // libtest may have printed `test name ... ` on the same line.
        if let Some(at) = line.find(prefix) {
            return line[at..].trim_end().to_owned();
        }
    }
}

/// The test's name as libtest knows it (module path without the crate).
pub(crate) fn test_name(module_path: &str, function: &str) -> String {
    let module = module_path.split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{function}")
}
