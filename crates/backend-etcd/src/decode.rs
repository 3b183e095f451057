//! [`decode_member`]: the pure decoder of the values under the watched
//! prefix (the member schema of CONTRACTS §1).
//!
//! No connection and no etcd client: it compiles without the `client`
//! feature, so it is tested and fuzzed without a network stack.

use provisioning_provider_api::{Incarnation, MemberSpec};

/// Decodes the value stored at `key` under `prefix` into a member (the
/// member schema of CONTRACTS §1, whose id must equal the key's last path
/// segment). Pure: no connection, so it can be fuzzed on its own. The error
/// says what is wrong with the value, for the fault that names the key.
///
/// ```
/// use provisioning_backend_etcd::decode_member;
/// let member = decode_member(b"/c/", b"/c/n1", br#"{"id":"n1","host":"h","port":1}"#)?;
/// assert_eq!(member.id.as_str(), "n1");
/// assert!(decode_member(b"/c/", b"/c/n2", br#"{"id":"n1","host":"h","port":1}"#).is_err());
/// # Ok::<(), String>(())
/// ```
pub fn decode_member(prefix: &[u8], key: &[u8], value: &[u8]) -> Result<MemberSpec, String> {
    let Ok(key) = std::str::from_utf8(key) else {
        return Err("key is not valid UTF-8".into());
    };
    let rest = key.as_bytes().get(prefix.len()..).unwrap_or_default();
    let segment = std::str::from_utf8(rest)
        .ok()
        .and_then(|rest| rest.rsplit('/').next())
        .unwrap_or_default();
    let spec: MemberSpec = serde_json::from_slice(value)
        .map_err(|e| format!("value is not a member (CONTRACTS §1): {e}"))?;
    if spec.id.as_str().is_empty() {
        return Err("value has an empty id".into());
    }
    if spec.id.as_str() != segment {
        return Err(format!(
            "value id {:?} differs from the key's last segment {segment:?}",
            spec.id.as_str()
        ));
    }
    Ok(spec)
}

/// [`decode_member`] for a key created at `create_revision`: a member whose
/// value names no incarnation gets the decimal `create_revision` (CONTRACTS
/// §1), so deleting the key and putting it again is a new life even when
/// the value is the same. `state` comes from the value only.
///
/// ```
/// use provisioning_backend_etcd::decode_member_created_at;
/// let member = decode_member_created_at(b"/c/", b"/c/n1", br#"{"id":"n1","host":"h","port":1}"#, 42)?;
/// assert_eq!(member.incarnation.map(String::from).as_deref(), Some("42"));
/// let own = br#"{"id":"n1","host":"h","port":1,"incarnation":"boot-7"}"#;
/// let member = decode_member_created_at(b"/c/", b"/c/n1", own, 42)?;
/// assert_eq!(member.incarnation.map(String::from).as_deref(), Some("boot-7"));
/// # Ok::<(), String>(())
/// ```
pub fn decode_member_created_at(
    prefix: &[u8],
    key: &[u8],
    value: &[u8],
    create_revision: i64,
) -> Result<MemberSpec, String> {
    let mut spec = decode_member(prefix, key, value)?;
    if spec.incarnation.is_none() && create_revision > 0 {
        // A positive i64 in decimal is 1–19 ASCII digits: always valid.
        spec.incarnation = Incarnation::new(create_revision.to_string()).ok();
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_members_and_names_what_is_wrong() {
        let p = b"/c/";
        let ok = decode_member(p, b"/c/n1", br#"{"id":"n1","host":"h","port":1}"#).unwrap();
        assert_eq!(ok.id.as_str(), "n1");
        let nested = decode_member(
            p,
            b"/c/zone-a/n2",
            br#"{"id":"n2","host":"h","port":1,"blocked":true}"#,
        )
        .unwrap();
        assert!(nested.blocked);
        let mismatch =
            decode_member(p, b"/c/n1", br#"{"id":"n2","host":"h","port":1}"#).unwrap_err();
        assert!(mismatch.contains("differs"), "{mismatch}");
        let bad = decode_member(p, b"/c/n1", b"not json").unwrap_err();
        assert!(bad.contains("not a member"), "{bad}");
        let port = decode_member(p, b"/c/n1", br#"{"id":"n1","host":"h","port":70000}"#);
        assert!(port.is_err());
        let unknown = decode_member(p, b"/c/n1", br#"{"id":"n1","host":"h","port":1,"x":1}"#);
        assert!(unknown.is_err());
        assert!(decode_member(p, b"/c/\xff", br#"{"id":"n1","host":"h","port":1}"#).is_err());
        assert!(decode_member(p, b"/c/", br#"{"id":"","host":"h","port":1}"#).is_err());
    }
}
