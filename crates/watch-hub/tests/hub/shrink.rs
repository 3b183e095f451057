//! The shrink guard of decision 5, on an injected clock.

use std::time::{Duration, Instant};

use provisioning_provider_api::SwitchReason;
use provisioning_watch_hub::{HubConfig, ProviderWatchHub, PublishOutcome};

use super::support::{numbered, pid, view};

fn hub_with_ten() -> (ProviderWatchHub, Instant) {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(10), t0).expect("activate");
    (hub, t0)
}

#[test]
fn shrink_is_held_then_published_after_shrink_confirm_if_it_still_stands() {
    let (mut hub, t0) = hub_with_ten();
    let before = hub.last_seq_no();
    let outcome = hub.publish_active(pid("a"), numbered(4), t0);
    assert_eq!(
        outcome,
        PublishOutcome::HeldShrink {
            until: t0 + Duration::from_secs(5)
        }
    );
    assert_eq!(hub.next_deadline(), Some(t0 + Duration::from_secs(5)));
    assert_eq!(hub.last_seq_no(), before, "nothing published while held");
    // The same view again neither publishes nor restarts the hold.
    assert!(matches!(
        hub.publish_active(pid("a"), numbered(4), t0 + Duration::from_secs(2)),
        PublishOutcome::HeldShrink { .. }
    ));
    assert!(matches!(
        hub.tick(t0 + Duration::from_millis(4999)),
        PublishOutcome::HeldShrink { .. }
    ));
    let published = hub.tick(t0 + Duration::from_secs(5));
    assert!(matches!(published, PublishOutcome::Published { .. }));
    assert_eq!(hub.latest().expect("latest").members().len(), 4);
    assert_eq!(hub.next_deadline(), None);
    assert_eq!(
        hub.metrics().view().providers[&pid("a")].suppressed_shrinks,
        1
    );
}

#[test]
fn emptying_is_held_and_a_withdrawn_shrink_is_never_published() {
    let (mut hub, t0) = hub_with_ten();
    assert!(matches!(
        hub.publish_active(pid("a"), numbered(0), t0),
        PublishOutcome::HeldShrink { .. }
    ));
    // The provider comes back with the published view: the hold is dropped.
    assert_eq!(
        hub.publish_active(pid("a"), numbered(10), t0),
        PublishOutcome::Unchanged
    );
    assert_eq!(hub.next_deadline(), None);
    assert_eq!(
        hub.tick(t0 + Duration::from_secs(10)),
        PublishOutcome::Unchanged
    );
    assert_eq!(hub.latest().expect("latest").members().len(), 10);
}

#[test]
fn half_is_not_suspicious_and_a_sane_snapshot_replaces_the_held_one() {
    let (mut hub, t0) = hub_with_ten();
    assert!(
        matches!(
            hub.publish_active(pid("a"), numbered(5), t0),
            PublishOutcome::Published { .. }
        ),
        "removing exactly half is allowed at ratio 0.5"
    );
    assert!(matches!(
        hub.publish_active(pid("a"), numbered(1), t0),
        PublishOutcome::HeldShrink { .. }
    ));
    assert!(matches!(
        hub.publish_active(pid("a"), numbered(6), t0 + Duration::from_secs(1)),
        PublishOutcome::Published { .. }
    ));
    assert_eq!(hub.held_shrink(), None);
    assert_eq!(hub.latest().expect("latest").members().len(), 6);
}

#[test]
fn an_agreeing_standby_confirms_early_and_a_disagreeing_one_never_vetoes() {
    let (mut hub, t0) = hub_with_ten();
    hub.publish_active(pid("a"), numbered(3), t0);
    assert_eq!(
        hub.observe_standby(&pid("b"), &numbered(10), t0),
        PublishOutcome::Unchanged,
        "a standby that disagrees does not publish"
    );
    assert_eq!(
        hub.metrics().view().providers[&pid("b")].disagreement_members,
        Some(0)
    );
    let confirmed = hub.observe_standby(&pid("c"), &numbered(3), t0 + Duration::from_secs(1));
    assert!(matches!(confirmed, PublishOutcome::Published { .. }));
    assert_eq!(hub.latest().expect("latest").members().len(), 3);
    assert_eq!(
        hub.metrics().view().providers[&pid("c")].disagreement_members,
        Some(0)
    );

    // A disagreeing standby cannot stop the hold from ending.
    let (mut hub, t0) = hub_with_ten();
    hub.publish_active(pid("a"), numbered(2), t0);
    hub.observe_standby(&pid("b"), &numbered(12), t0);
    assert_eq!(
        hub.metrics().view().providers[&pid("b")].disagreement_members,
        Some(2),
        "measured against the published view, not the held one"
    );
    assert!(matches!(
        hub.tick(t0 + Duration::from_secs(5)),
        PublishOutcome::Published { .. }
    ));
}

#[test]
fn a_switch_is_never_held_and_drops_a_held_shrink() {
    let (mut hub, t0) = hub_with_ten();
    hub.publish_active(pid("a"), numbered(1), t0);
    assert!(hub.assess_candidate(&pid("c"), &numbered(0)));
    assert!(hub.assess_candidate(&pid("c"), &view(&["x"], &[])));
    assert!(!hub.assess_candidate(&pid("c"), &numbered(9)));
    assert!(
        !hub.assess_candidate(&pid("c"), &numbered(10)),
        "the published view"
    );
    let replaced: Vec<String> = (0..10).map(|i| format!("other{i}")).collect();
    let replaced: Vec<&str> = replaced.iter().map(String::as_str).collect();
    assert!(
        hub.assess_candidate(&pid("c"), &view(&replaced, &[])),
        "same size, every published member gone"
    );
    let outcome = hub.switch(None, pid("b"), SwitchReason::Terminated, numbered(0), t0);
    assert!(matches!(outcome, PublishOutcome::Published { .. }));
    assert_eq!(hub.latest().expect("latest").members().len(), 0);
    assert_eq!(hub.next_deadline(), None);
    assert_eq!(
        hub.tick(t0 + Duration::from_secs(10)),
        PublishOutcome::Unchanged
    );
}
