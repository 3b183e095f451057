//! The controller's behaviour on virtual time: one test module per
//! "Failover rules" item of ARCHITECTURE, and property tests over random
//! event sequences.

mod controller {
    mod harness;
    mod properties;
    mod rules;
}
