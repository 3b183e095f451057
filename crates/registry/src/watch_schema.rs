//! Typed parsing of a descriptor's `watch` object, for the schemas of the
//! [`BackendKind`](crate::BackendKind)s: every kind reports its errors the
//! same way, naming `watch.<key>`.

use provisioning_provider_api::WatchParams;
use serde::de::DeserializeOwned;

use crate::ProvisioningError;
use crate::descriptor_json::from_json_value;

/// Deserializes a kind's schema from `watch`; errors name `watch.<key>`
/// (an unknown key is refused when the schema denies unknown fields).
///
/// ```
/// use provisioning_registry::watch_schema::parse_watch;
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct PathWatch { path: String }
/// let params = serde_json::from_str(r#"{"path":"/a","paht":"/b"}"#)?;
/// let e = parse_watch::<PathWatch>(&params).unwrap_err();
/// assert_eq!(e.field(), Some("watch.paht"));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn parse_watch<T: DeserializeOwned>(params: &WatchParams) -> Result<T, ProvisioningError> {
    let value = serde_json::to_value(params).map_err(|e| {
        ProvisioningError::invalid(
            None,
            Some("watch".into()),
            format!("not representable: {e}"),
        )
    })?;
    from_json_value(value).map_err(|e| e.within("watch"))
}

/// `Err` naming `watch.<field>` when `value` is present but empty.
pub fn non_empty(field: &str, value: Option<&str>) -> Result<(), ProvisioningError> {
    match value {
        Some(text) if text.trim().is_empty() => Err(watch_error(field, "must not be empty")),
        _ => Ok(()),
    }
}

/// `Err` naming `watch.<field>` with `message` (`invalid_config`).
pub fn watch_error(field: &str, message: impl Into<String>) -> ProvisioningError {
    ProvisioningError::invalid(None, Some(format!("watch.{field}")), message)
}
