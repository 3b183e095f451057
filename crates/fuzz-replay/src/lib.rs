//! The decoders of outside data, each wrapped as one fuzz harness, and the
//! replay of every fuzz corpus and every recorded crash as ordinary tests.
//!
//! One harness per target: the fuzz targets in `fuzz/fuzz_targets/` call
//! [`run`] with libFuzzer's bytes, and `tests/replay.rs` calls it with every
//! file of `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/`, so CI
//! replays exactly what the fuzzer ran — without cargo-fuzz or a nightly
//! compiler.
//!
//! A harness never panics on input: every input ends as [`Outcome::Accepted`]
//! or [`Outcome::Rejected`] with the decoder's error code. Where a decoder
//! also encodes, the harness checks that what it accepted survives a round
//! trip; a failed check panics, which the fuzzer records as a crash.
//!
//! The Consul, Kubernetes and etcd decoders come from their backend crates
//! without the `client` feature, so neither this crate nor the fuzz build
//! compiles an HTTP, Kubernetes or etcd client (`tests/network_free.rs`
//! checks the dependency tree and `fuzz/Cargo.lock`).
//!
//! ```
//! use provisioning_fuzz_replay::{Outcome, run};
//! let line = br#"{"id":"a","kind":"in_memory","priority":1,"enabled":true}"#;
//! assert_eq!(run("store_jsonl", line), Some(Outcome::Accepted));
//! assert!(matches!(run("policy_json", b"{"), Some(Outcome::Rejected(_))));
//! assert_eq!(run("no_such_target", b""), None);
//! ```
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent;
use provisioning_backend_consul::{
    ConsulKind, ConsulWatch, MemberMapping as ConsulMapping, decode_health,
};
use provisioning_backend_etcd::{EtcdKind, decode_member};
use provisioning_backend_k8s::{
    KubeKind, KubeWatchConfig, MemberMapping as KubeMapping, ResponseFraming, ResponseLimit,
    pod_members, slice_members,
};
use provisioning_backend_memory::InMemoryKind;
use provisioning_failover::FailoverPolicy;
use provisioning_registry::{ProviderValidator, descriptor_from_json, descriptor_to_json};
use provisioning_store_file::FileProviderStore;

/// How a decoder ended on one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The input decoded (and, where the decoder encodes, round-tripped).
    Accepted,
    /// The decoder refused the input with a typed error; the string is its
    /// error code (or, for decoders without codes, a short reason).
    Rejected(String),
}

/// One fuzz target: its name (the file name in `fuzz/fuzz_targets/`, the
/// directory name under `fuzz/corpus/`) and its harness.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// What the target decodes.
    pub what: &'static str,
    /// The harness.
    pub harness: fn(&[u8]) -> Outcome,
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "store_jsonl",
        what: "providers.jsonl content through FileProviderStore::decode",
        harness: store_jsonl,
    },
    Target {
        name: "policy_json",
        what: "a failover policy file through FailoverPolicy::from_json",
        harness: policy_json,
    },
    Target {
        name: "consul_health",
        what: "a Consul health-service answer (status, headers, body) through decode_health and the member mapping",
        harness: consul_health,
    },
    Target {
        name: "k8s_pod",
        what: "a Kubernetes Pod object through pod_members",
        harness: k8s_pod,
    },
    Target {
        name: "k8s_slice",
        what: "a Kubernetes EndpointSlice object through slice_members",
        harness: k8s_slice,
    },
    Target {
        name: "k8s_watch_lines",
        what: "a Kubernetes watch body, in chunks, through the watch line limit (ResponseLimit), then each line as a Pod watch event through pod_members",
        harness: k8s_watch_lines,
    },
    Target {
        name: "etcd_value",
        what: "an etcd key and value under a prefix through decode_member",
        harness: etcd_value,
    },
    Target {
        name: "admin_provider_body",
        what: "the admin API's POST /providers body through descriptor_from_json and validation",
        harness: admin_provider_body,
    },
];

/// Runs the harness of the target named `name` on `data`; `None` for an
/// unknown name.
pub fn run(name: &str, data: &[u8]) -> Option<Outcome> {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .map(|t| (t.harness)(data))
}

fn rejected(code: impl Into<String>) -> Outcome {
    Outcome::Rejected(code.into())
}

/// `providers.jsonl`: decode; an accepted set encodes and decodes back to
/// itself.
pub fn store_jsonl(data: &[u8]) -> Outcome {
    static STORE: OnceLock<FileProviderStore> = OnceLock::new();
    let store = STORE.get_or_init(|| {
        FileProviderStore::new("/nonexistent/providers.jsonl").with_validator(builtin_validator())
    });
    match store.decode(data) {
        Err(e) => rejected(e.code()),
        Ok(set) => {
            let encoded = match store.encode(&set) {
                Ok(bytes) => bytes,
                Err(e) => panic!("a decoded set does not encode: {e}"),
            };
            match store.decode(&encoded) {
                Ok(again) => assert_eq!(again, set, "the encoded set decodes to another set"),
                Err(e) => panic!("the encoded set does not decode: {e}"),
            }
            Outcome::Accepted
        }
    }
}

/// The failover policy: parse; an accepted policy survives its JSON form.
pub fn policy_json(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return rejected("not_utf8");
    };
    match FailoverPolicy::from_json(text) {
        Err(e) => rejected(e.code()),
        Ok(policy) => {
            match FailoverPolicy::from_json(&policy.to_json()) {
                Ok(again) => assert_eq!(
                    again, policy,
                    "the policy's JSON form reads back differently"
                ),
                Err(e) => panic!("the policy's own JSON form is refused: {e}"),
            }
            Outcome::Accepted
        }
    }
}

/// Consul: the input is `STATUS\nName: value\n...\n\nBODY` (a status line,
/// header lines, a blank line, the body). Decoded answers are mapped to a
/// snapshot with the default watch.
pub fn consul_health(data: &[u8]) -> Outcome {
    static MAPPING: OnceLock<ConsulMapping> = OnceLock::new();
    let mapping = MAPPING.get_or_init(|| {
        let descriptor = descriptor_from_json(
            r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:8500"],"watch":{"service":"app"}}"#,
        );
        let watch = descriptor.and_then(|d| ConsulWatch::from_descriptor(&d));
        match watch {
            Ok(watch) => ConsulMapping::from_watch(&watch),
            Err(e) => panic!("the harness's own Consul descriptor is refused: {e}"),
        }
    });
    let (head, body) = split_once(data, b"\n\n").unwrap_or((data, &[]));
    let mut lines = head.split(|b| *b == b'\n');
    let status = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.trim().parse::<u16>().ok())
        .unwrap_or(200);
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = split_once(line, b":") else {
            continue;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    match decode_health(status, &headers, body) {
        Err(e) => rejected(format!("decode: {e}")),
        Ok(answer) => match mapping.snapshot(&answer.entries) {
            Err(e) => rejected(format!("mapping: {e}")),
            Ok(_) => Outcome::Accepted,
        },
    }
}

/// The mappings a Kubernetes object is run through: port by name, port by
/// label with unready pods and a blocked annotation, and the first port.
fn kube_mappings() -> &'static [KubeMapping] {
    static MAPPINGS: OnceLock<Vec<KubeMapping>> = OnceLock::new();
    MAPPINGS.get_or_init(|| {
        [
            KubeWatchConfig::pods("app=actors").with_port_name("remoting"),
            KubeWatchConfig::pods("app=actors")
                .with_port_label("remoting-port")
                .with_include_unready(true)
                .with_blocked_annotation("provisioning/blocked"),
            KubeWatchConfig::endpoint_slices("app").with_port_name("remoting"),
            KubeWatchConfig::endpoint_slices("app").with_include_unready(true),
        ]
        .iter()
        .map(KubeMapping::new)
        .collect()
    })
}

/// A Pod object as the watch delivers it (JSON), mapped to members.
pub fn k8s_pod(data: &[u8]) -> Outcome {
    match serde_json::from_slice::<Pod>(data) {
        Err(_) => rejected("not_a_pod"),
        Ok(pod) => {
            for mapping in kube_mappings() {
                let _members = pod_members(&pod, mapping);
            }
            Outcome::Accepted
        }
    }
}

/// An EndpointSlice object as the watch delivers it (JSON), mapped to
/// members.
pub fn k8s_slice(data: &[u8]) -> Outcome {
    match serde_json::from_slice::<EndpointSlice>(data) {
        Err(_) => rejected("not_an_endpoint_slice"),
        Ok(slice) => {
            for mapping in kube_mappings() {
                let _members = slice_members(&slice, mapping);
            }
            Outcome::Accepted
        }
    }
}

/// The watch line limit of [`k8s_watch_lines`]: the provider's is
/// `MAX_RESPONSE_BYTES` (64 MiB), which no fuzz input reaches; the framing
/// code is the same.
pub const WATCH_LINE_LIMIT: usize = 4096;

/// A Kubernetes watch body: the input is `CHUNK\nBODY`, where `CHUNK` is
/// the decimal size (1–65536, else 7) of the pieces the body arrives in.
/// The pieces go through the provider's watch line limit
/// ([`ResponseLimit`], [`ResponseFraming::Lines`]), whose verdict must not depend
/// on where the body was cut: it must agree with splitting the whole body
/// at `\n`. Within the limit, each line is read as kube's watcher reads it
/// (UTF-8; a trailing `\r` dropped; a line whose JSON ends early, blank
/// ones included, skipped) as a Pod watch event, and every Pod is mapped.
pub fn k8s_watch_lines(data: &[u8]) -> Outcome {
    let (head, body) = split_once(data, b"\n").unwrap_or((b"", data));
    let chunk = std::str::from_utf8(head)
        .ok()
        .and_then(|h| h.trim().parse::<usize>().ok())
        .filter(|n| (1..=65536).contains(n))
        .unwrap_or(7);
    let mut limit = ResponseLimit::new("fuzz input", ResponseFraming::Lines, WATCH_LINE_LIMIT);
    let framed = body.chunks(chunk).try_for_each(|piece| limit.feed(piece));
    let longest = body
        .split(|b| *b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert_eq!(
        framed.is_err(),
        longest > WATCH_LINE_LIMIT,
        "the line limit's verdict depends on the chunking (longest line {longest} bytes, chunks of {chunk})"
    );
    if framed.is_err() {
        return rejected("line_too_long");
    }
    for line in body.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            return rejected("not_utf8");
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        match serde_json::from_str::<WatchEvent<Pod>>(line) {
            Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod) | WatchEvent::Deleted(pod)) => {
                for mapping in kube_mappings() {
                    let _members = pod_members(&pod, mapping);
                }
            }
            Ok(_) => {}
            // What kube skips: a blank line, or the last one cut short.
            Err(e) if e.is_eof() => {}
            Err(_) => return rejected("not_a_watch_event"),
        }
    }
    Outcome::Accepted
}

/// etcd: the input is `PREFIX\nKEY\nVALUE` (the value may hold newlines).
pub fn etcd_value(data: &[u8]) -> Outcome {
    let (prefix, rest) = split_once(data, b"\n").unwrap_or((b"/cluster/app/", data));
    let (key, value) = split_once(rest, b"\n").unwrap_or((rest, &[]));
    match decode_member(prefix, key, value) {
        Err(_) => rejected("not_a_member"),
        Ok(spec) => {
            assert!(
                !spec.id.as_str().is_empty(),
                "a decoded member has an empty id"
            );
            Outcome::Accepted
        }
    }
}

/// `POST /providers`: the body must be UTF-8, decode as a descriptor and
/// pass validation; an accepted descriptor survives its stored form.
pub fn admin_provider_body(data: &[u8]) -> Outcome {
    static VALIDATOR: OnceLock<ProviderValidator> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else {
        return rejected("not_utf8");
    };
    let descriptor = match descriptor_from_json(text) {
        Ok(d) => d,
        Err(e) => return rejected(e.code()),
    };
    let stored = match descriptor_to_json(&descriptor) {
        Ok(json) => json,
        Err(e) => panic!("a decoded descriptor does not encode: {e}"),
    };
    match descriptor_from_json(&stored) {
        Ok(again) => assert_eq!(
            again, descriptor,
            "the stored form decodes to another descriptor"
        ),
        Err(e) => panic!("the stored form of a decoded descriptor is refused: {e}"),
    }
    match VALIDATOR
        .get_or_init(builtin_validator)
        .validate(&descriptor)
    {
        Ok(()) => Outcome::Accepted,
        Err(e) => rejected(e.code()),
    }
}

/// The four built-in kinds, schema only (their backends are built without
/// a client here).
fn builtin_validator() -> ProviderValidator {
    ProviderValidator::new()
        .with_kind(Arc::new(InMemoryKind::new()))
        .with_kind(Arc::new(ConsulKind::new()))
        .with_kind(Arc::new(KubeKind::new()))
        .with_kind(Arc::new(EtcdKind::new()))
}

fn split_once<'a>(data: &'a [u8], separator: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = data.windows(separator.len()).position(|w| w == separator)?;
    Some((&data[..at], &data[at + separator.len()..]))
}
