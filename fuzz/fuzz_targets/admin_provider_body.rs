//! Fuzz target `admin_provider_body`: see `provisioning_fuzz_replay::admin_provider_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = provisioning_fuzz_replay::admin_provider_body(data);
});
