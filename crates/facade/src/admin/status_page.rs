//! `GET /`: the read-only status page — server-rendered HTML with no
//! scripts and no external assets.

use std::fmt::Write;
use std::sync::Arc;

use crate::{ProviderView, ProvisioningEvent, PublishedSnapshot};
use axum::extract::State;
use axum::response::Html;

use super::AdminApi;
use super::api_error::ApiError;
use super::event_text::{EventText, short_incarnation};
use super::utc_timestamp::UtcTimestamp;

/// Events shown, newest first.
const LAST_EVENTS: usize = 25;
/// Members listed; more are counted.
const MEMBERS_SHOWN: usize = 500;

/// What the page shows.
pub(crate) struct StatusView {
    /// This run's id.
    pub(crate) run_id: String,
    /// Whether no provider is usable.
    pub(crate) unavailable: bool,
    /// Every provider, highest priority first.
    pub(crate) providers: Vec<ProviderView>,
    /// The latest snapshot.
    pub(crate) topology: Option<Arc<PublishedSnapshot>>,
    /// The last event lines, oldest first.
    pub(crate) events: Vec<Arc<ProvisioningEvent>>,
    /// When the page was made.
    pub(crate) at: UtcTimestamp,
}

/// `GET /`.
pub(crate) async fn status_page(State(state): State<AdminApi>) -> Result<Html<String>, ApiError> {
    let handle = state.handle();
    let providers = handle.providers().await?;
    let history = handle.hub().history();
    let mut events = match history.oldest_seq_no() {
        Some(oldest) => history.since(oldest.saturating_sub(1)).unwrap_or_default(),
        None => Vec::new(),
    };
    let skip = events.len().saturating_sub(LAST_EVENTS);
    events.drain(..skip);
    let view = StatusView {
        run_id: handle.run_id().to_string(),
        unavailable: handle.is_unavailable(),
        providers,
        topology: handle.topology(),
        events,
        at: UtcTimestamp::now(),
    };
    Ok(Html(render(&view)))
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}\
th{background:#f2f2f2}tr.active td{background:#e6f4e6;font-weight:600}\
tr.disabled td{color:#888}.healthy{color:#176117}.degraded{color:#8a5a00}\
.unreachable{color:#a11}.banner{padding:.5rem;background:#fbe3e3;border:1px solid #a11}\
code,pre{font-family:ui-monospace,monospace;font-size:.9em}#events code{white-space:pre}";

/// The page.
pub(crate) fn render(view: &StatusView) -> String {
    let mut html = String::with_capacity(8192);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>provisioning status</title><style>{STYLE}</style></head><body>\
         <h1>Cluster provisioning</h1>\
         <p>run <code>{}</code> · page made {} · refreshes every 5 s</p>",
        escape(&view.run_id),
        view.at
    );
    if view.unavailable {
        html.push_str(
            "<p class=\"banner\" id=\"unavailable\"><strong>provisioning unavailable</strong>: \
             no provider is usable; the last snapshot is kept</p>",
        );
    }
    render_providers(&mut html, &view.providers);
    render_members(&mut html, view.topology.as_deref());
    render_events(&mut html, &view.events);
    html.push_str("</body></html>\n");
    html
}

fn render_providers(html: &mut String, providers: &[ProviderView]) {
    let _ = write!(html, "<h2>Providers ({})</h2>", providers.len());
    if providers.is_empty() {
        html.push_str("<p>No provider is registered.</p>");
        return;
    }
    html.push_str(
        "<table id=\"providers\"><tr><th>provider</th><th>kind</th><th>priority</th>\
         <th>role</th><th>health</th><th>members</th><th>consecutive errors</th>\
         <th>last event</th><th>backoff</th></tr>",
    );
    for p in providers {
        let d = &p.descriptor;
        let mut roles = Vec::new();
        if p.active {
            roles.push("active");
        }
        if p.standby {
            roles.push("standby");
        }
        if p.pinned {
            roles.push("pinned");
        }
        if !d.enabled {
            roles.push("disabled");
        }
        let class = if p.active {
            "active"
        } else if !d.enabled {
            "disabled"
        } else {
            ""
        };
        let health = p.health.map_or("unknown", |h| h.as_str());
        let _ = write!(
            html,
            "<tr class=\"{class}\" data-provider=\"{id}\"><td><code>{id}</code></td><td>{kind}</td>\
             <td>{priority}</td><td class=\"role\">{roles}</td><td class=\"{health}\">{health}</td>\
             <td>{members}</td><td>{errors}</td><td>{age}</td><td>{backoff}</td></tr>",
            id = escape(d.id.as_str()),
            kind = escape(d.kind.as_str()),
            priority = d.priority,
            roles = if roles.is_empty() {
                "-".to_owned()
            } else {
                roles.join(" · ")
            },
            members = p.members.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            errors = p.consecutive_errors,
            age = p
                .last_event_age
                .map_or_else(|| "-".to_owned(), |a| format!("{} ms ago", a.as_millis())),
            backoff = p
                .backoff_remaining
                .filter(|b| !b.is_zero())
                .map_or_else(|| "-".to_owned(), |b| format!("{} ms left", b.as_millis())),
        );
    }
    html.push_str("</table>");
}

fn render_members(html: &mut String, topology: Option<&PublishedSnapshot>) {
    let Some(s) = topology else {
        html.push_str("<h2>Members</h2><p id=\"members\">No snapshot has been published yet.</p>");
        return;
    };
    let _ = write!(
        html,
        "<h2>Members ({n})</h2><p>from <code id=\"active-provider\">{provider}</code> · \
         hash <code>{hash}</code> · seq_no {seq} · epoch {epoch} · health {health}</p>\
         <table id=\"members\"><tr><th>id</th><th>host</th><th>port</th><th>labels</th>\
         <th>blocked</th><th>state</th><th>incarnation</th></tr>",
        n = s.members().len(),
        provider = escape(s.provider_id().as_str()),
        hash = crate::api::format_hash(s.hash()),
        seq = s.seq_no(),
        epoch = s.epoch(),
        health = s.snapshot().health().as_str(),
    );
    let blocked = s.blocked();
    for m in s.members().iter().take(MEMBERS_SHOWN) {
        let labels = m
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let is_blocked = blocked.iter().any(|b| b == &m.id);
        // The shortened incarnation, the whole one on hover.
        let incarnation = m.incarnation.as_ref().map_or_else(String::new, |i| {
            format!(
                "<code title=\"{}\">{}</code>",
                escape(i.as_str()),
                escape(&short_incarnation(i.as_str()))
            )
        });
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{incarnation}</td></tr>",
            escape(m.id.as_str()),
            escape(&m.host),
            m.port,
            labels,
            if is_blocked { "blocked" } else { "" },
            m.state.as_str(),
        );
    }
    html.push_str("</table>");
    if s.members().len() > MEMBERS_SHOWN {
        let _ = write!(
            html,
            "<p>and {} more</p>",
            s.members().len() - MEMBERS_SHOWN
        );
    }
    if !blocked.is_empty() {
        let ids: Vec<String> = blocked.iter().map(|b| escape(b.as_str())).collect();
        let _ = write!(html, "<p>Block list: <code>{}</code></p>", ids.join(" "));
    }
}

fn render_events(html: &mut String, events: &[Arc<ProvisioningEvent>]) {
    let _ = write!(html, "<h2>Last events ({})</h2>", events.len());
    if events.is_empty() {
        html.push_str("<p>None yet.</p>");
        return;
    }
    html.push_str(
        "<table id=\"events\"><tr><th>seq_no</th><th>epoch</th><th>event (newest first)</th></tr>",
    );
    for event in events.iter().rev() {
        // Lines carry no wall-clock time of their own: the page shows when
        // it was made, the lines their order.
        let what = EventText::new(event, UtcTimestamp::from_millis(0)).what();
        let seq = if event.type_name() == "resync" {
            "-".to_owned()
        } else {
            event.seq_no().to_string()
        };
        let _ = write!(
            html,
            "<tr><td>{seq}</td><td>{}</td><td><code>{}</code></td></tr>",
            event.epoch(),
            escape(&what)
        );
    }
    html.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn members_show_their_state_and_shortened_incarnation() {
        use crate::api::{ClusterNode, Incarnation, MemberState, ProviderId, ProviderSnapshot};
        use crate::hub::wire::RunId;
        let view = ProviderSnapshot::new(
            vec![
                ClusterNode::new("n1", "10.0.0.1", 4000)
                    .with_incarnation(
                        Incarnation::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").unwrap(),
                    )
                    .with_state(MemberState::Draining),
                ClusterNode::new("n2", "10.0.0.2", 4000),
            ],
            vec![],
        )
        .unwrap();
        let topology = PublishedSnapshot::new(
            RunId::from_u64(1),
            1,
            1,
            ProviderId::new("local").unwrap(),
            view,
        );
        let page = render(&StatusView {
            run_id: "0000000000000001".into(),
            unavailable: false,
            providers: Vec::new(),
            topology: Some(Arc::new(topology)),
            events: Vec::new(),
            at: UtcTimestamp::from_millis(0),
        });
        assert!(
            page.contains(
                "<td>draining</td><td><code title=\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\">…c3d2e1f0</code></td>"
            ),
            "{page}"
        );
        assert!(page.contains("<td>serving</td><td></td></tr>"), "{page}");
    }

    #[test]
    fn an_empty_service_renders_without_scripts() {
        let page = render(&StatusView {
            run_id: "0123456789abcdef".into(),
            unavailable: true,
            providers: Vec::new(),
            topology: None,
            events: Vec::new(),
            at: UtcTimestamp::from_millis(0),
        });
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("provisioning unavailable"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
