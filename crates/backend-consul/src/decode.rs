//! The pure decoder of `/v1/health/service` answers: [`decode_health`]
//! (status, headers and body bytes to a [`HealthAnswer`]), [`decode_meta`]
//! (the blocking-query headers), their error, [`DecodeError`], and the
//! decoded data: [`HealthAnswer`], its header metadata ([`QueryMeta`]) and
//! its entries with their node, service instance and checks.
//!
//! No I/O and no HTTP client: it compiles without the `client` feature, so
//! it is tested and fuzzed without a network stack.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use http::header::HeaderMap;
use serde::Deserialize;

/// Longest error message kept from a Consul error body.
const MAX_MESSAGE: usize = 200;

/// Why an answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Consul answered an error status; `message` is its (shortened) body.
    #[error("HTTP {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Consul's message.
        message: String,
    },
    /// A successful answer without `X-Consul-Index`.
    #[error("X-Consul-Index header missing")]
    MissingIndex,
    /// A header that cannot be parsed.
    #[error("header {name}: cannot parse {value:?}")]
    BadHeader {
        /// Header name.
        name: &'static str,
        /// Its value (shortened).
        value: String,
    },
    /// The body is not the expected JSON.
    #[error("body: {0}")]
    Body(String),
}

fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The error message of a non-2xx answer: Consul sends plain text.
pub(crate) fn status_error(status: u16, body: &[u8]) -> DecodeError {
    let text = String::from_utf8_lossy(body);
    let message = if text.trim().is_empty() {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_owned()
    } else {
        shorten(&text, MAX_MESSAGE)
    };
    DecodeError::Status { status, message }
}

/// Reads the blocking-query headers of a 2xx answer.
pub fn decode_meta(headers: &HeaderMap) -> Result<QueryMeta, DecodeError> {
    fn text<'h>(
        headers: &'h HeaderMap,
        name: &'static str,
    ) -> Result<Option<&'h str>, DecodeError> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim()))
                .map_err(|_| DecodeError::BadHeader {
                    name,
                    value: shorten(&String::from_utf8_lossy(v.as_bytes()), 40),
                }),
        }
    }
    let bad = |name: &'static str, value: &str| DecodeError::BadHeader {
        name,
        value: shorten(value, 40),
    };
    let index = match text(headers, "X-Consul-Index")? {
        None => return Err(DecodeError::MissingIndex),
        Some(v) => v.parse::<u64>().map_err(|_| bad("X-Consul-Index", v))?,
    };
    let known_leader = match text(headers, "X-Consul-KnownLeader")? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => return Err(bad("X-Consul-KnownLeader", v)),
    };
    let last_contact = match text(headers, "X-Consul-LastContact")? {
        None => None,
        Some(v) => Some(Duration::from_millis(
            v.parse::<u64>()
                .map_err(|_| bad("X-Consul-LastContact", v))?,
        )),
    };
    let filtered_by_acls = text(headers, "X-Consul-Results-Filtered-By-ACLs")? == Some("true");
    Ok(QueryMeta {
        index,
        known_leader,
        last_contact,
        filtered_by_acls,
    })
}

/// Decodes a `/v1/health/service` answer from its status, headers and body.
///
/// A pure function: no I/O, no panics on any input.
///
/// ```
/// use provisioning_backend_consul::decode_health;
/// use http::header::{HeaderMap, HeaderValue};
/// let mut headers = HeaderMap::new();
/// headers.insert("X-Consul-Index", HeaderValue::from_static("42"));
/// let body = br#"[{"Node":{"Node":"n1","Address":"10.0.0.1"},
///                 "Service":{"ID":"app-1","Service":"app","Address":"","Port":4000},
///                 "Checks":[]}]"#;
/// let answer = decode_health(200, &headers, body)?;
/// assert_eq!(answer.meta.index, 42);
/// assert_eq!(answer.entries[0].node.address, "10.0.0.1");
/// assert!(decode_health(200, &HeaderMap::new(), body).is_err());
/// # Ok::<(), provisioning_backend_consul::DecodeError>(())
/// ```
pub fn decode_health(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HealthAnswer, DecodeError> {
    if !(200..300).contains(&status) {
        return Err(status_error(status, body));
    }
    let meta = decode_meta(headers)?;
    let entries: Vec<HealthEntry> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?;
    Ok(HealthAnswer { meta, entries })
}

/// A decoded `/v1/health/service` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthAnswer {
    /// Header metadata.
    pub meta: QueryMeta,
    /// The entries, in Consul's order.
    pub entries: Vec<HealthEntry>,
}

/// The answer metadata Consul sends in headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryMeta {
    /// `X-Consul-Index` (required): the position to block on next.
    pub index: u64,
    /// `X-Consul-KnownLeader` (optional; absent on the streaming backend).
    pub known_leader: Option<bool>,
    /// `X-Consul-LastContact` (optional): how stale the answering server is.
    pub last_contact: Option<Duration>,
    /// `X-Consul-Results-Filtered-By-ACLs: true`: the token may not see
    /// some of the results, so the list is not the whole truth.
    pub filtered_by_acls: bool,
}

/// One entry of a `/v1/health/service` answer: a service instance with its
/// node and checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct HealthEntry {
    /// The node the instance runs on.
    #[serde(rename = "Node")]
    pub node: NodeInfo,
    /// The service instance.
    #[serde(rename = "Service")]
    pub service: ServiceInfo,
    /// The node's and the instance's checks.
    #[serde(rename = "Checks", default, deserialize_with = "null_default")]
    pub checks: Vec<CheckInfo>,
}

/// The `Node` of a [`HealthEntry`] (only the fields the provider uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Node name (`Node.Node`).
    #[serde(rename = "Node")]
    pub name: String,
    /// Node address (`Node.Address`).
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Datacenter.
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
}

/// The `Service` of a [`HealthEntry`] (only the fields the provider uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// Instance id (`Service.ID`).
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service", default)]
    pub name: String,
    /// Tags (`null` is read as empty).
    #[serde(rename = "Tags", default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Instance address; empty means "the node's address".
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Service meta (`null` is read as empty).
    #[serde(rename = "Meta", default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Port.
    #[serde(rename = "Port", default)]
    pub port: u16,
    /// The raft index at which the instance was registered: a deregister
    /// and register of the same id gets a new one (the member's
    /// incarnation). Absent in answers of very old agents.
    #[serde(rename = "CreateIndex", default)]
    pub create_index: Option<u64>,
}

/// One check of a [`HealthEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CheckInfo {
    /// Check id.
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    /// `passing`, `warning`, `critical` or `maintenance`.
    #[serde(rename = "Status", default)]
    pub status: String,
    /// The instance the check belongs to; empty for a node check.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const BODY: &[u8] = br#"[
      {"Node":{"ID":"x","Node":"node-1","Address":"10.0.0.1","Datacenter":"dc1","Meta":null},
       "Service":{"ID":"app-1","Service":"app","Tags":null,"Address":"","Meta":null,"Port":4001,"Weights":{"Passing":1}},
       "Checks":[{"CheckID":"serfHealth","Status":"passing","ServiceID":""},
                 {"CheckID":"service:app-1","Status":"passing","ServiceID":"app-1"}]},
      {"Node":{"Node":"node-2","Address":"10.0.0.2"},
       "Service":{"ID":"app-2","Service":"app","Tags":["a","b"],"Address":"192.168.0.2","Meta":{"zone":"eu"},"Port":4002},
       "Checks":null}
    ]"#;

    #[test]
    fn decodes_entries_and_headers() {
        let h = headers(&[
            ("X-Consul-Index", "57"),
            ("X-Consul-KnownLeader", "true"),
            ("X-Consul-LastContact", "12"),
        ]);
        let a = decode_health(200, &h, BODY).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.meta,
            QueryMeta {
                index: 57,
                known_leader: Some(true),
                last_contact: Some(Duration::from_millis(12)),
                filtered_by_acls: false,
            }
        );
        assert_eq!(a.entries.len(), 2);
        assert!(a.entries[0].service.tags.is_empty());
        assert_eq!(a.entries[0].checks.len(), 2);
        assert_eq!(a.entries[1].service.meta["zone"], "eu");
        assert!(a.entries[1].checks.is_empty());
    }

    #[test]
    fn leader_headers_are_optional_index_is_not() {
        let a = decode_health(200, &headers(&[("X-Consul-Index", "3")]), b"[]")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.meta.known_leader, None);
        assert_eq!(a.meta.last_contact, None);
        assert_eq!(
            decode_health(200, &headers(&[]), b"[]"),
            Err(DecodeError::MissingIndex)
        );
        for (name, value) in [
            ("X-Consul-Index", "-1"),
            ("X-Consul-Index", "abc"),
            ("X-Consul-LastContact", "1.5"),
            ("X-Consul-KnownLeader", "yes"),
        ] {
            let mut h = headers(&[("X-Consul-Index", "3")]);
            h.insert(name, HeaderValue::from_static(value));
            assert!(
                matches!(
                    decode_health(200, &h, b"[]"),
                    Err(DecodeError::BadHeader { .. })
                ),
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn bodies_that_are_not_answers_are_errors() {
        let h = headers(&[("X-Consul-Index", "3")]);
        for body in [
            &b""[..],
            b"[",
            b"{}",
            b"null",
            b"[{\"Node\":{}}]",
            &BODY[..BODY.len() / 2],
            br#"[{"Node":{"Node":"n"},"Service":{"ID":"a","Port":70000}}]"#,
        ] {
            assert!(
                matches!(decode_health(200, &h, body), Err(DecodeError::Body(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_statuses_carry_consul_message() {
        let e = decode_health(403, &HeaderMap::new(), b"Permission denied\n");
        assert_eq!(
            e,
            Err(DecodeError::Status {
                status: 403,
                message: "Permission denied".into()
            })
        );
        let e = decode_health(500, &HeaderMap::new(), b"");
        assert_eq!(
            e,
            Err(DecodeError::Status {
                status: 500,
                message: "Internal Server Error".into()
            })
        );
        let long = "x".repeat(1000);
        match decode_health(429, &HeaderMap::new(), long.as_bytes()) {
            Err(DecodeError::Status { message, .. }) => assert!(message.len() < 300),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        /// The decoder is total: any status, header bytes and body give a
        /// value or an error, never a panic.
        #[test]
        fn decoder_never_panics(
            status in 0u16..1000,
            index in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            contact in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&index) {
                h.insert("X-Consul-Index", v);
            }
            if let Ok(v) = HeaderValue::from_bytes(&contact) {
                h.insert("X-Consul-LastContact", v);
            }
            let _ = decode_health(status, &h, &body);
        }

        /// Every prefix of a valid answer decodes or fails cleanly, and only
        /// the whole body decodes to the whole answer.
        #[test]
        fn truncated_bodies_fail_cleanly(cut in 0usize..BODY.len()) {
            let h = headers(&[("X-Consul-Index", "9")]);
            let whole = decode_health(200, &h, BODY).map(|a| a.entries.len());
            proptest::prop_assert_eq!(whole, Ok(2));
            let part = decode_health(200, &h, &BODY[..cut]);
            proptest::prop_assert!(part.is_err() || cut == BODY.len());
        }
    }
}
