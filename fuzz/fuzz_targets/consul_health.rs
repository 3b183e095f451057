//! Fuzz target `consul_health`: see `provisioning_fuzz_replay::consul_health`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = provisioning_fuzz_replay::consul_health(data);
});
