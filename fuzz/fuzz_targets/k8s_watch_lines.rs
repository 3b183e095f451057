//! Fuzz target `k8s_watch_lines`: see `provisioning_fuzz_replay::k8s_watch_lines`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = provisioning_fuzz_replay::k8s_watch_lines(data);
});
