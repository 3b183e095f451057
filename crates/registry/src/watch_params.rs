//! Typed parsing of a descriptor's `watch` object, shared by the per-kind
//! schemas.

use provisioning_provider_api::WatchParams;
use serde::de::DeserializeOwned;

use crate::ProvisioningError;
use crate::descriptor_json::from_json_value;

/// Deserializes a kind's schema from `watch`; errors name `watch.<key>`.
pub(crate) fn parse_watch<T: DeserializeOwned>(
    params: &WatchParams,
) -> Result<T, ProvisioningError> {
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
pub(crate) fn non_empty(field: &str, value: Option<&str>) -> Result<(), ProvisioningError> {
    match value {
        Some(text) if text.trim().is_empty() => Err(ProvisioningError::invalid(
            None,
            Some(format!("watch.{field}")),
            "must not be empty",
        )),
        _ => Ok(()),
    }
}

/// `Err` naming `watch.<field>` with `message`.
pub(crate) fn watch_error(field: &str, message: impl Into<String>) -> ProvisioningError {
    ProvisioningError::invalid(None, Some(format!("watch.{field}")), message)
}
