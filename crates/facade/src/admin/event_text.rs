//! [`EventText`]: the human rendering of an event line (`watch`, `demo`).

use std::fmt;

use crate::ProvisioningEvent;
use serde_json::Value;

use super::utc_timestamp::UtcTimestamp;

/// Members listed by name on a snapshot line; the rest are counted.
const MEMBERS_SHOWN: usize = 6;

/// One event as a readable line: time, `#seq_no`, epoch, what happened.
///
/// Rendered from the event's contract JSON, so the text always shows what
/// `--json` would.
pub struct EventText {
    at: UtcTimestamp,
    line: Value,
}

impl EventText {
    /// `event` as seen at `at`.
    pub fn new(event: &ProvisioningEvent, at: UtcTimestamp) -> Self {
        Self {
            at,
            line: serde_json::from_str(&event.to_json_line()).unwrap_or(Value::Null),
        }
    }

    fn field(&self, key: &str) -> String {
        match self.line.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "-".to_owned(),
            Some(other) => other.to_string(),
        }
    }

    /// What happened, without time, seq_no or epoch. Control characters a
    /// backend put into an id, a host or a detail are shown escaped, so
    /// they can neither move the cursor nor forge a line on a terminal.
    pub fn what(&self) -> String {
        escape_controls(&self.rendered())
    }

    fn rendered(&self) -> String {
        let f = |k: &str| self.field(k);
        match self.line.get("type").and_then(Value::as_str) {
            Some("snapshot") => self.snapshot_text(),
            Some("remote_topology") => {
                let member = self
                    .line
                    .get("member")
                    .map(|m| format!(" {}{}", address_text(m), lifecycle_text(m)))
                    .unwrap_or_default();
                format!(
                    "{:<10} {}{member}  (from {})",
                    f("event"),
                    f("node_id"),
                    f("provider_id")
                )
            }
            Some("provider_health") => self.health_text(),
            Some("provider_changed") => format!(
                "SWITCH     {} -> {}  reason {}",
                f("from_provider_id"),
                f("to_provider_id"),
                f("reason")
            ),
            Some("provisioning_unavailable") => {
                let since = self
                    .line
                    .get("since_ms")
                    .and_then(Value::as_u64)
                    .map(|ms| UtcTimestamp::from_millis(ms).to_string())
                    .unwrap_or_else(|| "-".to_owned());
                format!("UNAVAILABLE no provider is usable (since {since})")
            }
            Some("terminated") => format!(
                "terminated {} {}: {}",
                f("provider_id"),
                f("reason"),
                f("detail")
            ),
            Some("resync") => format!(
                "resync     start again from #{} (the snapshot that follows)",
                f("as_of_seq_no")
            ),
            _ => self.line.to_string(),
        }
    }

    /// A snapshot line: provider, hash, health, the first members by name
    /// and how many more, and how many are blocked.
    fn snapshot_text(&self) -> String {
        let members = self
            .line
            .get("members")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut shown: Vec<String> = members
            .iter()
            .take(MEMBERS_SHOWN)
            .map(member_text)
            .collect();
        if members.len() > MEMBERS_SHOWN {
            shown.push(format!("+{} more", members.len() - MEMBERS_SHOWN));
        }
        let blocked = self
            .line
            .get("blocked")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let blocked = if blocked > 0 {
            format!(", {blocked} blocked")
        } else {
            String::new()
        };
        format!(
            "snapshot   {}  hash {}  {}  {} member{}{blocked}: {}",
            self.field("provider_id"),
            self.field("hash"),
            self.field("health"),
            members.len(),
            if members.len() == 1 { "" } else { "s" },
            if shown.is_empty() {
                "(none)".to_owned()
            } else {
                shown.join(" ")
            }
        )
    }

    /// A health line: provider, health, the error code and detail if any.
    fn health_text(&self) -> String {
        let code = match self.line.get("code").and_then(Value::as_str) {
            Some(code) => format!(" [{code}]"),
            None => String::new(),
        };
        let detail = self.field("detail");
        let detail = if detail.is_empty() || detail == "-" {
            String::new()
        } else {
            format!(": {detail}")
        };
        format!(
            "health     {} {}{code}{detail}",
            self.field("provider_id"),
            self.field("health")
        )
    }
}

/// `text` with every control character (C0, DEL, C1: escape sequences,
/// line breaks, carriage returns) written as a Rust escape (`\u{1b}`,
/// `\n`).
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn text_of(member: &Value, key: &str) -> String {
    member.get(key).map_or_else(String::new, |v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// `id@host:port`, then the lifecycle when there is one:
/// `id@host:port (inc …c3d2e1f0, draining)`.
fn member_text(member: &Value) -> String {
    format!(
        "{}@{}{}",
        text_of(member, "id"),
        address_text(member),
        lifecycle_text(member)
    )
}

/// How many trailing characters of an incarnation a line shows: a Pod uid
/// or a revision differs from the previous life at its end.
const INCARNATION_SHOWN: usize = 8;

/// ` (inc INCARNATION, draining)` with the parts the member has (an
/// incarnation longer than [`INCARNATION_SHOWN`] is shortened to its end),
/// or nothing for a v1 member.
pub(crate) fn lifecycle_text(member: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(incarnation) = member.get("incarnation").and_then(Value::as_str) {
        parts.push(format!("inc {}", short_incarnation(incarnation)));
    }
    if member.get("state").and_then(Value::as_str) == Some("draining") {
        parts.push("draining".to_owned());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// The last [`INCARNATION_SHOWN`] characters, after `…` when cut.
pub(crate) fn short_incarnation(incarnation: &str) -> String {
    let count = incarnation.chars().count();
    if count <= INCARNATION_SHOWN {
        return incarnation.to_owned();
    }
    let tail: String = incarnation
        .chars()
        .skip(count - INCARNATION_SHOWN)
        .collect();
    format!("…{tail}")
}

/// `host:port`.
fn address_text(member: &Value) -> String {
    format!("{}:{}", text_of(member, "host"), text_of(member, "port"))
}

impl EventText {
    /// The line without its time: `#seq eEPOCH  what happened`.
    pub(crate) fn untimed(&self) -> String {
        let seq = match self.line.get("type").and_then(Value::as_str) {
            // `resync` has no seq_no of its own.
            Some("resync") => "   -".to_owned(),
            _ => format!("#{:>3}", self.field("seq_no")),
        };
        format!("{seq} e{}  {}", self.field("epoch"), self.what())
    }
}

impl fmt::Display for EventText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", self.at, self.untimed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PublishedSnapshot;
    use crate::api::{ClusterNode, ProviderId, ProviderSnapshot};
    use crate::hub::wire::RunId;
    use std::sync::Arc;

    /// The text of snapshot #1 of provider `local` holding `member`.
    fn snapshot_text(member: ClusterNode) -> String {
        let view = ProviderSnapshot::new(vec![member], vec![]).unwrap();
        let snapshot = PublishedSnapshot::new(
            RunId::from_u64(1),
            1,
            1,
            ProviderId::new("local").unwrap(),
            view,
        );
        EventText::new(
            &ProvisioningEvent::Snapshot(Arc::new(snapshot)),
            UtcTimestamp::from_millis(0),
        )
        .to_string()
    }

    #[test]
    fn snapshot_line_shows_provider_hash_and_members() {
        assert_eq!(
            snapshot_text(ClusterNode::new("n1", "127.0.0.1", 4000)),
            "1970-01-01T00:00:00.000Z  #  1 e1  snapshot   local  hash 8cd9924dea78c53d  healthy  1 member: n1@127.0.0.1:4000"
        );
    }

    #[test]
    fn draining_and_the_shortened_incarnation_are_shown() {
        use crate::api::{Incarnation, MemberState};
        let node = ClusterNode::new("n1", "127.0.0.1", 4000)
            .with_incarnation(Incarnation::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").unwrap())
            .with_state(MemberState::Draining);
        let text = snapshot_text(node.clone());
        assert!(
            text.ends_with("1 member: n1@127.0.0.1:4000 (inc …c3d2e1f0, draining)"),
            "{text}"
        );
        // A `draining` line as the hub writes it.
        let line = serde_json::json!({
            "type": "remote_topology", "run_id": "0000000000000001", "seq_no": 3,
            "epoch": 1, "event": "draining", "node_id": "n1",
            "member": serde_json::to_value(&node).unwrap(),
            "provider_id": "local", "snapshot_hash": "f5d24982c47543d6",
        });
        let text = EventText {
            at: UtcTimestamp::from_millis(0),
            line,
        };
        assert_eq!(
            text.untimed(),
            "#  3 e1  draining   n1 127.0.0.1:4000 (inc …c3d2e1f0, draining)  (from local)"
        );
        let short = snapshot_text(
            ClusterNode::new("n1", "h", 1).with_incarnation(Incarnation::new("41").unwrap()),
        );
        assert!(short.ends_with("n1@h:1 (inc 41)"), "{short}");
    }

    #[test]
    fn control_characters_from_a_backend_are_escaped() {
        // An id with a line break and a terminal escape sequence, a host
        // with a carriage return: as a backend might answer them.
        let text = snapshot_text(ClusterNode::new(
            "n1\n2026 fake line\u{1b}[2J",
            "10.0.0.1\r",
            4000,
        ));
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(
            text.ends_with(r"n1\n2026 fake line\u{1b}[2J@10.0.0.1\r:4000"),
            "{text}"
        );
    }
}
