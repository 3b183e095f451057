//! `demo`: the embedded scenario.

use super::support::Sandbox;

#[test]
fn demo_shows_failover_fail_back_and_metrics_and_exits_0() {
    let sb = Sandbox::new();
    let run = sb.run(&["demo"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = &run.stdout;
    assert!(out.contains("snapshot   primary"), "{out}");
    assert!(out.contains("join       n4"), "{out}");
    assert!(out.contains("blocked    n2"), "{out}");
    assert!(
        out.contains("SWITCH     primary -> standby  reason health_degraded")
            || out.contains("SWITCH     primary -> standby  reason timeout"),
        "{out}"
    );
    assert!(
        out.contains("SWITCH     standby -> primary  reason priority_restored"),
        "{out}"
    );
    assert!(out.contains("provisioning_failovers_total:"), "{out}");
    assert!(out.contains("priority_restored  1"), "{out}");
    assert!(!sb.store().exists(), "the demo needs no store");
    assert!(run.took.as_secs() < 30, "took {:?}", run.took);
    println!("demo took {:?}", run.took);
}
