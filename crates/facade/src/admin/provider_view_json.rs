//! The `GET /providers` object of one provider: the descriptor as stored
//! plus its live state (CONTRACTS §4).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ProviderView;
use crate::ProvisioningError;
use crate::registry::descriptor_to_json;
use serde_json::json;

/// The descriptor's stored JSON (key order kept) with `health`, `active`,
/// `standby`, `pinned`, `consecutive_errors`, `last_event_age_ms`,
/// `backoff_until_ms` (wall-clock ms since the epoch, null when none) and
/// `members` appended.
pub(crate) fn provider_view_json(view: &ProviderView) -> Result<String, ProvisioningError> {
    let stored = descriptor_to_json(&view.descriptor)?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let live = json!({
        "health": view.health.map(|h| h.as_str()),
        "active": view.active,
        "standby": view.standby,
        "pinned": view.pinned,
        "consecutive_errors": view.consecutive_errors,
        "last_event_age_ms": view.last_event_age.map(millis),
        "backoff_until_ms": view
            .backoff_remaining
            .filter(|d| !d.is_zero())
            .map(|d| millis(now_ms + d)),
        "members": view.members,
    });
    // The live object is written in its own (sorted) key order after the
    // stored keys; both are plain objects, so splice them.
    let live = live.to_string();
    let (Some(head), Some(tail)) = (stored.strip_suffix('}'), live.strip_prefix('{')) else {
        return Ok(stored);
    };
    Ok(format!("{head},{tail}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
