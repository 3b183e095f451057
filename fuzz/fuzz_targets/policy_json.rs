//! Fuzz target `policy_json`: see `provisioning_fuzz_replay::policy_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = provisioning_fuzz_replay::policy_json(data);
});
