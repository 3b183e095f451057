//! End to end over in-memory providers under a tight policy (timeout 1.5 s,
//! cooldown 1 s, backoff 100 ms): register → first snapshot at every bridge
//! → failure → `provider_changed` → standby's view everywhere → fail-back,
//! and the other service-level behaviours of the facade.
//!
//! Real time (bridges run on their own threads). Time bounds have a wide
//! margin (3× the bound + 2 s) and every test prints what it measured.

mod e2e {
    mod consul;
    mod etcd_failover;
    pub(crate) mod harness;
    mod k8s;
    mod liveness;
    mod scenarios;
    mod slowness_soak;
}
