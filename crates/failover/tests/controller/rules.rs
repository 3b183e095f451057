//! One or more deterministic tests per "Failover rules" item, on virtual
//! time with the default policy unless a test says otherwise.

use std::time::Duration;

use provisioning_failover::{
    ControllerError, Decision, FailoverController, FailoverPolicy, FailureReason, ProviderCondition,
};
use provisioning_provider_api::{FaultKind, ProviderEvent, ProviderFault, SwitchReason};

use super::harness::{Sim, id, ms, secs};

fn two() -> Sim {
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 20), ("b", 10)]);
    assert_eq!(sim.all_answer(&["a", "b"]).as_deref(), Some("a"));
    sim
}

fn backoff_of(sim: &Sim, name: &str) -> Option<Duration> {
    sim.log.iter().rev().find_map(|(_, d)| match d {
        Decision::BackoffUntil { id, until } if id.as_str() == name => Some(*until - sim.t0),
        _ => None,
    })
}

fn assert_switch(sim: &Sim, at: Duration, from: &str, to: &str, reason: SwitchReason) {
    let last = sim.last_switch().expect("a switch happened");
    assert_eq!(
        (last.at, last.from.as_str(), last.to.as_str(), last.reason),
        (at, from, to, reason),
        "log: {:#?}",
        sim.switches()
    );
}

// ---- rule 1: health ----

#[test]
fn rule_1_a_snapshot_or_heartbeat_is_healthy() {
    let sim = two();
    let status = sim.status("a").expect("known");
    assert_eq!(status.condition, ProviderCondition::Healthy);
    assert!(status.active && !status.standby);
    assert!(sim.status("b").expect("known").standby);
    assert_eq!(
        sim.health_changes("a"),
        vec![(
            "healthy".to_owned(),
            None,
            "snapshot or heartbeat in time".to_owned()
        )]
    );
}

#[test]
fn rule_1_snapshot_delay_above_the_threshold_is_degraded() {
    let mut sim = two();
    sim.stale_heartbeat("a", secs(10));
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Healthy));
    sim.stale_heartbeat("a", ms(10_001));
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Degraded));
    let (health, code, detail) = sim.health_changes("a").pop().expect("published");
    assert_eq!(
        (health.as_str(), code),
        ("degraded", Some("provider_unhealthy"))
    );
    assert!(
        detail.contains("10001ms") && detail.contains("10s"),
        "{detail}"
    );
    sim.heartbeat("a");
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Healthy));
}

#[test]
fn rule_1_retryable_faults_count_to_unreachable_and_liveness_resets_the_count() {
    let mut sim = two();
    sim.refused("a");
    sim.refused("a");
    let s = sim.status("a").expect("known");
    assert_eq!(
        (s.condition, s.consecutive_errors),
        (ProviderCondition::Degraded, 2)
    );
    sim.heartbeat("a");
    assert_eq!(sim.status("a").expect("known").consecutive_errors, 0);
    sim.refused("a");
    sim.refused("a");
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Degraded));
    sim.refused("a");
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Unreachable));
    assert_eq!(
        sim.health_changes("a").pop(),
        Some((
            "unreachable".to_owned(),
            Some("backend_unavailable"),
            "3 consecutive errors: connection refused".to_owned()
        ))
    );
}

#[test]
fn rule_1_a_permanent_fault_is_unreachable_at_once() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.forbidden("a");
    let s = sim.status("a").expect("known");
    assert_eq!(
        (s.condition, s.consecutive_errors),
        (ProviderCondition::Unreachable, 1)
    );
    assert_eq!(
        sim.health_changes("a").pop().map(|h| h.1),
        Some(Some("permission_denied"))
    );
    assert_switch(&sim, secs(1), "a", "b", SwitchReason::HealthDegraded);
}

#[test]
fn rule_1_resyncs_are_not_errors() {
    let mut sim = two();
    for _ in 0..10 {
        assert!(sim.resync("a"));
    }
    let s = sim.status("a").expect("known");
    assert_eq!(
        (s.condition, s.consecutive_errors),
        (ProviderCondition::Healthy, 0)
    );
    assert!(sim.switches().is_empty());
    assert_eq!(sim.health_changes("a").len(), 1);
}

#[test]
fn rule_1_the_no_response_timeout_runs_from_the_last_liveness_and_faults_never_reset_it() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.heartbeat("a");
    sim.heartbeat("b");
    for t in [4u64, 8, 12, 14] {
        sim.advance(secs(t) - sim.elapsed());
        sim.heartbeat("b");
        if t < 12 {
            sim.resync("a");
        } else {
            sim.refused("a");
        }
    }
    sim.advance(ms(15_999) - sim.elapsed());
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Degraded));
    assert_eq!(sim.c.next_deadline(), Some(sim.t0 + secs(16)));
    sim.advance(ms(1));
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Unreachable));
    assert_eq!(
        sim.health_changes("a").pop().map(|h| h.1),
        Some(Some("timeout"))
    );
    assert_switch(&sim, secs(16), "a", "b", SwitchReason::Timeout);
}

#[test]
fn rule_1_a_hang_is_detected_at_15s() {
    let mut sim = two();
    assert_eq!(sim.c.next_deadline(), Some(sim.t0 + secs(15)));
    // b heartbeats; a hangs without a word.
    sim.advance_alive(ms(14_999), &["b"]);
    assert_eq!(sim.active().as_deref(), Some("a"));
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Healthy));
    sim.advance(ms(1));
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Unreachable));
    assert_switch(&sim, secs(15), "a", "b", SwitchReason::Timeout);
    // The hung stream is closed, and reopened when its backoff ends.
    assert!(!sim.running().contains(&"a".to_owned()));
    let until = backoff_of(&sim, "a").expect("backoff set");
    assert!(
        until >= ms(15_000 + 1600) && until <= ms(15_000 + 2400),
        "{until:?}"
    );
    sim.advance_alive(until - sim.elapsed(), &["b"]);
    assert!(sim.running().contains(&"a".to_owned()));
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Unreachable));
}

#[test]
fn rule_1_terminated_is_reopened_after_its_backoff_unless_permanent() {
    let mut sim = two();
    sim.terminate("b", false);
    assert_eq!(sim.condition("b"), Some(ProviderCondition::Terminated));
    assert_eq!(
        sim.health_changes("b").pop().map(|h| (h.0, h.1)),
        Some(("unreachable".to_owned(), Some("provider_unhealthy")))
    );
    let until = backoff_of(&sim, "b").expect("backoff");
    assert!(until >= ms(1600) && until <= ms(2400), "{until:?}");
    sim.advance_alive(until - ms(1), &["a"]);
    assert!(!sim.running().contains(&"b".to_owned()));
    sim.advance(ms(1));
    assert!(sim.running().contains(&"b".to_owned()));
    sim.snapshot("b");
    assert_eq!(sim.condition("b"), Some(ProviderCondition::Healthy));

    sim.terminate("b", true);
    let s = sim.status("b").expect("known");
    assert!(s.permanently_terminated && s.backoff_until.is_none());
    sim.advance_alive(secs(120), &["a"]);
    assert!(!sim.running().contains(&"b".to_owned()));
    sim.c.enable_provider(&id("b"), sim.now).expect("known");
    sim.collect();
    assert!(sim.running().contains(&"b".to_owned()));
}

// ---- rule 2: fast retries before the verdict, policy backoff after ----

#[test]
fn rule_2_a_refused_connection_is_unreachable_within_200ms() {
    let mut sim = two();
    sim.advance(secs(1));
    let opts = sim.c.policy().stream_options();
    let start = sim.elapsed();
    // The first attempt fails, then the stream's fast retries.
    for attempt in 0..opts.max_errors {
        sim.advance(opts.retry_delay(attempt));
        sim.refused("a");
    }
    assert_eq!(sim.condition("a"), Some(ProviderCondition::Unreachable));
    assert!(
        sim.elapsed() - start <= ms(200),
        "{:?}",
        sim.elapsed() - start
    );
    assert_switch(&sim, sim.elapsed(), "a", "b", SwitchReason::HealthDegraded);

    // Also on a stream that never got its first snapshot.
    let mut cold = Sim::new(FailoverPolicy::default(), &[("c", 5)]);
    for attempt in 0..opts.max_errors {
        cold.advance(opts.retry_delay(attempt));
        cold.refused("c");
    }
    assert_eq!(cold.condition("c"), Some(ProviderCondition::Unreachable));
    assert!(cold.elapsed() <= ms(200));
    assert!(cold.c.all_down_since().is_some());
}

#[test]
fn rule_2_the_policy_backoff_spaces_reconnects_after_the_verdict() {
    let mut sim = two();
    let mut delays = Vec::new();
    for _ in 0..7 {
        let at = sim.elapsed();
        assert!(sim.terminate("b", false));
        let until = backoff_of(&sim, "b").expect("backoff");
        delays.push(until - at);
        sim.advance_alive(until - at, &["a"]);
        assert!(sim.running().contains(&"b".to_owned()));
    }
    let expected = [2u64, 4, 8, 16, 30, 30, 30];
    for (delay, base) in delays.iter().zip(expected) {
        let base = secs(base).as_secs_f64();
        let d = delay.as_secs_f64();
        assert!(
            d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
            "{delays:?}"
        );
    }
    // Jitter is at work (not all at the base), and seeded: the same seed
    // gives the same schedule.
    assert!(delays.iter().zip(expected).any(|(d, b)| *d != secs(b)));
}

#[test]
fn rule_2_any_snapshot_or_heartbeat_ends_the_backoff_and_makes_the_provider_eligible_at_once() {
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 1)]);
    sim.snapshot("a");
    sim.forbidden("a");
    assert!(sim.c.all_down_since().is_some());
    assert!(sim.status("a").expect("known").backoff_until.is_some());
    sim.advance(ms(100));
    sim.heartbeat("a");
    let s = sim.status("a").expect("known");
    assert_eq!(s.backoff_until, None);
    assert_eq!(sim.active().as_deref(), Some("a"));
}

// ---- rule 3: dead switches now, degraded after a cooldown ----

#[test]
fn rule_3_a_dead_active_switches_at_once_with_the_reason_of_its_death() {
    let mut sim = two();
    sim.advance(secs(2));
    sim.terminate("a", false);
    assert_switch(&sim, secs(2), "a", "b", SwitchReason::Terminated);

    let mut sim = two();
    sim.advance(ms(300));
    for _ in 0..3 {
        sim.refused("a");
    }
    assert_switch(&sim, ms(300), "a", "b", SwitchReason::HealthDegraded);
}

#[test]
fn rule_3_a_dead_active_switches_to_the_highest_priority_eligible_provider() {
    let policy = FailoverPolicy::default().with_standby(2);
    let mut sim = Sim::new(policy, &[("a", 30), ("b", 20), ("c", 10)]);
    sim.all_answer(&["a", "b", "c"]);
    sim.forbidden("a");
    assert_switch(&sim, ms(0), "a", "b", SwitchReason::HealthDegraded);
}

#[test]
fn rule_3_degraded_switches_only_after_a_whole_cooldown_with_a_healthy_alternative() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.stale_heartbeat("a", secs(20));
    sim.heartbeat("b");
    // a keeps reporting staleness, b stays healthy.
    for _ in 0..19 {
        sim.advance(ms(500));
        sim.stale_heartbeat("a", secs(20));
        sim.heartbeat("b");
    }
    assert_eq!(sim.elapsed(), ms(10_500));
    sim.advance(ms(499));
    assert_eq!(sim.active().as_deref(), Some("a"));
    sim.advance(ms(1));
    assert_switch(&sim, secs(11), "a", "b", SwitchReason::HealthDegraded);
}

#[test]
fn rule_3_degraded_without_a_healthy_alternative_stays() {
    let mut sim = two();
    for _ in 0..12 {
        sim.stale_heartbeat("a", secs(20));
        sim.stale_heartbeat("b", secs(20));
        sim.advance(secs(5));
    }
    assert_eq!(sim.active().as_deref(), Some("a"));
    assert!(sim.switches().is_empty());
    // The alternative turns healthy: a has been degraded for long, so at once.
    sim.heartbeat("b");
    assert_switch(&sim, secs(60), "a", "b", SwitchReason::HealthDegraded);
}

// ---- rule 4: fail-back with hysteresis ----

#[test]
fn rule_4_fail_back_after_10s_of_continuous_health() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.forbidden("a");
    assert_switch(&sim, secs(1), "a", "b", SwitchReason::HealthDegraded);
    sim.advance_alive(secs(2), &["b"]);
    sim.heartbeat("a");
    // Healthy since 3 s: fail-back at 13 s, not a moment before.
    sim.advance_alive(ms(9_999), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("b"));
    assert_eq!(sim.c.next_deadline(), Some(sim.t0 + secs(13)));
    sim.advance(ms(1));
    assert_switch(&sim, secs(13), "b", "a", SwitchReason::PriorityRestored);
}

#[test]
fn rule_4_an_interruption_restarts_the_healthy_period() {
    let mut sim = two();
    sim.forbidden("a");
    sim.advance_alive(secs(1), &["b"]);
    sim.heartbeat("a");
    sim.advance_alive(secs(6), &["a", "b"]);
    sim.refused("a"); // degraded for a moment at 7 s
    sim.advance(ms(100));
    sim.heartbeat("a"); // healthy again from 7.1 s
    sim.advance_alive(ms(9_999), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("b"));
    sim.advance(ms(1));
    assert_switch(&sim, ms(17_100), "b", "a", SwitchReason::PriorityRestored);
}

#[test]
fn rule_4_dying_soon_after_fail_back_doubles_the_period_and_a_clean_period_resets_it() {
    let mut sim = two();
    sim.forbidden("a");
    sim.heartbeat("a"); // healthy again at once, at 0 s
    sim.advance_alive(secs(10), &["a", "b"]);
    assert_switch(&sim, secs(10), "b", "a", SwitchReason::PriorityRestored);
    let mut expected_period = 10u64;
    for expected in [20u64, 40, 80, 160, 300, 300] {
        // Dies 1 s after being failed back to.
        sim.advance_alive(secs(1), &["a", "b"]);
        sim.forbidden("a");
        assert_eq!(sim.last_switch().map(|s| s.to), Some("b".to_owned()));
        let period = sim.status("a").expect("known").fail_back_period;
        assert_eq!(period, secs(expected), "after a {expected_period} s period");
        expected_period = expected;
        sim.heartbeat("a");
        let since = sim.elapsed();
        sim.advance_alive(secs(expected) - ms(1), &["a", "b"]);
        assert_eq!(sim.active().as_deref(), Some("b"));
        sim.advance_alive(ms(1), &["a", "b"]);
        assert_switch(
            &sim,
            since + secs(expected),
            "b",
            "a",
            SwitchReason::PriorityRestored,
        );
    }
    // Survives one clean period (300 s): the penalty resets.
    sim.advance_alive(secs(300), &["a", "b"]);
    assert_eq!(sim.status("a").expect("known").fail_back_period, secs(10));
    // Dying later than a cooldown after fail-back does not double it.
    sim.forbidden("a");
    assert_eq!(sim.status("a").expect("known").fail_back_period, secs(10));
}

// ---- rule 5: no switch within the cooldown ----

#[test]
fn rule_5_no_switch_within_the_cooldown_unless_the_active_is_dead() {
    let policy = FailoverPolicy::default().with_standby(2);
    let mut sim = Sim::new(policy, &[("a", 30), ("b", 20), ("c", 10)]);
    sim.all_answer(&["a", "b", "c"]);
    sim.stale_heartbeat("b", secs(30));
    // b has been degraded for 20 s when a dies: b is still the highest
    // eligible, and a degraded active may only be left a cooldown later.
    for _ in 0..4 {
        sim.advance(secs(5));
        sim.heartbeat("a");
        sim.stale_heartbeat("b", secs(30));
        sim.heartbeat("c");
    }
    sim.forbidden("a");
    assert_switch(&sim, secs(20), "a", "b", SwitchReason::HealthDegraded);
    for _ in 0..3 {
        sim.advance(secs(3));
        sim.stale_heartbeat("b", secs(30));
        sim.heartbeat("c");
    }
    sim.advance(ms(999));
    assert_eq!(sim.active().as_deref(), Some("b"));
    sim.advance(ms(1));
    assert_switch(&sim, secs(30), "b", "c", SwitchReason::HealthDegraded);
    // A dead active is left at once, cooldown or not.
    sim.advance(ms(500));
    sim.terminate("c", false);
    assert_switch(&sim, ms(30_500), "c", "b", SwitchReason::Terminated);
}

#[test]
fn rule_5_start_up_is_not_a_switch() {
    let sim = two();
    assert_eq!(sim.c.last_switch_at(), None);
    assert!(sim.switches().is_empty());
    let activations: Vec<_> = sim
        .log
        .iter()
        .filter(|(_, d)| matches!(d, Decision::Activate { .. }))
        .collect();
    assert_eq!(activations.len(), 1);
}

#[test]
fn rule_5_start_up_waits_briefly_for_a_higher_priority_provider() {
    // b answers first; a, preferred, answers 200 ms later: a is activated.
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 20), ("b", 10)]);
    sim.snapshot("b");
    assert_eq!(sim.active(), None);
    assert_eq!(sim.c.all_down_since(), None);
    sim.advance(ms(200));
    sim.snapshot("a");
    assert_eq!(sim.active().as_deref(), Some("a"));
    // a hangs at start-up: b is activated when the grace ends.
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 20), ("b", 10)]);
    sim.snapshot("b");
    sim.advance(ms(999));
    assert_eq!(sim.active(), None);
    sim.advance(ms(1));
    assert_eq!(sim.active().as_deref(), Some("b"));
    // b is pinned: no reason to wait for a.
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 20), ("b", 10)]);
    sim.c.pin(&id("b"), sim.now).expect("known");
    sim.snapshot("b");
    assert_eq!(sim.active().as_deref(), Some("b"));
    sim.snapshot("a");
    assert_eq!(sim.active().as_deref(), Some("b"));
    assert!(sim.switches().is_empty());
    // a refuses at start-up: b is activated as soon as a has its verdict.
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 20), ("b", 10)]);
    sim.snapshot("b");
    sim.forbidden("a");
    assert_eq!(sim.active().as_deref(), Some("b"));
}

// ---- rule 6: which streams run ----

#[test]
fn rule_6_the_active_every_higher_priority_and_the_warm_standbys_run() {
    let providers = [("p4", 40), ("p3", 30), ("p2", 20), ("p1", 10)];
    let mut sim = Sim::new(FailoverPolicy::default(), &providers);
    assert_eq!(sim.running().len(), 4, "all run until one is active");
    sim.all_answer(&["p4", "p3", "p2", "p1"]);
    assert_eq!(sim.running(), ["p4", "p3"]);
    sim.forbidden("p4");
    assert_eq!(sim.active().as_deref(), Some("p3"));
    // p4 (higher) keeps running; p2 is opened as the new standby, and p1 too
    // until p2 is warm.
    assert_eq!(sim.running(), ["p4", "p3", "p2", "p1"]);
    sim.snapshot("p2");
    assert_eq!(sim.running(), ["p4", "p3", "p2"]);
    // A terminated higher-priority provider is reopened on its backoff.
    sim.terminate("p4", false);
    assert_eq!(sim.running(), ["p3", "p2"]);
    let until = backoff_of(&sim, "p4").expect("backoff");
    sim.advance_alive(until - sim.elapsed(), &["p3", "p2"]);
    assert_eq!(sim.running(), ["p4", "p3", "p2"]);
}

#[test]
fn rule_6_a_standby_in_backoff_is_not_warm_and_the_next_is_promoted() {
    let providers = [("p3", 30), ("p2", 20), ("p1", 10)];
    let mut sim = Sim::new(FailoverPolicy::default(), &providers);
    sim.all_answer(&["p3", "p2", "p1"]);
    assert_eq!(sim.running(), ["p3", "p2"]);
    for _ in 0..3 {
        sim.refused("p2");
    }
    assert!(sim.status("p2").expect("known").backoff_until.is_some());
    assert_eq!(sim.running(), ["p3", "p2", "p1"], "p1 promoted");
    sim.snapshot("p1");
    assert_eq!(sim.running(), ["p3", "p2", "p1"]);
    // p2 is back: p1 is not needed any more.
    sim.heartbeat("p2");
    assert_eq!(sim.running(), ["p3", "p2"]);
    // A terminated standby, waiting for its backoff, does not count either.
    sim.terminate("p2", false);
    assert_eq!(sim.running(), ["p3", "p1"]);
}

// ---- rule 7: all down ----

#[test]
fn rule_7_all_down_then_the_first_snapshot_recovers_at_once() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.forbidden("a");
    sim.advance(ms(500));
    sim.terminate("b", false);
    assert_eq!(sim.active(), None);
    assert_eq!(sim.c.all_down_since(), Some(sim.t0 + ms(1500)));
    assert!(sim.log.iter().any(|(_, d)| matches!(
        d,
        Decision::AllDown { last_active: Some(last), .. } if last.as_str() == "b"
    )));
    // Keep retrying: b's stream is reopened after its backoff.
    let until = backoff_of(&sim, "b").expect("backoff");
    sim.advance(until - sim.elapsed());
    assert!(sim.running().contains(&"b".to_owned()));
    // The first to deliver a snapshot is active at once, within the
    // cooldown of the last switch: b.
    sim.snapshot("b");
    assert_switch(&sim, until, "b", "b", SwitchReason::Recovered);
    assert_eq!(sim.c.all_down_since(), None);
    assert!(
        sim.log
            .iter()
            .any(|(_, d)| matches!(d, Decision::AllDownEnded { .. }))
    );
}

#[test]
fn rule_7_all_down_at_start_up_recovers_with_a_first_activation() {
    let mut sim = Sim::new(FailoverPolicy::default(), &[("a", 20), ("b", 10)]);
    sim.forbidden("a");
    sim.forbidden("b");
    assert!(sim.c.all_down_since().is_some());
    sim.advance(ms(300));
    sim.snapshot("b");
    assert_eq!(sim.active().as_deref(), Some("b"));
    assert!(
        sim.switches().is_empty(),
        "the first activation is not a switch"
    );
}

// ---- rule 8: manual override ----

#[test]
fn rule_8_pin_switches_at_once_and_holds_while_alive() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.c.pin(&id("b"), sim.now).expect("known and enabled");
    sim.collect();
    assert_switch(&sim, secs(1), "a", "b", SwitchReason::ManualOverride);
    assert_eq!(sim.c.pinned(), Some(&id("b")));
    // a is healthy for long, b degraded for long: b stays.
    for _ in 0..12 {
        sim.advance(secs(5));
        sim.heartbeat("a");
        sim.stale_heartbeat("b", secs(30));
    }
    assert_eq!(sim.active().as_deref(), Some("b"));
    // b dies: the rules apply.
    sim.forbidden("b");
    assert_switch(&sim, secs(61), "b", "a", SwitchReason::HealthDegraded);
    // b is back: the pin resumes after a fail-back period of health.
    sim.advance_alive(secs(1), &["a"]);
    sim.heartbeat("b");
    sim.advance_alive(ms(9_999), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("a"));
    sim.advance_alive(ms(1), &["a", "b"]);
    assert_switch(&sim, secs(72), "a", "b", SwitchReason::ManualOverride);
    // unpin: no switch at once; fail-back to a a cooldown after the last.
    sim.advance_alive(secs(1), &["a", "b"]);
    sim.c.unpin(sim.now);
    sim.collect();
    assert_eq!(sim.active().as_deref(), Some("b"));
    sim.advance_alive(ms(8_999), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("b"));
    sim.advance_alive(ms(1), &["a", "b"]);
    assert_switch(&sim, secs(82), "b", "a", SwitchReason::PriorityRestored);
}

#[test]
fn rule_8_pinning_a_stopped_provider_opens_it_and_switches_on_its_first_snapshot() {
    let mut sim = Sim::new(
        FailoverPolicy::default(),
        &[("a", 30), ("b", 20), ("c", 10)],
    );
    sim.all_answer(&["a", "b", "c"]);
    assert_eq!(sim.running(), ["a", "b"]);
    sim.advance(secs(1));
    sim.c.pin(&id("c"), sim.now).expect("known");
    sim.collect();
    assert_eq!(sim.running(), ["a", "b", "c"]);
    assert_eq!(sim.active().as_deref(), Some("a"));
    sim.advance(ms(50));
    sim.snapshot("c");
    assert_switch(&sim, ms(1050), "a", "c", SwitchReason::ManualOverride);

    let err = sim.c.pin(&id("zz"), sim.now).unwrap_err();
    assert_eq!(err, ControllerError::UnknownProvider(id("zz")));
    assert_eq!(err.code(), "not_found");
    sim.c.disable_provider(&id("b"), sim.now).expect("known");
    let err = sim.c.pin(&id("b"), sim.now).unwrap_err();
    assert_eq!(err.code(), "provider_disabled");
}

#[test]
fn rule_8_removing_or_disabling_the_active_switches_at_once() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.c.disable_provider(&id("a"), sim.now).expect("known");
    sim.collect();
    assert_switch(&sim, secs(1), "a", "b", SwitchReason::Removed);
    assert_eq!(sim.running(), ["b"]);
    sim.c.enable_provider(&id("a"), sim.now).expect("known");
    sim.collect();
    assert_eq!(sim.running(), ["a", "b"]);
    sim.snapshot("a");
    sim.advance_alive(secs(10), &["a", "b"]);
    assert_switch(&sim, secs(11), "b", "a", SwitchReason::PriorityRestored);
    sim.advance(ms(10));
    sim.c.remove_provider(&id("a"), sim.now).expect("known");
    sim.collect();
    assert_switch(&sim, ms(11_010), "a", "b", SwitchReason::Removed);
    assert_eq!(sim.c.status(&id("a")), None);
    // Removing the last one is all down.
    sim.c.remove_provider(&id("b"), sim.now).expect("known");
    sim.collect();
    assert!(sim.c.all_down_since().is_some());
    assert_eq!(sim.running(), Vec::<String>::new());
}

// ---- decision 5, handles, membership ----

/// Two views of the same provider: stand-ins for snapshot hashes.
const VIEW_1: u64 = 0x1111;
const VIEW_2: u64 = 0x2222;

/// `name` delivers a view that would be a suspicious shrink (`flag`), in
/// the facade's order: the flag first, then the snapshot.
fn suspicious_view(sim: &mut Sim, name: &str, view: u64, flag: bool) {
    sim.c
        .set_suspicious(&id(name), view, flag, sim.now)
        .expect("known");
    sim.collect();
    sim.snapshot(name);
}

fn suspected(sim: &Sim, name: &str) -> bool {
    sim.status(name).expect("known").suspicious
}

#[test]
fn decision_5_a_suspicious_candidate_is_not_chosen_while_another_healthy_exists() {
    let policy = FailoverPolicy::default().with_standby(2);
    let mut sim = Sim::new(policy, &[("a", 30), ("b", 20), ("c", 10)]);
    sim.all_answer(&["a", "b", "c"]);
    sim.c
        .set_suspicious(&id("b"), VIEW_1, true, sim.now)
        .expect("known");
    sim.forbidden("a");
    assert_switch(&sim, ms(0), "a", "c", SwitchReason::HealthDegraded);
    // With no other candidate, the suspicious one is still better than none.
    sim.advance(ms(10));
    sim.forbidden("c");
    assert_switch(&sim, ms(10), "c", "b", SwitchReason::HealthDegraded);
}

#[test]
fn decision_5_a_view_that_stood_for_shrink_confirm_competes_on_priority_again() {
    let policy = FailoverPolicy::default().with_standby(2);
    let mut sim = Sim::new(policy, &[("a", 30), ("b", 20), ("c", 10)]);
    sim.all_answer(&["a", "b", "c"]);
    sim.c
        .set_suspicious(&id("b"), VIEW_1, true, sim.now)
        .expect("known");
    sim.advance_alive(ms(4_999), &["a", "b", "c"]);
    assert!(suspected(&sim, "b"));
    sim.advance(ms(1));
    assert!(
        !suspected(&sim, "b"),
        "confirmed after shrink_confirm (5 s)"
    );
    sim.forbidden("a");
    assert_switch(&sim, secs(5), "a", "b", SwitchReason::HealthDegraded);
}

#[test]
fn decision_5_a_suspicious_fail_back_candidate_waits_only_until_its_view_has_stood_for_shrink_confirm()
 {
    // A healthy period (2 s) shorter than shrink_confirm (5 s): the
    // suspicion is what holds the fail-back, and only for shrink_confirm.
    let policy = FailoverPolicy::default().with_cooldown(secs(2));
    let mut sim = Sim::new(policy, &[("a", 20), ("b", 10)]);
    assert_eq!(sim.all_answer(&["a", "b"]).as_deref(), Some("a"));
    sim.advance(secs(1));
    sim.forbidden("a");
    assert_switch(&sim, secs(1), "a", "b", SwitchReason::HealthDegraded);
    sim.advance_alive(secs(2), &["b"]);
    // a heals at 3 s with a view that drops everything b published.
    suspicious_view(&mut sim, "a", VIEW_1, true);
    sim.advance_alive(secs(2), &["a", "b"]);
    assert!(suspected(&sim, "a"));
    assert_eq!(sim.active().as_deref(), Some("b"), "matured but suspicious");
    assert_eq!(sim.c.next_deadline(), Some(sim.t0 + secs(8)));
    sim.advance_alive(ms(2_999), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("b"));
    // The controller wakes itself at the end of the suspicion.
    sim.advance_alive(secs(1), &["a", "b"]);
    assert_switch(&sim, secs(8), "b", "a", SwitchReason::PriorityRestored);
    assert!(!suspected(&sim, "a"));
}

#[test]
fn decision_5_a_confirmed_suspicion_leaves_the_fail_back_to_the_cooldown_rules() {
    // shrink_confirm (5 s) shorter than the healthy period (10 s): the
    // fail-back comes exactly when rule 4 allows it.
    let mut sim = two();
    sim.advance(secs(1));
    sim.forbidden("a");
    sim.advance_alive(secs(2), &["b"]);
    suspicious_view(&mut sim, "a", VIEW_1, true);
    sim.advance_alive(ms(9_999), &["a", "b"]);
    assert!(!suspected(&sim, "a"));
    assert_eq!(sim.active().as_deref(), Some("b"));
    sim.advance(ms(1));
    assert_switch(&sim, secs(13), "b", "a", SwitchReason::PriorityRestored);
}

#[test]
fn decision_5_a_new_view_restarts_the_suspicion_and_the_same_view_keeps_it() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.forbidden("a");
    sim.advance_alive(secs(2), &["b"]);
    suspicious_view(&mut sim, "a", VIEW_1, true); // 3 s
    sim.advance_alive(secs(3), &["a", "b"]);
    // The published snapshot changed twice: the same view assessed again
    // (cleared, then flagged again) keeps its clock.
    let now = sim.now;
    sim.c
        .set_suspicious(&id("a"), VIEW_1, false, now)
        .expect("known");
    sim.c
        .set_suspicious(&id("a"), VIEW_1, true, now)
        .expect("known");
    sim.collect();
    assert_eq!(sim.c.next_deadline(), Some(sim.t0 + secs(8)));
    // A different view at 11 s, before the fail-back at 13 s: 5 s again.
    sim.advance_alive(secs(5), &["a", "b"]);
    assert!(!suspected(&sim, "a"));
    suspicious_view(&mut sim, "a", VIEW_2, true);
    assert!(suspected(&sim, "a"));
    sim.advance_alive(ms(4_999), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("b"), "held past 13 s");
    sim.advance(ms(1));
    assert_switch(&sim, secs(16), "b", "a", SwitchReason::PriorityRestored);
}

#[test]
fn decision_5_a_reopened_stream_starts_its_suspicion_afresh() {
    let mut sim = two();
    sim.advance(secs(1));
    sim.forbidden("a");
    sim.heartbeat("a");
    suspicious_view(&mut sim, "a", VIEW_1, true);
    sim.advance_alive(secs(4), &["a", "b"]);
    assert!(suspected(&sim, "a"));
    sim.terminate("a", false);
    while sim.c.handle(&id("a")).is_none() {
        sim.advance_alive(ms(100), &["b"]);
    }
    assert!(!suspected(&sim, "a"), "nothing is known of the new stream");
    let reopened = sim.elapsed();
    suspicious_view(&mut sim, "a", VIEW_1, true);
    sim.advance_alive(secs(5) - ms(1), &["a", "b"]);
    assert!(suspected(&sim, "a"), "same view, new stream: 5 s again");
    sim.advance(ms(1));
    assert!(
        !suspected(&sim, "a"),
        "{:?} after the reopen",
        sim.elapsed() - reopened
    );
}

#[test]
fn decision_5_a_shrink_of_the_active_provider_never_switches() {
    // The hub holds the active provider's suspicious shrink; the controller
    // keeps it active, before and after shrink_confirm.
    let mut sim = two();
    sim.advance(secs(1));
    suspicious_view(&mut sim, "a", VIEW_1, true);
    assert!(suspected(&sim, "a"));
    sim.advance_alive(secs(30), &["a", "b"]);
    assert_eq!(sim.active().as_deref(), Some("a"));
    assert!(sim.switches().is_empty(), "{:#?}", sim.switches());
    assert!(!suspected(&sim, "a"));
}

#[test]
fn events_of_a_closed_stream_are_ignored() {
    let mut sim = two();
    let old = sim.c.handle(&id("b")).expect("running");
    sim.terminate("b", false);
    sim.advance_alive(secs(3), &["a"]);
    let new = sim.c.handle(&id("b")).expect("reopened");
    assert!(new.generation() > old.generation());
    assert!(!sim.c.on_event(&old, &ProviderEvent::heartbeat(), sim.now));
    assert_eq!(sim.condition("b"), Some(ProviderCondition::Unreachable));
    let fault = ProviderFault::retryable(FaultKind::Timeout, "read timed out");
    assert!(
        sim.c
            .record_failure(&new, FailureReason::Fault(fault), sim.now)
    );
    assert_eq!(sim.status("b").expect("known").consecutive_errors, 1);
}

#[test]
fn membership_errors_are_typed() {
    let t0 = std::time::Instant::now();
    let mut c = FailoverController::new(FailoverPolicy::default(), 1);
    c.add_provider(id("a"), 1, true, t0).expect("new");
    assert_eq!(
        c.add_provider(id("a"), 2, true, t0),
        Err(ControllerError::DuplicateProvider(id("a")))
    );
    let err = c.add_provider(id("b"), 1, true, t0).unwrap_err();
    assert_eq!(err.code(), "duplicate_priority");
    assert!(err.to_string().contains("\"a\""), "{err}");
    assert_eq!(
        c.remove_provider(&id("b"), t0),
        Err(ControllerError::UnknownProvider(id("b")))
    );
}
